//! Signs of life: a worker's heartbeats, and the controller's own checks of
//! those that cannot send them. A part of [`Registry`]'s core, in a file of
//! its own.

use crank_proto::domain::WorkerLoad;
use crank_proto::wire::WorkerStatus;

use super::core::{Now, Registry};
use super::messages::{HeartbeatAck, RegistryError};
use super::record::Owner;
use super::store::{ChangeKind, Origin};

/// Which sign of life: only a heartbeat shows the worker can send them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sign {
    Heartbeat,
    CheckPassed,
}

impl Registry {
    /// Records a heartbeat; a stale worker becomes healthy again.
    pub fn heartbeat(
        &mut self,
        worker_id: &str,
        instance: Option<&str>,
        load: Option<WorkerLoad>,
        now: Now,
    ) -> Result<HeartbeatAck, RegistryError> {
        self.note_alive(worker_id, instance, load, Sign::Heartbeat, now)
    }

    /// The records this controller should check itself (`GET /health`), with
    /// their URLs: those that asked for it, and with `silent` those that have
    /// sent no heartbeat one advised interval after registering (the original
    /// system's workers never do). Only records judged here.
    pub fn due_checks(&self, silent: bool, now: Now) -> Vec<(String, String)> {
        let interval = self.settings.advised_heartbeat_interval();
        self.workers
            .values()
            .filter(|r| r.owner == Owner::Local)
            .filter(|r| {
                r.active_check
                    || (silent
                        && !r.heartbeated
                        && now.mono.saturating_duration_since(r.registered_at) >= interval)
            })
            .map(|r| (r.id.to_string(), r.url.to_string()))
            .collect()
    }

    /// A check of `worker_id` at `url` answered: it counts as a heartbeat
    /// without a load, unless the record changed its URL meanwhile.
    pub fn check_passed(&mut self, worker_id: &str, url: &str, now: Now) -> bool {
        if self
            .workers
            .get(worker_id)
            .is_none_or(|record| &*record.url != url)
        {
            return false;
        }
        self.note_alive(worker_id, None, None, Sign::CheckPassed, now)
            .is_ok()
    }

    /// A sign of life of `worker_id`: a heartbeat, or a passed check.
    fn note_alive(
        &mut self,
        worker_id: &str,
        instance: Option<&str>,
        load: Option<WorkerLoad>,
        sign: Sign,
        now: Now,
    ) -> Result<HeartbeatAck, RegistryError> {
        let record = self
            .workers
            .get_mut(worker_id)
            .ok_or_else(|| RegistryError::UnknownWorker(worker_id.to_owned()))?;
        if !record.is_current(instance) {
            log::info!(
                "heartbeat of worker {worker_id} from instance {} refused: instance {} registered it since",
                instance.unwrap_or("?"),
                record.instance.as_deref().unwrap_or("(none)")
            );
            return Err(RegistryError::Superseded {
                worker_id: worker_id.to_owned(),
                instance: instance.unwrap_or_default().to_owned(),
            });
        }
        let was = self.liveness.status(record, now.mono);
        let was_stale = was == WorkerStatus::Stale;
        let adopted = matches!(record.owner, Owner::Remote { .. });
        if let Owner::Remote { controller, .. } = &record.owner {
            // It beats here now: this controller judges it from here on.
            log::info!(
                "worker {worker_id} now heartbeats here (it was owned by controller {controller}); this controller judges it from now on"
            );
        }
        // Queued again where no entry of its own is left: one another
        // controller judged (this one dropped its entry), or one marked stale
        // with no eviction to wait for (marking dropped it; without this it
        // would never be judged again: found by the simulation, seed 3).
        let unqueued = matches!(record.owner, Owner::Remote { .. })
            || (record.stale_since.is_some() && self.settings.evict_after.is_none());
        if unqueued {
            self.deadlines
                .push(record.id.clone(), now.mono + self.settings.stale_after);
        }
        if record.counts_as_stale() {
            self.marked_stale -= 1;
        }
        record.owner = Owner::Local;
        record.stale_since = None;
        record.last_seen = now.mono;
        if sign == Sign::Heartbeat {
            record.heartbeated = true;
        }
        let with_load = load.is_some();
        if with_load {
            record.load = load;
        }
        if record.tally.note_heartbeat(now.mono, with_load) {
            self.ejected.remove(worker_id);
            log::info!(
                "worker {worker_id} heartbeats after its ejection ended: routing to it resumes"
            );
        }
        if was_stale {
            log::info!(
                "worker {worker_id} is healthy again: heartbeat received; routing to it resumes"
            );
            self.journal
                .note(ChangeKind::Healthy, Origin::Local, record, self.anchor);
        }
        if adopted && !was_stale {
            self.journal
                .note(ChangeKind::Owned, Origin::Local, record, self.anchor);
        }
        Ok(HeartbeatAck {
            revived: was != WorkerStatus::Healthy,
        })
    }
}

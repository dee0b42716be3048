//! The cluster store's side of the [`Registry`]: records learned from other
//! controllers, who owns what, and adopting the workers of a controller that
//! is gone. See docs/cluster.md for the whole design.
//!
//! Every controller holds every record. A record is judged by one controller,
//! its owner, the one its worker heartbeats to; the others show and route by
//! the state the owner last published ([`Owner::Remote`]). A heartbeat to a
//! controller that does not own the record makes it the owner
//! ([`ChangeKind::Owned`]); the store orders the competing writes, and every
//! controller follows the store's order, so one owner remains.

use std::collections::HashSet;
use std::rc::Rc;

use actix::clock::Instant;

use super::core::{Now, Registry};
use super::record::{Owner, WorkerRecord};
use super::store::{ChangeKind, Origin};
use crank_proto::domain::{FieldError, Registration};
use crank_proto::wire::{RegisterRequest, ReplicatedWorker, WorkerStatus};

impl Registry {
    /// Cluster mode: this controller is `controller`, and its local changes
    /// carry the record for the store to write.
    pub fn replicate_as(&mut self, controller: &str) {
        self.journal.replicate_as(controller);
    }

    fn me(&self) -> Option<&Rc<str>> {
        self.journal.controller()
    }

    /// Applies a record another controller wrote. Our own writes coming back
    /// are ignored: this registry already holds them.
    pub fn apply_replica(&mut self, replica: ReplicatedWorker, now: Now) -> Result<(), FieldError> {
        if self.me().is_none_or(|me| **me != *replica.owner) {
            return self.insert_replica(replica, now, false);
        }
        // Held here as this controller's, and for the registration the write
        // named?
        let held = self.workers.get(replica.worker_id.as_str()).map(|record| {
            (
                record.owner == Owner::Local,
                record.instance.as_deref() == replica.instance.as_deref(),
            )
        });
        match held {
            // The local record is as new as the write, or newer.
            Some((true, true)) => {
                self.adopt_drain(&replica);
                Ok(())
            }
            // A drain of a registration this controller no longer holds (a
            // controller that had not yet heard of the new one drained the
            // old): it must not drain, nor replace, the new one, whose
            // record is written again over it.
            Some((true, false)) if replica.status == WorkerStatus::Draining => {
                if let Some(record) = self.workers.get(replica.worker_id.as_str()) {
                    self.journal
                        .note(ChangeKind::Owned, Origin::Local, record, self.anchor);
                }
                Ok(())
            }
            // The store's latest word is that this controller owns it: if a
            // competing write was applied here in between (or a write of
            // another registration of the id), take the store's record back,
            // judged from now; a newer local change is written after it and
            // comes back in turn; if the record is gone here
            // (another controller's removal, or a reload of the store,
            // overtook this controller's own write of it), hold it again.
            // Found by the cluster simulation (seed 0; a drain and an
            // instance lost with a partial take-back, later seeds).
            Some(_) => {
                let id = replica.worker_id.clone();
                self.insert_replica(replica, now, true)?;
                if let Some(record) = self.workers.get_mut(id.as_str()) {
                    record.last_seen = now.mono;
                }
                Ok(())
            }
            None => self.insert_replica(replica, now, true),
        }
    }

    /// This controller's own record came back from the store as `replica`.
    /// A drain is sticky for the registration it named (not for a newer
    /// one): one marked at another controller (`POST /drain` may reach any)
    /// is taken, and written again as the owner's; and one of this
    /// controller's writes that crossed the drain (a heartbeat's) is
    /// overwritten with it. Found by the cluster simulation.
    fn adopt_drain(&mut self, replica: &ReplicatedWorker) {
        let Some(record) = self.workers.get_mut(replica.worker_id.as_str()) else {
            return;
        };
        match (replica.status == WorkerStatus::Draining, record.draining) {
            (true, false) => {
                record.draining = true;
                log::info!(
                    "worker {} is draining (marked at another controller)",
                    record.id
                );
            }
            // This controller's write that crossed the drain came back:
            // the drain is written again below.
            (false, true) => {}
            _ => return,
        }
        self.journal
            .note(ChangeKind::Draining, Origin::Local, record, self.anchor);
    }

    /// Removes a record another controller deleted (deregistered, evicted).
    pub fn apply_removal(&mut self, worker_id: &str) {
        if let Some(record) = self.remove(worker_id) {
            log::info!("worker {worker_id} was removed by another controller");
            self.journal.note(
                ChangeKind::Deregistered,
                Origin::Replica,
                &record,
                self.anchor,
            );
        }
    }

    /// Replaces what this registry knows with the store's full contents, as at
    /// start or after the store compacted the history a watch would resume
    /// from. Records the store names this controller as owner of (a restart
    /// with the same id) are judged here from `now`.
    pub fn load_replicas(&mut self, replicas: Vec<ReplicatedWorker>, now: Now) {
        let keep: HashSet<String> = replicas.iter().map(|r| r.worker_id.clone()).collect();
        let gone: Vec<Rc<str>> = self
            .workers
            .keys()
            .filter(|id| !keep.contains(&***id))
            .cloned()
            .collect();
        for id in gone {
            self.apply_removal(&id);
        }
        for replica in replicas {
            let worker_id = replica.worker_id.clone();
            if let Err(problem) = self.insert_replica(replica, now, true) {
                log::warn!("ignored the stored record of worker {worker_id}: {problem}");
            }
        }
    }

    /// Takes over the workers whose owner is not among `live` controllers
    /// (their owner is gone), judging them from `last_seen`: the latest
    /// moment their owner could have heard them.
    pub fn adopt_orphans(&mut self, live: &HashSet<String>, last_seen: Instant) -> usize {
        let orphans: Vec<Rc<str>> = self
            .workers
            .values()
            .filter(|r| matches!(&r.owner, Owner::Remote { controller, .. } if !live.contains(&**controller)))
            .map(|r| r.id.clone())
            .collect();
        for id in &orphans {
            if let Some(record) = self.workers.get_mut(id) {
                let stale = matches!(record.owner, Owner::Remote { stale: true, .. });
                record.owner = Owner::Local;
                record.last_seen = last_seen;
                if stale {
                    // Still counted stale; evicted evict_after from now.
                    record.stale_since = Some(last_seen);
                }
                let due = match (stale, self.settings.evict_after) {
                    (false, _) => Some(last_seen + self.settings.stale_after),
                    (true, Some(evict_after)) => Some(last_seen + evict_after),
                    (true, None) => None,
                };
                if let Some(due) = due {
                    self.deadlines.push(record.id.clone(), due);
                }
                self.journal
                    .note(ChangeKind::Owned, Origin::Local, record, self.anchor);
            }
        }
        if !orphans.is_empty() {
            log::warn!(
                "adopted {} workers whose controller is gone; they are judged here now and go stale unless they heartbeat",
                orphans.len()
            );
        }
        orphans.len()
    }

    /// Every record this controller owns, as the store should hold it: what a
    /// controller writes again after the store was unreachable.
    pub fn owned_replicas(&self) -> Vec<ReplicatedWorker> {
        let Some(me) = self.me() else {
            return Vec::new();
        };
        self.workers
            .values()
            .filter(|r| r.owner == Owner::Local)
            .map(|r| super::journal::replica_of(r, me, self.anchor))
            .collect()
    }

    /// Inserts or replaces a record from the store. `mine_if_named` makes a
    /// record that names this controller local (a restart with the same id).
    fn insert_replica(
        &mut self,
        replica: ReplicatedWorker,
        now: Now,
        mine_if_named: bool,
    ) -> Result<(), FieldError> {
        let ReplicatedWorker {
            worker_id,
            worker_url,
            capabilities,
            instance,
            registered_by,
            registered_at,
            owner,
            status,
        } = replica;
        let registration = Registration::try_from(RegisterRequest {
            worker_id,
            worker_url,
            capabilities,
            instance,
            health_check: None,
        })?;
        self.anchor.get_or_insert(now);
        let stale = status == WorkerStatus::Stale;
        let mine = mine_if_named && self.me().is_some_and(|me| **me == *owner);
        let previous = self.remove(registration.worker_id.as_str());
        let draining = status == WorkerStatus::Draining;
        let kind = match &previous {
            None => ChangeKind::Registered,
            Some(p) if draining && !p.draining => ChangeKind::Draining,
            Some(p)
                if p.counts_as_stale() != stale
                    && p.url.as_ref() == registration.worker_url.as_str() =>
            {
                if stale {
                    ChangeKind::Stale
                } else {
                    ChangeKind::Healthy
                }
            }
            Some(_) => ChangeKind::Registered,
        };
        let index = &self.index;
        let capabilities = self
            .capability_sets
            .intern(registration.capabilities, |key| index.shared_key(key));
        let id: Rc<str> = Rc::from(registration.worker_id.into_string());
        self.index.insert(&id, &capabilities.keys);
        let registered_at = self.anchor.map_or(now.mono, |anchor| {
            let ago = (anchor.wall - registered_at).to_std().unwrap_or_default();
            anchor.mono.checked_sub(ago).unwrap_or(anchor.mono)
        });
        let record = WorkerRecord {
            id: id.clone(),
            url: registration.worker_url.into_string().into_boxed_str(),
            capabilities,
            registered_by: self.registrant(&registered_by),
            instance: registration
                .instance
                .map(|i| i.into_string().into_boxed_str()),
            registered_at,
            last_seen: previous.as_ref().map_or(now.mono, |p| p.last_seen),
            stale_since: (mine && stale).then_some(now.mono),
            heartbeated: previous.as_ref().is_some_and(|p| p.heartbeated),
            active_check: registration.active_check
                || previous.as_ref().is_some_and(|p| p.active_check),
            draining: status == WorkerStatus::Draining,
            load: previous.as_ref().and_then(|p| p.load.clone()),
            tally: previous
                .as_ref()
                .map(|p| p.tally.clone())
                .unwrap_or_default(),
            owner: if mine {
                Owner::Local
            } else {
                Owner::Remote {
                    controller: Rc::from(owner),
                    stale,
                }
            },
        };
        if mine {
            let due = now.mono + self.settings.stale_after;
            self.deadlines.push(id.clone(), due);
        }
        if record.counts_as_stale() {
            self.marked_stale += 1;
        }
        if record.tally.is_ejected() {
            self.ejected.insert(id.clone());
        }
        self.journal
            .note(kind, Origin::Replica, &record, self.anchor);
        self.workers.insert(id, Box::new(record));
        Ok(())
    }
}

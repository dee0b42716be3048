//! [`Journal`]: the registry's record of its changes, for its
//! [`ChangeSink`](super::ChangeSink)s. Kept apart from the state so a change
//! can be noted while a record is borrowed.

use std::rc::Rc;

use actix::clock::Instant;
use chrono::{DateTime, Utc};

use super::now::Now;
use super::record::{Owner, WorkerRecord};
use super::store::{ChangeKind, Origin, RegistryEvent};
use crank_proto::wire::{ReplicatedWorker, WorkerStatus};

/// The changes since the last [`Journal::take`], recorded only when someone
/// listens.
#[derive(Default)]
pub struct Journal {
    listening: bool,
    /// In cluster mode, this controller's id: local changes then carry the
    /// record as a [`ReplicatedWorker`] for the store to write.
    controller: Option<Rc<str>>,
    events: Vec<RegistryEvent>,
}

impl Journal {
    pub fn listen(&mut self) {
        self.listening = true;
    }

    /// Local changes carry replicas owned by `controller` from now on.
    pub fn replicate_as(&mut self, controller: &str) {
        self.listening = true;
        self.controller = Some(Rc::from(controller));
    }

    pub fn controller(&self) -> Option<&Rc<str>> {
        self.controller.as_ref()
    }

    /// Notes that `kind` happened to `record`, decided here or learned from a
    /// replica. `anchor` turns monotonic times into wall-clock ones.
    pub fn note(
        &mut self,
        kind: ChangeKind,
        origin: Origin,
        record: &WorkerRecord,
        anchor: Option<Now>,
    ) {
        if !self.listening {
            return;
        }
        let leaves_a_record = !matches!(kind, ChangeKind::Deregistered | ChangeKind::Evicted);
        let replica = match (&self.controller, origin) {
            (Some(me), Origin::Local) if leaves_a_record => {
                Some(Rc::new(replica_of(record, me, anchor)))
            }
            _ => None,
        };
        self.events.push(RegistryEvent {
            kind,
            origin,
            worker_id: record.id.clone(),
            worker_url: record.url.clone(),
            capabilities: record.capabilities.clone(),
            replica,
        });
    }

    /// The changes noted since the last call, oldest first.
    pub fn take(&mut self) -> Vec<RegistryEvent> {
        std::mem::take(&mut self.events)
    }
}

/// `record` as the cluster store keeps it, owned by `controller`.
pub fn replica_of(
    record: &WorkerRecord,
    controller: &str,
    anchor: Option<Now>,
) -> ReplicatedWorker {
    let wall = |at: Instant| -> DateTime<Utc> {
        anchor.map_or_else(Utc::now, |anchor| anchor.wall_of(at))
    };
    let owner = match &record.owner {
        Owner::Local => controller.to_owned(),
        Owner::Remote { controller, .. } => controller.to_string(),
    };
    let stale = match record.owner {
        Owner::Local => record.stale_since.is_some(),
        Owner::Remote { stale, .. } => stale,
    };
    ReplicatedWorker {
        worker_id: record.id.to_string(),
        worker_url: record.url.to_string(),
        capabilities: record.capabilities.to_wire(),
        instance: record.instance.as_deref().map(str::to_owned),
        registered_by: record.registered_by.to_string(),
        registered_at: wall(record.registered_at),
        owner,
        status: if record.draining {
            WorkerStatus::Draining
        } else if stale {
            WorkerStatus::Stale
        } else {
            WorkerStatus::Healthy
        },
    }
}

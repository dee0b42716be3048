//! [`StoreSink`]: the registry's own changes, written to etcd in batches by
//! [`run`]. Only registrations, removals, changes of state and of owner are
//! written, never heartbeats. While etcd is away the latest change of each
//! worker is kept (so the backlog is bounded by the fleet, not by time) and
//! written when it returns, with every record this controller owns.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use actix::Addr;
use crank_proto::wire::ReplicatedWorker;
use crank_registry::{ChangeKind, ChangeSink, Origin, OwnedReplicas, RegistryActor, RegistryEvent};
use etcd_client::{Client, Txn, TxnOp};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use super::keys::Keys;
use super::{StoreHealth, StoreState};

/// Operations per etcd transaction: one transaction is one write (one
/// revision), whatever it holds; etcd allows 128.
const BATCH: usize = 100;

/// One worker's latest change: its record, or its removal.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    Put(Box<ReplicatedWorker>),
    Delete(String),
}

impl WriteOp {
    fn worker_id(&self) -> &str {
        match self {
            WriteOp::Put(replica) => &replica.worker_id,
            WriteOp::Delete(id) => id,
        }
    }
}

/// Hands the registry's local changes to the writer task, without waiting.
pub struct StoreSink {
    changes: UnboundedSender<WriteOp>,
}

impl StoreSink {
    pub fn new(changes: UnboundedSender<WriteOp>) -> Self {
        StoreSink { changes }
    }
}

impl ChangeSink for StoreSink {
    fn publish(&mut self, events: &[RegistryEvent]) {
        for event in events.iter().filter(|e| e.origin == Origin::Local) {
            let op = match (event.kind, &event.replica) {
                (ChangeKind::Deregistered | ChangeKind::Evicted, _) => {
                    WriteOp::Delete(event.worker_id.to_string())
                }
                (_, Some(replica)) => WriteOp::Put(Box::new((**replica).clone())),
                (_, None) => continue,
            };
            // The writer lives as long as the registry's thread.
            let _ = self.changes.send(op);
        }
    }
}

/// Changes not yet written, the latest per worker, oldest worker first.
#[derive(Default)]
struct Pending {
    latest: HashMap<String, WriteOp>,
    order: VecDeque<String>,
}

impl Pending {
    fn add(&mut self, op: WriteOp) {
        let id = op.worker_id().to_owned();
        if self.latest.insert(id.clone(), op).is_none() {
            self.order.push_back(id);
        }
    }

    /// The next batch, taken out; put back with [`Pending::restore`] if it
    /// could not be written.
    fn take(&mut self, max: usize) -> Vec<WriteOp> {
        let mut batch = Vec::new();
        while batch.len() < max {
            let Some(id) = self.order.pop_front() else {
                break;
            };
            if let Some(op) = self.latest.remove(&id) {
                batch.push(op);
            }
        }
        batch
    }

    /// Puts back a batch that failed, unless a newer change replaced it since.
    fn restore(&mut self, batch: Vec<WriteOp>) {
        for op in batch.into_iter().rev() {
            let id = op.worker_id().to_owned();
            if !self.latest.contains_key(&id) {
                self.latest.insert(id.clone(), op);
                self.order.push_front(id);
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    fn len(&self) -> usize {
        self.latest.len()
    }
}

/// Writes the changes `StoreSink` hands over, for as long as the registry lives.
pub async fn run(
    mut client: Client,
    keys: Keys,
    mut changes: UnboundedReceiver<WriteOp>,
    health: StoreHealth,
    registry: Addr<RegistryActor>,
) {
    let mut pending = Pending::default();
    let mut failures = 0u32;
    loop {
        if pending.is_empty() {
            match changes.recv().await {
                Some(op) => pending.add(op),
                None => return,
            }
        }
        while let Ok(op) = changes.try_recv() {
            pending.add(op);
        }
        let batch = pending.take(BATCH);
        health.pending_writes(pending.len() + batch.len());
        let ops: Vec<TxnOp> = batch
            .iter()
            .map(|op| match op {
                WriteOp::Put(replica) => TxnOp::put(
                    keys.worker(&replica.worker_id),
                    serde_json::to_vec(replica).expect("a replica serializes"),
                    None,
                ),
                WriteOp::Delete(id) => TxnOp::delete(keys.worker(id), None),
            })
            .collect();
        match client.txn(Txn::new().and_then(ops)).await {
            Ok(_) => {
                health.pending_writes(pending.len());
                if failures > 0 || health.get() == StoreState::Unreachable {
                    failures = 0;
                    health.set(StoreState::Ok);
                    // Whatever happened meanwhile, the store gets this
                    // controller's records as they stand.
                    if let Ok(owned) = registry.send(OwnedReplicas).await {
                        log::info!(
                            "etcd answers again; writing {} pending changes and this controller's {} records",
                            pending.len(),
                            owned.len()
                        );
                        for replica in owned {
                            pending.add(WriteOp::Put(Box::new(replica)));
                        }
                    }
                }
            }
            Err(problem) => {
                pending.restore(batch);
                failures += 1;
                if health.set(StoreState::Unreachable) != StoreState::Unreachable {
                    log::warn!("etcd is unreachable ({problem}); this controller keeps answering routes and heartbeats from its replica; {} changes wait to be written", pending.len());
                }
                let backoff = Duration::from_millis(250) * 2u32.pow(failures.min(4));
                actix_rt::time::sleep(backoff).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delete(id: &str) -> WriteOp {
        WriteOp::Delete(id.into())
    }

    #[test]
    fn pending_keeps_the_latest_change_per_worker_in_first_seen_order() {
        let mut pending = Pending::default();
        pending.add(delete("a"));
        pending.add(delete("b"));
        pending.add(delete("a"));
        assert_eq!(pending.len(), 2);
        let batch = pending.take(10);
        assert_eq!(batch, [delete("a"), delete("b")]);
        assert!(pending.is_empty());
    }

    #[test]
    fn a_failed_batch_goes_back_unless_something_newer_came() {
        let mut pending = Pending::default();
        pending.add(delete("a"));
        pending.add(delete("b"));
        let batch = pending.take(10);
        pending.add(delete("b"));
        pending.restore(batch);
        assert_eq!(pending.len(), 2);
        assert_eq!(pending.take(1), [delete("a")]);
    }
}

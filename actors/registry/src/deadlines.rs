//! [`DeadlineQueue`]: the workers in the order their next deadline falls due, so
//! a sweep touches only the workers whose deadline passed, not the fleet.
//!
//! Like etcd's lease heap, a heartbeat does not move its worker in the queue:
//! the entry keeps the deadline it was queued with, and when it comes due the
//! sweep looks at the record, and either acts (stale, evicted) or queues it
//! again at its true deadline. A worker that heartbeats is so looked at about
//! once per `stale_after`, and each worker has exactly one entry.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::rc::Rc;

use actix::clock::Instant;

/// One queued deadline. Ordered by time only; the id says whose.
struct Entry {
    due: Instant,
    worker: Rc<str>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.due == other.due
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.due.cmp(&other.due)
    }
}

/// Earliest deadline first.
#[derive(Default)]
pub struct DeadlineQueue {
    heap: BinaryHeap<Reverse<Entry>>,
}

impl DeadlineQueue {
    /// Queues `worker` (the record's own id, compared by pointer when it comes
    /// due) at `due`.
    pub fn push(&mut self, worker: Rc<str>, due: Instant) {
        self.heap.push(Reverse(Entry { due, worker }));
    }

    /// The next worker whose queued deadline is at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<Rc<str>> {
        if self.heap.peek()?.0.due > now {
            return None;
        }
        self.heap.pop().map(|Reverse(entry)| entry.worker)
    }

    /// Whether an entry is due at `now`.
    pub fn has_due(&self, now: Instant) -> bool {
        self.heap.peek().is_some_and(|next| next.0.due <= now)
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Every queued entry, in no order: for the simulation's invariants.
    #[cfg(test)]
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&Rc<str>, Instant)> {
        self.heap
            .iter()
            .map(|Reverse(entry)| (&entry.worker, entry.due))
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn only_due_entries_come_out_earliest_first() {
        let start = Instant::now();
        let mut queue = DeadlineQueue::default();
        queue.push(Rc::from("late"), start + Duration::from_secs(20));
        queue.push(Rc::from("early"), start + Duration::from_secs(10));
        queue.push(Rc::from("middle"), start + Duration::from_secs(15));
        assert_eq!(queue.pop_due(start + Duration::from_secs(9)), None);
        let now = start + Duration::from_secs(15);
        assert_eq!(queue.pop_due(now).as_deref(), Some("early"));
        assert_eq!(queue.pop_due(now).as_deref(), Some("middle"));
        assert_eq!(queue.pop_due(now), None);
        assert_eq!(queue.len(), 1);
    }
}

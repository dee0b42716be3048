//! [`CapabilityIndex`]: which workers serve each `verb:name`, with a round-robin
//! cursor per capability, so a route never scans the whole fleet.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

/// Providers of one `verb:name`, in registration order, with the round-robin
/// cursor: `next` is the position of the provider due next.
#[derive(Default)]
struct Providers {
    workers: Vec<Rc<str>>,
    next: usize,
}

impl Providers {
    /// Keeps `next` inside the list; wraps to the start past its end.
    fn wrap(&mut self) {
        if self.next >= self.workers.len() {
            self.next = 0;
        }
    }
}

/// `verb:name` → the workers serving it.
///
/// Invariants the router relies on: a worker is listed at most once per key
/// (however many versions it serves), and removals keep the cursor on the
/// provider that was due, so leaving or joining never makes the rotation skip
/// anyone.
#[derive(Default)]
pub struct CapabilityIndex {
    by_key: HashMap<Rc<str>, Providers>,
}

impl CapabilityIndex {
    /// The shared copy of `key` if the index holds it, so every record of a
    /// capability points at one string.
    pub fn shared_key(&self, key: &str) -> Option<Rc<str>> {
        self.by_key.get_key_value(key).map(|(k, _)| k.clone())
    }

    /// Adds `worker` at the end of the rotation of each of `keys`.
    pub fn insert(&mut self, worker: &Rc<str>, keys: &[Rc<str>]) {
        for key in keys {
            self.by_key
                .entry(key.clone())
                .or_default()
                .workers
                .push(worker.clone());
        }
    }

    /// Removes `worker` from each of `keys`.
    pub fn remove(&mut self, worker: &str, keys: &[Rc<str>]) {
        for key in keys {
            let Some(providers) = self.by_key.get_mut(key) else {
                continue;
            };
            if let Some(position) = providers.workers.iter().position(|w| &**w == worker) {
                providers.workers.remove(position);
                if position < providers.next {
                    providers.next -= 1;
                }
                providers.wrap();
            }
            if providers.workers.is_empty() {
                self.by_key.remove(key);
            }
        }
    }

    /// Removes many workers at once: one pass over each affected list, where
    /// removing them one by one would cost a scan per worker.
    pub fn remove_many(&mut self, workers: &HashSet<Rc<str>>, keys: &HashSet<Rc<str>>) {
        for key in keys {
            let Some(providers) = self.by_key.get_mut(key) else {
                continue;
            };
            let before_cursor = providers
                .workers
                .get(..providers.next.min(providers.workers.len()))
                .unwrap_or_default()
                .iter()
                .filter(|w| workers.contains(&***w))
                .count();
            providers.workers.retain(|w| !workers.contains(&**w));
            providers.next -= before_cursor;
            providers.wrap();
            if providers.workers.is_empty() {
                self.by_key.remove(key);
            }
        }
    }

    /// Walks the rotation of `key` from the provider due next and returns the
    /// first one `accept` takes, moving the cursor past it.
    pub fn next_accepted<T>(
        &mut self,
        key: &str,
        mut accept: impl FnMut(&Rc<str>) -> Option<T>,
    ) -> Option<(Rc<str>, T)> {
        let providers = self.by_key.get_mut(key)?;
        let count = providers.workers.len();
        for step in 0..count {
            let slot = (providers.next + step) % count;
            let Some(worker) = providers.workers.get(slot) else {
                continue;
            };
            if let Some(found) = accept(worker) {
                providers.next = (slot + 1) % count;
                return Some((worker.clone(), found));
            }
        }
        None
    }

    /// The providers of `key` in rotation order, with the position of the one due next.
    pub fn rotation(&self, key: &str) -> Option<(&[Rc<str>], usize)> {
        self.by_key
            .get(key)
            .map(|providers| (providers.workers.as_slice(), providers.next))
    }

    /// Moves the cursor of `key` past the provider at `slot`.
    pub fn advance_past(&mut self, key: &str, slot: usize) {
        if let Some(providers) = self.by_key.get_mut(key) {
            providers.next = slot + 1;
            providers.wrap();
        }
    }

    /// Each key with its providers.
    pub fn iter(&self) -> impl Iterator<Item = (&Rc<str>, &[Rc<str>])> {
        self.by_key
            .iter()
            .map(|(key, providers)| (key, providers.workers.as_slice()))
    }

    /// Number of capabilities served.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(names: &[&str]) -> Vec<Rc<str>> {
        names.iter().map(|n| Rc::from(*n)).collect()
    }

    fn next(index: &mut CapabilityIndex) -> String {
        index
            .next_accepted("k", |_| Some(()))
            .map(|(w, ())| w.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn the_rotation_visits_each_provider_once_per_turn() {
        let mut index = CapabilityIndex::default();
        let key = ids(&["k"]);
        for worker in ids(&["a", "b", "c"]) {
            index.insert(&worker, &key);
        }
        let turn: Vec<String> = (0..6).map(|_| next(&mut index)).collect();
        assert_eq!(turn, ["a", "b", "c", "a", "b", "c"]);
    }

    #[test]
    fn removing_the_provider_before_the_cursor_skips_no_one() {
        let mut index = CapabilityIndex::default();
        let key = ids(&["k"]);
        for worker in ids(&["a", "b", "c"]) {
            index.insert(&worker, &key);
        }
        assert_eq!(next(&mut index), "a");
        index.remove("a", &key);
        assert_eq!(next(&mut index), "b");
        assert_eq!(next(&mut index), "c");
    }

    #[test]
    fn removing_many_keeps_the_cursor_on_the_due_provider() {
        let mut index = CapabilityIndex::default();
        let key = ids(&["k"]);
        for worker in ids(&["a", "b", "c", "d"]) {
            index.insert(&worker, &key);
        }
        assert_eq!(next(&mut index), "a");
        assert_eq!(next(&mut index), "b");
        let gone: HashSet<Rc<str>> = ids(&["a", "b"]).into_iter().collect();
        index.remove_many(&gone, &key.iter().cloned().collect());
        assert_eq!(next(&mut index), "c");
        assert_eq!(next(&mut index), "d");
        assert_eq!(next(&mut index), "c");
    }

    #[test]
    fn the_last_provider_leaving_removes_the_key() {
        let mut index = CapabilityIndex::default();
        let key = ids(&["k"]);
        index.insert(&Rc::from("a"), &key);
        index.remove("a", &key);
        assert!(index.is_empty());
        assert_eq!(index.next_accepted("k", |_| Some(())), None);
    }

    #[test]
    fn a_refused_provider_is_passed_over_and_stays_due() {
        let mut index = CapabilityIndex::default();
        let key = ids(&["k"]);
        for worker in ids(&["a", "b", "c"]) {
            index.insert(&worker, &key);
        }
        let chosen = index.next_accepted("k", |w| (&**w != "a").then_some(()));
        assert_eq!(chosen.unwrap().0.as_ref(), "b");
        assert_eq!(next(&mut index), "c");
        assert_eq!(next(&mut index), "a");
    }
}

//! [`WorkerRecord`]: what the registry keeps of one worker, and the
//! [`CapabilitySet`]s records share.
//!
//! A registry of a million workers is mostly records, so they are kept small:
//! workers that announce the same capabilities (every replica of a service)
//! share one [`CapabilitySet`], the wall-clock time of the last heartbeat is
//! derived from the monotonic one when asked, and strings are shared.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::rc::Rc;

use actix::clock::Instant;
use semver::{Version, VersionReq};

use super::tally::Tally;
use crank_proto::domain::ServedCapability;
use crank_proto::domain::WorkerLoad;
use crank_proto::wire::Capability;

/// One capability as the registry keeps it: the routing key (shared with the
/// index), the parsed version, and the announcement only when it says more
/// than those.
#[derive(PartialEq)]
pub struct StoredCapability {
    pub key: Rc<str>,
    pub version: Version,
    announced: Option<Box<Capability>>,
}

impl StoredCapability {
    /// The announcement, when it says more than the key and version.
    pub fn announced(&self) -> Option<&Capability> {
        self.announced.as_deref()
    }

    /// The announcement as the worker sent it.
    pub fn to_wire(&self) -> Capability {
        match &self.announced {
            Some(capability) => (**capability).clone(),
            None => {
                let (verb, name) = self.key.split_once(':').unwrap_or((&self.key, ""));
                Capability::new(verb, name, &self.version.to_string())
            }
        }
    }
}

/// The capabilities of a worker, with the distinct keys it is indexed under.
#[derive(PartialEq)]
pub struct CapabilitySet {
    pub capabilities: Box<[StoredCapability]>,
    pub keys: Box<[Rc<str>]>,
}

impl CapabilitySet {
    /// Every capability as the worker announced it.
    pub fn to_wire(&self) -> Vec<Capability> {
        self.capabilities
            .iter()
            .map(StoredCapability::to_wire)
            .collect()
    }

    /// The version this set serves of `key` that satisfies `requirement`.
    pub fn matching_version(
        &self,
        key: &str,
        requirement: Option<&VersionReq>,
    ) -> Option<&Version> {
        self.matching(key, requirement)
            .map(|capability| &capability.version)
    }

    /// The capability this set serves of `key` in a version that satisfies `requirement`.
    pub fn matching(
        &self,
        key: &str,
        requirement: Option<&VersionReq>,
    ) -> Option<&StoredCapability> {
        self.capabilities.iter().find(|capability| {
            &*capability.key == key
                && requirement.is_none_or(|req| req.matches(&capability.version))
        })
    }
}

/// Hash by keys and versions only; equality compares everything.
impl Hash for CapabilitySet {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for capability in self.capabilities.iter() {
            capability.key.hash(state);
            capability.version.hash(state);
        }
    }
}

/// Capabilities come from JSON, which has no NaN, so equality is total.
impl Eq for CapabilitySet {}

/// One shared copy of each distinct [`CapabilitySet`].
#[derive(Default)]
pub struct CapabilitySets {
    sets: HashSet<Rc<CapabilitySet>>,
}

impl CapabilitySets {
    /// The shared set equal to `capabilities`, keys shared through `shared_key`.
    pub fn intern(
        &mut self,
        capabilities: Vec<ServedCapability>,
        shared_key: impl Fn(&str) -> Option<Rc<str>>,
    ) -> Rc<CapabilitySet> {
        let stored: Box<[StoredCapability]> = capabilities
            .into_iter()
            .map(|served| StoredCapability {
                key: shared_key(served.key.as_str())
                    .unwrap_or_else(|| Rc::from(served.key.as_str())),
                version: served.version,
                announced: served
                    .announced
                    .has_extras()
                    .then(|| Box::new(served.announced)),
            })
            .collect();
        let mut keys: Vec<Rc<str>> = Vec::with_capacity(stored.len());
        for capability in stored.iter() {
            if !keys.iter().any(|k| **k == *capability.key) {
                keys.push(capability.key.clone());
            }
        }
        let set = CapabilitySet {
            capabilities: stored,
            keys: keys.into_boxed_slice(),
        };
        if let Some(shared) = self.sets.get(&set) {
            return shared.clone();
        }
        let shared = Rc::new(set);
        self.sets.insert(shared.clone());
        shared
    }

    /// Drops `set` from the table when the record being removed is the last
    /// one holding it.
    pub fn release(&mut self, set: &Rc<CapabilitySet>) {
        // Held by the table and by that record: nobody else.
        if Rc::strong_count(set) == 2 {
            self.sets.remove(&**set);
        }
    }

    pub fn len(&self) -> usize {
        self.sets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }
}

/// Who judges a worker's liveness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// This controller: the worker heartbeats here.
    Local,
    /// Another controller of the cluster, which last published it healthy or
    /// stale; this one shows and routes by that, and never judges it.
    Remote { controller: Rc<str>, stale: bool },
}

/// Everything the registry keeps of one worker.
pub struct WorkerRecord {
    /// The worker's id: the same allocation as its key in the registry.
    pub id: Rc<str>,
    pub url: Box<str>,
    pub capabilities: Rc<CapabilitySet>,
    /// The identity that registered it.
    pub registered_by: Rc<str>,
    /// The process that registered it, if it named itself.
    pub instance: Option<Box<str>>,
    pub owner: Owner,
    /// Monotonic time of the registration.
    pub registered_at: Instant,
    /// Monotonic time of the last heartbeat (or of the registration).
    pub last_seen: Instant,
    /// When a sweep marked it stale.
    pub stale_since: Option<Instant>,
    /// The worker has sent a heartbeat since it registered (a probe's
    /// success is not one): workers that never do are the original system's.
    pub heartbeated: bool,
    /// It asked to be checked by the controller instead of heartbeating.
    pub active_check: bool,
    /// It is finishing its calls before it stops (`Registry::drain`): shown
    /// `draining`, never routed to again; a new registration clears it.
    pub draining: bool,
    pub load: Option<WorkerLoad>,
    /// The router's own figures: routes handed out since the last load
    /// report, and failures reported by callers.
    pub tally: Tally,
}

impl WorkerRecord {
    /// Whether a message from `instance` speaks for this record: any message
    /// that names no instance does (the original system's workers), one that
    /// names one must name the registered one.
    pub fn is_current(&self, instance: Option<&str>) -> bool {
        instance.is_none_or(|instance| self.instance.as_deref() == Some(instance))
    }

    /// Whether it counts as stale in the registry's tally: marked stale here,
    /// or published stale by its owner.
    pub fn counts_as_stale(&self) -> bool {
        self.stale_since.is_some() || matches!(self.owner, Owner::Remote { stale: true, .. })
    }
}

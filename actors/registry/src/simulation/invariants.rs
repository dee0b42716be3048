//! The invariants that hold between any two steps of a simulation.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;
use std::time::Duration;

use super::super::core::{Now, Registry};
use super::super::record::Owner;
use super::model::Model;

/// The invariants of the [module](super) that hold between steps.
pub fn check(registry: &mut Registry, model: &Model, now: Now) -> Result<(), String> {
    let ids: BTreeSet<&str> = registry.workers.keys().map(|id| &**id).collect();
    let known: BTreeSet<&str> = model.workers.keys().map(String::as_str).collect();
    if ids != known {
        return Err(format!("registry holds {ids:?}, the model {known:?}"));
    }
    // The index and the records agree both ways.
    for (key, providers) in registry.index.iter() {
        let distinct: BTreeSet<&str> = providers.iter().map(|p| &**p).collect();
        if distinct.len() != providers.len() {
            return Err(format!(
                "rotation of {key} lists a provider twice: {providers:?}"
            ));
        }
        for provider in providers {
            let serves = registry
                .workers
                .get(provider)
                .is_some_and(|r| r.capabilities.keys.iter().any(|k| k == key));
            if !serves {
                return Err(format!(
                    "index lists {provider} for {key}, its record does not"
                ));
            }
        }
    }
    let rotations: HashMap<&str, &[Rc<str>]> =
        registry.index.iter().map(|(k, p)| (&**k, p)).collect();
    for record in registry.workers.values() {
        for key in record.capabilities.keys.iter() {
            if !rotations
                .get(&**key)
                .is_some_and(|p| p.contains(&record.id))
            {
                return Err(format!(
                    "{} serves {key} but is not in its rotation",
                    record.id
                ));
            }
        }
    }
    // Counts equal a recount.
    let stale = registry
        .workers
        .values()
        .filter(|r| r.counts_as_stale())
        .count();
    let model_stale = model.workers.values().filter(|w| w.marked_stale).count();
    if registry.marked_stale != stale || stale != model_stale {
        return Err(format!(
            "stale count {} / recount {stale} / model {model_stale}",
            registry.marked_stale
        ));
    }
    let ejected: BTreeSet<&str> = registry
        .workers
        .values()
        .filter(|r| r.tally.is_ejected())
        .map(|r| &*r.id)
        .collect();
    let counted: BTreeSet<&str> = registry.ejected.iter().map(|id| &**id).collect();
    if ejected != counted {
        return Err(format!("ejected set {counted:?}, records say {ejected:?}"));
    }
    let stats = registry.stats(0, Duration::ZERO, Duration::ZERO);
    if stats.workers != model.workers.len() || stats.healthy_workers != model.workers.len() - stale
    {
        return Err(format!(
            "stats {stats:?} against {} workers",
            model.workers.len()
        ));
    }
    let mut per_key: BTreeMap<String, usize> = BTreeMap::new();
    for worker in model.workers.values() {
        for key in &worker.keys {
            *per_key.entry(key.clone()).or_default() += 1;
        }
    }
    let counts = registry.capabilities(now);
    let listed: BTreeMap<String, usize> =
        counts.iter().map(|(k, c)| (k.clone(), c.workers)).collect();
    if listed != per_key || stats.capabilities != per_key.len() {
        return Err(format!("capabilities {listed:?}, the model {per_key:?}"));
    }
    for (key, count) in &counts {
        let routable = registry
            .workers
            .values()
            .filter(|r| r.capabilities.keys.iter().any(|k| **k == **key))
            .filter(|r| registry.liveness.status(r, now.mono).is_routable())
            .count();
        if count.healthy_workers != routable {
            return Err(format!(
                "{key}: {} healthy counted, {routable} by status",
                count.healthy_workers
            ));
        }
    }
    // One live deadline per record this controller judges.
    let mut queued: HashMap<*const u8, usize> = HashMap::new();
    for (worker, _) in registry.deadlines.entries() {
        *queued.entry(worker.as_ptr()).or_default() += 1;
    }
    for record in registry.workers.values() {
        let entries = queued.get(&record.id.as_ptr()).copied().unwrap_or(0);
        let judged = record.owner == Owner::Local
            && !(record.stale_since.is_some() && registry.settings.evict_after.is_none());
        if judged && entries != 1 {
            return Err(format!("{} has {entries} queued deadlines", record.id));
        }
    }
    Ok(())
}

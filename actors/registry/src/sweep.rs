//! The sweep: due deadlines in order, stale at `stale_after`, evicted
//! `evict_after` later, held back by a grace period after a pause or a mass
//! expiry. A part of [`Registry`]'s core, in a file of its own.

use std::collections::HashSet;
use std::rc::Rc;

use actix::clock::Instant;
use crank_proto::wire::WorkerStatus;

use super::core::{Now, Registry, SweepStep};
use super::liveness::GraceReason;
use super::record::Owner;
use super::store::{ChangeKind, Origin};
use super::{RegistrySettings, MIN_PROTECTED_FLEET};

impl Registry {
    /// One sweep step: handles at most `budget` due deadlines, marking workers
    /// stale at `stale_after` and evicting them `evict_after` later. A worker
    /// that heartbeated since it was queued goes back in the queue at its true
    /// deadline.
    pub fn sweep_step(&mut self, now: Now, budget: usize) -> SweepStep {
        let RegistrySettings {
            stale_after,
            evict_after,
            protect_threshold,
            ..
        } = self.settings;
        let mut step = SweepStep::default();
        self.end_remote_ejections(now);
        let mut evicted: HashSet<Rc<str>> = HashSet::new();
        let mut due = Vec::new();
        while due.len() < budget {
            let Some(queued) = self.deadlines.pop_due(now.mono) else {
                break;
            };
            step.examined += 1;
            // Dropped if the worker is gone or registered again since (its new
            // record has its own entry).
            // Also dropped if another controller judges it now.
            if let Some(record) = self.workers.get(&queued) {
                if Rc::ptr_eq(&record.id, &queued) && record.owner == Owner::Local {
                    due.push(queued);
                }
            }
        }
        let mut grace_until = self.liveness.grace_until(now.mono);
        if grace_until.is_none() && self.liveness.may_protect(now.mono) {
            let fleet = self.workers.len();
            let going_stale = due
                .iter()
                .filter_map(|id| self.workers.get(id))
                .filter(|r| r.stale_since.is_none() && self.liveness.is_silent(r, now.mono))
                .count();
            let share = (self.marked_stale + going_stale) as f64 / fleet.max(1) as f64;
            if fleet >= MIN_PROTECTED_FLEET && going_stale > 0 && share > protect_threshold {
                grace_until = Some(self.liveness.begin_grace(now.mono));
                step.protected = Some(share);
            }
        }
        for queued in due {
            let Some(record) = self.workers.get_mut(&queued) else {
                continue;
            };
            let silent = now.mono.saturating_duration_since(record.last_seen);
            if record.stale_since.is_none() && silent >= stale_after {
                if let Some(until) = grace_until {
                    // Silent since before the grace period began: suspect, not
                    // stale, until it ends.
                    if self.liveness.status(record, now.mono) == WorkerStatus::Suspect {
                        self.deadlines.push(queued, until);
                        continue;
                    }
                }
            }
            match record.stale_since {
                None if silent >= stale_after => {
                    record.stale_since = Some(now.mono);
                    self.marked_stale += 1;
                    step.newly_stale.push((queued.clone(), silent));
                    self.journal
                        .note(ChangeKind::Stale, Origin::Local, record, self.anchor);
                    if let Some(evict_after) = evict_after {
                        self.deadlines.push(queued, now.mono + evict_after);
                    }
                }
                None => self.deadlines.push(queued, record.last_seen + stale_after),
                Some(since) => match evict_after {
                    Some(evict_after) if now.mono.duration_since(since) >= evict_after => {
                        evicted.insert(queued);
                    }
                    Some(evict_after) => self.deadlines.push(queued, since + evict_after),
                    None => {}
                },
            }
        }
        step.more = self.deadlines.has_due(now.mono);
        if let Some(share) = step.protected {
            self.log_grace(GraceReason::MassExpiry { share });
        }
        if !evicted.is_empty() {
            step.evicted = self.remove_many(&evicted, now);
        }
        step
    }

    /// Ends the ejections, their interval over, of records another
    /// controller owns: their heartbeats go to their owner, so here the
    /// owner still publishing them live is the evidence a heartbeat gives.
    fn end_remote_ejections(&mut self, now: Now) {
        let over: Vec<Rc<str>> = self
            .ejected
            .iter()
            .filter(|id| {
                self.workers.get(*id).is_some_and(|record| {
                    matches!(record.owner, Owner::Remote { .. })
                        && record
                            .tally
                            .ejected_until
                            .is_some_and(|until| until <= now.mono)
                })
            })
            .cloned()
            .collect();
        for id in over {
            if let Some(record) = self.workers.get_mut(&id) {
                record.tally.end_ejection();
                log::info!("worker {id}'s ejection is over and its owner still publishes it live: routing to it resumes");
            }
            self.ejected.remove(&id);
        }
    }

    /// Begins a grace period at `now` for `reason`: every worker silent since
    /// before it is suspect, not stale, until it ends. Returns its end.
    pub fn begin_grace(&mut self, now: Now, reason: GraceReason) -> Instant {
        let until = self.liveness.begin_grace(now.mono);
        self.log_grace(reason);
        until
    }

    /// One line for the operator: why the registry holds back, and how long.
    fn log_grace(&self, reason: GraceReason) {
        let grace = self.liveness.grace_period();
        match reason {
            GraceReason::Paused { unseen_for } => log::warn!(
                "the controller was not running for {:.1} s (no sweep since); workers get {:.1} s to heartbeat before any is judged stale, and are routed to as suspect meanwhile",
                unseen_for.as_secs_f64(),
                grace.as_secs_f64()
            ),
            GraceReason::MassExpiry { share } => log::warn!(
                "{:.0} % of the fleet would be stale at once, more than the {:.0} % protect threshold; holding back for {:.1} s: silent workers are routed to as suspect until they heartbeat or the grace period ends",
                share * 100.0,
                self.settings.protect_threshold * 100.0,
                grace.as_secs_f64()
            ),
        }
    }
}

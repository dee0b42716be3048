//! Who may call what, and how much: the controller's [`Protection`] in front
//! of the registry.
//!
//! | file | holds |
//! |---|---|
//! | [`policy`] | [`Policy`]: the access policy file, its patterns and decisions |
//! | [`limits`] | [`RateLimits`]: token buckets per identity and endpoint |
//! | [`slo`] | [`SloSpec`], [`SloBook`]: SLO files and the window's figures |
//! | [`tarpit`] | [`Tarpit`]: held refusals for callers that ignore `Retry-After` |
//! | [`metrics`] | the counters and gauges of all three |
//! | [`reload`] | the task that reloads the files on `SIGHUP` and on change, and evaluates SLOs |
//!
//! [`Protection`] holds the loaded state and answers the handlers; a file
//! that does not parse at start stops the controller, at a reload keeps the
//! last good state (one log line, and `crank_protection_reload_failures_total`).

pub mod limits;
pub mod metrics;
pub mod policy;
pub mod reload;
pub mod slo;
pub mod tarpit;

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crank_net::error::ApiError;
use crank_net::identity::PeerIdentity;
use crank_proto::domain::Priority;

use limits::{retry_after_seconds, Endpoint, EndpointRates, RateLimits};
use metrics::ProtectionMetrics;
use policy::{Decision, Mode, Policy};
use slo::{SloBook, SloSpec, SloState};
use tarpit::Tarpit;

/// How long a shed caller is asked to wait: SLOs are re-evaluated every
/// second, but a breach lasts longer than that.
pub const SHED_RETRY_AFTER_S: u64 = 5;
/// Denials logged per second at most; the rest are counted only.
const AUDIT_LINES_PER_SECOND: u32 = 10;

/// What the controller was started with.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProtectionSettings {
    pub policy_file: Option<PathBuf>,
    pub slo_dir: Option<PathBuf>,
    pub rates: EndpointRates,
    pub burst: Option<NonZeroU32>,
    pub slo_window: Duration,
}

/// See the [module](self) docs.
pub struct Protection {
    settings: ProtectionSettings,
    policy: RwLock<Arc<Policy>>,
    limits: RwLock<Arc<RateLimits>>,
    tarpit: Tarpit,
    book: Mutex<SloBook>,
    states: RwLock<Arc<HashMap<String, SloState>>>,
    pub metrics: ProtectionMetrics,
    audit: Mutex<(Instant, u32)>,
}

fn read<T: ?Sized>(lock: &RwLock<Arc<T>>) -> Arc<T> {
    lock.read().unwrap_or_else(|e| e.into_inner()).clone()
}

fn write<T: ?Sized>(lock: &RwLock<Arc<T>>, value: Arc<T>) {
    *lock.write().unwrap_or_else(|e| e.into_inner()) = value;
}

impl Protection {
    /// No policy, no limits, no SLOs: today's behaviour.
    pub fn none() -> Self {
        Protection::with(ProtectionSettings::default(), Policy::off(), Vec::new())
    }

    /// Loads the files `settings` name; an error names the file, the line and
    /// what is wrong.
    pub fn load(settings: ProtectionSettings) -> Result<Self, String> {
        let (policy, specs) = read_files(&settings)?;
        Ok(Protection::with(settings, policy, specs))
    }

    fn with(settings: ProtectionSettings, policy: Policy, specs: Vec<SloSpec>) -> Self {
        let limits = limits_of(&settings, &policy);
        let metrics = ProtectionMetrics::new();
        metrics.loaded(policy.mode);
        let window = settings.slo_window;
        Protection {
            settings,
            policy: RwLock::new(Arc::new(policy)),
            limits: RwLock::new(Arc::new(limits)),
            tarpit: Tarpit::default(),
            book: Mutex::new(SloBook::new(specs, window)),
            states: RwLock::new(Arc::new(HashMap::new())),
            metrics,
            audit: Mutex::new((Instant::now(), 0)),
        }
    }

    /// Reads the files again; on an error the last good state stays.
    pub fn reload(&self) {
        match read_files(&self.settings) {
            Ok((policy, specs)) => {
                let rules = policy.rules();
                let mode = policy.mode;
                write(&self.limits, Arc::new(limits_of(&self.settings, &policy)));
                self.tarpit.clear();
                write(&self.policy, Arc::new(policy));
                let count = specs.len();
                self.book
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .replace_specs(specs);
                self.metrics.loaded(mode);
                log::info!(
                    "reloaded the policy ({} mode, {rules} rules) and {count} SLOs",
                    mode.as_str()
                );
            }
            Err(problem) => {
                self.metrics.reload_failed();
                log::error!("{problem}; the last good policy and SLOs stay in force");
            }
        }
    }

    /// The policy's word on `caller` routing to `key`: counted, a denial
    /// logged (at most ten a second), refused only when enforcing.
    pub fn authorize(&self, caller: &PeerIdentity, key: &str) -> Result<(), ApiError> {
        let policy = read(&self.policy);
        if policy.mode == Mode::Off {
            return Ok(());
        }
        let decision = policy.decide(caller, key);
        self.metrics.decision(&decision, policy.mode);
        if decision != Decision::Denied {
            return Ok(());
        }
        let detail =
            format!("no rule of the access policy allows {caller} to use {key} (default deny)");
        if self.audit_line() {
            let outcome = match policy.mode {
                Mode::Enforce => "refused",
                _ => "allowed (shadow mode)",
            };
            log::warn!("policy: {detail}; {outcome}");
        }
        match policy.mode {
            Mode::Enforce => Err(ApiError::PolicyDenied(detail)),
            _ => Ok(()),
        }
    }

    /// Whether `caller` is shown `key` in `/capabilities` and `/watch`:
    /// everything unless enforcing.
    pub fn may_see(&self, caller: &PeerIdentity, key: &str) -> bool {
        let policy = read(&self.policy);
        policy.mode != Mode::Enforce || policy.decide(caller, key) != Decision::Denied
    }

    /// Whether the policy hides anything from callers now.
    pub fn filters(&self) -> bool {
        read(&self.policy).mode == Mode::Enforce
    }

    /// A token of `caller`'s bucket for `endpoint`, or `429`: at once, or
    /// after [`tarpit::HOLD`] when `caller` has had more refusals than
    /// [`tarpit::FREE_REFUSALS`] within the wait the first of them named.
    pub async fn admit(&self, caller: &PeerIdentity, endpoint: Endpoint) -> Result<(), ApiError> {
        let checked = read(&self.limits).check(caller, endpoint);
        let Err(wait) = checked else {
            return Ok(());
        };
        let retry_after_s = retry_after_seconds(wait);
        let hold = self.tarpit.refuse(
            caller,
            endpoint,
            Instant::now(),
            Duration::from_secs(retry_after_s),
        );
        self.metrics.limited(caller.role, endpoint, !hold.is_zero());
        if !hold.is_zero() {
            tokio::time::sleep(hold).await;
        }
        Err(ApiError::RateLimited {
            detail: format!(
                "{caller} is over its rate for {}; retry after {retry_after_s} s",
                endpoint.as_str(),
            ),
            retry_after_s,
        })
    }

    /// A route of `key` at `priority`: refused `503 slo_violation` when low
    /// and the capability breaches its SLO.
    pub fn shed(&self, key: &str, priority: Priority) -> Result<(), ApiError> {
        if priority != Priority::Low {
            return Ok(());
        }
        let states = read(&self.states);
        let Some(breach) = states.get(key).and_then(|s| s.breach.as_ref()) else {
            return Ok(());
        };
        self.metrics.shed(key, priority);
        Err(ApiError::SloViolation {
            detail: format!(
                "{key} breaches its SLO ({breach}): low-priority routes are shed until it recovers"
            ),
            retry_after_s: SHED_RETRY_AFTER_S,
        })
    }

    /// A caller's report of a call of `capability`, accepted by the registry.
    pub fn record_outcome(&self, capability: &str, latency: Option<Duration>, success: bool) {
        self.book.lock().unwrap_or_else(|e| e.into_inner()).record(
            capability,
            latency,
            success,
            Instant::now(),
        );
    }

    /// Re-evaluates every SLO over its window and forgets idle buckets: once
    /// a second, from [`reload`].
    pub fn tick(&self) {
        let states = self
            .book
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .evaluate(Instant::now());
        self.metrics.slo_states(&states);
        let by_key = states
            .into_iter()
            .map(|state| (state.spec.capability.clone(), state))
            .collect();
        write(&self.states, Arc::new(by_key));
        read(&self.limits).forget_idle();
        self.tarpit.forget_ended(Instant::now());
    }

    /// Every SLO's state at the last tick, for `GET /slos` and the dashboard.
    pub fn slo_states(&self) -> Vec<SloState> {
        let mut states: Vec<SloState> = read(&self.states).values().cloned().collect();
        states.sort_by(|a, b| a.spec.capability.cmp(&b.spec.capability));
        states
    }

    /// The policy's mode in force.
    pub fn mode(&self) -> Mode {
        read(&self.policy).mode
    }

    /// SLOs loaded.
    pub fn slo_count(&self) -> usize {
        self.book
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .specs()
            .len()
    }

    pub fn settings(&self) -> &ProtectionSettings {
        &self.settings
    }

    fn audit_line(&self) -> bool {
        let mut audit = self.audit.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if now.saturating_duration_since(audit.0) >= Duration::from_secs(1) {
            *audit = (now, 0);
        }
        audit.1 += 1;
        audit.1 <= AUDIT_LINES_PER_SECOND
    }
}

fn read_files(settings: &ProtectionSettings) -> Result<(Policy, Vec<SloSpec>), String> {
    let policy = match &settings.policy_file {
        Some(path) => Policy::load(path)?,
        None => Policy::off(),
    };
    let specs = match &settings.slo_dir {
        Some(dir) => SloSpec::load_dir(dir)?,
        None => Vec::new(),
    };
    Ok((policy, specs))
}

fn limits_of(settings: &ProtectionSettings, policy: &Policy) -> RateLimits {
    let overrides: Vec<_> = policy
        .limits
        .iter()
        .map(|limit| {
            // What an entry leaves unset stays at the controller's rate.
            let rates = EndpointRates {
                route: limit.rates.route.or(settings.rates.route),
                register: limit.rates.register.or(settings.rates.register),
                report: limit.rates.report.or(settings.rates.report),
            };
            (limit.identity.clone(), rates)
        })
        .collect();
    RateLimits::new(&settings.rates, &overrides, settings.burst)
}

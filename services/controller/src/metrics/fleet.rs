//! The registry's gauges, as they were when a scrape asked
//! ([`FleetGauges`]): encoded by [`FleetCollector`] into that scrape only.

use crank_registry::FleetGauges;

use crate::cluster::{StoreHealth, StoreState};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// One scrape's registry gauges, the watchers of the stream then, and the
/// store's state.
#[derive(Debug)]
pub struct FleetCollector {
    pub gauges: FleetGauges,
    /// `None`: this controller serves no watch stream.
    pub watchers: Option<usize>,
    /// `None`: this controller was started without one (tests' apps).
    pub store: Option<StoreHealth>,
}

fn gauge<N>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: N,
) -> Result<(), std::fmt::Error>
where
    ConstGauge<N>: EncodeMetric,
{
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

impl Collector for FleetCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let g = &self.gauges;
        let workers = ConstGauge::new(0i64);
        let mut by_state = encoder.encode_descriptor(
            "crank_workers",
            "Registered workers by state: healthy, suspect (silent, shielded by a grace period, still routed to), stale (marked by the sweeper)",
            None,
            workers.metric_type(),
        )?;
        for (state, count) in [
            ("healthy", g.healthy),
            ("suspect", g.suspect),
            ("stale", g.stale),
        ] {
            ConstGauge::new(count as i64).encode(by_state.encode_family(&[("state", state)])?)?;
        }
        gauge(
            &mut encoder,
            "crank_workers_ejected",
            "Workers ejected from routing now for failing their callers (POST /report), whatever their state",
            g.ejected as i64,
        )?;
        gauge(
            &mut encoder,
            "crank_capabilities",
            "Distinct capabilities (verb:name) some registered worker serves",
            g.capabilities.len() as i64,
        )?;
        let mut providers = encoder.encode_descriptor(
            "crank_capability_workers",
            "Registered workers serving each capability, whatever their state",
            None,
            workers.metric_type(),
        )?;
        for (capability, count) in &g.capabilities {
            ConstGauge::new(*count as i64)
                .encode(providers.encode_family(&[("capability", capability.as_str())])?)?;
        }
        let sweeps = ConstCounter::new(g.sweeps);
        sweeps.encode(encoder.encode_descriptor(
            "crank_sweeps",
            "Complete sweeps of the registry",
            None,
            sweeps.metric_type(),
        )?)?;
        gauge(
            &mut encoder,
            "crank_sweep_step_longest_seconds",
            "The longest single sweep step so far: the longest the registry held back other messages to sweep",
            g.longest_sweep_step.as_secs_f64(),
        )?;
        gauge(
            &mut encoder,
            "crank_scrape_registry_hold_seconds",
            "How long this scrape held the registry to read its gauges",
            g.held_for.as_secs_f64(),
        )?;
        if let Some(watchers) = self.watchers {
            gauge(
                &mut encoder,
                "crank_watchers",
                "Open GET /watch streams",
                watchers as i64,
            )?;
        }
        if let Some(store) = &self.store {
            let now = store.get();
            let mut states = encoder.encode_descriptor(
                "crank_store_state",
                "The registry's store: memory (embedded, not kept), file (embedded, durable), or etcd's ok or unreachable (1 for the current one)",
                None,
                ConstGauge::new(0i64).metric_type(),
            )?;
            for state in StoreState::ALL {
                ConstGauge::new(i64::from(state == now))
                    .encode(states.encode_family(&[("state", state.as_str())])?)?;
            }
            if let Some(file) = store.file() {
                use std::sync::atomic::Ordering::Relaxed;
                counter(&mut encoder, "crank_store_writes", "Appends of the durable store's log (one per group of changes, or per change with --fsync always)", file.writes.load(Relaxed))?;
                counter(
                    &mut encoder,
                    "crank_store_fsyncs",
                    "fsyncs of the durable store's log",
                    file.fsyncs.load(Relaxed),
                )?;
                counter(&mut encoder, "crank_store_write_errors", "Writes of the durable store that failed (a full disk, an I/O error); the controller serves on from memory", file.write_errors.load(Relaxed))?;
                gauge(
                    &mut encoder,
                    "crank_store_bytes",
                    "Bytes of the durable store's snapshot and log on disk",
                    file.bytes_on_disk.load(Relaxed) as i64,
                )?;
                gauge(
                    &mut encoder,
                    "crank_store_pending_writes",
                    "Changes handed to the durable store and not yet written",
                    file.pending.load(Relaxed) as i64,
                )?;
                gauge(
                    &mut encoder,
                    "crank_store_last_write_timestamp_seconds",
                    "When the durable store last wrote (Unix time; 0 before any write)",
                    file.last_write_ms.load(Relaxed) as f64 / 1000.0,
                )?;
            }
            if now != StoreState::Memory && now != StoreState::File {
                gauge(
                    &mut encoder,
                    "crank_store_watch_revision",
                    "The etcd revision up to which this controller's watch has handed changes to its replica",
                    store.applied_revision(),
                )?;
                gauge(
                    &mut encoder,
                    "crank_store_watch_lag_revisions",
                    "Revisions etcd had, when it last answered the watch, that the watch has not handed over yet",
                    store.watch_lag(),
                )?;
                gauge(
                    &mut encoder,
                    "crank_store_pending_writes",
                    "Changes of this controller's workers waiting to be written to etcd (batched; they pile up while etcd is unreachable)",
                    store.waiting_writes() as i64,
                )?;
            }
        }
        Ok(())
    }
}

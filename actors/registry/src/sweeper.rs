//! [`StalenessSweeper`] is the registry's clock: on every tick it asks the
//! [`RegistryActor`] to mark workers without a recent heartbeat stale and to evict
//! the ones stale for too long. Keeping the timer out of the registry keeps the
//! registry a pure state machine that tests can drive with explicit `Sweep`s.

use crank_supervision as supervision;
use std::time::Duration;

use actix::prelude::*;

use crate::{RegistryActor, RegistrySettings, Sweep};

/// Default time between sweeps. Staleness itself is exact (the registry checks
/// `stale_after` on every read); the sweep only makes it visible in the log and
/// drives eviction, so a few seconds of lag is harmless.
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Ticks every `interval` and sends the registry a `Sweep`.
pub struct StalenessSweeper {
    registry: Addr<RegistryActor>,
    interval: Duration,
}

impl StalenessSweeper {
    pub fn new(registry: Addr<RegistryActor>, interval: Duration) -> Self {
        StalenessSweeper { registry, interval }
    }
}

impl Actor for StalenessSweeper {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(self.interval, |sweeper, _| {
            let _handling = supervision::handling("staleness_sweeper", "tick");
            sweeper.registry.do_send(Sweep);
        });
    }
}

impl RegistryActor {
    /// Starts a registry and its [`StalenessSweeper`] on the current thread's
    /// actix system.
    pub fn start_with_sweeper(
        settings: RegistrySettings,
        sweep_interval: Duration,
    ) -> Addr<RegistryActor> {
        RegistryActor::new(settings).start_swept(sweep_interval)
    }

    /// Starts this registry and a [`StalenessSweeper`] ticking every
    /// `sweep_interval` on the current thread's actix system.
    pub fn start_swept(self, sweep_interval: Duration) -> Addr<RegistryActor> {
        let registry = self.expecting_sweeps_every(sweep_interval).start();
        StalenessSweeper::new(registry.clone(), sweep_interval).start();
        registry
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ListWorkers, Register, RegistrySettings};
    use crank_proto::domain::Registration;
    use crank_proto::wire::{Capability, RegisterRequest};

    #[actix::test]
    async fn the_sweeper_evicts_without_anyone_asking() {
        tokio::time::pause();
        let registry = RegistryActor::new(RegistrySettings {
            stale_after: Duration::from_secs(2),
            evict_after: Some(Duration::from_secs(3)),
            ..RegistrySettings::default()
        })
        .start();
        StalenessSweeper::new(registry.clone(), Duration::from_millis(500)).start();
        registry
            .send(Register {
                registration: Registration::try_from(RegisterRequest {
                    worker_id: "w1".into(),
                    worker_url: "https://w1:1".into(),
                    capabilities: vec![Capability::new("invoke", "x", "1.0.0")],
                    instance: None,
                    health_check: None,
                })
                .unwrap(),
                registered_by: "admin/test".into(),
            })
            .await
            .unwrap();
        // Stale from the first sweep at or after 2 s, evicted by the first sweep at
        // least 3 s after that: between 5.0 and 5.5 s.
        tokio::time::sleep(Duration::from_millis(4_900)).await;
        assert_eq!(registry.send(ListWorkers).await.unwrap().len(), 1);
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(registry.send(ListWorkers).await.unwrap().is_empty());
    }
}

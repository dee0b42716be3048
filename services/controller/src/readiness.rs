//! What `GET /health` and `GET /ready` of the controller ask: whether its
//! registry answers (liveness), and whether it should be sent traffic
//! (readiness: the registry answers, the store is loaded, it is not shutting
//! down). See docs/reliability.md.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::MailboxError;
use crank_registry::{Ping, RegistryActor};

/// How long a probe waits for the registry's answer. A registry that is
/// merely busy answers within microseconds (its mailbox holds at most 4,096
/// messages of microseconds each); one that does not answer in a second is
/// stuck or gone.
pub const PROBE_DEADLINE: Duration = Duration::from_secs(1);

/// Set once the process begins to shut down: readiness fails from then on,
/// so load balancers stop sending it traffic while it drains.
#[derive(Debug, Clone, Default)]
pub struct Lifecycle(Arc<AtomicBool>);

impl Lifecycle {
    pub fn begin_shutdown(&self) {
        self.0.store(true, Ordering::Release);
    }

    pub fn is_shutting_down(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Whether the registry answers a [`Ping`] within [`PROBE_DEADLINE`]; if not,
/// why, for the probe's body.
pub async fn registry_answers(registry: &actix::Addr<RegistryActor>) -> Result<(), String> {
    match registry.send(Ping).timeout(PROBE_DEADLINE).await {
        Ok(()) => Ok(()),
        Err(MailboxError::Timeout) => Err(format!(
            "registry: did not answer within {} ms",
            PROBE_DEADLINE.as_millis()
        )),
        Err(MailboxError::Closed) => Err("registry: its actor is gone (mailbox closed)".into()),
    }
}

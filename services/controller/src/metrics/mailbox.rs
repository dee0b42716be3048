//! [`RegistryMailbox`]: the registry's address, counting the messages sent to
//! it and not yet answered. actix's `Addr` tells no queue length; this count,
//! kept by every handler around its `send`, is the registry's mailbox depth
//! plus the message it is handling (`crank_registry_mailbox_depth`).

use actix::dev::ToEnvelope;
use actix::prelude::*;
use crank_registry::RegistryActor;
use prometheus_client::metrics::gauge::Gauge;

/// See the [module](self) docs.
#[derive(Clone)]
pub struct RegistryMailbox {
    address: Addr<RegistryActor>,
    in_flight: Gauge,
}

/// One message in flight: uncounted when dropped, so a request cancelled while
/// it waits (its client went away) does not leave the count high.
struct InFlight<'a>(&'a Gauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl RegistryMailbox {
    pub fn new(address: Addr<RegistryActor>, in_flight: Gauge) -> Self {
        RegistryMailbox { address, in_flight }
    }

    /// Sends `message` and waits for the answer, counted in flight meanwhile.
    pub async fn send<M>(&self, message: M) -> Result<M::Result, MailboxError>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        RegistryActor: Handler<M>,
        <RegistryActor as Actor>::Context: ToEnvelope<RegistryActor, M>,
    {
        self.in_flight.inc();
        let _in_flight = InFlight(&self.in_flight);
        self.address.send(message).await
    }

    /// Messages sent and not yet answered.
    pub fn in_flight(&self) -> i64 {
        self.in_flight.get()
    }

    pub fn address(&self) -> &Addr<RegistryActor> {
        &self.address
    }
}

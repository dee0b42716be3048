//! The controller's metrics: what it counts as it works, the registry's
//! gauges read at each scrape, and its mailbox depth.
//!
//! | file | answers |
//! |---|---|
//! | [`controller`] | [`ControllerMetrics`]: what the controller counts, and its `GET /metrics` |
//! | [`fleet`] | the registry's gauges ([`FleetGauges`](crank_registry::FleetGauges)), read at each scrape |
//! | [`mailbox`] | [`RegistryMailbox`]: messages sent to the registry and not yet answered |

pub mod controller;
pub mod fleet;
pub mod mailbox;

pub use controller::ControllerMetrics;
pub use mailbox::RegistryMailbox;

//! Validated domain values: what the wire's untrusted requests become once
//! parsed, so nothing past the HTTP edge checks them again.
//!
//! | file | parses |
//! |---|---|
//! | [`field`] | [`FieldError`] (which field, what is wrong) and the text rules |
//! | [`id`] | [`WorkerId`], the one home of the worker id rule |
//! | [`registration`] | [`Registration`] from a [`crate::wire::RegisterRequest`] |
//! | [`route`] | [`RouteQuery`] (with its [`Strategy`] and [`Constraints`]) from a [`crate::wire::RouteRequest`] |
//! | [`load`] | [`WorkerLoad`] from a heartbeat's [`crate::wire::Load`] |
//! | [`report`] | [`CallReport`] from a [`crate::wire::ReportRequest`] |

pub mod field;
pub mod id;
pub mod load;
pub mod registration;
pub mod report;
pub mod route;

pub use field::FieldError;
pub use id::{InstanceId, WorkerId};
pub use load::{MeasuredCapability, ObservedLoad, WorkerLoad};
pub use registration::{CapabilityKey, Registration, ServedCapability, WorkerUrl};
pub use report::CallReport;
pub use route::{Constraints, Priority, Requirement, RouteQuery, Strategy};

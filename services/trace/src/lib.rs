//! W3C trace context for crank's HTTP hops (the original's ADR-0024).
//!
//! A call is followed from the caller through the controller's route
//! decision to the worker that answers it:
//!
//! - [`propagation`]: `traceparent`/`tracestate` read from a request's
//!   headers and written on an outgoing one.
//! - [`spans`]: spans started under a parent, and whether anything records
//!   them; without an exporter a span is the parent's context passed on, at
//!   the cost of a header lookup.
//! - [`middleware`]: [`Traced`](middleware::Traced), a server span around each
//!   request of the resources it wraps, current while the handler runs.
//! - [`logging`]: `env_logger` lines that carry the trace id of the request
//!   they were written for.
//! - [`export`]: OTLP over HTTP to `URL/v1/traces` (feature `otlp`), set by
//!   [`OTLP_ENDPOINT`](settings::OTLP_ENDPOINT).

pub mod export;
pub mod logging;
pub mod middleware;
pub mod propagation;
pub mod settings;
pub mod spans;

pub use opentelemetry::context::FutureExt;
pub use opentelemetry::trace::{SpanKind, TraceContextExt};
pub use opentelemetry::{Array, Context, KeyValue, StringValue, Value};

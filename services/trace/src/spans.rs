//! Spans under a parent, recorded only when an exporter is installed
//! ([`crate::export`]). Without one, [`start`] hands the parent's context on,
//! so a trace that enters a process still leaves it (and its log lines carry
//! the trace id) at the cost of a clone.

use std::borrow::Cow;
use std::sync::OnceLock;

use opentelemetry::trace::{SpanBuilder, SpanKind, Status, TraceContextExt, TraceId};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::SdkTracer;

static TRACER: OnceLock<SdkTracer> = OnceLock::new();

/// Whether this process records spans (an exporter is installed).
pub fn exporting() -> bool {
    TRACER.get().is_some()
}

/// Makes `tracer` the one [`start`] records with; `false` if one already is.
#[cfg_attr(not(feature = "otlp"), allow(dead_code))]
pub(crate) fn install(tracer: SdkTracer) -> bool {
    TRACER.set(tracer).is_ok()
}

/// Starts a span named `name` of `kind` under `parent` with `attributes`,
/// and returns the context in which it is the current span. Without an
/// exporter, returns `parent` itself: nothing is built.
pub fn start(
    name: impl Into<Cow<'static, str>>,
    kind: SpanKind,
    parent: &Context,
    attributes: Vec<KeyValue>,
) -> Context {
    match TRACER.get() {
        Some(tracer) => {
            let span = SpanBuilder::from_name(name)
                .with_kind(kind)
                .with_attributes(attributes)
                .start_with_context(tracer, parent);
            parent.with_span(span)
        }
        None => parent.clone(),
    }
}

/// Whether the current span is recorded: attributes worth computing only
/// then are computed only then.
pub fn recording() -> bool {
    Context::map_current(|context| context.span().is_recording())
}

/// Sets `attributes` on the current span, if it records.
pub fn annotate(attributes: impl FnOnce() -> Vec<KeyValue>) {
    Context::map_current(|context| {
        let span = context.span();
        if span.is_recording() {
            span.set_attributes(attributes());
        }
    });
}

/// Ends the span of `context` (when it records), marked failed with
/// `failure` if given.
pub fn finish(context: &Context, failure: Option<String>) {
    let span = context.span();
    if span.is_recording() {
        if let Some(description) = failure {
            span.set_status(Status::error(description));
        }
        span.end();
    }
}

/// The trace the current context belongs to, if any.
pub fn current_trace_id() -> Option<TraceId> {
    Context::map_current(|context| {
        let span = context.span();
        let span_context = span.span_context();
        span_context.is_valid().then(|| span_context.trace_id())
    })
}

//! `traceparent` and `tracestate` (W3C Trace Context) in and out of HTTP
//! headers, by the OpenTelemetry SDK's [`TraceContextPropagator`].

use std::sync::LazyLock;

use actix_web::http::header::HeaderMap;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry::Context;
use opentelemetry_sdk::propagation::TraceContextPropagator;

/// The request header that carries the trace and the caller's span.
pub const TRACEPARENT: &str = "traceparent";
/// The request header with vendors' trace state, passed on as received.
pub const TRACESTATE: &str = "tracestate";

static PROPAGATOR: LazyLock<TraceContextPropagator> = LazyLock::new(TraceContextPropagator::new);

struct Incoming<'h>(&'h HeaderMap);

impl Extractor for Incoming<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|name| name.as_str()).collect()
    }
}

/// The remote span a request names in its `traceparent`, as a parent
/// context; `None` without the header, or when it is malformed (a bad
/// header starts no trace and refuses nothing, as the W3C spec asks).
pub fn extract(headers: &HeaderMap) -> Option<Context> {
    headers.get(TRACEPARENT)?;
    let context = PROPAGATOR.extract(&Incoming(headers));
    context.span().span_context().is_valid().then_some(context)
}

/// The headers that carry `context`'s span to the next hop: none when it
/// has no valid span.
pub fn headers_of(context: &Context) -> Vec<(&'static str, String)> {
    let mut outgoing = Outgoing(Vec::new());
    if context.span().span_context().is_valid() {
        PROPAGATOR.inject_context(context, &mut outgoing);
    }
    outgoing.0
}

/// [`headers_of`] the current context: what a client sends from inside a
/// traced call.
pub fn current_headers() -> Vec<(&'static str, String)> {
    Context::map_current(headers_of)
}

struct Outgoing(Vec<(&'static str, String)>);

impl Injector for Outgoing {
    fn set(&mut self, key: &str, value: String) {
        let name = match key {
            TRACEPARENT => TRACEPARENT,
            TRACESTATE => TRACESTATE,
            _ => return,
        };
        self.0.push((name, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                HeaderName::from_static(name),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn a_traceparent_is_read_and_written_back_unchanged() {
        let incoming = headers(&[(TRACEPARENT, PARENT), (TRACESTATE, "vendor=1")]);
        let context = extract(&incoming).expect("a valid traceparent");
        let span = context.span().span_context().clone();
        assert_eq!(
            span.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert!(span.is_remote() && span.is_sampled());
        let outgoing = headers_of(&context);
        assert!(outgoing.contains(&(TRACEPARENT, PARENT.to_owned())));
        assert!(outgoing.contains(&(TRACESTATE, "vendor=1".to_owned())));
    }

    #[test]
    fn no_or_malformed_traceparent_starts_nothing() {
        assert!(extract(&HeaderMap::new()).is_none());
        for bad in [
            "nonsense",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert!(extract(&headers(&[(TRACEPARENT, bad)])).is_none(), "{bad}");
        }
        assert!(headers_of(&Context::new()).is_empty());
    }
}

//! [`Traced`]: a server span around each request of the resources it wraps.

use std::future::{ready, Ready};
use std::rc::Rc;

use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::Error;
use futures_util::future::{Either, LocalBoxFuture};
use opentelemetry::context::FutureExt;
use opentelemetry::trace::{SpanKind, TraceContextExt};
use opentelemetry::{Context, KeyValue};

use crate::{propagation, spans};

/// Middleware: a request that carries a `traceparent`, or any request while
/// this process exports spans, runs in a server span named `METHOD /pattern`
/// (the caller's span its parent), current for the handler and ended with the
/// answer's status. Any other request passes straight through.
#[derive(Debug, Clone, Copy, Default)]
pub struct Traced;

impl<S, B> Transform<S, ServiceRequest> for Traced
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Transform = TracedService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(TracedService {
            service: Rc::new(service),
        }))
    }
}

/// [`Traced`] around one service.
pub struct TracedService<S> {
    service: Rc<S>,
}

type Answer<B> = Result<ServiceResponse<B>, Error>;

impl<S, B> Service<ServiceRequest> for TracedService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Future = Either<S::Future, LocalBoxFuture<'static, Answer<B>>>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let parent = propagation::extract(request.headers());
        if parent.is_none() && !spans::exporting() {
            return Either::Left(self.service.call(request));
        }
        let parent = parent.unwrap_or_default();
        let context = if spans::exporting() {
            let method = request.method().as_str().to_owned();
            let path = request.path().to_owned();
            let pattern = request.match_pattern().unwrap_or_else(|| path.clone());
            spans::start(
                format!("{method} {pattern}"),
                SpanKind::Server,
                &parent,
                vec![
                    KeyValue::new("http.request.method", method),
                    KeyValue::new("url.path", path),
                ],
            )
        } else {
            parent
        };
        let answer = {
            // Current while the service builds its future, and at each poll.
            let _current = context.clone().attach();
            self.service.call(request).with_context(context.clone())
        };
        Either::Right(Box::pin(async move {
            let answer = answer.await;
            finish(&context, &answer);
            answer
        }))
    }
}

fn finish<B>(context: &Context, answer: &Answer<B>) {
    let span = context.span();
    if !span.is_recording() {
        return;
    }
    let failure = match answer {
        Ok(response) => {
            let status = response.status();
            span.set_attribute(KeyValue::new(
                "http.response.status_code",
                i64::from(status.as_u16()),
            ));
            status
                .is_server_error()
                .then(|| format!("answered {status}"))
        }
        Err(error) => Some(error.to_string()),
    };
    spans::finish(context, failure);
}

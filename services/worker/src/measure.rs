//! [`Measure`]: the middleware around each capability's resources that
//! feeds its [`CapabilityMeter`], so no handler measures itself, and that
//! keeps the capability within its `max_concurrency`: a request past it is
//! answered 503 `at_capacity` at once, without reaching the handler.
//!
//! A request is in flight from the moment it reaches the resource until the
//! last byte of its answer is sent or the answer is dropped ([`MeasuredBody`]),
//! so a stream counts for as long as it streams. Its latency is the time to the
//! answer's head, which for a stream is its first byte. A 5xx answer, or an
//! error in place of one, counts as a failure; a 4xx is the caller's. A
//! refusal at capacity is neither: it is not counted in the window at all.
//!
//! Every answer that reaches the handler carries the capability's load in a
//! `crank-load` header ([`AnswerLoad`](crank_proto::wire::AnswerLoad)): the
//! calls in flight besides it, the capability's limit, and the moving
//! average of its service time, so a caller learns the worker's load with
//! every call instead of every heartbeat.
//!
//! A worker given a service time (`--service-time`) holds every answer that
//! long before sending it, in flight all along: a slower worker, played by
//! any worker, for tests and benchmarks of routing.

use std::future::{ready, Ready};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix_web::body::{BodySize, EitherBody, MessageBody};
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::web::Bytes;
use actix_web::{Error, ResponseError};
use crank_proto::wire::CRANK_LOAD_HEADER;
use futures_util::future::LocalBoxFuture;

use super::meter::{CapabilityMeter, InFlight};
use crank_net::error::ApiError;

/// Measures the requests of one capability into its meter, within its limit,
/// each answer held `service_time` (usually zero).
#[derive(Clone)]
pub struct Measure {
    pub meter: Arc<CapabilityMeter>,
    pub service_time: Duration,
}

impl<S, B> Transform<S, ServiceRequest> for Measure
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<MeasuredBody<B>>>;
    type Error = Error;
    type Transform = MeasureService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(MeasureService {
            service,
            measure: self.clone(),
        }))
    }
}

/// [`Measure`] around one resource's service.
pub struct MeasureService<S> {
    service: S,
    measure: Measure,
}

impl<S, B> Service<ServiceRequest> for MeasureService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<MeasuredBody<B>>>;
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Error>>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let meter = &self.measure.meter;
        let Some(in_flight) = meter.enter() else {
            let refusal = ApiError::AtCapacity {
                capability: meter.capability().to_owned(),
                capacity: meter.limit(),
            };
            let answer = request.into_response(refusal.error_response());
            return Box::pin(ready(Ok(answer.map_into_right_body())));
        };
        let started = Instant::now();
        let service_time = self.measure.service_time;
        let answered = self.service.call(request);
        Box::pin(async move {
            let answer = answered.await;
            if !service_time.is_zero() {
                actix_rt::time::sleep(service_time).await;
            }
            let failed = answer
                .as_ref()
                .map_or(true, |answer| answer.status().is_server_error());
            in_flight.meter().record(started.elapsed(), failed);
            let load = in_flight.meter().answer_load().to_string();
            answer.map(|mut answer| {
                if let Ok(value) = HeaderValue::from_str(&load) {
                    answer
                        .headers_mut()
                        .insert(HeaderName::from_static(CRANK_LOAD_HEADER), value);
                }
                answer
                    .map_body(|_, body| MeasuredBody { body, in_flight })
                    .map_into_left_body()
            })
        })
    }
}

pin_project_lite::pin_project! {
    /// An answer's body that keeps its request counted in flight until the
    /// body is sent or dropped.
    pub struct MeasuredBody<B> {
        #[pin]
        body: B,
        in_flight: InFlight,
    }
}

impl<B: MessageBody> MessageBody for MeasuredBody<B> {
    type Error = B::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        self.project().body.poll_next(cx)
    }
}

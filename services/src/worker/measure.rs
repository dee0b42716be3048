//! [`Measure`]: the middleware around each capability's resources that
//! feeds its [`CapabilityMeter`], so no handler measures itself.
//!
//! A request is in flight from the moment it reaches the resource until the
//! last byte of its answer is sent or the answer is dropped ([`MeasuredBody`]),
//! so a stream counts for as long as it streams. Its latency is the time to the
//! answer's head, which for a stream is its first byte. A 5xx answer, or an
//! error in place of one, counts as a failure; a 4xx is the caller's.

use std::future::{ready, Ready};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use actix_web::body::{BodySize, MessageBody};
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::web::Bytes;
use actix_web::Error;
use futures_util::future::LocalBoxFuture;

use super::meter::{CapabilityMeter, InFlight};

/// Measures the requests of one capability into its meter.
#[derive(Clone)]
pub struct Measure(pub Arc<CapabilityMeter>);

impl<S, B> Transform<S, ServiceRequest> for Measure
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<MeasuredBody<B>>;
    type Error = Error;
    type Transform = MeasureService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(MeasureService {
            service,
            meter: self.0.clone(),
        }))
    }
}

/// [`Measure`] around one resource's service.
pub struct MeasureService<S> {
    service: S,
    meter: Arc<CapabilityMeter>,
}

impl<S, B> Service<ServiceRequest> for MeasureService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<MeasuredBody<B>>;
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Error>>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let in_flight = self.meter.enter();
        let started = Instant::now();
        let answered = self.service.call(request);
        Box::pin(async move {
            let answer = answered.await;
            let failed = answer
                .as_ref()
                .map_or(true, |answer| answer.status().is_server_error());
            in_flight.meter().record(started.elapsed(), failed);
            answer.map(|answer| answer.map_body(|_, body| MeasuredBody { body, in_flight }))
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

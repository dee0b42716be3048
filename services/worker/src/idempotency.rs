//! [`Idempotency`]: the middleware around each capability's resource that
//! honours `Idempotency-Key`, keeping answers in the worker's [`Replays`].
//!
//! A request with the header is read whole, and fingerprinted (method, path,
//! query, body). A new key runs the handler and keeps its answer, unless it
//! is a 5xx, or a stream (`text/event-stream`), which is passed on as it
//! comes and not kept. A done key is answered from memory with
//! `X-Idempotent-Replay: true`. A key in flight is `409
//! idempotency_key_in_flight`, and the same key for another request is
//! `422 idempotency_key_reused`. A malformed key is `422` naming the header.
//! Requests without the header pass untouched.

use std::future::{ready, Ready};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{forward_ready, Payload, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{HeaderName, CONTENT_TYPE};
use actix_web::web::Bytes;
use actix_web::{Error, FromRequest, HttpResponse, ResponseError};
use futures_util::future::LocalBoxFuture;

use super::replays::{Kept, Lookup, Replays};
use crank_net::caller::Caller;
use crank_net::error::ApiError;
use crank_proto::domain::field::idempotency_key;

use crank_proto::wire::{IDEMPOTENCY_KEY_HEADER, IDEMPOTENT_REPLAY_HEADER};

/// See the [module](self) docs.
#[derive(Clone)]
pub struct Idempotency {
    pub replays: Arc<Mutex<Replays>>,
}

impl<S, B> Transform<S, ServiceRequest> for Idempotency
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B, BoxBody>>;
    type Error = Error;
    type Transform = IdempotencyService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(IdempotencyService {
            service: Arc::new(service),
            replays: self.replays.clone(),
        }))
    }
}

/// [`Idempotency`] around one resource's service.
pub struct IdempotencyService<S> {
    service: Arc<S>,
    replays: Arc<Mutex<Replays>>,
}

fn replayed(kept: Kept) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(kept.status)
        .unwrap_or(actix_web::http::StatusCode::OK);
    let mut response = HttpResponse::build(status);
    if let Some(content_type) = &kept.content_type {
        response.insert_header((CONTENT_TYPE, content_type.as_str()));
    }
    response.insert_header((HeaderName::from_static(IDEMPOTENT_REPLAY_HEADER), "true"));
    response.body(kept.body)
}

fn fingerprint(request: &ServiceRequest, body: &[u8]) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    request.method().as_str().hash(&mut hasher);
    request.path().hash(&mut hasher);
    request.query_string().hash(&mut hasher);
    body.hash(&mut hasher);
    hasher.finish()
}

impl<S, B> Service<ServiceRequest> for IdempotencyService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B, BoxBody>>;
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Error>>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let key = match request.headers().get(IDEMPOTENCY_KEY_HEADER) {
            None => {
                let answered = self.service.call(request);
                return Box::pin(async move { Ok(answered.await?.map_into_left_body()) });
            }
            // A header that is not even text is no key either: the same answer.
            Some(value) => value.to_str().unwrap_or("\u{0}").to_owned(),
        };
        let refuse = |request: ServiceRequest, error: ApiError| {
            let answer = request.into_response(error.error_response());
            Box::pin(ready(Ok(answer.map_into_right_body()))) as Self::Future
        };
        if let Err(problem) = idempotency_key("Idempotency-Key", &key) {
            return refuse(request, ApiError::InvalidField(problem));
        }
        let caller = match Caller::from_request(request.request(), &mut Payload::None).into_inner()
        {
            Ok(Caller(identity)) => identity.to_string(),
            Err(error) => return refuse(request, error),
        };
        let (service, replays) = (self.service.clone(), self.replays.clone());
        Box::pin(async move {
            let (http, mut payload) = request.into_parts();
            let body = Bytes::from_request(&http, &mut payload).await?;
            let request = ServiceRequest::from_parts(http, Payload::from(body.clone()));
            let print = fingerprint(&request, &body);
            let lookup = replays.lock().unwrap_or_else(|e| e.into_inner()).begin(
                &caller,
                &key,
                print,
                Instant::now(),
            );
            let refusal = match lookup {
                Lookup::Run => None,
                Lookup::Replay(kept) => {
                    return Ok(request.into_response(replayed(kept)).map_into_right_body())
                }
                Lookup::InFlight => Some(ApiError::IdempotencyInFlight(key.clone())),
                Lookup::Mismatch => Some(ApiError::IdempotencyReused(key.clone())),
            };
            if let Some(error) = refusal {
                return Ok(request
                    .into_response(error.error_response())
                    .map_into_right_body());
            }
            let finish = |kept: Option<Kept>| {
                replays.lock().unwrap_or_else(|e| e.into_inner()).finish(
                    &caller,
                    &key,
                    kept,
                    Instant::now(),
                );
            };
            let answer = match service.call(request).await {
                Ok(answer) => answer,
                Err(error) => {
                    finish(None);
                    return Err(error);
                }
            };
            let content_type = answer
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let streams = content_type
                .as_deref()
                .is_some_and(|t| t.starts_with("text/event-stream"));
            if answer.status().is_server_error() || streams {
                finish(None);
                return Ok(answer.map_into_left_body());
            }
            let (http, response) = answer.into_parts();
            let status = response.status();
            let headers = response.headers().clone();
            let body = match actix_web::body::to_bytes(response.into_body()).await {
                Ok(body) => body,
                Err(_) => {
                    finish(None);
                    let error = ApiError::Payload("the answer could not be read".into());
                    return Ok(
                        ServiceResponse::new(http, error.error_response()).map_into_right_body()
                    );
                }
            };
            finish(Some(Kept {
                status: status.as_u16(),
                content_type,
                body: body.clone(),
            }));
            #[cfg(feature = "fault-injection")]
            crate::fault::lose_answer(http.path()).await;
            let mut rebuilt = HttpResponse::with_body(status, body).map_into_boxed_body();
            for (name, value) in headers.iter() {
                rebuilt.headers_mut().insert(name.clone(), value.clone());
            }
            Ok(ServiceResponse::new(http, rebuilt).map_into_right_body())
        })
    }
}

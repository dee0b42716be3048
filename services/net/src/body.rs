//! `ApiJson<T>`: the JSON body extractor of crank's APIs. Unlike `web::Json` it
//! tells a syntax error (400) from a well-formed body with a wrong or missing
//! field (422, naming the field by its path, e.g. `capabilities[0].version`), and
//! answers every failure with crank's JSON error body.
//!
//! [`bound_body`] gives every request body of an mTLS server a deadline: a
//! request whose head arrived but whose body trickles, or never comes, would
//! otherwise hold its connection (and the memory behind it) forever.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::web::{Bytes, BytesMut};
use actix_web::{FromRequest, HttpRequest};
use crank_proto::domain::FieldError;
use futures_util::{Stream, StreamExt};
use serde::de::DeserializeOwned;

use crate::connections::ReadCutoff;
use crate::error::ApiError;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Most memory reserved for a body before its bytes arrive: a declared
/// `Content-Length` is a promise, not a reason to allocate 64 KiB for a client
/// that then sends ten bytes.
const INITIAL_BODY_CAPACITY: usize = 4 * 1024;

/// A request body that missed its deadline: the I/O error a [`DeadlineBody`]
/// ends with.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {limit:?} of its head; the connection is closed")]
pub struct BodyTimedOut {
    pub limit: Duration,
}

/// Gives the body of `req`, if it has one, until `limit` from now (when its
/// head has been read) to arrive: past that, reading it fails with
/// [`BodyTimedOut`] (answered 408 by [`ApiJson`]) and the connection is closed
/// after the answer. A body its handler left unread also closes the connection
/// once answered, rather than being drained for as long as the client drips it.
pub fn bound_body(req: &mut actix_http::Request, limit: Duration) {
    if matches!(req.payload(), actix_http::Payload::None) {
        return;
    }
    let cutoff = req.conn_data::<ReadCutoff>().cloned();
    let inner = req.take_payload();
    *req.payload() = actix_http::Payload::Stream {
        payload: Box::pin(DeadlineBody {
            inner,
            deadline: tokio::time::Instant::now() + limit,
            limit,
            sleep: None,
            finished: false,
            cutoff,
        }),
    };
}

/// A request body with a deadline; see [`bound_body`].
pub struct DeadlineBody {
    inner: actix_http::Payload,
    deadline: tokio::time::Instant,
    limit: Duration,
    /// Set the first time the body is not all there: most bodies arrive with
    /// their head and never need a timer.
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    finished: bool,
    cutoff: Option<ReadCutoff>,
}

impl DeadlineBody {
    fn cut(&self) {
        if let Some(cutoff) = &self.cutoff {
            cutoff.cut();
        }
    }
}

impl Stream for DeadlineBody {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.finished {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(None) => {
                this.finished = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(item)) => Poll::Ready(Some(item)),
            Poll::Pending => {
                let deadline = this.deadline;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                match sleep.as_mut().poll(cx) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(()) => {
                        this.finished = true;
                        this.cut();
                        Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            BodyTimedOut { limit: this.limit },
                        )))))
                    }
                }
            }
        }
    }
}

impl Drop for DeadlineBody {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        // Left unread: if the rest of it is already here, the connection is
        // fine; if not, stop reading it once the answer is written.
        let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
        loop {
            match Pin::new(&mut self.inner).poll_next(&mut cx) {
                Poll::Ready(Some(Ok(_))) => continue,
                Poll::Ready(None) => return,
                Poll::Ready(Some(Err(_))) | Poll::Pending => break,
            }
        }
        self.cut();
    }
}

/// A JSON request body of type `T`.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

/// Parses `bytes` as `T`: a syntax error is `MalformedJson`, a type or shape error
/// is `InvalidField` naming the path of the offending field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        // A body that is not JSON at all is a 400 even when its first value
        // already had a wrong field: check the syntax of the whole before blaming
        // a field.
        let whole_is_json = serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok();
        if inner.is_data() && whole_is_json {
            let problem = strip_position(&inner.to_string());
            ApiError::InvalidField(FieldError::new(field_name(&path, &problem), problem))
        } else {
            ApiError::MalformedJson(inner.to_string())
        }
    })?;
    deserializer
        .end()
        .map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    Ok(value)
}

/// The field a data error is about: its path, or for a missing field the path
/// of the field that is missing; `body` for the body as a whole.
fn field_name(path: &str, problem: &str) -> String {
    let missing = problem
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    match (path, missing) {
        (".", Some(name)) => name.to_owned(),
        (".", None) => "body".to_owned(),
        (path, Some(name)) => format!("{path}.{name}"),
        (path, None) => path.to_owned(),
    }
}

/// serde_json appends " at line 1 column 57" to data errors; the field path says
/// more than the position does.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

fn content_type_problem(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(CONTENT_TYPE)?;
    let text = value.to_str().unwrap_or("<not text>");
    let essence = text
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let is_json = essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"));
    (!is_json).then(|| text.to_owned())
}

impl<T: DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        // A missing Content-Type is accepted (`curl -d` without -H, old clients);
        // a present one must say JSON.
        let wrong_type = content_type_problem(req);
        let declared_length = req
            .headers()
            .get(actix_web::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            if let Some(content_type) = wrong_type {
                return Err(ApiError::UnsupportedMediaType(content_type));
            }
            let too_large = ApiError::PayloadTooLarge {
                limit: MAX_BODY_BYTES,
            };
            if declared_length.is_some_and(|n| n > MAX_BODY_BYTES) {
                return Err(too_large);
            }
            let mut body =
                BytesMut::with_capacity(declared_length.unwrap_or(0).min(INITIAL_BODY_CAPACITY));
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|error| match error {
                    PayloadError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
                        ApiError::RequestTimeout(io.to_string())
                    }
                    other => ApiError::Payload(other.to_string()),
                })?;
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    return Err(too_large);
                }
                body.extend_from_slice(&chunk);
            }
            parse_json(&body).map(ApiJson)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crank_proto::wire::RegisterRequest;

    fn field_error(body: &str) -> (String, String) {
        match parse_json::<RegisterRequest>(body.as_bytes()) {
            Err(ApiError::InvalidField(f)) => (f.field, f.problem),
            other => panic!("expected InvalidField, got {other:?}"),
        }
    }

    #[test]
    fn syntax_errors_are_malformed_json() {
        for body in ["{", "nope", "", "{\"worker_id\": }", "{} trailing", "\u{0}"] {
            assert!(
                matches!(
                    parse_json::<RegisterRequest>(body.as_bytes()),
                    Err(ApiError::MalformedJson(_))
                ),
                "{body:?}"
            );
        }
        assert!(matches!(
            parse_json::<RegisterRequest>(&[0xff, 0xfe, b'{']),
            Err(ApiError::MalformedJson(_))
        ));
    }

    #[test]
    fn wrong_types_and_missing_fields_name_the_field() {
        let (field, problem) =
            field_error(r#"{"worker_id": 5, "worker_url": "https://a", "capabilities": []}"#);
        assert_eq!(field, "worker_id");
        assert!(problem.contains("expected a string"), "{problem}");

        let (field, problem) = field_error(r#"{"worker_id": "w", "capabilities": []}"#);
        assert_eq!(field, "worker_url");
        assert!(problem.contains("missing field"), "{problem}");

        let (field, _) = field_error(
            r#"{"worker_id":"w","worker_url":"https://a","capabilities":[{"name":"x","verb":"invoke"}]}"#,
        );
        assert_eq!(field, "capabilities[0].version");

        let (field, _) = field_error(
            r#"{"worker_id":"w","worker_url":"https://a","capabilities":[{"name":"x","verb":"invoke","version":1}]}"#,
        );
        assert_eq!(field, "capabilities[0].version");

        let (field, _) = field_error("null");
        assert_eq!(field, "body");
    }
}

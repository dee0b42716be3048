//! The streaming worker, a port of the original system's streaming service
//! onto the worker library ([`Worker`]): two capabilities in one worker, each
//! answering with Server-Sent Events.
//!
//! - `stream:text_events` — `POST /stream/text` with `{"text": "…"}` streams the
//!   text back word by word, one event per word
//!   (`{"chunk_id", "content", "is_last", "timestamp"}`), `delay_ms` (default
//!   100, as the original) apart;
//! - `stream:sse_events` — `GET /events` is a periodic event stream
//!   (`{"event_id", "timestamp", "worker_id", "active_streams", "message"}`),
//!   one at once and then one every `interval_ms` (default 5000, as the
//!   original), for ever or until `limit` events.
//!
//! `crank stream-worker` runs it, with `crank worker`'s flags; so does
//! `cargo run --example stream_worker`.

use std::convert::Infallible;
use std::time::Duration;

use actix_web::web::{self, Bytes};
use actix_web::HttpResponse;
use chrono::{SecondsFormat, Utc};
use crank_proto::domain::FieldError;
use crank_proto::wire::Capability;
use futures_util::stream::{self, Stream};
use serde::{Deserialize, Serialize};

use crate::{Worker, WorkerContext};
use crank_net::body::ApiJson;
use crank_net::caller::Caller;
use crank_net::error::ApiError;
use crank_net::fallback::endpoint;

/// The worker's name, its default worker id and certificate name.
pub const SERVICE: &str = "stream";
/// Default time between the words of `POST /stream/text`, as the original.
pub const DEFAULT_WORD_DELAY_MS: u64 = 100;
/// Longest time between words.
pub const MAX_WORD_DELAY_MS: u64 = 10_000;
/// Default time between the events of `GET /events`, as the original.
pub const DEFAULT_EVENT_INTERVAL_MS: u64 = 5_000;
/// Shortest and longest time between events.
pub const EVENT_INTERVAL_MS: std::ops::RangeInclusive<u64> = 10..=3_600_000;

/// `stream:text_events`: a text streamed back word by word.
pub fn text_events() -> Capability {
    let mut capability = Capability::new("stream", "text_events", "1.0.0");
    capability.runtime = Some("rust".into());
    capability
}

/// `stream:sse_events`: a periodic event stream.
pub fn sse_events() -> Capability {
    let mut capability = Capability::new("stream", "sse_events", "1.0.0");
    capability.runtime = Some("rust".into());
    capability
}

/// The streaming worker.
pub fn worker() -> Worker {
    Worker::new(SERVICE)
        .serve(text_events(), || {
            endpoint("/stream/text").route(web::post().to(stream_text))
        })
        .serve(sse_events(), || {
            endpoint("/events").route(web::get().to(periodic_events))
        })
}

/// `POST /stream/text` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TextRequest {
    pub text: String,
    /// Milliseconds between words (0 to [`MAX_WORD_DELAY_MS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
}

/// One event of `POST /stream/text`: a word.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextChunk {
    pub chunk_id: usize,
    pub content: String,
    pub is_last: bool,
    pub timestamp: String,
}

/// `GET /events` query.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EventsQuery {
    /// Milliseconds between events.
    pub interval_ms: Option<u64>,
    /// End the stream after this many events; unset: never.
    pub limit: Option<u64>,
}

/// One event of `GET /events`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeriodicEvent {
    pub event_id: u64,
    pub timestamp: String,
    pub worker_id: String,
    /// Streams this worker is sending now, this one included.
    pub active_streams: u32,
    pub message: String,
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `value` as one Server-Sent Event.
fn event(value: &impl Serialize) -> Result<Bytes, Infallible> {
    let json = serde_json::to_string(value).expect("an event serializes");
    Ok(Bytes::from(crank_net::sse::data_frame(&json)))
}

/// A `text/event-stream` answer of `events`.
fn event_stream(events: impl Stream<Item = Result<Bytes, Infallible>> + 'static) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-cache"))
        .streaming(events)
}

async fn stream_text(
    _: Caller,
    body: Result<ApiJson<TextRequest>, ApiError>,
) -> Result<HttpResponse, ApiError> {
    let ApiJson(request) = body?;
    let delay = request.delay_ms.unwrap_or(DEFAULT_WORD_DELAY_MS);
    if delay > MAX_WORD_DELAY_MS {
        return Err(ApiError::InvalidInput(FieldError::new(
            "delay_ms",
            format!("must be at most {MAX_WORD_DELAY_MS}, not {delay}"),
        )));
    }
    let words: Vec<String> = request.text.split_whitespace().map(str::to_owned).collect();
    if words.is_empty() {
        return Err(ApiError::InvalidInput(FieldError::new(
            "text",
            "must hold at least one word",
        )));
    }
    let delay = Duration::from_millis(delay);
    let count = words.len();
    let chunks = stream::unfold(words.into_iter().enumerate(), move |mut words| async move {
        let (chunk_id, content) = words.next()?;
        if chunk_id > 0 && !delay.is_zero() {
            actix_rt::time::sleep(delay).await;
        }
        let chunk = TextChunk {
            chunk_id,
            content,
            is_last: chunk_id + 1 == count,
            timestamp: now(),
        };
        Some((event(&chunk), words))
    });
    Ok(event_stream(chunks))
}

async fn periodic_events(
    _: Caller,
    context: web::Data<WorkerContext>,
    query: Result<web::Query<EventsQuery>, actix_web::Error>,
) -> Result<HttpResponse, ApiError> {
    let query = query
        .map_err(|e| ApiError::InvalidInput(FieldError::new("query", e.to_string())))?
        .into_inner();
    let interval = query.interval_ms.unwrap_or(DEFAULT_EVENT_INTERVAL_MS);
    if !EVENT_INTERVAL_MS.contains(&interval) {
        return Err(ApiError::InvalidInput(FieldError::new(
            "interval_ms",
            format!(
                "must be between {} and {}, not {interval}",
                EVENT_INTERVAL_MS.start(),
                EVENT_INTERVAL_MS.end()
            ),
        )));
    }
    let interval = Duration::from_millis(interval);
    let limit = query.limit.unwrap_or(u64::MAX);
    let context = context.into_inner();
    let events = stream::unfold(1u64, move |event_id| {
        let context = context.clone();
        async move {
            if event_id > limit {
                return None;
            }
            if event_id > 1 {
                actix_rt::time::sleep(interval).await;
            }
            let update = PeriodicEvent {
                event_id,
                timestamp: now(),
                worker_id: context.worker_id().to_owned(),
                active_streams: context.in_flight(),
                message: format!("Periodic update #{event_id}"),
            };
            Some((event(&update), event_id + 1))
        }
    });
    Ok(event_stream(events))
}

//! `GET /watch`: the registry's changes as Server-Sent Events, over the same
//! mTLS and identity rule as the rest of the API (every identity may read;
//! under an enforcing access policy, only the capabilities it may route to).
//!
//! | file | answers |
//! |---|---|
//! | [`stream`] | [`Watcher`]: snapshot or resume, then changes, and the resync rule |
//! | [`snapshots`] | [`Snapshots`]: snapshots shared by watchers starting together |
//!
//! The bodies are the wire types of [`crank_proto::wire::watch`]; the fan-out
//! is [`crank_registry::watch::WatchHub`].

pub mod snapshots;
pub mod stream;

use actix_web::http::header::{CacheControl, CacheDirective};
use actix_web::{web, HttpRequest, HttpResponse};
use crank_registry::watch::WatchHub;

pub use crank_net::sse::{SseMessage, SseParser};
pub use snapshots::Snapshots;
pub use stream::Watcher;

use std::sync::Arc;

use crate::metrics::RegistryMailbox;
use crate::protection::Protection;
use crank_net::caller::Caller;
use crank_net::error::ApiError;

/// The media type of an SSE stream.
pub const EVENT_STREAM: &str = "text/event-stream";

/// `GET /watch`, resuming after the `Last-Event-ID` header when it has one.
pub async fn watch(
    request: HttpRequest,
    hub: Option<web::Data<WatchHub>>,
    snapshots: Option<web::Data<Snapshots>>,
    registry: web::Data<RegistryMailbox>,
    protection: web::Data<Protection>,
    Caller(caller): Caller,
) -> Result<HttpResponse, ApiError> {
    let (hub, snapshots) = match (hub, snapshots) {
        (Some(hub), Some(snapshots)) => (hub.into_inner(), snapshots.into_inner()),
        _ => return Err(ApiError::WatchUnavailable),
    };
    let last_event_id = request
        .headers()
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse().ok());
    let mut watcher =
        Watcher::start(hub, registry.get_ref().clone(), snapshots, last_event_id).await?;
    if protection.filters() {
        let protection = protection.into_inner();
        watcher = watcher.only(Arc::new(move |key| protection.may_see(&caller, key)));
    }
    let chunks = futures_util::stream::unfold(watcher, |mut watcher| async move {
        let chunk = watcher.next_chunk().await?;
        Some((Ok::<_, std::convert::Infallible>(chunk), watcher))
    });
    Ok(HttpResponse::Ok()
        .content_type(EVENT_STREAM)
        .insert_header(CacheControl(vec![CacheDirective::NoCache]))
        .streaming(chunks))
}

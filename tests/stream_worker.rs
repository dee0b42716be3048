//! The streaming worker as a real process (`crank stream-worker`, which
//! `examples/stream_worker.rs` wraps): two capabilities registered with a
//! real controller, routed to and read as Server-Sent Events through the
//! client library over mTLS.

mod common;

use std::time::Duration;

use common::{eventually, free_port, path_str, run_cli, Fleet};
use crank_client::{Constraints, CrankClient, Event, Request};
use crank_net::tls::TlsFiles;
use crank_worker::stream::{PeriodicEvent, TextChunk, TextRequest};
use futures_util::StreamExt;

fn decode<T: serde::de::DeserializeOwned>(event: Result<Event, impl std::fmt::Debug>) -> T {
    let event = event.unwrap();
    serde_json::from_str(&event.data).unwrap_or_else(|e| panic!("{event:?}: {e}"))
}

#[actix_rt::test]
async fn the_streaming_worker_streams_text_and_periodic_events_through_the_client_library() {
    let mut fleet = Fleet::new();
    let cert_dir = fleet.cert_dir();
    let (ok, _, err) = run_cli(&[
        "certs",
        "issue",
        "--role",
        "service",
        "--name",
        "stream",
        "--dir",
        path_str(&cert_dir),
    ]);
    assert!(ok, "{err}");
    let _controller = fleet.start_controller("5s");
    let port = free_port().to_string();
    let controller_url = fleet.controller_url();
    let _worker = fleet.spawn(
        "stream.1",
        &[
            "stream-worker",
            "--worker-id",
            "stream.1",
            "--cert",
            "stream",
            "--cert-dir",
            path_str(&cert_dir),
            "--port",
            &port,
            "--controller-url",
            &controller_url,
            "--heartbeat-interval",
            "200ms",
        ],
    );
    let listed = eventually(
        "the streaming worker is registered",
        Duration::from_secs(30),
        || async { fleet.worker("stream.1").await.filter(|w| w.is_healthy) },
    )
    .await;
    assert_eq!(
        listed.capabilities,
        ["stream:text_events", "stream:sse_events"]
    );

    let client = CrankClient::new(&controller_url, TlsFiles::in_dir(&cert_dir, "client")).unwrap();

    // stream:text_events: the text back, word by word, as it is sent.
    let request = Request::post(
        "/stream/text",
        &TextRequest {
            text: "crank streams  one word\tat a time".into(),
            delay_ms: Some(5),
        },
    )
    .unwrap();
    let reply = client
        .call("stream", "text_events", &Constraints::any(), &request)
        .await
        .unwrap();
    assert_eq!(reply.worker.worker_id, "stream.1");
    assert_eq!(reply.worker.capability, "stream:text_events");
    let chunks: Vec<TextChunk> = reply.events().map(decode).collect().await;
    let words: Vec<&str> = chunks.iter().map(|c| c.content.as_str()).collect();
    assert_eq!(
        words,
        ["crank", "streams", "one", "word", "at", "a", "time"]
    );
    assert!(chunks.iter().enumerate().all(|(i, c)| c.chunk_id == i));
    let last: Vec<bool> = chunks.iter().map(|c| c.is_last).collect();
    assert_eq!(last, [false, false, false, false, false, false, true]);

    // stream:sse_events: a periodic stream; here three events 20 ms apart.
    let reply = client
        .call(
            "stream",
            "sse_events",
            &Constraints::any(),
            &Request::get("/events?interval_ms=20&limit=3"),
        )
        .await
        .unwrap();
    let events: Vec<PeriodicEvent> = reply.events().map(decode).collect().await;
    let ids: Vec<u64> = events.iter().map(|e| e.event_id).collect();
    assert_eq!(ids, [1, 2, 3]);
    assert!(events.iter().all(|e| e.worker_id == "stream.1"));
    assert_eq!(events[2].message, "Periodic update #3");

    // An endless stream is read as long as the caller wants, then dropped.
    let reply = client
        .call(
            "stream",
            "sse_events",
            &Constraints::any(),
            &Request::get("/events?interval_ms=10"),
        )
        .await
        .unwrap();
    let first: Vec<PeriodicEvent> = reply.events().take(5).map(decode).collect().await;
    assert_eq!(first.len(), 5);

    // A bad request is the caller's: 400 with the field named, not retried.
    let refused = client
        .call(
            "stream",
            "text_events",
            &Constraints::any(),
            &Request::post("/stream/text", &serde_json::json!({"text": "  "})).unwrap(),
        )
        .await
        .err()
        .expect("an empty text is refused");
    assert_eq!(refused.status(), Some(400));
    assert!(!refused.is_worker_failure());
    assert!(
        refused.to_string().contains("at least one word"),
        "{refused}"
    );
}

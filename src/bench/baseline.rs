//! `crank bench-baseline`: the bare endpoint the `baseline` scenario loads. Same
//! TLS stack and server settings as the controller, parses and checks the same
//! heartbeat JSON, and answers `{}`: the transport's cost and nothing more. Its
//! `GET /stats` gives only the TLS handshakes its server counted, so a load on
//! fresh connections can show it paid one full handshake per request.

use std::path::PathBuf;

use actix_web::http::header::ContentType;
use actix_web::{web, App, HttpRequest, HttpResponse};
use anyhow::{Context, Result};
use crank_net::body::ApiJson;
use crank_net::error::ApiError;
use crank_net::server::{mtls_server, HandshakeCounter, ServerLimits};
use crank_net::tls::{server_config, TlsFiles};
use crank_proto::domain::WorkerId;
use crank_proto::wire::{Health, HeartbeatRequest, Stats};

use crate::error::flat;

async fn heartbeat(ApiJson(request): ApiJson<HeartbeatRequest>) -> Result<HttpResponse, ApiError> {
    WorkerId::parse("worker_id", &request.worker_id)?;
    // A constant answer, as the controller's heartbeat answer is
    // (`HEARTBEAT_OK_BODY`).
    Ok(HttpResponse::Ok()
        .content_type(ContentType::json())
        .body("{}"))
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        service: "crank-bench-baseline".into(),
        ..Health::controller()
    })
}

/// The [`Stats`] of a controller with no workers, and this server's handshakes.
async fn stats(request: HttpRequest) -> HttpResponse {
    let handshakes = request.conn_data::<HandshakeCounter>();
    HttpResponse::Ok().json(Stats {
        tls_handshakes: handshakes.map(HandshakeCounter::completed),
        tls_resumed: handshakes.map(HandshakeCounter::resumed),
        ..Stats::default()
    })
}

pub async fn serve_baseline(port: u16, cert_dir: PathBuf) -> Result<()> {
    let tls = server_config(&TlsFiles::in_dir(&cert_dir, "controller")).map_err(flat)?;
    let listener = std::net::TcpListener::bind(("127.0.0.1", port))
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    let server = mtls_server(
        "crank-bench-baseline",
        listener,
        tls,
        ServerLimits::default(),
        true,
        || {
            App::new()
                .route("/heartbeat", web::post().to(heartbeat))
                .route("/health", web::get().to(health))
                .route("/stats", web::get().to(stats))
        },
    )
    .map_err(flat)?;
    server.await.context("the baseline endpoint failed")
}

//! A crank worker in twenty lines: `invoke:echo.say` answers `POST /echo`
//! with the JSON it was sent and who sent it. It takes crank worker's flags:
//! `cargo run --example echo_worker -- --controller-url https://localhost:9000`

use actix_web::{web, HttpResponse};
use crank_worker::{ApiJson, Caller, Capability, Worker};
use serde_json::{json, Value};

/// `POST /echo`: the JSON it was sent, and the caller's identity.
async fn echo(caller: Caller, ApiJson(body): ApiJson<Value>) -> HttpResponse {
    HttpResponse::Ok().json(json!({"echo": body, "caller": caller.0.to_string()}))
}

fn main() -> std::process::ExitCode {
    Worker::new("echo")
        .serve(Capability::new("invoke", "echo.say", "1.0.0"), || {
            web::resource("/echo").route(web::post().to(echo))
        })
        .main()
}

//! The bundled hello-world worker, `crank worker`: capability
//! `invoke:hello.greet@1.0.0` (`POST /greet`) and `GET /stats`, built on the
//! worker library ([`Worker`]), which adds `/health`, mutual TLS, registration,
//! heartbeats and load measurement.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{web, App, HttpResponse};
use crank_agent::registration::RegistrationStatus;
use crank_proto::domain::FieldError;
use crank_proto::wire::Capability;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{Worker, WorkerContext};
use crank_net::body::ApiJson;
use crank_net::caller::Caller;
use crank_net::error::ApiError;
use crank_net::fallback::endpoint;

/// Most `!` a greeting may end with.
pub const MAX_EXCLAMATIONS: u32 = 10;
/// Longest message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 4096;
/// Requests the worker reports it can serve at once, as its heartbeat capacity.
pub const CAPACITY: u32 = 256;
/// The service's name, as `/health` gives it.
pub const SERVICE: &str = "crank-hello-world";

/// The capabilities the hello-world worker registers, as it announces them.
pub fn capabilities() -> Vec<Capability> {
    worker().capabilities()
}

fn greet_capability() -> Capability {
    let mut greet = Capability::new("invoke", "hello.greet", "1.0.0");
    let schema = |value: serde_json::Value| value.as_object().cloned();
    greet.input_schema = schema(json!({
        "type": "object",
        "required": ["message"],
        "properties": {
            "message": {"type": "string", "minLength": 1, "maxLength": MAX_MESSAGE_CHARS},
            "options": {
                "type": "object",
                "properties": {
                    "uppercase": {"type": "boolean", "default": false},
                    "reverse": {"type": "boolean", "default": false},
                    "exclamations": {"type": "integer", "minimum": 0, "maximum": MAX_EXCLAMATIONS, "default": 1}
                }
            }
        }
    }));
    greet.output_schema = schema(json!({
        "type": "object",
        "required": ["greeting", "metadata", "processing_time_ms"],
        "properties": {
            "greeting": {"type": "string"},
            "metadata": {
                "type": "object",
                "properties": {
                    "total_greetings": {"type": "integer"},
                    "options_applied": {"type": "array", "items": {"type": "string"}},
                    "character_count": {"type": "integer"}
                }
            },
            "processing_time_ms": {"type": "number"}
        }
    }));
    greet.runtime = Some("rust".into());
    // Its max_concurrency is the worker's capacity (`--capacity`), announced
    // by the library.
    greet
}

/// What the hello-world worker counts, shared by its HTTP threads.
#[derive(Debug, Default)]
pub struct Greetings {
    total: AtomicU64,
}

/// The hello-world worker, counting its greetings afresh.
pub fn worker() -> Worker {
    define(Arc::default())
}

fn define(greetings: Arc<Greetings>) -> Worker {
    let stats_greetings = greetings.clone();
    Worker::new(SERVICE)
        .capacity(CAPACITY)
        .serve(greet_capability(), move || {
            endpoint("/greet")
                .app_data(web::Data::from(greetings.clone()))
                .route(web::post().to(greet))
        })
        .endpoint(move || {
            endpoint("/stats")
                .app_data(web::Data::from(stats_greetings.clone()))
                .route(web::get().to(stats))
        })
}

/// One hello-world worker's identity and counters, for [`hello_app`].
#[derive(Debug)]
pub struct HelloState {
    pub worker_id: String,
    pub registration: RegistrationStatus,
    greetings: Arc<Greetings>,
}

impl HelloState {
    pub fn new(worker_id: String, registration: RegistrationStatus) -> Arc<Self> {
        Arc::new(HelloState {
            worker_id,
            registration,
            greetings: Arc::default(),
        })
    }
}

/// The hello-world worker's actix-web app for the worker of `state`, as
/// [`Worker::run`] serves it; for tests.
pub fn hello_app(
    state: Arc<HelloState>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let worker = define(state.greetings.clone());
    let context = worker.context(&state.worker_id, state.registration.clone());
    worker.app(context)
}

/// `POST /greet` body.
#[derive(Debug, Serialize, Deserialize)]
pub struct GreetRequest {
    pub message: String,
    #[serde(default)]
    pub options: GreetOptions,
}

/// How to greet.
#[derive(Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct GreetOptions {
    pub uppercase: bool,
    pub reverse: bool,
    pub exclamations: i64,
}

impl Default for GreetOptions {
    fn default() -> Self {
        GreetOptions {
            uppercase: false,
            reverse: false,
            exclamations: 1,
        }
    }
}

/// `POST /greet` answer.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct GreetResponse {
    pub greeting: String,
    pub metadata: GreetMetadata,
    pub processing_time_ms: f64,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct GreetMetadata {
    pub total_greetings: u64,
    pub options_applied: Vec<String>,
    pub character_count: usize,
}

/// The greeting for `request`: the message is trimmed, then reversed, then
/// upper-cased, and followed by `exclamations` `!`. Returns the greeting and the
/// options applied, in order.
pub fn compose_greeting(request: &GreetRequest) -> Result<(String, Vec<String>), FieldError> {
    let mut message = request.message.trim().to_owned();
    if message.is_empty() {
        return Err(FieldError::new(
            "message",
            "must not be empty or only whitespace",
        ));
    }
    if message.chars().count() > MAX_MESSAGE_CHARS {
        return Err(FieldError::new(
            "message",
            format!("must be at most {MAX_MESSAGE_CHARS} characters"),
        ));
    }
    let exclamations = u32::try_from(request.options.exclamations)
        .ok()
        .filter(|n| *n <= MAX_EXCLAMATIONS)
        .ok_or_else(|| {
            FieldError::new(
                "options.exclamations",
                format!(
                    "must be between 0 and {MAX_EXCLAMATIONS}, not {}",
                    request.options.exclamations
                ),
            )
        })?;
    let mut applied = Vec::new();
    if request.options.reverse {
        message = message.chars().rev().collect();
        applied.push("reverse".to_owned());
    }
    if request.options.uppercase {
        message = message.to_uppercase();
        applied.push("uppercase".to_owned());
    }
    if exclamations != 1 {
        applied.push(format!("exclamations={exclamations}"));
    }
    let greeting = format!("Hello, {message}{}", "!".repeat(exclamations as usize));
    Ok((greeting, applied))
}

async fn greet(
    greetings: web::Data<Greetings>,
    _: Caller,
    body: Result<ApiJson<GreetRequest>, ApiError>,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    // The original worker answered every invalid request with 400.
    let ApiJson(request) = body.map_err(|e| match e {
        ApiError::InvalidField(field) => ApiError::InvalidInput(field),
        other => other,
    })?;
    let (greeting, options_applied) = compose_greeting(&request).map_err(ApiError::InvalidInput)?;
    let total_greetings = greetings.total.fetch_add(1, Ordering::Relaxed) + 1;
    log::debug!(
        "greeting {total_greetings}: {} characters",
        greeting.chars().count()
    );
    Ok(HttpResponse::Ok().json(GreetResponse {
        metadata: GreetMetadata {
            total_greetings,
            options_applied,
            character_count: greeting.chars().count(),
        },
        greeting,
        processing_time_ms: started.elapsed().as_secs_f64() * 1000.0,
    }))
}

/// `GET /stats` of the hello-world worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelloStats {
    pub worker_id: String,
    pub total_greetings: u64,
    pub in_flight: u32,
}

async fn stats(
    context: web::Data<WorkerContext>,
    greetings: web::Data<Greetings>,
    _: Caller,
) -> HttpResponse {
    HttpResponse::Ok().json(HelloStats {
        worker_id: context.worker_id().to_owned(),
        total_greetings: greetings.total.load(Ordering::Relaxed),
        in_flight: context.in_flight(),
    })
}

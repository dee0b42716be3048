//! The bundled hello-world worker: capability `invoke:hello.greet@1.0.0`, served
//! over HTTPS with mutual TLS.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{web, App, HttpResponse};
use crank_actors::domain::FieldError;
use crank_actors::registration::RegistrationStatus;
use crank_actors::wire::{Capability, Health, HealthStatus, Load};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::body::ApiJson;
use crate::caller::Caller;
use crate::error::ApiError;
use crate::fallback::{endpoint, not_found};
use crate::metrics::{self, WorkerMetrics};

/// Most `!` a greeting may end with.
pub const MAX_EXCLAMATIONS: u32 = 10;
/// Longest message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 4096;
/// Requests the worker reports it can serve at once, as its heartbeat capacity.
pub const CAPACITY: u32 = 256;

/// The capabilities the hello-world worker registers.
pub fn capabilities() -> Vec<Capability> {
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
    greet.max_concurrency = Some(CAPACITY);
    vec![greet]
}

/// Shared by the worker's HTTP threads.
pub struct HelloState {
    pub worker_id: String,
    started: Instant,
    total_greetings: AtomicU64,
    in_flight: AtomicU32,
    pub registration: RegistrationStatus,
    /// Its `GET /metrics`.
    pub metrics: Arc<WorkerMetrics>,
}

impl HelloState {
    pub fn new(worker_id: String, registration: RegistrationStatus) -> Arc<Self> {
        Arc::new(HelloState {
            worker_id,
            started: Instant::now(),
            total_greetings: AtomicU64::new(0),
            in_flight: AtomicU32::new(0),
            metrics: WorkerMetrics::new(registration.clone()),
            registration,
        })
    }

    /// The load reported with each heartbeat.
    pub fn load(&self) -> Load {
        Load {
            in_flight: self.in_flight.load(Ordering::Relaxed),
            capacity: CAPACITY,
        }
    }
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

/// The hello-world worker's actix-web app, used by `crank worker` and the tests.
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
    let metrics = state.metrics.clone();
    let observed = |path: &'static str| endpoint(path).wrap(metrics.requests.endpoint(path));
    App::new()
        .app_data(web::Data::from(state.clone()))
        .configure(metrics::worker::mount(metrics.clone()))
        .service(observed("/greet").route(web::post().to(greet)))
        .service(observed("/health").route(web::get().to(health)))
        .service(observed("/stats").route(web::get().to(stats)))
        .default_service(web::to(not_found))
}

/// Counts a request in flight for as long as it lives.
struct InFlight<'a>(&'a AtomicU32);

impl<'a> InFlight<'a> {
    fn enter(counter: &'a AtomicU32) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        InFlight(counter)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn greet(
    state: web::Data<HelloState>,
    _: Caller,
    body: Result<ApiJson<GreetRequest>, ApiError>,
) -> Result<HttpResponse, ApiError> {
    let _in_flight = InFlight::enter(&state.in_flight);
    let started = Instant::now();
    // The original worker answered every invalid request with 400.
    let ApiJson(request) = body.map_err(|e| match e {
        ApiError::InvalidField(field) => ApiError::InvalidInput(field),
        other => other,
    })?;
    let (greeting, options_applied) = compose_greeting(&request).map_err(ApiError::InvalidInput)?;
    let total_greetings = state.total_greetings.fetch_add(1, Ordering::Relaxed) + 1;
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

async fn health(state: web::Data<HelloState>) -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: HealthStatus::Healthy,
        service: "crank-hello-world".into(),
        worker_id: Some(state.worker_id.clone()),
        uptime_s: Some(state.started.elapsed().as_secs_f64()),
        registration: Some(state.registration.get().as_str().into()),
    })
}

/// `GET /stats` of the hello-world worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelloStats {
    pub worker_id: String,
    pub total_greetings: u64,
    pub in_flight: u32,
}

async fn stats(state: web::Data<HelloState>, _: Caller) -> HttpResponse {
    HttpResponse::Ok().json(HelloStats {
        worker_id: state.worker_id.clone(),
        total_greetings: state.total_greetings.load(Ordering::Relaxed),
        in_flight: state.in_flight.load(Ordering::Relaxed),
    })
}

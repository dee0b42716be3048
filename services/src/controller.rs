//! The controller's HTTP API: thin handlers that check the caller, `send` one
//! message to the `RegistryActor` and map its answer to the wire protocol (v1).

use std::time::Duration;

use actix::prelude::*;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::header::ContentType;
use actix_web::{web, App, HttpRequest, HttpResponse, ResponseError};
use crank_actors::registry::{
    Deregister, GetStats, GetWorker, Heartbeat, ListCapabilities, ListWorkers, Register,
    RegistryActor, RegistrySettings, Route,
};
use crank_actors::sweeper::StalenessSweeper;
use crank_actors::wire::{
    capability_key, HeartbeatRequest, RegisterRequest, RegisterResponse, RouteRequest,
    RouteResponse,
};
use serde_json::json;

use crate::body::ApiJson;
use crate::error::ApiError;
use crate::identity::Caller;

type Registry = web::Data<Addr<RegistryActor>>;

/// The controller's actix-web app, used by `crank controller` and by the tests.
pub fn controller_app(
    registry: Addr<RegistryActor>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    // Hot paths first: the router tries resources in order, and the ones with a
    // path parameter cost a regex match each.
    App::new()
        .app_data(web::Data::new(registry))
        .service(endpoint("/heartbeat").route(web::post().to(heartbeat)))
        .service(endpoint("/route").route(web::post().to(route)))
        .service(endpoint("/register").route(web::post().to(register)))
        .service(endpoint("/health").route(web::get().to(health)))
        .service(endpoint("/capabilities").route(web::get().to(capabilities)))
        .service(endpoint("/workers").route(web::get().to(workers)))
        .service(endpoint("/stats").route(web::get().to(stats)))
        .service(endpoint("/deregister/{worker_id}").route(web::delete().to(deregister)))
        .service(endpoint("/workers/{worker_id}").route(web::get().to(worker)))
        .default_service(web::to(not_found))
}

/// A resource whose wrong-method answer is crank's JSON 405.
pub fn endpoint(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

/// JSON 404 for paths no endpoint serves.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    ApiError::NotFound {
        method: req.method().to_string(),
        path: req.path().to_owned(),
    }
    .error_response()
}

/// JSON 405 for a known path with the wrong method.
pub async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    ApiError::MethodNotAllowed {
        method: req.method().to_string(),
        path: req.path().to_owned(),
    }
    .error_response()
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "healthy", "service": "crank-controller"}))
}

async fn register(
    registry: Registry,
    Caller(caller): Caller,
    ApiJson(request): ApiJson<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    request.validate()?;
    caller.may_act_for(&request.worker_id)?;
    let worker_id = request.worker_id.clone();
    let ack = registry
        .send(Register {
            request,
            registered_by: caller.to_string(),
        })
        .await?;
    Ok(HttpResponse::Ok().json(RegisterResponse {
        status: "registered".into(),
        worker_id,
        capabilities_registered: ack.capabilities_registered,
        heartbeat_interval_s: Some(ack.heartbeat_interval.as_secs_f64()),
        stale_after_s: Some(ack.stale_after.as_secs_f64()),
    }))
}

async fn heartbeat(
    registry: Registry,
    Caller(caller): Caller,
    ApiJson(request): ApiJson<HeartbeatRequest>,
) -> Result<HttpResponse, ApiError> {
    request.validate()?;
    caller.may_act_for(&request.worker_id)?;
    let answer = registry
        .send(Heartbeat {
            worker_id: request.worker_id.clone(),
            load: request.load,
        })
        .await?;
    Ok(match answer {
        // The hottest answer of all, written once rather than built per beat.
        Ok(_) => HttpResponse::Ok()
            .content_type(ContentType::json())
            .body(r#"{"status":"ok","acknowledged":true}"#),
        // The original controller's shape, which workers key their re-registration
        // on; `error`/`detail` are added for everyone else.
        Err(_) => HttpResponse::NotFound().json(json!({
            "status": "unknown_worker",
            "acknowledged": false,
            "error": "unknown_worker",
            "detail": format!("worker {} is not registered; register it again", request.worker_id),
        })),
    })
}

async fn deregister(
    registry: Registry,
    Caller(caller): Caller,
    worker_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let worker_id = worker_id.into_inner();
    caller.may_act_for(&worker_id)?;
    registry
        .send(Deregister {
            worker_id: worker_id.clone(),
        })
        .await?;
    Ok(HttpResponse::Ok().json(json!({"status": "deregistered", "worker_id": worker_id})))
}

async fn route(
    registry: Registry,
    _: Caller,
    ApiJson(request): ApiJson<RouteRequest>,
) -> Result<HttpResponse, ApiError> {
    let version = request.validate()?;
    let choice = registry
        .send(Route {
            verb: request.verb.clone(),
            capability: request.capability.clone(),
            version,
        })
        .await?
        .ok_or_else(|| {
            ApiError::NoWorkerAvailable(capability_key(&request.verb, &request.capability))
        })?;
    Ok(HttpResponse::Ok().json(RouteResponse {
        worker_id: choice.worker_id,
        worker_url: choice.worker_url,
        capability: choice.capability,
        version: Some(choice.version),
    }))
}

async fn capabilities(registry: Registry, _: Caller) -> Result<HttpResponse, ApiError> {
    let capabilities = registry.send(ListCapabilities).await?;
    Ok(HttpResponse::Ok().json(json!({ "capabilities": capabilities })))
}

async fn workers(registry: Registry, _: Caller) -> Result<HttpResponse, ApiError> {
    let workers = registry.send(ListWorkers).await?;
    Ok(HttpResponse::Ok().json(json!({ "workers": workers })))
}

async fn worker(
    registry: Registry,
    _: Caller,
    worker_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let worker_id = worker_id.into_inner();
    let detail = registry
        .send(GetWorker {
            worker_id: worker_id.clone(),
        })
        .await?
        .ok_or(ApiError::UnknownWorker(worker_id))?;
    Ok(HttpResponse::Ok().json(detail))
}

async fn stats(registry: Registry, _: Caller) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(registry.send(GetStats).await?))
}

/// Starts the registry and its sweeper on the current actix system.
pub fn start_registry(settings: RegistrySettings, sweep_interval: Duration) -> Addr<RegistryActor> {
    let registry = RegistryActor::new(settings).start();
    StalenessSweeper::new(registry.clone(), sweep_interval).start();
    registry
}

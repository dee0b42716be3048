//! The controller's HTTP API: thin handlers that parse the request into domain
//! values, check the caller, `send` one message to the
//! [`RegistryActor`](crank_registry::RegistryActor) and map its domain
//! answer to the wire protocol (v1), counting what they did in the
//! [`ControllerMetrics`]. `GET /metrics`, `GET /watch` and `GET /ui` live in
//! [`crate::metrics`], [`crate::watch`] and [`crate::ui`].

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::header::ContentType;
use actix_web::{web, App, HttpRequest, HttpResponse};
use crank_proto::domain::{CallReport, InstanceId, Registration, RouteQuery, WorkerId, WorkerLoad};
use crank_proto::wire::{
    CapabilityList, DeregisterQuery, DeregisterResponse, DeregisterStatus, DrainResponse,
    DrainStatus, Health, HealthStatus, HeartbeatAnswer, HeartbeatRequest, Readiness, ReadyStatus,
    RegisterRequest, ReportRequest, ReportResponse, RouteRequest, WorkerList, HEARTBEAT_OK_BODY,
};
use crank_registry::RegistryError;
use crank_registry::{
    Deregister, DeregisterOutcome, Drain, GetStats, GetWorker, Heartbeat, ListCapabilities,
    ListWorkers, Register, Report, Route,
};

use crate::cluster::StoreHealth;
use crate::controller_state::ControllerState;
use crate::metrics::controller::{HeartbeatOutcome, RouteOutcome};
use crate::metrics::{ControllerMetrics, RegistryMailbox};
use crate::protection::limits::Endpoint;
use crate::protection::Protection;
use crate::readiness::{self, Lifecycle};
use crate::{tracing, ui, views, watch};
use crank_net::body::ApiJson;
use crank_net::caller::Caller;
use crank_net::error::ApiError;
use crank_net::fallback::{endpoint, not_found};
use crank_net::server::HandshakeCounter;
use crank_net::service_ids::ServiceIds;
use crank_trace::middleware::Traced;
use crank_trace::spans;

type Registry = web::Data<RegistryMailbox>;
type Metrics = web::Data<ControllerMetrics>;

/// The controller's actix-web app, used by `crank controller` and by the tests:
/// of a [`ControllerState`], or of a bare registry address (no watch stream).
pub fn controller_app(
    state: impl Into<ControllerState>,
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
    let state = state.into();
    let requests = state.metrics.requests.clone();
    // Each endpoint counted by its own middleware: no lookup per request.
    let observed = move |path: &'static str| endpoint(path).wrap(requests.endpoint(path));
    let mut app = App::new()
        // No service id mapping unless the process configures one (a later
        // `app_data` of the same type replaces this one).
        .app_data(web::Data::new(ServiceIds::default()))
        // No policy, limits or SLOs unless the process loads them (the same).
        .app_data(web::Data::new(Protection::none()))
        .app_data(web::Data::new(state.registry))
        .app_data(web::Data::from(state.metrics.clone()));
    if let Some(hub) = state.watch {
        app = app
            .app_data(web::Data::from(hub))
            .app_data(web::Data::from(state.snapshots));
    }
    // Routes and reports join their caller's trace (a caller's span is the
    // parent of the route decision's).
    app.service(observed("/heartbeat").route(web::post().to(heartbeat)))
        .service(observed("/route").wrap(Traced).route(web::post().to(route)))
        .service(observed("/register").route(web::post().to(register)))
        .service(
            observed("/report")
                .wrap(Traced)
                .route(web::post().to(report)),
        )
        .service(observed("/health").route(web::get().to(health)))
        .service(observed("/ready").route(web::get().to(ready)))
        .service(observed("/capabilities").route(web::get().to(capabilities)))
        .service(observed("/workers").route(web::get().to(workers)))
        .service(observed("/stats").route(web::get().to(stats)))
        .service(observed("/slos").route(web::get().to(slos)))
        .service(observed("/metrics").route(web::get().to(crate::metrics::controller::scrape)))
        .service(observed("/watch").route(web::get().to(watch::watch)))
        .service(observed("/deregister/{worker_id}").route(web::delete().to(deregister)))
        .service(observed("/drain/{worker_id}").route(web::post().to(drain)))
        .service(observed("/workers/{worker_id}").route(web::get().to(worker)))
        .configure(ui::mount(&state.metrics.requests))
        .default_service(web::to(not_found))
}

/// Liveness: 200 while the registry answers a round trip through its
/// mailbox, 503 naming what failed when it does not.
async fn health(registry: Registry, store: Option<web::Data<StoreHealth>>) -> HttpResponse {
    let mut health = Health::controller();
    health.store = store.map(|store| store.get().as_str().to_owned());
    match readiness::registry_answers(registry.address()).await {
        Ok(()) => HttpResponse::Ok().json(health),
        Err(problem) => {
            health.status = HealthStatus::Unhealthy;
            health.detail = Some(problem);
            HttpResponse::ServiceUnavailable().json(health)
        }
    }
}

/// Readiness: 200 when the registry answers and the process is not shutting
/// down (the store was loaded before the server started); 503 naming each
/// thing that is not ready.
async fn ready(registry: Registry, lifecycle: Option<web::Data<Lifecycle>>) -> HttpResponse {
    let mut not_ready = Vec::new();
    if let Err(problem) = readiness::registry_answers(registry.address()).await {
        not_ready.push(problem);
    }
    if lifecycle.is_some_and(|l| l.is_shutting_down()) {
        not_ready.push("shutting_down: the controller is draining; send traffic elsewhere".into());
    }
    let readiness = Readiness::of(not_ready);
    match readiness.status {
        ReadyStatus::Ready => HttpResponse::Ok().json(readiness),
        ReadyStatus::NotReady => HttpResponse::ServiceUnavailable().json(readiness),
    }
}

type Guard = web::Data<Protection>;

async fn register(
    registry: Registry,
    metrics: Metrics,
    mapped: web::Data<ServiceIds>,
    protection: Guard,
    Caller(caller): Caller,
    ApiJson(request): ApiJson<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    protection.admit(&caller, Endpoint::Register).await?;
    let registration = Registration::try_from(request)?;
    caller.may_act_for_mapped(registration.worker_id.as_str(), &mapped)?;
    let worker_id = registration.worker_id.to_string();
    let ack = registry
        .send(Register {
            registration,
            registered_by: caller.to_string(),
        })
        .await?;
    metrics.registered(&worker_id, ack.replaced);
    Ok(HttpResponse::Ok().json(views::registered(worker_id, &ack)))
}

async fn heartbeat(
    registry: Registry,
    metrics: Metrics,
    mapped: web::Data<ServiceIds>,
    Caller(caller): Caller,
    ApiJson(request): ApiJson<HeartbeatRequest>,
) -> Result<HttpResponse, ApiError> {
    let worker_id = WorkerId::parse("worker_id", &request.worker_id)?;
    let instance = request
        .instance
        .as_deref()
        .map(|instance| InstanceId::parse("instance", instance))
        .transpose()?;
    caller.may_act_for_mapped(worker_id.as_str(), &mapped)?;
    let load = request
        .load
        .as_ref()
        .map(WorkerLoad::try_from)
        .transpose()?;
    let answer = registry
        .send(Heartbeat {
            worker_id,
            instance,
            load,
        })
        .await?;
    Ok(match answer {
        Ok(_) => {
            metrics.heartbeat(&request.worker_id, HeartbeatOutcome::Ok);
            HttpResponse::Ok()
                .content_type(ContentType::json())
                .body(HEARTBEAT_OK_BODY)
        }
        Err(RegistryError::UnknownWorker(id)) => {
            metrics.heartbeat(&id, HeartbeatOutcome::UnknownWorker);
            HttpResponse::NotFound().json(HeartbeatAnswer::unknown_worker(&id))
        }
        Err(RegistryError::Superseded {
            worker_id,
            instance,
        }) => {
            metrics.heartbeat(&worker_id, HeartbeatOutcome::Superseded);
            HttpResponse::Conflict().json(HeartbeatAnswer::superseded(&worker_id, &instance))
        }
    })
}

async fn deregister(
    registry: Registry,
    metrics: Metrics,
    mapped: web::Data<ServiceIds>,
    Caller(caller): Caller,
    worker_id: web::Path<String>,
    query: web::Query<DeregisterQuery>,
) -> Result<HttpResponse, ApiError> {
    let worker_id = worker_id.into_inner();
    caller.may_act_for_mapped(&worker_id, &mapped)?;
    let instance = query.into_inner().instance;
    let outcome = registry
        .send(Deregister {
            worker_id: worker_id.clone(),
            instance: instance.clone(),
        })
        .await?;
    if outcome == DeregisterOutcome::Removed {
        metrics.deregistered();
    }
    if outcome == DeregisterOutcome::Superseded {
        return Err(ApiError::Superseded {
            worker_id,
            instance: instance.unwrap_or_default(),
        });
    }
    Ok(HttpResponse::Ok().json(DeregisterResponse {
        status: DeregisterStatus::Deregistered,
        worker_id,
    }))
}

/// `POST /drain/{worker_id}`: the worker itself (or its service, or an
/// admin) says it is stopping; no new routes go to it.
async fn drain(
    registry: Registry,
    mapped: web::Data<ServiceIds>,
    Caller(caller): Caller,
    worker_id: web::Path<String>,
    query: web::Query<DeregisterQuery>,
) -> Result<HttpResponse, ApiError> {
    let worker_id = worker_id.into_inner();
    caller.may_act_for_mapped(&worker_id, &mapped)?;
    registry
        .send(Drain {
            worker_id: worker_id.clone(),
            instance: query.into_inner().instance,
        })
        .await?
        .map_err(registry_error)?;
    Ok(HttpResponse::Ok().json(DrainResponse {
        status: DrainStatus::Draining,
        worker_id,
    }))
}

/// A registry's refusal as the API answers it (the table's entry lives in
/// `crank_net::error`, which knows no registry).
fn registry_error(error: RegistryError) -> ApiError {
    match error {
        RegistryError::UnknownWorker(id) => ApiError::UnknownWorker(id),
        RegistryError::Superseded {
            worker_id,
            instance,
        } => ApiError::Superseded {
            worker_id,
            instance,
        },
    }
}

/// The response header naming the route's constraints that were ignored.
pub const IGNORED_CONSTRAINTS_HEADER: &str = "crank-ignored-constraints";

async fn route(
    registry: Registry,
    metrics: Metrics,
    protection: Guard,
    Caller(caller): Caller,
    ApiJson(request): ApiJson<RouteRequest>,
) -> Result<HttpResponse, ApiError> {
    protection.admit(&caller, Endpoint::Route).await?;
    let query = RouteQuery::try_from(&request)?;
    protection.authorize(&caller, query.key.as_str())?;
    protection.shed(query.key.as_str(), query.priority)?;
    if let Some(said) = &request.requester_identity {
        // The original's field: what the caller says it is, for the log.
        // The certificate is who it is.
        log::debug!(
            "route of {} by {caller} (requester_identity {:?})",
            query.key,
            said
        );
    }
    let explain = spans::recording();
    let choice = match registry.send(Route { query, explain }).await? {
        Ok(choice) => choice,
        Err(no_route) => {
            metrics.route(RouteOutcome::NoWorkerAvailable);
            spans::annotate(|| tracing::refused(&no_route));
            return Err(ApiError::NoWorkerAvailable(no_route.to_string()));
        }
    };
    metrics.route(RouteOutcome::Ok);
    spans::annotate(|| tracing::chosen(&choice));
    let mut response = HttpResponse::Ok();
    if !choice.ignored_constraints.is_empty() {
        response.insert_header((
            IGNORED_CONSTRAINTS_HEADER,
            choice.ignored_constraints.join(", "),
        ));
    }
    Ok(response.json(views::route(choice)))
}

/// Any authenticated caller may report, as any may route: a report only moves
/// a worker out of (and back into) the rotation, which its heartbeats and
/// successes undo.
async fn report(
    registry: Registry,
    metrics: Metrics,
    protection: Guard,
    Caller(caller): Caller,
    ApiJson(request): ApiJson<ReportRequest>,
) -> Result<HttpResponse, ApiError> {
    protection.admit(&caller, Endpoint::Report).await?;
    let report = CallReport::try_from(&request)?;
    let success = report.success;
    // Counted for the SLO once the registry took it: a report it refuses
    // (an unknown worker) changes nothing.
    let outcome = report
        .capability
        .as_ref()
        .map(|capability| (capability.as_str().to_owned(), report.latency));
    let ack = registry
        .send(Report { report })
        .await?
        .map_err(registry_error)?;
    if let Some((capability, latency)) = outcome {
        protection.record_outcome(&capability, latency, success);
    }
    metrics.report(success, ack.ejected_for.is_some());
    Ok(HttpResponse::Ok().json(ReportResponse::recorded()))
}

async fn capabilities(
    registry: Registry,
    protection: Guard,
    Caller(caller): Caller,
) -> Result<HttpResponse, ApiError> {
    let mut capabilities = registry.send(ListCapabilities).await?;
    if protection.filters() {
        capabilities.retain(|key, _| protection.may_see(&caller, key));
    }
    Ok(HttpResponse::Ok().json(CapabilityList { capabilities }))
}

async fn workers(registry: Registry, _: Caller) -> Result<HttpResponse, ApiError> {
    let workers = registry.send(ListWorkers).await?;
    Ok(HttpResponse::Ok().json(WorkerList {
        workers: workers.into_iter().map(views::worker_summary).collect(),
    }))
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
    Ok(HttpResponse::Ok().json(views::worker_detail(detail)))
}

/// Every capability's SLO as measured over the window, for operators and
/// the dashboard.
async fn slos(protection: Guard, _: Caller) -> HttpResponse {
    HttpResponse::Ok().json(views::slos(&protection.slo_states()))
}

async fn stats(
    registry: Registry,
    _: Caller,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let stats = registry.send(GetStats).await?;
    let handshakes = request.conn_data::<HandshakeCounter>();
    Ok(HttpResponse::Ok().json(views::stats(stats, handshakes)))
}

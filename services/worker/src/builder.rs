//! [`Worker`]: what a worker serves, declared once: its name, its
//! capabilities and the actix-web resources that serve each, its capacity
//! (and, to play a slower worker, a service time); and the app that serves them with `/health`, load measurement and
//! crank's JSON 404s.

use crank_trace::middleware::Traced;
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{web, App, Error, Resource};
use crank_agent::registration::RegistrationStatus;
use crank_proto::wire::Capability;

use super::context::{health, ready, WorkerContext};
use super::idempotency::Idempotency;
use super::measure::Measure;
use crank_net::fallback::{endpoint, not_found};

/// Requests a worker reports it can serve at once, unless it says otherwise
/// ([`Worker::capacity`]).
pub const DEFAULT_CAPACITY: u32 = 256;

/// Mounts one capability's resource, measured (and limited) by [`Measure`],
/// its retries answered once by [`Idempotency`].
type Mount = Arc<dyn Fn(&mut web::ServiceConfig, &Measure, &Idempotency) + Send + Sync>;
/// Mounts a resource that belongs to no capability.
type Extra = Arc<dyn Fn(&mut web::ServiceConfig) + Send + Sync>;

/// An actix-web service as a crank worker: the capabilities it registers and
/// the resources that serve them.
///
/// Build it with [`Worker::new`], [`Worker::serve`] for each capability's
/// resource and [`Worker::endpoint`] for others; run it with
/// [`Worker::main`] (a whole program: flags, logging, exit code) or
/// [`Worker::run`] (with a [`WorkerConfig`](crate::config::WorkerConfig)).
/// Resources are built by closures because each HTTP thread builds its own.
#[derive(Clone)]
pub struct Worker {
    name: String,
    capacity: u32,
    service_time: Duration,
    capabilities: Vec<Capability>,
    mounts: Vec<(usize, Mount)>,
    extras: Vec<Extra>,
}

impl Worker {
    /// A worker of the service `name`, serving nothing yet. The name is what
    /// `/health` calls the service and, for [`Worker::main`], the default
    /// worker id (so also the default certificate name).
    pub fn new(name: impl Into<String>) -> Self {
        Worker {
            name: name.into(),
            capacity: DEFAULT_CAPACITY,
            service_time: Duration::ZERO,
            capabilities: Vec::new(),
            mounts: Vec::new(),
            extras: Vec::new(),
        }
    }

    /// The service's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The capabilities it registers, each once, in the order declared, each
    /// with its `max_concurrency`: what it declared, at most the worker's
    /// [`Worker::capacity`].
    pub fn capabilities(&self) -> Vec<Capability> {
        self.capabilities
            .iter()
            .map(|capability| Capability {
                max_concurrency: Some(self.limit_of(capability)),
                ..capability.clone()
            })
            .collect()
    }

    /// Requests of `capability` served at once: its declared
    /// `max_concurrency` if lower than the worker's capacity (a declared 0
    /// counts as 1: a capability that admits nothing would be routed to and
    /// refuse every call).
    fn limit_of(&self, capability: &Capability) -> u32 {
        capability
            .max_concurrency
            .map_or(self.capacity, |declared| declared.clamp(1, self.capacity))
    }

    /// Serves at most `requests` of each capability at once (default
    /// [`DEFAULT_CAPACITY`]; at least 1): announced as each capability's
    /// `max_concurrency` (unless the capability declares fewer), and summed
    /// over the capabilities as the capacity in each heartbeat's load; a
    /// request past it is answered 503 `at_capacity` without reaching its
    /// handler. `--capacity` overrides it.
    pub fn capacity(mut self, requests: u32) -> Self {
        self.capacity = requests.max(1);
        self
    }

    /// Holds every capability answer `delay` before sending it (default
    /// zero), so that any worker can play a slower one in tests and
    /// benchmarks of routing. `--service-time` sets it.
    pub fn service_time(mut self, delay: Duration) -> Self {
        self.service_time = delay;
        self
    }

    /// Serves `capability` with the resource `resource` builds, and registers
    /// the capability. Its requests are measured for the heartbeat's load (in
    /// flight, latency, errors) by middleware around the resource. Serving the
    /// same capability (verb, name and version) again adds a resource to it.
    pub fn serve<F, T, B>(mut self, capability: Capability, resource: F) -> Self
    where
        F: Fn() -> Resource<T> + Send + Sync + 'static,
        T: ServiceFactory<
                ServiceRequest,
                Config = (),
                Response = ServiceResponse<B>,
                Error = Error,
                InitError = (),
            > + 'static,
        B: MessageBody + 'static,
    {
        let same = |c: &Capability| {
            c.verb == capability.verb
                && c.name == capability.name
                && c.version == capability.version
        };
        let index = match self.capabilities.iter().position(same) {
            Some(index) => index,
            None => {
                self.capabilities.push(capability);
                self.capabilities.len() - 1
            }
        };
        let mount: Mount = Arc::new(move |config, measure, idempotency| {
            // A replay is answered before the meter counts it; the span
            // (outermost) covers both.
            config.service(
                resource()
                    .wrap(measure.clone())
                    .wrap(idempotency.clone())
                    .wrap(Traced),
            );
        });
        self.mounts.push((index, mount));
        self
    }

    /// Also serves the resource `resource` builds, outside any capability:
    /// not registered, not measured (a worker's `/stats`, say).
    pub fn endpoint<F, T, B>(mut self, resource: F) -> Self
    where
        F: Fn() -> Resource<T> + Send + Sync + 'static,
        T: ServiceFactory<
                ServiceRequest,
                Config = (),
                Response = ServiceResponse<B>,
                Error = Error,
                InitError = (),
            > + 'static,
        B: MessageBody + 'static,
    {
        self.extras.push(Arc::new(move |config| {
            config.service(resource());
        }));
        self
    }

    /// The context of this worker running as `worker_id`, with a meter for
    /// each of its capabilities.
    pub fn context(&self, worker_id: &str, registration: RegistrationStatus) -> Arc<WorkerContext> {
        WorkerContext::new(
            &self.name,
            worker_id,
            registration,
            self.capacity,
            self.capabilities
                .iter()
                .map(|capability| (capability.key(), self.limit_of(capability))),
        )
    }

    /// The actix-web app of this worker in `context` (made by
    /// [`Worker::context`]): `GET /health`, each capability's resources
    /// measured, the other endpoints, and crank's JSON 404 for anything else.
    /// What [`Worker::run`] serves on each HTTP thread; tests call it directly.
    pub fn app(
        &self,
        context: Arc<WorkerContext>,
    ) -> App<
        impl ServiceFactory<
            ServiceRequest,
            Config = (),
            Response = ServiceResponse<impl MessageBody>,
            Error = Error,
            InitError = (),
        >,
    > {
        assert_eq!(
            context.meters().len(),
            self.capabilities.len(),
            "a worker's app needs a context made by its own Worker::context"
        );
        let mounts = self.mounts.clone();
        let extras = self.extras.clone();
        let measures: Vec<Measure> = context
            .meters()
            .iter()
            .map(|meter| Measure {
                meter: meter.clone(),
                service_time: self.service_time,
            })
            .collect();
        let idempotency = Idempotency {
            replays: context.replays.clone(),
        };
        let metrics = context.metrics.clone();
        // Requests served, all endpoints together: the capabilities' own
        // meters break them down for the heartbeat's load.
        let served = metrics.requests.endpoint("/*");
        App::new()
            .wrap(served)
            .app_data(web::Data::from(context))
            .configure(crate::metrics::mount(metrics))
            .service(endpoint("/health").route(web::get().to(health)))
            .service(endpoint("/ready").route(web::get().to(ready)))
            .configure(move |config| {
                for (index, mount) in &mounts {
                    mount(config, &measures[*index], &idempotency);
                }
                for extra in &extras {
                    extra(config);
                }
            })
            .default_service(web::to(not_found))
    }
}

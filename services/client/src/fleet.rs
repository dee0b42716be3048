//! [`CrankClient`]: a fleet's client, bound to its controller. This file has
//! what asks the controller: [`CrankClient::route`], the fleet's lists, and
//! plain `GET`/`POST`; calling workers is in [`super::call`].

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use crank_proto::wire::{CapabilityList, RouteRequest, RouteResponse, WorkerList};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::{not_sent, refusal, retry_after};
use super::report::Reports;
use super::watcher::LocalView;
use super::{ClientError, OutcomeSink};
use crank_net::https::mtls_client;
use crank_net::tls::{client_config_for, ExpectedPeer, TlsFiles};

/// Time allowed for each call unless [`CrankClient::with_timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest answer read whole.
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;
/// Workers whose connections a client keeps at once; past it they are all
/// dropped and made again as needed.
const MAX_WORKER_CLIENTS: usize = 256;

/// What a route asks for besides the capability.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Constraints {
    /// A semver requirement such as `^1` or `>=1.2, <2`.
    pub version: Option<String>,
    /// Workers the caller would rather not be handed (a hint the controller
    /// may not know; [`CrankClient::call`] adds the provider that failed it).
    pub exclude: Vec<String>,
    /// How the controller chooses among the providers: `least_loaded`,
    /// `round_robin` or `cheapest`; `None`: the controller's default.
    pub strategy: Option<String>,
    /// `low`, `normal` or `high`; `None`: normal. While the capability
    /// breaches its SLO, the controller sheds `low` routes.
    pub priority: Option<String>,
    /// Routes for this key reach the same provider while it lives
    /// (rendezvous hashing): set from [`Request::with_idempotency_key`](super::Request::with_idempotency_key).
    pub idempotency_key: Option<String>,
}

impl Constraints {
    /// Any version of the capability, from any provider.
    pub fn any() -> Self {
        Constraints::default()
    }

    /// Versions that satisfy the semver requirement `requirement`.
    pub fn version(requirement: &str) -> Self {
        Constraints {
            version: Some(requirement.to_owned()),
            ..Constraints::default()
        }
    }
}

/// The worker a route named: who it must be, where it is, and what it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutedWorker {
    pub worker_id: String,
    pub worker_url: String,
    /// `<verb>:<name>`.
    pub capability: String,
    /// The version of the capability it serves.
    pub version: Option<String>,
}

impl RoutedWorker {
    /// A worker known without a route (its id and URL), for calling it directly.
    pub fn at(worker_id: &str, worker_url: &str) -> Self {
        RoutedWorker {
            worker_id: worker_id.to_owned(),
            worker_url: worker_url.to_owned(),
            capability: String::new(),
            version: None,
        }
    }
}

impl From<RouteResponse> for RoutedWorker {
    fn from(route: RouteResponse) -> Self {
        RoutedWorker {
            worker_id: route.worker_id,
            worker_url: route.worker_url,
            capability: route.capability,
            version: route.version,
        }
    }
}

/// How a [`CrankClient`] chooses the worker of a call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Balance {
    /// Ask the controller (`POST /route`) for every call: the default, and
    /// what a simple caller wants.
    #[default]
    Controller,
    /// Choose locally from the providers the controller's `GET /watch`
    /// stream announces, by this client's own measurements
    /// ([`Providers`](super::providers::Providers)): one round trip per call
    /// instead of two, and calls go on while every controller is down.
    Local,
}

/// A client of one fleet: its controller at a URL, the client certificate of
/// a cert directory, and one keep-alive connection pool per worker it calls.
///
/// It talks only to a controller (a server whose certificate is
/// `controller/*`) at the controller URL, and to a routed worker only if its
/// certificate is that worker's ([`ExpectedPeer::Worker`]). Like awc's
/// client, it lives on one thread.
pub struct CrankClient {
    pub(super) controller: awc::Client,
    pub(super) controller_url: String,
    pub(super) files: TlsFiles,
    pub(super) timeout: Duration,
    pub(super) workers: RefCell<HashMap<String, awc::Client>>,
    pub(super) outcomes: Option<Rc<dyn OutcomeSink>>,
    /// Whether each attempt's outcome is reported to the controller.
    pub(super) reports: bool,
    /// Reports on their way, and until when they are dropped after a `429`.
    pub(super) reports_state: Reports,
    pub(super) balance: Balance,
    /// Every controller given, the first one the one asked in controller
    /// mode; in local mode the watch stream is resumed on each in turn.
    pub(super) controller_urls: Vec<String>,
    /// Local mode's view of the fleet, made with the first call.
    pub(super) local: RefCell<Option<Rc<LocalView>>>,
}

impl CrankClient {
    /// A client of the controller at `controller_url` with the certificate of
    /// `files`, allowing [`DEFAULT_TIMEOUT`] for each call. `controller_url`
    /// may be a comma-separated list of a cluster's controllers: the first is
    /// asked, and a local-mode client ([`Balance::Local`]) follows the watch
    /// stream of any of them.
    pub fn new(controller_url: &str, files: TlsFiles) -> Result<Self, ClientError> {
        Self::with_timeout(controller_url, files, DEFAULT_TIMEOUT)
    }

    /// [`CrankClient::new`], allowing `timeout` for each call (to the head of
    /// the answer; a stream's events may take as long as they take).
    pub fn with_timeout(
        controller_url: &str,
        files: TlsFiles,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        let tls = client_config_for(&files, ExpectedPeer::Controller { name: None })?;
        let controller_urls: Vec<String> = controller_url
            .split(',')
            .map(|url| url.trim().trim_end_matches('/').to_owned())
            .filter(|url| !url.is_empty())
            .collect();
        Ok(CrankClient {
            controller: mtls_client(Arc::new(tls), timeout),
            controller_url: controller_urls.first().cloned().unwrap_or_default(),
            files,
            timeout,
            workers: RefCell::new(HashMap::new()),
            outcomes: None,
            reports: true,
            reports_state: Reports::default(),
            balance: Balance::Controller,
            controller_urls,
            local: RefCell::new(None),
        })
    }

    /// Chooses workers as `balance` says ([`Balance::Controller`] unless set).
    pub fn with_balance(mut self, balance: Balance) -> Self {
        self.balance = balance;
        self
    }

    pub fn balance(&self) -> Balance {
        self.balance
    }

    /// Hands the outcome of every attempt of [`CrankClient::call`] to `sink`.
    pub fn on_outcome(mut self, sink: Rc<dyn OutcomeSink>) -> Self {
        self.outcomes = Some(sink);
        self
    }

    /// Stops reporting outcomes to the controller (`POST /report`), which
    /// then ejects no provider on this client's word: for callers whose
    /// failures say nothing of the provider, and to measure what the reports
    /// are worth.
    pub fn without_reports(mut self) -> Self {
        self.reports = false;
        self
    }

    /// The HTTP client that reaches the controller (it checks the server is a
    /// controller), for requests the library does not make itself, such as a
    /// `GET /watch` stream.
    pub fn controller_http(&self) -> &awc::Client {
        &self.controller
    }

    /// The controller's URL, without a trailing `/`.
    pub fn controller_url(&self) -> &str {
        &self.controller_url
    }

    /// `GET` of `path` on the controller, the answer read as `T`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.controller_url);
        let sent = self.controller.get(&url).send().await;
        read(sent, &url, self.timeout).await
    }

    /// `POST` of `body` as JSON to `path` on the controller, the answer read as `T`.
    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.controller_url);
        let sent = traced(self.controller.post(&url)).send_json(body).await;
        read(sent, &url, self.timeout).await
    }

    /// Every registered worker.
    pub async fn workers(&self) -> Result<WorkerList, ClientError> {
        self.get("/workers").await
    }

    /// Every capability, with how many workers serve it.
    pub async fn capabilities(&self) -> Result<CapabilityList, ClientError> {
        self.get("/capabilities").await
    }

    /// Asks the controller which worker serves `verb` `capability` under
    /// `constraints`.
    pub async fn route(
        &self,
        verb: &str,
        capability: &str,
        constraints: &Constraints,
    ) -> Result<RoutedWorker, ClientError> {
        let request = RouteRequest {
            version: constraints.version.clone(),
            exclude: constraints.exclude.clone(),
            strategy: constraints.strategy.clone(),
            priority: constraints.priority.clone().map(serde_json::Value::String),
            idempotency_key: constraints.idempotency_key.clone(),
            ..RouteRequest::new(verb, capability)
        };
        let mut answer = self.post::<RouteResponse>("/route", &request).await;
        // Rate-limited or shed: wait as asked, once, if that fits in the
        // call's time; a longer wait is the caller's to decide.
        if let Err(ClientError::Refused {
            status: 429 | 503,
            retry_after: Some(wait),
            ..
        }) = &answer
        {
            if *wait <= self.timeout {
                log::debug!("the controller asked to retry {verb}:{capability} after {wait:?}");
                actix_rt::time::sleep(*wait).await;
                answer = self.post::<RouteResponse>("/route", &request).await;
            }
        }
        match answer {
            Ok(route) => Ok(route.into()),
            Err(ClientError::Refused {
                status: 404,
                code: Some(code),
                detail,
                ..
            }) if code == "no_worker_available" => Err(ClientError::NoWorkerAvailable {
                capability: format!("{verb}:{capability}"),
                detail,
            }),
            Err(other) => Err(other),
        }
    }

    /// The connection pool for worker `worker_id`, made on first use: it
    /// completes a TLS handshake only with that worker's certificate.
    pub(super) fn worker_client(&self, worker_id: &str) -> Result<awc::Client, ClientError> {
        let mut workers = self.workers.borrow_mut();
        if let Some(client) = workers.get(worker_id) {
            return Ok(client.clone());
        }
        if workers.len() >= MAX_WORKER_CLIENTS {
            workers.clear();
        }
        let tls = client_config_for(&self.files, ExpectedPeer::Worker(worker_id.to_owned()))?;
        let client = mtls_client(Arc::new(tls), self.timeout);
        workers.insert(worker_id.to_owned(), client.clone());
        Ok(client)
    }
}

/// The answer `sent` by `url`: a 2xx read as `T`, anything else the error it
/// says (its [`ErrorBody`](crank_proto::wire::ErrorBody) detail, if it has one).
async fn read<T: DeserializeOwned>(
    sent: Result<awc::ClientResponse, awc::error::SendRequestError>,
    url: &str,
    timeout: Duration,
) -> Result<T, ClientError> {
    let mut response = sent.map_err(|e| not_sent(url, timeout, e))?;
    let status = response.status();
    let wait = retry_after(response.headers());
    let body =
        response
            .body()
            .limit(MAX_ANSWER_BYTES)
            .await
            .map_err(|e| ClientError::Unreachable {
                url: url.to_owned(),
                detail: format!("reading the answer: {e}"),
            })?;
    if !status.is_success() {
        return Err(refusal(url, status, wait, &body));
    }
    serde_json::from_slice(&body).map_err(|e| ClientError::Unreadable {
        url: url.to_owned(),
        status: status.as_u16(),
        problem: e.to_string(),
    })
}

/// `request` with the current trace context's headers (none outside a
/// traced call): the controller's and the worker's spans join the caller's.
pub(crate) fn traced(mut request: awc::ClientRequest) -> awc::ClientRequest {
    for header in crank_trace::propagation::current_headers() {
        request = request.insert_header(header);
    }
    request
}

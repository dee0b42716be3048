//! Calling workers: [`Request`], [`Reply`], [`CrankClient::send`] (one worker,
//! its identity checked) and [`CrankClient::call`] (route, call, and once
//! more on another provider if the first fails).

use std::rc::Rc;

use tokio::time::Instant;

use actix_web::web::Bytes;
use awc::http::Method;
use crank_proto::domain::ObservedLoad;
use crank_proto::wire::{
    AnswerLoad, CRANK_LOAD_HEADER, IDEMPOTENCY_KEY_HEADER, IDEMPOTENT_REPLAY_HEADER,
};
use crank_trace::spans;
use crank_trace::{Context, FutureExt, KeyValue, SpanKind, TraceContextExt};
use futures_util::stream::LocalBoxStream;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::{not_sent, refusal, retry_after};
use super::events::{events, Event};
use super::fleet::traced;
use super::watcher::{self, LocalView};
use super::{Balance, CallOutcome, ClientError, Constraints, CrankClient, RoutedWorker};

/// Largest error answer read for its detail.
const MAX_REFUSAL_BYTES: usize = 64 * 1024;
/// Largest answer [`Reply::json`] and [`Reply::bytes`] read.
const MAX_REPLY_BYTES: usize = 16 * 1024 * 1024;

/// One request to a worker: a method, a path on the worker's URL, and a JSON
/// body or none.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    method: Method,
    path: String,
    body: Option<Bytes>,
    /// The caller's `Idempotency-Key`, if it chose one: then routes carry it
    /// too, and reach the worker that kept the answer (rendezvous hashing).
    idempotency_key: Option<String>,
}

impl Request {
    /// `GET path`.
    pub fn get(path: &str) -> Self {
        Request {
            method: Method::GET,
            path: path.to_owned(),
            body: None,
            idempotency_key: None,
        }
    }

    /// Sends `key` as the call's `Idempotency-Key` (1 to 255 printable
    /// ASCII characters), to every attempt and in the route request: a
    /// worker on the library runs the call once per key and replays its
    /// answer to a retry. Without it, [`CrankClient::call`] makes a key of
    /// its own for the call's two attempts.
    pub fn with_idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// `POST path` with `body` as JSON.
    pub fn post(path: &str, body: &impl Serialize) -> Result<Self, ClientError> {
        let body = serde_json::to_vec(body).map_err(|e| ClientError::Encode(e.to_string()))?;
        Ok(Request {
            method: Method::POST,
            path: path.to_owned(),
            body: Some(body.into()),
            idempotency_key: None,
        })
    }
}

/// A worker's 2xx answer, its body not read yet: read it whole
/// ([`Reply::json`], [`Reply::bytes`]) or as it streams ([`Reply::events`]).
/// Dropped unread, it closes its connection (the rest of the body is still
/// on it), and the next call to that worker pays a TLS handshake.
pub struct Reply {
    /// Who answered.
    pub worker: RoutedWorker,
    pub status: u16,
    /// The worker's load as its `crank-load` header stated it, if it sent one.
    pub load: Option<ObservedLoad>,
    /// The worker answered from memory: an earlier call with the same
    /// `Idempotency-Key` ran the handler (`X-Idempotent-Replay: true`).
    pub replayed: bool,
    url: String,
    response: awc::ClientResponse,
}

impl Reply {
    /// The whole body, read as `T`.
    pub async fn json<T: DeserializeOwned>(self) -> Result<T, ClientError> {
        let (url, status) = (self.url.clone(), self.status);
        let bytes = self.bytes().await?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Unreadable {
            url,
            status,
            problem: e.to_string(),
        })
    }

    /// The whole body.
    pub async fn bytes(mut self) -> Result<Bytes, ClientError> {
        let url = self.url.clone();
        self.response
            .body()
            .limit(MAX_REPLY_BYTES)
            .await
            .map_err(|e| ClientError::Unreachable {
                url,
                detail: format!("reading the answer: {e}"),
            })
    }

    /// The body as Server-Sent Events, each as it arrives, until the worker
    /// ends the stream (or the stream is dropped, which closes it).
    pub fn events(self) -> LocalBoxStream<'static, Result<Event, ClientError>> {
        events(self.response, self.url)
    }
}

/// A fresh key for one call: 128 random bits in hex.
fn call_key() -> String {
    format!("{:032x}", rand::random::<u128>())
}

impl CrankClient {
    /// Sends `request` to `worker`, over a connection whose server proved
    /// with its certificate that it is that worker
    /// ([`ExpectedPeer::Worker`](crank_net::tls::ExpectedPeer::Worker)). No route,
    /// no retry. A 2xx is a [`Reply`]; anything else is a [`ClientError::Worker`].
    pub async fn send(
        &self,
        worker: &RoutedWorker,
        request: &Request,
    ) -> Result<Reply, ClientError> {
        let url = format!(
            "{}{}",
            worker.worker_url.trim_end_matches('/'),
            request.path
        );
        let in_worker = |source: ClientError| ClientError::Worker {
            worker_id: worker.worker_id.clone(),
            source: Box::new(source),
        };
        let client = self.worker_client(&worker.worker_id).map_err(in_worker)?;
        let mut outgoing = traced(client.request(request.method.clone(), &url));
        if let Some(key) = &request.idempotency_key {
            outgoing = outgoing.insert_header((IDEMPOTENCY_KEY_HEADER, key.as_str()));
        }
        let sent = match &request.body {
            Some(body) => {
                outgoing
                    .content_type("application/json")
                    .send_body(body.clone())
                    .await
            }
            None => outgoing.send().await,
        };
        let mut response = sent.map_err(|e| in_worker(not_sent(&url, self.timeout, e)))?;
        let status = response.status();
        let wait = retry_after(response.headers());
        if !status.is_success() {
            let body = response
                .body()
                .limit(MAX_REFUSAL_BYTES)
                .await
                .unwrap_or_default();
            return Err(in_worker(refusal(&url, status, wait, &body)));
        }
        let load = response
            .headers()
            .get(CRANK_LOAD_HEADER)
            .and_then(|value| value.to_str().ok())
            .and_then(AnswerLoad::parse_header)
            .and_then(|load| ObservedLoad::try_from(&load).ok());
        let replayed = response
            .headers()
            .get(IDEMPOTENT_REPLAY_HEADER)
            .is_some_and(|value| value.as_bytes() == b"true");
        Ok(Reply {
            worker: worker.clone(),
            status: status.as_u16(),
            load,
            replayed,
            url,
            response,
        })
    }

    /// Routes `verb` `capability` under `constraints`, sends `request` to the
    /// worker the controller names ([`CrankClient::send`]: its certificate
    /// must be that worker's), and if that worker fails the call (unreachable,
    /// not who the route named, too slow, a 5xx: see
    /// [`ClientError::is_worker_failure`]) routes once more, asking the
    /// controller to exclude it, and sends the request there. A 4xx is the
    /// request's fault and is not retried.
    ///
    /// Every attempt carries the call's `Idempotency-Key`. When the first got
    /// no answer though the request may have run ([`ClientError::answer_lost`]:
    /// a timeout, a connection broken after sending), the retry goes to the
    /// same worker, which replays the answer it kept (or says the call is
    /// still in flight, `409`) rather than run it a second time elsewhere;
    /// only if that worker is then unreachable (gone, with what it kept)
    /// does a third attempt go to another.
    ///
    /// A controller that does not know `exclude` may name the failed worker
    /// again; then there is no second call, and the first failure is returned.
    /// Each attempt's [`CallOutcome`] goes to the sink given to
    /// [`CrankClient::on_outcome`], if any.
    ///
    /// While this process exports spans ([`crank_trace::export`]), the call
    /// is a client span, child of the current context's, whose context goes
    /// with the route, the attempts and their reports (`traceparent`).
    /// Without an exporter the current context, if any, is passed on as is.
    pub async fn call(
        &self,
        verb: &str,
        capability: &str,
        constraints: &Constraints,
        request: &Request,
    ) -> Result<Reply, ClientError> {
        if !spans::exporting() {
            return self.call_once(verb, capability, constraints, request).await;
        }
        let context = spans::start(
            format!("call {verb}:{capability}"),
            SpanKind::Client,
            &Context::current(),
            vec![KeyValue::new(
                "crank.capability",
                format!("{verb}:{capability}"),
            )],
        );
        let result = self
            .call_once(verb, capability, constraints, request)
            .with_context(context.clone())
            .await;
        let span = context.span();
        match &result {
            Ok(reply) => span.set_attribute(KeyValue::new(
                "crank.worker_id",
                reply.worker.worker_id.clone(),
            )),
            Err(error) => span.set_attribute(KeyValue::new("error.type", error.to_string())),
        }
        spans::finish(&context, result.as_ref().err().map(ToString::to_string));
        result
    }

    /// [`CrankClient::call`] in the current trace context.
    async fn call_once(
        &self,
        verb: &str,
        capability: &str,
        constraints: &Constraints,
        request: &Request,
    ) -> Result<Reply, ClientError> {
        // One key for the call's attempts: a retry after a lost answer is
        // answered, not run again. Only a key the caller chose goes into the
        // route (its own keys leave the choice to load).
        let constraints = &Constraints {
            idempotency_key: request.idempotency_key.clone(),
            ..constraints.clone()
        };
        let keyed;
        let request = match request.idempotency_key {
            Some(_) => request,
            None => {
                keyed = request.clone().with_idempotency_key(call_key());
                &keyed
            }
        };
        if self.balance == Balance::Local && constraints.version.is_none() {
            return self
                .call_locally(verb, capability, constraints, request)
                .await;
        }
        let first = self.route(verb, capability, constraints).await?;
        let failure = match self.attempt(&first, request, 1).await {
            Ok(reply) => return Ok(reply),
            Err(error) if !error.is_worker_failure() => return Err(error),
            Err(error) => error,
        };
        let mut attempts = 1;
        let failure = if failure.answer_lost() {
            // It may have run there: the retry goes where its answer is kept.
            log::debug!(
                "worker {} gave no answer to a call of {}; asking it again under the same key",
                first.worker_id,
                first.capability
            );
            match self.attempt(&first, request, 2).await {
                Ok(reply) => return Ok(reply),
                // Gone, and what it kept with it: another may run the call.
                Err(error) if error.is_unreachable() => {
                    attempts = 2;
                    error
                }
                Err(error) => return Err(error),
            }
        } else {
            failure
        };
        let mut retry = constraints.clone();
        retry.exclude.push(first.worker_id.clone());
        let second = match self.route(verb, capability, &retry).await {
            Ok(second) if !retry.exclude.contains(&second.worker_id) => second,
            _ => return Err(failure),
        };
        log::debug!(
            "worker {} failed a call of {}; trying worker {}",
            first.worker_id,
            first.capability,
            second.worker_id
        );
        self.attempt(&second, request, attempts + 1).await
    }

    /// [`CrankClient::call`] in local mode: the worker chosen from the watch
    /// stream's providers, and once more on another if it fails.
    async fn call_locally(
        &self,
        verb: &str,
        capability: &str,
        constraints: &Constraints,
        request: &Request,
    ) -> Result<Reply, ClientError> {
        let key = format!("{verb}:{capability}");
        let view = self.local_view().await;
        let round_robin = constraints.strategy.as_deref() == Some("round_robin");
        let mut exclude = constraints.exclude.clone();
        let mut failure = None;
        let mut again: Option<RoutedWorker> = None;
        // Two attempts, and a third when the second asked a worker that lost
        // its answer again and found it gone.
        let mut allowed = 2;
        let mut attempt = 0;
        while attempt < allowed {
            attempt += 1;
            let asking_again = again.is_some();
            let chosen = again.take().or_else(|| {
                view.providers
                    .borrow_mut()
                    .choose(&key, &exclude, round_robin, Instant::now())
            });
            let Some(worker) = chosen else {
                return Err(failure.unwrap_or_else(|| ClientError::NoWorkerAvailable {
                    capability: key.clone(),
                    detail: format!(
                        "no live provider of {key} among the {} the watch stream announced",
                        view.providers.borrow().len()
                    ),
                }));
            };
            match self.attempt(&worker, request, attempt).await {
                Ok(reply) => return Ok(reply),
                Err(error) if !error.is_worker_failure() => return Err(error),
                Err(error) => {
                    // As through the controller: a lost answer is asked for
                    // again where it may be kept.
                    if error.answer_lost() && !asking_again {
                        again = Some(worker.clone());
                    } else if asking_again && error.is_unreachable() {
                        allowed = 3;
                    }
                    exclude.push(worker.worker_id.clone());
                    failure = Some(error);
                }
            }
        }
        Err(failure.unwrap_or_else(|| ClientError::NoWorkerAvailable {
            capability: key,
            detail: "no provider answered".to_owned(),
        }))
    }

    /// Local mode's view, its watcher started with the first call, which
    /// waits up to the call timeout for the first snapshot.
    async fn local_view(&self) -> Rc<LocalView> {
        let existing = self.local.borrow().clone();
        let view = match existing {
            Some(view) => view,
            None => {
                let view = Rc::new(LocalView::default());
                *self.local.borrow_mut() = Some(view.clone());
                actix_rt::spawn(watcher::follow(
                    Rc::downgrade(&view),
                    self.controller.clone(),
                    self.controller_urls.clone(),
                ));
                view
            }
        };
        if !watcher::loaded(&view, self.timeout).await {
            log::warn!(
                "no watch snapshot from {} within {:?}: no provider is known yet",
                self.controller_urls.join(", "),
                self.timeout
            );
        }
        view
    }

    /// [`CrankClient::send`], its outcome recorded.
    async fn attempt(
        &self,
        worker: &RoutedWorker,
        request: &Request,
        attempt: u8,
    ) -> Result<Reply, ClientError> {
        let started = Instant::now();
        let local = self
            .local
            .borrow()
            .clone()
            .filter(|_| self.balance == Balance::Local);
        if let Some(view) = &local {
            view.providers.borrow_mut().started(&worker.worker_id);
        }
        let result = self.send(worker, request).await;
        let load = result.as_ref().ok().and_then(|reply| reply.load);
        let (status, failure) = match &result {
            Ok(reply) => (Some(reply.status), None),
            Err(error) => (
                error.status(),
                error.is_worker_failure().then(|| error.to_string()),
            ),
        };
        let outcome = CallOutcome {
            worker_id: worker.worker_id.clone(),
            capability: worker.capability.clone(),
            attempt,
            status,
            latency: started.elapsed(),
            failure,
            load,
        };
        // A worker at capacity is busy, not failing: its heartbeat tells the
        // controller so, and ejecting it would only shift its load.
        let busy = result.as_ref().is_err_and(ClientError::is_at_capacity);
        if let Some(view) = &local {
            // Local mode judges providers itself and leaves the controller
            // out of the call altogether.
            let mut providers = view.providers.borrow_mut();
            let ejected = if busy {
                providers.refused_busy(&worker.worker_id);
                None
            } else {
                providers.finished(
                    &worker.worker_id,
                    outcome.latency,
                    outcome.succeeded(),
                    load,
                    Instant::now(),
                )
            };
            if let Some(length) = ejected {
                log::warn!(
                    "worker {} failed {} calls in a row: this client leaves it out for {} s",
                    worker.worker_id,
                    crank_balance::ejection::EJECT_AFTER_FAILURES,
                    length.as_secs()
                );
            }
        } else if self.reports && !busy {
            self.report(&outcome);
        }
        if let Some(sink) = &self.outcomes {
            sink.record(&outcome);
        }
        result
    }
}

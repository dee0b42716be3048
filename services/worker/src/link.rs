//! `HttpControllerLink`: the worker's `ControllerLink` over HTTPS with mutual TLS,
//! with awc. Each link owns one keep-alive client, created on the thread of the
//! actor that uses it (awc clients are not `Send`), and every call has a timeout.

use crank_net::https::mtls_client;
use std::sync::Arc;
use std::time::Duration;

use actix_web::web::Bytes;
use awc::error::SendRequestError;
use awc::http::StatusCode;
use crank_agent::link::{ControllerLink, LinkError};
use crank_proto::wire::{
    DeregisterQuery, ErrorBody, HeartbeatAnswer, HeartbeatRequest, HeartbeatStatus,
    RegisterRequest, RegisterResponse,
};
use futures_util::future::LocalBoxFuture;
use futures_util::FutureExt;
use rustls::ClientConfig;

/// The controller at `base_url`, reached over mTLS.
#[derive(Clone)]
pub struct HttpControllerLink {
    client: awc::Client,
    base_url: String,
    timeout: Duration,
}

impl HttpControllerLink {
    pub fn new(base_url: &str, tls: Arc<ClientConfig>, timeout: Duration) -> Self {
        HttpControllerLink {
            client: mtls_client(tls, timeout),
            base_url: base_url.trim_end_matches('/').to_owned(),
            timeout,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }
}

fn send_error(timeout: Duration) -> impl Fn(SendRequestError) -> LinkError {
    move |error| match error {
        SendRequestError::Timeout => LinkError::Timeout(timeout),
        other => LinkError::Unreachable(other.to_string()),
    }
}

/// Largest controller answer read.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Reads a whole answer. Reading it, even when it is not needed, is what hands
/// the connection back to awc's pool: an unread body closes it, and the next
/// heartbeat would pay a new TLS handshake.
async fn read_answer<S>(response: &mut awc::ClientResponse<S>) -> Bytes
where
    S: futures_util::Stream<Item = Result<Bytes, awc::error::PayloadError>> + Unpin,
{
    response
        .body()
        .limit(MAX_ANSWER_BYTES)
        .await
        .unwrap_or_default()
}

/// An error answer as a `LinkError`: its `detail` if it is crank's
/// [`ErrorBody`], else its text; a `429`, or a `503` with `Retry-After`, is
/// [`LinkError::Throttled`].
fn rejection(status: StatusCode, retry_after: Option<Duration>, body: &[u8]) -> LinkError {
    let detail = serde_json::from_slice::<ErrorBody>(body)
        .map(|error| error.detail)
        .unwrap_or_else(|_| String::from_utf8_lossy(body).into_owned());
    let throttled = status == StatusCode::TOO_MANY_REQUESTS
        || (status == StatusCode::SERVICE_UNAVAILABLE && retry_after.is_some());
    if throttled {
        return LinkError::Throttled {
            retry_after: retry_after.unwrap_or(Duration::from_secs(1)),
            detail,
        };
    }
    LinkError::Rejected {
        status: status.as_u16(),
        detail,
    }
}

impl ControllerLink for HttpControllerLink {
    fn register(
        &self,
        request: RegisterRequest,
    ) -> LocalBoxFuture<'static, Result<RegisterResponse, LinkError>> {
        let sent = self.client.post(self.url("/register")).send_json(&request);
        let timeout = self.timeout;
        async move {
            let mut response = sent.await.map_err(send_error(timeout))?;
            let status = response.status();
            let wait = crank_net::https::retry_after(response.headers());
            let body = read_answer(&mut response).await;
            if !status.is_success() {
                return Err(rejection(status, wait, &body));
            }
            serde_json::from_slice::<RegisterResponse>(&body).map_err(|e| LinkError::Rejected {
                status: status.as_u16(),
                detail: format!("unreadable registration answer: {e}"),
            })
        }
        .boxed_local()
    }

    fn heartbeat(
        &self,
        request: HeartbeatRequest,
    ) -> LocalBoxFuture<'static, Result<(), LinkError>> {
        let sent = self.client.post(self.url("/heartbeat")).send_json(&request);
        let timeout = self.timeout;
        async move {
            let mut response = sent.await.map_err(send_error(timeout))?;
            let status = response.status();
            let body = read_answer(&mut response).await;
            if status.is_success() {
                return Ok(());
            }
            let unknown = status == StatusCode::NOT_FOUND
                && serde_json::from_slice::<HeartbeatAnswer>(&body)
                    .is_ok_and(|answer| answer.status == HeartbeatStatus::UnknownWorker);
            if unknown {
                return Err(LinkError::UnknownWorker);
            }
            let superseded = status == StatusCode::CONFLICT
                && serde_json::from_slice::<HeartbeatAnswer>(&body)
                    .is_ok_and(|answer| answer.status == HeartbeatStatus::Superseded);
            if superseded {
                return Err(LinkError::Superseded);
            }
            Err(rejection(status, None, &body))
        }
        .boxed_local()
    }

    fn deregister(
        &self,
        worker_id: &str,
        instance: Option<&str>,
    ) -> LocalBoxFuture<'static, Result<(), LinkError>> {
        let query = DeregisterQuery {
            instance: instance.map(str::to_owned),
        };
        let request = self
            .client
            .delete(self.url(&format!("/deregister/{worker_id}")));
        let sent = match request.query(&query) {
            Ok(request) => request.send(),
            Err(e) => {
                return async move { Err(LinkError::Unreachable(e.to_string())) }.boxed_local()
            }
        };
        let timeout = self.timeout;
        async move {
            let mut response = sent.await.map_err(send_error(timeout))?;
            let status = response.status();
            let body = read_answer(&mut response).await;
            if status.is_success() {
                Ok(())
            } else if status == StatusCode::CONFLICT
                && serde_json::from_slice::<ErrorBody>(&body).is_ok_and(|e| e.error == "superseded")
            {
                Err(LinkError::Superseded)
            } else {
                Err(rejection(status, None, &body))
            }
        }
        .boxed_local()
    }

    fn describe(&self) -> String {
        self.base_url.clone()
    }
}

//! [`ClientError`]: why a call through the client library failed.

use std::time::Duration;

use awc::error::SendRequestError;
use awc::http::StatusCode;
use crank_proto::wire::ErrorBody;

use crank_net::tls::TlsError;

/// Why a call to the controller or to a worker failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The client's certificate, key or CA cannot be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A request body could not be written as JSON.
    #[error("cannot write the request body as JSON: {0}")]
    Encode(String),
    /// No connection: refused, reset, DNS, or a TLS handshake that failed
    /// (the server is not who the client expects included).
    #[error("cannot reach {url}: {detail}")]
    Unreachable { url: String, detail: String },
    /// No answer in time.
    #[error("{url} did not answer within {timeout:?}")]
    Timeout { url: String, timeout: Duration },
    /// The connection broke after the request was (perhaps) sent, before
    /// an answer: the work may have been done.
    #[error("{url}: the connection broke before an answer: {detail}")]
    Lost { url: String, detail: String },
    /// The controller has no live worker for the capability.
    #[error("{detail} (HTTP 404)")]
    NoWorkerAvailable { capability: String, detail: String },
    /// An answer other than 2xx: its `detail` if it is crank's [`ErrorBody`],
    /// else its text.
    #[error("{detail} (HTTP {status})")]
    Refused {
        url: String,
        status: u16,
        /// The [`ErrorBody::error`] code, if the answer had one.
        code: Option<String>,
        detail: String,
        /// How long the server asked to wait before trying again
        /// (`Retry-After` in seconds, as a `429` or a `503` sends it).
        retry_after: Option<Duration>,
    },
    /// A 2xx answer the client cannot read as what it asked for.
    #[error("{url} answered HTTP {status} with a body that cannot be read: {problem}")]
    Unreadable {
        url: String,
        status: u16,
        problem: String,
    },
    /// A call to the worker `worker_id` failed.
    #[error("worker {worker_id}: {source}")]
    Worker {
        worker_id: String,
        source: Box<ClientError>,
    },
}

impl ClientError {
    /// Whether the worker is to blame rather than the request: it could not be
    /// reached, did not answer in time, answered a server error (5xx), or
    /// answered what cannot be read. Such a call is worth another attempt: on
    /// another provider, or on the same one when its answer was lost
    /// ([`ClientError::answer_lost`]).
    pub fn is_worker_failure(&self) -> bool {
        match self {
            ClientError::Worker { source, .. } => source.is_worker_failure(),
            ClientError::Unreachable { .. }
            | ClientError::Timeout { .. }
            | ClientError::Lost { .. }
            | ClientError::Unreadable { .. } => true,
            ClientError::Refused { status, .. } => *status >= 500,
            ClientError::Tls(_)
            | ClientError::Encode(_)
            | ClientError::NoWorkerAvailable { .. } => false,
        }
    }

    /// Whether the request may have run at the worker though no answer
    /// came back (a timeout, a connection broken after sending): its answer
    /// may be kept there under the call's idempotency key, so a retry belongs
    /// on the same worker, where it is replayed rather than run again.
    pub fn answer_lost(&self) -> bool {
        match self {
            ClientError::Worker { source, .. } => source.answer_lost(),
            ClientError::Timeout { .. } | ClientError::Lost { .. } => true,
            _ => false,
        }
    }

    /// Whether the worker could not be reached at all: nothing was sent, and
    /// nothing it kept can be asked for any more.
    pub fn is_unreachable(&self) -> bool {
        match self {
            ClientError::Worker { source, .. } => source.is_unreachable(),
            ClientError::Unreachable { .. } => true,
            _ => false,
        }
    }

    /// Whether the worker was only busy: it answered `503 at_capacity`, so the
    /// call is worth another provider, but the worker is not failing.
    pub fn is_at_capacity(&self) -> bool {
        match self {
            ClientError::Worker { source, .. } => source.is_at_capacity(),
            ClientError::Refused {
                status: 503,
                code: Some(code),
                ..
            } => code == "at_capacity",
            _ => false,
        }
    }

    /// The HTTP status of the answer that failed, if there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Worker { source, .. } => source.status(),
            ClientError::Refused { status, .. } | ClientError::Unreadable { status, .. } => {
                Some(*status)
            }
            ClientError::NoWorkerAvailable { .. } => Some(404),
            _ => None,
        }
    }
}

/// A request to `url` that got no answer.
pub(crate) fn not_sent(url: &str, timeout: Duration, error: SendRequestError) -> ClientError {
    match error {
        SendRequestError::Timeout => ClientError::Timeout {
            url: url.to_owned(),
            timeout,
        },
        // Never connected, or never built: nothing reached the worker.
        error @ (SendRequestError::Connect(_)
        | SendRequestError::Url(_)
        | SendRequestError::Http(_)
        | SendRequestError::TunnelNotSupported) => ClientError::Unreachable {
            url: url.to_owned(),
            detail: error.to_string(),
        },
        other => ClientError::Lost {
            url: url.to_owned(),
            detail: other.to_string(),
        },
    }
}

pub(crate) use crank_net::https::retry_after;

/// A non-2xx answer of `url`.
pub(crate) fn refusal(
    url: &str,
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
) -> ClientError {
    let (code, detail) = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(error) => (Some(error.error), error.detail),
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let words: Vec<&str> = text.split_whitespace().collect();
            let detail = match words.is_empty() {
                true => format!("{url} answered with no explanation"),
                false => words.join(" "),
            };
            (None, detail)
        }
    };
    ClientError::Refused {
        url: url.to_owned(),
        status: status.as_u16(),
        code,
        detail,
        retry_after,
    }
}

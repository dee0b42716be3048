//! The one error type of crank's HTTP APIs. Every error answers JSON with at least
//! `{"error": "<code>", "detail": "<sentence>"}`, so a client can branch on the
//! code and a person can read the detail.

use actix::MailboxError;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use crank_proto::domain::FieldError;
use crank_proto::wire::ErrorBody;

use crate::identity::NotAllowed;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the request body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("invalid field {0}")]
    InvalidField(FieldError),
    #[error("invalid {0}")]
    InvalidInput(FieldError),
    #[error("the request body is larger than the {limit}-byte limit")]
    PayloadTooLarge { limit: usize },
    #[error("Content-Type must be application/json, not {0:?}")]
    UnsupportedMediaType(String),
    #[error("the request body could not be read: {0}")]
    Payload(String),
    #[error("{0}")]
    RequestTimeout(String),
    #[error("no usable client identity: {0}")]
    NoIdentity(String),
    #[error(transparent)]
    IdentityMismatch(#[from] NotAllowed),
    #[error("worker {0} is not registered")]
    UnknownWorker(String),
    #[error("instance {instance} of worker {worker_id} was replaced by a newer registration of that id; the record was kept")]
    Superseded { worker_id: String, instance: String },
    #[error("No worker available for {0}")]
    NoWorkerAvailable(String),
    #[error("no endpoint {method} {path}")]
    NotFound { method: String, path: String },
    #[error("{method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
    #[error("{capability} is serving {capacity} requests, its capacity; try another provider or again shortly")]
    AtCapacity { capability: String, capacity: u32 },
    #[error("the registry did not answer: {0}")]
    Mailbox(#[from] MailboxError),
    #[error(
        "this controller serves no watch stream (its registry was started without a watch hub)"
    )]
    WatchUnavailable,
    #[error("a request with Idempotency-Key {0:?} is still being answered; retry once it is")]
    IdempotencyInFlight(String),
    #[error("Idempotency-Key {0:?} was used for a different request (method, path or body)")]
    IdempotencyReused(String),
    #[error("{0}")]
    PolicyDenied(String),
    #[error("{detail}")]
    RateLimited { detail: String, retry_after_s: u64 },
    #[error("{detail}")]
    SloViolation { detail: String, retry_after_s: u64 },
}

impl From<FieldError> for ApiError {
    fn from(error: FieldError) -> Self {
        ApiError::InvalidField(error)
    }
}

impl ApiError {
    /// The machine-readable code of the `error` key.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::MalformedJson(_) => "malformed_json",
            ApiError::InvalidField(_) => "invalid_field",
            ApiError::InvalidInput(_) => "invalid_input",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::Payload(_) => "bad_request",
            ApiError::RequestTimeout(_) => "request_timeout",
            ApiError::NoIdentity(_) => "no_identity",
            ApiError::IdentityMismatch(_) => "identity_mismatch",
            ApiError::UnknownWorker(_) => "unknown_worker",
            ApiError::Superseded { .. } => "superseded",
            ApiError::NoWorkerAvailable(_) => "no_worker_available",
            ApiError::NotFound { .. } => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::AtCapacity { .. } => "at_capacity",
            ApiError::Mailbox(_) => "registry_unavailable",
            ApiError::WatchUnavailable => "watch_unavailable",
            ApiError::PolicyDenied(_) => "policy_denied",
            ApiError::IdempotencyInFlight(_) => "idempotency_key_in_flight",
            ApiError::IdempotencyReused(_) => "idempotency_key_reused",
            ApiError::RateLimited { .. } => "rate_limit_exceeded",
            ApiError::SloViolation { .. } => "slo_violation",
        }
    }
}

impl ApiError {
    /// The JSON body of this error.
    pub fn body(&self) -> ErrorBody {
        let field = match self {
            ApiError::InvalidField(field) | ApiError::InvalidInput(field) => {
                Some(field.field.clone())
            }
            _ => None,
        };
        ErrorBody {
            error: self.code().to_owned(),
            detail: self.to_string(),
            field,
        }
    }
}

/// The one table from error to HTTP status.
impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::MalformedJson(_) | ApiError::InvalidInput(_) | ApiError::Payload(_) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::InvalidField(_) | ApiError::IdempotencyReused(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::IdempotencyInFlight(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::NoIdentity(_) | ApiError::IdentityMismatch(_) | ApiError::PolicyDenied(_) => {
                StatusCode::FORBIDDEN
            }
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::UnknownWorker(_)
            | ApiError::NoWorkerAvailable(_)
            | ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Superseded { .. } => StatusCode::CONFLICT,
            ApiError::AtCapacity { .. }
            | ApiError::Mailbox(_)
            | ApiError::WatchUnavailable
            | ApiError::SloViolation { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if matches!(self, ApiError::RequestTimeout(_)) {
            // The rest of the body may still be on its way: do not wait for it.
            response.force_close();
        }
        if let ApiError::RateLimited { retry_after_s, .. }
        | ApiError::SloViolation { retry_after_s, .. } = self
        {
            response.insert_header((actix_web::http::header::RETRY_AFTER, *retry_after_s));
        }
        response.json(self.body())
    }
}

//! The JSON answers every crank app gives for what it does not serve: 404 for
//! an unknown path, 405 for a known path with the wrong method. The controller
//! and the workers mount them the same way.

use actix_web::{web, HttpRequest, HttpResponse, ResponseError};

use crate::error::ApiError;

/// A resource whose wrong-method answer is crank's JSON 405.
pub fn endpoint(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

/// JSON 404 for paths no endpoint serves; an app's `default_service`.
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

//! The controller's app in process (`actix_web::test`), without TLS: a
//! registry for it, and one request with a chosen caller.

use actix::Addr;
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use crank_net::caller::Caller;
use crank_net::identity::PeerIdentity;
use crank_registry::{RegistryActor, RegistrySettings};
use serde_json::Value;

/// A registry with the default settings and its sweeper.
pub fn registry() -> Addr<RegistryActor> {
    RegistryActor::start_with_sweeper(
        RegistrySettings::default(),
        std::time::Duration::from_secs(5),
    )
}

/// Sends `req` as `as_` (no identity: `None`); the status and the JSON body,
/// which must be served as `application/json`.
pub async fn call<S, B>(app: &S, req: TestRequest, as_: Option<PeerIdentity>) -> (StatusCode, Value)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let req = req.to_request();
    if let Some(identity) = as_ {
        Caller::attach(&req, identity);
    }
    let response = test::call_service(app, req).await;
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = test::read_body(response).await;
    assert_eq!(
        content_type.as_deref(),
        Some("application/json"),
        "status {status}, body {body:?}"
    );
    (status, serde_json::from_slice(&body).expect("a JSON body"))
}

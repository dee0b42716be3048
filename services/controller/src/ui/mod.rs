//! `GET /ui`: the fleet dashboard, one page of plain HTML, CSS and JavaScript
//! embedded in the binary (no CDN, no build step). It draws the fleet live from
//! `GET /watch` (`EventSource`), its throughput from `GET /metrics`, and a
//! worker's full record from `GET /workers/{id}`, all with the browser's client
//! certificate, so the same identity rule applies: every identity may view it.

use actix_web::http::header::{self, CacheControl, CacheDirective};
use actix_web::{web, HttpResponse};

use crank_net::caller::Caller;
use crank_net::fallback::endpoint;
use crank_net::metrics::RequestMetrics;

const PAGE: &str = include_str!("dashboard.html");
const SCRIPT: &str = include_str!("dashboard.js");
const STYLE: &str = include_str!("dashboard.css");

/// Only this origin's own files and requests: nothing is fetched elsewhere.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Adds the dashboard's routes to an app, counted in `requests`.
pub fn mount(requests: &RequestMetrics) -> impl FnOnce(&mut web::ServiceConfig) {
    let requests = requests.clone();
    move |config| {
        let observed = |path: &'static str| endpoint(path).wrap(requests.endpoint(path));
        config
            .service(observed("/ui").route(web::get().to(page)))
            .service(observed("/ui/dashboard.js").route(web::get().to(script)))
            .service(observed("/ui/dashboard.css").route(web::get().to(style)));
    }
}

fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(CacheControl(vec![CacheDirective::NoCache]))
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .body(body)
}

async fn page(_: Caller) -> HttpResponse {
    asset("text/html; charset=utf-8", PAGE)
}

async fn script(_: Caller) -> HttpResponse {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

async fn style(_: Caller) -> HttpResponse {
    asset("text/css; charset=utf-8", STYLE)
}

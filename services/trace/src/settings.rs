//! The one tracing setting, shared by the controller, the workers and
//! `crank call`.

use crank_net::config::Setting;
use url::Url;

/// Where spans go: an OTLP/HTTP collector's base URL; spans are posted to
/// `URL/v1/traces`. Unset: nothing is exported.
pub const OTLP_ENDPOINT: Setting = Setting {
    key: "otlp_endpoint",
    flag: "otlp-endpoint",
    env: "OTEL_EXPORTER_OTLP_ENDPOINT",
    value_name: "URL",
    default: None,
    help: "OpenTelemetry collector (OTLP over HTTP): spans are posted to URL/v1/traces; unset = no spans exported, trace context still passed on",
};

/// An OTLP endpoint: an `http` URL (a collector beside the process, as
/// OpenTelemetry Collector agents run); empty means unset.
pub fn otlp_endpoint(value: &str) -> Result<Option<Url>, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let url = Url::parse(value).map_err(|e| format!("{value:?} is not a URL: {e}"))?;
    match url.scheme() {
        "http" => Ok(Some(url)),
        other => Err(format!(
            "{value:?}: scheme {other} is not http (OTLP over plain HTTP to a local collector)"
        )),
    }
}

/// Where [`OTLP_ENDPOINT`]'s spans are posted.
pub fn traces_url(endpoint: &Url) -> String {
    format!("{}/v1/traces", endpoint.as_str().trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_http_urls_and_traces_go_under_v1() {
        let url = otlp_endpoint("http://127.0.0.1:4318").unwrap().unwrap();
        assert_eq!(traces_url(&url), "http://127.0.0.1:4318/v1/traces");
        let url = otlp_endpoint("http://otel.example/base/").unwrap().unwrap();
        assert_eq!(traces_url(&url), "http://otel.example/base/v1/traces");
        assert!(otlp_endpoint("https://otel.example").is_err());
        assert_eq!(otlp_endpoint(" ").unwrap(), None);
        assert!(otlp_endpoint("grpc://x:4317")
            .unwrap_err()
            .contains("scheme"));
        assert!(otlp_endpoint("nonsense").is_err());
    }
}

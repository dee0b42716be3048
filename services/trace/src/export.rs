//! OTLP export: spans batched on the SDK's own thread and posted as
//! protobuf to `URL/v1/traces` (feature `otlp`).

use url::Url;

/// Why spans cannot be exported as configured.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("OTLP exporter for {url}: {detail}")]
    Build { url: String, detail: String },
    #[error("--otlp-endpoint {url}: this build has no OTLP exporter (cargo feature otlp)")]
    NotBuilt { url: String },
}

/// The installed exporter: [`Exporter::shutdown`] (or dropping it) sends the
/// spans still batched.
#[must_use = "dropping the exporter stops exporting"]
pub struct Exporter {
    #[cfg(feature = "otlp")]
    provider: opentelemetry_sdk::trace::SdkTracerProvider,
}

impl Exporter {
    /// Sends what is batched and stops.
    pub fn shutdown(self) {}
}

impl Drop for Exporter {
    fn drop(&mut self) {
        #[cfg(feature = "otlp")]
        if let Err(error) = self.provider.shutdown() {
            log::warn!("tracing: spans not all exported at shutdown: {error}");
        }
    }
}

/// Installs an exporter to `endpoint` for the process named `service` (the
/// spans' `service.name`; `instance`, a worker's id, their
/// `service.instance.id`): from now on [`crate::spans`] records. `None` when
/// `endpoint` is `None`.
pub fn install(
    service: &str,
    instance: Option<&str>,
    endpoint: Option<&Url>,
) -> Result<Option<Exporter>, ExportError> {
    let Some(endpoint) = endpoint else {
        return Ok(None);
    };
    build(service, instance, endpoint).map(Some)
}

#[cfg(feature = "otlp")]
fn build(service: &str, instance: Option<&str>, endpoint: &Url) -> Result<Exporter, ExportError> {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry::KeyValue;
    use opentelemetry_otlp::{Protocol, WithExportConfig};
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use opentelemetry_sdk::Resource;

    let url = crate::settings::traces_url(endpoint);
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url.clone())
        .build()
        .map_err(|e| ExportError::Build {
            url: url.clone(),
            detail: e.to_string(),
        })?;
    let mut resource = Resource::builder().with_service_name(service.to_owned());
    if let Some(instance) = instance {
        resource =
            resource.with_attribute(KeyValue::new("service.instance.id", instance.to_owned()));
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    if !crate::spans::install(provider.tracer("crank")) {
        return Err(ExportError::Build {
            url,
            detail: "an exporter is already installed in this process".into(),
        });
    }
    log::info!("tracing: spans exported over OTLP/HTTP to {url}");
    Ok(Exporter { provider })
}

#[cfg(not(feature = "otlp"))]
fn build(_service: &str, _instance: Option<&str>, endpoint: &Url) -> Result<Exporter, ExportError> {
    Err(ExportError::NotBuilt {
        url: endpoint.to_string(),
    })
}

/// [`install`], except that a build without the exporter says so in one
/// warning and goes on without spans: `OTEL_EXPORTER_OTLP_ENDPOINT` is often
/// set for a whole host, and must not stop a process that cannot use it.
pub fn install_or_warn(
    service: &str,
    instance: Option<&str>,
    endpoint: Option<&Url>,
) -> Result<Option<Exporter>, ExportError> {
    match install(service, instance, endpoint) {
        Err(error @ ExportError::NotBuilt { .. }) => {
            log::warn!("{error}; no spans are exported (trace context is still passed on)");
            Ok(None)
        }
        other => other,
    }
}

//! Logging and tracing, set up once in `main`.
//!
//! Spans go to stderr through `tracing-subscriber`, filtered by `RUST_LOG`
//! (default `info,sqlx=warn`), and to an OTLP collector over gRPC when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set. W3C trace context (`traceparent`) is
//! read from incoming calls and written on outgoing ones.

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::{
    Context, global,
    propagation::{Extractor, Injector},
    trace::TracerProvider as _,
};
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{EnvFilter, layer::SubscriberExt, util::SubscriberInitExt};

/// Flushes and stops the OTLP exporter when dropped.
#[derive(Debug)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(err) = provider.shutdown()
        {
            eprintln!("orgplane: flushing traces failed: {err}");
        }
    }
}

/// Installs the global subscriber and propagator, exporting to
/// `OTEL_EXPORTER_OTLP_ENDPOINT` when set. `service` names the process in
/// exported traces. Call once.
pub fn init(service: &str) -> anyhow::Result<TelemetryGuard> {
    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok();
    init_with(service, endpoint.as_deref().filter(|e| !e.is_empty()))
}

/// Like [`init`], with the OTLP/gRPC endpoint given (`None`: no export).
/// The exporter still reads the other `OTEL_EXPORTER_OTLP_*` settings.
pub fn init_with(service: &str, otlp_endpoint: Option<&str>) -> anyhow::Result<TelemetryGuard> {
    use opentelemetry_otlp::WithExportConfig;
    global::set_text_map_propagator(TraceContextPropagator::new());
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);

    let provider = match otlp_endpoint {
        Some(endpoint) => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .build()?;
            Some(
                SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(
                        Resource::builder()
                            .with_service_name(service.to_owned())
                            .build(),
                    )
                    .build(),
            )
        }
        None => None,
    };
    let otel = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("orgplane")));
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init()?;
    Ok(TelemetryGuard { provider })
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(key), HeaderValue::try_from(value)) {
            self.0.insert(name, value);
        }
    }
}

/// The trace context a caller sent in `headers`.
pub fn extract_context(headers: &HeaderMap) -> Context {
    global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)))
}

/// Writes the current span's trace context into outgoing `headers`.
pub fn inject_current_context(headers: &mut HeaderMap) {
    let cx = tracing::Span::current().context();
    global::get_text_map_propagator(|p| p.inject_context(&cx, &mut HeaderInjector(headers)));
}

/// A tonic interceptor for clients between services: carries the current
/// trace context to the callee.
pub fn propagate_trace_context(
    mut req: tonic::Request<()>,
) -> Result<tonic::Request<()>, tonic::Status> {
    let mut headers = HeaderMap::new();
    inject_current_context(&mut headers);
    for (name, value) in &headers {
        if let Ok(value) = tonic::metadata::MetadataValue::try_from(value.as_bytes())
            && let Ok(key) = tonic::metadata::MetadataKey::from_bytes(name.as_str().as_bytes())
        {
            req.metadata_mut().insert(key, value);
        }
    }
    Ok(req)
}

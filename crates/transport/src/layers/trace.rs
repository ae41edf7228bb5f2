//! One tracing span per call, a child of the W3C trace context the caller
//! sent, so a request is one trace from the gateway to every backend.

use std::task::{Context, Poll};

use tower::{Layer, Service};
use tracing::{Instrument, instrument::Instrumented};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::telemetry;

/// See the module docs.
#[derive(Debug, Clone, Copy)]
pub struct TraceLayer {
    service: &'static str,
}

impl TraceLayer {
    /// Spans are tagged with `service`.
    pub fn new(service: &'static str) -> Self {
        Self { service }
    }
}

impl<S> Layer<S> for TraceLayer {
    type Service = Trace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Trace {
            inner,
            service: self.service,
        }
    }
}

/// See [`TraceLayer`].
#[derive(Debug, Clone)]
pub struct Trace<S> {
    inner: S,
    service: &'static str,
}

impl<S, B> Service<http::Request<B>> for Trace<S>
where
    S: Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Instrumented<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let span = tracing::info_span!(
            "grpc",
            otel.kind = "server",
            service = self.service,
            rpc.method = %req.uri().path(),
        );
        let _ = span.set_parent(telemetry::extract_context(req.headers()));
        let future = span.in_scope(|| self.inner.call(req));
        future.instrument(span)
    }
}

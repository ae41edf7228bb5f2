//! Per-method call metrics, by the names of the gRPC ecosystem's Prometheus
//! interceptors (go-grpc-prometheus), so that its dashboards and alerts
//! apply: `grpc_server_handled_total` (by `grpc_code`) and the
//! `grpc_server_handling_seconds` histogram, each labelled with `server`
//! (the orgplane server: `gateway`, `identity`…), `grpc_service` and
//! `grpc_method`.
//!
//! A call ends with its status: in the response headers when it fails
//! before any message (trailers-only), else in the trailers that close the
//! body; a body dropped before its end is a call the client cancelled.
//! A path that names no method of `proto/`, health or reflection is counted
//! as `unknown`: a caller cannot grow the label set by making paths up.

use std::{
    pin::Pin,
    task::{Context, Poll, ready},
    time::Instant,
};

use http_body::{Body, Frame};
use tonic::Code;
use tower::{Layer, Service};

/// See the module docs.
#[derive(Debug, Clone, Copy)]
pub struct MetricsLayer {
    server: &'static str,
}

impl MetricsLayer {
    /// Metrics labelled `server`.
    pub fn new(server: &'static str) -> Self {
        Self { server }
    }
}

impl<S> Layer<S> for MetricsLayer {
    type Service = Metrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Metrics {
            inner,
            server: self.server,
        }
    }
}

/// See [`MetricsLayer`].
#[derive(Debug, Clone)]
pub struct Metrics<S> {
    inner: S,
    server: &'static str,
}

impl<S, B, ResBody> Service<http::Request<B>> for Metrics<S>
where
    S: Service<http::Request<B>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: Body,
{
    type Response = http::Response<MetricsBody<ResBody>>;
    type Error = S::Error;
    type Future = Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let (service, method) = split_path(req.uri().path());
        let call = Call {
            server: self.server,
            service,
            method,
            start: Instant::now(),
        };
        let response = self.inner.call(req);
        Box::pin(async move {
            let response = match response.await {
                Ok(response) => response,
                Err(err) => {
                    call.end(Code::Unknown);
                    return Err(err);
                }
            };
            // Trailers-only: the status is in the headers, the body empty.
            let pending = match status_of(response.headers()) {
                Some(code) => {
                    call.end(code);
                    Pending(None)
                }
                None => Pending(Some(call)),
            };
            Ok(response.map(|inner| MetricsBody { inner, pending }))
        })
    }
}

/// Methods served somewhere in orgplane — every method of `proto/`,
/// health and reflection — by path, with their labels: `'static`, made
/// once (a few hundred), so that a call's labels cost no allocation.
static KNOWN: std::sync::LazyLock<
    std::collections::HashMap<&'static str, (&'static str, &'static str)>,
> = std::sync::LazyLock::new(|| {
    orgplane_proto::read_methods()
        .into_iter()
        .chain(orgplane_proto::mutating_methods())
        .chain(
            [
                "/grpc.health.v1.Health/Check",
                "/grpc.health.v1.Health/Watch",
                "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
            ]
            .map(String::from),
        )
        .filter_map(|path| {
            let path: &'static str = path.leak();
            let (service, method) = path.trim_start_matches('/').split_once('/')?;
            Some((path, (service, method)))
        })
        .collect()
});

/// `(service, method)` of a gRPC path `/package.Service/Method` that names
/// a known method; `unknown` twice for any other.
fn split_path(path: &str) -> (&'static str, &'static str) {
    KNOWN.get(path).copied().unwrap_or(("unknown", "unknown"))
}

fn status_of(headers: &http::HeaderMap) -> Option<Code> {
    headers
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<i32>().ok())
        .map(Code::from_i32)
}

/// A call under way.
struct Call {
    server: &'static str,
    service: &'static str,
    method: &'static str,
    start: Instant,
}

impl Call {
    fn end(self, code: Code) {
        let (service, method) = (self.service, self.method);
        metrics::counter!(
            "grpc_server_handled_total",
            "server" => self.server,
            "grpc_service" => service,
            "grpc_method" => method,
            "grpc_code" => code_name(code),
        )
        .increment(1);
        metrics::histogram!(
            "grpc_server_handling_seconds",
            "server" => self.server,
            "grpc_service" => service,
            "grpc_method" => method,
        )
        .record(self.start.elapsed().as_secs_f64());
    }
}

/// The call, until its status is known; dropped unknown, it was cancelled.
struct Pending(Option<Call>);

impl Pending {
    fn end(&mut self, code: Code) {
        if let Some(call) = self.0.take() {
            call.end(code);
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.end(Code::Cancelled);
    }
}

pin_project_lite::pin_project! {
    /// A response body that ends its call's metrics with the status in its
    /// trailers.
    pub struct MetricsBody<B> {
        #[pin]
        inner: B,
        pending: Pending,
    }
}

impl<B: Body> Body for MetricsBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        match &frame {
            Some(Ok(frame)) => {
                if let Some(trailers) = frame.trailers_ref() {
                    this.pending
                        .end(status_of(trailers).unwrap_or(Code::Unknown));
                }
            }
            Some(Err(_)) => this.pending.end(Code::Unknown),
            // Ended without trailers: no status was sent.
            None => this.pending.end(Code::Unknown),
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The status code's name as gRPC spells it (`OK`, `NotFound`…).
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_service_and_method() {
        assert_eq!(
            split_path("/orgplane.identity.v1.AuthService/Login"),
            ("orgplane.identity.v1.AuthService", "Login")
        );
        assert_eq!(
            split_path("/grpc.health.v1.Health/Check"),
            ("grpc.health.v1.Health", "Check")
        );
        for odd in [
            "/",
            "",
            "/nomethod",
            "//x",
            "/orgplane.identity.v1.AuthService/MadeUp",
            "/made.Up/Login",
        ] {
            assert_eq!(split_path(odd), ("unknown", "unknown"), "{odd}");
        }
    }
}

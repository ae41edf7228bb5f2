//! Traces: with an OTLP endpoint configured, every server exports its spans,
//! and the W3C trace context the gateway sends makes the backend's span a
//! child of the gateway's, across the real mTLS socket. Its own test binary:
//! the tracing subscriber is global to a process.

use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::any_value::Value,
    trace::v1::Span,
};
use orgplane_e2e::TestStack;
use orgplane_proto::identity::GetCurrentUserRequest;
use tonic::transport::server::TcpIncoming;

/// A collector that keeps every span it receives.
#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<Span>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.0.lock().unwrap();
        for resource in request.into_inner().resource_spans {
            for scope in resource.scope_spans {
                spans.extend(scope.spans);
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes.iter().find(|a| a.key == key).and_then(|a| {
        match a.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some(s.clone()),
            _ => None,
        }
    })
}

#[tokio::test]
async fn spans_are_exported_and_one_call_is_one_trace() {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let server = tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(collector.clone()))
        .serve_with_incoming(TcpIncoming::from(listener));
    tokio::spawn(server);

    let guard = orgplane_transport::telemetry::init_with("orgplane-test", Some(&endpoint)).unwrap();
    let t = TestStack::start().await;
    let token = t.user("traced").await;
    t.users_as(&token)
        .get_current_user(GetCurrentUserRequest {})
        .await
        .unwrap();
    // Stopping the servers ends every span (a server's span can end just
    // after its client has the answer); shutting the provider down then
    // flushes them all.
    let orgplane_e2e::TestStack { stack, .. } = t;
    stack.stop().await.unwrap();

    tokio::task::spawn_blocking(move || drop(guard))
        .await
        .unwrap();

    let spans = collector.0.lock().unwrap().clone();
    let method = "/orgplane.identity.v1.UserService/GetCurrentUser";
    let of = |service: &str| {
        spans
            .iter()
            .find(|s| {
                attribute(s, "service").as_deref() == Some(service)
                    && attribute(s, "rpc.method").as_deref() == Some(method)
            })
            .unwrap_or_else(|| {
                let seen: Vec<_> = spans
                    .iter()
                    .map(|s| {
                        (
                            attribute(s, "service"),
                            attribute(s, "rpc.method"),
                            s.name.clone(),
                        )
                    })
                    .collect();
                panic!("no {service} span for {method} among {seen:?}")
            })
            .clone()
    };
    let gateway = of("gateway");
    let identity = of("identity");
    assert_eq!(identity.trace_id, gateway.trace_id, "one call, one trace");
    assert!(
        !identity.parent_span_id.is_empty(),
        "the backend span has a remote parent"
    );
    assert_ne!(identity.span_id, gateway.span_id);
}

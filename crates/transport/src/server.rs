//! The one way orgplane serves gRPC: every server gets health, reflection
//! (v1 and v1alpha) limited to what it serves, tracing, panic catching,
//! deadlines and graceful shutdown, in a fixed order.
//!
//! ```text
//! request → trace → metrics → catch panic → [CORS → gRPC-Web] → [caller identity] → routes
//! ```
//! Backends always run mTLS with a [`CallerPolicy`]; only the gateway's
//! public listener may be plaintext (h2c on loopback in dev) or plain TLS.

use std::{convert::Infallible, future::Future, time::Duration};

use anyhow::Context as _;
use tokio::net::TcpListener;
use tonic::{
    server::NamedService,
    service::Routes,
    transport::{Server, ServerTlsConfig, server::TcpIncoming},
};
use tonic_health::ServingStatus;
use tower::{ServiceBuilder, util::option_layer};

use crate::layers::{
    caller::{CallerLayer, CallerPolicy},
    catch_panic::CatchPanicLayer,
    cors::CorsOrigins,
    metrics::MetricsLayer,
    trace::TraceLayer,
};

/// How long a call may run when the caller sets no deadline.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a server that was asked to stop lets its in-flight calls run
/// on; then it closes what is still open (streams, which have no end of
/// their own) and returns.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Builds and runs one gRPC server.
pub struct GrpcServer {
    name: &'static str,
    routes: Routes,
    served: Vec<String>,
    tls: Option<ServerTlsConfig>,
    /// The internal ports' mTLS, done here so that certificates are
    /// reloaded when their files change.
    mtls: Option<crate::pki::ServiceTls>,
    policy: Option<CallerPolicy>,
    grpc_web: bool,
    cors: CorsOrigins,
    request_timeout: Duration,
    drain_delay: Duration,
    on_drain: Vec<tokio::sync::watch::Sender<bool>>,
}

impl std::fmt::Debug for GrpcServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcServer")
            .field("name", &self.name)
            .field("served", &self.served)
            .finish_non_exhaustive()
    }
}

impl GrpcServer {
    /// A server named `name` (in logs and spans) with nothing served yet.
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            routes: Routes::default(),
            served: Vec::new(),
            tls: None,
            mtls: None,
            policy: None,
            grpc_web: false,
            cors: CorsOrigins::default(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            drain_delay: Duration::ZERO,
            on_drain: Vec::new(),
        }
    }

    /// How long the server, once asked to stop, reports `NOT_SERVING` while
    /// it still accepts calls, before it stops accepting: long enough for
    /// load balancers and Kubernetes to stop sending it new calls (a
    /// rolling restart then fails none). Zero by default.
    pub fn drain_delay(mut self, delay: Duration) -> Self {
        self.drain_delay = delay;
        self
    }

    /// Sets `draining` to true when the server starts draining, so that
    /// calls without an end of their own (streams) can end cleanly.
    pub fn on_drain(mut self, draining: tokio::sync::watch::Sender<bool>) -> Self {
        self.on_drain.push(draining);
        self
    }

    /// Serves a generated service; it is reported healthy and described by
    /// reflection.
    pub fn add_service<S>(mut self, svc: S) -> Self
    where
        S: tower::Service<
                http::Request<tonic::body::Body>,
                Response = http::Response<tonic::body::Body>,
                Error = Infallible,
            > + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.served.push(S::NAME.to_owned());
        self.routes = self.routes.add_service(svc);
        self
    }

    /// Routes every method of the service `name` to `svc` without decoding
    /// (the gateway's proxy). The service is described by reflection.
    pub fn add_passthrough<S>(mut self, name: &str, svc: S) -> Self
    where
        S: tower::Service<
                http::Request<tonic::body::Body>,
                Response = http::Response<tonic::body::Body>,
                Error = Infallible,
            > + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        use tower::ServiceExt;
        self.served.push(name.to_owned());
        let router = std::mem::take(self.routes.axum_router_mut());
        *self.routes.axum_router_mut() = router.route_service(
            &format!("/{name}/{{*method}}"),
            svc.map_request(|req: http::Request<axum::body::Body>| req.map(tonic::body::Body::new)),
        );
        self
    }

    /// Requires mTLS: clients must chain to the internal CA, and `policy`
    /// decides which identities may call which methods. Its certificate
    /// and CA bundle follow their files
    /// ([`crate::pki::ServiceTls::rustls_server`]).
    pub fn mtls(mut self, tls: &crate::pki::ServiceTls, policy: CallerPolicy) -> Self {
        self.mtls = Some(tls.clone());
        self.policy = Some(policy);
        self
    }

    /// Serves TLS without client certificates (the gateway's public side).
    pub fn tls(mut self, tls: ServerTlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Also accepts gRPC-Web (HTTP/1.1) calls.
    pub fn grpc_web(mut self) -> Self {
        self.grpc_web = true;
        self
    }

    /// Lets pages on `origins` call from a browser (CORS preflights answered,
    /// responses marked); none by default.
    pub fn cors(mut self, origins: CorsOrigins) -> Self {
        self.cors = origins;
        self
    }

    /// Deadline of calls that carry none (`grpc-timeout` wins when shorter).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Serves on `listener` until `shutdown` completes; then reports
    /// `NOT_SERVING`, goes on accepting for the [`GrpcServer::drain_delay`],
    /// stops accepting and lets in-flight calls finish — for at most
    /// [`DRAIN_TIMEOUT`], after which open calls are closed.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        let (health, health_service) = tonic_health::server::health_reporter();
        for name in &self.served {
            health
                .set_service_status(name, ServingStatus::Serving)
                .await;
        }
        let reflection = || {
            let mut builder = tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(orgplane_proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                .with_service_name("grpc.health.v1.Health");
            for name in &self.served {
                builder = builder.with_service_name(name.clone());
            }
            builder
        };
        let (v1, v1alpha) = (reflection().build_v1()?, reflection().build_v1alpha()?);
        let routes = self
            .routes
            .add_service(health_service)
            .add_service(v1)
            .add_service(v1alpha)
            .prepare();

        let local = listener.local_addr()?;
        let stack = ServiceBuilder::new()
            .layer(TraceLayer::new(self.name))
            .layer(MetricsLayer::new(self.name))
            .layer(CatchPanicLayer)
            .layer(option_layer(self.cors.layer()))
            .layer(option_layer(
                self.grpc_web.then(tonic_web::GrpcWebLayer::new),
            ))
            .layer(option_layer(self.policy.map(CallerLayer::new)))
            .into_inner();
        let mut server = Server::builder()
            .accept_http1(self.grpc_web)
            .timeout(self.request_timeout)
            .http2_keepalive_interval(Some(Duration::from_secs(30)));
        if let Some(tls) = self.tls {
            server = server.tls_config(tls).context("configuring TLS")?;
        }
        tracing::info!(server = self.name, addr = %local, "serving");
        let health_on_shutdown = health.clone();
        let served = self.served.clone();
        let (draining, drain_started) = tokio::sync::oneshot::channel::<()>();
        let on_drain = self.on_drain;
        let drain_delay = self.drain_delay;
        let signal = async move {
            shutdown.await;
            for name in served.iter().map(String::as_str).chain([""]) {
                health_on_shutdown
                    .set_service_status(name, ServingStatus::NotServing)
                    .await;
            }
            if !drain_delay.is_zero() {
                tracing::info!(addr = %local, delay = ?drain_delay, "not serving: accepting calls until the drain delay ends");
                tokio::time::sleep(drain_delay).await;
            }
            for draining in &on_drain {
                draining.send_replace(true);
            }
            tracing::info!(addr = %local, "draining in-flight calls");
            let _ = draining.send(());
        };
        let router = server.layer(stack).add_routes(routes);
        let (serving, _accepting): (Serving<'_>, _) = match self.mtls {
            Some(tls) => {
                let (incoming, accepting) = tls_incoming(listener, tls.rustls_server()?);
                (
                    Box::pin(router.serve_with_incoming_shutdown(incoming, signal)),
                    Some(accepting),
                )
            }
            None => {
                let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
                (
                    Box::pin(router.serve_with_incoming_shutdown(incoming, signal)),
                    None,
                )
            }
        };
        let drain_bound = async {
            if drain_started.await.is_ok() {
                tokio::time::sleep(DRAIN_TIMEOUT).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            served = serving => served.context("serving gRPC")?,
            () = drain_bound => {
                tracing::warn!(addr = %local, "calls still open after the drain timeout are closed");
            }
        }
        Ok(())
    }
}

/// A server until it stops.
type Serving<'a> =
    std::pin::Pin<Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send + 'a>>;

/// How long a client may take over its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Stops accepting when dropped.
struct Accepting(tokio::task::JoinHandle<()>);

impl Drop for Accepting {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The connections accepted on `listener` whose TLS handshake with
/// `config` completes — each in a task of its own, for at most
/// [`HANDSHAKE_TIMEOUT`], so that a slow or hostile client holds up no
/// other — until the server stops taking them (it drops the stream when it
/// drains: the listener closes with it, and new connections are refused,
/// which clients send elsewhere) or the returned guard is dropped.
fn tls_incoming(
    listener: TcpListener,
    config: std::sync::Arc<rustls::ServerConfig>,
) -> (
    impl futures::Stream<
        Item = Result<tokio_rustls::server::TlsStream<tokio::net::TcpStream>, std::io::Error>,
    > + Send
    + 'static,
    Accepting,
) {
    let (handed, taken) = tokio::sync::mpsc::channel(128);
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let accepting = tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = handed.closed() => return,
                accepted = listener.accept() => accepted,
            };
            let tcp = match accepted {
                Ok((tcp, _)) => tcp,
                Err(err) => {
                    // Out of descriptors, say: the next accept may succeed.
                    tracing::warn!(error = %err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let (acceptor, handed) = (acceptor.clone(), handed.clone());
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => {
                        let _ = handed.send(Ok(tls)).await;
                    }
                    Ok(Err(err)) => tracing::debug!(error = %err, "a TLS handshake failed"),
                    Err(_) => tracing::debug!("a TLS handshake timed out"),
                }
            });
        }
    });
    let incoming = futures::stream::unfold(taken, |mut taken| async move {
        taken.recv().await.map(|tls| (tls, taken))
    });
    (incoming, Accepting(accepting))
}

//! The gateway: orgplane's one public endpoint.
//!
//! It authenticates bearer tokens through identity (with a short cache),
//! applies a per-caller rate limit and a default deadline, and forwards each
//! call to the backend that owns its service over pooled mTLS HTTP/2,
//! passing message bodies through as bytes. It serves health, one
//! reflection describing every public service, and gRPC-Web. `*Internal`
//! services are never routed.

pub mod auth;
pub mod proxy;
pub mod rate_limit;
pub mod streams;

use std::{collections::HashMap, sync::Arc, time::Duration};

use orgplane_proto::{Backend, PUBLIC_SERVICES};
use orgplane_transport::{
    client::mtls_channel, layers::cors::CorsOrigins, pki::ServiceTls, server::GrpcServer,
};
use tonic::transport::ServerTlsConfig;

pub use auth::Authenticator;
pub use proxy::Proxy;
pub use rate_limit::{Limits, RateLimit};

/// The longest a call may run at the gateway, whatever deadline it asks
/// for (streams are not cut: the bound is on the time to the response).
pub const MAX_DEADLINE: Duration = Duration::from_secs(3600);

/// How the gateway runs.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// `host:port` of each deployed backend; a public service whose backend
    /// is missing answers `UNIMPLEMENTED`.
    pub backends: HashMap<Backend, String>,
    /// How long an introspection answer is reused (a revoked token keeps
    /// working at most this long). At most 5 s.
    pub token_cache_ttl: Duration,
    /// Calls per second allowed to one principal, sustained.
    pub rate_limit_per_second: u32,
    /// Calls one principal may make in a burst.
    pub rate_limit_burst: u32,
    /// Calls per second allowed from one client address (an IPv6 /64),
    /// sustained, counted before authentication.
    pub address_rate_limit_per_second: u32,
    /// Calls one client address may make in a burst.
    pub address_rate_limit_burst: u32,
    /// Deadline given to calls that carry none.
    pub default_deadline: Duration,
    /// Origins of the web pages a browser lets call over gRPC-Web; none
    /// by default (same-origin pages only).
    pub cors_origins: CorsOrigins,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            backends: HashMap::new(),
            token_cache_ttl: Duration::from_secs(2),
            rate_limit_per_second: 200,
            rate_limit_burst: 400,
            address_rate_limit_per_second: 1000,
            address_rate_limit_burst: 2000,
            default_deadline: Duration::from_secs(30),
            cors_origins: CorsOrigins::default(),
        }
    }
}

/// Lets the rate limiter drop the buckets of idle callers every minute, for
/// as long as the gateway holds it.
fn forget_idle_callers(rate_limit: &Arc<Limits>) {
    let weak = Arc::downgrade(rate_limit);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        tick.tick().await;
        loop {
            tick.tick().await;
            match weak.upgrade() {
                Some(limit) => limit.shrink(),
                None => return,
            }
        }
    });
}

/// The gateway's server: health, reflection, gRPC-Web (with CORS for the
/// configured origins) and a passthrough
/// route per public service. `public_tls` serves TLS; without it, h2c
/// (plaintext, for loopback in dev). `internal` is the gateway's own mTLS
/// identity towards backends.
pub fn grpc_server(
    config: &GatewayConfig,
    internal: &ServiceTls,
    public_tls: Option<ServerTlsConfig>,
) -> anyhow::Result<GrpcServer> {
    let identity_addr = config.backends.get(&Backend::Identity).ok_or_else(|| {
        anyhow::anyhow!("the gateway needs the identity backend to authenticate callers")
    })?;
    let authenticator = Authenticator::new(
        mtls_channel(identity_addr, Backend::Identity.name(), internal)?,
        config.token_cache_ttl,
    );
    let rate_limit = Arc::new(Limits::new(
        (
            config.address_rate_limit_per_second,
            config.address_rate_limit_burst,
        ),
        (config.rate_limit_per_second, config.rate_limit_burst),
    )?);
    forget_idle_callers(&rate_limit);
    let mut channels = HashMap::new();
    for (backend, addr) in &config.backends {
        channels.insert(*backend, mtls_channel(addr, backend.name(), internal)?);
    }
    let (draining, drain_started) = tokio::sync::watch::channel(false);
    // Revocations are followed until the gateway drains (or its server is
    // dropped, which drops `draining`).
    let mut until_drained = drain_started.clone();
    tokio::spawn(authenticator.clone().follow_revocations(async move {
        let _ = until_drained.wait_for(|draining| *draining).await;
    }));
    let open_streams = streams::OpenStreams::new(drain_started);
    let mut server = GrpcServer::new("gateway")
        .on_drain(draining)
        .grpc_web()
        .cors(config.cors_origins.clone())
        .request_timeout(MAX_DEADLINE.max(config.default_deadline));
    for (service, backend) in PUBLIC_SERVICES {
        let proxy = Proxy::new(
            *backend,
            channels.get(backend).cloned(),
            authenticator.clone(),
            rate_limit.clone(),
            open_streams.clone(),
            config.default_deadline,
        );
        server = server.add_passthrough(service, proxy);
    }
    if let Some(tls) = public_tls {
        server = server.tls(tls);
    }
    Ok(server)
}

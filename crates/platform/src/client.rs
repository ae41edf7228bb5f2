//! Clients between services: pooled HTTP/2 over mTLS to a backend.

use std::time::Duration;

use anyhow::Context;
use tonic::transport::{Channel, Endpoint};

use crate::pki::ServiceTls;

/// A lazily connected channel to the backend `server` (its certificate's DNS
/// name) at `addr` (`host:port`), presenting `tls`. One HTTP/2 connection
/// carries every call; it reconnects on failure.
pub fn mtls_channel(addr: &str, server: &str, tls: &ServiceTls) -> anyhow::Result<Channel> {
    let endpoint = Endpoint::from_shared(format!("https://{addr}"))
        .with_context(|| format!("invalid backend address {addr:?}"))?
        .tls_config(tls.client_config(server))
        .context("configuring client TLS")?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5))
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true)
        .http2_adaptive_window(true);
    Ok(endpoint.connect_lazy())
}

//! Clients between services: pooled HTTP/2 over mTLS to a backend.

use std::time::Duration;

use anyhow::Context;
use tonic::transport::{Channel, Endpoint};

use crate::pki::ServiceTls;

/// Receive window of one stream of a service-to-service connection.
pub const STREAM_WINDOW: u32 = 1024 * 1024;
/// Receive window of a whole service-to-service connection: 256 streams
/// left unread exhaust it, not one.
pub const CONNECTION_WINDOW: u32 = 256 * 1024 * 1024;

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
        // Flow control of a connection many callers share: a caller that
        // stops reading its (large) answer holds up to one stream window of
        // the connection's window. Adaptive windows grew the stream window
        // to the connection's, so one stalled reader stalled every call on
        // the connection (tests/gateway.rs
        // clients_that_stop_reading_do_not_stall_other_callers); fixed
        // windows bound each stream to 1 MiB of a 256 MiB connection window.
        .http2_adaptive_window(false)
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW);
    Ok(endpoint.connect_lazy())
}

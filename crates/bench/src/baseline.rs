//! The two baselines every scenario is measured against, each run as its
//! own process (this binary's hidden subcommands) so their CPU and memory
//! are measured like orgplane's: a bare tonic server answering a trivial
//! unary call (the standard health check), and the same behind a minimal
//! HTTP/2 proxy that passes bytes through — the floor of any gateway hop.

use std::net::SocketAddr;

use anyhow::Context;
use hyper::{Request, body::Incoming, service::service_fn};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::{TokioExecutor, TokioIo},
};
use tokio::net::TcpListener;

/// Serves `grpc.health.v1.Health` (h2c) on `listen` until killed.
pub async fn echo_server(listen: SocketAddr) -> anyhow::Result<()> {
    let (_reporter, health) = tonic_health::server::health_reporter();
    tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .add_service(health)
        .serve(listen)
        .await
        .context("echo server")
}

/// Passes every HTTP/2 request on `listen` to `upstream` and its response
/// back, body and trailers untouched: hyper on both sides, no TLS, no auth,
/// `TCP_NODELAY` on both connections (without it on the upstream side the
/// proxied echo collapses to ~1,500 req/s at 40 ms per call: delayed ACK).
pub async fn proxy(listen: SocketAddr, upstream: SocketAddr) -> anyhow::Result<()> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Client<_, Incoming> = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build(connector);
    let listener = TcpListener::bind(listen).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let client = client.clone();
        let service = service_fn(move |mut request: Request<Incoming>| {
            let client = client.clone();
            async move {
                let path = request
                    .uri()
                    .path_and_query()
                    .map_or("/", |p| p.as_str())
                    .to_owned();
                *request.uri_mut() = format!("http://{upstream}{path}").parse()?;
                anyhow::Ok(client.request(request).await?)
            }
        });
        tokio::spawn(async move {
            let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

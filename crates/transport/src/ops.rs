//! The operations port (`--metrics-listen`): Prometheus metrics and the
//! probes of Kubernetes, over plain HTTP, apart from the gRPC ports.
//!
//! - `GET /metrics`: every metric of the process, in Prometheus' text
//!   format (the [`metrics`] facade, rendered by
//!   `metrics-exporter-prometheus`).
//! - `GET /livez`: 200 while the process answers at all.
//! - `GET /readyz`: 200 once every server of the process is up (migrated,
//!   assembled, listening; in `dev`, the admin created), 503 before and
//!   from the moment it is asked to stop — what `grpc.health.v1` reports as
//!   `SERVING` and `NOT_SERVING`.
//!
//! Why probes here rather than Kubernetes' gRPC probe: the backends speak
//! only mTLS, which that probe cannot; an exec probe (`orgplane probe`)
//! would fork a process every few seconds per pod. An HTTP GET on the
//! plaintext port that already serves metrics costs nothing and says the
//! same as health. The port serves nothing else: no RPC, no data.

use std::{future::Future, sync::OnceLock, time::Duration};

use anyhow::Context as _;
use axum::{Router, extract::State, http::StatusCode, routing::get};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::{net::TcpListener, sync::watch};

/// Buckets of every `_seconds` histogram: 1 ms to 10 s.
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Buckets of every other histogram (counts: batch sizes): powers of two.
const COUNT_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];
/// How often histograms are folded into their buckets between scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The process's metrics recorder, installed by the first call: metrics
/// recorded before it are lost, so a process installs it before it serves.
pub fn recorder() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets(COUNT_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                })
                .expect("histogram buckets are not empty")
                .install_recorder()
                .expect("no other metrics recorder in this process")
        })
        .clone()
}

#[derive(Clone)]
struct Ops {
    metrics: PrometheusHandle,
    ready: watch::Receiver<bool>,
}

/// Serves the operations port on `listener` until `stop` completes;
/// `ready` is the process's readiness.
pub async fn serve(
    listener: TcpListener,
    ready: watch::Receiver<bool>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let metrics = recorder();
    let upkeep = {
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(UPKEEP_INTERVAL);
            loop {
                ticks.tick().await;
                metrics.run_upkeep();
            }
        })
    };
    let app = Router::new()
        .route("/metrics", get(render))
        .route("/livez", get(|| async { "live\n" }))
        .route("/readyz", get(readiness))
        .with_state(Ops { metrics, ready });
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "serving metrics and probes");
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
        .with_context(|| format!("serving metrics on {addr}"));
    upkeep.abort();
    served
}

async fn render(State(ops): State<Ops>) -> ([(&'static str, &'static str); 1], String) {
    (
        [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
        ops.metrics.render(),
    )
}

async fn readiness(State(ops): State<Ops>) -> (StatusCode, &'static str) {
    if *ops.ready.borrow() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

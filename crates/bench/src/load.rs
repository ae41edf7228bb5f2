//! The load engine: N connections × M concurrent streams, each stream
//! calling one request after another for a fixed time; every latency is
//! kept, so the percentiles are exact.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use tonic::{Status, transport::Channel};

/// How hard to push.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// HTTP/2 connections.
    pub connections: usize,
    /// Concurrent streams per connection.
    pub streams: usize,
    /// How long to measure (after a warm-up of a fifth of it, at most 2 s).
    pub duration: Duration,
}

impl Load {
    /// Streams in flight in all.
    pub fn in_flight(&self) -> usize {
        self.connections * self.streams
    }

    pub(crate) fn warm_up(&self) -> Duration {
        (self.duration / 5).min(Duration::from_secs(2))
    }
}

/// What one run of a load measured.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Calls answered OK in the measured window.
    pub requests: u64,
    /// Calls that failed in the measured window.
    pub errors: u64,
    /// The first failure, to tell what went wrong.
    pub first_error: Option<String>,
    /// The measured window.
    pub elapsed: Duration,
    /// Latencies of the successful calls, in microseconds, sorted.
    pub latencies: Vec<u32>,
}

impl Outcome {
    /// Successful calls per second.
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The `q` quantile (0..=1) of the latencies.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let at = ((self.latencies.len() - 1) as f64 * q).round() as usize;
        Duration::from_micros(u64::from(self.latencies[at]))
    }

    fn merge(&mut self, other: Outcome) {
        self.requests += other.requests;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.latencies.extend(other.latencies);
    }
}

/// `connections` HTTP/2 connections to `addr` (h2c), with `TCP_NODELAY`.
pub async fn connect(addr: &str, connections: usize) -> anyhow::Result<Vec<Channel>> {
    let mut channels = Vec::with_capacity(connections);
    for _ in 0..connections {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
            .tcp_nodelay(true)
            .connect()
            .await?;
        channels.push(channel);
    }
    Ok(channels)
}

/// Calls `call` from `load.in_flight()` concurrent loops, stream `s` using
/// `clients[s % clients.len()]` (one client per connection), and measures
/// the window after the warm-up. `call` gets the client and a number unique
/// to this call (for names that must not collide).
pub async fn drive<C, F, Fut>(load: Load, clients: &[C], call: F) -> Outcome
where
    C: Clone + Send + 'static,
    F: Fn(C, u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Status>> + Send,
{
    let start = Instant::now();
    let measure_from = start + load.warm_up();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for s in 0..load.in_flight() {
        let client = clients[s % clients.len()].clone();
        let call = call.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut outcome = Outcome::default();
            let mut n = s as u64;
            while !stop.load(Ordering::Relaxed) {
                let began = Instant::now();
                let result = call(client.clone(), n).await;
                n += 1 << 20;
                if began < measure_from || stop.load(Ordering::Relaxed) {
                    continue;
                }
                match result {
                    Ok(()) => {
                        outcome.requests += 1;
                        let micros = began.elapsed().as_micros().min(u32::MAX as u128) as u32;
                        outcome.latencies.push(micros);
                    }
                    Err(status) => {
                        outcome.errors += 1;
                        outcome
                            .first_error
                            .get_or_insert_with(|| status.to_string());
                    }
                }
            }
            outcome
        }));
    }
    tokio::time::sleep_until((measure_from + load.duration).into()).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = Outcome::default();
    for task in tasks {
        total.merge(task.await.expect("a load task panicked"));
    }
    total.elapsed = load.duration;
    total.latencies.sort_unstable();
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_read_from_the_sorted_latencies() {
        let outcome = Outcome {
            requests: 100,
            elapsed: Duration::from_secs(2),
            latencies: (1..=100).collect(),
            ..Default::default()
        };
        assert_eq!(outcome.rate(), 50.0);
        assert_eq!(outcome.quantile(0.5), Duration::from_micros(51));
        assert_eq!(outcome.quantile(0.99), Duration::from_micros(99));
        assert_eq!(outcome.quantile(1.0), Duration::from_micros(100));
        assert_eq!(Outcome::default().quantile(0.5), Duration::ZERO);
    }
}

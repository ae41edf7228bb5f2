//! The reads and the echo baselines again, loaded by h2load (nghttp2's load
//! generator, a C client) instead of this harness (`--h2load`): a Rust
//! client built on the same stack as the servers could flatter them, so the
//! reads are reported from both.
//!
//! h2load sends the same gRPC request (a framed message with
//! `content-type: application/grpc`) over the same connections × streams
//! for the same time. It sees HTTP statuses only, and gRPC answers its
//! failures with status 200 and a `grpc-status` trailer; a successful
//! answer carries a message and a failed one none, so the calls answered
//! without a message's bytes are counted as failures.

use std::{path::PathBuf, process::Command, time::Duration};

use crate::load::{Load, Outcome};
use anyhow::{Context, bail};

/// The h2load program.
#[derive(Debug, Clone)]
pub struct H2load(pub PathBuf);

/// One gRPC call, as h2load repeats it.
pub struct Call<'a> {
    /// The server, `host:port` (h2c).
    pub addr: &'a str,
    /// `/package.Service/Method`.
    pub path: &'a str,
    /// The request message, encoded.
    pub request: Vec<u8>,
    /// `Bearer <token>`, when the method needs one.
    pub authorization: Option<&'a str>,
    /// The size of a successful answer's message, for telling failures.
    pub response_len: usize,
}

impl H2load {
    /// Runs h2load on `call` with `load`'s shape: the calls, their
    /// latencies and the calls answered without a message.
    pub async fn measure(&self, call: &Call<'_>, load: Load) -> Outcome {
        match self.run(call, load).await {
            Ok(outcome) => outcome,
            Err(err) => Outcome {
                errors: 1,
                first_error: Some(format!("h2load: {err:#}")),
                elapsed: load.duration,
                ..Outcome::default()
            },
        }
    }

    async fn run(&self, call: &Call<'_>, load: Load) -> anyhow::Result<Outcome> {
        let dir = tempfile::tempdir()?;
        let body = dir.path().join("request");
        let log = dir.path().join("log");
        let mut framed = vec![0];
        framed.extend_from_slice(&u32::try_from(call.request.len())?.to_be_bytes());
        framed.extend_from_slice(&call.request);
        std::fs::write(&body, framed)?;

        let mut command = Command::new(&self.0);
        command
            .arg(format!("--clients={}", load.connections))
            .arg(format!("--max-concurrent-streams={}", load.streams))
            .arg(format!("--duration={}", load.duration.as_secs().max(1)))
            .arg(format!(
                "--warm-up-time={}",
                load.warm_up().as_secs().max(1)
            ))
            .arg(format!("--data={}", body.display()))
            .arg(format!("--log-file={}", log.display()))
            .args([
                "--header=content-type: application/grpc",
                "--header=te: trailers",
            ]);
        if let Some(authorization) = call.authorization {
            command.arg(format!("--header=authorization: {authorization}"));
        }
        command.arg(format!("http://{}{}", call.addr, call.path));
        let output = tokio::task::spawn_blocking(move || command.output())
            .await?
            .with_context(|| format!("running {}", self.0.display()))?;
        let summary = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() {
            bail!(
                "{}{}",
                summary,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let succeeded = field(&summary, "requests:", "succeeded")
            .context("no `requests:` line in h2load's output")?;
        let data = data_bytes(&summary).context("no `traffic:` line in h2load's output")?;
        let answered = data / (call.response_len as u64 + 5).max(1);
        let without_message = succeeded.saturating_sub(answered);

        let mut outcome = measured_window(&std::fs::read_to_string(&log)?, load.duration);
        outcome.errors += without_message;
        outcome.requests = outcome.requests.saturating_sub(without_message);
        if without_message > 0 {
            outcome.first_error = Some(format!(
                "{without_message} answers without a message (a gRPC error)"
            ));
        }
        Ok(outcome)
    }
}

/// The calls of the last `duration` of the log (rows: start µs since the
/// epoch, HTTP status, µs to the end of the answer); the warm-up's are left
/// out whether h2load logs them or not.
fn measured_window(log: &str, duration: Duration) -> Outcome {
    let rows: Vec<(u64, i64, u32)> = log
        .lines()
        .filter_map(|line| {
            let mut columns = line.split('\t');
            Some((
                columns.next()?.parse().ok()?,
                columns.next()?.parse().ok()?,
                columns.next()?.parse().ok()?,
            ))
        })
        .collect();
    let end = rows
        .iter()
        .map(|&(start, _, took)| start + u64::from(took))
        .max()
        .unwrap_or(0);
    let from = end.saturating_sub(duration.as_micros() as u64);
    let mut outcome = Outcome {
        elapsed: duration,
        ..Outcome::default()
    };
    for (_, status, took) in rows.into_iter().filter(|&(start, _, _)| start >= from) {
        if status == 200 {
            outcome.requests += 1;
            outcome.latencies.push(took);
        } else {
            outcome.errors += 1;
            outcome
                .first_error
                .get_or_insert_with(|| format!("HTTP status {status}"));
        }
    }
    outcome.latencies.sort_unstable();
    outcome
}

/// The number before `word` on the line starting with `label`, e.g. the
/// succeeded in `requests: 10 total, 10 started, 10 done, 9 succeeded`.
fn field(summary: &str, label: &str, word: &str) -> Option<u64> {
    let line = summary
        .lines()
        .find(|line| line.trim_start().starts_with(label))?;
    line.split(',')
        .find(|part| part.trim_end().ends_with(word))?
        .split_whitespace()
        .rev()
        .nth(1)?
        .parse()
        .ok()
}

/// The response data bytes of `traffic: ... 456KB (456789) data`.
fn data_bytes(summary: &str) -> Option<u64> {
    let line = summary
        .lines()
        .find(|line| line.trim_start().starts_with("traffic:"))?;
    let part = line
        .split(',')
        .find(|part| part.trim_end().ends_with("data"))?;
    let open = part.find('(')?;
    let close = part.find(')')?;
    part[open + 1..close].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUMMARY: &str = "\
finished in 10.00s, 15000.00 req/s, 1.23MB/s
requests: 150000 total, 150064 started, 150000 done, 149990 succeeded, 10 failed, 0 errored, 0 timeout
status codes: 149990 2xx, 0 3xx, 0 4xx, 10 5xx
traffic: 12.00MB (12582912) total, 1.00MB (1048576) headers (space savings 95.00%), 2.00MB (2099830) data
";

    #[test]
    fn the_summary_gives_the_succeeded_calls_and_the_data_bytes() {
        assert_eq!(field(SUMMARY, "requests:", "succeeded"), Some(149_990));
        assert_eq!(data_bytes(SUMMARY), Some(2_099_830));
    }

    #[test]
    fn only_the_last_duration_of_the_log_is_measured() {
        let t: u64 = 1_700_000_000_000_000;
        let log = format!(
            "{}\t200\t900\n{}\t200\t1000\n{}\t-1\t5\n{}\t200\t3000\n",
            t,
            t + 3_000_000,
            t + 4_000_000,
            t + 5_000_000
        );
        let outcome = measured_window(&log, Duration::from_secs(2));
        assert_eq!(outcome.requests, 1, "{outcome:?}");
        assert_eq!(outcome.errors, 1);
        assert_eq!(outcome.latencies, vec![3000]);
    }
}

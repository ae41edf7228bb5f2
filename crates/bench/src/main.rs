//! `orgplane-bench`: how fast the control plane is on this machine, against
//! the bare-tonic limit. Starts the control plane as users run it
//! (`orgplane dev`, and one `orgplane serve` per service), seeds data,
//! drives each scenario with N connections × M streams for a fixed time,
//! and prints a Markdown table: requests/s (and as a share of a bare tonic
//! echo and of the same echo behind a byte-passing HTTP/2 proxy, measured
//! in the same run just before each layout), latency percentiles, CPU
//! seconds per 1,000 calls and each process's peak resident memory.
//!
//! A benchmark, not a test: run it on a quiet machine with release builds
//! (`cargo build --release -p orgplane -p orgplane-bench`); CI runs only
//! `--smoke` to keep it working.

mod baseline;
mod h2load;
mod load;
mod procs;
mod report;
mod scenarios;
mod session;

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Parser, Subcommand};

use crate::{
    load::Load,
    procs::{ControlPlane, Database, Processes, free_addr, orgplane_binary},
    report::Report,
    scenarios::Target,
    session::Session,
};

/// Benchmarks of orgplane against a bare tonic echo and a proxied one.
#[derive(Debug, Parser)]
#[command(name = "orgplane-bench", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    baseline: Option<Baseline>,
    /// The orgplane binary (default: the one beside this binary).
    #[arg(long)]
    orgplane: Option<PathBuf>,
    /// Seconds each scenario is measured (after a warm-up of a fifth of it,
    /// at most 2 s).
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// HTTP/2 connections of the load.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Concurrent streams per connection (64 in flight by default).
    #[arg(long, default_value_t = 16)]
    streams: usize,
    /// Projects before the deep page of `ListProjects`.
    #[arg(long, default_value_t = 100_000)]
    deep_rows: u64,
    /// `WatchActivities` streams the fan-out scenario opens.
    #[arg(long, default_value_t = 1000)]
    watchers: usize,
    /// Changes a second the fan-out scenario makes while they watch.
    #[arg(long, default_value_t = 50)]
    changes_per_second: u32,
    /// Also run the scenarios on PostgreSQL at this URL (in fresh schemas,
    /// dropped afterwards), e.g. postgres://postgres@127.0.0.1:5432/test —
    /// in `dev` (all but the logins), and (unless --no-multi-process) with
    /// two replicas of every service and two gateways (the reads, writes
    /// and run admission).
    #[arg(long)]
    postgres: Option<String>,
    /// Skip the multi-process layout.
    #[arg(long)]
    no_multi_process: bool,
    /// Run only these scenarios (the baselines always run): any of
    /// auth-read, authz-read, list, fan-out, write, admission, login; e.g.
    /// to profile one.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// A seconds-long run that checks every scenario works (CI): 1 s per
    /// scenario, 300 projects, small loads; its figures mean nothing.
    #[arg(long)]
    smoke: bool,
    /// Also load the echo baselines and the reads with h2load (nghttp2's
    /// load generator, a C client) at this path, e.g. /usr/bin/h2load
    /// (Debian's nghttp2-client), with the same connections, streams and
    /// duration; its rows are compared with its own baselines. In `dev` and
    /// the one-gateway multi-process layout.
    #[arg(long)]
    h2load: Option<PathBuf>,
}

/// The baselines' servers, run by the benchmark as child processes.
#[derive(Debug, Subcommand)]
enum Baseline {
    /// A bare tonic server answering `grpc.health.v1.Health/Check`.
    #[command(hide = true)]
    EchoServer {
        #[arg(long)]
        listen: SocketAddr,
    },
    /// A byte-passing HTTP/2 proxy.
    #[command(hide = true)]
    Proxy {
        #[arg(long)]
        listen: SocketAddr,
        #[arg(long)]
        upstream: SocketAddr,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut cli = Cli::parse();
    match cli.baseline.take() {
        Some(Baseline::EchoServer { listen }) => return baseline::echo_server(listen).await,
        Some(Baseline::Proxy { listen, upstream }) => {
            return baseline::proxy(listen, upstream).await;
        }
        None => {}
    }
    if cli.smoke {
        cli.duration = 1;
        cli.deep_rows = 300;
        cli.watchers = cli.watchers.min(20);
        cli.changes_per_second = cli.changes_per_second.min(10);
        cli.connections = cli.connections.min(2);
        cli.streams = cli.streams.min(4);
    }
    let orgplane = orgplane_binary(cli.orgplane.clone())?;
    let load = Load {
        connections: cli.connections,
        streams: cli.streams,
        duration: Duration::from_secs(cli.duration),
    };
    let mut report = Report::new(describe_machine());
    let only = Only {
        h2load: cli.h2load.clone().map(h2load::H2load),
        names: cli.only.clone(),
        fan_out: scenarios::FanOut {
            watchers: cli.watchers,
            changes_per_second: cli.changes_per_second.max(1),
        },
    };
    let baselines = Baselines::start().await?;
    let h2load = only.h2load.as_ref();
    baselines
        .measure(&mut report, "baseline", load, h2load)
        .await?;
    dev_on_sqlite(&mut report, &orgplane, load, cli.deep_rows, &only).await?;
    if let Some(url) = &cli.postgres {
        baselines
            .measure(&mut report, "baseline, again", load, h2load)
            .await?;
        let database = Database::Postgres {
            url: url.clone(),
            prefix: format!("bench{}_", std::process::id()),
        };
        let result = dev_on_postgres(
            &mut report,
            &orgplane,
            load,
            database.clone(),
            cli.deep_rows,
            &only,
        )
        .await;
        database.clean_up().await?;
        result?;
        if !cli.no_multi_process {
            baselines
                .measure(&mut report, "baseline, again", load, h2load)
                .await?;
            let database = Database::Postgres {
                url: url.clone(),
                prefix: format!("bench{}_replicas_", std::process::id()),
            };
            let result = replicas_on_postgres(&mut report, &orgplane, load, &database, &only).await;
            database.clean_up().await?;
            result?;
        }
    }
    if !cli.no_multi_process {
        baselines
            .measure(&mut report, "baseline, again", load, h2load)
            .await?;
        multi_process(&mut report, &orgplane, load, &only).await?;
    }
    report.memory("baseline", baselines.servers.peak_rss()?);
    println!("{}", report.markdown());
    if cli.smoke && report.errors() > 0 {
        anyhow::bail!("{} calls failed", report.errors());
    }
    Ok(())
}

/// The authenticated and the authorized read.
const READS: &[&str] = &["auth-read", "authz-read"];

/// The scenarios asked for (all when none is named), and the fan-out's
/// size.
struct Only {
    names: Vec<String>,
    /// Also load the reads and the baselines with h2load.
    h2load: Option<h2load::H2load>,
    fan_out: scenarios::FanOut,
}

impl Only {
    fn wants(&self, scenario: &str) -> bool {
        self.names.is_empty() || self.names.iter().any(|s| s == scenario)
    }
}

/// The bare echo and the same echo behind the proxy, kept running for the
/// whole benchmark and measured again before each layout: this machine's
/// speed drifts by a quarter within minutes, so each row is compared with
/// the baselines measured just before its layout, not at the start.
struct Baselines {
    /// The echo and the proxy.
    servers: Processes,
    echo: String,
    proxied: String,
}

impl Baselines {
    /// Starts the echo and the proxy in front of it.
    async fn start() -> anyhow::Result<Self> {
        let me = std::env::current_exe()?;
        let (echo, proxied) = (free_addr()?, free_addr()?);
        let mut servers = Processes::default();
        servers.spawn(
            "echo",
            &me,
            &["echo-server".into(), "--listen".into(), echo.clone()],
        )?;
        servers.spawn(
            "proxy",
            &me,
            &[
                "proxy".into(),
                "--listen".into(),
                proxied.clone(),
                "--upstream".into(),
                echo.clone(),
            ],
        )?;
        for addr in [&echo, &proxied] {
            while tokio::net::TcpStream::connect(addr).await.is_err() {
                servers.check_alive()?;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Ok(Self {
            servers,
            echo,
            proxied,
        })
    }

    /// Measures the bare and the proxied echo (and with h2load, if asked)
    /// as the baselines of the rows that follow; `layout` says which.
    /// CPU counts both processes (the proxy idles under the bare echo).
    async fn measure(
        &self,
        report: &mut Report,
        layout: &str,
        load: Load,
        h2load: Option<&h2load::H2load>,
    ) -> anyhow::Result<()> {
        let target = Target {
            processes: &self.servers,
            layout,
            database: "-",
        };
        report.new_baselines();
        let row = scenarios::echo(&target, "bare tonic echo", &self.echo, load).await?;
        report.baseline_direct(row);
        if let Some(h2load) = h2load {
            let name = "bare tonic echo, h2load";
            let row = scenarios::echo_from_h2load(&target, name, &self.echo, load, h2load).await?;
            report.baseline_direct(row);
        }
        let name = "echo behind an HTTP/2 proxy";
        let row = scenarios::echo(&target, name, &self.proxied, load).await?;
        report.baseline_proxied(row);
        if let Some(h2load) = h2load {
            let name = "echo behind an HTTP/2 proxy, h2load";
            let row =
                scenarios::echo_from_h2load(&target, name, &self.proxied, load, h2load).await?;
            report.baseline_proxied(row);
        }
        Ok(())
    }
}

async fn dev_on_sqlite(
    report: &mut Report,
    orgplane: &std::path::Path,
    load: Load,
    deep_rows: u64,
    only: &Only,
) -> anyhow::Result<()> {
    let mut plane = ControlPlane::dev(orgplane, Database::Sqlite)?;
    let session = plane.open(load).await?;
    let target = plane.target();
    reads(report, &target, &session, &plane.gateways[0], load, only).await?;
    lists(report, &target, &session, load, deep_rows, only).await?;
    plain(
        report,
        &target,
        &session,
        load,
        only,
        &["fan-out", "write", "admission"],
    )
    .await?;
    if only.wants("login") {
        let logins = load_for_logins(load);
        for row in scenarios::logins(&target, &session, load, logins).await? {
            report.add(row);
        }
    }
    report.memory("dev, sqlite", plane.processes.peak_rss()?);
    Ok(())
}

/// How long the lists wait for the seed's activities to reach the feed.
const FEED_PATIENCE: Duration = Duration::from_secs(120);

/// `ListProjects`' first page and the page after row `deep_rows`, once the
/// organization holds that many projects and 20 more and the feed shows
/// their creation.
async fn lists(
    report: &mut Report,
    target: &Target<'_>,
    session: &Session,
    load: Load,
    deep_rows: u64,
    only: &Only,
) -> anyhow::Result<()> {
    if !only.wants("list") {
        return Ok(());
    }
    let seeded = session.seed_projects(deep_rows + 20).await?;
    eprintln!(
        "seeded {} projects in {:.1} s",
        deep_rows + 20,
        seeded.as_secs_f64()
    );
    // Their activities reach the feed through the outbox shipper: the
    // pages are measured once it is done (it took ~4 % of the process
    // during the pages otherwise).
    let waited = std::time::Instant::now();
    if !session
        .feed_caught_up(deep_rows + 20, FEED_PATIENCE)
        .await?
    {
        eprintln!("the seed's activities were still being delivered after {FEED_PATIENCE:?}");
    }
    eprintln!(
        "the seed's activities delivered {:.1} s later",
        waited.elapsed().as_secs_f64()
    );
    let page_1 = "ListProjects, page 1";
    report.add(scenarios::list_projects(target, session, load, page_1, String::new()).await?);
    let token = session.page_token_after(deep_rows).await?;
    let name = format!("ListProjects, the page after row {deep_rows}");
    report.add(scenarios::list_projects(target, session, load, &name, token).await?);
    Ok(())
}

/// Logins at their natural rate: a stream per core is enough to keep
/// Argon2id busy.
fn load_for_logins(load: Load) -> Load {
    Load {
        connections: 1,
        streams: 2,
        ..load
    }
}

async fn dev_on_postgres(
    report: &mut Report,
    orgplane: &std::path::Path,
    load: Load,
    database: Database,
    deep_rows: u64,
    only: &Only,
) -> anyhow::Result<()> {
    let mut plane = ControlPlane::dev(orgplane, database)?;
    let session = plane.open(load).await?;
    let target = plane.target();
    reads(report, &target, &session, &plane.gateways[0], load, only).await?;
    lists(report, &target, &session, load, deep_rows, only).await?;
    let names = ["fan-out", "write", "admission"];
    plain(report, &target, &session, load, only, &names).await?;
    report.memory("dev, postgresql", plane.processes.peak_rss()?);
    Ok(())
}

async fn multi_process(
    report: &mut Report,
    orgplane: &std::path::Path,
    load: Load,
    only: &Only,
) -> anyhow::Result<()> {
    let mut plane = ControlPlane::multi_process(orgplane, Database::Sqlite, 1)?;
    let session = plane.open(load).await?;
    let target = plane.target();
    reads(report, &target, &session, &plane.gateways[0], load, only).await?;
    report.memory("multi-process, sqlite", plane.processes.peak_rss()?);
    Ok(())
}

/// Two processes of every service and two gateways on one PostgreSQL, the
/// load spread over both gateways.
async fn replicas_on_postgres(
    report: &mut Report,
    orgplane: &std::path::Path,
    load: Load,
    database: &Database,
    only: &Only,
) -> anyhow::Result<()> {
    let mut plane = ControlPlane::multi_process(orgplane, database.clone(), 2)?;
    let session = plane.open(load).await?;
    let target = plane.target();
    let names = ["auth-read", "authz-read", "fan-out", "write", "admission"];
    plain(report, &target, &session, load, only, &names).await?;
    report.memory("2 replicas, postgresql", plane.processes.peak_rss()?);
    Ok(())
}

/// The scenarios among `names` that `only` wants, in that order: those
/// that need nothing but the session.
async fn plain(
    report: &mut Report,
    target: &Target<'_>,
    session: &Session,
    load: Load,
    only: &Only,
    names: &[&str],
) -> anyhow::Result<()> {
    for name in names.iter().filter(|name| only.wants(name)) {
        let row = match *name {
            "auth-read" => scenarios::authenticated_read(target, session, load).await?,
            "authz-read" => scenarios::authorized_read(target, session, load).await?,
            "write" => scenarios::create_project(target, session, load).await?,
            "admission" => scenarios::run_admission(target, session, load).await?,
            "fan-out" => scenarios::fan_out(target, session, load, only.fan_out).await?,
            other => anyhow::bail!("no scenario {other}"),
        };
        report.add(row);
    }
    Ok(())
}

/// The reads, from this harness, then (with `--h2load`) from h2load on
/// `gateway`.
async fn reads(
    report: &mut Report,
    target: &Target<'_>,
    session: &Session,
    gateway: &str,
    load: Load,
    only: &Only,
) -> anyhow::Result<()> {
    plain(report, target, session, load, only, READS).await?;
    if let Some(h2load) = &only.h2load {
        let wanted = |name: &str| only.wants(name);
        for row in
            scenarios::reads_from_h2load(target, session, gateway, load, h2load, wanted).await?
        {
            report.add(row);
        }
    }
    Ok(())
}

/// A control plane's session (once it listens) and what its scenarios
/// measure.
impl ControlPlane {
    async fn open(&mut self, load: Load) -> anyhow::Result<Session> {
        self.ready().await?;
        Session::open(&self.gateways, load.connections).await
    }

    fn target(&self) -> Target<'_> {
        Target {
            processes: &self.processes,
            layout: self.layout,
            database: self.database.name(),
        }
    }
}

/// CPU model, cores and memory, for the report's header.
fn describe_machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_gib = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    format!("{model}, {cores} cores, {memory_gib:.0} GiB")
}

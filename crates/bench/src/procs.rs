//! The processes under test: `orgplane dev`, or one `orgplane serve` per
//! service (the production layout), or the baselines; and what the kernel
//! says they cost (CPU time, peak resident memory) from `/proc`.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::{Context, bail};

/// A loopback address free right now.
pub fn free_addr() -> anyhow::Result<String> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.to_string())
}

/// Child processes, killed on drop.
#[derive(Default)]
pub struct Processes {
    /// `(name, process)`.
    pub children: Vec<(String, Child)>,
}

impl Processes {
    /// Starts `program args`, its output discarded unless `RUST_LOG` asks.
    pub fn spawn(&mut self, name: &str, program: &Path, args: &[String]) -> anyhow::Result<()> {
        let child = Command::new(program)
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or("warn".into()),
            )
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        self.children.push((name.to_owned(), child));
        Ok(())
    }

    /// Fails if a child has exited (a crash, a port taken).
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        for (name, child) in &mut self.children {
            if let Some(status) = child.try_wait()? {
                bail!("{name} exited: {status}");
            }
        }
        Ok(())
    }

    /// CPU time so far of all the children.
    pub fn cpu(&self) -> anyhow::Result<Duration> {
        let mut total = Duration::ZERO;
        for (_, child) in &self.children {
            total += cpu_time(child.id())?;
        }
        Ok(total)
    }

    /// Each child's peak resident memory so far, in MiB.
    pub fn peak_rss(&self) -> anyhow::Result<Vec<(String, f64)>> {
        self.children
            .iter()
            .map(|(name, child)| Ok((name.clone(), rss_mib(child.id(), "VmHWM:")?)))
            .collect()
    }

    /// The children's resident memory now, in all, in MiB.
    pub fn rss(&self) -> anyhow::Result<f64> {
        self.children
            .iter()
            .map(|(_, child)| rss_mib(child.id(), "VmRSS:"))
            .sum()
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Clock ticks per second of `/proc/<pid>/stat`'s times.
fn ticks_per_second() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100)
    })
}

/// User + system CPU time of process `pid`, all its threads.
pub fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces): state is the
    // 3rd field overall, utime the 14th, stime the 15th.
    let after_name = stat.rsplit_once(')').context("unexpected /proc stat")?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    Ok(Duration::from_secs_f64(
        ticks as f64 / ticks_per_second() as f64,
    ))
}

/// A resident set figure of process `pid` (`VmHWM:`: the peak, `VmRSS:`:
/// now), in MiB.
fn rss_mib(pid: u32, field: &str) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .with_context(|| format!("no {field} in /proc/{pid}/status"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kib / 1024.0)
}

/// Where the control plane keeps its data.
#[derive(Debug, Clone)]
pub enum Database {
    /// SQLite files in the data folder (the embedded default).
    Sqlite,
    /// PostgreSQL at this URL, in schemas with this prefix.
    Postgres { url: String, prefix: String },
}

impl Database {
    fn args(&self) -> Vec<String> {
        match self {
            Database::Sqlite => Vec::new(),
            Database::Postgres { url, prefix } => vec![
                "--database-url".into(),
                url.clone(),
                "--schema-prefix".into(),
                prefix.clone(),
            ],
        }
    }

    /// `sqlite` or `postgresql`.
    pub fn name(&self) -> &'static str {
        match self {
            Database::Sqlite => "sqlite",
            Database::Postgres { .. } => "postgresql",
        }
    }

    /// Drops the schemas the control plane made (PostgreSQL).
    pub async fn clean_up(&self) -> anyhow::Result<()> {
        if let Database::Postgres { url, prefix } = self {
            for service in ["identity", "organizations", "registry", "agents"] {
                orgplane_storage::db::drop_schema(url, &format!("{prefix}{service}")).await?;
            }
        }
        Ok(())
    }
}

/// The gateway lets one caller make this many calls per second (and in a
/// burst): the benchmark is one caller at full speed.
const UNLIMITED: &str = "100000000";

/// A running control plane.
pub struct ControlPlane {
    /// Its processes.
    pub processes: Processes,
    /// The gateways' addresses.
    pub gateways: Vec<String>,
    /// `dev`, `multi-process` or `2 replicas`.
    pub layout: &'static str,
    /// Where its data is.
    pub database: Database,
    /// Every address its processes listen on.
    listening: Vec<String>,
    _data: tempfile::TempDir,
}

impl ControlPlane {
    /// `orgplane dev`: everything in one process.
    pub fn dev(orgplane: &Path, database: Database) -> anyhow::Result<Self> {
        let data = tempfile::tempdir()?;
        let gateway = free_addr()?;
        let mut args = vec![
            "dev".into(),
            "--data-dir".into(),
            path(data.path()),
            "--listen".into(),
            gateway.clone(),
            "--rate-limit".into(),
            UNLIMITED.into(),
            "--rate-limit-burst".into(),
            UNLIMITED.into(),
            "--address-rate-limit".into(),
            UNLIMITED.into(),
            "--address-rate-limit-burst".into(),
            UNLIMITED.into(),
            "--admin-password".into(),
            "bench-admin-password".into(),
        ];
        args.extend(database.args());
        let mut processes = Processes::default();
        processes.spawn("orgplane dev", orgplane, &args)?;
        Ok(Self {
            processes,
            listening: vec![gateway.clone()],
            gateways: vec![gateway],
            layout: "dev",
            database,
            _data: data,
        })
    }

    /// `replicas` `orgplane serve` processes per service (gateways
    /// included), over loopback mTLS, as in production: each is given
    /// every replica of each peer, and the load is spread over the
    /// gateways.
    pub fn multi_process(
        orgplane: &Path,
        database: Database,
        replicas: usize,
    ) -> anyhow::Result<Self> {
        let data = tempfile::tempdir()?;
        let status = Command::new(orgplane)
            .args(["certs", "init", "--data-dir", &path(data.path())])
            .stdout(Stdio::null())
            .status()?;
        if !status.success() {
            bail!("orgplane certs init failed");
        }
        let services = ["identity", "organizations", "registry", "agents", "gateway"];
        let mut addrs: std::collections::HashMap<&str, Vec<String>> = Default::default();
        for service in services {
            addrs.insert(
                service,
                (0..replicas)
                    .map(|_| free_addr())
                    .collect::<Result<_, _>>()?,
            );
        }
        let mut processes = Processes::default();
        for service in services {
            // Each service takes only the peers it calls.
            let peers: &[&str] = match service {
                "identity" | "registry" => &["organizations"],
                "organizations" => &["identity", "registry", "agents"],
                "agents" => &["identity", "organizations"],
                _ => &["identity", "organizations", "registry", "agents"],
            };
            for (replica, listen) in addrs[service].iter().enumerate() {
                let mut args = vec![
                    "serve".to_owned(),
                    service.to_string(),
                    "--data-dir".into(),
                    path(data.path()),
                    "--listen".into(),
                    listen.clone(),
                ];
                for peer in peers {
                    args.extend([format!("--{peer}-addr"), addrs[peer].join(",")]);
                }
                if service == "gateway" {
                    for flag in [
                        "--rate-limit",
                        "--rate-limit-burst",
                        "--address-rate-limit",
                        "--address-rate-limit-burst",
                    ] {
                        args.extend([flag.to_owned(), UNLIMITED.to_owned()]);
                    }
                } else {
                    args.extend(database.args());
                }
                let name = if replicas == 1 {
                    format!("orgplane serve {service}")
                } else {
                    format!("orgplane serve {service} #{}", replica + 1)
                };
                processes.spawn(&name, orgplane, &args)?;
            }
        }
        Ok(Self {
            processes,
            gateways: addrs["gateway"].clone(),
            layout: if replicas == 1 {
                "multi-process"
            } else {
                "2 replicas"
            },
            database,
            listening: services
                .iter()
                .flat_map(|service| addrs[service].clone())
                .collect(),
            _data: data,
        })
    }
}

impl ControlPlane {
    /// Waits until every process listens (each binds once its migrations
    /// ran and its peers are set up), at most 2 minutes.
    pub async fn ready(&mut self) -> anyhow::Result<()> {
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        for addr in &self.listening {
            while tokio::net::TcpStream::connect(addr).await.is_err() {
                self.processes.check_alive()?;
                if std::time::Instant::now() > deadline {
                    bail!("nothing listens on {addr} after 2 minutes");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }
}

fn path(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// The `orgplane` binary beside this one (same profile), or `explicit`.
pub fn orgplane_binary(explicit: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let binary = match explicit {
        Some(path) => path,
        None => std::env::current_exe()?.with_file_name("orgplane"),
    };
    if !binary.exists() {
        bail!(
            "{} not found: build it (cargo build --release -p orgplane) or pass --orgplane",
            binary.display()
        );
    }
    Ok(binary)
}

//! Flags grouped by concern — state, listening, peers, identity, agents,
//! gateway — so that each command takes only the groups it honours and a
//! flag it would ignore is a parse error. Every flag also reads an
//! `ORGPLANE_*` variable.

use std::{collections::HashMap, net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context;
use clap::Args;
use orgplane_gateway::GatewayConfig;
use orgplane_proto::Backend;
use orgplane_service::PeerAddrs;
use orgplane_storage::db::DbTarget;
use orgplane_transport::layers::cors::CorsOrigin;
use tonic::transport::{Identity as TlsIdentity, ServerTlsConfig};

use orgplane::node::State;

/// The data folder.
#[derive(Debug, Clone, Args)]
pub struct DataDirArgs {
    /// Folder for certificates and, without --database-url, SQLite files.
    #[arg(long, env = "ORGPLANE_DATA_DIR", default_value = "./.orgplane")]
    pub data_dir: PathBuf,
}

/// The database.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// PostgreSQL URL (postgres://user@host:port/db). Every service then
    /// keeps its tables in its own schema of that database. Unset: SQLite
    /// files in the data folder.
    #[arg(long, env = "ORGPLANE_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Prefix of the PostgreSQL schema names (e.g. `staging_` gives
    /// `staging_identity`).
    #[arg(long, env = "ORGPLANE_SCHEMA_PREFIX", default_value = "")]
    pub schema_prefix: String,
    /// Most PostgreSQL connections of each service's pool in this process
    /// (one of them listens to the other replicas' changes). Each service
    /// opens up to --database-read-connections more, and each process one
    /// more for its liveness lock. Keep the sum over every replica of every
    /// service under PostgreSQL's `max_connections`: two replicas of the
    /// four services at the defaults open at most 96.
    #[arg(
        long,
        env = "ORGPLANE_DATABASE_CONNECTIONS",
        default_value_t = orgplane_storage::db::POSTGRES_CONNECTIONS,
        value_parser = clap::value_parser!(u32).range(2..=1000)
    )]
    pub database_connections: u32,
    /// Most PostgreSQL connections of each service beside its pool, that
    /// read list pages (0: none, pages are read through the pool, which
    /// pings every connection it takes back: a second round trip a page).
    #[arg(
        long,
        env = "ORGPLANE_DATABASE_READ_CONNECTIONS",
        default_value_t = orgplane_storage::db::POSTGRES_READERS,
        value_parser = clap::value_parser!(u32).range(0..=1000)
    )]
    pub database_read_connections: u32,
}

/// Where state lives: the data folder and the database.
#[derive(Debug, Clone, Args)]
pub struct StateArgs {
    #[command(flatten)]
    pub dir: DataDirArgs,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

impl StateArgs {
    /// The node state these flags name.
    pub fn state(&self) -> State {
        State {
            data_dir: self.dir.data_dir.clone(),
            database_url: self.database.database_url.clone(),
            schema_prefix: self.database.schema_prefix.clone(),
            database_connections: self.database.database_connections,
            database_read_connections: self.database.database_read_connections,
        }
    }

    /// Where `backend` keeps its tables.
    pub fn target(&self, backend: Backend) -> anyhow::Result<DbTarget> {
        self.state().target(backend)
    }
}

/// Where the process listens.
#[derive(Debug, Clone, Args)]
pub struct ListenArgs {
    /// Address to listen on (the service's default when unset: gateway
    /// 127.0.0.1:50051, identity :50061, organizations :50062, registry
    /// :50063, agents :50064).
    #[arg(long, env = "ORGPLANE_LISTEN")]
    pub listen: Option<SocketAddr>,
}

impl ListenArgs {
    /// The address, or `default`.
    pub fn or(&self, default: &str) -> anyhow::Result<SocketAddr> {
        match self.listen {
            Some(addr) => Ok(addr),
            None => default.parse().context("default listen address"),
        }
    }
}

/// The deadline of calls that carry none.
#[derive(Debug, Clone, Args)]
pub struct DeadlineArgs {
    /// Deadline, in seconds, of calls that carry none (the gateway adds it;
    /// a backend applies it to calls without a deadline).
    #[arg(long, env = "ORGPLANE_DEFAULT_DEADLINE_SECS", default_value_t = 30)]
    pub default_deadline_secs: u64,
}

impl DeadlineArgs {
    /// As a duration.
    pub fn deadline(&self) -> Duration {
        Duration::from_secs(self.default_deadline_secs)
    }
}

/// The operations port.
#[derive(Debug, Clone, Args)]
pub struct OpsArgs {
    /// Address of the plaintext operations port (e.g. 0.0.0.0:9090):
    /// Prometheus metrics on /metrics, probes on /livez and /readyz (200
    /// once every server is up, 503 before and while stopping). Off unless
    /// set.
    #[arg(long, env = "ORGPLANE_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
}

/// How a stopping process hands its clients over.
#[derive(Debug, Clone, Args)]
pub struct DrainArgs {
    /// Seconds the process, on SIGTERM, reports NOT_SERVING on health while
    /// it still accepts calls, before it stops accepting and finishes what
    /// is in flight (at most 10 s more): load balancers and Kubernetes stop
    /// sending it calls meanwhile, so a rolling restart fails none.
    #[arg(long, env = "ORGPLANE_DRAIN_DELAY_SECS", default_value_t = 5)]
    pub drain_delay_secs: u64,
}

impl DrainArgs {
    /// As a duration.
    pub fn delay(&self) -> Duration {
        Duration::from_secs(self.drain_delay_secs)
    }
}

/// Where identity is.
#[derive(Debug, Clone, Args)]
pub struct IdentityAddrArgs {
    /// Where identity's replicas are: host:port, or a comma-separated list;
    /// a DNS name stands for every address it resolves to, resolved again
    /// every 10 s (default 127.0.0.1:50061).
    #[arg(long, env = "ORGPLANE_IDENTITY_ADDR")]
    pub identity_addr: Option<String>,
}

/// Where organizations is.
#[derive(Debug, Clone, Args)]
pub struct OrganizationsAddrArgs {
    /// Where organizations' replicas are, as --identity-addr (default
    /// 127.0.0.1:50062; for the gateway, unset means not deployed: its
    /// services answer UNIMPLEMENTED).
    #[arg(long, env = "ORGPLANE_ORGANIZATIONS_ADDR")]
    pub organizations_addr: Option<String>,
}

/// Where the registry is.
#[derive(Debug, Clone, Args)]
pub struct RegistryAddrArgs {
    /// Where the registry's replicas are, as --identity-addr (default
    /// 127.0.0.1:50063; for the gateway, unset means not deployed: its
    /// services answer UNIMPLEMENTED).
    #[arg(long, env = "ORGPLANE_REGISTRY_ADDR")]
    pub registry_addr: Option<String>,
}

/// Where agents is.
#[derive(Debug, Clone, Args)]
pub struct AgentsAddrArgs {
    /// Where agents' replicas are, as --identity-addr (default
    /// 127.0.0.1:50064; for the gateway, unset means not deployed: its
    /// services answer UNIMPLEMENTED).
    #[arg(long, env = "ORGPLANE_AGENTS_ADDR")]
    pub agents_addr: Option<String>,
}

/// Every peer address: as `given` (by backend; `None`, not given) or the
/// backend's default.
pub fn peer_addrs(given: &[(Backend, Option<String>)]) -> PeerAddrs {
    let addr = |backend: Backend| {
        given
            .iter()
            .find(|(b, _)| *b == backend)
            .and_then(|(_, addr)| addr.clone())
            .unwrap_or_else(|| default_addr(backend).to_owned())
    };
    PeerAddrs {
        identity: addr(Backend::Identity),
        organizations: addr(Backend::Organizations),
        registry: addr(Backend::Registry),
        agents: addr(Backend::Agents),
    }
}

/// Where `backend` listens unless told otherwise.
pub fn default_addr(backend: Backend) -> &'static str {
    use orgplane_service::Service;
    match backend {
        Backend::Identity => orgplane_identity::Identity::DEFAULT_ADDR,
        Backend::Organizations => orgplane_organizations::Organizations::DEFAULT_ADDR,
        Backend::Registry => orgplane_registry::Registry::DEFAULT_ADDR,
        Backend::Agents => orgplane_agents::Agents::DEFAULT_ADDR,
    }
}

/// Identity's options.
#[derive(Debug, Clone, Args)]
pub struct IdentityArgs {
    /// Whether anyone may sign up (else only invitations and the bootstrap
    /// admin create users).
    #[arg(long, env = "ORGPLANE_ALLOW_SIGNUP", default_value_t = true, action = clap::ArgAction::Set)]
    pub allow_signup: bool,
    /// Also fetch identity providers over plain HTTP and on private or
    /// loopback addresses. For local providers in development only: an
    /// organization's owner chooses the issuer URL, so this lets owners
    /// make identity fetch addresses of its own network.
    #[arg(long, env = "ORGPLANE_ALLOW_INSECURE_ISSUERS")]
    pub allow_insecure_issuers: bool,
}

impl IdentityArgs {
    /// Identity's configuration.
    pub fn config(&self) -> orgplane_identity::IdentityConfig {
        orgplane_identity::IdentityConfig {
            allow_signup: self.allow_signup,
            allow_insecure_issuers: self.allow_insecure_issuers,
            ..Default::default()
        }
    }
}

/// The agents service's options.
#[derive(Debug, Clone, Args)]
pub struct AgentsArgs {
    /// How many times a run is leased before an expired lease fails it
    /// instead of putting it back in its queue.
    #[arg(long, env = "ORGPLANE_MAX_RUN_ATTEMPTS", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_run_attempts: u32,
}

/// The gateway's options.
#[derive(Debug, Clone, Args)]
pub struct GatewayArgs {
    /// How long a token check is reused, in milliseconds (at most 5000: a
    /// revoked token stops working within that time).
    #[arg(long, env = "ORGPLANE_TOKEN_CACHE_TTL_MS", default_value_t = 2000)]
    pub token_cache_ttl_ms: u64,
    /// Calls per second allowed to one principal, sustained.
    #[arg(long, env = "ORGPLANE_RATE_LIMIT", default_value_t = 200)]
    pub rate_limit: u32,
    /// Calls one principal may make in a burst.
    #[arg(long, env = "ORGPLANE_RATE_LIMIT_BURST", default_value_t = 400)]
    pub rate_limit_burst: u32,
    /// Calls per second allowed from one client address (an IPv6 /64),
    /// sustained, counted before the token is checked.
    #[arg(long, env = "ORGPLANE_ADDRESS_RATE_LIMIT", default_value_t = 1000)]
    pub address_rate_limit: u32,
    /// Calls one client address may make in a burst.
    #[arg(
        long,
        env = "ORGPLANE_ADDRESS_RATE_LIMIT_BURST",
        default_value_t = 2000
    )]
    pub address_rate_limit_burst: u32,
    /// Origin of a web page allowed to call from a browser over gRPC-Web,
    /// as the browser sends it: scheme://host[:port] (e.g.
    /// https://console.example.com). Repeat it, or separate origins with
    /// commas in the variable. None by default: only pages served from
    /// the gateway's own origin can call.
    #[arg(
        long = "cors-origin",
        value_name = "ORIGIN",
        env = "ORGPLANE_CORS_ORIGINS",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<CorsOrigin>,
}

impl GatewayArgs {
    /// The gateway's configuration (backends excluded).
    pub fn config(&self, deadline: &DeadlineArgs) -> GatewayConfig {
        GatewayConfig {
            backends: HashMap::new(),
            token_cache_ttl: Duration::from_millis(self.token_cache_ttl_ms),
            rate_limit_per_second: self.rate_limit,
            rate_limit_burst: self.rate_limit_burst,
            address_rate_limit_per_second: self.address_rate_limit,
            address_rate_limit_burst: self.address_rate_limit_burst,
            default_deadline: deadline.deadline(),
            cors_origins: self.cors_origins.iter().cloned().collect(),
        }
    }
}

/// The gateway's public TLS.
#[derive(Debug, Clone, Args)]
pub struct PublicTlsArgs {
    /// PEM certificate chain of the public endpoint; with --tls-key the
    /// gateway serves TLS, else h2c (plaintext: loopback only).
    #[arg(long, env = "ORGPLANE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of the public endpoint.
    #[arg(long, env = "ORGPLANE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl PublicTlsArgs {
    /// The TLS configuration, when both files are given.
    pub fn config(&self) -> anyhow::Result<Option<ServerTlsConfig>> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(None);
        };
        let read = |path: &PathBuf| {
            std::fs::read(path).with_context(|| format!("reading {}", path.display()))
        };
        Ok(Some(
            ServerTlsConfig::new().identity(TlsIdentity::from_pem(read(cert)?, read(key)?)),
        ))
    }
}

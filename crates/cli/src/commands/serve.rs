//! `orgplane serve <service>`: one service per process, as in production.

use std::{collections::HashMap, net::SocketAddr, time::Duration};

use anyhow::Context;
use clap::{Args, ValueEnum};
use orgplane_agents::{Agents, Migrator as AgentsMigrator};
use orgplane_gateway::GatewayConfig;
use orgplane_identity::{Identity, IdentityConfig, Migrator as IdentityMigrator};
use orgplane_organizations::{Migrator as OrganizationsMigrator, Organizations};
use orgplane_platform::{
    client::mtls_channel,
    db::connect_and_migrate,
    peers::{IdentityPeer, OrganizationsPeer, StatsPeers},
    pki::CertDir,
    shutdown,
};
use orgplane_proto::Backend;
use orgplane_registry::{Migrator as RegistryMigrator, Registry};
use tokio::net::TcpListener;
use tonic::transport::{Identity as TlsIdentity, ServerTlsConfig};

use super::StateArgs;

/// The services `serve` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ServiceName {
    /// Users, passwords, sessions, tokens, service accounts.
    Identity,
    /// Organizations, members, invitations, teams, projects and access
    /// control.
    Organizations,
    /// Model registry and component hub.
    Registry,
    /// Agents, queues, connections, runs (connections so far).
    Agents,
    /// The public front door.
    Gateway,
}

impl ServiceName {
    /// The service's name in certificates and traces.
    pub fn name(self) -> &'static str {
        match self {
            ServiceName::Identity => "identity",
            ServiceName::Organizations => "organizations",
            ServiceName::Registry => "registry",
            ServiceName::Agents => "agents",
            ServiceName::Gateway => "gateway",
        }
    }

    fn default_listen(self) -> &'static str {
        match self {
            ServiceName::Gateway => "127.0.0.1:50051",
            ServiceName::Identity => "127.0.0.1:50061",
            ServiceName::Organizations => "127.0.0.1:50062",
            ServiceName::Registry => "127.0.0.1:50063",
            ServiceName::Agents => "127.0.0.1:50064",
        }
    }
}

/// Arguments of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Which service to run.
    #[arg(value_enum)]
    pub service: ServiceName,
    #[command(flatten)]
    pub state: StateArgs,
    /// Address to listen on. Defaults: gateway 127.0.0.1:50051, identity
    /// :50061, organizations :50062, registry :50063, agents :50064.
    #[arg(long, env = "ORGPLANE_LISTEN")]
    pub listen: Option<SocketAddr>,
    #[command(flatten)]
    pub gateway: GatewayArgs,
    #[command(flatten)]
    pub agents: AgentsArgs,
    /// identity: whether anyone may sign up (else only invitations and the
    /// bootstrap admin create users).
    #[arg(long, env = "ORGPLANE_ALLOW_SIGNUP", default_value_t = true, action = clap::ArgAction::Set)]
    pub allow_signup: bool,
    /// identity: also fetch identity providers over plain HTTP and on
    /// private or loopback addresses. For local providers in development
    /// only: an organization's owner chooses the issuer URL, so this lets
    /// owners make identity fetch addresses of its own network.
    #[arg(long, env = "ORGPLANE_ALLOW_INSECURE_ISSUERS")]
    pub allow_insecure_issuers: bool,
}

/// Agents service options.
#[derive(Debug, Args)]
pub struct AgentsArgs {
    /// agents: how many times a run is leased before an expired lease fails
    /// it instead of putting it back in its queue.
    #[arg(long, env = "ORGPLANE_MAX_RUN_ATTEMPTS", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_run_attempts: u32,
}

/// Gateway options.
#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// gateway, organizations and agents: address of identity.
    #[arg(
        long,
        env = "ORGPLANE_IDENTITY_ADDR",
        default_value = "127.0.0.1:50061"
    )]
    pub identity_addr: String,
    /// gateway, identity, registry and agents: address of organizations;
    /// unset, the gateway answers UNIMPLEMENTED for it and the others use
    /// 127.0.0.1:50062.
    #[arg(long, env = "ORGPLANE_ORGANIZATIONS_ADDR")]
    pub organizations_addr: Option<String>,
    /// gateway: address of registry (unset answers UNIMPLEMENTED);
    /// organizations: where the registry is, for statistics (127.0.0.1:50063
    /// when unset).
    #[arg(long, env = "ORGPLANE_REGISTRY_ADDR")]
    pub registry_addr: Option<String>,
    /// gateway: address of agents (unset answers UNIMPLEMENTED);
    /// organizations: where the agents service is, for statistics
    /// (127.0.0.1:50064 when unset).
    #[arg(long, env = "ORGPLANE_AGENTS_ADDR")]
    pub agents_addr: Option<String>,
    /// gateway: PEM certificate chain of the public endpoint; with --tls-key
    /// the gateway serves TLS, else h2c (plaintext: loopback only).
    #[arg(long, env = "ORGPLANE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// gateway: PEM private key of the public endpoint.
    #[arg(long, env = "ORGPLANE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// gateway: how long a token check is reused, in milliseconds (at most
    /// 5000: a revoked token stops working within that time).
    #[arg(long, env = "ORGPLANE_TOKEN_CACHE_TTL_MS", default_value_t = 2000)]
    pub token_cache_ttl_ms: u64,
    /// gateway: calls per second allowed to one principal, sustained.
    #[arg(long, env = "ORGPLANE_RATE_LIMIT", default_value_t = 200)]
    pub rate_limit: u32,
    /// gateway: calls one principal may make in a burst.
    #[arg(long, env = "ORGPLANE_RATE_LIMIT_BURST", default_value_t = 400)]
    pub rate_limit_burst: u32,
    /// gateway: calls per second allowed from one client address (an IPv6
    /// /64), sustained, counted before the token is checked.
    #[arg(long, env = "ORGPLANE_ADDRESS_RATE_LIMIT", default_value_t = 1000)]
    pub address_rate_limit: u32,
    /// gateway: calls one client address may make in a burst.
    #[arg(
        long,
        env = "ORGPLANE_ADDRESS_RATE_LIMIT_BURST",
        default_value_t = 2000
    )]
    pub address_rate_limit_burst: u32,
    /// Deadline, in seconds, of calls that carry none (the gateway adds it;
    /// a backend applies it to calls without a deadline).
    #[arg(long, env = "ORGPLANE_DEFAULT_DEADLINE_SECS", default_value_t = 30)]
    pub default_deadline_secs: u64,
}

impl GatewayArgs {
    /// The gateway configuration these flags describe (backends excluded).
    pub fn config(&self) -> GatewayConfig {
        GatewayConfig {
            backends: HashMap::new(),
            token_cache_ttl: Duration::from_millis(self.token_cache_ttl_ms),
            rate_limit_per_second: self.rate_limit,
            rate_limit_burst: self.rate_limit_burst,
            address_rate_limit_per_second: self.address_rate_limit,
            address_rate_limit_burst: self.address_rate_limit_burst,
            default_deadline: Duration::from_secs(self.default_deadline_secs),
        }
    }
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let listen: SocketAddr = match args.listen {
        Some(addr) => addr,
        None => args.service.default_listen().parse()?,
    };
    let certs = CertDir::new(args.state.certs_dir());
    let tls = certs.load(args.service.name())?;
    let deadline = Duration::from_secs(args.gateway.default_deadline_secs);
    let server = match args.service {
        ServiceName::Identity => {
            let target = args.state.target(Backend::Identity)?;
            let db = connect_and_migrate::<IdentityMigrator>(&target).await?;
            let config = IdentityConfig {
                allow_signup: args.allow_signup,
                allow_insecure_issuers: args.allow_insecure_issuers,
                ..IdentityConfig::default()
            };
            let organizations = OrganizationsPeer::new(mtls_channel(
                args.gateway
                    .organizations_addr
                    .as_deref()
                    .unwrap_or(ServiceName::Organizations.default_listen()),
                "organizations",
                &tls,
            )?);
            let identity = Identity::new(db, config).with_organizations(organizations);
            tokio::spawn(
                identity
                    .clone()
                    .run_purger(orgplane::stack::PEER_PURGE_INTERVAL, std::future::pending()),
            );
            tokio::spawn(identity.activity_shipper()?.run(std::future::pending()));
            orgplane_identity::grpc_server(identity, &tls).request_timeout(deadline)
        }
        ServiceName::Organizations => {
            let target = args.state.target(Backend::Organizations)?;
            let db = connect_and_migrate::<OrganizationsMigrator>(&target).await?;
            let identity =
                IdentityPeer::new(mtls_channel(&args.gateway.identity_addr, "identity", &tls)?);
            let stats = StatsPeers::new(
                mtls_channel(
                    args.gateway
                        .registry_addr
                        .as_deref()
                        .unwrap_or(ServiceName::Registry.default_listen()),
                    "registry",
                    &tls,
                )?,
                mtls_channel(
                    args.gateway
                        .agents_addr
                        .as_deref()
                        .unwrap_or(ServiceName::Agents.default_listen()),
                    "agents",
                    &tls,
                )?,
            );
            let organizations = Organizations::new(db)
                .with_identity(identity)
                .with_stats(stats);
            tokio::spawn(
                organizations
                    .clone()
                    .run_purger(orgplane::stack::PURGE_INTERVAL, std::future::pending()),
            );
            tokio::spawn(organizations.activity_shipper().run(std::future::pending()));
            orgplane_organizations::grpc_server(organizations, &tls).request_timeout(deadline)
        }
        ServiceName::Registry => {
            let target = args.state.target(Backend::Registry)?;
            let db = connect_and_migrate::<RegistryMigrator>(&target).await?;
            let organizations = OrganizationsPeer::new(mtls_channel(
                args.gateway
                    .organizations_addr
                    .as_deref()
                    .unwrap_or(ServiceName::Organizations.default_listen()),
                "organizations",
                &tls,
            )?);
            let registry = Registry::new(db, organizations);
            tokio::spawn(
                registry
                    .clone()
                    .run_purger(orgplane::stack::PEER_PURGE_INTERVAL, std::future::pending()),
            );
            tokio::spawn(registry.activity_shipper().run(std::future::pending()));
            orgplane_registry::grpc_server(registry, &tls).request_timeout(deadline)
        }
        ServiceName::Agents => {
            let target = args.state.target(Backend::Agents)?;
            let db = connect_and_migrate::<AgentsMigrator>(&target).await?;
            let organizations = OrganizationsPeer::new(mtls_channel(
                args.gateway
                    .organizations_addr
                    .as_deref()
                    .unwrap_or(ServiceName::Organizations.default_listen()),
                "organizations",
                &tls,
            )?);
            let identity =
                IdentityPeer::new(mtls_channel(&args.gateway.identity_addr, "identity", &tls)?);
            let agents = Agents::new(db)
                .with_max_attempts(args.agents.max_run_attempts)
                .with_organizations(organizations)
                .with_identity(identity);
            tokio::spawn(
                agents
                    .clone()
                    .run_purger(orgplane::stack::PEER_PURGE_INTERVAL, std::future::pending()),
            );
            tokio::spawn(agents.activity_shipper()?.run(std::future::pending()));
            orgplane_agents::grpc_server(agents, &tls).request_timeout(deadline)
        }
        ServiceName::Gateway => {
            let mut config = args.gateway.config();
            config
                .backends
                .insert(Backend::Identity, args.gateway.identity_addr.clone());
            for (backend, addr) in [
                (Backend::Organizations, &args.gateway.organizations_addr),
                (Backend::Registry, &args.gateway.registry_addr),
                (Backend::Agents, &args.gateway.agents_addr),
            ] {
                if let Some(addr) = addr {
                    config.backends.insert(backend, addr.clone());
                }
            }
            let public_tls = match (&args.gateway.tls_cert, &args.gateway.tls_key) {
                (Some(cert), Some(key)) => Some(
                    ServerTlsConfig::new().identity(TlsIdentity::from_pem(
                        std::fs::read(cert)
                            .with_context(|| format!("reading {}", cert.display()))?,
                        std::fs::read(key).with_context(|| format!("reading {}", key.display()))?,
                    )),
                ),
                _ => None,
            };
            orgplane_gateway::grpc_server(&config, &tls, public_tls)?
        }
    };
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    server.serve(listener, shutdown::signal()).await
}

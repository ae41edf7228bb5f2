//! `orgplane serve <service>`: one service per process, as in production,
//! run by the same node runner as `orgplane dev`. Each service takes only
//! the flags it honours.

use clap::{Args, Subcommand};
use orgplane_agents::Agents;
use orgplane_identity::Identity;
use orgplane_organizations::Organizations;
use orgplane_proto::Backend;
use orgplane_registry::Registry;
use orgplane_service::Service;
use tokio::net::TcpListener;

use super::args::{
    AgentsAddrArgs, AgentsArgs, DataDirArgs, DeadlineArgs, DrainArgs, GatewayArgs,
    IdentityAddrArgs, IdentityArgs, ListenArgs, OpsArgs, OrganizationsAddrArgs, PublicTlsArgs,
    RegistryAddrArgs, StateArgs, default_addr, peer_addrs,
};
use orgplane::node::{Node, State};

/// Where the gateway listens unless told otherwise.
const GATEWAY_DEFAULT_ADDR: &str = "127.0.0.1:50051";

/// The service to run.
#[derive(Debug, Subcommand)]
pub enum ServeCommand {
    /// Users, passwords, sessions, tokens, service accounts.
    Identity(IdentityServe),
    /// Organizations, members, invitations, teams, projects, activities and
    /// access control.
    Organizations(OrganizationsServe),
    /// Model registry and component hub.
    Registry(RegistryServe),
    /// Agents, queues, connections and runs.
    Agents(AgentsServe),
    /// The public front door: authenticates, rate-limits and forwards to the
    /// backends over mTLS.
    Gateway(GatewayServe),
}

/// What every backend takes: state, address, deadline.
#[derive(Debug, Args)]
pub struct BackendArgs {
    #[command(flatten)]
    pub state: StateArgs,
    #[command(flatten)]
    pub listen: ListenArgs,
    #[command(flatten)]
    pub deadline: DeadlineArgs,
    #[command(flatten)]
    pub drain: DrainArgs,
    #[command(flatten)]
    pub ops: OpsArgs,
}

/// `serve identity`.
#[derive(Debug, Args)]
pub struct IdentityServe {
    #[command(flatten)]
    pub backend: BackendArgs,
    #[command(flatten)]
    pub organizations: OrganizationsAddrArgs,
    #[command(flatten)]
    pub identity: IdentityArgs,
}

/// `serve organizations`.
#[derive(Debug, Args)]
pub struct OrganizationsServe {
    #[command(flatten)]
    pub backend: BackendArgs,
    #[command(flatten)]
    pub identity: IdentityAddrArgs,
    #[command(flatten)]
    pub registry: RegistryAddrArgs,
    #[command(flatten)]
    pub agents: AgentsAddrArgs,
}

/// `serve registry`.
#[derive(Debug, Args)]
pub struct RegistryServe {
    #[command(flatten)]
    pub backend: BackendArgs,
    #[command(flatten)]
    pub organizations: OrganizationsAddrArgs,
}

/// `serve agents`.
#[derive(Debug, Args)]
pub struct AgentsServe {
    #[command(flatten)]
    pub backend: BackendArgs,
    #[command(flatten)]
    pub identity: IdentityAddrArgs,
    #[command(flatten)]
    pub organizations: OrganizationsAddrArgs,
    #[command(flatten)]
    pub agents: AgentsArgs,
}

/// `serve gateway`.
#[derive(Debug, Args)]
pub struct GatewayServe {
    #[command(flatten)]
    pub dir: DataDirArgs,
    #[command(flatten)]
    pub listen: ListenArgs,
    #[command(flatten)]
    pub deadline: DeadlineArgs,
    #[command(flatten)]
    pub drain: DrainArgs,
    #[command(flatten)]
    pub ops: OpsArgs,
    #[command(flatten)]
    pub identity: IdentityAddrArgs,
    #[command(flatten)]
    pub organizations: OrganizationsAddrArgs,
    #[command(flatten)]
    pub registry: RegistryAddrArgs,
    #[command(flatten)]
    pub agents: AgentsAddrArgs,
    #[command(flatten)]
    pub gateway: GatewayArgs,
    #[command(flatten)]
    pub tls: PublicTlsArgs,
}

impl ServeCommand {
    /// The service's name, as its traces report it.
    pub fn name(&self) -> &'static str {
        match self {
            ServeCommand::Identity(_) => Backend::Identity.name(),
            ServeCommand::Organizations(_) => Backend::Organizations.name(),
            ServeCommand::Registry(_) => Backend::Registry.name(),
            ServeCommand::Agents(_) => Backend::Agents.name(),
            ServeCommand::Gateway(_) => "gateway",
        }
    }
}

pub async fn run(command: ServeCommand) -> anyhow::Result<()> {
    use Backend as B;
    match command {
        ServeCommand::Identity(a) => {
            let peers = [(B::Organizations, a.organizations.organizations_addr)];
            serve::<Identity>(&a.backend, &peers, a.identity.config()).await
        }
        ServeCommand::Organizations(a) => {
            let peers = [
                (B::Identity, a.identity.identity_addr),
                (B::Registry, a.registry.registry_addr),
                (B::Agents, a.agents.agents_addr),
            ];
            serve::<Organizations>(&a.backend, &peers, ()).await
        }
        ServeCommand::Registry(a) => {
            let peers = [(B::Organizations, a.organizations.organizations_addr)];
            serve::<Registry>(&a.backend, &peers, ()).await
        }
        ServeCommand::Agents(a) => {
            let peers = [
                (B::Identity, a.identity.identity_addr),
                (B::Organizations, a.organizations.organizations_addr),
            ];
            serve::<Agents>(&a.backend, &peers, a.agents.max_run_attempts).await
        }
        ServeCommand::Gateway(a) => serve_gateway(a).await,
    }
}

/// Serves `S` until Ctrl-C or SIGTERM. It listens once migrated and
/// assembled: a listening port means ready.
async fn serve<S: Service>(
    args: &BackendArgs,
    peers: &[(Backend, Option<String>)],
    config: S::Config,
) -> anyhow::Result<()> {
    let listen = args.listen.or(S::DEFAULT_ADDR)?;
    let mut node = Node::new(
        args.state.state(),
        peer_addrs(peers),
        args.deadline.deadline(),
    )
    .drain_delay(args.drain.delay());
    node.serve_ops(args.ops.metrics_listen).await?;
    node.start::<S>(config, listen).await?;
    node.ready();
    node.run_until_signal().await
}

async fn serve_gateway(a: GatewayServe) -> anyhow::Result<()> {
    let listen = a.listen.or(GATEWAY_DEFAULT_ADDR)?;
    let mut config = a.gateway.config(&a.deadline);
    let identity = a
        .identity
        .identity_addr
        .unwrap_or_else(|| default_addr(Backend::Identity).to_owned());
    config.backends.insert(Backend::Identity, identity);
    for (backend, addr) in [
        (Backend::Organizations, a.organizations.organizations_addr),
        (Backend::Registry, a.registry.registry_addr),
        (Backend::Agents, a.agents.agents_addr),
    ] {
        if let Some(addr) = addr {
            config.backends.insert(backend, addr);
        }
    }
    let state = State {
        data_dir: a.dir.data_dir.clone(),
        database_url: None,
        schema_prefix: String::new(),
        database_connections: orgplane_storage::db::POSTGRES_CONNECTIONS,
        database_read_connections: orgplane_storage::db::POSTGRES_READERS,
    };
    let server =
        orgplane_gateway::grpc_server(&config, &state.certs().load("gateway")?, a.tls.config()?)?;
    let mut node =
        Node::new(state, peer_addrs(&[]), a.deadline.deadline()).drain_delay(a.drain.delay());
    // The operations port first: once the gateway's port accepts, its
    // probes answer too.
    node.serve_ops(a.ops.metrics_listen).await?;
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|err| anyhow::anyhow!("binding {listen}: {err}"))?;
    node.start_gateway(server, listener);
    node.ready();
    node.run_until_signal().await
}

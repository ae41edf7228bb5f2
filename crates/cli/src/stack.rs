//! The control plane in one process: every implemented service and the
//! gateway, each on its own loopback port, talking over real mTLS sockets.
//! `orgplane dev` runs it; the end-to-end tests start it the same way.

use std::{collections::HashMap, net::SocketAddr, path::PathBuf};

use anyhow::Context;
use orgplane_agents::Agents;
use orgplane_gateway::GatewayConfig;
use orgplane_identity::{Identity, IdentityConfig};
use orgplane_organizations::Organizations;
use orgplane_proto::Backend;
use orgplane_registry::Registry;
use orgplane_service::PeerAddrs;
use orgplane_transport::pki::{CaDir, CertDir, IDENTITIES};
use tokio::net::TcpListener;

use crate::{
    admin::{AdminSeed, Bootstrap, bootstrap_admin},
    node::{Node, State},
};

/// What to start.
#[derive(Debug, Clone)]
pub struct StackConfig {
    /// Certificates and SQLite files live here.
    pub data_dir: PathBuf,
    /// PostgreSQL instead of SQLite, one schema per service.
    pub database_url: Option<String>,
    /// Prefix of the PostgreSQL schemas (tests isolate themselves with it).
    pub schema_prefix: String,
    /// Most connections of each service's PostgreSQL pool.
    pub database_connections: u32,
    /// Most PostgreSQL connections of each service beside its pool, reading
    /// list pages.
    pub database_read_connections: u32,
    /// The gateway's public address (h2c).
    pub gateway_listen: SocketAddr,
    /// The operations port (metrics and probes), if any.
    pub metrics_listen: Option<SocketAddr>,
    /// Identity's settings.
    pub identity: IdentityConfig,
    /// The gateway's settings (backends are filled in by the stack).
    pub gateway: GatewayConfig,
    /// Agents: leases a run gets before an expired lease fails it.
    pub max_run_attempts: u32,
    /// The backends' bound on a call (a shorter `grpc-timeout` wins; the
    /// gateway gives calls without one its own default deadline).
    pub request_timeout: std::time::Duration,
    /// The instance admin, created (when missing) before the gateway
    /// answers: a client's first `Login` finds it.
    pub admin: Option<AdminSeed>,
}

/// A running stack.
#[derive(Debug)]
pub struct Stack {
    /// Where the gateway listens.
    pub gateway_addr: SocketAddr,
    /// The PostgreSQL database, when not on SQLite.
    pub database_url: Option<String>,
    /// The PostgreSQL schema prefix.
    pub schema_prefix: String,
    /// Where identity listens (mTLS only).
    pub identity_addr: SocketAddr,
    /// The certificates in use.
    pub certs: CertDir,
    /// Where organizations listens (mTLS only).
    pub organizations_addr: SocketAddr,
    /// Where the registry listens (mTLS only).
    pub registry_addr: SocketAddr,
    /// Identity's domain, for bootstrap and tests.
    pub identity: Identity,
    /// The organizations domain, for tests.
    pub organizations: Organizations,
    /// The registry domain, for tests.
    pub registry: Registry,
    /// The agents domain, for tests.
    pub agents: Agents,
    /// What bootstrapping the admin did, when asked to.
    pub bootstrap: Option<Bootstrap>,
    node: Node,
}

impl Stack {
    /// Creates certificates when missing, migrates, and starts serving.
    pub async fn start(config: StackConfig) -> anyhow::Result<Self> {
        let state = State {
            data_dir: config.data_dir.clone(),
            database_url: config.database_url.clone(),
            schema_prefix: config.schema_prefix.clone(),
            database_connections: config.database_connections,
            database_read_connections: config.database_read_connections,
        };
        let certs = state.certs();
        certs
            .init(&CaDir::new(config.data_dir.join("ca")), IDENTITIES, &[])
            .context("creating the dev certificates")?;

        // The gateway's address first: it was asked for (a port chosen free
        // a moment ago may be handed out again to the next ephemeral bind),
        // the internal ones are any free port.
        let gateway_listener = TcpListener::bind(config.gateway_listen)
            .await
            .with_context(|| format!("binding the gateway to {}", config.gateway_listen))?;
        let gateway_addr = gateway_listener.local_addr()?;
        // Listeners first: each service's peers need the others' addresses.
        let mut listeners = HashMap::new();
        let mut addrs = HashMap::new();
        for backend in Backend::ALL {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            addrs.insert(backend, listener.local_addr()?);
            listeners.insert(backend, listener);
        }
        let peers = PeerAddrs {
            identity: addrs[&Backend::Identity].to_string(),
            organizations: addrs[&Backend::Organizations].to_string(),
            registry: addrs[&Backend::Registry].to_string(),
            agents: addrs[&Backend::Agents].to_string(),
        };
        let mut listener = |backend| listeners.remove(&backend).expect("one listener each");

        let mut node = Node::new(state, peers.clone(), config.request_timeout);
        node.serve_ops(config.metrics_listen).await?;
        let identity = node
            .start::<Identity>(config.identity.clone(), listener(Backend::Identity))
            .await?;
        let organizations = node
            .start::<Organizations>((), listener(Backend::Organizations))
            .await?;
        let registry = node
            .start::<Registry>((), listener(Backend::Registry))
            .await?;
        let agents = node
            .start::<Agents>(config.max_run_attempts, listener(Backend::Agents))
            .await?;

        let bootstrap = match &config.admin {
            Some(seed) => {
                Some(bootstrap_admin(&identity, &seed.email, seed.password.clone()).await?)
            }
            None => None,
        };

        // The gateway answers last: its port may have been accepting
        // connections since it was bound, and their calls wait until now.
        let mut gateway_config = config.gateway.clone();
        gateway_config.backends = Backend::ALL
            .into_iter()
            .map(|backend| (backend, peers.of(backend).to_owned()))
            .collect();
        let gateway =
            orgplane_gateway::grpc_server(&gateway_config, &certs.load("gateway")?, None)?;
        node.start_gateway(gateway, gateway_listener);
        node.ready();

        Ok(Self {
            gateway_addr,
            database_url: config.database_url.clone(),
            schema_prefix: config.schema_prefix.clone(),
            identity_addr: addrs[&Backend::Identity],
            organizations_addr: addrs[&Backend::Organizations],
            registry_addr: addrs[&Backend::Registry],
            certs,
            identity,
            organizations,
            registry,
            agents,
            bootstrap,
            node,
        })
    }

    /// Stops accepting calls, lets in-flight calls finish, and waits for
    /// every server and background task (the gateway first: see
    /// [`Node::stop`]).
    pub async fn stop(self) -> anyhow::Result<()> {
        self.node.stop().await
    }

    /// Completes when a server stops on its own (an error).
    pub async fn wait_for_failure(&mut self) -> anyhow::Result<()> {
        self.node.wait_for_failure().await
    }
}

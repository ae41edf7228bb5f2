//! The control plane in one process: every implemented service and the
//! gateway, each on its own loopback port, talking over real mTLS sockets.
//! `orgplane dev` runs it; the end-to-end tests start it the same way.

use std::{collections::HashMap, net::SocketAddr, path::PathBuf};

use anyhow::Context;
use orgplane_agents::{Agents, Migrator as AgentsMigrator};
use orgplane_gateway::GatewayConfig;
use orgplane_identity::{Identity, IdentityConfig, Migrator as IdentityMigrator};
use orgplane_organizations::{Migrator as OrganizationsMigrator, Organizations};
use orgplane_platform::{
    client::mtls_channel,
    db::{DbTarget, connect_and_migrate},
    peers::{IdentityPeer, OrganizationsPeer, StatsPeers},
    pki::{CaDir, CertDir, IDENTITIES},
    shutdown::Shutdown,
};
use orgplane_proto::Backend;
use orgplane_registry::{Migrator as RegistryMigrator, Registry};
use tokio::{net::TcpListener, task::JoinSet};

/// How often deleted organizations past their grace period are purged.
pub const PURGE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);
/// How often the other services purge what they hold of deleted
/// organizations (unreachable at once; this reclaims their rows).
pub const PEER_PURGE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(600);

/// What to start.
#[derive(Debug, Clone)]
pub struct StackConfig {
    /// Certificates and SQLite files live here.
    pub data_dir: PathBuf,
    /// PostgreSQL instead of SQLite, one schema per service.
    pub database_url: Option<String>,
    /// Prefix of the PostgreSQL schemas (tests isolate themselves with it).
    pub schema_prefix: String,
    /// The gateway's public address (h2c).
    pub gateway_listen: SocketAddr,
    /// Identity's settings.
    pub identity: IdentityConfig,
    /// The gateway's settings (backends are filled in by the stack).
    pub gateway: GatewayConfig,
    /// Agents: leases a run gets before an expired lease fails it.
    pub max_run_attempts: u32,
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
    shutdown: Shutdown,
    gateway_shutdown: Shutdown,
    gateway_task: tokio::task::Id,
    tasks: JoinSet<anyhow::Result<()>>,
}

impl Stack {
    /// Creates certificates when missing, migrates, and starts serving.
    pub async fn start(config: StackConfig) -> anyhow::Result<Self> {
        let certs = CertDir::new(config.data_dir.join("certs"));
        certs
            .init(&CaDir::new(config.data_dir.join("ca")), IDENTITIES, &[])
            .context("creating the dev certificates")?;

        let target = |backend: Backend| {
            DbTarget::for_service(
                config.database_url.as_deref(),
                &config.data_dir,
                &config.schema_prefix,
                backend.name(),
            )
        };
        // The gateway's address first: it was asked for (a port chosen free
        // a moment ago may be handed out again to the next ephemeral bind),
        // the internal ones are any free port.
        let gateway_listener = TcpListener::bind(config.gateway_listen)
            .await
            .with_context(|| format!("binding the gateway to {}", config.gateway_listen))?;
        let gateway_addr = gateway_listener.local_addr()?;
        // Listeners first: each service's peers need the others' addresses.
        let identity_listener = TcpListener::bind("127.0.0.1:0").await?;
        let identity_addr = identity_listener.local_addr()?;
        let organizations_listener = TcpListener::bind("127.0.0.1:0").await?;
        let organizations_addr = organizations_listener.local_addr()?;
        let registry_listener = TcpListener::bind("127.0.0.1:0").await?;
        let registry_addr = registry_listener.local_addr()?;
        let agents_listener = TcpListener::bind("127.0.0.1:0").await?;
        let agents_addr = agents_listener.local_addr()?;
        let identity_tls = certs.load("identity")?;
        let organizations_tls = certs.load("organizations")?;
        let registry_tls = certs.load("registry")?;
        let agents_tls = certs.load("agents")?;

        let db = connect_and_migrate::<IdentityMigrator>(&target(Backend::Identity)?).await?;
        let identity = Identity::new(db, config.identity.clone()).with_organizations(
            OrganizationsPeer::new(mtls_channel(
                &organizations_addr.to_string(),
                "organizations",
                &identity_tls,
            )?),
        );
        let db =
            connect_and_migrate::<OrganizationsMigrator>(&target(Backend::Organizations)?).await?;
        let organizations = Organizations::new(db)
            .with_identity(IdentityPeer::new(mtls_channel(
                &identity_addr.to_string(),
                "identity",
                &organizations_tls,
            )?))
            .with_stats(StatsPeers::new(
                mtls_channel(&registry_addr.to_string(), "registry", &organizations_tls)?,
                mtls_channel(&agents_addr.to_string(), "agents", &organizations_tls)?,
            ));

        let db = connect_and_migrate::<RegistryMigrator>(&target(Backend::Registry)?).await?;
        let registry = Registry::new(
            db,
            OrganizationsPeer::new(mtls_channel(
                &organizations_addr.to_string(),
                "organizations",
                &registry_tls,
            )?),
        );

        let db = connect_and_migrate::<AgentsMigrator>(&target(Backend::Agents)?).await?;
        let agents = Agents::new(db)
            .with_max_attempts(config.max_run_attempts)
            .with_organizations(OrganizationsPeer::new(mtls_channel(
                &organizations_addr.to_string(),
                "organizations",
                &agents_tls,
            )?))
            .with_identity(IdentityPeer::new(mtls_channel(
                &identity_addr.to_string(),
                "identity",
                &agents_tls,
            )?));

        let shutdown = Shutdown::new();
        let mut tasks = JoinSet::new();

        let identity_server = orgplane_identity::grpc_server(identity.clone(), &identity_tls);
        tasks.spawn(identity_server.serve(identity_listener, shutdown.wait()));
        let identity_purger = identity
            .clone()
            .run_purger(PEER_PURGE_INTERVAL, shutdown.wait());
        tasks.spawn(async move {
            identity_purger.await;
            Ok(())
        });
        let identity_shipper = identity.activity_shipper()?.run(shutdown.wait());
        tasks.spawn(async move {
            identity_shipper.await;
            Ok(())
        });

        let organizations_server =
            orgplane_organizations::grpc_server(organizations.clone(), &organizations_tls);
        tasks.spawn(organizations_server.serve(organizations_listener, shutdown.wait()));
        let purger = organizations
            .clone()
            .run_purger(PURGE_INTERVAL, shutdown.wait());
        tasks.spawn(async move {
            purger.await;
            Ok(())
        });
        let shipper = organizations.activity_shipper().run(shutdown.wait());
        tasks.spawn(async move {
            shipper.await;
            Ok(())
        });

        let registry_server = orgplane_registry::grpc_server(registry.clone(), &registry_tls);
        tasks.spawn(registry_server.serve(registry_listener, shutdown.wait()));
        let registry_purger = registry
            .clone()
            .run_purger(PEER_PURGE_INTERVAL, shutdown.wait());
        tasks.spawn(async move {
            registry_purger.await;
            Ok(())
        });
        let registry_shipper = registry.activity_shipper().run(shutdown.wait());
        tasks.spawn(async move {
            registry_shipper.await;
            Ok(())
        });

        let agents_server = orgplane_agents::grpc_server(agents.clone(), &agents_tls);
        tasks.spawn(agents_server.serve(agents_listener, shutdown.wait()));
        let agents_purger = agents
            .clone()
            .run_purger(PEER_PURGE_INTERVAL, shutdown.wait());
        tasks.spawn(async move {
            agents_purger.await;
            Ok(())
        });
        let agents_shipper = agents.activity_shipper()?.run(shutdown.wait());
        tasks.spawn(async move {
            agents_shipper.await;
            Ok(())
        });

        let mut gateway_config = config.gateway.clone();
        gateway_config.backends = HashMap::from([
            (Backend::Identity, identity_addr.to_string()),
            (Backend::Organizations, organizations_addr.to_string()),
            (Backend::Registry, registry_addr.to_string()),
            (Backend::Agents, agents_addr.to_string()),
        ]);
        let gateway =
            orgplane_gateway::grpc_server(&gateway_config, &certs.load("gateway")?, None)?;
        // The gateway stops first (see `stop`), on its own signal.
        let gateway_shutdown = Shutdown::new();
        let gateway_task = tasks
            .spawn(gateway.serve(gateway_listener, gateway_shutdown.wait()))
            .id();

        Ok(Self {
            gateway_addr,
            database_url: config.database_url.clone(),
            schema_prefix: config.schema_prefix.clone(),
            identity_addr,
            organizations_addr,
            registry_addr,
            certs,
            identity,
            organizations,
            registry,
            agents,
            shutdown,
            gateway_shutdown,
            gateway_task,
            tasks,
        })
    }

    /// Stops accepting calls, lets in-flight calls finish, and waits for
    /// every server.
    ///
    /// The gateway goes first: the calls it is still forwarding need their
    /// backends until they complete; then the services stop.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.gateway_shutdown.trigger();
        while let Some(result) = self.tasks.join_next_with_id().await {
            let (id, outcome) = result?;
            outcome?;
            if id == self.gateway_task {
                break;
            }
        }
        self.shutdown.trigger();
        while let Some(result) = self.tasks.join_next().await {
            result??;
        }
        Ok(())
    }

    /// Completes when a server stops on its own (an error).
    pub async fn wait_for_failure(&mut self) -> anyhow::Result<()> {
        match self.tasks.join_next().await {
            Some(result) => {
                result??;
                anyhow::bail!("a server stopped unexpectedly")
            }
            None => Ok(()),
        }
    }
}

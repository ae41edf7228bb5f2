//! How a service is put together, the one way for every mode: each service
//! crate implements [`Service`] — its name, default address, migrator and
//! [`Service::assemble`], which turns a migrated database and the
//! [`Wiring`] (where its peers are, its certificates, when to stop) into the
//! service's state and an [`Assembled`]: its gRPC server and the work it
//! does in the background. The cli's node runner serves that the same way in
//! `orgplane serve` (one service), `orgplane dev` and the end-to-end tests
//! (all of them, in one process).

use std::{future::Future, pin::Pin, time::Duration};

use orgplane_proto::Backend;
use orgplane_transport::client::Channel;
use sea_orm::DatabaseConnection;
use sea_orm_migration::MigratorTrait;

use orgplane_platform::shutdown::Shutdown;
use orgplane_transport::{
    client::mtls_channel, peers::OrganizationsPeer, pki::ServiceTls, server::GrpcServer,
};

/// How often the organizations service purges deleted organizations past
/// their grace period.
pub const PURGE_INTERVAL: Duration = Duration::from_secs(3600);
/// How often the other services purge what they hold of deleted
/// organizations (unreachable at once; this reclaims their rows).
pub const PEER_PURGE_INTERVAL: Duration = Duration::from_secs(600);

/// Where each backend is reachable (`host:port`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerAddrs {
    /// Identity.
    pub identity: String,
    /// Organizations.
    pub organizations: String,
    /// The registry.
    pub registry: String,
    /// Agents.
    pub agents: String,
}

impl PeerAddrs {
    /// The address of `backend`.
    pub fn of(&self, backend: Backend) -> &str {
        match backend {
            Backend::Identity => &self.identity,
            Backend::Organizations => &self.organizations,
            Backend::Registry => &self.registry,
            Backend::Agents => &self.agents,
        }
    }
}

/// What a service is assembled with besides its database.
#[derive(Debug, Clone, Copy)]
pub struct Wiring<'a> {
    /// Where its peers are.
    pub peers: &'a PeerAddrs,
    /// Its certificate, key and CA bundle.
    pub tls: &'a ServiceTls,
    /// The deadline of calls that carry none.
    pub request_timeout: Duration,
    /// Triggered when the process stops: background work ends then.
    pub stop: &'a Shutdown,
}

impl Wiring<'_> {
    /// An mTLS channel to `backend` (connected lazily: a peer that is not
    /// up yet is not an error).
    pub fn channel(&self, backend: Backend) -> anyhow::Result<Channel> {
        mtls_channel(self.peers.of(backend), backend.name(), self.tls)
    }

    /// The organizations service as a peer, and the work that keeps its
    /// cached access decisions current (run it in the background).
    pub fn organizations(&self) -> anyhow::Result<(OrganizationsPeer, Background)> {
        let peer = OrganizationsPeer::new(self.channel(Backend::Organizations)?);
        let following = Box::pin(peer.clone().follow_access_changes(self.stopped()));
        Ok((peer, following))
    }

    /// Completes when the process stops.
    pub fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        self.stop.wait()
    }

    /// `server` with this wiring's request deadline.
    pub fn server(&self, server: GrpcServer) -> GrpcServer {
        server.request_timeout(self.request_timeout)
    }
}

/// Work a service does beside answering calls; it ends when the wiring's
/// `stop` is triggered.
pub type Background = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A service ready to run.
pub struct Assembled {
    /// Its gRPC server.
    pub server: GrpcServer,
    /// Its background work (purgers, activity shippers).
    pub background: Vec<Background>,
}

impl std::fmt::Debug for Assembled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Assembled")
            .field("server", &self.server)
            .field("background", &self.background.len())
            .finish()
    }
}

/// A backend service of orgplane.
pub trait Service: Sized + Clone + Send + 'static {
    /// Which backend it is (its name in certificates, schemas, traces).
    const BACKEND: Backend;
    /// Where it listens unless told otherwise.
    const DEFAULT_ADDR: &'static str;
    /// Its migrations.
    type Migrator: MigratorTrait;
    /// Its own settings.
    type Config: Send;

    /// The service over a migrated `db`, wired to its peers: its state (for
    /// bootstrap and tests) and what to run.
    fn assemble(
        db: DatabaseConnection,
        config: Self::Config,
        wiring: Wiring<'_>,
    ) -> anyhow::Result<(Self, Assembled)>;
}

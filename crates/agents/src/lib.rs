//! The agents service: agents of organizations, their queues, the
//! admission of runs — submitted to a queue, leased by the queue's agent
//! with its token, reported until done ([`domain::admission`]) — and the
//! connections runs use.
//!
//! - [`api`]: the gRPC surface (thin adapters);
//! - [`domain`]: the rules, plain Rust over the tables;
//! - [`storage`]: sea-orm entities and migrations.

pub mod api;
pub mod domain;
pub mod storage;

pub use api::{caller_policy, grpc_server};
pub use domain::Agents;
pub use storage::migration::Migrator;

use orgplane_proto::Backend;
use orgplane_service::{Assembled, PEER_PURGE_INTERVAL, Service, Wiring};
use orgplane_transport::peers::IdentityPeer;
use sea_orm::DatabaseConnection;

impl Service for Agents {
    const BACKEND: Backend = Backend::Agents;
    const DEFAULT_ADDR: &'static str = "127.0.0.1:50064";
    type Migrator = Migrator;
    /// How many times a run is leased before an expired lease fails it.
    type Config = u32;

    /// Agents, asking organizations who may do what and identity for
    /// agents' tokens.
    fn assemble(
        db: DatabaseConnection,
        max_run_attempts: u32,
        wiring: Wiring<'_>,
    ) -> anyhow::Result<(Self, Assembled)> {
        let (organizations, following) = wiring.organizations()?;
        let agents = Agents::new(db)
            .with_max_attempts(max_run_attempts)
            .with_organizations(organizations)
            .with_identity(IdentityPeer::new(wiring.channel(Backend::Identity)?));
        let background = vec![
            following,
            Box::pin(
                agents
                    .clone()
                    .run_purger(PEER_PURGE_INTERVAL, wiring.stopped()),
            ) as _,
            Box::pin(agents.activity_shipper()?.run(wiring.stopped())) as _,
            Box::pin(agents.clone().report_run_counts(wiring.stopped())) as _,
        ];
        let server = wiring.server(grpc_server(agents.clone(), wiring.tls));
        Ok((agents, Assembled { server, background }))
    }
}

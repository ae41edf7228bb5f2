//! The organizations service: organizations, members and roles, and the
//! access control (`OrganizationsInternal.CheckPermission`) that every other
//! service asks.
//!
//! - [`api`]: the gRPC surface (thin adapters);
//! - [`domain`]: the rules, plain Rust over the tables;
//! - [`storage`]: sea-orm entities and migrations.

pub mod api;
pub mod domain;
pub mod storage;

pub use api::{caller_policy, grpc_server};
pub use domain::Organizations;
pub use storage::migration::Migrator;

use orgplane_proto::Backend;
use orgplane_service::{Assembled, PURGE_INTERVAL, Service, Wiring};
use orgplane_transport::peers::{IdentityPeer, StatsPeers};
use sea_orm::DatabaseConnection;

impl Service for Organizations {
    const BACKEND: Backend = Backend::Organizations;
    const DEFAULT_ADDR: &'static str = "127.0.0.1:50062";
    type Migrator = Migrator;
    type Config = ();

    /// Organizations, with identity (verified addresses) and the registry
    /// and agents (statistics, the registry's restrictions).
    fn assemble(
        db: DatabaseConnection,
        (): (),
        wiring: Wiring<'_>,
    ) -> anyhow::Result<(Self, Assembled)> {
        let organizations = Organizations::new(db)
            .with_identity(IdentityPeer::new(wiring.channel(Backend::Identity)?))
            .with_stats(StatsPeers::new(
                wiring.channel(Backend::Registry)?,
                wiring.channel(Backend::Agents)?,
            ));
        let background = vec![
            Box::pin(
                organizations
                    .clone()
                    .run_purger(PURGE_INTERVAL, wiring.stopped()),
            ) as _,
            Box::pin(organizations.activity_shipper().run(wiring.stopped())) as _,
            Box::pin(organizations.access_changes().clone().run(wiring.stopped())) as _,
        ];
        let server = wiring.server(grpc_server(organizations.clone(), wiring.tls));
        Ok((organizations, Assembled { server, background }))
    }
}

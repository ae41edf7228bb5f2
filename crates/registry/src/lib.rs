//! The registry service: an organization's model registry and component hub.
//! Models and components are both *entries* of a catalog, each with
//! *versions* that move through *stages* (`testing`, `staging`,
//! `production`, `disabled`) and keep an append-only stage history. Every
//! call is authorized by the organizations service (`CheckPermission`,
//! cached); team grants on registries and hubs apply.
//!
//! - [`api`]: the gRPC surface (thin adapters);
//! - [`domain`]: the rules, plain Rust over the tables;
//! - [`storage`]: sea-orm entities and migrations.

pub mod api;
pub mod domain;
pub mod storage;

pub use api::{caller_policy, grpc_server};
pub use domain::Registry;
pub use storage::migration::Migrator;

use orgplane_proto::Backend;
use orgplane_service::{Assembled, PEER_PURGE_INTERVAL, Service, Wiring};
use sea_orm::DatabaseConnection;

impl Service for Registry {
    const BACKEND: Backend = Backend::Registry;
    const DEFAULT_ADDR: &'static str = "127.0.0.1:50063";
    type Migrator = Migrator;
    type Config = ();

    /// The registry, asking organizations who may do what.
    fn assemble(
        db: DatabaseConnection,
        (): (),
        wiring: Wiring<'_>,
    ) -> anyhow::Result<(Self, Assembled)> {
        let (organizations, following) = wiring.organizations()?;
        let registry = Registry::new(db, organizations);
        let background = vec![
            following,
            Box::pin(
                registry
                    .clone()
                    .run_purger(PEER_PURGE_INTERVAL, wiring.stopped()),
            ) as _,
            Box::pin(registry.activity_shipper().run(wiring.stopped())) as _,
        ];
        let server = wiring.server(grpc_server(registry.clone(), wiring.tls));
        Ok((registry, Assembled { server, background }))
    }
}

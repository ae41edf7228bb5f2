//! The identity service: users, passwords, sessions and personal access
//! tokens, and the token introspection the gateway authenticates with.
//!
//! - [`api`]: the gRPC surface (thin adapters);
//! - [`domain`]: the rules, plain Rust over the tables;
//! - [`storage`]: sea-orm entities and migrations;
//! - [`oidc`]: verification of identity providers' ID tokens.

pub mod api;
pub mod domain;
pub mod oidc;
pub mod storage;

pub use api::{caller_policy, grpc_server};
pub use domain::{Identity, IdentityConfig};
pub use storage::migration::Migrator;

use orgplane_proto::Backend;
use orgplane_service::{Assembled, PEER_PURGE_INTERVAL, Service, Wiring};
use sea_orm::DatabaseConnection;

impl Service for Identity {
    const BACKEND: Backend = Backend::Identity;
    const DEFAULT_ADDR: &'static str = "127.0.0.1:50061";
    type Migrator = Migrator;
    type Config = IdentityConfig;

    /// Identity, telling organizations of its activities.
    fn assemble(
        db: DatabaseConnection,
        config: IdentityConfig,
        wiring: Wiring<'_>,
    ) -> anyhow::Result<(Self, Assembled)> {
        let (organizations, following) = wiring.organizations()?;
        let identity = Identity::new(db, config).with_organizations(organizations);
        let background = vec![
            following,
            Box::pin(identity.revocations().clone().run(wiring.stopped())) as _,
            Box::pin(
                identity
                    .clone()
                    .run_purger(PEER_PURGE_INTERVAL, wiring.stopped()),
            ) as _,
            Box::pin(identity.activity_shipper()?.run(wiring.stopped())) as _,
        ];
        let server = wiring.server(grpc_server(identity.clone(), wiring.tls));
        Ok((identity, Assembled { server, background }))
    }
}

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

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

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

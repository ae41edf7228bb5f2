//! The agents service: agents of organizations, their queues, and the
//! admission of runs — submitted to a queue, leased by the queue's agent,
//! reported until done — and the connections runs use. Served so far:
//! `ConnectionService`; the admission engine ([`domain::admission`]) is
//! built and tested, its RPCs (agents, queues, runs) come next.
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

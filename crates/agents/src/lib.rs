//! The agents service: agents of organizations, their queues, and the
//! admission of runs — submitted to a queue, leased by the queue's agent,
//! reported until done. This first step holds the storage and the admission
//! engine ([`domain::admission`]); the gRPC surface comes next.
//!
//! - [`domain`]: the rules, plain Rust over the tables;
//! - [`storage`]: sea-orm entities and migrations.

pub mod domain;
pub mod storage;

pub use domain::Agents;
pub use storage::migration::Migrator;

//! The agents service's tables.

pub mod agents;
pub mod connections;
pub mod migration;
pub mod queues;
pub mod runs;

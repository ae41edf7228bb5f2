//! The agents service's tables.

pub mod agent_statuses;
pub mod agents;
pub mod connections;
pub mod migration;
pub mod queues;
pub mod runs;

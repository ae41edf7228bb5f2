//! The agents service's rules.
//!
//! - [`admission`]: runs from submission to a terminal status, under leases.

pub mod admission;

use sea_orm::DatabaseConnection;

/// The agents service's state.
#[derive(Debug, Clone)]
pub struct Agents {
    pub(crate) db: DatabaseConnection,
}

impl Agents {
    /// Over a migrated database.
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// The database (for tests and tools).
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }
}

//! The organizations service's rules over its tables: who may see and do
//! what in an organization ([`access`]), organizations, and members.

pub mod access;
pub mod invitations;
pub mod members;
pub mod organizations;
pub mod projects;
pub mod settings;
pub mod teams;

use sea_orm::DatabaseConnection;

/// The organizations service's state.
#[derive(Debug, Clone)]
pub struct Organizations {
    pub(crate) db: DatabaseConnection,
}

impl Organizations {
    /// Over a migrated database.
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// The database (for tests and tools).
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }
}

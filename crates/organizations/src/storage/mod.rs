//! The organizations service's tables and migrations.

pub mod activities;
pub mod deleted_organizations;
pub mod grants;
pub mod invitations;
pub mod members;
pub mod migration;
pub mod organizations;
pub mod projects;
pub mod settings;
pub mod teams;

pub use orgplane_storage::outbox;

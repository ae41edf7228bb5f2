//! Identity's tables (sea-orm entities) and their migrations. Identity owns
//! these tables; other services refer to users by UUID and username only.

pub mod agent_tokens;
pub mod external_identities;
pub mod login_failures;
pub mod migration;
pub mod password_resets;
pub mod service_accounts;
pub mod tokens;
pub mod users;

pub use orgplane_storage::outbox;

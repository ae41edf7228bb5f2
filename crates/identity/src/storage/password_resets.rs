//! `password_resets`: single-use, expiring reset tokens (hashed).

use sea_orm::entity::prelude::*;

/// A reset row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "password_resets")]
pub struct Model {
    /// UUIDv7.
    #[sea_orm(primary_key, auto_increment = false)]
    pub uuid: String,
    /// Whose password.
    pub user_uuid: String,
    /// Hex SHA-256 of the token.
    #[sea_orm(unique)]
    pub token_hash: String,
    /// Expiry.
    pub expire_time: i64,
    /// Used at; a used token is refused.
    pub use_time: Option<i64>,
    /// Created.
    pub create_time: i64,
}

/// No relations are navigated through sea-orm.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

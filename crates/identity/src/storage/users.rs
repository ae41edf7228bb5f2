//! `users`: one row per person.

use sea_orm::entity::prelude::*;

/// A user row. Times are microseconds since the epoch.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    /// UUIDv7, text.
    #[sea_orm(primary_key, auto_increment = false)]
    pub uuid: String,
    /// Unique slug.
    #[sea_orm(unique)]
    pub username: String,
    /// Unique, stored lowercase.
    #[sea_orm(unique)]
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// Argon2id PHC string; `None` for users who only sign in externally.
    pub password_hash: Option<String>,
    /// Instance administrator.
    pub instance_admin: bool,
    /// Email verified (by invitation or identity provider).
    pub email_verified: bool,
    /// Login attempts counted since the last success or lock (see
    /// `domain::accounts`).
    pub failed_logins: i32,
    /// Logins are refused until then.
    pub locked_until: Option<i64>,
    /// Created.
    pub create_time: i64,
    /// Last changed.
    pub update_time: i64,
}

/// No relations are navigated through sea-orm.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

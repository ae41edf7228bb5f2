//! `login_failures`: failed password logins per (account, client address),
//! which lock the account for that address only (see `domain::accounts`).

use sea_orm::entity::prelude::*;

/// A failure count row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "login_failures")]
pub struct Model {
    /// UUIDv7.
    #[sea_orm(primary_key, auto_increment = false)]
    pub uuid: String,
    /// The account.
    pub user_uuid: String,
    /// The client address as the gateway saw it (an IPv4 address or an
    /// IPv6 /64), or `unknown`.
    pub address: String,
    /// Attempts counted since the last success or lock.
    pub failures: i32,
    /// Logins of the account from the address are refused until then.
    pub locked_until: Option<i64>,
    /// Last attempt; rows idle for a day are purged.
    pub update_time: i64,
}

/// No relations are navigated through sea-orm.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

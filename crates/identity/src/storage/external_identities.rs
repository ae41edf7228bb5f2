//! `external_identities`: who a user is at an OIDC issuer (`iss`, `sub`),
//! so that a later sign-in finds them even after their address changes.

use sea_orm::entity::prelude::*;

/// A link row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "external_identities")]
pub struct Model {
    /// UUIDv7.
    #[sea_orm(primary_key, auto_increment = false)]
    pub uuid: String,
    /// The issuer URL.
    pub issuer: String,
    /// The user's id there (`sub`).
    pub subject: String,
    /// The user.
    pub user_uuid: String,
    /// Linked.
    pub create_time: i64,
}

/// No relations are navigated through sea-orm.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

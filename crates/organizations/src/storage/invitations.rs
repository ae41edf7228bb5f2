//! `invitations`: who was invited to which organization, with which role.
//! Only the hash of the current token is stored.

use sea_orm::entity::prelude::*;

/// An invitation row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "invitations")]
pub struct Model {
    /// UUIDv7; addresses the invitation.
    #[sea_orm(primary_key, auto_increment = false)]
    pub uuid: String,
    /// The organization.
    pub organization_uuid: String,
    /// Email invited (lowercase).
    pub email: String,
    /// Role given on acceptance.
    pub role: String,
    /// `pending`, `accepted` or `revoked` (expiry is read from `expire_time`).
    pub state: String,
    /// Username of who invited.
    pub inviter: String,
    /// Hex SHA-256 of the current token.
    #[sea_orm(unique)]
    pub token_hash: String,
    /// When the current token expires.
    pub expire_time: i64,
    /// Created.
    pub create_time: i64,
    /// Last changed.
    pub update_time: i64,
    /// For outsiders: space-separated slugs of the projects granted.
    pub projects: String,
    /// For outsiders: space-separated slugs of the teams joined.
    pub teams: String,
}

/// No relations are navigated through sea-orm.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

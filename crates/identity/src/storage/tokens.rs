//! `tokens`: sessions (from `Login`) and personal access tokens. Only the
//! SHA-256 of a secret is stored.

use sea_orm::entity::prelude::*;

/// A token row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tokens")]
pub struct Model {
    /// UUIDv7.
    #[sea_orm(primary_key, auto_increment = false)]
    pub uuid: String,
    /// Owner.
    pub user_uuid: String,
    /// `session` or `personal`.
    pub kind: String,
    /// Slug of a personal token, unique per user; `None` for sessions.
    pub name: Option<String>,
    /// Hex SHA-256 of the secret.
    #[sea_orm(unique)]
    pub secret_hash: String,
    /// Space-separated scopes.
    pub scopes: String,
    /// Expiry.
    pub expire_time: i64,
    /// Revoked (logout, password change) at; revoked tokens are refused.
    pub revoke_time: Option<i64>,
    /// Last authenticated a call, to within a minute.
    pub last_use_time: Option<i64>,
    /// Created.
    pub create_time: i64,
    /// Last changed.
    pub update_time: i64,
    /// How a session was opened (`password`, `oidc`); empty for personal
    /// access tokens.
    pub auth_method: String,
}

/// No relations are navigated through sea-orm.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

// Lets `find_also_related` join a token to its user.
impl sea_orm::Related<super::users::Entity> for Entity {
    fn to() -> sea_orm::RelationDef {
        Entity::belongs_to(super::users::Entity)
            .from(Column::UserUuid)
            .to(super::users::Column::Uuid)
            .into()
    }
}

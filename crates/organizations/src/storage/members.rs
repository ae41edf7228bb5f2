//! `members`: a user's role in an organization.

use sea_orm::entity::prelude::*;

/// A membership row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "members")]
pub struct Model {
    /// UUIDv7.
    #[sea_orm(primary_key, auto_increment = false)]
    pub uuid: String,
    /// The organization.
    pub organization_uuid: String,
    /// The user (identity's UUID).
    pub user_uuid: String,
    /// The user's username (immutable in identity, so safe to copy).
    pub username: String,
    /// One of the role strings.
    pub role: String,
    /// Bumped by every update; the etag.
    pub version: i64,
    /// Joined.
    pub create_time: i64,
    /// Last changed.
    pub update_time: i64,
}

/// A member belongs to an organization.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The organization.
    #[sea_orm(
        belongs_to = "super::organizations::Entity",
        from = "Column::OrganizationUuid",
        to = "super::organizations::Column::Uuid"
    )]
    Organization,
}

impl Related<super::organizations::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Organization.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

//! `organizations`: one row per organization; deleted ones keep their row
//! (and name) with `delete_time` set until they are purged.

use sea_orm::entity::prelude::*;

/// An organization row. Times are microseconds since the epoch.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "organizations")]
pub struct Model {
    /// UUIDv7.
    #[sea_orm(primary_key, auto_increment = false)]
    pub uuid: String,
    /// Unique slug.
    #[sea_orm(unique)]
    pub name: String,
    /// Display name.
    pub display_name: String,
    /// Description.
    pub description: String,
    /// Website URL.
    pub website: String,
    /// `private` or `public`.
    pub visibility: String,
    /// Bumped by every update; the etag.
    pub version: i64,
    /// Created.
    pub create_time: i64,
    /// Last changed.
    pub update_time: i64,
    /// Deleted at: unreachable from then on, purged later.
    pub delete_time: Option<i64>,
}

/// Members belong to an organization.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The organization's members.
    #[sea_orm(has_many = "super::members::Entity")]
    Members,
}

impl Related<super::members::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Members.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

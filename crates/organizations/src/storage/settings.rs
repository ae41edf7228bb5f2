//! `organization_settings`: one row per organization, written on creation.
//! Auth settings are a JSON document: they are read and written whole.

use sea_orm::entity::prelude::*;

/// A settings row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "organization_settings")]
pub struct Model {
    /// The organization.
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_uuid: String,
    /// Support email shown to members.
    pub support_email: String,
    /// Role given to members who join without one.
    pub default_role: String,
    /// Default queue (`agent/queue`) of runs.
    pub default_queue: String,
    /// Activities older than this many days are purged; 0 keeps them.
    pub activity_retention_days: i32,
    /// Auth settings, JSON (see `domain::settings::AuthSettings`).
    pub auth: String,
    /// Bumped by every update; the etag.
    pub version: i64,
    /// Last changed.
    pub update_time: i64,
}

/// No relations are navigated through sea-orm.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

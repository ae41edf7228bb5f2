//! `projects`: an organization's projects, with their settings.

use sea_orm::entity::prelude::*;

/// A project row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "projects")]
pub struct Model {
    /// UUIDv7.
    #[sea_orm(primary_key, auto_increment = false)]
    pub uuid: String,
    /// The organization.
    pub organization_uuid: String,
    /// Slug unique within the organization.
    pub name: String,
    /// Description.
    pub description: String,
    /// Tags as ` tag1 tag2 ` (spaces around each, for `tag:` filters).
    pub tags: String,
    /// Markdown readme.
    pub readme: String,
    /// `private` or `public`.
    pub visibility: String,
    /// Archived: read-only and hidden from default lists.
    pub archived: bool,
    /// Restricted to chosen users and teams (kept with the settings, here
    /// for lists to filter on).
    pub restricted: bool,
    /// Settings, JSON (see `domain::projects::ProjectSettings`).
    pub settings: String,
    /// Bumped by every change of the project; its etag.
    pub version: i64,
    /// Bumped by every change of the settings; their etag.
    pub settings_version: i64,
    /// Created.
    pub create_time: i64,
    /// Last changed.
    pub update_time: i64,
}

/// No relations are navigated through sea-orm.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

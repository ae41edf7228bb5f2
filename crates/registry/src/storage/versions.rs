//! `versions`: the versions of entries, with their current stage.

use sea_orm::entity::prelude::*;

/// A version row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "versions")]
pub struct Model {
    /// UUIDv7.
    #[sea_orm(primary_key, auto_increment = false)]
    pub uuid: String,
    /// The entry (deleting it deletes its versions).
    pub entry_uuid: String,
    /// The organization.
    pub organization_uuid: String,
    /// Slug, unique within the entry.
    pub name: String,
    /// What changed.
    pub description: String,
    /// Tags as in `entries`.
    pub tags: String,
    /// Project slug it came from, or empty.
    pub project: String,
    /// UUID of the run that produced it, or empty.
    pub run: String,
    /// JSON array of artifact names.
    pub artifacts: String,
    /// JSON object of free-form metadata (models).
    pub metadata: String,
    /// Connection name holding the artifacts (models), or empty.
    pub connection: String,
    /// The specification, YAML or JSON (components), or empty.
    pub content: String,
    /// `testing`, `staging`, `production` or `disabled`.
    pub stage: String,
    /// Reason of the current stage's condition.
    pub stage_reason: String,
    /// Message of the current stage's condition.
    pub stage_message: String,
    /// Who entered the current stage.
    pub stage_actor: String,
    /// When the current stage was entered.
    pub stage_time: i64,
    /// Bumped by every write; the etag.
    pub version: i64,
    /// Created.
    pub create_time: i64,
    /// Last changed.
    pub update_time: i64,
}

/// No relations are navigated through sea-orm.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

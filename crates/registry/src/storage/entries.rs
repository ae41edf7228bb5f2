//! `entries`: the models and components of organizations.

use sea_orm::entity::prelude::*;

/// An entry row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "entries")]
pub struct Model {
    /// UUIDv7.
    #[sea_orm(primary_key, auto_increment = false)]
    pub uuid: String,
    /// The organization.
    pub organization_uuid: String,
    /// `model` or `component`.
    pub kind: String,
    /// Slug, unique per organization and kind.
    pub name: String,
    /// What it is.
    pub description: String,
    /// Tags, space-separated with a space on each side (` a b `), so that
    /// `LIKE '% a %'` finds one.
    pub tags: String,
    /// Markdown.
    pub readme: String,
    /// `private` or `public`.
    pub visibility: String,
    /// Bumped by every write; the etag.
    pub version: i64,
    /// Created.
    pub create_time: i64,
    /// Last changed.
    pub update_time: i64,
    /// Whether `restriction` narrows access to it.
    pub restricted: bool,
    /// Its restriction as JSON (`platform::restriction`); null while
    /// unrestricted.
    pub restriction: Option<String>,
}

/// No relations are navigated through sea-orm.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

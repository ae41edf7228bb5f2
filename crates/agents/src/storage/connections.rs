//! `connections`: how runs reach storage, code and registries.

use sea_orm::entity::prelude::*;

/// A connection row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "connections")]
pub struct Model {
    /// UUIDv7.
    #[sea_orm(primary_key, auto_increment = false)]
    pub uuid: String,
    /// The organization.
    pub organization_uuid: String,
    /// Slug, unique per organization.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Tags (` a b `).
    pub tags: String,
    /// `host_path`, `volume_claim`, `s3`, `gcs`, `wasb`, `git`, `registry`,
    /// `custom`.
    pub kind: String,
    /// Kind-specific fields, a JSON object.
    pub schema: String,
    /// Name of the Kubernetes secret with credentials, or empty.
    pub secret: String,
    /// Name of a config map to mount, or empty.
    pub config_map: String,
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

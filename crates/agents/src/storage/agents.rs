//! `agents`: the agents of organizations.

use sea_orm::entity::prelude::*;

/// An agent row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "agents")]
pub struct Model {
    /// UUIDv7.
    #[sea_orm(primary_key, auto_increment = false)]
    pub uuid: String,
    /// The organization.
    pub organization_uuid: String,
    /// Slug, unique per organization.
    pub name: String,
    /// Created.
    pub create_time: i64,
    /// What it is for.
    pub description: String,
    /// Tags (` a b `).
    pub tags: String,
    /// Kubernetes namespace it schedules into.
    pub namespace: String,
    /// Cluster it runs in.
    pub cluster: String,
    /// Version it last reported.
    pub agent_version: String,
    /// Seconds without a heartbeat before it is `unhealthy`.
    pub heartbeat_timeout_seconds: i32,
    /// Free-form settings, a JSON object.
    pub settings: String,
    /// When it last reported (microseconds).
    pub heartbeat_time: Option<i64>,
    /// Bumped by every write; the etag.
    pub version: i64,
    /// Last changed.
    pub update_time: i64,
}

/// No relations are navigated through sea-orm.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

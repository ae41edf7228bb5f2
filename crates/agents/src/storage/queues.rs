//! `queues`: where runs wait for an agent.

use sea_orm::entity::prelude::*;

/// A queue row.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "queues")]
pub struct Model {
    /// UUIDv7.
    #[sea_orm(primary_key, auto_increment = false)]
    pub uuid: String,
    /// The organization.
    pub organization_uuid: String,
    /// The agent serving it (deleting the agent deletes its queues).
    pub agent_uuid: String,
    /// Slug, unique per agent.
    pub name: String,
    /// Higher first.
    pub priority: i32,
    /// Most runs leased or running at once; 0 = no limit.
    pub concurrency: i32,
    /// `fifo` or `fair`.
    pub strategy: String,
    /// Bumped by every write; the etag. Also the row acquirers lock.
    pub version: i64,
    /// Created.
    pub create_time: i64,
    /// What it is for.
    pub description: String,
    /// Resource the quota counts (`cpu`, `gpu`, `memory`), or empty.
    pub resource: String,
    /// Most of `resource` its running runs may use at once; 0 is none.
    pub quota: f64,
    /// Last changed.
    pub update_time: i64,
}

/// No relations are navigated through sea-orm.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

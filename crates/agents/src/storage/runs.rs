//! `runs`: submitted runs, their status and their lease.

use sea_orm::entity::prelude::*;

/// A run row.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "runs")]
pub struct Model {
    /// UUIDv7; also the order of submission.
    #[sea_orm(primary_key, auto_increment = false)]
    pub uuid: String,
    /// The organization.
    pub organization_uuid: String,
    /// Project slug.
    pub project: String,
    /// The queue.
    pub queue_uuid: String,
    /// `queued`, `leased`, `running`, `stopping`, `succeeded`, `failed`,
    /// `stopped`.
    pub status: String,
    /// Display name.
    pub name: String,
    /// The specification, JSON.
    pub spec: String,
    /// How many times it was leased.
    pub attempts: i32,
    /// Username of the submitter.
    pub submitter: String,
    /// The current lease's id, while leased, running or stopping.
    pub lease_id: Option<String>,
    /// The agent holding the lease.
    pub lease_agent_uuid: Option<String>,
    /// When the lease ends unless renewed (microseconds).
    pub lease_expire_time: Option<i64>,
    /// How much of its queue's resource it holds while active (see
    /// `domain::runs::demand`).
    #[sea_orm(column_type = "Double")]
    pub demand: f64,
    /// The last status message.
    pub message: String,
    /// Submitted.
    pub create_time: i64,
    /// Status last changed.
    pub update_time: i64,
}

/// No relations are navigated through sea-orm.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

//! `agent_statuses`: every status an agent reported, newest last.

use sea_orm::entity::prelude::*;

/// A status row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "agent_statuses")]
pub struct Model {
    /// UUIDv7; also the order of reports.
    #[sea_orm(primary_key, auto_increment = false)]
    pub uuid: String,
    /// The agent (deleting it deletes its history).
    pub agent_uuid: String,
    /// The state reported, e.g. `running`.
    #[sea_orm(column_name = "type")]
    pub state: String,
    /// Why, machine-readable.
    pub reason: String,
    /// Why, for people.
    pub message: String,
    /// Host the agent runs on.
    pub hostname: String,
    /// The agent's software version.
    pub agent_version: String,
    /// When.
    pub create_time: i64,
}

/// No relations are navigated through sea-orm.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

//! `stage_history`: every stage a version entered, append-only.

use sea_orm::entity::prelude::*;

/// A transition row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "stage_history")]
pub struct Model {
    /// UUIDv7; also the order of transitions.
    #[sea_orm(primary_key, auto_increment = false)]
    pub uuid: String,
    /// The version (deleting it deletes its history).
    pub version_uuid: String,
    /// The stage entered.
    pub stage: String,
    /// Why, machine-readable.
    pub reason: String,
    /// Why, for people.
    pub message: String,
    /// Who.
    pub actor: String,
    /// When.
    pub create_time: i64,
}

/// No relations are navigated through sea-orm.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

//! `agent_tokens`: the credentials of agents. Identity keeps every bearer
//! secret of the instance; the agents service asks for them.

use sea_orm::entity::prelude::*;

/// An agent token row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "agent_tokens")]
pub struct Model {
    /// UUIDv7.
    #[sea_orm(primary_key, auto_increment = false)]
    pub uuid: String,
    /// The agent.
    pub agent_uuid: String,
    /// Its name.
    pub agent_name: String,
    /// Slug of its organization.
    pub organization: String,
    /// UUID of its organization.
    pub organization_uuid: String,
    /// Hex SHA-256 of the secret.
    #[sea_orm(unique)]
    pub secret_hash: String,
    /// Created.
    pub create_time: i64,
}

/// No relations are navigated through sea-orm.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

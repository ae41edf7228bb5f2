//! `deleted_organizations`: a tombstone per deleted organization, kept after
//! the organization's rows are purged, so that every other service can purge
//! what it holds of it — even one that was down when it was deleted.

use sea_orm::entity::prelude::*;

/// A tombstone.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "deleted_organizations")]
pub struct Model {
    /// UUID of the organization.
    #[sea_orm(primary_key, auto_increment = false)]
    pub uuid: String,
    /// Its slug at deletion.
    pub name: String,
    /// When it was deleted (microseconds).
    pub delete_time: i64,
}

/// No relations are navigated through sea-orm.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

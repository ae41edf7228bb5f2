//! `registry_settings`: an organization's registry rules; a missing row
//! means the defaults.

use sea_orm::entity::prelude::*;

/// A settings row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "registry_settings")]
pub struct Model {
    /// The organization.
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_uuid: String,
    /// Production versions allowed per model; 0 = no limit.
    pub max_production_model_versions: i32,
    /// Production versions allowed per component; 0 = no limit.
    pub max_production_component_versions: i32,
    /// Bumped by every write; the etag.
    pub version: i64,
    /// Last changed.
    pub update_time: i64,
    /// The model registry's restriction as JSON; null while unrestricted.
    pub model_registry_restriction: Option<String>,
    /// The component hub's restriction as JSON; null while unrestricted.
    pub component_hub_restriction: Option<String>,
}

/// No relations are navigated through sea-orm.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

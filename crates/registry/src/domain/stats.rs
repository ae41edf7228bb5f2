//! What the registry holds of an organization, counted for its statistics.

use std::collections::BTreeMap;

use orgplane_platform::Error;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect};

use super::{Kind, Registry};
use crate::storage::{entries, versions};

impl Registry {
    /// `models`, `components` (without a project) and `model_versions`,
    /// `component_versions` of the organization, or of one project.
    pub async fn counts(
        &self,
        organization_uuid: &str,
        project: &str,
    ) -> Result<BTreeMap<String, i64>, Error> {
        let mut counts = BTreeMap::new();
        for kind in [Kind::Model, Kind::Component] {
            let uuids: Vec<String> = entries::Entity::find()
                .select_only()
                .column(entries::Column::Uuid)
                .filter(entries::Column::OrganizationUuid.eq(organization_uuid))
                .filter(entries::Column::Kind.eq(kind.as_str()))
                .into_tuple()
                .all(&self.db)
                .await?;
            if project.is_empty() {
                counts.insert(format!("{}s", kind.as_str()), uuids.len() as i64);
            }
            let mut query = versions::Entity::find()
                .filter(versions::Column::OrganizationUuid.eq(organization_uuid))
                .filter(versions::Column::EntryUuid.is_in(uuids));
            if !project.is_empty() {
                query = query.filter(versions::Column::Project.eq(project));
            }
            counts.insert(
                format!("{}_versions", kind.as_str()),
                query.count(&self.db).await? as i64,
            );
        }
        Ok(counts)
    }
}

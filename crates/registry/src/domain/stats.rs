//! What the registry holds of an organization, counted for its statistics,
//! and what its restrictions hide from one caller, for the organization's
//! feeds.

use std::collections::BTreeMap;

use orgplane_platform::{
    Error,
    restriction::{HiddenEntries, Viewer},
};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect};

use super::{Kind, Registry};
use crate::storage::{entries, versions};

impl Registry {
    /// What the registry's restrictions hide from `viewer`: a registry or
    /// hub whose restriction does not admit them, and entries whose own
    /// restriction does not (within a registry they reach).
    pub async fn hidden_entries(
        &self,
        organization_uuid: &str,
        viewer: &Viewer,
    ) -> Result<HiddenEntries, Error> {
        let settings = self.settings_of(&self.db, organization_uuid).await?;
        let mut hidden = HiddenEntries::default();
        for kind in [Kind::Model, Kind::Component] {
            let whole = !viewer.admitted_by(settings.restriction(kind));
            let names = if whole {
                Vec::new()
            } else {
                self.hidden_names(&self.db, organization_uuid, kind, viewer)
                    .await?
            };
            match kind {
                Kind::Model => (hidden.model_registry, hidden.models) = (whole, names),
                Kind::Component => (hidden.component_hub, hidden.components) = (whole, names),
            }
        }
        Ok(hidden)
    }

    /// `models`, `components` (without a project) and `model_versions`,
    /// `component_versions` of the organization, or of one project — of
    /// what `viewer` reaches (everything when `None`).
    pub async fn counts(
        &self,
        organization_uuid: &str,
        project: &str,
        viewer: Option<&Viewer>,
    ) -> Result<BTreeMap<String, i64>, Error> {
        let hidden = match viewer {
            Some(viewer) => self.hidden_entries(organization_uuid, viewer).await?,
            None => HiddenEntries::default(),
        };
        let mut counts = BTreeMap::new();
        for kind in [Kind::Model, Kind::Component] {
            let (whole, names) = match kind {
                Kind::Model => (hidden.model_registry, &hidden.models),
                Kind::Component => (hidden.component_hub, &hidden.components),
            };
            let uuids: Vec<String> = if whole {
                Vec::new()
            } else {
                entries::Entity::find()
                    .select_only()
                    .column(entries::Column::Uuid)
                    .filter(entries::Column::OrganizationUuid.eq(organization_uuid))
                    .filter(entries::Column::Kind.eq(kind.as_str()))
                    .filter(entries::Column::Name.is_not_in(names.clone()))
                    .into_tuple()
                    .all(&self.db)
                    .await?
            };
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

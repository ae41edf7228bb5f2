//! What restrictions hide from one reader of an organization's feeds and
//! statistics: the projects restricted away from them (kept here) and what
//! the registry's restrictions hide (asked of the registry, which keeps
//! them). Owners and managers see everything; nothing is asked for them.

use orgplane_platform::{
    Error,
    restriction::{HiddenEntries, Restriction, Viewer},
};
use sea_orm::{ColumnTrait, Condition};

use super::{Organizations, access::Access};
use crate::storage::activities;

/// What one reader does not see.
#[derive(Debug, Clone, Default)]
pub struct Hidden {
    /// Restricted projects that do not admit the reader.
    pub projects: Vec<String>,
    /// What the registry's restrictions hide.
    pub entries: HiddenEntries,
    /// The reader, when restrictions bind them (for the registry's counts).
    pub viewer: Option<Viewer>,
}

impl Hidden {
    /// The condition an activity meets when the reader may see it: not of a
    /// hidden project, not of a hidden model or component (or their
    /// versions), not of a hidden registry or hub.
    pub fn activities(&self) -> Condition {
        let mut visible = Condition::all();
        if !self.projects.is_empty() {
            visible = visible.add(activities::Column::Project.is_not_in(self.projects.clone()));
        }
        for (kind, whole, names) in [
            ("model", self.entries.model_registry, &self.entries.models),
            (
                "component",
                self.entries.component_hub,
                &self.entries.components,
            ),
        ] {
            let own = [kind.to_owned(), format!("{kind}_version")];
            if whole {
                visible = visible.add(activities::Column::SubjectKind.is_not_in(own));
            } else if !names.is_empty() {
                let parents: Vec<String> = names.iter().map(|n| format!("{kind}/{n}")).collect();
                visible = visible.add(
                    Condition::any()
                        .add(activities::Column::SubjectKind.ne(kind))
                        .add(activities::Column::SubjectName.is_not_in(names.clone())),
                );
                visible = visible.add(
                    Condition::any()
                        .add(activities::Column::SubjectKind.ne(format!("{kind}_version")))
                        .add(activities::Column::Parent.is_not_in(parents)),
                );
            }
        }
        visible
    }

    /// [`Self::activities`] for one activity already read: whether the
    /// reader may see it.
    pub fn shows(&self, activity: &activities::Model) -> bool {
        if self.projects.contains(&activity.project) {
            return false;
        }
        [
            ("model", self.entries.model_registry, &self.entries.models),
            (
                "component",
                self.entries.component_hub,
                &self.entries.components,
            ),
        ]
        .into_iter()
        .all(|(kind, whole, names)| {
            let version = activity
                .subject_kind
                .strip_prefix(kind)
                .is_some_and(|rest| rest == "_version");
            if activity.subject_kind == kind {
                !whole && !names.contains(&activity.subject_name)
            } else if version {
                !whole
                    && !activity
                        .parent
                        .strip_prefix(kind)
                        .and_then(|rest| rest.strip_prefix('/'))
                        .is_some_and(|name| names.iter().any(|n| n == name))
            } else {
                true
            }
        })
    }
}

impl Organizations {
    /// What restrictions hide from `access` (nothing for owners and
    /// managers). The registry is asked only when it is configured (it is
    /// wherever statistics are).
    pub async fn hidden(&self, access: &Access) -> Result<Hidden, Error> {
        let Some(viewer) = self.viewer(access).await? else {
            return Ok(Hidden::default());
        };
        let projects =
            super::access::not_admitting(self.restricted_projects(access).await?, &viewer)?;
        let entries = match &self.stats {
            Some(peers) => {
                peers
                    .hidden_entries(&access.organization.uuid, &viewer)
                    .await?
            }
            None => HiddenEntries::default(),
        };
        Ok(Hidden {
            projects,
            entries,
            viewer: Some(viewer),
        })
    }
}

impl Organizations {
    /// `access` as restrictions judge it, when they bind it (below
    /// `manager`).
    pub async fn viewer(&self, access: &Access) -> Result<Option<Viewer>, Error> {
        if !Restriction::binds(access.role) {
            return Ok(None);
        }
        Ok(Some(Viewer {
            username: access.member.as_ref().map(|m| m.username.clone()),
            teams: self.team_names_of(access).await?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{EntityTrait, QueryFilter, QueryTrait};

    use super::*;

    fn sql(hidden: &Hidden) -> String {
        activities::Entity::find()
            .filter(hidden.activities())
            .build(sea_orm::DatabaseBackend::Sqlite)
            .to_string()
    }

    #[test]
    fn nothing_hidden_filters_nothing() {
        assert!(!sql(&Hidden::default()).contains("NOT IN"));
    }

    #[test]
    fn hidden_models_hide_their_versions_and_a_hidden_hub_all_of_it() {
        let hidden = Hidden {
            projects: vec!["core".into()],
            entries: HiddenEntries {
                model_registry: false,
                component_hub: true,
                models: vec!["bert".into()],
                components: vec![],
            },
            viewer: None,
        };
        let sql = sql(&hidden);
        assert!(sql.contains(r#""project" NOT IN ('core')"#), "{sql}");
        assert!(sql.contains(r#""subject_name" NOT IN ('bert')"#), "{sql}");
        assert!(sql.contains(r#""parent" NOT IN ('model/bert')"#), "{sql}");
        assert!(
            sql.contains(r#""subject_kind" NOT IN ('component', 'component_version')"#),
            "{sql}"
        );
    }
}

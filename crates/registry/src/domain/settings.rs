//! The registry's rules per organization: how many versions of one model
//! or component may be in production at once, and who reaches the model
//! registry and the component hub when they are restricted.

use orgplane_platform::{
    Error, authz::Permission, principal::Principal, restriction::Restriction, time::now_micros,
    validate::Violations,
};
use orgplane_storage::{
    activity::{Activity, action, commit_with},
    etag::{check_etag, etag, stale},
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set, TransactionTrait,
};

use super::{Kind, Registry};
use crate::storage::settings;

/// Production versions allowed per model or component unless changed.
pub const DEFAULT_MAX_PRODUCTION: i32 = 1;
/// Highest limit accepted (0 means none).
const MAX_LIMIT: i32 = 1000;

/// An organization's registry rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrySettings {
    /// Production versions per model; 0 = no limit.
    pub max_production_model_versions: i32,
    /// Production versions per component; 0 = no limit.
    pub max_production_component_versions: i32,
    /// Who reaches the model registry, when restricted.
    pub model_registry_restriction: Restriction,
    /// Who reaches the component hub, when restricted.
    pub component_hub_restriction: Restriction,
    /// Opaque version.
    pub etag: String,
    version: i64,
}

impl RegistrySettings {
    /// The production limit for entries of `kind`.
    pub fn limit(&self, kind: Kind) -> i32 {
        match kind {
            Kind::Model => self.max_production_model_versions,
            Kind::Component => self.max_production_component_versions,
        }
    }

    /// The restriction over every entry of `kind`.
    pub fn restriction(&self, kind: Kind) -> &Restriction {
        match kind {
            Kind::Model => &self.model_registry_restriction,
            Kind::Component => &self.component_hub_restriction,
        }
    }
}

/// Changes to the rules; `None` leaves one alone.
#[derive(Debug, Clone, Default)]
pub struct SettingsChanges {
    /// New limit per model.
    pub max_production_model_versions: Option<i32>,
    /// New limit per component.
    pub max_production_component_versions: Option<i32>,
    /// New restriction of the model registry.
    pub model_registry_restriction: Option<Restriction>,
    /// New restriction of the component hub.
    pub component_hub_restriction: Option<Restriction>,
}

impl SettingsChanges {
    /// The new restriction of the registry of `kind`, if it changes.
    fn restriction(&self, kind: Kind) -> Option<&Restriction> {
        match kind {
            Kind::Model => self.model_registry_restriction.as_ref(),
            Kind::Component => self.component_hub_restriction.as_ref(),
        }
    }

    /// Whether a limit changes.
    fn limits(&self) -> bool {
        self.max_production_model_versions.is_some()
            || self.max_production_component_versions.is_some()
    }
}

/// The restriction field of the registry of `kind`, in requests.
fn restriction_field(kind: Kind) -> &'static str {
    match kind {
        Kind::Model => "settings.model_registry_restriction",
        Kind::Component => "settings.component_hub_restriction",
    }
}

fn from_row(row: Option<settings::Model>) -> Result<RegistrySettings, Error> {
    Ok(match row {
        Some(r) => RegistrySettings {
            max_production_model_versions: r.max_production_model_versions,
            max_production_component_versions: r.max_production_component_versions,
            model_registry_restriction: Restriction::load(r.model_registry_restriction.as_deref())?,
            component_hub_restriction: Restriction::load(r.component_hub_restriction.as_deref())?,
            etag: etag(r.version),
            version: r.version,
        },
        None => RegistrySettings {
            max_production_model_versions: DEFAULT_MAX_PRODUCTION,
            max_production_component_versions: DEFAULT_MAX_PRODUCTION,
            model_registry_restriction: Restriction::default(),
            component_hub_restriction: Restriction::default(),
            etag: etag(0),
            version: 0,
        },
    })
}

impl Registry {
    /// The rules of an organization (defaults when never changed).
    pub(crate) async fn settings_of(
        &self,
        db: &impl ConnectionTrait,
        organization_uuid: &str,
    ) -> Result<RegistrySettings, Error> {
        from_row(
            settings::Entity::find_by_id(organization_uuid.to_owned())
                .one(db)
                .await?,
        )
    }

    /// The rules, for those who read the registry.
    pub async fn get_settings(
        &self,
        principal: &Principal,
        organization: &str,
    ) -> Result<RegistrySettings, Error> {
        let standing = self
            .require(principal, organization, Permission::RegistryRead)
            .await?;
        self.settings_of(&self.db, &standing.organization_uuid)
            .await
    }

    /// Changes the rules; a stale `etag_seen` is `ABORTED`. Versions already
    /// in production stay; the new limit applies to the next transitions.
    /// Limits need `registry.manage`; a restriction `restrictions.manage`
    /// and, below `manager`, admission by the restriction it replaces.
    pub async fn update_settings(
        &self,
        principal: &Principal,
        organization: &str,
        changes: SettingsChanges,
        etag_seen: &str,
    ) -> Result<RegistrySettings, Error> {
        let permission = if changes.limits() {
            Permission::RegistryManage
        } else {
            Permission::RestrictionsManage
        };
        let standing = self.require(principal, organization, permission).await?;
        let mut v = Violations::new();
        for kind in [Kind::Model, Kind::Component] {
            if let Some(r) = changes.restriction(kind) {
                r.check(&mut v, restriction_field(kind));
            }
        }
        for (field, value) in [
            (
                "settings.max_production_model_versions",
                changes.max_production_model_versions,
            ),
            (
                "settings.max_production_component_versions",
                changes.max_production_component_versions,
            ),
        ] {
            if value.is_some_and(|n| !(0..=MAX_LIMIT).contains(&n)) {
                v.add(field, format!("must be 0 (no limit) to {MAX_LIMIT}"));
            }
        }
        v.finish()?;
        let current = self
            .settings_of(&self.db, &standing.organization_uuid)
            .await?;
        for kind in [Kind::Model, Kind::Component] {
            let Some(next) = changes.restriction(kind) else {
                continue;
            };
            orgplane_platform::authz::check(
                principal,
                standing.role,
                Permission::RestrictionsManage,
            )?;
            self.admit_to_hub(principal, organization, &standing, (kind, &current))
                .await?;
            self.organizations
                .check_restriction(&standing.organization_uuid, next, restriction_field(kind))
                .await?;
        }
        check_etag(etag_seen, current.version, "registry settings")?;
        let restriction = |kind: Kind| {
            changes
                .restriction(kind)
                .unwrap_or(current.restriction(kind))
                .store()
        };
        let row = settings::ActiveModel {
            organization_uuid: Set(standing.organization_uuid.clone()),
            max_production_model_versions: Set(changes
                .max_production_model_versions
                .unwrap_or(current.max_production_model_versions)),
            max_production_component_versions: Set(changes
                .max_production_component_versions
                .unwrap_or(current.max_production_component_versions)),
            version: Set(current.version + 1),
            update_time: Set(now_micros()),
            model_registry_restriction: Set(restriction(Kind::Model)),
            component_hub_restriction: Set(restriction(Kind::Component)),
        };
        let txn = self.db.begin().await?;
        if current.version == 0 {
            row.insert(&txn)
                .await
                .map_err(|_| stale("registry settings"))?;
        } else {
            let changed = settings::Entity::update_many()
                .set(row)
                .filter(settings::Column::OrganizationUuid.eq(standing.organization_uuid.as_str()))
                .filter(settings::Column::Version.eq(current.version))
                .exec(&txn)
                .await?;
            if changed.rows_affected != 1 {
                return Err(stale("registry settings"));
            }
        }
        let activity = Activity::new(
            &standing.organization_uuid,
            principal,
            action::UPDATED,
            "registry_settings",
            "registry",
        );
        commit_with(txn, activity).await?;
        self.settings_of(&self.db, &standing.organization_uuid)
            .await
    }
}

//! The registry's rules over its tables.
//!
//! - [`Kind`]: models and components, one catalog with two faces;
//! - [`entries`]: models and components themselves;
//! - [`versions`]: their versions, transfers between entries;
//! - [`stages`]: stage transitions under the registry's rules, and history;
//! - [`settings`]: those rules;
//! - [`spec`]: validation of component specifications.

pub mod entries;
pub mod settings;
pub mod spec;
pub mod stages;
pub mod stats;
pub mod versions;

use orgplane_platform::{
    Error,
    access::{Entity, Standing},
    authz::Permission,
    deletions,
    peers::OrganizationsPeer,
    principal::Principal,
};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

use crate::storage::{entries as entry_rows, settings as settings_rows};

/// What a catalog entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A model of the model registry.
    Model,
    /// A component of the component hub.
    Component,
}

impl Kind {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Model => "model",
            Kind::Component => "component",
        }
    }

    /// The entity team grants name (`model_registry` / `component_hub`),
    /// with its creation time when it exists.
    fn entity(self, name: &str, created: Option<i64>) -> Entity<'_> {
        match self {
            Kind::Model => Entity::ModelRegistry(name, created),
            Kind::Component => Entity::ComponentHub(name, created),
        }
    }

    /// The request field naming an entry of this kind.
    pub fn field(self) -> &'static str {
        self.as_str()
    }
}

/// The registry service's state: its database and the organizations service.
#[derive(Debug, Clone)]
pub struct Registry {
    pub(crate) db: DatabaseConnection,
    pub(crate) organizations: OrganizationsPeer,
}

impl Registry {
    /// Over a migrated database, asking `organizations` who may do what.
    pub fn new(db: DatabaseConnection, organizations: OrganizationsPeer) -> Self {
        Self { db, organizations }
    }

    /// The shipper of this service's activities to the activity store.
    pub fn activity_shipper(&self) -> orgplane_platform::activity::Shipper<OrganizationsPeer> {
        orgplane_platform::activity::Shipper::new(
            self.db.clone(),
            "registry",
            self.organizations.clone(),
        )
    }

    /// The database (for tests and tools).
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The caller's standing if they hold `permission` in `organization`.
    pub(crate) async fn require(
        &self,
        principal: &Principal,
        organization: &str,
        permission: Permission,
    ) -> Result<Standing, Error> {
        self.organizations
            .permissions
            .require(principal, organization, permission, Entity::Organization)
            .await
    }

    /// The caller's standing and the entry `(kind, name)` if they hold
    /// `permission` on it — through their role or grants (visibility widens
    /// nothing: billing members do not read public entries, as in Polyaxon).
    pub(crate) async fn entry_with(
        &self,
        principal: &Principal,
        organization: &str,
        kind: Kind,
        name: &str,
        permission: Permission,
    ) -> Result<(Standing, entry_rows::Model), Error> {
        let mut v = orgplane_platform::validate::Violations::new();
        v.check(kind.field(), orgplane_platform::validate::slug(name));
        v.finish()?;
        let checker = &self.organizations.permissions;
        let organization_member = checker
            .require(
                principal,
                organization,
                Permission::OrganizationRead,
                Entity::Organization,
            )
            .await?;
        let entry = entry_rows::Entity::find()
            .filter(
                entry_rows::Column::OrganizationUuid
                    .eq(organization_member.organization_uuid.as_str()),
            )
            .filter(entry_rows::Column::Kind.eq(kind.as_str()))
            .filter(entry_rows::Column::Name.eq(name))
            .one(&self.db)
            .await?;
        let standing = checker
            .require(
                principal,
                organization,
                permission,
                kind.entity(name, entry.as_ref().map(|e| e.create_time)),
            )
            .await?;
        let entry = entry.ok_or_else(|| Error::not_found(kind.as_str(), name))?;
        Ok((standing, entry))
    }

    /// Purges the rows of organizations deleted since the last run.
    pub async fn purge_deleted_organizations(&self) -> Result<u64, Error> {
        deletions::purge_deleted(&self.db, &self.organizations, |uuids| async move {
            let entries = entry_rows::Entity::delete_many()
                .filter(entry_rows::Column::OrganizationUuid.is_in(uuids.clone()))
                .exec(&self.db)
                .await?;
            settings_rows::Entity::delete_many()
                .filter(settings_rows::Column::OrganizationUuid.is_in(uuids))
                .exec(&self.db)
                .await?;
            Ok(entries.rows_affected)
        })
        .await
    }

    /// Runs [`Self::purge_deleted_organizations`] and the purge of expired
    /// answers to idempotent creations every `interval` until `stop`
    /// completes.
    pub async fn run_purger(
        self,
        interval: std::time::Duration,
        stop: impl std::future::Future<Output = ()>,
    ) {
        deletions::run_every(
            interval,
            stop,
            "purged the registries of deleted organizations and expired idempotency keys",
            || async {
                let keys = orgplane_platform::idempotency::purge(
                    &self.db,
                    orgplane_platform::time::now_micros(),
                )
                .await?;
                Ok(self.purge_deleted_organizations().await? + keys)
            },
        )
        .await
    }
}

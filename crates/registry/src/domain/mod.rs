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
    authz::Permission,
    principal::{Principal, PrincipalKind},
    restriction::{Restriction, Viewer},
};
use orgplane_storage::deletions;
use orgplane_transport::{
    access::{Entity, Standing},
    peers::OrganizationsPeer,
};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter};

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

    /// What holds the entries of this kind, for `NOT_FOUND`.
    pub fn hub(self) -> &'static str {
        match self {
            Kind::Model => "model_registry",
            Kind::Component => "component_hub",
        }
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
    pub fn activity_shipper(&self) -> orgplane_storage::activity::Shipper<OrganizationsPeer> {
        orgplane_storage::activity::Shipper::new(
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

    /// The caller as the registry's restrictions judge them (their teams
    /// asked of the organizations service), or `None` when restrictions do
    /// not bind them (owners, managers).
    pub(crate) async fn viewer(
        &self,
        principal: &Principal,
        organization: &str,
        standing: &Standing,
    ) -> Result<Option<Viewer>, Error> {
        if !Restriction::binds(standing.role) {
            return Ok(None);
        }
        let with_teams = self
            .organizations
            .permissions
            .require_within(
                principal,
                organization,
                Permission::OrganizationRead,
                Entity::Organization,
                &[],
                true,
            )
            .await?;
        Ok(Some(Viewer {
            username: (principal.kind == PrincipalKind::User).then(|| principal.name.clone()),
            teams: with_teams.teams,
        }))
    }

    /// `NOT_FOUND` unless the caller (with `standing`) is admitted to the
    /// registry of `kind` by its restriction in `settings`; the caller as
    /// judged, when restrictions bind them.
    pub(crate) async fn admit_to_hub(
        &self,
        principal: &Principal,
        organization: &str,
        standing: &Standing,
        (kind, settings): (Kind, &settings::RegistrySettings),
    ) -> Result<Option<Viewer>, Error> {
        let viewer = match self.viewer(principal, organization, standing).await? {
            Some(viewer) if !viewer.admitted_by(settings.restriction(kind)) => {
                return Err(Error::not_found(kind.hub(), organization));
            }
            viewer => viewer,
        };
        Ok(viewer)
    }

    /// The names of the entries of `kind` whose own restriction does not
    /// admit `viewer`.
    pub(crate) async fn hidden_names(
        &self,
        db: &impl ConnectionTrait,
        organization_uuid: &str,
        kind: Kind,
        viewer: &Viewer,
    ) -> Result<Vec<String>, Error> {
        let restricted = entry_rows::Entity::find()
            .filter(entry_rows::Column::OrganizationUuid.eq(organization_uuid))
            .filter(entry_rows::Column::Kind.eq(kind.as_str()))
            .filter(entry_rows::Column::Restricted.eq(true))
            .all(db)
            .await?;
        let mut hidden = Vec::new();
        for entry in restricted {
            if !viewer.admitted_by(&Restriction::load(entry.restriction.as_deref())?) {
                hidden.push(entry.name);
            }
        }
        Ok(hidden)
    }

    /// The caller's standing and the entry `(kind, name)` if they hold
    /// `permission` on it — through their role or grants (visibility widens
    /// nothing: billing members do not read public entries, as in Polyaxon)
    /// and, below `manager`, admitted by the registry's restriction and the
    /// entry's own.
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
        // First where the organization is, for anyone who may stand on the
        // entry at all (an outsider through a team's grant included); then
        // the check itself, with the entry's age and restrictions.
        let organization_member = checker
            .require(
                principal,
                organization,
                Permission::OrganizationRead,
                kind.entity(name, None),
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
        let restrictions = self
            .restrictions_over(&organization_member.organization_uuid, kind, entry.as_ref())
            .await?;
        let standing = checker
            .require_within(
                principal,
                organization,
                permission,
                kind.entity(name, entry.as_ref().map(|e| e.create_time)),
                &restrictions,
                false,
            )
            .await?;
        let entry = entry.ok_or_else(|| Error::not_found(kind.as_str(), name))?;
        Ok((standing, entry))
    }

    /// The restrictions in force over an entry of `kind` (`entry`, or one
    /// about to be created): its registry's and its own.
    pub(crate) async fn restrictions_over(
        &self,
        organization_uuid: &str,
        kind: Kind,
        entry: Option<&entry_rows::Model>,
    ) -> Result<Vec<Restriction>, Error> {
        let settings = self.settings_of(&self.db, organization_uuid).await?;
        let own = match entry {
            Some(e) if e.restricted => Restriction::load(e.restriction.as_deref())?,
            _ => Restriction::default(),
        };
        Ok([settings.restriction(kind).clone(), own]
            .into_iter()
            .filter(|r| r.restricted)
            .collect())
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
            &self.db,
            interval,
            stop,
            "purged the registries of deleted organizations and expired idempotency keys",
            || async {
                let keys = orgplane_storage::idempotency::purge(
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

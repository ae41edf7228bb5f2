//! Access decisions for the services that do not own memberships: they ask
//! `OrganizationsInternal.CheckPermission` and cache each answer, so that
//! repeated calls cost no round trip. A change of access in an organization
//! (a role, a membership, a grant, a setting) forgets that organization's
//! answers as soon as `WatchAccessChanges` reports it (see
//! [`crate::peers::OrganizationsPeer::follow_access_changes`]); the few
//! seconds an answer may live are the bound when a report is lost.

use std::{sync::Arc, time::Duration};

use crate::{
    client::Channel,
    staleness::{Asked, ChangeClock},
};
use moka::future::Cache;
use orgplane_proto::organizations::{
    CheckPermissionRequest, EntityKind, organizations_internal_client::OrganizationsInternalClient,
};

use orgplane_platform::{
    Error,
    authz::{self, Permission, Role},
    principal::Principal,
    restriction::Restriction,
    validate,
};

/// The longest any answer is kept, whatever the organizations service says.
pub const MAX_DECISION_TTL: Duration = Duration::from_secs(3);

/// Where a caller stands in an organization, as the organizations service
/// sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    /// UUID of the organization (what other services key their rows by).
    pub organization_uuid: String,
    /// The effective role: organization role and team grants on the entity.
    pub role: Role,
    /// On the organization itself: the projects restricted away from the
    /// caller, to leave out of organization-wide lists.
    pub hidden_projects: Vec<String>,
    /// The caller's teams, when asked for (see
    /// [`PermissionChecker::require_within`]).
    pub teams: Vec<String>,
}

/// The entity an action is on, for team grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Entity<'a> {
    /// The organization itself.
    Organization,
    /// A project, by slug.
    Project(&'a str),
    /// A model of the registry, by slug, and when it was created if it
    /// exists: grants made before it (on a deleted model of the same name)
    /// do not reach it.
    ModelRegistry(&'a str, Option<i64>),
    /// A component of the hub, as for models.
    ComponentHub(&'a str, Option<i64>),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    principal: String,
    token: String,
    role: Option<Role>,
    organization: String,
    permission: Permission,
    entity: (i32, String, Option<i64>),
    restrictions: Vec<Restriction>,
    with_teams: bool,
}

/// A decision as cached.
#[derive(Debug, Clone)]
enum Answer {
    Allowed(Standing),
    /// Visible, but denied for this reason (with the role, when it is the
    /// role or the token that falls short).
    Denied(String, Option<Role>),
    NotVisible,
}

/// Answers "may this principal do this here?" through the organizations
/// service, with a short cache. Cheap to clone.
#[derive(Clone)]
pub struct PermissionChecker {
    client: OrganizationsInternalClient<Channel>,
    /// Answers with the UUID of their organization (empty when it is not
    /// visible to the caller) and when they were asked.
    cache: Cache<Key, (String, Answer, Asked)>,
    /// Which organizations changed since an answer was asked.
    changes: Arc<ChangeClock>,
}

impl std::fmt::Debug for PermissionChecker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PermissionChecker")
            .field("cached", &self.cache.entry_count())
            .finish()
    }
}

impl PermissionChecker {
    /// A checker over a channel to the organizations service.
    pub fn new(organizations: Channel) -> Self {
        Self {
            client: OrganizationsInternalClient::new(organizations),
            cache: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(MAX_DECISION_TTL)
                .build(),
            changes: Arc::new(ChangeClock::new(MAX_DECISION_TTL)),
        }
    }

    /// Forgets the answers about the organizations `uuids` (access changed
    /// there), and every "not visible" (a caller may have joined).
    pub fn forget_organizations(&self, uuids: &[String]) {
        self.changes.changed(uuids.iter().map(String::as_str));
    }

    /// Which organizations changed since an answer was asked: also the
    /// clock of other answers about organizations that their access changes
    /// make stale (run routing).
    pub(crate) fn changes(&self) -> &ChangeClock {
        &self.changes
    }

    /// Forgets every answer.
    pub fn forget_all(&self) {
        self.changes.changed_everything();
        self.cache.invalidate_all();
    }

    /// The caller's standing if they hold `permission` in `organization` (on
    /// `entity`); `NOT_FOUND` when the organization is not theirs to see
    /// (deleted, foreign or missing: existence is not leaked);
    /// `PERMISSION_DENIED` when their role or token falls short.
    pub async fn require(
        &self,
        principal: &Principal,
        organization: &str,
        permission: Permission,
        entity: Entity<'_>,
    ) -> Result<Standing, Error> {
        self.require_within(principal, organization, permission, entity, &[], false)
            .await
    }

    /// As [`Self::require`], for an entity the asking service keeps
    /// `restrictions` over (below `manager`, a caller one of them does not
    /// admit gets `NOT_FOUND`), and with the caller's teams in the standing
    /// when `with_teams` (to judge restrictions over a list).
    pub async fn require_within(
        &self,
        principal: &Principal,
        organization: &str,
        permission: Permission,
        entity: Entity<'_>,
        restrictions: &[Restriction],
        with_teams: bool,
    ) -> Result<Standing, Error> {
        let mut v = validate::Violations::new();
        v.check("organization", validate::slug(organization));
        v.finish()?;
        match self
            .standing(
                principal,
                organization,
                permission,
                entity,
                restrictions,
                with_teams,
            )
            .await?
        {
            Answer::Allowed(standing) => Ok(standing),
            // The same words as the organizations service would use.
            Answer::Denied(reason, role) => Err(role
                .and_then(|role| authz::check(principal, role, permission).err())
                .unwrap_or_else(|| authz::denial(&reason))),
            Answer::NotVisible => Err(match entity {
                Entity::Organization => Error::not_found("organization", organization),
                Entity::Project(name) => Error::not_found("project", name),
                Entity::ModelRegistry(name, _) => Error::not_found("model", name),
                Entity::ComponentHub(name, _) => Error::not_found("component", name),
            }),
        }
    }

    async fn standing(
        &self,
        principal: &Principal,
        organization: &str,
        permission: Permission,
        entity: Entity<'_>,
        restrictions: &[Restriction],
        with_teams: bool,
    ) -> Result<Answer, Error> {
        let (kind, name, created) = match entity {
            Entity::Organization => (EntityKind::Unspecified, "", None),
            Entity::Project(name) => (EntityKind::Project, name, None),
            Entity::ModelRegistry(name, created) => (EntityKind::ModelRegistry, name, created),
            Entity::ComponentHub(name, created) => (EntityKind::ComponentHub, name, created),
        };
        let key = Key {
            principal: principal.uuid.clone(),
            token: principal.token_uuid.clone(),
            role: principal.role,
            organization: organization.to_owned(),
            permission,
            entity: (kind as i32, name.to_owned(), created),
            restrictions: restrictions.to_vec(),
            with_teams,
        };
        if let Some((uuid, hit, asked)) = self.cache.get(&key).await {
            let holds = if uuid.is_empty() {
                self.changes.holds_for_any(asked)
            } else {
                self.changes.holds(&uuid, asked)
            };
            if holds {
                return Ok(hit);
            }
        }
        let asked = self.changes.asked();
        let answer = self
            .client
            .clone()
            .check_permission(CheckPermissionRequest {
                principal: Some(principal.to_proto()),
                organization: organization.to_owned(),
                permission: permission.as_str().to_owned(),
                entity_kind: kind as i32,
                entity: name.to_owned(),
                entity_create_time: created.map(orgplane_platform::time::to_timestamp),
                restrictions: restrictions.iter().map(Restriction::to_proto).collect(),
                include_teams: with_teams,
            })
            .await
            .map_err(|status| Error::from_upstream("the organizations service", status))?
            .into_inner();
        let decided = if !answer.visible {
            Answer::NotVisible
        } else if !answer.allowed {
            Answer::Denied(answer.denial_reason.clone(), Role::parse(&answer.role))
        } else {
            let role = Role::parse(&answer.role).ok_or_else(|| {
                anyhow::anyhow!("CheckPermission answered an unknown role {:?}", answer.role)
            })?;
            Answer::Allowed(Standing {
                organization_uuid: answer.organization_uuid.clone(),
                role,
                hidden_projects: answer.hidden_projects.clone(),
                teams: answer.teams.clone(),
            })
        };
        if answer.ttl_seconds > 0 {
            let uuid = if answer.visible {
                answer.organization_uuid
            } else {
                String::new()
            };
            self.cache.insert(key, (uuid, decided.clone(), asked)).await;
        }
        Ok(decided)
    }
}

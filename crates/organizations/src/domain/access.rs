//! Access: the caller's standing in an organization, checked against the
//! permission table (`orgplane_platform::authz`).
//!
//! - A user stands in an organization through their membership; a service
//!   account through the organization it belongs to and its role (both
//!   carried in its principal by identity).
//! - An organization the caller does not belong to is `NOT_FOUND` (its
//!   existence is not leaked); so is every organization-level resource to an
//!   `outsider`, who reaches only the projects and teams granted to them.
//! - A member who lacks the permission gets `PERMISSION_DENIED`; so does a
//!   session opened with a password in an organization that disabled
//!   password sign-in (its members sign in with its identity provider;
//!   personal access tokens and service accounts are unaffected).
//! - On an entity (a project, a model, a component) the caller acts with the
//!   strongest of their organization role, their teams' grants and their own
//!   grants on it; a public project is readable by everyone in the
//!   organization, outsiders and billing members included.

pub use orgplane_platform::authz::check;
use orgplane_platform::{
    Error,
    authz::{PASSWORD_SIGN_IN_DISABLED, Permission, Role, denial},
    principal::{AUTH_PASSWORD, Principal, PrincipalKind},
    validate,
};
use std::time::Duration;

use orgplane_storage::read_cache::ReadCache;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use orgplane_platform::restriction::{Restriction, Viewer};

use super::Organizations;
use super::projects::settings_of;
use crate::storage::{members, organizations, projects};

/// How long a membership checked here is trusted when nothing changed in
/// this process: the bound on seeing another replica's change.
pub const MEMBERSHIP_TTL: Duration = Duration::from_secs(1);

/// Users' memberships checked lately, by organization name and user UUID,
/// so that a read needs no query (see [`ReadCache`]); every change this
/// service commits forgets them.
pub type Memberships = ReadCache<(String, String), std::sync::Arc<Membership>>;

/// A user's standing as read from the tables.
#[derive(Debug)]
pub struct Membership {
    organization: organizations::Model,
    member: members::Model,
    password_enabled: bool,
    /// The projects restricted away from this member, read the first time a
    /// call asks ([`Organizations::hidden_projects`]). Kept with the
    /// membership because the same changes make both stale: restricting a
    /// project or changing a team commits through
    /// [`Organizations::commit_with`], which forgets every membership, and a
    /// new project is never restricted. A value read after such a change
    /// lands in a membership already forgotten.
    hidden_projects: tokio::sync::OnceCell<Vec<String>>,
}

/// An empty [`Memberships`].
pub(crate) fn memberships() -> Memberships {
    ReadCache::new(10_000, MEMBERSHIP_TTL)
}

/// A caller's standing in one organization.
#[derive(Debug, Clone)]
pub struct Access {
    /// The organization.
    pub organization: organizations::Model,
    /// The caller's membership; `None` for a service account.
    pub member: Option<members::Model>,
    /// UUID of the caller (user or service account).
    pub caller_uuid: String,
    /// The caller's role.
    pub role: Role,
    /// The cached membership this was read from (users only).
    known: Option<std::sync::Arc<Membership>>,
}

/// The answer of `CheckPermission`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The organization exists and the caller may see it.
    pub visible: bool,
    /// The action is allowed.
    pub allowed: bool,
    /// The caller's role, when visible.
    pub role: Option<Role>,
    /// The organization's UUID, when visible.
    pub organization_uuid: Option<String>,
    /// Why not, when visible but not allowed.
    pub denial_reason: Option<&'static str>,
    /// Allowed on the organization: the projects restricted away from the
    /// caller (see [`Organizations::hidden_projects`]).
    pub hidden_projects: Vec<String>,
    /// The caller's teams, when asked for and visible.
    pub teams: Vec<String>,
}

impl Organizations {
    /// The caller's standing in `organization`, outsiders included, or
    /// `NOT_FOUND`.
    pub async fn membership(
        &self,
        principal: &Principal,
        organization: &str,
    ) -> Result<Access, Error> {
        let mut v = validate::Violations::new();
        v.check("organization", validate::slug(organization));
        v.finish()?;
        let not_found = || Error::not_found("organization", organization);
        let live = organizations::Entity::find()
            .filter(organizations::Column::Name.eq(organization))
            .filter(organizations::Column::DeleteTime.is_null());
        match principal.kind {
            PrincipalKind::User => {
                let key = (organization.to_owned(), principal.uuid.clone());
                let known = match self.memberships.get(&key).await {
                    Some(known) => known,
                    None => {
                        let ticket = self.memberships.ticket();
                        let Some((org, Some(member))) = live
                            .find_also_related(members::Entity)
                            .filter(members::Column::UserUuid.eq(principal.uuid.as_str()))
                            .one(&self.db)
                            .await?
                        else {
                            return Err(not_found());
                        };
                        let password_enabled =
                            self.settings_of_org(&org.uuid).await?.auth.password_enabled;
                        let known = std::sync::Arc::new(Membership {
                            organization: org,
                            member,
                            password_enabled,
                            hidden_projects: tokio::sync::OnceCell::new(),
                        });
                        self.memberships.insert(key, known.clone(), ticket).await;
                        known
                    }
                };
                let role = stored_role(&known.member)?;
                if principal.auth_method == AUTH_PASSWORD && !known.password_enabled {
                    return Err(denial(PASSWORD_SIGN_IN_DISABLED));
                }
                Ok(Access {
                    organization: known.organization.clone(),
                    caller_uuid: known.member.user_uuid.clone(),
                    member: Some(known.member.clone()),
                    role,
                    known: Some(known),
                })
            }
            PrincipalKind::ServiceAccount => {
                // The slug names the organization; the UUID makes sure it is
                // still the one the account was created in.
                let (Some(uuid), Some(role)) = (&principal.organization_uuid, principal.role)
                else {
                    return Err(not_found());
                };
                if principal.organization.as_deref() != Some(organization) || role == Role::Owner {
                    return Err(not_found());
                }
                let org = live
                    .filter(organizations::Column::Uuid.eq(uuid.as_str()))
                    .one(&self.db)
                    .await?
                    .ok_or_else(not_found)?;
                Ok(Access {
                    organization: org,
                    member: None,
                    caller_uuid: principal.uuid.clone(),
                    role,
                    known: None,
                })
            }
            PrincipalKind::Agent => Err(not_found()),
        }
    }

    /// The caller's standing at the organization level: outsiders are not
    /// members, so the organization is `NOT_FOUND` to them here.
    pub async fn access(&self, principal: &Principal, organization: &str) -> Result<Access, Error> {
        let access = self.membership(principal, organization).await?;
        if access.role == Role::Outsider {
            return Err(Error::not_found("organization", organization));
        }
        Ok(access)
    }

    /// The caller's access, if they hold `permission` (and their token the
    /// matching scope).
    pub async fn require(
        &self,
        principal: &Principal,
        organization: &str,
        permission: Permission,
    ) -> Result<Access, Error> {
        let access = self.access(principal, organization).await?;
        check(principal, access.role, permission)?;
        Ok(access)
    }

    /// The caller's access to the entity `(kind, name)`, acting with their
    /// effective role there, if it holds `permission`. An entity out of an
    /// outsider's reach is `NOT_FOUND`.
    pub async fn require_on(
        &self,
        principal: &Principal,
        organization: &str,
        permission: Permission,
        kind: &str,
        name: &str,
    ) -> Result<Access, Error> {
        let mut access = self.membership(principal, organization).await?;
        access.role = self
            .effective_role(&access, EntityRef::named(kind, name))
            .await?;
        if access.role == Role::Outsider {
            return Err(Error::not_found(entity_label(kind), name));
        }
        check(principal, access.role, permission)?;
        Ok(access)
    }

    /// The caller's effective role on the entity `(kind, name)` — the one
    /// place it is computed. It is the strongest of:
    /// - their organization role;
    /// - each grant made to them alone (how an outsider reaches what they
    ///   were invited to);
    /// - for each team they belong to that is granted the entity, the weaker
    ///   of the team's grant and their own role in the team (a team `viewer`
    ///   acts as a viewer wherever the team is granted `admin`).
    ///
    /// A named grant reaches a registry entry only if made after the entry
    /// was created (`created`, see [`super::teams::Granted::reaches`]).
    /// Visibility widens nothing: billing members and outsiders do not read
    /// public projects (Polyaxon).
    ///
    /// Below `manager`, a restriction over the entity that does not admit
    /// the caller makes them an `outsider` there, whatever their role and
    /// grants: a project's own (kept here), and those the asking service
    /// keeps (the registry's, in `entity.restrictions`).
    pub async fn effective_role(
        &self,
        access: &Access,
        entity: EntityRef<'_>,
    ) -> Result<Role, Error> {
        if Restriction::binds(access.role) {
            for restriction in entity.restrictions {
                if !self.admitted(access, restriction).await? {
                    return Ok(Role::Outsider);
                }
            }
            if entity.kind == "project" {
                let restricted = projects::Entity::find()
                    .filter(
                        projects::Column::OrganizationUuid.eq(access.organization.uuid.as_str()),
                    )
                    .filter(projects::Column::Name.eq(entity.name))
                    .filter(projects::Column::Restricted.eq(true))
                    .one(&self.db)
                    .await?;
                if let Some(project) = restricted {
                    let restriction = settings_of(&project)?.restriction;
                    if !self.admitted(access, &restriction).await? {
                        return Ok(Role::Outsider);
                    }
                }
            }
        }
        let granted = self
            .granted_roles(access, entity.kind)
            .await?
            .into_iter()
            .filter(|g| g.reaches(entity.name, entity.created))
            .map(|g| g.role)
            .max();
        Ok(granted.map_or(access.role, |g| g.max(access.role)))
    }

    /// Answers "may `principal` do `permission` in `organization` (on this
    /// entity, through grants)?" for the other services.
    pub async fn check_permission(
        &self,
        principal: &Principal,
        organization: &str,
        permission: &str,
        entity: Option<EntityRef<'_>>,
        with_teams: bool,
    ) -> Result<Decision, Error> {
        let permission = Permission::parse(permission)
            .ok_or_else(|| Error::invalid("permission", "is not a known permission"))?;
        let standing = match entity {
            Some(entity) => match self.membership(principal, organization).await {
                Ok(access) => {
                    let role = self.effective_role(&access, entity).await?;
                    (role != Role::Outsider).then_some(Ok((access, role)))
                }
                Err(Error::NotFound { .. }) => None,
                Err(denied @ Error::PermissionDenied { .. }) => Some(Err(denied)),
                Err(other) => return Err(other),
            },
            None => match self.access(principal, organization).await {
                Ok(access) => {
                    let role = access.role;
                    Some(Ok((access, role)))
                }
                Err(Error::NotFound { .. }) => None,
                Err(denied @ Error::PermissionDenied { .. }) => Some(Err(denied)),
                Err(other) => return Err(other),
            },
        };
        let reason_of = |err: Error| match err {
            Error::PermissionDenied { reason, .. } => reason,
            _ => "PERMISSION_DENIED",
        };
        Ok(match standing {
            Some(Ok((access, role))) => {
                let verdict = check(principal, role, permission);
                let hidden_projects = if entity.is_none() && verdict.is_ok() {
                    self.hidden_projects(&access).await?
                } else {
                    Vec::new()
                };
                let teams = if with_teams {
                    self.team_names_of(&access).await?
                } else {
                    Vec::new()
                };
                Decision {
                    visible: true,
                    allowed: verdict.is_ok(),
                    role: Some(role),
                    organization_uuid: Some(access.organization.uuid),
                    denial_reason: verdict.err().map(reason_of),
                    hidden_projects,
                    teams,
                }
            }
            Some(Err(denied)) => Decision {
                visible: true,
                allowed: false,
                role: None,
                organization_uuid: None,
                denial_reason: Some(reason_of(denied)),
                hidden_projects: Vec::new(),
                teams: Vec::new(),
            },
            None => Decision {
                visible: false,
                allowed: false,
                role: None,
                organization_uuid: None,
                denial_reason: None,
                hidden_projects: Vec::new(),
                teams: Vec::new(),
            },
        })
    }
}

impl Organizations {
    /// Whether `access` is admitted by `restriction` (see
    /// [`Restriction::admits`]); the caller's teams are read only when the
    /// answer depends on them.
    pub(crate) async fn admitted(
        &self,
        access: &Access,
        restriction: &Restriction,
    ) -> Result<bool, Error> {
        let username = access.member.as_ref().map(|m| m.username.as_str());
        if !Restriction::binds(access.role) || restriction.admits_user(username) {
            return Ok(true);
        }
        if restriction.teams.is_empty() {
            return Ok(false);
        }
        let mine = self.team_names_of(access).await?;
        Ok(restriction.admits(username, &mine))
    }

    /// The projects of the organization `access` may not see because of a
    /// restriction (empty for owners and managers): what org-wide lists,
    /// feeds and statistics leave out. The caller's teams are read only when
    /// a project is restricted; for a user, both reads happen once per
    /// cached membership (see [`Membership`]), so that a page of a list costs
    /// its one range read.
    pub async fn hidden_projects(&self, access: &Access) -> Result<Vec<String>, Error> {
        if !Restriction::binds(access.role) {
            return Ok(Vec::new());
        }
        match &access.known {
            Some(known) => known
                .hidden_projects
                .get_or_try_init(|| self.read_hidden_projects(access))
                .await
                .cloned(),
            None => self.read_hidden_projects(access).await,
        }
    }

    async fn read_hidden_projects(&self, access: &Access) -> Result<Vec<String>, Error> {
        let restricted = self.restricted_projects(access).await?;
        if restricted.is_empty() {
            return Ok(Vec::new());
        }
        match self.viewer(access).await? {
            Some(viewer) => not_admitting(restricted, &viewer),
            None => Ok(Vec::new()),
        }
    }

    /// The organization's restricted projects (an indexed read).
    pub(crate) async fn restricted_projects(
        &self,
        access: &Access,
    ) -> Result<Vec<projects::Model>, Error> {
        Ok(projects::Entity::find()
            .filter(projects::Column::OrganizationUuid.eq(access.organization.uuid.as_str()))
            .filter(projects::Column::Restricted.eq(true))
            .all(&self.db)
            .await?)
    }
}

/// The names of the `restricted` projects whose restriction does not admit
/// `viewer`.
pub(crate) fn not_admitting(
    restricted: Vec<projects::Model>,
    viewer: &Viewer,
) -> Result<Vec<String>, Error> {
    let mut hidden = Vec::new();
    for project in restricted {
        if !viewer.admitted_by(&settings_of(&project)?.restriction) {
            hidden.push(project.name);
        }
    }
    Ok(hidden)
}

/// An entity grants may name.
#[derive(Debug, Clone, Copy)]
pub struct EntityRef<'a> {
    /// `project`, `model_registry` or `component_hub`.
    pub kind: &'a str,
    /// Its slug.
    pub name: &'a str,
    /// When it was created, when the asking service knows it.
    pub created: Option<i64>,
    /// The restrictions the asking service keeps over it.
    pub restrictions: &'a [Restriction],
}

impl<'a> EntityRef<'a> {
    /// The entity `(kind, name)`, nothing more known of it.
    pub fn named(kind: &'a str, name: &'a str) -> Self {
        Self {
            kind,
            name,
            created: None,
            restrictions: &[],
        }
    }
}

/// A member's stored role.
pub(crate) fn stored_role(member: &members::Model) -> Result<Role, Error> {
    Role::parse(&member.role)
        .ok_or_else(|| anyhow::anyhow!("stored role {:?} is unknown", member.role).into())
}

/// The resource name of a grantable entity kind, for `NOT_FOUND`.
fn entity_label(kind: &str) -> &'static str {
    match kind {
        "project" => "project",
        "model_registry" => "model",
        "component_hub" => "component",
        _ => "entity",
    }
}

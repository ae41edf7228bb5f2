//! Projects: CRUD, archive and restore, settings (default queue, allowed
//! agents and queues, connections). An archived project is read-only
//! (`FAILED_PRECONDITION`, reason `PROJECT_ARCHIVED`) and hidden from lists
//! unless asked for with `archived:true`.

use orgplane_platform::{
    Error,
    authz::{Permission, Role, allows},
    principal::Principal,
    time::now_micros,
    validate::{self, Violations},
};
use orgplane_storage::{
    activity::{Activity, action},
    page::{KeyPart, ListQuery, Page, keyed_page, like_prefix},
};
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, QueryFilter, TransactionTrait,
    sea_query::{Expr, ExprTrait, LikeExpr},
};
use serde::{Deserialize, Serialize};

use super::{
    Organizations,
    access::{Access, check},
    organizations::{VISIBILITIES, check_etag, etag, stale},
    project_writes::NewProject,
};
use crate::storage::projects;

/// Most entries of each list of a project's settings (allowed agents,
/// allowed queues, connections).
pub const MAX_SETTINGS_LIST: usize = 100;

/// A project's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectSettings {
    /// Default queue of runs, `agent/queue`.
    pub default_queue: String,
    /// Agents runs may use; empty allows all.
    pub allowed_agents: Vec<String>,
    /// Queues (`agent/queue`) runs may use; empty allows all.
    pub allowed_queues: Vec<String>,
    /// Connections runs may name; empty allows all.
    pub connections: Vec<String>,
    /// Who reaches the project besides owners and managers, when
    /// restricted.
    #[serde(default)]
    pub restriction: Restriction,
}

pub use orgplane_platform::restriction::Restriction;

/// A project's fields as created or changed; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct ProjectFields {
    /// Description.
    pub description: Option<String>,
    /// Tags (slugs).
    pub tags: Option<Vec<String>>,
    /// Markdown readme.
    pub readme: Option<String>,
    /// `private` or `public`.
    pub visibility: Option<String>,
}

/// Tags as stored: ` a b `.
fn stored_tags(tags: &[String]) -> String {
    if tags.is_empty() {
        String::new()
    } else {
        format!(" {} ", tags.join(" "))
    }
}

/// Tags as listed.
pub fn tags_of(project: &projects::Model) -> Vec<String> {
    project.tags.split_whitespace().map(str::to_owned).collect()
}

/// Settings as stored.
pub fn settings_of(project: &projects::Model) -> Result<ProjectSettings, Error> {
    if project.settings.is_empty() {
        return Ok(ProjectSettings::default());
    }
    Ok(serde_json::from_str(&project.settings).map_err(anyhow::Error::from)?)
}

fn check_fields(v: &mut Violations, f: &ProjectFields) {
    if let Some(d) = &f.description {
        v.check("project.description", validate::text(d, 2000));
    }
    if let Some(tags) = &f.tags {
        if tags.len() > 20 {
            v.add("project.tags", "at most 20 tags");
        }
        for tag in tags {
            v.check("project.tags", validate::slug(tag));
        }
    }
    if let Some(readme) = &f.readme {
        v.check("project.readme", validate::text(readme, 100_000));
    }
    if let Some(vis) = &f.visibility
        && !VISIBILITIES.contains(&vis.as_str())
    {
        v.add("project.visibility", "must be private or public");
    }
}

fn queue_ref(value: &str) -> Result<(), String> {
    match value.split_once('/') {
        Some((a, q)) if validate::slug(a).is_ok() && validate::slug(q).is_ok() => Ok(()),
        _ => Err(format!("{value:?} is not agent/queue")),
    }
}

fn archived(name: &str) -> Error {
    Error::precondition(
        "PROJECT_ARCHIVED",
        format!("project {name:?} is archived: restore it first"),
    )
}

impl Organizations {
    /// The project `name`, if the caller holds `permission` on it (through
    /// their organization role or a team grant); `field` names it in errors.
    async fn project_with(
        &self,
        principal: &Principal,
        organization: &str,
        name: &str,
        permission: Permission,
        field: &str,
    ) -> Result<projects::Model, Error> {
        let (_, project) = self
            .access_to_project(principal, organization, name, permission, field)
            .await?;
        Ok(project)
    }

    /// [`Self::project_with`], with the caller's access.
    pub(crate) async fn access_to_project(
        &self,
        principal: &Principal,
        organization: &str,
        name: &str,
        permission: Permission,
        field: &str,
    ) -> Result<(Access, projects::Model), Error> {
        let access = self
            .require_on(principal, organization, permission, "project", name)
            .await?;
        let project = self.project(&access, name, field).await?;
        Ok((access, project))
    }

    pub(crate) async fn project(
        &self,
        access: &Access,
        name: &str,
        field: &str,
    ) -> Result<projects::Model, Error> {
        let mut v = Violations::new();
        v.check(field, validate::slug(name));
        v.finish()?;
        projects::Entity::find()
            .filter(projects::Column::OrganizationUuid.eq(access.organization.uuid.as_str()))
            .filter(projects::Column::Name.eq(name))
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::not_found("project", name))
    }

    /// Creates a project.
    pub async fn create_project(
        &self,
        principal: &Principal,
        organization: &str,
        name: &str,
        fields: ProjectFields,
    ) -> Result<projects::Model, Error> {
        let access = self
            .require(principal, organization, Permission::ProjectsManage)
            .await?;
        let mut v = Violations::new();
        v.check("project.name", validate::slug(name));
        check_fields(&mut v, &fields);
        v.finish()?;
        let now = now_micros();
        let row = projects::Model {
            uuid: uuid::Uuid::now_v7().to_string(),
            organization_uuid: access.organization.uuid.clone(),
            name: name.to_owned(),
            description: fields.description.unwrap_or_default(),
            tags: stored_tags(&fields.tags.unwrap_or_default()),
            readme: fields.readme.unwrap_or_default(),
            visibility: fields.visibility.unwrap_or_else(|| "private".into()),
            archived: false,
            restricted: false,
            settings: String::new(),
            version: 1,
            settings_version: 1,
            create_time: now,
            update_time: now,
        };
        // No access answer cached anywhere depends on it: a new project is
        // unrestricted, and no one's standing, grants or hidden projects
        // change (a decision about a project's name holds whether it exists
        // or not). So neither the memberships here nor the decisions of the
        // other services are forgotten, as they are after other changes.
        self.project_writes
            .write(NewProject {
                row,
                actor: principal.clone(),
            })
            .await
    }

    /// A project.
    pub async fn get_project(
        &self,
        principal: &Principal,
        organization: &str,
        name: &str,
    ) -> Result<projects::Model, Error> {
        self.project_with(
            principal,
            organization,
            name,
            Permission::ProjectsRead,
            "project",
        )
        .await
    }

    /// Projects, filtered by `name:`, `tag:` and `archived:true`.
    pub async fn list_projects(
        &self,
        principal: &Principal,
        organization: &str,
        query: &ListQuery,
    ) -> Result<Page<projects::Model>, Error> {
        let access = self.membership(principal, organization).await?;
        // Members who read every project see them all; everyone else in the
        // organization (billing, outsiders) sees those granted to them or
        // their teams.
        let reach = if allows(access.role, Permission::ProjectsRead) {
            check(principal, access.role, Permission::ProjectsRead)?;
            None
        } else {
            check(principal, Role::Viewer, Permission::ProjectsRead)?;
            let granted: Vec<String> = self
                .granted_roles(&access, "project")
                .await?
                .into_iter()
                .map(|g| g.name)
                .collect();
            (!granted.iter().any(|n| n == "*"))
                .then(|| Condition::all().add(projects::Column::Name.is_in(granted)))
        };
        let order = query.order(&["name", "create_time", "update_time"])?;
        let terms = query.terms(&["name", "tag", "archived"])?;
        let page = query.page("")?;
        let mut condition = Condition::all()
            .add(projects::Column::OrganizationUuid.eq(access.organization.uuid.as_str()));
        let hidden = self.hidden_projects(&access).await?;
        if !hidden.is_empty() {
            condition = condition.add(projects::Column::Name.is_not_in(hidden));
        }
        let mut show_archived = false;
        for (key, value) in &terms {
            match *key {
                "name" => {
                    condition = condition.add(
                        Expr::col(projects::Column::Name)
                            .like(LikeExpr::new(like_prefix(value)).escape('\\')),
                    )
                }
                "tag" => {
                    validate::slug(value)
                        .map_err(|e| Error::invalid("filter", format!("tag {e}")))?;
                    condition =
                        condition.add(projects::Column::Tags.contains(format!(" {value} ")));
                }
                _ => {
                    show_archived = match *value {
                        "true" => true,
                        "false" => false,
                        _ => return Err(Error::invalid("filter", "archived is true or false")),
                    }
                }
            }
        }
        condition = condition.add(projects::Column::Archived.eq(show_archived));
        if let Some(reach) = reach {
            condition = condition.add(reach);
        }
        let (columns, parts): (Vec<projects::Column>, &[KeyPart]) = match order.field {
            "name" => (vec![projects::Column::Name], &[KeyPart::Text]),
            "create_time" => (
                vec![projects::Column::CreateTime, projects::Column::Uuid],
                &[KeyPart::Int, KeyPart::Text],
            ),
            _ => (
                vec![projects::Column::UpdateTime, projects::Column::Uuid],
                &[KeyPart::Int, KeyPart::Text],
            ),
        };
        keyed_page(
            &self.db,
            &page,
            projects::Entity::find().filter(condition),
            &columns,
            parts,
            order.descending,
            |p| match order.field {
                "name" => vec![p.name.clone()],
                "create_time" => vec![p.create_time.to_string(), p.uuid.clone()],
                _ => vec![p.update_time.to_string(), p.uuid.clone()],
            },
        )
        .await
    }

    /// Changes a project's fields; a stale `etag` is `ABORTED`.
    pub async fn update_project(
        &self,
        principal: &Principal,
        organization: &str,
        name: &str,
        fields: ProjectFields,
        etag_seen: &str,
    ) -> Result<projects::Model, Error> {
        let project = self
            .project_with(
                principal,
                organization,
                name,
                Permission::ProjectsManage,
                "project.name",
            )
            .await?;
        let mut v = Violations::new();
        check_fields(&mut v, &fields);
        v.finish()?;
        if project.archived {
            return Err(archived(name));
        }
        check_etag(etag_seen, project.version, "project")?;
        let mut update = projects::Entity::update_many()
            .col_expr(projects::Column::Version, Expr::value(project.version + 1))
            .col_expr(projects::Column::UpdateTime, Expr::value(now_micros()));
        if let Some(x) = fields.description {
            update = update.col_expr(projects::Column::Description, Expr::value(x));
        }
        if let Some(x) = fields.tags {
            update = update.col_expr(projects::Column::Tags, Expr::value(stored_tags(&x)));
        }
        if let Some(x) = fields.readme {
            update = update.col_expr(projects::Column::Readme, Expr::value(x));
        }
        if let Some(x) = fields.visibility {
            update = update.col_expr(projects::Column::Visibility, Expr::value(x));
        }
        let txn = self.db.begin().await?;
        let row = update
            .filter(projects::Column::Uuid.eq(project.uuid.as_str()))
            .filter(projects::Column::Version.eq(project.version))
            .exec_with_returning(&txn)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| stale("project"))?;
        self.commit_with(txn, project_activity(&row, principal, action::UPDATED))
            .await?;
        Ok(row)
    }

    /// Deletes a project.
    pub async fn delete_project(
        &self,
        principal: &Principal,
        organization: &str,
        name: &str,
    ) -> Result<(), Error> {
        let project = self
            .project_with(
                principal,
                organization,
                name,
                Permission::ProjectsManage,
                "project",
            )
            .await?;
        let txn = self.db.begin().await?;
        projects::Entity::delete_by_id(project.uuid.clone())
            .exec(&txn)
            .await?;
        // Grants name the project; they die with it, so a new project of
        // the same name is not open to the old grantees.
        super::teams::revoke_grants_on(
            &txn,
            &project.organization_uuid,
            ("project", &project.name),
            i64::MAX,
        )
        .await?;
        self.commit_with(txn, project_activity(&project, principal, action::DELETED))
            .await
    }

    /// Archives (`true`) or restores (`false`) a project; idempotent.
    pub async fn set_project_archived(
        &self,
        principal: &Principal,
        organization: &str,
        name: &str,
        archive: bool,
    ) -> Result<projects::Model, Error> {
        let project = self
            .project_with(
                principal,
                organization,
                name,
                Permission::ProjectsManage,
                "project",
            )
            .await?;
        if project.archived == archive {
            return Ok(project);
        }
        let txn = self.db.begin().await?;
        let row = projects::Entity::update_many()
            .col_expr(projects::Column::Archived, Expr::value(archive))
            .col_expr(projects::Column::Version, Expr::value(project.version + 1))
            .col_expr(projects::Column::UpdateTime, Expr::value(now_micros()))
            .filter(projects::Column::Uuid.eq(project.uuid.as_str()))
            .exec_with_returning(&txn)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::not_found("project", name))?;
        let verb = if archive { "archived" } else { "restored" };
        self.commit_with(txn, project_activity(&row, principal, verb))
            .await?;
        Ok(row)
    }

    /// The users and teams `r` lists that the organization lacks: teams it
    /// does not have, usernames of neither members nor outsiders.
    pub async fn unknown_in_restriction(
        &self,
        organization_uuid: &str,
        r: &Restriction,
    ) -> Result<(Vec<String>, Vec<String>), Error> {
        let teams: Vec<String> = crate::storage::teams::team::Entity::find()
            .filter(crate::storage::teams::team::Column::OrganizationUuid.eq(organization_uuid))
            .filter(crate::storage::teams::team::Column::Name.is_in(r.teams.clone()))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|t| t.name)
            .collect();
        let users: Vec<String> = crate::storage::members::Entity::find()
            .filter(crate::storage::members::Column::OrganizationUuid.eq(organization_uuid))
            .filter(crate::storage::members::Column::Username.is_in(r.users.clone()))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|m| m.username)
            .collect();
        Ok((
            r.users
                .iter()
                .filter(|u| !users.contains(u))
                .cloned()
                .collect(),
            r.teams
                .iter()
                .filter(|t| !teams.contains(t))
                .cloned()
                .collect(),
        ))
    }

    /// A project's settings with their etag.
    pub async fn get_project_settings(
        &self,
        principal: &Principal,
        organization: &str,
        name: &str,
    ) -> Result<(ProjectSettings, String), Error> {
        let project = self.get_project(principal, organization, name).await?;
        Ok((settings_of(&project)?, etag(project.settings_version)))
    }

    /// Replaces the settings fields given; a stale `etag` is `ABORTED`.
    pub async fn update_project_settings(
        &self,
        principal: &Principal,
        organization: &str,
        name: &str,
        changes: ProjectSettingsChanges,
        etag_seen: &str,
    ) -> Result<(ProjectSettings, String), Error> {
        let (access, project) = self
            .access_to_project(
                principal,
                organization,
                name,
                Permission::ProjectsManage,
                "project",
            )
            .await?;
        let mut v = Violations::new();
        if let Some(q) = changes.default_queue.as_deref().filter(|q| !q.is_empty()) {
            v.check("settings.default_queue", queue_ref(q));
        }
        let slug = |s: &String| validate::slug(s);
        if let Some(agents) = &changes.allowed_agents {
            v.list("settings.allowed_agents", agents, MAX_SETTINGS_LIST, slug);
        }
        if let Some(queues) = &changes.allowed_queues {
            v.list("settings.allowed_queues", queues, MAX_SETTINGS_LIST, |q| {
                queue_ref(q)
            });
        }
        if let Some(connections) = &changes.connections {
            v.list("settings.connections", connections, MAX_SETTINGS_LIST, slug);
        }
        if let Some(r) = &changes.restriction {
            r.check(&mut v, "settings.restriction");
        }
        v.finish()?;
        if let Some(r) = &changes.restriction {
            check(principal, access.role, Permission::RestrictionsManage)?;
            let (users, teams) = self
                .unknown_in_restriction(&access.organization.uuid, r)
                .await?;
            orgplane_platform::restriction::unknown_in_restriction(
                "settings.restriction",
                &users,
                &teams,
            )
            .finish()?;
        }
        if project.archived {
            return Err(archived(name));
        }
        check_etag(etag_seen, project.settings_version, "project settings")?;
        let mut next = settings_of(&project)?;
        if let Some(x) = changes.default_queue {
            next.default_queue = x;
        }
        if let Some(x) = changes.allowed_agents {
            next.allowed_agents = x;
        }
        if let Some(x) = changes.allowed_queues {
            next.allowed_queues = x;
        }
        if let Some(x) = changes.connections {
            next.connections = x;
        }
        if let Some(x) = changes.restriction {
            next.restriction = x;
        }
        let json = serde_json::to_string(&next).map_err(anyhow::Error::from)?;
        let txn = self.db.begin().await?;
        let updated = projects::Entity::update_many()
            .col_expr(projects::Column::Settings, Expr::value(json))
            .col_expr(
                projects::Column::Restricted,
                Expr::value(next.restriction.restricted),
            )
            .col_expr(
                projects::Column::SettingsVersion,
                Expr::value(project.settings_version + 1),
            )
            .col_expr(projects::Column::UpdateTime, Expr::value(now_micros()))
            .filter(projects::Column::Uuid.eq(project.uuid.as_str()))
            .filter(projects::Column::SettingsVersion.eq(project.settings_version))
            .exec(&txn)
            .await?;
        if updated.rows_affected != 1 {
            return Err(stale("project settings"));
        }
        let mut activity = project_activity(&project, principal, action::UPDATED)
            .metadata(serde_json::json!({"settings": &next}));
        activity.subject_kind = "project_settings".into();
        self.commit_with(txn, activity).await?;
        Ok((next, etag(project.settings_version + 1)))
    }
}

/// Changes to a project's settings; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct ProjectSettingsChanges {
    /// New default queue.
    pub default_queue: Option<String>,
    /// New allowed agents.
    pub allowed_agents: Option<Vec<String>>,
    /// New allowed queues.
    pub allowed_queues: Option<Vec<String>>,
    /// New connections.
    pub connections: Option<Vec<String>>,
    /// New restriction (admins and up who reach the project).
    pub restriction: Option<Restriction>,
}

/// What `actor` did to a project.
pub(crate) fn project_activity(
    project: &projects::Model,
    actor: &Principal,
    action: &str,
) -> Activity {
    Activity::new(
        &project.organization_uuid,
        actor,
        action,
        "project",
        &project.name,
    )
    .subject_uuid(&project.uuid)
    .project(&project.name)
}

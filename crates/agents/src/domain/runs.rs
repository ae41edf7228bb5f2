//! Runs as callers see them: people submit, read, list and cancel runs of
//! the projects they may use; agents, with their own token, lease runs from
//! their queues and report them. The rules of admission itself live in
//! [`super::admission`]; this module authorizes and routes.
//!
//! Routing: a run goes to the queue it names (`agent/queue`), else to its
//! project's default queue, else to its organization's; a queue outside the
//! project's allowed agents and queues is refused, and so is a run that asks
//! for more of a queue's resource than the queue's whole quota.

use std::{collections::HashMap, time::Duration};

use orgplane_platform::{
    Error,
    authz::Permission,
    principal::{Principal, PrincipalKind},
    validate::{self, Violations},
};
use orgplane_storage::{
    activity::{Activity, commit_with},
    page::{KeyPart, ListQuery, Page, keyed_page},
};
use orgplane_transport::{
    access::{Entity, Standing},
    peers::RunRouting,
};
use sea_orm::{
    ColumnTrait, Condition, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder,
    TransactionTrait,
};

use super::{
    Agents,
    admission::{self, Holder, NewRun},
    run_writes::{Enqueue, Report},
};
use crate::storage::{agents, queues, runs};

/// Lease length when an agent does not say.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);
/// Shortest lease an agent may ask for.
pub const MIN_LEASE: Duration = Duration::from_secs(1);
/// Most runs one `AcquireRuns` call leases.
pub const MAX_ACQUIRE: u64 = 100;
/// Largest run specification, as JSON.
pub const MAX_SPEC_BYTES: usize = 256 * 1024;

/// A run as submitted.
#[derive(Debug, Clone, Default)]
pub struct Submission {
    /// Project slug.
    pub project: String,
    /// `agent/queue`, or empty for the project's (else organization's)
    /// default queue.
    pub queue: String,
    /// Display name.
    pub name: String,
    /// Specification, a JSON object.
    pub spec: serde_json::Value,
}

/// A queue as runs name it: `agent/queue`.
pub fn queue_ref(value: &str) -> Result<(&str, &str), String> {
    let Some((agent, queue)) = value.split_once('/') else {
        return Err("must be agent/queue".into());
    };
    validate::slug(agent).map_err(|e| format!("agent: {e}"))?;
    validate::slug(queue).map_err(|e| format!("queue: {e}"))?;
    Ok((agent, queue))
}

/// How much of `resource` a run's `spec` asks for: the number at
/// `resources.<resource>`, 0 when absent; with no resource, each run counts
/// one (the quota then counts runs).
pub fn demand(spec: &serde_json::Value, resource: &str) -> Result<f64, String> {
    if resource.is_empty() {
        return Ok(1.0);
    }
    match spec.get("resources").and_then(|r| r.get(resource)) {
        None | Some(serde_json::Value::Null) => Ok(0.0),
        Some(value) => value
            .as_f64()
            .filter(|n| n.is_finite() && *n >= 0.0)
            .ok_or_else(|| format!("`resources.{resource}` must be a number, 0 or more")),
    }
}

/// The connections a run's spec names (`connections`: a list of connection
/// names, at most 100), checked against the project's settings at
/// submission.
fn named_connections(spec: &serde_json::Value) -> Result<Vec<String>, String> {
    let Some(value) = spec.get("connections") else {
        return Ok(Vec::new());
    };
    let names = value
        .as_array()
        .ok_or("must be a list of connection names")?;
    if names.len() > 100 {
        return Err("at most 100 connections".into());
    }
    names
        .iter()
        .map(|name| {
            let name = name.as_str().ok_or("must be a list of connection names")?;
            validate::slug(name).map_err(|e| format!("{name:?}: {e}"))?;
            Ok(name.to_owned())
        })
        .collect()
}

/// Whether `routing` lets the project's runs use `agent/queue`.
fn allowed(routing: &RunRouting, agent: &str, queue: &str) -> bool {
    (routing.allowed_agents.is_empty() || routing.allowed_agents.iter().any(|a| a == agent))
        && (routing.allowed_queues.is_empty()
            || routing
                .allowed_queues
                .iter()
                .any(|q| q.split_once('/') == Some((agent, queue))))
}

fn run_uuid(value: &str) -> Result<(), Error> {
    uuid::Uuid::parse_str(value)
        .map(|_| ())
        .map_err(|_| Error::invalid("run", "must be a run's UUID"))
}

impl Agents {
    async fn require_on_project(
        &self,
        principal: &Principal,
        organization: &str,
        permission: Permission,
        project: &str,
    ) -> Result<Standing, Error> {
        self.peer()?
            .permissions
            .require(
                principal,
                organization,
                permission,
                Entity::Project(project),
            )
            .await
    }

    /// The calling agent: agent tokens act for their own agent only; people
    /// who may see agents are told to use one (`AGENT_TOKEN_REQUIRED`).
    pub(crate) async fn calling_agent(
        &self,
        principal: &Principal,
        organization: &str,
    ) -> Result<agents::Model, Error> {
        if principal.kind != PrincipalKind::Agent {
            self.require(principal, organization, Permission::AgentsRead)
                .await?;
            return Err(Error::permission_denied(
                "AGENT_TOKEN_REQUIRED",
                "only agents call this, with their own token",
            ));
        }
        let mut v = Violations::new();
        v.check("organization", validate::slug(organization));
        v.finish()?;
        let not_found = || Error::not_found("organization", organization);
        let organization_uuid = principal
            .organization_uuid
            .as_deref()
            .filter(|_| principal.organization.as_deref() == Some(organization))
            .ok_or_else(not_found)?;
        self.agent_by_uuid(&principal.uuid)
            .await?
            .filter(|agent| agent.organization_uuid == organization_uuid)
            .ok_or_else(not_found)
    }

    /// The calling agent if it is the agent `name` (`NOT_FOUND` for any
    /// other: agent tokens act for their own agent only).
    pub(crate) async fn calling_agent_named(
        &self,
        principal: &Principal,
        organization: &str,
        name: &str,
    ) -> Result<agents::Model, Error> {
        let me = self.calling_agent(principal, organization).await?;
        let mut v = Violations::new();
        v.check("agent", validate::slug(name));
        v.finish()?;
        if me.name != name {
            return Err(Error::not_found("agent", name));
        }
        Ok(me)
    }

    /// The run `uuid` of the caller's organization if they hold
    /// `permission` on its project; `NOT_FOUND` otherwise (a run of another
    /// organization does not exist for them).
    async fn run_for(
        &self,
        principal: &Principal,
        organization: &str,
        uuid: &str,
        permission: Permission,
    ) -> Result<runs::Model, Error> {
        run_uuid(uuid)?;
        let run = runs::Entity::find_by_id(uuid.to_owned())
            .one(&self.db)
            .await?;
        let project = run.as_ref().map_or("", |r| r.project.as_str());
        let standing = if project.is_empty() {
            self.require(principal, organization, permission).await?
        } else {
            self.require_on_project(principal, organization, permission, project)
                .await?
        };
        run.filter(|r| r.organization_uuid == standing.organization_uuid)
            .ok_or_else(|| Error::not_found("run", uuid))
    }

    /// Routes and stores a run, `queued`.
    pub async fn submit_run(
        &self,
        principal: &Principal,
        organization: &str,
        submission: Submission,
    ) -> Result<runs::Model, Error> {
        let mut v = Violations::new();
        v.check("project", validate::slug(&submission.project));
        if !submission.queue.is_empty() {
            v.check("queue", queue_ref(&submission.queue).map(|_| ()));
        }
        v.check("name", validate::text(&submission.name, 256));
        if !submission.spec.is_object() {
            v.add("spec", "must be an object");
        } else if submission.spec.to_string().len() > MAX_SPEC_BYTES {
            v.add("spec", "must be at most 256 KiB as JSON");
        }
        let connections = named_connections(&submission.spec);
        if let Err(e) = &connections {
            v.add("spec.connections", e.clone());
        }
        v.finish()?;
        let connections = connections.unwrap_or_default();
        let standing = self
            .require_on_project(
                principal,
                organization,
                Permission::RunsWrite,
                &submission.project,
            )
            .await?;
        let routing = self
            .peer()?
            .run_routing(&standing.organization_uuid, &submission.project)
            .await?;
        if routing.archived {
            return Err(Error::precondition(
                "PROJECT_ARCHIVED",
                "an archived project takes no new runs",
            ));
        }
        let (target, named) = if !submission.queue.is_empty() {
            (submission.queue.clone(), true)
        } else if !routing.project_default_queue.is_empty() {
            (routing.project_default_queue.clone(), false)
        } else if !routing.organization_default_queue.is_empty() {
            (routing.organization_default_queue.clone(), false)
        } else if let Some(first) = self.first_queue(&standing.organization_uuid).await? {
            // No default set: the organization's first queue is its default.
            (first, false)
        } else {
            return Err(Error::precondition(
                "NO_QUEUE",
                "the organization has no queue yet: create an agent (it comes with a queue)",
            ));
        };
        let target = target.as_str();
        let (agent, queue) = queue_ref(target).map_err(|e| {
            Error::precondition("DEFAULT_QUEUE_INVALID", format!("default queue: {e}"))
        })?;
        let (_, queue_row) = match self
            .agent_and_queue(&standing.organization_uuid, agent, queue)
            .await
        {
            Err(Error::NotFound { .. }) if !named => {
                return Err(Error::precondition(
                    "DEFAULT_QUEUE_NOT_FOUND",
                    format!("the default queue {target} does not exist"),
                ));
            }
            other => other?,
        };
        for connection in &connections {
            if !routing.allowed_connections.is_empty()
                && !routing.allowed_connections.contains(connection)
            {
                return Err(Error::precondition(
                    "CONNECTION_NOT_ALLOWED",
                    format!(
                        "project {} may not use the connection {connection}",
                        submission.project
                    ),
                ));
            }
            self.connection(&standing.organization_uuid, connection)
                .await?;
        }
        if !allowed(&routing, agent, queue) {
            return Err(Error::precondition(
                "QUEUE_NOT_ALLOWED",
                format!(
                    "project {} may not use the queue {target}",
                    submission.project
                ),
            ));
        }
        let demand =
            demand(&submission.spec, &queue_row.resource).map_err(|e| Error::invalid("spec", e))?;
        if queue_row.quota > 0.0 && demand > queue_row.quota {
            return Err(Error::precondition(
                "OVER_QUOTA",
                format!(
                    "the run asks for {demand} {}, more than the queue's whole quota of {}",
                    queue_row.resource, queue_row.quota
                ),
            ));
        }
        self.writes
            .submissions
            .write(Enqueue {
                run: NewRun {
                    organization_uuid: standing.organization_uuid,
                    project: submission.project,
                    queue_uuid: queue_row.uuid,
                    name: submission.name,
                    spec: submission.spec,
                    submitter: principal.name.clone(),
                    demand,
                },
                actor: principal.clone(),
                queue: target.to_owned(),
            })
            .await
    }

    /// The organization's first queue (the oldest) as `agent/queue`: its
    /// default queue while none is set.
    async fn first_queue(&self, organization_uuid: &str) -> Result<Option<String>, Error> {
        let Some(queue) = queues::Entity::find()
            .filter(queues::Column::OrganizationUuid.eq(organization_uuid))
            .order_by_asc(queues::Column::CreateTime)
            .order_by_asc(queues::Column::Uuid)
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        Ok(self
            .agent_by_uuid(&queue.agent_uuid)
            .await?
            .map(|agent| format!("{}/{}", agent.name, queue.name)))
    }

    /// A run of a project the caller may read.
    pub async fn get_run(
        &self,
        principal: &Principal,
        organization: &str,
        uuid: &str,
    ) -> Result<runs::Model, Error> {
        self.run_for(principal, organization, uuid, Permission::ProjectsRead)
            .await
    }

    /// Runs of the organization (or of one project), newest first unless
    /// `order_by` is `create_time`; `filter` takes `status:` and `queue:`.
    pub async fn list_runs(
        &self,
        principal: &Principal,
        organization: &str,
        project: &str,
        query: &ListQuery,
    ) -> Result<Page<runs::Model>, Error> {
        let standing = if project.is_empty() {
            self.require(principal, organization, Permission::ProjectsRead)
                .await?
        } else {
            let mut v = Violations::new();
            v.check("project", validate::slug(project));
            v.finish()?;
            self.require_on_project(principal, organization, Permission::ProjectsRead, project)
                .await?
        };
        let order = query.order(&["create_time"])?;
        let descending = order.descending || query.order_by.trim().is_empty();
        let terms = query.terms(&["status", "queue"])?;
        let request = query.page(project)?;
        let mut condition = Condition::all()
            .add(runs::Column::OrganizationUuid.eq(standing.organization_uuid.as_str()));
        if !standing.hidden_projects.is_empty() {
            // Projects restricted away from the caller.
            condition = condition.add(runs::Column::Project.is_not_in(standing.hidden_projects));
        }
        if !project.is_empty() {
            condition = condition.add(runs::Column::Project.eq(project));
        }
        for (key, value) in terms {
            condition = condition.add(match key {
                "status" => {
                    if !admission::STATUSES.contains(&value) {
                        return Err(Error::invalid(
                            "filter",
                            format!("unknown status {value:?}"),
                        ));
                    }
                    runs::Column::Status.eq(value)
                }
                _ => {
                    let (agent, queue) = queue_ref(value)
                        .map_err(|e| Error::invalid("filter", format!("queue: {e}")))?;
                    let (_, q) = self
                        .agent_and_queue(&standing.organization_uuid, agent, queue)
                        .await?;
                    runs::Column::QueueUuid.eq(q.uuid)
                }
            });
        }
        keyed_page(
            &self.db,
            &request,
            runs::Entity::find().filter(condition),
            &[runs::Column::Uuid],
            &[KeyPart::Text],
            descending,
            |r| vec![r.uuid.clone()],
        )
        .await
    }

    /// Cancels a run of a project the caller may submit to: a queued run
    /// stops at once, a leased or running one is handed to its agent to
    /// stop; a finished run is left as it is (`RUN_FINISHED`).
    pub async fn cancel_run(
        &self,
        principal: &Principal,
        organization: &str,
        uuid: &str,
    ) -> Result<runs::Model, Error> {
        let run = self
            .run_for(principal, organization, uuid, Permission::RunsWrite)
            .await?;
        let txn = self.db.begin().await?;
        let run = admission::cancel_in(&txn, &run.uuid).await?;
        if matches!(
            run.status.as_str(),
            admission::SUCCEEDED | admission::FAILED
        ) {
            return Err(Error::precondition(
                "RUN_FINISHED",
                format!("the run already {}", run.status),
            ));
        }
        commit_with(txn, run_activity(&run, principal, "cancelled")).await?;
        Ok(run)
    }

    /// For the calling agent: leases up to `max_runs` runs of its queues.
    pub async fn acquire_runs(
        &self,
        principal: &Principal,
        organization: &str,
        agent: &str,
        max_runs: i32,
        lease: Option<Duration>,
    ) -> Result<Vec<runs::Model>, Error> {
        let mut v = Violations::new();
        v.check("agent", validate::slug(agent));
        if !(1..=MAX_ACQUIRE as i32).contains(&max_runs) {
            v.add("max_runs", format!("must be 1 to {MAX_ACQUIRE}"));
        }
        let lease = checked_lease(&mut v, lease);
        v.finish()?;
        let me = self
            .calling_agent_named(principal, organization, agent)
            .await?;
        self.acquire(&me.uuid, max_runs as u64, lease).await
    }

    /// For the calling agent: extends its lease on a run.
    pub async fn renew_lease(
        &self,
        principal: &Principal,
        organization: &str,
        uuid: &str,
        lease_id: &str,
        lease: Option<Duration>,
    ) -> Result<runs::Model, Error> {
        let mut v = Violations::new();
        v.check("lease", validate::required(lease_id, 64));
        let lease = checked_lease(&mut v, lease);
        v.finish()?;
        run_uuid(uuid)?;
        let me = self.calling_agent(principal, organization).await?;
        self.renew(holder(&me), uuid, lease_id, lease).await
    }

    /// For the calling agent: reports a run's status.
    pub async fn report_run_status(
        &self,
        principal: &Principal,
        organization: &str,
        uuid: &str,
        lease_id: &str,
        status: &str,
        message: &str,
    ) -> Result<runs::Model, Error> {
        let mut v = Violations::new();
        v.check("lease", validate::required(lease_id, 64));
        v.check("message", validate::text(message, 2000));
        v.finish()?;
        run_uuid(uuid)?;
        let me = self.calling_agent(principal, organization).await?;
        self.writes
            .reports
            .write(Report {
                organization_uuid: me.organization_uuid,
                agent_uuid: me.uuid,
                run_uuid: uuid.to_owned(),
                lease_id: lease_id.to_owned(),
                status: status.to_owned(),
                message: message.to_owned(),
                actor: principal.clone(),
            })
            .await
    }

    /// `agent/queue` of the queues of `runs`, by queue UUID.
    pub async fn queue_labels(
        &self,
        runs: &[runs::Model],
    ) -> Result<HashMap<String, (String, String)>, Error> {
        self.labels_of_queues(runs.iter().map(|r| r.queue_uuid.clone()).collect())
            .await
    }
}

/// What `actor` did to `run`: the run's name (its UUID when unnamed) in its
/// project.
pub(super) fn run_activity(run: &runs::Model, actor: &Principal, action: &str) -> Activity {
    let name = if run.name.is_empty() {
        &run.uuid
    } else {
        &run.name
    };
    Activity::new(&run.organization_uuid, actor, action, "run", name)
        .subject_uuid(&run.uuid)
        .project(&run.project)
}

/// Records that `runs` were stopped by `actor` (deleting their queue with
/// `force`, say), in `txn`.
pub(super) async fn record_stopped(
    txn: &DatabaseTransaction,
    actor: &Principal,
    runs: &[runs::Model],
) -> Result<(), Error> {
    let activities = runs
        .iter()
        .map(|run| run_activity(run, actor, admission::STOPPED))
        .collect();
    orgplane_storage::activity::record_all(txn, activities).await
}

fn holder(agent: &agents::Model) -> Holder<'_> {
    Holder {
        organization_uuid: &agent.organization_uuid,
        agent_uuid: &agent.uuid,
    }
}

/// The lease asked for, [`DEFAULT_LEASE`] when none, checked against
/// [`MIN_LEASE`] and [`admission::MAX_LEASE`].
fn checked_lease(v: &mut Violations, lease: Option<Duration>) -> Duration {
    let lease = lease.unwrap_or(DEFAULT_LEASE);
    if lease < MIN_LEASE || lease > admission::MAX_LEASE {
        v.add("lease_duration", "must be 1 s to 1 h");
    }
    lease
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_refs_name_an_agent_and_a_queue() {
        assert_eq!(queue_ref("gpu-box/urgent"), Ok(("gpu-box", "urgent")));
        assert!(queue_ref("urgent").is_err());
        assert!(queue_ref("a/b/c").is_err());
        assert!(queue_ref("/q").is_err());
    }

    #[test]
    fn demand_reads_the_queues_resource_from_the_spec() {
        let spec = serde_json::json!({"resources": {"gpu": 2, "memory": 1.5}});
        assert_eq!(demand(&spec, ""), Ok(1.0), "no resource: runs count one");
        assert_eq!(demand(&spec, "gpu"), Ok(2.0));
        assert_eq!(demand(&spec, "memory"), Ok(1.5));
        assert_eq!(demand(&spec, "cpu"), Ok(0.0), "absent: nothing");
        let bad = serde_json::json!({"resources": {"gpu": "two"}});
        assert!(demand(&bad, "gpu").is_err());
        let negative = serde_json::json!({"resources": {"gpu": -1}});
        assert!(demand(&negative, "gpu").is_err());
    }

    #[test]
    fn a_spec_names_its_connections_as_a_list_of_slugs() {
        let spec = |v| serde_json::json!({ "connections": v });
        assert_eq!(named_connections(&serde_json::json!({})), Ok(vec![]));
        assert_eq!(
            named_connections(&spec(serde_json::json!(["data", "lake"]))),
            Ok(vec!["data".to_owned(), "lake".to_owned()])
        );
        for bad in [
            serde_json::json!("data"),
            serde_json::json!([1]),
            serde_json::json!(["Not A Slug"]),
            serde_json::json!(vec!["c"; 101]),
        ] {
            assert!(named_connections(&spec(bad.clone())).is_err(), "{bad}");
        }
    }

    #[test]
    fn allowed_queues_and_agents_restrict_routing() {
        let open = RunRouting::default();
        assert!(allowed(&open, "a", "q"));
        let agents_only = RunRouting {
            allowed_agents: vec!["a".into()],
            ..Default::default()
        };
        assert!(allowed(&agents_only, "a", "q"));
        assert!(!allowed(&agents_only, "b", "q"));
        let queues_only = RunRouting {
            allowed_queues: vec!["a/q".into()],
            ..Default::default()
        };
        assert!(allowed(&queues_only, "a", "q"));
        assert!(!allowed(&queues_only, "a", "r"));
        assert!(!allowed(&queues_only, "b", "q"));
    }
}

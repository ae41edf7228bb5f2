//! Agents of an organization: what they are, where they run, their token
//! (issued by identity, shown once, replaced on rotation) and their health.

use std::time::Duration;

use orgplane_platform::{
    Error,
    authz::Permission,
    principal::Principal,
    tags,
    time::now_micros,
    validate::{self, Violations},
};
use orgplane_storage::{
    activity::{self, Activity, action},
    etag::{check_etag, update_at_version},
    page::{KeyPart, ListQuery, Page, keyed_page, like_prefix},
    read_cache::Forget,
};
use orgplane_transport::{access::Standing, peers::IdentityPeer};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter, Set, TransactionTrait,
    sea_query::{Expr, ExprTrait, LikeExpr},
};

use super::{
    Agents,
    admission::{self, Unfinished},
    queues::{DEFAULT_QUEUE, QueueFields, new_queue},
};
use crate::storage::{agent_statuses, agents, queues, runs};

/// Heartbeat timeout when none is given.
pub const DEFAULT_HEARTBEAT_TIMEOUT: i32 = 60;

/// An agent's fields as created or changed; `None` leaves one alone.
#[derive(Debug, Clone, Default)]
pub struct AgentFields {
    /// What it is for.
    pub description: Option<String>,
    /// Tags.
    pub tags: Option<Vec<String>>,
    /// Kubernetes namespace.
    pub namespace: Option<String>,
    /// Cluster name.
    pub cluster: Option<String>,
    /// Seconds without a heartbeat before `unhealthy` (0: the default).
    pub heartbeat_timeout_seconds: Option<i32>,
    /// Free-form settings, a JSON object.
    pub settings: Option<serde_json::Value>,
}

/// The health an agent shows: `unknown` before its first report, else
/// `healthy` or `unhealthy` by the age of its last heartbeat.
pub fn health(agent: &agents::Model, now: i64) -> &'static str {
    match agent.heartbeat_time {
        None => "unknown",
        Some(t) => {
            let timeout = Duration::from_secs(Ord::max(agent.heartbeat_timeout_seconds, 1) as u64);
            if now - t > timeout.as_micros() as i64 {
                "unhealthy"
            } else {
                "healthy"
            }
        }
    }
}

/// The agents whose [`health`] at `now` is `value`, as a condition.
fn health_condition(value: &str, now: i64) -> Result<Condition, Error> {
    // Fresh: a heartbeat within the agent's own timeout (stored ≥ 1 s).
    let fresh = || {
        let timeout = Expr::col(agents::Column::HeartbeatTimeoutSeconds).mul(1_000_000);
        Expr::col(agents::Column::HeartbeatTime).gte(Expr::val(now).sub(timeout))
    };
    Ok(match value {
        "unknown" => Condition::all().add(agents::Column::HeartbeatTime.is_null()),
        "healthy" => Condition::all()
            .add(agents::Column::HeartbeatTime.is_not_null())
            .add(fresh()),
        "unhealthy" => Condition::all()
            .add(agents::Column::HeartbeatTime.is_not_null())
            .add(fresh().not()),
        _ => {
            return Err(Error::invalid(
                "filter",
                "health must be healthy, unhealthy or unknown",
            ));
        }
    })
}

fn check_fields(v: &mut Violations, f: &AgentFields) {
    if let Some(d) = &f.description {
        v.check("agent.description", validate::text(d, 2000));
    }
    if let Some(t) = &f.tags {
        tags::check(v, "agent.tags", t);
    }
    for (field, value) in [
        ("agent.namespace", &f.namespace),
        ("agent.cluster", &f.cluster),
    ] {
        if let Some(value) = value.as_deref().filter(|s| !s.is_empty()) {
            v.check(field, validate::slug(value));
        }
    }
    if let Some(t) = f.heartbeat_timeout_seconds
        && !(0..=86_400).contains(&t)
    {
        v.add("agent.heartbeat_timeout_seconds", "must be 0 (60) to 86400");
    }
    if let Some(s) = &f.settings {
        if !s.is_object() {
            v.add("agent.settings", "must be an object");
        } else if s.to_string().len() > 64 * 1024 {
            v.add("agent.settings", "must be at most 64 KiB as JSON");
        }
    }
}

impl Agents {
    fn identity(&self) -> Result<&IdentityPeer, Error> {
        self.identity.as_ref().ok_or_else(|| {
            Error::Unavailable("the agents service runs without the identity service".into())
        })
    }

    pub(crate) async fn agent(
        &self,
        organization_uuid: &str,
        name: &str,
    ) -> Result<agents::Model, Error> {
        let mut v = Violations::new();
        v.check("agent", validate::slug(name));
        v.finish()?;
        agents::Entity::find()
            .filter(agents::Column::OrganizationUuid.eq(organization_uuid))
            .filter(agents::Column::Name.eq(name))
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::not_found("agent", name))
    }

    /// Creates an agent; returns it and its token (shown once).
    pub async fn create_agent(
        &self,
        principal: &Principal,
        organization: &str,
        name: &str,
        fields: AgentFields,
    ) -> Result<(agents::Model, String), Error> {
        let standing = self
            .require(principal, organization, Permission::AgentsManage)
            .await?;
        let mut v = Violations::new();
        v.check("agent.name", validate::slug(name));
        check_fields(&mut v, &fields);
        v.finish()?;
        let now = now_micros();
        // No agent without a credential, and no transaction held across a
        // call to identity: the token is issued first, for the agent's
        // UUID-to-be, and revoked if the agent does not commit. (A token
        // whose agent never committed authenticates a caller that every
        // method answers `NOT_FOUND`.)
        let uuid = uuid::Uuid::now_v7().to_string();
        let token = self
            .identity()?
            .issue_agent_token(&uuid, name, organization, &standing.organization_uuid)
            .await?;
        let committed = self
            .insert_agent(principal, &standing, &uuid, name, fields, now)
            .await;
        if committed.is_err() {
            let _ = self.identity()?.revoke_agent_tokens(&uuid).await;
        }
        Ok((committed?, token))
    }

    /// Inserts the agent row `uuid` with its activity, in one transaction.
    async fn insert_agent(
        &self,
        principal: &Principal,
        standing: &Standing,
        uuid: &str,
        name: &str,
        fields: AgentFields,
        now: i64,
    ) -> Result<agents::Model, Error> {
        let txn = self.db.begin().await?;
        let row = agents::ActiveModel {
            uuid: Set(uuid.to_owned()),
            organization_uuid: Set(standing.organization_uuid.clone()),
            name: Set(name.to_owned()),
            create_time: Set(now),
            description: Set(fields.description.unwrap_or_default()),
            tags: Set(tags::store(&fields.tags.unwrap_or_default())),
            namespace: Set(fields.namespace.unwrap_or_default()),
            cluster: Set(fields.cluster.unwrap_or_default()),
            agent_version: Set(String::new()),
            heartbeat_timeout_seconds: Set(match fields.heartbeat_timeout_seconds {
                None | Some(0) => DEFAULT_HEARTBEAT_TIMEOUT,
                Some(t) => t,
            }),
            settings: Set(fields
                .settings
                .unwrap_or_else(|| serde_json::json!({}))
                .to_string()),
            heartbeat_time: Set(None),
            version: Set(1),
            update_time: Set(now),
        }
        .insert(&txn)
        .await
        .map_err(|err| Error::from_db(err, "agent", name))?;
        // Every agent comes with a queue, so that a new organization takes
        // runs as soon as it has an agent (see `routed_queue`).
        new_queue(
            &row,
            DEFAULT_QUEUE,
            QueueFields {
                description: Some("created with the agent".into()),
                ..QueueFields::default()
            },
            now,
        )
        .insert(&txn)
        .await?;
        let activity = Activity::new(
            &row.organization_uuid,
            principal,
            action::CREATED,
            "agent",
            name,
        )
        .subject_uuid(&row.uuid);
        self.commit_with(txn, activity).await?;
        Ok(row)
    }

    /// One agent.
    pub async fn get_agent(
        &self,
        principal: &Principal,
        organization: &str,
        name: &str,
    ) -> Result<agents::Model, Error> {
        let standing = self
            .require(principal, organization, Permission::AgentsRead)
            .await?;
        self.agent(&standing.organization_uuid, name).await
    }

    /// An organization's agents, filtered by `name:`, `tag:` and
    /// `health:` (`healthy`, `unhealthy`, `unknown`: as [`health`] says
    /// at the time of the call).
    pub async fn list_agents(
        &self,
        principal: &Principal,
        organization: &str,
        query: &ListQuery,
    ) -> Result<Page<agents::Model>, Error> {
        let standing = self
            .require(principal, organization, Permission::AgentsRead)
            .await?;
        let order = query.order(&["name", "create_time"])?;
        let terms = query.terms(&["name", "tag", "health"])?;
        let page = query.page("")?;
        let mut condition = Condition::all()
            .add(agents::Column::OrganizationUuid.eq(standing.organization_uuid.as_str()));
        for (key, value) in &terms {
            condition = match *key {
                "name" => condition.add(
                    Expr::col(agents::Column::Name)
                        .like(LikeExpr::new(like_prefix(value)).escape('\\')),
                ),
                "health" => condition.add(health_condition(value, now_micros())?),
                _ => condition.add(agents::Column::Tags.contains(tags::pattern(value))),
            };
        }
        let (columns, parts): (Vec<agents::Column>, &[KeyPart]) = match order.field {
            "name" => (vec![agents::Column::Name], &[KeyPart::Text]),
            _ => (vec![agents::Column::Uuid], &[KeyPart::Text]),
        };
        keyed_page(
            &self.db,
            &page,
            agents::Entity::find().filter(condition),
            &columns,
            parts,
            order.descending,
            |a| match order.field {
                "name" => vec![a.name.clone()],
                _ => vec![a.uuid.clone()],
            },
        )
        .await
    }

    /// Changes an agent; a stale `etag_seen` is `ABORTED`.
    pub async fn update_agent(
        &self,
        principal: &Principal,
        organization: &str,
        name: &str,
        fields: AgentFields,
        etag_seen: &str,
    ) -> Result<agents::Model, Error> {
        let standing = self
            .require(principal, organization, Permission::AgentsManage)
            .await?;
        let mut v = Violations::new();
        check_fields(&mut v, &fields);
        v.finish()?;
        let row = self.agent(&standing.organization_uuid, name).await?;
        check_etag(etag_seen, row.version, "agent")?;
        let mut update = agents::Entity::update_many()
            .col_expr(agents::Column::UpdateTime, Expr::value(now_micros()));
        if let Some(d) = fields.description {
            update = update.col_expr(agents::Column::Description, Expr::value(d));
        }
        if let Some(t) = fields.tags {
            update = update.col_expr(agents::Column::Tags, Expr::value(tags::store(&t)));
        }
        if let Some(n) = fields.namespace {
            update = update.col_expr(agents::Column::Namespace, Expr::value(n));
        }
        if let Some(c) = fields.cluster {
            update = update.col_expr(agents::Column::Cluster, Expr::value(c));
        }
        if let Some(t) = fields.heartbeat_timeout_seconds {
            let t = if t == 0 { DEFAULT_HEARTBEAT_TIMEOUT } else { t };
            update = update.col_expr(agents::Column::HeartbeatTimeoutSeconds, Expr::value(t));
        }
        if let Some(s) = fields.settings {
            update = update.col_expr(agents::Column::Settings, Expr::value(s.to_string()));
        }
        let txn = self.db.begin().await?;
        update_at_version(
            &txn,
            update,
            (agents::Column::Uuid, row.uuid.as_str()),
            (agents::Column::Version, row.version),
            "agent",
        )
        .await?;
        let activity = Activity::new(
            &row.organization_uuid,
            principal,
            action::UPDATED,
            "agent",
            name,
        )
        .subject_uuid(&row.uuid);
        self.commit_with(txn, activity).await?;
        self.agent(&standing.organization_uuid, name).await
    }

    /// Deletes an agent and its queues once none of their runs waits or
    /// runs, or with `force` stopping them; then revokes its tokens.
    pub async fn delete_agent(
        &self,
        principal: &Principal,
        organization: &str,
        name: &str,
        force: bool,
    ) -> Result<String, Error> {
        let standing = self
            .require(principal, organization, Permission::AgentsManage)
            .await?;
        let row = self.agent(&standing.organization_uuid, name).await?;
        let unfinished = if force {
            Unfinished::Stop("its agent was deleted")
        } else {
            Unfinished::Refuse("AGENT_BUSY")
        };
        // The deletions first (see `admission::settle_unfinished`), the busy
        // check after them in the same transaction; the call to identity
        // after it, holding none.
        let txn = self.db.begin().await?;
        let queue_uuids: Vec<String> = queues::Entity::delete_many()
            .filter(queues::Column::AgentUuid.eq(row.uuid.as_str()))
            .exec_with_returning(&txn)
            .await?
            .into_iter()
            .map(|q| q.uuid)
            .collect();
        let deleted = agents::Entity::delete_by_id(row.uuid.clone())
            .exec(&txn)
            .await?;
        if deleted.rows_affected == 0 {
            return Err(Error::not_found("agent", name));
        }
        let stopped = admission::settle_unfinished(&txn, queue_uuids, unfinished).await?;
        super::runs::record_stopped(&txn, principal, &stopped).await?;
        let activity = Activity::new(
            &row.organization_uuid,
            principal,
            action::DELETED,
            "agent",
            name,
        )
        .subject_uuid(&row.uuid);
        self.commit_with(txn, activity).await?;
        // Tokens of a deleted agent authenticate nothing that exists; a
        // failure here leaves them to be purged with the agent's
        // organization, and is logged.
        if let Err(err) = self.identity()?.revoke_agent_tokens(&row.uuid).await {
            tracing::warn!(agent = %row.uuid, error = %err, "could not revoke a deleted agent's tokens");
        }
        Ok(row.uuid)
    }

    /// A new token for an agent, shown once, and the agent's UUID; the old
    /// token stops working (at once at the gateway that forwarded the call,
    /// within their token cache's lifetime at the others).
    pub async fn rotate_agent_token(
        &self,
        principal: &Principal,
        organization: &str,
        name: &str,
    ) -> Result<(String, String), Error> {
        let standing = self
            .require(principal, organization, Permission::AgentsManage)
            .await?;
        let row = self.agent(&standing.organization_uuid, name).await?;
        let token = self
            .identity()?
            .issue_agent_token(&row.uuid, &row.name, organization, &row.organization_uuid)
            .await?;
        // The change is identity's; its record is this service's.
        let activity = Activity::new(
            &row.organization_uuid,
            principal,
            "rotated",
            "agent_token",
            name,
        )
        .subject_uuid(&row.uuid)
        .parent("agent", name);
        activity::record(&self.db, activity).await?;
        Ok((token, row.uuid))
    }
}

/// A status an agent reports.
#[derive(Debug, Clone, Default)]
pub struct AgentReport {
    /// The state, e.g. `running`.
    pub state: String,
    /// Why, UpperCamelCase.
    pub reason: String,
    /// Why, for people.
    pub message: String,
    /// The agent's software version.
    pub version: String,
    /// Its host.
    pub hostname: String,
}

impl Agents {
    /// The agent `name` if the caller is that agent (agent tokens act only
    /// for their own agent), or a person who may read agents.
    async fn agent_for(
        &self,
        principal: &Principal,
        organization: &str,
        name: &str,
        agent_only: bool,
    ) -> Result<agents::Model, Error> {
        if principal.kind == orgplane_platform::principal::PrincipalKind::Agent {
            return self
                .calling_agent_named(principal, organization, name)
                .await;
        }
        let standing = self
            .require(principal, organization, Permission::AgentsRead)
            .await?;
        let row = self.agent(&standing.organization_uuid, name).await?;
        if agent_only {
            return Err(Error::permission_denied(
                "AGENT_TOKEN_REQUIRED",
                "only the agent itself reports its status, with its token",
            ));
        }
        Ok(row)
    }

    /// Records the status an agent reports (its heartbeat); returns when it
    /// should report next at the latest.
    pub async fn report_agent_status(
        &self,
        principal: &Principal,
        organization: &str,
        name: &str,
        report: AgentReport,
    ) -> Result<i64, Error> {
        let agent = self.agent_for(principal, organization, name, true).await?;
        let mut v = Violations::new();
        v.check("condition.type", validate::slug(&report.state));
        if !report.reason.is_empty() {
            v.check("condition.reason", validate::text(&report.reason, 64));
        }
        v.check("condition.message", validate::text(&report.message, 2000));
        v.check("version", validate::text(&report.version, 100));
        v.check("hostname", validate::text(&report.hostname, 253));
        v.finish()?;
        let now = now_micros();
        agent_statuses::ActiveModel {
            uuid: Set(uuid::Uuid::now_v7().to_string()),
            agent_uuid: Set(agent.uuid.clone()),
            state: Set(report.state),
            reason: Set(report.reason),
            message: Set(report.message),
            hostname: Set(report.hostname),
            agent_version: Set(report.version.clone()),
            create_time: Set(now),
        }
        .insert(&self.db)
        .await?;
        agents::Entity::update_many()
            .col_expr(agents::Column::HeartbeatTime, Expr::value(now))
            .col_expr(agents::Column::AgentVersion, Expr::value(report.version))
            .filter(agents::Column::Uuid.eq(agent.uuid.as_str()))
            .exec(&self.db)
            .await?;
        self.catalog.changed();
        // Report at half the timeout: one lost report does not make the
        // agent unhealthy.
        Ok(now + (agent.heartbeat_timeout_seconds as i64) * 500_000)
    }

    /// An agent's reported statuses, newest first.
    pub async fn list_agent_statuses(
        &self,
        principal: &Principal,
        organization: &str,
        name: &str,
        query: &ListQuery,
    ) -> Result<Page<agent_statuses::Model>, Error> {
        let agent = self.agent_for(principal, organization, name, false).await?;
        let page = query.page("statuses")?;
        orgplane_storage::page::text_keyed_page(
            &self.db,
            &page,
            agent_statuses::Entity::find()
                .filter(agent_statuses::Column::AgentUuid.eq(agent.uuid.as_str())),
            agent_statuses::Column::Uuid,
            true,
            |s| s.uuid.clone(),
        )
        .await
    }

    /// The agent's latest status, if it reported one.
    pub async fn last_status(
        &self,
        agent: &agents::Model,
    ) -> Result<Option<agent_statuses::Model>, Error> {
        use sea_orm::QueryOrder;
        Ok(agent_statuses::Entity::find()
            .filter(agent_statuses::Column::AgentUuid.eq(agent.uuid.as_str()))
            .order_by_desc(agent_statuses::Column::Uuid)
            .one(&self.db)
            .await?)
    }

    /// What the agent must act on: runs leased to it not yet running, runs
    /// whose cancellation it must carry out; and its health.
    pub async fn get_agent_state(
        &self,
        principal: &Principal,
        organization: &str,
        name: &str,
    ) -> Result<(Vec<runs::Model>, Vec<runs::Model>, &'static str), Error> {
        let agent = self.agent_for(principal, organization, name, false).await?;
        let (to_start, to_stop) = self.agent_state(&agent.uuid).await?;
        Ok((to_start, to_stop, health(&agent, now_micros())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_follows_the_heartbeat() {
        let mut agent = agents::Model {
            uuid: "a".into(),
            organization_uuid: "o".into(),
            name: "a".into(),
            create_time: 0,
            description: String::new(),
            tags: String::new(),
            namespace: String::new(),
            cluster: String::new(),
            agent_version: String::new(),
            heartbeat_timeout_seconds: 60,
            settings: "{}".into(),
            heartbeat_time: None,
            version: 1,
            update_time: 0,
        };
        assert_eq!(health(&agent, 0), "unknown");
        agent.heartbeat_time = Some(0);
        assert_eq!(health(&agent, 59_000_000), "healthy");
        assert_eq!(health(&agent, 61_000_000), "unhealthy");
    }
}

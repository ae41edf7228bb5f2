//! Queues of an agent: where runs wait, with a priority, a concurrency
//! limit, a resource quota and a scheduling strategy (see
//! [`super::admission`]).

use orgplane_platform::{
    Error,
    authz::Permission,
    principal::Principal,
    time::now_micros,
    validate::{self, Violations},
};
use orgplane_storage::{
    activity::{Activity, action},
    etag::{check_etag, update_at_version},
    page::{ListQuery, Page, text_keyed_page},
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter, Set, TransactionTrait,
    sea_query::{Expr, ExprTrait, LikeExpr},
};

use super::{
    Agents,
    admission::{self, QueueStats, Unfinished},
};
use crate::storage::{agents, queues};

/// The scheduling strategies.
pub const STRATEGIES: &[&str] = &["fifo", "fair"];
/// Resources a quota may count.
pub const RESOURCES: &[&str] = &["cpu", "gpu", "memory"];

/// A queue's fields as created or changed; `None` leaves one alone.
#[derive(Debug, Clone, Default)]
pub struct QueueFields {
    /// What it is for.
    pub description: Option<String>,
    /// Higher first.
    pub priority: Option<i32>,
    /// Most runs leased or running at once; 0 = no limit.
    pub concurrency: Option<i32>,
    /// Resource the quota counts, or empty.
    pub resource: Option<String>,
    /// Quota of that resource; 0 = none.
    pub quota: Option<f64>,
    /// `fifo` or `fair`.
    pub strategy: Option<String>,
}

fn check_fields(v: &mut Violations, f: &QueueFields) {
    if let Some(d) = &f.description {
        v.check("queue.description", validate::text(d, 2000));
    }
    if f.priority.is_some_and(|p| !(-1000..=1000).contains(&p)) {
        v.add("queue.priority", "must be -1000 to 1000");
    }
    if f.concurrency.is_some_and(|c| !(0..=100_000).contains(&c)) {
        v.add("queue.concurrency", "must be 0 (no limit) to 100000");
    }
    if let Some(r) = f.resource.as_deref().filter(|r| !r.is_empty())
        && !RESOURCES.contains(&r)
    {
        v.add("queue.resource", "must be cpu, gpu or memory (or empty)");
    }
    if f.quota.is_some_and(|q| !q.is_finite() || q < 0.0) {
        v.add("queue.quota", "must be 0 or more");
    }
    if let Some(s) = &f.strategy
        && !STRATEGIES.contains(&s.as_str())
    {
        v.add("queue.strategy", "must be fifo or fair");
    }
}

/// The name of the queue every agent is created with.
pub const DEFAULT_QUEUE: &str = "default";

/// A queue row of `agent` (unset fields at their defaults: priority 0, no
/// concurrency limit, `fifo`, no quota).
pub(crate) fn new_queue(
    agent: &agents::Model,
    name: &str,
    fields: QueueFields,
    now: i64,
) -> queues::ActiveModel {
    queues::ActiveModel {
        uuid: Set(uuid::Uuid::now_v7().to_string()),
        organization_uuid: Set(agent.organization_uuid.clone()),
        agent_uuid: Set(agent.uuid.clone()),
        name: Set(name.to_owned()),
        priority: Set(fields.priority.unwrap_or(0)),
        concurrency: Set(fields.concurrency.unwrap_or(0)),
        strategy: Set(fields
            .strategy
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "fifo".into())),
        version: Set(1),
        create_time: Set(now),
        description: Set(fields.description.unwrap_or_default()),
        resource: Set(fields.resource.unwrap_or_default()),
        quota: Set(fields.quota.unwrap_or(0.0)),
        update_time: Set(now),
    }
}

impl Agents {
    /// (Through [`super::catalog`]'s cache: [`Agents::agent_and_queue`].)
    pub(crate) async fn read_agent_and_queue(
        &self,
        organization_uuid: &str,
        agent: &str,
        name: &str,
    ) -> Result<(agents::Model, queues::Model), Error> {
        let agent = self.agent(organization_uuid, agent).await?;
        let mut v = Violations::new();
        v.check("queue", validate::slug(name));
        v.finish()?;
        let queue = queues::Entity::find()
            .filter(queues::Column::AgentUuid.eq(agent.uuid.as_str()))
            .filter(queues::Column::Name.eq(name))
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::not_found("queue", name))?;
        Ok((agent, queue))
    }

    /// Creates a queue of an agent.
    pub async fn create_queue(
        &self,
        principal: &Principal,
        organization: &str,
        agent: &str,
        name: &str,
        fields: QueueFields,
    ) -> Result<queues::Model, Error> {
        let standing = self
            .require(principal, organization, Permission::AgentsManage)
            .await?;
        let mut v = Violations::new();
        v.check("queue.name", validate::slug(name));
        check_fields(&mut v, &fields);
        v.finish()?;
        let agent = self.agent(&standing.organization_uuid, agent).await?;
        let txn = self.db.begin().await?;
        let row = new_queue(&agent, name, fields, now_micros())
            .insert(&txn)
            .await
            .map_err(|err| Error::from_db(err, "queue", name))?;
        let activity = Activity::new(
            &row.organization_uuid,
            principal,
            action::CREATED,
            "queue",
            name,
        )
        .subject_uuid(&row.uuid)
        .parent("agent", &agent.name);
        self.commit_with(txn, activity).await?;
        Ok(row)
    }

    /// One queue and its agent's name.
    pub async fn get_queue(
        &self,
        principal: &Principal,
        organization: &str,
        agent: &str,
        name: &str,
    ) -> Result<queues::Model, Error> {
        let standing = self
            .require(principal, organization, Permission::AgentsRead)
            .await?;
        Ok(self
            .agent_and_queue(&standing.organization_uuid, agent, name)
            .await?
            .1)
    }

    /// An agent's queues, filtered by `name:`, ordered by `name` or
    /// `create_time`.
    pub async fn list_queues(
        &self,
        principal: &Principal,
        organization: &str,
        agent: &str,
        query: &ListQuery,
    ) -> Result<Page<queues::Model>, Error> {
        let standing = self
            .require(principal, organization, Permission::AgentsRead)
            .await?;
        let agent = self.agent(&standing.organization_uuid, agent).await?;
        let order = query.order(&["name", "create_time"])?;
        let terms = query.terms(&["name"])?;
        let page = query.page("")?;
        let mut condition = Condition::all().add(queues::Column::AgentUuid.eq(agent.uuid.as_str()));
        for (_, prefix) in &terms {
            condition = condition.add(
                Expr::col(queues::Column::Name)
                    .like(LikeExpr::new(orgplane_storage::page::like_prefix(prefix)).escape('\\')),
            );
        }
        let (column, by_name) = match order.field {
            "name" => (queues::Column::Name, true),
            _ => (queues::Column::Uuid, false),
        };
        text_keyed_page(
            &self.db,
            &page,
            queues::Entity::find().filter(condition),
            column,
            order.descending,
            |q| {
                if by_name {
                    q.name.clone()
                } else {
                    q.uuid.clone()
                }
            },
        )
        .await
    }

    /// Changes a queue; a stale `etag_seen` is `ABORTED`. A lower
    /// concurrency applies to the next acquisitions (leased runs stay).
    pub async fn update_queue(
        &self,
        principal: &Principal,
        organization: &str,
        agent: &str,
        name: &str,
        fields: QueueFields,
        etag_seen: &str,
    ) -> Result<queues::Model, Error> {
        let standing = self
            .require(principal, organization, Permission::AgentsManage)
            .await?;
        let mut v = Violations::new();
        check_fields(&mut v, &fields);
        v.finish()?;
        let (_, queue) = self
            .agent_and_queue(&standing.organization_uuid, agent, name)
            .await?;
        check_etag(etag_seen, queue.version, "queue")?;
        let mut update = queues::Entity::update_many()
            .col_expr(queues::Column::UpdateTime, Expr::value(now_micros()));
        if let Some(d) = fields.description {
            update = update.col_expr(queues::Column::Description, Expr::value(d));
        }
        if let Some(p) = fields.priority {
            update = update.col_expr(queues::Column::Priority, Expr::value(p));
        }
        if let Some(c) = fields.concurrency {
            update = update.col_expr(queues::Column::Concurrency, Expr::value(c));
        }
        if let Some(r) = fields.resource {
            update = update.col_expr(queues::Column::Resource, Expr::value(r));
        }
        if let Some(q) = fields.quota {
            update = update.col_expr(queues::Column::Quota, Expr::value(q));
        }
        if let Some(s) = fields.strategy.filter(|s| !s.is_empty()) {
            update = update.col_expr(queues::Column::Strategy, Expr::value(s));
        }
        let txn = self.db.begin().await?;
        update_at_version(
            &txn,
            update,
            (queues::Column::Uuid, queue.uuid.as_str()),
            (queues::Column::Version, queue.version),
            "queue",
        )
        .await?;
        let activity = Activity::new(
            &queue.organization_uuid,
            principal,
            action::UPDATED,
            "queue",
            name,
        )
        .subject_uuid(&queue.uuid)
        .parent("agent", agent);
        self.commit_with(txn, activity).await?;
        Ok(self
            .agent_and_queue(&standing.organization_uuid, agent, name)
            .await?
            .1)
    }

    /// Deletes a queue once none of its runs waits or runs, or with `force`
    /// stopping them (they stay, finished, in their projects' history).
    pub async fn delete_queue(
        &self,
        principal: &Principal,
        organization: &str,
        agent: &str,
        name: &str,
        force: bool,
    ) -> Result<(), Error> {
        let standing = self
            .require(principal, organization, Permission::AgentsManage)
            .await?;
        let (_, queue) = self
            .agent_and_queue(&standing.organization_uuid, agent, name)
            .await?;
        let unfinished = if force {
            Unfinished::Stop("its queue was deleted")
        } else {
            Unfinished::Refuse("QUEUE_BUSY")
        };
        // The deletion first: it is the transaction's first write (see
        // `admission::settle_unfinished`).
        let txn = self.db.begin().await?;
        let deleted = queues::Entity::delete_by_id(queue.uuid.clone())
            .exec(&txn)
            .await?;
        if deleted.rows_affected == 0 {
            return Err(Error::not_found("queue", format!("{agent}/{name}")));
        }
        let stopped =
            admission::settle_unfinished(&txn, vec![queue.uuid.clone()], unfinished).await?;
        super::runs::record_stopped(&txn, principal, &stopped).await?;
        let activity = Activity::new(
            &queue.organization_uuid,
            principal,
            action::DELETED,
            "queue",
            name,
        )
        .subject_uuid(&queue.uuid)
        .parent("agent", agent);
        self.commit_with(txn, activity).await
    }

    /// How a queue stands.
    pub async fn get_queue_stats(
        &self,
        principal: &Principal,
        organization: &str,
        agent: &str,
        name: &str,
    ) -> Result<QueueStats, Error> {
        let standing = self
            .require(principal, organization, Permission::AgentsRead)
            .await?;
        let (_, queue) = self
            .agent_and_queue(&standing.organization_uuid, agent, name)
            .await?;
        self.queue_stats(&queue.uuid).await
    }
}

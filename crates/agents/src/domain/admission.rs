//! Admission: runs wait in queues; an agent leases runs from its queues and
//! reports them until a terminal status.
//!
//! - **Order.** [`Agents::acquire`] serves the agent's queues by descending
//!   priority; within a queue, `fifo` takes the oldest run, `fair` takes the
//!   oldest run of the project with the fewest runs leased or running in
//!   that queue (so that one project cannot starve the others).
//! - **Limits.** Never more leased-or-running runs in a queue than its
//!   `concurrency` (0: no limit), and never more of its `resource` held by
//!   them than its `quota` (0: no quota): the next run in order that does
//!   not fit waits, and the runs behind it wait with it, so that a large run
//!   is not starved by smaller ones.
//! - **Exclusivity.** Acquiring a queue takes its row lock first (a no-op
//!   write): acquirers of one queue go one at a time, and a run is leased
//!   with a guarded update (`WHERE status = 'queued'`), so no run is ever
//!   handed to two agents.
//! - **Leases.** A lease ends at its expiry unless renewed; an expired
//!   lease puts its run back in the queue (the next acquirer of the queue
//!   does it, in its transaction, and the service's sweeper every second,
//!   [`Agents::expire_lapsed_leases`], whether or not an agent acquires —
//!   the agent may be gone for good), or fails it after
//!   its `max_attempts` leases ([`DEFAULT_MAX_ATTEMPTS`] unless the service
//!   is configured otherwise). Every change commits before it is answered:
//!   a run accepted is never lost when an agent or the service dies.

use std::time::Duration;

use orgplane_platform::{Error, time::now_micros};
use orgplane_storage::{
    group_commit::MAX_BATCH,
    statement_shapes::{padded_in_list, power_of_two_chunks},
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, IntoActiveModel,
    Iterable, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Statement, TransactionTrait,
    UpdateMany,
    sea_query::{Expr, ExprTrait, LockType},
};

use super::Agents;
use crate::storage::{queues, runs};

/// Waiting for an agent.
pub const QUEUED: &str = "queued";
/// Handed to an agent, not yet running.
pub const LEASED: &str = "leased";
/// Running on an agent.
pub const RUNNING: &str = "running";
/// Cancellation asked; the agent has not confirmed.
pub const STOPPING: &str = "stopping";
/// Finished well.
pub const SUCCEEDED: &str = "succeeded";
/// Finished badly (or leased too often).
pub const FAILED: &str = "failed";
/// Stopped by a cancellation.
pub const STOPPED: &str = "stopped";
/// Statuses that hold a slot of the queue's concurrency.
pub const ACTIVE: &[&str] = &[LEASED, RUNNING, STOPPING];
/// Statuses a run ends in.
pub const TERMINAL: &[&str] = &[SUCCEEDED, FAILED, STOPPED];
/// Every status, in the order of a run's life.
pub const STATUSES: &[&str] = &[
    QUEUED, LEASED, RUNNING, STOPPING, SUCCEEDED, FAILED, STOPPED,
];

/// Leases a run gets before an expiry fails it instead of requeuing it,
/// unless configured otherwise ([`Agents::with_max_attempts`]).
pub const DEFAULT_MAX_ATTEMPTS: i32 = 3;
/// Longest lease an agent may ask for.
pub const MAX_LEASE: Duration = Duration::from_secs(3600);
/// How often the sweeper looks for lapsed leases.
pub const LEASE_SWEEP_INTERVAL: Duration = Duration::from_secs(1);
/// Most queues one sweep visits (the next sweep goes on).
const SWEEP_QUEUES: u64 = 100;
/// How often [`Agents::report_run_counts`] counts.
pub const RUN_COUNT_INTERVAL: Duration = Duration::from_secs(10);

/// How a queue stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Waiting.
    pub queued: u64,
    /// Leased, not yet running.
    pub leased: u64,
    /// Running (or stopping).
    pub running: u64,
    /// Succeeded, failed or stopped.
    pub done: u64,
    /// How long the oldest waiting run has waited.
    pub oldest_wait: Option<Duration>,
}

/// A run to submit, routed already.
#[derive(Debug, Clone)]
pub struct NewRun {
    /// The organization.
    pub organization_uuid: String,
    /// Project slug.
    pub project: String,
    /// The queue.
    pub queue_uuid: String,
    /// Display name.
    pub name: String,
    /// Specification, JSON.
    pub spec: serde_json::Value,
    /// Who submits.
    pub submitter: String,
    /// How much of the queue's resource it holds while active.
    pub demand: f64,
}

/// The agent that holds (or claims to hold) a run's lease.
#[derive(Debug, Clone, Copy)]
pub struct Holder<'a> {
    /// Its organization: runs of others do not exist for it.
    pub organization_uuid: &'a str,
    /// The agent.
    pub agent_uuid: &'a str,
}

fn lease_expiry(now: i64, lease: Duration) -> Result<i64, Error> {
    if lease.is_zero() || lease > MAX_LEASE {
        return Err(Error::invalid(
            "lease_duration",
            "must be more than 0 and at most an hour",
        ));
    }
    Ok(now + lease.as_micros() as i64)
}

/// `update` that also ends the run's lease.
fn without_lease(update: UpdateMany<runs::Entity>) -> UpdateMany<runs::Entity> {
    update
        .col_expr(runs::Column::LeaseId, Expr::value(Option::<String>::None))
        .col_expr(
            runs::Column::LeaseAgentUuid,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            runs::Column::LeaseExpireTime,
            Expr::value(Option::<i64>::None),
        )
}

/// Takes `queue`'s row lock for the rest of `txn`.
async fn lock_queue(txn: &DatabaseTransaction, queue_uuid: &str) -> Result<(), Error> {
    queues::Entity::update_many()
        .col_expr(queues::Column::Version, Expr::col(queues::Column::Version))
        .filter(queues::Column::Uuid.eq(queue_uuid))
        .exec(txn)
        .await?;
    Ok(())
}

/// What [`expire_leases`] did to a queue's lapsed leases.
#[derive(Debug, Clone, Copy)]
struct Expired {
    failed: u64,
    requeued: u64,
    stopped: u64,
}

impl Expired {
    /// Counts them in `orgplane_run_leases_expired_total{outcome}`, once
    /// their transaction committed.
    fn record(self) {
        for (outcome, n) in [
            ("failed", self.failed),
            ("requeued", self.requeued),
            ("stopped", self.stopped),
        ] {
            if n > 0 {
                metrics::counter!("orgplane_run_leases_expired_total", "outcome" => outcome)
                    .increment(n);
            }
        }
    }
}

/// Requeues the runs of `queue` whose lease expired before `now` (failing
/// those leased `max_attempts` times); call with the queue locked.
async fn expire_leases(
    txn: &DatabaseTransaction,
    queue_uuid: &str,
    now: i64,
    max_attempts: i32,
) -> Result<Expired, Error> {
    let expired = || {
        runs::Entity::update_many()
            .filter(runs::Column::QueueUuid.eq(queue_uuid))
            .filter(runs::Column::Status.is_in([LEASED, RUNNING]))
            .filter(runs::Column::LeaseExpireTime.lt(now))
    };
    let failed = without_lease(expired())
        .col_expr(runs::Column::Status, Expr::value(FAILED))
        .col_expr(
            runs::Column::Message,
            Expr::value(format!("its lease expired {max_attempts} times")),
        )
        .col_expr(runs::Column::UpdateTime, Expr::value(now))
        .filter(runs::Column::Attempts.gte(max_attempts))
        .exec(txn)
        .await?
        .rows_affected;
    let requeued = without_lease(expired())
        .col_expr(runs::Column::Status, Expr::value(QUEUED))
        .col_expr(runs::Column::Message, Expr::value("its lease expired"))
        .col_expr(runs::Column::UpdateTime, Expr::value(now))
        .exec(txn)
        .await?
        .rows_affected;
    // A stopping run whose agent is gone is stopped.
    let stopped = without_lease(runs::Entity::update_many())
        .col_expr(runs::Column::Status, Expr::value(STOPPED))
        .col_expr(runs::Column::UpdateTime, Expr::value(now))
        .filter(runs::Column::QueueUuid.eq(queue_uuid))
        .filter(runs::Column::Status.eq(STOPPING))
        .filter(runs::Column::LeaseExpireTime.lt(now))
        .exec(txn)
        .await?
        .rows_affected;
    Ok(Expired {
        failed,
        requeued,
        stopped,
    })
}

/// What a deletion of queues does with their unfinished runs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Unfinished {
    /// Refuse the deletion with `FAILED_PRECONDITION` and this reason.
    Refuse(&'static str),
    /// Stop them, with this message.
    Stop(&'static str),
}

/// Settles the runs queued or active on `queue_uuids` in `txn`, a
/// transaction that has already deleted those queues: deleting first takes
/// the queues' row locks, so a concurrent submission either committed its
/// runs before (and they are counted here) or finds its queue gone
/// ([`live_queues`]). Returns the runs stopped.
pub(crate) async fn settle_unfinished(
    txn: &DatabaseTransaction,
    queue_uuids: Vec<String>,
    unfinished: Unfinished,
) -> Result<Vec<runs::Model>, Error> {
    let statuses = || [QUEUED].into_iter().chain(ACTIVE.iter().copied());
    match unfinished {
        Unfinished::Refuse(reason) => {
            let busy = runs::Entity::find()
                .filter(runs::Column::QueueUuid.is_in(queue_uuids))
                .filter(runs::Column::Status.is_in(statuses()))
                .count(txn)
                .await?;
            if busy > 0 {
                return Err(Error::precondition(
                    reason,
                    format!(
                        "{busy} run(s) wait or run there: cancel or finish them first, or delete with force"
                    ),
                ));
            }
            Ok(Vec::new())
        }
        Unfinished::Stop(message) => Ok(without_lease(runs::Entity::update_many())
            .col_expr(runs::Column::Status, Expr::value(STOPPED))
            .col_expr(runs::Column::Message, Expr::value(message))
            .col_expr(runs::Column::UpdateTime, Expr::value(now_micros()))
            .filter(runs::Column::QueueUuid.is_in(queue_uuids))
            .filter(runs::Column::Status.is_in(statuses()))
            .exec_with_returning(txn)
            .await?),
    }
}

/// Of `queue_uuids`, those that still exist, read in `txn` after it wrote
/// runs into them, holding a key-share lock on each until it commits (on
/// PostgreSQL; SQLite's one writer already excludes a concurrent deletion):
/// a queue deleted meanwhile is missing here, and the caller takes its
/// runs back out.
pub(crate) async fn live_queues(
    txn: &DatabaseTransaction,
    queue_uuids: Vec<String>,
) -> Result<Vec<String>, Error> {
    Ok(queues::Entity::find()
        .select_only()
        .column(queues::Column::Uuid)
        .filter(queues::Column::Uuid.is_in(padded_in_list(queue_uuids)))
        .lock(LockType::KeyShare)
        .into_tuple()
        .all(txn)
        .await?)
}

/// Whether a run waits in `queue_uuid`, or holds a lease lapsed by `now`
/// (which an acquisition puts back): two probes of the queue's
/// `(queue_uuid, status, uuid)` index, the second only when none waits. (One
/// statement with `status = 'queued' OR (active AND lapsed)` cannot seek that
/// index on PostgreSQL: it read every run the queue ever had.)
async fn has_work(db: &impl ConnectionTrait, queue_uuid: &str, now: i64) -> Result<bool, Error> {
    let any = |runs: sea_orm::Select<runs::Entity>| {
        runs.select_only()
            .column(runs::Column::Uuid)
            .filter(runs::Column::QueueUuid.eq(queue_uuid))
            .limit(1)
            .into_tuple::<String>()
            .one(db)
    };
    if any(runs::Entity::find().filter(runs::Column::Status.eq(QUEUED)))
        .await?
        .is_some()
    {
        return Ok(true);
    }
    let lapsed = runs::Entity::find()
        .filter(runs::Column::Status.is_in(ACTIVE.to_vec()))
        .filter(runs::Column::LeaseExpireTime.lt(now));
    Ok(any(lapsed).await?.is_some())
}

/// How much of `queue`'s resource its active runs hold.
async fn held_quota(txn: &DatabaseTransaction, queue_uuid: &str) -> Result<f64, Error> {
    let held: Option<Option<f64>> = runs::Entity::find()
        .select_only()
        .column_as(runs::Column::Demand.sum(), "held")
        .filter(runs::Column::QueueUuid.eq(queue_uuid))
        .filter(runs::Column::Status.is_in(ACTIVE.to_vec()))
        .into_tuple()
        .one(txn)
        .await?;
    Ok(held.flatten().unwrap_or(0.0))
}

/// The next runs of a locked `queue`, at most `n`, in its strategy's order.
async fn pick(
    txn: &DatabaseTransaction,
    queue: &queues::Model,
    n: u64,
) -> Result<Vec<runs::Model>, Error> {
    let queued = || {
        runs::Entity::find()
            .filter(runs::Column::QueueUuid.eq(queue.uuid.as_str()))
            .filter(runs::Column::Status.eq(QUEUED))
    };
    if queue.strategy != "fair" {
        return Ok(queued()
            .order_by_asc(runs::Column::Uuid)
            .limit(n)
            .all(txn)
            .await?);
    }
    // Fair: round-robin over projects, fewest active runs first.
    let mut active: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    let rows: Vec<(String, i64)> = runs::Entity::find()
        .select_only()
        .column(runs::Column::Project)
        .column_as(runs::Column::Uuid.count(), "n")
        .filter(runs::Column::QueueUuid.eq(queue.uuid.as_str()))
        .filter(runs::Column::Status.is_in(ACTIVE.to_vec()))
        .group_by(runs::Column::Project)
        .into_tuple()
        .all(txn)
        .await?;
    for (project, count) in rows {
        active.insert(project, count as u64);
    }
    let projects: Vec<String> = queued()
        .select_only()
        .column(runs::Column::Project)
        .distinct()
        .into_tuple()
        .all(txn)
        .await?;
    let mut waiting: std::collections::HashMap<String, std::collections::VecDeque<runs::Model>> =
        std::collections::HashMap::new();
    for project in projects {
        let oldest = queued()
            .filter(runs::Column::Project.eq(project.as_str()))
            .order_by_asc(runs::Column::Uuid)
            .limit(n)
            .all(txn)
            .await?;
        waiting.insert(project, oldest.into());
    }
    let mut picked = Vec::new();
    while (picked.len() as u64) < n {
        let next = waiting
            .iter()
            .filter_map(|(project, runs)| {
                let oldest = runs.front()?;
                Some((
                    active.get(project).copied().unwrap_or(0),
                    oldest.uuid.clone(),
                    project.clone(),
                ))
            })
            .min();
        let Some((_, _, project)) = next else { break };
        let run = waiting
            .get_mut(&project)
            .and_then(|runs| runs.pop_front())
            .expect("the chosen project has a run");
        *active.entry(project).or_insert(0) += 1;
        picked.push(run);
    }
    Ok(picked)
}

/// A routed run as it is stored, `queued`.
pub(crate) fn queued_run(new: NewRun) -> runs::Model {
    let now = now_micros();
    runs::Model {
        uuid: uuid::Uuid::now_v7().to_string(),
        organization_uuid: new.organization_uuid,
        project: new.project,
        queue_uuid: new.queue_uuid,
        status: QUEUED.to_owned(),
        name: new.name,
        spec: new.spec.to_string(),
        attempts: 0,
        submitter: new.submitter,
        lease_id: None,
        lease_agent_uuid: None,
        lease_expire_time: None,
        message: String::new(),
        demand: new.demand,
        create_time: now,
        update_time: now,
    }
}

impl Agents {
    /// Stores a routed run, `queued`, on its own: the engine without
    /// routing, authorization or activity (`SubmitRun` adds them, group
    /// committed).
    pub async fn enqueue(&self, new: NewRun) -> Result<runs::Model, Error> {
        let run = queued_run(new);
        runs::Entity::insert(run.clone().into_active_model())
            .exec_without_returning(&self.db)
            .await?;
        Ok(run)
    }

    /// Records the status an agent reports, on its own (see
    /// [`Agents::report_all`]; `ReportRunStatus` adds the activity, group
    /// committed).
    pub async fn report(
        &self,
        holder: Holder<'_>,
        run_uuid: &str,
        lease_id: &str,
        status: &str,
        message: &str,
    ) -> Result<runs::Model, Error> {
        let report = StatusReport {
            holder,
            run_uuid,
            lease_id,
            status,
            message,
        };
        self.report_all(&[report])
            .await?
            .pop()
            .expect("one result per report")
    }

    /// Records the statuses agents report, in one transaction, in their
    /// order (see [`report_in`]): one result per report, `Err` for one its
    /// rules refuse; an `Err` of the whole call is a storage failure, and
    /// then nothing was written.
    pub async fn report_all(
        &self,
        reports: &[StatusReport<'_>],
    ) -> Result<Vec<Result<runs::Model, Error>>, Error> {
        let _turn = orgplane_storage::db::sqlite_write_turn(&self.db).await;
        let txn = self.db.begin().await?;
        let results = report_in(&txn, reports).await?;
        txn.commit().await?;
        Ok(results)
    }
}

impl Agents {
    /// Leases up to `max_runs` runs of the agent's queues for `lease`.
    pub async fn acquire(
        &self,
        agent_uuid: &str,
        max_runs: u64,
        lease: Duration,
    ) -> Result<Vec<runs::Model>, Error> {
        let now = now_micros();
        let expire = lease_expiry(now, lease)?;
        if max_runs == 0 || max_runs > 1000 {
            return Err(Error::invalid("max_runs", "must be 1 to 1000"));
        }
        let agent_queues = queues::Entity::find()
            .filter(queues::Column::AgentUuid.eq(agent_uuid))
            .order_by_desc(queues::Column::Priority)
            .order_by_asc(queues::Column::Uuid)
            .all(&self.db)
            .await?;
        let mut leased = Vec::new();
        for queue in agent_queues {
            let wanted = max_runs - leased.len() as u64;
            if wanted == 0 {
                break;
            }
            // A queue with nothing to hand out or put back (an agent's
            // unused `default`, say) costs one indexed read, not a locked
            // transaction.
            if !has_work(&self.db, &queue.uuid, now).await? {
                continue;
            }
            leased.extend(
                self.acquire_from(&queue, agent_uuid, wanted, now, expire)
                    .await?,
            );
        }
        Ok(leased)
    }

    /// Leases up to `wanted` runs of one queue, in one transaction.
    /// Puts back (or fails) the runs whose lease lapsed, queue by queue
    /// under each queue's lock, as an acquisition would; returns how many
    /// queues it swept.
    pub async fn expire_lapsed_leases(&self) -> Result<u64, Error> {
        let now = now_micros();
        let lapsed: Vec<String> = runs::Entity::find()
            .select_only()
            .column(runs::Column::QueueUuid)
            .distinct()
            .filter(runs::Column::LeaseExpireTime.lt(now))
            .filter(runs::Column::Status.is_in(ACTIVE.to_vec()))
            .limit(SWEEP_QUEUES)
            .into_tuple()
            .all(&self.db)
            .await?;
        for queue_uuid in &lapsed {
            let txn = self.db.begin().await?;
            lock_queue(&txn, queue_uuid).await?;
            let expired = expire_leases(&txn, queue_uuid, now, self.max_attempts).await?;
            txn.commit().await?;
            expired.record();
        }
        Ok(lapsed.len() as u64)
    }

    async fn acquire_from(
        &self,
        queue: &queues::Model,
        agent_uuid: &str,
        wanted: u64,
        now: i64,
        expire: i64,
    ) -> Result<Vec<runs::Model>, Error> {
        let _turn = orgplane_storage::db::sqlite_write_turn(&self.db).await;
        let txn = self.db.begin().await?;
        lock_queue(&txn, &queue.uuid).await?;
        let expired = expire_leases(&txn, &queue.uuid, now, self.max_attempts).await?;
        let room = if queue.concurrency > 0 {
            let active = runs::Entity::find()
                .filter(runs::Column::QueueUuid.eq(queue.uuid.as_str()))
                .filter(runs::Column::Status.is_in(ACTIVE.to_vec()))
                .count(&txn)
                .await?;
            (queue.concurrency as u64).saturating_sub(active)
        } else {
            wanted
        };
        let mut picked = pick(&txn, queue, Ord::min(wanted, room)).await?;
        if queue.quota > 0.0 {
            let held = held_quota(&txn, &queue.uuid).await?;
            let fits = picked
                .iter()
                .scan(held, |total, run| {
                    *total += run.demand;
                    Some(*total <= queue.quota + f64::EPSILON)
                })
                .take_while(|fits| *fits)
                .count();
            picked.truncate(fits);
        }
        if picked.is_empty() {
            txn.commit().await?;
            expired.record();
            return Ok(Vec::new());
        }
        // One lease per acquisition: the runs it leases share its id, and
        // each run's lease is still its own (checked with the run's UUID
        // and the agent); leasing a run again gives it a new one.
        let lease_id = uuid::Uuid::now_v7().to_string();
        let mut leased = runs::Entity::update_many()
            .col_expr(runs::Column::Status, Expr::value(LEASED))
            .col_expr(runs::Column::LeaseId, Expr::value(lease_id))
            .col_expr(runs::Column::LeaseAgentUuid, Expr::value(agent_uuid))
            .col_expr(runs::Column::LeaseExpireTime, Expr::value(expire))
            .col_expr(
                runs::Column::Attempts,
                Expr::col(runs::Column::Attempts).add(1),
            )
            .col_expr(runs::Column::UpdateTime, Expr::value(now))
            // The queue too: the `(queue_uuid, status, uuid)` index then
            // finds each run (without it PostgreSQL, its statistics behind
            // a fast-growing table, read a whole index for the status).
            .filter(runs::Column::QueueUuid.eq(queue.uuid.as_str()))
            .filter(runs::Column::Status.eq(QUEUED))
            .filter(runs::Column::Uuid.is_in(padded_in_list(
                picked.iter().map(|run| run.uuid.as_str()).collect(),
            )))
            .exec_with_returning(&txn)
            .await?;
        // In the order picked (RETURNING keeps none).
        let order: std::collections::HashMap<&str, usize> = picked
            .iter()
            .enumerate()
            .map(|(i, run)| (run.uuid.as_str(), i))
            .collect();
        leased.sort_by_key(|run| order.get(run.uuid.as_str()).copied());
        txn.commit().await?;
        expired.record();
        metrics::counter!("orgplane_runs_leased_total").increment(leased.len() as u64);
        Ok(leased)
    }

    /// Extends a lease by `lease` from now.
    pub async fn renew(
        &self,
        holder: Holder<'_>,
        run_uuid: &str,
        lease_id: &str,
        lease: Duration,
    ) -> Result<runs::Model, Error> {
        let now = now_micros();
        let expire = lease_expiry(now, lease)?;
        let run = leased_run(&self.db, holder, run_uuid, lease_id).await?;
        let done = runs::Entity::update_many()
            .col_expr(runs::Column::LeaseExpireTime, Expr::value(expire))
            .filter(runs::Column::Uuid.eq(run_uuid))
            .filter(runs::Column::LeaseId.eq(lease_id))
            .filter(runs::Column::LeaseExpireTime.gt(now))
            .exec(&self.db)
            .await?;
        if done.rows_affected != 1 {
            return Err(Error::precondition(
                "LEASE_LOST",
                "the lease ended meanwhile",
            ));
        }
        Ok(runs::Model {
            lease_expire_time: Some(expire),
            ..run
        })
    }

    /// Cancels a run: a queued one stops at once; a leased or running one
    /// becomes `stopping` until its agent reports it stopped (or its lease
    /// expires).
    pub async fn cancel(&self, run_uuid: &str) -> Result<runs::Model, Error> {
        cancel_in(&self.db, run_uuid).await
    }

    /// What an agent must act on: runs leased to it not yet running, and
    /// runs whose cancellation it must carry out.
    pub async fn agent_state(
        &self,
        agent_uuid: &str,
    ) -> Result<(Vec<runs::Model>, Vec<runs::Model>), Error> {
        let mine = |status: &str| {
            runs::Entity::find()
                .filter(runs::Column::LeaseAgentUuid.eq(agent_uuid))
                .filter(runs::Column::Status.eq(status))
                .order_by_asc(runs::Column::Uuid)
                .limit(1000)
                .all(&self.db)
        };
        Ok((mine(LEASED).await?, mine(STOPPING).await?))
    }

    /// Reports how many runs wait and run in every queue, every
    /// [`RUN_COUNT_INTERVAL`] until `stop`: the gauge
    /// `orgplane_runs{status}` for `queued`, `leased` and `running`
    /// (stopping ones included). Every replica reports the one database's
    /// figure: aggregate them with `max`, not `sum`. (One grouped count;
    /// without an index on the status alone it reads the runs table.)
    pub async fn report_run_counts(self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        let mut ticks = tokio::time::interval(RUN_COUNT_INTERVAL);
        loop {
            tokio::select! {
                () = &mut stop => return,
                _ = ticks.tick() => {}
            }
            let counts: Result<Vec<(String, i64)>, _> = runs::Entity::find()
                .select_only()
                .column(runs::Column::Status)
                .column_as(runs::Column::Uuid.count(), "n")
                .filter(runs::Column::Status.is_in(ACTIVE.iter().copied().chain([QUEUED])))
                .group_by(runs::Column::Status)
                .into_tuple()
                .all(&self.db)
                .await;
            let Ok(counts) = counts else {
                continue;
            };
            let of = |statuses: &[&str]| {
                counts
                    .iter()
                    .filter(|(status, _)| statuses.contains(&status.as_str()))
                    .map(|(_, n)| *n as f64)
                    .sum::<f64>()
            };
            metrics::gauge!("orgplane_runs", "status" => "queued").set(of(&[QUEUED]));
            metrics::gauge!("orgplane_runs", "status" => "leased").set(of(&[LEASED]));
            metrics::gauge!("orgplane_runs", "status" => "running").set(of(&[RUNNING, STOPPING]));
        }
    }

    /// Counts of a queue's runs by status, and its oldest wait.
    pub async fn queue_stats(&self, queue_uuid: &str) -> Result<QueueStats, Error> {
        let counts: Vec<(String, i64)> = runs::Entity::find()
            .select_only()
            .column(runs::Column::Status)
            .column_as(runs::Column::Uuid.count(), "n")
            .filter(runs::Column::QueueUuid.eq(queue_uuid))
            .group_by(runs::Column::Status)
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut stats = QueueStats::default();
        for (status, n) in counts {
            let n = n as u64;
            match status.as_str() {
                QUEUED => stats.queued += n,
                LEASED => stats.leased += n,
                RUNNING | STOPPING => stats.running += n,
                _ => stats.done += n,
            }
        }
        let oldest = runs::Entity::find()
            .filter(runs::Column::QueueUuid.eq(queue_uuid))
            .filter(runs::Column::Status.eq(QUEUED))
            .order_by_asc(runs::Column::Uuid)
            .one(&self.db)
            .await?;
        stats.oldest_wait = oldest.map(|r| {
            Duration::from_micros(Ord::max(now_micros().saturating_sub(r.create_time), 0) as u64)
        });
        Ok(stats)
    }
}

/// The run `run_uuid` if `lease_id` is its current lease, held by
/// `holder`.
async fn leased_run(
    db: &impl ConnectionTrait,
    holder: Holder<'_>,
    run_uuid: &str,
    lease_id: &str,
) -> Result<runs::Model, Error> {
    let run = runs::Entity::find_by_id(run_uuid.to_owned())
        .one(db)
        .await?
        .filter(|run| run.organization_uuid == holder.organization_uuid)
        .ok_or_else(|| Error::not_found("run", run_uuid))?;
    let expired = run.lease_expire_time.is_some_and(|t| t <= now_micros());
    if run.lease_id.as_deref() != Some(lease_id)
        || run.lease_agent_uuid.as_deref() != Some(holder.agent_uuid)
        || expired
    {
        return Err(Error::precondition(
            "LEASE_LOST",
            "the lease is not this run's current lease (it expired, or the run was re-leased)",
        ));
    }
    Ok(run)
}

/// A status an agent reports for a run it holds.
#[derive(Debug, Clone, Copy)]
pub struct StatusReport<'a> {
    /// The agent.
    pub holder: Holder<'a>,
    /// The run.
    pub run_uuid: &'a str,
    /// Its lease, as the agent knows it.
    pub lease_id: &'a str,
    /// `running`, or a terminal status (which ends the lease and frees the
    /// slot).
    pub status: &'a str,
    /// Why, for people.
    pub message: &'a str,
}

/// Records the statuses agents report, in `db` (a transaction, with their
/// activities), in their order: one result per report, `Err` for one its
/// rules refuse (it writes nothing); an `Err` of the whole call is a
/// storage failure (roll the transaction back).
///
/// The writes come first, their conditions checking each lease: on SQLite
/// a transaction that reads before it writes fails (SQLITE_BUSY_SNAPSHOT)
/// when another write commits in between, and reading on a second
/// connection while the caller's transaction holds one deadlocks once every
/// pooled connection does so. Reports of distinct runs are one statement
/// per chunk ([`report_statement`]); a run reported twice is written in a
/// later round, after its first report, as if one by one.
pub(crate) async fn report_in(
    db: &impl ConnectionTrait,
    reports: &[StatusReport<'_>],
) -> Result<Vec<Result<runs::Model, Error>>, Error> {
    let mut results: Vec<Option<Result<runs::Model, Error>>> = std::iter::repeat_with(|| None)
        .take(reports.len())
        .collect();
    let mut pending: Vec<usize> = (0..reports.len()).collect();
    while !pending.is_empty() {
        let mut seen = std::collections::HashSet::new();
        let (round, later): (Vec<usize>, Vec<usize>) = pending
            .into_iter()
            .partition(|&i| seen.insert(reports[i].run_uuid));
        pending = later;
        let (valid, invalid): (Vec<usize>, Vec<usize>) = round
            .iter()
            .partition(|&&i| is_reportable(reports[i].status));
        for i in invalid {
            results[i] = Some(Err(Error::invalid(
                "status",
                "must be running, succeeded, failed or stopped",
            )));
        }
        let now = now_micros();
        let mut written = std::collections::HashMap::new();
        // At most `MAX_BATCH` reports a statement (within both databases'
        // limits on bound values), in few shapes.
        let chunks = valid
            .chunks(MAX_BATCH)
            .flat_map(|indices| power_of_two_chunks(indices.to_vec()));
        for chunk in chunks {
            let chunk: Vec<&StatusReport> = chunk.iter().map(|&i| &reports[i]).collect();
            let statement = report_statement(db.get_database_backend(), now, &chunk);
            for run in runs::Entity::find().from_raw_sql(statement).all(db).await? {
                written.insert(run.uuid.clone(), run);
            }
        }
        for i in valid {
            let report = &reports[i];
            results[i] = Some(match written.remove(report.run_uuid) {
                Some(run) => Ok(run),
                // Why not: no such run or not this lease, else not leased.
                None => match leased_run(db, report.holder, report.run_uuid, report.lease_id).await
                {
                    Ok(run) => Err(Error::precondition(
                        "NOT_LEASED",
                        format!("a {} run does not start", run.status),
                    )),
                    Err(Error::Internal(error)) => return Err(Error::Internal(error)),
                    Err(refused) => Err(refused),
                },
            });
        }
    }
    Ok(results
        .into_iter()
        .map(|result| result.expect("every report is answered in a round"))
        .collect())
}

fn is_reportable(status: &str) -> bool {
    status == RUNNING || TERMINAL.contains(&status)
}

/// One statement for reports of distinct runs: each run takes its report's
/// status and message if its lease is the report's, held by the report's
/// agent and not expired (and, to become `running`, if it is `leased`); a
/// terminal status also ends the lease. Returns the runs written.
///
/// One text for both databases: its numbered placeholders (`$1`, a value
/// used twice named twice) are PostgreSQL's, and sqlx binds them on SQLite
/// too; SQLite runs `UPDATE … FROM` since 3.33 (the bundled one is newer).
fn report_statement(backend: DbBackend, now: i64, reports: &[&StatusReport]) -> Statement {
    let mut values: Vec<sea_orm::Value> = Vec::with_capacity(reports.len() * 6 + 3);
    let mut mark = |value: sea_orm::Value| {
        values.push(value);
        format!("${}", values.len())
    };
    let rows: Vec<String> = reports
        .iter()
        .map(|r| {
            let row = [
                r.run_uuid,
                r.holder.organization_uuid,
                r.lease_id,
                r.holder.agent_uuid,
                r.status,
                r.message,
            ]
            .map(|v| mark(v.into()));
            format!("({})", row.join(", "))
        })
        .collect();
    let rows = rows.join(", ");
    let (now, running, leased) = (mark(now.into()), mark(RUNNING.into()), mark(LEASED.into()));
    let columns: Vec<String> = runs::Column::iter()
        .map(|column| format!("\"{}\"", sea_orm::IdenStatic::as_str(&column)))
        .collect();
    let sql = format!(
        "WITH report (r_uuid, r_organization, r_lease, r_agent, r_status, r_message) \
         AS (VALUES {rows}) \
         UPDATE runs SET status = r_status, message = r_message, update_time = {now}, \
         lease_id = CASE WHEN r_status = {running} THEN lease_id END, \
         lease_agent_uuid = CASE WHEN r_status = {running} THEN lease_agent_uuid END, \
         lease_expire_time = CASE WHEN r_status = {running} THEN lease_expire_time END \
         FROM report \
         WHERE uuid = r_uuid AND organization_uuid = r_organization \
         AND lease_id = r_lease AND lease_agent_uuid = r_agent \
         AND lease_expire_time > {now} \
         AND (r_status <> {running} OR status = {leased}) \
         RETURNING {}",
        columns.join(", "),
    );
    Statement::from_sql_and_values(backend, sql, values)
}

/// Cancels a run in `db` (see [`Agents::cancel`]).
pub(crate) async fn cancel_in(
    db: &impl ConnectionTrait,
    run_uuid: &str,
) -> Result<runs::Model, Error> {
    let now = now_micros();
    let stop_now = runs::Entity::update_many()
        .col_expr(runs::Column::Status, Expr::value(STOPPED))
        .col_expr(runs::Column::Message, Expr::value("cancelled"))
        .col_expr(runs::Column::UpdateTime, Expr::value(now))
        .filter(runs::Column::Uuid.eq(run_uuid))
        .filter(runs::Column::Status.eq(QUEUED))
        .exec(db)
        .await?;
    if stop_now.rows_affected == 0 {
        runs::Entity::update_many()
            .col_expr(runs::Column::Status, Expr::value(STOPPING))
            .col_expr(runs::Column::Message, Expr::value("cancelled"))
            .col_expr(runs::Column::UpdateTime, Expr::value(now))
            .filter(runs::Column::Uuid.eq(run_uuid))
            .filter(runs::Column::Status.is_in([LEASED, RUNNING]))
            .exec(db)
            .await?;
    }
    runs::Entity::find_by_id(run_uuid.to_owned())
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("run", run_uuid))
}

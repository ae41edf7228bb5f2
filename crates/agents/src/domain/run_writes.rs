//! The run cycle's hot writes — a run submitted, a run reported — group
//! committed ([`orgplane_storage::group_commit`]): at a run admission rate
//! of thousands a second, one transaction per call would bound the service
//! by commits per second (`BENCHMARKS.md`). Each write keeps its activity in
//! the same transaction, as every change here does.

use std::collections::HashSet;

use orgplane_platform::{Error, principal::Principal};
use orgplane_storage::{
    activity,
    group_commit::{BatchWrite, GroupCommit},
    statement_shapes::{padded_in_list, power_of_two_chunks},
};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, IntoActiveModel, QueryFilter,
};

use super::{
    admission::{self, Holder, NewRun, StatusReport},
    runs::run_activity,
};
use crate::storage::runs;

/// A routed run to store, `queued`.
#[derive(Debug)]
pub(crate) struct Enqueue {
    pub run: NewRun,
    /// Who submits it.
    pub actor: Principal,
    /// The queue, as `agent/queue` (the activity's parent).
    pub queue: String,
}

/// An agent's report of a run's status.
#[derive(Debug)]
pub(crate) struct Report {
    /// The agent's organization.
    pub organization_uuid: String,
    /// The agent.
    pub agent_uuid: String,
    pub run_uuid: String,
    pub lease_id: String,
    pub status: String,
    pub message: String,
    /// The agent as a principal (the activity's actor).
    pub actor: Principal,
}

/// Stores submitted runs: a statement for the runs and one for their
/// activities per chunk (see `orgplane_storage::statement_shapes`).
#[derive(Debug)]
pub(crate) struct Submissions;

impl BatchWrite for Submissions {
    type Item = Enqueue;
    type Output = runs::Model;

    async fn apply(
        &self,
        txn: &DatabaseTransaction,
        items: Vec<Enqueue>,
    ) -> Result<Vec<Result<runs::Model, Error>>, Error> {
        let mut stored = Vec::with_capacity(items.len());
        let mut queue_names = Vec::with_capacity(items.len());
        for item in items {
            stored.push((admission::queued_run(item.run), item.actor));
            queue_names.push(item.queue);
        }
        for chunk in power_of_two_chunks(stored.iter().map(|(run, _)| run.clone()).collect()) {
            runs::Entity::insert_many(chunk.into_iter().map(IntoActiveModel::into_active_model))
                .exec_without_returning(txn)
                .await?;
        }
        // Routed before this transaction, a run may name a queue deleted
        // since: checked after the insert (SQLite's write lock is taken,
        // PostgreSQL's key-share locks are taken here), such runs are taken
        // back out and answered `NOT_FOUND`.
        let mut queue_uuids: Vec<String> = stored
            .iter()
            .map(|(run, _)| run.queue_uuid.clone())
            .collect();
        queue_uuids.sort_unstable();
        queue_uuids.dedup();
        let live: HashSet<String> = admission::live_queues(txn, queue_uuids)
            .await?
            .into_iter()
            .collect();
        let orphans: Vec<String> = stored
            .iter()
            .filter(|(run, _)| !live.contains(&run.queue_uuid))
            .map(|(run, _)| run.uuid.clone())
            .collect();
        if !orphans.is_empty() {
            runs::Entity::delete_many()
                .filter(runs::Column::Uuid.is_in(padded_in_list(orphans)))
                .exec(txn)
                .await?;
        }
        let mut activities = Vec::with_capacity(stored.len());
        let mut results = Vec::with_capacity(stored.len());
        for ((run, actor), queue) in stored.into_iter().zip(queue_names) {
            if live.contains(&run.queue_uuid) {
                activities.push(run_activity(&run, &actor, "submitted").parent("queue", &queue));
                results.push(Ok(run));
            } else {
                results.push(Err(Error::not_found("queue", queue)));
            }
        }
        activity::record_all(txn, activities).await?;
        Ok(results)
    }
}

/// Records agents' reports: one guarded update per chunk of runs
/// ([`admission::report_in`]), one statement for their activities. A
/// report its lease refuses writes nothing.
#[derive(Debug)]
pub(crate) struct Reports;

impl BatchWrite for Reports {
    type Item = Report;
    type Output = runs::Model;

    async fn apply(
        &self,
        txn: &DatabaseTransaction,
        items: Vec<Report>,
    ) -> Result<Vec<Result<runs::Model, Error>>, Error> {
        let reports: Vec<StatusReport> = items
            .iter()
            .map(|item| StatusReport {
                holder: Holder {
                    organization_uuid: &item.organization_uuid,
                    agent_uuid: &item.agent_uuid,
                },
                run_uuid: &item.run_uuid,
                lease_id: &item.lease_id,
                status: &item.status,
                message: &item.message,
            })
            .collect();
        let results = admission::report_in(txn, &reports).await?;
        let activities = items
            .iter()
            .zip(&results)
            .filter_map(|(item, result)| {
                let run = result.as_ref().ok()?;
                Some(
                    run_activity(run, &item.actor, &item.status).metadata(serde_json::json!({
                        "message": item.message,
                        "attempt": run.attempts,
                    })),
                )
            })
            .collect();
        activity::record_all(txn, activities).await?;
        Ok(results)
    }
}

/// The group commits of the run cycle.
#[derive(Debug, Clone)]
pub(crate) struct RunWrites {
    pub submissions: GroupCommit<Submissions>,
    pub reports: GroupCommit<Reports>,
}

impl RunWrites {
    pub fn new(db: &DatabaseConnection) -> Self {
        Self {
            submissions: GroupCommit::new(db.clone(), Submissions),
            reports: GroupCommit::new(db.clone(), Reports),
        }
    }
}

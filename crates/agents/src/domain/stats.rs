//! What the agents service holds of an organization, counted for its
//! statistics.

use std::collections::BTreeMap;

use orgplane_platform::{Error, time::DAY};
use sea_orm::{
    ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect, sea_query::Expr,
};

use super::{Agents, admission};
use crate::storage::{agents, queues, runs};

/// Runs submitted to one queue on one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueDay {
    /// `agent/queue`.
    pub queue: String,
    /// Start of the day (UTC, microseconds).
    pub day: i64,
    /// How many runs.
    pub runs: i64,
}

impl Agents {
    /// `agents`, `queues` (without a project) and `runs.<status>` of the
    /// organization (or one project), and runs submitted per queue per day
    /// in `[start, end)` — leaving out the runs of `hidden` projects
    /// (restricted away from the caller).
    pub async fn stats(
        &self,
        organization_uuid: &str,
        (project, hidden): (&str, &[String]),
        (start, end): (i64, i64),
    ) -> Result<(BTreeMap<String, i64>, Vec<QueueDay>), Error> {
        let mut counts = BTreeMap::new();
        if project.is_empty() {
            let agents = agents::Entity::find()
                .filter(agents::Column::OrganizationUuid.eq(organization_uuid))
                .count(&self.db)
                .await?;
            let queues = queues::Entity::find()
                .filter(queues::Column::OrganizationUuid.eq(organization_uuid))
                .count(&self.db)
                .await?;
            counts.insert("agents".to_owned(), agents as i64);
            counts.insert("queues".to_owned(), queues as i64);
        }
        let of_scope = || {
            let query =
                runs::Entity::find().filter(runs::Column::OrganizationUuid.eq(organization_uuid));
            if !project.is_empty() {
                query.filter(runs::Column::Project.eq(project))
            } else if !hidden.is_empty() {
                query.filter(runs::Column::Project.is_not_in(hidden.to_vec()))
            } else {
                query
            }
        };
        for status in admission::STATUSES {
            counts.insert(format!("runs.{status}"), 0);
        }
        let by_status: Vec<(String, i64)> = of_scope()
            .select_only()
            .column(runs::Column::Status)
            .column_as(runs::Column::Uuid.count(), "n")
            .group_by(runs::Column::Status)
            .into_tuple()
            .all(&self.db)
            .await?;
        for (status, n) in by_status {
            counts.insert(format!("runs.{status}"), n);
        }
        // The day as one literal expression: PostgreSQL matches the grouped
        // expression to the selected one only when they read the same
        // (bound parameters would differ).
        let day = Expr::cust(format!("create_time / {DAY}"));
        let per_day: Vec<(String, i64, i64)> = of_scope()
            .select_only()
            .column(runs::Column::QueueUuid)
            .column_as(day.clone(), "day")
            .column_as(runs::Column::Uuid.count(), "n")
            .filter(runs::Column::CreateTime.gte(start))
            .filter(runs::Column::CreateTime.lt(end))
            .group_by(runs::Column::QueueUuid)
            .group_by(day)
            .into_tuple()
            .all(&self.db)
            .await?;
        let queue_uuids: Vec<String> = per_day.iter().map(|(q, _, _)| q.clone()).collect();
        let labels = self.labels_of_queues(queue_uuids).await?;
        let mut series: Vec<QueueDay> = per_day
            .into_iter()
            .map(|(queue_uuid, day, n)| QueueDay {
                queue: labels
                    .get(&queue_uuid)
                    .map(|(agent, queue)| format!("{agent}/{queue}"))
                    .unwrap_or(queue_uuid),
                day: day * DAY,
                runs: n,
            })
            .collect();
        series.sort_by(|a, b| (&a.queue, a.day).cmp(&(&b.queue, b.day)));
        Ok((counts, series))
    }
}

//! Statistics of an organization or a project: counts now (members, teams,
//! projects here; models and components from the registry; agents, queues
//! and runs from the agents service) and daily series over a range
//! (activities from the store here, runs per queue from the agents service).

use std::{collections::BTreeMap, time::Duration};

use orgplane_platform::{
    Error,
    authz::Permission,
    principal::Principal,
    time::{DAY, MIN_TIMESTAMP_SECONDS, now_micros},
};
use orgplane_transport::peers::StatsPeers;
use sea_orm::{
    ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect, sea_query::Expr,
};

use super::{Organizations, hidden::Hidden};
use crate::storage::{activities, members, projects, teams};

/// The range when none is given: the last 30 days.
pub const DEFAULT_RANGE: Duration = Duration::from_secs(30 * 86_400);
/// The longest range.
pub const MAX_RANGE_DAYS: i64 = 366;

/// Counts and daily series.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Named counts, e.g. `members`, `runs.succeeded`.
    pub counts: BTreeMap<String, i64>,
    /// Named series, each one value per day of the range (from its first
    /// day's start, UTC).
    pub series: BTreeMap<String, Vec<(i64, i64)>>,
}

/// The range asked for as `[first day's start, end)`, checked. The times
/// come checked by `time::from_timestamp`; the arithmetic is checked too,
/// so no pair of times can wrap into a range of unbounded days.
fn range(start: Option<i64>, end: Option<i64>) -> Result<(i64, i64), Error> {
    let end = end.unwrap_or_else(now_micros);
    // The default start never precedes the earliest timestamp (the peers
    // asked for their part refuse it).
    let start = start.unwrap_or(
        end.saturating_sub(DEFAULT_RANGE.as_micros() as i64)
            .max(MIN_TIMESTAMP_SECONDS * 1_000_000),
    );
    if start >= end {
        return Err(Error::invalid("start_time", "must be before end_time"));
    }
    if end
        .checked_sub(start)
        .is_none_or(|span| span > MAX_RANGE_DAYS * DAY)
    {
        return Err(Error::invalid(
            "start_time",
            format!("the range is at most {MAX_RANGE_DAYS} days"),
        ));
    }
    Ok((start.div_euclid(DAY) * DAY, end))
}

/// One zero point per day of `[start, end)` (a checked range: at most
/// [`MAX_RANGE_DAYS`] + 1 days, whatever it holds).
fn empty_series((start, end): (i64, i64)) -> Vec<(i64, i64)> {
    (0..=MAX_RANGE_DAYS)
        .map_while(|i| start.checked_add(i * DAY))
        .take_while(|day| *day < end)
        .map(|day| (day, 0))
        .collect()
}

/// Adds `value` to the point of `day` in `series`.
fn add_point(series: &mut [(i64, i64)], day: i64, value: i64) {
    if let Some(point) = series.iter_mut().find(|(d, _)| *d == day) {
        point.1 += value;
    }
}

impl Organizations {
    fn stats_peers(&self) -> Result<&StatsPeers, Error> {
        self.stats.as_ref().ok_or_else(|| {
            Error::Unavailable(
                "statistics need the registry and the agents service, which are not configured"
                    .into(),
            )
        })
    }

    /// Activities per day in the range, of the organization or a project.
    async fn activity_series(
        &self,
        organization_uuid: &str,
        (project, hidden): (&str, &Hidden),
        range: (i64, i64),
    ) -> Result<Vec<(i64, i64)>, Error> {
        // The day as one literal expression: PostgreSQL matches the grouped
        // expression to the selected one only when they read the same
        // (bound parameters would differ).
        let day = Expr::cust(format!("create_time / {DAY}"));
        let mut query = activities::Entity::find()
            .select_only()
            .column_as(day.clone(), "day")
            .column_as(activities::Column::Seq.count(), "n")
            .filter(activities::Column::OrganizationUuid.eq(organization_uuid))
            .filter(activities::Column::CreateTime.gte(range.0))
            .filter(activities::Column::CreateTime.lt(range.1));
        if !project.is_empty() {
            query = query.filter(activities::Column::Project.eq(project));
        }
        query = query.filter(hidden.activities());
        let rows: Vec<(i64, i64)> = query.group_by(day).into_tuple().all(&self.db).await?;
        let mut series = empty_series(range);
        for (day, n) in rows {
            add_point(&mut series, day * DAY, n);
        }
        Ok(series)
    }

    /// What the registry and the agents service count, and runs per queue.
    async fn peer_stats(
        &self,
        stats: &mut Stats,
        organization_uuid: &str,
        (project, hidden): (&str, &Hidden),
        range: (i64, i64),
    ) -> Result<(), Error> {
        let peers = self.stats_peers()?;
        let (registry, agents) = tokio::try_join!(
            peers.registry_counts(organization_uuid, project, hidden.viewer.as_ref()),
            peers.agents_stats(organization_uuid, (project, &hidden.projects), range),
        )?;
        let (agent_counts, days) = agents;
        stats.counts.extend(registry);
        stats.counts.extend(agent_counts);
        for d in days {
            let series = stats
                .series
                .entry(format!("runs.queue.{}", d.queue))
                .or_insert_with(|| empty_series(range));
            add_point(series, d.day, d.runs);
        }
        Ok(())
    }

    /// An organization's statistics over `[start, end)` (the last 30 days
    /// by default).
    pub async fn organization_stats(
        &self,
        principal: &Principal,
        organization: &str,
        start: Option<i64>,
        end: Option<i64>,
    ) -> Result<Stats, Error> {
        let access = self
            .require(principal, organization, Permission::ActivityRead)
            .await?;
        let range = range(start, end)?;
        let uuid = access.organization.uuid.as_str();
        let mut stats = Stats::default();
        let count_members = members::Entity::find()
            .filter(members::Column::OrganizationUuid.eq(uuid))
            .count(&self.db)
            .await?;
        let count_teams = teams::team::Entity::find()
            .filter(teams::team::Column::OrganizationUuid.eq(uuid))
            .count(&self.db)
            .await?;
        // Projects restricted away from the caller are left out of what
        // names or counts them.
        let hidden = self.hidden(&access).await?;
        let mut projects_query =
            projects::Entity::find().filter(projects::Column::OrganizationUuid.eq(uuid));
        if !hidden.projects.is_empty() {
            projects_query =
                projects_query.filter(projects::Column::Name.is_not_in(hidden.projects.clone()));
        }
        let count_projects = projects_query.count(&self.db).await?;
        stats.counts.insert("members".into(), count_members as i64);
        stats.counts.insert("teams".into(), count_teams as i64);
        stats
            .counts
            .insert("projects".into(), count_projects as i64);
        stats.series.insert(
            "activities".into(),
            self.activity_series(uuid, ("", &hidden), range).await?,
        );
        self.peer_stats(&mut stats, uuid, ("", &hidden), range)
            .await?;
        Ok(stats)
    }

    /// A project's statistics over `[start, end)`.
    pub async fn project_stats(
        &self,
        principal: &Principal,
        organization: &str,
        project: &str,
        start: Option<i64>,
        end: Option<i64>,
    ) -> Result<Stats, Error> {
        let (access, _) = self
            .access_to_project(
                principal,
                organization,
                project,
                Permission::ProjectsRead,
                "project",
            )
            .await?;
        let range = range(start, end)?;
        let uuid = access.organization.uuid.as_str();
        let mut stats = Stats::default();
        stats.series.insert(
            "activities".into(),
            self.activity_series(uuid, (project, &Hidden::default()), range)
                .await?,
        );
        // The project is reached; what the registry hides still counts out.
        let hidden = Hidden {
            viewer: self.viewer(&access).await?,
            ..Hidden::default()
        };
        self.peer_stats(&mut stats, uuid, (project, &hidden), range)
            .await?;
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_start_at_a_day_and_are_bounded() {
        let (start, end) = range(Some(DAY + 5), Some(3 * DAY)).unwrap();
        assert_eq!((start, end), (DAY, 3 * DAY));
        assert_eq!(empty_series((start, end)), vec![(DAY, 0), (2 * DAY, 0)]);
        assert!(range(Some(3 * DAY), Some(DAY)).is_err());
        assert!(range(Some(0), Some(400 * DAY)).is_err());
        assert!(range(Some(i64::MIN), Some(i64::MAX)).is_err());
        assert!(range(Some(-DAY), None).is_err());
        let earliest = MIN_TIMESTAMP_SECONDS * 1_000_000;
        assert_eq!(range(None, Some(earliest + DAY)).unwrap().0, earliest);
        assert!(empty_series((i64::MAX - DAY, i64::MAX)).len() == 1);
    }
}

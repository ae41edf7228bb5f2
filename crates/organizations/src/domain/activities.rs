//! The activity store: every service's activities (see
//! `orgplane_storage::activity`), stored once per idempotency key, in
//! commit order (`seq`), listed newest first (by when they happened) and
//! watched live (in the order stored).
//!
//! Order without gaps: `seq` is handed out under the row lock of
//! `activity_sequence`, held until the batch commits, so activities become
//! visible in `seq` order; a watcher that resumes after `seq` N misses and
//! repeats nothing.

use std::{collections::HashSet, time::Duration};

use orgplane_platform::{
    Error,
    authz::Permission,
    principal::Principal,
    time::{DAY, now_micros},
    validate::{self, Violations},
};
use orgplane_storage::{
    activity::{ActivitySink, Delivery},
    page::{KeyPart, ListQuery, Page, keyed_page},
};
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    TransactionTrait,
    sea_query::{Expr, OnConflict},
};

use super::{
    Organizations,
    access::Access,
    feed::{Feed, Stored},
    teams::revoke_grants_on,
};
use crate::storage::{
    activities::{self, sequence},
    settings,
};

/// Most activities one `RecordActivities` call stores.
pub const MAX_BATCH: usize = 1000;
/// Most activities one watch message batch reads.
const WATCH_BATCH: u64 = 100;
/// How often a watcher's access is checked again.
const WATCH_RECHECK: Duration = Duration::from_secs(10);

/// The organization's own shipper's sink: the store in this process.
#[derive(Debug, Clone)]
pub struct LocalStore(pub Organizations);

impl ActivitySink for LocalStore {
    async fn deliver(&self, batch: Vec<Delivery>) -> Result<u64, Error> {
        self.0.record_activities(batch).await
    }
}

fn check_delivery(v: &mut Violations, d: &Delivery) {
    let a = &d.activity;
    v.check(
        "activities.idempotency_key",
        validate::required(&d.idempotency_key, 200),
    );
    v.check(
        "activities.organization_uuid",
        validate::required(&a.organization_uuid, 64),
    );
    v.check("activities.activity.uuid", validate::required(&a.uuid, 64));
    for (field, value, max) in [
        ("activities.activity.actor", &a.actor, 200),
        ("activities.activity.action", &a.action, 64),
        ("activities.activity.subject_kind", &a.subject_kind, 64),
    ] {
        v.check(field, validate::required(value, max));
    }
    for (field, value) in [
        ("activities.activity.subject_name", &a.subject_name),
        ("activities.activity.subject_uuid", &a.subject_uuid),
        ("activities.activity.parent", &a.parent),
        ("activities.activity.project", &a.project),
    ] {
        v.check(field, validate::text(value, 400));
    }
}

/// Where a watch resumes: after `seq`.
fn parse_cursor(cursor: &str) -> Result<Option<i64>, Error> {
    if cursor.is_empty() {
        return Ok(None);
    }
    cursor
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .map(Some)
        .ok_or_else(|| Error::invalid("cursor", "is not a cursor from this feed"))
}

/// A live feed of an organization (or one of its projects): follows the
/// process's [`Feed`] and reads the store itself only to catch up.
#[derive(Debug)]
pub struct Watch {
    organizations: Organizations,
    principal: Principal,
    organization: String,
    organization_uuid: String,
    project: String,
    /// What restrictions hide from the watcher (an org-level feed leaves
    /// their activities out).
    hidden: super::hidden::Hidden,
    /// Everything up to this position was looked at.
    after: i64,
    /// Whether the broadcast may have skipped something after `after`.
    behind: bool,
    live: tokio::sync::broadcast::Receiver<std::sync::Arc<Stored>>,
    checked: tokio::time::Instant,
}

impl Watch {
    /// The next activities after the cursor, waiting until there are some;
    /// each with the cursor to resume after it. Fails once the watcher may
    /// no longer read the feed.
    pub async fn next(&mut self) -> Result<Vec<(activities::Model, String)>, Error> {
        loop {
            if self.checked.elapsed() > WATCH_RECHECK {
                let access = self
                    .organizations
                    .feed_access(&self.principal, &self.organization, &self.project, "")
                    .await?;
                self.hidden = self.organizations.hidden(&access).await?;
                self.checked = tokio::time::Instant::now();
            }
            let rows = if self.behind {
                self.catch_up().await?
            } else {
                let recheck = self.checked + WATCH_RECHECK;
                match tokio::time::timeout_at(recheck, self.live.recv()).await {
                    Err(_) => continue,
                    Ok(Ok(stored)) => self.follow(&stored),
                    Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {
                        self.behind = true;
                        continue;
                    }
                    Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => {
                        return Err(Error::Unavailable("the activity feed stopped".into()));
                    }
                }
            };
            if !rows.is_empty() {
                return Ok(rows
                    .into_iter()
                    .map(|row| {
                        let cursor = row.seq.to_string();
                        (row, cursor)
                    })
                    .collect());
            }
        }
    }

    /// What this watcher sees of a broadcast range; behind when the range
    /// starts after where it is.
    fn follow(&mut self, stored: &Stored) -> Vec<activities::Model> {
        if stored.after > self.after {
            self.behind = true;
            return Vec::new();
        }
        let rows = stored
            .rows
            .iter()
            .filter(|row| row.seq > self.after && self.shows(row))
            .cloned()
            .collect();
        self.after = self.after.max(stored.last);
        rows
    }

    /// Whether the watcher sees `row`: of its organization and project, not
    /// hidden from it.
    fn shows(&self, row: &activities::Model) -> bool {
        row.organization_uuid == self.organization_uuid
            && if self.project.is_empty() {
                self.hidden.shows(row)
            } else {
                row.project == self.project
            }
    }

    /// Reads the store after `after` up to what it holds now; caught up
    /// once a read returns less than a batch.
    async fn catch_up(&mut self) -> Result<Vec<activities::Model>, Error> {
        let db = &self.organizations.db;
        // Read before the rows: everything up to it is visible to the read.
        let last = Feed::last_position(db).await?;
        let mut query = activities::Entity::find()
            .filter(activities::Column::OrganizationUuid.eq(self.organization_uuid.as_str()))
            .filter(activities::Column::Seq.gt(self.after));
        if !self.project.is_empty() {
            query = query.filter(activities::Column::Project.eq(self.project.as_str()));
        } else {
            query = query.filter(self.hidden.activities());
        }
        let rows = query
            .order_by_asc(activities::Column::Seq)
            .limit(WATCH_BATCH)
            .all(db)
            .await?;
        match rows.last() {
            Some(row) if rows.len() as u64 == WATCH_BATCH => self.after = row.seq,
            Some(row) => {
                self.after = row.seq.max(last);
                self.behind = false;
            }
            None => {
                self.after = self.after.max(last);
                self.behind = false;
            }
        }
        Ok(rows)
    }
}

/// The grant kind of an entity another service deleted, if `action` on
/// `subject_kind` is such a deletion.
fn grantable_deleted(action: &str, subject_kind: &str) -> Option<&'static str> {
    if action != orgplane_storage::activity::action::DELETED {
        return None;
    }
    match subject_kind {
        "model" => Some("model_registry"),
        "component" => Some("component_hub"),
        _ => None,
    }
}

/// `deliveries` as the store's rows, numbered after `last`, stored at `now`.
fn numbered(deliveries: &[Delivery], last: i64, now: i64) -> Vec<activities::ActiveModel> {
    deliveries
        .iter()
        .zip(last + 1..)
        .map(|(d, seq)| {
            let a = &d.activity;
            activities::ActiveModel {
                seq: Set(seq),
                uuid: Set(a.uuid.clone()),
                idempotency_key: Set(d.idempotency_key.clone()),
                organization_uuid: Set(a.organization_uuid.clone()),
                actor: Set(a.actor.clone()),
                action: Set(a.action.clone()),
                subject_kind: Set(a.subject_kind.clone()),
                subject_name: Set(a.subject_name.clone()),
                subject_uuid: Set(a.subject_uuid.clone()),
                parent: Set(a.parent.clone()),
                project: Set(a.project.clone()),
                metadata: Set(a.metadata.to_string()),
                create_time: Set(a.create_time),
                record_time: Set(now),
            }
        })
        .collect()
}

impl Organizations {
    /// Stores `batch`, skipping idempotency keys stored before; how many
    /// were new.
    pub async fn record_activities(&self, batch: Vec<Delivery>) -> Result<u64, Error> {
        let mut v = Violations::new();
        if batch.len() > MAX_BATCH {
            v.add("activities", format!("at most {MAX_BATCH} per call"));
        }
        for d in &batch {
            check_delivery(&mut v, d);
        }
        v.finish()?;
        if batch.is_empty() {
            return Ok(0);
        }
        let _turn = orgplane_storage::db::sqlite_write_turn(&self.db).await;
        let txn = self.db.begin().await?;
        // The counter's row lock, until commit: stores go one at a time.
        sequence::Entity::update_many()
            .col_expr(sequence::Column::Last, Expr::col(sequence::Column::Last))
            .filter(sequence::Column::Id.eq(1))
            .exec(&txn)
            .await?;
        let last = sequence::Entity::find_by_id(1)
            .one(&txn)
            .await?
            .ok_or_else(|| anyhow::anyhow!("activity_sequence has no row"))?
            .last;
        // Each key once, in the order delivered.
        let mut unique = HashSet::new();
        let mut fresh: Vec<Delivery> = batch
            .into_iter()
            .filter(|d| unique.insert(d.idempotency_key.clone()))
            .collect();
        // A key was stored before only when a shipper delivers again a
        // batch whose answer it lost. So the insert skips stored keys
        // itself rather than every batch probing for them first: one
        // statement instead of two, 8.8 → 7.9 ms of PostgreSQL's time a
        // delivery of 200 (`BENCHMARKS.md`). A skipped row would leave a
        // hole in `seq`: then the batch's rows go again, and only the new
        // ones are stored, numbered without gaps.
        let now = now_micros();
        let inserted = activities::Entity::insert_many(numbered(&fresh, last, now))
            .on_conflict(
                OnConflict::column(activities::Column::IdempotencyKey)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
        if inserted < fresh.len() as u64 {
            activities::Entity::delete_many()
                .filter(activities::Column::Seq.gt(last))
                .exec(&txn)
                .await?;
            let keys: Vec<String> = fresh.iter().map(|d| d.idempotency_key.clone()).collect();
            let stored_before: HashSet<String> = activities::Entity::find()
                .select_only()
                .column(activities::Column::IdempotencyKey)
                .filter(activities::Column::IdempotencyKey.is_in(keys))
                .into_tuple::<String>()
                .all(&txn)
                .await?
                .into_iter()
                .collect();
            fresh.retain(|d| !stored_before.contains(&d.idempotency_key));
            if !fresh.is_empty() {
                activities::Entity::insert_many(numbered(&fresh, last, now))
                    .exec_without_returning(&txn)
                    .await?;
            }
        }
        for d in &fresh {
            let a = &d.activity;
            if let Some(kind) = grantable_deleted(&a.action, &a.subject_kind)
                && d.idempotency_key.starts_with("registry:")
            {
                // Another service deleted an entity grants name: they end
                // with the record of it (until then the registry's checks
                // already ignore them, see `Granted::reaches`).
                revoke_grants_on(
                    &txn,
                    &a.organization_uuid,
                    (kind, &a.subject_name),
                    a.create_time,
                )
                .await?;
            }
        }
        let stored = fresh.len() as u64;
        let seq = last + stored as i64;
        if stored > 0 {
            sequence::Entity::update_many()
                .col_expr(sequence::Column::Last, Expr::value(seq))
                .filter(sequence::Column::Id.eq(1))
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        if stored > 0 {
            self.stored.send_replace(seq);
        }
        Ok(stored)
    }

    /// The caller's access to a feed: a project's needs reading the project
    /// (outsiders reach the projects granted to them), a team's or the
    /// organization's `activity.read` (admin and up: org-level activity
    /// logs name invitees, members and settings).
    async fn feed_access(
        &self,
        principal: &Principal,
        organization: &str,
        project: &str,
        team: &str,
    ) -> Result<Access, Error> {
        if !project.is_empty() && !team.is_empty() {
            return Err(Error::invalid("team", "give a project or a team, not both"));
        }
        if !project.is_empty() {
            let (access, _) = self
                .access_to_project(
                    principal,
                    organization,
                    project,
                    Permission::ProjectsRead,
                    "project",
                )
                .await?;
            return Ok(access);
        }
        let access = self
            .require(principal, organization, Permission::ActivityRead)
            .await?;
        if !team.is_empty() {
            self.team(&access, team, "team").await?;
        }
        Ok(access)
    }

    /// The feed newest first: the organization's, one project's, or one
    /// team's (the team and what was done to its members and grants);
    /// `filter` takes `actor:`, `action:` and `subject_kind:`.
    pub async fn list_activities(
        &self,
        principal: &Principal,
        organization: &str,
        project: &str,
        team: &str,
        query: &ListQuery,
    ) -> Result<Page<activities::Model>, Error> {
        let access = self
            .feed_access(principal, organization, project, team)
            .await?;
        if !matches!(query.order_by.trim(), "" | "create_time desc") {
            return Err(Error::invalid(
                "order_by",
                "activities are listed newest first only (`create_time desc`)",
            ));
        }
        let terms = query.terms(&["actor", "action", "subject_kind"])?;
        let request = query.page(&format!("{project}|{team}"))?;
        let mut condition = Condition::all()
            .add(activities::Column::OrganizationUuid.eq(access.organization.uuid.as_str()));
        if !project.is_empty() {
            condition = condition.add(activities::Column::Project.eq(project));
        } else {
            condition = condition.add(self.hidden(&access).await?.activities());
        }
        if !team.is_empty() {
            condition = condition.add(
                Condition::any()
                    .add(
                        Condition::all()
                            .add(activities::Column::SubjectKind.eq("team"))
                            .add(activities::Column::SubjectName.eq(team)),
                    )
                    .add(activities::Column::Parent.eq(format!("team/{team}"))),
            );
        }
        for (key, value) in terms {
            condition = condition.add(match key {
                "actor" => activities::Column::Actor.eq(value),
                "action" => activities::Column::Action.eq(value),
                _ => activities::Column::SubjectKind.eq(value),
            });
        }
        // Newest first by when it happened (UUIDv7), whichever service's
        // shipper delivered it first.
        keyed_page(
            &self.db,
            &request,
            activities::Entity::find().filter(condition),
            &[activities::Column::Uuid],
            &[KeyPart::Text],
            true,
            |a| vec![a.uuid.clone()],
        )
        .await
    }

    /// Deletes the activities older than their organization's
    /// `activity_retention_days` (0 keeps them) as of `now`; how many.
    pub async fn purge_expired_activities(&self, now: i64) -> Result<u64, Error> {
        let rules: Vec<(String, i32)> = settings::Entity::find()
            .select_only()
            .column(settings::Column::OrganizationUuid)
            .column(settings::Column::ActivityRetentionDays)
            .filter(settings::Column::ActivityRetentionDays.gt(0))
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut purged = 0;
        for (organization_uuid, days) in rules {
            let deleted = activities::Entity::delete_many()
                .filter(activities::Column::OrganizationUuid.eq(organization_uuid))
                .filter(activities::Column::CreateTime.lt(now - i64::from(days) * DAY))
                .exec(&self.db)
                .await?;
            purged += deleted.rows_affected;
        }
        Ok(purged)
    }

    /// A live feed of the organization (or one project) after `cursor`
    /// (empty: from now on).
    pub async fn watch_activities(
        &self,
        principal: &Principal,
        organization: &str,
        project: &str,
        cursor: &str,
    ) -> Result<Watch, Error> {
        let after = parse_cursor(cursor)?;
        let access = self
            .feed_access(principal, organization, project, "")
            .await?;
        // Subscribe before reading where "now" is: nothing stored in between
        // is missed.
        let live = self.feed.subscribe();
        let after = match after {
            Some(after) => after,
            None => Feed::last_position(&self.db).await?,
        };
        let hidden = if project.is_empty() {
            self.hidden(&access).await?
        } else {
            super::hidden::Hidden::default()
        };
        Ok(Watch {
            organizations: self.clone(),
            principal: principal.clone(),
            organization: organization.to_owned(),
            organization_uuid: access.organization.uuid,
            project: project.to_owned(),
            hidden,
            after,
            behind: true,
            live,
            checked: tokio::time::Instant::now(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_positions_in_the_store() {
        assert_eq!(parse_cursor("").unwrap(), None);
        assert_eq!(parse_cursor("42").unwrap(), Some(42));
        assert!(parse_cursor("-1").is_err());
        assert!(parse_cursor("abc").is_err());
    }
}

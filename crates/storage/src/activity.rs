//! Activities — who did what, where and when — from every service to the
//! one activity store (the organizations service).
//!
//! A service records an activity with [`record`] **in the transaction of the
//! change** it describes, into its own `activity_outbox` table: the change
//! and its activity commit together or not at all. A [`Shipper`] then moves
//! the outbox to the store through an [`ActivitySink`], oldest first, and
//! deletes what the store acknowledged. Each activity travels with an
//! idempotency key (`<service>:<uuid>`), so a delivery retried after a crash
//! between "stored" and "deleted from the outbox" is stored once: delivery is
//! at least once, storage exactly once, and nothing is lost when a process
//! dies between the change and the delivery.
//!
//! The activity itself, its delivery and the sink are
//! `orgplane_platform::activity`, re-exported here for the services that
//! record.

use std::{future::Future, sync::Arc, time::Duration};

use orgplane_platform::Error;
pub use orgplane_platform::activity::{Activity, ActivitySink, Delivery, action};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};

/// `activity_outbox`: activities recorded, not yet acknowledged by the store.
pub mod outbox {
    use sea_orm::entity::prelude::*;

    /// An activity waiting for delivery.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "activity_outbox")]
    pub struct Model {
        /// UUIDv7; the order of delivery.
        #[sea_orm(primary_key, auto_increment = false)]
        pub uuid: String,
        /// The organization.
        pub organization_uuid: String,
        /// Who acted.
        pub actor: String,
        /// What was done.
        pub action: String,
        /// Kind of the subject.
        pub subject_kind: String,
        /// Name of the subject.
        pub subject_name: String,
        /// UUID of the subject, or empty.
        pub subject_uuid: String,
        /// `kind/name` of the parent, or empty.
        pub parent: String,
        /// Project slug, or empty.
        pub project: String,
        /// Details, JSON.
        pub metadata: String,
        /// When it happened.
        pub create_time: i64,
    }

    /// No relations are navigated through sea-orm.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The statement that creates `activity_outbox`, for a service's migration.
pub fn create_outbox_table() -> sea_orm::sea_query::TableCreateStatement {
    use sea_orm_migration::schema::{big_integer, string, text};
    sea_orm::sea_query::Table::create()
        .table("activity_outbox")
        .col(string("uuid").primary_key())
        .col(string("organization_uuid"))
        .col(string("actor"))
        .col(string("action"))
        .col(string("subject_kind"))
        .col(string("subject_name"))
        .col(string("subject_uuid"))
        .col(string("parent"))
        .col(string("project"))
        .col(text("metadata"))
        .col(big_integer("create_time"))
        .to_owned()
}

/// Records `activity` in the outbox: call it with the transaction of the
/// change it describes.
pub async fn record(db: &impl ConnectionTrait, activity: Activity) -> Result<(), Error> {
    record_all(db, vec![activity]).await
}

/// Records `activities` in the outbox with few statements (a group
/// commit's changes; see [`crate::statement_shapes`]), with the transaction
/// of the changes they describe.
pub async fn record_all(db: &impl ConnectionTrait, activities: Vec<Activity>) -> Result<(), Error> {
    for chunk in crate::statement_shapes::power_of_two_chunks(activities) {
        let rows = chunk.into_iter().map(|activity| outbox::ActiveModel {
            uuid: Set(activity.uuid),
            organization_uuid: Set(activity.organization_uuid),
            actor: Set(activity.actor),
            action: Set(activity.action),
            subject_kind: Set(activity.subject_kind),
            subject_name: Set(activity.subject_name),
            subject_uuid: Set(activity.subject_uuid),
            parent: Set(activity.parent),
            project: Set(activity.project),
            metadata: Set(activity.metadata.to_string()),
            create_time: Set(activity.create_time),
        });
        outbox::Entity::insert_many(rows)
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// Records `activity` in `txn`, the transaction of the change it
/// describes, and commits both.
pub async fn commit_with(
    txn: sea_orm::DatabaseTransaction,
    activity: Activity,
) -> Result<(), Error> {
    record(&txn, activity).await?;
    txn.commit().await?;
    Ok(())
}

/// [`commit_with`], then forgets what `stale` read before the change. It
/// forgets even when the commit failed: whether the change is in the
/// database is then unknown, and a read cache must not outlive it.
pub async fn commit_and_forget(
    txn: sea_orm::DatabaseTransaction,
    activity: Activity,
    stale: &impl crate::read_cache::Forget,
) -> Result<(), Error> {
    let committed = commit_with(txn, activity).await;
    stale.changed();
    committed
}

fn from_row(row: outbox::Model) -> Activity {
    Activity {
        metadata: serde_json::from_str(&row.metadata).unwrap_or_else(|_| serde_json::json!({})),
        uuid: row.uuid,
        organization_uuid: row.organization_uuid,
        actor: row.actor,
        action: row.action,
        subject_kind: row.subject_kind,
        subject_name: row.subject_name,
        subject_uuid: row.subject_uuid,
        parent: row.parent,
        project: row.project,
        create_time: row.create_time,
    }
}

/// Most activities one delivery carries.
pub const BATCH: u64 = 200;
/// How often an idle shipper looks at its outbox: an activity reaches the
/// store within about this time (plus the delivery's).
pub const POLL: Duration = Duration::from_millis(200);
/// How often a draining shipper counts its backlog for
/// `orgplane_outbox_backlog`: a count reads the whole outbox, so counting
/// after every batch cost as much as the delivery once thousands wait.
pub const BACKLOG_COUNT_INTERVAL: Duration = Duration::from_secs(1);

/// Delivers a service's outbox to the activity store.
#[derive(Debug, Clone)]
pub struct Shipper<S> {
    db: DatabaseConnection,
    service: &'static str,
    sink: Arc<S>,
    /// When the backlog was last counted.
    counted: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
}

impl<S: ActivitySink> Shipper<S> {
    /// Ships the outbox of `db` (service `service`) to `sink`.
    pub fn new(db: DatabaseConnection, service: &'static str, sink: S) -> Self {
        Self {
            db,
            service,
            sink: Arc::new(sink),
            counted: Arc::default(),
        }
    }

    /// Delivers one batch, oldest first, and deletes it from the outbox once
    /// the store acknowledged it; how many were delivered (0: outbox empty,
    /// or another replica of the service is shipping).
    pub async fn ship_once(&self) -> Result<u64, Error> {
        // An idle shipper looks every `POLL`: an empty outbox costs that one
        // read, not a transaction and a lock.
        let waiting = outbox::Entity::find()
            .select_only()
            .column(outbox::Column::Uuid)
            .limit(1)
            .into_tuple::<String>()
            .one(&self.db)
            .await?;
        if waiting.is_none() {
            metrics::gauge!("orgplane_outbox_lag_seconds", "service" => self.service).set(0.0);
            metrics::gauge!("orgplane_outbox_backlog", "service" => self.service).set(0.0);
            return Ok(0);
        }
        let shipped =
            crate::exclusive::exclusively(&self.db, "activity shipper", || self.ship_batch())
                .await?;
        Ok(shipped.unwrap_or(0))
    }

    /// One batch, whichever replica ships it.
    async fn ship_batch(&self) -> Result<u64, Error> {
        let rows = outbox::Entity::find()
            .order_by_asc(outbox::Column::Uuid)
            .limit(BATCH)
            .all(&self.db)
            .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let uuids: Vec<String> = rows.iter().map(|r| r.uuid.clone()).collect();
        // The oldest activity waiting, shipped now: how far the feed lags.
        let oldest = rows.iter().map(|r| r.create_time).min().unwrap_or_default();
        let batch = rows
            .into_iter()
            .map(|row| Delivery {
                idempotency_key: format!("{}:{}", self.service, row.uuid),
                activity: from_row(row),
            })
            .collect();
        self.sink.deliver(batch).await?;
        outbox::Entity::delete_many()
            .filter(outbox::Column::Uuid.is_in(uuids.clone()))
            .exec(&self.db)
            .await?;
        metrics::gauge!("orgplane_outbox_lag_seconds", "service" => self.service)
            .set((orgplane_platform::time::now_micros() - oldest).max(0) as f64 / 1e6);
        metrics::counter!("orgplane_outbox_shipped_total", "service" => self.service)
            .increment(uuids.len() as u64);
        if uuids.len() as u64 == BATCH {
            // More wait: how many, counted now and then while the shipper
            // drains them.
            if self.count_due() {
                let backlog = outbox::Entity::find().count(&self.db).await?;
                metrics::gauge!("orgplane_outbox_backlog", "service" => self.service)
                    .set(backlog as f64);
            }
        } else {
            metrics::gauge!("orgplane_outbox_backlog", "service" => self.service).set(0.0);
        }
        Ok(uuids.len() as u64)
    }

    /// Whether [`BACKLOG_COUNT_INTERVAL`] passed since the last count
    /// (then the caller counts).
    fn count_due(&self) -> bool {
        let mut counted = self.counted.lock().expect("the backlog count's lock");
        let now = std::time::Instant::now();
        let due = counted.is_none_or(|last| now.duration_since(last) >= BACKLOG_COUNT_INTERVAL);
        if due {
            *counted = Some(now);
        }
        due
    }

    /// Ships until `stop` completes: drains the outbox, then looks again
    /// every [`POLL`]; a failed delivery is retried (the store may be down).
    pub async fn run(self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        let mut failing = false;
        loop {
            match self.ship_once().await {
                Ok(n) if n > 0 => {
                    failing = false;
                    continue;
                }
                Ok(_) => failing = false,
                Err(err) => {
                    metrics::counter!("orgplane_outbox_failures_total", "service" => self.service)
                        .increment(1);
                    if !failing {
                        tracing::warn!(service = self.service, error = %err, "activities not delivered yet; retrying");
                    }
                    failing = true;
                }
            }
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(if failing { POLL * 5 } else { POLL }) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store that takes everything.
    #[derive(Clone)]
    struct Accepting;

    impl ActivitySink for Accepting {
        async fn deliver(&self, batch: Vec<Delivery>) -> Result<u64, Error> {
            Ok(batch.len() as u64)
        }
    }

    #[tokio::test]
    async fn a_draining_shipper_counts_its_backlog_once_per_interval() {
        let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
        let shipper = Shipper::new(db, "test", Accepting);
        let copy = shipper.clone();
        assert!(shipper.count_due(), "the first full batch counts");
        assert!(
            !shipper.count_due(),
            "the next ones within the interval do not"
        );
        assert!(!copy.count_due(), "clones share the interval");
        *shipper.counted.lock().unwrap() = Some(std::time::Instant::now() - BACKLOG_COUNT_INTERVAL);
        assert!(copy.count_due(), "an interval later it counts again");
    }
}

//! Periodic work that one replica does at a time. Every replica of a
//! service runs the same background loops over the same PostgreSQL schema;
//! [`exclusively`] lets one of them do a round and the others skip it,
//! under a PostgreSQL advisory lock held by the round's transaction (a
//! replica that dies mid-round releases it with its connection). On SQLite
//! one process owns the file: the work just runs.
//!
//! What runs so: each service's purger round (`deletions::run_every`: the
//! lease sweep, purges of deleted organizations, expired secrets, old
//! statuses, activities, messages and idempotency keys) and each batch of
//! its activity shipper (the store would keep one copy of each activity,
//! but N replicas would ship each batch N times).

use std::future::Future;

use orgplane_platform::Error;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait};

/// Runs `work` unless another replica holds the lock `name` (within this
/// service's schema) now: `Some(result)`, or `None` when skipped.
pub async fn exclusively<T, F, Fut>(
    db: &DatabaseConnection,
    name: &str,
    work: F,
) -> Result<Option<T>, Error>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    if db.get_database_backend() != DbBackend::Postgres {
        return work().await.map(Some);
    }
    let lock = db.begin().await?;
    // The key names the schema too: services (and test stacks) sharing a
    // database do not share locks.
    let locked = lock
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_try_advisory_xact_lock(hashtextextended(current_schema() || ':' || $1, 0)) AS locked",
            [name.into()],
        ))
        .await?
        .map(|row| row.try_get::<bool>("", "locked"))
        .transpose()?
        .unwrap_or(false);
    if !locked {
        lock.rollback().await?;
        return Ok(None);
    }
    let result = work().await;
    lock.commit().await?;
    result.map(Some)
}

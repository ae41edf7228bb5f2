//! Whether the process that began a piece of work still lives, so that
//! what it claimed (an idempotent request's id, [`crate::idempotency`]) can
//! be taken over as soon as it dies rather than after a timeout.
//!
//! Each process draws a random [`process_key`]. On PostgreSQL it holds a
//! session advisory lock on that key in every database it uses, on a
//! connection of its own (a thread of its own, so that no runtime's end
//! drops it): the lock goes when the process does — a `SIGKILL`, a crash,
//! a lost machine (once PostgreSQL sees the connection gone). Any replica
//! asks [`alive`] whether a key is held. On SQLite one process owns the
//! file: a key other than this process's is a process gone.
//!
//! The lock stands for the process, not its work: a live process whose
//! liveness connection broke looks dead until it holds the lock again
//! (within [`RECONNECT_DELAY`] of PostgreSQL answering again), and a claim
//! of it may be taken over meanwhile.

use std::{collections::HashSet, sync::Mutex, sync::OnceLock, time::Duration};

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, Statement,
    sqlx::{self, Connection, postgres::PgConnection},
};

use orgplane_platform::Error;

/// How long after losing its connection the holder tries again.
pub const RECONNECT_DELAY: Duration = Duration::from_secs(1);
/// How often the holder checks its connection.
const PING_INTERVAL: Duration = Duration::from_secs(5);

/// This process among all the processes using a database: random, positive,
/// drawn once.
pub fn process_key() -> i64 {
    static KEY: OnceLock<i64> = OnceLock::new();
    *KEY.get_or_init(|| (rand::random::<u64>() >> 1).max(1) as i64)
}

/// Holds [`process_key`]'s lock in the PostgreSQL database of `url` for as
/// long as the process lives; once per database, whatever the number of
/// calls.
pub fn hold(url: &str) {
    static HELD: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let mut held = HELD
        .get_or_init(Default::default)
        .lock()
        .expect("liveness lock");
    if !held.insert(url.to_owned()) {
        return;
    }
    let url = url.to_owned();
    let spawned = std::thread::Builder::new()
        .name("orgplane-liveness".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the liveness connection");
            runtime.block_on(keep_holding(&url));
        });
    if let Err(err) = spawned {
        tracing::warn!(error = %err, "no liveness thread: claims of this process lapse only by time");
    }
}

async fn keep_holding(url: &str) {
    loop {
        let failed = match PgConnection::connect(url).await {
            Ok(mut connection) => hold_on(&mut connection).await,
            Err(err) => err,
        };
        tracing::warn!(error = %failed, "lost the liveness lock of this process; taking it again");
        tokio::time::sleep(RECONNECT_DELAY).await;
    }
}

/// Takes the lock on `connection` and keeps the connection open until it
/// fails.
async fn hold_on(connection: &mut PgConnection) -> sqlx::Error {
    if let Err(err) = sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(process_key())
        .execute(&mut *connection)
        .await
    {
        return err;
    }
    loop {
        tokio::time::sleep(PING_INTERVAL).await;
        if let Err(err) = connection.ping().await {
            return err;
        }
    }
}

/// Whether the process `key` names still lives, as `db` sees it.
pub async fn alive(db: &DatabaseConnection, key: i64) -> Result<bool, Error> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(key == process_key());
    }
    // A bigint advisory key shows in `pg_locks` as its high and low halves.
    let (high, low) = ((key as u64 >> 32) as i64, (key as u64 & 0xffff_ffff) as i64);
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT EXISTS (SELECT 1 FROM pg_locks \
             WHERE locktype = 'advisory' AND granted AND objsubid = 1 \
             AND classid = $1::bigint::oid AND objid = $2::bigint::oid \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())) AS alive",
            [high.into(), low.into()],
        ))
        .await?;
    Ok(row
        .map(|row| row.try_get::<bool>("", "alive"))
        .transpose()?
        .unwrap_or(false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_has_one_positive_key() {
        assert!(process_key() > 0);
        assert_eq!(process_key(), process_key());
    }
}

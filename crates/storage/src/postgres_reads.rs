//! Reads of a PostgreSQL database on connections kept outside sqlx's pool.
//!
//! Why: sqlx's pool pings every connection it takes back (a task spawned
//! and a round trip to PostgreSQL, after every statement; no option of
//! sqlx 0.9 turns it off), which made a one-statement list page two round
//! trips (`BENCHMARKS.md`). A read here takes one of a few connections of
//! its own, runs its statement (prepared once per connection, as sqlx
//! does), and puts the connection back as it is.
//!
//! What the pool's ping is for is kept another way: a read whose future is
//! dropped mid-statement drops its connection with it (its state unknown);
//! a connection idle for [`crate::db::PING_IF_IDLE_FOR`], or any
//! connection within [`crate::db::PING_ALL_AFTER_LOSS`] of a lost one, is
//! pinged before use, as the pool's are; and a reused connection found cut
//! is replaced and the read made again once (a read changes nothing).
//!
//! The connections are beside the pool: at most
//! `--database-read-connections` ([`crate::db::POSTGRES_READERS`]) per
//! service, opened as reads need them and kept. A pool with none
//! (configured so, or not opened by [`crate::db::connect`]) reads through
//! sqlx: [`query_all`] answers `None`.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use sea_orm::{
    ConnAcquireErr, DatabaseConnection, DbBackend, DbErr, QueryResult, RuntimeErr, Statement,
    sea_query::Values,
    sqlx::{
        self, Connection,
        postgres::{PgConnectOptions, PgConnection},
    },
};
use sea_query_sqlx::SqlxValues;

use orgplane_platform::error::{connection_lost, lost_database};

use crate::db::{PerPool, must_ping};

/// The reading connections of one pool's database.
struct Readers {
    /// How they connect: the pool's options (its schema included).
    options: PgConnectOptions,
    /// How long a read waits for a connection, as the pool's callers do.
    wait: Duration,
    /// One per connection: at most this many open at once.
    turns: tokio::sync::Semaphore,
    /// Connections not reading now, with when each last read.
    idle: Mutex<Vec<(PgConnection, Instant)>>,
}

/// Readers by pool, registered by [`register`].
static READERS: PerPool<Option<Readers>> = PerPool::new();

/// Gives `db` (a PostgreSQL pool just opened) `readers` connections of
/// their own to read with (none: every read goes through the pool).
pub(crate) fn register(db: &DatabaseConnection, readers: u32) {
    let pool = db.get_postgres_connection_pool();
    let options = (*pool.connect_options()).clone();
    let wait = pool.options().get_acquire_timeout();
    READERS.of(db, || {
        (readers > 0).then(|| Readers {
            options,
            wait,
            turns: tokio::sync::Semaphore::new(readers as usize),
            idle: Mutex::new(Vec::new()),
        })
    });
}

/// The rows `statement` selects from `db`, read on a connection of this
/// module; `None` when `db` has none (not PostgreSQL, or no reading
/// connections: the module's doc), and the caller reads through the pool.
/// Only for statements that change nothing: one may run twice.
pub async fn query_all(
    db: &DatabaseConnection,
    statement: &Statement,
) -> Option<Result<Vec<QueryResult>, DbErr>> {
    if db.get_database_backend() != DbBackend::Postgres
        || db.get_postgres_connection_pool().is_closed()
    {
        return None;
    }
    let readers = READERS.of(db, || None)?;
    let readers = readers.as_ref().as_ref()?;
    Some(readers.read(statement).await)
}

impl Readers {
    async fn read(&self, statement: &Statement) -> Result<Vec<QueryResult>, DbErr> {
        let _turn = tokio::time::timeout(self.wait, self.turns.acquire())
            .await
            .map_err(|_| DbErr::ConnectionAcquire(ConnAcquireErr::Timeout))?
            .expect("the readers' turns are never closed");
        let (mut connection, reused) = self.connection().await?;
        let mut rows = run(&mut connection, statement).await;
        if reused && rows.as_ref().is_err_and(connection_lost) {
            // Idle while the server or a proxy ended it: the read runs
            // again once, on a new connection.
            lost_database::mark();
            connection = self.connect().await?;
            rows = run(&mut connection, statement).await;
        }
        match &rows {
            Err(err) if connection_lost(err) => lost_database::mark(),
            // A statement PostgreSQL refused leaves the connection ready
            // for the next, as sqlx's pool keeps its own.
            _ => self.give_back(connection),
        }
        rows.map_err(|err| DbErr::Query(RuntimeErr::SqlxError(Arc::new(err))))
    }

    /// An idle connection (pinged first when [`must_ping`] says so) and
    /// whether it may have been cut unseen, or a new one.
    async fn connection(&self) -> Result<(PgConnection, bool), DbErr> {
        loop {
            let idle = self.idle.lock().expect("the readers' lock").pop();
            let Some((mut connection, since)) = idle else {
                return Ok((self.connect().await?, false));
            };
            if !must_ping(since.elapsed()) {
                return Ok((connection, true));
            }
            match connection.ping().await {
                Ok(()) => return Ok((connection, false)),
                Err(_) => lost_database::mark(),
            }
        }
    }

    async fn connect(&self) -> Result<PgConnection, DbErr> {
        PgConnection::connect_with(&self.options)
            .await
            .map_err(|err| DbErr::Conn(RuntimeErr::SqlxError(Arc::new(err))))
    }

    fn give_back(&self, connection: PgConnection) {
        self.idle
            .lock()
            .expect("the readers' lock")
            .push((connection, Instant::now()));
    }
}

/// Runs `statement` on `connection`: its rows as sea-orm reads them. Its
/// values are copied for each run, as sea-orm's own driver does.
async fn run(
    connection: &mut PgConnection,
    statement: &Statement,
) -> Result<Vec<QueryResult>, sqlx::Error> {
    let values = statement.values.clone().unwrap_or(Values(Vec::new()));
    let rows = sqlx::query_with(
        sqlx::AssertSqlSafe(statement.sql.as_str()),
        SqlxValues(values),
    )
    .fetch_all(connection)
    .await?;
    Ok(rows.into_iter().map(QueryResult::from).collect())
}

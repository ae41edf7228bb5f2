//! Database connections and migrations.
//!
//! The embedded default is one SQLite file per service under the data
//! directory, in WAL mode. With a `postgres://` URL every service uses the
//! same database, each in its own schema (its name by default), which is how
//! production runs.

use std::{
    any::Any,
    path::Path,
    sync::{Arc, Mutex, Weak},
    time::Duration,
};

use anyhow::{Context, bail};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement,
    sqlx::{
        postgres::PgConnectOptions,
        sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous},
    },
};
use sea_orm_migration::MigratorTrait;

/// Where a service keeps its tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbTarget {
    /// A SQLite file.
    Sqlite(std::path::PathBuf),
    /// A schema in a PostgreSQL database.
    Postgres {
        /// `postgres://user@host:port/database`.
        url: String,
        /// The schema, created when missing.
        schema: String,
        /// Most connections of the service's pool ([`POSTGRES_CONNECTIONS`]
        /// unless configured).
        connections: u32,
        /// Most connections beside the pool that read list pages
        /// ([`crate::postgres_reads`]; [`POSTGRES_READERS`] unless
        /// configured, 0: none).
        readers: u32,
    },
}

impl DbTarget {
    /// The target of `service`: `<data_dir>/<service>.db` without a URL, else
    /// the schema `<schema_prefix><service>` of the PostgreSQL database.
    pub fn for_service(
        database_url: Option<&str>,
        data_dir: &Path,
        schema_prefix: &str,
        service: &str,
    ) -> anyhow::Result<Self> {
        match database_url.filter(|u| !u.is_empty()) {
            None => Ok(DbTarget::Sqlite(data_dir.join(format!("{service}.db")))),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Ok(DbTarget::Postgres {
                    url: url.to_owned(),
                    schema: format!("{schema_prefix}{service}"),
                    connections: POSTGRES_CONNECTIONS,
                    readers: POSTGRES_READERS,
                })
            }
            Some(url) if url.starts_with("sqlite:") => {
                let path = url
                    .trim_start_matches("sqlite://")
                    .trim_start_matches("sqlite:");
                let path = path.split('?').next().unwrap_or(path);
                Ok(DbTarget::Sqlite(
                    Path::new(path).join(format!("{service}.db")),
                ))
            }
            Some(url) => bail!("unsupported database URL {url:?}: use postgres:// or sqlite://DIR"),
        }
    }

    /// This target with a PostgreSQL pool of at most `connections` (at
    /// least 2: one listens to the other replicas' changes); a SQLite
    /// target is unchanged.
    pub fn with_connections(mut self, connections: u32) -> anyhow::Result<Self> {
        if let DbTarget::Postgres {
            connections: pool, ..
        } = &mut self
        {
            if connections < 2 {
                bail!("a PostgreSQL pool needs at least 2 connections, not {connections}");
            }
            *pool = connections;
        }
        Ok(self)
    }

    /// This target with at most `readers` PostgreSQL connections beside the
    /// pool reading list pages (0: none); a SQLite target is unchanged.
    pub fn with_readers(mut self, readers: u32) -> Self {
        if let DbTarget::Postgres {
            readers: beside, ..
        } = &mut self
        {
            *beside = readers;
        }
        self
    }
}

/// Connections of a service's PostgreSQL pool, unless configured: every
/// replica of every service opens up to this many (one of them listening
/// to the other replicas' changes), [`POSTGRES_READERS`] more beside it,
/// and each process one more for its liveness lock ([`crate::liveness`]).
/// Two replicas of the four services open at most 8 × (8 + 3) + 8 = 96,
/// under PostgreSQL's default `max_connections` of 100 (97 for other
/// roles than superusers); 16 per service took over a hundred and the
/// run admission benchmark's pools timed out waiting for PostgreSQL to
/// accept more (`BENCHMARKS.md`).
pub const POSTGRES_CONNECTIONS: u32 = 8;

/// Connections of a service beside its PostgreSQL pool that read list
/// pages ([`crate::postgres_reads`]), unless configured: with 2 pages
/// came no faster than through the pool, with 3 to 8 they came 6–11 %
/// faster for 4–12 % less CPU (`BENCHMARKS.md`); 3 keeps two replicas of
/// every service under PostgreSQL's default `max_connections`.
pub const POSTGRES_READERS: u32 = 3;

/// A PostgreSQL connection idle in the pool for this long is pinged before
/// a caller gets it (one idle for less answered its release ping since).
pub const PING_IF_IDLE_FOR: Duration = Duration::from_secs(5);

/// For this long after a call lost its database connection, every
/// PostgreSQL connection is pinged before a caller gets it: a restart cut
/// the busy ones too, and each would otherwise fail its next call.
pub const PING_ALL_AFTER_LOSS: Duration = Duration::from_secs(10);

/// Whether a pooled PostgreSQL connection idle for `idle_for` is pinged
/// before use: long idle, or a connection lately lost.
pub(crate) fn must_ping(idle_for: Duration) -> bool {
    idle_for >= PING_IF_IDLE_FOR
        || orgplane_platform::error::lost_database::within(PING_ALL_AFTER_LOSS)
}

/// How often [`report_pool_use`] samples a pool.
pub const POOL_SAMPLE_INTERVAL: Duration = Duration::from_secs(5);

/// Reports how much of `db`'s pool `service` uses, every
/// [`POOL_SAMPLE_INTERVAL`] until `stop`: the gauges
/// `orgplane_db_pool_connections{service, state="in_use"|"idle"}` and
/// `orgplane_db_pool_max_connections{service}`. A pool always at its
/// maximum makes callers wait (and PostgreSQL's `max_connections` bounds
/// the sum over every replica: see [`POSTGRES_CONNECTIONS`]).
pub fn report_pool_use(
    db: &DatabaseConnection,
    service: &'static str,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let db = db.clone();
    tokio::spawn(async move {
        let sampling = async {
            let mut ticks = tokio::time::interval(POOL_SAMPLE_INTERVAL);
            loop {
                ticks.tick().await;
                let (size, idle, max) = match db.get_database_backend() {
                    sea_orm::DbBackend::Postgres => {
                        let pool = db.get_postgres_connection_pool();
                        (
                            pool.size(),
                            pool.num_idle(),
                            pool.options().get_max_connections(),
                        )
                    }
                    _ => {
                        let pool = db.get_sqlite_connection_pool();
                        (
                            pool.size(),
                            pool.num_idle(),
                            pool.options().get_max_connections(),
                        )
                    }
                };
                let idle = idle as f64;
                metrics::gauge!("orgplane_db_pool_connections", "service" => service, "state" => "in_use")
                    .set((f64::from(size) - idle).max(0.0));
                metrics::gauge!("orgplane_db_pool_connections", "service" => service, "state" => "idle")
                    .set(idle);
                metrics::gauge!("orgplane_db_pool_max_connections", "service" => service)
                    .set(f64::from(max));
            }
        };
        tokio::select! {
            () = sampling => {}
            () = stop => {}
        }
    });
}

/// A migration adding a nullable 64-bit integer column to a table the
/// storage crate shapes for every service (each service names it in its own
/// sequence): see [`crate::outbox::add_expiry`],
/// [`crate::idempotency::add_holder`].
#[derive(Debug)]
pub struct AddBigIntColumn {
    /// The migration's name in the service's sequence.
    pub name: &'static str,
    /// The table.
    pub table: &'static str,
    /// The new column.
    pub column: &'static str,
}

impl sea_orm_migration::MigrationName for AddBigIntColumn {
    fn name(&self) -> &str {
        self.name
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl sea_orm_migration::MigrationTrait for AddBigIntColumn {
    async fn up(&self, manager: &sea_orm_migration::SchemaManager) -> Result<(), sea_orm::DbErr> {
        manager
            .alter_table(
                sea_orm::sea_query::Table::alter()
                    .table(self.table)
                    .add_column(sea_orm_migration::schema::big_integer_null(self.column))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &sea_orm_migration::SchemaManager) -> Result<(), sea_orm::DbErr> {
        manager
            .alter_table(
                sea_orm::sea_query::Table::alter()
                    .table(self.table)
                    .drop_column(self.column)
                    .to_owned(),
            )
            .await
    }
}

/// Connections of a SQLite pool. Each is a thread (sqlx runs every SQLite
/// connection on its own) and a page cache; WAL lets them read at once, one
/// of them writes at a time. On two cores, four runnable connection threads
/// per service are plenty: eight only switched between more of them (four:
/// `ListProjects` +9–14 %, run admission +2–4 %, the peak 123 → 112 MiB,
/// in pairs minutes apart; `BENCHMARKS.md`). (Before the services cached
/// what every call reads, four cost the reads a quarter: they no longer
/// touch the database.)
pub const SQLITE_CONNECTIONS: u32 = 4;
/// Page cache of each SQLite connection, in KiB (SQLite's default is
/// 2,000): the file's pages stay in the kernel's page cache as well, and
/// eight connections (then) of four services at the default held ~50 MB of
/// `orgplane dev` once a database had grown; 512 → 256 KiB saved another
/// 12 MB at the same `ListProjects` and run admission rates
/// (`BENCHMARKS.md`).
pub const SQLITE_CACHE_KIB: u32 = 256;
/// Prepared statements each SQLite connection keeps (sqlx's default is
/// 100). A batched write's statement has one shape per batch size (an
/// `INSERT` of 37 rows, an `IN` of 37 ids), so a connection of the group
/// commit soon holds a hundred statements of a few KiB each, in SQLite's
/// own memory: 33 MiB of `orgplane dev` at the end of the benchmark, 11
/// at 16 — the peak 159 → 134 MiB at the same rates; 8 cost run admission
/// a sixth of its throughput in re-preparing (`BENCHMARKS.md`). At 16,
/// once other memory was saved, re-preparing was still 6 % of `orgplane
/// dev` in run admission; 32 took 0–8 % of its CPU per run for a peak of
/// 128 MiB (from 125). The statements every call runs are used most
/// recently and stay.
pub const SQLITE_STATEMENTS: usize = 32;

/// Which pool `db` is: the address of its options, shared by every clone
/// of the pool, and the options themselves (hold them while the address
/// keys something, so that it is not reused). `None` for a backend without
/// a sqlx pool.
pub(crate) fn pool_identity(
    db: &DatabaseConnection,
) -> Option<(usize, Arc<dyn Any + Send + Sync>)> {
    let options: Arc<dyn Any + Send + Sync> = match db.get_database_backend() {
        DbBackend::Sqlite => db.get_sqlite_connection_pool().connect_options(),
        DbBackend::Postgres => db.get_postgres_connection_pool().connect_options(),
        _ => return None,
    };
    Some((Arc::as_ptr(&options) as *const () as usize, options))
}

/// State kept once per database pool (every clone of a pool shares it), in
/// a `static`, and forgotten once the pool is dropped.
///
/// Why a weak reference to the pool's options beside each entry: it keeps
/// the address that keys the entry from being reused by a new pool while
/// the entry lives, and tells when the pool is gone. A process holds a
/// handful of pools (one per service), so the entries are a short list.
pub(crate) struct PerPool<T> {
    entries: Mutex<Vec<PoolEntry<T>>>,
}

/// One pool's state in a [`PerPool`]: its address, its options (weakly) and
/// the state.
type PoolEntry<T> = (usize, Weak<dyn Any + Send + Sync>, Arc<T>);

impl<T> PerPool<T> {
    pub(crate) const fn new() -> Self {
        PerPool {
            entries: Mutex::new(Vec::new()),
        }
    }

    /// The state of `db`'s pool, made by `make` the first time (when the
    /// entries of pools dropped since are forgotten). `None` for a backend
    /// without a sqlx pool.
    pub(crate) fn of(&self, db: &DatabaseConnection, make: impl FnOnce() -> T) -> Option<Arc<T>> {
        let (address, options) = pool_identity(db)?;
        let mut entries = self.entries.lock().expect("the per-pool state's lock");
        if let Some((_, _, state)) = entries.iter().find(|(known, _, _)| *known == address) {
            return Some(state.clone());
        }
        entries.retain(|(_, pool, _)| pool.strong_count() > 0);
        let state = Arc::new(make());
        entries.push((address, Arc::downgrade(&options), state.clone()));
        Some(state)
    }

    /// How many pools have state here (dropped ones included until the next
    /// new pool sweeps them).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.lock().unwrap().len()
    }
}

/// The process's turn to write a SQLite database, held from a hot write
/// transaction's `BEGIN` to its commit; `None` (no wait) on PostgreSQL.
///
/// Why: SQLite takes one writer at a time, and a connection that finds
/// another writing waits in its busy handler, which sleeps 1, 2, 5, 10 …
/// up to 100 ms between tries. Two group commits and the run leases of one
/// database took turns that way: 12 ms a batch, most of it asleep
/// (`BENCHMARKS.md`). Writers taking turns here queue in order and start
/// the moment the previous one committed. A writer that does not take a
/// turn still works: it meets the busy handler as before.
pub async fn sqlite_write_turn(
    db: &DatabaseConnection,
) -> Option<tokio::sync::OwnedMutexGuard<()>> {
    /// One turn per database.
    static TURNS: PerPool<tokio::sync::Mutex<()>> = PerPool::new();
    if db.get_database_backend() != DbBackend::Sqlite {
        return None;
    }
    let turn = TURNS.of(db, Default::default)?;
    Some(turn.lock_owned().await)
}

/// `options` without the idle timeout and maximum lifetime of sqlx's
/// defaults (10 and 30 minutes) and without a minimum of connections, so
/// that sqlx starts no task of its own for the pool: neither the
/// maintenance task nor the one that opens the minimum beside the
/// connection `connect` opens and keeps (no idle timeout).
///
/// Why no minimum: on a new SQLite file both connections switch it to
/// WAL, which needs an exclusive lock that no busy timeout waits for, and
/// one fails with "database is locked" (24 new files in 3,000; `orgplane
/// dev` on a new data directory opens four).
///
/// Why no maintenance task: sqlx 0.9.0's sweeps `0..num_idle` idle
/// connections, and `num_idle` briefly wraps below zero when a connection
/// is taken in the instant after another is given back; read then, the
/// sweep runs some 10^19 times without yielding: a runtime worker lost at
/// 100 % CPU, and a process that cannot finish stopping (seen here once,
/// `orgplane dev` after Ctrl-C; sqlx issue #3645, fixed by pull request
/// #4289 in no released version yet). What the two settings gave is not
/// needed: the pools stay small (a PostgreSQL pool keeps the connections
/// its busiest moment opened, at most `--database-connections`), and a
/// connection PostgreSQL drops is found by the pings before use.
fn without_pool_maintenance(options: &mut ConnectOptions) -> &mut ConnectOptions {
    options
        .idle_timeout(None)
        .max_lifetime(None)
        .min_connections(0)
}

/// Opens a pool on `target`, creating the SQLite file or the schema when
/// missing.
pub async fn connect(target: &DbTarget) -> anyhow::Result<DatabaseConnection> {
    match target {
        DbTarget::Sqlite(path) => {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            let mut options = ConnectOptions::new(format!("sqlite://{}", path.display()));
            without_pool_maintenance(&mut options)
                .max_connections(SQLITE_CONNECTIONS)
                .sqlx_logging(false)
                // The "server" is a thread of this process: nothing can drop
                // a connection, and sqlx's ping on every acquire was a hand-off
                // to that thread and back on each statement.
                .test_before_acquire(false)
                .map_sqlx_sqlite_opts(|o: SqliteConnectOptions| {
                    o.create_if_missing(true)
                        .journal_mode(SqliteJournalMode::Wal)
                        .synchronous(SqliteSynchronous::Normal)
                        .busy_timeout(Duration::from_secs(10))
                        .foreign_keys(true)
                        .pragma("cache_size", format!("-{SQLITE_CACHE_KIB}"))
                        .statement_cache_capacity(SQLITE_STATEMENTS)
                });
            Database::connect(options)
                .await
                .with_context(|| format!("opening {}", path.display()))
        }
        DbTarget::Postgres {
            url,
            schema,
            connections,
            readers,
        } => {
            if !schema
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                bail!("invalid schema name {schema:?}");
            }
            let mut bootstrap = ConnectOptions::new(url.clone());
            bootstrap.max_connections(1).sqlx_logging(false);
            let db = Database::connect(bootstrap)
                .await
                .with_context(|| format!("connecting to {}", redact(url)))?;
            db.execute_unprepared(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
                .await
                .context("creating the schema")?;
            db.close().await?;
            let mut options = ConnectOptions::new(url.clone());
            without_pool_maintenance(&mut options)
                .max_connections(*connections)
                .sqlx_logging(false)
                // sqlx pings every connection as it returns to the pool (no
                // option turns that off) and, by default, again before
                // handing it out: three round trips for a one-statement read.
                // The second ping is kept for what it finds: a connection
                // the server or a proxy dropped while idle, and a busy
                // pool's connections cut by a restart (BENCHMARKS.md).
                .test_before_acquire(false)
                .map_sqlx_postgres_before_acquire(|connection, meta| {
                    Box::pin(async move {
                        if must_ping(meta.idle_for) {
                            sea_orm::sqlx::Connection::ping(connection).await?;
                        }
                        Ok(true)
                    })
                })
                // The schema as a startup option, not a `SET` once connected:
                // connections opened outside the pool from its options
                // (`postgres_reads`) get it too.
                .map_sqlx_postgres_opts({
                    let schema = schema.clone();
                    move |o: PgConnectOptions| o.options([("search_path", schema.as_str())])
                });
            let db = Database::connect(options)
                .await
                .with_context(|| format!("connecting to {}", redact(url)))?;
            crate::postgres_reads::register(&db, *readers);
            // Claims of this process (idempotent requests in flight) are
            // freed as soon as it dies.
            crate::liveness::hold(url);
            Ok(db)
        }
    }
}

/// Opens `target` and brings its tables up to date with `M`.
///
/// On PostgreSQL, replicas of a service starting together would race to
/// create the same schema and tables (one fails on a duplicate catalog
/// row): each holds a session advisory lock named after the schema while
/// it creates and migrates, so the others wait and then find the tables up
/// to date. A process that dies holding it releases it with its connection.
pub async fn connect_and_migrate<M: MigratorTrait>(
    target: &DbTarget,
) -> anyhow::Result<DatabaseConnection> {
    let DbTarget::Postgres { url, schema, .. } = target else {
        // The pool that migrated is closed and a new one opened: a SQLite
        // connection prepares statements against the schema it last read
        // (it reads it again only when a statement it runs finds it
        // changed), so one that read it while another connection migrated
        // may refuse to prepare, say, an `ON CONFLICT` on a unique index
        // made since ("does not match any PRIMARY KEY or UNIQUE
        // constraint": a rare failure of tests/identity_storage.rs).
        let db = connect(target).await?;
        M::up(&db, None).await.context("running migrations")?;
        db.close()
            .await
            .context("closing the migrations' connections")?;
        return connect(target).await;
    };
    let mut options = ConnectOptions::new(url.clone());
    options.max_connections(1).sqlx_logging(false);
    let lock = Database::connect(options)
        .await
        .with_context(|| format!("connecting to {}", redact(url)))?;
    let key = format!("orgplane migrations of {schema}");
    lock.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_advisory_lock(hashtextextended($1, 0))",
        [key.clone().into()],
    ))
    .await
    .context("waiting for other replicas' migrations")?;
    let migrated = async {
        let db = connect(target).await?;
        M::up(&db, None).await.context("running migrations")?;
        anyhow::Ok(db)
    }
    .await;
    // Closing the connection releases the lock whatever happened.
    let _ = lock.close().await;
    migrated
}

/// An index for [`create_indexes`]: table, name, columns, unique.
pub type IndexSpec<'a> = (&'a str, &'a str, &'a [&'a str], bool);

/// Creates indexes in a migration.
pub async fn create_indexes(
    manager: &sea_orm_migration::SchemaManager<'_>,
    indexes: &[IndexSpec<'_>],
) -> Result<(), sea_orm::DbErr> {
    for (table, name, columns, unique) in indexes {
        let mut index = sea_orm_migration::prelude::Index::create();
        index.name(*name).table(table.to_string());
        for column in *columns {
            index.col(column.to_string());
        }
        if *unique {
            index.unique();
        }
        manager.create_index(index.to_owned()).await?;
    }
    Ok(())
}

/// Drops a PostgreSQL schema (tests clean up their own).
pub async fn drop_schema(url: &str, schema: &str) -> anyhow::Result<()> {
    let db = Database::connect(url).await?;
    if db.get_database_backend() == DbBackend::Postgres {
        db.execute_unprepared(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .await?;
    }
    db.close().await?;
    Ok(())
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{}@{}", &url[..scheme_end + 3], user, &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// A SQLite database in a temporary directory (kept while the directory
/// lives) with an empty table `t (n INTEGER PRIMARY KEY)`, for this crate's
/// tests.
#[cfg(test)]
pub(crate) async fn scratch_numbers() -> (tempfile::TempDir, DatabaseConnection) {
    let dir = tempfile::tempdir().unwrap();
    let db = connect(&DbTarget::Sqlite(dir.path().join("t.db")))
        .await
        .unwrap();
    db.execute_unprepared("CREATE TABLE t (n INTEGER PRIMARY KEY)")
        .await
        .unwrap();
    (dir, db)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn state_per_pool_is_shared_by_clones_and_forgotten_with_the_pool() {
        static STATE: PerPool<()> = PerPool::new();
        let (_dir, db) = scratch_numbers().await;
        let first = STATE.of(&db, || ()).unwrap();
        let again = STATE.of(&db.clone(), || unreachable!("made once")).unwrap();
        assert!(Arc::ptr_eq(&first, &again), "every clone shares the state");
        let (_other_dir, other) = scratch_numbers().await;
        let others = STATE.of(&other, || ()).unwrap();
        assert!(!Arc::ptr_eq(&first, &others), "another pool has its own");
        assert_eq!(STATE.len(), 2);
        let forgotten = Arc::downgrade(&first);
        drop((first, again));
        db.close().await.unwrap();
        let (_third_dir, third) = scratch_numbers().await;
        STATE.of(&third, || ()).unwrap();
        assert_eq!(STATE.len(), 2, "the dropped pool's state forgotten");
        assert_eq!(forgotten.strong_count(), 0, "and dropped");
    }

    /// sqlx starts no task of its own for the pools (see
    /// [`without_pool_maintenance`]): none of the settings that need one is
    /// on.
    #[tokio::test]
    async fn pools_have_no_maintenance_task() {
        let (_dir, db) = scratch_numbers().await;
        let options = db.get_sqlite_connection_pool().options();
        assert_eq!(options.get_idle_timeout(), None);
        assert_eq!(options.get_max_lifetime(), None);
        assert_eq!(options.get_min_connections(), 0);
    }

    /// A new SQLite file opens every time: two connections switching it
    /// to WAL at once failed one in 125 opens (see
    /// [`without_pool_maintenance`]).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn new_sqlite_databases_open_every_time() {
        let dir = tempfile::tempdir().unwrap();
        for n in 0..1000 {
            let path = dir.path().join(format!("{n}.db"));
            let db = connect(&DbTarget::Sqlite(path))
                .await
                .unwrap_or_else(|err| panic!("{err:#}"));
            db.close().await.unwrap();
        }
    }

    #[tokio::test]
    async fn writers_of_one_sqlite_database_take_turns() {
        let (_dir, db) = scratch_numbers().await;
        let (_other_dir, other) = scratch_numbers().await;
        let first = sqlite_write_turn(&db).await.expect("SQLite has turns");
        // Every clone of the pool shares the turn; another database does not.
        let clone = db.clone();
        let waiting = tokio::spawn(async move {
            let _turn = sqlite_write_turn(&clone).await;
            clone
                .execute_unprepared("INSERT INTO t VALUES (2)")
                .await
                .unwrap();
        });
        drop(sqlite_write_turn(&other).await.expect("its own turn"));
        db.execute_unprepared("INSERT INTO t VALUES (1)")
            .await
            .unwrap();
        // Time enough for an insert that did not wait.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiting.is_finished(), "waits for the turn held");
        drop(first);
        waiting.await.unwrap();
        let rows = db
            .query_all_raw(Statement::from_string(
                DbBackend::Sqlite,
                "SELECT n FROM t ORDER BY n",
            ))
            .await
            .unwrap();
        assert_eq!(rows.len(), 2);
    }

    /// The bundled SQLite is built with the options `.cargo/config.toml`
    /// sets (`LIBSQLITE3_FLAGS`; one set in the environment replaces them):
    /// without them every read re-plans its statement, every allocation
    /// takes a process-wide mutex, a group commit's batch past 64 KiB
    /// of changed pages writes a temporary file, and every connection of
    /// the process takes its pages from one cache shared with all others.
    #[tokio::test]
    async fn sqlite_is_built_with_the_options_of_cargo_config() {
        let (_dir, db) = scratch_numbers().await;
        let rows = db
            .query_all_raw(Statement::from_string(
                DbBackend::Sqlite,
                "PRAGMA compile_options",
            ))
            .await
            .unwrap();
        let options: Vec<String> = rows
            .iter()
            .map(|row| row.try_get_by_index(0).unwrap())
            .collect();
        for option in [
            "ENABLE_QPSG",
            "DEFAULT_MEMSTATUS=0",
            "STMTJRNL_SPILL=4194304",
        ] {
            assert!(
                options.iter().any(|o| o == option),
                "{option} missing from {options:?}"
            );
        }
        assert!(
            !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
            "one page cache shared by every connection: {options:?}"
        );
    }

    #[test]
    fn targets() {
        let dir = Path::new("/data");
        assert_eq!(
            DbTarget::for_service(None, dir, "", "identity").unwrap(),
            DbTarget::Sqlite("/data/identity.db".into())
        );
        assert_eq!(
            DbTarget::for_service(Some("postgres://u@h/db"), dir, "", "identity").unwrap(),
            DbTarget::Postgres {
                url: "postgres://u@h/db".into(),
                schema: "identity".into(),
                connections: POSTGRES_CONNECTIONS,
                readers: POSTGRES_READERS,
            }
        );
        let small = DbTarget::for_service(Some("postgres://u@h/db"), dir, "", "identity")
            .unwrap()
            .with_connections(3)
            .unwrap();
        assert!(matches!(small, DbTarget::Postgres { connections: 3, .. }));
        let small = small.with_readers(0);
        assert!(matches!(
            small,
            DbTarget::Postgres {
                connections: 3,
                readers: 0,
                ..
            }
        ));
        assert!(small.with_connections(1).is_err());
        assert_eq!(
            DbTarget::Sqlite("/data/identity.db".into())
                .with_connections(1)
                .unwrap(),
            DbTarget::Sqlite("/data/identity.db".into())
        );
        assert!(DbTarget::for_service(Some("mysql://x"), dir, "", "identity").is_err());
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u@h/db");
    }
}

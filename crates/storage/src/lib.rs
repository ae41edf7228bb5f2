//! How orgplane services keep state: connections and per-service schemas
//! ([`db`]), the activity outbox ([`activity`], [`outbox`]), group commit,
//! idempotent creations, keyset pages ([`page`], read from SQLite on the
//! caller's thread by [`sqlite_reads`], from PostgreSQL outside the pool by
//! [`postgres_reads`]), etags, read caches, the
//! purge of deleted organizations ([`deletions`]), whether a process
//! lives ([`liveness`]), background work one
//! replica does at a time ([`exclusive`]) and changes every replica hears
//! at once ([`changes`]).

pub mod activity;
pub mod changes;
pub mod db;
pub mod deletions;
pub mod etag;
pub mod exclusive;
pub mod group_commit;
pub mod idempotency;
pub mod liveness;
pub mod outbox;
pub mod page;
pub mod postgres_reads;
pub mod read_cache;
pub mod sqlite_reads;
pub mod statement_shapes;

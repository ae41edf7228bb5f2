//! What every orgplane service shares: errors and their wire mapping,
//! validation, keyset pagination, principals, the internal PKI and mTLS,
//! the server builder with its layers, how a service is assembled
//! ([`service`]), database access, the activity outbox, the role →
//! permission table and the access checker, restrictions, telemetry and
//! shutdown.

pub mod access;
pub mod activity;
pub mod authz;
pub mod client;
pub mod db;
pub mod deletions;
pub mod error;
pub mod etag;
pub mod group_commit;
pub mod grpc;
pub mod idempotency;
pub mod layers;
pub mod outbox;
pub mod page;
pub mod peers;
pub mod pki;
pub mod principal;
pub mod rate_limit;
pub mod read_cache;
pub mod restriction;
pub mod secrets;
pub mod server;
pub mod service;
pub mod shutdown;
pub mod statement_shapes;
pub mod tags;
pub mod telemetry;
pub mod time;
pub mod validate;

pub use error::{Error, Result};

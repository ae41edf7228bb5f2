//! The one error type of orgplane's domain code, and its one mapping to the
//! wire (`google.rpc.Status` with details).
//!
//! Domain code returns [`Error`]; only the gRPC adapters turn it into a
//! `tonic::Status`, through the exhaustive `match` in [`Error::into_status`].
//! Storage errors are mapped to domain errors by `Error::from_db` and
//! `From<DbErr>`, with the `db` feature (which `orgplane-storage` turns on):
//! the orphan rule puts every conversion of [`Error`] beside it, and a
//! process without a database (the gateway) compiles no database driver.

use std::{collections::HashMap, fmt, time::Duration};

#[cfg(feature = "db")]
use sea_orm::{DbErr, SqlErr};
use tonic_types::{ErrorDetails, StatusExt};

/// The `ErrorInfo.domain` of every orgplane error.
pub const ERROR_DOMAIN: &str = "orgplane.dev";

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// Path of the field, e.g. `user.email`.
    pub field: String,
    /// What is wrong with it.
    pub description: String,
}

/// A domain error. Each variant maps to exactly one gRPC code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad request fields: `INVALID_ARGUMENT` with one `BadRequest` violation
    /// per field.
    #[error("invalid argument: {}", describe_violations(.0))]
    InvalidArgument(Vec<FieldViolation>),
    /// Missing, bad, expired or revoked credentials: `UNAUTHENTICATED`.
    #[error("{message}")]
    Unauthenticated {
        /// Stable reason, e.g. `INVALID_CREDENTIALS`, `ACCOUNT_LOCKED`.
        reason: &'static str,
        /// Human-readable message.
        message: String,
    },
    /// The caller can see the resource but may not do this: `PERMISSION_DENIED`.
    #[error("{message}")]
    PermissionDenied {
        /// Stable reason, e.g. `MISSING_SCOPE`.
        reason: &'static str,
        /// Human-readable message.
        message: String,
    },
    /// No such resource, or one the caller may not see: `NOT_FOUND`.
    #[error("{kind} {name:?} not found")]
    NotFound {
        /// Kind of resource, e.g. `user`.
        kind: &'static str,
        /// How it was addressed.
        name: String,
    },
    /// A unique name or key is taken: `ALREADY_EXISTS`.
    #[error("{kind} {name:?} already exists")]
    AlreadyExists {
        /// Kind of resource.
        kind: &'static str,
        /// The name that is taken.
        name: String,
    },
    /// A rule of the system forbids the change now: `FAILED_PRECONDITION`.
    #[error("{message}")]
    FailedPrecondition {
        /// Stable reason, e.g. `LAST_OWNER`, `INVITATION_EXPIRED`.
        reason: &'static str,
        /// Human-readable message.
        message: String,
    },
    /// A concurrent change won (stale etag): `ABORTED`.
    #[error("{message}")]
    Aborted {
        /// Stable reason, e.g. `STALE_ETAG`.
        reason: &'static str,
        /// Human-readable message.
        message: String,
    },
    /// A limit was hit: `RESOURCE_EXHAUSTED`, with a retry delay when known.
    #[error("{message}")]
    ResourceExhausted {
        /// Stable reason, e.g. `RATE_LIMITED`.
        reason: &'static str,
        /// Human-readable message.
        message: String,
        /// When to try again.
        retry_after: Option<Duration>,
    },
    /// The method exists in the contract but is not served yet: `UNIMPLEMENTED`.
    #[error("{0}")]
    Unimplemented(String),
    /// A dependency is down; retrying may help: `UNAVAILABLE`.
    #[error("{0}")]
    Unavailable(String),
    /// This process has more of this work queued than it takes; refused at
    /// once rather than queued: `UNAVAILABLE` with a reason and a retry
    /// delay (`RetryInfo`).
    #[error("{message}")]
    Overloaded {
        /// Stable reason, e.g. `PASSWORD_HASHING_BUSY`.
        reason: &'static str,
        /// Human-readable message.
        message: String,
        /// When to try again.
        retry_after: Duration,
    },
    /// A bug or an unexpected storage failure: `INTERNAL`. The detail is
    /// logged, never sent.
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

fn describe_violations(violations: &[FieldViolation]) -> String {
    violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Shorthand for domain results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// One invalid field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Error::InvalidArgument(vec![FieldViolation {
            field: field.into(),
            description: description.into(),
        }])
    }

    /// Not found.
    pub fn not_found(kind: &'static str, name: impl fmt::Display) -> Self {
        Error::NotFound {
            kind,
            name: name.to_string(),
        }
    }

    /// Already exists.
    pub fn already_exists(kind: &'static str, name: impl fmt::Display) -> Self {
        Error::AlreadyExists {
            kind,
            name: name.to_string(),
        }
    }

    /// Unauthenticated with a reason.
    pub fn unauthenticated(reason: &'static str, message: impl Into<String>) -> Self {
        Error::Unauthenticated {
            reason,
            message: message.into(),
        }
    }

    /// Permission denied with a reason.
    pub fn permission_denied(reason: &'static str, message: impl Into<String>) -> Self {
        Error::PermissionDenied {
            reason,
            message: message.into(),
        }
    }

    /// Failed precondition with a reason.
    pub fn precondition(reason: &'static str, message: impl Into<String>) -> Self {
        Error::FailedPrecondition {
            reason,
            message: message.into(),
        }
    }

    /// A copy of this error for another caller, when one failure answers
    /// several (a failed group commit): the same variant and message.
    pub fn duplicate(&self) -> Self {
        match self {
            Error::InvalidArgument(violations) => Error::InvalidArgument(violations.clone()),
            Error::Unauthenticated { reason, message } => Error::unauthenticated(reason, message),
            Error::PermissionDenied { reason, message } => {
                Error::permission_denied(reason, message)
            }
            Error::NotFound { kind, name } => Error::not_found(kind, name),
            Error::AlreadyExists { kind, name } => Error::already_exists(kind, name),
            Error::FailedPrecondition { reason, message } => Error::precondition(reason, message),
            Error::Aborted { reason, message } => Error::Aborted {
                reason,
                message: message.clone(),
            },
            Error::ResourceExhausted {
                reason,
                message,
                retry_after,
            } => Error::ResourceExhausted {
                reason,
                message: message.clone(),
                retry_after: *retry_after,
            },
            Error::Unimplemented(message) => Error::Unimplemented(message.clone()),
            Error::Unavailable(message) => Error::Unavailable(message.clone()),
            Error::Overloaded {
                reason,
                message,
                retry_after,
            } => Error::Overloaded {
                reason,
                message: message.clone(),
                retry_after: *retry_after,
            },
            Error::Internal(error) => Error::Internal(anyhow::anyhow!("{error:#}")),
        }
    }

    /// Maps a storage error: a unique violation becomes `AlreadyExists` of the
    /// given resource, the rest as `From<DbErr>` maps it.
    #[cfg(feature = "db")]
    pub fn from_db(err: DbErr, kind: &'static str, name: impl fmt::Display) -> Self {
        match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => Error::already_exists(kind, name),
            _ => Error::from(err),
        }
    }

    /// The wire form: a `tonic::Status` with `google.rpc` details.
    pub fn into_status(self) -> tonic::Status {
        use tonic::Code;
        let message = self.to_string();
        let reason_info = |reason: &str| {
            ErrorDetails::with_error_info(reason, ERROR_DOMAIN, HashMap::<String, String>::new())
        };
        match self {
            Error::InvalidArgument(violations) => {
                let details = ErrorDetails::with_bad_request(
                    violations
                        .into_iter()
                        .map(|v| tonic_types::FieldViolation::new(v.field, v.description))
                        .collect::<Vec<_>>(),
                );
                tonic::Status::with_error_details(Code::InvalidArgument, message, details)
            }
            Error::Unauthenticated { reason, .. } => tonic::Status::with_error_details(
                Code::Unauthenticated,
                message,
                reason_info(reason),
            ),
            Error::PermissionDenied { reason, .. } => tonic::Status::with_error_details(
                Code::PermissionDenied,
                message,
                reason_info(reason),
            ),
            Error::NotFound { .. } => tonic::Status::not_found(message),
            Error::AlreadyExists { .. } => tonic::Status::already_exists(message),
            Error::FailedPrecondition { reason, .. } => tonic::Status::with_error_details(
                Code::FailedPrecondition,
                message,
                reason_info(reason),
            ),
            Error::Aborted { reason, .. } => {
                tonic::Status::with_error_details(Code::Aborted, message, reason_info(reason))
            }
            Error::ResourceExhausted {
                reason,
                retry_after,
                ..
            } => {
                let mut details = reason_info(reason);
                if let Some(delay) = retry_after {
                    details.set_retry_info(Some(delay));
                }
                tonic::Status::with_error_details(Code::ResourceExhausted, message, details)
            }
            Error::Unimplemented(_) => tonic::Status::unimplemented(message),
            Error::Unavailable(_) => tonic::Status::unavailable(message),
            Error::Overloaded {
                reason,
                retry_after,
                ..
            } => {
                let mut details = reason_info(reason);
                details.set_retry_info(Some(retry_after));
                tonic::Status::with_error_details(Code::Unavailable, message, details)
            }
            Error::Internal(err) => {
                tracing::error!(error = format!("{err:#}"), "internal error");
                tonic::Status::internal("internal error")
            }
        }
    }
}

impl Error {
    /// A failed call to another orgplane service, as this service reports it:
    /// a dependency that is down or slow is `UNAVAILABLE` (retrying may
    /// help); anything else is a bug on one side and stays internal.
    pub fn from_upstream(service: &str, status: tonic::Status) -> Self {
        use tonic::Code;
        match status.code() {
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => {
                Error::Unavailable(format!("{service} is unavailable: {}", status.message()))
            }
            code => Error::Internal(anyhow::anyhow!(
                "{service} answered {code:?}: {}",
                status.message()
            )),
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(err: Error) -> Self {
        err.into_status()
    }
}

/// A database that cannot be reached, restarts or drops connections is a
/// dependency down: `UNAVAILABLE`, which clients retry. Anything else the
/// database answers is a bug on one side: `INTERNAL`.
#[cfg(feature = "db")]
impl From<DbErr> for Error {
    fn from(err: DbErr) -> Self {
        match database_unavailable(&err) {
            Some(why) => {
                if why == Unavailable::ConnectionLost {
                    lost_database::mark();
                }
                Error::Unavailable(format!("the database is unavailable: {err}"))
            }
            None => Error::Internal(anyhow::Error::new(err)),
        }
    }
}

/// Why the database is unavailable to a call.
#[cfg(feature = "db")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unavailable {
    /// A connection failed or the server ended it: others may be cut too.
    ConnectionLost,
    /// No connection could be had in time, or the pool is closed: the
    /// connections it holds are not known to be cut (a busy pool).
    NoConnection,
}

/// When this process last lost a database connection: database pools
/// that skip checking a connection before handing it out check every one
/// for a while after (`orgplane_storage::db`), so that the connections a
/// restart cut are replaced rather than failing one call each.
#[cfg(feature = "db")]
pub mod lost_database {
    use std::{
        sync::{
            LazyLock,
            atomic::{AtomicU64, Ordering},
        },
        time::{Duration, Instant},
    };

    static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);
    /// Milliseconds after [`EPOCH`] of the last loss, plus one (0: none).
    static LAST: AtomicU64 = AtomicU64::new(0);

    /// A call lost its database connection.
    pub fn mark() {
        let since = EPOCH.elapsed().as_millis() as u64;
        LAST.store(since + 1, Ordering::Relaxed);
    }

    /// Whether a call lost a database connection within `window`.
    pub fn within(window: Duration) -> bool {
        match LAST.load(Ordering::Relaxed) {
            0 => false,
            // Saturating: a mark stored by another thread after this one
            // read the clock must not overflow (a panic in a pool's hook).
            last => {
                let since = EPOCH.elapsed().as_millis() as u64;
                since.saturating_sub(last - 1) <= window.as_millis() as u64
            }
        }
    }
}

/// Whether `err` says the database could not be reached or lost the
/// connection (rather than refused the statement), and which: no
/// connection could be had in time or the pool closed; or the socket
/// failed, a connection could not be opened, or PostgreSQL answered a
/// connection exception (SQLSTATE class `08`) or an operator intervention
/// (`57P01`–`57P05`: shutdown, restart, crash, lost connection).
#[cfg(feature = "db")]
fn database_unavailable(err: &DbErr) -> Option<Unavailable> {
    use sea_orm::{ConnAcquireErr, RuntimeErr, sqlx};
    let runtime = match err {
        DbErr::ConnectionAcquire(ConnAcquireErr::Timeout) => {
            return Some(Unavailable::NoConnection);
        }
        DbErr::ConnectionAcquire(_) => return Some(Unavailable::ConnectionLost),
        DbErr::Conn(runtime) | DbErr::Exec(runtime) | DbErr::Query(runtime) => runtime,
        _ => return None,
    };
    let RuntimeErr::SqlxError(err) = runtime else {
        return matches!(err, DbErr::Conn(_)).then_some(Unavailable::ConnectionLost);
    };
    match err.as_ref() {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => Some(Unavailable::NoConnection),
        err => connection_lost(err).then_some(Unavailable::ConnectionLost),
    }
}

/// Whether `err`, met on a database connection, means the connection is
/// gone: the socket failed, or PostgreSQL answered a connection exception
/// or an operator intervention (see [`database_unavailable`]). Connections
/// kept outside a pool (`orgplane_storage::postgres_reads`) replace theirs
/// on it.
#[cfg(feature = "db")]
pub fn connection_lost(err: &sea_orm::sqlx::Error) -> bool {
    use sea_orm::sqlx::Error;
    match err {
        Error::Io(_) | Error::Tls(_) | Error::WorkerCrashed => true,
        Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03" | "57P05")
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;
    use tonic_types::StatusExt;

    use super::*;

    #[test]
    fn invalid_argument_carries_one_violation_per_field() {
        let err = Error::InvalidArgument(vec![
            FieldViolation {
                field: "username".into(),
                description: "must not be empty".into(),
            },
            FieldViolation {
                field: "email".into(),
                description: "is not an email address".into(),
            },
        ]);
        let status = err.into_status();
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let fields: Vec<_> = details
            .bad_request()
            .unwrap()
            .field_violations
            .iter()
            .map(|v| v.field.as_str())
            .collect();
        assert_eq!(fields, ["username", "email"]);
    }

    #[test]
    fn precondition_carries_a_stable_reason() {
        let status = Error::precondition("LAST_OWNER", "the last owner cannot leave").into_status();
        assert_eq!(status.code(), Code::FailedPrecondition);
        let info = status.get_error_details().error_info().cloned().unwrap();
        assert_eq!(info.reason, "LAST_OWNER");
        assert_eq!(info.domain, ERROR_DOMAIN);
    }

    #[cfg(feature = "db")]
    #[test]
    fn an_unreachable_database_is_unavailable_and_a_refused_statement_internal() {
        use std::sync::Arc;

        use sea_orm::{ConnAcquireErr, RuntimeErr, sqlx};

        let sqlx = |e: sqlx::Error| RuntimeErr::SqlxError(Arc::new(e));
        let mapped_to = |code: Code, errors: Vec<DbErr>| {
            for err in errors {
                let described = err.to_string();
                assert_eq!(Error::from(err).into_status().code(), code, "{described}");
            }
        };
        let unavailable = |errors| mapped_to(Code::Unavailable, errors);
        // The only test here that sees the database unavailable.
        let hour = std::time::Duration::from_secs(3600);
        unavailable(vec![
            DbErr::ConnectionAcquire(ConnAcquireErr::Timeout),
            DbErr::Conn(sqlx(sqlx::Error::PoolClosed)),
            DbErr::Query(sqlx(sqlx::Error::PoolTimedOut)),
        ]);
        assert!(
            !lost_database::within(hour),
            "a busy or closed pool lost no connection"
        );
        unavailable(vec![DbErr::Exec(sqlx(sqlx::Error::Io(
            std::io::Error::from(std::io::ErrorKind::ConnectionReset),
        )))]);
        assert!(lost_database::within(hour), "the loss is remembered");
        mapped_to(
            Code::Internal,
            vec![
                DbErr::Custom("a bug".into()),
                DbErr::Query(sqlx(sqlx::Error::RowNotFound)),
                DbErr::RecordNotFound("x".into()),
            ],
        );
    }

    #[test]
    fn internal_errors_hide_their_detail() {
        let status = Error::Internal(anyhow::anyhow!("disk on fire at /var/db")).into_status();
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("disk"));
    }
}

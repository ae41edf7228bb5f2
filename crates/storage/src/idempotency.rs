//! Idempotent requests (AIP-155): a creating method takes an optional
//! `request_id`, and a retry with the same id by the same caller within
//! [`RETENTION`] answers the first call's response instead of doing the
//! work again — the run is not submitted twice, the token not minted twice.
//!
//! Each service keeps the answers in its own `idempotency_keys` table
//! (migration [`CreateTable`], purge [`purge`]). A row is reserved before the
//! work (so a concurrent duplicate is told to wait, `ABORTED`
//! `REQUEST_IN_PROGRESS`, rather than doing it too), filled with the response
//! after, and deleted when the work fails (a retry may try again). Only a
//! hash of `(caller, method, request_id)` is stored, and the response is
//! sealed (ChaCha20-Poly1305) under a key derived from the `request_id`: a
//! copy of the database does not yield the secrets some creations answer
//! (tokens shown once) without the ids only their clients hold.
//!
//! A reserved row names the process doing the work
//! ([`crate::liveness::process_key`]): a retry that finds it pending while
//! that process is gone (a replica killed with the call in flight) takes
//! it over and does the work, at once rather than after [`PENDING_TIMEOUT`]
//! (which still frees rows whose process is unknown). What is not covered:
//! a process that dies between committing the work and recording its
//! answer — microseconds — leaves the work done and the row pending; a
//! retry does the work again (a creation answers `ALREADY_EXISTS`).

use std::{future::Future, time::Duration};

use prost::Message;
use rand::RngCore;
use ring::{aead, hkdf};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, sea_query::OnConflict,
};
use sha2::{Digest, Sha256};

use orgplane_platform::{
    Error,
    principal::Principal,
    time::{DAY, now_micros},
};

/// How long an answer is kept for retries.
pub const RETENTION: i64 = DAY;
/// How long a reserved row without an answer holds off duplicates: longer
/// than any request may run (the servers' request timeout is 30 s).
pub const PENDING_TIMEOUT: Duration = Duration::from_secs(60);

/// `idempotency_keys`: one row per `(caller, method, request_id)`.
pub mod entity {
    use sea_orm::entity::prelude::*;

    /// A request seen, and its answer once it has one.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "idempotency_keys")]
    pub struct Model {
        /// Hex SHA-256 of caller, method and `request_id`.
        #[sea_orm(primary_key, auto_increment = false)]
        pub key: String,
        /// Hex SHA-256 of the request's encoding: the same id with another
        /// request is refused.
        pub fingerprint: String,
        /// The sealed response; `None` while the work runs.
        pub response: Option<Vec<u8>>,
        /// Reserved (microseconds).
        pub create_time: i64,
        /// Purged after.
        pub expire_time: i64,
        /// The process doing the work ([`crate::liveness::process_key`]);
        /// `None` in rows from before processes were named.
        pub holder: Option<i64>,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

use entity::{ActiveModel, Column, Entity};

/// The migration creating `idempotency_keys`, under the name each service
/// gives it in its own sequence.
pub struct CreateTable(pub &'static str);

impl sea_orm_migration::MigrationName for CreateTable {
    fn name(&self) -> &str {
        self.0
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl sea_orm_migration::MigrationTrait for CreateTable {
    async fn up(&self, manager: &sea_orm_migration::SchemaManager) -> Result<(), DbErr> {
        use sea_orm_migration::schema::{big_integer, binary_null, string};
        manager
            .create_table(
                sea_orm::sea_query::Table::create()
                    .table("idempotency_keys")
                    .col(string("key").primary_key())
                    .col(string("fingerprint"))
                    .col(binary_null("response"))
                    .col(big_integer("create_time"))
                    .col(big_integer("expire_time"))
                    .to_owned(),
            )
            .await?;
        crate::db::create_indexes(
            manager,
            &[(
                "idempotency_keys",
                "idempotency_keys_expiry",
                &["expire_time"][..],
                false,
            )],
        )
        .await
    }

    async fn down(&self, manager: &sea_orm_migration::SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                sea_orm::sea_query::Table::drop()
                    .table("idempotency_keys")
                    .to_owned(),
            )
            .await
    }
}

/// The migration adding `idempotency_keys.holder`, under the name each
/// service gives it in its own sequence.
pub fn add_holder(name: &'static str) -> crate::db::AddBigIntColumn {
    crate::db::AddBigIntColumn {
        name,
        table: "idempotency_keys",
        column: "holder",
    }
}

/// Deletes the rows expired by `now`; returns how many.
pub async fn purge(db: &impl ConnectionTrait, now: i64) -> Result<u64, DbErr> {
    Ok(Entity::delete_many()
        .filter(Column::ExpireTime.lte(now))
        .exec(db)
        .await?
        .rows_affected)
}

/// Runs `work` once per `(principal, method, request_id)` within
/// [`RETENTION`] and answers its response to every retry; an empty
/// `request_id` just runs it. `request`, handed to `work`, must be the same
/// on a retry (its encoding is compared): another request under a used id
/// is `INVALID_ARGUMENT`. `db` is the service's, migrated with
/// [`CreateTable`].
pub async fn once<Req, Resp, Fut>(
    db: &DatabaseConnection,
    principal: &Principal,
    method: &str,
    request_id: String,
    request: Req,
    work: impl FnOnce(Req) -> Fut,
) -> Result<Resp, Error>
where
    Req: Message,
    Resp: Message + Default,
    Fut: Future<Output = Result<Resp, Error>>,
{
    if request_id.is_empty() {
        return work(request).await;
    }
    if uuid::Uuid::try_parse(&request_id).is_err() {
        return Err(Error::invalid("request_id", "must be a UUID"));
    }
    let fingerprint = fingerprint_of(&request);
    let (scope, key) = key_of(principal, method, &request_id);
    if let Some(answer) = reserve(db, &key, &fingerprint).await? {
        return open(&scope, &request_id, &answer);
    }
    match work(request).await {
        Ok(response) => {
            let sealed = seal(&scope, &request_id, &response.encode_to_vec())?;
            Entity::update_many()
                .col_expr(Column::Response, sealed.into())
                .filter(Column::Key.eq(key.as_str()))
                .exec(db)
                .await?;
            Ok(response)
        }
        Err(error) => {
            // Nothing was done: a retry may try again.
            Entity::delete_by_id(key).exec(db).await?;
            Err(error)
        }
    }
}

/// The scope of a request id (its caller and method; it binds the sealing
/// key) and the key of its row.
fn key_of(principal: &Principal, method: &str, request_id: &str) -> (String, String) {
    let scope = format!("{}\n{method}", principal.uuid);
    let key = hex::encode(Sha256::digest(format!("v1\n{scope}\n{request_id}")));
    (scope, key)
}

/// What a retry must send again under the same id.
fn fingerprint_of(request: &impl Message) -> String {
    hex::encode(Sha256::digest(request.encode_to_vec()))
}

/// Reserves `key` for this call, or answers the sealed response of the
/// call that holds it.
async fn reserve(
    db: &DatabaseConnection,
    key: &str,
    fingerprint: &str,
) -> Result<Option<Vec<u8>>, Error> {
    let now = now_micros();
    let row = ActiveModel {
        key: Set(key.to_owned()),
        fingerprint: Set(fingerprint.to_owned()),
        response: Set(None),
        create_time: Set(now),
        expire_time: Set(now + RETENTION),
        holder: Set(Some(crate::liveness::process_key())),
    };
    let inserted = Entity::insert(row)
        .on_conflict(OnConflict::column(Column::Key).do_nothing().to_owned())
        .exec_without_returning(db)
        .await?;
    if inserted == 1 {
        return Ok(None);
    }
    let held = Entity::find_by_id(key.to_owned())
        .one(db)
        .await?
        .ok_or_else(|| Error::Aborted {
            reason: "REQUEST_IN_PROGRESS",
            message: "a call with this request_id just ended without an answer: retry".into(),
        })?;
    let stale_pending = held.response.is_none()
        && (now - held.create_time > PENDING_TIMEOUT.as_micros() as i64
            || match held.holder {
                Some(process) => !crate::liveness::alive(db, process).await?,
                None => false,
            });
    if held.expire_time <= now || stale_pending {
        // Expired, or its call died (with its process, or long ago): take
        // the row over, unless another retry just did.
        let taken = Entity::update_many()
            .col_expr(Column::Fingerprint, fingerprint.into())
            .col_expr(Column::Response, Option::<Vec<u8>>::None.into())
            .col_expr(Column::CreateTime, now.into())
            .col_expr(Column::ExpireTime, (now + RETENTION).into())
            .col_expr(Column::Holder, crate::liveness::process_key().into())
            .filter(Column::Key.eq(key))
            .filter(Column::CreateTime.eq(held.create_time))
            .exec(db)
            .await?;
        if taken.rows_affected == 1 {
            return Ok(None);
        }
        return Err(in_progress());
    }
    if held.fingerprint != fingerprint {
        return Err(Error::invalid(
            "request_id",
            "was used for a different request",
        ));
    }
    held.response.map(Some).ok_or_else(in_progress)
}

fn in_progress() -> Error {
    Error::Aborted {
        reason: "REQUEST_IN_PROGRESS",
        message: "a call with this request_id is in progress: retry shortly".into(),
    }
}

/// The sealing key of one request: HKDF-SHA256 of its id, bound to the
/// caller and method.
fn key_for(scope: &str, request_id: &str) -> Result<aead::LessSafeKey, Error> {
    let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"orgplane idempotency v1");
    let info = [scope.as_bytes()];
    let prk = salt.extract(request_id.as_bytes());
    let okm = prk
        .expand(&info, &aead::CHACHA20_POLY1305)
        .map_err(|_| anyhow::anyhow!("deriving an idempotency key"))?;
    Ok(aead::LessSafeKey::new(aead::UnboundKey::from(okm)))
}

/// `nonce ‖ ciphertext ‖ tag`.
fn seal(scope: &str, request_id: &str, plain: &[u8]) -> Result<Vec<u8>, Error> {
    let key = key_for(scope, request_id)?;
    let mut nonce = [0u8; aead::NONCE_LEN];
    rand::rng().fill_bytes(&mut nonce);
    let mut sealed = plain.to_vec();
    key.seal_in_place_append_tag(
        aead::Nonce::assume_unique_for_key(nonce),
        aead::Aad::empty(),
        &mut sealed,
    )
    .map_err(|_| anyhow::anyhow!("sealing an idempotent response"))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// The response sealed by [`seal`], decoded.
fn open<Resp: Message + Default>(
    scope: &str,
    request_id: &str,
    sealed: &[u8],
) -> Result<Resp, Error> {
    let key = key_for(scope, request_id)?;
    if sealed.len() < aead::NONCE_LEN {
        return Err(anyhow::anyhow!("a stored idempotent response is truncated").into());
    }
    let (nonce, body) = sealed.split_at(aead::NONCE_LEN);
    let nonce = aead::Nonce::try_assume_unique_for_key(nonce)
        .map_err(|_| anyhow::anyhow!("a stored idempotent response has a bad nonce"))?;
    let mut body = body.to_vec();
    let plain = key
        .open_in_place(nonce, aead::Aad::empty(), &mut body)
        .map_err(|_| anyhow::anyhow!("a stored idempotent response does not open"))?;
    Ok(Resp::decode(&*plain).map_err(anyhow::Error::from)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_response_opens_only_with_its_request_id_and_scope() {
        let response = prost_types::Duration {
            seconds: 42,
            nanos: 7,
        };
        let id = "0192f7a0-0000-7000-8000-000000000001";
        let sealed = seal("u\nm", id, &response.encode_to_vec()).unwrap();
        assert!(!sealed.windows(1).all(|w| w[0] == 0));
        let opened: prost_types::Duration = open("u\nm", id, &sealed).unwrap();
        assert_eq!(opened, response);
        let other_id = "0192f7a0-0000-7000-8000-000000000002";
        assert!(open::<prost_types::Duration>("u\nm", other_id, &sealed).is_err());
        assert!(open::<prost_types::Duration>("v\nm", id, &sealed).is_err());
        assert!(open::<prost_types::Duration>("u\nm", id, &sealed[..5]).is_err());
    }
}

#[cfg(test)]
mod storage_tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use sea_orm_migration::{MigrationTrait, SchemaManager};

    use super::*;

    async fn store() -> (DatabaseConnection, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::connect(&crate::db::DbTarget::Sqlite(dir.path().join("t.db")))
            .await
            .unwrap();
        CreateTable("m").up(&SchemaManager::new(&db)).await.unwrap();
        add_holder("n").up(&SchemaManager::new(&db)).await.unwrap();
        (db, dir)
    }

    fn caller(uuid: &str) -> Principal {
        Principal::from_proto(orgplane_proto::common::Principal {
            kind: orgplane_proto::common::PrincipalKind::User as i32,
            uuid: uuid.into(),
            ..Default::default()
        })
        .unwrap()
    }

    const ID: &str = "0192f7a0-0000-7000-8000-000000000001";

    #[tokio::test]
    async fn a_retry_answers_the_first_response_and_does_no_work() {
        let (store, _dir) = store().await;
        let calls = AtomicUsize::new(0);
        let request = prost_types::Duration {
            seconds: 1,
            nanos: 0,
        };
        let work = |_| async {
            let n = calls.fetch_add(1, Ordering::SeqCst) as i64;
            Ok(prost_types::Duration {
                seconds: 100 + n,
                nanos: 0,
            })
        };
        let me = caller("u1");
        let first = once(&store, &me, "M", ID.into(), request, work)
            .await
            .unwrap();
        let again = once(&store, &me, "M", ID.into(), request, work)
            .await
            .unwrap();
        assert_eq!((first.seconds, again.seconds), (100, 100));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // Another caller, another method or no id: the work is done.
        once(&store, &caller("u2"), "M", ID.into(), request, work)
            .await
            .unwrap();
        once(&store, &me, "N", ID.into(), request, work)
            .await
            .unwrap();
        once(&store, &me, "M", "".into(), request, work)
            .await
            .unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        // The same id with another request is refused.
        let other = prost_types::Duration {
            seconds: 2,
            nanos: 0,
        };
        let refused = once(&store, &me, "M", ID.into(), other, work)
            .await
            .unwrap_err();
        assert!(matches!(refused, Error::InvalidArgument(_)), "{refused:?}");
        let bad = once(&store, &me, "M", "not-a-uuid".into(), request, work)
            .await
            .unwrap_err();
        assert!(matches!(bad, Error::InvalidArgument(_)), "{bad:?}");
    }

    #[tokio::test]
    async fn a_failed_call_can_be_retried() {
        let (store, _dir) = store().await;
        let request = prost_types::Duration {
            seconds: 1,
            nanos: 0,
        };
        let me = caller("u1");
        let failed = once(&store, &me, "M", ID.into(), request, |_| async {
            Err::<prost_types::Duration, _>(Error::Unavailable("down".into()))
        })
        .await;
        assert!(failed.is_err());
        let ok = once(&store, &me, "M", ID.into(), request, |_| async {
            Ok(prost_types::Duration {
                seconds: 9,
                nanos: 0,
            })
        })
        .await
        .unwrap();
        assert_eq!(ok.seconds, 9);
    }

    #[tokio::test]
    async fn a_claim_of_a_process_gone_is_taken_over_at_once() {
        let (store, _dir) = store().await;
        let request = prost_types::Duration {
            seconds: 1,
            nanos: 0,
        };
        let me = caller("u1");
        let claim = |id: &str, holder: Option<i64>| {
            let now = now_micros();
            Entity::insert(ActiveModel {
                key: Set(key_of(&me, "M", id).1),
                fingerprint: Set(fingerprint_of(&request)),
                response: Set(None),
                create_time: Set(now),
                expire_time: Set(now + RETENTION),
                holder: Set(holder),
            })
            .exec_without_returning(&store)
        };
        let work = |_| async {
            Ok(prost_types::Duration {
                seconds: 7,
                nanos: 0,
            })
        };
        // Claimed by another process (on SQLite: one gone, the file is
        // this process's): the work is done now.
        let gone = crate::liveness::process_key() ^ 1;
        claim(ID, Some(gone)).await.unwrap();
        let answer = once(&store, &me, "M", ID.into(), request, work)
            .await
            .unwrap();
        assert_eq!(answer.seconds, 7);
        // Claimed by an unknown process, just now: it waits for the claim
        // to lapse.
        const OTHER: &str = "0192f7a0-0000-7000-8000-000000000002";
        claim(OTHER, None).await.unwrap();
        let waiting = once(&store, &me, "M", OTHER.into(), request, work)
            .await
            .unwrap_err();
        assert!(matches!(waiting, Error::Aborted { .. }), "{waiting:?}");
    }

    #[tokio::test]
    async fn a_duplicate_in_flight_is_told_to_wait() {
        let (store, _dir) = store().await;
        let request = prost_types::Duration {
            seconds: 1,
            nanos: 0,
        };
        let me = caller("u1");
        let (started, wait) = tokio::sync::oneshot::channel::<()>();
        let (finish, finished) = tokio::sync::oneshot::channel::<()>();
        let first = {
            let (store, me, request) = (store.clone(), me.clone(), request);
            tokio::spawn(async move {
                once(&store, &me, "M", ID.into(), request, |_| async move {
                    started.send(()).unwrap();
                    finished.await.unwrap();
                    Ok(prost_types::Duration {
                        seconds: 5,
                        nanos: 0,
                    })
                })
                .await
            })
        };
        wait.await.unwrap();
        let duplicate = once(&store, &me, "M", ID.into(), request, |_| async {
            Ok(prost_types::Duration {
                seconds: 6,
                nanos: 0,
            })
        })
        .await
        .unwrap_err();
        assert!(
            matches!(
                duplicate,
                Error::Aborted {
                    reason: "REQUEST_IN_PROGRESS",
                    ..
                }
            ),
            "{duplicate:?}"
        );
        finish.send(()).unwrap();
        assert_eq!(first.await.unwrap().unwrap().seconds, 5);
        assert_eq!(purge(&store, now_micros() + RETENTION).await.unwrap(), 1);
    }
}

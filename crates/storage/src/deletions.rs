//! Following the organizations service's deletions: every service that keeps
//! rows of organizations purges them when an organization is deleted, from
//! `OrganizationsInternal.ListDeletedOrganizations`, continuing from a cursor
//! it keeps in its own `sync_cursors` table. A service that was down when an
//! organization was deleted purges it when it comes back; a purge that dies
//! half-way runs again (purges are idempotent). The organization itself is
//! unreachable at once: every access check stops seeing it.

use std::{future::Future, time::Duration};

use sea_orm::{DatabaseConnection, EntityTrait, Set, entity::prelude::*, sea_query::OnConflict};

use orgplane_platform::{Error, deletions::DeletionLog, time::now_micros};

/// A cursor row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sync_cursors")]
pub struct Model {
    /// What the cursor follows.
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    /// The page token to continue from.
    pub value: String,
}

/// No relations are navigated through sea-orm.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// The statement that creates `sync_cursors`, for a service's migration.
pub fn create_table() -> sea_orm::sea_query::TableCreateStatement {
    use sea_orm_migration::schema::{string, text};
    sea_orm::sea_query::Table::create()
        .table("sync_cursors")
        .col(string("name").primary_key())
        .col(text("value"))
        .to_owned()
}

/// Name of the cursor in the deletion feed.
const CURSOR: &str = "organizations.deleted";
/// Deletions read per call.
const PAGE: i32 = 500;
/// Deletions younger than this are read again on the next run: a row
/// written just before its organization was deleted (its permission check
/// answered from a cache) is caught by a later pass.
pub const SETTLE: Duration = Duration::from_secs(300);

/// Purges, with `purge` (given the deleted organizations' UUIDs, returning
/// how many rows went), every organization deleted since the stored cursor;
/// returns how many rows were purged.
pub async fn purge_deleted<F, Fut>(
    db: &DatabaseConnection,
    organizations: &impl DeletionLog,
    purge: F,
) -> Result<u64, Error>
where
    F: Fn(Vec<String>) -> Fut,
    Fut: Future<Output = Result<u64, Error>>,
{
    let mut position = Entity::find_by_id(CURSOR)
        .one(db)
        .await?
        .map(|c| c.value)
        .unwrap_or_default();
    let settled_before = now_micros() - SETTLE.as_micros() as i64;
    let mut purged = 0;
    loop {
        let (deleted, next) = organizations.deleted_organizations(&position, PAGE).await?;
        if deleted.is_empty() {
            break;
        }
        let settled = deleted.iter().all(|d| d.delete_time < settled_before);
        purged += purge(deleted.into_iter().map(|d| d.uuid).collect()).await?;
        if !settled {
            break;
        }
        Entity::insert(ActiveModel {
            name: Set(CURSOR.to_owned()),
            value: Set(next.clone()),
        })
        .on_conflict(
            OnConflict::column(Column::Name)
                .update_column(Column::Value)
                .to_owned(),
        )
        .exec(db)
        .await?;
        position = next;
    }
    Ok(purged)
}

/// Runs `task` every `interval` until `stop` completes, logging what it did
/// under `what`; a failure (a peer down) is logged and retried next time.
/// One replica of the service (sharing `db`) runs each round; the others
/// skip it ([`crate::exclusive`]).
pub async fn run_every<F, Fut>(
    db: &DatabaseConnection,
    interval: Duration,
    stop: impl Future<Output = ()>,
    what: &str,
    mut task: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<u64, Error>>,
{
    tokio::pin!(stop);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = ticker.tick() => {}
        }
        match crate::exclusive::exclusively(db, what, &mut task).await {
            Ok(None | Some(0)) => {}
            Ok(Some(n)) => tracing::info!(rows = n, "{what}"),
            Err(err) => tracing::warn!(error = %err, "{what} failed; retrying later"),
        }
    }
}

//! `delivery_outbox`: messages for people (password resets, invitations),
//! written in the same transaction as the change that needs them and handed
//! to a delivery worker; orgplane itself needs no mail server. Each service
//! that sends messages has this table in its own schema.
//!
//! The payloads carry live secrets (reset and invitation tokens), so a
//! message lives no longer than its secret: [`purge`] deletes messages once
//! delivered or past their `expire_time` (and, for rows from before that
//! column, a week after they were written).

use sea_orm::entity::prelude::*;

/// A message waiting for delivery.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "delivery_outbox")]
pub struct Model {
    /// UUIDv7; also the order of delivery.
    #[sea_orm(primary_key, auto_increment = false)]
    pub uuid: String,
    /// What it is, e.g. `password_reset`.
    pub kind: String,
    /// Email address to deliver to.
    pub recipient: String,
    /// JSON payload for the template (e.g. the reset token).
    pub payload: String,
    /// Created.
    pub create_time: i64,
    /// Delivered at, by the delivery worker.
    pub deliver_time: Option<i64>,
    /// When the secret it carries dies; the message is purged then.
    pub expire_time: Option<i64>,
}

/// No relations are navigated through sea-orm.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// The statement that creates the table, for a service's migration.
pub fn create_table() -> sea_orm::sea_query::TableCreateStatement {
    use sea_orm_migration::schema::{big_integer, big_integer_null, string, text};
    sea_orm::sea_query::Table::create()
        .table("delivery_outbox")
        .col(string("uuid").primary_key())
        .col(string("kind"))
        .col(string("recipient"))
        .col(text("payload"))
        .col(big_integer("create_time"))
        .col(big_integer_null("deliver_time"))
        .to_owned()
}

/// The migration that adds `expire_time` to a table made by
/// [`create_table`] before it had one; each service names it in its own
/// sequence (e.g. `m0006_outbox_expiry`).
pub fn add_expiry(name: &'static str) -> crate::db::AddBigIntColumn {
    crate::db::AddBigIntColumn {
        name,
        table: "delivery_outbox",
        column: "expire_time",
    }
}

/// How long a message without `expire_time` is kept.
const KEEP_UNDATED: i64 = 7 * orgplane_platform::time::DAY;

/// Deletes the messages delivered or expired by `now`; returns how many.
pub async fn purge(db: &impl sea_orm::ConnectionTrait, now: i64) -> Result<u64, DbErr> {
    use sea_orm::{Condition, QueryFilter};
    let deleted = Entity::delete_many()
        .filter(
            Condition::any()
                .add(Column::DeliverTime.is_not_null())
                .add(Column::ExpireTime.lte(now))
                .add(
                    Condition::all()
                        .add(Column::ExpireTime.is_null())
                        .add(Column::CreateTime.lte(now.saturating_sub(KEEP_UNDATED))),
                ),
        )
        .exec(db)
        .await?;
    Ok(deleted.rows_affected)
}

/// Queues a message for delivery (call inside the change's transaction);
/// it is purged at `expire_time`, when the secret it carries dies.
pub async fn enqueue(
    db: &impl sea_orm::ConnectionTrait,
    kind: &str,
    recipient: &str,
    payload: serde_json::Value,
    expire_time: i64,
) -> Result<(), DbErr> {
    use sea_orm::{ActiveModelTrait, Set};
    ActiveModel {
        uuid: Set(uuid::Uuid::now_v7().to_string()),
        kind: Set(kind.to_owned()),
        recipient: Set(recipient.to_owned()),
        payload: Set(payload.to_string()),
        create_time: Set(orgplane_platform::time::now_micros()),
        deliver_time: Set(None),
        expire_time: Set(Some(expire_time)),
    }
    .insert(db)
    .await?;
    Ok(())
}

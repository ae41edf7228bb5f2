//! `delivery_outbox`: messages for people (password reset links), written in
//! the same transaction as the change that needs them and handed to a
//! delivery worker; orgplane itself needs no mail server.

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
}

/// No relations are navigated through sea-orm.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

//! What identity keeps no longer than it is good for: reset tokens and
//! their messages, expired or revoked bearer tokens, and the failure counts
//! of logins long past. Purged by the background task
//! ([`Identity::run_purger`]).

use orgplane_platform::{Error, time::DAY};
use orgplane_storage::outbox;
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter};

use super::Identity;
use crate::storage::{login_failures, password_resets, tokens};

/// How long an expired or revoked token stays listed before it is purged.
const KEEP_DEAD_TOKENS: i64 = 7 * DAY;
/// How long an idle failure count is kept.
const KEEP_IDLE_FAILURES: i64 = DAY;

impl Identity {
    /// Deletes, as of `now`: delivered or expired messages, used or expired
    /// reset tokens, tokens expired or revoked a week ago, and login
    /// failure counts idle for a day and not locking, and expired answers
    /// to idempotent creations. Returns how many rows.
    pub async fn purge_expired(&self, now: i64) -> Result<u64, Error> {
        let messages = outbox::purge(&self.db, now).await?
            + orgplane_storage::idempotency::purge(&self.db, now).await?;
        let resets = password_resets::Entity::delete_many()
            .filter(
                Condition::any()
                    .add(password_resets::Column::ExpireTime.lte(now))
                    .add(password_resets::Column::UseTime.is_not_null()),
            )
            .exec(&self.db)
            .await?;
        let dead = now.saturating_sub(KEEP_DEAD_TOKENS);
        let tokens = tokens::Entity::delete_many()
            .filter(
                Condition::any()
                    .add(tokens::Column::ExpireTime.lte(dead))
                    .add(tokens::Column::RevokeTime.lte(dead)),
            )
            .exec(&self.db)
            .await?;
        let failures = login_failures::Entity::delete_many()
            .filter(login_failures::Column::UpdateTime.lte(now.saturating_sub(KEEP_IDLE_FAILURES)))
            .filter(
                Condition::any()
                    .add(login_failures::Column::LockedUntil.is_null())
                    .add(login_failures::Column::LockedUntil.lte(now)),
            )
            .exec(&self.db)
            .await?;
        Ok(messages + resets.rows_affected + tokens.rows_affected + failures.rows_affected)
    }
}

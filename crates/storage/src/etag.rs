//! Optimistic concurrency: a row carries a `version` that every write bumps;
//! its etag is that version, opaque to clients. A write with a stale etag is
//! `ABORTED` (`STALE_ETAG`); so is one that loses a race to another write of
//! the same version.

use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, UpdateMany,
    sea_query::{Expr, SimpleExpr},
};

use orgplane_platform::Error;

/// The etag of a row version.
pub fn etag(version: i64) -> String {
    format!("v{version}")
}

/// The error of a write that lost to a concurrent change of `what`.
pub fn stale(what: &str) -> Error {
    Error::Aborted {
        reason: "STALE_ETAG",
        message: format!("the {what} changed since it was read; read it again"),
    }
}

/// `ABORTED` when the caller sent an etag that is not the current
/// `version`'s. Without one, the write applies to the version just read
/// (and still loses to a concurrent write through the version check).
pub fn check_etag(seen: &str, version: i64, what: &str) -> Result<(), Error> {
    if !seen.is_empty() && seen != etag(version) {
        return Err(stale(what));
    }
    Ok(())
}

/// Applies `update` to the row whose `key` column holds `key_value` only if
/// its `version` column still holds `seen`, bumping it: the write that lost a
/// race with another is `ABORTED` (`STALE_ETAG`) for `what`.
pub async fn update_at_version<E: EntityTrait>(
    db: &impl ConnectionTrait,
    update: UpdateMany<E>,
    (key, key_value): (E::Column, &str),
    (version, seen): (E::Column, i64),
    what: &str,
) -> Result<(), Error> {
    let changed = update
        .col_expr(version, SimpleExpr::from(Expr::value(seen + 1)))
        .filter(key.eq(key_value))
        .filter(version.eq(seen))
        .exec(db)
        .await?;
    if changed.rows_affected != 1 {
        return Err(stale(what));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_etag_is_aborted_and_none_passes() {
        assert!(check_etag("", 3, "thing").is_ok());
        assert!(check_etag(&etag(3), 3, "thing").is_ok());
        assert!(matches!(
            check_etag(&etag(2), 3, "thing"),
            Err(Error::Aborted {
                reason: "STALE_ETAG",
                ..
            })
        ));
    }
}

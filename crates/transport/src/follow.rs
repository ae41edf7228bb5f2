//! Following the changes of the service that owns what a cache holds: a
//! server stream (`IdentityInternal.WatchRevocations`,
//! `OrganizationsInternal.WatchAccessChanges`) kept open to any one of its
//! replicas — each hears every replica's changes (PostgreSQL `NOTIFY`) —
//! whose messages name what to forget.
//!
//! Whatever happened while no stream was open is unknown: the cache is
//! forgotten whole each time a stream opens or breaks. Its TTL stays the
//! bound should a change be missed some other way.

use std::{future::Future, time::Duration};

/// How long to wait before opening a stream again after one broke or could
/// not be opened (the peer may not be up yet: processes start in any order).
pub const REOPEN_DELAY: Duration = Duration::from_millis(500);

/// Follows the stream `open` opens until `stop` completes: each message
/// goes to `forget`; `forget_all` runs whenever a stream opens or ends.
pub async fn follow<M, Open, Opening>(
    what: &'static str,
    mut open: Open,
    forget: impl Fn(M),
    forget_all: impl Fn(),
    stop: impl Future<Output = ()>,
) where
    Open: FnMut() -> Opening,
    Opening: Future<Output = Result<tonic::Response<tonic::Streaming<M>>, tonic::Status>>,
{
    tokio::pin!(stop);
    loop {
        let followed = async {
            let mut stream = match open().await {
                Ok(response) => response.into_inner(),
                Err(status) => {
                    tracing::debug!(what, %status, "could not follow changes yet");
                    return;
                }
            };
            forget_all();
            loop {
                match stream.message().await {
                    Ok(Some(message)) => forget(message),
                    Ok(None) => break,
                    Err(status) => {
                        tracing::debug!(what, %status, "the stream of changes broke");
                        break;
                    }
                }
            }
            forget_all();
        };
        tokio::select! {
            () = &mut stop => return,
            () = followed => {}
        }
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(REOPEN_DELAY) => {}
        }
    }
}

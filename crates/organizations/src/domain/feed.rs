//! One reader of the activity store per process, shared by every watcher.
//!
//! Why: a feed open in 1,000 dashboards is 1,000 `WatchActivities` streams.
//! Each reading the store on every change (and polling it for other
//! replicas' changes) would be 1,000 queries per change. Instead one task
//! per process reads what was stored after the last position it read, in
//! store order, and broadcasts each batch with the range of positions it
//! covers; every watcher keeps what its filter shows. The task runs while
//! someone watches.
//!
//! A watcher that misses part of the range — it subscribed before the task
//! read its starting position (the task broadcasts that position first, as
//! an empty range), or fell behind the broadcast — reads the store itself
//! until it has caught up, then follows the broadcast again.
//! Ranges are exact because activities become visible in `seq` order (see
//! [`super::activities`]): once position N is visible, everything before
//! it is.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tokio::sync::{broadcast, watch};

use orgplane_platform::Error;

use crate::storage::activities::{self, sequence};

/// How often the reader looks for activities stored by another replica (in
/// this process it is woken at once).
pub(crate) const POLL: Duration = Duration::from_millis(250);
/// Most activities one read of the store takes.
const READ_BATCH: u64 = 500;
/// How many batches a watcher may fall behind before it reads the store
/// itself instead.
const BACKLOG: usize = 256;
/// How long the reader waits before reading again after the store failed.
const RETRY: Duration = Duration::from_secs(1);

/// What the store held in `(after, last]`, in `seq` order: every activity
/// of every organization there.
#[derive(Debug)]
pub struct Stored {
    /// The position before the range.
    pub after: i64,
    /// The last position of the range.
    pub last: i64,
    /// The activities of the range.
    pub rows: Vec<activities::Model>,
}

/// See the module documentation.
#[derive(Debug)]
pub struct Feed {
    db: DatabaseConnection,
    /// The last position stored by this process: wakes the reader at once.
    stored: Arc<watch::Sender<i64>>,
    sender: broadcast::Sender<Arc<Stored>>,
    /// Whether the reader runs; taken by a subscriber starting it and by
    /// the reader stopping, so that one never misses the other.
    running: Mutex<bool>,
}

impl Feed {
    /// The feed over `db`, woken by `stored`.
    pub fn new(db: DatabaseConnection, stored: Arc<watch::Sender<i64>>) -> Arc<Self> {
        Arc::new(Self {
            db,
            stored,
            sender: broadcast::Sender::new(BACKLOG),
            running: Mutex::new(false),
        })
    }

    /// What is stored from now on, starting the reader if nobody watched.
    pub fn subscribe(self: &Arc<Self>) -> broadcast::Receiver<Arc<Stored>> {
        let mut running = self.running.lock().expect("feed lock");
        let receiver = self.sender.subscribe();
        if !*running {
            *running = true;
            tokio::spawn(self.clone().read());
        }
        receiver
    }

    /// The last position handed out (committed).
    pub async fn last_position(db: &DatabaseConnection) -> Result<i64, Error> {
        Ok(sequence::Entity::find_by_id(1)
            .one(db)
            .await?
            .map(|s| s.last)
            .unwrap_or(0))
    }

    /// The reader: broadcasts what is stored after where it started, until
    /// nobody watches.
    async fn read(self: Arc<Self>) {
        let mut woken = self.stored.subscribe();
        let mut after = loop {
            match Self::last_position(&self.db).await {
                Ok(last) => break last,
                Err(err) => self.failed(err).await,
            }
        };
        // Where the broadcast starts, as an empty range: a watcher that read
        // the store before this read (an activity stored in between is in
        // neither) is behind it and reads the store, instead of seeing that
        // activity only when the next one is broadcast.
        let _ = self.sender.send(Arc::new(Stored {
            after,
            last: after,
            rows: Vec::new(),
        }));
        loop {
            if self.nobody_watches() {
                return;
            }
            match self.read_after(after).await {
                Ok(Some(batch)) => {
                    let full = batch.rows.len() as u64 == READ_BATCH;
                    after = batch.last;
                    let _ = self.sender.send(Arc::new(batch));
                    if full {
                        continue;
                    }
                }
                Ok(None) => {}
                Err(err) => {
                    self.failed(err).await;
                    continue;
                }
            }
            let _ = tokio::time::timeout(POLL, woken.changed()).await;
        }
    }

    /// Stops the reader when no watcher is left (checked under the lock a
    /// new subscriber takes).
    fn nobody_watches(&self) -> bool {
        let mut running = self.running.lock().expect("feed lock");
        if self.sender.receiver_count() == 0 {
            *running = false;
            return true;
        }
        false
    }

    async fn failed(&self, err: Error) {
        tracing::warn!(error = %err, "reading the activity store for watchers failed; retrying");
        tokio::time::sleep(RETRY).await;
    }

    /// The next activities stored after `after`, if any.
    async fn read_after(&self, after: i64) -> Result<Option<Stored>, Error> {
        let rows = activities::Entity::find()
            .filter(activities::Column::Seq.gt(after))
            .order_by_asc(activities::Column::Seq)
            .limit(READ_BATCH)
            .all(&self.db)
            .await?;
        Ok(rows
            .last()
            .map(|last| last.seq)
            .map(|last| Stored { after, last, rows }))
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{ActiveModelTrait, ActiveValue::Set};
    use sea_orm_migration::MigratorTrait;

    use super::*;

    /// A watcher reads the store, then an activity is stored, then the
    /// reader starts after it: the reader's first broadcast says where it
    /// starts, so that the watcher knows it is behind (a flaky end-to-end
    /// test found the activity arriving only with the next one).
    #[tokio::test]
    async fn the_reader_first_broadcasts_where_it_starts() {
        let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
        crate::Migrator::up(&db, None).await.unwrap();
        sequence::ActiveModel {
            id: Set(1),
            last: Set(7),
        }
        .update(&db)
        .await
        .unwrap();
        let feed = Feed::new(db, Arc::new(watch::channel(0).0));
        let mut live = feed.subscribe();
        let first = tokio::time::timeout(Duration::from_secs(5), live.recv())
            .await
            .expect("the reader broadcasts where it starts")
            .unwrap();
        assert_eq!((first.after, first.last, first.rows.len()), (7, 7, 0));
    }
}

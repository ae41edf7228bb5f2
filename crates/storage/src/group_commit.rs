//! Group commit: the small writes of many concurrent callers, applied by one
//! task in one transaction.
//!
//! Why: a commit is the cost of a small write — SQLite takes one writer at
//! a time (the others wait in its busy handler, sleeping) and PostgreSQL
//! waits for the WAL flush — so a hot path that commits once per call (a
//! run submitted, a run reported) is bounded by commits per second, not by
//! work. [`GroupCommit`] queues each caller's write; its task takes every
//! write waiting (up to a batch size), applies them in one transaction and
//! answers each caller after the commit. Under low load a batch is one
//! write and nothing waits; under high load a batch grows while the
//! previous one commits (on PostgreSQL, which commits in parallel, a few
//! batches commit at once). Nothing is answered before it is committed.
//!
//! A write that its rules refuse (an item's `Err`) writes nothing and does
//! not disturb the others; a storage failure rolls back the whole batch and
//! every caller in it gets the error (nothing is half-done).

use std::{future::Future, sync::Arc};

use sea_orm::{DatabaseConnection, DatabaseTransaction, DbBackend, TransactionTrait};
use tokio::sync::{Mutex, mpsc, oneshot};

use orgplane_platform::Error;

/// What a [`GroupCommit`] applies.
pub trait BatchWrite: Send + Sync + 'static {
    /// One caller's write.
    type Item: Send + 'static;
    /// What the caller gets back once it is committed.
    type Output: Send + 'static;

    /// Applies `items` in `txn`: one result per item, in their order. An
    /// item whose result is `Err` must have written nothing; an `Err` of
    /// the whole call rolls every item back.
    fn apply(
        &self,
        txn: &DatabaseTransaction,
        items: Vec<Self::Item>,
    ) -> impl Future<Output = Result<Vec<Result<Self::Output, Error>>, Error>> + Send;
}

type Reply<W> = oneshot::Sender<Result<<W as BatchWrite>::Output, Error>>;
type Queue<W> = mpsc::UnboundedReceiver<(<W as BatchWrite>::Item, Reply<W>)>;
/// What the task needs, until it starts.
type Idle<W> = Option<(Queue<W>, DatabaseConnection, W)>;

/// See the module documentation. Cloning shares the queue and its task.
pub struct GroupCommit<W: BatchWrite> {
    sender: mpsc::UnboundedSender<(W::Item, Reply<W>)>,
    /// The task's inputs until the first write starts it (so that building
    /// a service needs no runtime).
    idle: Arc<std::sync::Mutex<Idle<W>>>,
}

impl<W: BatchWrite> Clone for GroupCommit<W> {
    fn clone(&self) -> Self {
        Self {
            sender: self.sender.clone(),
            idle: self.idle.clone(),
        }
    }
}

impl<W: BatchWrite> std::fmt::Debug for GroupCommit<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").finish_non_exhaustive()
    }
}

/// Writes in one transaction at most: bounds a transaction's length (and,
/// with a few columns per row, stays under both databases' limits on bound
/// parameters per statement).
pub const MAX_BATCH: usize = 128;

impl<W: BatchWrite> GroupCommit<W> {
    /// Applies `writer`'s writes to `db`. The task starts with the first
    /// write and ends when every clone is dropped.
    pub fn new(db: DatabaseConnection, writer: W) -> Self {
        let (sender, queue) = mpsc::unbounded_channel();
        Self {
            sender,
            idle: Arc::new(std::sync::Mutex::new(Some((queue, db, writer)))),
        }
    }

    /// Applies `item` with the writes waiting beside it; answers once they
    /// are committed.
    pub async fn write(&self, item: W::Item) -> Result<W::Output, Error> {
        // Every write passes here: a plain lock, held only to take the
        // task's inputs once.
        let idle = self.idle.lock().expect("the group commit's lock").take();
        if let Some((queue, db, writer)) = idle {
            // SQLite takes one writer at a time: one batch at a time.
            // PostgreSQL commits in parallel: a few batches at once.
            let parallel = match db.get_database_backend() {
                DbBackend::Sqlite => 1,
                _ => PARALLEL_BATCHES,
            };
            let queue = Arc::new(Mutex::new(queue));
            let writer = Arc::new(writer);
            for _ in 0..parallel {
                tokio::spawn(run(queue.clone(), db.clone(), writer.clone()));
            }
        }
        let (reply, answer) = oneshot::channel();
        self.sender
            .send((item, reply))
            .map_err(|_| Error::Unavailable("the service is stopping".into()))?;
        answer.await.map_err(|_| {
            Error::Unavailable("the write was dropped: the service is stopping".into())
        })?
    }
}

/// Batches committing at once on a database that commits in parallel.
const PARALLEL_BATCHES: usize = 4;

async fn run<W: BatchWrite>(queue: Arc<Mutex<Queue<W>>>, db: DatabaseConnection, writer: Arc<W>) {
    let mut waiting = Vec::with_capacity(MAX_BATCH);
    // The writer's type name (`Submissions`, `Reports`…) labels its batches.
    let name = std::any::type_name::<W>()
        .rsplit("::")
        .next()
        .unwrap_or("writes");
    let sizes = metrics::histogram!("orgplane_group_commit_batch_size", "writer" => name);
    let commits = metrics::histogram!("orgplane_group_commit_seconds", "writer" => name);
    loop {
        // The next batch is whatever waits when this task is free.
        if queue.lock().await.recv_many(&mut waiting, MAX_BATCH).await == 0 {
            return;
        }
        let (items, replies): (Vec<_>, Vec<_>) = waiting.drain(..).unzip();
        sizes.record(items.len() as f64);
        let started = std::time::Instant::now();
        let applied = apply(&db, &*writer, items).await;
        commits.record(started.elapsed().as_secs_f64());
        match applied {
            Ok(results) => {
                for (reply, result) in replies.into_iter().zip(results) {
                    // A caller that went away is told nothing; its write stands.
                    let _ = reply.send(result);
                }
            }
            Err(error) => {
                tracing::warn!(error = %error, writes = replies.len(), "a group commit failed");
                for reply in replies {
                    let _ = reply.send(Err(error.duplicate()));
                }
            }
        }
    }
}

async fn apply<W: BatchWrite>(
    db: &DatabaseConnection,
    writer: &W,
    items: Vec<W::Item>,
) -> Result<Vec<Result<W::Output, Error>>, Error> {
    let count = items.len();
    let _turn = crate::db::sqlite_write_turn(db).await;
    let txn = db.begin().await?;
    let results = writer.apply(&txn, items).await?;
    if results.len() != count {
        return Err(Error::Internal(anyhow::anyhow!(
            "a batch of {count} writes gave {} results",
            results.len()
        )));
    }
    txn.commit().await?;
    Ok(results)
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait, Statement};

    use super::*;

    /// Inserts numbers into `t`; refuses odd ones; fails the whole batch on 13.
    struct Numbers;

    impl BatchWrite for Numbers {
        type Item = i64;
        type Output = i64;

        async fn apply(
            &self,
            txn: &DatabaseTransaction,
            items: Vec<i64>,
        ) -> Result<Vec<Result<i64, Error>>, Error> {
            let mut results = Vec::new();
            for n in items {
                if n % 2 == 1 && n != 13 {
                    results.push(Err(Error::invalid("n", "odd")));
                    continue;
                }
                txn.execute_unprepared(&format!("INSERT INTO t VALUES ({n})"))
                    .await?;
                if n == 13 {
                    return Err(Error::Unavailable("thirteen".into()));
                }
                results.push(Ok(n));
            }
            Ok(results)
        }
    }

    async fn stored(db: &DatabaseConnection) -> Vec<i64> {
        let rows = db
            .query_all_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT n FROM t ORDER BY n",
            ))
            .await
            .unwrap();
        rows.iter().map(|r| r.try_get("", "n").unwrap()).collect()
    }

    #[tokio::test]
    async fn concurrent_writes_commit_together_and_fail_alone() {
        let (_dir, db) = crate::db::scratch_numbers().await;
        let commits = GroupCommit::new(db.clone(), Numbers);
        let writes = (0..200).map(|n| {
            let commits = commits.clone();
            async move { (n, commits.write(n).await) }
        });
        let results = futures::future::join_all(writes).await;
        let kept = stored(&db).await;
        let mut shared_the_failure = 0;
        for (n, result) in results {
            match result {
                Ok(written) => {
                    assert_eq!(written, n);
                    assert!(kept.contains(&n), "{n} was answered, so it is stored");
                }
                Err(Error::InvalidArgument(_)) => assert!(n % 2 == 1 && n != 13),
                Err(Error::Unavailable(_)) => {
                    // 13 failed its batch: each write in it was rolled back
                    // and its caller told.
                    assert!(!kept.contains(&n), "{n} failed, so it is not stored");
                    shared_the_failure += usize::from(n != 13);
                }
                Err(other) => panic!("{n}: {other:?}"),
            }
        }
        assert!(!kept.contains(&13));
        assert!(
            shared_the_failure > 0,
            "the writes waiting together were applied in one transaction"
        );
        // Later writes go on.
        assert_eq!(commits.write(1000).await.unwrap(), 1000);
        assert!(stored(&db).await.contains(&1000));
    }
}

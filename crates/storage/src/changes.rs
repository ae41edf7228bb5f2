//! Changes every replica of a service must hear about at once — a token
//! revoked, a role changed — so that no replica's cache (nor its peers')
//! trusts the old answer for the length of a TTL.
//!
//! The replica that commits such a change [`ChangeFeed::publish`]es a key
//! (a principal's UUID, an organization's UUID): its own subscribers hear it
//! at once and, on PostgreSQL, it goes out as a `NOTIFY` on a channel named
//! after the service's schema and the feed's topic. Every replica's
//! [`ChangeFeed::run`] `LISTEN`s there and passes what it hears on to its
//! subscribers: the service's own read caches, and the streams through which
//! other services' caches follow it (`WatchRevocations`,
//! `WatchAccessChanges`). On SQLite one process owns the file: its own
//! subscribers are all there is.
//!
//! A notification can be lost — the listening connection dropped, a
//! subscriber fell behind — and then subscribers get [`Change::Everything`]:
//! forget everything. The caches' TTLs stay as the net under both.

use std::{sync::Arc, time::Duration};

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, Statement,
    sqlx::{self, postgres::PgListener},
};
use std::sync::Mutex;

use tokio::sync::{OnceCell, broadcast, mpsc, watch};

use crate::read_cache::Forget;

/// What a subscriber must forget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// What was cached about this key.
    Key(String),
    /// Everything: some changes may have been missed.
    Everything,
}

/// How many changes a slow subscriber may fall behind before it is told to
/// forget everything instead.
const BACKLOG: usize = 4096;
/// How long to wait before listening again after the connection failed.
const RELISTEN_DELAY: Duration = Duration::from_secs(1);
/// PostgreSQL's longest identifier (`NAMEDATALEN - 1`).
const MAX_CHANNEL_LEN: usize = 63;
/// The payload that stands for [`Change::Everything`] (keys are never empty).
const EVERYTHING: &str = "";

/// Longest payload of one notification (PostgreSQL's limit is 8000 bytes).
const MAX_PAYLOAD: usize = 7000;

/// One topic of a service's changes; cheap to clone.
#[derive(Clone)]
pub struct ChangeFeed {
    db: DatabaseConnection,
    topic: &'static str,
    channel: Arc<OnceCell<String>>,
    sender: broadcast::Sender<Change>,
    /// Keys to notify the other replicas of, sent by [`Self::run`].
    outgoing: mpsc::UnboundedSender<String>,
    outgoing_rx: Arc<Mutex<Option<mpsc::UnboundedReceiver<String>>>>,
    /// Set once [`Self::run`] has stopped: the streams of [`Self::changes`]
    /// end then.
    stopped: Arc<watch::Sender<bool>>,
    /// Read caches of this service that every change makes stale.
    stale: Vec<Arc<dyn Forget + Send + Sync>>,
}

impl std::fmt::Debug for ChangeFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeFeed")
            .field("topic", &self.topic)
            .field("subscribers", &self.sender.receiver_count())
            .finish_non_exhaustive()
    }
}

impl ChangeFeed {
    /// The feed `topic` of the service whose database is `db`.
    pub fn new(db: DatabaseConnection, topic: &'static str) -> Self {
        let (outgoing, outgoing_rx) = mpsc::unbounded_channel();
        Self {
            db,
            topic,
            channel: Arc::default(),
            sender: broadcast::Sender::new(BACKLOG),
            outgoing,
            outgoing_rx: Arc::new(Mutex::new(Some(outgoing_rx))),
            stopped: Arc::new(watch::Sender::new(false)),
            stale: Vec::new(),
        }
    }

    /// With `cache` forgotten at every change, this replica's and (once
    /// [`Self::run`] listens) the others'.
    pub fn forgetting(mut self, cache: impl Forget + Send + Sync + 'static) -> Self {
        self.stale.push(Arc::new(cache));
        self
    }

    /// Passes `change` on to the caches and the subscribers.
    fn heard(&self, change: Change) {
        for cache in self.stale.iter() {
            cache.changed();
        }
        let _ = self.sender.send(change);
    }

    /// Changes from now on, from this replica and (once [`Self::run`]
    /// listens) every other.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.sender.subscribe()
    }

    /// [`Self::subscribe`] as a stream of what to forget, several keys at a
    /// time when they come faster than they are read. A subscriber that
    /// fell behind gets [`Change::Everything`]; the stream ends when the
    /// process stops (so that it does not hold up a drain). Its first item
    /// is empty, at once: the subscription is in place.
    pub fn changes(&self) -> impl futures::Stream<Item = Notice> + Send + 'static {
        let receiver = self.subscribe();
        let stopped = self.stopped.subscribe();
        let established = futures::stream::once(async { Notice::default() });
        futures::StreamExt::chain(
            established,
            futures::stream::unfold(
                (receiver, stopped),
                |(mut receiver, mut stopped)| async move {
                    let first = tokio::select! {
                        _ = stopped.wait_for(|stopped| *stopped) => return None,
                        received = receiver.recv() => received,
                    };
                    let mut forget = Notice::default();
                    let mut next = first;
                    loop {
                        match next {
                            Ok(Change::Key(key)) => forget.keys.push(key),
                            Ok(Change::Everything)
                            | Err(broadcast::error::RecvError::Lagged(_)) => {
                                forget.everything = true;
                            }
                            Err(broadcast::error::RecvError::Closed) => return None,
                        }
                        if forget.keys.len() >= 1000 {
                            break;
                        }
                        next = match receiver.try_recv() {
                            Ok(change) => Ok(change),
                            Err(broadcast::error::TryRecvError::Lagged(n)) => {
                                Err(broadcast::error::RecvError::Lagged(n))
                            }
                            Err(_) => break,
                        };
                    }
                    if forget.everything {
                        forget.keys.clear();
                    }
                    Some((forget, (receiver, stopped)))
                },
            ),
        )
    }

    /// Tells every replica that what was cached about `key` is stale (the
    /// empty key: everything). Call it once the change committed; it does
    /// not wait for the notification, which [`Self::run`] sends with others
    /// made meanwhile. One that cannot be sent is logged: the other
    /// replicas see the change when their caches expire.
    pub fn publish(&self, key: &str) {
        let change = if key == EVERYTHING {
            Change::Everything
        } else {
            Change::Key(key.to_owned())
        };
        self.heard(change);
        if self.db.get_database_backend() == DbBackend::Postgres {
            let _ = self.outgoing.send(key.to_owned());
        }
    }

    /// Tells every replica to forget everything cached of this topic.
    pub fn publish_everything(&self) {
        self.publish(EVERYTHING);
    }

    /// The PostgreSQL channel: `<schema>:<topic>`, or a digest of it where
    /// that is longer than an identifier may be (schemas sharing a database
    /// do not hear each other).
    async fn channel(&self) -> Result<String, sea_orm::DbErr> {
        self.channel
            .get_or_try_init(|| async {
                let schema: String = self
                    .db
                    .query_one_raw(Statement::from_string(
                        DbBackend::Postgres,
                        "SELECT current_schema() AS schema",
                    ))
                    .await?
                    .map(|row| row.try_get::<String>("", "schema"))
                    .transpose()?
                    .unwrap_or_default();
                Ok(channel_name(&schema, self.topic))
            })
            .await
            .cloned()
    }

    /// On PostgreSQL, sends this replica's changes to the others and
    /// listens for theirs, until `stop` completes; then ends the streams of
    /// [`Self::changes`]. On SQLite, just waits for `stop`.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        let outgoing = self.outgoing_rx.lock().ok().and_then(|mut rx| rx.take());
        match outgoing {
            Some(outgoing) if self.db.get_database_backend() == DbBackend::Postgres => {
                tokio::select! {
                    () = stop => {}
                    () = self.keep_listening() => {}
                    () = self.keep_notifying(outgoing) => {}
                }
            }
            _ => stop.await,
        }
        self.stopped.send_replace(true);
    }

    async fn keep_listening(&self) {
        loop {
            let failed = self.listen().await;
            tracing::warn!(topic = self.topic, err = %failed, "lost the notifications of other replicas; listening again");
            self.heard(Change::Everything);
            tokio::time::sleep(RELISTEN_DELAY).await;
        }
    }

    /// Passes on every notification until the connection fails for good.
    async fn listen(&self) -> String {
        let channel = match self.channel().await {
            Ok(channel) => channel,
            Err(err) => return err.to_string(),
        };
        // `run` listens on PostgreSQL only.
        let pool = self.db.get_postgres_connection_pool();
        let result: Result<(), sqlx::Error> = async {
            let mut listener = PgListener::connect_with(pool).await?;
            listener.listen(&channel).await?;
            // Whatever was published before the `LISTEN` took hold is missed.
            self.heard(Change::Everything);
            loop {
                match listener.try_recv().await? {
                    Some(notification) if notification.payload() != EVERYTHING => {
                        for key in notification.payload().split(' ') {
                            self.heard(Change::Key(key.to_owned()));
                        }
                    }
                    // An explicit "everything", or the connection was lost
                    // (and is open again): what came meanwhile is missed.
                    _ => {
                        self.heard(Change::Everything);
                    }
                }
            }
        }
        .await;
        match result {
            Ok(()) => "the listener stopped".into(),
            Err(err) => err.to_string(),
        }
    }

    /// Sends the keys published here, those that came while the last
    /// notification was sent in one payload.
    async fn keep_notifying(&self, mut outgoing: mpsc::UnboundedReceiver<String>) {
        while let Some(first) = outgoing.recv().await {
            let mut keys = std::collections::BTreeSet::from([first]);
            while let Ok(key) = outgoing.try_recv() {
                keys.insert(key);
            }
            for payload in payloads(keys) {
                if let Err(err) = self.notify(&payload).await {
                    tracing::warn!(topic = self.topic, %err, "could not notify the other replicas of a change; they see it when their caches expire");
                }
            }
        }
    }

    async fn notify(&self, payload: &str) -> Result<(), sea_orm::DbErr> {
        let channel = self.channel().await?;
        self.db
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_notify($1, $2)",
                [channel.into(), payload.into()],
            ))
            .await?;
        Ok(())
    }
}

/// What a subscriber of [`ChangeFeed::changes`] must forget.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notice {
    /// What was cached about these keys.
    pub keys: Vec<String>,
    /// Everything (then `keys` is empty).
    pub everything: bool,
}

/// `keys` as notification payloads: space-separated, each within
/// [`MAX_PAYLOAD`]; the empty key (everything) alone.
fn payloads(keys: std::collections::BTreeSet<String>) -> Vec<String> {
    if keys.contains(EVERYTHING) {
        return vec![EVERYTHING.to_owned()];
    }
    let mut payloads = vec![String::new()];
    for key in keys {
        let last = payloads.last_mut().expect("never empty");
        if !last.is_empty() && last.len() + 1 + key.len() > MAX_PAYLOAD {
            payloads.push(key);
        } else {
            if !last.is_empty() {
                last.push(' ');
            }
            last.push_str(&key);
        }
    }
    payloads
}

fn channel_name(schema: &str, topic: &str) -> String {
    use sha2::{Digest, Sha256};
    let name = format!("{schema}:{topic}");
    if name.len() <= MAX_CHANNEL_LEN {
        return name;
    }
    let digest = hex::encode(Sha256::digest(name.as_bytes()));
    format!("orgplane:{}", &digest[..48])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_fit_an_identifier_and_stay_apart() {
        assert_eq!(
            channel_name("identity", "revocations"),
            "identity:revocations"
        );
        let long = "t".repeat(60);
        let a = channel_name(&long, "revocations");
        let b = channel_name(&long, "access");
        assert!(a.len() <= MAX_CHANNEL_LEN && b.len() <= MAX_CHANNEL_LEN);
        assert_ne!(a, b);
    }

    #[test]
    fn keys_go_out_in_payloads_within_the_limit_and_everything_alone() {
        let keys: std::collections::BTreeSet<String> =
            (0..400).map(|i| format!("{i:036}")).collect();
        let sent = payloads(keys.clone());
        assert!(sent.len() > 1 && sent.iter().all(|p| p.len() <= MAX_PAYLOAD));
        let back: std::collections::BTreeSet<String> = sent
            .iter()
            .flat_map(|p| p.split(' ').map(str::to_owned))
            .collect();
        assert_eq!(back, keys);
        let mut with_everything = keys;
        with_everything.insert(String::new());
        assert_eq!(payloads(with_everything), vec![String::new()]);
    }

    #[tokio::test]
    async fn a_subscriber_gets_keys_together_and_everything_when_behind() {
        let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
        let feed = ChangeFeed::new(db, "test");
        let mut changes = std::pin::pin!(feed.changes());
        assert_eq!(
            futures::StreamExt::next(&mut changes).await,
            Some(Notice::default())
        );
        feed.publish("a");
        feed.publish("b");
        assert_eq!(
            futures::StreamExt::next(&mut changes).await,
            Some(Notice {
                keys: vec!["a".into(), "b".into()],
                everything: false
            })
        );
        for i in 0..BACKLOG + 1 {
            feed.publish(&i.to_string());
        }
        assert_eq!(
            futures::StreamExt::next(&mut changes).await,
            Some(Notice {
                keys: vec![],
                everything: true
            })
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(feed.clone().run(async {
            let _ = stopped.await;
        }));
        let _ = stop.send(());
        running.await.unwrap();
        // Drained of what was left, the stream ends with the feed.
        while futures::StreamExt::next(&mut changes).await.is_some() {}
    }
}

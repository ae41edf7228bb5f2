//! What clients see when something under the control plane fails: a
//! database that drops its connections (a PostgreSQL restart, a network
//! failure) is answered `UNAVAILABLE`, which clients retry, never
//! `INTERNAL`, and loses nothing it acknowledged; a backend address names
//! several replicas, calls spread over them, and a replica that goes away
//! costs no call and comes back when it does; periodic work runs on one
//! replica at a time.

use std::{
    collections::BTreeSet,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use orgplane_e2e::{TestStack, eventually};
use orgplane_proto::organizations::{CreateProjectRequest, ListProjectsRequest, Project};
use orgplane_transport::{
    client::mtls_channel,
    pki::{CaDir, CertDir, IDENTITIES, ServiceTls},
};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::Code;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// Writers creating projects while the stack's database connections are
/// terminated again and again: every call succeeds or is `UNAVAILABLE`, and
/// every acknowledged project is there afterwards.
#[tokio::test]
async fn dropped_database_connections_are_unavailable_and_lose_nothing() {
    let Some(t) = TestStack::start_on_postgres().await else {
        return;
    };
    let owner = t.user("owner").await;
    t.create_organization(&owner, "acme").await;
    let writing = AtomicBool::new(true);
    let writer = |id: usize| {
        let (t, owner, writing) = (&t, &owner, &writing);
        async move {
            let mut projects = t.projects_as(owner);
            let (mut acknowledged, mut failures) = (Vec::new(), Vec::new());
            let mut n = 0;
            while writing.load(Ordering::Relaxed) {
                let name = format!("p{id}-{n}");
                n += 1;
                let created = projects
                    .create_project(CreateProjectRequest {
                        organization: "acme".into(),
                        project: Some(Project {
                            name: name.clone(),
                            ..Default::default()
                        }),
                        request_id: String::new(),
                    })
                    .await;
                match created {
                    Ok(_) => acknowledged.push(name),
                    Err(status) => failures.push(status),
                }
            }
            (acknowledged, failures)
        }
    };
    let chaos = async {
        let mut terminated = 0;
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            terminated += t.drop_database_connections().await;
        }
        writing.store(false, Ordering::Relaxed);
        terminated
    };
    let (terminated, results) = tokio::join!(chaos, futures::future::join_all((0..4).map(writer)));
    assert!(terminated > 0, "the stack's connections were dropped");

    let mut acknowledged = BTreeSet::new();
    for (names, failures) in results {
        acknowledged.extend(names);
        for status in failures {
            assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        }
    }
    assert!(
        !acknowledged.is_empty(),
        "writes went through between drops"
    );

    // Nothing acknowledged was lost, and the service works on.
    let mut listed = BTreeSet::new();
    let mut page_token = String::new();
    loop {
        let page = t
            .projects_as(&owner)
            .list_projects(ListProjectsRequest {
                organization: "acme".into(),
                page_size: 1000,
                page_token,
                ..Default::default()
            })
            .await
            .expect("list after the drops")
            .into_inner();
        listed.extend(page.projects.into_iter().map(|p| p.name));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let lost: Vec<_> = acknowledged.difference(&listed).collect();
    assert!(lost.is_empty(), "acknowledged and lost: {lost:?}");
    t.drop_schemas().await;
}

/// A replica of "identity" on `listener` (mTLS) whose health knows only the
/// service `name`: which replica answered a check shows in the answer. It
/// stops when `stop` fires.
fn replica(
    listener: TcpListener,
    tls: &ServiceTls,
    name: &'static str,
    stop: oneshot::Receiver<()>,
) -> JoinHandle<()> {
    let server = tonic::transport::Server::builder()
        .tls_config(tls.server_config())
        .unwrap();
    tokio::spawn(async move {
        let (reporter, health) = tonic_health::server::health_reporter();
        reporter
            .set_service_status(name, tonic_health::ServingStatus::Serving)
            .await;
        let mut server = server;
        server
            .add_service(health)
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                async {
                    let _ = stop.await;
                },
            )
            .await
            .unwrap();
    })
}

/// Which replica answered a check of "a": `Some(true)` a, `Some(false)` b
/// (it does not know "a"), `None` a failure.
async fn answered_by_a(channel: &orgplane_transport::client::Channel) -> Option<bool> {
    let checked = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: "a".into(),
        })
        .await;
    match checked {
        Ok(_) => Some(true),
        Err(status) if status.code() == Code::NotFound => Some(false),
        Err(status) => {
            eprintln!("check failed: {status:?}");
            None
        }
    }
}

/// Two replicas behind one address list (an IP and a DNS name): calls go to
/// both; one stopping costs no call (refused calls are sent again to the
/// other, which takes every call) and it is used again once back.
#[tokio::test]
async fn calls_spread_over_replicas_and_skip_one_that_is_gone() {
    orgplane_e2e::init();
    let dir = tempfile::tempdir().unwrap();
    let certs = CertDir::new(dir.path().join("certs"));
    certs
        .init(&CaDir::new(dir.path().join("ca")), IDENTITIES, &[])
        .unwrap();
    let server_tls = certs.load("identity").unwrap();
    let a = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let b = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
    let (_stop_a, stop) = oneshot::channel();
    let _a = replica(a, &server_tls, "a", stop);
    let (stop_b, stop) = oneshot::channel();
    let b_task = replica(b, &server_tls, "b", stop);

    let channel = mtls_channel(
        &format!("{a_addr},localhost:{}", b_addr.port()),
        "identity",
        &certs.load("gateway").unwrap(),
    )
    .unwrap();
    let spread = |n: usize| {
        let channel = &channel;
        async move {
            let answers = futures::future::join_all((0..n).map(|_| answered_by_a(channel))).await;
            let failed = answers.iter().filter(|a| a.is_none()).count();
            let by_a = answers.iter().filter(|a| **a == Some(true)).count();
            (by_a, n - failed - by_a, failed)
        }
    };
    let (by_a, by_b, failed) = spread(200).await;
    assert_eq!(failed, 0);
    assert!(by_a >= 20 && by_b >= 20, "a {by_a}, b {by_b}");

    // b goes away: no call fails, a takes them all.
    stop_b.send(()).unwrap();
    b_task.await.unwrap();
    for _ in 0..5 {
        let (by_a, by_b, failed) = spread(40).await;
        assert_eq!((by_a, by_b, failed), (40, 0, 0));
    }

    // b comes back on its address: it is probed and used again.
    let b = TcpListener::bind(b_addr).await.unwrap();
    let (_stop_b, stop) = oneshot::channel();
    let _b = replica(b, &server_tls, "b", stop);
    eventually(Duration::from_secs(10), "b takes calls again", || async {
        spread(20).await.1 > 0
    })
    .await;
}

/// A backend found down (a peer that started first called it too early) is
/// used by the first call made once it is up, not a probe interval later:
/// a call that finds no replica up has them probed at once.
#[tokio::test]
async fn the_first_call_after_a_backend_comes_up_reaches_it() {
    orgplane_e2e::init();
    let dir = tempfile::tempdir().unwrap();
    let certs = CertDir::new(dir.path().join("certs"));
    certs
        .init(&CaDir::new(dir.path().join("ca")), IDENTITIES, &[])
        .unwrap();
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let channel = mtls_channel(
        &addr.to_string(),
        "identity",
        &certs.load("gateway").unwrap(),
    )
    .unwrap();
    for _ in 0..3 {
        assert_eq!(answered_by_a(&channel).await, None, "nothing listens yet");
    }
    let listener = TcpListener::bind(addr).await.unwrap();
    let (_stop, stop) = oneshot::channel();
    let _a = replica(listener, &certs.load("identity").unwrap(), "a", stop);
    for _ in 0..3 {
        assert_eq!(answered_by_a(&channel).await, Some(true));
    }
}

/// Two replicas of a service (two pools on one schema) running the same
/// periodic work: never both at once; another lock name is another lock.
#[tokio::test]
async fn periodic_work_runs_on_one_replica_at_a_time() {
    use std::sync::atomic::AtomicUsize;

    use orgplane_storage::{db::connect, exclusive::exclusively};

    let Some(db) = orgplane_e2e::TestDatabase::postgres() else {
        return;
    };
    let replicas = [
        connect(&db.target()).await.unwrap(),
        connect(&db.target()).await.unwrap(),
    ];
    let (running, most, ran) = (
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    );
    let round = |replica: usize, name: &'static str| {
        let (replicas, running, most, ran) = (&replicas, &running, &most, &ran);
        async move {
            exclusively(&replicas[replica], name, || async {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                ran.fetch_add(1, Ordering::SeqCst);
                Ok(())
            })
            .await
            .unwrap()
        }
    };
    let mut skipped = 0;
    for _ in 0..20 {
        let (a, b) = tokio::join!(round(0, "purger"), round(1, "purger"));
        skipped += usize::from(a.is_none()) + usize::from(b.is_none());
    }
    assert_eq!(most.load(Ordering::SeqCst), 1, "never two at once");
    assert!(
        ran.load(Ordering::SeqCst) >= 20,
        "every round ran somewhere"
    );
    assert!(skipped > 0, "a replica skipped a round the other was doing");

    most.store(0, Ordering::SeqCst);
    let (a, b) = tokio::join!(round(0, "purger"), round(1, "activity shipper"));
    assert!(a.is_some() && b.is_some(), "different work does not wait");
    assert_eq!(most.load(Ordering::SeqCst), 2);
    for replica in replicas {
        replica.close().await.unwrap();
    }
    db.drop().await;
}

/// Replicas of a service started together migrate one at a time (an
/// advisory lock per schema): without it, one failed on a duplicate catalog
/// row as both created the same tables.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_together_migrate_one_at_a_time() {
    let Some(db) = orgplane_e2e::TestDatabase::postgres() else {
        return;
    };
    let target = db.target();
    let starts = (0..4).map(|_| {
        let target = target.clone();
        tokio::spawn(async move {
            orgplane_storage::db::connect_and_migrate::<orgplane_organizations::Migrator>(&target)
                .await
        })
    });
    for started in futures::future::join_all(starts).await {
        started.unwrap().expect("every replica migrates and starts");
    }
    db.drop().await;
}

/// A process holds its liveness lock while it lives: another replica sees
/// it alive; a process whose session is gone (here: a lock taken on a
/// connection then closed, as a killed process's is) is seen dead, so that
/// what it claimed is taken over at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_is_alive_while_its_session_is() {
    use orgplane_storage::liveness::{alive, process_key};
    use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};

    let Some(db) = orgplane_e2e::TestDatabase::postgres() else {
        return;
    };
    let pool = orgplane_storage::db::connect(&db.target()).await.unwrap();
    eventually(
        Duration::from_secs(5),
        "this process holds its liveness lock",
        || async { alive(&pool, process_key()).await.unwrap() },
    )
    .await;
    // Another process: its key locked on a session of its own.
    let other = process_key() ^ (1 << 40);
    assert!(!alive(&pool, other).await.unwrap(), "not yet locked");
    let session = orgplane_storage::db::connect(&db.target()).await.unwrap();
    let locking = session.begin().await.unwrap();
    locking
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock($1)",
            [other.into()],
        ))
        .await
        .unwrap();
    assert!(alive(&pool, other).await.unwrap(), "its session holds it");
    // Its session ends (the process is gone).
    drop(locking);
    session.close().await.unwrap();
    eventually(
        Duration::from_secs(5),
        "a process whose session ended is seen dead",
        || async { !alive(&pool, other).await.unwrap() },
    )
    .await;
    pool.close().await.unwrap();
    db.drop().await;
}

/// Two replicas of a service (two pools on one schema): a change one
/// publishes reaches the other's subscribers (PostgreSQL `NOTIFY`), keys
/// sent together arrive together; when the listening connection is lost,
/// subscribers are told to forget everything, and changes arrive again once
/// it listens anew. Another schema's changes never arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_reach_every_replica_and_a_lost_listener_forgets_everything() {
    use futures::StreamExt;
    use orgplane_storage::{
        changes::{ChangeFeed, Notice},
        db::connect,
    };
    use sea_orm::ConnectionTrait;

    let (Some(db), Some(elsewhere)) = (
        orgplane_e2e::TestDatabase::postgres(),
        orgplane_e2e::TestDatabase::postgres(),
    ) else {
        return;
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let until_stopped = || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        }
    };
    let feed = |db| ChangeFeed::new(db, "test");
    let (one, two, other) = (
        feed(connect(&db.target()).await.unwrap()),
        feed(connect(&db.target()).await.unwrap()),
        feed(connect(&elsewhere.target()).await.unwrap()),
    );
    let mut heard = Box::pin(two.changes());
    let mut heard_elsewhere = Box::pin(other.changes());
    async fn next(stream: &mut (impl futures::Stream<Item = Notice> + Unpin)) -> Notice {
        tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("a notice within 5 s")
            .expect("the stream stays open")
    }
    for feed in [&one, &two, &other] {
        tokio::spawn(feed.clone().run(until_stopped()));
    }
    assert_eq!(next(&mut heard).await, Notice::default(), "subscribed");
    assert_eq!(next(&mut heard_elsewhere).await, Notice::default());
    // Listening: each feed tells its subscribers to forget everything once.
    assert!(next(&mut heard).await.everything);
    assert!(next(&mut heard_elsewhere).await.everything);

    one.publish("org-1");
    let notice = next(&mut heard).await;
    assert_eq!(notice.keys, ["org-1"], "{notice:?}");

    // The listening connection is lost: forget everything, then hear again.
    let admin = connect(&db.target()).await.unwrap();
    let orgplane_storage::db::DbTarget::Postgres { schema, .. } = db.target() else {
        unreachable!("a PostgreSQL test database")
    };
    admin
        .execute_unprepared(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE query = 'LISTEN \"{schema}:test\"'"
        ))
        .await
        .unwrap();
    let mut forgot = false;
    for _ in 0..3 {
        if next(&mut heard).await.everything {
            forgot = true;
            break;
        }
    }
    assert!(
        forgot,
        "a lost listener makes subscribers forget everything"
    );
    one.publish("org-2");
    let start = std::time::Instant::now();
    loop {
        let notice = next(&mut heard).await;
        if notice.keys.contains(&"org-2".to_owned()) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "heard again");
    }
    // The other schema heard none of it.
    while let Ok(Some(notice)) =
        tokio::time::timeout(Duration::from_millis(300), heard_elsewhere.next()).await
    {
        assert!(
            notice.keys.is_empty(),
            "another schema's change: {notice:?}"
        );
    }
    let _ = stop.send(true);
    db.drop().await;
    elsewhere.drop().await;
}

/// Ends the PostgreSQL sessions `pids` from `admin`, as a restart or a
/// proxy's idle timeout would.
async fn terminate_backends(admin: &sea_orm::DatabaseConnection, pids: &BTreeSet<i32>) {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    for pid in pids {
        admin
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_terminate_backend($1)",
                [(*pid).into()],
            ))
            .await
            .unwrap();
    }
}

/// A pooled PostgreSQL connection is not pinged before each statement (it
/// answered a ping as it returned to the pool), but one idle for
/// `PING_IF_IDLE_FOR` is: one the server dropped meanwhile (a restart, a
/// proxy's idle timeout) is replaced, not handed to the caller.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_while_idle_is_replaced_before_use() {
    use orgplane_storage::db::{PING_IF_IDLE_FOR, connect};
    use sea_orm::{ConnectionTrait, DbBackend, Statement};

    let Some(db) = orgplane_e2e::TestDatabase::postgres() else {
        return;
    };
    let pool = connect(&db.target()).await.unwrap();
    let backend_pid = |db: &sea_orm::DatabaseConnection| {
        let db = db.clone();
        async move {
            db.query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT pg_backend_pid() AS pid",
            ))
            .await
            .unwrap()
            .expect("a row")
            .try_get::<i32>("", "pid")
            .unwrap()
        }
    };
    // One call at a time: the pool hands out the same idle connection.
    let mut pids = BTreeSet::new();
    for _ in 0..3 {
        pids.insert(backend_pid(&pool).await);
    }
    let admin = connect(&db.target()).await.unwrap();
    terminate_backends(&admin, &pids).await;
    tokio::time::sleep(PING_IF_IDLE_FOR + Duration::from_millis(500)).await;
    let now = backend_pid(&pool).await;
    assert!(!pids.contains(&now), "a new connection, not {pids:?}");
    pool.close().await.unwrap();
    admin.close().await.unwrap();
    db.drop().await;
}

/// sqlx starts no task of its own for a PostgreSQL pool
/// (`db::without_pool_maintenance`; sqlx issue #3645): none of the
/// settings that need one is on.
#[tokio::test]
async fn postgres_pools_start_no_task_of_sqlx() {
    let Some(db) = orgplane_e2e::TestDatabase::postgres() else {
        return;
    };
    let pool = orgplane_storage::db::connect(&db.target()).await.unwrap();
    let options = pool.get_postgres_connection_pool().options();
    assert_eq!(options.get_idle_timeout(), None);
    assert_eq!(options.get_max_lifetime(), None);
    assert_eq!(options.get_min_connections(), 0);
    pool.close().await.unwrap();
    db.drop().await;
}

/// List pages on PostgreSQL are read on connections kept outside sqlx's
/// pool (`postgres_reads`): those see the service's schema, are never more
/// than configured, survive being cut while idle (the read runs again on a
/// new one), keep working after a statement fails, and a read abandoned
/// mid-statement costs nothing after; with none configured, reads go
/// through the pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_outside_the_pool_stay_in_their_share_and_survive_losses() {
    use orgplane_storage::{db::connect, postgres_reads::query_all};
    use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

    let Some(db) = orgplane_e2e::TestDatabase::postgres() else {
        return;
    };
    let pool = connect(&db.target().with_readers(2)).await.unwrap();
    pool.execute_unprepared("CREATE TABLE t (n INTEGER); INSERT INTO t VALUES (7)")
        .await
        .unwrap();
    let read = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            query_all(&pool, &Statement::from_string(DbBackend::Postgres, sql))
                .await
                .expect("a pool with reading connections")
        }
    };
    let pid = |rows: Vec<sea_orm::QueryResult>| rows[0].try_get::<i32>("", "pid").unwrap();

    // The schema's table, unqualified.
    let rows = read("SELECT n, pg_backend_pid() AS pid FROM t")
        .await
        .unwrap();
    assert_eq!(rows[0].try_get::<i32>("", "n").unwrap(), 7);

    // Six reads at once share the two reading connections.
    let reads = (0..6).map(|_| read("SELECT pg_sleep(0.2), pg_backend_pid() AS pid"));
    let pids: BTreeSet<i32> = futures::future::join_all(reads)
        .await
        .into_iter()
        .map(|rows| pid(rows.unwrap()))
        .collect();
    assert!(pids.len() <= 2, "at most two reading connections: {pids:?}");

    // Cut while idle: the next read succeeds at once, on a new connection.
    let admin = connect(&db.target()).await.unwrap();
    terminate_backends(&admin, &pids).await;
    let now = pid(read("SELECT pg_backend_pid() AS pid")
        .await
        .expect("read again"));
    assert!(
        !pids.contains(&now),
        "a new connection, not one of {pids:?}"
    );

    // A statement PostgreSQL refuses fails alone: its connection reads on.
    let refused = read("SELECT 1 / 0 AS pid").await;
    assert!(refused.is_err(), "division by zero: {refused:?}");
    assert_eq!(
        pid(read("SELECT pg_backend_pid() AS pid").await.unwrap()),
        now
    );

    // A read abandoned mid-statement takes its connection with it.
    let abandoned = tokio::time::timeout(
        Duration::from_millis(100),
        read("SELECT pg_sleep(30) AS pid"),
    )
    .await;
    assert!(abandoned.is_err(), "still sleeping when abandoned");
    let started = std::time::Instant::now();
    read("SELECT pg_backend_pid() AS pid").await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "not behind the abandoned sleep"
    );

    // None configured: reads go through the pool.
    let through_pool: DatabaseConnection = connect(&db.target().with_readers(0)).await.unwrap();
    let statement = Statement::from_string(DbBackend::Postgres, "SELECT 1 AS pid");
    assert!(query_all(&through_pool, &statement).await.is_none());

    for db in [pool, admin, through_pool] {
        db.close().await.unwrap();
    }
    db.drop().await;
}

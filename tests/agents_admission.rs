//! The admission engine of the agents service on SQLite and PostgreSQL:
//! priority, concurrency, the fair strategy, lease expiry and re-delivery,
//! cancellation, restarts, and 8 concurrent acquirers of two replicas of
//! the service over 2,000 runs with no run handed out twice and none lost;
//! the lease indexes, which hold only leased runs, serve the lease queries.

use std::{collections::HashSet, time::Duration};

use orgplane_agents::{
    Agents, Migrator,
    domain::admission::{self, Holder, NewRun, StatusReport},
    storage::{agents, queues, runs},
};
use orgplane_e2e::TestDatabase;
use orgplane_platform::Error;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait, Set,
};

const LEASE: Duration = Duration::from_secs(60);

/// The agents service over `db` (again: a restart).
async fn open(db: &TestDatabase) -> Agents {
    Agents::new(db.open::<Migrator>().await)
}

/// An agent of organization `org` (fixture rows: the CRUD surface comes
/// with the service's API).
async fn agent(a: &Agents, org: &str, name: &str) -> String {
    let uuid = uuid::Uuid::now_v7().to_string();
    agents::ActiveModel {
        uuid: Set(uuid.clone()),
        organization_uuid: Set(org.into()),
        name: Set(name.into()),
        create_time: Set(0),
        description: Set(String::new()),
        tags: Set(String::new()),
        namespace: Set(String::new()),
        cluster: Set(String::new()),
        agent_version: Set(String::new()),
        heartbeat_timeout_seconds: Set(60),
        settings: Set("{}".into()),
        heartbeat_time: Set(None),
        version: Set(1),
        update_time: Set(0),
    }
    .insert(a.db())
    .await
    .unwrap();
    uuid
}

async fn queue(
    a: &Agents,
    agent_uuid: &str,
    name: &str,
    priority: i32,
    concurrency: i32,
    strategy: &str,
) -> String {
    let uuid = uuid::Uuid::now_v7().to_string();
    queues::ActiveModel {
        uuid: Set(uuid.clone()),
        organization_uuid: Set("org".into()),
        agent_uuid: Set(agent_uuid.into()),
        name: Set(name.into()),
        priority: Set(priority),
        concurrency: Set(concurrency),
        strategy: Set(strategy.into()),
        version: Set(1),
        create_time: Set(0),
        description: Set(String::new()),
        resource: Set(String::new()),
        quota: Set(0.0),
        update_time: Set(0),
    }
    .insert(a.db())
    .await
    .unwrap();
    uuid
}

async fn submit(a: &Agents, queue_uuid: &str, project: &str, name: &str) -> String {
    a.enqueue(NewRun {
        organization_uuid: "org".into(),
        project: project.into(),
        queue_uuid: queue_uuid.into(),
        name: name.into(),
        spec: serde_json::json!({"kind": "job"}),
        submitter: "ada".into(),
        demand: 1.0,
    })
    .await
    .unwrap()
    .uuid
}

/// The agent `agent_uuid` of the fixtures' organization, as a lease holder.
fn held(agent_uuid: &str) -> Holder<'_> {
    Holder {
        organization_uuid: "org",
        agent_uuid,
    }
}

fn names(runs: &[runs::Model]) -> Vec<&str> {
    runs.iter().map(|r| r.name.as_str()).collect()
}

async fn priority_first_within_each_queues_concurrency(db: &TestDatabase) {
    let a = open(db).await;
    let ag = agent(&a, "org", "gpu-box").await;
    let hi = queue(&a, &ag, "urgent", 10, 2, "fifo").await;
    let lo = queue(&a, &ag, "batch", 1, 0, "fifo").await;
    for i in 0..3 {
        submit(&a, &lo, "p", &format!("lo{i}")).await;
    }
    for i in 0..3 {
        submit(&a, &hi, "p", &format!("hi{i}")).await;
    }
    let first = a.acquire(&ag, 4, LEASE).await.unwrap();
    assert_eq!(names(&first), ["hi0", "hi1", "lo0", "lo1"]);
    let stats = a.queue_stats(&hi).await.unwrap();
    assert_eq!(
        (stats.queued, stats.leased, stats.running, stats.done),
        (1, 2, 0, 0)
    );
    assert!(stats.oldest_wait.is_some());
    // The urgent queue is full until a run of it ends, for every replica
    // of the service (another pool on the same database).
    let b = open(db).await;
    assert_eq!(names(&b.acquire(&ag, 1, LEASE).await.unwrap()), ["lo2"]);
    assert!(b.acquire(&ag, 5, LEASE).await.unwrap().is_empty());
    let done = &first[0];
    a.report(
        held(&ag),
        &done.uuid,
        done.lease_id.as_deref().unwrap(),
        "running",
        "",
    )
    .await
    .unwrap();
    assert!(
        b.acquire(&ag, 5, LEASE).await.unwrap().is_empty(),
        "running holds its slot"
    );
    a.report(
        held(&ag),
        &done.uuid,
        done.lease_id.as_deref().unwrap(),
        "succeeded",
        "ok",
    )
    .await
    .unwrap();
    assert_eq!(names(&b.acquire(&ag, 5, LEASE).await.unwrap()), ["hi2"]);
    a.db().clone().close().await.unwrap();
    b.db().clone().close().await.unwrap();
}

async fn the_fair_strategy_takes_turns_across_projects(db: &TestDatabase) {
    let a = open(db).await;
    let ag = agent(&a, "org", "shared").await;
    let fair = queue(&a, &ag, "fair", 1, 0, "fair").await;
    let fifo_agent = agent(&a, "org", "plain").await;
    let fifo = queue(&a, &fifo_agent, "fifo", 1, 0, "fifo").await;
    for q in [&fair, &fifo] {
        for i in 0..6 {
            submit(&a, q, "big", &format!("big{i}")).await;
        }
        for i in 0..2 {
            submit(&a, q, "small", &format!("small{i}")).await;
        }
    }
    let fair_order = a.acquire(&ag, 6, LEASE).await.unwrap();
    assert_eq!(
        names(&fair_order),
        ["big0", "small0", "big1", "small1", "big2", "big3"]
    );
    let fifo_order = a.acquire(&fifo_agent, 6, LEASE).await.unwrap();
    assert_eq!(
        names(&fifo_order),
        ["big0", "big1", "big2", "big3", "big4", "big5"]
    );
    a.db().clone().close().await.unwrap();
}

async fn a_quota_holds_back_the_run_that_does_not_fit_and_those_behind_it(db: &TestDatabase) {
    let a = open(db).await;
    let ag = agent(&a, "org", "gpu-box").await;
    let q = queue(&a, &ag, "gpus", 1, 0, "fifo").await;
    queues::Entity::update_many()
        .col_expr(
            queues::Column::Resource,
            sea_orm::sea_query::Expr::value("gpu"),
        )
        .col_expr(queues::Column::Quota, sea_orm::sea_query::Expr::value(4.0))
        .filter(queues::Column::Uuid.eq(q.as_str()))
        .exec(a.db())
        .await
        .unwrap();
    for (name, gpus) in [("g2", 2.0), ("g3", 3.0), ("g1", 1.0)] {
        a.enqueue(NewRun {
            organization_uuid: "org".into(),
            project: "p".into(),
            queue_uuid: q.clone(),
            name: name.into(),
            spec: serde_json::json!({"resources": {"gpu": gpus}}),
            submitter: "ada".into(),
            demand: gpus,
        })
        .await
        .unwrap();
    }
    let first = a.acquire(&ag, 10, LEASE).await.unwrap();
    assert_eq!(names(&first), ["g2"], "3 more would exceed 4");
    let lease = first[0].lease_id.clone().unwrap();
    a.report(held(&ag), &first[0].uuid, &lease, "succeeded", "")
        .await
        .unwrap();
    assert_eq!(
        names(&a.acquire(&ag, 10, LEASE).await.unwrap()),
        ["g3", "g1"]
    );
    a.db().clone().close().await.unwrap();
}

async fn an_expired_lease_puts_its_run_back_then_fails_it(db: &TestDatabase) {
    let a = open(db).await;
    let ag = agent(&a, "org", "flaky").await;
    let q = queue(&a, &ag, "q", 1, 1, "fifo").await;
    let run = submit(&a, &q, "p", "r").await;
    let short = Duration::from_millis(30);
    let mut last_lease = String::new();
    for attempt in 1..=admission::DEFAULT_MAX_ATTEMPTS {
        let leased = a.acquire(&ag, 1, short).await.unwrap();
        assert_eq!(leased.len(), 1, "attempt {attempt}");
        assert_eq!(leased[0].uuid, run);
        assert_eq!(leased[0].attempts, attempt);
        last_lease = leased[0].lease_id.clone().unwrap();
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    // A report on a lease that expired is refused.
    let late = a
        .report(held(&ag), &run, &last_lease, "succeeded", "")
        .await;
    assert!(
        matches!(
            late,
            Err(Error::FailedPrecondition {
                reason: "LEASE_LOST",
                ..
            })
        ),
        "{late:?}"
    );
    assert!(a.acquire(&ag, 1, LEASE).await.unwrap().is_empty());
    let row = runs::Entity::find_by_id(run)
        .one(a.db())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status, admission::FAILED, "leased too often");
    a.db().clone().close().await.unwrap();
}

async fn the_attempts_are_configured_per_service(db: &TestDatabase) {
    let a = open(db).await.with_max_attempts(1);
    let ag = agent(&a, "org", "flaky").await;
    let q = queue(&a, &ag, "q", 1, 1, "fifo").await;
    let run = submit(&a, &q, "p", "r").await;
    assert_eq!(
        a.acquire(&ag, 1, Duration::from_millis(30))
            .await
            .unwrap()
            .len(),
        1
    );
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert!(a.acquire(&ag, 1, LEASE).await.unwrap().is_empty());
    let row = runs::Entity::find_by_id(run)
        .one(a.db())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (row.status.as_str(), row.message.as_str()),
        (admission::FAILED, "its lease expired 1 times")
    );
    a.db().clone().close().await.unwrap();
}

async fn cancellation_reaches_the_agent(db: &TestDatabase) {
    let a = open(db).await;
    let ag = agent(&a, "org", "worker").await;
    let q = queue(&a, &ag, "q", 1, 0, "fifo").await;
    let waiting = submit(&a, &q, "p", "waiting").await;
    let started = submit(&a, &q, "p", "started").await;
    let leased = a.acquire(&ag, 1, LEASE).await.unwrap();
    assert_eq!(leased[0].uuid, waiting);
    let lease = leased[0].lease_id.clone().unwrap();
    assert_eq!(a.cancel(&started).await.unwrap().status, admission::STOPPED);
    assert_eq!(
        a.cancel(&waiting).await.unwrap().status,
        admission::STOPPING
    );
    let (to_start, to_stop) = a.agent_state(&ag).await.unwrap();
    assert!(to_start.is_empty());
    assert_eq!(names(&to_stop), ["waiting"]);
    let stopped = a
        .report(held(&ag), &waiting, &lease, "stopped", "cancelled")
        .await
        .unwrap();
    assert_eq!(stopped.status, admission::STOPPED);
    assert!(a.agent_state(&ag).await.unwrap().1.is_empty());
    a.db().clone().close().await.unwrap();
}

async fn a_restart_with_runs_leased_loses_nothing(db: &TestDatabase) {
    let a = open(db).await;
    let ag = agent(&a, "org", "worker").await;
    let q = queue(&a, &ag, "q", 1, 0, "fifo").await;
    for i in 0..5 {
        submit(&a, &q, "p", &format!("r{i}")).await;
    }
    let leased = a.acquire(&ag, 5, Duration::from_millis(50)).await.unwrap();
    assert_eq!(leased.len(), 5);
    // The service and its agent die with every run leased.
    a.db().clone().close().await.unwrap();
    drop(a);
    tokio::time::sleep(Duration::from_millis(80)).await;
    let b = open(db).await;
    let again = b.acquire(&ag, 10, LEASE).await.unwrap();
    assert_eq!(again.len(), 5, "every run comes back");
    assert!(again.iter().all(|r| r.attempts == 2));
    b.db().clone().close().await.unwrap();
}

/// Two replicas of the service (two pools on one database), four
/// acquirers each.
async fn eight_acquirers_over_2000_runs_hand_out_each_run_once(db: &TestDatabase) {
    let a = open(db).await;
    let replicas = [a.clone(), open(db).await];
    let ag = agent(&a, "org", "fleet").await;
    let queues = [
        queue(&a, &ag, "q1", 2, 0, "fifo").await,
        queue(&a, &ag, "q2", 1, 64, "fair").await,
    ];
    let mut submitted = HashSet::new();
    for i in 0..2000 {
        let q = &queues[i % 2];
        submitted.insert(submit(&a, q, &format!("p{}", i % 7), &format!("r{i}")).await);
    }
    let mut workers = Vec::new();
    for i in 0..8 {
        let a = replicas[i % 2].clone();
        let ag = ag.clone();
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let leased = a.acquire(&ag, 16, LEASE).await.unwrap();
                if leased.is_empty() {
                    break;
                }
                for run in leased {
                    let lease = run.lease_id.clone().unwrap();
                    a.report(held(&ag), &run.uuid, &lease, "succeeded", "")
                        .await
                        .unwrap();
                    mine.push(run.uuid);
                }
            }
            mine
        }));
    }
    let mut seen = HashSet::new();
    let mut handed_out = 0;
    for worker in workers {
        for uuid in worker.await.unwrap() {
            handed_out += 1;
            assert!(seen.insert(uuid), "a run was handed out twice");
        }
    }
    assert_eq!(handed_out, 2000, "no duplicates");
    assert_eq!(seen, submitted, "no losses");
    let succeeded = runs::Entity::find()
        .filter(runs::Column::Status.eq(admission::SUCCEEDED))
        .count(a.db())
        .await
        .unwrap();
    assert_eq!(succeeded, 2000);
    for replica in replicas {
        replica.db().clone().close().await.unwrap();
    }
}

/// Reports recorded together (as `ReportRunStatus` group commits them)
/// are answered as if one by one, in their order: a run reported twice sees
/// its first report; a refused report writes nothing and the others stand.
async fn reports_together_are_answered_as_if_one_by_one(db: &TestDatabase) {
    let a = open(db).await;
    let ag = agent(&a, "org", "worker").await;
    let other = agent(&a, "org", "other").await;
    let q = queue(&a, &ag, "q", 1, 0, "fifo").await;
    for name in ["r1", "r2", "r3", "r4"] {
        submit(&a, &q, "p", name).await;
    }
    let leased = a.acquire(&ag, 4, LEASE).await.unwrap();
    assert_eq!(names(&leased), ["r1", "r2", "r3", "r4"]);
    let [r1, r2, r3, r4] = [0, 1, 2, 3].map(|i| leased[i].uuid.as_str());
    let lease = leased[0].lease_id.as_deref().unwrap();
    let report = |holder, run_uuid, lease_id, status| StatusReport {
        holder,
        run_uuid,
        lease_id,
        status,
        message: "m",
    };
    let missing = uuid::Uuid::now_v7().to_string();
    let results = a
        .report_all(&[
            report(held(&ag), r1, lease, "running"),
            report(held(&ag), r1, lease, "running"),
            report(held(&ag), r2, lease, "succeeded"),
            report(held(&ag), r1, lease, "succeeded"),
            report(held(&ag), r3, "another-lease", "running"),
            report(held(&ag), r4, lease, "bogus"),
            report(held(&ag), r2, lease, "running"),
            report(held(&other), r4, lease, "running"),
            report(held(&ag), &missing, lease, "running"),
        ])
        .await
        .unwrap();
    let outcomes: Vec<String> = results
        .iter()
        .map(|result| match result {
            Ok(run) => format!("{} {}", run.name, run.status),
            Err(Error::FailedPrecondition { reason, .. }) => (*reason).to_owned(),
            Err(Error::InvalidArgument(_)) => "invalid".to_owned(),
            Err(Error::NotFound { .. }) => "not found".to_owned(),
            Err(other) => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            "r1 running",
            "NOT_LEASED",
            "r2 succeeded",
            "r1 succeeded",
            "LEASE_LOST",
            "invalid",
            "LEASE_LOST",
            "LEASE_LOST",
            "not found",
        ]
    );
    let done = results[3].as_ref().unwrap();
    assert_eq!(done.message, "m");
    assert_eq!(
        (
            done.lease_id.as_deref(),
            done.lease_agent_uuid.as_deref(),
            done.lease_expire_time
        ),
        (None, None, None),
        "a terminal status ends the lease"
    );
    let running = results[0].as_ref().unwrap();
    assert_eq!(running.lease_id.as_deref(), Some(lease), "running keeps it");
    let status = |uuid: &str| {
        let uuid = uuid.to_owned();
        let db = a.db().clone();
        async move {
            runs::Entity::find_by_id(uuid)
                .one(&db)
                .await
                .unwrap()
                .unwrap()
                .status
        }
    };
    assert_eq!(status(r1).await, admission::SUCCEEDED);
    assert_eq!(status(r2).await, admission::SUCCEEDED);
    assert_eq!(status(r3).await, admission::LEASED, "refused: unchanged");
    assert_eq!(status(r4).await, admission::LEASED, "refused: unchanged");
    a.db().clone().close().await.unwrap();
}

/// An agent with one unbounded queue, `queued` runs submitted to it and up
/// to `leased` of them leased: the agent and its leased runs.
async fn queued_then_leased(a: &Agents, queued: usize, leased: u64) -> (String, Vec<runs::Model>) {
    let ag = agent(a, "org", "worker").await;
    let q = queue(a, &ag, "q", 1, 0, "fifo").await;
    for i in 0..queued {
        submit(a, &q, "p", &format!("r{i}")).await;
    }
    let runs = a.acquire(&ag, leased, LEASE).await.unwrap();
    (ag, runs)
}

/// The agent `agent_uuid`'s reports that each of its `leased` runs
/// succeeded.
fn succeeded<'a>(agent_uuid: &'a str, leased: &'a [runs::Model]) -> Vec<StatusReport<'a>> {
    leased
        .iter()
        .map(|run| StatusReport {
            holder: held(agent_uuid),
            run_uuid: &run.uuid,
            lease_id: run.lease_id.as_deref().unwrap(),
            status: admission::SUCCEEDED,
            message: "",
        })
        .collect()
}

/// More reports at once than one statement takes: each is written.
async fn three_hundred_reports_at_once_are_each_written(db: &TestDatabase) {
    let a = open(db).await;
    let (ag, leased) = queued_then_leased(&a, 300, 300).await;
    assert_eq!(leased.len(), 300);
    let results = a.report_all(&succeeded(&ag, &leased)).await.unwrap();
    for (run, result) in leased.iter().zip(&results) {
        assert_eq!(result.as_ref().unwrap().uuid, run.uuid, "in order");
    }
    let succeeded = runs::Entity::find()
        .filter(runs::Column::Status.eq(admission::SUCCEEDED))
        .count(a.db())
        .await
        .unwrap();
    assert_eq!(succeeded, 300);
    a.db().clone().close().await.unwrap();
}

/// How the database plans `query`: PostgreSQL's `EXPLAIN` lines, or
/// SQLite's `EXPLAIN QUERY PLAN` details.
async fn plan(db: &sea_orm::DatabaseConnection, query: sea_orm::Select<runs::Entity>) -> String {
    let backend = db.get_database_backend();
    let statement = query.build(backend);
    let (explain, column) = match backend {
        DbBackend::Sqlite => ("EXPLAIN QUERY PLAN", 3),
        _ => ("EXPLAIN", 0),
    };
    let explained = sea_orm::Statement {
        sql: format!("{explain} {}", statement.sql),
        ..statement
    };
    let lines: Vec<String> = db
        .query_all_raw(explained)
        .await
        .unwrap()
        .iter()
        .map(|row| row.try_get_by_index::<String>(column).unwrap())
        .collect();
    lines.join("\n")
}

/// What creates the index `name` of the current schema, if it exists.
async fn index_definition(db: &sea_orm::DatabaseConnection, name: &str) -> Option<String> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => format!(
            "SELECT indexdef FROM pg_indexes WHERE indexname = '{name}' \
             AND schemaname = current_schema()"
        ),
        _ => format!("SELECT sql FROM sqlite_master WHERE name = '{name}'"),
    };
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(backend, sql))
        .await
        .unwrap()?;
    Some(row.try_get_by_index(0).unwrap())
}

async fn the_lease_indexes_hold_only_leased_runs_and_serve_the_lease_queries(db: &TestDatabase) {
    let a = open(db).await;
    let (ag, leased) = queued_then_leased(&a, 400, 300).await;
    for result in a.report_all(&succeeded(&ag, &leased[..298])).await.unwrap() {
        result.unwrap();
    }
    a.db().execute_unprepared("ANALYZE runs").await.unwrap();
    // Both indexes are partial: what defines them says so.
    for index in ["runs_leased_agent", "runs_leased_expire_time"] {
        let sql = index_definition(a.db(), index).await;
        assert!(sql.is_some_and(|sql| sql.to_uppercase().contains("IS NOT NULL")));
    }
    // An agent's leased runs (what `agent_state` reads) ...
    let mine = runs::Entity::find()
        .filter(runs::Column::LeaseAgentUuid.eq(ag.as_str()))
        .filter(runs::Column::Status.eq(admission::LEASED))
        .order_by_asc(runs::Column::Uuid)
        .limit(1000);
    let (found, planned) = (
        mine.clone().all(a.db()).await.unwrap(),
        plan(a.db(), mine).await,
    );
    assert_eq!(found.len(), 2);
    assert!(planned.contains("runs_leased_agent"), "{planned}");
    // ... and the lapsed leases (what the sweep reads) come from them.
    let lapsed = runs::Entity::find()
        .select_only()
        .column(runs::Column::QueueUuid)
        .distinct()
        .filter(runs::Column::LeaseExpireTime.lt(i64::MAX))
        .filter(runs::Column::Status.is_in([admission::LEASED, admission::RUNNING]));
    let planned = plan(a.db(), lapsed).await;
    assert!(planned.contains("runs_leased_expire_time"), "{planned}");
    // Rolled back, the full indexes return.
    <orgplane_agents::Migrator as sea_orm_migration::MigratorTrait>::down(a.db(), Some(1))
        .await
        .unwrap();
    for (partial, full) in [
        ("runs_leased_agent", "runs_lease_agent"),
        ("runs_leased_expire_time", "runs_lease_expire_time"),
    ] {
        assert_eq!(index_definition(a.db(), partial).await, None);
        let sql = index_definition(a.db(), full).await;
        assert!(sql.is_some_and(|sql| !sql.to_uppercase().contains("WHERE")));
    }
    a.db().clone().close().await.unwrap();
}

orgplane_e2e::on_both_databases!(
    database:
    the_lease_indexes_hold_only_leased_runs_and_serve_the_lease_queries,
    priority_first_within_each_queues_concurrency,
    the_fair_strategy_takes_turns_across_projects,
    a_quota_holds_back_the_run_that_does_not_fit_and_those_behind_it,
    an_expired_lease_puts_its_run_back_then_fails_it,
    the_attempts_are_configured_per_service,
    cancellation_reaches_the_agent,
    a_restart_with_runs_leased_loses_nothing,
    eight_acquirers_over_2000_runs_hand_out_each_run_once,
    reports_together_are_answered_as_if_one_by_one,
    three_hundred_reports_at_once_are_each_written,
);

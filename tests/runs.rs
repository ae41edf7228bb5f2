//! Runs end to end through the gateway: people submit (routed to the named
//! queue, else the project's default, else the organization's), read, list
//! and cancel; agents, with their own token, lease by priority within each
//! queue's concurrency and quota, fairly across projects, renew, report, see
//! cancellations in `GetAgentState`, and get expired leases back; 8 agents
//! over 2,000 runs on SQLite and PostgreSQL; role matrix, tenant isolation,
//! bad input.

use std::{collections::HashSet, time::Duration};

use orgplane_e2e::{
    TestStack, check_role_matrix, eventually, expect_code, expect_reason, mask, violated_fields,
};
use orgplane_platform::authz::Permission;
use orgplane_platform::json::json_to_struct;
use orgplane_proto::{agents::*, organizations as org_pb};
use tonic::Code;

const SHORT_LEASE: Duration = Duration::from_secs(1);

fn lease(d: Duration) -> Option<prost_types::Duration> {
    Some(prost_types::Duration::try_from(d).unwrap())
}

/// An organization with projects `vision` and `nlp`, the agent `box` with
/// the queues `urgent` (priority 10, concurrency 2) and `batch` (priority
/// 1, no limit); returns the agent's token.
async fn setup(t: &TestStack, owner: &str, org: &str) -> String {
    t.create_organization(owner, org).await;
    for project in ["vision", "nlp"] {
        project_named(t, owner, org, project).await;
    }
    let token = t
        .agents_as(owner)
        .create_agent(CreateAgentRequest {
            request_id: String::new(),
            organization: org.into(),
            agent: Some(Agent {
                name: "box".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .token;
    queue(t, owner, org, "urgent", 10, 2).await;
    queue(t, owner, org, "batch", 1, 0).await;
    token
}

async fn project_named(t: &TestStack, owner: &str, org: &str, name: &str) {
    t.projects_as(owner)
        .create_project(org_pb::CreateProjectRequest {
            request_id: String::new(),
            organization: org.into(),
            project: Some(org_pb::Project {
                name: name.into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
}

async fn queue_with(t: &TestStack, owner: &str, org: &str, q: Queue) {
    t.queues_as(owner)
        .create_queue(CreateQueueRequest {
            request_id: String::new(),
            organization: org.into(),
            agent: "box".into(),
            queue: Some(q),
        })
        .await
        .unwrap();
}

async fn queue(t: &TestStack, owner: &str, org: &str, name: &str, priority: i32, concurrency: i32) {
    let q = Queue {
        name: name.into(),
        priority,
        concurrency,
        ..Default::default()
    };
    queue_with(t, owner, org, q).await;
}

fn request(org: &str, project: &str, queue: &str, name: &str) -> SubmitRunRequest {
    SubmitRunRequest {
        request_id: String::new(),
        organization: org.into(),
        project: project.into(),
        queue: queue.into(),
        name: name.into(),
        spec: Some(json_to_struct(&serde_json::json!({"kind": "job"}))),
    }
}

async fn submit(
    t: &TestStack,
    token: &str,
    org: &str,
    project: &str,
    queue: &str,
    name: &str,
) -> Run {
    t.runs_as(token)
        .submit_run(request(org, project, queue, name))
        .await
        .unwrap()
        .into_inner()
        .run
        .unwrap()
}

async fn acquire(t: &TestStack, agent_token: &str, org: &str, n: i32, d: Duration) -> Vec<Run> {
    t.runs_as(agent_token)
        .acquire_runs(AcquireRunsRequest {
            organization: org.into(),
            agent: "box".into(),
            max_runs: n,
            lease_duration: lease(d),
        })
        .await
        .unwrap()
        .into_inner()
        .runs
}

async fn report(t: &TestStack, agent_token: &str, org: &str, run: &Run, status: &str) -> Run {
    t.runs_as(agent_token)
        .report_run_status(ReportRunStatusRequest {
            organization: org.into(),
            run: run.uuid.clone(),
            status: status.into(),
            lease: run.lease.as_ref().unwrap().id.clone(),
            message: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .run
        .unwrap()
}

fn names(runs: &[Run]) -> Vec<&str> {
    runs.iter().map(|r| r.name.as_str()).collect()
}

async fn get(t: &TestStack, token: &str, org: &str, uuid: &str) -> Run {
    t.runs_as(token)
        .get_run(GetRunRequest {
            organization: org.into(),
            run: uuid.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .run
        .unwrap()
}

async fn set_project_settings(
    t: &TestStack,
    owner: &str,
    org: &str,
    project: &str,
    settings: org_pb::ProjectSettings,
    paths: &[&str],
) {
    t.projects_as(owner)
        .update_project_settings(org_pb::UpdateProjectSettingsRequest {
            organization: org.into(),
            project: project.into(),
            settings: Some(settings),
            update_mask: mask(paths),
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn runs_are_routed_to_the_named_then_the_projects_then_the_organizations_queue() {
    let t = TestStack::start().await;
    let owner = t.user("owner").await;
    setup(&t, &owner, "acme").await;
    for project in ["plain", "locked", "stale", "old"] {
        project_named(&t, &owner, "acme", project).await;
    }
    // No default set: the organization's first queue, the one its first
    // agent came with (each project is routed first once its settings are
    // final: routing is cached for a few seconds).
    let first = submit(&t, &owner, "acme", "plain", "", "first").await;
    assert_eq!(first.queue, "box/default");
    // An organization without any agent has nowhere to send a run.
    t.create_organization(&owner, "empty").await;
    project_named(&t, &owner, "empty", "vision").await;
    expect_reason(
        t.runs_as(&owner)
            .submit_run(request("empty", "vision", "", "lost"))
            .await,
        Code::FailedPrecondition,
        "NO_QUEUE",
    );

    t.orgs_as(&owner)
        .update_organization_settings(org_pb::UpdateOrganizationSettingsRequest {
            organization: "acme".into(),
            settings: Some(org_pb::OrganizationSettings {
                default_queue: "box/batch".into(),
                ..Default::default()
            }),
            update_mask: mask(&["default_queue"]),
        })
        .await
        .unwrap();
    let project_default = org_pb::ProjectSettings {
        default_queue: "box/urgent".into(),
        ..Default::default()
    };
    set_project_settings(
        &t,
        &owner,
        "acme",
        "vision",
        project_default,
        &["default_queue"],
    )
    .await;

    let named = submit(&t, &owner, "acme", "vision", "box/batch", "named").await;
    assert_eq!(named.queue, "box/batch", "the named queue wins");
    assert_eq!(
        (
            named.status.as_str(),
            named.submitter.as_str(),
            named.attempts
        ),
        ("queued", "owner", 0)
    );
    assert!(named.lease.is_none());
    let by_project = submit(&t, &owner, "acme", "vision", "", "by-project").await;
    assert_eq!(by_project.queue, "box/urgent", "then the project's default");
    let by_org = submit(&t, &owner, "acme", "nlp", "", "by-org").await;
    assert_eq!(by_org.queue, "box/batch", "then the organization's");
    assert_eq!(get(&t, &owner, "acme", &by_org.uuid).await, by_org);

    // A queue outside the project's allowed queues (or agents) is refused.
    let locked = org_pb::ProjectSettings {
        allowed_queues: vec!["box/urgent".into()],
        ..Default::default()
    };
    set_project_settings(&t, &owner, "acme", "locked", locked, &["allowed_queues"]).await;
    expect_reason(
        t.runs_as(&owner)
            .submit_run(request("acme", "locked", "box/batch", "x"))
            .await,
        Code::FailedPrecondition,
        "QUEUE_NOT_ALLOWED",
    );
    expect_reason(
        t.runs_as(&owner)
            .submit_run(request("acme", "locked", "", "x"))
            .await,
        Code::FailedPrecondition,
        "QUEUE_NOT_ALLOWED",
    );
    submit(&t, &owner, "acme", "locked", "box/urgent", "allowed").await;

    // A default queue that is gone, a named queue or project that never
    // was, an archived project.
    let stale = org_pb::ProjectSettings {
        default_queue: "box/gone".into(),
        ..Default::default()
    };
    set_project_settings(&t, &owner, "acme", "stale", stale, &["default_queue"]).await;
    expect_reason(
        t.runs_as(&owner)
            .submit_run(request("acme", "stale", "", "x"))
            .await,
        Code::FailedPrecondition,
        "DEFAULT_QUEUE_NOT_FOUND",
    );
    expect_code(
        t.runs_as(&owner)
            .submit_run(request("acme", "vision", "box/gone", "x"))
            .await,
        Code::NotFound,
    );
    expect_code(
        t.runs_as(&owner)
            .submit_run(request("acme", "never-made", "box/batch", "x"))
            .await,
        Code::NotFound,
    );
    t.projects_as(&owner)
        .archive_project(org_pb::ArchiveProjectRequest {
            organization: "acme".into(),
            project: "old".into(),
        })
        .await
        .unwrap();
    expect_reason(
        t.runs_as(&owner)
            .submit_run(request("acme", "old", "box/batch", "x"))
            .await,
        Code::FailedPrecondition,
        "PROJECT_ARCHIVED",
    );
}

/// Issue 21: a project's `connections` setting is enforced on the
/// connections a run names in `spec.connections`.
#[tokio::test]
async fn runs_name_only_connections_their_project_allows() {
    let t = TestStack::start().await;
    let owner = t.user("owner").await;
    setup(&t, &owner, "acme").await;
    let with = |project: &str, connections: serde_json::Value| SubmitRunRequest {
        spec: Some(json_to_struct(
            &serde_json::json!({"kind": "job", "connections": connections}),
        )),
        ..request("acme", project, "box/batch", "r")
    };
    let mut runs = t.runs_as(&owner);
    // Not a list of names.
    let bad = expect_code(
        runs.submit_run(with("vision", serde_json::json!("data")))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&bad), ["spec.connections"]);
    // A connection that does not exist.
    expect_code(
        runs.submit_run(with("vision", serde_json::json!(["data"])))
            .await,
        Code::NotFound,
    );
    t.connections_as(&owner)
        .create_connection(CreateConnectionRequest {
            request_id: String::new(),
            organization: "acme".into(),
            connection: Some(Connection {
                name: "data".into(),
                kind: "s3".into(),
                schema: Some(json_to_struct(&serde_json::json!({"bucket": "s3://data"}))),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    // No list on the project: every connection of the organization.
    runs.submit_run(with("vision", serde_json::json!(["data"])))
        .await
        .unwrap();
    // A list: only those.
    let only_lake = org_pb::ProjectSettings {
        connections: vec!["lake".into()],
        ..Default::default()
    };
    set_project_settings(&t, &owner, "acme", "nlp", only_lake, &["connections"]).await;
    expect_reason(
        runs.submit_run(with("nlp", serde_json::json!(["data"])))
            .await,
        Code::FailedPrecondition,
        "CONNECTION_NOT_ALLOWED",
    );
}

#[tokio::test]
async fn agents_lease_by_priority_within_concurrency_and_quota() {
    let t = TestStack::start().await;
    let owner = t.user("owner").await;
    let agent = setup(&t, &owner, "acme").await;
    for i in 0..3 {
        submit(&t, &owner, "acme", "vision", "box/batch", &format!("b{i}")).await;
    }
    for i in 0..3 {
        submit(&t, &owner, "acme", "vision", "box/urgent", &format!("u{i}")).await;
    }
    let first = acquire(&t, &agent, "acme", 10, Duration::from_secs(60)).await;
    assert_eq!(
        names(&first),
        ["u0", "u1", "b0", "b1", "b2"],
        "priority first; urgent holds at most 2"
    );
    let l = first[0].lease.as_ref().unwrap();
    assert_eq!(l.agent, "box");
    assert!(!l.id.is_empty() && l.expire_time.is_some());
    assert_eq!(first[0].status, "leased");
    assert_eq!(first[0].attempts, 1);
    assert!(
        acquire(&t, &agent, "acme", 10, Duration::from_secs(60))
            .await
            .is_empty()
    );
    assert_eq!(
        report(&t, &agent, "acme", &first[0], "running")
            .await
            .status,
        "running"
    );
    assert!(
        acquire(&t, &agent, "acme", 10, Duration::from_secs(60))
            .await
            .is_empty(),
        "a running run holds its slot"
    );
    let done = report(&t, &agent, "acme", &first[0], "succeeded").await;
    assert_eq!(done.status, "succeeded");
    assert!(done.lease.is_none(), "a terminal status ends the lease");
    assert_eq!(
        names(&acquire(&t, &agent, "acme", 10, Duration::from_secs(60)).await),
        ["u2"],
        "a terminal status frees the slot"
    );

    // A quota of 4 GPUs: runs asking 2, 3 and 1 — the 3 waits (and the 1
    // behind it) until the 2 is done.
    queue_with(
        &t,
        &owner,
        "acme",
        Queue {
            name: "gpus".into(),
            priority: 20,
            resource: "gpu".into(),
            quota: 4.0,
            ..Default::default()
        },
    )
    .await;
    for (name, gpus) in [("g2", 2), ("g3", 3), ("g1", 1)] {
        let mut r = request("acme", "vision", "box/gpus", name);
        r.spec = Some(json_to_struct(
            &serde_json::json!({"kind": "job", "resources": {"gpu": gpus}}),
        ));
        t.runs_as(&owner).submit_run(r).await.unwrap();
    }
    let mut too_big = request("acme", "vision", "box/gpus", "g8");
    too_big.spec = Some(json_to_struct(
        &serde_json::json!({"resources": {"gpu": 8}}),
    ));
    expect_reason(
        t.runs_as(&owner).submit_run(too_big).await,
        Code::FailedPrecondition,
        "OVER_QUOTA",
    );
    let mut not_a_number = request("acme", "vision", "box/gpus", "gx");
    not_a_number.spec = Some(json_to_struct(
        &serde_json::json!({"resources": {"gpu": "two"}}),
    ));
    let status = expect_code(
        t.runs_as(&owner).submit_run(not_a_number).await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["spec"]);
    let g = acquire(&t, &agent, "acme", 10, Duration::from_secs(60)).await;
    assert_eq!(names(&g), ["g2"]);
    report(&t, &agent, "acme", &g[0], "failed").await;
    assert_eq!(
        names(&acquire(&t, &agent, "acme", 10, Duration::from_secs(60)).await),
        ["g3", "g1"]
    );
}

#[tokio::test]
async fn the_fair_strategy_takes_turns_across_projects() {
    let t = TestStack::start().await;
    let owner = t.user("owner").await;
    let agent = setup(&t, &owner, "acme").await;
    for (name, strategy) in [
        ("fair", SchedulingStrategy::Fair),
        ("fifo", SchedulingStrategy::Fifo),
    ] {
        queue_with(
            &t,
            &owner,
            "acme",
            Queue {
                name: name.into(),
                priority: if name == "fair" { 30 } else { 29 },
                strategy: strategy as i32,
                ..Default::default()
            },
        )
        .await;
        // A busy project submits first; the other comes later.
        for i in 0..4 {
            submit(
                &t,
                &owner,
                "acme",
                "vision",
                &format!("box/{name}"),
                &format!("{name}-v{i}"),
            )
            .await;
        }
        for i in 0..2 {
            submit(
                &t,
                &owner,
                "acme",
                "nlp",
                &format!("box/{name}"),
                &format!("{name}-n{i}"),
            )
            .await;
        }
    }
    let fair = acquire(&t, &agent, "acme", 4, Duration::from_secs(60)).await;
    assert_eq!(names(&fair), ["fair-v0", "fair-n0", "fair-v1", "fair-n1"]);
    let rest = acquire(&t, &agent, "acme", 6, Duration::from_secs(60)).await;
    assert_eq!(
        names(&rest),
        [
            "fair-v2", "fair-v3", "fifo-v0", "fifo-v1", "fifo-v2", "fifo-v3"
        ],
        "fifo takes the oldest first"
    );
}

#[tokio::test]
async fn an_expired_lease_puts_the_run_back_and_renewals_keep_it() {
    let t = TestStack::start().await;
    let owner = t.user("owner").await;
    let agent = setup(&t, &owner, "acme").await;
    let kept = submit(&t, &owner, "acme", "vision", "box/urgent", "kept").await;
    let lost = submit(&t, &owner, "acme", "vision", "box/urgent", "lost").await;
    let leased = acquire(&t, &agent, "acme", 2, SHORT_LEASE).await;
    assert_eq!(names(&leased), ["kept", "lost"]);
    let mut runs = t.runs_as(&agent);
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let renewed = runs
            .renew_lease(RenewLeaseRequest {
                organization: "acme".into(),
                run: kept.uuid.clone(),
                lease: leased[0].lease.as_ref().unwrap().id.clone(),
                lease_duration: lease(SHORT_LEASE),
            })
            .await
            .unwrap()
            .into_inner()
            .run
            .unwrap();
        assert_eq!(renewed.status, "leased");
    }
    // `lost` was not renewed: past its expiry, a report is refused and the
    // run is handed out again with a new lease.
    let late = runs
        .report_run_status(ReportRunStatusRequest {
            organization: "acme".into(),
            run: lost.uuid.clone(),
            status: "running".into(),
            lease: leased[1].lease.as_ref().unwrap().id.clone(),
            message: String::new(),
        })
        .await;
    expect_reason(late, Code::FailedPrecondition, "LEASE_LOST");
    let again = acquire(&t, &agent, "acme", 5, Duration::from_secs(60)).await;
    assert_eq!(
        names(&again),
        ["lost"],
        "re-delivered; `kept` still holds its lease"
    );
    assert_eq!(again[0].attempts, 2);
    assert_ne!(again[0].lease, leased[1].lease);
    assert_eq!(get(&t, &owner, "acme", &kept.uuid).await.status, "leased");
}

/// Issue 15, item 11: a lapsed lease puts its run back within seconds of
/// the expiry even if no agent ever acquires again (before, the run read
/// `leased` forever).
#[tokio::test]
async fn a_lapsed_lease_is_put_back_without_any_acquisition() {
    let t = TestStack::start().await;
    let owner = t.user("owner").await;
    let agent = setup(&t, &owner, "acme").await;
    let run = submit(&t, &owner, "acme", "vision", "box/urgent", "orphan").await;
    let leased = acquire(&t, &agent, "acme", 1, SHORT_LEASE).await;
    assert_eq!(names(&leased), ["orphan"]);
    // The agent vanishes. Within 5 s of the expiry the run waits again.
    tokio::time::sleep(SHORT_LEASE).await;
    let took = eventually(Duration::from_secs(5), "the run is queued again", || {
        let (t, owner, uuid) = (&t, &owner, run.uuid.clone());
        async move { get(t, owner, "acme", &uuid).await.status == "queued" }
    })
    .await;
    eprintln!("requeued {took:?} after the expiry");
    let again = get(&t, &owner, "acme", &run.uuid).await;
    assert!(again.lease.is_none());
    assert_eq!(again.attempts, 1);
}

/// Issue 15, item 11: deleting a queue or an agent with `force` stops its
/// unfinished runs, leased ones included (their agent's next report is
/// refused); without it the deletion is refused while any waits or runs.
#[tokio::test]
async fn deleting_with_force_stops_the_unfinished_runs() {
    let t = TestStack::start().await;
    let owner = t.user("owner").await;
    let agent = setup(&t, &owner, "acme").await;
    let waiting = submit(&t, &owner, "acme", "vision", "box/batch", "waiting").await;
    let leased = submit(&t, &owner, "acme", "vision", "box/urgent", "leased").await;
    let done = submit(&t, &owner, "acme", "vision", "box/urgent", "done").await;
    let held = acquire(&t, &agent, "acme", 2, Duration::from_secs(60)).await;
    assert_eq!(names(&held), ["leased", "done"]);
    report(&t, &agent, "acme", &held[1], "succeeded").await;

    let delete_queue = |force| DeleteQueueRequest {
        organization: "acme".into(),
        agent: "box".into(),
        queue: "urgent".into(),
        force,
    };
    let mut queues = t.queues_as(&owner);
    expect_reason(
        queues.delete_queue(delete_queue(false)).await,
        Code::FailedPrecondition,
        "QUEUE_BUSY",
    );
    queues.delete_queue(delete_queue(true)).await.unwrap();
    let stopped = get(&t, &owner, "acme", &leased.uuid).await;
    assert_eq!(
        (stopped.status.as_str(), stopped.message.as_str()),
        ("stopped", "its queue was deleted")
    );
    assert!(stopped.lease.is_none());
    let late = t
        .runs_as(&agent)
        .report_run_status(ReportRunStatusRequest {
            organization: "acme".into(),
            run: leased.uuid.clone(),
            status: "running".into(),
            lease: held[0].lease.as_ref().unwrap().id.clone(),
            message: String::new(),
        })
        .await;
    expect_code(late, Code::FailedPrecondition);
    let finished = get(&t, &owner, "acme", &done.uuid).await;
    assert_eq!(finished.status, "succeeded", "history is kept as it was");

    let delete_agent = |force| DeleteAgentRequest {
        organization: "acme".into(),
        agent: "box".into(),
        force,
    };
    let mut agents = t.agents_as(&owner);
    expect_reason(
        agents.delete_agent(delete_agent(false)).await,
        Code::FailedPrecondition,
        "AGENT_BUSY",
    );
    assert_eq!(
        get(&t, &owner, "acme", &waiting.uuid).await.status,
        "queued"
    );
    agents.delete_agent(delete_agent(true)).await.unwrap();
    let stopped = get(&t, &owner, "acme", &waiting.uuid).await;
    assert_eq!(
        (stopped.status.as_str(), stopped.message.as_str()),
        ("stopped", "its agent was deleted")
    );
    expect_code(
        agents
            .get_agent(GetAgentRequest {
                organization: "acme".into(),
                agent: "box".into(),
            })
            .await,
        Code::NotFound,
    );
}

/// Issue 15, item 12: submissions racing a queue's deletion never leave a
/// run waiting on a queue that is gone. Submitters keep going while the
/// queue is deleted with `force`: every run acknowledged must then be
/// stopped (it committed before the deletion), and every submission after
/// it is refused.
async fn no_run_waits_on_a_deleted_queue(t: &TestStack) {
    let owner = t.user("owner").await;
    setup(t, &owner, "acme").await;
    for round in 0..5 {
        let name = format!("race{round}");
        queue(t, &owner, "acme", &name, 1, 0).await;
        let deleted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (acks, mut acked) = tokio::sync::mpsc::unbounded_channel();
        let submitters: Vec<_> = (0..16)
            .map(|i| {
                let (runs, deleted, acks) = (t.runs_as(&owner), deleted.clone(), acks.clone());
                let target = format!("box/{name}");
                tokio::spawn(async move {
                    let mut runs = runs;
                    let mut refused_after = 0;
                    while refused_after < 3 {
                        let was_deleted = deleted.load(std::sync::atomic::Ordering::SeqCst);
                        match runs
                            .submit_run(request("acme", "vision", &target, &format!("r{i}")))
                            .await
                        {
                            Ok(run) => {
                                assert!(
                                    !was_deleted,
                                    "a run was accepted after its queue's deletion"
                                );
                                acks.send(run.into_inner().run.unwrap().uuid).unwrap();
                            }
                            Err(status) => {
                                assert_eq!(status.code(), Code::NotFound, "{status:?}");
                                refused_after += 1;
                            }
                        }
                    }
                })
            })
            .collect();
        drop(acks);
        // Delete once submissions flow.
        let mut uuids = vec![acked.recv().await.unwrap()];
        t.queues_as(&owner)
            .delete_queue(DeleteQueueRequest {
                organization: "acme".into(),
                agent: "box".into(),
                queue: name.clone(),
                force: true,
            })
            .await
            .unwrap();
        deleted.store(true, std::sync::atomic::Ordering::SeqCst);
        for submitter in submitters {
            submitter.await.unwrap();
        }
        while let Some(uuid) = acked.recv().await {
            uuids.push(uuid);
        }
        for uuid in &uuids {
            let run = get(t, &owner, "acme", uuid).await;
            assert_eq!(run.status, "stopped", "round {round}: {run:?}");
        }
        eprintln!(
            "round {round}: {} runs acknowledged before the deletion",
            uuids.len()
        );
    }
}

#[tokio::test]
async fn cancellation_reaches_the_agent_through_its_state() {
    let t = TestStack::start().await;
    let owner = t.user("owner").await;
    let agent = setup(&t, &owner, "acme").await;
    let started = submit(&t, &owner, "acme", "vision", "box/batch", "started").await;
    let waiting = submit(&t, &owner, "acme", "vision", "box/batch", "waiting").await;
    let leased = acquire(&t, &agent, "acme", 1, Duration::from_secs(60)).await;
    assert_eq!(names(&leased), ["started"]);
    report(&t, &agent, "acme", &leased[0], "running").await;
    let cancel = |uuid: &str| {
        let mut runs = t.runs_as(&owner);
        let uuid = uuid.to_owned();
        async move {
            runs.cancel_run(CancelRunRequest {
                organization: "acme".into(),
                run: uuid,
            })
            .await
        }
    };
    let stopped = cancel(&waiting.uuid)
        .await
        .unwrap()
        .into_inner()
        .run
        .unwrap();
    assert_eq!(stopped.status, "stopped", "a queued run stops at once");
    let stopping = cancel(&started.uuid)
        .await
        .unwrap()
        .into_inner()
        .run
        .unwrap();
    assert_eq!(stopping.status, "stopping");
    let state = |token: String| {
        let mut agents = t.agents_as(&token);
        async move {
            agents
                .get_agent_state(GetAgentStateRequest {
                    organization: "acme".into(),
                    agent: "box".into(),
                })
                .await
                .unwrap()
                .into_inner()
        }
    };
    let seen = state(agent.clone()).await;
    assert!(seen.runs_to_start.is_empty());
    assert_eq!(names(&seen.runs_to_stop), ["started"]);
    assert_eq!(seen.runs_to_stop[0].queue, "box/batch");
    assert_eq!(
        report(&t, &agent, "acme", &leased[0], "stopped")
            .await
            .status,
        "stopped"
    );
    assert!(state(agent.clone()).await.runs_to_stop.is_empty());
    assert!(
        acquire(&t, &agent, "acme", 5, Duration::from_secs(60))
            .await
            .is_empty(),
        "a stopped run is never handed out"
    );
    // Cancelling again is harmless; a finished run is not cancelled.
    assert_eq!(
        cancel(&waiting.uuid)
            .await
            .unwrap()
            .into_inner()
            .run
            .unwrap()
            .status,
        "stopped"
    );
    let done = submit(&t, &owner, "acme", "vision", "box/batch", "done").await;
    let leased = acquire(&t, &agent, "acme", 1, Duration::from_secs(60)).await;
    assert_eq!(leased[0].uuid, done.uuid);
    report(&t, &agent, "acme", &leased[0], "succeeded").await;
    expect_reason(
        cancel(&done.uuid).await,
        Code::FailedPrecondition,
        "RUN_FINISHED",
    );
}

#[tokio::test]
async fn runs_are_listed_newest_first_by_project_status_and_queue() {
    let t = TestStack::start().await;
    let owner = t.user("owner").await;
    let agent = setup(&t, &owner, "acme").await;
    for i in 0..5 {
        submit(&t, &owner, "acme", "vision", "box/batch", &format!("v{i}")).await;
    }
    for i in 0..3 {
        submit(&t, &owner, "acme", "nlp", "box/urgent", &format!("n{i}")).await;
    }
    acquire(&t, &agent, "acme", 1, Duration::from_secs(60)).await;
    let list = |project: &str, filter: &str, order_by: &str, page_size: i32, page_token: String| {
        let mut runs = t.runs_as(&owner);
        let request = ListRunsRequest {
            organization: "acme".into(),
            project: project.into(),
            page_size,
            page_token,
            filter: filter.into(),
            order_by: order_by.into(),
            include_total_size: true,
        };
        async move { runs.list_runs(request).await.unwrap().into_inner() }
    };
    let all = list("", "", "", 0, String::new()).await;
    assert_eq!(all.total_size, 8);
    assert_eq!(
        names(&all.runs),
        ["n2", "n1", "n0", "v4", "v3", "v2", "v1", "v0"]
    );
    let first = list("vision", "", "", 2, String::new()).await;
    assert_eq!(
        (names(&first.runs), first.total_size),
        (vec!["v4", "v3"], 5)
    );
    let uncounted = t
        .runs_as(&owner)
        .list_runs(ListRunsRequest {
            organization: "acme".into(),
            project: "vision".into(),
            page_size: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (names(&uncounted.runs), uncounted.total_size),
        (vec!["v4", "v3"], 5),
        "few matches are counted without asking"
    );
    let second = list("vision", "", "", 2, first.next_page_token).await;
    assert_eq!(names(&second.runs), ["v2", "v1"]);
    assert_eq!(second.total_size, 5, "counted on a later page too");
    let oldest = list("vision", "", "create_time", 2, String::new()).await;
    assert_eq!(names(&oldest.runs), ["v0", "v1"]);
    let leased = list("", "status:leased", "", 0, String::new()).await;
    assert_eq!(names(&leased.runs), ["n0"], "urgent goes first");
    let batch = list("", "queue:box/batch status:queued", "", 0, String::new()).await;
    assert_eq!(batch.total_size, 5);
}

#[tokio::test]
async fn bad_input_is_refused_with_the_field_named() {
    let t = TestStack::start().await;
    let owner = t.user("owner").await;
    let agent = setup(&t, &owner, "acme").await;
    let mut runs = t.runs_as(&owner);
    let mut bad = request("acme", "Not A Slug", "box", "x");
    bad.name = "n".repeat(300);
    let status = expect_code(runs.submit_run(bad).await, Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["project", "queue", "name"]);
    let mut huge = request("acme", "vision", "box/batch", "x");
    huge.spec = Some(json_to_struct(
        &serde_json::json!({"blob": "x".repeat(300_000)}),
    ));
    let status = expect_code(runs.submit_run(huge).await, Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["spec"]);
    for uuid in ["", "not-a-uuid"] {
        let status = expect_code(
            runs.get_run(GetRunRequest {
                organization: "acme".into(),
                run: uuid.into(),
            })
            .await,
            Code::InvalidArgument,
        );
        assert_eq!(violated_fields(&status), ["run"]);
    }
    expect_code(
        runs.get_run(GetRunRequest {
            organization: "acme".into(),
            run: uuid::Uuid::now_v7().to_string(),
        })
        .await,
        Code::NotFound,
    );
    for (filter, order_by, page_size) in [
        ("status:sleeping", "", 0),
        ("owner:me", "", 0),
        ("queue:batch", "", 0),
        ("", "name", 0),
        ("", "", -1),
    ] {
        expect_code(
            runs.list_runs(ListRunsRequest {
                organization: "acme".into(),
                filter: filter.into(),
                order_by: order_by.into(),
                page_size,
                ..Default::default()
            })
            .await,
            Code::InvalidArgument,
        );
    }
    let mut as_agent = t.runs_as(&agent);
    for (max_runs, d) in [
        (0, Duration::from_secs(60)),
        (101, Duration::from_secs(60)),
        (1, Duration::from_millis(500)),
        (1, Duration::from_secs(7200)),
    ] {
        expect_code(
            as_agent
                .acquire_runs(AcquireRunsRequest {
                    organization: "acme".into(),
                    agent: "box".into(),
                    max_runs,
                    lease_duration: lease(d),
                })
                .await,
            Code::InvalidArgument,
        );
    }
    let run = submit(&t, &owner, "acme", "vision", "box/batch", "r").await;
    let leased = acquire(&t, &agent, "acme", 1, Duration::from_secs(60)).await;
    let lease_id = leased[0].lease.as_ref().unwrap().id.clone();
    for (status, lease_id, field) in [
        ("sleeping", lease_id.as_str(), None),
        ("running", "", Some("lease")),
    ] {
        let answer = expect_code(
            as_agent
                .report_run_status(ReportRunStatusRequest {
                    organization: "acme".into(),
                    run: run.uuid.clone(),
                    status: status.into(),
                    lease: lease_id.into(),
                    message: String::new(),
                })
                .await,
            Code::InvalidArgument,
        );
        if let Some(field) = field {
            assert_eq!(violated_fields(&answer), [field]);
        }
    }
    expect_reason(
        as_agent
            .renew_lease(RenewLeaseRequest {
                organization: "acme".into(),
                run: run.uuid.clone(),
                lease: "not-the-lease".into(),
                lease_duration: None,
            })
            .await,
        Code::FailedPrecondition,
        "LEASE_LOST",
    );
}

/// Each RPC, the permission a person needs, and what an authorized person
/// gets (the agents' RPCs refuse every person: `AGENT_TOKEN_REQUIRED` to
/// those who may see agents).
const RPCS: &[(&str, Permission, Code)] = &[
    ("SubmitRun", Permission::RunsWrite, Code::Ok),
    ("GetRun", Permission::ProjectsRead, Code::Ok),
    ("ListRuns", Permission::ProjectsRead, Code::Ok),
    ("CancelRun", Permission::RunsWrite, Code::Ok),
    (
        "AcquireRuns",
        Permission::AgentsRead,
        Code::PermissionDenied,
    ),
    ("RenewLease", Permission::AgentsRead, Code::PermissionDenied),
    (
        "ReportRunStatus",
        Permission::AgentsRead,
        Code::PermissionDenied,
    ),
];

async fn call(t: &TestStack, token: &str, org: &str, rpc: &str, run: &str) -> Code {
    let mut r = t.runs_as(token);
    let (o, run) = (org.to_owned(), run.to_owned());
    let result = match rpc {
        "SubmitRun" => r
            .submit_run(request(&o, "vision", "box/batch", "m"))
            .await
            .map(|_| ()),
        "GetRun" => r
            .get_run(GetRunRequest {
                organization: o,
                run,
            })
            .await
            .map(|_| ()),
        "ListRuns" => r
            .list_runs(ListRunsRequest {
                organization: o,
                ..Default::default()
            })
            .await
            .map(|_| ()),
        "CancelRun" => r
            .cancel_run(CancelRunRequest {
                organization: o,
                run,
            })
            .await
            .map(|_| ()),
        "AcquireRuns" => r
            .acquire_runs(AcquireRunsRequest {
                organization: o,
                agent: "box".into(),
                max_runs: 1,
                lease_duration: None,
            })
            .await
            .map(|_| ()),
        "RenewLease" => r
            .renew_lease(RenewLeaseRequest {
                organization: o,
                run,
                lease: "some-lease".into(),
                lease_duration: None,
            })
            .await
            .map(|_| ()),
        "ReportRunStatus" => r
            .report_run_status(ReportRunStatusRequest {
                organization: o,
                run,
                status: "running".into(),
                lease: "some-lease".into(),
                message: String::new(),
            })
            .await
            .map(|_| ()),
        other => panic!("no call for {other}"),
    };
    result.err().map_or(Code::Ok, |s| s.code())
}

#[tokio::test]
async fn role_matrix_and_tenant_isolation() {
    let t = TestStack::start().await;
    let owner = t.user("owner").await;
    let agent = setup(&t, &owner, "acme").await;
    let run = submit(&t, &owner, "acme", "vision", "box/batch", "r").await;
    let mut callers = t.role_callers("acme", owner.clone()).await;
    let foreigner = t.user("foreigner").await;
    let foreign_agent = setup(&t, &foreigner, "elsewhere").await;
    let foreign_run = submit(&t, &foreigner, "elsewhere", "vision", "box/batch", "f").await;
    callers.push((None, foreigner.clone()));
    check_role_matrix(RPCS, &callers, "acme", &foreigner, |token, org, rpc| {
        let (t, run) = (&t, run.uuid.clone());
        async move { call(t, &token, &org, rpc, &run).await }
    })
    .await;
    for (rpc, _, _) in RPCS {
        // Another organization's run does not exist here, for its own
        // members either.
        if rpc.ends_with("Run") && *rpc != "SubmitRun" {
            assert_eq!(
                call(&t, &owner, "acme", rpc, &foreign_run.uuid).await,
                Code::NotFound,
                "{rpc}"
            );
            assert_eq!(
                call(&t, &foreigner, "acme", rpc, &run.uuid).await,
                Code::NotFound,
                "{rpc}"
            );
        }
        // Agents act only in their own organization, and only as agents.
        assert_eq!(
            call(&t, &foreign_agent, "acme", rpc, &run.uuid).await,
            Code::NotFound,
            "{rpc} as another organization's agent"
        );
    }
    for rpc in ["SubmitRun", "GetRun", "ListRuns", "CancelRun"] {
        assert_eq!(
            call(&t, &agent, "acme", rpc, &run.uuid).await,
            Code::NotFound,
            "{rpc} as an agent"
        );
    }
    // An agent's lease on a run of another organization is no lease of its.
    let theirs = acquire(&t, &foreign_agent, "elsewhere", 1, Duration::from_secs(60)).await;
    let status = t
        .runs_as(&agent)
        .report_run_status(ReportRunStatusRequest {
            organization: "acme".into(),
            run: theirs[0].uuid.clone(),
            status: "running".into(),
            lease: theirs[0].lease.as_ref().unwrap().id.clone(),
            message: String::new(),
        })
        .await;
    expect_code(status, Code::NotFound);
    // Nor may it lease for another agent of its organization.
    let status = t
        .runs_as(&agent)
        .acquire_runs(AcquireRunsRequest {
            organization: "acme".into(),
            agent: "other-box".into(),
            max_runs: 1,
            lease_duration: None,
        })
        .await;
    expect_code(status, Code::NotFound);
}

/// 8 agents' workers (one agent token) lease and finish 2,000 runs through
/// the gateway: every run is handed out exactly once.
async fn eight_acquirers_over_2000_runs(t: &TestStack) {
    let owner = t.user("owner").await;
    let agent = setup(t, &owner, "acme").await;
    queue_with(
        t,
        &owner,
        "acme",
        Queue {
            name: "fair".into(),
            priority: 5,
            concurrency: 64,
            strategy: SchedulingStrategy::Fair as i32,
            ..Default::default()
        },
    )
    .await;
    let mut submitters = Vec::new();
    for worker in 0..8 {
        let (runs, owner) = (t.runs_as(&owner), owner.clone());
        submitters.push(tokio::spawn(async move {
            let mut runs = runs;
            let mut mine = Vec::new();
            for i in 0..250 {
                let n = worker * 250 + i;
                let queue = ["box/batch", "box/fair"][n % 2];
                let project = ["vision", "nlp"][n % 3 % 2];
                let run = runs
                    .submit_run(request("acme", project, queue, &format!("r{n}")))
                    .await
                    .unwrap()
                    .into_inner()
                    .run
                    .unwrap();
                mine.push(run.uuid);
            }
            let _ = owner;
            mine
        }));
    }
    let mut submitted = HashSet::new();
    for s in submitters {
        submitted.extend(s.await.unwrap());
    }
    assert_eq!(submitted.len(), 2000);
    let mut workers = Vec::new();
    for _ in 0..8 {
        let mut runs = t.runs_as(&agent);
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let leased = runs
                    .acquire_runs(AcquireRunsRequest {
                        organization: "acme".into(),
                        agent: "box".into(),
                        max_runs: 16,
                        lease_duration: lease(Duration::from_secs(120)),
                    })
                    .await
                    .unwrap()
                    .into_inner()
                    .runs;
                if leased.is_empty() {
                    break;
                }
                // Reported all at once, as runs finish together: 8 × 16
                // reports in flight, more than the pool has connections.
                let reports = leased.into_iter().map(|run| {
                    let mut runs = runs.clone();
                    async move {
                        runs.report_run_status(ReportRunStatusRequest {
                            organization: "acme".into(),
                            run: run.uuid.clone(),
                            status: "succeeded".into(),
                            lease: run.lease.unwrap().id,
                            message: String::new(),
                        })
                        .await
                        .unwrap();
                        run.uuid
                    }
                });
                mine.extend(futures::future::join_all(reports).await);
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
    let succeeded = t
        .runs_as(&owner)
        .list_runs(ListRunsRequest {
            organization: "acme".into(),
            filter: "status:succeeded".into(),
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .total_size;
    assert_eq!(succeeded, 2000);
}

/// No rate limit in the way of 4,000+ calls by one caller.
fn unlimited(_: &mut orgplane_identity::IdentityConfig, g: &mut orgplane_gateway::GatewayConfig) {
    g.rate_limit_per_second = 1_000_000;
    g.rate_limit_burst = 1_000_000;
}

orgplane_e2e::on_both_databases!(
    with unlimited:
    no_run_waits_on_a_deleted_queue,
    eight_acquirers_over_2000_runs,
);

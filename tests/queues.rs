//! Queues end to end through the gateway: CRUD with etags, validation,
//! stats, deletion refused while runs wait; role matrix, tenant isolation.

use orgplane_agents::domain::admission::NewRun;
use orgplane_e2e::{TestStack, check_role_matrix, expect_code, expect_reason, violated_fields};
use orgplane_platform::authz::Permission;
use orgplane_proto::agents::*;
use prost_types::FieldMask;
use tonic::Code;

async fn setup(t: &TestStack, token: &str, org: &str) {
    t.create_organization(token, org).await;
    t.agents_as(token)
        .create_agent(CreateAgentRequest {
            request_id: String::new(),
            organization: org.into(),
            agent: Some(Agent {
                name: "box".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    t.queues_as(token)
        .create_queue(CreateQueueRequest {
            request_id: String::new(),
            organization: org.into(),
            agent: "box".into(),
            queue: Some(Queue {
                name: "q".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
}

fn queue(name: &str) -> Option<Queue> {
    Some(Queue {
        name: name.into(),
        description: "GPU training".into(),
        priority: 10,
        concurrency: 4,
        resource: "gpu".into(),
        quota: 8.0,
        strategy: SchedulingStrategy::Fair as i32,
        ..Default::default()
    })
}

async fn a_queue_from_creation_to_deletion(t: &TestStack) {
    let owner = t.user("owner").await;
    setup(t, &owner, "acme").await;
    let mut queues = t.queues_as(&owner);
    let created = queues
        .create_queue(CreateQueueRequest {
            request_id: String::new(),
            organization: "acme".into(),
            agent: "box".into(),
            queue: queue("training"),
        })
        .await
        .unwrap()
        .into_inner()
        .queue
        .unwrap();
    assert_eq!(created.agent, "box");
    assert_eq!(created.strategy(), SchedulingStrategy::Fair);
    assert_eq!((created.priority, created.concurrency), (10, 4));
    let listed = queues
        .list_queues(ListQueuesRequest {
            organization: "acme".into(),
            agent: "box".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let names: Vec<_> = listed.queues.iter().map(|q| q.name.as_str()).collect();
    assert_eq!(
        names,
        ["default", "q", "training"],
        "the agent came with `default`"
    );
    let updated = queues
        .update_queue(UpdateQueueRequest {
            organization: "acme".into(),
            agent: "box".into(),
            queue: Some(Queue {
                name: "training".into(),
                concurrency: 2,
                etag: created.etag.clone(),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["concurrency".into()],
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .queue
        .unwrap();
    assert_eq!((updated.concurrency, updated.priority), (2, 10));
    expect_reason(
        queues
            .update_queue(UpdateQueueRequest {
                organization: "acme".into(),
                agent: "box".into(),
                queue: Some(Queue {
                    name: "training".into(),
                    priority: 1,
                    etag: created.etag,
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["priority".into()],
                }),
            })
            .await,
        Code::Aborted,
        "STALE_ETAG",
    );

    // Stats, and no deletion while a run waits.
    let run = t
        .stack
        .agents
        .enqueue(NewRun {
            organization_uuid: String::new(),
            project: "vision".into(),
            queue_uuid: updated.uuid.clone(),
            name: "train".into(),
            spec: serde_json::json!({}),
            submitter: "owner".into(),
            demand: 1.0,
        })
        .await
        .unwrap();
    let stats = queues
        .get_queue_stats(GetQueueStatsRequest {
            organization: "acme".into(),
            agent: "box".into(),
            queue: "training".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (stats.queued, stats.leased, stats.running, stats.done),
        (1, 0, 0, 0)
    );
    assert!(stats.oldest_wait.is_some());
    let delete = || DeleteQueueRequest {
        organization: "acme".into(),
        agent: "box".into(),
        queue: "training".into(),
        force: false,
    };
    expect_reason(
        queues.delete_queue(delete()).await,
        Code::FailedPrecondition,
        "QUEUE_BUSY",
    );
    t.stack.agents.cancel(&run.uuid).await.unwrap();
    queues.delete_queue(delete()).await.unwrap();
    expect_code(
        queues
            .get_queue(GetQueueRequest {
                organization: "acme".into(),
                agent: "box".into(),
                queue: "training".into(),
            })
            .await,
        Code::NotFound,
    );
}

#[tokio::test]
async fn bad_input_names_the_field() {
    let t = TestStack::start().await;
    let owner = t.user("owner").await;
    setup(&t, &owner, "acme").await;
    let mut queues = t.queues_as(&owner);
    let base = queue("x").unwrap();
    for (q, field) in [
        (
            Queue {
                name: "Not A Slug".into(),
                ..base.clone()
            },
            "queue.name",
        ),
        (
            Queue {
                priority: 5000,
                ..base.clone()
            },
            "queue.priority",
        ),
        (
            Queue {
                concurrency: -1,
                ..base.clone()
            },
            "queue.concurrency",
        ),
        (
            Queue {
                resource: "tpu".into(),
                ..base.clone()
            },
            "queue.resource",
        ),
        (
            Queue {
                quota: -2.0,
                ..base.clone()
            },
            "queue.quota",
        ),
    ] {
        let status = expect_code(
            queues
                .create_queue(CreateQueueRequest {
                    request_id: String::new(),
                    organization: "acme".into(),
                    agent: "box".into(),
                    queue: Some(q),
                })
                .await,
            Code::InvalidArgument,
        );
        assert_eq!(violated_fields(&status), [field]);
    }
    expect_code(
        queues
            .create_queue(CreateQueueRequest {
                request_id: String::new(),
                organization: "acme".into(),
                agent: "no-such-agent".into(),
                queue: queue("x"),
            })
            .await,
        Code::NotFound,
    );
    expect_code(
        queues
            .create_queue(CreateQueueRequest {
                request_id: String::new(),
                organization: "acme".into(),
                agent: "box".into(),
                queue: Some(Queue {
                    name: "q".into(),
                    ..Default::default()
                }),
            })
            .await,
        Code::AlreadyExists,
    );
    let status = expect_code(
        queues
            .get_queue_stats(GetQueueStatsRequest {
                organization: "acme".into(),
                agent: "box".into(),
                queue: String::new(),
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["queue"]);
}

const RPCS: &[(&str, Permission, Code)] = &[
    (
        "CreateQueue",
        Permission::AgentsManage,
        Code::InvalidArgument,
    ),
    ("GetQueue", Permission::AgentsRead, Code::Ok),
    ("ListQueues", Permission::AgentsRead, Code::Ok),
    (
        "UpdateQueue",
        Permission::AgentsManage,
        Code::InvalidArgument,
    ),
    ("DeleteQueue", Permission::AgentsManage, Code::NotFound),
    ("GetQueueStats", Permission::AgentsRead, Code::Ok),
];

async fn call(t: &TestStack, token: &str, org: &str, rpc: &str) -> Code {
    let mut q = t.queues_as(token);
    let (o, a) = (org.to_owned(), "box".to_owned());
    let result = match rpc {
        "CreateQueue" => q
            .create_queue(CreateQueueRequest {
                request_id: String::new(),
                organization: o,
                agent: a,
                queue: Some(Queue {
                    name: "Not A Slug".into(),
                    ..Default::default()
                }),
            })
            .await
            .map(|_| ()),
        "GetQueue" => q
            .get_queue(GetQueueRequest {
                organization: o,
                agent: a,
                queue: "q".into(),
            })
            .await
            .map(|_| ()),
        "ListQueues" => q
            .list_queues(ListQueuesRequest {
                organization: o,
                agent: a,
                ..Default::default()
            })
            .await
            .map(|_| ()),
        "UpdateQueue" => q
            .update_queue(UpdateQueueRequest {
                organization: o,
                agent: a,
                queue: Some(Queue {
                    name: "q".into(),
                    concurrency: -1,
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["concurrency".into()],
                }),
            })
            .await
            .map(|_| ()),
        "DeleteQueue" => q
            .delete_queue(DeleteQueueRequest {
                organization: o,
                agent: a,
                queue: "never-made".into(),
                force: false,
            })
            .await
            .map(|_| ()),
        "GetQueueStats" => q
            .get_queue_stats(GetQueueStatsRequest {
                organization: o,
                agent: a,
                queue: "q".into(),
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
    setup(&t, &owner, "acme").await;
    let mut callers = t.role_callers("acme", owner).await;
    let foreigner = t.user("foreigner").await;
    setup(&t, &foreigner, "elsewhere").await;
    callers.push((None, foreigner.clone()));
    check_role_matrix(RPCS, &callers, "acme", &foreigner, |token, org, rpc| {
        let t = &t;
        async move { call(t, &token, &org, rpc).await }
    })
    .await;
}

orgplane_e2e::on_both_databases!(a_queue_from_creation_to_deletion,);

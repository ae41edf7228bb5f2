//! Agents end to end through the gateway: CRUD with etags, the token shown
//! once and replaced on rotation (identity keeps it), deletion refused
//! while runs wait; role matrix, tenant isolation, bad input.

use orgplane_agents::domain::admission::NewRun;
use orgplane_e2e::{TestStack, check_role_matrix, expect_code, expect_reason, violated_fields};
use orgplane_platform::authz::Permission;
use orgplane_proto::{
    agents::*,
    common::PrincipalKind,
    identity::{IntrospectTokenRequest, identity_internal_client::IdentityInternalClient},
};
use prost_types::FieldMask;
use tonic::Code;

fn agent(name: &str) -> Option<Agent> {
    Some(Agent {
        name: name.into(),
        description: "runs the GPU jobs".into(),
        tags: vec!["gpu".into()],
        namespace: "ml-jobs".into(),
        cluster: "east".into(),
        ..Default::default()
    })
}

async fn create(t: &TestStack, token: &str, org: &str, name: &str) -> CreateAgentResponse {
    t.agents_as(token)
        .create_agent(CreateAgentRequest {
            request_id: String::new(),
            organization: org.into(),
            agent: agent(name),
        })
        .await
        .expect("create agent")
        .into_inner()
}

/// What identity says of a bearer token (asked as the gateway does).
async fn introspect(t: &TestStack, token: &str) -> Option<orgplane_proto::common::Principal> {
    let channel = orgplane_transport::client::mtls_channel(
        &t.stack.identity_addr.to_string(),
        "identity",
        &t.stack.certs.load("gateway").unwrap(),
    )
    .unwrap();
    let answer = IdentityInternalClient::new(channel)
        .introspect_token(IntrospectTokenRequest {
            token: token.into(),
        })
        .await
        .unwrap()
        .into_inner();
    answer.active.then(|| answer.principal.unwrap())
}

#[tokio::test]
async fn an_agent_from_creation_to_deletion_with_its_token() {
    let t = TestStack::start().await;
    let owner = t.user("owner").await;
    t.create_organization(&owner, "acme").await;
    let created = create(&t, &owner, "acme", "gpu-box").await;
    let first_token = created.token.clone();
    assert!(first_token.starts_with("opg_"), "{first_token}");
    let a = created.agent.unwrap();
    assert_eq!(
        (a.health.as_str(), a.heartbeat_timeout_seconds),
        ("unknown", 60)
    );
    let principal = introspect(&t, &first_token).await.expect("the token works");
    assert_eq!(principal.kind(), PrincipalKind::Agent);
    assert_eq!(
        (principal.name.as_str(), principal.organization.as_str()),
        ("gpu-box", "acme")
    );

    let mut agents = t.agents_as(&owner);
    create(&t, &owner, "acme", "cpu-box").await;
    let listed = agents
        .list_agents(ListAgentsRequest {
            organization: "acme".into(),
            filter: "name:gpu".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.total_size, 1);
    let updated = agents
        .update_agent(UpdateAgentRequest {
            organization: "acme".into(),
            agent: Some(Agent {
                name: "gpu-box".into(),
                heartbeat_timeout_seconds: 120,
                etag: a.etag.clone(),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["heartbeat_timeout_seconds".into()],
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .agent
        .unwrap();
    assert_eq!(updated.heartbeat_timeout_seconds, 120);
    assert_eq!(updated.namespace, "ml-jobs", "untouched");
    expect_reason(
        agents
            .update_agent(UpdateAgentRequest {
                organization: "acme".into(),
                agent: Some(Agent {
                    name: "gpu-box".into(),
                    description: "lost update".into(),
                    etag: a.etag,
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["description".into()],
                }),
            })
            .await,
        Code::Aborted,
        "STALE_ETAG",
    );

    // Rotation: the old token dies at once in identity, the new one works.
    let second_token = agents
        .rotate_agent_token(RotateAgentTokenRequest {
            organization: "acme".into(),
            agent: "gpu-box".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .token;
    assert!(introspect(&t, &first_token).await.is_none());
    assert!(introspect(&t, &second_token).await.is_some());

    // Not while runs wait on its queues (it came with `default`).
    let queue_uuid = t
        .queues_as(&owner)
        .get_queue(GetQueueRequest {
            organization: "acme".into(),
            agent: "gpu-box".into(),
            queue: "default".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .queue
        .unwrap()
        .uuid;
    let run = t
        .stack
        .agents
        .enqueue(NewRun {
            organization_uuid: principal.organization_uuid.clone(),
            project: "vision".into(),
            queue_uuid,
            name: "train".into(),
            spec: serde_json::json!({}),
            submitter: "owner".into(),
            demand: 1.0,
        })
        .await
        .unwrap();
    let delete = || DeleteAgentRequest {
        organization: "acme".into(),
        agent: "gpu-box".into(),
        force: false,
    };
    expect_reason(
        agents.delete_agent(delete()).await,
        Code::FailedPrecondition,
        "AGENT_BUSY",
    );
    t.stack.agents.cancel(&run.uuid).await.unwrap();
    agents.delete_agent(delete()).await.unwrap();
    assert!(
        introspect(&t, &second_token).await.is_none(),
        "its token died with it"
    );
    expect_code(
        agents
            .get_agent(GetAgentRequest {
                organization: "acme".into(),
                agent: "gpu-box".into(),
            })
            .await,
        Code::NotFound,
    );
}

#[tokio::test]
async fn bad_input_names_the_field() {
    let t = TestStack::start().await;
    let owner = t.user("owner").await;
    t.create_organization(&owner, "acme").await;
    let mut agents = t.agents_as(&owner);
    for (a, field) in [
        (agent("Not A Slug"), "agent.name"),
        (
            Some(Agent {
                name: "ok".into(),
                heartbeat_timeout_seconds: -5,
                ..Default::default()
            }),
            "agent.heartbeat_timeout_seconds",
        ),
        (
            Some(Agent {
                name: "ok".into(),
                namespace: "Bad NS".into(),
                ..Default::default()
            }),
            "agent.namespace",
        ),
        (None, "agent"),
    ] {
        let status = expect_code(
            agents
                .create_agent(CreateAgentRequest {
                    request_id: String::new(),
                    organization: "acme".into(),
                    agent: a,
                })
                .await,
            Code::InvalidArgument,
        );
        assert_eq!(violated_fields(&status), [field]);
    }
    create(&t, &owner, "acme", "ok").await;
    expect_code(
        agents
            .create_agent(CreateAgentRequest {
                request_id: String::new(),
                organization: "acme".into(),
                agent: agent("ok"),
            })
            .await,
        Code::AlreadyExists,
    );
    let status = expect_code(
        agents
            .list_agents(ListAgentsRequest {
                organization: "acme".into(),
                filter: "colour:red".into(),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["filter"]);
    let status = expect_code(
        agents
            .rotate_agent_token(RotateAgentTokenRequest {
                organization: "acme".into(),
                agent: String::new(),
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["agent"]);
}

const RPCS: &[(&str, Permission, Code)] = &[
    (
        "CreateAgent",
        Permission::AgentsManage,
        Code::InvalidArgument,
    ),
    ("GetAgent", Permission::AgentsRead, Code::Ok),
    ("ListAgents", Permission::AgentsRead, Code::Ok),
    (
        "UpdateAgent",
        Permission::AgentsManage,
        Code::InvalidArgument,
    ),
    ("DeleteAgent", Permission::AgentsManage, Code::NotFound),
    ("RotateAgentToken", Permission::AgentsManage, Code::NotFound),
];

async fn call(t: &TestStack, token: &str, org: &str, rpc: &str) -> Code {
    let mut a = t.agents_as(token);
    let o = org.to_owned();
    let result = match rpc {
        "CreateAgent" => a
            .create_agent(CreateAgentRequest {
                request_id: String::new(),
                organization: o,
                agent: agent("Not A Slug"),
            })
            .await
            .map(|_| ()),
        "GetAgent" => a
            .get_agent(GetAgentRequest {
                organization: o,
                agent: "a".into(),
            })
            .await
            .map(|_| ()),
        "ListAgents" => a
            .list_agents(ListAgentsRequest {
                organization: o,
                ..Default::default()
            })
            .await
            .map(|_| ()),
        "UpdateAgent" => a
            .update_agent(UpdateAgentRequest {
                organization: o,
                agent: Some(Agent {
                    name: "a".into(),
                    heartbeat_timeout_seconds: -1,
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["heartbeat_timeout_seconds".into()],
                }),
            })
            .await
            .map(|_| ()),
        "DeleteAgent" => a
            .delete_agent(DeleteAgentRequest {
                organization: o,
                agent: "never-made".into(),
                force: false,
            })
            .await
            .map(|_| ()),
        "RotateAgentToken" => a
            .rotate_agent_token(RotateAgentTokenRequest {
                organization: o,
                agent: "never-made".into(),
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
    t.create_organization(&owner, "acme").await;
    create(&t, &owner, "acme", "a").await;
    let mut callers = t.role_callers("acme", owner).await;
    let foreigner = t.user("foreigner").await;
    t.create_organization(&foreigner, "elsewhere").await;
    create(&t, &foreigner, "elsewhere", "a").await;
    callers.push((None, foreigner.clone()));
    check_role_matrix(RPCS, &callers, "acme", &foreigner, |token, org, rpc| {
        let t = &t;
        async move { call(t, &token, &org, rpc).await }
    })
    .await;
}

#[tokio::test]
async fn an_agent_reports_its_status_and_learns_what_to_do() {
    let t = TestStack::start().await;
    let owner = t.user("owner").await;
    t.create_organization(&owner, "acme").await;
    let created = create(&t, &owner, "acme", "box").await;
    let (agent_uuid, token) = (created.agent.unwrap().uuid, created.token);
    let other = create(&t, &owner, "acme", "other-box").await.token;
    let queue_uuid = t
        .queues_as(&owner)
        .create_queue(CreateQueueRequest {
            request_id: String::new(),
            organization: "acme".into(),
            agent: "box".into(),
            queue: Some(Queue {
                name: "q".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .queue
        .unwrap()
        .uuid;
    let report = |name: &str, state: &str| ReportAgentStatusRequest {
        organization: "acme".into(),
        agent: name.into(),
        condition: Some(orgplane_proto::common::Condition {
            r#type: state.into(),
            reason: "Started".into(),
            ..Default::default()
        }),
        version: "1.2.0".into(),
        hostname: "node-1".into(),
    };
    // The agent reports with its own token (through the gateway).
    let next = t
        .agents_as(&token)
        .report_agent_status(report("box", "running"))
        .await
        .unwrap()
        .into_inner()
        .next_report_time
        .unwrap();
    assert!(next.seconds > 0);
    // `health:` lists agents as `GetAgent` shows them: `box` reported,
    // `other-box` never did.
    let listed = |filter: &str| {
        let mut agents = t.agents_as(&owner);
        let request = ListAgentsRequest {
            organization: "acme".into(),
            filter: filter.into(),
            ..Default::default()
        };
        async move { agents.list_agents(request).await }
    };
    for (filter, expected) in [
        ("health:healthy", vec!["box"]),
        ("health:unknown", vec!["other-box"]),
        ("health:unhealthy", vec![]),
    ] {
        let names: Vec<String> = listed(filter)
            .await
            .unwrap()
            .into_inner()
            .agents
            .into_iter()
            .map(|a| a.name)
            .collect();
        assert_eq!(names, expected, "{filter}");
    }
    let bad = expect_code(listed("health:sick").await, Code::InvalidArgument);
    assert_eq!(violated_fields(&bad), ["filter"]);
    let shown = t
        .agents_as(&owner)
        .get_agent(GetAgentRequest {
            organization: "acme".into(),
            agent: "box".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .agent
        .unwrap();
    assert_eq!(
        (shown.health.as_str(), shown.version.as_str()),
        ("healthy", "1.2.0")
    );
    assert_eq!(shown.status.unwrap().r#type, "running");
    let statuses = t
        .agents_as(&owner)
        .list_agent_statuses(ListAgentStatusesRequest {
            organization: "acme".into(),
            agent: "box".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(statuses.total_size, 1);
    // Issue 15, item 17: statuses are kept a week, then purged.
    let now = orgplane_platform::time::now_micros();
    assert_eq!(t.stack.agents.purge_old_statuses(now).await.unwrap(), 0);
    let week = orgplane_platform::time::DAY * 7;
    assert_eq!(
        t.stack
            .agents
            .purge_old_statuses(now + week + 1_000_000)
            .await
            .unwrap(),
        1
    );

    // Only the agent reports for itself.
    expect_reason(
        t.agents_as(&owner)
            .report_agent_status(report("box", "running"))
            .await,
        Code::PermissionDenied,
        "AGENT_TOKEN_REQUIRED",
    );
    expect_code(
        t.agents_as(&other)
            .report_agent_status(report("box", "running"))
            .await,
        Code::NotFound,
    );
    let status = expect_code(
        t.agents_as(&token)
            .report_agent_status(report("box", "Not A State"))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["condition.type"]);

    // What to start and what to stop.
    for name in ["first", "second"] {
        t.stack
            .agents
            .enqueue(NewRun {
                organization_uuid: String::new(),
                project: "vision".into(),
                queue_uuid: queue_uuid.clone(),
                name: name.into(),
                spec: serde_json::json!({"kind": "job"}),
                submitter: "owner".into(),
                demand: 1.0,
            })
            .await
            .unwrap();
    }
    let leased = t
        .stack
        .agents
        .acquire(&agent_uuid, 2, std::time::Duration::from_secs(60))
        .await
        .unwrap();
    t.stack.agents.cancel(&leased[1].uuid).await.unwrap();
    let state = t
        .agents_as(&token)
        .get_agent_state(GetAgentStateRequest {
            organization: "acme".into(),
            agent: "box".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(state.health, "healthy");
    let names = |runs: &[Run]| runs.iter().map(|r| r.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&state.runs_to_start), ["first"]);
    assert_eq!(names(&state.runs_to_stop), ["second"]);
    assert_eq!(state.runs_to_start[0].queue, "box/q");
    assert!(state.runs_to_start[0].lease.is_some());
    // Another organization's name means nothing to an agent token.
    expect_code(
        t.agents_as(&token)
            .get_agent_state(GetAgentStateRequest {
                organization: "other".into(),
                agent: "box".into(),
            })
            .await,
        Code::NotFound,
    );
}

/// Issue 15, item 11: deleting an organization revokes its agents' tokens
/// at once (before, they worked until the agents service purged the
/// organization's agents, up to ten minutes later).
#[tokio::test]
async fn an_organizations_agent_tokens_die_with_it() {
    let t = TestStack::start().await;
    let owner = t.user("owner").await;
    t.create_organization(&owner, "acme").await;
    let token = create(&t, &owner, "acme", "box").await.token;
    assert!(introspect(&t, &token).await.is_some());
    t.orgs_as(&owner)
        .delete_organization(orgplane_proto::organizations::DeleteOrganizationRequest {
            organization: "acme".into(),
            confirm: "acme".into(),
            etag: String::new(),
        })
        .await
        .unwrap();
    assert!(
        introspect(&t, &token).await.is_none(),
        "revoked with the deletion"
    );
    t.token_dies(&token, "the agent's token is refused at the gateway")
        .await;
}

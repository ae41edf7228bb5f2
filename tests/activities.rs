//! The activity feed end to end: changes made through the gateway in the
//! organizations service, the agents service, the registry and identity
//! (service accounts) are recorded with the change, shipped to the store in the
//! organizations service and listed there exactly once each; a watcher sees
//! a change within a second and resumes from its cursor without gaps or
//! repeats; a delivery retried is stored once. On SQLite and PostgreSQL.
//! (Each mutating method's own activity, one by one: `activity_coverage.rs`.)

use std::time::Duration;

use orgplane_e2e::{TestStack, check_role_matrix, eventually, expect_code, stream_end};
use orgplane_platform::authz::Permission;
use orgplane_proto::{
    agents::*,
    organizations::{
        self as org_pb, Activity, ListActivitiesRequest, WatchActivitiesRequest,
        organizations_internal_client::OrganizationsInternalClient,
    },
};
use prost_types::FieldMask;
use tonic::Code;

async fn list(t: &TestStack, token: &str, org: &str, project: &str, filter: &str) -> Vec<Activity> {
    let mut all = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = t
            .activities_as(token)
            .list_activities(ListActivitiesRequest {
                organization: org.into(),
                project: project.into(),
                filter: filter.into(),
                page_size: 7,
                page_token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        all.extend(page.activities);
        if page.next_page_token.is_empty() {
            return all;
        }
        page_token = page.next_page_token;
    }
}

async fn organization_uuid(t: &TestStack, token: &str, org: &str) -> String {
    t.orgs_as(token)
        .get_organization(org_pb::GetOrganizationRequest {
            organization: org.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .organization
        .unwrap()
        .uuid
}

fn summary(activities: &[Activity]) -> Vec<(String, String, String)> {
    activities
        .iter()
        .map(|a| {
            (
                a.action.clone(),
                a.subject_kind.clone(),
                a.subject_name.clone(),
            )
        })
        .collect()
}

/// The feed once every activity of `expected` (newest first) is in it:
/// exactly those, each once (checked again after more shipping time).
/// `organization`'s feed as `token` watches it from now on.
async fn watch_from_now(
    t: &TestStack,
    token: &str,
    organization: &str,
) -> tonic::Streaming<org_pb::WatchActivitiesResponse> {
    t.activities_as(token)
        .watch_activities(WatchActivitiesRequest {
            organization: organization.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

/// `acme`'s feed watched from after its own creation is stored: what the
/// stream gives is what the test does next (the creation is shipped
/// asynchronously and could otherwise come first).
async fn watch_after_creation(
    t: &TestStack,
    token: &str,
) -> tonic::Streaming<org_pb::WatchActivitiesResponse> {
    eventually(Duration::from_secs(5), "the creation is stored", || async {
        !list(t, token, "acme", "", "").await.is_empty()
    })
    .await;
    watch_from_now(t, token, "acme").await
}

/// The subject names of the next `count` activities on `feed`, each
/// within `patience`.
async fn next_names(
    feed: &mut tonic::Streaming<org_pb::WatchActivitiesResponse>,
    count: usize,
    patience: Duration,
) -> Vec<String> {
    let mut names = Vec::new();
    while names.len() < count {
        let message = tokio::time::timeout(patience, feed.message())
            .await
            .unwrap_or_else(|_| panic!("only {names:?} came"))
            .unwrap()
            .unwrap();
        names.push(message.activity.unwrap().subject_name);
    }
    names
}

async fn feed_is(t: &TestStack, token: &str, expected: &[(&str, &str, &str)]) -> Vec<Activity> {
    eventually(
        Duration::from_secs(5),
        "the activities are shipped",
        || async { list(t, token, "acme", "", "").await.len() >= expected.len() },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let feed = list(t, token, "acme", "", "").await;
    let want: Vec<(String, String, String)> = expected
        .iter()
        .map(|(a, k, n)| (a.to_string(), k.to_string(), n.to_string()))
        .collect();
    assert_eq!(summary(&feed), want);
    feed
}

/// Makes one change of each kind in the agents service; returns what the
/// feed must show, oldest first, and the agent's token.
async fn changes(
    t: &TestStack,
    owner: &str,
) -> (Vec<(&'static str, &'static str, &'static str)>, String) {
    t.create_organization(owner, "acme").await;
    t.projects_as(owner)
        .create_project(org_pb::CreateProjectRequest {
            request_id: String::new(),
            organization: "acme".into(),
            project: Some(org_pb::Project {
                name: "vision".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let mut agents = t.agents_as(owner);
    let agent_token = agents
        .create_agent(CreateAgentRequest {
            request_id: String::new(),
            organization: "acme".into(),
            agent: Some(Agent {
                name: "box".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .token;
    agents
        .update_agent(UpdateAgentRequest {
            organization: "acme".into(),
            agent: Some(Agent {
                name: "box".into(),
                description: "the GPU box".into(),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["description".into()],
            }),
        })
        .await
        .unwrap();
    let mut queues = t.queues_as(owner);
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
        .await
        .unwrap();
    let mut connections = t.connections_as(owner);
    connections
        .create_connection(CreateConnectionRequest {
            request_id: String::new(),
            organization: "acme".into(),
            connection: Some(Connection {
                name: "data".into(),
                kind: "s3".into(),
                schema: Some(orgplane_platform::json::json_to_struct(
                    &serde_json::json!({"bucket": "s3://data"}),
                )),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    connections
        .delete_connection(DeleteConnectionRequest {
            organization: "acme".into(),
            connection: "data".into(),
        })
        .await
        .unwrap();
    let mut runs = t.runs_as(owner);
    for name in ["train", "eval"] {
        runs.submit_run(SubmitRunRequest {
            request_id: String::new(),
            organization: "acme".into(),
            project: "vision".into(),
            queue: "box/q".into(),
            name: name.into(),
            spec: None,
        })
        .await
        .unwrap();
    }
    let mut as_agent = t.runs_as(&agent_token);
    let leased = as_agent
        .acquire_runs(AcquireRunsRequest {
            organization: "acme".into(),
            agent: "box".into(),
            max_runs: 1,
            lease_duration: None,
        })
        .await
        .unwrap()
        .into_inner()
        .runs;
    as_agent
        .report_run_status(ReportRunStatusRequest {
            organization: "acme".into(),
            run: leased[0].uuid.clone(),
            status: "succeeded".into(),
            lease: leased[0].lease.clone().unwrap().id,
            message: "done".into(),
        })
        .await
        .unwrap();
    let waiting = runs
        .list_runs(ListRunsRequest {
            organization: "acme".into(),
            filter: "status:queued".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .runs;
    runs.cancel_run(CancelRunRequest {
        organization: "acme".into(),
        run: waiting[0].uuid.clone(),
    })
    .await
    .unwrap();
    let expected = vec![
        ("created", "agent", "box"),
        ("updated", "agent", "box"),
        ("created", "queue", "q"),
        ("created", "connection", "data"),
        ("deleted", "connection", "data"),
        ("submitted", "run", "train"),
        ("submitted", "run", "eval"),
        ("succeeded", "run", "train"),
        ("cancelled", "run", "eval"),
    ];
    (expected, agent_token)
}

async fn every_change_is_in_the_feed_once(t: &TestStack) {
    let owner = t.user("owner").await;
    let (mut expected, _) = changes(t, &owner).await;
    expected.splice(
        0..0,
        [
            ("created", "organization", "acme"),
            ("created", "project", "vision"),
        ],
    );
    expected.reverse();
    // Shipped at least once, stored exactly once.
    let feed = feed_is(t, &owner, &expected).await;
    let submitted = feed.iter().find(|a| a.action == "submitted").unwrap();
    assert_eq!(
        (
            submitted.actor.as_str(),
            submitted.project.as_str(),
            submitted.parent.as_str()
        ),
        ("owner", "vision", "queue/box/q")
    );
    assert_eq!(submitted.organization, "acme");
    assert!(!submitted.subject_uuid.is_empty() && submitted.create_time.is_some());
    let reported = feed.iter().find(|a| a.action == "succeeded").unwrap();
    assert_eq!(reported.actor, "box", "the agent reported it");
    // Filters and the project's feed.
    let project = list(t, &owner, "acme", "vision", "").await;
    assert_eq!(
        project.len(),
        5,
        "the project's creation and its 4 run changes"
    );
    let runs = list(t, &owner, "acme", "vision", "subject_kind:run").await;
    assert_eq!(runs.len(), 4);
    assert_eq!(
        list(t, &owner, "acme", "", "subject_kind:queue")
            .await
            .len(),
        1
    );
    assert_eq!(list(t, &owner, "acme", "", "actor:box").await.len(), 1);
    assert_eq!(
        list(t, &owner, "acme", "", "action:created actor:owner")
            .await
            .len(),
        5,
        "organization, project, agent, queue, connection"
    );
}

/// Statistics match the data: counts from every service, daily series
/// summing to what the feed and the runs hold.
async fn statistics_match_the_data(t: &TestStack) {
    let owner = t.user("owner").await;
    changes(t, &owner).await;
    eventually(
        Duration::from_secs(5),
        "every activity is stored",
        || async { list(t, &owner, "acme", "", "").await.len() >= 11 },
    )
    .await;
    let mut stats = t.activities_as(&owner);
    let org = stats
        .get_organization_stats(org_pb::GetOrganizationStatsRequest {
            organization: "acme".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let counts: std::collections::BTreeMap<String, i64> =
        org.counts.into_iter().map(|c| (c.name, c.value)).collect();
    for (name, value) in [
        ("members", 1),
        ("teams", 0),
        ("projects", 1),
        ("agents", 1),
        // The agent's own `default` queue and the one created.
        ("queues", 2),
        ("models", 0),
        ("components", 0),
        ("model_versions", 0),
        ("runs.queued", 0),
        ("runs.succeeded", 1),
        ("runs.stopped", 1),
    ] {
        assert_eq!(counts.get(name), Some(&value), "{name}");
    }
    let series = |all: &[org_pb::Series], name: &str| -> Vec<i64> {
        all.iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no series {name}"))
            .points
            .iter()
            .map(|p| p.value)
            .collect()
    };
    let activities = series(&org.series, "activities");
    assert_eq!(
        activities.len(),
        31,
        "one point per day of the last 30 days"
    );
    assert_eq!(
        activities.iter().sum::<i64>(),
        list(t, &owner, "acme", "", "").await.len() as i64
    );
    assert_eq!(
        series(&org.series, "runs.queue.box/q").iter().sum::<i64>(),
        2
    );

    let project = stats
        .get_project_stats(org_pb::GetProjectStatsRequest {
            organization: "acme".into(),
            project: "vision".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let counts: std::collections::BTreeMap<String, i64> = project
        .counts
        .into_iter()
        .map(|c| (c.name, c.value))
        .collect();
    assert_eq!(counts.get("runs.succeeded"), Some(&1));
    assert_eq!(counts.get("model_versions"), Some(&0));
    assert!(!counts.contains_key("members") && !counts.contains_key("agents"));
    assert_eq!(series(&project.series, "activities").iter().sum::<i64>(), 5);

    // A range of yesterday only holds nothing of today.
    let now = orgplane_platform::time::now_micros();
    let day = orgplane_platform::time::DAY;
    let yesterday = stats
        .get_organization_stats(org_pb::GetOrganizationStatsRequest {
            organization: "acme".into(),
            start_time: Some(orgplane_platform::time::to_timestamp(now - 2 * day)),
            end_time: Some(orgplane_platform::time::to_timestamp(now - day)),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        series(&yesterday.series, "activities").iter().sum::<i64>(),
        0
    );
    for (start, end) in [(now, now - day), (now - 400 * day, now)] {
        let bad = stats
            .get_organization_stats(org_pb::GetOrganizationStatsRequest {
                organization: "acme".into(),
                start_time: Some(orgplane_platform::time::to_timestamp(start)),
                end_time: Some(orgplane_platform::time::to_timestamp(end)),
            })
            .await;
        expect_code(bad, Code::InvalidArgument);
    }
    let missing = stats
        .get_project_stats(org_pb::GetProjectStatsRequest {
            organization: "acme".into(),
            project: "never-made".into(),
            ..Default::default()
        })
        .await;
    expect_code(missing, Code::NotFound);
}

#[tokio::test]
async fn a_watcher_sees_a_change_within_a_second_and_resumes_without_gaps() {
    let t = TestStack::start().await;
    let owner = t.user("owner").await;
    t.create_organization(&owner, "acme").await;
    let mut feed = watch_after_creation(&t, &owner).await;
    let create = |name: &'static str| {
        let mut connections = t.connections_as(&owner);
        async move {
            connections
                .create_connection(CreateConnectionRequest {
                    request_id: String::new(),
                    organization: "acme".into(),
                    connection: Some(Connection {
                        name: name.into(),
                        kind: "git".into(),
                        schema: Some(orgplane_platform::json::json_to_struct(
                            &serde_json::json!({"url": "https://example.com/repo.git"}),
                        )),
                        ..Default::default()
                    }),
                })
                .await
                .unwrap();
        }
    };
    let changed = std::time::Instant::now();
    create("first").await;
    let first = tokio::time::timeout(Duration::from_secs(1), feed.message())
        .await
        .expect("within a second")
        .unwrap()
        .unwrap();
    eprintln!("a change reached the watcher in {:?}", changed.elapsed());
    assert_eq!(first.activity.unwrap().subject_name, "first");
    drop(feed);

    // Disconnected: three changes happen; resuming sees them all, in
    // order, once.
    for name in ["second", "third", "fourth"] {
        create(name).await;
    }
    let mut resumed = t
        .activities_as(&owner)
        .watch_activities(WatchActivitiesRequest {
            organization: "acme".into(),
            cursor: first.cursor.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let seen = next_names(&mut resumed, 3, Duration::from_secs(5)).await;
    assert_eq!(
        seen,
        ["second", "third", "fourth"],
        "the missed changes come"
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(700), resumed.message())
            .await
            .is_err(),
        "nothing repeated"
    );
    let bad = t
        .activities_as(&owner)
        .watch_activities(WatchActivitiesRequest {
            organization: "acme".into(),
            cursor: "not-a-cursor".into(),
            ..Default::default()
        })
        .await;
    expect_code(bad, Code::InvalidArgument);
}

/// The process reads the store once for every watcher (`domain::feed`):
/// many watchers of two organizations — of the whole feed and of one
/// project, from now and from a cursor — each see exactly their own
/// changes, in order, once, while both organizations change at once.
#[tokio::test]
async fn many_watchers_each_see_their_own_changes_in_order_once() {
    let t = TestStack::start().await;
    let owner = t.user("owner").await;
    let other = t.user("other").await;
    t.create_organization(&owner, "acme").await;
    t.create_organization(&other, "globex").await;
    let project = |token: &str, org: &'static str, name: String| {
        let mut projects = t.projects_as(token);
        async move {
            projects
                .create_project(org_pb::CreateProjectRequest {
                    request_id: String::new(),
                    organization: org.into(),
                    project: Some(org_pb::Project {
                        name,
                        ..Default::default()
                    }),
                })
                .await
                .unwrap();
        }
    };
    project(&owner, "acme", "vision".into()).await;
    eventually(Duration::from_secs(5), "the setup is stored", || async {
        list(&t, &owner, "acme", "vision", "").await.len() == 1
    })
    .await;
    let cursor = {
        let mut feed = watch_from_now(&t, &owner, "acme").await;
        project(&owner, "acme", "before-0".into()).await;
        let message = tokio::time::timeout(Duration::from_secs(5), feed.message())
            .await
            .expect("the first change comes")
            .unwrap()
            .unwrap();
        message.cursor
    };
    // Changed while the cursor's watcher is away (and stored before the
    // others start watching: they watch from what is stored now).
    project(&owner, "acme", "before-1".into()).await;
    eventually(Duration::from_secs(5), "before-1 is stored", || async {
        list(&t, &owner, "acme", "", "")
            .await
            .iter()
            .any(|a| a.subject_name == "before-1")
    })
    .await;
    let watch = |token: String, org: &'static str, project: &'static str, cursor: String| {
        let mut activities = t.activities_as(&token);
        async move {
            activities
                .watch_activities(WatchActivitiesRequest {
                    organization: org.into(),
                    project: project.into(),
                    cursor,
                })
                .await
                .unwrap()
                .into_inner()
        }
    };
    let mut acme = Vec::new();
    for _ in 0..12 {
        acme.push(watch(owner.clone(), "acme", "", String::new()).await);
    }
    let resumed = watch(owner.clone(), "acme", "", cursor).await;
    let mut globex = Vec::new();
    for _ in 0..12 {
        globex.push(watch(other.clone(), "globex", "", String::new()).await);
    }
    let in_vision = watch(owner.clone(), "acme", "vision", String::new()).await;
    // Both organizations change at once, some of acme's in its project.
    let changes = futures::future::join_all((0..20).map(|n| {
        let acme = project(&owner, "acme", format!("a-{n:02}"));
        let globex = project(&other, "globex", format!("g-{n:02}"));
        async move {
            tokio::join!(acme, globex);
        }
    }));
    changes.await;
    t.projects_as(&owner)
        .update_project(org_pb::UpdateProjectRequest {
            organization: "acme".into(),
            project: Some(org_pb::Project {
                name: "vision".into(),
                description: "eyes".into(),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["description".into()],
            }),
        })
        .await
        .unwrap();
    /// The next `count` names on `stream`, and nothing after them.
    async fn all_names(
        mut stream: tonic::Streaming<org_pb::WatchActivitiesResponse>,
        count: usize,
    ) -> Vec<String> {
        let names = next_names(&mut stream, count, Duration::from_secs(10)).await;
        assert!(
            tokio::time::timeout(Duration::from_millis(700), stream.message())
                .await
                .is_err(),
            "nothing more, nothing repeated after {names:?}"
        );
        names
    }
    let sorted = |names: &[String]| {
        let mut sorted = names.to_vec();
        sorted.sort();
        sorted
    };
    let acme_changes: Vec<String> = (0..20)
        .map(|n| format!("a-{n:02}"))
        .chain(["vision".to_string()])
        .collect();
    let globex_changes: Vec<String> = (0..20).map(|n| format!("g-{n:02}")).collect();
    let (acme_seen, globex_seen, resumed_seen, vision_seen) = tokio::join!(
        futures::future::join_all(acme.into_iter().map(|s| all_names(s, 21))),
        futures::future::join_all(globex.into_iter().map(|s| all_names(s, 20))),
        all_names(resumed, 22),
        all_names(in_vision, 1),
    );
    let order = &acme_seen[0];
    assert_eq!(sorted(order), acme_changes);
    for seen in &acme_seen {
        assert_eq!(seen, order, "every watcher sees the store's order");
    }
    for seen in &globex_seen {
        assert_eq!(sorted(seen), globex_changes);
    }
    assert_eq!(resumed_seen[0], "before-1", "caught up from its cursor");
    assert_eq!(&resumed_seen[1..], order.as_slice(), "then followed live");
    assert_eq!(vision_seen, ["vision"]);
}

async fn a_delivery_retried_is_stored_once(t: &TestStack) {
    let owner = t.user("owner").await;
    t.create_organization(&owner, "acme").await;
    let organization_uuid = organization_uuid(t, &owner, "acme").await;
    // As the agents service's shipper calls it, over mTLS.
    let channel = orgplane_transport::client::mtls_channel(
        &t.stack.organizations_addr.to_string(),
        "organizations",
        &t.stack.certs.load("agents").unwrap(),
    )
    .unwrap();
    let mut store = OrganizationsInternalClient::new(channel);
    let batch = |keys: &[&str]| org_pb::RecordActivitiesRequest {
        activities: keys
            .iter()
            .map(|key| org_pb::RecordedActivity {
                idempotency_key: key.to_string(),
                organization_uuid: organization_uuid.clone(),
                activity: Some(Activity {
                    uuid: uuid::Uuid::now_v7().to_string(),
                    actor: "ci".into(),
                    action: "created".into(),
                    subject_kind: "thing".into(),
                    subject_name: key.to_string(),
                    ..Default::default()
                }),
            })
            .collect(),
    };
    let mut feed = watch_after_creation(t, &owner).await;
    let first = store.record_activities(batch(&["k1", "k2"])).await.unwrap();
    assert_eq!(first.into_inner().recorded, 2);
    let again = store
        .record_activities(batch(&["k1", "k2", "k3", "k3"]))
        .await
        .unwrap();
    assert_eq!(again.into_inner().recorded, 1, "only k3 is new, once");
    let after = store.record_activities(batch(&["k4"])).await.unwrap();
    assert_eq!(after.into_inner().recorded, 1);
    let watched = next_names(&mut feed, 4, Duration::from_secs(5)).await;
    assert_eq!(
        watched,
        ["k1", "k2", "k3", "k4"],
        "a retried delivery is watched once, in the store's order"
    );
    let things = list(t, &owner, "acme", "", "subject_kind:thing").await;
    assert_eq!(
        things
            .iter()
            .map(|a| a.subject_name.as_str())
            .collect::<Vec<_>>(),
        ["k4", "k3", "k2", "k1"]
    );
    let empty_key = store.record_activities(batch(&[""])).await;
    expect_code(empty_key, Code::InvalidArgument);
}

async fn activities_past_their_retention_are_purged(t: &TestStack) {
    let owner = t.user("owner").await;
    t.create_organization(&owner, "acme").await;
    t.orgs_as(&owner)
        .update_organization_settings(org_pb::UpdateOrganizationSettingsRequest {
            organization: "acme".into(),
            settings: Some(org_pb::OrganizationSettings {
                activity_retention_days: 2,
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["activity_retention_days".into()],
            }),
        })
        .await
        .unwrap();
    let uuid = organization_uuid(t, &owner, "acme").await;
    let day = orgplane_platform::time::DAY;
    let now = orgplane_platform::time::now_micros();
    let old = |name: &str, age_days: i64| orgplane_storage::activity::Delivery {
        idempotency_key: format!("test:{name}"),
        activity: orgplane_storage::activity::Activity {
            uuid: uuid::Uuid::now_v7().to_string(),
            organization_uuid: uuid.clone(),
            actor: "ci".into(),
            action: "created".into(),
            subject_kind: "thing".into(),
            subject_name: name.into(),
            metadata: serde_json::json!({}),
            create_time: now - age_days * day,
            ..Default::default()
        },
    };
    t.stack
        .organizations
        .record_activities(vec![old("ancient", 3), old("recent", 1)])
        .await
        .unwrap();
    let purged = t
        .stack
        .organizations
        .purge_expired_activities(now)
        .await
        .unwrap();
    assert_eq!(purged, 1, "only what is older than 2 days");
    let things = list(t, &owner, "acme", "", "subject_kind:thing").await;
    assert_eq!(
        things
            .iter()
            .map(|a| a.subject_name.as_str())
            .collect::<Vec<_>>(),
        ["recent"]
    );
}

/// An owner's token, of organization `acme` with a project `vision`.
async fn acme_with_vision(t: &TestStack) -> String {
    let owner = t.user("owner").await;
    t.create_organization(&owner, "acme").await;
    t.projects_as(&owner)
        .create_project(org_pb::CreateProjectRequest {
            request_id: String::new(),
            organization: "acme".into(),
            project: Some(org_pb::Project {
                name: "vision".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    owner
}

const RPCS: &[(&str, Permission, Code)] = &[
    ("ListActivities", Permission::ActivityRead, Code::Ok),
    ("WatchActivities", Permission::ActivityRead, Code::Ok),
    ("GetOrganizationStats", Permission::ActivityRead, Code::Ok),
    ("GetProjectStats", Permission::ProjectsRead, Code::Ok),
];

async fn call(t: &TestStack, token: &str, org: &str, rpc: &str) -> Code {
    let mut feed = t.activities_as(token);
    let result = match rpc {
        "ListActivities" => feed
            .list_activities(ListActivitiesRequest {
                organization: org.into(),
                ..Default::default()
            })
            .await
            .map(|_| ()),
        "WatchActivities" => feed
            .watch_activities(WatchActivitiesRequest {
                organization: org.into(),
                ..Default::default()
            })
            .await
            .map(|_| ()),
        "GetOrganizationStats" => feed
            .get_organization_stats(org_pb::GetOrganizationStatsRequest {
                organization: org.into(),
                ..Default::default()
            })
            .await
            .map(|_| ()),
        "GetProjectStats" => feed
            .get_project_stats(org_pb::GetProjectStatsRequest {
                organization: org.into(),
                project: "vision".into(),
                ..Default::default()
            })
            .await
            .map(|_| ()),
        other => panic!("no call for {other}"),
    };
    result.err().map_or(Code::Ok, |s| s.code())
}

#[tokio::test]
async fn role_matrix_tenant_isolation_and_bad_input() {
    let t = TestStack::start().await;
    let owner = acme_with_vision(&t).await;
    let callers = t.role_callers("acme", owner.clone()).await;
    let foreigner = t.user("foreigner").await;
    t.create_organization(&foreigner, "elsewhere").await;
    check_role_matrix(RPCS, &callers, "acme", &foreigner, |token, org, rpc| {
        let t = &t;
        async move { call(t, &token, &org, rpc).await }
    })
    .await;
    for rpc in [
        "ListActivities",
        "WatchActivities",
        "GetOrganizationStats",
        "GetProjectStats",
    ] {
        assert_eq!(
            call(&t, &foreigner, "acme", rpc).await,
            Code::NotFound,
            "{rpc}"
        );
    }
    let mut feed = t.activities_as(&owner);
    for (project, team, filter, order_by, code) in [
        ("never-made", "", "", "", Code::NotFound),
        ("", "never-made", "", "", Code::NotFound),
        ("vision", "team", "", "", Code::InvalidArgument),
        ("", "", "colour:red", "", Code::InvalidArgument),
        ("", "", "", "create_time", Code::InvalidArgument),
    ] {
        let answer = feed
            .list_activities(ListActivitiesRequest {
                organization: "acme".into(),
                project: project.into(),
                team: team.into(),
                filter: filter.into(),
                order_by: order_by.into(),
                ..Default::default()
            })
            .await;
        assert_eq!(
            answer.err().map(|s| s.code()),
            Some(code),
            "{project} {team} {filter} {order_by}"
        );
    }
}

/// Issue 15, item 2: timestamps at (and past) the protobuf limits once
/// wrapped `end - start` and made one statistics call allocate until the
/// process died; now each is `INVALID_ARGUMENT` naming its field, and the
/// control plane answers on.
#[tokio::test]
async fn statistics_refuse_timestamps_outside_the_protobuf_range() {
    use prost_types::Timestamp;
    let t = TestStack::start().await;
    let owner = acme_with_vision(&t).await;
    let at = |seconds, nanos| Some(Timestamp { seconds, nanos });
    let mut stats = t.activities_as(&owner);
    for (start, end, field) in [
        (at(i64::MIN, 0), at(i64::MAX, 999_999_999), "start_time"),
        (at(0, 0), at(i64::MAX, 0), "end_time"),
        (at(-62_135_596_801, 0), at(0, 0), "start_time"),
        (at(0, -1), at(1, 0), "start_time"),
        (None, at(253_402_300_800, 0), "end_time"),
    ] {
        let bad = stats
            .get_organization_stats(org_pb::GetOrganizationStatsRequest {
                organization: "acme".into(),
                start_time: start,
                end_time: end,
            })
            .await;
        let status = expect_code(bad, Code::InvalidArgument);
        assert_eq!(orgplane_e2e::violated_fields(&status), [field]);
        let bad = stats
            .get_project_stats(org_pb::GetProjectStatsRequest {
                organization: "acme".into(),
                project: "vision".into(),
                start_time: start,
                end_time: end,
            })
            .await;
        let status = expect_code(bad, Code::InvalidArgument);
        assert_eq!(orgplane_e2e::violated_fields(&status), [field]);
    }
    // The latest valid end with the default range: 30 days, answered.
    let far = stats
        .get_organization_stats(org_pb::GetOrganizationStatsRequest {
            organization: "acme".into(),
            start_time: None,
            end_time: at(253_402_300_799, 999_999_999),
        })
        .await
        .unwrap()
        .into_inner();
    let activities = far.series.iter().find(|s| s.name == "activities").unwrap();
    assert_eq!(activities.points.len(), 31);
}

/// Issue 15, item 17: the organization's own feed and statistics are
/// org-level analytics (admin and up, as in Polyaxon); viewers and members
/// keep the feeds and statistics of the projects they read.
#[tokio::test]
async fn only_admins_read_the_organization_feed_and_viewers_read_their_projects() {
    let t = TestStack::start().await;
    let owner = acme_with_vision(&t).await;
    t.invitations_as(&owner)
        .create_invitation(org_pb::CreateInvitationRequest {
            request_id: String::new(),
            organization: "acme".into(),
            invitation: Some(org_pb::Invitation {
                email: "secret-hire@example.com".into(),
                role: "member".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    for role in ["viewer", "member"] {
        let name = format!("a-{role}");
        let token = t.user(&name).await;
        t.add_member("acme", &name, role).await;
        let mut feed = t.activities_as(&token);
        let whole = feed
            .list_activities(ListActivitiesRequest {
                organization: "acme".into(),
                ..Default::default()
            })
            .await;
        expect_code(whole, Code::PermissionDenied);
        let stats = feed
            .get_organization_stats(org_pb::GetOrganizationStatsRequest {
                organization: "acme".into(),
                ..Default::default()
            })
            .await;
        expect_code(stats, Code::PermissionDenied);
        let project = feed
            .list_activities(ListActivitiesRequest {
                organization: "acme".into(),
                project: "vision".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(
            project
                .activities
                .iter()
                .all(|a| a.project == "vision" && !a.subject_name.contains("secret-hire")),
            "{role} sees only the project's feed"
        );
        feed.get_project_stats(org_pb::GetProjectStatsRequest {
            organization: "acme".into(),
            project: "vision".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    }
}

/// Issue 15, item 9: at most 16 streams per principal through the gateway,
/// and a stream ends with `UNAUTHENTICATED` within 15 s of its token's
/// revocation (before, a stream opened before `Logout` ran on).
#[tokio::test]
async fn streams_are_limited_per_principal_and_end_with_their_token() {
    let t = TestStack::start().await;
    let owner = t.user("owner").await;
    t.create_organization(&owner, "acme").await;
    let watch = || WatchActivitiesRequest {
        organization: "acme".into(),
        ..Default::default()
    };
    let mut open = Vec::new();
    for _ in 0..16 {
        open.push(
            t.activities_as(&owner)
                .watch_activities(watch())
                .await
                .unwrap()
                .into_inner(),
        );
    }
    orgplane_e2e::expect_reason(
        t.activities_as(&owner).watch_activities(watch()).await,
        Code::ResourceExhausted,
        "TOO_MANY_STREAMS",
    );
    // Closing one frees its slot (the gateway notices the reset).
    drop(open.pop());
    eventually(Duration::from_secs(5), "a slot is free again", || {
        let mut feed = t.activities_as(&owner);
        async move {
            match feed.watch_activities(watch()).await {
                Ok(stream) => {
                    drop(stream);
                    true
                }
                Err(_) => false,
            }
        }
    })
    .await;
    drop(open);

    // A stream opened with a session that then logs out ends.
    let session = t
        .auth()
        .login(orgplane_proto::identity::LoginRequest {
            username: "owner".into(),
            password: "password-owner".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .access_token;
    let mut stream = t
        .activities_as(&session)
        .watch_activities(watch())
        .await
        .unwrap()
        .into_inner();
    t.auth_as(&session)
        .logout(orgplane_proto::identity::LogoutRequest {})
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let ended = stream_end(&mut stream, Duration::from_secs(20))
        .await
        .expect("the stream ends within 20 s");
    let status = ended.expect_err("ended by an error");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(16));
}

orgplane_e2e::on_both_databases!(
    statistics_match_the_data,
    every_change_is_in_the_feed_once,
    activities_past_their_retention_are_purged,
    a_delivery_retried_is_stored_once,
);

//! orgplane as an operator runs it past one process: two `orgplane serve`
//! processes of every service and two gateways on one PostgreSQL, each
//! process given both replicas of each peer (`--agents-addr a,b`). Checked
//! here, as clients see it through the gateways:
//!
//! - a change of access made through one gateway (a token revoked, a role
//!   lowered, a member removed, a project setting) is enforced through the
//!   other within 1 s, and an activity reaches a watcher on the other;
//! - run admission stays exactly-once, and a queue's concurrency holds,
//!   with agents acquiring through both gateways;
//! - a `SIGKILL` of one replica of each backend under load loses no
//!   acknowledged write, fails no read (sent again to the other replica),
//!   and fails only the writes in flight on it (`UNAVAILABLE`: retried by
//!   the client with their request id, which the dead process's claim no
//!   longer holds);
//! - restarting every service, backends then gateways, one replica at a
//!   time (`SIGTERM`) under load fails no call, for a client that spreads
//!   its calls over the gateways as the services do over their peers
//!   (`orgplane_transport::client::h2c_channel`).
//!
//! PostgreSQL only: replicas share a database (the tests' database must be
//! configured; under CI it always is).

use std::{
    collections::{HashMap, HashSet},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use orgplane_e2e::{Bearer, channel, mask, postgres_url, unique_schema_prefix};
use orgplane_proto::{
    agents::{
        AcquireRunsRequest, CreateQueueRequest, ListQueuesRequest, Queue, ReportRunStatusRequest,
        Run, SubmitRunRequest, agent_service_client::AgentServiceClient,
        queue_service_client::QueueServiceClient, run_service_client::RunServiceClient,
    },
    identity::{
        GetCurrentUserRequest, LogoutRequest, auth_service_client::AuthServiceClient,
        user_service_client::UserServiceClient,
    },
    organizations::{
        AcceptInvitationRequest, CreateInvitationRequest, CreateProjectRequest,
        GetOrganizationRequest, GetProjectSettingsRequest, Invitation, Member, Project,
        ProjectSettings, RemoveMemberRequest, UpdateMemberRequest, UpdateProjectSettingsRequest,
        WatchActivitiesRequest, activity_service_client::ActivityServiceClient,
        invitation_service_client::InvitationServiceClient,
        member_service_client::MemberServiceClient,
        organization_service_client::OrganizationServiceClient,
        project_service_client::ProjectServiceClient,
    },
    registry::{
        CreateModelRequest, Model, UpdateModelRequest,
        model_registry_service_client::ModelRegistryServiceClient,
    },
};
use tonic::{Code, transport::Channel};

mod support;

use support::{
    BIN, acme_with_an_agent, certs_init, exit_within, listening, login, signed_up, terminate,
    when_up,
};
const BACKENDS: [&str; 4] = ["identity", "organizations", "registry", "agents"];
const REPLICAS: usize = 2;
/// How soon a change made through one gateway must hold through the other.
const ACROSS_REPLICAS: Duration = Duration::from_secs(1);
const ORG: &str = "acme";

/// The peers each service is given (and only those: each takes only the
/// flags it honours).
fn peers_of(service: &str) -> &'static [&'static str] {
    match service {
        "identity" | "registry" => &["organizations"],
        "organizations" => &["identity", "registry", "agents"],
        "agents" => &["identity", "organizations"],
        _ => &BACKENDS,
    }
}

/// Every process of the cluster, killed on drop.
struct Cluster {
    data_dir: PathBuf,
    database: Vec<String>,
    addrs: HashMap<(&'static str, usize), String>,
    children: HashMap<(&'static str, usize), Child>,
}

impl Cluster {
    fn start(data_dir: &Path, database: Vec<String>) -> Self {
        certs_init(data_dir);
        let mut cluster = Self {
            data_dir: data_dir.to_owned(),
            database,
            addrs: HashMap::new(),
            children: HashMap::new(),
        };
        for service in BACKENDS.into_iter().chain(["gateway"]) {
            for replica in 0..REPLICAS {
                cluster
                    .addrs
                    .insert((service, replica), orgplane_e2e::free_port());
            }
        }
        // Gateways first: processes start in any order.
        for service in ["gateway"].into_iter().chain(BACKENDS) {
            for replica in 0..REPLICAS {
                cluster.spawn(service, replica);
            }
        }
        cluster
    }

    /// Every replica of `service`, as a peer flag takes them.
    fn all(&self, service: &str) -> String {
        (0..REPLICAS)
            .map(|replica| {
                self.addrs
                    .iter()
                    .find(|((s, r), _)| *s == service && *r == replica)
                    .map(|(_, addr)| addr.clone())
                    .unwrap()
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    fn spawn(&mut self, service: &'static str, replica: usize) {
        let mut command = Command::new(BIN);
        command
            .args(["serve", service, "--data-dir"])
            .arg(&self.data_dir)
            .args(["--listen", &self.addrs[&(service, replica)]])
            .args(["--drain-delay-secs", "1"]);
        for peer in peers_of(service) {
            command.arg(format!("--{peer}-addr")).arg(self.all(peer));
        }
        if service == "gateway" {
            // One principal drives the load: no per-caller limit here.
            command.args(["--rate-limit", "100000", "--rate-limit-burst", "100000"]);
        } else {
            command.args(&self.database);
        }
        let child = command
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        self.children.insert((service, replica), child);
    }

    /// `SIGKILL`: no drain, no goodbye.
    fn kill(&mut self, service: &'static str, replica: usize) {
        let mut child = self.children.remove(&(service, replica)).unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// `SIGTERM`, and the process exits cleanly within its drain.
    async fn terminate(&mut self, service: &'static str, replica: usize) {
        let mut child = self.children.remove(&(service, replica)).unwrap();
        terminate(&child);
        let status = exit_within(&mut child, Duration::from_secs(30)).await;
        assert!(
            status.success(),
            "{service} {replica} stopped with {status}"
        );
    }

    /// Waits until `service`'s `replica` takes connections.
    async fn listening(&mut self, service: &'static str, replica: usize) {
        let child = self.children.get_mut(&(service, replica));
        listening(
            &self.addrs[&(service, replica)],
            child,
            &format!("{service} {replica}"),
        )
        .await;
    }

    async fn gateway(&self, replica: usize) -> Channel {
        channel(&format!("http://{}", self.addrs[&("gateway", replica)])).await
    }

    /// Both gateways, as a client that balances over them sees them.
    fn gateways(&self) -> Gateways {
        orgplane_transport::client::h2c_channel(&self.all("gateway"), "gateway").unwrap()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.children.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Calls `call` until it answers `code`; how long that took. Fails past
/// `ACROSS_REPLICAS` (plus the call's own time, reported).
async fn until_code<T, F, Fut>(what: &str, code: Code, mut call: F) -> Duration
where
    T: std::fmt::Debug,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    let start = Instant::now();
    loop {
        let answer = call().await;
        let elapsed = start.elapsed();
        match answer {
            Err(status) if status.code() == code => return elapsed,
            other => assert!(
                elapsed <= ACROSS_REPLICAS,
                "{what}: still {other:?} after {elapsed:?} through the other gateway"
            ),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn submit(queue: &str, name: String) -> SubmitRunRequest {
    SubmitRunRequest {
        request_id: uuid::Uuid::now_v7().to_string(),
        organization: ORG.into(),
        project: "vision".into(),
        queue: queue.into(),
        name,
        spec: None,
    }
}

/// Whether `answer` says the request id is held by a call in progress: a
/// write lost with its replica would hold it until its claim lapsed, were
/// the claims of a process gone not taken over at once.
fn in_progress<T>(answer: &Result<T, tonic::Status>) -> bool {
    answer
        .as_ref()
        .is_err_and(|status| status.code() == Code::Aborted)
}

/// What the load saw.
#[derive(Default)]
struct Outcomes {
    /// Projects whose creation was acknowledged.
    projects: HashSet<String>,
    /// Runs whose submission was acknowledged.
    runs: HashSet<String>,
    /// Calls that failed: when, which, how.
    failures: Vec<(Instant, &'static str, Code, String)>,
    /// Calls answered.
    answered: u64,
    /// Retries of a write lost in flight answered `ABORTED`
    /// (`REQUEST_IN_PROGRESS`: its request id still claimed by the process
    /// gone), and the write given up (never acknowledged).
    given_up: u64,
}

/// A client's channel over every gateway.
type Gateways = orgplane_transport::client::Channel;

/// Steady calls through both gateways until stopped: reads of every
/// backend (identity through authentication and `GetCurrentUser`,
/// organizations, the registry, agents) and writes of projects and runs. A
/// failed write is retried with its request id, as a client would, until
/// acknowledged.
struct Load {
    stop: Arc<AtomicBool>,
    outcomes: Arc<Mutex<Outcomes>>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

const WORKERS: usize = 6;

impl Load {
    async fn start(gateways: &Gateways, token: &str, round: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let outcomes = Arc::new(Mutex::new(Outcomes::default()));
        let mut workers = Vec::new();
        for worker in 0..WORKERS {
            let gateway = gateways.clone();
            let (stop, outcomes, token) = (stop.clone(), outcomes.clone(), token.to_owned());
            let round = round.to_owned();
            workers.push(tokio::spawn(async move {
                let bearer = || Bearer::new(&token);
                let mut users = UserServiceClient::with_interceptor(gateway.clone(), bearer());
                let mut orgs =
                    OrganizationServiceClient::with_interceptor(gateway.clone(), bearer());
                let mut projects =
                    ProjectServiceClient::with_interceptor(gateway.clone(), bearer());
                let mut models =
                    ModelRegistryServiceClient::with_interceptor(gateway.clone(), bearer());
                let mut queues = QueueServiceClient::with_interceptor(gateway.clone(), bearer());
                let mut runs = RunServiceClient::with_interceptor(gateway.clone(), bearer());
                let record = |what: &'static str, result: Result<(), tonic::Status>| {
                    let mut outcomes = outcomes.lock().unwrap();
                    match result {
                        Ok(()) => outcomes.answered += 1,
                        Err(status) => outcomes.failures.push((
                            Instant::now(),
                            what,
                            status.code(),
                            status.message().to_owned(),
                        )),
                    }
                };
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    record(
                        "GetCurrentUser",
                        users
                            .get_current_user(GetCurrentUserRequest {})
                            .await
                            .map(drop),
                    );
                    record(
                        "GetOrganization",
                        orgs.get_organization(GetOrganizationRequest {
                            organization: ORG.into(),
                        })
                        .await
                        .map(drop),
                    );
                    record(
                        "ListModels",
                        models
                            .list_models(orgplane_proto::registry::ListModelsRequest {
                                organization: ORG.into(),
                                page_size: 5,
                                ..Default::default()
                            })
                            .await
                            .map(drop),
                    );
                    record(
                        "ListQueues",
                        queues
                            .list_queues(ListQueuesRequest {
                                organization: ORG.into(),
                                agent: "box".into(),
                                ..Default::default()
                            })
                            .await
                            .map(drop),
                    );
                    let name = format!("{round}-{worker}-{i}");
                    let create = CreateProjectRequest {
                        request_id: uuid::Uuid::now_v7().to_string(),
                        organization: ORG.into(),
                        project: Some(Project {
                            name: name.clone(),
                            ..Default::default()
                        }),
                    };
                    let mut retry = false;
                    loop {
                        let created = projects.create_project(create.clone()).await;
                        if in_progress(&created) {
                            outcomes.lock().unwrap().given_up += 1;
                            break;
                        }
                        // The attempt lost in flight took effect, and its
                        // process died before recording the answer (a
                        // retry then does the work again): the project is
                        // there.
                        if retry
                            && created
                                .as_ref()
                                .is_err_and(|status| status.code() == Code::AlreadyExists)
                        {
                            outcomes.lock().unwrap().projects.insert(name.clone());
                            break;
                        }
                        retry = true;
                        let failed = created.is_err();
                        record("CreateProject", created.map(drop));
                        if !failed {
                            outcomes.lock().unwrap().projects.insert(name.clone());
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    let request = submit("box/q", name);
                    loop {
                        match runs.submit_run(request.clone()).await {
                            Ok(answer) => {
                                record("SubmitRun", Ok(()));
                                let run = answer.into_inner().run.unwrap();
                                outcomes.lock().unwrap().runs.insert(run.uuid);
                                break;
                            }
                            Err(status) if status.code() == Code::Aborted => {
                                outcomes.lock().unwrap().given_up += 1;
                                break;
                            }
                            Err(status) => record("SubmitRun", Err(status)),
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }));
        }
        Self {
            stop,
            outcomes,
            workers,
        }
    }

    async fn stop(self) -> Outcomes {
        self.stop.store(true, Ordering::Relaxed);
        for worker in self.workers {
            worker.await.unwrap();
        }
        Arc::try_unwrap(self.outcomes)
            .ok()
            .unwrap()
            .into_inner()
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_of_everything_on_postgresql() {
    let Some(url) = postgres_url() else { return };
    let prefix = unique_schema_prefix();
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(
        dir.path(),
        vec![
            "--database-url".into(),
            url.clone(),
            "--schema-prefix".into(),
            prefix.clone(),
        ],
    );
    let gateways = [cluster.gateway(0).await, cluster.gateway(1).await];
    let (a, b) = (&gateways[0], &gateways[1]);
    setup(a).await;

    changes_are_enforced_through_the_other_gateway_within_a_second(a, b).await;
    admission_is_exactly_once_across_replicas(a, b).await;
    killing_one_replica_of_each_backend_loses_nothing(&mut cluster, &gateways).await;
    rolling_restarts_fail_no_call(&mut cluster, &gateways).await;

    drop(cluster);
    for service in BACKENDS {
        orgplane_storage::db::drop_schema(&url, &format!("{prefix}{service}"))
            .await
            .unwrap();
    }
}

/// The owner, the organization, a project, an agent with two queues, a
/// model.
async fn setup(gateway: &Channel) {
    let token = signed_up(gateway, "owner").await;
    let bearer = || Bearer::new(&token);
    acme_with_an_agent(gateway, &token).await;
    for (name, concurrency) in [("other", 0), ("narrow", 3)] {
        QueueServiceClient::with_interceptor(gateway.clone(), bearer())
            .create_queue(CreateQueueRequest {
                request_id: String::new(),
                organization: ORG.into(),
                agent: "box".into(),
                queue: Some(Queue {
                    name: name.into(),
                    concurrency,
                    ..Default::default()
                }),
            })
            .await
            .unwrap();
    }
    when_up("create model", || {
        let mut models = ModelRegistryServiceClient::with_interceptor(gateway.clone(), bearer());
        async move {
            models
                .create_model(CreateModelRequest {
                    request_id: String::new(),
                    organization: ORG.into(),
                    model: Some(Model {
                        name: "resnet".into(),
                        ..Default::default()
                    }),
                })
                .await
        }
    })
    .await;
}

/// Bob joins through an invitation accepted through the other gateway.
async fn invite_bob(a: &Channel, b: &Channel, owner: &str) {
    signed_up(a, "bob").await;
    let invitation = InvitationServiceClient::with_interceptor(a.clone(), Bearer::new(owner))
        .create_invitation(CreateInvitationRequest {
            organization: ORG.into(),
            invitation: Some(Invitation {
                email: "bob@example.com".into(),
                role: "admin".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let bob = login(b, "bob").await;
    InvitationServiceClient::with_interceptor(b.clone(), Bearer::new(&bob))
        .accept_invitation(AcceptInvitationRequest {
            token: invitation.token,
        })
        .await
        .unwrap();
}

async fn changes_are_enforced_through_the_other_gateway_within_a_second(a: &Channel, b: &Channel) {
    let owner = login(a, "owner").await;
    invite_bob(a, b, &owner).await;
    let mut seen = Vec::new();

    // A session ended through A stops working through B.
    let session = login(b, "bob").await;
    let mut bob_at_b = UserServiceClient::with_interceptor(b.clone(), Bearer::new(&session));
    bob_at_b
        .get_current_user(GetCurrentUserRequest {})
        .await
        .unwrap();
    AuthServiceClient::with_interceptor(a.clone(), Bearer::new(&session))
        .logout(LogoutRequest {})
        .await
        .unwrap();
    seen.push((
        "logout",
        until_code("a session ended", Code::Unauthenticated, || {
            let mut users = bob_at_b.clone();
            async move { users.get_current_user(GetCurrentUserRequest {}).await }
        })
        .await,
    ));

    // A role lowered through A: bob may no longer change a model through B.
    let bob = login(b, "bob").await;
    let mut models_at_b =
        ModelRegistryServiceClient::with_interceptor(b.clone(), Bearer::new(&bob));
    let update = |description: &str| UpdateModelRequest {
        organization: ORG.into(),
        model: Some(Model {
            name: "resnet".into(),
            description: description.into(),
            ..Default::default()
        }),
        update_mask: mask(&["description"]),
    };
    for i in 0..4 {
        models_at_b
            .update_model(update(&format!("warm {i}")))
            .await
            .unwrap();
    }
    let mut members_at_a = MemberServiceClient::with_interceptor(a.clone(), Bearer::new(&owner));
    members_at_a
        .update_member(UpdateMemberRequest {
            organization: ORG.into(),
            member: Some(Member {
                user: "bob".into(),
                role: "member".into(),
                ..Default::default()
            }),
            update_mask: mask(&["role"]),
        })
        .await
        .unwrap();
    seen.push((
        "role lowered",
        until_code("a role lowered", Code::PermissionDenied, || {
            let mut models = models_at_b.clone();
            let request = update("after the demotion");
            async move { models.update_model(request).await }
        })
        .await,
    ));

    // Removed through A: the organization is gone for bob through B.
    let mut queues_at_b = QueueServiceClient::with_interceptor(b.clone(), Bearer::new(&bob));
    let list = || ListQueuesRequest {
        organization: ORG.into(),
        agent: "box".into(),
        ..Default::default()
    };
    for _ in 0..4 {
        queues_at_b.list_queues(list()).await.unwrap();
    }
    members_at_a
        .remove_member(RemoveMemberRequest {
            organization: ORG.into(),
            user: "bob".into(),
        })
        .await
        .unwrap();
    seen.push((
        "removal",
        until_code("a member removed", Code::NotFound, || {
            let mut queues = queues_at_b.clone();
            async move { queues.list_queues(list()).await }
        })
        .await,
    ));

    // A project setting changed through A: runs may no longer go to `box/q`
    // through B.
    let mut runs_at_b = RunServiceClient::with_interceptor(b.clone(), Bearer::new(&owner));
    for i in 0..4 {
        runs_at_b
            .submit_run(submit("box/q", format!("warm-{i}")))
            .await
            .unwrap();
    }
    let mut projects_at_a = ProjectServiceClient::with_interceptor(a.clone(), Bearer::new(&owner));
    let allow_queues = |queues: Vec<String>| {
        let mut projects = projects_at_a.clone();
        async move {
            let settings = projects
                .get_project_settings(GetProjectSettingsRequest {
                    organization: ORG.into(),
                    project: "vision".into(),
                })
                .await
                .unwrap()
                .into_inner()
                .settings
                .unwrap();
            projects
                .update_project_settings(UpdateProjectSettingsRequest {
                    organization: ORG.into(),
                    project: "vision".into(),
                    settings: Some(ProjectSettings {
                        allowed_queues: queues,
                        ..settings
                    }),
                    update_mask: mask(&["allowed_queues"]),
                })
                .await
                .unwrap();
        }
    };
    allow_queues(vec!["box/other".into()]).await;
    let refused = until_code(
        "a queue no longer allowed",
        Code::FailedPrecondition,
        || {
            let mut runs = runs_at_b.clone();
            async move { runs.submit_run(submit("box/q", "refused".into())).await }
        },
    );
    seen.push(("project setting", refused.await));
    allow_queues(Vec::new()).await;

    // An activity recorded through A reaches a watcher on B.
    let mut feed = ActivityServiceClient::with_interceptor(b.clone(), Bearer::new(&owner))
        .watch_activities(WatchActivitiesRequest {
            organization: ORG.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    // The watch is in place once an earlier change arrives through it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let changed = Instant::now();
    projects_at_a
        .create_project(CreateProjectRequest {
            request_id: String::new(),
            organization: ORG.into(),
            project: Some(Project {
                name: "watched".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    loop {
        let message = tokio::time::timeout(ACROSS_REPLICAS, feed.message())
            .await
            .expect("the activity reached the other gateway's watcher within 1 s")
            .unwrap()
            .expect("the stream stays open");
        let activity = message.activity.unwrap();
        if activity.subject_name == "watched" {
            break;
        }
    }
    seen.push(("activity", changed.elapsed()));
    assert!(changed.elapsed() <= ACROSS_REPLICAS, "{seen:?}");
    eprintln!("seen through the other gateway after: {seen:?}");
}

async fn admission_is_exactly_once_across_replicas(a: &Channel, b: &Channel) {
    let owner = login(a, "owner").await;
    let agent_token = AgentServiceClient::with_interceptor(a.clone(), Bearer::new(&owner))
        .rotate_agent_token(orgplane_proto::agents::RotateAgentTokenRequest {
            organization: ORG.into(),
            agent: "box".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .token;
    let acquire = |gateway: &Channel, queue_runs: i32| {
        let mut runs =
            RunServiceClient::with_interceptor(gateway.clone(), Bearer::new(&agent_token));
        async move {
            runs.acquire_runs(AcquireRunsRequest {
                organization: ORG.into(),
                agent: "box".into(),
                max_runs: queue_runs,
                lease_duration: Some(
                    prost_types::Duration::try_from(Duration::from_secs(120)).unwrap(),
                ),
            })
            .await
            .unwrap()
            .into_inner()
            .runs
        }
    };
    let finish = |gateway: &Channel, run: Run| {
        let mut runs =
            RunServiceClient::with_interceptor(gateway.clone(), Bearer::new(&agent_token));
        async move {
            runs.report_run_status(ReportRunStatusRequest {
                organization: ORG.into(),
                run: run.uuid.clone(),
                status: "succeeded".into(),
                lease: run.lease.as_ref().unwrap().id.clone(),
                message: String::new(),
            })
            .await
            .unwrap();
        }
    };

    // Whatever earlier steps queued goes first.
    loop {
        let leftovers = acquire(a, 50).await;
        if leftovers.is_empty() {
            break;
        }
        for run in leftovers {
            finish(a, run).await;
        }
    }

    // 200 runs submitted through both gateways, acquired by four agents
    // processes' worth of callers through both: each handed out once.
    let mut submitted = HashSet::new();
    for i in 0..200 {
        let gateway = if i % 2 == 0 { a } else { b };
        let run = RunServiceClient::with_interceptor(gateway.clone(), Bearer::new(&owner))
            .submit_run(submit("box/q", format!("once-{i}")))
            .await
            .unwrap()
            .into_inner()
            .run
            .unwrap();
        submitted.insert(run.uuid);
    }
    let handed_out = Arc::new(Mutex::new(Vec::new()));
    let mut acquirers = Vec::new();
    for acquirer in 0..4 {
        let gateway = if acquirer % 2 == 0 {
            a.clone()
        } else {
            b.clone()
        };
        let handed_out = handed_out.clone();
        acquirers.push(async move {
            loop {
                let leased = acquire(&gateway, 7).await;
                if leased.is_empty() {
                    return;
                }
                for run in leased {
                    handed_out.lock().unwrap().push(run.uuid.clone());
                    finish(&gateway, run).await;
                }
            }
        });
    }
    futures::future::join_all(acquirers).await;
    let handed_out = handed_out.lock().unwrap().clone();
    let unique: HashSet<String> = handed_out.iter().cloned().collect();
    assert_eq!(unique.len(), handed_out.len(), "no run handed out twice");
    assert_eq!(unique, submitted, "every run handed out");

    // A queue running at most 3 at once: 3 leased in all, whichever
    // replicas the callers reach.
    for i in 0..12 {
        RunServiceClient::with_interceptor(b.clone(), Bearer::new(&owner))
            .submit_run(submit("box/narrow", format!("narrow-{i}")))
            .await
            .unwrap();
    }
    let leased: Vec<Vec<Run>> =
        futures::future::join_all((0..6).map(|i| acquire(if i % 2 == 0 { a } else { b }, 2))).await;
    let leased: Vec<Run> = leased.into_iter().flatten().collect();
    assert_eq!(
        leased.len(),
        3,
        "the queue's concurrency holds across replicas"
    );
    for run in leased {
        finish(a, run).await;
    }
    loop {
        let more = acquire(b, 3).await;
        if more.is_empty() {
            break;
        }
        assert!(more.len() <= 3);
        for run in more {
            finish(b, run).await;
        }
    }
}

async fn killing_one_replica_of_each_backend_loses_nothing(
    cluster: &mut Cluster,
    gateways: &[Channel],
) {
    let owner = login(&gateways[0], "owner").await;
    let load = Load::start(&cluster.gateways(), &owner, "kill").await;
    let mut kills = Vec::new();
    for service in BACKENDS {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let killed = Instant::now();
        cluster.kill(service, 0);
        kills.push((service, killed));
        tokio::time::sleep(Duration::from_secs(2)).await;
        cluster.spawn(service, 0);
        cluster.listening(service, 0).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let outcomes = load.stop().await;
    eprintln!(
        "kills: {} calls answered, {} failed, {} writes given up: {:?}",
        outcomes.answered,
        outcomes.failures.len(),
        outcomes.given_up,
        outcomes
            .failures
            .iter()
            .map(|(_, what, code, message)| format!("{what} {code:?} {message}"))
            .collect::<Vec<_>>()
    );
    assert!(outcomes.answered > 100, "the load ran");
    assert_eq!(
        outcomes.given_up, 0,
        "the retry of a write lost in flight takes its dead process's claim over"
    );
    // Only writes in flight on the process killed may fail — whether they
    // took effect is unknown; the client retries with the request id —:
    // UNAVAILABLE, at most one per worker per kill, right after the kill.
    // Reads are sent again to the other replica.
    for (at, what, code, message) in &outcomes.failures {
        assert_eq!(*code, Code::Unavailable, "{what}: {message}");
        assert!(
            matches!(*what, "CreateProject" | "SubmitRun"),
            "a read failed: {what}: {message}"
        );
        let (service, killed) = kills
            .iter()
            .rev()
            .find(|(_, killed)| killed <= at)
            .unwrap_or_else(|| panic!("{what} failed before any kill: {message}"));
        assert!(
            at.duration_since(*killed) < Duration::from_secs(2),
            "{what} failed {:?} after {service} was killed: {message}",
            at.duration_since(*killed)
        );
    }
    assert!(outcomes.failures.len() <= WORKERS * BACKENDS.len());
    acknowledged_writes_are_all_there(&gateways[1], &owner, &outcomes).await;
}

/// Every project and run acknowledged to the load is stored.
async fn acknowledged_writes_are_all_there(gateway: &Channel, owner: &str, outcomes: &Outcomes) {
    let mut projects = ProjectServiceClient::with_interceptor(gateway.clone(), Bearer::new(owner));
    for name in &outcomes.projects {
        projects
            .get_project(orgplane_proto::organizations::GetProjectRequest {
                organization: ORG.into(),
                project: name.clone(),
            })
            .await
            .unwrap_or_else(|status| panic!("project {name} acknowledged, then lost: {status:?}"));
    }
    let mut runs = RunServiceClient::with_interceptor(gateway.clone(), Bearer::new(owner));
    for uuid in &outcomes.runs {
        runs.get_run(orgplane_proto::agents::GetRunRequest {
            organization: ORG.into(),
            run: uuid.clone(),
        })
        .await
        .unwrap_or_else(|status| panic!("run {uuid} acknowledged, then lost: {status:?}"));
    }
}

async fn rolling_restarts_fail_no_call(cluster: &mut Cluster, gateways: &[Channel]) {
    let owner = login(&gateways[0], "owner").await;
    let load = Load::start(&cluster.gateways(), &owner, "roll").await;
    for service in BACKENDS.into_iter().chain(["gateway"]) {
        for replica in 0..REPLICAS {
            cluster.terminate(service, replica).await;
            cluster.spawn(service, replica);
            cluster.listening(service, replica).await;
            // Ready to serve (migrations are done by then) and found again
            // by its peers' probes.
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    let outcomes = load.stop().await;
    eprintln!(
        "rolling restart: {} calls answered, {} failed",
        outcomes.answered,
        outcomes.failures.len()
    );
    assert!(outcomes.answered > 100, "the load ran");
    assert_eq!(outcomes.given_up, 0, "no write lost in flight");
    assert!(
        outcomes.failures.is_empty(),
        "failed during the rolling restart: {:?}",
        outcomes
            .failures
            .iter()
            .map(|(_, what, code, message)| format!("{what} {code:?} {message}"))
            .collect::<Vec<_>>()
    );
    acknowledged_writes_are_all_there(&cluster.gateway(0).await, &owner, &outcomes).await;
}

//! The control plane in the multi-process layout (`orgplane serve` per
//! service, as in production): the agents service is killed (`SIGKILL`)
//! while runs are leased, restarted, and nothing is lost — leases survive,
//! renewals and reports go on, expired leases come back, every run is
//! handed out and finished exactly once, and the activity of a change made
//! just before the kill reaches the feed after the restart. On SQLite, and on PostgreSQL where
//! the tests' database is configured.

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use orgplane_e2e::{Bearer, channel, postgres_url, unique_schema_prefix};
use orgplane_proto::{
    agents::{
        AcquireRunsRequest, Connection, CreateConnectionRequest, GetRunRequest, RenewLeaseRequest,
        ReportRunStatusRequest, Run, SubmitRunRequest,
        connection_service_client::ConnectionServiceClient, run_service_client::RunServiceClient,
    },
    organizations::{ListActivitiesRequest, activity_service_client::ActivityServiceClient},
};
use tonic::{Code, service::interceptor::InterceptedService, transport::Channel};

mod support;

use support::{BIN, acme_with_an_agent, certs_init, signed_up, when_up};

/// One `orgplane serve` process per service, killed on drop.
struct Processes {
    data_dir: PathBuf,
    database: Vec<String>,
    identity: String,
    organizations: String,
    agents: String,
    gateway: String,
    children: Vec<(&'static str, Child)>,
}

impl Processes {
    fn start(data_dir: &Path, database: Vec<String>) -> Self {
        certs_init(data_dir);
        let mut p = Self {
            data_dir: data_dir.to_owned(),
            database,
            identity: orgplane_e2e::free_port(),
            organizations: orgplane_e2e::free_port(),
            agents: orgplane_e2e::free_port(),
            gateway: orgplane_e2e::free_port(),
            children: Vec::new(),
        };
        for service in ["identity", "organizations", "agents", "gateway"] {
            p.spawn(service);
        }
        p
    }

    fn spawn(&mut self, service: &'static str) {
        let listen = match service {
            "identity" => &self.identity,
            "organizations" => &self.organizations,
            "agents" => &self.agents,
            _ => &self.gateway,
        };
        // Each service takes only the flags it honours: its peers, and a
        // database unless it is the gateway.
        let peers: &[(&str, &str)] = match service {
            "identity" => &[("--organizations-addr", &self.organizations)],
            "organizations" => &[
                ("--identity-addr", &self.identity),
                ("--agents-addr", &self.agents),
            ],
            "agents" => &[
                ("--identity-addr", &self.identity),
                ("--organizations-addr", &self.organizations),
            ],
            _ => &[
                ("--identity-addr", &self.identity),
                ("--organizations-addr", &self.organizations),
                ("--agents-addr", &self.agents),
            ],
        };
        let database: &[String] = if service == "gateway" {
            &[]
        } else {
            &self.database
        };
        let child = Command::new(BIN)
            .args(["serve", service, "--data-dir"])
            .arg(&self.data_dir)
            .args(database)
            .args(["--listen", listen])
            .args(peers.iter().flat_map(|(flag, addr)| [*flag, *addr]))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        self.children.push((service, child));
    }

    /// `SIGKILL`: no shutdown, no flush, no goodbye.
    fn kill(&mut self, service: &str) {
        let at = self
            .children
            .iter()
            .position(|(name, _)| *name == service)
            .unwrap();
        let (_, mut child) = self.children.remove(at);
        child.kill().unwrap();
        child.wait().unwrap();
    }

    async fn gateway(&self) -> Channel {
        channel(&format!("http://{}", self.gateway)).await
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

type Runs = RunServiceClient<InterceptedService<Channel, Bearer>>;

async fn acquire(runs: &mut Runs, n: i32, lease: Duration) -> Vec<Run> {
    runs.acquire_runs(AcquireRunsRequest {
        organization: "acme".into(),
        agent: "box".into(),
        max_runs: n,
        lease_duration: Some(prost_types::Duration::try_from(lease).unwrap()),
    })
    .await
    .unwrap()
    .into_inner()
    .runs
}

async fn finish(runs: &mut Runs, run: &Run) {
    runs.report_run_status(ReportRunStatusRequest {
        organization: "acme".into(),
        run: run.uuid.clone(),
        status: "succeeded".into(),
        lease: run.lease.as_ref().unwrap().id.clone(),
        message: String::new(),
    })
    .await
    .unwrap();
}

async fn killing_the_agents_service_loses_nothing(database: Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let mut p = Processes::start(dir.path(), database);
    let gateway = p.gateway().await;
    let token = signed_up(&gateway, "owner").await;
    let bearer = || Bearer::new(&token);
    let agent_token = acme_with_an_agent(&gateway, &token).await;
    let mut people = RunServiceClient::with_interceptor(gateway.clone(), bearer());
    let mut submitted = HashSet::new();
    for i in 0..20 {
        let run = people
            .submit_run(SubmitRunRequest {
                request_id: String::new(),
                organization: "acme".into(),
                project: "vision".into(),
                queue: "box/q".into(),
                name: format!("r{i}"),
                spec: None,
            })
            .await
            .unwrap()
            .into_inner()
            .run
            .unwrap();
        submitted.insert(run.uuid);
    }
    let mut agent = RunServiceClient::with_interceptor(gateway.clone(), Bearer::new(&agent_token));
    let held = acquire(&mut agent, 3, Duration::from_secs(120)).await;
    let dropped = acquire(&mut agent, 2, Duration::from_secs(2)).await;
    assert_eq!((held.len(), dropped.len()), (3, 2));

    // A change, and the process dies at once: its activity waits in the
    // outbox, committed with the change, and is shipped after the restart.
    ConnectionServiceClient::with_interceptor(gateway.clone(), bearer())
        .create_connection(CreateConnectionRequest {
            request_id: String::new(),
            organization: "acme".into(),
            connection: Some(Connection {
                name: "last-words".into(),
                kind: "git".into(),
                schema: Some(orgplane_platform::json::json_to_struct(
                    &serde_json::json!({"url": "https://example.com/r.git"}),
                )),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    p.kill("agents");
    let down = agent
        .acquire_runs(AcquireRunsRequest {
            organization: "acme".into(),
            agent: "box".into(),
            max_runs: 1,
            lease_duration: None,
        })
        .await;
    assert_eq!(
        down.unwrap_err().code(),
        Code::Unavailable,
        "the service is down"
    );
    p.spawn("agents");

    // The leases held survive the restart: renewals and reports go on.
    for run in &held {
        let renewed = when_up("renew after restart", || {
            let mut agent = agent.clone();
            let request = RenewLeaseRequest {
                organization: "acme".into(),
                run: run.uuid.clone(),
                lease: run.lease.as_ref().unwrap().id.clone(),
                lease_duration: None,
            };
            async move { agent.renew_lease(request).await }
        })
        .await
        .into_inner()
        .run
        .unwrap();
        assert_eq!(renewed.status, "leased");
        finish(&mut agent, run).await;
    }
    // The leases let go come back once expired; the rest waited.
    let seen_dropped = people
        .get_run(GetRunRequest {
            organization: "acme".into(),
            run: dropped[0].uuid.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .run
        .unwrap();
    assert_eq!(seen_dropped.status, "leased");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut handed_out: Vec<String> = held.iter().map(|r| r.uuid.clone()).collect();
    loop {
        let leased = acquire(&mut agent, 10, Duration::from_secs(120)).await;
        if leased.is_empty() {
            break;
        }
        for run in &leased {
            if dropped.iter().any(|d| d.uuid == run.uuid) {
                assert_eq!(run.attempts, 2, "re-delivered after the restart");
            }
            finish(&mut agent, run).await;
            handed_out.push(run.uuid.clone());
        }
    }
    let unique: HashSet<String> = handed_out.iter().cloned().collect();
    assert_eq!(unique.len(), handed_out.len(), "no run finished twice");
    assert_eq!(unique, submitted, "every run finished, none lost");

    // The feed holds every change once: the connection made just before
    // the kill, 20 submissions, 20 successes.
    let feed = ActivityServiceClient::with_interceptor(gateway.clone(), bearer());
    let count = |filter: &'static str| {
        let mut feed = feed.clone();
        async move {
            feed.list_activities(ListActivitiesRequest {
                organization: "acme".into(),
                filter: filter.into(),
                page_size: 1,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .total_size
        }
    };
    let start = Instant::now();
    while count("action:succeeded").await < 20 || count("subject_kind:connection").await < 1 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "activities not shipped"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        count("subject_kind:connection").await,
        1,
        "last-words, once"
    );
    assert_eq!(count("action:submitted").await, 20);
    assert_eq!(count("action:succeeded").await, 20);
}

#[tokio::test]
async fn killing_the_agents_service_with_runs_leased_loses_nothing_on_sqlite() {
    killing_the_agents_service_loses_nothing(Vec::new()).await;
}

#[tokio::test]
async fn killing_the_agents_service_with_runs_leased_loses_nothing_on_postgresql() {
    let Some(url) = postgres_url() else { return };
    let prefix = unique_schema_prefix();
    killing_the_agents_service_loses_nothing(vec![
        "--database-url".into(),
        url.clone(),
        "--schema-prefix".into(),
        prefix.clone(),
    ])
    .await;
    for service in ["identity", "organizations", "agents"] {
        orgplane_storage::db::drop_schema(&url, &format!("{prefix}{service}"))
            .await
            .unwrap();
    }
}

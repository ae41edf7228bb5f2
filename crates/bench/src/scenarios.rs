//! The scenarios: what each one calls, as whom, and how its figures are
//! taken. Each returns [`Row`]s for the report.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use futures::future::join_all;
use orgplane_proto::{
    agents::{
        AcquireRunsRequest, Agent, CreateAgentRequest, CreateQueueRequest, Queue,
        ReportRunStatusRequest, SubmitRunRequest, agent_service_client::AgentServiceClient,
        queue_service_client::QueueServiceClient, run_service_client::RunServiceClient,
    },
    identity::user_service_client::UserServiceClient,
    identity::{GetCurrentUserRequest, auth_service_client::AuthServiceClient},
    organizations::{
        CreateProjectRequest, GetOrganizationRequest, ListProjectsRequest, Project,
        WatchActivitiesRequest, activity_service_client::ActivityServiceClient,
        organization_service_client::OrganizationServiceClient,
        project_service_client::ProjectServiceClient,
    },
};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use orgplane_proto::prost::Message as _;

use crate::{
    h2load::{Call, H2load},
    load::{Load, Outcome, connect, drive},
    procs::Processes,
    session::{ORGANIZATION, Session, login},
};

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Row {
    /// What was measured.
    pub scenario: String,
    /// `baseline`, `dev` or `multi-process`.
    pub layout: String,
    /// `sqlite`, `postgresql` or `-`.
    pub database: String,
    /// Streams in flight.
    pub in_flight: usize,
    /// The calls.
    pub outcome: Outcome,
    /// CPU seconds of the processes under test per 1,000 calls.
    pub cpu_per_1k: f64,
    /// Resident memory of the processes under test right after, MiB.
    pub rss_after: f64,
    /// Loaded by h2load rather than this harness (compared with the
    /// baselines h2load measured).
    pub by_h2load: bool,
}

/// What is under test: its processes (for CPU), its layout and database.
pub struct Target<'a> {
    /// The processes whose CPU time counts.
    pub processes: &'a Processes,
    /// `baseline`, `dev` or `multi-process`.
    pub layout: &'a str,
    /// `sqlite`, `postgresql` or `-`.
    pub database: &'a str,
}

impl Target<'_> {
    /// Runs `measure` and makes its row, charging the processes' CPU time
    /// over the whole run (warm-up included) to the measured calls in
    /// proportion to the time measured.
    async fn row(
        &self,
        scenario: &str,
        load: Load,
        measure: impl Future<Output = Outcome>,
    ) -> anyhow::Result<Row> {
        let cpu_before = self.processes.cpu()?;
        let started = std::time::Instant::now();
        let outcome = measure.await;
        let wall = started.elapsed().as_secs_f64();
        let cpu = (self.processes.cpu()? - cpu_before).as_secs_f64();
        let measured_share = outcome.elapsed.as_secs_f64() / wall.max(1e-9);
        let calls = outcome.requests.max(1) as f64;
        Ok(Row {
            scenario: scenario.to_owned(),
            layout: self.layout.to_owned(),
            database: self.database.to_owned(),
            in_flight: load.in_flight(),
            cpu_per_1k: cpu * measured_share / calls * 1000.0,
            rss_after: self.processes.rss()?,
            outcome,
            by_h2load: false,
        })
    }
}

/// The bare echo (`grpc.health.v1.Health/Check`) at `addr`.
pub async fn echo(target: &Target<'_>, name: &str, addr: &str, load: Load) -> anyhow::Result<Row> {
    let clients: Vec<_> = connect(addr, load.connections)
        .await?
        .into_iter()
        .map(HealthClient::new)
        .collect();
    let measure = drive(load, &clients, |mut client, _| async move {
        client.check(HealthCheckRequest::default()).await.map(drop)
    });
    target.row(name, load, measure).await
}

/// `call` loaded by h2load, as the row `name` (compared with h2load's
/// baselines).
async fn row_from_h2load(
    target: &Target<'_>,
    name: &str,
    load: Load,
    h2load: &H2load,
    call: Call<'_>,
) -> anyhow::Result<Row> {
    let mut row = target.row(name, load, h2load.measure(&call, load)).await?;
    row.by_h2load = true;
    Ok(row)
}

/// The bare echo at `addr`, loaded by h2load.
pub async fn echo_from_h2load(
    target: &Target<'_>,
    name: &str,
    addr: &str,
    load: Load,
    h2load: &H2load,
) -> anyhow::Result<Row> {
    let request = HealthCheckRequest::default();
    let answer = HealthClient::new(connect(addr, 1).await?.remove(0))
        .check(request.clone())
        .await?
        .into_inner();
    let call = Call {
        addr,
        path: "/grpc.health.v1.Health/Check",
        request: request.encode_to_vec(),
        authorization: None,
        response_len: answer.encoded_len(),
    };
    row_from_h2load(target, name, load, h2load, call).await
}

/// The authenticated and the authorized read (those of `wanted`), loaded
/// by h2load on the gateway at `gateway`, as the member. One call through
/// this harness first tells the size of a successful answer.
pub async fn reads_from_h2load(
    target: &Target<'_>,
    session: &Session,
    gateway: &str,
    load: Load,
    h2load: &H2load,
    wanted: impl Fn(&str) -> bool,
) -> anyhow::Result<Vec<Row>> {
    let authorization = format!("Bearer {}", session.member);
    let mut rows = Vec::new();
    if wanted("auth-read") {
        let request = GetCurrentUserRequest {};
        let answer = session
            .client(&session.member, UserServiceClient::new)
            .get_current_user(request)
            .await?
            .into_inner();
        let call = Call {
            addr: gateway,
            path: "/orgplane.identity.v1.UserService/GetCurrentUser",
            request: request.encode_to_vec(),
            authorization: Some(&authorization),
            response_len: answer.encoded_len(),
        };
        let name = "authenticated read (GetCurrentUser), h2load";
        rows.push(row_from_h2load(target, name, load, h2load, call).await?);
    }
    if wanted("authz-read") {
        let request = GetOrganizationRequest {
            organization: ORGANIZATION.into(),
        };
        let answer = session
            .client(&session.member, OrganizationServiceClient::new)
            .get_organization(request.clone())
            .await?
            .into_inner();
        let call = Call {
            addr: gateway,
            path: "/orgplane.organizations.v1.OrganizationService/GetOrganization",
            request: request.encode_to_vec(),
            authorization: Some(&authorization),
            response_len: answer.encoded_len(),
        };
        let name = "authorized read (GetOrganization, member), h2load";
        rows.push(row_from_h2load(target, name, load, h2load, call).await?);
    }
    Ok(rows)
}

/// `GetCurrentUser`: the gateway checks the token (cached) and identity
/// answers from its database.
pub async fn authenticated_read(
    target: &Target<'_>,
    session: &Session,
    load: Load,
) -> anyhow::Result<Row> {
    let clients = session.clients(&session.member, UserServiceClient::new);
    let measure = drive(load, &clients, |mut client, _| async move {
        client
            .get_current_user(GetCurrentUserRequest {})
            .await
            .map(drop)
    });
    target
        .row("authenticated read (GetCurrentUser)", load, measure)
        .await
}

/// `GetOrganization` as a member: authorization, then a database read.
pub async fn authorized_read(
    target: &Target<'_>,
    session: &Session,
    load: Load,
) -> anyhow::Result<Row> {
    let clients = session.clients(&session.member, OrganizationServiceClient::new);
    let measure = drive(load, &clients, |mut client, _| async move {
        client
            .get_organization(GetOrganizationRequest {
                organization: ORGANIZATION.into(),
            })
            .await
            .map(drop)
    });
    target
        .row("authorized read (GetOrganization, member)", load, measure)
        .await
}

/// `ListProjects`, 20 a page, from `page_token` (empty: page 1).
pub async fn list_projects(
    target: &Target<'_>,
    session: &Session,
    load: Load,
    name: &str,
    page_token: String,
) -> anyhow::Result<Row> {
    let clients = session.clients(&session.member, ProjectServiceClient::new);
    let page_token = Arc::new(page_token);
    let measure = drive(load, &clients, move |mut client, _| {
        let page_token = page_token.clone();
        async move {
            let page = client
                .list_projects(ListProjectsRequest {
                    organization: ORGANIZATION.into(),
                    page_size: 20,
                    page_token: page_token.to_string(),
                    ..Default::default()
                })
                .await?
                .into_inner();
            if page.projects.len() != 20 {
                return Err(tonic::Status::internal(format!(
                    "a page of {} projects",
                    page.projects.len()
                )));
            }
            Ok(())
        }
    });
    target.row(name, load, measure).await
}

/// How many `WatchActivities` streams the fan-out opens, and how many
/// changes a second it makes.
#[derive(Debug, Clone, Copy)]
pub struct FanOut {
    /// Open streams, all on the organization's feed.
    pub watchers: usize,
    /// `CreateProject` calls a second, each one activity.
    pub changes_per_second: u32,
}

/// The fan-out: `watchers` streams on the organization's feed (ten for
/// each of its administrators) while the
/// owner makes `changes_per_second` projects for `load.duration`. A row's
/// calls are deliveries (one change reaching one stream), its latencies
/// from the change's call to its arrival on the stream, its errors the
/// deliveries missing 5 s after the last change (and failed streams); its
/// CPU is per 1,000 deliveries. Also says how much resident memory each
/// open stream costs.
pub async fn fan_out(
    target: &Target<'_>,
    session: &Session,
    load: Load,
    fan_out: FanOut,
) -> anyhow::Result<Row> {
    use std::{collections::HashMap, sync::Mutex, time::Instant};

    // Each administrator holds this many streams open (the gateway allows
    // 16 per principal).
    const STREAMS_PER_MEMBER: usize = 10;
    let members = session
        .watchers(fan_out.watchers.div_ceil(STREAMS_PER_MEMBER))
        .await?;
    let rss_before = target.processes.rss()?;
    let made: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let mut streams = Vec::with_capacity(fan_out.watchers);
    for w in 0..fan_out.watchers {
        let member = &members[w / STREAMS_PER_MEMBER];
        let connection = w % session.channels.len();
        let mut client = session.clients(member, ActivityServiceClient::new)[connection].clone();
        let stream = client
            .watch_activities(WatchActivitiesRequest {
                organization: ORGANIZATION.into(),
                ..Default::default()
            })
            .await?
            .into_inner();
        streams.push(stream);
    }
    // Settle, then what the open streams hold.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let per_stream_kib =
        (target.processes.rss()? - rss_before) * 1024.0 / fan_out.watchers.max(1) as f64;
    let cpu_before = target.processes.cpu()?;
    let changes = (load.duration.as_secs_f64() * f64::from(fan_out.changes_per_second)) as u64;
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = streams
        .into_iter()
        .map(|mut stream| {
            let (made, stop) = (made.clone(), stop.clone());
            tokio::spawn(async move {
                let mut outcome = Outcome::default();
                while outcome.requests < changes && !stop.load(Ordering::Relaxed) {
                    let message =
                        tokio::time::timeout(Duration::from_millis(200), stream.message()).await;
                    let activity = match message {
                        Err(_) => continue,
                        Ok(Ok(Some(message))) => message.activity.unwrap_or_default(),
                        Ok(Ok(None)) => break,
                        Ok(Err(status)) => {
                            outcome.errors += 1;
                            outcome.first_error.get_or_insert(status.to_string());
                            break;
                        }
                    };
                    let Some(at) = made.lock().unwrap().get(&activity.subject_name).copied() else {
                        continue;
                    };
                    outcome.requests += 1;
                    let micros = at.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                    outcome.latencies.push(micros);
                }
                outcome
            })
        })
        .collect();
    let mut owner = session.client(&session.owner, ProjectServiceClient::new);
    let started = std::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1) / fan_out.changes_per_second);
    let mut failed_writes = 0;
    for n in 0..changes {
        tick.tick().await;
        let name = format!("fan-{n}");
        made.lock().unwrap().insert(name.clone(), Instant::now());
        let made = owner
            .create_project(CreateProjectRequest {
                request_id: String::new(),
                organization: ORGANIZATION.into(),
                project: Some(Project {
                    name,
                    ..Default::default()
                }),
            })
            .await;
        failed_writes += u64::from(made.is_err());
    }
    let elapsed = started.elapsed();
    let waited = tokio::time::timeout(Duration::from_secs(5), async {
        while !tasks.iter().all(|task| task.is_finished()) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let wall = started.elapsed();
    let mut outcome = Outcome::default();
    for task in tasks {
        let delivered = task.await?;
        outcome.errors += delivered.errors;
        if outcome.first_error.is_none() {
            outcome.first_error = delivered.first_error;
        }
        outcome.requests += delivered.requests;
        outcome.latencies.extend(delivered.latencies);
    }
    let expected = changes * fan_out.watchers as u64;
    let missing = expected.saturating_sub(outcome.requests) + failed_writes;
    if waited.is_err() || missing > 0 {
        outcome.errors += missing;
        outcome.first_error.get_or_insert(format!(
            "{missing} of {expected} deliveries missing 5 s after the last change ({failed_writes} writes failed)"
        ));
    }
    outcome.elapsed = elapsed;
    outcome.latencies.sort_unstable();
    let cpu = (target.processes.cpu()? - cpu_before).as_secs_f64();
    let scenario = format!(
        "fan-out (deliveries/s; {} changes/s to {} WatchActivities streams, {:.0} KiB RSS a stream)",
        fan_out.changes_per_second, fan_out.watchers, per_stream_kib
    );
    eprintln!(
        "fan-out: {:.1} ms of CPU per change ({:.1} µs per delivery), {wall:.1?} in all",
        cpu * 1000.0 / changes.max(1) as f64,
        cpu * 1e6 / outcome.requests.max(1) as f64
    );
    Ok(Row {
        scenario,
        layout: target.layout.to_owned(),
        database: target.database.to_owned(),
        in_flight: fan_out.watchers,
        cpu_per_1k: cpu / outcome.requests.max(1) as f64 * 1000.0,
        rss_after: target.processes.rss()?,
        outcome,
        by_h2load: false,
    })
}

/// `CreateProject`: a write, with its activity, in one transaction.
pub async fn create_project(
    target: &Target<'_>,
    session: &Session,
    load: Load,
) -> anyhow::Result<Row> {
    let clients = session.clients(&session.owner, ProjectServiceClient::new);
    let measure = drive(load, &clients, |mut client, n| async move {
        client
            .create_project(CreateProjectRequest {
                request_id: String::new(),
                organization: ORGANIZATION.into(),
                project: Some(Project {
                    name: format!("w-{n}"),
                    ..Default::default()
                }),
            })
            .await
            .map(drop)
    });
    target.row("write (CreateProject)", load, measure).await
}

/// Agents in the run admission scenario.
pub const AGENTS: usize = 8;
/// Runs submitted but not yet done, at most: the submitters wait above it
/// (the cycle's throughput, not how deep a queue can grow).
const BACKLOG: u64 = 2_000;

/// The run admission cycle: `load` submits runs round-robin to the queues
/// of 8 agents, each agent leases up to 32 at a time and reports each
/// done. The row counts runs completed; its latencies are `SubmitRun`'s.
pub async fn run_admission(
    target: &Target<'_>,
    session: &Session,
    load: Load,
) -> anyhow::Result<Row> {
    let mut projects = session.client(&session.owner, ProjectServiceClient::new);
    projects
        .create_project(CreateProjectRequest {
            request_id: String::new(),
            organization: ORGANIZATION.into(),
            project: Some(Project {
                name: "runs".into(),
                ..Default::default()
            }),
        })
        .await?;
    let mut agent_tokens = Vec::new();
    for i in 0..AGENTS {
        let agent = format!("agent-{i}");
        let created = session
            .client(&session.owner, AgentServiceClient::new)
            .create_agent(CreateAgentRequest {
                request_id: String::new(),
                organization: ORGANIZATION.into(),
                agent: Some(Agent {
                    name: agent.clone(),
                    ..Default::default()
                }),
            })
            .await?
            .into_inner();
        session
            .client(&session.owner, QueueServiceClient::new)
            .create_queue(CreateQueueRequest {
                request_id: String::new(),
                organization: ORGANIZATION.into(),
                agent: agent.clone(),
                queue: Some(Queue {
                    name: "q".into(),
                    ..Default::default()
                }),
            })
            .await?;
        agent_tokens.push((agent, created.token));
    }
    let submitted = Arc::new(AtomicU64::new(0));
    let completed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut agents = Vec::new();
    for (i, (agent, token)) in agent_tokens.into_iter().enumerate() {
        let mut runs = session
            .clients(&token, RunServiceClient::new)
            .swap_remove(i % session.channels.len());
        let (completed, stop) = (completed.clone(), stop.clone());
        agents.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let leased = runs
                    .acquire_runs(AcquireRunsRequest {
                        organization: ORGANIZATION.into(),
                        agent: agent.clone(),
                        max_runs: 32,
                        lease_duration: None,
                    })
                    .await?
                    .into_inner()
                    .runs;
                if leased.is_empty() {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    continue;
                }
                let reports = leased.iter().map(|run| {
                    let mut runs = runs.clone();
                    async move {
                        runs.report_run_status(ReportRunStatusRequest {
                            organization: ORGANIZATION.into(),
                            run: run.uuid.clone(),
                            status: "succeeded".into(),
                            lease: run.lease.as_ref().map(|l| l.id.clone()).unwrap_or_default(),
                            message: String::new(),
                        })
                        .await
                    }
                });
                for report in join_all(reports).await {
                    report?;
                    completed.fetch_add(1, Ordering::Relaxed);
                }
            }
            anyhow::Ok(())
        }));
    }
    let clients = session.clients(&session.owner, RunServiceClient::new);
    let submitting = {
        let (submitted, completed) = (submitted.clone(), completed.clone());
        drive(load, &clients, move |mut client, n| {
            let (submitted, completed) = (submitted.clone(), completed.clone());
            async move {
                while submitted.load(Ordering::Relaxed)
                    > completed.load(Ordering::Relaxed) + BACKLOG
                {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                client
                    .submit_run(SubmitRunRequest {
                        request_id: String::new(),
                        organization: ORGANIZATION.into(),
                        project: "runs".into(),
                        queue: format!("agent-{}/q", n as usize % AGENTS),
                        name: String::new(),
                        spec: None,
                    })
                    .await?;
                submitted.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
        })
    };
    // Runs completed in the measured window (after the warm-up).
    let counting = {
        let completed = completed.clone();
        async move {
            tokio::time::sleep((load.duration / 5).min(Duration::from_secs(2))).await;
            let before = completed.load(Ordering::Relaxed);
            tokio::time::sleep(load.duration).await;
            completed.load(Ordering::Relaxed) - before
        }
    };
    let measure = async {
        let (mut outcome, runs) = tokio::join!(submitting, counting);
        outcome.requests = runs;
        outcome
    };
    let row = target
        .row(
            &format!("run admission (runs/s; submit → acquire → done, {AGENTS} agents)"),
            load,
            measure,
        )
        .await;
    stop.store(true, Ordering::Relaxed);
    for agent in agents {
        agent.await??;
    }
    row
}

/// `Login` at its natural rate (Argon2id on the identity service's hashing
/// threads) from `logins` streams: first alone, then while `load` reads
/// `GetCurrentUser`. A row for the logins alone, one for the logins beside
/// the reads and one for those reads.
pub async fn logins(
    target: &Target<'_>,
    session: &Session,
    load: Load,
    logins: Load,
) -> anyhow::Result<Vec<Row>> {
    let auth: Vec<_> = session
        .channels
        .iter()
        .cloned()
        .map(AuthServiceClient::new)
        .collect();
    let log_in = |mut client: AuthServiceClient<_>, _| async move {
        client.login(login("member")).await.map(drop)
    };
    let alone = target
        .row(
            "Login alone (natural rate)",
            logins,
            drive(logins, &auth, log_in),
        )
        .await?;
    let logging_in = drive(logins, &auth, log_in);
    let readers = session.clients(&session.member, UserServiceClient::new);
    let reading = drive(load, &readers, |mut client, _| async move {
        client
            .get_current_user(GetCurrentUserRequest {})
            .await
            .map(drop)
    });
    let cpu_before = target.processes.cpu()?;
    let started = std::time::Instant::now();
    let (logged_in, read) = tokio::join!(logging_in, reading);
    let share = load.duration.as_secs_f64() / started.elapsed().as_secs_f64();
    let cpu = (target.processes.cpu()? - cpu_before).as_secs_f64() * share;
    // The CPU of the window goes to the logins: reads cost far less.
    let calls = logged_in.requests.max(1) as f64;
    Ok(vec![
        alone,
        Row {
            scenario: "Login while reads run (CPU includes the reads)".into(),
            layout: target.layout.into(),
            database: target.database.into(),
            in_flight: logins.in_flight(),
            cpu_per_1k: cpu / calls * 1000.0,
            rss_after: target.processes.rss()?,
            outcome: logged_in,
            by_h2load: false,
        },
        Row {
            scenario: "authenticated read while logins run".into(),
            layout: target.layout.into(),
            database: target.database.into(),
            in_flight: load.in_flight(),
            cpu_per_1k: f64::NAN,
            rss_after: target.processes.rss()?,
            outcome: read,
            by_h2load: false,
        },
    ])
}

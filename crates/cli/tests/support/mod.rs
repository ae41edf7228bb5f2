//! What the tests of `orgplane` processes share: the binary, certificates,
//! children that die with the test, `SIGTERM`, and waiting for a process to
//! listen or to exit.

// Each test file uses part of it.
#![allow(dead_code)]

use std::{
    path::Path,
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_orgplane");

/// `orgplane certs init` in `dir`.
pub fn certs_init(dir: &Path) {
    let status = Command::new(BIN)
        .args(["certs", "init", "--data-dir"])
        .arg(dir)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "orgplane certs init");
}

/// A child process killed when dropped: a failed test leaves none behind
/// (it would also hold the test's output open).
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends `SIGTERM` to `child`.
pub fn terminate(child: &Child) {
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
}

/// Waits for `child` to exit, at most `bound` (then kills it and fails).
pub async fn exit_within(child: &mut Child, bound: Duration) -> ExitStatus {
    let stopping = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if stopping.elapsed() > bound {
            let _ = child.kill();
            panic!("did not stop within {bound:?} of SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `addr` takes connections, at most 60 s, failing early if
/// `child` exits meanwhile; `what` names it in failures.
pub async fn listening(addr: &str, mut child: Option<&mut Child>, what: &str) {
    let started = Instant::now();
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        if let Some(child) = child.as_mut() {
            assert!(
                child.try_wait().unwrap().is_none(),
                "{what} exited before listening"
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{what} never listened"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `GET path` on `addr` over HTTP/1.1: the status code and the body.
pub async fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// Retries `call` while the processes come up — a backend not listening
/// yet (`UNAVAILABLE`), a gateway whose peers are not found yet (`UNKNOWN`,
/// `INTERNAL`, `UNIMPLEMENTED`) — for at most 90 s.
pub async fn when_up<T, F, Fut>(what: &str, mut call: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    use tonic::Code;

    let start = Instant::now();
    loop {
        match call().await {
            Ok(value) => return value,
            Err(status) if start.elapsed() < Duration::from_secs(90) => {
                assert!(
                    matches!(
                        status.code(),
                        Code::Unavailable | Code::Unimplemented | Code::Unknown | Code::Internal
                    ),
                    "{what}: {status:?}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(status) => panic!("{what}: not up within 90 s: {status:?}"),
        }
    }
}

/// The password of every user the process tests sign up.
pub const PASSWORD: &str = "a long enough password";

/// `username` signs up (retried while the processes come up) and logs in:
/// its access token.
pub async fn signed_up(gateway: &tonic::transport::Channel, username: &str) -> String {
    use orgplane_proto::identity::{SignUpRequest, auth_service_client::AuthServiceClient};

    when_up("sign up", || {
        let mut auth = AuthServiceClient::new(gateway.clone());
        let request = SignUpRequest {
            username: username.into(),
            email: format!("{username}@example.com"),
            password: PASSWORD.into(),
            display_name: String::new(),
        };
        async move { auth.sign_up(request).await }
    })
    .await;
    login(gateway, username).await
}

/// `username` logs in: its access token.
pub async fn login(gateway: &tonic::transport::Channel, username: &str) -> String {
    use orgplane_proto::identity::{LoginRequest, auth_service_client::AuthServiceClient};

    AuthServiceClient::new(gateway.clone())
        .login(LoginRequest {
            username: username.into(),
            password: PASSWORD.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .access_token
}

/// Through `gateway`, as `owner` (a token): the organization `acme`, its
/// project `vision`, the agent `box` and its queue `q`, each retried while
/// the processes come up. The agent's token.
pub async fn acme_with_an_agent(gateway: &tonic::transport::Channel, owner: &str) -> String {
    use orgplane_e2e::Bearer;
    use orgplane_proto::{
        agents::{
            Agent, CreateAgentRequest, CreateQueueRequest, Queue,
            agent_service_client::AgentServiceClient, queue_service_client::QueueServiceClient,
        },
        organizations::{
            CreateOrganizationRequest, CreateProjectRequest, Organization, Project,
            organization_service_client::OrganizationServiceClient,
            project_service_client::ProjectServiceClient,
        },
    };

    let bearer = || Bearer::new(owner);
    when_up("create organization", || {
        let mut orgs = OrganizationServiceClient::with_interceptor(gateway.clone(), bearer());
        async move {
            orgs.create_organization(CreateOrganizationRequest {
                request_id: String::new(),
                organization: Some(Organization {
                    name: "acme".into(),
                    ..Default::default()
                }),
            })
            .await
        }
    })
    .await;
    ProjectServiceClient::with_interceptor(gateway.clone(), bearer())
        .create_project(CreateProjectRequest {
            request_id: String::new(),
            organization: "acme".into(),
            project: Some(Project {
                name: "vision".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let agent_token = when_up("create agent", || {
        let mut agents = AgentServiceClient::with_interceptor(gateway.clone(), bearer());
        async move {
            agents
                .create_agent(CreateAgentRequest {
                    request_id: String::new(),
                    organization: "acme".into(),
                    agent: Some(Agent {
                        name: "box".into(),
                        ..Default::default()
                    }),
                })
                .await
        }
    })
    .await
    .into_inner()
    .token;
    QueueServiceClient::with_interceptor(gateway.clone(), bearer())
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
    agent_token
}

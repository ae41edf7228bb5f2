//! The gateway: routing, authentication, rate limits, deadlines, reflection,
//! health, gRPC-Web and graceful shutdown.

use std::time::Duration;

use futures::StreamExt;
use orgplane_e2e::{TestStack, channel, expect_code, expect_reason, stream_end};
use orgplane_identity::domain::accounts::NewUser;
use orgplane_proto::{
    PUBLIC_SERVICES,
    agents::{ListAgentsRequest, agent_service_client::AgentServiceClient},
    identity::{
        GetCurrentUserRequest, IntrospectTokenRequest, LoginRequest,
        identity_internal_client::IdentityInternalClient, user_service_client::UserServiceClient,
    },
};
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::{Code, metadata::MetadataValue};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};

#[tokio::test]
async fn internal_services_are_never_routed_and_missing_backends_are_unimplemented() {
    let t = TestStack::start().await;
    let token = t.user("ops").await;
    let mut internal = IdentityInternalClient::new(t.gateway.clone());
    let mut request = tonic::Request::new(IntrospectTokenRequest {
        token: token.clone(),
    });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    expect_code(
        internal.introspect_token(request).await,
        Code::Unimplemented,
    );

    // A gateway deployed without the agents backend says so.
    let mut config = orgplane_gateway::GatewayConfig::default();
    config.backends.insert(
        orgplane_proto::Backend::Identity,
        t.stack.identity_addr.to_string(),
    );
    let gateway =
        orgplane_gateway::grpc_server(&config, &t.stack.certs.load("gateway").unwrap(), None)
            .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(gateway.serve(listener, std::future::pending()));
    let mut agents = AgentServiceClient::with_interceptor(
        channel(&format!("http://{addr}")).await,
        orgplane_e2e::Bearer::new(&token),
    );
    let status = expect_code(
        agents.list_agents(ListAgentsRequest::default()).await,
        Code::Unimplemented,
    );
    assert!(status.message().contains("agents"), "{status:?}");
}

#[tokio::test]
async fn a_forged_principal_header_is_dropped() {
    let t = TestStack::start().await;
    t.user("victim").await;
    let forged = orgplane_platform::principal::Principal {
        kind: orgplane_platform::principal::PrincipalKind::User,
        uuid: "01900000-0000-7000-8000-000000000000".into(),
        name: "victim".into(),
        scopes: vec!["*".into()],
        instance_admin: true,
        token_uuid: String::new(),
        organization: None,
        email: String::new(),
        email_verified: false,
        role: None,
        organization_uuid: None,
        auth_method: String::new(),
    };
    let mut users = UserServiceClient::new(t.gateway.clone());
    let mut request = tonic::Request::new(GetCurrentUserRequest {});
    request.metadata_mut().insert_bin(
        "x-orgplane-principal-bin",
        MetadataValue::from_bytes(&forged.to_proto().encode_to_vec()),
    );
    expect_reason(
        users.get_current_user(request).await,
        Code::Unauthenticated,
        "MISSING_CREDENTIALS",
    );
}

#[tokio::test]
async fn health_and_reflection_describe_every_public_service() {
    let t = TestStack::start().await;
    let status = HealthClient::new(t.gateway.clone())
        .check(HealthCheckRequest {
            service: "orgplane.identity.v1.AuthService".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status();
    assert_eq!(status, ServingStatus::Serving);

    let mut reflection = ServerReflectionClient::new(t.gateway.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = reflection
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let reply = stream.next().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = reply.message_response else {
        panic!("unexpected reflection reply");
    };
    let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    for (service, _) in PUBLIC_SERVICES {
        assert!(
            names.iter().any(|n| n == service),
            "{service} missing: {names:?}"
        );
    }
    assert!(names.iter().all(|n| !n.ends_with("Internal")), "{names:?}");
    assert!(names.iter().any(|n| n == "grpc.health.v1.Health"));
}

#[tokio::test]
async fn rate_limits_apply_per_principal() {
    let t = TestStack::start_with(|_, gateway| {
        gateway.rate_limit_per_second = 1;
        gateway.rate_limit_burst = 1;
    })
    .await;
    let mut tokens = Vec::new();
    for name in ["busy", "calm"] {
        t.stack
            .identity
            .sign_up(NewUser {
                username: name.into(),
                email: format!("{name}@example.com"),
                password: "long enough".into(),
                display_name: String::new(),
            })
            .await
            .unwrap();
        tokens.push(
            t.stack
                .identity
                .login(name, "long enough")
                .await
                .unwrap()
                .token,
        );
    }
    t.users_as(&tokens[0])
        .get_current_user(GetCurrentUserRequest {})
        .await
        .unwrap();
    expect_reason(
        t.users_as(&tokens[0])
            .get_current_user(GetCurrentUserRequest {})
            .await,
        Code::ResourceExhausted,
        "RATE_LIMITED",
    );
    t.users_as(&tokens[1])
        .get_current_user(GetCurrentUserRequest {})
        .await
        .expect("another principal has its own budget");
}

/// Issue 15, item 6: calls take from their client address's bucket before
/// the token is looked up, so one address cannot make identity look up
/// random tokens without bound (900 were never throttled before); tokens
/// already known keep working.
#[tokio::test]
async fn an_address_sending_bad_tokens_is_throttled_before_lookups() {
    let t = TestStack::start().await;
    let known = t.user("known").await;
    t.users_as(&known)
        .get_current_user(GetCurrentUserRequest {})
        .await
        .unwrap();
    let (mut unauthenticated, mut limited) = (0, 0);
    for n in 0..300 {
        let answer = t
            .users_as(&format!("ops_random-{n}"))
            .get_current_user(GetCurrentUserRequest {})
            .await;
        match answer.map_err(|s| s.code()) {
            Err(Code::Unauthenticated) => unauthenticated += 1,
            Err(Code::ResourceExhausted) => limited += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        limited >= 200,
        "{unauthenticated} looked up, {limited} refused before a lookup"
    );
    // The known token's answer is cached: it works from the same address.
    t.users_as(&known)
        .get_current_user(GetCurrentUserRequest {})
        .await
        .expect("a cached token still works");
}

#[tokio::test]
async fn the_address_limit_comes_before_authentication() {
    let t = TestStack::start_with(|_, gateway| {
        gateway.address_rate_limit_per_second = 1;
        gateway.address_rate_limit_burst = 1;
    })
    .await;
    let login = LoginRequest {
        username: "nobody".into(),
        password: "long enough".into(),
    };
    expect_code(t.auth().login(login.clone()).await, Code::Unauthenticated);
    // The same address again, with a token this time: refused before the
    // token is looked at.
    expect_reason(
        t.users_as("ops_anything")
            .get_current_user(GetCurrentUserRequest {})
            .await,
        Code::ResourceExhausted,
        "RATE_LIMITED",
    );
}

#[tokio::test]
async fn calls_without_a_deadline_get_the_default_one() {
    let t = TestStack::start_with(|_, gateway| {
        gateway.default_deadline = Duration::from_millis(1);
    })
    .await;
    t.stack
        .identity
        .sign_up(NewUser {
            username: "slow".into(),
            email: "slow@example.com".into(),
            password: "long enough".into(),
            display_name: String::new(),
        })
        .await
        .unwrap();
    let login = || LoginRequest {
        username: "slow".into(),
        password: "long enough".into(),
    };
    expect_code(t.auth().login(login()).await, Code::DeadlineExceeded);
    let mut request = tonic::Request::new(login());
    request.set_timeout(Duration::from_secs(10));
    t.auth()
        .login(request)
        .await
        .expect("a caller's own deadline wins");
}

/// Frames a protobuf message as gRPC(-Web) does: flag, length, bytes.
fn frame(message: &impl Message) -> Vec<u8> {
    let body = message.encode_to_vec();
    let mut out = vec![0u8];
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// Decodes an HTTP/1.1 chunked body.
fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(line_end) = body.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(std::str::from_utf8(&body[..line_end]).unwrap().trim(), 16)
                .unwrap();
        if size == 0 {
            return out;
        }
        let start = line_end + 2;
        out.extend_from_slice(&body[start..start + size]);
        body = &body[start + size + 2..];
    }
}

#[tokio::test]
async fn grpc_web_calls_pass_through() {
    let t = TestStack::start().await;
    let token = t.user("webby").await;
    let body = frame(&GetCurrentUserRequest {});
    let request = format!(
        "POST /orgplane.identity.v1.UserService/GetCurrentUser HTTP/1.1\r\nHost: {}\r\n\
         Content-Type: application/grpc-web+proto\r\nX-Grpc-Web: 1\r\nAuthorization: Bearer {token}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        t.stack.gateway_addr,
        body.len()
    );
    let mut socket = tokio::net::TcpStream::connect(t.stack.gateway_addr)
        .await
        .unwrap();
    socket.write_all(request.as_bytes()).await.unwrap();
    socket.write_all(&body).await.unwrap();
    let mut response = Vec::new();
    socket.read_to_end(&mut response).await.unwrap();
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&response[..split]).to_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("application/grpc-web"), "{head}");
    let raw = &response[split + 4..];
    let payload = if head.contains("transfer-encoding: chunked") {
        dechunk(raw)
    } else {
        raw.to_vec()
    };
    assert_eq!(payload[0], 0, "first frame is data");
    let len = u32::from_be_bytes(payload[1..5].try_into().unwrap()) as usize;
    let reply =
        orgplane_proto::identity::GetCurrentUserResponse::decode(&payload[5..5 + len]).unwrap();
    assert_eq!(reply.user.unwrap().username, "webby");
    let trailers = &payload[5 + len..];
    assert_eq!(trailers[0], 0x80, "then the trailers frame");
    let text = String::from_utf8_lossy(&trailers[5..]).to_lowercase();
    assert!(text.contains("grpc-status:0"), "{text}");
}

/// A request over the largest message a backend takes is refused before it
/// is sent (the channel reads requests whole to resend them), and the
/// gateway goes on serving.
#[tokio::test]
async fn a_request_over_the_message_limit_is_refused_before_it_is_sent() {
    let t = TestStack::start().await;
    let huge = LoginRequest {
        username: "someone".into(),
        password: "x".repeat(orgplane_transport::client::MAX_REQUEST_BYTES),
    };
    expect_code(t.auth().login(huge).await, Code::ResourceExhausted);
    t.user("after").await;
}

#[tokio::test]
async fn graceful_shutdown_completes_in_flight_calls() {
    let t = TestStack::start().await;
    for i in 0..12 {
        t.stack
            .identity
            .sign_up(NewUser {
                username: format!("drain-{i}"),
                email: format!("drain-{i}@example.com"),
                password: "long enough".into(),
                display_name: String::new(),
            })
            .await
            .unwrap();
    }
    let TestStack {
        stack,
        gateway,
        dir: _dir,
    } = t;
    let addr = stack.gateway_addr;
    let calls: Vec<_> = (0..12)
        .map(|i| {
            let mut auth = orgplane_proto::identity::auth_service_client::AuthServiceClient::new(
                gateway.clone(),
            );
            tokio::spawn(async move {
                auth.login(LoginRequest {
                    username: format!("drain-{i}"),
                    password: "long enough".into(),
                })
                .await
            })
        })
        .collect();
    // Argon2 runs two at a time: most logins are still in flight now.
    tokio::time::sleep(Duration::from_millis(30)).await;
    stack.stop().await.unwrap();
    for call in calls {
        call.await
            .unwrap()
            .expect("an in-flight call completes during shutdown");
    }
    let mut late = orgplane_proto::identity::auth_service_client::AuthServiceClient::new(
        channel(&format!("http://{addr}")).await,
    );
    late.login(LoginRequest {
        username: "drain-0".into(),
        password: "long enough".into(),
    })
    .await
    .expect_err("no new calls after shutdown");
}

/// Issue 15, item 9: a stream has no end of its own; graceful shutdown ends
/// it at once with `UNAVAILABLE` (the client reconnects) instead of waiting
/// for it (the gateway's calls may run for an hour), and stops within the
/// drain timeout.
#[tokio::test]
async fn graceful_shutdown_closes_open_streams_within_the_drain_timeout() {
    let t = TestStack::start().await;
    let owner = t.user("owner").await;
    t.create_organization(&owner, "acme").await;
    let mut stream = t
        .activities_as(&owner)
        .watch_activities(orgplane_proto::organizations::WatchActivitiesRequest {
            organization: "acme".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let TestStack {
        stack,
        gateway: _gateway,
        dir: _dir,
    } = t;
    let started = std::time::Instant::now();
    tokio::time::timeout(orgplane_transport::server::DRAIN_TIMEOUT, stack.stop())
        .await
        .expect("shutdown ends within the drain timeout")
        .unwrap();
    eprintln!("stopped in {:?} with a stream open", started.elapsed());
    // Activities stored before the stop (the organization's own, relayed
    // by the outbox whenever it runs) may come first; then the end.
    let ended = stream_end(&mut stream, Duration::from_secs(5))
        .await
        .expect("the stream was ended, not left hanging");
    assert_eq!(ended.unwrap_err().code(), Code::Unavailable);
}

/// Issue 15, item 18: clients that ask for large pages and stop reading
/// must not stall the gateway's shared connection to the backend for
/// everyone else. Four clients each leave a ~2 MB `ListProjects` page
/// unread; another caller's reads through the same gateway and backend
/// still answer at once.
#[tokio::test]
async fn clients_that_stop_reading_do_not_stall_other_callers() {
    use orgplane_proto::organizations::{
        self as org_pb, project_service_client::ProjectServiceClient,
    };
    let t = TestStack::start_with(|_, gateway| {
        gateway.rate_limit_per_second = 100_000;
        gateway.rate_limit_burst = 100_000;
    })
    .await;
    let owner = t.user("owner").await;
    t.create_organization(&owner, "acme").await;
    let description = "d".repeat(2000);
    let creations = (0..1000).map(|i| {
        let mut projects = t.projects_as(&owner);
        let description = description.clone();
        async move {
            projects
                .create_project(org_pb::CreateProjectRequest {
                    request_id: String::new(),
                    organization: "acme".into(),
                    project: Some(org_pb::Project {
                        name: format!("p{i:04}"),
                        description,
                        ..Default::default()
                    }),
                })
                .await
                .unwrap();
        }
    });
    futures::stream::iter(creations)
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    // The request body of ListProjects(acme, page_size 1000), gRPC-framed.
    let request = org_pb::ListProjectsRequest {
        organization: "acme".into(),
        page_size: 1000,
        ..Default::default()
    }
    .encode_to_vec();
    let mut framed = vec![0u8];
    framed.extend_from_slice(&(request.len() as u32).to_be_bytes());
    framed.extend_from_slice(&request);
    let gateway = t.stack.gateway_addr;
    let mut stalled = Vec::new();
    for _ in 0..4 {
        let tcp = tokio::net::TcpStream::connect(gateway).await.unwrap();
        let (mut client, connection) = h2::client::handshake(tcp).await.unwrap();
        tokio::spawn(connection);
        let request = http::Request::post(format!(
            "http://{gateway}/orgplane.organizations.v1.ProjectService/ListProjects"
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("authorization", format!("Bearer {owner}"))
        .body(())
        .unwrap();
        let (response, mut body) = client.send_request(request, false).unwrap();
        body.send_data(bytes::Bytes::from(framed.clone()), true)
            .unwrap();
        // The response is never read: its flow-control window stays full.
        stalled.push((client, response));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = std::time::Instant::now();
    for _ in 0..5 {
        let mut projects: ProjectServiceClient<_> = t.projects_as(&owner);
        tokio::time::timeout(
            Duration::from_secs(5),
            projects.list_projects(org_pb::ListProjectsRequest {
                organization: "acme".into(),
                page_size: 10,
                ..Default::default()
            }),
        )
        .await
        .expect("another caller is not stalled by the unread pages")
        .unwrap();
    }
    eprintln!(
        "5 reads beside 4 unread 2 MB pages took {:?}",
        started.elapsed()
    );
    drop(stalled);
}

/// Sends one raw HTTP/1.1 request and returns the response's head, lower
/// case.
async fn http1_head(addr: std::net::SocketAddr, request: &str, body: &[u8]) -> String {
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    socket.write_all(request.as_bytes()).await.unwrap();
    socket.write_all(body).await.unwrap();
    let mut response = Vec::new();
    socket.read_to_end(&mut response).await.unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(response.len());
    String::from_utf8_lossy(&response[..split]).to_lowercase()
}

fn preflight(addr: std::net::SocketAddr, origin: &str) -> String {
    format!(
        "OPTIONS /orgplane.identity.v1.AuthService/Login HTTP/1.1\r\nHost: {addr}\r\n\
         Origin: {origin}\r\nAccess-Control-Request-Method: POST\r\n\
         Access-Control-Request-Headers: content-type,x-grpc-web,x-user-agent,authorization\r\n\
         Connection: close\r\n\r\n"
    )
}

/// A browser may call from the listed origins only: their preflight is
/// answered with the origin, the gRPC-Web headers and the status headers a
/// page may read; any other origin's is not, and neither is anyone's
/// when no origin is listed.
#[tokio::test]
async fn browsers_may_call_from_the_listed_origins_only() {
    let t = TestStack::start_with(|_, gateway| {
        gateway.cors_origins =
            orgplane_transport::layers::cors::CorsOrigins::parse(&["http://console.test:8080"])
                .unwrap();
    })
    .await;
    let addr = t.stack.gateway_addr;

    let allowed = http1_head(addr, &preflight(addr, "http://console.test:8080"), &[]).await;
    assert!(allowed.starts_with("http/1.1 200"), "{allowed}");
    assert!(
        allowed.contains("access-control-allow-origin: http://console.test:8080"),
        "{allowed}"
    );
    assert!(
        allowed.contains("access-control-allow-methods: post"),
        "{allowed}"
    );
    for header in [
        "content-type",
        "x-grpc-web",
        "x-user-agent",
        "authorization",
    ] {
        let allow_headers = allowed
            .lines()
            .find(|line| line.starts_with("access-control-allow-headers:"))
            .unwrap_or_default();
        assert!(allow_headers.contains(header), "{header}: {allowed}");
    }
    for other in [
        "http://evil.test",
        "http://console.test:8081",
        "https://console.test:8080",
    ] {
        let refused = http1_head(addr, &preflight(addr, other), &[]).await;
        assert!(
            !refused.contains("access-control-allow-origin"),
            "{other}: {refused}"
        );
    }

    // The call itself: the page may read the status headers.
    let token = t.user("browser").await;
    let body = frame(&GetCurrentUserRequest {});
    let call = format!(
        "POST /orgplane.identity.v1.UserService/GetCurrentUser HTTP/1.1\r\nHost: {addr}\r\n\
         Origin: http://console.test:8080\r\nContent-Type: application/grpc-web+proto\r\n\
         X-Grpc-Web: 1\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    let head = http1_head(addr, &call, &body).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        head.contains("access-control-allow-origin: http://console.test:8080"),
        "{head}"
    );
    assert!(head.contains("grpc-status-details-bin"), "exposed: {head}");

    let without = TestStack::start().await;
    let addr = without.stack.gateway_addr;
    let head = http1_head(addr, &preflight(addr, "http://console.test:8080"), &[]).await;
    assert!(!head.contains("access-control-allow-origin"), "{head}");
}

/// The head of a gRPC-Web `GetCurrentUser` without a token (which the
/// gateway refuses before forwarding) announcing `content_length` bytes.
fn tokenless_grpc_web_head(addr: std::net::SocketAddr, content_length: usize) -> String {
    format!(
        "POST /orgplane.identity.v1.UserService/GetCurrentUser HTTP/1.1\r\nHost: {addr}\r\n\
         Content-Type: application/grpc-web+proto\r\nX-Grpc-Web: 1\r\n\
         Content-Length: {content_length}\r\n\r\n"
    )
}

/// What the gateway answers next on `reader` (within 5 s), lower-cased.
async fn read_answer(reader: &mut (impl tokio::io::AsyncRead + Unpin)) -> String {
    let mut response = vec![0; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), reader.read(&mut response))
        .await
        .expect("an answer within 5 s")
        .unwrap();
    String::from_utf8_lossy(&response[..n]).to_lowercase()
}

/// A gRPC-Web call the gateway refuses before forwarding it (here: no
/// token) leaves its HTTP/1.1 connection usable, even when its body comes
/// in after the refusal was decided: browsers and Node reuse keep-alive
/// connections, and a connection closed under them fails their next call
/// with a network error instead of its status.
#[tokio::test]
async fn a_refused_grpc_web_call_leaves_its_connection_usable() {
    let t = TestStack::start().await;
    let addr = t.stack.gateway_addr;
    let body = frame(&GetCurrentUserRequest {});
    let head = tokenless_grpc_web_head(addr, body.len());
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    for call in 0..2 {
        socket.write_all(head.as_bytes()).await.unwrap();
        // The body follows once the gateway has looked at the head.
        tokio::time::sleep(Duration::from_millis(100)).await;
        socket
            .write_all(&body)
            .await
            .unwrap_or_else(|err| panic!("call {call}: the connection was closed: {err}"));
        let answer = read_answer(&mut socket).await;
        assert!(answer.starts_with("http/1.1 200"), "call {call}: {answer}");
        assert!(answer.contains("grpc-status: 16"), "call {call}: {answer}");
    }
}

/// The drain of a refused call is bounded: a body announced but never sent,
/// or larger than the drain reads, still gets its refusal at once (within
/// the drain's second), and the gateway holds none of it.
#[tokio::test]
async fn a_refused_call_with_a_huge_or_missing_body_is_answered_within_the_drain_bound() {
    let t = TestStack::start().await;
    let addr = t.stack.gateway_addr;
    for (announced, sent) in [(10 << 20, 0), (2 << 20, 2 << 20)] {
        let head = tokenless_grpc_web_head(addr, announced);
        let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
        socket.write_all(head.as_bytes()).await.unwrap();
        let (mut reader, mut writer) = socket.into_split();
        let sending = tokio::spawn(async move {
            // The gateway may close the connection before all is sent.
            let _ = writer.write_all(&vec![0; sent]).await;
            writer
        });
        let started = std::time::Instant::now();
        let answer = read_answer(&mut reader).await;
        assert!(answer.contains("grpc-status: 16"), "{announced}: {answer}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{announced}: answered after {:?}",
            started.elapsed()
        );
        drop(sending.await);
    }
}

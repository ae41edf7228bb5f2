//! `orgplane serve <service>` and `orgplane dev` as an operator runs them:
//! each service takes only the flags it honours; on `SIGTERM` it reports
//! `NOT_SERVING` while still accepting calls for its drain delay, then stops
//! cleanly — server, purger and activity shipper —, even with its peers
//! absent; `dev` answers its first `Login` once the admin exists.

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

mod support;

use support::{BIN, Running, certs_init, exit_within, http_get, listening, terminate};

#[test]
fn a_flag_a_service_would_ignore_is_refused() {
    for args in [
        &["serve", "registry", "--rate-limit", "5"][..],
        &["serve", "identity", "--max-run-attempts", "2"],
        &["serve", "gateway", "--database-url", "postgres://x"],
        &["serve", "agents", "--allow-signup", "false"],
        &["serve", "registry", "--cors-origin", "https://a.test"],
        &["dev", "--tls-cert", "cert.pem", "--tls-key", "key.pem"],
        &["dev", "--registry-addr", "127.0.0.1:1"],
    ] {
        let output = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("unexpected argument"), "{args:?}: {stderr}");
    }
}

#[test]
fn settings_out_of_range_are_refused() {
    for args in [
        &["serve", "registry", "--database-connections", "1"][..],
        &["serve", "registry", "--database-connections", "1001"],
        &["serve", "registry", "--database-connections", "-1"],
        &["serve", "registry", "--database-read-connections", "1001"],
        &["serve", "registry", "--database-read-connections", "-1"],
        &["serve", "registry", "--metrics-listen", "not an address"],
        &["serve", "gateway", "--metrics-listen", "127.0.0.1:99999"],
        &["certs", "kubernetes", "--namespace", "a\nkind: Pod"],
        &["serve", "gateway", "--cors-origin", "*"],
        &["dev", "--cors-origin", "https://console.example.com/"],
        &["dev", "--cors-origin", "console.example.com"],
    ] {
        let output = Command::new(BIN).args(args).output().unwrap();
        assert!(!output.status.success(), "{args:?}");
        assert!(output.stdout.is_empty(), "{args:?}: nothing printed");
    }
}

#[test]
fn a_cors_origin_that_is_not_one_says_what_an_origin_is() {
    let output = Command::new(BIN)
        .args(["dev", "--cors-origin", "https://console.example.com/app"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--cors-origin"), "{stderr}");
    assert!(stderr.contains("scheme://host[:port]"), "{stderr}");
}

#[tokio::test]
async fn every_service_stops_on_sigterm_with_its_background_work() {
    let dir = tempfile::tempdir().unwrap();
    certs_init(dir.path());
    for service in ["identity", "organizations", "registry", "agents", "gateway"] {
        let listen = orgplane_e2e::free_port();
        let mut running = Running(
            Command::new(BIN)
                .args(["serve", service, "--data-dir"])
                .arg(dir.path())
                .args(["--listen", &listen, "--drain-delay-secs", "0"])
                .env("RUST_LOG", "error")
                .stdout(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let child = &mut running.0;
        listening(&listen, Some(child), service).await;
        // Its peers are absent: the purger and shipper are failing and
        // retrying, and must still stop.
        tokio::time::sleep(Duration::from_millis(300)).await;
        terminate(child);
        let status = exit_within(child, Duration::from_secs(15)).await;
        assert!(status.success(), "{service} stopped with {status}");
    }
}

#[tokio::test]
async fn on_sigterm_health_turns_not_serving_while_calls_are_still_accepted() {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };

    let dir = tempfile::tempdir().unwrap();
    certs_init(dir.path());
    let listen = orgplane_e2e::free_port();
    let mut running = Running(
        Command::new(BIN)
            .args(["serve", "gateway", "--data-dir"])
            .arg(dir.path())
            .args(["--listen", &listen, "--drain-delay-secs", "2"])
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let child = &mut running.0;
    let url = format!("http://{listen}");
    let status = |channel: tonic::transport::Channel| async move {
        HealthClient::new(channel)
            .check(HealthCheckRequest::default())
            .await
            .map(|r| r.into_inner().status())
    };
    let connected = orgplane_e2e::channel(&url).await;
    orgplane_e2e::eventually(Duration::from_secs(60), "SERVING once up", || {
        let connected = connected.clone();
        async move { status(connected).await.ok() == Some(ServingStatus::Serving) }
    })
    .await;

    terminate(child);
    let terminated = Instant::now();
    orgplane_e2e::eventually(Duration::from_secs(1), "NOT_SERVING at once", || {
        let connected = connected.clone();
        async move { status(connected).await.ok() == Some(ServingStatus::NotServing) }
    })
    .await;
    // Still accepting: a new connection is answered during the delay.
    assert_eq!(
        status(orgplane_e2e::channel(&url).await).await.unwrap(),
        ServingStatus::NotServing
    );
    let exit = exit_within(child, Duration::from_secs(15)).await;
    assert!(exit.success(), "stopped with {exit}");
    assert!(
        terminated.elapsed() >= Duration::from_secs(2),
        "it served through its drain delay"
    );
}

#[tokio::test]
async fn dev_answers_its_first_login_with_the_admin_created() {
    use orgplane_proto::identity::{LoginRequest, auth_service_client::AuthServiceClient};

    let dir = tempfile::tempdir().unwrap();
    let listen = orgplane_e2e::free_port();
    let mut running = Running(
        Command::new(BIN)
            .args(["dev", "--data-dir"])
            .arg(dir.path())
            .args(["--listen", &listen])
            .env("ORGPLANE_ADMIN_PASSWORD", "first login password")
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let child = &mut running.0;
    // Call from the moment the port takes connections: the first answer
    // must be the admin's session, not "no such user".
    listening(&listen, Some(child), "dev").await;
    let login = AuthServiceClient::new(orgplane_e2e::channel(&format!("http://{listen}")).await)
        .login(LoginRequest {
            username: "admin".into(),
            password: "first login password".into(),
        })
        .await;
    assert!(login.is_ok(), "the first login: {login:?}");
    terminate(child);
    let exit = exit_within(child, Duration::from_secs(15)).await;
    assert!(exit.success(), "stopped with {exit}");
}

/// The operations port: probes that follow readiness (200 once up, 503
/// while draining), and Prometheus metrics — per-method calls by code and
/// latency (a made-up path counted as `unknown`, not by its name), and the
/// database pool of a backend.
#[tokio::test]
async fn the_operations_port_serves_probes_and_metrics() {
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

    let dir = tempfile::tempdir().unwrap();
    certs_init(dir.path());
    let (listen, ops) = (orgplane_e2e::free_port(), orgplane_e2e::free_port());
    let mut gateway = Running(
        Command::new(BIN)
            .args(["serve", "gateway", "--data-dir"])
            .arg(dir.path())
            .args(["--listen", &listen, "--metrics-listen", &ops])
            .args(["--drain-delay-secs", "2"])
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    listening(&listen, Some(&mut gateway.0), "gateway").await;
    assert_eq!(http_get(&ops, "/livez").await.unwrap().0, 200);
    assert_eq!(http_get(&ops, "/readyz").await.unwrap().0, 200);
    assert_eq!(http_get(&ops, "/elsewhere").await.unwrap().0, 404);

    let channel = orgplane_e2e::channel(&format!("http://{listen}")).await;
    HealthClient::new(channel.clone())
        .check(HealthCheckRequest::default())
        .await
        .unwrap();
    let made_up = tonic::client::Grpc::new(channel.clone());
    let mut made_up = made_up;
    made_up.ready().await.unwrap();
    let unknown: Result<tonic::Response<()>, tonic::Status> = made_up
        .unary(
            tonic::Request::new(()),
            http::uri::PathAndQuery::from_static("/orgplane.identity.v1.AuthService/MadeUpMethod"),
            tonic_prost::ProstCodec::<(), ()>::default(),
        )
        .await;
    assert!(unknown.is_err());
    let (status, metrics) = http_get(&ops, "/metrics").await.unwrap();
    assert_eq!(status, 200);
    let handled = |service: &str, method: &str, code: &str| {
        metrics.lines().any(|line| {
            line.starts_with("grpc_server_handled_total{")
                && line.contains("server=\"gateway\"")
                && line.contains(&format!("grpc_service=\"{service}\""))
                && line.contains(&format!("grpc_method=\"{method}\""))
                && line.contains(&format!("grpc_code=\"{code}\""))
        })
    };
    assert!(handled("grpc.health.v1.Health", "Check", "OK"), "{metrics}");
    assert!(
        metrics.contains("grpc_server_handling_seconds_bucket{"),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|line| line.starts_with("grpc_server_handled_total{")
                && line.contains("grpc_method=\"unknown\"")),
        "{metrics}"
    );
    assert!(!metrics.contains("MadeUpMethod"), "{metrics}");

    // Stopping: not ready at once, still answering until it exits.
    terminate(&gateway.0);
    orgplane_e2e::eventually(
        Duration::from_secs(1),
        "/readyz 503 once stopping",
        || async { http_get(&ops, "/readyz").await.map(|(code, _)| code).ok() == Some(503) },
    )
    .await;
    let exit = exit_within(&mut gateway.0, Duration::from_secs(15)).await;
    assert!(exit.success(), "stopped with {exit}");

    // A backend reports its database pool.
    let (listen, ops) = (orgplane_e2e::free_port(), orgplane_e2e::free_port());
    let mut agents = Running(
        Command::new(BIN)
            .args(["serve", "agents", "--data-dir"])
            .arg(dir.path())
            .args(["--listen", &listen, "--metrics-listen", &ops])
            .args(["--drain-delay-secs", "0"])
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    listening(&listen, Some(&mut agents.0), "agents").await;
    orgplane_e2e::eventually(Duration::from_secs(10), "the pool's gauges", || async {
        http_get(&ops, "/metrics").await.is_ok_and(|(_, metrics)| {
            metrics.contains(&format!(
                "orgplane_db_pool_max_connections{{service=\"agents\"}} {}",
                orgplane_storage::db::SQLITE_CONNECTIONS
            )) && metrics
                .contains("orgplane_db_pool_connections{service=\"agents\",state=\"idle\"}")
        })
    })
    .await;
    terminate(&agents.0);
    let exit = exit_within(&mut agents.0, Duration::from_secs(15)).await;
    assert!(exit.success(), "stopped with {exit}");
}

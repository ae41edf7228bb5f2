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

use support::{BIN, Running, certs_init, exit_within, listening, terminate};

#[test]
fn a_flag_a_service_would_ignore_is_refused() {
    for args in [
        &["serve", "registry", "--rate-limit", "5"][..],
        &["serve", "identity", "--max-run-attempts", "2"],
        &["serve", "gateway", "--database-url", "postgres://x"],
        &["serve", "agents", "--allow-signup", "false"],
        &["dev", "--tls-cert", "cert.pem", "--tls-key", "key.pem"],
        &["dev", "--registry-addr", "127.0.0.1:1"],
    ] {
        let output = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("unexpected argument"), "{args:?}: {stderr}");
    }
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

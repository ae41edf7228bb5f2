//! `orgplane dev`'s stack: restarts keep data, and the same stack runs on
//! PostgreSQL (one schema per service).

use std::path::Path;

use orgplane::{Stack, StackConfig};
use orgplane_e2e::{channel, init, postgres_url, unique_schema_prefix};
use orgplane_gateway::GatewayConfig;
use orgplane_identity::IdentityConfig;
use orgplane_proto::identity::{
    GetCurrentUserRequest, LoginRequest, SignUpRequest, auth_service_client::AuthServiceClient,
    user_service_client::UserServiceClient,
};

fn config(dir: &Path, database_url: Option<String>, schema_prefix: &str) -> StackConfig {
    StackConfig {
        data_dir: dir.to_owned(),
        database_url,
        schema_prefix: schema_prefix.to_owned(),
        database_connections: orgplane_storage::db::POSTGRES_CONNECTIONS,
        database_read_connections: orgplane_storage::db::POSTGRES_READERS,
        gateway_listen: "127.0.0.1:0".parse().unwrap(),
        metrics_listen: None,
        identity: IdentityConfig::default(),
        gateway: GatewayConfig::default(),
        max_run_attempts: orgplane_agents::domain::admission::DEFAULT_MAX_ATTEMPTS as u32,
        request_timeout: orgplane_transport::server::DEFAULT_REQUEST_TIMEOUT,
        admin: None,
    }
}

async fn sign_up(stack: &Stack, name: &str) {
    AuthServiceClient::new(channel(&format!("http://{}", stack.gateway_addr)).await)
        .sign_up(SignUpRequest {
            username: name.into(),
            email: format!("{name}@example.com"),
            password: "persistent password".into(),
            display_name: String::new(),
        })
        .await
        .unwrap();
}

async fn login_and_whoami(stack: &Stack, name: &str) -> String {
    let gateway = channel(&format!("http://{}", stack.gateway_addr)).await;
    let token = AuthServiceClient::new(gateway.clone())
        .login(LoginRequest {
            username: name.into(),
            password: "persistent password".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .access_token;
    let mut request = tonic::Request::new(GetCurrentUserRequest {});
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    UserServiceClient::new(gateway)
        .get_current_user(request)
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap()
        .username
}

#[tokio::test]
async fn a_second_start_on_the_same_data_dir_keeps_everything() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let first = Stack::start(config(dir.path(), None, "")).await.unwrap();
    sign_up(&first, "durable").await;
    let ca_before = std::fs::read(first.certs.ca_cert()).unwrap();
    first.stop().await.unwrap();

    let second = Stack::start(config(dir.path(), None, "")).await.unwrap();
    assert_eq!(login_and_whoami(&second, "durable").await, "durable");
    assert_eq!(
        std::fs::read(second.certs.ca_cert()).unwrap(),
        ca_before,
        "the CA is kept"
    );
    second.stop().await.unwrap();
}

#[tokio::test]
async fn the_stack_runs_on_postgresql_with_a_schema_per_service() {
    let Some(url) = postgres_url() else { return };
    init();
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique_schema_prefix();
    let first = Stack::start(config(dir.path(), Some(url.clone()), &prefix))
        .await
        .unwrap();
    sign_up(&first, "pguser").await;
    first.stop().await.unwrap();
    let second = Stack::start(config(dir.path(), Some(url.clone()), &prefix))
        .await
        .unwrap();
    assert_eq!(login_and_whoami(&second, "pguser").await, "pguser");
    second.stop().await.unwrap();
    assert!(
        !dir.path().join("identity.db").exists(),
        "nothing went to SQLite"
    );
    for service in ["identity", "organizations"] {
        orgplane_storage::db::drop_schema(&url, &format!("{prefix}{service}"))
            .await
            .unwrap();
    }
}

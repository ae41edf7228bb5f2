//! Test support: a control plane started as `orgplane dev` starts it, in a
//! temporary folder, on ephemeral loopback ports, and generated clients that
//! call it through the gateway as users would.

pub mod catalog;
pub mod oidc;

use std::{future::Future, time::Duration};

use orgplane::{Stack, StackConfig};
use orgplane_gateway::GatewayConfig;
use orgplane_identity::IdentityConfig;
use orgplane_proto::agents::{
    agent_service_client::AgentServiceClient, connection_service_client::ConnectionServiceClient,
    queue_service_client::QueueServiceClient, run_service_client::RunServiceClient,
};
use orgplane_proto::identity::{
    GetCurrentUserRequest, LoginRequest, SignUpRequest, auth_service_client::AuthServiceClient,
    service_account_service_client::ServiceAccountServiceClient,
    token_service_client::TokenServiceClient, user_service_client::UserServiceClient,
};
use orgplane_proto::organizations::{
    CreateOrganizationRequest, CreateTeamRequest, EntityKind, Member, Organization, Team,
    TeamGrant, UpdateMemberRequest, activity_service_client::ActivityServiceClient,
    invitation_service_client::InvitationServiceClient, member_service_client::MemberServiceClient,
    organization_service_client::OrganizationServiceClient,
    project_service_client::ProjectServiceClient, team_service_client::TeamServiceClient,
};
use orgplane_proto::registry::{
    component_hub_service_client::ComponentHubServiceClient,
    model_registry_service_client::ModelRegistryServiceClient,
};
use orgplane_storage::db::{DbTarget, connect_and_migrate, drop_schema};
use prost_types::FieldMask;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use sea_orm_migration::MigratorTrait;
use tonic::{
    Code, Status,
    metadata::MetadataValue,
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Channel, Endpoint},
};

/// The environment variable naming the PostgreSQL database of the tests.
pub const DATABASE_URL_VAR: &str = "ORGPLANE_TEST_DATABASE_URL";

/// The PostgreSQL URL for tests, or `None` (tests on PostgreSQL then skip),
/// except under CI, where a missing database fails the run instead of
/// skipping silently.
pub fn postgres_url() -> Option<String> {
    match std::env::var(DATABASE_URL_VAR)
        .ok()
        .filter(|u| !u.is_empty())
    {
        Some(url) => Some(url),
        None if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{DATABASE_URL_VAR} must be set under CI: PostgreSQL tests may not skip")
        }
        None => {
            eprintln!("{DATABASE_URL_VAR} is unset: skipping the PostgreSQL variant");
            None
        }
    }
}

/// A unique schema prefix for one test on PostgreSQL.
pub fn unique_schema_prefix() -> String {
    format!("t{}_", uuid::Uuid::now_v7().simple())
}

/// An update mask naming `paths`.
pub fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask {
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
    })
}

/// A team's grant of `role` on the entity of `kind` named `name` (`*`: all).
pub fn grant(kind: EntityKind, name: &str, role: &str) -> TeamGrant {
    TeamGrant {
        kind: kind as i32,
        name: name.into(),
        role: role.into(),
    }
}

/// A fresh database for one storage test: a SQLite file in a temporary
/// folder, or a fresh PostgreSQL schema dropped by [`TestDatabase::drop`].
/// [`TestDatabase::target`] names the same database every time, so a test
/// can open it again (a restart).
pub struct TestDatabase {
    target: DbTarget,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    /// A SQLite file of its own.
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temporary folder");
        Self {
            target: DbTarget::Sqlite(dir.path().join("test.db")),
            _dir: Some(dir),
        }
    }

    /// A PostgreSQL schema of its own; `None` (skip) without
    /// `ORGPLANE_TEST_DATABASE_URL`, which CI sets.
    pub fn postgres() -> Option<Self> {
        let url = postgres_url()?;
        Some(Self {
            target: DbTarget::Postgres {
                url,
                schema: format!("{}storage", unique_schema_prefix()),
                connections: orgplane_storage::db::POSTGRES_CONNECTIONS,
                readers: orgplane_storage::db::POSTGRES_READERS,
            },
            _dir: None,
        })
    }

    /// Where the database is.
    pub fn target(&self) -> DbTarget {
        self.target.clone()
    }

    /// The database, migrated by `M`.
    pub async fn open<M: MigratorTrait>(&self) -> DatabaseConnection {
        connect_and_migrate::<M>(&self.target)
            .await
            .expect("migrated test database")
    }

    /// Drops the PostgreSQL schema (a SQLite file goes with its folder).
    pub async fn drop(self) {
        if let DbTarget::Postgres { url, schema, .. } = &self.target {
            drop_schema(url, schema)
                .await
                .expect("drop the test schema");
        }
    }
}

/// A free loopback address (`127.0.0.1:port`) for a process that binds it
/// later (after its migrations). The port is picked below Linux's
/// ephemeral range (32768–60999): a port the kernel hands out (`bind(0)`,
/// outgoing connections) could be taken by another test in between; one
/// outside the range only by another pick — so no port is picked twice in
/// a test process (two picks not bound yet would both look free: the
/// Kubernetes manifests test, drawing dozens at once, once gave two
/// listeners the same port).
pub fn free_port() -> String {
    static PICKED: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    loop {
        let port = 20_000 + (uuid::Uuid::now_v7().as_u128() % 12_000) as u16;
        if !PICKED.lock().unwrap().insert(port) {
            continue;
        }
        if let Ok(listener) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            return listener.local_addr().unwrap().to_string();
        }
    }
}

/// How `stream` ends, after whatever messages come first: `Ok(())` for a
/// clean end, the status it ended with otherwise; `None` if it is still
/// open after `within`.
pub async fn stream_end<T>(
    stream: &mut tonic::Streaming<T>,
    within: Duration,
) -> Option<Result<(), Status>> {
    tokio::time::timeout(within, async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => return Ok(()),
                Err(status) => return Err(status),
            }
        }
    })
    .await
    .ok()
}

/// Installs rustls' crypto provider once per test process.
pub fn init() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A running control plane in a temporary folder.
pub struct TestStack {
    /// The stack.
    pub stack: Stack,
    /// A channel to the gateway.
    pub gateway: Channel,
    /// The data folder (deleted on drop).
    pub dir: tempfile::TempDir,
}

impl TestStack {
    /// Starts on SQLite with default settings.
    pub async fn start() -> Self {
        Self::start_with(|_, _| {}).await
    }

    /// Starts with settings adjusted by `adjust`.
    pub async fn start_with(adjust: impl FnOnce(&mut IdentityConfig, &mut GatewayConfig)) -> Self {
        Self::start_on(None, String::new(), adjust).await
    }

    /// Starts on PostgreSQL in fresh schemas, or `None` where the tests'
    /// database is not configured (see [`postgres_url`]). Drop the schemas
    /// with [`TestStack::drop_schemas`].
    pub async fn start_on_postgres() -> Option<Self> {
        Self::start_on_postgres_with(|_, _| {}).await
    }

    /// [`TestStack::start_on_postgres`] with settings adjusted by `adjust`.
    pub async fn start_on_postgres_with(
        adjust: impl FnOnce(&mut IdentityConfig, &mut GatewayConfig),
    ) -> Option<Self> {
        let url = postgres_url()?;
        let prefix = unique_schema_prefix();
        // Its connections carry the prefix as their application name, so
        // a test can drop them (see [`TestStack::drop_database_connections`]).
        let separator = if url.contains('?') { '&' } else { '?' };
        let url = format!("{url}{separator}application_name={prefix}");
        Some(Self::start_on(Some(url), prefix, adjust).await)
    }

    /// Terminates every PostgreSQL connection of this stack, as a database
    /// restart or a network failure would; how many there were.
    pub async fn drop_database_connections(&self) -> u64 {
        let url = postgres_url().expect("a stack on PostgreSQL");
        let db = sea_orm::Database::connect(&url).await.expect("connect");
        let terminated = db
            .query_one_raw(sea_orm::Statement::from_sql_and_values(
                sea_orm::DbBackend::Postgres,
                "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity \
                 WHERE application_name = $1",
                [self.stack.schema_prefix.clone().into()],
            ))
            .await
            .expect("terminate the stack's connections")
            .and_then(|row| row.try_get::<i64>("", "n").ok())
            .unwrap_or(0);
        db.close().await.ok();
        terminated as u64
    }

    /// Drops the PostgreSQL schemas of a stack from [`TestStack::start_on_postgres`].
    pub async fn drop_schemas(self) {
        let TestStack { stack, .. } = self;
        let (url, prefix) = (stack.database_url.clone(), stack.schema_prefix.clone());
        stack.stop().await.unwrap();
        if let Some(url) = url {
            for service in ["identity", "organizations", "registry", "agents"] {
                orgplane_storage::db::drop_schema(&url, &format!("{prefix}{service}"))
                    .await
                    .unwrap();
            }
        }
    }

    async fn start_on(
        database_url: Option<String>,
        schema_prefix: String,
        adjust: impl FnOnce(&mut IdentityConfig, &mut GatewayConfig),
    ) -> Self {
        init();
        let dir = tempfile::tempdir().expect("temporary folder");
        // The tests' identity providers run on loopback over plain HTTP.
        let mut identity = IdentityConfig {
            allow_insecure_issuers: true,
            ..IdentityConfig::default()
        };
        let mut gateway = GatewayConfig::default();
        adjust(&mut identity, &mut gateway);
        let stack = Stack::start(StackConfig {
            data_dir: dir.path().to_owned(),
            database_url,
            schema_prefix,
            database_connections: orgplane_storage::db::POSTGRES_CONNECTIONS,
            database_read_connections: orgplane_storage::db::POSTGRES_READERS,
            gateway_listen: "127.0.0.1:0".parse().unwrap(),
            metrics_listen: None,
            identity,
            gateway,
            max_run_attempts: orgplane_agents::domain::admission::DEFAULT_MAX_ATTEMPTS as u32,
            request_timeout: orgplane_transport::server::DEFAULT_REQUEST_TIMEOUT,
            admin: None,
        })
        .await
        .expect("starting the stack");
        let gateway = channel(&format!("http://{}", stack.gateway_addr)).await;
        Self {
            stack,
            gateway,
            dir,
        }
    }

    /// An anonymous auth client.
    pub fn auth(&self) -> AuthServiceClient<Channel> {
        AuthServiceClient::new(self.gateway.clone())
    }

    /// An auth client calling with `token`.
    pub fn auth_as(&self, token: &str) -> AuthServiceClient<InterceptedService<Channel, Bearer>> {
        AuthServiceClient::with_interceptor(self.gateway.clone(), Bearer::new(token))
    }

    /// A user client calling with `token`.
    pub fn users_as(&self, token: &str) -> UserServiceClient<InterceptedService<Channel, Bearer>> {
        UserServiceClient::with_interceptor(self.gateway.clone(), Bearer::new(token))
    }

    /// A token client calling with `token`.
    pub fn tokens_as(
        &self,
        token: &str,
    ) -> TokenServiceClient<InterceptedService<Channel, Bearer>> {
        TokenServiceClient::with_interceptor(self.gateway.clone(), Bearer::new(token))
    }

    /// Signs `username` up (email `<username>@example.com`, password
    /// `password-<username>`) and logs in; returns the access token.
    pub async fn user(&self, username: &str) -> String {
        let mut auth = self.auth();
        auth.sign_up(SignUpRequest {
            username: username.into(),
            email: format!("{username}@example.com"),
            password: format!("password-{username}"),
            display_name: String::new(),
        })
        .await
        .expect("sign up");
        auth.login(LoginRequest {
            username: username.into(),
            password: format!("password-{username}"),
        })
        .await
        .expect("log in")
        .into_inner()
        .access_token
    }

    /// Waits until calls with `token` are refused as `UNAUTHENTICATED`, which
    /// must happen within 5 s (the gateway's cache bound); returns how long.
    pub async fn token_dies(&self, token: &str, what: &str) -> Duration {
        eventually(Duration::from_secs(5), what, || {
            let mut users = self.users_as(token);
            async move {
                matches!(
                    users.get_current_user(GetCurrentUserRequest {}).await,
                    Err(s) if s.code() == Code::Unauthenticated
                )
            }
        })
        .await
    }

    /// Makes `username` a member of `organization` with `role`, written
    /// straight to the organizations tables (for tests of roles before a
    /// member can join by invitation).
    pub async fn add_member(&self, organization: &str, username: &str, role: &str) {
        use orgplane_organizations::storage::{members, organizations};
        use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
        let user = orgplane_identity::storage::users::Entity::find()
            .filter(orgplane_identity::storage::users::Column::Username.eq(username))
            .one(self.stack.identity.db())
            .await
            .unwrap()
            .expect("user exists");
        let org = organizations::Entity::find()
            .filter(organizations::Column::Name.eq(organization))
            .one(self.stack.organizations.db())
            .await
            .unwrap()
            .expect("organization exists");
        members::ActiveModel {
            uuid: Set(uuid::Uuid::now_v7().to_string()),
            organization_uuid: Set(org.uuid),
            user_uuid: Set(user.uuid),
            username: Set(username.to_owned()),
            role: Set(role.to_owned()),
            version: Set(1),
            create_time: Set(1),
            update_time: Set(1),
        }
        .insert(self.stack.organizations.db())
        .await
        .unwrap();
    }

    /// An organization client calling with `token`.
    pub fn orgs_as(
        &self,
        token: &str,
    ) -> OrganizationServiceClient<InterceptedService<Channel, Bearer>> {
        OrganizationServiceClient::with_interceptor(self.gateway.clone(), Bearer::new(token))
    }

    /// A project client calling with `token`.
    pub fn projects_as(
        &self,
        token: &str,
    ) -> ProjectServiceClient<InterceptedService<Channel, Bearer>> {
        ProjectServiceClient::with_interceptor(self.gateway.clone(), Bearer::new(token))
    }

    /// An invitation client calling with `token`.
    pub fn invitations_as(
        &self,
        token: &str,
    ) -> InvitationServiceClient<InterceptedService<Channel, Bearer>> {
        InvitationServiceClient::with_interceptor(self.gateway.clone(), Bearer::new(token))
    }

    /// A team client calling with `token`.
    pub fn teams_as(&self, token: &str) -> TeamServiceClient<InterceptedService<Channel, Bearer>> {
        TeamServiceClient::with_interceptor(self.gateway.clone(), Bearer::new(token))
    }

    /// A service account client calling with `token`.
    pub fn service_accounts_as(
        &self,
        token: &str,
    ) -> ServiceAccountServiceClient<InterceptedService<Channel, Bearer>> {
        ServiceAccountServiceClient::with_interceptor(self.gateway.clone(), Bearer::new(token))
    }

    /// Creates the organization `name` (display name `<name> Inc.`) as
    /// `token` (its owner).
    pub async fn create_organization(&self, token: &str, name: &str) -> Organization {
        self.orgs_as(token)
            .create_organization(CreateOrganizationRequest {
                request_id: String::new(),
                organization: Some(Organization {
                    name: name.into(),
                    display_name: format!("{name} Inc."),
                    ..Default::default()
                }),
            })
            .await
            .expect("create organization")
            .into_inner()
            .organization
            .unwrap()
    }

    /// Changes `user`'s role in `organization`, as `token`; the member.
    pub async fn set_member_role(
        &self,
        token: &str,
        organization: &str,
        user: &str,
        role: &str,
    ) -> Result<Member, tonic::Status> {
        self.members_as(token)
            .update_member(UpdateMemberRequest {
                organization: organization.into(),
                member: Some(Member {
                    user: user.into(),
                    role: role.into(),
                    ..Default::default()
                }),
                update_mask: mask(&["role"]),
            })
            .await
            .map(|r| r.into_inner().member.unwrap())
    }

    /// Creates team `name` in `organization` with `grants`, as `token`.
    pub async fn create_team(
        &self,
        token: &str,
        organization: &str,
        name: &str,
        grants: Vec<TeamGrant>,
    ) -> Team {
        self.teams_as(token)
            .create_team(CreateTeamRequest {
                request_id: String::new(),
                organization: organization.into(),
                team: Some(Team {
                    name: name.into(),
                    grants,
                    ..Default::default()
                }),
            })
            .await
            .expect("create team")
            .into_inner()
            .team
            .unwrap()
    }

    /// A model registry client calling with `token`.
    pub fn models_as(
        &self,
        token: &str,
    ) -> ModelRegistryServiceClient<InterceptedService<Channel, Bearer>> {
        ModelRegistryServiceClient::with_interceptor(self.gateway.clone(), Bearer::new(token))
    }

    /// A component hub client calling with `token`.
    pub fn components_as(
        &self,
        token: &str,
    ) -> ComponentHubServiceClient<InterceptedService<Channel, Bearer>> {
        ComponentHubServiceClient::with_interceptor(self.gateway.clone(), Bearer::new(token))
    }

    /// An agent client calling with `token`.
    pub fn agents_as(
        &self,
        token: &str,
    ) -> AgentServiceClient<InterceptedService<Channel, Bearer>> {
        AgentServiceClient::with_interceptor(self.gateway.clone(), Bearer::new(token))
    }

    /// The callers of a role matrix on `org`: its owner (`owner_token`) and
    /// a new member of every other role.
    pub async fn role_callers(
        &self,
        org: &str,
        owner_token: String,
    ) -> Vec<(Option<orgplane_platform::authz::Role>, String)> {
        use orgplane_platform::authz::Role;
        let mut callers = vec![(Some(Role::Owner), owner_token)];
        for role in Role::ALL.into_iter().filter(|r| *r != Role::Owner) {
            let name = format!("as-{}", role.as_str());
            let token = self.user(&name).await;
            self.add_member(org, &name, role.as_str()).await;
            callers.push((Some(role), token));
        }
        callers
    }

    /// An activity feed client calling with `token`.
    pub fn activities_as(
        &self,
        token: &str,
    ) -> ActivityServiceClient<InterceptedService<Channel, Bearer>> {
        ActivityServiceClient::with_interceptor(self.gateway.clone(), Bearer::new(token))
    }

    /// A run client calling with `token` (a person's or an agent's).
    pub fn runs_as(&self, token: &str) -> RunServiceClient<InterceptedService<Channel, Bearer>> {
        RunServiceClient::with_interceptor(self.gateway.clone(), Bearer::new(token))
    }

    /// A queue client calling with `token`.
    pub fn queues_as(
        &self,
        token: &str,
    ) -> QueueServiceClient<InterceptedService<Channel, Bearer>> {
        QueueServiceClient::with_interceptor(self.gateway.clone(), Bearer::new(token))
    }

    /// A connection client calling with `token`.
    pub fn connections_as(
        &self,
        token: &str,
    ) -> ConnectionServiceClient<InterceptedService<Channel, Bearer>> {
        ConnectionServiceClient::with_interceptor(self.gateway.clone(), Bearer::new(token))
    }

    /// A member client calling with `token`.
    pub fn members_as(
        &self,
        token: &str,
    ) -> MemberServiceClient<InterceptedService<Channel, Bearer>> {
        MemberServiceClient::with_interceptor(self.gateway.clone(), Bearer::new(token))
    }

    /// Logs in as the instance admin (created as `orgplane dev` does).
    pub async fn admin(&self) -> String {
        orgplane::admin::bootstrap_admin(
            &self.stack.identity,
            orgplane::admin::DEV_ADMIN_EMAIL,
            Some("admin-password".into()),
        )
        .await
        .expect("bootstrap admin");
        self.auth()
            .login(LoginRequest {
                username: "admin".into(),
                password: "admin-password".into(),
            })
            .await
            .expect("admin log in")
            .into_inner()
            .access_token
    }
}

/// A lazily connected plaintext channel (h2c) to `url`.
pub async fn channel(url: &str) -> Channel {
    Endpoint::from_shared(url.to_owned())
        .expect("endpoint")
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5))
        .connect_lazy()
}

/// Adds `authorization: Bearer <token>`.
#[derive(Clone)]
pub struct Bearer(MetadataValue<tonic::metadata::Ascii>);

impl Bearer {
    /// For `token`.
    pub fn new(token: &str) -> Self {
        Self(format!("Bearer {token}").parse().expect("ascii token"))
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        req.metadata_mut().insert("authorization", self.0.clone());
        Ok(req)
    }
}

/// Asserts that `result` failed with `code`, and returns the status.
#[track_caller]
pub fn expect_code<T: std::fmt::Debug>(result: Result<T, Status>, code: Code) -> Status {
    match result {
        Err(status) if status.code() == code => status,
        other => panic!("expected {code:?}, got {other:?}"),
    }
}

/// Asserts that `result` failed with `code` and the `ErrorInfo` reason
/// `expected`.
#[track_caller]
pub fn expect_reason<T: std::fmt::Debug>(result: Result<T, Status>, code: Code, expected: &str) {
    let status = expect_code(result, code);
    assert_eq!(reason(&status).as_deref(), Some(expected), "{status:?}");
}

/// The fields of the `BadRequest` violations of `status`.
pub fn violated_fields(status: &Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

/// The `ErrorInfo.reason` of `status`.
pub fn reason(status: &Status) -> Option<String> {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .error_info()
        .map(|i| i.reason.clone())
}

/// Polls `check` every 100 ms until it returns true or `within` passes;
/// returns how long it took. Panics on time-out.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = std::time::Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        if start.elapsed() > within {
            panic!("{what}: not within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What a call needing `permission` answers a caller with `role` (`None`:
/// not in the organization) when it passes authorization and then answers
/// `authorized`: the permission table decides; outsiders and strangers do
/// not see the organization.
pub fn expected_code(
    role: Option<orgplane_platform::authz::Role>,
    permission: orgplane_platform::authz::Permission,
    authorized: Code,
) -> Code {
    use orgplane_platform::authz::{Role, allows};
    match role {
        None | Some(Role::Outsider) => Code::NotFound,
        Some(role) if allows(role, permission) => authorized,
        Some(_) => Code::PermissionDenied,
    }
}

/// Checks a role matrix: each of `rpcs` (name, the permission it needs,
/// what an authorized caller gets), called in `org` by each of `callers`
/// (see [`TestStack::role_callers`]), answers what [`expected_code`] says;
/// and called by `stranger` in an organization that does not exist, it
/// answers `NOT_FOUND` — the same as a foreign one. `call(token, org, rpc)`
/// makes the call and returns its code.
pub async fn check_role_matrix<F, Fut>(
    rpcs: &[(&'static str, orgplane_platform::authz::Permission, Code)],
    callers: &[(Option<orgplane_platform::authz::Role>, String)],
    org: &str,
    stranger: &str,
    call: F,
) where
    F: Fn(String, String, &'static str) -> Fut,
    Fut: Future<Output = Code>,
{
    for (rpc, permission, authorized) in rpcs {
        for (role, token) in callers {
            assert_eq!(
                call(token.clone(), org.to_owned(), rpc).await,
                expected_code(*role, *permission, *authorized),
                "{rpc} as {role:?}"
            );
        }
        assert_eq!(
            call(stranger.to_owned(), "no-such-org".to_owned(), rpc).await,
            Code::NotFound,
            "{rpc}: a missing and a foreign organization look the same"
        );
    }
}

/// How a caller stands towards a restriction in the restriction matrices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Neither listed nor in the admitted team.
    None,
    /// A `member` of the admitted team, which is granted `admin` on the
    /// restricted entity.
    Team,
    /// Listed by name in the restriction.
    Listed,
}

/// One caller of a restriction matrix.
#[derive(Debug, Clone)]
pub struct RestrictionCaller {
    /// Their organization role.
    pub role: orgplane_platform::authz::Role,
    /// How the restriction admits them.
    pub admission: Admission,
    /// Their username (`<role>-<admission>`, the owner `owner`).
    pub name: String,
    /// Their access token.
    pub token: String,
}

/// What a caller with organization `role`, admitted by `admission`, gets
/// for `permission` on a restricted entity (the rules of
/// `docs/permissions.md`): `NOT_FOUND` below `manager` unless admitted;
/// then the effective role decides — the team's `admin` grant bounded by
/// the `member` team role.
pub fn restricted_code(
    role: orgplane_platform::authz::Role,
    admission: Admission,
    permission: orgplane_platform::authz::Permission,
) -> Code {
    use orgplane_platform::authz::{Role, allows};
    if role < Role::Manager && admission == Admission::None {
        return Code::NotFound;
    }
    let effective = match admission {
        Admission::Team => role.max(Role::Member),
        _ => role,
    };
    if effective == Role::Outsider {
        Code::NotFound
    } else if allows(effective, permission) {
        Code::Ok
    } else {
        Code::PermissionDenied
    }
}

impl TestStack {
    /// The callers of a restriction matrix in `org` (owned by `owner`, named
    /// `owner`): a member of every other role × every [`Admission`], those
    /// admitted by team joined to `team` as `member`; and the usernames to
    /// list in the restriction.
    pub async fn restriction_callers(
        &self,
        owner: &str,
        org: &str,
        team: &str,
    ) -> (Vec<RestrictionCaller>, Vec<String>) {
        use orgplane_platform::authz::Role;
        use orgplane_proto::organizations::{AddTeamMemberRequest, TeamMember};
        let mut callers = vec![RestrictionCaller {
            role: Role::Owner,
            admission: Admission::None,
            name: "owner".into(),
            token: owner.to_owned(),
        }];
        let mut listed = Vec::new();
        for role in Role::ALL.into_iter().filter(|r| *r != Role::Owner) {
            for admission in [Admission::None, Admission::Team, Admission::Listed] {
                let name = format!("{}-{admission:?}", role.as_str()).to_lowercase();
                let token = self.user(&name).await;
                self.add_member(org, &name, role.as_str()).await;
                match admission {
                    Admission::Team => {
                        self.teams_as(owner)
                            .add_team_member(AddTeamMemberRequest {
                                organization: org.into(),
                                team: team.into(),
                                member: Some(TeamMember {
                                    user: name.clone(),
                                    role: "member".into(),
                                    ..Default::default()
                                }),
                            })
                            .await
                            .expect("join the admitted team");
                    }
                    Admission::Listed => listed.push(name.clone()),
                    Admission::None => {}
                }
                callers.push(RestrictionCaller {
                    role,
                    admission,
                    name,
                    token,
                });
            }
        }
        (callers, listed)
    }

    /// The organization's statistics' counts, as `token` sees them.
    pub async fn organization_counts(
        &self,
        token: &str,
        org: &str,
    ) -> std::collections::BTreeMap<String, i64> {
        self.activities_as(token)
            .get_organization_stats(orgplane_proto::organizations::GetOrganizationStatsRequest {
                organization: org.into(),
                ..Default::default()
            })
            .await
            .expect("organization statistics")
            .into_inner()
            .counts
            .into_iter()
            .map(|c| (c.name, c.value))
            .collect()
    }
}

/// Declares, for each async `fn case(t: &TestStack)` named, the tests
/// `on_sqlite::case` (a fresh stack on SQLite) and `on_postgresql::case`
/// (a fresh stack in fresh PostgreSQL schemas, dropped afterwards; skipped
/// without `ORGPLANE_TEST_DATABASE_URL`, which CI sets) — the one way an
/// end-to-end test runs on both databases. `with adjust: cases` starts the
/// stacks with [`TestStack::start_with`]'s `adjust` (a function of the
/// test file). `database: cases` is the same for storage tests: each
/// `async fn case(db: &TestDatabase)` gets a fresh database of its own.
#[macro_export]
macro_rules! on_both_databases {
    (database: $($case:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(&$crate::TestDatabase::sqlite()).await;
                }
            )*
        }
        mod on_postgresql {
            $(
                #[tokio::test]
                async fn $case() {
                    let Some(db) = $crate::TestDatabase::postgres() else {
                        return;
                    };
                    super::$case(&db).await;
                    db.drop().await;
                }
            )*
        }
    };
    (with $adjust:ident: $($case:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(&$crate::TestStack::start_with(super::$adjust).await).await;
                }
            )*
        }
        mod on_postgresql {
            $(
                #[tokio::test]
                async fn $case() {
                    let Some(t) = $crate::TestStack::start_on_postgres_with(super::$adjust).await
                    else {
                        return;
                    };
                    super::$case(&t).await;
                    t.drop_schemas().await;
                }
            )*
        }
    };
    ($($case:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(&$crate::TestStack::start().await).await;
                }
            )*
        }
        mod on_postgresql {
            $(
                #[tokio::test]
                async fn $case() {
                    let Some(t) = $crate::TestStack::start_on_postgres().await else {
                        return;
                    };
                    super::$case(&t).await;
                    t.drop_schemas().await;
                }
            )*
        }
    };
}

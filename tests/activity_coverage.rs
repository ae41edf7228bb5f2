//! Every mutating RPC of every service records exactly one activity.
//!
//! Driven by the descriptor set: [`orgplane_proto::mutating_methods`] lists
//! every method not marked `NO_SIDE_EFFECTS` in `proto/`. A script calls
//! each of them once, as users and peers do (through the gateway, or over
//! mTLS for internal services), through a channel that records which
//! method each step called; each step must call one mutating method and be
//! followed by exactly its activity on the organization's live feed. A
//! mutating method neither called by a step nor listed in
//! [`WITHOUT_ACTIVITY`] (with the reason) fails the test: a new RPC must
//! record its activity, or say why it records none.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use orgplane_e2e::{Bearer, TestStack, mask};
use orgplane_proto::{
    agents::{
        self as ag_pb, agent_service_client::AgentServiceClient,
        connection_service_client::ConnectionServiceClient,
        queue_service_client::QueueServiceClient, run_service_client::RunServiceClient,
    },
    common as common_pb,
    identity::{self as id_pb, service_account_service_client::ServiceAccountServiceClient},
    organizations::{
        self as org_pb, Activity, WatchActivitiesRequest, WatchActivitiesResponse,
        invitation_service_client::InvitationServiceClient,
        member_service_client::MemberServiceClient,
        organization_service_client::OrganizationServiceClient,
        organizations_internal_client::OrganizationsInternalClient,
        project_service_client::ProjectServiceClient, team_service_client::TeamServiceClient,
    },
    registry::{
        self as reg_pb, component_hub_service_client::ComponentHubServiceClient,
        model_registry_service_client::ModelRegistryServiceClient,
    },
};
use prost_types::FieldMask;
use tonic::{Response, Status, Streaming, service::interceptor::InterceptedService};

/// The mutating methods that record no activity, and why.
const WITHOUT_ACTIVITY: &[(&str, &str)] = &[
    (
        "/orgplane.identity.v1.AuthService/SignUp",
        "a user's own account, outside any organization",
    ),
    (
        "/orgplane.identity.v1.AuthService/Login",
        "a user's own session",
    ),
    (
        "/orgplane.identity.v1.UserService/LinkExternalIdentity",
        "a user's own account, outside any organization",
    ),
    (
        "/orgplane.identity.v1.UserService/UnlinkExternalIdentity",
        "a user's own account, outside any organization",
    ),
    (
        "/orgplane.identity.v1.AuthService/Logout",
        "a user's own session",
    ),
    (
        "/orgplane.identity.v1.AuthService/ChangePassword",
        "a user's own account",
    ),
    (
        "/orgplane.identity.v1.AuthService/RequestPasswordReset",
        "a user's own account",
    ),
    (
        "/orgplane.identity.v1.AuthService/ConfirmPasswordReset",
        "a user's own account",
    ),
    (
        "/orgplane.identity.v1.AuthService/ExchangeExternalToken",
        "a sign-in; the join it may bring is AdmitExternalUser's activity",
    ),
    (
        "/orgplane.identity.v1.UserService/UpdateCurrentUser",
        "a user's own profile",
    ),
    (
        "/orgplane.identity.v1.TokenService/CreateToken",
        "a user's own personal token",
    ),
    (
        "/orgplane.identity.v1.TokenService/UpdateToken",
        "a user's own personal token",
    ),
    (
        "/orgplane.identity.v1.TokenService/DeleteToken",
        "a user's own personal token",
    ),
    (
        "/orgplane.identity.v1.IdentityInternal/MarkEmailVerified",
        "part of AcceptInvitation, whose activity it is",
    ),
    (
        "/orgplane.identity.v1.IdentityInternal/IssueAgentToken",
        "part of CreateAgent and RotateAgentToken, whose activities they are",
    ),
    (
        "/orgplane.identity.v1.IdentityInternal/RevokeAgentTokens",
        "part of DeleteAgent, whose activity it is",
    ),
    (
        "/orgplane.identity.v1.IdentityInternal/RevokeOrganizationAgentTokens",
        "part of DeleteOrganization, whose activity it is",
    ),
    (
        "/orgplane.organizations.v1.OrganizationsInternal/RecordActivities",
        "the feed itself: it stores the activities the others record",
    ),
    (
        "/orgplane.agents.v1.AgentService/ReportAgentStatus",
        "an agent's heartbeat, every few seconds; ListAgentStatuses shows it",
    ),
    (
        "/orgplane.agents.v1.RunService/AcquireRuns",
        "an agent's lease; the run's outcome is ReportRunStatus's activity",
    ),
    (
        "/orgplane.agents.v1.RunService/RenewLease",
        "an agent's lease; the run's outcome is ReportRunStatus's activity",
    ),
];

/// A channel that notes the gRPC path of every call sent through it.
#[derive(Clone)]
struct Recorder<C = tonic::transport::Channel> {
    channel: C,
    calls: Arc<Mutex<Vec<String>>>,
}

impl<C> tower::Service<http::Request<tonic::body::Body>> for Recorder<C>
where
    C: tower::Service<http::Request<tonic::body::Body>>,
{
    type Response = C::Response;
    type Error = C::Error;
    type Future = C::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.channel.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        self.calls
            .lock()
            .unwrap()
            .push(request.uri().path().to_owned());
        self.channel.call(request)
    }
}

type Authed = InterceptedService<Recorder, Bearer>;

/// The script's state: what was called, and each organization's live feed.
struct Script<'t> {
    t: &'t TestStack,
    gateway: Recorder,
    /// The token that watches every organization's feed (their owner's).
    watcher: String,
    feeds: HashMap<String, Streaming<WatchActivitiesResponse>>,
    mutating: BTreeSet<String>,
    covered: BTreeSet<String>,
    /// The method of the step before, in case it recorded two.
    previous: String,
}

impl<'t> Script<'t> {
    fn new(t: &'t TestStack, watcher: &str) -> Self {
        Self {
            t,
            gateway: Recorder {
                channel: t.gateway.clone(),
                calls: Arc::default(),
            },
            watcher: watcher.to_owned(),
            feeds: HashMap::new(),
            mutating: orgplane_proto::mutating_methods().into_iter().collect(),
            covered: BTreeSet::new(),
            previous: String::new(),
        }
    }

    /// A client through the gateway calling with `token`.
    fn client<C>(&self, token: &str, make: fn(Authed) -> C) -> C {
        make(InterceptedService::new(
            self.gateway.clone(),
            Bearer::new(token),
        ))
    }

    /// A channel to a service's internal port, as peer `caller` calls it.
    fn internal(
        &self,
        service: &str,
        addr: std::net::SocketAddr,
        caller: &str,
    ) -> Recorder<orgplane_transport::client::Channel> {
        Recorder {
            channel: orgplane_transport::client::mtls_channel(
                &addr.to_string(),
                service,
                &self.t.stack.certs.load(caller).unwrap(),
            )
            .unwrap(),
            calls: self.gateway.calls.clone(),
        }
    }

    /// Runs `call`, which must call one mutating method, and returns its
    /// answer once `organization`'s feed shows exactly its activity,
    /// `(action, subject kind, subject name)`.
    async fn step<T>(
        &mut self,
        organization: &str,
        want: (&str, &str, &str),
        call: impl Future<Output = Result<Response<T>, Status>>,
    ) -> (T, Activity) {
        let before = self.gateway.calls.lock().unwrap().len();
        let answer = call.await;
        let called: Vec<String> = self.gateway.calls.lock().unwrap()[before..]
            .iter()
            .filter(|path| self.mutating.contains(*path))
            .cloned()
            .collect();
        let [path] = called.as_slice() else {
            panic!("a step calls one mutating method; {want:?} called {called:?}");
        };
        let answer = answer
            .unwrap_or_else(|status| panic!("{path}: {status:?}"))
            .into_inner();
        self.covered.insert(path.clone());
        let activity = self.next_activity(organization, path).await;
        assert_eq!(
            (
                activity.action.as_str(),
                activity.subject_kind.as_str(),
                activity.subject_name.as_str()
            ),
            want,
            "{path} recorded one activity, this one (or {} recorded two)",
            self.previous
        );
        self.previous = path.clone();
        (answer, activity)
    }

    /// The next activity on `organization`'s feed, within 2 s of `path`.
    async fn next_activity(&mut self, organization: &str, path: &str) -> Activity {
        if !self.feeds.contains_key(organization) {
            // From the feed's beginning: an organization's first activity
            // is its creation, which no watcher could have been open for.
            let feed = self
                .t
                .activities_as(&self.watcher)
                .watch_activities(WatchActivitiesRequest {
                    organization: organization.into(),
                    project: String::new(),
                    cursor: "0".into(),
                })
                .await
                .unwrap()
                .into_inner();
            self.feeds.insert(organization.to_owned(), feed);
        }
        let feed = self.feeds.get_mut(organization).unwrap();
        tokio::time::timeout(Duration::from_secs(2), feed.message())
            .await
            .unwrap_or_else(|_| panic!("{path} recorded no activity within 2 s"))
            .unwrap()
            .expect("the feed stays open")
            .activity
            .unwrap()
    }

    /// Every feed is quiet (no activity recorded twice, none by calls
    /// outside the steps), and every mutating method was called by a step
    /// or is known to record nothing.
    async fn finish(mut self) {
        for (organization, feed) in &mut self.feeds {
            let extra = tokio::time::timeout(Duration::from_secs(1), feed.message()).await;
            if let Ok(message) = extra {
                panic!("{organization}: an activity no step explains: {message:?}");
            }
        }
        let exempt: BTreeSet<String> = WITHOUT_ACTIVITY
            .iter()
            .map(|(p, _)| p.to_string())
            .collect();
        let missing: Vec<&String> = self
            .mutating
            .iter()
            .filter(|path| !self.covered.contains(*path) && !exempt.contains(*path))
            .collect();
        assert!(
            missing.is_empty(),
            "mutating methods with no step here: record their activity and add a step, \
             or list them in WITHOUT_ACTIVITY with the reason: {missing:#?}"
        );
        let stale: Vec<&String> = exempt
            .iter()
            .filter(|path| !self.mutating.contains(*path) || self.covered.contains(*path))
            .collect();
        assert!(stale.is_empty(), "WITHOUT_ACTIVITY lists {stale:?}");
    }
}

/// Marks `username`'s email verified, as an identity provider would; before
/// their first call, so the gateway has not cached the unverified one.
async fn verify_email(t: &TestStack, username: &str) {
    use orgplane_identity::storage::users;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
    users::Entity::update_many()
        .col_expr(users::Column::EmailVerified, Expr::value(true))
        .filter(users::Column::Username.eq(username))
        .exec(t.stack.identity.db())
        .await
        .unwrap();
}

async fn every_mutating_rpc_records_one_activity(t: &TestStack) {
    let owner = t.user("owner").await;
    let bob = t.user("bob").await;
    let walker = t.user("walker").await;
    let pilot = t.user("pilot").await;
    verify_email(t, "walker").await;
    verify_email(t, "pilot").await;
    let mut s = Script::new(t, &owner);
    organizations(&mut s, &owner, &bob, &walker, &pilot).await;
    teams(&mut s, &owner).await;
    service_accounts(&mut s, &owner).await;
    models(&mut s, &owner).await;
    components(&mut s, &owner).await;
    agents_and_runs(&mut s, &owner).await;
    // Last: its feed stays readable only until the organization is gone.
    let mut orgs = s.client(&owner, OrganizationServiceClient::new);
    let create = orgs.create_organization(org_pb::CreateOrganizationRequest {
        request_id: String::new(),
        organization: Some(org_pb::Organization {
            name: "doomed".into(),
            ..Default::default()
        }),
    });
    s.step("doomed", ("created", "organization", "doomed"), create)
        .await;
    let delete = orgs.delete_organization(org_pb::DeleteOrganizationRequest {
        organization: "doomed".into(),
        confirm: "doomed".into(),
        etag: String::new(),
    });
    s.step("doomed", ("deleted", "organization", "doomed"), delete)
        .await;
    s.finish().await;
}

async fn organizations(s: &mut Script<'_>, owner: &str, bob: &str, walker: &str, pilot: &str) {
    let mut orgs = s.client(owner, OrganizationServiceClient::new);
    let create = orgs.create_organization(org_pb::CreateOrganizationRequest {
        request_id: String::new(),
        organization: Some(org_pb::Organization {
            name: "acme".into(),
            ..Default::default()
        }),
    });
    let (created, activity) = s
        .step("acme", ("created", "organization", "acme"), create)
        .await;
    let acme = created.organization.unwrap();
    assert_eq!(
        (activity.actor.as_str(), activity.subject_uuid.as_str()),
        ("owner", acme.uuid.as_str())
    );
    assert!(activity.create_time.is_some());
    let update = orgs.update_organization(org_pb::UpdateOrganizationRequest {
        organization: Some(org_pb::Organization {
            name: "acme".into(),
            description: "makers".into(),
            ..Default::default()
        }),
        update_mask: mask(&["description"]),
    });
    s.step("acme", ("updated", "organization", "acme"), update)
        .await;
    // Open to verified addresses at example.com.
    let settings = orgs.update_organization_settings(org_pb::UpdateOrganizationSettingsRequest {
        organization: "acme".into(),
        settings: Some(org_pb::OrganizationSettings {
            auth: Some(org_pb::AuthSettings {
                invite_only: false,
                allowed_email_domains: vec!["example.com".into()],
                ..Default::default()
            }),
            ..Default::default()
        }),
        update_mask: Some(FieldMask {
            paths: vec![
                "auth.invite_only".into(),
                "auth.allowed_email_domains".into(),
            ],
        }),
    });
    let (_, activity) = s
        .step(
            "acme",
            ("updated", "organization_settings", "acme"),
            settings,
        )
        .await;
    assert_eq!(
        orgplane_platform::json::struct_to_json(activity.metadata.as_ref().unwrap()),
        serde_json::json!({"fields": ["auth.invite_only", "auth.allowed_email_domains"]}),
        "the fields changed, never their values"
    );

    let mut projects = s.client(owner, ProjectServiceClient::new);
    for name in ["vision", "scratch"] {
        let create = projects.create_project(org_pb::CreateProjectRequest {
            request_id: String::new(),
            organization: "acme".into(),
            project: Some(org_pb::Project {
                name: name.into(),
                ..Default::default()
            }),
        });
        s.step("acme", ("created", "project", name), create).await;
    }
    let update = projects.update_project(org_pb::UpdateProjectRequest {
        organization: "acme".into(),
        project: Some(org_pb::Project {
            name: "vision".into(),
            description: "eyes".into(),
            ..Default::default()
        }),
        update_mask: mask(&["description"]),
    });
    let (_, activity) = s
        .step("acme", ("updated", "project", "vision"), update)
        .await;
    assert_eq!(activity.project, "vision");
    let settings = projects.update_project_settings(org_pb::UpdateProjectSettingsRequest {
        organization: "acme".into(),
        project: "vision".into(),
        settings: Some(org_pb::ProjectSettings {
            allowed_agents: vec!["box".into()],
            ..Default::default()
        }),
        update_mask: mask(&["allowed_agents"]),
    });
    s.step("acme", ("updated", "project_settings", "vision"), settings)
        .await;
    let archive = projects.archive_project(org_pb::ArchiveProjectRequest {
        organization: "acme".into(),
        project: "vision".into(),
    });
    s.step("acme", ("archived", "project", "vision"), archive)
        .await;
    let restore = projects.restore_project(org_pb::RestoreProjectRequest {
        organization: "acme".into(),
        project: "vision".into(),
    });
    s.step("acme", ("restored", "project", "vision"), restore)
        .await;
    let delete = projects.delete_project(org_pb::DeleteProjectRequest {
        organization: "acme".into(),
        project: "scratch".into(),
    });
    s.step("acme", ("deleted", "project", "scratch"), delete)
        .await;

    // Bob by invitation; walker by open sign-up; pilot by SSO.
    let mut invitations = s.client(owner, InvitationServiceClient::new);
    let invitation_to = |email: &str| org_pb::CreateInvitationRequest {
        request_id: String::new(),
        organization: "acme".into(),
        invitation: Some(org_pb::Invitation {
            email: email.into(),
            role: "member".into(),
            ..Default::default()
        }),
    };
    let invite = invitations.create_invitation(invitation_to("bob@example.com"));
    let (invited, _) = s
        .step("acme", ("created", "invitation", "bob@example.com"), invite)
        .await;
    let invite = invitations.create_invitation(invitation_to("eve@example.com"));
    let (uninvited, _) = s
        .step("acme", ("created", "invitation", "eve@example.com"), invite)
        .await;
    let resend = invitations.resend_invitation(org_pb::ResendInvitationRequest {
        organization: "acme".into(),
        invitation: invited.invitation.unwrap().uuid,
    });
    let (resent, _) = s
        .step("acme", ("resent", "invitation", "bob@example.com"), resend)
        .await;
    let revoke = invitations.revoke_invitation(org_pb::RevokeInvitationRequest {
        organization: "acme".into(),
        invitation: uninvited.invitation.unwrap().uuid,
    });
    s.step("acme", ("revoked", "invitation", "eve@example.com"), revoke)
        .await;
    let mut as_bob = s.client(bob, InvitationServiceClient::new);
    let accept = as_bob.accept_invitation(org_pb::AcceptInvitationRequest {
        token: resent.token,
    });
    let (_, activity) = s
        .step(
            "acme",
            ("accepted", "invitation", "bob@example.com"),
            accept,
        )
        .await;
    assert_eq!(activity.actor, "bob");
    let mut as_walker = s.client(walker, InvitationServiceClient::new);
    let join = as_walker.join_organization(org_pb::JoinOrganizationRequest {
        organization: "acme".into(),
    });
    s.step("acme", ("joined", "member", "walker"), join).await;
    // As identity admits a user signing in through the organization's SSO.
    let pilot_user =
        s.t.users_as(pilot)
            .get_current_user(id_pb::GetCurrentUserRequest {})
            .await
            .unwrap()
            .into_inner()
            .user
            .unwrap();
    let internal = s.internal("organizations", s.t.stack.organizations_addr, "identity");
    let mut federation = OrganizationsInternalClient::new(internal);
    let admit = federation.admit_external_user(org_pb::AdmitExternalUserRequest {
        principal: Some(common_pb::Principal {
            kind: common_pb::PrincipalKind::User as i32,
            uuid: pilot_user.uuid,
            name: "pilot".into(),
            email: "pilot@example.com".into(),
            email_verified: true,
            scopes: vec![orgplane_platform::principal::SCOPE_ALL.into()],
            ..Default::default()
        }),
        organization: "acme".into(),
    });
    let (admitted, _) = s.step("acme", ("joined", "member", "pilot"), admit).await;
    assert!(admitted.joined);

    let mut members = s.client(owner, MemberServiceClient::new);
    let promote = members.update_member(org_pb::UpdateMemberRequest {
        organization: "acme".into(),
        member: Some(org_pb::Member {
            user: "bob".into(),
            role: "admin".into(),
            ..Default::default()
        }),
        update_mask: mask(&["role"]),
    });
    let (_, activity) = s.step("acme", ("updated", "member", "bob"), promote).await;
    assert_eq!(
        orgplane_platform::json::struct_to_json(activity.metadata.as_ref().unwrap()),
        serde_json::json!({"from": "member", "to": "admin"})
    );
    let remove = members.remove_member(org_pb::RemoveMemberRequest {
        organization: "acme".into(),
        user: "walker".into(),
    });
    s.step("acme", ("deleted", "member", "walker"), remove)
        .await;
    let mut as_pilot = s.client(pilot, MemberServiceClient::new);
    let leave = as_pilot.leave_organization(org_pb::LeaveOrganizationRequest {
        organization: "acme".into(),
    });
    s.step("acme", ("left", "member", "pilot"), leave).await;
}

async fn teams(s: &mut Script<'_>, owner: &str) {
    let mut teams = s.client(owner, TeamServiceClient::new);
    let create = teams.create_team(org_pb::CreateTeamRequest {
        request_id: String::new(),
        organization: "acme".into(),
        team: Some(org_pb::Team {
            name: "core".into(),
            ..Default::default()
        }),
    });
    s.step("acme", ("created", "team", "core"), create).await;
    let update = teams.update_team(org_pb::UpdateTeamRequest {
        organization: "acme".into(),
        team: Some(org_pb::Team {
            name: "core".into(),
            description: "the core".into(),
            ..Default::default()
        }),
        update_mask: mask(&["description"]),
    });
    s.step("acme", ("updated", "team", "core"), update).await;
    let member = |role: &str| {
        Some(org_pb::TeamMember {
            user: "bob".into(),
            role: role.into(),
            ..Default::default()
        })
    };
    let add = teams.add_team_member(org_pb::AddTeamMemberRequest {
        organization: "acme".into(),
        team: "core".into(),
        member: member("member"),
    });
    let (_, activity) = s.step("acme", ("created", "team_member", "bob"), add).await;
    assert_eq!(activity.parent, "team/core");
    let update = teams.update_team_member(org_pb::UpdateTeamMemberRequest {
        organization: "acme".into(),
        team: "core".into(),
        member: member("admin"),
        update_mask: mask(&["role"]),
    });
    s.step("acme", ("updated", "team_member", "bob"), update)
        .await;
    let remove = teams.remove_team_member(org_pb::RemoveTeamMemberRequest {
        organization: "acme".into(),
        team: "core".into(),
        user: "bob".into(),
    });
    s.step("acme", ("deleted", "team_member", "bob"), remove)
        .await;
    // The team's own feed: the team and what was done to its members.
    let feed =
        s.t.activities_as(owner)
            .list_activities(org_pb::ListActivitiesRequest {
                organization: "acme".into(),
                team: "core".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .activities;
    assert_eq!(feed.len(), 5);
    let delete = teams.delete_team(org_pb::DeleteTeamRequest {
        organization: "acme".into(),
        team: "core".into(),
    });
    s.step("acme", ("deleted", "team", "core"), delete).await;
}

async fn service_accounts(s: &mut Script<'_>, owner: &str) {
    let mut accounts = s.client(owner, ServiceAccountServiceClient::new);
    let create = accounts.create_service_account(id_pb::CreateServiceAccountRequest {
        request_id: String::new(),
        organization: "acme".into(),
        service_account: Some(id_pb::ServiceAccount {
            name: "nightly".into(),
            role: "member".into(),
            ..Default::default()
        }),
    });
    s.step("acme", ("created", "service_account", "nightly"), create)
        .await;
    let update = accounts.update_service_account(id_pb::UpdateServiceAccountRequest {
        organization: "acme".into(),
        service_account: Some(id_pb::ServiceAccount {
            name: "nightly".into(),
            role: "viewer".into(),
            ..Default::default()
        }),
        update_mask: mask(&["role"]),
    });
    s.step("acme", ("updated", "service_account", "nightly"), update)
        .await;
    let create = accounts.create_service_account_token(id_pb::CreateServiceAccountTokenRequest {
        request_id: String::new(),
        organization: "acme".into(),
        service_account: "nightly".into(),
        token: Some(id_pb::Token {
            name: "ci".into(),
            ..Default::default()
        }),
    });
    let (_, activity) = s
        .step("acme", ("created", "service_account_token", "ci"), create)
        .await;
    assert_eq!(activity.parent, "service_account/nightly");
    let delete = accounts.delete_service_account_token(id_pb::DeleteServiceAccountTokenRequest {
        organization: "acme".into(),
        service_account: "nightly".into(),
        token: "ci".into(),
    });
    s.step("acme", ("deleted", "service_account_token", "ci"), delete)
        .await;
    let delete = accounts.delete_service_account(id_pb::DeleteServiceAccountRequest {
        organization: "acme".into(),
        service_account: "nightly".into(),
    });
    s.step("acme", ("deleted", "service_account", "nightly"), delete)
        .await;
}

async fn models(s: &mut Script<'_>, owner: &str) {
    let mut models = s.client(owner, ModelRegistryServiceClient::new);
    let create = models.create_model(reg_pb::CreateModelRequest {
        request_id: String::new(),
        organization: "acme".into(),
        model: Some(reg_pb::Model {
            name: "resnet".into(),
            ..Default::default()
        }),
    });
    s.step("acme", ("created", "model", "resnet"), create).await;
    let update = models.update_model(reg_pb::UpdateModelRequest {
        organization: "acme".into(),
        model: Some(reg_pb::Model {
            name: "resnet".into(),
            description: "image classifier".into(),
            ..Default::default()
        }),
        update_mask: mask(&["description"]),
    });
    s.step("acme", ("updated", "model", "resnet"), update).await;
    let create = models.create_model_version(reg_pb::CreateModelVersionRequest {
        request_id: String::new(),
        organization: "acme".into(),
        model: "resnet".into(),
        version: Some(reg_pb::ModelVersion {
            name: "v1".into(),
            ..Default::default()
        }),
    });
    s.step("acme", ("created", "model_version", "v1"), create)
        .await;
    let transition =
        models.transition_model_version_stage(reg_pb::TransitionModelVersionStageRequest {
            organization: "acme".into(),
            model: "resnet".into(),
            version: "v1".into(),
            stage: "staging".into(),
            condition: None,
        });
    let (_, activity) = s
        .step("acme", ("transitioned", "model_version", "v1"), transition)
        .await;
    assert_eq!(activity.parent, "model/resnet");
    assert_eq!(
        orgplane_platform::json::struct_to_json(activity.metadata.as_ref().unwrap()),
        serde_json::json!({"from": "testing", "to": "staging", "reason": "Promoted"})
    );
    let update = models.update_model_version(reg_pb::UpdateModelVersionRequest {
        organization: "acme".into(),
        model: "resnet".into(),
        version: Some(reg_pb::ModelVersion {
            name: "v1".into(),
            description: "first".into(),
            ..Default::default()
        }),
        update_mask: mask(&["description"]),
        target_model: String::new(),
    });
    s.step("acme", ("updated", "model_version", "v1"), update)
        .await;
    let settings = models.update_registry_settings(reg_pb::UpdateRegistrySettingsRequest {
        organization: "acme".into(),
        settings: Some(reg_pb::RegistrySettings {
            max_production_model_versions: 2,
            ..Default::default()
        }),
        update_mask: mask(&["max_production_model_versions"]),
    });
    s.step(
        "acme",
        ("updated", "registry_settings", "registry"),
        settings,
    )
    .await;
    let delete = models.delete_model_version(reg_pb::DeleteModelVersionRequest {
        organization: "acme".into(),
        model: "resnet".into(),
        version: "v1".into(),
    });
    s.step("acme", ("deleted", "model_version", "v1"), delete)
        .await;
    let delete = models.delete_model(reg_pb::DeleteModelRequest {
        organization: "acme".into(),
        model: "resnet".into(),
        force: false,
    });
    s.step("acme", ("deleted", "model", "resnet"), delete).await;
}

async fn components(s: &mut Script<'_>, owner: &str) {
    let mut hub = s.client(owner, ComponentHubServiceClient::new);
    let create = hub.create_component(reg_pb::CreateComponentRequest {
        request_id: String::new(),
        organization: "acme".into(),
        component: Some(reg_pb::Component {
            name: "trainer".into(),
            ..Default::default()
        }),
    });
    s.step("acme", ("created", "component", "trainer"), create)
        .await;
    let update = hub.update_component(reg_pb::UpdateComponentRequest {
        organization: "acme".into(),
        component: Some(reg_pb::Component {
            name: "trainer".into(),
            description: "trains".into(),
            ..Default::default()
        }),
        update_mask: mask(&["description"]),
    });
    s.step("acme", ("updated", "component", "trainer"), update)
        .await;
    let create = hub.create_component_version(reg_pb::CreateComponentVersionRequest {
        request_id: String::new(),
        organization: "acme".into(),
        component: "trainer".into(),
        version: Some(reg_pb::ComponentVersion {
            name: "v1".into(),
            content: "kind: component\nrun:\n  kind: job\n".into(),
            ..Default::default()
        }),
    });
    s.step("acme", ("created", "component_version", "v1"), create)
        .await;
    let transition =
        hub.transition_component_version_stage(reg_pb::TransitionComponentVersionStageRequest {
            organization: "acme".into(),
            component: "trainer".into(),
            version: "v1".into(),
            stage: "staging".into(),
            condition: None,
        });
    s.step(
        "acme",
        ("transitioned", "component_version", "v1"),
        transition,
    )
    .await;
    let update = hub.update_component_version(reg_pb::UpdateComponentVersionRequest {
        organization: "acme".into(),
        component: "trainer".into(),
        version: Some(reg_pb::ComponentVersion {
            name: "v1".into(),
            description: "first".into(),
            ..Default::default()
        }),
        update_mask: mask(&["description"]),
        target_component: String::new(),
    });
    s.step("acme", ("updated", "component_version", "v1"), update)
        .await;
    let delete = hub.delete_component_version(reg_pb::DeleteComponentVersionRequest {
        organization: "acme".into(),
        component: "trainer".into(),
        version: "v1".into(),
    });
    s.step("acme", ("deleted", "component_version", "v1"), delete)
        .await;
    let delete = hub.delete_component(reg_pb::DeleteComponentRequest {
        organization: "acme".into(),
        component: "trainer".into(),
        force: false,
    });
    s.step("acme", ("deleted", "component", "trainer"), delete)
        .await;
}

async fn agents_and_runs(s: &mut Script<'_>, owner: &str) {
    let mut agents = s.client(owner, AgentServiceClient::new);
    let create = agents.create_agent(ag_pb::CreateAgentRequest {
        request_id: String::new(),
        organization: "acme".into(),
        agent: Some(ag_pb::Agent {
            name: "box".into(),
            ..Default::default()
        }),
    });
    s.step("acme", ("created", "agent", "box"), create).await;
    let update = agents.update_agent(ag_pb::UpdateAgentRequest {
        organization: "acme".into(),
        agent: Some(ag_pb::Agent {
            name: "box".into(),
            description: "the GPU box".into(),
            ..Default::default()
        }),
        update_mask: mask(&["description"]),
    });
    s.step("acme", ("updated", "agent", "box"), update).await;
    let rotate = agents.rotate_agent_token(ag_pb::RotateAgentTokenRequest {
        organization: "acme".into(),
        agent: "box".into(),
    });
    let (rotated, activity) = s
        .step("acme", ("rotated", "agent_token", "box"), rotate)
        .await;
    assert_eq!(activity.parent, "agent/box");

    let mut queues = s.client(owner, QueueServiceClient::new);
    let create = queues.create_queue(ag_pb::CreateQueueRequest {
        request_id: String::new(),
        organization: "acme".into(),
        agent: "box".into(),
        queue: Some(ag_pb::Queue {
            name: "q".into(),
            ..Default::default()
        }),
    });
    s.step("acme", ("created", "queue", "q"), create).await;
    let update = queues.update_queue(ag_pb::UpdateQueueRequest {
        organization: "acme".into(),
        agent: "box".into(),
        queue: Some(ag_pb::Queue {
            name: "q".into(),
            description: "the queue".into(),
            ..Default::default()
        }),
        update_mask: mask(&["description"]),
    });
    s.step("acme", ("updated", "queue", "q"), update).await;

    let mut connections = s.client(owner, ConnectionServiceClient::new);
    let create = connections.create_connection(ag_pb::CreateConnectionRequest {
        request_id: String::new(),
        organization: "acme".into(),
        connection: Some(ag_pb::Connection {
            name: "data".into(),
            kind: "s3".into(),
            schema: Some(orgplane_platform::json::json_to_struct(
                &serde_json::json!({"bucket": "s3://data"}),
            )),
            ..Default::default()
        }),
    });
    s.step("acme", ("created", "connection", "data"), create)
        .await;
    let update = connections.update_connection(ag_pb::UpdateConnectionRequest {
        organization: "acme".into(),
        connection: Some(ag_pb::Connection {
            name: "data".into(),
            description: "the lake".into(),
            ..Default::default()
        }),
        update_mask: mask(&["description"]),
    });
    s.step("acme", ("updated", "connection", "data"), update)
        .await;
    let delete = connections.delete_connection(ag_pb::DeleteConnectionRequest {
        organization: "acme".into(),
        connection: "data".into(),
    });
    s.step("acme", ("deleted", "connection", "data"), delete)
        .await;

    let mut runs = s.client(owner, RunServiceClient::new);
    let mut submitted = Vec::new();
    for name in ["train", "eval"] {
        let submit = runs.submit_run(ag_pb::SubmitRunRequest {
            request_id: String::new(),
            organization: "acme".into(),
            project: "vision".into(),
            queue: "box/q".into(),
            name: name.into(),
            spec: None,
        });
        let (run, activity) = s.step("acme", ("submitted", "run", name), submit).await;
        assert_eq!(
            (activity.project.as_str(), activity.parent.as_str()),
            ("vision", "queue/box/q")
        );
        submitted.push(run.run.unwrap().uuid);
    }
    // The agent leases one (no activity) and reports it done.
    let mut as_agent = s.client(&rotated.token, RunServiceClient::new);
    let leased = as_agent
        .acquire_runs(ag_pb::AcquireRunsRequest {
            organization: "acme".into(),
            agent: "box".into(),
            max_runs: 1,
            lease_duration: None,
        })
        .await
        .unwrap()
        .into_inner()
        .runs;
    let lease = leased[0].lease.clone().unwrap().id;
    as_agent
        .renew_lease(ag_pb::RenewLeaseRequest {
            organization: "acme".into(),
            run: leased[0].uuid.clone(),
            lease: lease.clone(),
            lease_duration: None,
        })
        .await
        .unwrap();
    let report = as_agent.report_run_status(ag_pb::ReportRunStatusRequest {
        organization: "acme".into(),
        run: leased[0].uuid.clone(),
        status: "succeeded".into(),
        lease,
        message: "done".into(),
    });
    let (_, activity) = s.step("acme", ("succeeded", "run", "train"), report).await;
    assert_eq!(activity.actor, "box", "the agent reported it");
    let waiting = submitted
        .iter()
        .find(|uuid| **uuid != leased[0].uuid)
        .unwrap();
    let cancel = runs.cancel_run(ag_pb::CancelRunRequest {
        organization: "acme".into(),
        run: waiting.clone(),
    });
    s.step("acme", ("cancelled", "run", "eval"), cancel).await;

    let delete = queues.delete_queue(ag_pb::DeleteQueueRequest {
        organization: "acme".into(),
        agent: "box".into(),
        queue: "q".into(),
        force: false,
    });
    s.step("acme", ("deleted", "queue", "q"), delete).await;
    let delete = agents.delete_agent(ag_pb::DeleteAgentRequest {
        organization: "acme".into(),
        agent: "box".into(),
        force: false,
    });
    s.step("acme", ("deleted", "agent", "box"), delete).await;
}

orgplane_e2e::on_both_databases!(every_mutating_rpc_records_one_activity,);

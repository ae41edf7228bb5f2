//! What each person in an organization reaches: outsiders invited to chosen
//! projects and teams, public projects readable by everyone in the
//! organization, and the address an accepted invitation proves.

use orgplane_e2e::{
    Bearer, RestrictionCaller, TestStack, expect_code, expect_reason, grant, restricted_code,
    violated_fields,
};
use orgplane_platform::authz::{Permission, Role};
use orgplane_proto::{
    common::Restriction,
    identity::GetCurrentUserRequest,
    organizations::{project_service_client::ProjectServiceClient, *},
};
use tonic::Code;

async fn project(t: &TestStack, token: &str, name: &str, visibility: Visibility) {
    t.projects_as(token)
        .create_project(CreateProjectRequest {
            request_id: String::new(),
            organization: "acme".into(),
            project: Some(Project {
                name: name.into(),
                visibility: visibility as i32,
                ..Default::default()
            }),
        })
        .await
        .expect("create project");
}

async fn listed(t: &TestStack, token: &str) -> Vec<String> {
    // (Restricted projects are left out for those not admitted.)
    t.projects_as(token)
        .list_projects(ListProjectsRequest {
            organization: "acme".into(),
            ..Default::default()
        })
        .await
        .expect("list projects")
        .into_inner()
        .projects
        .into_iter()
        .map(|p| p.name)
        .collect()
}

/// Changes the description of the project `name` with `projects`: `None`
/// when allowed, else the refusal's code (configuring needs
/// `projects.manage` on the project).
async fn describe_project(
    mut projects: ProjectServiceClient<
        tonic::service::interceptor::InterceptedService<tonic::transport::Channel, Bearer>,
    >,
    name: &str,
) -> Option<Code> {
    let request = UpdateProjectRequest {
        organization: "acme".into(),
        project: Some(Project {
            name: name.into(),
            description: "changed".into(),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["description".into()],
        }),
    };
    projects
        .update_project(request)
        .await
        .err()
        .map(|s| s.code())
}

async fn get_project(t: &TestStack, token: &str, name: &str) -> Code {
    t.projects_as(token)
        .get_project(GetProjectRequest {
            organization: "acme".into(),
            project: name.into(),
        })
        .await
        .err()
        .map_or(Code::Ok, |s| s.code())
}

fn invitation(email: &str, role: &str, projects: &[&str], teams: &[&str]) -> Option<Invitation> {
    Some(Invitation {
        email: email.into(),
        role: role.into(),
        projects: projects.iter().map(|p| (*p).to_owned()).collect(),
        teams: teams.iter().map(|p| (*p).to_owned()).collect(),
        ..Default::default()
    })
}

/// An organization with private projects `granted`, `via-team` (granted to
/// team `ml`), `secret`, and public `open`.
async fn acme(t: &TestStack) -> String {
    let owner = t.user("owner").await;
    t.create_organization(&owner, "acme").await;
    for (name, visibility) in [
        ("granted", Visibility::Private),
        ("via-team", Visibility::Private),
        ("secret", Visibility::Private),
        ("open", Visibility::Public),
    ] {
        project(t, &owner, name, visibility).await;
    }
    t.create_team(
        &owner,
        "acme",
        "ml",
        vec![grant(EntityKind::Project, "via-team", "viewer")],
    )
    .await;
    owner
}

#[tokio::test]
async fn an_outsider_reaches_only_what_they_were_invited_to() {
    let t = TestStack::start().await;
    let owner = acme(&t).await;
    let invited = t
        .invitations_as(&owner)
        .create_invitation(CreateInvitationRequest {
            request_id: String::new(),
            organization: "acme".into(),
            invitation: invitation("guest@example.com", "outsider", &["granted"], &["ml"]),
        })
        .await
        .unwrap()
        .into_inner();
    let shown = invited.invitation.unwrap();
    assert_eq!(
        (shown.projects, shown.teams),
        (vec!["granted".to_owned()], vec!["ml".to_owned()])
    );

    let guest = t.user("guest").await;
    let me = |t: &TestStack| {
        let mut users = t.users_as(&guest);
        async move {
            users
                .get_current_user(GetCurrentUserRequest {})
                .await
                .unwrap()
                .into_inner()
                .user
                .unwrap()
        }
    };
    assert!(!me(&t).await.email_verified);
    let accepted = t
        .invitations_as(&guest)
        .accept_invitation(AcceptInvitationRequest {
            token: invited.token,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(accepted.member.unwrap().role, "outsider");
    // The invitation went to the address: accepting it proves the mailbox.
    assert!(me(&t).await.email_verified);

    // Projects: the granted one (as a team `member`: they may change runs,
    // not the project) and the team's; never the rest, public ones
    // included (Polyaxon: outsiders reach only what they were invited to).
    assert_eq!(get_project(&t, &guest, "granted").await, Code::Ok);
    assert_eq!(get_project(&t, &guest, "via-team").await, Code::Ok);
    assert_eq!(get_project(&t, &guest, "open").await, Code::NotFound);
    assert_eq!(get_project(&t, &guest, "secret").await, Code::NotFound);
    assert_eq!(get_project(&t, &guest, "missing").await, Code::NotFound);
    let mut names = listed(&t, &guest).await;
    names.sort();
    assert_eq!(names, ["granted", "via-team"]);
    expect_code(
        t.projects_as(&guest)
            .delete_project(DeleteProjectRequest {
                organization: "acme".into(),
                project: "granted".into(),
            })
            .await,
        Code::PermissionDenied,
    );
    // The team they joined.
    let team_members = t
        .teams_as(&owner)
        .list_team_members(ListTeamMembersRequest {
            organization: "acme".into(),
            team: "ml".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .members;
    assert_eq!(team_members.len(), 1);
    assert_eq!(team_members[0].user, "guest");
    // The organization itself is not theirs to see.
    expect_code(
        t.orgs_as(&guest)
            .get_organization(GetOrganizationRequest {
                organization: "acme".into(),
            })
            .await,
        Code::NotFound,
    );
    expect_code(
        t.members_as(&guest)
            .list_members(ListMembersRequest {
                organization: "acme".into(),
                ..Default::default()
            })
            .await,
        Code::NotFound,
    );

    // Removed, they lose their grants and their teams.
    t.members_as(&owner)
        .remove_member(RemoveMemberRequest {
            organization: "acme".into(),
            user: "guest".into(),
        })
        .await
        .unwrap();
    assert_eq!(get_project(&t, &guest, "granted").await, Code::NotFound);
    let team_members = t
        .teams_as(&owner)
        .list_team_members(ListTeamMembersRequest {
            organization: "acme".into(),
            team: "ml".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .members;
    assert!(team_members.is_empty());
}

/// Visibility widens nothing inside the organization (Polyaxon: the billing
/// role views no projects): billing members read no project, public or
/// not; viewers and up read every one.
#[tokio::test]
async fn billing_members_read_no_project_public_or_not() {
    let t = TestStack::start().await;
    let owner = acme(&t).await;
    let billing = t.user("accountant").await;
    t.add_member("acme", "accountant", "billing").await;
    let viewer = t.user("reader").await;
    t.add_member("acme", "reader", "viewer").await;
    let stranger = t.user("stranger").await;

    assert!(listed(&t, &billing).await.is_empty());
    assert_eq!(
        get_project(&t, &billing, "open").await,
        Code::PermissionDenied
    );
    assert_eq!(
        get_project(&t, &billing, "secret").await,
        Code::PermissionDenied
    );
    expect_code(
        t.projects_as(&billing)
            .update_project(UpdateProjectRequest {
                project: Some(Project {
                    name: "open".into(),
                    description: "mine now".into(),
                    ..Default::default()
                }),
                organization: "acme".into(),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["description".into()],
                }),
            })
            .await,
        Code::PermissionDenied,
    );
    // Viewers and up read every project, private or not.
    assert_eq!(listed(&t, &viewer).await.len(), 4);
    assert_eq!(get_project(&t, &viewer, "secret").await, Code::Ok);
    // Outside the organization, public projects do not exist.
    assert_eq!(get_project(&t, &stranger, "open").await, Code::NotFound);
    expect_code(
        t.projects_as(&stranger)
            .list_projects(ListProjectsRequest {
                organization: "acme".into(),
                ..Default::default()
            })
            .await,
        Code::NotFound,
    );
    drop(owner);
}

#[tokio::test]
async fn outsider_invitations_are_checked() {
    let t = TestStack::start().await;
    let owner = acme(&t).await;
    let mut invitations = t.invitations_as(&owner);
    for (role, projects, teams, fields) in [
        ("outsider", &[][..], &[][..], &["invitation.projects"][..]),
        (
            "member",
            &["granted"][..],
            &[][..],
            &["invitation.projects"][..],
        ),
        ("viewer", &[][..], &["ml"][..], &["invitation.teams"][..]),
        (
            "outsider",
            &["granted", "nowhere"][..],
            &["no-team"][..],
            &["invitation.projects", "invitation.teams"][..],
        ),
        (
            "outsider",
            &["Not A Slug"][..],
            &[][..],
            &["invitation.projects"][..],
        ),
    ] {
        let status = expect_code(
            invitations
                .create_invitation(CreateInvitationRequest {
                    request_id: String::new(),
                    organization: "acme".into(),
                    invitation: invitation("guest@example.com", role, projects, teams),
                })
                .await,
            Code::InvalidArgument,
        );
        assert_eq!(
            violated_fields(&status),
            fields,
            "{role} {projects:?} {teams:?}"
        );
    }
    // A project deleted before acceptance is simply not granted.
    let invited = invitations
        .create_invitation(CreateInvitationRequest {
            request_id: String::new(),
            organization: "acme".into(),
            invitation: invitation("guest@example.com", "outsider", &["granted", "secret"], &[]),
        })
        .await
        .unwrap()
        .into_inner();
    t.projects_as(&owner)
        .delete_project(DeleteProjectRequest {
            organization: "acme".into(),
            project: "secret".into(),
        })
        .await
        .unwrap();
    let guest = t.user("guest").await;
    t.invitations_as(&guest)
        .accept_invitation(AcceptInvitationRequest {
            token: invited.token,
        })
        .await
        .unwrap();
    let mut names = listed(&t, &guest).await;
    names.sort();
    assert_eq!(names, ["granted"]);
    // An outsider may leave, and then reaches nothing.
    t.members_as(&guest)
        .leave_organization(LeaveOrganizationRequest {
            organization: "acme".into(),
        })
        .await
        .unwrap();
    assert_eq!(get_project(&t, &guest, "granted").await, Code::NotFound);
    expect_code(
        t.projects_as(&guest)
            .list_projects(ListProjectsRequest {
                organization: "acme".into(),
                ..Default::default()
            })
            .await,
        Code::NotFound,
    );
}

#[tokio::test]
async fn an_instance_admin_does_not_reach_other_peoples_organizations() {
    let t = TestStack::start().await;
    acme(&t).await;
    let admin = t.admin().await;
    expect_code(
        t.orgs_as(&admin)
            .get_organization(GetOrganizationRequest {
                organization: "acme".into(),
            })
            .await,
        Code::NotFound,
    );
    assert_eq!(get_project(&t, &admin, "open").await, Code::NotFound);
    expect_code(
        t.service_accounts_as(&admin)
            .list_service_accounts(orgplane_proto::identity::ListServiceAccountsRequest {
                organization: "acme".into(),
                ..Default::default()
            })
            .await,
        Code::NotFound,
    );
}

/// Issue 15, item 10: grants die with the project they name: a new project
/// with a deleted one's name is not open to the old grantees, through their
/// own grant or their team's.
#[tokio::test]
async fn grants_die_with_the_project_they_name() {
    let t = TestStack::start().await;
    let owner = acme(&t).await;
    let invited = t
        .invitations_as(&owner)
        .create_invitation(CreateInvitationRequest {
            request_id: String::new(),
            organization: "acme".into(),
            invitation: invitation("guest@example.com", "outsider", &["granted"], &["ml"]),
        })
        .await
        .unwrap()
        .into_inner();
    let guest = t.user("guest").await;
    t.invitations_as(&guest)
        .accept_invitation(AcceptInvitationRequest {
            token: invited.token,
        })
        .await
        .unwrap();
    assert_eq!(get_project(&t, &guest, "granted").await, Code::Ok);
    assert_eq!(get_project(&t, &guest, "via-team").await, Code::Ok);
    for name in ["granted", "via-team"] {
        t.projects_as(&owner)
            .delete_project(DeleteProjectRequest {
                organization: "acme".into(),
                project: name.into(),
            })
            .await
            .unwrap();
        project(&t, &owner, name, Visibility::Private).await;
        assert_eq!(
            get_project(&t, &guest, name).await,
            Code::NotFound,
            "the new {name} is not the old one's"
        );
    }
    let team = t
        .teams_as(&owner)
        .get_team(GetTeamRequest {
            organization: "acme".into(),
            team: "ml".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .team
        .unwrap();
    assert!(team.grants.is_empty(), "{:?}", team.grants);
}

/// Issue 21: managers change an outsider's own grants — `viewer`, `member`
/// or `admin` on what they were invited to — and remove them; nothing new
/// is granted this way, and members hold no grants of their own.
#[tokio::test]
async fn managers_change_and_remove_an_outsiders_grants() {
    let t = TestStack::start().await;
    let owner = acme(&t).await;
    let invited = t
        .invitations_as(&owner)
        .create_invitation(CreateInvitationRequest {
            request_id: String::new(),
            organization: "acme".into(),
            invitation: invitation("guest@example.com", "outsider", &["granted"], &[]),
        })
        .await
        .unwrap()
        .into_inner();
    let guest = t.user("guest").await;
    let accepted = t
        .invitations_as(&guest)
        .accept_invitation(AcceptInvitationRequest {
            token: invited.token,
        })
        .await
        .unwrap()
        .into_inner()
        .member
        .unwrap();
    assert_eq!(
        accepted
            .grants
            .iter()
            .map(|g| (g.kind(), g.name.as_str(), g.role.as_str()))
            .collect::<Vec<_>>(),
        [(EntityKind::Project, "granted", "member")]
    );
    let manager = t.user("deputy").await;
    t.add_member("acme", "deputy", "manager").await;
    let admin = t.user("builder").await;
    t.add_member("acme", "builder", "admin").await;
    let set = |token: &str, user: &str, grants: &[(&str, &str)]| {
        let mut members = t.members_as(token);
        let request = UpdateMemberRequest {
            organization: "acme".into(),
            member: Some(Member {
                user: user.into(),
                grants: grants
                    .iter()
                    .map(|(name, role)| MemberGrant {
                        kind: EntityKind::Project as i32,
                        name: (*name).into(),
                        role: (*role).into(),
                    })
                    .collect(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["grants".into()],
            }),
        };
        async move { members.update_member(request).await }
    };
    let describe = |token: &str| describe_project(t.projects_as(token), "granted");
    // As a member of the project the guest may not configure it...
    assert_eq!(describe(&guest).await, Some(Code::PermissionDenied));
    // ...and only managers (and owners) change that.
    expect_code(
        set(&admin, "guest", &[("granted", "admin")]).await,
        Code::PermissionDenied,
    );
    let promoted = set(&manager, "guest", &[("granted", "admin")])
        .await
        .unwrap()
        .into_inner()
        .member
        .unwrap();
    assert_eq!(promoted.grants[0].role, "admin");
    assert_eq!(describe(&guest).await, None, "an admin of the project now");
    // Nothing new this way, and no role above admin.
    let bad = expect_code(
        set(
            &manager,
            "guest",
            &[("granted", "admin"), ("secret", "viewer")],
        )
        .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&bad), ["member.grants"]);
    expect_code(
        set(&manager, "guest", &[("granted", "owner")]).await,
        Code::InvalidArgument,
    );
    // Members act with their role: they hold no grants of their own.
    let status = expect_code(
        set(&manager, "builder", &[]).await,
        Code::FailedPrecondition,
    );
    assert_eq!(
        orgplane_e2e::reason(&status).as_deref(),
        Some("NOT_AN_OUTSIDER")
    );
    // Removed, the project is gone for the guest.
    set(&manager, "guest", &[]).await.unwrap();
    assert_eq!(get_project(&t, &guest, "granted").await, Code::NotFound);
}

/// Issue 21, the Polyaxon story of restrictions: an owner restricts a
/// project to a team; a team viewer reads it but cannot change it; an
/// admin outside the team gets `NOT_FOUND`, and does not see it in lists,
/// feeds or runs; a manager still reaches it; an outsider in the team,
/// promoted to team admin, manages it; lifting the restriction restores
/// the organization-wide rules.
async fn a_restricted_project_is_reached_by_those_admitted(t: &TestStack) {
    let owner = acme(t).await;
    let core = |role: &str| TeamGrant {
        kind: EntityKind::Project as i32,
        name: "secret".into(),
        role: role.into(),
    };
    t.create_team(&owner, "acme", "core", vec![core("admin")])
        .await;
    let join = |user: &str, role: &str| {
        let mut teams = t.teams_as(&owner);
        let request = AddTeamMemberRequest {
            organization: "acme".into(),
            team: "core".into(),
            member: Some(TeamMember {
                user: user.into(),
                role: role.into(),
                ..Default::default()
            }),
        };
        async move { teams.add_team_member(request).await.unwrap() }
    };
    let vera = t.user("vera").await;
    t.add_member("acme", "vera", "viewer").await;
    join("vera", "viewer").await;
    let adam = t.user("adam").await;
    t.add_member("acme", "adam", "admin").await;
    let mona = t.user("mona").await;
    t.add_member("acme", "mona", "manager").await;
    let invited = t
        .invitations_as(&owner)
        .create_invitation(CreateInvitationRequest {
            request_id: String::new(),
            organization: "acme".into(),
            invitation: invitation("olga@example.com", "outsider", &[], &["core"]),
        })
        .await
        .unwrap()
        .into_inner();
    let olga = t.user("olga").await;
    t.invitations_as(&olga)
        .accept_invitation(AcceptInvitationRequest {
            token: invited.token,
        })
        .await
        .unwrap();

    let restrict = |token: &str, restriction: Restriction| {
        let mut projects = t.projects_as(token);
        let request = UpdateProjectSettingsRequest {
            organization: "acme".into(),
            project: "secret".into(),
            settings: Some(ProjectSettings {
                restriction: Some(restriction),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["restriction".into()],
            }),
        };
        async move { projects.update_project_settings(request).await }
    };
    let to_core = Restriction {
        restricted: true,
        users: vec![],
        teams: vec!["core".into()],
    };
    // Admins and up restrict (a viewer may not); names are checked.
    expect_reason(
        restrict(&vera, to_core.clone()).await,
        Code::PermissionDenied,
        "ROLE_TOO_WEAK",
    );
    let unknown = expect_code(
        restrict(
            &owner,
            Restriction {
                teams: vec!["nobody".into()],
                ..to_core.clone()
            },
        )
        .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&unknown), ["settings.restriction.teams"]);
    // Listed before: what a member's lists hide is kept with their cached
    // membership, and the restriction must make it stale.
    let secret = "secret".to_owned();
    assert!(listed(t, &adam).await.contains(&secret));
    assert!(listed(t, &vera).await.contains(&secret));
    restrict(&owner, to_core.clone()).await.unwrap();
    assert!(listed(t, &vera).await.contains(&secret), "admitted by core");

    let describe = |token: &str| describe_project(t.projects_as(token), "secret");
    // The team viewer reads, but acts as a viewer.
    assert_eq!(get_project(t, &vera, "secret").await, Code::Ok);
    assert_eq!(describe(&vera).await, Some(Code::PermissionDenied));
    // An admin outside the team: not found, not listed, not in the feed.
    assert_eq!(get_project(t, &adam, "secret").await, Code::NotFound);
    assert_eq!(describe(&adam).await, Some(Code::NotFound));
    assert!(!listed(t, &adam).await.contains(&"secret".to_owned()));
    let feed = |token: &str| {
        let mut activities = t.activities_as(token);
        async move {
            activities
                .list_activities(ListActivitiesRequest {
                    organization: "acme".into(),
                    page_size: 1000,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .activities
                .into_iter()
                .filter(|a| a.project == "secret")
                .count()
        }
    };
    assert_eq!(feed(&adam).await, 0, "the admin's feed leaves it out");
    assert!(feed(&owner).await > 0, "the owner's does not");
    // Nor the organization's runs: a run of the project is listed to the
    // owner only (the agent comes with its `default` queue).
    t.agents_as(&owner)
        .create_agent(orgplane_proto::agents::CreateAgentRequest {
            request_id: String::new(),
            organization: "acme".into(),
            agent: Some(orgplane_proto::agents::Agent {
                name: "box".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    t.runs_as(&owner)
        .submit_run(orgplane_proto::agents::SubmitRunRequest {
            request_id: String::new(),
            organization: "acme".into(),
            project: "secret".into(),
            queue: String::new(),
            name: "hidden".into(),
            spec: None,
        })
        .await
        .unwrap();
    let runs = |token: &str| {
        let mut runs = t.runs_as(token);
        async move {
            runs.list_runs(orgplane_proto::agents::ListRunsRequest {
                organization: "acme".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .runs
            .len()
        }
    };
    assert_eq!(runs(&owner).await, 1);
    assert_eq!(runs(&adam).await, 0, "the admin's list leaves it out");
    // Nor the organization's statistics: its runs are not counted.
    let counted_runs = |token: String| async move {
        let counts = t.organization_counts(&token, "acme").await;
        counts
            .into_iter()
            .filter(|(name, _)| name.starts_with("runs."))
            .map(|(_, n)| n)
            .sum::<i64>()
    };
    assert_eq!(counted_runs(owner.clone()).await, 1);
    assert_eq!(
        counted_runs(adam.clone()).await,
        0,
        "the admin's leave it out"
    );
    // Leaving the team hides it from the next page too.
    t.teams_as(&owner)
        .remove_team_member(RemoveTeamMemberRequest {
            organization: "acme".into(),
            team: "core".into(),
            user: "vera".into(),
        })
        .await
        .unwrap();
    assert!(
        !listed(t, &vera).await.contains(&secret),
        "no longer in core"
    );
    join("vera", "viewer").await;
    assert!(listed(t, &vera).await.contains(&secret), "back in core");
    // A manager reaches it without being listed.
    assert_eq!(get_project(t, &mona, "secret").await, Code::Ok);
    assert!(listed(t, &mona).await.contains(&"secret".to_owned()));
    // The outsider in the team acts with their team role: a member, then,
    // promoted to team admin, manages the project.
    assert_eq!(get_project(t, &olga, "secret").await, Code::Ok);
    assert_eq!(describe(&olga).await, Some(Code::PermissionDenied));
    t.teams_as(&owner)
        .update_team_member(UpdateTeamMemberRequest {
            organization: "acme".into(),
            team: "core".into(),
            member: Some(TeamMember {
                user: "olga".into(),
                role: "admin".into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["role".into()],
            }),
        })
        .await
        .unwrap();
    assert_eq!(describe(&olga).await, None, "a team admin manages it");

    // Lifted, the organization-wide rules are back.
    restrict(&owner, Restriction::default()).await.unwrap();
    assert_eq!(get_project(t, &adam, "secret").await, Code::Ok);
    assert!(listed(t, &adam).await.contains(&secret));
    assert_eq!(describe(&adam).await, None);
}

/// Issue 21: a restricted project × every role × not admitted, admitted
/// through a team, admitted by name — reading and configuring it.
async fn restrictions_over_every_role(t: &TestStack) {
    let owner = t.user("owner").await;
    t.create_organization(&owner, "acme").await;
    project(t, &owner, "secret", Visibility::Private).await;
    t.create_team(
        &owner,
        "acme",
        "core",
        vec![grant(EntityKind::Project, "secret", "admin")],
    )
    .await;
    let (callers, listed_users) = t.restriction_callers(&owner, "acme", "core").await;
    t.projects_as(&owner)
        .update_project_settings(UpdateProjectSettingsRequest {
            organization: "acme".into(),
            project: "secret".into(),
            settings: Some(ProjectSettings {
                restriction: Some(Restriction {
                    restricted: true,
                    users: listed_users,
                    teams: vec!["core".into()],
                }),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["restriction".into()],
            }),
        })
        .await
        .unwrap();
    for RestrictionCaller {
        role,
        admission,
        token,
        ..
    } in &callers
    {
        let read = get_project(t, token, "secret").await;
        assert_eq!(
            read,
            restricted_code(*role, *admission, Permission::ProjectsRead),
            "read as {role:?} {admission:?}"
        );
        let manage = describe_project(t.projects_as(token), "secret")
            .await
            .unwrap_or(Code::Ok);
        assert_eq!(
            manage,
            restricted_code(*role, *admission, Permission::ProjectsManage),
            "configure as {role:?} {admission:?}"
        );
        let shown = read == Code::Ok;
        if *role != Role::Outsider {
            assert_eq!(
                listed(t, token).await.contains(&"secret".to_owned()),
                shown,
                "listed to {role:?} {admission:?}"
            );
        }
    }
}

orgplane_e2e::on_both_databases!(
    a_restricted_project_is_reached_by_those_admitted,
    restrictions_over_every_role,
);

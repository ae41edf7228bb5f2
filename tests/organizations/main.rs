//! The organizations service end to end: organizations from creation to
//! deletion, bad input and the role matrix (generated from the permission
//! table) over every RPC of its six services, tenant isolation, visibility,
//! and `CheckPermission` for the other services. Members, invitations,
//! projects, teams and settings have their own files.

use orgplane_e2e::{TestStack, expect_code, expect_reason, expected_code, mask, violated_fields};
use orgplane_platform::authz::Permission;
use orgplane_proto::organizations::*;
use tonic::Code;

mod invitations;
mod members;
mod projects;
mod settings;
mod teams;

async fn an_organization_from_creation_to_deletion(t: &TestStack) {
    let ada = t.user("ada").await;
    let org = t.create_organization(&ada, "acme").await;
    assert_eq!(org.role, "owner", "the creator owns it");
    assert_eq!(org.display_name, "acme Inc.");
    t.create_organization(&ada, "beta").await;

    let listed = t
        .orgs_as(&ada)
        .list_organizations(ListOrganizationsRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.total_size, 2);
    assert_eq!(listed.organizations[0].name, "acme");
    assert_eq!(listed.organizations[0].role, "owner");
    let second = t
        .orgs_as(&ada)
        .list_organizations(ListOrganizationsRequest {
            page_size: 1,
            page_token: listed.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.organizations[0].name, "beta");
    assert!(second.next_page_token.is_empty());

    let updated = t
        .orgs_as(&ada)
        .update_organization(UpdateOrganizationRequest {
            organization: Some(Organization {
                name: "acme".into(),
                website: "https://acme.example".into(),
                etag: org.etag.clone(),
                ..Default::default()
            }),
            update_mask: mask(&["website"]),
        })
        .await
        .unwrap()
        .into_inner()
        .organization
        .unwrap();
    assert_eq!(updated.website, "https://acme.example");
    assert_eq!(
        updated.display_name, "acme Inc.",
        "fields outside the mask stay"
    );
    assert_ne!(updated.etag, org.etag);
    expect_reason(
        t.orgs_as(&ada)
            .update_organization(UpdateOrganizationRequest {
                organization: Some(Organization {
                    name: "acme".into(),
                    description: "lost update".into(),
                    etag: org.etag.clone(),
                    ..Default::default()
                }),
                update_mask: mask(&["description"]),
            })
            .await,
        Code::Aborted,
        "STALE_ETAG",
    );

    let status = expect_code(
        t.orgs_as(&ada)
            .delete_organization(DeleteOrganizationRequest {
                organization: "acme".into(),
                confirm: "acm".into(),
                etag: String::new(),
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["confirm"]);
    t.orgs_as(&ada)
        .delete_organization(DeleteOrganizationRequest {
            organization: "acme".into(),
            confirm: "acme".into(),
            etag: updated.etag,
        })
        .await
        .unwrap();
    expect_code(
        t.orgs_as(&ada)
            .get_organization(GetOrganizationRequest {
                organization: "acme".into(),
            })
            .await,
        Code::NotFound,
    );
    expect_code(
        t.members_as(&ada)
            .list_members(ListMembersRequest {
                organization: "acme".into(),
                ..Default::default()
            })
            .await,
        Code::NotFound,
    );
}

#[tokio::test]
async fn bad_input_on_every_organization_rpc() {
    let t = TestStack::start().await;
    let ada = t.user("ada").await;
    t.create_organization(&ada, "acme").await;
    for (name, website) in [("admin", ""), ("Bad Name", ""), ("ok-name", "http://plain")] {
        let status = expect_code(
            t.orgs_as(&ada)
                .create_organization(CreateOrganizationRequest {
                    request_id: String::new(),
                    organization: Some(Organization {
                        name: name.into(),
                        website: website.into(),
                        ..Default::default()
                    }),
                })
                .await,
            Code::InvalidArgument,
        );
        let field = if website.is_empty() {
            "organization.name"
        } else {
            "organization.website"
        };
        assert_eq!(violated_fields(&status), [field], "{name} {website}");
    }
    let status = expect_code(
        t.orgs_as(&ada)
            .create_organization(CreateOrganizationRequest {
                request_id: String::new(),
                organization: None,
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["organization"]);
    expect_code(
        t.orgs_as(&ada)
            .create_organization(CreateOrganizationRequest {
                request_id: String::new(),
                organization: Some(Organization {
                    name: "acme".into(),
                    ..Default::default()
                }),
            })
            .await,
        Code::AlreadyExists,
    );
    let status = expect_code(
        t.orgs_as(&ada)
            .get_organization(GetOrganizationRequest {
                organization: "NOPE!".into(),
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["organization"]);
    let status = expect_code(
        t.orgs_as(&ada)
            .update_organization(UpdateOrganizationRequest {
                organization: Some(Organization {
                    name: "acme".into(),
                    ..Default::default()
                }),
                update_mask: mask(&["name"]),
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["update_mask"]);
    let status = expect_code(
        t.orgs_as(&ada)
            .list_organizations(ListOrganizationsRequest {
                filter: "role:admiral".into(),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["filter"]);
    let status = expect_code(
        t.members_as(&ada)
            .list_members(ListMembersRequest {
                organization: "acme".into(),
                order_by: "shoe_size".into(),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["order_by"]);
    let status = expect_code(
        t.members_as(&ada)
            .get_member(GetMemberRequest {
                organization: "acme".into(),
                user: String::new(),
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["user"]);
}

/// The implemented RPCs and the permission each needs. A call that passes
/// authorization fails afterwards in a harmless, recognizable way where it
/// would change something (a wrong `confirm`, an empty update).
#[derive(Debug, Clone, Copy)]
enum Rpc {
    GetOrganization,
    UpdateOrganization,
    DeleteOrganization,
    ListMembers,
    GetMember,
    UpdateMember,
    RemoveMember,
    GetOrganizationSettings,
    UpdateOrganizationSettings,
    CreateProject,
    GetProject,
    ListProjects,
    UpdateProject,
    DeleteProject,
    ArchiveProject,
    RestoreProject,
    GetProjectSettings,
    UpdateProjectSettings,
    CreateInvitation,
    ListInvitations,
    ResendInvitation,
    RevokeInvitation,
    CreateTeam,
    ListTeams,
    GetTeam,
    UpdateTeam,
    DeleteTeam,
    AddTeamMember,
    ListTeamMembers,
    UpdateTeamMember,
    RemoveTeamMember,
}

/// An invitation that does not exist (calls that pass authorization on it
/// answer `NOT_FOUND`).
const NO_SUCH_INVITATION: &str = "01900000-0000-7000-8000-000000000000";

/// The team the role-matrix team calls work on.
const TEAM: &str = "matrix-team";

/// The project every role-matrix call that needs one works on.
const PROJECT: &str = "shared-project";

impl Rpc {
    const ALL: [Rpc; 31] = [
        Rpc::ResendInvitation,
        Rpc::RevokeInvitation,
        Rpc::CreateTeam,
        Rpc::ListTeams,
        Rpc::GetTeam,
        Rpc::UpdateTeam,
        Rpc::DeleteTeam,
        Rpc::AddTeamMember,
        Rpc::ListTeamMembers,
        Rpc::UpdateTeamMember,
        Rpc::RemoveTeamMember,
        Rpc::CreateInvitation,
        Rpc::ListInvitations,
        Rpc::CreateProject,
        Rpc::GetProject,
        Rpc::ListProjects,
        Rpc::UpdateProject,
        Rpc::DeleteProject,
        Rpc::ArchiveProject,
        Rpc::RestoreProject,
        Rpc::GetProjectSettings,
        Rpc::UpdateProjectSettings,
        Rpc::GetOrganizationSettings,
        Rpc::UpdateOrganizationSettings,
        Rpc::GetOrganization,
        Rpc::UpdateOrganization,
        Rpc::DeleteOrganization,
        Rpc::ListMembers,
        Rpc::GetMember,
        Rpc::UpdateMember,
        Rpc::RemoveMember,
    ];

    fn permission(self) -> Permission {
        match self {
            Rpc::GetOrganization => Permission::OrganizationRead,
            Rpc::UpdateOrganization => Permission::OrganizationUpdate,
            Rpc::DeleteOrganization => Permission::OrganizationDelete,
            Rpc::ListMembers | Rpc::GetMember => Permission::MembersRead,
            Rpc::UpdateMember | Rpc::RemoveMember => Permission::MembersManage,
            Rpc::GetOrganizationSettings => Permission::SettingsRead,
            Rpc::UpdateOrganizationSettings => Permission::SettingsUpdate,
            Rpc::GetProject | Rpc::ListProjects | Rpc::GetProjectSettings => {
                Permission::ProjectsRead
            }
            Rpc::CreateProject
            | Rpc::UpdateProject
            | Rpc::DeleteProject
            | Rpc::ArchiveProject
            | Rpc::RestoreProject
            | Rpc::UpdateProjectSettings => Permission::ProjectsManage,
            Rpc::CreateInvitation
            | Rpc::ListInvitations
            | Rpc::ResendInvitation
            | Rpc::RevokeInvitation => Permission::MembersManage,
            Rpc::CreateTeam
            | Rpc::UpdateTeam
            | Rpc::DeleteTeam
            | Rpc::AddTeamMember
            | Rpc::UpdateTeamMember
            | Rpc::RemoveTeamMember => Permission::TeamsManage,
            Rpc::ListTeams | Rpc::GetTeam | Rpc::ListTeamMembers => Permission::TeamsRead,
        }
    }

    /// The code of a call as `token` on `org`, when authorized.
    async fn call(self, t: &TestStack, token: &str, org: &str) -> Code {
        let result = match self {
            Rpc::GetOrganization => t
                .orgs_as(token)
                .get_organization(GetOrganizationRequest {
                    organization: org.into(),
                })
                .await
                .map(|_| ()),
            Rpc::UpdateOrganization => t
                .orgs_as(token)
                .update_organization(UpdateOrganizationRequest {
                    organization: Some(Organization {
                        name: org.into(),
                        description: "changed by the matrix".into(),
                        ..Default::default()
                    }),
                    update_mask: mask(&["description"]),
                })
                .await
                .map(|_| ()),
            Rpc::DeleteOrganization => t
                .orgs_as(token)
                .delete_organization(DeleteOrganizationRequest {
                    organization: org.into(),
                    confirm: "not-the-name".into(),
                    etag: String::new(),
                })
                .await
                .map(|_| ()),
            Rpc::ListMembers => t
                .members_as(token)
                .list_members(ListMembersRequest {
                    organization: org.into(),
                    ..Default::default()
                })
                .await
                .map(|_| ()),
            Rpc::GetMember => t
                .members_as(token)
                .get_member(GetMemberRequest {
                    organization: org.into(),
                    user: "owner".into(),
                })
                .await
                .map(|_| ()),
            Rpc::UpdateMember => t
                .members_as(token)
                .update_member(UpdateMemberRequest {
                    organization: org.into(),
                    member: Some(Member {
                        user: "owner".into(),
                        role: "outsider".into(),
                        ..Default::default()
                    }),
                    update_mask: mask(&["role"]),
                })
                .await
                .map(|_| ()),
            Rpc::RemoveMember => t
                .members_as(token)
                .remove_member(RemoveMemberRequest {
                    organization: org.into(),
                    user: "Not A Slug".into(),
                })
                .await
                .map(|_| ()),
            Rpc::GetOrganizationSettings => t
                .orgs_as(token)
                .get_organization_settings(GetOrganizationSettingsRequest {
                    organization: org.into(),
                })
                .await
                .map(|_| ()),
            Rpc::UpdateOrganizationSettings => t
                .orgs_as(token)
                .update_organization_settings(UpdateOrganizationSettingsRequest {
                    organization: org.into(),
                    settings: Some(OrganizationSettings {
                        default_role: "owner".into(),
                        ..Default::default()
                    }),
                    update_mask: mask(&["default_role"]),
                })
                .await
                .map(|_| ()),
            Rpc::CreateProject => t
                .projects_as(token)
                .create_project(CreateProjectRequest {
                    request_id: String::new(),
                    organization: org.into(),
                    project: Some(Project {
                        name: "Not A Slug".into(),
                        ..Default::default()
                    }),
                })
                .await
                .map(|_| ()),
            Rpc::GetProject => t
                .projects_as(token)
                .get_project(GetProjectRequest {
                    organization: org.into(),
                    project: PROJECT.into(),
                })
                .await
                .map(|_| ()),
            Rpc::ListProjects => t
                .projects_as(token)
                .list_projects(ListProjectsRequest {
                    organization: org.into(),
                    ..Default::default()
                })
                .await
                .map(|_| ()),
            Rpc::UpdateProject => t
                .projects_as(token)
                .update_project(UpdateProjectRequest {
                    organization: org.into(),
                    project: Some(Project {
                        name: PROJECT.into(),
                        tags: vec!["Not A Slug".into()],
                        ..Default::default()
                    }),
                    update_mask: mask(&["tags"]),
                })
                .await
                .map(|_| ()),
            Rpc::DeleteProject | Rpc::ArchiveProject | Rpc::RestoreProject => {
                let mut projects = t.projects_as(token);
                let (organization, project) = (org.to_owned(), "Not A Slug".to_owned());
                match self {
                    Rpc::DeleteProject => projects
                        .delete_project(DeleteProjectRequest {
                            organization,
                            project,
                        })
                        .await
                        .map(|_| ()),
                    Rpc::ArchiveProject => projects
                        .archive_project(ArchiveProjectRequest {
                            organization,
                            project,
                        })
                        .await
                        .map(|_| ()),
                    _ => projects
                        .restore_project(RestoreProjectRequest {
                            organization,
                            project,
                        })
                        .await
                        .map(|_| ()),
                }
            }
            Rpc::GetProjectSettings => t
                .projects_as(token)
                .get_project_settings(GetProjectSettingsRequest {
                    organization: org.into(),
                    project: PROJECT.into(),
                })
                .await
                .map(|_| ()),
            Rpc::UpdateProjectSettings => t
                .projects_as(token)
                .update_project_settings(UpdateProjectSettingsRequest {
                    organization: org.into(),
                    project: PROJECT.into(),
                    settings: Some(ProjectSettings {
                        default_queue: "no-slash".into(),
                        ..Default::default()
                    }),
                    update_mask: mask(&["default_queue"]),
                })
                .await
                .map(|_| ()),
            Rpc::CreateInvitation => t
                .invitations_as(token)
                .create_invitation(CreateInvitationRequest {
                    request_id: String::new(),
                    organization: org.into(),
                    invitation: Some(Invitation {
                        email: "not-an-email".into(),
                        role: "member".into(),
                        ..Default::default()
                    }),
                })
                .await
                .map(|_| ()),
            Rpc::ListInvitations => t
                .invitations_as(token)
                .list_invitations(ListInvitationsRequest {
                    organization: org.into(),
                    ..Default::default()
                })
                .await
                .map(|_| ()),
            Rpc::CreateTeam => t
                .teams_as(token)
                .create_team(CreateTeamRequest {
                    request_id: String::new(),
                    organization: org.into(),
                    team: Some(Team {
                        name: "Not A Slug".into(),
                        ..Default::default()
                    }),
                })
                .await
                .map(|_| ()),
            Rpc::ListTeams => t
                .teams_as(token)
                .list_teams(ListTeamsRequest {
                    organization: org.into(),
                    ..Default::default()
                })
                .await
                .map(|_| ()),
            Rpc::ResendInvitation => t
                .invitations_as(token)
                .resend_invitation(ResendInvitationRequest {
                    organization: org.into(),
                    invitation: NO_SUCH_INVITATION.into(),
                })
                .await
                .map(|_| ()),
            Rpc::RevokeInvitation => t
                .invitations_as(token)
                .revoke_invitation(RevokeInvitationRequest {
                    organization: org.into(),
                    invitation: NO_SUCH_INVITATION.into(),
                })
                .await
                .map(|_| ()),
            Rpc::GetTeam => t
                .teams_as(token)
                .get_team(GetTeamRequest {
                    organization: org.into(),
                    team: TEAM.into(),
                })
                .await
                .map(|_| ()),
            Rpc::UpdateTeam => t
                .teams_as(token)
                .update_team(UpdateTeamRequest {
                    organization: org.into(),
                    team: Some(Team {
                        name: TEAM.into(),
                        grants: vec![TeamGrant {
                            kind: EntityKind::Unspecified as i32,
                            name: PROJECT.into(),
                            role: "viewer".into(),
                        }],
                        ..Default::default()
                    }),
                    update_mask: mask(&["grants"]),
                })
                .await
                .map(|_| ()),
            Rpc::DeleteTeam => t
                .teams_as(token)
                .delete_team(DeleteTeamRequest {
                    organization: org.into(),
                    team: "no-such-team".into(),
                })
                .await
                .map(|_| ()),
            Rpc::AddTeamMember => t
                .teams_as(token)
                .add_team_member(AddTeamMemberRequest {
                    organization: org.into(),
                    team: TEAM.into(),
                    member: Some(TeamMember {
                        user: "owner".into(),
                        role: "owner".into(),
                        ..Default::default()
                    }),
                })
                .await
                .map(|_| ()),
            Rpc::ListTeamMembers => t
                .teams_as(token)
                .list_team_members(ListTeamMembersRequest {
                    organization: org.into(),
                    team: TEAM.into(),
                    ..Default::default()
                })
                .await
                .map(|_| ()),
            Rpc::UpdateTeamMember => t
                .teams_as(token)
                .update_team_member(UpdateTeamMemberRequest {
                    organization: org.into(),
                    team: TEAM.into(),
                    member: Some(TeamMember {
                        user: "owner".into(),
                        role: "owner".into(),
                        ..Default::default()
                    }),
                    update_mask: mask(&["role"]),
                })
                .await
                .map(|_| ()),
            Rpc::RemoveTeamMember => t
                .teams_as(token)
                .remove_team_member(RemoveTeamMemberRequest {
                    organization: org.into(),
                    team: TEAM.into(),
                    user: "nobody-here".into(),
                })
                .await
                .map(|_| ()),
        };
        match result {
            Ok(()) => Code::Ok,
            Err(status) => status.code(),
        }
    }

    /// Whether every role of the organization may call it, seeing what is
    /// in its reach.
    fn lists_reach(self) -> bool {
        matches!(self, Rpc::ListProjects)
    }

    /// What an authorized call answers.
    fn authorized_code(self) -> Code {
        match self {
            Rpc::DeleteOrganization
            | Rpc::UpdateMember
            | Rpc::RemoveMember
            | Rpc::UpdateOrganizationSettings
            | Rpc::CreateProject
            | Rpc::UpdateProject
            | Rpc::DeleteProject
            | Rpc::ArchiveProject
            | Rpc::RestoreProject
            | Rpc::UpdateProjectSettings
            | Rpc::CreateInvitation
            | Rpc::CreateTeam
            | Rpc::UpdateTeam
            | Rpc::AddTeamMember
            | Rpc::UpdateTeamMember => Code::InvalidArgument,
            Rpc::DeleteTeam
            | Rpc::RemoveTeamMember
            | Rpc::ResendInvitation
            | Rpc::RevokeInvitation => Code::NotFound,
            _ => Code::Ok,
        }
    }
}

async fn role_matrix_from_the_permission_table(t: &TestStack) {
    let owner = t.user("owner").await;
    t.create_organization(&owner, "matrix").await;
    t.projects_as(&owner)
        .create_project(CreateProjectRequest {
            request_id: String::new(),
            organization: "matrix".into(),
            project: Some(Project {
                name: PROJECT.into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    t.teams_as(&owner)
        .create_team(CreateTeamRequest {
            request_id: String::new(),
            organization: "matrix".into(),
            team: Some(Team {
                name: TEAM.into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let mut callers = t.role_callers("matrix", owner).await;
    let stranger = t.user("stranger").await;
    callers.push((None, stranger));

    for rpc in Rpc::ALL {
        for (role, token) in &callers {
            let expected = match role {
                // Everyone in the organization lists the projects in reach
                // (public ones, and those granted to them).
                Some(_) if rpc.lists_reach() => Code::Ok,
                _ => expected_code(*role, rpc.permission(), rpc.authorized_code()),
            };
            let got = rpc.call(t, token, "matrix").await;
            assert_eq!(got, expected, "{rpc:?} as {role:?}");
        }
    }
}

#[tokio::test]
async fn another_organization_is_not_found_on_every_rpc() {
    let t = TestStack::start().await;
    let a = t.user("alpha-owner").await;
    let b = t.user("beta-owner").await;
    t.create_organization(&a, "alpha").await;
    t.create_organization(&b, "beta").await;
    for rpc in Rpc::ALL {
        assert_eq!(rpc.call(&t, &b, "alpha").await, Code::NotFound, "{rpc:?}");
        assert_eq!(
            rpc.call(&t, &b, "no-such-org").await,
            Code::NotFound,
            "{rpc:?}: a missing and a foreign organization look the same"
        );
    }
    let listed = t
        .orgs_as(&b)
        .list_organizations(ListOrganizationsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let names: Vec<_> = listed
        .organizations
        .iter()
        .map(|o| o.name.as_str())
        .collect();
    assert_eq!(names, ["beta"]);
}

#[tokio::test]
async fn check_permission_answers_the_other_services() {
    use orgplane_proto::organizations::organizations_internal_client::OrganizationsInternalClient;
    let t = TestStack::start().await;
    let owner = t.user("chief").await;
    t.create_organization(&owner, "guarded").await;
    let viewer_token = t.user("watcher").await;
    t.add_member("guarded", "watcher", "viewer").await;
    let outsider_token = t.user("passerby").await;

    let tls = t.stack.certs.load("registry").unwrap();
    let ca = std::fs::read_to_string(t.stack.certs.ca_cert()).unwrap();
    let channel =
        tonic::transport::Endpoint::from_shared(format!("https://{}", t.stack.organizations_addr))
            .unwrap()
            .tls_config(
                tonic::transport::ClientTlsConfig::new()
                    .ca_certificate(tonic::transport::Certificate::from_pem(ca))
                    .identity(tonic::transport::Identity::from_pem(
                        tls.cert_pem,
                        tls.key_pem,
                    ))
                    .domain_name("organizations"),
            )
            .unwrap()
            .connect_lazy();
    let mut internal = OrganizationsInternalClient::new(channel);
    let principal = |token: String| {
        let identity = t.stack.identity.clone();
        async move {
            identity
                .introspect(&token)
                .await
                .unwrap()
                .unwrap()
                .principal
                .to_proto()
        }
    };
    let ask = |principal, permission: &str| CheckPermissionRequest {
        principal: Some(principal),
        organization: "guarded".into(),
        permission: permission.into(),
        entity_kind: 0,
        entity: String::new(),
        entity_create_time: None,
        restrictions: Vec::new(),
        include_teams: false,
    };
    let viewer = principal(viewer_token).await;
    let read = internal
        .check_permission(ask(viewer.clone(), "projects.read"))
        .await
        .unwrap()
        .into_inner();
    assert!(read.visible && read.allowed);
    assert_eq!(read.role, "viewer");
    assert!(read.ttl_seconds > 0 && read.ttl_seconds <= 5);
    let manage = internal
        .check_permission(ask(viewer, "projects.manage"))
        .await
        .unwrap()
        .into_inner();
    assert!(manage.visible && !manage.allowed);
    let stranger = internal
        .check_permission(ask(principal(outsider_token).await, "projects.read"))
        .await
        .unwrap()
        .into_inner();
    assert!(!stranger.visible && !stranger.allowed);
    let status = expect_code(
        internal
            .check_permission(ask(principal(owner).await, "projects.fly"))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["permission"]);
}

/// Polyaxon's table: only the owner changes the organization's visibility
/// (a manager changes the rest of its profile), and only owners and
/// managers read its settings.
#[tokio::test]
async fn visibility_is_the_owners_and_settings_are_for_managers() {
    let t = TestStack::start().await;
    let owner = t.user("owner").await;
    t.create_organization(&owner, "acme").await;
    let manager = t.user("deputy").await;
    t.add_member("acme", "deputy", "manager").await;
    let admin = t.user("builder").await;
    t.add_member("acme", "builder", "admin").await;
    let update = |token: &str, field: &str| {
        let mut orgs = t.orgs_as(token);
        let request = UpdateOrganizationRequest {
            organization: Some(Organization {
                name: "acme".into(),
                description: "ours".into(),
                visibility: Visibility::Public as i32,
                ..Default::default()
            }),
            update_mask: mask(&[field]),
        };
        async move { orgs.update_organization(request).await }
    };
    update(&manager, "description").await.unwrap();
    expect_reason(
        update(&manager, "visibility").await,
        Code::PermissionDenied,
        "ROLE_TOO_WEAK",
    );
    let public = update(&owner, "visibility")
        .await
        .unwrap()
        .into_inner()
        .organization
        .unwrap();
    assert_eq!(public.visibility(), Visibility::Public);

    let settings = |token: &str| {
        let mut orgs = t.orgs_as(token);
        async move {
            orgs.get_organization_settings(GetOrganizationSettingsRequest {
                organization: "acme".into(),
            })
            .await
        }
    };
    settings(&owner).await.unwrap();
    settings(&manager).await.unwrap();
    expect_reason(
        settings(&admin).await,
        Code::PermissionDenied,
        "ROLE_TOO_WEAK",
    );
}

orgplane_e2e::on_both_databases!(
    an_organization_from_creation_to_deletion,
    role_matrix_from_the_permission_table,
);

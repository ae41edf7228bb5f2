//! The organizations service end to end: organizations, members, the role
//! matrix generated from the permission table, tenant isolation, and
//! `CheckPermission` for the other services.

use orgplane_e2e::{
    TestStack, eventually, expect_code, expect_reason, expected_code, violated_fields,
};
use orgplane_organizations::domain::members::MemberChanges;
use orgplane_platform::authz::Permission;
use orgplane_proto::organizations::*;
use orgplane_storage::page::ListQuery;
use prost_types::FieldMask;
use tonic::Code;

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask {
        paths: paths.iter().map(|p| p.to_string()).collect(),
    })
}

async fn create(t: &TestStack, token: &str, name: &str) -> Organization {
    t.orgs_as(token)
        .create_organization(CreateOrganizationRequest {
            request_id: String::new(),
            organization: Some(Organization {
                name: name.into(),
                display_name: format!("{name} Inc."),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .organization
        .unwrap()
}

async fn an_organization_from_creation_to_deletion(t: &TestStack) {
    let ada = t.user("ada").await;
    let org = create(t, &ada, "acme").await;
    assert_eq!(org.role, "owner", "the creator owns it");
    assert_eq!(org.display_name, "acme Inc.");
    create(t, &ada, "beta").await;

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
    create(&t, &ada, "acme").await;
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
    create(t, &owner, "matrix").await;
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
    create(&t, &a, "alpha").await;
    create(&t, &b, "beta").await;
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
async fn members_are_listed_with_filters_and_order() {
    let t = TestStack::start().await;
    let owner = t.user("boss").await;
    create(&t, &owner, "crew").await;
    for (name, role) in [
        ("amy", "viewer"),
        ("bob", "member"),
        ("cat", "member"),
        ("dan", "admin"),
    ] {
        t.user(name).await;
        t.add_member("crew", name, role).await;
    }
    let page = t
        .members_as(&owner)
        .list_members(ListMembersRequest {
            organization: "crew".into(),
            filter: "role:member".into(),
            order_by: "user desc".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let names: Vec<_> = page.members.iter().map(|m| m.user.as_str()).collect();
    assert_eq!(names, ["cat", "bob"]);
    assert_eq!(page.total_size, 2);
    let member = t
        .members_as(&owner)
        .get_member(GetMemberRequest {
            organization: "crew".into(),
            user: "dan".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .member
        .unwrap();
    assert_eq!(member.role, "admin");
    expect_code(
        t.members_as(&owner)
            .get_member(GetMemberRequest {
                organization: "crew".into(),
                user: "zoe".into(),
            })
            .await,
        Code::NotFound,
    );
}

#[tokio::test]
async fn check_permission_answers_the_other_services() {
    use orgplane_proto::organizations::organizations_internal_client::OrganizationsInternalClient;
    let t = TestStack::start().await;
    let owner = t.user("chief").await;
    create(&t, &owner, "guarded").await;
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

async fn set_role(
    t: &TestStack,
    token: &str,
    org: &str,
    user: &str,
    role: &str,
) -> Result<Member, tonic::Status> {
    t.members_as(token)
        .update_member(UpdateMemberRequest {
            organization: org.into(),
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

async fn the_member_lifecycle_keeps_its_invariants(t: &TestStack) {
    let owner = t.user("founder").await;
    create(t, &owner, "lifecycle").await;
    let manager = t.user("mgr").await;
    t.add_member("lifecycle", "mgr", "manager").await;
    let newbie = t.user("newbie").await;
    t.add_member("lifecycle", "newbie", "member").await;

    // The last owner cannot leave or be demoted.
    expect_reason(
        t.members_as(&owner)
            .leave_organization(LeaveOrganizationRequest {
                organization: "lifecycle".into(),
            })
            .await,
        Code::FailedPrecondition,
        "LAST_OWNER",
    );
    expect_reason(
        set_role(t, &owner, "lifecycle", "founder", "admin").await,
        Code::FailedPrecondition,
        "LAST_OWNER",
    );
    // Nobody raises their own role; managers never touch owners.
    expect_reason(
        set_role(t, &manager, "lifecycle", "mgr", "owner").await,
        Code::PermissionDenied,
        "SELF_ELEVATION",
    );
    expect_reason(
        set_role(t, &manager, "lifecycle", "newbie", "owner").await,
        Code::PermissionDenied,
        "OWNER_REQUIRED",
    );
    expect_reason(
        t.members_as(&manager)
            .remove_member(RemoveMemberRequest {
                organization: "lifecycle".into(),
                user: "founder".into(),
            })
            .await,
        Code::PermissionDenied,
        "OWNER_REQUIRED",
    );
    // Promote, demote, and a manager manages non-owners.
    assert_eq!(
        set_role(t, &manager, "lifecycle", "newbie", "admin")
            .await
            .unwrap()
            .role,
        "admin"
    );
    assert_eq!(
        set_role(t, &owner, "lifecycle", "newbie", "owner")
            .await
            .unwrap()
            .role,
        "owner"
    );
    assert_eq!(
        set_role(t, &owner, "lifecycle", "newbie", "viewer")
            .await
            .unwrap()
            .role,
        "viewer"
    );
    expect_code(
        t.orgs_as(&newbie)
            .update_organization(UpdateOrganizationRequest {
                organization: Some(Organization {
                    name: "lifecycle".into(),
                    ..Default::default()
                }),
                update_mask: mask(&["description"]),
            })
            .await,
        Code::PermissionDenied,
    );
    // Lowering one's own role is allowed.
    assert_eq!(
        set_role(t, &manager, "lifecycle", "mgr", "admin")
            .await
            .unwrap()
            .role,
        "admin"
    );
    // Remove, then the removed user no longer sees the organization.
    t.members_as(&owner)
        .remove_member(RemoveMemberRequest {
            organization: "lifecycle".into(),
            user: "newbie".into(),
        })
        .await
        .unwrap();
    expect_code(
        t.orgs_as(&newbie)
            .get_organization(GetOrganizationRequest {
                organization: "lifecycle".into(),
            })
            .await,
        Code::NotFound,
    );
    // With a second owner, the first may leave.
    set_role(t, &owner, "lifecycle", "mgr", "owner")
        .await
        .unwrap();
    t.members_as(&owner)
        .leave_organization(LeaveOrganizationRequest {
            organization: "lifecycle".into(),
        })
        .await
        .unwrap();
    expect_code(
        t.orgs_as(&owner)
            .get_organization(GetOrganizationRequest {
                organization: "lifecycle".into(),
            })
            .await,
        Code::NotFound,
    );
}

/// Two owners demote each other at once: one owner is left.
async fn two_owners_demoting_each_other_at_once_leave_one_owner(t: &TestStack) {
    let first = t.user("first").await;
    create(t, &first, "duel").await;
    let second = t.user("second").await;
    t.add_member("duel", "second", "owner").await;
    let principal = |token: String| {
        let identity = t.stack.identity.clone();
        async move {
            identity
                .introspect(&token)
                .await
                .unwrap()
                .unwrap()
                .principal
        }
    };
    let (p1, p2) = (principal(first).await, principal(second).await);
    let orgs = &t.stack.organizations;
    for round in 0..20 {
        // Straight at the domain, so both transactions overlap as much as
        // the database lets them.
        let (a, b) = tokio::join!(
            orgs.update_member(&p1, "duel", "second", MemberChanges::role("admin")),
            orgs.update_member(&p2, "duel", "first", MemberChanges::role("admin")),
        );
        assert!(
            a.is_ok() != b.is_ok(),
            "round {round}: exactly one demotion wins: {a:?} {b:?}"
        );
        let owners = orgs
            .list_members(&p1, "duel", &ListQuery::new(10, "", "role:owner", ""))
            .await
            .or(orgs
                .list_members(&p2, "duel", &ListQuery::new(10, "", "role:owner", ""))
                .await)
            .unwrap()
            .total_size;
        assert_eq!(owners, 1, "round {round}: exactly one owner remains");
        let (winner, loser) = if a.is_ok() {
            (&p1, "second")
        } else {
            (&p2, "first")
        };
        orgs.update_member(winner, "duel", loser, MemberChanges::role("owner"))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn settings_are_invite_only_by_default_and_change_with_an_etag() {
    let t = TestStack::start().await;
    let owner = t.user("setter").await;
    create(&t, &owner, "configured").await;
    let defaults = t
        .orgs_as(&owner)
        .get_organization_settings(GetOrganizationSettingsRequest {
            organization: "configured".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .settings
        .unwrap();
    let auth = defaults.auth.clone().unwrap();
    assert!(auth.invite_only, "invite-only by default");
    assert!(auth.password_enabled);
    assert_eq!(defaults.default_role, "member");

    let provider = AuthProvider {
        name: "corp-sso".into(),
        issuer: "https://login.example.com".into(),
        client_id: "orgplane".into(),
        allowed_email_domains: vec!["example.com".into()],
        enabled: true,
    };
    let changed = t
        .orgs_as(&owner)
        .update_organization_settings(UpdateOrganizationSettingsRequest {
            organization: "configured".into(),
            settings: Some(OrganizationSettings {
                default_role: "viewer".into(),
                auth: Some(AuthSettings {
                    invite_only: false,
                    allowed_email_domains: vec!["example.com".into()],
                    providers: vec![provider.clone()],
                    ..Default::default()
                }),
                etag: defaults.etag.clone(),
                ..Default::default()
            }),
            update_mask: mask(&[
                "default_role",
                "auth.invite_only",
                "auth.allowed_email_domains",
                "auth.providers",
            ]),
        })
        .await
        .unwrap()
        .into_inner()
        .settings
        .unwrap();
    let auth = changed.auth.unwrap();
    assert_eq!(changed.default_role, "viewer");
    assert!(!auth.invite_only);
    assert!(auth.password_enabled, "outside the mask: unchanged");
    assert_eq!(auth.providers, [provider]);
    expect_reason(
        t.orgs_as(&owner)
            .update_organization_settings(UpdateOrganizationSettingsRequest {
                organization: "configured".into(),
                settings: Some(OrganizationSettings {
                    support_email: "help@example.com".into(),
                    etag: defaults.etag,
                    ..Default::default()
                }),
                update_mask: mask(&["support_email"]),
            })
            .await,
        Code::Aborted,
        "STALE_ETAG",
    );

    let status = expect_code(
        t.orgs_as(&owner)
            .update_organization_settings(UpdateOrganizationSettingsRequest {
                organization: "configured".into(),
                settings: Some(OrganizationSettings {
                    support_email: "not-an-email".into(),
                    default_role: "owner".into(),
                    default_queue: "no-slash".into(),
                    activity_retention_days: -1,
                    auth: Some(AuthSettings {
                        allowed_email_domains: vec!["Not A Domain".into()],
                        providers: vec![
                            AuthProvider {
                                name: "dup".into(),
                                issuer: "http://insecure.example.com".into(),
                                client_id: String::new(),
                                ..Default::default()
                            },
                            AuthProvider {
                                name: "dup".into(),
                                issuer: "https://ok.example.com".into(),
                                client_id: "x".into(),
                                ..Default::default()
                            },
                        ],
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                update_mask: mask(&[
                    "support_email",
                    "default_role",
                    "default_queue",
                    "activity_retention_days",
                    "auth",
                ]),
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(
        violated_fields(&status),
        [
            "settings.support_email",
            "settings.default_role",
            "settings.default_queue",
            "settings.activity_retention_days",
            "settings.auth.allowed_email_domains",
            "settings.auth.providers.issuer",
            "settings.auth.providers.client_id",
            "settings.auth.providers.name",
        ]
    );
    let status = expect_code(
        t.orgs_as(&owner)
            .update_organization_settings(UpdateOrganizationSettingsRequest {
                organization: "configured".into(),
                settings: Some(OrganizationSettings::default()),
                update_mask: mask(&["color"]),
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["update_mask"]);
}

async fn a_project_from_creation_through_archive_to_deletion(t: &TestStack) {
    let owner = t.user("pm").await;
    create(t, &owner, "lab").await;
    let mut projects = t.projects_as(&owner);
    for (name, tags) in [
        ("vision", vec!["cv", "gpu"]),
        ("speech", vec!["audio"]),
        ("vitals", vec!["gpu"]),
    ] {
        projects
            .create_project(CreateProjectRequest {
                request_id: String::new(),
                organization: "lab".into(),
                project: Some(Project {
                    name: name.into(),
                    tags: tags.into_iter().map(String::from).collect(),
                    ..Default::default()
                }),
            })
            .await
            .unwrap();
    }
    expect_code(
        projects
            .create_project(CreateProjectRequest {
                request_id: String::new(),
                organization: "lab".into(),
                project: Some(Project {
                    name: "vision".into(),
                    ..Default::default()
                }),
            })
            .await,
        Code::AlreadyExists,
    );
    let names = |page: ListProjectsResponse| -> Vec<String> {
        page.projects.into_iter().map(|p| p.name).collect()
    };
    let list = |filter: &str| ListProjectsRequest {
        organization: "lab".into(),
        filter: filter.into(),
        ..Default::default()
    };
    assert_eq!(
        names(
            projects
                .list_projects(list("tag:gpu"))
                .await
                .unwrap()
                .into_inner()
        ),
        ["vision", "vitals"]
    );
    assert_eq!(
        names(
            projects
                .list_projects(list("name:vi"))
                .await
                .unwrap()
                .into_inner()
        ),
        ["vision", "vitals"]
    );

    let vision = projects
        .get_project(GetProjectRequest {
            organization: "lab".into(),
            project: "vision".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .project
        .unwrap();
    assert_eq!(vision.tags, ["cv", "gpu"]);
    let updated = projects
        .update_project(UpdateProjectRequest {
            organization: "lab".into(),
            project: Some(Project {
                name: "vision".into(),
                description: "image models".into(),
                etag: vision.etag.clone(),
                ..Default::default()
            }),
            update_mask: mask(&["description"]),
        })
        .await
        .unwrap()
        .into_inner()
        .project
        .unwrap();
    assert_eq!(updated.description, "image models");
    assert_eq!(updated.tags, ["cv", "gpu"], "outside the mask: unchanged");
    expect_reason(
        projects
            .update_project(UpdateProjectRequest {
                organization: "lab".into(),
                project: Some(Project {
                    name: "vision".into(),
                    readme: "stale".into(),
                    etag: vision.etag,
                    ..Default::default()
                }),
                update_mask: mask(&["readme"]),
            })
            .await,
        Code::Aborted,
        "STALE_ETAG",
    );

    let archived = projects
        .archive_project(ArchiveProjectRequest {
            organization: "lab".into(),
            project: "vision".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .project
        .unwrap();
    assert!(archived.archived);
    expect_reason(
        projects
            .update_project(UpdateProjectRequest {
                organization: "lab".into(),
                project: Some(Project {
                    name: "vision".into(),
                    ..Default::default()
                }),
                update_mask: mask(&["readme"]),
            })
            .await,
        Code::FailedPrecondition,
        "PROJECT_ARCHIVED",
    );
    assert_eq!(
        names(projects.list_projects(list("")).await.unwrap().into_inner()),
        ["speech", "vitals"]
    );
    assert_eq!(
        names(
            projects
                .list_projects(list("archived:true"))
                .await
                .unwrap()
                .into_inner()
        ),
        ["vision"]
    );
    projects
        .restore_project(RestoreProjectRequest {
            organization: "lab".into(),
            project: "vision".into(),
        })
        .await
        .unwrap();

    let settings = projects
        .get_project_settings(GetProjectSettingsRequest {
            organization: "lab".into(),
            project: "vision".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .settings
        .unwrap();
    assert!(settings.default_queue.is_empty());
    let changed = projects
        .update_project_settings(UpdateProjectSettingsRequest {
            organization: "lab".into(),
            project: "vision".into(),
            settings: Some(ProjectSettings {
                default_queue: "gpu-agent/fast".into(),
                allowed_queues: vec!["gpu-agent/fast".into(), "gpu-agent/slow".into()],
                etag: settings.etag.clone(),
                ..Default::default()
            }),
            update_mask: mask(&["default_queue", "allowed_queues"]),
        })
        .await
        .unwrap()
        .into_inner()
        .settings
        .unwrap();
    assert_eq!(changed.default_queue, "gpu-agent/fast");
    assert_eq!(changed.allowed_queues.len(), 2);
    expect_reason(
        projects
            .update_project_settings(UpdateProjectSettingsRequest {
                organization: "lab".into(),
                project: "vision".into(),
                settings: Some(ProjectSettings {
                    connections: vec!["data".into()],
                    etag: settings.etag,
                    ..Default::default()
                }),
                update_mask: mask(&["connections"]),
            })
            .await,
        Code::Aborted,
        "STALE_ETAG",
    );
    let status = expect_code(
        projects
            .update_project_settings(UpdateProjectSettingsRequest {
                organization: "lab".into(),
                project: "vision".into(),
                settings: Some(ProjectSettings {
                    default_queue: "nope".into(),
                    allowed_agents: vec!["Bad Agent".into()],
                    allowed_queues: vec!["a/b/c".into()],
                    connections: vec!["".into()],
                    ..Default::default()
                }),
                update_mask: mask(&[
                    "default_queue",
                    "allowed_agents",
                    "allowed_queues",
                    "connections",
                ]),
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(
        violated_fields(&status),
        [
            "settings.default_queue",
            "settings.allowed_agents",
            "settings.allowed_queues",
            "settings.connections"
        ]
    );

    projects
        .delete_project(DeleteProjectRequest {
            organization: "lab".into(),
            project: "vision".into(),
        })
        .await
        .unwrap();
    expect_code(
        projects
            .get_project(GetProjectRequest {
                organization: "lab".into(),
                project: "vision".into(),
            })
            .await,
        Code::NotFound,
    );
}

async fn invite(
    t: &TestStack,
    token: &str,
    org: &str,
    email: &str,
    role: &str,
) -> Result<CreateInvitationResponse, tonic::Status> {
    t.invitations_as(token)
        .create_invitation(CreateInvitationRequest {
            request_id: String::new(),
            organization: org.into(),
            invitation: Some(Invitation {
                email: email.into(),
                role: role.into(),
                ..Default::default()
            }),
        })
        .await
        .map(|r| r.into_inner())
}

async fn accept(
    t: &TestStack,
    token: &str,
    invitation: &str,
) -> Result<AcceptInvitationResponse, tonic::Status> {
    t.invitations_as(token)
        .accept_invitation(AcceptInvitationRequest {
            token: invitation.into(),
        })
        .await
        .map(|r| r.into_inner())
}

#[tokio::test]
async fn the_member_lifecycle_through_an_invitation() {
    let t = TestStack::start().await;
    let owner = t.user("host").await;
    create(&t, &owner, "guild").await;
    let bob = t.user("bob").await;
    let eve = t.user("eve").await;

    let invited = invite(&t, &owner, "guild", "Bob@Example.com", "member")
        .await
        .unwrap();
    assert!(invited.token.starts_with("opi_"));
    let invitation = invited.invitation.unwrap();
    assert_eq!(invitation.email, "bob@example.com");
    assert_eq!(invitation.state(), InvitationState::Pending);
    let days = invitation.expire_time.unwrap().seconds - invitation.create_time.unwrap().seconds;
    assert_eq!(days, 7 * 24 * 3600, "7 days by default");
    expect_code(
        invite(&t, &owner, "guild", "bob@example.com", "member").await,
        Code::AlreadyExists,
    );
    let outbox = {
        use sea_orm::EntityTrait;
        orgplane_storage::outbox::Entity::find()
            .all(t.stack.organizations.db())
            .await
            .unwrap()
    };
    assert_eq!(outbox.len(), 1, "handed to the delivery outbox");
    assert!(outbox[0].payload.contains(&invited.token));

    expect_reason(
        accept(&t, &eve, &invited.token).await,
        Code::PermissionDenied,
        "EMAIL_MISMATCH",
    );
    let joined = accept(&t, &bob, &invited.token).await.unwrap();
    assert_eq!(joined.organization, "guild");
    assert_eq!(joined.member.unwrap().role, "member");
    expect_reason(
        accept(&t, &bob, &invited.token).await,
        Code::FailedPrecondition,
        "INVITATION_ACCEPTED",
    );

    // Promote, demote, remove.
    assert_eq!(
        set_role(&t, &owner, "guild", "bob", "admin")
            .await
            .unwrap()
            .role,
        "admin"
    );
    assert_eq!(
        set_role(&t, &owner, "guild", "bob", "viewer")
            .await
            .unwrap()
            .role,
        "viewer"
    );
    t.members_as(&owner)
        .remove_member(RemoveMemberRequest {
            organization: "guild".into(),
            user: "bob".into(),
        })
        .await
        .unwrap();
    expect_code(
        t.orgs_as(&bob)
            .get_organization(GetOrganizationRequest {
                organization: "guild".into(),
            })
            .await,
        Code::NotFound,
    );
    // The last owner cannot leave.
    expect_reason(
        t.members_as(&owner)
            .leave_organization(LeaveOrganizationRequest {
                organization: "guild".into(),
            })
            .await,
        Code::FailedPrecondition,
        "LAST_OWNER",
    );

    // Resend kills the old token; revoke kills the invitation.
    let first = invite(&t, &owner, "guild", "eve@example.com", "viewer")
        .await
        .unwrap();
    let uuid = first.invitation.unwrap().uuid;
    let resent = t
        .invitations_as(&owner)
        .resend_invitation(ResendInvitationRequest {
            organization: "guild".into(),
            invitation: uuid.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_ne!(resent.token, first.token);
    expect_code(accept(&t, &eve, &first.token).await, Code::NotFound);
    t.invitations_as(&owner)
        .revoke_invitation(RevokeInvitationRequest {
            organization: "guild".into(),
            invitation: uuid.clone(),
        })
        .await
        .unwrap();
    expect_reason(
        accept(&t, &eve, &resent.token).await,
        Code::FailedPrecondition,
        "INVITATION_REVOKED",
    );
    let listed = t
        .invitations_as(&owner)
        .list_invitations(ListInvitationsRequest {
            organization: "guild".into(),
            filter: "state:revoked".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.total_size, 1);
    assert_eq!(listed.invitations[0].uuid, uuid);

    // Bad input.
    let status = expect_code(
        invite(&t, &owner, "guild", "nope", "admiral").await,
        Code::InvalidArgument,
    );
    assert_eq!(
        violated_fields(&status),
        ["invitation.email", "invitation.role"]
    );
    let status = expect_code(accept(&t, &bob, "").await, Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["token"]);
    expect_code(accept(&t, &bob, "opi_forged").await, Code::NotFound);
    // Only owners invite owners.
    let manager = t.user("steward").await;
    t.add_member("guild", "steward", "manager").await;
    expect_reason(
        invite(&t, &manager, "guild", "x@example.com", "owner").await,
        Code::PermissionDenied,
        "OWNER_REQUIRED",
    );
}

#[tokio::test]
async fn open_organizations_admit_verified_emails_of_allowed_domains() {
    let t = TestStack::start().await;
    let owner = t.user("opener").await;
    create(&t, &owner, "open-house").await;
    let walker = t.user("walker").await;
    let join = |token: String| {
        let mut client = t.invitations_as(&token);
        async move {
            client
                .join_organization(JoinOrganizationRequest {
                    organization: "open-house".into(),
                })
                .await
        }
    };
    expect_code(join(walker.clone()).await, Code::NotFound);
    t.orgs_as(&owner)
        .update_organization_settings(UpdateOrganizationSettingsRequest {
            organization: "open-house".into(),
            settings: Some(OrganizationSettings {
                default_role: "viewer".into(),
                auth: Some(AuthSettings {
                    invite_only: false,
                    allowed_email_domains: vec!["example.com".into()],
                    ..Default::default()
                }),
                ..Default::default()
            }),
            update_mask: mask(&[
                "default_role",
                "auth.invite_only",
                "auth.allowed_email_domains",
            ]),
        })
        .await
        .unwrap();
    expect_code(join(walker.clone()).await, Code::NotFound);
    // An identity provider (or a verification) marks the email verified.
    {
        use orgplane_identity::storage::users;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
        users::Entity::update_many()
            .col_expr(users::Column::EmailVerified, Expr::value(true))
            .filter(users::Column::Username.eq("walker"))
            .exec(t.stack.identity.db())
            .await
            .unwrap();
    }
    // Admitted once the gateway's token cache sees the verified address.
    eventually(
        std::time::Duration::from_secs(6),
        "the verified address admits",
        || async { join(walker.clone()).await.is_ok() },
    )
    .await;
    let member = t
        .members_as(&owner)
        .get_member(GetMemberRequest {
            organization: "open-house".into(),
            user: "walker".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .member
        .unwrap();
    assert_eq!(member.role, "viewer", "the default role");
    expect_reason(
        join(walker).await,
        Code::FailedPrecondition,
        "ALREADY_MEMBER",
    );
}

#[tokio::test]
async fn team_grants_raise_a_role_on_their_entities_only() {
    let t = TestStack::start().await;
    let owner = t.user("lead").await;
    create(&t, &owner, "studio").await;
    for name in ["alpha", "beta"] {
        t.projects_as(&owner)
            .create_project(CreateProjectRequest {
                request_id: String::new(),
                organization: "studio".into(),
                project: Some(Project {
                    name: name.into(),
                    ..Default::default()
                }),
            })
            .await
            .unwrap();
    }
    let viewer = t.user("vera").await;
    t.add_member("studio", "vera", "viewer").await;
    let describe = |token: String, project: &'static str| {
        let mut projects = t.projects_as(&token);
        async move {
            projects
                .update_project(UpdateProjectRequest {
                    organization: "studio".into(),
                    project: Some(Project {
                        name: project.into(),
                        description: "edited".into(),
                        ..Default::default()
                    }),
                    update_mask: mask(&["description"]),
                })
                .await
        }
    };
    expect_code(
        describe(viewer.clone(), "alpha").await,
        Code::PermissionDenied,
    );

    let team = t
        .teams_as(&owner)
        .create_team(CreateTeamRequest {
            request_id: String::new(),
            organization: "studio".into(),
            team: Some(Team {
                name: "alpha-crew".into(),
                grants: vec![TeamGrant {
                    kind: EntityKind::Project as i32,
                    name: "alpha".into(),
                    role: "admin".into(),
                }],
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .team
        .unwrap();
    assert_eq!(team.grants.len(), 1);
    t.teams_as(&owner)
        .add_team_member(AddTeamMemberRequest {
            organization: "studio".into(),
            team: "alpha-crew".into(),
            member: Some(TeamMember {
                user: "vera".into(),
                // The team's grant applies up to the member's own team
                // role: an admin of the team acts as admin on alpha.
                role: "admin".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    describe(viewer.clone(), "alpha")
        .await
        .expect("the team's admin grant applies on alpha");
    expect_code(
        describe(viewer.clone(), "beta").await,
        Code::PermissionDenied,
    );
    let members = t
        .teams_as(&viewer)
        .list_team_members(ListTeamMembersRequest {
            organization: "studio".into(),
            team: "alpha-crew".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(members.members[0].user, "vera");

    t.teams_as(&owner)
        .remove_team_member(RemoveTeamMemberRequest {
            organization: "studio".into(),
            team: "alpha-crew".into(),
            user: "vera".into(),
        })
        .await
        .unwrap();
    expect_code(describe(viewer, "alpha").await, Code::PermissionDenied);

    // Bad input and duplicates.
    let status = expect_code(
        t.teams_as(&owner)
            .create_team(CreateTeamRequest {
                request_id: String::new(),
                organization: "studio".into(),
                team: Some(Team {
                    name: "broken".into(),
                    grants: vec![TeamGrant {
                        kind: 0,
                        name: "Bad Name".into(),
                        role: "owner".into(),
                    }],
                    ..Default::default()
                }),
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(
        violated_fields(&status),
        ["team.grants.kind", "team.grants.name", "team.grants.role"]
    );
    expect_code(
        t.teams_as(&owner)
            .create_team(CreateTeamRequest {
                request_id: String::new(),
                organization: "studio".into(),
                team: Some(Team {
                    name: "alpha-crew".into(),
                    ..Default::default()
                }),
            })
            .await,
        Code::AlreadyExists,
    );
    expect_code(
        t.teams_as(&owner)
            .add_team_member(AddTeamMemberRequest {
                organization: "studio".into(),
                team: "alpha-crew".into(),
                member: Some(TeamMember {
                    user: "nobody".into(),
                    role: "viewer".into(),
                    ..Default::default()
                }),
            })
            .await,
        Code::NotFound,
    );
    t.teams_as(&owner)
        .delete_team(DeleteTeamRequest {
            organization: "studio".into(),
            team: "alpha-crew".into(),
        })
        .await
        .unwrap();
    expect_code(
        t.teams_as(&owner)
            .get_team(GetTeamRequest {
                organization: "studio".into(),
                team: "alpha-crew".into(),
            })
            .await,
        Code::NotFound,
    );
}

/// Issue 15, item 17: the lists of settings have documented limits, and an
/// oversized list is one violation however many bad items it holds.
#[tokio::test]
async fn settings_lists_are_bounded() {
    let t = TestStack::start().await;
    let owner = t.user("owner").await;
    t.create_organization(&owner, "acme").await;
    t.projects_as(&owner)
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
    let many = |n: usize, bad: bool| -> Vec<String> {
        (0..n)
            .map(|i| {
                if bad {
                    format!("Not Valid {i}")
                } else {
                    format!("d{i}.example.com")
                }
            })
            .collect()
    };
    for (domains, violations) in [(many(101, false), 1), (many(5000, true), 1)] {
        let status = expect_code(
            t.orgs_as(&owner)
                .update_organization_settings(UpdateOrganizationSettingsRequest {
                    organization: "acme".into(),
                    settings: Some(OrganizationSettings {
                        auth: Some(AuthSettings {
                            allowed_email_domains: domains,
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    update_mask: mask(&["auth.allowed_email_domains"]),
                })
                .await,
            Code::InvalidArgument,
        );
        assert_eq!(
            violated_fields(&status),
            vec!["settings.auth.allowed_email_domains"; violations]
        );
    }
    t.orgs_as(&owner)
        .update_organization_settings(UpdateOrganizationSettingsRequest {
            organization: "acme".into(),
            settings: Some(OrganizationSettings {
                auth: Some(AuthSettings {
                    allowed_email_domains: many(100, false),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            update_mask: mask(&["auth.allowed_email_domains"]),
        })
        .await
        .expect("100 domains are allowed");
    let providers = (0..21)
        .map(|i| AuthProvider {
            name: format!("p{i}"),
            issuer: "https://idp.example.com".into(),
            client_id: "orgplane".into(),
            ..Default::default()
        })
        .collect();
    let status = expect_code(
        t.orgs_as(&owner)
            .update_organization_settings(UpdateOrganizationSettingsRequest {
                organization: "acme".into(),
                settings: Some(OrganizationSettings {
                    auth: Some(AuthSettings {
                        providers,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                update_mask: mask(&["auth.providers"]),
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["settings.auth.providers"]);
    let agents = (0..101).map(|i| format!("agent-{i}")).collect();
    let status = expect_code(
        t.projects_as(&owner)
            .update_project_settings(UpdateProjectSettingsRequest {
                organization: "acme".into(),
                project: "vision".into(),
                settings: Some(ProjectSettings {
                    allowed_agents: agents,
                    ..Default::default()
                }),
                update_mask: mask(&["allowed_agents"]),
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["settings.allowed_agents"]);
    let grants = (0..101)
        .map(|i| TeamGrant {
            kind: EntityKind::Project as i32,
            name: format!("p{i}"),
            role: "viewer".into(),
        })
        .collect();
    let status = expect_code(
        t.teams_as(&owner)
            .create_team(CreateTeamRequest {
                request_id: String::new(),
                organization: "acme".into(),
                team: Some(Team {
                    name: "big".into(),
                    grants,
                    ..Default::default()
                }),
            })
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(violated_fields(&status), ["team.grants"]);
}

/// Polyaxon's table: only the owner changes the organization's visibility
/// (a manager changes the rest of its profile), and only owners and
/// managers read its settings.
#[tokio::test]
async fn visibility_is_the_owners_and_settings_are_for_managers() {
    let t = TestStack::start().await;
    let owner = t.user("owner").await;
    create(&t, &owner, "acme").await;
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
    two_owners_demoting_each_other_at_once_leave_one_owner,
    an_organization_from_creation_to_deletion,
    role_matrix_from_the_permission_table,
    the_member_lifecycle_keeps_its_invariants,
    a_project_from_creation_through_archive_to_deletion,
);

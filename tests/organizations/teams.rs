//! Teams end to end: a team's grants raise a role on their entities only.

use orgplane_e2e::{TestStack, expect_code, mask, violated_fields};
use orgplane_proto::organizations::*;
use tonic::Code;

#[tokio::test]
async fn team_grants_raise_a_role_on_their_entities_only() {
    let t = TestStack::start().await;
    let owner = t.user("lead").await;
    t.create_organization(&owner, "studio").await;
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

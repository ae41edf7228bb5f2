//! Projects end to end: from creation through archive to deletion.

use orgplane_e2e::{TestStack, expect_code, expect_reason, mask, violated_fields};
use orgplane_proto::organizations::*;
use tonic::Code;

async fn a_project_from_creation_through_archive_to_deletion(t: &TestStack) {
    let owner = t.user("pm").await;
    t.create_organization(&owner, "lab").await;
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

orgplane_e2e::on_both_databases!(a_project_from_creation_through_archive_to_deletion,);

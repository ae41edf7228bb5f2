//! `orgplane.organizations.v1.ProjectService`.

use orgplane_platform::time::to_timestamp;
use orgplane_proto::organizations::{self as pb, project_service_server::ProjectService};
use orgplane_storage::idempotency;
use orgplane_storage::page::ListQuery;
use orgplane_transport::grpc::{require_principal, required, update_paths};
use tonic::{Request, Response, Status};

use super::convert;
use crate::{
    domain::{
        Organizations,
        organizations::etag,
        projects::{ProjectFields, ProjectSettings, ProjectSettingsChanges, Restriction, tags_of},
    },
    storage::projects,
};

pub(super) struct ProjectApi(pub Organizations);

fn project(p: projects::Model) -> pb::Project {
    pb::Project {
        tags: tags_of(&p),
        uuid: p.uuid,
        name: p.name,
        description: p.description,
        readme: p.readme,
        visibility: convert::visibility(&p.visibility) as i32,
        archived: p.archived,
        create_time: Some(to_timestamp(p.create_time)),
        update_time: Some(to_timestamp(p.update_time)),
        etag: etag(p.version),
    }
}

fn settings((s, etag): (ProjectSettings, String)) -> pb::ProjectSettings {
    pb::ProjectSettings {
        default_queue: s.default_queue,
        allowed_agents: s.allowed_agents,
        allowed_queues: s.allowed_queues,
        connections: s.connections,
        restriction: Some(s.restriction.to_proto()),
        etag,
    }
}

fn fields(p: &pb::Project, paths: Option<&[String]>) -> ProjectFields {
    let has = |f: &str| paths.is_none_or(|paths| paths.iter().any(|x| x == f));
    ProjectFields {
        description: has("description").then(|| p.description.clone()),
        tags: has("tags").then(|| p.tags.clone()),
        readme: has("readme").then(|| p.readme.clone()),
        visibility: has("visibility").then(|| convert::visibility_str(p.visibility()).to_owned()),
    }
}

#[tonic::async_trait]
impl ProjectService for ProjectApi {
    async fn create_project(
        &self,
        req: Request<pb::CreateProjectRequest>,
    ) -> Result<Response<pb::CreateProjectResponse>, Status> {
        let principal = &require_principal(&req)?;
        let r = req.into_inner();
        let response = idempotency::once(
            &self.0.db,
            principal,
            "ProjectService/CreateProject",
            r.request_id.clone(),
            r,
            |r| async move {
                let p = required(r.project, "project")?;
                let created = self
                    .0
                    .create_project(principal, &r.organization, &p.name, fields(&p, None))
                    .await?;
                Ok(pb::CreateProjectResponse {
                    project: Some(project(created)),
                })
            },
        )
        .await?;
        Ok(Response::new(response))
    }

    async fn get_project(
        &self,
        req: Request<pb::GetProjectRequest>,
    ) -> Result<Response<pb::GetProjectResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        let p = self
            .0
            .get_project(&principal, &r.organization, &r.project)
            .await?;
        Ok(Response::new(pb::GetProjectResponse {
            project: Some(project(p)),
        }))
    }

    async fn list_projects(
        &self,
        req: Request<pb::ListProjectsRequest>,
    ) -> Result<Response<pb::ListProjectsResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.into_inner();
        let page = self
            .0
            .list_projects(
                &principal,
                &r.organization,
                &ListQuery::new(r.page_size, &r.page_token, &r.filter, &r.order_by)
                    .counting(r.include_total_size),
            )
            .await?;
        Ok(Response::new(pb::ListProjectsResponse {
            projects: page.items.into_iter().map(project).collect(),
            next_page_token: page.next_page_token,
            total_size: page.total_size as i64,
        }))
    }

    async fn update_project(
        &self,
        req: Request<pb::UpdateProjectRequest>,
    ) -> Result<Response<pb::UpdateProjectResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.into_inner();
        let paths = update_paths(
            r.update_mask,
            &["description", "tags", "readme", "visibility"],
        )?;
        let p = required(r.project, "project")?;
        let updated = self
            .0
            .update_project(
                &principal,
                &r.organization,
                &p.name,
                fields(&p, Some(&paths)),
                &p.etag,
            )
            .await?;
        Ok(Response::new(pb::UpdateProjectResponse {
            project: Some(project(updated)),
        }))
    }

    async fn delete_project(
        &self,
        req: Request<pb::DeleteProjectRequest>,
    ) -> Result<Response<pb::DeleteProjectResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        self.0
            .delete_project(&principal, &r.organization, &r.project)
            .await?;
        Ok(Response::new(pb::DeleteProjectResponse {}))
    }

    async fn archive_project(
        &self,
        req: Request<pb::ArchiveProjectRequest>,
    ) -> Result<Response<pb::ArchiveProjectResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        let p = self
            .0
            .set_project_archived(&principal, &r.organization, &r.project, true)
            .await?;
        Ok(Response::new(pb::ArchiveProjectResponse {
            project: Some(project(p)),
        }))
    }

    async fn restore_project(
        &self,
        req: Request<pb::RestoreProjectRequest>,
    ) -> Result<Response<pb::RestoreProjectResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        let p = self
            .0
            .set_project_archived(&principal, &r.organization, &r.project, false)
            .await?;
        Ok(Response::new(pb::RestoreProjectResponse {
            project: Some(project(p)),
        }))
    }

    async fn get_project_settings(
        &self,
        req: Request<pb::GetProjectSettingsRequest>,
    ) -> Result<Response<pb::GetProjectSettingsResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        let s = self
            .0
            .get_project_settings(&principal, &r.organization, &r.project)
            .await?;
        Ok(Response::new(pb::GetProjectSettingsResponse {
            settings: Some(settings(s)),
        }))
    }

    async fn update_project_settings(
        &self,
        req: Request<pb::UpdateProjectSettingsRequest>,
    ) -> Result<Response<pb::UpdateProjectSettingsResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.into_inner();
        let paths = update_paths(
            r.update_mask,
            &[
                "default_queue",
                "allowed_agents",
                "allowed_queues",
                "connections",
                "restriction",
            ],
        )?;
        let s = required(r.settings, "settings")?;
        let has = |f: &str| paths.iter().any(|x| x == f);
        let changes = ProjectSettingsChanges {
            default_queue: has("default_queue").then(|| s.default_queue.clone()),
            allowed_agents: has("allowed_agents").then(|| s.allowed_agents.clone()),
            allowed_queues: has("allowed_queues").then(|| s.allowed_queues.clone()),
            connections: has("connections").then(|| s.connections.clone()),
            restriction: has("restriction").then(|| Restriction::from_proto(s.restriction.clone())),
        };
        let updated = self
            .0
            .update_project_settings(&principal, &r.organization, &r.project, changes, &s.etag)
            .await?;
        Ok(Response::new(pb::UpdateProjectSettingsResponse {
            settings: Some(settings(updated)),
        }))
    }
}

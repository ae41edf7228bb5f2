//! `orgplane.agents.v1.ConnectionService`.

use orgplane_platform::json::{json_to_struct, struct_to_json};
use orgplane_platform::{tags, time::to_timestamp};
use orgplane_proto::agents::{self as pb, connection_service_server::ConnectionService};
use orgplane_storage::page::ListQuery;
use orgplane_storage::{etag::etag, idempotency};
use orgplane_transport::grpc::{require_principal, required, update_paths};
use tonic::{Request, Response, Status};

use crate::{
    domain::{Agents, connections::ConnectionFields},
    storage::connections,
};

pub(super) struct ConnectionApi(pub Agents);

/// Fields an update may name.
const FIELDS: &[&str] = &["description", "tags", "schema", "secret", "config_map"];

fn connection(c: connections::Model) -> pb::Connection {
    let schema: serde_json::Value =
        serde_json::from_str(&c.schema).unwrap_or_else(|_| serde_json::json!({}));
    pb::Connection {
        uuid: c.uuid,
        name: c.name,
        description: c.description,
        tags: tags::parse(&c.tags),
        kind: c.kind,
        schema: Some(json_to_struct(&schema)),
        secret: c.secret,
        config_map: c.config_map,
        create_time: Some(to_timestamp(c.create_time)),
        update_time: Some(to_timestamp(c.update_time)),
        etag: etag(c.version),
    }
}

fn fields(c: &pb::Connection, paths: Option<&[String]>) -> ConnectionFields {
    let has = |p: &str| paths.is_none_or(|paths| paths.iter().any(|x| x == p));
    ConnectionFields {
        description: has("description").then(|| c.description.clone()),
        tags: has("tags").then(|| c.tags.clone()),
        kind: paths.is_none().then(|| c.kind.clone()),
        schema: has("schema").then(|| {
            c.schema
                .as_ref()
                .map(struct_to_json)
                .unwrap_or_else(|| serde_json::json!({}))
        }),
        secret: has("secret").then(|| c.secret.clone()),
        config_map: has("config_map").then(|| c.config_map.clone()),
    }
}

#[tonic::async_trait]
impl ConnectionService for ConnectionApi {
    async fn create_connection(
        &self,
        req: Request<pb::CreateConnectionRequest>,
    ) -> Result<Response<pb::CreateConnectionResponse>, Status> {
        let principal = &require_principal(&req)?;
        let r = req.into_inner();
        let response = idempotency::once(
            &self.0.db,
            principal,
            "ConnectionService/CreateConnection",
            r.request_id.clone(),
            r,
            |r| async move {
                let c = required(r.connection, "connection")?;
                let row = self
                    .0
                    .create_connection(principal, &r.organization, &c.name, fields(&c, None))
                    .await?;
                Ok(pb::CreateConnectionResponse {
                    connection: Some(connection(row)),
                })
            },
        )
        .await?;
        Ok(Response::new(response))
    }

    async fn get_connection(
        &self,
        req: Request<pb::GetConnectionRequest>,
    ) -> Result<Response<pb::GetConnectionResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        let row = self
            .0
            .get_connection(&principal, &r.organization, &r.connection)
            .await?;
        Ok(Response::new(pb::GetConnectionResponse {
            connection: Some(connection(row)),
        }))
    }

    async fn list_connections(
        &self,
        req: Request<pb::ListConnectionsRequest>,
    ) -> Result<Response<pb::ListConnectionsResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        let page = self
            .0
            .list_connections(
                &principal,
                &r.organization,
                &ListQuery::new(r.page_size, &r.page_token, &r.filter, &r.order_by)
                    .counting(r.include_total_size),
            )
            .await?;
        Ok(Response::new(pb::ListConnectionsResponse {
            connections: page.items.into_iter().map(connection).collect(),
            next_page_token: page.next_page_token,
            total_size: page.total_size as i64,
        }))
    }

    async fn update_connection(
        &self,
        req: Request<pb::UpdateConnectionRequest>,
    ) -> Result<Response<pb::UpdateConnectionResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.into_inner();
        let c = required(r.connection, "connection")?;
        let paths = update_paths(r.update_mask, FIELDS)?;
        let row = self
            .0
            .update_connection(
                &principal,
                &r.organization,
                &c.name,
                fields(&c, Some(&paths)),
                &c.etag,
            )
            .await?;
        Ok(Response::new(pb::UpdateConnectionResponse {
            connection: Some(connection(row)),
        }))
    }

    async fn delete_connection(
        &self,
        req: Request<pb::DeleteConnectionRequest>,
    ) -> Result<Response<pb::DeleteConnectionResponse>, Status> {
        let principal = require_principal(&req)?;
        let r = req.get_ref();
        self.0
            .delete_connection(&principal, &r.organization, &r.connection)
            .await?;
        Ok(Response::new(pb::DeleteConnectionResponse {}))
    }
}

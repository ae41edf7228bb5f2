//! `orgplane.registry.v1.RegistryInternal`.

use orgplane_platform::{Error, restriction::Viewer, validate};
use orgplane_proto::registry::{self as pb, registry_internal_server::RegistryInternal};
use tonic::{Request, Response, Status};

use crate::domain::Registry;

pub(super) struct InternalApi(pub Registry);

#[tonic::async_trait]
impl RegistryInternal for InternalApi {
    async fn get_registry_counts(
        &self,
        req: Request<pb::GetRegistryCountsRequest>,
    ) -> Result<Response<pb::GetRegistryCountsResponse>, Status> {
        let r = req.into_inner();
        validate::required(&r.organization_uuid, 64)
            .map_err(|e| Error::invalid("organization_uuid", e))?;
        let viewer = r.viewer.map(Viewer::from_proto);
        let counts = self
            .0
            .counts(&r.organization_uuid, &r.project, viewer.as_ref())
            .await?;
        Ok(Response::new(pb::GetRegistryCountsResponse {
            counts: counts.into_iter().collect(),
        }))
    }

    async fn get_hidden_entries(
        &self,
        req: Request<pb::GetHiddenEntriesRequest>,
    ) -> Result<Response<pb::GetHiddenEntriesResponse>, Status> {
        let r = req.into_inner();
        validate::required(&r.organization_uuid, 64)
            .map_err(|e| Error::invalid("organization_uuid", e))?;
        let viewer = Viewer::from_proto(r.viewer.unwrap_or_default());
        let hidden = self.0.hidden_entries(&r.organization_uuid, &viewer).await?;
        Ok(Response::new(pb::GetHiddenEntriesResponse {
            model_registry: hidden.model_registry,
            component_hub: hidden.component_hub,
            models: hidden.models,
            components: hidden.components,
        }))
    }
}

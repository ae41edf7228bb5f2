//! `orgplane.registry.v1.RegistryInternal`.

use orgplane_platform::{Error, validate};
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
        let counts = self.0.counts(&r.organization_uuid, &r.project).await?;
        Ok(Response::new(pb::GetRegistryCountsResponse {
            counts: counts.into_iter().collect(),
        }))
    }
}

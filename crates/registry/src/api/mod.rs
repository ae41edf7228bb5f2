//! The gRPC surface of the registry: thin adapters over one catalog.

mod components;
mod convert;
mod models;

use orgplane_platform::{layers::caller::CallerPolicy, pki::ServiceTls, server::GrpcServer};
use orgplane_proto::registry::{
    component_hub_service_server::ComponentHubServiceServer,
    model_registry_service_server::ModelRegistryServiceServer,
};

use crate::domain::Registry;

/// Who may call the registry: the gateway.
pub fn caller_policy() -> CallerPolicy {
    CallerPolicy::new()
        .allow_infrastructure()
        .allow("/orgplane.registry.v1.", &["gateway"])
}

/// The registry server over mTLS.
pub fn grpc_server(registry: Registry, tls: &ServiceTls) -> GrpcServer {
    GrpcServer::new("registry")
        .add_service(ModelRegistryServiceServer::new(models::ModelApi(
            registry.clone(),
        )))
        .add_service(ComponentHubServiceServer::new(components::ComponentApi(
            registry,
        )))
        .mtls(tls, caller_policy())
}

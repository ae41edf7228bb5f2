//! The gRPC surface of the registry: thin adapters over one catalog.

mod components;
mod convert;
mod entry_api;
mod internal;
mod models;

use orgplane_proto::registry::{
    component_hub_service_server::ComponentHubServiceServer,
    model_registry_service_server::ModelRegistryServiceServer,
    registry_internal_server::RegistryInternalServer,
};
use orgplane_transport::{layers::caller::CallerPolicy, pki::ServiceTls, server::GrpcServer};

use crate::domain::Registry;

/// Who may call the registry: the gateway its public services, the
/// organizations service (statistics) its internal one.
pub fn caller_policy() -> CallerPolicy {
    CallerPolicy::new()
        .allow_infrastructure()
        .allow("/orgplane.registry.v1.", &["gateway"])
        .allow(
            "/orgplane.registry.v1.RegistryInternal/",
            &["organizations"],
        )
}

/// The registry server over mTLS.
pub fn grpc_server(registry: Registry, tls: &ServiceTls) -> GrpcServer {
    GrpcServer::new("registry")
        .add_service(ModelRegistryServiceServer::new(models::ModelApi(
            registry.clone(),
        )))
        .add_service(ComponentHubServiceServer::new(components::ComponentApi(
            registry.clone(),
        )))
        .add_service(RegistryInternalServer::new(internal::InternalApi(registry)))
        .mtls(tls, caller_policy())
}

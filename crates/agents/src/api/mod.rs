//! The gRPC surface of the agents service: thin adapters.

mod agents;
mod connections;
mod internal;
mod queues;
mod runs;

use orgplane_proto::agents::{
    agent_service_server::AgentServiceServer, agents_internal_server::AgentsInternalServer,
    connection_service_server::ConnectionServiceServer, queue_service_server::QueueServiceServer,
    run_service_server::RunServiceServer,
};
use orgplane_transport::{layers::caller::CallerPolicy, pki::ServiceTls, server::GrpcServer};

use crate::domain::Agents;

/// Who may call the agents service: the gateway its public services, the
/// organizations service (statistics) its internal one.
pub fn caller_policy() -> CallerPolicy {
    CallerPolicy::new()
        .allow_infrastructure()
        .allow("/orgplane.agents.v1.", &["gateway"])
        .allow("/orgplane.agents.v1.AgentsInternal/", &["organizations"])
}

/// The agents server over mTLS.
pub fn grpc_server(agents: Agents, tls: &ServiceTls) -> GrpcServer {
    GrpcServer::new("agents")
        .add_service(AgentServiceServer::new(agents::AgentApi(agents.clone())))
        .add_service(QueueServiceServer::new(queues::QueueApi(agents.clone())))
        .add_service(ConnectionServiceServer::new(connections::ConnectionApi(
            agents.clone(),
        )))
        .add_service(RunServiceServer::new(runs::RunApi(agents.clone())))
        .add_service(AgentsInternalServer::new(internal::InternalApi(agents)))
        .mtls(tls, caller_policy())
}

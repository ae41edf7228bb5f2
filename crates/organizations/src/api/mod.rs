//! The gRPC surface of the organizations service: thin adapters.

mod activities;
mod convert;
mod internal;
mod invitations;
mod members;
mod organizations;
mod projects;
mod teams;

use orgplane_proto::organizations::{
    activity_service_server::ActivityServiceServer,
    invitation_service_server::InvitationServiceServer, member_service_server::MemberServiceServer,
    organization_service_server::OrganizationServiceServer,
    organizations_internal_server::OrganizationsInternalServer,
    project_service_server::ProjectServiceServer, team_service_server::TeamServiceServer,
};
use orgplane_transport::{layers::caller::CallerPolicy, pki::ServiceTls, server::GrpcServer};

use crate::domain::Organizations;

/// Who may call the organizations service: the gateway for the public
/// services; the gateway and every backend for the internal one.
pub fn caller_policy() -> CallerPolicy {
    CallerPolicy::new()
        .allow_infrastructure()
        .allow("/orgplane.organizations.v1.", &["gateway"])
        .allow(
            "/orgplane.organizations.v1.OrganizationsInternal/",
            &["gateway", "identity", "registry", "agents"],
        )
        .allow(
            "/orgplane.organizations.v1.OrganizationsInternal/WatchAccessChanges",
            &["identity", "registry", "agents"],
        )
}

/// The organizations server over mTLS.
pub fn grpc_server(organizations: Organizations, tls: &ServiceTls) -> GrpcServer {
    GrpcServer::new("organizations")
        .add_service(OrganizationServiceServer::new(
            organizations::OrganizationApi(organizations.clone()),
        ))
        .add_service(MemberServiceServer::new(members::MemberApi(
            organizations.clone(),
        )))
        .add_service(ProjectServiceServer::new(projects::ProjectApi(
            organizations.clone(),
        )))
        .add_service(InvitationServiceServer::new(invitations::InvitationApi(
            organizations.clone(),
        )))
        .add_service(TeamServiceServer::new(teams::TeamApi(
            organizations.clone(),
        )))
        .add_service(ActivityServiceServer::new(activities::ActivityApi(
            organizations.clone(),
        )))
        .add_service(OrganizationsInternalServer::new(internal::InternalApi(
            organizations,
        )))
        .mtls(tls, caller_policy())
}

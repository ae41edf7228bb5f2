//! The gRPC surface of identity: decode and validate at the edge, call the
//! domain, encode. Nothing here decides a rule.

mod auth;
mod convert;
mod internal;
mod service_accounts;
mod tokens;
mod users;

use orgplane_proto::identity::{
    auth_service_server::AuthServiceServer, identity_internal_server::IdentityInternalServer,
    service_account_service_server::ServiceAccountServiceServer,
    token_service_server::TokenServiceServer, user_service_server::UserServiceServer,
};
use orgplane_transport::{layers::caller::CallerPolicy, pki::ServiceTls, server::GrpcServer};

use crate::domain::Identity;

/// Who may call identity: the gateway for the public services; the gateway
/// and the services that authenticate callers themselves for introspection.
pub fn caller_policy() -> CallerPolicy {
    CallerPolicy::new()
        .allow_infrastructure()
        .allow("/orgplane.identity.v1.", &["gateway"])
        .allow(
            "/orgplane.identity.v1.IdentityInternal/",
            &["gateway", "organizations", "registry", "agents"],
        )
        .allow(
            "/orgplane.identity.v1.IdentityInternal/WatchRevocations",
            &["gateway"],
        )
        .allow(
            "/orgplane.identity.v1.IdentityInternal/MarkEmailVerified",
            &["organizations"],
        )
        .allow(
            "/orgplane.identity.v1.IdentityInternal/IssueAgentToken",
            &["agents"],
        )
        .allow(
            "/orgplane.identity.v1.IdentityInternal/RevokeAgentTokens",
            &["agents"],
        )
        .allow(
            "/orgplane.identity.v1.IdentityInternal/RevokeOrganizationAgentTokens",
            &["organizations"],
        )
}

/// The identity server: every implemented identity service over mTLS.
pub fn grpc_server(identity: Identity, tls: &ServiceTls) -> GrpcServer {
    GrpcServer::new("identity")
        .add_service(AuthServiceServer::new(auth::AuthApi(identity.clone())))
        .add_service(UserServiceServer::new(users::UserApi(identity.clone())))
        .add_service(TokenServiceServer::new(tokens::TokenApi(identity.clone())))
        .add_service(ServiceAccountServiceServer::new(
            service_accounts::ServiceAccountApi(identity.clone()),
        ))
        .add_service(IdentityInternalServer::new(internal::InternalApi(identity)))
        .mtls(tls, caller_policy())
}

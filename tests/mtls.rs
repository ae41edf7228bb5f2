//! Backends accept only mTLS clients of the internal CA, and only the
//! identities allowed for each method.

use orgplane_e2e::{TestStack, expect_code};
use orgplane_proto::identity::{
    GetCurrentUserRequest, IntrospectTokenRequest, LoginRequest,
    auth_service_client::AuthServiceClient, identity_internal_client::IdentityInternalClient,
    user_service_client::UserServiceClient,
};
use orgplane_transport::pki::{CaDir, CertDir};
use tonic::{
    Code,
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity},
};

/// A channel to identity presenting `cert_pem`/`key_pem`, trusting the real CA.
async fn mtls_to_identity(t: &TestStack, cert_pem: String, key_pem: String) -> Channel {
    let ca = std::fs::read_to_string(t.stack.certs.ca_cert()).unwrap();
    Endpoint::from_shared(format!("https://{}", t.stack.identity_addr))
        .unwrap()
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(ca))
                .identity(Identity::from_pem(cert_pem, key_pem))
                .domain_name("identity"),
        )
        .unwrap()
        .connect_lazy()
}

async fn as_service(t: &TestStack, service: &str) -> Channel {
    let tls = t.stack.certs.load(service).unwrap();
    mtls_to_identity(t, tls.cert_pem, tls.key_pem).await
}

#[tokio::test]
async fn a_backend_refuses_plaintext_clients() {
    let t = TestStack::start().await;
    let plaintext = Endpoint::from_shared(format!("http://{}", t.stack.identity_addr))
        .unwrap()
        .connect_lazy();
    let result = AuthServiceClient::new(plaintext)
        .login(LoginRequest {
            username: "admin".into(),
            password: "whatever-password".into(),
        })
        .await;
    let status = result.expect_err("plaintext must be refused");
    assert_ne!(
        status.code(),
        Code::Unauthenticated,
        "refused before any RPC runs: {status:?}"
    );
}

#[tokio::test]
async fn a_backend_refuses_certificates_from_another_ca() {
    let t = TestStack::start().await;
    let foreign = tempfile::tempdir().unwrap();
    let other_ca = CertDir::new(foreign.path().join("certs"));
    other_ca
        .init(&CaDir::new(foreign.path().join("ca")), &["gateway"], &[])
        .unwrap();
    let forged = other_ca.load("gateway").unwrap();
    let channel = mtls_to_identity(&t, forged.cert_pem, forged.key_pem).await;
    let status = AuthServiceClient::new(channel)
        .login(LoginRequest {
            username: "admin".into(),
            password: "whatever-password".into(),
        })
        .await
        .expect_err("a gateway certificate from another CA must be refused");
    assert!(
        matches!(
            status.code(),
            Code::Unavailable | Code::Unknown | Code::Internal
        ),
        "refused at the handshake: {status:?}"
    );
}

#[tokio::test]
async fn a_valid_certificate_is_refused_for_methods_its_identity_may_not_call() {
    let t = TestStack::start().await;
    let registry = as_service(&t, "registry").await;
    let status = expect_code(
        UserServiceClient::new(registry.clone())
            .get_current_user(GetCurrentUserRequest {})
            .await,
        Code::PermissionDenied,
    );
    assert!(status.message().contains("registry"), "{status:?}");
    expect_code(
        AuthServiceClient::new(as_service(&t, "organizations").await)
            .login(LoginRequest {
                username: "admin".into(),
                password: "whatever-password".into(),
            })
            .await,
        Code::PermissionDenied,
    );
    // Introspection is allowed to the services that authenticate callers.
    let reply = IdentityInternalClient::new(registry)
        .introspect_token(IntrospectTokenRequest {
            token: "ops_unknown".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!reply.active);
}

#[tokio::test]
async fn the_gateway_identity_vouches_for_principals() {
    let t = TestStack::start().await;
    let token = t.user("trusting").await;
    let introspected = IdentityInternalClient::new(as_service(&t, "gateway").await)
        .introspect_token(IntrospectTokenRequest { token })
        .await
        .unwrap()
        .into_inner();
    assert!(introspected.active);
    let principal =
        orgplane_platform::principal::Principal::from_proto(introspected.principal.unwrap())
            .unwrap();

    // Principal metadata from the gateway identity is honoured.
    let mut request = tonic::Request::new(GetCurrentUserRequest {});
    request.metadata_mut().insert_bin(
        "x-orgplane-principal-bin",
        tonic::metadata::MetadataValue::from_bytes(&prost::Message::encode_to_vec(
            &principal.to_proto(),
        )),
    );
    let me = UserServiceClient::new(as_service(&t, "gateway").await)
        .get_current_user(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(me.user.unwrap().username, "trusting");
}

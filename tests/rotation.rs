//! Certificates rotate without a restart: every file a service's TLS
//! reads — its certificate, its key, the CA bundle — is replaced under a
//! steady load of calls over mTLS, the CA included (first a bundle of the
//! old and the new CA, then new certificates from the new CA, then the new
//! CA alone), as an operator (or cert-manager) does. No call fails; new
//! connections present the new certificate; once the old CA is gone, a
//! client holding an old certificate is refused.

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use orgplane_transport::{
    client::mtls_channel,
    layers::caller::CallerPolicy,
    pki::{CaDir, CertDir, IDENTITIES, RELOAD_INTERVAL, ServiceTls},
    server::GrpcServer,
};
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use tokio::net::TcpListener;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// Replaces `path` with `contents` at once (a rename, as Kubernetes swaps a
/// Secret's files): a reader never sees half of it.
fn replace(path: &Path, contents: &[u8]) {
    let fresh = path.with_extension("new");
    std::fs::write(&fresh, contents).unwrap();
    std::fs::rename(&fresh, path).unwrap();
}

/// Long enough for every process to have polled its files.
async fn reloaded() {
    tokio::time::sleep(RELOAD_INTERVAL * 2 + Duration::from_millis(500)).await;
}

/// The certificate `server` presents to a new connection from `client`.
async fn presented(addr: &str, client: &ServiceTls) -> CertificateDer<'static> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(client.rustls_client().unwrap())
        .connect(ServerName::try_from("identity").unwrap(), tcp)
        .await
        .unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0]
        .clone()
        .into_owned()
}

fn leaf(pem: &[u8]) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(pem).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_certificate_and_the_ca_rotate_under_load_without_a_failed_call() {
    orgplane_e2e::init();
    let dir = tempfile::tempdir().unwrap();
    let live = CertDir::new(dir.path().join("certs"));
    live.init(&CaDir::new(dir.path().join("ca")), IDENTITIES, &[])
        .unwrap();
    // The next generation, from a new CA, made apart.
    let next = CertDir::new(dir.path().join("next"));
    next.init(&CaDir::new(dir.path().join("next-ca")), IDENTITIES, &[])
        .unwrap();
    // A client that keeps the first generation (it missed the rotation).
    let stale = CertDir::new(dir.path().join("stale"));
    std::fs::create_dir_all(stale.service_dir("gateway")).unwrap();
    for file in ["tls.crt", "tls.key", "ca.crt"] {
        std::fs::copy(
            live.service_dir("gateway").join(file),
            stale.service_dir("gateway").join(file),
        )
        .unwrap();
    }

    let server_tls = live.load("identity").unwrap();
    let client_tls = live.load("gateway").unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server =
        GrpcServer::new("identity").mtls(&server_tls, CallerPolicy::new().allow_infrastructure());
    let serving = tokio::spawn(server.serve(listener, async {
        let _ = stopped.await;
    }));

    // The load: health checks through a balanced mTLS channel, and every
    // tenth call through a channel of its own (a new connection).
    let running = Arc::new(AtomicBool::new(true));
    let (answered, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (running, answered, failed) = (running.clone(), answered.clone(), failed.clone());
        let (addr, client_tls) = (addr.clone(), client_tls.clone());
        load.push(tokio::spawn(async move {
            let shared = mtls_channel(&addr, "identity", &client_tls).unwrap();
            let mut n = 0u64;
            while running.load(Ordering::Relaxed) {
                n += 1;
                let channel = if n.is_multiple_of(10) {
                    mtls_channel(&addr, "identity", &client_tls).unwrap()
                } else {
                    shared.clone()
                };
                match HealthClient::new(channel)
                    .check(HealthCheckRequest::default())
                    .await
                {
                    Ok(_) => answered.fetch_add(1, Ordering::Relaxed),
                    Err(status) => {
                        eprintln!("failed: {status:?}");
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let first = presented(&addr, &client_tls).await;
    assert_eq!(first, leaf(server_tls.cert_pem.as_bytes()));

    // 1. Both CAs trusted everywhere.
    let bundle = [
        std::fs::read(live.service_dir("identity").join("ca.crt")).unwrap(),
        std::fs::read(next.service_dir("identity").join("ca.crt")).unwrap(),
    ]
    .concat();
    for service in IDENTITIES {
        replace(&live.service_dir(service).join("ca.crt"), &bundle);
    }
    reloaded().await;
    // 2. New certificates, from the new CA.
    for service in IDENTITIES {
        for file in ["tls.key", "tls.crt"] {
            replace(
                &live.service_dir(service).join(file),
                &std::fs::read(next.service_dir(service).join(file)).unwrap(),
            );
        }
    }
    reloaded().await;
    let renewed = std::fs::read(live.cert("identity")).unwrap();
    assert_ne!(leaf(&renewed), first);
    assert_eq!(
        presented(&addr, &client_tls).await,
        leaf(&renewed),
        "a new connection presents the new certificate"
    );
    // A file that does not load (half written, or garbage) changes
    // nothing: the certificate in use stays, and calls go on.
    replace(
        &live.cert("identity"),
        b"-----BEGIN CERTIFICATE-----\nnot a certificate",
    );
    reloaded().await;
    assert_eq!(
        presented(&addr, &client_tls).await,
        leaf(&renewed),
        "a certificate file that does not load keeps the one in use"
    );
    replace(&live.cert("identity"), &renewed);
    // 3. The new CA alone.
    for service in IDENTITIES {
        replace(
            &live.service_dir(service).join("ca.crt"),
            &std::fs::read(next.service_dir(service).join("ca.crt")).unwrap(),
        );
    }
    reloaded().await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    running.store(false, Ordering::Relaxed);
    for worker in load {
        worker.await.unwrap();
    }
    let (answered, failed) = (
        answered.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
    );
    eprintln!("rotation under load: {answered} calls answered, {failed} failed");
    assert!(answered > 100, "the load ran");
    assert_eq!(failed, 0, "no call failed while certificates rotated");

    // A client still on the old CA and certificate is refused now.
    let old = mtls_channel(&addr, "identity", &stale.load("gateway").unwrap()).unwrap();
    assert!(
        HealthClient::new(old)
            .check(HealthCheckRequest::default())
            .await
            .is_err(),
        "the old CA no longer admits anyone"
    );
    stop.send(()).unwrap();
    serving.await.unwrap().unwrap();
}

//! `orgplane serve <service>` as an operator runs it: each service takes
//! only the flags it honours, and stops cleanly — server, purger and
//! activity shipper — on `SIGTERM`, even with its peers absent.

use std::{
    net::TcpListener,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

const BIN: &str = env!("CARGO_BIN_EXE_orgplane");

fn free_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

#[test]
fn a_flag_a_service_would_ignore_is_refused() {
    for args in [
        &["serve", "registry", "--rate-limit", "5"][..],
        &["serve", "identity", "--max-run-attempts", "2"],
        &["serve", "gateway", "--database-url", "postgres://x"],
        &["serve", "agents", "--allow-signup", "false"],
        &["dev", "--tls-cert", "cert.pem", "--tls-key", "key.pem"],
        &["dev", "--registry-addr", "127.0.0.1:1"],
    ] {
        let output = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("unexpected argument"), "{args:?}: {stderr}");
    }
}

#[test]
fn every_service_stops_on_sigterm_with_its_background_work() {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new(BIN)
        .args(["certs", "init", "--data-dir"])
        .arg(dir.path())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "orgplane certs init");
    for service in ["identity", "organizations", "registry", "agents", "gateway"] {
        let listen = free_port();
        let mut child = Command::new(BIN)
            .args(["serve", service, "--data-dir"])
            .arg(dir.path())
            .args(["--listen", &listen])
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while std::net::TcpStream::connect(&listen).is_err() {
            assert!(
                child.try_wait().unwrap().is_none(),
                "{service} exited before listening"
            );
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{service} never listened"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // Its peers are absent: the purger and shipper are failing and
        // retrying, and must still stop.
        std::thread::sleep(Duration::from_millis(300));
        let term = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(term.success());
        let stopping = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if stopping.elapsed() > Duration::from_secs(15) {
                let _ = child.kill();
                panic!("{service} did not stop within 15 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success(), "{service} stopped with {status}");
    }
}

//! What the tests of `orgplane` processes share: the binary, certificates,
//! children that die with the test, `SIGTERM`, and waiting for a process to
//! listen or to exit.

// Each test file uses part of it.
#![allow(dead_code)]

use std::{
    path::Path,
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_orgplane");

/// `orgplane certs init` in `dir`.
pub fn certs_init(dir: &Path) {
    let status = Command::new(BIN)
        .args(["certs", "init", "--data-dir"])
        .arg(dir)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "orgplane certs init");
}

/// A child process killed when dropped: a failed test leaves none behind
/// (it would also hold the test's output open).
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends `SIGTERM` to `child`.
pub fn terminate(child: &Child) {
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
}

/// Waits for `child` to exit, at most `bound` (then kills it and fails).
pub async fn exit_within(child: &mut Child, bound: Duration) -> ExitStatus {
    let stopping = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if stopping.elapsed() > bound {
            let _ = child.kill();
            panic!("did not stop within {bound:?} of SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `addr` takes connections, at most 60 s, failing early if
/// `child` exits meanwhile; `what` names it in failures.
pub async fn listening(addr: &str, mut child: Option<&mut Child>, what: &str) {
    let started = Instant::now();
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        if let Some(child) = child.as_mut() {
            assert!(
                child.try_wait().unwrap().is_none(),
                "{what} exited before listening"
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{what} never listened"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `GET path` on `addr` over HTTP/1.1: the status code and the body.
pub async fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

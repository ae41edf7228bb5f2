//! Shutdown signals: Ctrl-C or SIGTERM, shared by every server of a process.

use std::sync::Mutex;

use tokio::sync::watch;

/// SIGTERM and Ctrl-C, caught from [`install`] on and kept for [`signal`].
static INSTALLED: Mutex<Option<Signals>> = Mutex::new(None);

/// The signals that ask a server to stop, each caught from the moment this
/// value is made: one that arrives before anything waits is kept.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl Signals {
    fn catch() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Signals {
                term: signal(SignalKind::terminate()).expect("installing the SIGTERM handler"),
                interrupt: signal(SignalKind::interrupt()).expect("installing the SIGINT handler"),
            }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    async fn recv(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.term.recv() => {},
            _ = self.interrupt.recv() => {},
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Catches SIGTERM and Ctrl-C from now on, for [`signal`]; in a runtime,
/// before a server binds its first port.
///
/// Why: until a handler is installed, SIGTERM's default action ends the
/// process at once, without draining. A supervisor (or a test) that saw
/// the port accept may send it before the server waits for it: the
/// gateway's probes test was stopped that way.
pub fn install() {
    let signals = Signals::catch();
    *INSTALLED.lock().expect("the shutdown signals' lock") = Some(signals);
}

/// Completes on Ctrl-C or SIGTERM: caught since [`install`], or from now
/// on when it was not called.
pub async fn signal() {
    let installed = INSTALLED.lock().expect("the shutdown signals' lock").take();
    installed.unwrap_or_else(Signals::catch).recv().await;
    tracing::info!("shutdown requested");
}

/// A shutdown trigger that many servers can wait on.
#[derive(Debug, Clone)]
pub struct Shutdown {
    tx: watch::Sender<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// Not triggered yet.
    pub fn new() -> Self {
        Self {
            tx: watch::channel(false).0,
        }
    }

    /// Triggers shutdown.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Completes once triggered.
    pub fn wait(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.tx.subscribe();
        async move {
            let _ = rx.wait_for(|triggered| *triggered).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A SIGTERM that arrives after [`install`] and before anything waits
    /// is kept for [`signal`], and does not end the process.
    #[cfg(unix)]
    #[tokio::test]
    async fn a_signal_before_the_wait_is_kept() {
        install();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()
            .expect("running kill");
        assert!(sent.success());
        tokio::time::timeout(std::time::Duration::from_secs(5), signal())
            .await
            .expect("the signal sent before waiting");
    }
}

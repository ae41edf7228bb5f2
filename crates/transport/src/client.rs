//! Clients between services: mTLS to every replica of a backend. A
//! [`Channel`] spreads calls over every replica a backend address names,
//! by two choices: of two replicas taken in turn, the one with fewer calls
//! pending. Each call picks its replica itself and hands the request to
//! that replica's tonic channel: no balancer task is shared by every call
//! (tower's balancer is not `Clone`, and the buffer that shares one cost
//! every call a hand-off to its task — 6–8 % of a read through `orgplane
//! dev`, `BENCHMARKS.md`). Each tonic channel still queues its calls
//! through a buffer task of its own before its connection.
//!
//! An address is a comma-separated list of `host:port`; a host that is a
//! DNS name stands for every address it resolves to, resolved again every
//! [`RESOLVE_INTERVAL`] (a Kubernetes headless Service), so replicas come
//! and go without a restart. A replica not up yet is not an error:
//! processes start in any order.
//!
//! A replica whose connection fails is out of the rotation at once —
//! otherwise two choices would favour it, since a replica that refuses
//! connections never has calls pending — and probed every
//! [`PROBE_INTERVAL`] until it accepts connections again; a call refused
//! that way is sent again, to another replica (up to [`MAX_SENDS`] times).
//! A call that finds no replica up has the down ones probed at once and
//! waits for that round (a replica that came up since the last tick is
//! used); when still none is reachable it fails (`UNAVAILABLE` to its
//! caller) rather than waiting for one. A call whose stream a replica
//! refused — one draining at `SIGTERM` refuses the streams on their way
//! when it says `GOAWAY` — never reached it either, and is sent again too.

use std::{
    collections::BTreeSet,
    fmt,
    future::Future,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use anyhow::{Context as _, bail};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use tonic::{body::Body, transport::Endpoint};
use tower::{BoxError, Service, ServiceExt};

use crate::pki::ServiceTls;

/// How often DNS names of replicas are resolved again.
pub const RESOLVE_INTERVAL: Duration = Duration::from_secs(10);
/// How often a replica that failed is tried again.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// The largest request a channel sends: a server decodes at most 4 MiB a
/// message, plus the 5 bytes of gRPC framing. Requests are one message (no
/// method streams requests) and are read whole, so that a call is sent
/// again when a replica refused the connection.
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024 + 5;
/// Sends of one call: the first, and again (to another replica: the one
/// that refused is out of the rotation) while replicas refuse to
/// connect — such a call never reached a server, so any call may be sent
/// again.
pub const MAX_SENDS: usize = 3;

/// Receive window of one stream of a service-to-service connection.
pub const STREAM_WINDOW: u32 = 1024 * 1024;
/// Receive window of a whole service-to-service connection: 256 streams
/// left unread exhaust it, not one.
pub const CONNECTION_WINDOW: u32 = 256 * 1024 * 1024;

/// Where a backend's replicas are: `host:port` entries, a DNS name standing
/// for all its addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaAddrs(Vec<(String, u16)>);

impl ReplicaAddrs {
    /// Parses `host:port[,host:port...]` (IPv6 hosts in brackets).
    pub fn parse(list: &str) -> anyhow::Result<Self> {
        let mut entries = Vec::new();
        for entry in list.split(',').map(str::trim) {
            let Some((host, port)) = entry.rsplit_once(':') else {
                bail!("invalid backend address {entry:?}: expected host:port");
            };
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let port: u16 = port
                .parse()
                .with_context(|| format!("invalid port in backend address {entry:?}"))?;
            if host.is_empty() || host.contains(['/', '@', ' ']) {
                bail!("invalid host in backend address {entry:?}");
            }
            entries.push((host.to_owned(), port));
        }
        Ok(Self(entries))
    }

    /// The socket addresses these entries name now; a name that does not
    /// resolve (yet) names none.
    pub async fn resolve(&self) -> BTreeSet<SocketAddr> {
        let mut resolved = BTreeSet::new();
        for (host, port) in &self.0 {
            match host.parse::<IpAddr>() {
                Ok(ip) => {
                    resolved.insert(SocketAddr::new(ip, *port));
                }
                Err(_) => match tokio::net::lookup_host((host.as_str(), *port)).await {
                    Ok(addrs) => resolved.extend(addrs),
                    Err(err) => tracing::debug!(host, error = %err, "not resolved"),
                },
            }
        }
        resolved
    }
}

/// A channel to every replica of one server, over mTLS between services
/// ([`mtls_channel`]), in clear to the gateway ([`h2c_channel`]). Cheap to clone:
/// clones share the replicas and their connections.
#[derive(Clone)]
pub struct Channel {
    replicas: Arc<Replicas>,
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel")
            .field("server", &self.replicas.server)
            .finish_non_exhaustive()
    }
}

/// What the discovery task and the callers share: the replicas in the
/// rotation.
struct Replicas {
    server: String,
    /// Every replica the addresses name now, in the order discovery added
    /// them; those whose connection failed stay, marked down, until a probe
    /// replaces them.
    live: Mutex<Vec<Arc<Replica>>>,
    /// Whether discovery resolved the addresses once (calls made before
    /// wait for it).
    resolved: tokio::sync::watch::Sender<bool>,
    /// Where the next call's two choices start.
    turn: AtomicUsize,
    /// Asks the discovery task for a probe round now.
    probe_now: tokio::sync::Notify,
    /// Counts the probe rounds done.
    probed: tokio::sync::watch::Sender<u64>,
}

impl Replicas {
    /// None yet, of `server`.
    fn new(server: &str) -> Self {
        Self {
            server: server.to_owned(),
            live: Mutex::new(Vec::new()),
            resolved: tokio::sync::watch::Sender::new(false),
            turn: AtomicUsize::new(0),
            probe_now: tokio::sync::Notify::new(),
            probed: tokio::sync::watch::Sender::new(0),
        }
    }

    /// Of two replicas up taken in turn, the one with fewer calls pending;
    /// `None` when none is up.
    fn pick(&self) -> Option<Arc<Replica>> {
        let live = self.live.lock().expect("replicas lock");
        let start = self.turn.fetch_add(1, Ordering::Relaxed);
        let mut up = (0..live.len())
            .map(|k| &live[(start + k) % live.len()])
            .filter(|replica| !replica.down.load(Ordering::Relaxed));
        let first = up.next()?;
        Some(match up.next() {
            Some(second) if second.pending() < first.pending() => second.clone(),
            _ => first.clone(),
        })
    }

    /// The replica a call goes to: one up now; before the first resolution,
    /// one up after it; when none is up, one that the probe round this asks
    /// for finds up again (a replica that came up since the last tick is
    /// used) — else the call fails, `UNAVAILABLE`, rather than waiting.
    async fn replica(&self) -> Result<Arc<Replica>, BoxError> {
        if let Some(replica) = self.pick() {
            return Ok(replica);
        }
        let _ = self.resolved.subscribe().wait_for(|done| *done).await;
        if let Some(replica) = self.pick() {
            return Ok(replica);
        }
        self.probe_now().await;
        self.pick().ok_or_else(|| {
            tonic::Status::unavailable(format!("no replica of {} accepts connections", self.server))
                .into()
        })
    }

    /// Sends `request` to a replica ([`Self::replica`]); a connection that
    /// fails under it takes its replica out of the rotation.
    async fn send(&self, request: http::Request<Body>) -> Result<http::Response<Body>, BoxError> {
        let replica = self.replica().await?;
        let _pending = Pending::of(&replica);
        let mut channel = replica.channel.clone();
        let answer = match channel.ready().await {
            Ok(ready) => ready.call(request).await,
            Err(err) => Err(err),
        };
        answer.map_err(|err| {
            if connection_failed(&err) {
                replica.down.store(true, Ordering::Relaxed);
            }
            err.into()
        })
    }

    /// Has the replicas that are down probed now rather than at the next
    /// tick, and waits for that round (at most [`PROBE_INTERVAL`]): a call
    /// made just after a replica came up finds it, rather than failing
    /// for up to a probe interval after an earlier call found it down.
    async fn probe_now(&self) {
        let mut rounds = self.probed.subscribe();
        rounds.borrow_and_update();
        self.probe_now.notify_one();
        let _ = tokio::time::timeout(PROBE_INTERVAL, rounds.changed()).await;
    }
}

/// A channel to the replicas `addrs` names (see [`ReplicaAddrs::parse`])
/// of the backend `server` (its certificates' DNS name), presenting `tls`.
/// Connections are made lazily; discovery runs until the last clone of the
/// channel is dropped.
pub fn mtls_channel(addrs: &str, server: &str, tls: &ServiceTls) -> anyhow::Result<Channel> {
    Channel::new(addrs, server, Some(tls.clone()))
}

/// A channel to the replicas `addrs` names of a server that listens without
/// TLS (HTTP/2 in clear: the gateway's public port behind a proxy that ends
/// TLS, or on loopback), called `server` in errors: the same spreading,
/// probing and resending as [`mtls_channel`], for clients of the gateway.
pub fn h2c_channel(addrs: &str, server: &str) -> anyhow::Result<Channel> {
    Channel::new(addrs, server, None)
}

impl Channel {
    fn new(addrs: &str, server: &str, tls: Option<ServiceTls>) -> anyhow::Result<Self> {
        let addrs = ReplicaAddrs::parse(addrs)?;
        let connect = Connect {
            server: server.to_owned(),
            tls,
        };
        let replicas = Arc::new(Replicas::new(server));
        tokio::spawn(discover(addrs, connect, Arc::downgrade(&replicas)));
        Ok(Self { replicas })
    }
}

impl Service<http::Request<Body>> for Channel {
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    /// Always ready: each call waits for its replica's connection itself.
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let replicas = self.replicas.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let body = match Limited::new(body, MAX_REQUEST_BYTES).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(err) if err.is::<LengthLimitError>() => {
                    return Err(tonic::Status::resource_exhausted(format!(
                        "the request is larger than {MAX_REQUEST_BYTES} bytes"
                    ))
                    .into());
                }
                Err(err) => {
                    return Err(
                        tonic::Status::cancelled(format!("reading the request: {err}")).into(),
                    );
                }
            };
            let request = || {
                let mut request = http::Request::new(Body::new(Full::new(body.clone())));
                *request.method_mut() = parts.method.clone();
                *request.uri_mut() = parts.uri.clone();
                *request.version_mut() = parts.version;
                *request.headers_mut() = parts.headers.clone();
                request
            };
            let read = is_read(parts.uri.path());
            let mut answer = replicas.send(request()).await;
            for _ in 1..MAX_SENDS {
                match &answer {
                    Err(err) if refused(err.as_ref()) => {
                        tracing::debug!(error = %err, "a replica refused the call; sending again");
                        answer = replicas.send(request()).await;
                    }
                    Err(err) if read && connection_failed(err.as_ref()) => {
                        tracing::debug!(error = %err, "a replica's connection broke under a read; sending it again");
                        answer = replicas.send(request()).await;
                    }
                    _ => break,
                }
            }
            // A connection that broke under the call (the replica died with
            // it in flight) is the backend being unavailable, which callers
            // may retry — not an unknown error.
            answer.map_err(|err| {
                if connection_failed(err.as_ref()) {
                    tracing::debug!(server = replicas.server, error = %err, "a replica's connection failed under a call");
                    tonic::Status::unavailable(format!(
                        "the {} service is unavailable: a replica's connection failed",
                        replicas.server
                    ))
                    .into()
                } else {
                    err
                }
            })
        })
    }
}

/// Whether `path` names a method without side effects (marked so in
/// `proto/`), which may be sent again even if a replica received it.
fn is_read(path: &str) -> bool {
    static READS: std::sync::LazyLock<std::collections::HashSet<String>> =
        std::sync::LazyLock::new(|| orgplane_proto::read_methods().into_iter().collect());
    READS.contains(path)
}

/// `err` and every error under it, outermost first.
pub fn error_chain<'e>(
    err: &'e (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'e (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(err), |err| err.source())
}

/// Whether `err` says the call never reached a server: the connection was
/// refused, it closed before the request was taken from the queue
/// (hyper's "canceled"), or the server refused the call's stream
/// ([`stream_refused`]).
fn refused(err: &(dyn std::error::Error + 'static)) -> bool {
    error_chain(err).any(|err| {
        err.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
            || err
                .downcast_ref::<hyper::Error>()
                .is_some_and(hyper::Error::is_canceled)
            || err.downcast_ref::<h2::Error>().is_some_and(stream_refused)
    })
}

/// Whether the server refused a call's HTTP/2 stream, which it then never
/// processed (RFC 9113 §6.8, §8.7): a stream past the last one of the
/// server's `GOAWAY` — a replica draining at `SIGTERM` answers the streams
/// it took and refuses those already on their way — or sent after it, or
/// reset with `REFUSED_STREAM`. A stream the server took and then lost
/// ends in an I/O error instead ([`connection_failed`]).
fn stream_refused(err: &h2::Error) -> bool {
    err.is_remote() && (err.is_go_away() || err.reason() == Some(h2::Reason::REFUSED_STREAM))
}

/// Whether `err` is a failure of the replica's connection — it could not
/// be opened (refused, TLS, timed out) or it broke (a socket error, closed
/// under a queued call or before the answer was complete) — rather than of
/// one call on it (a stream reset, e.g. at its deadline), which says
/// nothing of the replica. (Not tonic's `TimeoutExpired`: that is the
/// call's deadline.)
fn connection_failed(err: &(dyn std::error::Error + 'static)) -> bool {
    error_chain(err).any(|err| {
        err.is::<std::io::Error>()
            || err.is::<tower::timeout::error::Elapsed>()
            || err.downcast_ref::<hyper::Error>().is_some_and(|hyper| {
                hyper.is_canceled() || hyper.is_closed() || hyper.is_incomplete_message()
            })
    })
}

/// How to open a connection to one replica.
struct Connect {
    server: String,
    /// mTLS; `None`: HTTP/2 in clear.
    tls: Option<ServiceTls>,
}

impl Connect {
    fn replica(&self, addr: SocketAddr) -> anyhow::Result<Replica> {
        // mTLS is done by the connector (`mtls_connector`), with the
        // certificates current at each connection.
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))?
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(5))
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_while_idle(true)
            // Flow control of a connection many callers share: a caller that
            // stops reading its (large) answer holds up to one stream window
            // of the connection's window. Adaptive windows grew the stream
            // window to the connection's, so one stalled reader stalled every
            // call on the connection (tests/gateway.rs
            // clients_that_stop_reading_do_not_stall_other_callers); fixed
            // windows bound each stream to 1 MiB of a 256 MiB connection
            // window.
            .http2_adaptive_window(false)
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW);
        let channel = match &self.tls {
            Some(tls) => endpoint.connect_with_connector_lazy(mtls_connector(
                tls.rustls_client().context("configuring client TLS")?,
                &self.server,
            )?),
            None => endpoint.connect_lazy(),
        };
        Ok(Replica {
            addr,
            channel,
            down: AtomicBool::new(false),
            pending: AtomicUsize::new(0),
        })
    }
}

/// Opens a connection to the address of the URI it is given, with mTLS
/// under `config` (which follows the certificate files), expecting the
/// server to be `server` (its DNS SAN). The endpoint's `connect_timeout`
/// bounds it, TLS handshake included.
fn mtls_connector(
    config: Arc<rustls::ClientConfig>,
    server: &str,
) -> anyhow::Result<
    impl tower::Service<
        http::Uri,
        Response = hyper_util::rt::TokioIo<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>,
        Error = std::io::Error,
        Future = impl Send,
    > + Clone
    + Send
    + 'static,
> {
    let name = rustls::pki_types::ServerName::try_from(server.to_owned())
        .with_context(|| format!("{server} is not a server name"))?;
    let connector = tokio_rustls::TlsConnector::from(config);
    Ok(tower::service_fn(move |uri: http::Uri| {
        let (connector, name) = (connector.clone(), name.clone());
        async move {
            let authority = uri
                .authority()
                .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address"))?
                .to_string();
            let tcp = tokio::net::TcpStream::connect(authority).await?;
            tcp.set_nodelay(true)?;
            Ok(hyper_util::rt::TokioIo::new(
                connector.connect(name, tcp).await?,
            ))
        }
    }))
}

/// Keeps the replicas in step with what the addresses resolve to and which
/// replicas accept connections, until the channel is dropped.
async fn discover(addrs: ReplicaAddrs, connect: Connect, replicas: Weak<Replicas>) {
    let mut resolved = BTreeSet::new();
    let mut resolve = tokio::time::interval(RESOLVE_INTERVAL);
    let mut probe = tokio::time::interval(PROBE_INTERVAL);
    for ticker in [&mut resolve, &mut probe] {
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    }
    // A new connection to `addr`, in place of any other.
    let insert = |replicas: &Replicas, addr: SocketAddr| {
        let replica = match connect.replica(addr) {
            Ok(replica) => replica,
            Err(err) => {
                tracing::warn!(%addr, error = %err, "replica not added");
                return;
            }
        };
        let mut live = replicas.live.lock().expect("replicas lock");
        live.retain(|other| other.addr != addr);
        live.push(Arc::new(replica));
    };
    // Until the last clone of the channel is gone.
    while let Some(replicas) = replicas.upgrade() {
        tokio::select! {
            _ = resolve.tick() => {
                let now = addrs.resolve().await;
                replicas
                    .live
                    .lock()
                    .expect("replicas lock")
                    .retain(|replica| now.contains(&replica.addr));
                for new in now.difference(&resolved) {
                    insert(&replicas, *new);
                }
                if now.is_empty() {
                    tracing::warn!(server = connect.server, "no replica address resolved");
                }
                resolved = now;
                replicas.resolved.send_replace(true);
            }
            _ = async {
                tokio::select! {
                    _ = probe.tick() => {}
                    () = replicas.probe_now.notified() => {}
                }
            } => {
                let failed: Vec<SocketAddr> = replicas
                    .live
                    .lock()
                    .expect("replicas lock")
                    .iter()
                    .filter(|replica| replica.down.load(Ordering::Relaxed))
                    .map(|replica| replica.addr)
                    .collect();
                for addr in failed {
                    let probe = tokio::net::TcpStream::connect(addr);
                    if let Ok(Ok(_)) = tokio::time::timeout(PROBE_INTERVAL, probe).await {
                        tracing::info!(server = connect.server, %addr, "replica accepts connections again");
                        insert(&replicas, addr);
                    }
                }
                replicas.probed.send_modify(|rounds| *rounds += 1);
            }
        }
    }
}

/// One replica: its connection, the calls pending on it, and the flag a
/// call that found the connection failed sets, which takes the replica
/// out of the rotation until a probe replaces it.
struct Replica {
    addr: SocketAddr,
    channel: tonic::transport::Channel,
    down: AtomicBool,
    pending: AtomicUsize,
}

impl Replica {
    fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }
}

/// A call pending on a replica, until its answer's headers came (or it
/// failed): the load two choices compare.
struct Pending<'a>(&'a Replica);

impl<'a> Pending<'a> {
    fn of(replica: &'a Replica) -> Self {
        replica.pending.fetch_add(1, Ordering::Relaxed);
        Self(replica)
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.0.pending.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_lists_of_host_and_port() {
        let parsed =
            ReplicaAddrs::parse("10.0.0.1:50061, identity.orgplane:50061,[::1]:7").unwrap();
        assert_eq!(
            parsed.0,
            [
                ("10.0.0.1".to_owned(), 50061),
                ("identity.orgplane".to_owned(), 50061),
                ("::1".to_owned(), 7),
            ]
        );
        for bad in [
            "",
            "host",
            "host:port",
            ":50061",
            "a:1,,b:2",
            "a:70000",
            "user@h:1",
        ] {
            assert!(ReplicaAddrs::parse(bad).is_err(), "{bad:?}");
        }
    }

    /// An HTTP/2 server on loopback that resets the first `reset` streams
    /// it takes with `reason` and answers the others `grpc-status: 0`;
    /// with the count of streams it took.
    async fn resetting_server(
        reset: usize,
        reason: h2::Reason,
    ) -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let taken = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = taken.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let count = count.clone();
                tokio::spawn(async move {
                    let mut connection = h2::server::handshake(tcp).await.unwrap();
                    while let Some(Ok((_, mut respond))) = connection.accept().await {
                        if count.fetch_add(1, Ordering::SeqCst) < reset {
                            respond.send_reset(reason);
                            continue;
                        }
                        let answer = http::Response::builder()
                            .header("content-type", "application/grpc")
                            .header("grpc-status", "0")
                            .body(())
                            .unwrap();
                        respond.send_response(answer, true).unwrap();
                    }
                });
            }
        });
        (addr, taken)
    }

    /// A call with side effects (no read of `proto/`) through a channel to
    /// the server at `addr`.
    async fn write_call(addr: SocketAddr) -> Result<http::Response<Body>, BoxError> {
        let mut channel = h2c_channel(&addr.to_string(), "test").unwrap();
        let request = http::Request::builder()
            .method("POST")
            .uri(format!("http://{addr}/orgplane.test.v1.Writes/Write"))
            .header("content-type", "application/grpc")
            .body(Body::empty())
            .unwrap();
        channel.ready().await?.call(request).await
    }

    #[tokio::test]
    async fn a_call_whose_stream_was_refused_is_sent_again_even_a_write() {
        let (addr, taken) = resetting_server(1, h2::Reason::REFUSED_STREAM).await;
        let answer = write_call(addr).await.expect("sent again and answered");
        assert_eq!(answer.headers()["grpc-status"], "0");
        assert_eq!(taken.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_write_whose_stream_was_reset_otherwise_is_not_sent_again() {
        let (addr, taken) = resetting_server(1, h2::Reason::INTERNAL_ERROR).await;
        assert!(write_call(addr).await.is_err());
        assert_eq!(
            taken.load(Ordering::SeqCst),
            1,
            "the server may have acted on it"
        );
    }

    #[tokio::test]
    async fn two_choices_take_the_replica_less_busy_and_never_one_down() {
        let connect = Connect {
            server: "test".into(),
            tls: None,
        };
        let replicas = Replicas::new("test");
        let (a, b): (SocketAddr, SocketAddr) = (
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1:2".parse().unwrap(),
        );
        for addr in [a, b] {
            let replica = connect.replica(addr).unwrap();
            replicas.live.lock().unwrap().push(Arc::new(replica));
        }
        let picks = |n| -> Vec<SocketAddr> {
            (0..n)
                .map(|_| replicas.pick().map(|r| r.addr))
                .collect::<Option<_>>()
                .unwrap_or_default()
        };
        // Both idle: taken in turn.
        assert_eq!(picks(4), [a, b, a, b]);
        // One call pending on `a`: every call goes to `b`.
        let busy = replicas.live.lock().unwrap()[0].clone();
        let pending = Pending::of(&busy);
        assert_eq!(picks(3), [b, b, b]);
        drop(pending);
        // `b` down: `a`, busy or not; both down: none.
        replicas.live.lock().unwrap()[1]
            .down
            .store(true, Ordering::Relaxed);
        let _pending = Pending::of(&busy);
        assert_eq!(picks(2), [a, a]);
        busy.down.store(true, Ordering::Relaxed);
        assert!(replicas.pick().is_none());
    }

    #[tokio::test]
    async fn names_resolve_to_every_address_and_ips_to_themselves() {
        let addrs = ReplicaAddrs::parse("127.0.0.1:1,localhost:2").unwrap();
        let resolved = addrs.resolve().await;
        assert!(resolved.contains(&"127.0.0.1:1".parse().unwrap()));
        assert!(
            resolved
                .iter()
                .any(|a| a.port() == 2 && a.ip().is_loopback())
        );
    }
}

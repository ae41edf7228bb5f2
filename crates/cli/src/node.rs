//! The node runner: one process serving one or more services, the same way
//! in every mode — `orgplane serve` (one service), `orgplane dev` and the
//! end-to-end tests (all of them). A service is migrated, assembled
//! ([`Service::assemble`]) and served on its listener; its background work
//! runs beside it; on stop the gateway (if any) stops first, so that the
//! calls it still forwards find their backends, then every service and its
//! background work, and the node waits for all of them.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context;
use orgplane_platform::shutdown::{self, Shutdown};
use orgplane_service::{Assembled, PeerAddrs, Service, Wiring};
use orgplane_storage::db::{DbTarget, connect_and_migrate};
use orgplane_transport::{pki::CertDir, server::GrpcServer};
use tokio::{net::TcpListener, task::JoinSet};

/// Where a node keeps its state.
#[derive(Debug, Clone)]
pub struct State {
    /// Certificates (`certs/`) and, without a database URL, SQLite files.
    pub data_dir: PathBuf,
    /// PostgreSQL instead of SQLite, one schema per service.
    pub database_url: Option<String>,
    /// Prefix of the PostgreSQL schemas.
    pub schema_prefix: String,
    /// Most connections of each service's PostgreSQL pool.
    pub database_connections: u32,
    /// Most PostgreSQL connections of each service beside its pool, reading
    /// list pages.
    pub database_read_connections: u32,
}

impl State {
    /// Where `backend` keeps its tables.
    pub fn target(&self, backend: orgplane_proto::Backend) -> anyhow::Result<DbTarget> {
        DbTarget::for_service(
            self.database_url.as_deref(),
            &self.data_dir,
            &self.schema_prefix,
            backend.name(),
        )?
        .with_connections(self.database_connections)
        .map(|target| target.with_readers(self.database_read_connections))
    }

    /// The certificates of every service.
    pub fn certs(&self) -> CertDir {
        CertDir::new(self.data_dir.join("certs"))
    }
}

/// Where a service listens.
#[derive(Debug)]
pub enum Listen {
    /// A socket bound already (the dev stack binds every socket first, to
    /// learn the addresses the services give each other).
    Bound(TcpListener),
    /// An address, bound once the service is migrated and assembled: a
    /// listening port then means ready.
    At(SocketAddr),
}

impl From<TcpListener> for Listen {
    fn from(listener: TcpListener) -> Self {
        Listen::Bound(listener)
    }
}

impl From<SocketAddr> for Listen {
    fn from(addr: SocketAddr) -> Self {
        Listen::At(addr)
    }
}

impl Listen {
    async fn bind(self) -> anyhow::Result<TcpListener> {
        match self {
            Listen::Bound(listener) => Ok(listener),
            Listen::At(addr) => TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding {addr}")),
        }
    }
}

/// Services running in this process until it stops.
#[derive(Debug)]
pub struct Node {
    state: State,
    peers: PeerAddrs,
    request_timeout: Duration,
    drain_delay: Duration,
    shutdown: Shutdown,
    gateway_shutdown: Shutdown,
    gateway_task: Option<tokio::task::Id>,
    tasks: JoinSet<anyhow::Result<()>>,
    /// Whether every server is up and none is stopping: `/readyz`.
    ready: tokio::sync::watch::Sender<bool>,
    /// The operations port, which outlives the servers' drain.
    ops: Option<(Shutdown, tokio::task::JoinHandle<anyhow::Result<()>>)>,
}

impl Node {
    /// A node keeping its state in `state`, whose services reach their
    /// peers at `peers` and give calls without a deadline
    /// `request_timeout`.
    pub fn new(state: State, peers: PeerAddrs, request_timeout: Duration) -> Self {
        Self {
            state,
            peers,
            request_timeout,
            drain_delay: Duration::ZERO,
            shutdown: Shutdown::new(),
            gateway_shutdown: Shutdown::new(),
            gateway_task: None,
            tasks: JoinSet::new(),
            ready: tokio::sync::watch::Sender::new(false),
            ops: None,
        }
    }

    /// Serves metrics and probes on `listen`, if set
    /// ([`orgplane_transport::ops`]), from now until the node has stopped:
    /// before the services start, so that a liveness probe passes during
    /// long migrations.
    pub async fn serve_ops(&mut self, listen: Option<SocketAddr>) -> anyhow::Result<()> {
        let Some(listen) = listen else {
            return Ok(());
        };
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding the metrics port {listen}"))?;
        let stop = Shutdown::new();
        let serving = tokio::spawn(orgplane_transport::ops::serve(
            listener,
            self.ready.subscribe(),
            stop.wait(),
        ));
        self.ops = Some((stop, serving));
        Ok(())
    }

    /// Every server of this node is up: `/readyz` answers 200 until the
    /// node is asked to stop.
    pub fn ready(&self) {
        self.ready.send_replace(true);
    }

    /// Each server of this node, asked to stop, reports `NOT_SERVING` and
    /// goes on accepting calls for `delay` (see
    /// [`GrpcServer::drain_delay`]) before it drains.
    pub fn drain_delay(mut self, delay: Duration) -> Self {
        self.drain_delay = delay;
        self
    }

    /// Migrates `S`'s tables, assembles it with `config` and serves it on
    /// `listen`; its state, for bootstrap and tests.
    pub async fn start<S: Service>(
        &mut self,
        config: S::Config,
        listen: impl Into<Listen>,
    ) -> anyhow::Result<S> {
        let name = S::BACKEND.name();
        let db = connect_and_migrate::<S::Migrator>(&self.state.target(S::BACKEND)?)
            .await
            .with_context(|| format!("preparing the {name} database"))?;
        orgplane_storage::db::report_pool_use(&db, name, self.shutdown.wait());
        let tls = self.state.certs().load(name)?;
        let wiring = Wiring {
            peers: &self.peers,
            tls: &tls,
            request_timeout: self.request_timeout,
            stop: &self.shutdown,
        };
        let (service, assembled) = S::assemble(db, config, wiring)?;
        self.run(assembled, listen.into().bind().await?);
        Ok(service)
    }

    /// Serves `assembled` on `listener` and runs its background work until
    /// the node stops.
    fn run(&mut self, assembled: Assembled, listener: TcpListener) {
        let server = assembled.server.drain_delay(self.drain_delay);
        self.tasks
            .spawn(server.serve(listener, self.shutdown.wait()));
        for work in assembled.background {
            self.tasks.spawn(async move {
                work.await;
                Ok(())
            });
        }
    }

    /// Serves the gateway on `listener`; it stops before the services.
    pub fn start_gateway(&mut self, gateway: GrpcServer, listener: TcpListener) {
        let gateway = gateway.drain_delay(self.drain_delay);
        let task = self
            .tasks
            .spawn(gateway.serve(listener, self.gateway_shutdown.wait()));
        self.gateway_task = Some(task.id());
    }

    /// Stops accepting calls, lets in-flight calls finish, and waits for
    /// every server and background task: the gateway first, then the
    /// services.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.ready.send_replace(false);
        if let Some(gateway) = self.gateway_task {
            self.gateway_shutdown.trigger();
            while let Some(result) = self.tasks.join_next_with_id().await {
                let (id, outcome) = result?;
                outcome?;
                if id == gateway {
                    break;
                }
            }
        }
        self.shutdown.trigger();
        while let Some(result) = self.tasks.join_next().await {
            result??;
        }
        if let Some((stop, serving)) = self.ops.take() {
            stop.trigger();
            serving.await??;
        }
        Ok(())
    }

    /// Completes when a server stops on its own (an error).
    pub async fn wait_for_failure(&mut self) -> anyhow::Result<()> {
        match self.tasks.join_next().await {
            Some(result) => {
                result??;
                anyhow::bail!("a server stopped unexpectedly")
            }
            None => Ok(()),
        }
    }

    /// Runs until Ctrl-C or SIGTERM (or a server fails), then stops.
    pub async fn run_until_signal(mut self) -> anyhow::Result<()> {
        tokio::select! {
            _ = shutdown::signal() => {}
            result = self.wait_for_failure() => result?,
        }
        self.stop().await
    }
}

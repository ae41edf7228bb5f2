//! Server streams through the gateway: at most [`MAX_STREAMS_PER_PRINCIPAL`]
//! open at once per principal, and each one ends when its token does.
//!
//! A unary call is authenticated once, when it arrives; a stream can run
//! for hours after that. While a stream is open, the gateway checks its
//! token again every [`RECHECK`] (through its token cache, whose answers
//! live at most 5 s): once the token is revoked or expired, the stream ends
//! with `UNAUTHENTICATED` — within 15 s. Losing access to what is watched
//! is the backend's to notice (the activity feed checks every 10 s).
//!
//! A stream has no end of its own, so graceful shutdown would wait for it
//! until the drain timeout: when the gateway starts draining, every stream
//! ends at once with `UNAVAILABLE`, and its client reconnects to another
//! gateway, resuming from its cursor.

use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll, ready},
    time::Duration,
};

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body::{Frame, SizeHint};
use orgplane_platform::Error;
use tonic::body::Body;

use crate::auth::Authenticator;

/// Most server streams one principal may hold open through one gateway.
pub const MAX_STREAMS_PER_PRINCIPAL: usize = 16;
/// How often an open stream's token is checked again.
pub const RECHECK: Duration = Duration::from_secs(10);

/// Open streams per principal, and whether the gateway is draining (then
/// every stream ends with `UNAVAILABLE`: the client reconnects elsewhere).
#[derive(Debug, Clone)]
pub struct OpenStreams {
    open: Arc<Mutex<HashMap<String, usize>>>,
    draining: tokio::sync::watch::Receiver<bool>,
}

impl OpenStreams {
    /// No stream open; streams end once `draining` turns true.
    pub fn new(draining: tokio::sync::watch::Receiver<bool>) -> Self {
        Self {
            open: Arc::default(),
            draining,
        }
    }

    /// A slot for one more stream of `principal`, or `RESOURCE_EXHAUSTED`.
    pub fn open(&self, principal: &str) -> Result<StreamSlot, tonic::Status> {
        let mut open = self.open.lock().expect("the open streams' lock");
        let count = open.entry(principal.to_owned()).or_default();
        if *count >= MAX_STREAMS_PER_PRINCIPAL {
            return Err(Error::ResourceExhausted {
                reason: "TOO_MANY_STREAMS",
                message: format!(
                    "at most {MAX_STREAMS_PER_PRINCIPAL} streams may be open at once: close one"
                ),
                retry_after: None,
            }
            .into_status());
        }
        *count += 1;
        Ok(StreamSlot {
            streams: self.clone(),
            principal: principal.to_owned(),
        })
    }
}

/// One open stream; the slot frees when it drops (the stream ended, or the
/// client went away).
#[derive(Debug)]
pub struct StreamSlot {
    streams: OpenStreams,
    principal: String,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.streams.open.lock().expect("the open streams' lock");
        if let Some(count) = open.get_mut(&self.principal) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.principal);
            }
        }
    }
}

/// A stream's response body that ends with `UNAUTHENTICATED` trailers once
/// its token no longer authenticates, and holds its slot while it runs.
pub struct GuardedStream {
    inner: Body,
    token: String,
    authenticator: Authenticator,
    next_check: Pin<Box<tokio::time::Sleep>>,
    checking: Option<BoxFuture<'static, bool>>,
    draining: BoxFuture<'static, ()>,
    ended: bool,
    _slot: StreamSlot,
}

impl GuardedStream {
    /// Guards `inner`, the body of a stream opened with `token`.
    pub fn new(inner: Body, token: String, authenticator: Authenticator, slot: StreamSlot) -> Self {
        let mut draining = slot.streams.draining.clone();
        Self {
            draining: Box::pin(async move {
                let _ = draining.wait_for(|draining| *draining).await;
            }),
            inner,
            token,
            authenticator,
            next_check: Box::pin(tokio::time::sleep(RECHECK)),
            checking: None,
            ended: false,
            _slot: slot,
        }
    }

    /// The trailers that end a stream with `status`.
    fn end_with(status: tonic::Status) -> Frame<Bytes> {
        let mut trailers = http::HeaderMap::new();
        let _ = status.add_header(&mut trailers);
        Frame::trailers(trailers)
    }
}

impl http_body::Body for GuardedStream {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        if self.draining.as_mut().poll(cx).is_ready() {
            self.ended = true;
            return Poll::Ready(Some(Ok(Self::end_with(tonic::Status::unavailable(
                "the gateway is shutting down: reconnect",
            )))));
        }
        if self.checking.is_none() && self.next_check.as_mut().poll(cx).is_ready() {
            let (authenticator, token) = (self.authenticator.clone(), self.token.clone());
            self.checking = Some(Box::pin(async move {
                authenticator.authenticate(&token).await.is_ok()
            }));
        }
        if let Some(check) = self.checking.as_mut()
            && let Poll::Ready(live) = check.as_mut().poll(cx)
        {
            self.checking = None;
            if !live {
                self.ended = true;
                return Poll::Ready(Some(Ok(Self::end_with(tonic::Status::unauthenticated(
                    "the token is expired or revoked",
                )))));
            }
            let next = tokio::time::Instant::now() + RECHECK;
            self.next_check.as_mut().reset(next);
            let _ = self.next_check.as_mut().poll(cx);
        }
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if frame.is_none() {
            self.ended = true;
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

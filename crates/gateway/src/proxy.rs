//! The passthrough: one call in, the same call out to its backend.
//!
//! Bodies are never decoded: the request body and the response body stream
//! (with its trailers) are handed to the backend's channel as they are
//! (which sends a call again to another replica when one refused the
//! connection: `orgplane_transport::client`), so unary and streaming calls
//! cost the same hop. What the
//! gateway changes is metadata: it drops the bearer token and any
//! `x-orgplane-*` header a client sent, adds the authenticated principal,
//! the client's address (for identity's lockout), a deadline when the
//! caller set none, and the trace context.
//!
//! Limits come first: the client address's bucket before the token is
//! looked up (an address that sent too many bad tokens is refused before
//! its next one costs identity a lookup), the principal's after.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use http::{HeaderValue, header};
use orgplane_platform::{Error, principal::PRINCIPAL_METADATA};
use orgplane_proto::{ANONYMOUS_METHODS, Backend};
use orgplane_transport::{
    client::{Channel, error_chain},
    grpc::{CLIENT_ADDRESS_METADATA, REVOKED_PRINCIPAL_METADATA},
    telemetry::inject_current_context,
};
use tonic::{
    body::Body,
    transport::server::{TcpConnectInfo, TlsConnectInfo},
};
use tower::{Service, ServiceExt};

use crate::{
    auth::{AuthError, Authenticated, Authenticator},
    rate_limit::{Limits, address_key},
    streams::{GuardedStream, OpenStreams},
};

/// The methods whose responses stream (guarded by [`GuardedStream`]).
static STREAMING: std::sync::LazyLock<Vec<String>> =
    std::sync::LazyLock::new(orgplane_proto::streaming_methods);

/// Forwards calls to one backend (a tower service, cheap to clone).
#[derive(Clone)]
pub struct Proxy {
    backend: Backend,
    channel: Option<Channel>,
    authenticator: Authenticator,
    limits: Arc<Limits>,
    open_streams: OpenStreams,
    /// `grpc-timeout` for calls that set no deadline, encoded once.
    default_timeout: HeaderValue,
}

/// `RESOURCE_EXHAUSTED`: wait `wait` before calling again.
fn rate_limited(wait: Duration) -> tonic::Status {
    Error::ResourceExhausted {
        reason: "RATE_LIMITED",
        message: "too many calls: slow down".into(),
        retry_after: Some(wait),
    }
    .into_status()
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Proxy {
    /// A proxy to `backend` over `channel`; without a channel every call
    /// answers `UNIMPLEMENTED` (the backend is not deployed).
    pub fn new(
        backend: Backend,
        channel: Option<Channel>,
        authenticator: Authenticator,
        limits: Arc<Limits>,
        open_streams: OpenStreams,
        default_deadline: Duration,
    ) -> Self {
        // gRPC's timeout is at most eight digits.
        let millis = default_deadline.as_millis().min(99_999_999);
        Self {
            backend,
            channel,
            authenticator,
            limits,
            open_streams,
            default_timeout: HeaderValue::from_str(&format!("{millis}m"))
                .expect("digits and a unit are a header value"),
        }
    }

    /// Forwards `req`, taking its body only once the call is let through:
    /// a refused call leaves it to [`drain_refused`].
    async fn forward(
        self,
        req: &mut http::Request<Body>,
    ) -> Result<http::Response<Body>, tonic::Status> {
        let Some(channel) = self.channel.clone() else {
            return Err(tonic::Status::unimplemented(format!(
                "the {} service is not deployed",
                self.backend.name()
            )));
        };
        let path = req.uri().path();
        let anonymous = ANONYMOUS_METHODS.contains(&path);
        let streaming = STREAMING.iter().any(|method| method == path);
        let address = address_key(remote_ip(req));
        self.limits.address.check(&address).map_err(rate_limited)?;
        let headers = req.headers_mut();
        let authorization = headers.remove(header::AUTHORIZATION);
        strip_untrusted(headers);

        let token = match authorization.as_ref().map(bearer_token).transpose() {
            Ok(token) => token,
            Err(status) => {
                self.limits.authentication_failed(&address);
                return Err(status);
            }
        };
        let principal = match &token {
            Some(token) => {
                let blocked = self.limits.check_not_blocked(&address);
                match self.authenticate(token, blocked.is_err()).await {
                    Ok(principal) => Some(principal),
                    Err(_) if let Err(wait) = blocked => return Err(rate_limited(wait)),
                    Err(status) => {
                        if status.code() == tonic::Code::Unauthenticated {
                            self.limits.authentication_failed(&address);
                        }
                        return Err(status);
                    }
                }
            }
            None if anonymous => None,
            None => {
                return Err(Error::unauthenticated(
                    "MISSING_CREDENTIALS",
                    "this method needs `authorization: Bearer <token>`",
                )
                .into_status());
            }
        };

        if let Some(p) = &principal {
            self.limits
                .principal
                .check(&p.principal.uuid)
                .map_err(rate_limited)?;
        }
        // A stream holds a slot of its principal's and ends with its token.
        let stream = match (&principal, &token) {
            (Some(p), Some(token)) if streaming => Some((
                self.open_streams.open(&p.principal.uuid)?,
                (*token).to_owned(),
            )),
            _ => None,
        };

        let headers = req.headers_mut();
        if let Ok(value) = HeaderValue::from_maybe_shared(bytes::Bytes::from(address.to_string())) {
            headers.insert(CLIENT_ADDRESS_METADATA, value);
        }
        if let Some(principal) = principal {
            headers.insert(PRINCIPAL_METADATA, principal.metadata.clone());
        }
        if !headers.contains_key("grpc-timeout") {
            headers.insert("grpc-timeout", self.default_timeout.clone());
        }
        inject_current_context(headers);

        let mut response = channel
            .oneshot(std::mem::take(req))
            .await
            .map_err(|err| backend_failure(self.backend, &*err))?;
        if let Some(revoked) = response.headers_mut().remove(REVOKED_PRINCIPAL_METADATA)
            && let Ok(uuid) = revoked.to_str()
        {
            self.authenticator.forget_principals([uuid.to_owned()]);
        }
        Ok(match stream {
            Some((slot, token)) => {
                let authenticator = self.authenticator.clone();
                response.map(|body| Body::new(GuardedStream::new(body, token, authenticator, slot)))
            }
            None => response,
        })
    }

    /// The principal of the bearer `token`; when `cached_only` (the client's
    /// address spent its failed authentications), only an answer already
    /// cached counts and no lookup is made.
    async fn authenticate(
        &self,
        token: &str,
        cached_only: bool,
    ) -> Result<Arc<Authenticated>, tonic::Status> {
        if cached_only {
            return self.authenticator.cached(token).await.ok_or_else(|| {
                Error::unauthenticated("INVALID_TOKEN", "not looked up: slow down").into_status()
            });
        }
        self.authenticator
            .authenticate(token)
            .await
            .map_err(|err| match err {
                AuthError::Invalid => Error::unauthenticated(
                    "INVALID_TOKEN",
                    "the token is unknown, expired or revoked",
                )
                .into_status(),
                AuthError::Unavailable(detail) => {
                    tracing::warn!(detail, "token introspection failed");
                    tonic::Status::unavailable("authentication is unavailable")
                }
            })
    }
}

/// The token of an `authorization: Bearer <token>` header.
fn bearer_token(value: &HeaderValue) -> Result<&str, tonic::Status> {
    value
        .to_str()
        .ok()
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            Error::unauthenticated(
                "MALFORMED_CREDENTIALS",
                "authorization must be `Bearer <token>`",
            )
            .into_status()
        })
}

/// The status of a call the backend did not answer: its deadline passed, or
/// the backend could not be reached.
fn backend_failure(backend: Backend, err: &(dyn std::error::Error + 'static)) -> tonic::Status {
    for err in error_chain(err) {
        if let Some(status) = err.downcast_ref::<tonic::Status>() {
            return tonic::Status::new(status.code(), status.message());
        }
        if err.is::<tonic::TimeoutExpired>() {
            return tonic::Status::deadline_exceeded(
                "the deadline passed before the backend answered",
            );
        }
    }
    tracing::warn!(backend = backend.name(), error = %err, "backend call failed");
    tonic::Status::unavailable(format!("the {} service is unavailable", backend.name()))
}

/// Removes what a client must not set or what does not cross the hop:
/// orgplane's internal metadata and connection-level HTTP headers.
fn strip_untrusted(headers: &mut http::HeaderMap) {
    let internal: Vec<_> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("x-orgplane-"))
        .cloned()
        .collect();
    for name in internal {
        headers.remove(name);
    }
    for name in [
        header::HOST,
        header::CONNECTION,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::HeaderName::from_static("keep-alive"),
        header::HeaderName::from_static("proxy-connection"),
    ] {
        headers.remove(name);
    }
}

fn remote_ip<B>(req: &http::Request<B>) -> Option<std::net::IpAddr> {
    let ext = req.extensions();
    ext.get::<TcpConnectInfo>()
        .and_then(|i| i.remote_addr)
        .or_else(|| {
            ext.get::<TlsConnectInfo<TcpConnectInfo>>()
                .and_then(|i| i.get_ref().remote_addr)
        })
        .map(|addr| addr.ip())
}

/// The most of a refused call's body read before answering it.
const DRAIN_LIMIT: usize = 64 * 1024;
/// The longest a refused call's body is waited for.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

/// Reads what is left of a refused HTTP/1.1 (gRPC-Web) call's body, up to
/// [`DRAIN_LIMIT`] and [`DRAIN_TIMEOUT`]. An HTTP/1.1 connection whose
/// request body was not read is closed after the answer, and a browser or
/// Node client that reuses it (keep-alive) fails its next call with a
/// network error rather than a status. HTTP/2 streams need none of this,
/// and a larger or slower body closes the connection as before.
async fn drain_refused(req: http::Request<Body>) {
    use http_body_util::{BodyExt, Limited};
    if req.version() >= http::Version::HTTP_2 {
        return;
    }
    let body = Limited::new(req.into_body(), DRAIN_LIMIT);
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, body.collect()).await;
}

impl Service<http::Request<Body>> for Proxy {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: http::Request<Body>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            match this.forward(&mut req).await {
                Ok(response) => Ok(response),
                Err(status) => {
                    drain_refused(req).await;
                    Ok(status.into_http())
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_internal_and_hop_headers() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "x-orgplane-principal-bin",
            HeaderValue::from_static("forged"),
        );
        headers.insert("x-orgplane-anything", HeaderValue::from_static("x"));
        headers.insert(header::HOST, HeaderValue::from_static("example"));
        headers.insert("x-request-id", HeaderValue::from_static("keep"));
        strip_untrusted(&mut headers);
        assert_eq!(headers.len(), 1);
        assert!(headers.contains_key("x-request-id"));
    }
}

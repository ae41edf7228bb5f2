//! CORS for gRPC-Web: which web pages, by origin, a browser lets call the
//! gateway.
//!
//! A browser calls another origin only when that origin's answer to a
//! preflight (`OPTIONS`) names the page's origin. Origins are an explicit
//! list, never `*`: a page on a listed origin may carry a user's bearer
//! token, so which sites get to is the operator's decision. Without a list
//! no CORS headers are sent and only same-origin pages can call.

use std::time::Duration;

use anyhow::{Context as _, bail};
use http::{HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The request headers a gRPC-Web client sends: its framing and user agent
/// (`x-grpc-web`, `x-user-agent`), the deadline, the bearer token, and
/// tracing context.
const ALLOWED_HEADERS: [&str; 8] = [
    "content-type",
    "x-grpc-web",
    "x-user-agent",
    "grpc-timeout",
    "authorization",
    "x-request-id",
    "traceparent",
    "tracestate",
];

/// The response headers a page may read: the status, its message and its
/// details (`google.rpc.Status`), which gRPC-Web sends as headers when a
/// call fails before any message.
const EXPOSED_HEADERS: [&str; 3] = ["grpc-status", "grpc-message", "grpc-status-details-bin"];

/// How long a browser may reuse a preflight's answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(3600);

/// One origin allowed to call from a browser, as a browser sends it in
/// `Origin`: `scheme://host[:port]`, with no path, no trailing slash and
/// no `*` (checked when parsed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsOrigin(HeaderValue);

impl std::str::FromStr for CorsOrigin {
    type Err = anyhow::Error;

    fn from_str(origin: &str) -> anyhow::Result<Self> {
        parse_origin(origin).map(Self)
    }
}

/// The origins allowed to call from a browser.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorsOrigins(Vec<HeaderValue>);

impl FromIterator<CorsOrigin> for CorsOrigins {
    fn from_iter<I: IntoIterator<Item = CorsOrigin>>(origins: I) -> Self {
        Self(origins.into_iter().map(|origin| origin.0).collect())
    }
}

impl CorsOrigins {
    /// Parses each of `origins` as a [`CorsOrigin`].
    pub fn parse<S: AsRef<str>>(origins: &[S]) -> anyhow::Result<Self> {
        origins
            .iter()
            .map(|origin| origin.as_ref().parse())
            .collect()
    }

    /// Whether no origin is allowed (no CORS at all).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The layer answering preflights and marking responses for these
    /// origins; `None` when there are none.
    pub fn layer(&self) -> Option<CorsLayer> {
        if self.is_empty() {
            return None;
        }
        let names = |names: &[&'static str]| {
            names
                .iter()
                .map(|name| HeaderName::from_static(name))
                .collect::<Vec<_>>()
        };
        Some(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(self.0.iter().cloned()))
                .allow_methods([Method::POST])
                .allow_headers(names(&ALLOWED_HEADERS))
                .expose_headers(names(&EXPOSED_HEADERS))
                .max_age(PREFLIGHT_MAX_AGE),
        )
    }
}

fn parse_origin(origin: &str) -> anyhow::Result<HeaderValue> {
    const SHAPE: &str = "an origin is scheme://host[:port], as a browser sends it \
                         (e.g. https://console.example.com), without a path or `*`";
    let uri: http::Uri = origin
        .parse()
        .with_context(|| format!("CORS origin {origin:?}: {SHAPE}"))?;
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        bail!("CORS origin {origin:?}: {SHAPE}");
    };
    if !matches!(scheme, "http" | "https")
        || format!("{scheme}://{authority}") != origin
        || authority.as_str().contains('@')
        || origin.contains('*')
        || origin != origin.to_ascii_lowercase()
    {
        bail!("CORS origin {origin:?}: {SHAPE} (lower case, http or https)");
    }
    Ok(HeaderValue::from_str(origin)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_taken_as_browsers_send_them() {
        let origins =
            CorsOrigins::parse(&["https://console.example.com", "http://127.0.0.1:8080"]).unwrap();
        assert_eq!(origins.0.len(), 2);
        assert!(origins.layer().is_some());
    }

    #[test]
    fn anything_else_is_refused_with_the_expected_shape() {
        for bad in [
            "*",
            "https://*.example.com",
            "console.example.com",
            "https://console.example.com/",
            "https://console.example.com/app",
            "https://Console.example.com",
            "ftp://example.com",
            "https://user@example.com",
            "https://example.com\r\nx-injected: 1",
            "https://example.com,https://other.example",
            "",
        ] {
            let error = CorsOrigins::parse(&[bad]).unwrap_err().to_string();
            assert!(error.contains("scheme://host[:port]"), "{bad:?}: {error}");
        }
    }

    #[test]
    fn no_origins_means_no_cors() {
        let none = CorsOrigins::parse::<&str>(&[]).unwrap();
        assert!(none.is_empty());
        assert!(none.layer().is_none());
    }
}

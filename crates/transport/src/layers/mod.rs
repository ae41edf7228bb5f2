//! The tower layers every orgplane server runs, one per file, applied by
//! [`crate::server`] in a fixed order: trace → metrics → catch panic →
//! [CORS → gRPC-Web] → caller identity.

pub mod caller;
pub mod catch_panic;
pub mod cors;
pub mod metrics;
pub mod trace;

//! How orgplane processes talk: the gRPC server builder ([`server`]) and
//! its layers, the internal PKI and mTLS ([`pki`]), channels balanced over a
//! backend's replicas ([`client`]), principals
//! and masks on the wire ([`grpc`]), the clients of other services' internal
//! RPCs speaking domain types ([`peers`]), the cached access checker
//! ([`access`]), following the changes of the service a cache holds
//! answers of ([`follow`]), the operations port (metrics and probes,
//! [`ops`]) and telemetry.

pub mod access;
pub mod client;
pub mod follow;
pub mod grpc;
pub mod layers;
pub mod ops;
pub mod peers;
pub mod pki;
pub mod server;
pub mod staleness;
pub mod telemetry;

//! The `orgplane` command: serve one service, run the whole control plane in
//! dev, manage certificates, migrate, bootstrap. The library part holds what
//! the end-to-end tests start the same way as `orgplane dev`.

pub mod admin;
pub mod node;
pub mod stack;

pub use stack::{Stack, StackConfig};

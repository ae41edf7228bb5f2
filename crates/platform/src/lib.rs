//! The rules every orgplane process shares, whatever it talks or stores:
//! the error model and its one mapping to the wire ([`error`]), validation,
//! principals, the role → permission table ([`authz`]) and restrictions,
//! activities as they travel, deleted organizations as they are read, time,
//! secrets, tags, rate limits and shutdown.
//!
//! How processes talk is `orgplane-transport`; how services keep state is
//! `orgplane-storage`; neither is needed to use this crate, so the gateway
//! links no database driver.

pub mod activity;
pub mod authz;
pub mod deletions;
pub mod error;
pub mod json;
pub mod principal;
pub mod rate_limit;
pub mod restriction;
pub mod secrets;
pub mod shutdown;
pub mod tags;
pub mod time;
pub mod validate;

pub use error::{Error, Result};

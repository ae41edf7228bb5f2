//! Deleted organizations, as the services that purge what they hold of them
//! read them: the record and where it comes from ([`DeletionLog`]; the
//! organizations service over gRPC is `orgplane_transport::peers::OrganizationsPeer`).
//! The purge itself, with its stored cursor, is `orgplane_storage::deletions`.

use std::future::Future;

use crate::Error;

/// A deleted organization, for the services that purge what they hold of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedOrganization {
    /// Its UUID.
    pub uuid: String,
    /// Its slug at deletion.
    pub name: String,
    /// When it was deleted (microseconds).
    pub delete_time: i64,
}

/// Where deleted organizations are listed, oldest first.
pub trait DeletionLog: Send + Sync {
    /// Deleted organizations after `page_token`, at most `page_size`, and the
    /// token to continue from next time.
    fn deleted_organizations(
        &self,
        page_token: &str,
        page_size: i32,
    ) -> impl Future<Output = Result<(Vec<DeletedOrganization>, String), Error>> + Send;
}

//! Helpers for the thin gRPC adapters of each service: who is calling, and
//! converting request fields at the edge.

use prost_types::FieldMask;

use crate::layers::caller::CallerIdentity;
use orgplane_platform::{
    error::Error,
    principal::{PRINCIPAL_METADATA, Principal},
};

/// The identity whose principal metadata backends trust.
pub const GATEWAY_IDENTITY: &str = "gateway";

/// Response metadata naming a principal (user, service account or agent)
/// some of whose tokens this call revoked: the gateway that forwarded the
/// call forgets its cached answers for that principal at once (and strips
/// the header). Other gateways notice within their cache's lifetime.
pub const REVOKED_PRINCIPAL_METADATA: &str = "x-orgplane-revoked-principal";

/// `response`, telling the gateway that tokens of `principal_uuid` were
/// revoked.
pub fn revoking<T>(mut response: tonic::Response<T>, principal_uuid: &str) -> tonic::Response<T> {
    if let Ok(value) = principal_uuid.parse() {
        response
            .metadata_mut()
            .insert(REVOKED_PRINCIPAL_METADATA, value);
    }
    response
}

/// Metadata key of the client's address as the gateway saw it (an IPv4
/// address, or an IPv6 /64), trusted only from the gateway.
pub const CLIENT_ADDRESS_METADATA: &str = "x-orgplane-client-address";

/// The client address the gateway forwarded, if the call came through the
/// gateway's mTLS identity; `None` from anyone else (a client cannot set it:
/// the gateway strips every `x-orgplane-*` header it is sent).
pub fn client_address<T>(req: &tonic::Request<T>) -> Option<String> {
    let caller = req.extensions().get::<CallerIdentity>()?;
    if caller.0 != GATEWAY_IDENTITY {
        return None;
    }
    let value = req.metadata().get(CLIENT_ADDRESS_METADATA)?.to_str().ok()?;
    (!value.is_empty() && value.len() <= 64).then(|| value.to_owned())
}

/// The principal forwarded by the gateway, if the call came through the
/// gateway's mTLS identity and carried one. Metadata from any other caller is
/// ignored: only the gateway vouches for end users.
pub fn principal<T>(req: &tonic::Request<T>) -> Option<Principal> {
    let caller = req.extensions().get::<CallerIdentity>()?;
    if caller.0 != GATEWAY_IDENTITY {
        return None;
    }
    let value = req.metadata().get_bin(PRINCIPAL_METADATA)?;
    Principal::from_metadata_value(value.as_encoded_bytes())
}

/// The principal, or `UNAUTHENTICATED` when the call has none.
pub fn require_principal<T>(req: &tonic::Request<T>) -> Result<Principal, Error> {
    principal(req).ok_or_else(|| {
        Error::unauthenticated("MISSING_CREDENTIALS", "this method needs a bearer token")
    })
}

/// A required message field, or `INVALID_ARGUMENT` naming it.
pub fn required<T>(value: Option<T>, field: &str) -> Result<T, Error> {
    value.ok_or_else(|| Error::invalid(field, "is required"))
}

/// The paths of an update mask, each checked against `allowed`; an empty or
/// missing mask is refused (an update must say what it changes).
pub fn update_paths(mask: Option<FieldMask>, allowed: &[&str]) -> Result<Vec<String>, Error> {
    let paths = mask.map(|m| m.paths).unwrap_or_default();
    if paths.is_empty() {
        return Err(Error::invalid(
            "update_mask",
            "must name at least one field",
        ));
    }
    for path in &paths {
        if !allowed.contains(&path.as_str()) {
            return Err(Error::invalid(
                "update_mask",
                format!("cannot update {path:?}; updatable: {}", allowed.join(", ")),
            ));
        }
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_masks_are_checked() {
        let mask = |p: &[&str]| {
            Some(FieldMask {
                paths: p.iter().map(|s| s.to_string()).collect(),
            })
        };
        assert_eq!(
            update_paths(mask(&["email"]), &["email", "display_name"]).unwrap(),
            ["email"]
        );
        assert!(update_paths(mask(&[]), &["email"]).is_err());
        assert!(update_paths(None, &["email"]).is_err());
        assert!(update_paths(mask(&["username"]), &["email"]).is_err());
    }
}

//! Helpers for the thin gRPC adapters of each service: who is calling, and
//! converting request fields at the edge.

use prost_types::FieldMask;

use crate::{
    error::Error,
    layers::caller::CallerIdentity,
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

/// A `google.protobuf.Struct` as JSON (free-form metadata is stored so).
pub fn struct_to_json(s: &prost_types::Struct) -> serde_json::Value {
    serde_json::Value::Object(
        s.fields
            .iter()
            .map(|(k, v)| (k.clone(), value_to_json(v)))
            .collect(),
    )
}

fn value_to_json(v: &prost_types::Value) -> serde_json::Value {
    use prost_types::value::Kind;
    match &v.kind {
        None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
        Some(Kind::NumberValue(n)) => serde_json::Number::from_f64(*n)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null),
        Some(Kind::StringValue(s)) => serde_json::Value::String(s.clone()),
        Some(Kind::BoolValue(b)) => serde_json::Value::Bool(*b),
        Some(Kind::StructValue(s)) => struct_to_json(s),
        Some(Kind::ListValue(l)) => {
            serde_json::Value::Array(l.values.iter().map(value_to_json).collect())
        }
    }
}

/// JSON as a `google.protobuf.Struct`; anything but an object is empty.
pub fn json_to_struct(value: &serde_json::Value) -> prost_types::Struct {
    prost_types::Struct {
        fields: value
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| (k.clone(), json_to_value(v)))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

fn json_to_value(v: &serde_json::Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match v {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(*b),
        serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(0.0)),
        serde_json::Value::String(s) => Kind::StringValue(s.clone()),
        serde_json::Value::Array(a) => Kind::ListValue(prost_types::ListValue {
            values: a.iter().map(json_to_value).collect(),
        }),
        serde_json::Value::Object(_) => Kind::StructValue(json_to_struct(v)),
    };
    prost_types::Value { kind: Some(kind) }
}

#[cfg(test)]
mod struct_tests {
    use super::*;

    #[test]
    fn structs_round_trip_through_json() {
        let json = serde_json::json!({"a": 1.5, "b": [true, null, "x"], "c": {"d": "e"}});
        assert_eq!(struct_to_json(&json_to_struct(&json)), json);
    }
}

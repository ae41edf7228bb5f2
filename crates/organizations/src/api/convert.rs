//! Domain rows → proto messages.

use orgplane_platform::time::to_timestamp;
use orgplane_proto::organizations as pb;

use crate::{
    domain::organizations::{OrganizationView, etag},
    storage::members,
};

/// An organization with the caller's role.
pub fn organization(view: OrganizationView) -> pb::Organization {
    let o = view.organization;
    pb::Organization {
        uuid: o.uuid,
        name: o.name,
        display_name: o.display_name,
        description: o.description,
        website: o.website,
        role: view.role.as_str().to_owned(),
        visibility: visibility(&o.visibility) as i32,
        create_time: Some(to_timestamp(o.create_time)),
        update_time: Some(to_timestamp(o.update_time)),
        etag: etag(o.version),
    }
}

/// Stored visibility → proto.
pub fn visibility(value: &str) -> pb::Visibility {
    match value {
        "public" => pb::Visibility::Public,
        _ => pb::Visibility::Private,
    }
}

/// Proto visibility → stored; unspecified means private.
pub fn visibility_str(value: pb::Visibility) -> &'static str {
    match value {
        pb::Visibility::Public => "public",
        pb::Visibility::Private | pb::Visibility::Unspecified => "private",
    }
}

/// A member.
pub fn member(m: members::Model) -> pb::Member {
    pb::Member {
        user: m.username.clone(),
        email: String::new(),
        display_name: m.username,
        role: m.role,
        create_time: Some(to_timestamp(m.create_time)),
        update_time: Some(to_timestamp(m.update_time)),
        etag: etag(m.version),
    }
}

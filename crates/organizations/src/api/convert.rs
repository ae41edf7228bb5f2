//! Domain rows → proto messages.

use orgplane_platform::time::to_timestamp;
use orgplane_proto::organizations as pb;

use crate::{
    domain::{
        organizations::{OrganizationView, etag},
        teams::Grant,
    },
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
/// A member, with an outsider's own grants.
pub fn member(m: members::Model, grants: Vec<Grant>) -> pb::Member {
    pb::Member {
        grants: grants
            .into_iter()
            .map(|g| pb::MemberGrant {
                kind: kind_of(&g.kind) as i32,
                name: g.name,
                role: g.role,
            })
            .collect(),
        user: m.username.clone(),
        email: String::new(),
        display_name: m.username,
        role: m.role,
        create_time: Some(to_timestamp(m.create_time)),
        update_time: Some(to_timestamp(m.update_time)),
        etag: etag(m.version),
    }
}

/// Settings → proto.
pub fn settings(s: crate::domain::settings::Settings) -> pb::OrganizationSettings {
    pb::OrganizationSettings {
        support_email: s.support_email,
        default_role: s.default_role.as_str().to_owned(),
        default_queue: s.default_queue,
        auth: Some(pb::AuthSettings {
            invite_only: s.auth.invite_only,
            allowed_email_domains: s.auth.allowed_email_domains,
            password_enabled: s.auth.password_enabled,
            providers: s.auth.providers.into_iter().map(auth_provider).collect(),
        }),
        activity_retention_days: s.activity_retention_days,
        etag: s.etag,
    }
}

/// An identity provider → proto.
pub fn auth_provider(p: crate::domain::settings::AuthProvider) -> pb::AuthProvider {
    pb::AuthProvider {
        name: p.name,
        issuer: p.issuer,
        client_id: p.client_id,
        allowed_email_domains: p.allowed_email_domains,
        enabled: p.enabled,
    }
}

/// An entity kind as stored.
pub fn kind_str(kind: pb::EntityKind) -> &'static str {
    match kind {
        pb::EntityKind::Project => "project",
        pb::EntityKind::ModelRegistry => "model_registry",
        pb::EntityKind::ComponentHub => "component_hub",
        pb::EntityKind::Unspecified => "",
    }
}

/// A stored entity kind on the wire.
pub fn kind_of(kind: &str) -> pb::EntityKind {
    match kind {
        "project" => pb::EntityKind::Project,
        "model_registry" => pb::EntityKind::ModelRegistry,
        "component_hub" => pb::EntityKind::ComponentHub,
        _ => pb::EntityKind::Unspecified,
    }
}

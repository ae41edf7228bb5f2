//! Domain rows → proto messages.

use orgplane_platform::time::to_timestamp;
use orgplane_proto::identity as pb;

use crate::{
    domain::users::UserView,
    storage::{external_identities, tokens, users},
};

/// A link to an identity at a provider.
pub fn external_identity(link: external_identities::Model) -> pb::ExternalIdentity {
    pb::ExternalIdentity {
        uuid: link.uuid,
        issuer: link.issuer,
        subject: link.subject,
        create_time: Some(to_timestamp(link.create_time)),
    }
}

/// A user as its owner (or an instance admin) sees it.
pub fn user(u: users::Model) -> pb::User {
    pb::User {
        uuid: u.uuid,
        username: u.username,
        email: u.email,
        display_name: u.display_name,
        instance_admin: u.instance_admin,
        create_time: Some(to_timestamp(u.create_time)),
        update_time: Some(to_timestamp(u.update_time)),
        email_verified: u.email_verified,
    }
}

/// A user as the caller may see it.
pub fn user_view(view: UserView) -> pb::User {
    let show_email = view.show_email;
    let mut out = user(view.user);
    if !show_email {
        out.email.clear();
    }
    out
}

/// A personal access token (never its secret).
pub fn token(t: tokens::Model) -> pb::Token {
    pb::Token {
        uuid: t.uuid,
        name: t.name.unwrap_or_default(),
        scopes: t.scopes.split_whitespace().map(str::to_owned).collect(),
        expire_time: Some(to_timestamp(t.expire_time)),
        create_time: Some(to_timestamp(t.create_time)),
        update_time: Some(to_timestamp(t.update_time)),
        last_use_time: t.last_use_time.map(to_timestamp),
    }
}

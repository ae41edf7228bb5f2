//! Bootstrapping the instance admin.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use orgplane_identity::{Identity, domain::accounts::NewUser};
use rand::RngCore;

/// The instance admin's username.
pub const ADMIN_USERNAME: &str = "admin";
/// The instance admin's email.
pub const ADMIN_EMAIL: &str = "admin@orgplane.local";

/// What bootstrap did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bootstrap {
    /// The admin existed; nothing changed.
    Existed,
    /// Created with the given password.
    Created {
        /// The password, when it was generated (to show once).
        generated_password: Option<String>,
    },
}

/// Creates the instance admin unless it exists, with `password` or a
/// generated one.
pub async fn bootstrap_admin(
    identity: &Identity,
    password: Option<String>,
) -> anyhow::Result<Bootstrap> {
    let (password, generated) = match password.filter(|p| !p.is_empty()) {
        Some(p) => (p, false),
        None => {
            let mut bytes = [0u8; 18];
            rand::rng().fill_bytes(&mut bytes);
            (URL_SAFE_NO_PAD.encode(bytes), true)
        }
    };
    let created = identity
        .bootstrap_admin(NewUser {
            username: ADMIN_USERNAME.into(),
            email: ADMIN_EMAIL.into(),
            password: password.clone(),
            display_name: "Instance admin".into(),
        })
        .await
        .map_err(|err| anyhow::anyhow!("creating the admin: {err}"))?;
    Ok(if created {
        Bootstrap::Created {
            generated_password: generated.then_some(password),
        }
    } else {
        Bootstrap::Existed
    })
}

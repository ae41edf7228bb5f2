//! Bootstrapping the instance admin.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use orgplane_identity::{Identity, domain::accounts::NewUser};
use rand::RngCore;

/// The instance admin's username.
pub const ADMIN_USERNAME: &str = "admin";
/// The instance admin's email in `orgplane dev` when `--admin-email` is not
/// given. Production bootstraps (`orgplane admin bootstrap`) must name a
/// real address: whoever can claim the admin's address (an identity
/// provider's ID token for it, a password reset sent to it) is close to the
/// admin's account, so it must be a mailbox the operator holds.
pub const DEV_ADMIN_EMAIL: &str = "admin@orgplane.local";

/// The instance admin to create when missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminSeed {
    /// Its email address.
    pub email: String,
    /// Its password; generated (and shown once) when unset.
    pub password: Option<String>,
}

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

/// Creates the instance admin unless it exists, with the address `email`
/// and `password` or a generated one.
pub async fn bootstrap_admin(
    identity: &Identity,
    email: &str,
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
            email: email.into(),
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

//! Bearer secrets: 256 random bits, base64url, behind a prefix that names
//! their kind (so secret scanners and humans can tell them apart). Only
//! their SHA-256 is stored: the secrets are random, so a fast hash is safe.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Prefix of session tokens from `Login`.
pub const SESSION_PREFIX: &str = "ops_";
/// Prefix of personal access tokens.
pub const PERSONAL_PREFIX: &str = "opp_";
/// Prefix of password reset tokens.
pub const RESET_PREFIX: &str = "opr_";
/// Prefix of invitation tokens.
pub const INVITATION_PREFIX: &str = "opi_";
/// Prefix of service account tokens.
pub const SERVICE_ACCOUNT_PREFIX: &str = "opa_";
/// Prefix of agent tokens.
pub const AGENT_PREFIX: &str = "opg_";

/// A new secret with `prefix`.
pub fn generate(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The stored form of a secret: hex SHA-256.
pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_unique_and_hashed() {
        let a = generate(SESSION_PREFIX);
        let b = generate(SESSION_PREFIX);
        assert_ne!(a, b);
        assert!(a.starts_with(SESSION_PREFIX));
        assert_eq!(a.len(), SESSION_PREFIX.len() + 43, "256 bits");
        assert_eq!(hash(&a).len(), 64);
        assert_eq!(hash(&a), hash(&a));
        assert_ne!(hash(&a), hash(&b));
    }
}

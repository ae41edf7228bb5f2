//! Password hashing: Argon2id with OWASP's parameters (19 MiB, t=2, p=1),
//! run on the blocking pool under a concurrency limit so that a burst of
//! logins neither stalls the async executor nor exhausts memory.

use std::sync::Arc;

use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use orgplane_platform::Error;
use tokio::sync::Semaphore;

/// Shortest password accepted (ASVS level 1).
pub const MIN_PASSWORD_LEN: usize = 8;
/// Longest password accepted (ASVS allows at least 64).
pub const MAX_PASSWORD_LEN: usize = 128;

/// Memory cost in KiB (OWASP: 19 MiB).
const M_COST_KIB: u32 = 19 * 1024;
/// Iterations (OWASP: 2).
const T_COST: u32 = 2;
/// Lanes (OWASP: 1).
const P_COST: u32 = 1;

/// Checks a new password against the policy: length only, no composition
/// rules (ASVS 2.1). Returns the violation to report for `field`.
pub fn check_policy(password: &str) -> Result<(), String> {
    let len = password.chars().count();
    if len < MIN_PASSWORD_LEN {
        return Err(format!("must be at least {MIN_PASSWORD_LEN} characters"));
    }
    if len > MAX_PASSWORD_LEN {
        return Err(format!("must be at most {MAX_PASSWORD_LEN} characters"));
    }
    Ok(())
}

/// Hashes and verifies passwords off the async executor.
#[derive(Debug, Clone)]
pub struct PasswordHasherPool {
    permits: Arc<Semaphore>,
    /// A hash of a random password, verified when a login names no user so
    /// that unknown and known usernames take the same time.
    dummy_hash: Arc<str>,
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

impl PasswordHasherPool {
    /// At most `concurrency` hashes at once (each takes 19 MiB).
    pub fn new(concurrency: usize) -> Self {
        let dummy = argon2()
            .hash_password(b"orgplane dummy password for timing")
            .expect("hashing the dummy password")
            .to_string();
        Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            dummy_hash: dummy.into(),
        }
    }

    /// The PHC string of `password`, with a fresh salt.
    pub async fn hash(&self, password: &str) -> Result<String, Error> {
        let _permit = self.permits.acquire().await.map_err(anyhow::Error::from)?;
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || {
            argon2()
                .hash_password(password.as_bytes())
                .map(|hash| hash.to_string())
                .map_err(|err| Error::Internal(anyhow::anyhow!("hashing a password: {err}")))
        })
        .await
        .map_err(anyhow::Error::from)?
    }

    /// Whether `password` matches `hash`; with no hash, spends the same time
    /// and answers false.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool, Error> {
        let _permit = self.permits.acquire().await.map_err(anyhow::Error::from)?;
        let (password, hash, real) = match hash {
            Some(hash) => (password.to_owned(), hash.to_owned(), true),
            None => (password.to_owned(), self.dummy_hash.to_string(), false),
        };
        let matches = tokio::task::spawn_blocking(move || {
            argon2()
                .verify_password(password.as_bytes(), hash.as_str())
                .is_ok()
        })
        .await
        .map_err(anyhow::Error::from)?;
        Ok(real && matches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_is_length_only() {
        assert!(check_policy("short").is_err());
        assert!(check_policy("long enough").is_ok());
        assert!(check_policy("alllowercase").is_ok(), "no composition rules");
        assert!(check_policy(&"x".repeat(64)).is_ok());
        assert!(check_policy(&"x".repeat(129)).is_err());
    }

    #[tokio::test]
    async fn hashes_with_owasp_parameters_and_verifies() {
        let pool = PasswordHasherPool::new(2);
        let hash = pool.hash("correct horse").await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(pool.verify("correct horse", Some(&hash)).await.unwrap());
        assert!(!pool.verify("wrong horse", Some(&hash)).await.unwrap());
        assert!(!pool.verify("correct horse", None).await.unwrap());
        assert_ne!(hash, pool.hash("correct horse").await.unwrap(), "salted");
    }
}

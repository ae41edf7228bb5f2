//! Password hashing: Argon2id with OWASP's parameters (19 MiB, t=2, p=1),
//! on a few dedicated threads so that a burst of logins neither stalls the
//! async executor nor exhausts memory. Dedicated, not the blocking pool:
//! the allocator keeps freed 19 MiB blocks in the arena of the thread that
//! used them, so hashing on whichever of the blocking pool's threads was
//! free left memory behind on many (under the login benchmark `orgplane
//! dev` grew by ~270 MB that way, by ~110 MB with two dedicated threads).

use std::sync::{Arc, Mutex, mpsc};

use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use orgplane_platform::Error;
use tokio::sync::oneshot;

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

/// Work for a hashing thread.
type Job = Box<dyn FnOnce() + Send>;

/// Hashes and verifies passwords off the async executor.
#[derive(Debug, Clone)]
pub struct PasswordHasherPool {
    /// The hashing threads' queue; they end when the last clone is dropped.
    jobs: mpsc::Sender<Job>,
    /// A hash of a random password, verified when a login names no user so
    /// that unknown and known usernames take the same time.
    dummy_hash: Arc<str>,
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

impl PasswordHasherPool {
    /// `concurrency` hashing threads: at most that many hashes at once
    /// (each takes 19 MiB), the others wait their turn.
    pub fn new(concurrency: usize) -> Self {
        let dummy = argon2()
            .hash_password(b"orgplane dummy password for timing")
            .expect("hashing the dummy password")
            .to_string();
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..concurrency.max(1) {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || {
                    loop {
                        // The lock is released before the job runs.
                        let job = queue.lock().expect("the queue's lock").recv();
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })
                .expect("starting a password hashing thread");
        }
        Self {
            jobs,
            dummy_hash: dummy.into(),
        }
    }

    /// Runs `work` on a hashing thread.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Error> {
        let (answer, answered) = oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = answer.send(work());
            }))
            .map_err(|_| anyhow::anyhow!("the password hashing threads are gone"))?;
        Ok(answered
            .await
            .map_err(|_| anyhow::anyhow!("a password hashing thread failed"))?)
    }

    /// The PHC string of `password`, with a fresh salt.
    pub async fn hash(&self, password: &str) -> Result<String, Error> {
        let password = password.to_owned();
        self.run(move || {
            argon2()
                .hash_password(password.as_bytes())
                .map(|hash| hash.to_string())
                .map_err(|err| Error::Internal(anyhow::anyhow!("hashing a password: {err}")))
        })
        .await?
    }

    /// Whether `password` matches `hash`; with no hash, spends the same time
    /// and answers false.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool, Error> {
        let (password, hash, real) = match hash {
            Some(hash) => (password.to_owned(), hash.to_owned(), true),
            None => (password.to_owned(), self.dummy_hash.to_string(), false),
        };
        let matches = self
            .run(move || {
                argon2()
                    .verify_password(password.as_bytes(), hash.as_str())
                    .is_ok()
            })
            .await?;
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

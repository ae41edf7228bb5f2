//! Password hashing: Argon2id with OWASP's parameters (19 MiB, t=2, p=1),
//! on a few dedicated threads so that a burst of logins neither stalls the
//! async executor nor exhausts memory.
//!
//! Each hashing thread allocates its 19 MiB of Argon2 memory once and
//! reuses it for every hash. Allocating it per hash cost memory far beyond
//! the hash: glibc raises its mmap threshold to the size of a freed mmapped
//! block, so after the first 19 MiB block was freed every allocation below
//! 19 MiB came from the per-thread arenas, which keep what they are given
//! (`orgplane dev` held 134 MB under concurrent reads, 311 MB after logins;
//! see `BENCHMARKS.md`). A block that is never freed moves nothing.
//!
//! The hashing threads run in Linux's idle scheduling class (`SCHED_IDLE`):
//! they take the CPU the executor leaves and give it back the moment one of
//! its threads wakes. A hash is ≈40 ms of a core; at the normal priority, or
//! even at nice 19 (a niced thread still runs out its scheduler slice), two
//! logins at once held both cores of a 2-core machine and concurrent reads
//! waited behind them. The price is paid by logins, and only while the
//! cores are otherwise saturated; the figures for each choice are in
//! `BENCHMARKS.md` (**Logins**). A login waits; a read, which every call
//! makes, does not.
//!
//! The queue in front of the threads is bounded: when it is full, `Login`,
//! `SignUp` and the password changes answer `UNAVAILABLE`
//! (`PASSWORD_HASHING_BUSY`, with a retry delay) at once instead of queuing
//! without bound, and a job whose caller has gone away (a cancelled call, a
//! passed deadline) is skipped, not hashed for nobody.

use std::{
    sync::{Arc, Mutex, mpsc},
    time::Duration,
};

use argon2::{
    Algorithm, Argon2, Block, Params, Version,
    password_hash::phc::{Output, ParamsString, PasswordHash, Salt},
};
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

/// Puts the calling thread in Linux's idle scheduling class (see the module
/// documentation). Elsewhere threads keep the default priority.
fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::unix::{
            NormalThreadSchedulePolicy, ThreadSchedulePolicy, set_thread_priority_and_policy,
            thread_native_id,
        };
        if let Err(err) = set_thread_priority_and_policy(
            thread_native_id(),
            thread_priority::ThreadPriority::Min,
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
        ) {
            tracing::warn!(%err, "could not lower the priority of a password hashing thread");
        }
    }
}

/// Jobs that may wait for a hashing thread, per thread, by default.
pub const DEFAULT_QUEUE_PER_THREAD: usize = 16;
/// The retry delay a refused job suggests.
const BUSY_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Most Argon2 memory a stored hash may ask for (256 MiB), so that a
/// corrupted or foreign hash cannot make a hashing thread allocate without
/// bound.
const MAX_BLOCKS: usize = 256 * 1024;

fn params() -> Params {
    Params::new(M_COST_KIB, T_COST, P_COST, None).expect("valid argon2 parameters")
}

/// A hashing thread's Argon2 working memory, allocated once (see the module
/// documentation).
struct Memory(Vec<Block>);

impl Memory {
    fn new() -> Self {
        Self(vec![Block::default(); params().block_count()])
    }

    /// The PHC hash of `password` with `salt` and these parameters.
    fn compute(
        &mut self,
        algorithm: Algorithm,
        version: Version,
        params: Params,
        password: &[u8],
        salt: Salt,
    ) -> Result<PasswordHash, String> {
        let blocks = params.block_count();
        if blocks > MAX_BLOCKS {
            return Err(format!(
                "{blocks} KiB of Argon2 memory is more than allowed"
            ));
        }
        if self.0.len() < blocks {
            self.0.resize(blocks, Block::default());
        }
        let mut output = [0u8; Output::MAX_LENGTH];
        let output = &mut output[..params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)];
        Argon2::new(algorithm, version, params.clone())
            .hash_password_into_with_memory(password, &salt, output, &mut self.0[..blocks])
            .map_err(|e| e.to_string())?;
        Ok(PasswordHash {
            algorithm: algorithm.ident(),
            version: Some(version.into()),
            params: ParamsString::try_from(&params).map_err(|e| e.to_string())?,
            salt: Some(salt),
            hash: Some(Output::new(output).map_err(|e| e.to_string())?),
        })
    }

    /// The PHC string of `password` with a fresh salt and OWASP's parameters.
    fn hash(&mut self, password: &[u8]) -> Result<String, String> {
        let hash = self.compute(
            Algorithm::Argon2id,
            Version::V0x13,
            params(),
            password,
            Salt::generate(),
        )?;
        Ok(hash.to_string())
    }

    /// Whether `password` matches the PHC string `stored` (with the
    /// parameters it was hashed with).
    fn verify(&mut self, password: &[u8], stored: &str) -> bool {
        let Ok(hash) = PasswordHash::new(stored) else {
            return false;
        };
        let (Some(salt), Some(expected)) = (hash.salt, hash.hash.as_ref()) else {
            return false;
        };
        let (Ok(algorithm), Ok(version), Ok(params)) = (
            Algorithm::try_from(hash.algorithm.as_str()),
            hash.version
                .map_or(Ok(Version::default()), Version::try_from),
            Params::try_from(&hash),
        ) else {
            return false;
        };
        // `Output`'s equality is constant-time.
        self.compute(algorithm, version, params, password, salt)
            .is_ok_and(|computed| computed.hash.as_ref() == Some(expected))
    }
}

/// Work for a hashing thread, with its memory.
type Job = Box<dyn FnOnce(&mut Memory) + Send>;

/// Hashes and verifies passwords off the async executor.
#[derive(Debug, Clone)]
pub struct PasswordHasherPool {
    /// The hashing threads' bounded queue; they end when the last clone is
    /// dropped.
    jobs: mpsc::SyncSender<Job>,
    /// A hash of a random password, verified when a login names no user so
    /// that unknown and known usernames take the same time.
    dummy_hash: Arc<str>,
}

impl PasswordHasherPool {
    /// `concurrency` hashing threads: at most that many hashes at once
    /// (each thread holds 19 MiB once it has hashed), and at most `queue`
    /// more waiting their turn; past that, jobs are refused.
    pub fn new(concurrency: usize, queue: usize) -> Self {
        let (jobs, queue) = mpsc::sync_channel::<Job>(queue.max(1));
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..concurrency.max(1) {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || {
                    lower_this_threads_priority();
                    let mut memory = None;
                    loop {
                        // The lock is released before the job runs.
                        let job = queue.lock().expect("the queue's lock").recv();
                        match job {
                            Ok(job) => job(memory.get_or_insert_with(Memory::new)),
                            Err(_) => return,
                        }
                    }
                })
                .expect("starting a password hashing thread");
        }
        // The dummy is hashed by a hashing thread too: hashing it here would
        // free a 19 MiB block (see the module documentation).
        let (answer, dummy) = mpsc::channel();
        jobs.send(Box::new(move |memory: &mut Memory| {
            let _ = answer.send(memory.hash(b"orgplane dummy password for timing"));
        }))
        .expect("the hashing threads just started");
        let dummy = dummy
            .recv()
            .expect("a hashing thread answers")
            .expect("hashing the dummy password");
        Self {
            jobs,
            dummy_hash: dummy.into(),
        }
    }

    /// Runs `work` on a hashing thread, unless the queue is full
    /// (`Error::Overloaded`); skipped if the caller has gone away by its
    /// turn.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Memory) -> T + Send + 'static,
    ) -> Result<T, Error> {
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(move |memory: &mut Memory| {
            if answer.is_closed() {
                return;
            }
            let _ = answer.send(work(memory));
        });
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(mpsc::TrySendError::Full(_)) => {
                return Err(Error::Overloaded {
                    reason: "PASSWORD_HASHING_BUSY",
                    message: "too many password checks are waiting: try again shortly".into(),
                    retry_after: BUSY_RETRY_AFTER,
                });
            }
            Err(mpsc::TrySendError::Disconnected(_)) => {
                return Err(anyhow::anyhow!("the password hashing threads are gone").into());
            }
        }
        Ok(answered
            .await
            .map_err(|_| anyhow::anyhow!("a password hashing thread failed"))?)
    }

    /// The PHC string of `password`, with a fresh salt.
    pub async fn hash(&self, password: &str) -> Result<String, Error> {
        let password = password.to_owned();
        self.run(move |memory| {
            memory
                .hash(password.as_bytes())
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
            .run(move |memory| memory.verify(password.as_bytes(), &hash))
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
        let pool = PasswordHasherPool::new(2, 4);
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

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashing_threads_run_in_the_idle_scheduling_class() {
        use thread_priority::unix::{
            NormalThreadSchedulePolicy, ThreadSchedulePolicy, thread_schedule_policy,
        };
        let pool = PasswordHasherPool::new(1, 1);
        let theirs = pool
            .run(|_| thread_schedule_policy().unwrap())
            .await
            .unwrap();
        assert_eq!(
            theirs,
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle)
        );
        assert_eq!(
            thread_schedule_policy().unwrap(),
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Other),
            "only the hashing threads are lowered"
        );
    }

    /// Issue 15, item 5: with the one thread busy and the queue full, a
    /// check is refused at once (`UNAVAILABLE` with a retry delay) instead
    /// of queuing; a queued job whose caller went away is skipped.
    #[tokio::test]
    async fn a_full_queue_refuses_at_once_and_abandoned_jobs_are_skipped() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let pool = PasswordHasherPool::new(1, 1);
        // Hold the one thread until released.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let busy = tokio::spawn({
            let pool = pool.clone();
            async move { pool.run(move |_| held.recv().unwrap()).await }
        });
        // Wait until the thread has taken it (the queue is empty again).
        let ran = Arc::new(AtomicUsize::new(0));
        loop {
            let queued = {
                let pool = pool.clone();
                let ran = ran.clone();
                tokio::spawn(
                    async move { pool.run(move |_| ran.fetch_add(1, Ordering::SeqCst)).await },
                )
            };
            tokio::time::sleep(Duration::from_millis(20)).await;
            if !queued.is_finished() {
                // Queued behind the busy thread: its caller goes away.
                queued.abort();
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let ran_before = ran.load(Ordering::SeqCst);
        // The queue holds the abandoned job: one more is refused at once.
        let refused = pool.hash("correct horse").await.unwrap_err();
        assert!(
            matches!(
                refused,
                Error::Overloaded {
                    reason: "PASSWORD_HASHING_BUSY",
                    ..
                }
            ),
            "{refused:?}"
        );
        let status = refused.into_status();
        assert_eq!(status.code(), tonic::Code::Unavailable);
        release.send(()).unwrap();
        busy.await.unwrap().unwrap();
        // The abandoned job is skipped as soon as the thread reaches it; the
        // pool works on.
        let mut answered = false;
        for _ in 0..100 {
            if pool.verify("x", None).await.is_ok() {
                answered = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(answered, "the pool answers again once the queue drains");
        assert_eq!(ran.load(Ordering::SeqCst), ran_before, "skipped");
    }

    #[test]
    fn verifies_what_the_argon2_crate_hashed_and_the_other_way_round() {
        use argon2::{PasswordHasher, PasswordVerifier};
        let reference = Argon2::new(Algorithm::Argon2id, Version::V0x13, params());
        let mut memory = Memory::new();
        let theirs = reference
            .hash_password(b"correct horse")
            .unwrap()
            .to_string();
        assert!(memory.verify(b"correct horse", &theirs));
        assert!(!memory.verify(b"wrong horse", &theirs));
        let ours = memory.hash(b"correct horse").unwrap();
        assert!(
            reference
                .verify_password(b"correct horse", ours.as_str())
                .is_ok()
        );
        assert!(
            reference
                .verify_password(b"wrong horse", ours.as_str())
                .is_err()
        );
        // Stored with other parameters (less memory, another version):
        // verified with them, the same memory reused.
        let light = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x10,
            Params::new(1024, 1, 1, None).unwrap(),
        )
        .hash_password(b"correct horse")
        .unwrap()
        .to_string();
        assert!(memory.verify(b"correct horse", &light));
        assert!(!memory.verify(b"wrong horse", &light));
        assert!(!memory.verify(b"correct horse", "not a hash"));
        let greedy = light.replace("m=1024", "m=4194304");
        assert!(!memory.verify(b"correct horse", &greedy), "over MAX_BLOCKS");
    }
}

//! argon2id hashing with OWASP's minimum parameters (m=19456 KiB, t=2, p=1). Hashing is
//! CPU-bound for tens of milliseconds, so it runs on the blocking pool, at most one hash per
//! core at a time.

use std::sync::{Arc, OnceLock};

use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};

use tokio::sync::Semaphore;

use crate::error::{AppError, AppResult};

pub const M_COST: u32 = 19_456;
pub const T_COST: u32 = 2;
pub const P_COST: u32 = 1;

fn hasher() -> AppResult<Argon2<'static>> {
    let params = Params::new(M_COST, T_COST, P_COST, None)
        .map_err(|e| AppError::internal(anyhow::anyhow!("argon2 params: {e}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// How many hashes may run at once: one per core the process may use.
pub fn hashing_slots() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn hashing_permits() -> Arc<Semaphore> {
    static PERMITS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    PERMITS
        .get_or_init(|| Arc::new(Semaphore::new(hashing_slots())))
        .clone()
}

/// Runs CPU-bound work on the blocking pool once a hashing slot is free. More hashes than
/// cores would only slow each other down, and a burst of logins would otherwise fill the
/// blocking pool; waiting here costs nothing but a queued future. The permit travels with
/// the work, so a request that gives up while its hash runs does not free the slot early.
async fn on_hashing_slot<T: Send + 'static>(
    work: impl FnOnce() -> AppResult<T> + Send + 'static,
) -> AppResult<T> {
    let permit = hashing_permits()
        .acquire_owned()
        .await
        .map_err(AppError::internal)?;
    tokio::task::spawn_blocking(move || {
        let result = work();
        drop(permit);
        result
    })
    .await
    .map_err(AppError::internal)?
}

/// Hashes a password into a PHC string, off the async runtime.
pub async fn hash(password: String) -> AppResult<String> {
    on_hashing_slot(move || {
        let h: PasswordHash = hasher()?
            .hash_password(password.as_bytes())
            .map_err(|e| AppError::internal(anyhow::anyhow!("argon2 hash: {e}")))?;
        Ok(h.to_string())
    })
    .await
}

/// The result of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    No,
    Yes,
    /// Correct, and the hash was made with weaker parameters than today's: store a new one.
    YesNeedsRehash,
}

/// Verifies off the async runtime. A malformed stored hash is treated as a mismatch.
pub async fn verify(password: String, stored: String) -> AppResult<Verified> {
    on_hashing_slot(move || {
        let Ok(parsed) = PasswordHash::new(&stored) else {
            return Ok(Verified::No);
        };
        if Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_err()
        {
            return Ok(Verified::No);
        }
        let weaker = match Params::try_from(&parsed) {
            Ok(p) => {
                parsed.algorithm.as_str() != "argon2id"
                    || p.m_cost() < M_COST
                    || p.t_cost() < T_COST
                    || p.p_cost() < P_COST
            }
            Err(_) => true,
        };
        Ok(if weaker {
            Verified::YesNeedsRehash
        } else {
            Verified::Yes
        })
    })
    .await
}

/// Spends the same work as a real verification, so that an unknown account answers in about
/// the same time as a wrong password.
pub async fn burn_equivalent_time(password: String) -> AppResult<()> {
    hash(password).await.map(|_| ())
}

/// A hash with weaker, pre-upgrade parameters; used by tests of the upgrade path.
pub fn hash_with_params(password: &str, m: u32, t: u32, p: u32) -> AppResult<String> {
    let params = Params::new(m, t, p, None)
        .map_err(|e| AppError::internal(anyhow::anyhow!("argon2 params: {e}")))?;
    let h: PasswordHash = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password.as_bytes())
        .map_err(|e| AppError::internal(anyhow::anyhow!("argon2 hash: {e}")))?;
    Ok(h.to_string())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    /// Counts the work running at once and remembers the most seen.
    #[derive(Default)]
    struct Gauge {
        running: AtomicUsize,
        peak: AtomicUsize,
    }

    impl Gauge {
        fn enter(&self) {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(now, Ordering::SeqCst);
        }

        fn leave(&self) {
            self.running.fetch_sub(1, Ordering::SeqCst);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn no_more_hashes_run_at_once_than_there_are_cores() {
        static GAUGE: OnceLock<Gauge> = OnceLock::new();
        let gauge = GAUGE.get_or_init(Gauge::default);
        let slots = hashing_slots();
        let jobs: Vec<_> = (0..slots * 4 + 2)
            .map(|_| {
                tokio::spawn(on_hashing_slot(move || {
                    gauge.enter();
                    std::thread::sleep(Duration::from_millis(20));
                    gauge.leave();
                    Ok(())
                }))
            })
            .collect();
        for job in jobs {
            job.await.unwrap().unwrap();
        }
        let peak = gauge.peak.load(Ordering::SeqCst);
        assert!(peak >= 1 && peak <= slots, "peak {peak} with {slots} slots");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_request_that_gives_up_keeps_its_slot_until_the_hash_ends() {
        static GAUGE: OnceLock<Gauge> = OnceLock::new();
        static RELEASE: AtomicBool = AtomicBool::new(false);
        let gauge = GAUGE.get_or_init(Gauge::default);
        let slots = hashing_slots();
        let job = move || {
            gauge.enter();
            while !RELEASE.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(2));
            }
            gauge.leave();
            Ok(())
        };
        let first: Vec<_> = (0..slots)
            .map(|_| tokio::spawn(on_hashing_slot(job)))
            .collect();
        while gauge.running.load(Ordering::SeqCst) < slots {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        // The requests go away (a timeout, a closed connection); their hashes go on.
        for j in &first {
            j.abort();
        }
        let second: Vec<_> = (0..slots)
            .map(|_| tokio::spawn(on_hashing_slot(job)))
            .collect();
        tokio::time::sleep(Duration::from_millis(100)).await;
        RELEASE.store(true, Ordering::SeqCst);
        for j in second {
            j.await.unwrap().unwrap();
        }
        let peak = gauge.peak.load(Ordering::SeqCst);
        assert!(peak <= slots, "peak {peak} with {slots} slots");
    }

    #[tokio::test]
    async fn hashes_verify_and_weak_ones_ask_for_rehash() {
        let h = hash("a long enough secret".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert_eq!(
            verify("a long enough secret".into(), h.clone())
                .await
                .unwrap(),
            Verified::Yes
        );
        assert_eq!(
            verify("another secret".into(), h).await.unwrap(),
            Verified::No
        );
        let weak = hash_with_params("pw", 4096, 1, 1).unwrap();
        assert_eq!(
            verify("pw".into(), weak).await.unwrap(),
            Verified::YesNeedsRehash
        );
        assert_eq!(
            verify("pw".into(), "not a hash".into()).await.unwrap(),
            Verified::No
        );
    }
}

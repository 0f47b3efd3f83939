//! argon2id hashing with OWASP's minimum parameters (m=19456 KiB, t=2, p=1). Hashing is
//! CPU-bound for tens of milliseconds, so it always runs on the blocking pool.

use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};

use crate::error::{AppError, AppResult};

pub const M_COST: u32 = 19_456;
pub const T_COST: u32 = 2;
pub const P_COST: u32 = 1;

fn hasher() -> AppResult<Argon2<'static>> {
    let params = Params::new(M_COST, T_COST, P_COST, None)
        .map_err(|e| AppError::internal(anyhow::anyhow!("argon2 params: {e}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes a password into a PHC string, off the async runtime.
pub async fn hash(password: String) -> AppResult<String> {
    tokio::task::spawn_blocking(move || {
        let h: PasswordHash = hasher()?
            .hash_password(password.as_bytes())
            .map_err(|e| AppError::internal(anyhow::anyhow!("argon2 hash: {e}")))?;
        Ok(h.to_string())
    })
    .await
    .map_err(AppError::internal)?
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
    tokio::task::spawn_blocking(move || {
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
    .map_err(AppError::internal)?
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
    use super::*;

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

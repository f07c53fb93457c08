//! Secrets that identify someone: user passwords, robot secrets and CLI
//! secrets. They are stored only as Argon2id PHC strings (memory-hard), and
//! checked in a bounded number of reusable memory slots.

use std::sync::{Arc, LazyLock, Mutex};

use argon2::password_hash::PasswordHasher;
use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::Rng as _;
use tokio::sync::Semaphore;

use crate::port::{ErrorKind, PortError, PortResult};

use super::{ServiceError, ServiceResult};

/// Hashes a secret into a PHC string with a random salt.
pub fn hash(secret: &str) -> PortResult<String> {
    Argon2::default()
        .hash_password(secret.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| PortError::msg(ErrorKind::Internal, format_args!("hashing a password: {e}")))
}

/// Harbor's rule for passwords and robot secrets: 8 to 128 characters with
/// at least one upper-case letter, one lower-case letter and one digit.
pub fn check_policy(secret: &str) -> ServiceResult<()> {
    let len = secret.chars().count();
    let ok = (8..=128).contains(&len)
        && secret.chars().any(|c| c.is_ascii_uppercase())
        && secret.chars().any(|c| c.is_ascii_lowercase())
        && secret.chars().any(|c| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(ServiceError::Invalid(
            "the password or secret must be 8-128 characters long with at least 1 uppercase letter, 1 lowercase \
             letter and 1 number"
                .to_owned(),
        ))
    }
}

/// A random secret of `len` letters and digits that meets
/// [`check_policy`].
pub fn generate(len: usize) -> String {
    const CHARS: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    loop {
        let s: String = (0..len.max(8)).map(|_| CHARS[rng.random_range(0..CHARS.len())] as char).collect();
        if check_policy(&s).is_ok() {
            return s;
        }
    }
}

/// Checks are memory-hard (Argon2id with the default parameters fills
/// 19 MiB per check), and wrong secrets are never cached: run unbounded on
/// the blocking pool, a flood of them runs as many checks at once as there
/// are pool threads, and each allocates its own 19 MiB, which the allocator
/// keeps (2–3 GiB RSS after a few hundred wrong attempts). So a check takes
/// one of a few slots (one per core, at most 4), and each slot keeps its
/// Argon2 memory for the next check: checks beyond that wait their turn,
/// asynchronously, and memory stays at slots × 19 MiB.
struct HashSlots {
    permits: Arc<Semaphore>,
    memory: Mutex<Vec<Vec<Block>>>,
}

static SLOTS: LazyLock<HashSlots> = LazyLock::new(|| {
    let n = std::thread::available_parallelism().map_or(1, std::num::NonZero::get).clamp(1, 4);
    HashSlots { permits: Arc::new(Semaphore::new(n)), memory: Mutex::new(Vec::new()) }
});

/// What a check against no stored secret (an unknown account) is run
/// against, so that it costs the same as a real one.
static DUMMY_PHC: LazyLock<String> = LazyLock::new(|| hash("berth: no such account").unwrap_or_default());

/// Whether `secret` matches `phc`, in caller-provided Argon2 memory (grown
/// as the stored parameters need).
fn matches_in(secret: &str, phc: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else { return false };
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else { return false };
    let (Ok(algorithm), Ok(params)) = (Algorithm::try_from(hash.algorithm.as_str()), Params::try_from(&hash)) else {
        return false;
    };
    let version = match hash.version {
        Some(v) => match Version::try_from(v) {
            Ok(v) => v,
            Err(_) => return false,
        },
        None => Version::default(),
    };
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::new());
    }
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params);
    if argon2.hash_password_into_with_memory(secret.as_bytes(), salt, &mut out, &mut memory[..blocks]).is_err() {
        return false;
    }
    // `Output`'s equality is constant-time.
    argon2::password_hash::phc::Output::new(&out).is_ok_and(|computed| &computed == expected)
}

/// Checks `secret` against a stored PHC string, or, when there is none
/// (an unknown account), does the same work and answers no, so that timing
/// does not tell which accounts exist.
pub async fn verify(secret: &str, stored: Option<String>) -> PortResult<bool> {
    let secret = secret.to_owned();
    let permit = SLOTS.permits.clone().acquire_owned().await.map_err(|e| PortError::new(ErrorKind::Internal, e))?;
    // The permit and the memory go with the blocking task: a caller that
    // gives up does not free its slot before the check is really over.
    tokio::task::spawn_blocking(move || {
        let mut memory = SLOTS.memory.lock().ok().and_then(|mut m| m.pop()).unwrap_or_default();
        let matched = match &stored {
            Some(phc) => matches_in(&secret, phc, &mut memory),
            None => {
                let _ = matches_in(&secret, &DUMMY_PHC, &mut memory);
                false
            }
        };
        if let Ok(mut m) = SLOTS.memory.lock() {
            m.push(memory);
        }
        drop(permit);
        matched
    })
    .await
    .map_err(|e| PortError::new(ErrorKind::Internal, e))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn policy() {
        for ok in ["Harbor12345", "aB3aaaaa", &format!("aB3{}", "x".repeat(125))] {
            assert!(check_policy(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Harbor1", "harbor12345", "HARBOR12345", "HarborHarbor", &format!("aB3{}", "x".repeat(126))] {
            assert!(check_policy(bad).is_err(), "{bad}");
        }
        for _ in 0..20 {
            assert!(check_policy(&generate(20)).is_ok());
        }
    }

    #[tokio::test]
    async fn verify_matches_only_the_secret() {
        let phc = hash("Harbor12345").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify("Harbor12345", Some(phc.clone())).await.unwrap());
        assert!(!verify("harbor12345", Some(phc)).await.unwrap());
        assert!(!verify("Harbor12345", None).await.unwrap());
        assert!(!verify("x", Some("not a phc".to_owned())).await.unwrap());
    }
}

//! Local accounts: the initial administrator and password checks.
//!
//! Passwords are stored only as Argon2id PHC strings (memory-hard).

use std::sync::{Arc, LazyLock, Mutex};

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::Rng as _;
use serde_json::json;
use tokio::sync::Semaphore;

use crate::meta::{Condition, ErrorKind, Item, MetaStore, PortError, PortResult, keys, now_unix};

pub const ADMIN: &str = "admin";

/// Hashes a password into a PHC string with a random salt.
pub fn hash_password(password: &str) -> PortResult<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| PortError::msg(ErrorKind::Internal, format_args!("hashing a password: {e}")))
}

/// Whether `password` matches a stored PHC string. Runs the full hash even
/// for malformed hashes' callers (see [`verify_user`]).
pub fn password_matches(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// A random password of 20 letters and digits.
pub fn generate_password() -> String {
    const CHARS: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..20).map(|_| CHARS[rng.random_range(0..CHARS.len())] as char).collect()
}

/// Creates the `admin` account when it does not exist yet. Returns the
/// password when one had to be generated (the caller prints it once); an
/// existing admin is never changed. Safe when several replicas start at once:
/// the create is conditional, so exactly one wins.
pub async fn ensure_admin(meta: &dyn MetaStore, configured: Option<&str>) -> PortResult<Option<String>> {
    let (pk, sk) = keys::user(ADMIN);
    if meta.get(&pk, sk).await?.is_some() {
        return Ok(None);
    }
    let (password, generated) = match configured {
        Some(p) => (p.to_owned(), false),
        None => (generate_password(), true),
    };
    let phc = hash_password(&password)?;
    let shown = password.clone();
    let item = Item::new(pk, sk)
        .with("name", ADMIN)
        .with("password", phc)
        .with("sysadmin", true)
        .with("created_at", now_unix())
        .with("profile", json!({ "realname": "system admin" }));
    match meta.put(item, Condition::NotExists).await {
        Ok(()) => Ok(generated.then_some(shown)),
        Err(e) if e.is(ErrorKind::ConditionFailed) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Password checks are memory-hard (Argon2id with the default parameters
/// fills 19 MiB per check), and wrong passwords are never cached: run
/// unbounded on the blocking pool, a flood of them runs as many checks at
/// once as there are pool threads, and each allocates its own 19 MiB, which
/// the allocator keeps (2–3 GiB RSS after a few hundred wrong attempts).
/// So a check takes one of a few slots (one per core, at most 4), and each
/// slot keeps its Argon2 memory for the next check: checks beyond that wait
/// their turn, asynchronously, and memory stays at slots × 19 MiB.
struct HashSlots {
    permits: Arc<Semaphore>,
    memory: Mutex<Vec<Vec<Block>>>,
}

static SLOTS: LazyLock<HashSlots> = LazyLock::new(|| {
    let n = std::thread::available_parallelism().map_or(1, std::num::NonZero::get).clamp(1, 4);
    HashSlots { permits: Arc::new(Semaphore::new(n)), memory: Mutex::new(Vec::new()) }
});

/// What an unknown user's password is checked against, so that the check
/// costs the same as for a real user.
static DUMMY_PHC: LazyLock<String> = LazyLock::new(|| hash_password("berth: no such user").unwrap_or_default());

/// [`password_matches`] in caller-provided Argon2 memory (grown as the
/// stored parameters need).
fn password_matches_in(password: &str, phc: &str, memory: &mut Vec<Block>) -> bool {
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
    if argon2.hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut memory[..blocks]).is_err() {
        return false;
    }
    // `Output`'s equality is constant-time.
    argon2::password_hash::phc::Output::new(&out).is_ok_and(|computed| &computed == expected)
}

/// Checks a user's password. An unknown user costs the same hashing work as
/// a wrong password, so timing does not tell which usernames exist.
pub async fn verify_user(meta: &dyn MetaStore, name: &str, password: &str) -> PortResult<bool> {
    let (pk, sk) = keys::user(name);
    let stored = meta.get(&pk, sk).await?;
    let phc = stored.as_ref().and_then(|i| i.str("password").map(str::to_owned));
    let password = password.to_owned();
    let permit = SLOTS.permits.clone().acquire_owned().await.map_err(|e| PortError::new(ErrorKind::Internal, e))?;
    // The permit and the memory go with the blocking task: a caller that
    // gives up does not free its slot before the check is really over.
    tokio::task::spawn_blocking(move || {
        let mut memory = SLOTS.memory.lock().ok().and_then(|mut m| m.pop()).unwrap_or_default();
        let matched = match &phc {
            Some(phc) => password_matches_in(&password, phc, &mut memory),
            None => {
                let _ = password_matches_in(&password, &DUMMY_PHC, &mut memory);
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
    use crate::localdb::LocalDb;
    use crate::meta::local::LocalMetaStore;

    #[tokio::test]
    async fn admin_is_created_once() {
        let dir = tempfile::tempdir().unwrap();
        let meta = LocalMetaStore::open(LocalDb::open(&dir.path().join("db")).unwrap()).await.unwrap();
        assert_eq!(ensure_admin(&meta, Some("Harbor12345")).await.unwrap(), None);
        assert!(verify_user(&meta, ADMIN, "Harbor12345").await.unwrap());
        assert!(!verify_user(&meta, ADMIN, "wrong").await.unwrap());
        assert!(!verify_user(&meta, "nobody", "Harbor12345").await.unwrap());
        assert_eq!(ensure_admin(&meta, Some("other-password")).await.unwrap(), None);
        assert!(verify_user(&meta, ADMIN, "Harbor12345").await.unwrap(), "an existing admin is kept");
        let stored = meta.get("USR#admin", "META").await.unwrap().unwrap();
        assert!(stored.str("password").unwrap().starts_with("$argon2id$"));
    }

    #[tokio::test]
    async fn generated_password_is_returned_once() {
        let dir = tempfile::tempdir().unwrap();
        let meta = LocalMetaStore::open(LocalDb::open(&dir.path().join("db")).unwrap()).await.unwrap();
        let pw = ensure_admin(&meta, None).await.unwrap().unwrap();
        assert_eq!(pw.len(), 20);
        assert!(verify_user(&meta, ADMIN, &pw).await.unwrap());
        assert_eq!(ensure_admin(&meta, None).await.unwrap(), None);
    }
}

//! How an account change reaches every replica.
//!
//! Each process remembers credentials it verified (a memory-hard hash or a
//! directory round trip per request would be too dear), so a change that
//! takes access away — a password or secret changed, a user or robot
//! disabled or deleted, an administrator flag removed, the settings that
//! decide who signs in — must make every replica and warm Lambda forget
//! them. Such a change adds one to the account epoch (`SYS`/`ACCOUNTS`) in
//! the transaction of the change itself, so no change is ever made without
//! it. A process reads the epoch at most once per [`POLL`], on the request
//! that needs it (a frozen Lambda reads it again on its first request after
//! a pause), and drops what it remembered when the epoch moved. Changes made
//! in the process itself take effect at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::meta::{Condition, MetaStore, Write, keys};

use super::ServiceResult;

/// How stale a process's view of the epoch may be. With the credential
/// cache checking it on every use, a change reaches every replica within
/// this (plus one table read).
pub const POLL: Duration = Duration::from_secs(1);

/// Where the accounts stood when something was verified; remembered
/// credentials are valid while it stays the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Epoch {
    table: i64,
    local: u64,
}

#[derive(Debug)]
pub struct AccountEpoch {
    meta: Arc<dyn MetaStore>,
    /// Changes made by this process.
    local: AtomicU64,
    /// The table's epoch and when it was read.
    seen: tokio::sync::Mutex<Option<(i64, Instant)>>,
}

impl AccountEpoch {
    pub fn new(meta: Arc<dyn MetaStore>) -> Self {
        Self { meta, local: AtomicU64::new(0), seen: tokio::sync::Mutex::new(None) }
    }

    /// The write that announces an account change, for the change's own
    /// transaction.
    pub(super) fn bump(&self) -> Write {
        let (pk, sk) = keys::account_epoch();
        let attr = keys::attr::EPOCH.to_owned();
        Write::Add { pk: pk.to_owned(), sk: sk.to_owned(), attr, delta: 1, cond: Condition::Always }
    }

    /// Records that this process just committed an account change, so its
    /// own remembered credentials go at once.
    pub(super) fn changed_here(&self) {
        self.local.fetch_add(1, Ordering::SeqCst);
    }

    /// The epoch now: the table's, read again when the last read is older
    /// than [`POLL`] (one read for all the requests waiting meanwhile).
    pub async fn current(&self) -> ServiceResult<Epoch> {
        let mut seen = self.seen.lock().await;
        let table = match *seen {
            Some((value, at)) if at.elapsed() < POLL => value,
            _ => {
                let (pk, sk) = keys::account_epoch();
                let value = self.meta.get(pk, sk).await?.and_then(|i| i.i64(keys::attr::EPOCH)).unwrap_or(0);
                *seen = Some((value, Instant::now()));
                value
            }
        };
        Ok(Epoch { table, local: self.local.load(Ordering::SeqCst) })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn another_process_s_change_is_seen_within_the_poll() {
        let (_dir, registry) = crate::testkit::local_registry().await;
        let meta = registry.meta_for_tests();
        let here = AccountEpoch::new(meta.clone());
        let there = AccountEpoch::new(meta.clone());
        let before = here.current().await.unwrap();
        assert_eq!(here.current().await.unwrap(), before, "nothing changed");

        meta.transact(vec![there.bump()]).await.unwrap();
        there.changed_here();
        assert_ne!(there.current().await.unwrap(), before, "the changing process knows at once");
        let deadline = Instant::now() + POLL + Duration::from_millis(500);
        while here.current().await.unwrap() == before {
            assert!(Instant::now() < deadline, "another process sees the change within the poll");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

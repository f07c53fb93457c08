//! The embedded database file (redb) that the local `MetaStore` and `Queue`
//! share: one file, `<data dir>/berth.redb`, opened once per process.
//!
//! redb transactions are serializable and a commit is durable (fsync) before
//! it returns, so anything acknowledged survives a crash. All access runs on
//! the blocking thread pool, a bounded number of readers and one writer at
//! a time.

use std::path::Path;
use std::sync::Arc;

use redb::ReadableDatabase;

use crate::port::{ErrorKind, PortError, PortResult};

/// redb's page cache (read cache and write buffer together). Its default,
/// 1 GiB, keeps every page read or written in the process until then: the
/// whole database file as it grows (36 MB with 10,000 projects and 10,000
/// artifacts). Pages not cached are a read from the operating system's page
/// cache away, and the hot ones (the B-trees' upper levels) stay cached
/// within this.
const CACHE_SIZE: usize = 16 * 1024 * 1024;

#[derive(Clone)]
pub struct LocalDb {
    db: Arc<redb::Database>,
    /// Every transaction runs on a blocking-pool thread, and the pool grows a
    /// thread for each task that finds none free, up to 512. A caller that
    /// reads 10,000 items one by one at once (a listing) so grew it to 512
    /// threads, whose stacks and allocator caches kept 100 MiB after the
    /// burst. Transactions therefore wait for a turn here, asynchronously:
    /// up to 16 readers per core (at least 32; more than the requests of a
    /// busy server read at once, so they rarely wait, and far fewer than
    /// such a fan-out takes) and one writer (redb runs one write
    /// transaction at a time anyway, and would park each waiting writer on
    /// a thread).
    readers: Arc<tokio::sync::Semaphore>,
    writer: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for LocalDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalDb").finish_non_exhaustive()
    }
}

/// Wraps any redb error as an internal port error: the local database
/// failing is not something a retry fixes.
pub fn db_error(e: impl Into<redb::Error>) -> PortError {
    PortError::new(ErrorKind::Internal, anyhow::Error::new(e.into()).context("embedded database"))
}

impl LocalDb {
    /// Opens or creates the database file. Fails with `Unavailable` when
    /// another process holds it.
    pub fn open(path: &Path) -> PortResult<Self> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| {
                PortError::new(ErrorKind::Unavailable, e).context(format!("cannot create {}", parent.display()))
            })?;
        }
        let db = redb::Builder::new().set_cache_size(CACHE_SIZE).create(path).map_err(|e| {
            let kind = match &e {
                redb::DatabaseError::DatabaseAlreadyOpen => ErrorKind::Unavailable,
                _ => ErrorKind::Internal,
            };
            PortError::new(kind, e).context(format!("cannot open {}", path.display()))
        })?;
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        Ok(Self {
            db: Arc::new(db),
            readers: Arc::new(tokio::sync::Semaphore::new((16 * cores).max(32))),
            writer: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// Runs `f` in a write transaction on the blocking pool and commits when
    /// it returns `Ok`; an `Err` aborts, writing nothing.
    pub async fn write<T, F>(&self, f: F) -> PortResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&redb::WriteTransaction) -> PortResult<T> + Send + 'static,
    {
        let db = self.db.clone();
        // The turn goes with the blocking task: a caller that gives up does
        // not let the next writer in before this one is really done.
        let turn = self.writer.clone().lock_owned().await;
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
            let txn = db.begin_write().map_err(db_error)?;
            match f(&txn) {
                Ok(v) => {
                    txn.commit().map_err(db_error)?;
                    Ok(v)
                }
                Err(e) => {
                    txn.abort().map_err(db_error)?;
                    Err(e)
                }
            }
        })
        .await
        .map_err(|e| PortError::new(ErrorKind::Internal, e))?
    }

    /// Runs `f` in a read transaction (a consistent snapshot) on the
    /// blocking pool.
    pub async fn read<T, F>(&self, f: F) -> PortResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&redb::ReadTransaction) -> PortResult<T> + Send + 'static,
    {
        let db = self.db.clone();
        let turn = self.readers.clone().acquire_owned().await.map_err(|e| PortError::new(ErrorKind::Internal, e))?;
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
            let txn = db.begin_read().map_err(db_error)?;
            f(&txn)
        })
        .await
        .map_err(|e| PortError::new(ErrorKind::Internal, e))?
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// Threads of this process whose name starts with `prefix`.
    fn threads_named(prefix: &str) -> usize {
        std::fs::read_dir("/proc/self/task")
            .map(|tasks| {
                tasks
                    .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                    .filter(|name| name.starts_with(prefix))
                    .count()
            })
            .unwrap_or(0)
    }

    /// Thousands of transactions at once take turns: no more than the
    /// readers' bound (and one writer) run at once, so the blocking pool
    /// stays far below its 512 threads. Its exact size is not pinned: a
    /// thread that has just let the next reader in is not idle yet, so the
    /// pool starts a few more, the more so on a busy machine.
    #[test]
    fn a_burst_of_transactions_holds_few_threads() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("localdb-burst")
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let db = LocalDb::open(&dir.path().join("berth.redb")).unwrap();
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let read = || {
            let (running, peak) = (running.clone(), peak.clone());
            db.read(move |_: &redb::ReadTransaction| {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_millis(2));
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            })
        };
        runtime.block_on(async {
            let reads = (0..2000).map(|_| read());
            let writes = (0..200).map(|_| db.write(|_| Ok(())));
            let (reads, writes) =
                futures::future::join(futures::future::join_all(reads), futures::future::join_all(writes)).await;
            assert!(reads.into_iter().chain(writes).all(|r| r.is_ok()));
        });
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let bound = (16 * cores).max(32);
        let peak = peak.load(Ordering::SeqCst);
        assert!(peak <= bound, "{peak} reads at once, for {bound} turns");
        let threads = threads_named("localdb-burst");
        assert!(threads < 256.max(2 * bound), "{threads} threads after the burst, for {bound} turns");
    }
}

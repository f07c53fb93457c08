//! The embedded database file (redb) that the local `MetaStore` and `Queue`
//! share: one file, `<data dir>/berth.redb`, opened once per process.
//!
//! redb transactions are serializable and a write is acknowledged only once
//! it is durable (fsync), so anything acknowledged survives a crash. All
//! access runs on the blocking thread pool, a bounded number of readers and
//! one writer at a time.
//!
//! Writes are committed in groups: the writer whose turn comes runs every
//! write queued meanwhile, each in a transaction of its own (so each sees
//! the ones before it and fails alone), committing all but the last
//! without an fsync and the last with one, which makes them all durable
//! (redb's `Durability::None`); only then does each caller get its answer.
//! Concurrent writers thus share one fsync instead of waiting for one
//! each. A reader may see a write of the group a moment before it is
//! durable, never before it is committed.

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
    /// Writes waiting for the next group.
    queued: Arc<std::sync::Mutex<Vec<QueuedWrite>>>,
}

/// A write waiting for its group: `run` does its work in the transaction it
/// is given (or takes the error of not getting one) and says whether to
/// commit; its `Answer` then gets whether the commit became durable. A
/// write whose caller gave up (`gone`) is skipped.
struct QueuedWrite {
    run: RunWrite,
    gone: Box<dyn Fn() -> bool + Send>,
}

type RunWrite = Box<dyn FnOnce(PortResult<&redb::WriteTransaction>) -> (bool, Answer) + Send>;
type Answer = Box<dyn FnOnce(Result<(), String>) + Send>;

/// Runs a group of writes (see the module): all but the last commit without
/// an fsync; the last commits with one (or, when it did not commit, an
/// empty transaction does), and only then are the committed ones answered.
fn commit_group(db: &redb::Database, writes: Vec<QueuedWrite>) {
    let writes: Vec<QueuedWrite> = writes.into_iter().filter(|w| !(w.gone)()).collect();
    let count = writes.len();
    let mut held: Vec<Answer> = Vec::new();
    let mut last_durable = true;
    for (i, write) in writes.into_iter().enumerate() {
        let last = i + 1 == count;
        let mut txn = match db.begin_write() {
            Ok(t) => t,
            Err(e) => {
                let (_, answer) = (write.run)(Err(db_error(e)));
                answer(Ok(()));
                continue;
            }
        };
        if !last {
            // Refused, this one is durable on its own: no harm.
            let _ = txn.set_durability(redb::Durability::None);
        }
        // A panic drops the caller's channel: it gets an error.
        let Ok((commit, answer)) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (write.run)(Ok(&txn))))
        else {
            let _ = txn.abort();
            continue;
        };
        if !commit {
            let _ = txn.abort();
            answer(Ok(()));
            continue;
        }
        match txn.commit() {
            Ok(()) => {
                held.push(answer);
                last_durable = last;
            }
            Err(e) => answer(Err(format!("commit: {e}"))),
        }
    }
    if held.is_empty() {
        return;
    }
    // The last write failed or wrote nothing: an empty durable commit makes
    // the others durable.
    let durable = if last_durable {
        Ok(())
    } else {
        db.begin_write().map_err(redb::Error::from).and_then(|t| Ok(t.commit()?)).map_err(|e| format!("commit: {e}"))
    };
    for answer in held {
        answer(durable.clone());
    }
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
            queued: Arc::new(std::sync::Mutex::new(Vec::new())),
        })
    }

    /// Runs `f` in a write transaction on the blocking pool and commits when
    /// it returns `Ok` (durably, before this returns); an `Err` aborts,
    /// writing nothing. Concurrent writes share commits (see the module).
    pub async fn write<T, F>(&self, f: F) -> PortResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&redb::WriteTransaction) -> PortResult<T> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel::<PortResult<T>>();
        let tx = Arc::new(std::sync::Mutex::new(Some(tx)));
        let send = {
            let tx = tx.clone();
            move |r: PortResult<T>| {
                if let Some(tx) = tx.lock().ok().and_then(|mut t| t.take()) {
                    let _ = tx.send(r);
                }
            }
        };
        let run = move |txn: PortResult<&redb::WriteTransaction>| -> (bool, Answer) {
            match txn.and_then(f) {
                Ok(v) => (
                    true,
                    Box::new(move |durable: Result<(), String>| {
                        send(durable.map(|()| v).map_err(|m| PortError::msg(ErrorKind::Internal, m)));
                    }),
                ),
                Err(e) => (false, Box::new(move |_| send(Err(e)))),
            }
        };
        let gone = move || tx.lock().map_or(true, |t| t.as_ref().is_none_or(tokio::sync::oneshot::Sender::is_closed));
        if let Ok(mut q) = self.queued.lock() {
            q.push(QueuedWrite { run: Box::new(run), gone: Box::new(gone) });
        }
        // The writer whose turn comes runs every queued write, this one
        // included unless an earlier turn took it already.
        let turn = self.writer.clone().lock_owned().await;
        let group = self.queued.lock().map(|mut q| std::mem::take(&mut *q)).unwrap_or_default();
        if group.is_empty() {
            drop(turn);
        } else {
            let db = self.db.clone();
            // The turn goes with the blocking task: a caller that gives up
            // does not let the next writer in before this group is done.
            tokio::task::spawn_blocking(move || {
                let _turn = turn;
                commit_group(&db, group);
            })
            .await
            .map_err(|e| PortError::new(ErrorKind::Internal, e))?;
        }
        rx.await.unwrap_or_else(|_| Err(PortError::msg(ErrorKind::Internal, "a write transaction panicked")))
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

    /// Writes at once share commits but not fates: each sees the ones
    /// before it, a failing one changes nothing, and every acknowledged one
    /// is there after reopening. (No write here panics: a backtrace's
    /// symbols would swell the process under the memory tests beside it.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn grouped_writes_each_commit_or_fail_alone() {
        use redb::ReadableTable;
        const COUNTER: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("counter");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.redb");
        let db = LocalDb::open(&path).unwrap();
        let writes = (0..300).map(|i| {
            let db = db.clone();
            async move {
                db.write(move |txn| {
                    let mut t = txn.open_table(COUNTER).map_err(db_error)?;
                    let n = t.get("n").map_err(db_error)?.map_or(0, |v| v.value());
                    t.insert("n", n + 1).map_err(db_error)?;
                    match i % 10 {
                        // Fails after writing: its increment must not stay.
                        3 => Err(PortError::msg(ErrorKind::ConditionFailed, "refused")),
                        7 => Err(PortError::msg(ErrorKind::Internal, "broken")),
                        _ => Ok(n + 1),
                    }
                })
                .await
            }
        });
        let results = futures::future::join_all(writes).await;
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 240);
        assert_eq!(results.iter().filter(|r| r.as_ref().is_err_and(|e| e.is(ErrorKind::ConditionFailed))).count(), 30);
        let mut seen: Vec<u64> = results.iter().filter_map(|r| r.as_ref().ok().copied()).collect();
        seen.sort_unstable();
        assert_eq!(seen, (1..=240).collect::<Vec<u64>>(), "each saw the ones before it");
        drop(db);
        let db = LocalDb::open(&path).unwrap();
        let n = db
            .read(|txn| Ok(txn.open_table(COUNTER).map_err(db_error)?.get("n").map_err(db_error)?.map(|v| v.value())))
            .await
            .unwrap();
        assert_eq!(n, Some(240));
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

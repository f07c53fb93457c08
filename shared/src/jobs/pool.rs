//! This process's worker pool, as the job service dashboard shows it
//! (Harbor's worker pools and workers): which tasks it runs, published
//! with a heartbeat ([`crate::service::jobqueues`]). A long-lived host
//! beats every few seconds ([`Pool::run`]) and at once (at most every
//! second) when its running tasks change; a Lambda instance beats around
//! each batch ([`Pool::beat_if_due`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::events::now_ms;
use crate::service::Registry;
use crate::service::jobqueues::{PoolRecord, RunningJob};

/// A heartbeat at least this often.
const BEAT_EVERY_MS: i64 = 20_000;
/// A change of the running tasks is published after at most this long.
const CHANGE_EVERY_MS: i64 = 1_000;

#[derive(Debug)]
pub struct Pool {
    id: String,
    pid: u32,
    host: String,
    start_at: i64,
    concurrency: u32,
    running: Mutex<BTreeMap<String, RunningJob>>,
    changed: AtomicBool,
    last_beat: AtomicI64,
}

fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|h| h.trim().to_owned()))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Ends a running task's entry when dropped (however the run ended).
#[derive(Debug)]
pub struct Running<'a> {
    pool: &'a Pool,
    job_id: String,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if let Ok(mut running) = self.pool.running.lock() {
            running.remove(&self.job_id);
        }
        self.pool.changed.store(true, Ordering::Relaxed);
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let node = format!("{}:{}", self.host, self.pid);
        let workers = self.concurrency.to_string();
        let _ = crate::metrics::metrics().jobservice_info.remove_label_values(&[&node, &self.id, &workers]);
    }
}

impl Pool {
    /// A pool running up to `concurrency` tasks at once.
    pub fn new(concurrency: u32) -> Arc<Self> {
        let pool = Arc::new(Self {
            id: format!("{:024x}", rand::random::<u128>() >> 32),
            pid: std::process::id(),
            host: host_name(),
            start_at: now_ms(),
            concurrency,
            running: Mutex::new(BTreeMap::new()),
            changed: AtomicBool::new(true),
            last_beat: AtomicI64::new(0),
        });
        let node = format!("{}:{}", pool.host, pool.pid);
        crate::metrics::metrics()
            .jobservice_info
            .with_label_values(&[&node, &pool.id, &concurrency.to_string()])
            .set(1);
        pool
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Marks a task as running until the returned guard drops.
    pub fn running(&self, job_id: String, job_name: &str) -> Running<'_> {
        let job = RunningJob { job_id: job_id.clone(), job_name: job_name.to_owned(), start_at: now_ms() };
        if let Ok(mut running) = self.running.lock() {
            running.insert(job_id.clone(), job);
        }
        self.changed.store(true, Ordering::Relaxed);
        Running { pool: self, job_id }
    }

    /// The pool as it stands now.
    pub fn record(&self) -> PoolRecord {
        let running = self.running.lock().map(|r| r.values().cloned().collect()).unwrap_or_default();
        PoolRecord {
            id: self.id.clone(),
            pid: self.pid,
            host: self.host.clone(),
            concurrency: self.concurrency,
            start_at: self.start_at,
            heartbeat_at: now_ms(),
            running,
        }
    }

    /// Publishes the pool if its running tasks changed (at most every
    /// second) or its last heartbeat is getting old.
    pub async fn beat_if_due(&self, registry: &Registry) {
        let since = now_ms() - self.last_beat.load(Ordering::Relaxed);
        let due = since >= BEAT_EVERY_MS || (since >= CHANGE_EVERY_MS && self.changed.load(Ordering::Relaxed));
        if due {
            self.changed.store(false, Ordering::Relaxed);
            let record = self.record();
            self.last_beat.store(record.heartbeat_at, Ordering::Relaxed);
            if let Err(e) = registry.save_pool(&record).await {
                self.changed.store(true, Ordering::Relaxed);
                tracing::warn!(error = %e, pool = %self.id, "worker pool heartbeat not recorded");
            }
        }
    }

    /// Beats until `stop`, then removes the pool.
    pub async fn run(self: Arc<Self>, registry: Registry, stop: CancellationToken) {
        loop {
            self.beat_if_due(&registry).await;
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
        if let Err(e) = registry.remove_pool(&self.id).await {
            tracing::warn!(error = %e, pool = %self.id, "worker pool not removed; it ages out");
        }
    }
}

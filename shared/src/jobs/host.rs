//! Running the background side in a long-lived process: the event relay
//! and one consumer per queue. `berth serve` starts them beside the HTTP
//! server (unless told not to), `berth worker` alone.

use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::Jobs;
use super::pool::Pool;
use super::worker::Worker;
use crate::context::AppContext;
use crate::queue;

/// Every job kind berth runs.
pub fn all_jobs() -> Jobs {
    Jobs::default()
        .with(Arc::new(super::webhook::WebhookJob))
        .with(Arc::new(super::purge::PurgeAuditJob))
        .with(Arc::new(super::retention::RetentionJob))
        .with(Arc::new(super::gc::GcJob))
        .with(Arc::new(super::scan::ScanJob::queued()))
        .with(Arc::new(super::scan_all::ScanAllJob))
        .with(Arc::new(super::cve_export::CveExportJob))
        .with(Arc::new(super::adapter_scan::AdapterScanJob::queued()))
        .with(Arc::new(super::preheat::PreheatJob::queued()))
        .with(Arc::new(super::replication::ReplicationJob))
}

/// Every job kind with what this process's jobs need to run (the scan
/// job's way to the registry and its token keys).
pub fn jobs_of(ctx: &AppContext) -> Jobs {
    all_jobs()
        .with(Arc::new(super::scan::ScanJob::with_env(super::scan::ScanEnv::from_context(ctx))))
        .with(Arc::new(super::adapter_scan::AdapterScanJob::with_keys(ctx.token_keys.clone())))
        .with(Arc::new(super::preheat::PreheatJob::with_env(super::scan::ScanEnv::from_context(ctx))))
}

/// The worker of this process's context.
pub fn worker(ctx: &AppContext) -> Worker {
    Worker::new(ctx.registry(), ctx.queue.clone(), jobs_of(ctx), ctx.config.queue.max_attempts)
}

/// Parses a queue name given on the command line.
pub fn queue_named(name: &str) -> Option<&'static str> {
    queue::ALL_QUEUES.into_iter().find(|q| *q == name)
}

/// Starts the event relay, the scheduler and a consumer of each of
/// `queues` (none: the relay alone); all end when `stop` is cancelled,
/// the relay after a last flush.
pub fn start(ctx: &Arc<AppContext>, queues: &[&'static str], stop: &CancellationToken) -> Vec<JoinHandle<()>> {
    let mut tasks = vec![tokio::spawn(ctx.events.clone().run(stop.clone()))];
    if !queues.is_empty() {
        // Each job queue's consumer runs up to a batch at once.
        let job_queues = queues.iter().filter(|q| **q != queue::EVENTS).count();
        let pool = Pool::new(u32::try_from(job_queues * queue::MAX_BATCH).unwrap_or(u32::MAX));
        let worker = Arc::new(worker(ctx).with_pool(pool.clone()));
        if job_queues > 0 {
            tasks.push(tokio::spawn(pool.run(ctx.registry(), stop.clone())));
        }
        for q in queues {
            tasks.push(tokio::spawn(worker.clone().run(q, stop.clone())));
        }
        tasks.push(tokio::spawn(super::schedule::run(ctx.registry(), stop.clone())));
    }
    tasks
}

//! The worker Lambda function's work (its binary, `functions/worker`,
//! only translates events): a batch of SQS messages handled as the
//! long-lived workers handle them, with the messages to deliver again
//! reported as failures; and the scheduler tick.

use serde::Serialize;

use super::worker::{Handled, Worker};
use crate::context::AppContext;
use crate::events::bus::SWEEP_MIN_AGE;
use crate::queue::{self, Message};

/// Handles a batch from `queue_name`; returns the ids of the messages to
/// deliver again (each already given its backoff delay). What the batch
/// raised (events, follow-up tasks) is sent before this returns.
pub async fn handle_batch(ctx: &AppContext, worker: &Worker, queue_name: &str, batch: Vec<Message>) -> Vec<String> {
    // The instance shows on the dashboard as a pool while it is warm.
    let runs_jobs = queue_name != queue::EVENTS;
    if runs_jobs {
        worker.pool().beat_if_due(worker.registry()).await;
    }
    let handled = batch.iter().map(|m| async move { (m, worker.handle(queue_name, m).await) });
    let mut failed = Vec::new();
    for (m, outcome) in futures::future::join_all(handled).await {
        if let Handled::Retry(delay) = outcome {
            // The message comes back after its backoff, not after the
            // queue's whole visibility timeout.
            if let Err(e) = ctx.queue.retry_later(queue_name, &m.receipt, delay.min(queue::MAX_DELAY)).await {
                tracing::warn!(error = %e, message = %m.id, "backoff not set; the visibility timeout applies");
            }
            failed.push(m.id.clone());
        }
    }
    ctx.events.flush().await;
    if runs_jobs {
        worker.pool().beat_if_due(worker.registry()).await;
    }
    failed
}

/// What a tick did.
#[derive(Debug, Default, Serialize)]
pub struct TickReport {
    pub executions_started: usize,
    pub outbox_messages_sent: usize,
    pub dead_letters_recorded: usize,
}

/// The scheduler's tick: due schedules fire, messages a crashed process
/// left in the outbox are sent, dead-lettered tasks are recorded.
pub async fn tick(ctx: &AppContext, worker: &Worker) -> Result<TickReport, crate::service::ServiceError> {
    let registry = ctx.registry();
    let mut report = TickReport {
        executions_started: super::schedule::tick(&registry, crate::events::now_ms()).await?,
        outbox_messages_sent: 0,
        dead_letters_recorded: 0,
    };
    ctx.events.flush().await;
    report.outbox_messages_sent = ctx.events.sweep(SWEEP_MIN_AGE).await?;
    for q in [queue::WEBHOOKS, queue::JOBS] {
        report.dead_letters_recorded += worker.drain_dead_letters(q).await?;
    }
    Ok(report)
}

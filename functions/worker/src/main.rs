//! `worker`: berth's queue consumers as an AWS Lambda function. Deployed
//! once per queue (`BERTH_WORKER_QUEUE`: `events`, `webhooks` or `jobs`),
//! each fed by an SQS event source mapping that reports partial batch
//! failures; the jobs function also takes the scheduler's one-minute
//! EventBridge tick (`{"berth": "tick"}`). The work is the shared
//! [`berth::jobs::lambda`] code; this only translates the events.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use berth::config::{Backend, Config, Overrides};
use berth::context::AppContext;
use berth::queue::Message;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The SQS records as queue messages (an SQS record's receipt handle is a
/// receipt like any other).
fn messages(event: SqsEvent) -> Vec<Message> {
    event
        .records
        .into_iter()
        .map(|r| Message {
            id: r.message_id.unwrap_or_default(),
            receipt: r.receipt_handle.unwrap_or_default(),
            body: r.body.unwrap_or_default(),
            attempts: r.attributes.get("ApproximateReceiveCount").and_then(|n| n.parse().ok()).unwrap_or(1),
        })
        .collect()
}

async fn invoke(
    ctx: &AppContext,
    worker: &berth::jobs::worker::Worker,
    queue: &'static str,
    payload: Value,
) -> Result<Value, lambda_runtime::Error> {
    if payload.get("berth").and_then(Value::as_str) == Some("tick") {
        let report = berth::jobs::lambda::tick(ctx, worker).await?;
        return Ok(serde_json::to_value(report)?);
    }
    let event: SqsEvent = serde_json::from_value(payload)?;
    let failed = berth::jobs::lambda::handle_batch(ctx, worker, queue, messages(event)).await;
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failed
        .into_iter()
        .map(|id| {
            let mut f = BatchItemFailure::default();
            f.item_identifier = id;
            f
        })
        .collect();
    Ok(serde_json::to_value(response)?)
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let file = std::env::var_os("BERTH_CONFIG").map(std::path::PathBuf::from);
    let overrides = Overrides { backend: Some(Backend::Aws), ..Overrides::default() };
    let config = Config::load(file.as_deref(), &overrides)?;
    berth::telemetry::init(berth::config::LogFormat::Json, &config.log.level);
    let queue = berth::jobs::host::queue_named(&config.worker.queue)
        .ok_or_else(|| format!("BERTH_WORKER_QUEUE must be one of {}", berth::queue::ALL_QUEUES.join(", ")))?;
    let ctx = AppContext::open(config).await?;
    let worker = std::sync::Arc::new(berth::jobs::host::worker(&ctx));
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let (ctx, worker) = (ctx.clone(), worker.clone());
        async move { invoke(&ctx, &worker, queue, event.payload).await }
    }))
    .await
}

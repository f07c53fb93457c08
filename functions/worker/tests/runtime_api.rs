//! The `worker` Lambda binary under a fake Lambda Runtime API, on the AWS
//! emulator: it takes real SQS event JSON (of messages really received
//! from the emulator's queues) and reports the messages to deliver again
//! as partial batch failures; it takes the scheduler's tick.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::Ordering;
use std::time::Duration;

use berth::events::{Actor, Event, EventKind};
use berth::jobs::Status;
use berth::jobs::webhook::WebhookJob;
use berth::queue::{Message, WEBHOOKS};
use berth::service::webhooks::{Delivery, Target};
use berth::testkit::lambda::Function;
use serde_json::{Value, json};

fn delivery(url: &str, event: &Event) -> Value {
    let target = Target {
        kind: "http".into(),
        address: url.into(),
        auth_header: String::new(),
        skip_cert_verify: false,
        payload_format: "Default".into(),
    };
    serde_json::to_value(Delivery { policy_id: 7, project_id: 1, target, event: event.clone() }).unwrap()
}

/// SQS's event for messages received from `queue_arn`.
fn sqs_event(queue_arn: &str, messages: &[Message]) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            json!({
                "messageId": m.id,
                "receiptHandle": m.receipt,
                "body": m.body,
                "attributes": {
                    "ApproximateReceiveCount": m.attempts.to_string(),
                    "SentTimestamp": "1796054400000",
                    "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                    "ApproximateFirstReceiveTimestamp": "1796054400001"
                },
                "messageAttributes": {},
                "md5OfBody": "00000000000000000000000000000000",
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    json!({ "Records": records })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_function_takes_sqs_batches_and_reports_partial_failures() {
    if !berth::testkit::emulator_available("worker_function_takes_sqs_batches_and_reports_partial_failures") {
        return;
    }
    let (env, ctx) = berth::testkit::lambda::deployed("berth-worker-", &[("BERTH_WORKER_QUEUE", WEBHOOKS)]).await;
    let name = ctx.config.aws.bucket.clone();
    let reg = ctx.registry();

    // Two deliveries: one to a receiver that takes it, one to a receiver
    // that is failing.
    let (good, good_hits) = berth::testkit::counting_receiver(200).await;
    let (bad, bad_hits) = berth::testkit::counting_receiver(503).await;
    let event = Event::artifact(EventKind::PushArtifact, &Actor::new("admin", None), "library/app", "sha256:00");
    let x = reg
        .start_execution(
            &WebhookJob,
            7,
            "EVENT",
            serde_json::Map::new(),
            vec![delivery(&good, &event), delivery(&bad, &event)],
        )
        .await
        .unwrap();
    ctx.events.flush().await;
    let mut received = Vec::new();
    for _ in 0..10 {
        received
            .extend(ctx.queue.receive(WEBHOOKS, 10, Duration::from_secs(30), Duration::from_secs(1)).await.unwrap());
        if received.len() == 2 {
            break;
        }
    }
    assert_eq!(received.len(), 2, "the two task messages");
    let tasks = reg.tasks_of(x).await.unwrap();
    let bad_task = tasks.iter().find(|t| t.payload["target"]["address"] == bad.as_str()).unwrap().id;
    let bad_message = received.iter().find(|m| m.body.contains(&bad_task.to_string())).unwrap().id.clone();

    let binary = env!("CARGO_BIN_EXE_worker");
    let mut f = Function::start(binary, "worker", &env).await;
    let arn = format!("arn:aws:sqs:us-east-1:123456789012:{name}-{WEBHOOKS}");
    let answer = f.invoke(sqs_event(&arn, &received)).await;
    assert_eq!(answer["batchItemFailures"], json!([{"itemIdentifier": bad_message}]), "{answer}");
    assert_eq!((good_hits.load(Ordering::SeqCst), bad_hits.load(Ordering::SeqCst)), (1, 1));
    let tasks = reg.tasks_of(x).await.unwrap();
    let status = |id: i64| tasks.iter().find(|t| t.id == id).unwrap().clone();
    let good_task = tasks.iter().find(|t| t.id != bad_task).unwrap().id;
    assert_eq!(status(good_task).status, Status::Success);
    let failing = status(bad_task);
    assert_eq!(failing.status, Status::Pending, "waiting for its next attempt");
    assert!(failing.status_message.contains("503"), "{}", failing.status_message);

    // The same batch again: the delivered task is not delivered twice.
    let answer = f.invoke(sqs_event(&arn, &received)).await;
    assert_eq!(answer["batchItemFailures"], json!([{"itemIdentifier": bad_message}]), "{answer}");
    assert_eq!(good_hits.load(Ordering::SeqCst), 1);

    // The scheduler's tick.
    let report = f.invoke(json!({"berth": "tick"})).await;
    assert!(report["executions_started"].is_u64(), "{report}");
    assert!(report["dead_letters_recorded"].is_u64(), "{report}");
}

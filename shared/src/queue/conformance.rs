//! The one `Queue` conformance suite. Each case works on its own freshly
//! named queues. `queue_conformance!(ctor)` expands it into one named test
//! per case; `ctor` is an `async fn() -> Option<(Guard, impl Queue)>`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use super::{ErrorKind, Queue, QueueSpec, dead_letter_queue};
use crate::testkit::unique;

const S: fn(u64) -> Duration = Duration::from_secs;

#[macro_export]
macro_rules! queue_conformance {
    ($ctor:path) => {
        $crate::queue_conformance!(@cases $ctor;
            send_receive_ack, redelivery_after_visibility_timeout, delayed_send,
            dead_letter_after_max_attempts, retry_later, many_consumers, rejects_bad_input,
            ensure_is_idempotent);
    };
    (@cases $ctor:path; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some((_guard, queue)) = $ctor().await else { return };
                $crate::queue::conformance::$case(&queue).await;
            }
        )*
    };
}

async fn fresh(q: &dyn Queue, max_attempts: u32) -> String {
    let name = unique("t");
    q.ensure(&name, QueueSpec { max_attempts }).await.unwrap();
    name
}

pub async fn send_receive_ack(q: &dyn Queue) {
    let name = fresh(q, 5).await;
    assert!(q.receive(&name, 10, S(5), S(0)).await.unwrap().is_empty());
    let id = q.send(&name, "hello", S(0)).await.unwrap();
    let got = q.receive(&name, 10, S(5), S(1)).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].id.as_str(), got[0].body.as_str(), got[0].attempts), (id.as_str(), "hello", 1));
    assert!(q.receive(&name, 10, S(5), S(0)).await.unwrap().is_empty(), "in flight, so hidden");
    q.ack(&name, &got[0].receipt).await.unwrap();
    q.ack(&name, &got[0].receipt).await.expect("acking twice is ok");
    tokio::time::sleep(S(6)).await;
    assert!(q.receive(&name, 10, S(5), S(0)).await.unwrap().is_empty(), "acked messages never come back");
}

pub async fn redelivery_after_visibility_timeout(q: &dyn Queue) {
    let name = fresh(q, 5).await;
    q.send(&name, "again", S(0)).await.unwrap();
    let first = q.receive(&name, 1, S(1), S(1)).await.unwrap();
    assert_eq!(first.len(), 1);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let second = q.receive(&name, 1, S(30), S(2)).await.unwrap();
    assert_eq!(second.len(), 1, "redelivered after the visibility timeout");
    assert_eq!((second[0].id.as_str(), second[0].attempts), (first[0].id.as_str(), 2));
    assert_ne!(second[0].receipt, first[0].receipt);
    q.ack(&name, &second[0].receipt).await.unwrap();
}

pub async fn delayed_send(q: &dyn Queue) {
    let name = fresh(q, 5).await;
    q.send(&name, "later", S(2)).await.unwrap();
    assert!(q.receive(&name, 10, S(5), S(0)).await.unwrap().is_empty(), "not before its delay");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let got = q.receive(&name, 10, S(5), S(2)).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, "later");
    q.ack(&name, &got[0].receipt).await.unwrap();
}

pub async fn dead_letter_after_max_attempts(q: &dyn Queue) {
    let name = fresh(q, 2).await;
    q.send(&name, "poison", S(0)).await.unwrap();
    for attempt in 1..=2 {
        let got = q.receive(&name, 1, S(1), S(2)).await.unwrap();
        assert_eq!(got.len(), 1, "delivery {attempt}");
        assert_eq!(got[0].attempts, attempt);
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    assert!(q.receive(&name, 10, S(1), S(1)).await.unwrap().is_empty(), "no third delivery");
    let dlq = dead_letter_queue(&name);
    let dead = crate::testkit::eventually(S(5), || async {
        let got = q.receive(&dlq, 10, S(30), S(1)).await.unwrap();
        (!got.is_empty()).then_some(got)
    })
    .await
    .expect("the message reached the dead-letter queue");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, "poison");
    assert!(dead[0].attempts > 2, "the delivery count travels with the message");
    q.ack(&dlq, &dead[0].receipt).await.unwrap();
}

pub async fn retry_later(q: &dyn Queue) {
    let name = fresh(q, 5).await;
    q.send(&name, "retry", S(0)).await.unwrap();
    let got = q.receive(&name, 1, S(60), S(1)).await.unwrap();
    q.retry_later(&name, &got[0].receipt, S(0)).await.unwrap();
    let again = q.receive(&name, 1, S(60), S(2)).await.unwrap();
    assert_eq!(again.len(), 1, "visible again at once, not after 60 s");
    assert_eq!(again[0].attempts, 2);
    q.retry_later(&name, &again[0].receipt, S(2)).await.unwrap();
    assert!(q.receive(&name, 1, S(60), S(0)).await.unwrap().is_empty());
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let third = q.receive(&name, 1, S(60), S(2)).await.unwrap();
    assert_eq!(third.len(), 1);
    q.ack(&name, &third[0].receipt).await.unwrap();
    let gone = q.retry_later(&name, &third[0].receipt, S(0)).await.unwrap_err();
    assert_eq!(gone.kind(), ErrorKind::NotFound, "an acked message cannot be retried");
}

/// Four consumers drain 60 messages: each message is processed (at least
/// once), none is lost.
pub async fn many_consumers(q: &dyn Queue) {
    let name = fresh(q, 5).await;
    for i in 0..60 {
        q.send(&name, &format!("m{i}"), S(0)).await.unwrap();
    }
    let seen = std::sync::Mutex::new(BTreeSet::new());
    let consumer = || async {
        let mut idle = 0;
        while idle < 3 {
            let got = q.receive(&name, 10, S(30), S(1)).await.unwrap();
            if got.is_empty() {
                idle += 1;
            }
            for m in got {
                seen.lock().unwrap().insert(m.body.clone());
                q.ack(&name, &m.receipt).await.unwrap();
            }
        }
    };
    futures::future::join4(consumer(), consumer(), consumer(), consumer()).await;
    let seen = seen.into_inner().unwrap();
    assert_eq!(seen, (0..60).map(|i| format!("m{i}")).collect::<BTreeSet<_>>());
}

pub async fn rejects_bad_input(q: &dyn Queue) {
    let name = fresh(q, 5).await;
    let missing = unique("missing");
    assert_eq!(q.send(&missing, "x", S(0)).await.unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(q.receive(&missing, 1, S(5), S(0)).await.unwrap_err().kind(), ErrorKind::NotFound);
    let huge = "x".repeat(super::MAX_BODY_BYTES + 1);
    assert_eq!(q.send(&name, &huge, S(0)).await.unwrap_err().kind(), ErrorKind::InvalidInput);
    assert_eq!(q.send(&name, "x", S(901)).await.unwrap_err().kind(), ErrorKind::InvalidInput);
    assert_eq!(q.receive(&name, 11, S(5), S(0)).await.unwrap_err().kind(), ErrorKind::InvalidInput);
    assert_eq!(q.receive(&name, 0, S(5), S(0)).await.unwrap_err().kind(), ErrorKind::InvalidInput);
    assert_eq!(q.ensure(&name, QueueSpec { max_attempts: 0 }).await.unwrap_err().kind(), ErrorKind::InvalidInput);
}

pub async fn ensure_is_idempotent(q: &dyn Queue) {
    let name = fresh(q, 3).await;
    q.send(&name, "kept", S(0)).await.unwrap();
    q.ensure(&name, QueueSpec { max_attempts: 3 }).await.unwrap();
    let got = q.receive(&name, 10, S(5), S(1)).await.unwrap();
    assert_eq!(got.len(), 1, "ensure keeps existing messages");
    q.ack(&name, &got[0].receipt).await.unwrap();
}

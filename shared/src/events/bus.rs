//! The relay from the table to the events queue, one per process.
//!
//! Committed events are sent at once (a push wakes the relay); pulls wait
//! for the next flush, at most a second ([`FLUSH_EVERY`]), and go as one
//! message per [`PULLS_PER_MESSAGE`]. Outbox items whose event was sent are
//! removed; those a crashed process left behind are found by [`EventBus::sweep`],
//! which each host runs now and then ([`SWEEP_EVERY`]; on AWS Lambda, the
//! scheduler tick).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{Event, EventMessage, Outgoing};
use crate::meta::keys;
use crate::meta::{Condition, MetaStore, Query};
use crate::port::PortResult;
use crate::queue::{self, Queue};

/// Pulls wait at most this long before they are sent.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// How often a long-running host looks for events a crashed process left.
pub const SWEEP_EVERY: Duration = Duration::from_secs(30);
/// An outbox item younger than this is its writer's to send.
pub const SWEEP_MIN_AGE: Duration = Duration::from_secs(10);
/// Pulls per queue message (each a few hundred bytes of JSON; SQS takes 256 KiB).
pub const PULLS_PER_MESSAGE: usize = 200;
/// Distinct pulls (artifact, tag, client) kept between flushes, or while
/// the queue cannot be reached; a new one past this is dropped (pull
/// statistics are best effort, changes are not). Repeats of a kept one
/// only count up, so memory stays bounded however busy the registry is.
const MAX_PENDING_PULLS: usize = 20_000;

/// What makes two pulls the same pull, counted twice.
type PullKey = (Option<String>, Option<String>, Option<String>, String, Option<String>);

fn pull_key(e: &Event) -> PullKey {
    (e.repository.clone(), e.digest.clone(), e.tag.clone(), e.actor.name.clone(), e.actor.address.clone())
}
/// Sends in flight at once during a flush.
const SEND_CONCURRENCY: usize = 8;

#[derive(Debug, Default)]
struct Pending {
    messages: Vec<Outgoing>,
    /// Pulls since the last flush, one per [`PullKey`] with its count in
    /// `times` and its latest time.
    pulls: std::collections::HashMap<PullKey, Event>,
}

impl Pending {
    /// Counts `event` in (with its `times`); false when it was dropped.
    fn add_pull(&mut self, event: Event) -> bool {
        let key = pull_key(&event);
        if let Some(seen) = self.pulls.get_mut(&key) {
            seen.times = seen.times.saturating_add(event.times);
            seen.at_ms = seen.at_ms.max(event.at_ms);
            return true;
        }
        if self.pulls.len() >= MAX_PENDING_PULLS {
            return false;
        }
        self.pulls.insert(key, event);
        true
    }
}

#[derive(Debug)]
pub struct EventBus {
    meta: Arc<dyn MetaStore>,
    queue: Arc<dyn Queue>,
    pending: Mutex<Pending>,
    kick: Notify,
}

impl EventBus {
    pub fn new(meta: Arc<dyn MetaStore>, queue: Arc<dyn Queue>) -> Self {
        Self { meta, queue, pending: Mutex::new(Pending::default()), kick: Notify::new() }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A message whose outbox item was committed: sent at the next flush,
    /// which this starts.
    pub fn committed(&self, message: Outgoing) {
        self.pending().messages.push(message);
        self.kick.notify_one();
    }

    /// A pull, sent with the next batch (counted into an earlier pull of
    /// the same artifact, tag and client since the last flush).
    pub fn pulled(&self, event: Event) {
        if !self.pending().add_pull(event) {
            tracing::debug!("pull statistics: too many distinct pulls waiting; one dropped");
        }
    }

    /// Whether anything waits to be sent.
    pub fn is_idle(&self) -> bool {
        let p = self.pending();
        p.messages.is_empty() && p.pulls.is_empty()
    }

    /// Sends what is pending: each committed message, then the pulls in
    /// batches. Returns how many messages went out. A message that could
    /// not be sent stays in the outbox for a sweep; pulls that could not be
    /// sent wait for the next flush.
    pub async fn flush(&self) -> usize {
        let Pending { messages, pulls } = std::mem::take(&mut *self.pending());
        let pulls: Vec<Event> = pulls.into_values().collect();
        let sent_events = futures::stream::iter(messages)
            .map(|m| async move { self.send_outgoing(&m).await })
            .buffer_unordered(SEND_CONCURRENCY)
            .filter(|ok| std::future::ready(*ok))
            .count()
            .await;
        let mut sent = sent_events;
        let mut unsent = Vec::new();
        for chunk in pulls.chunks(PULLS_PER_MESSAGE) {
            let msg = EventMessage::Pulls { id: uuid::Uuid::new_v4().simple().to_string(), pulls: chunk.to_vec() };
            match self.send(&msg).await {
                Ok(()) => sent += 1,
                Err(e) => {
                    tracing::warn!(error = %e, pulls = chunk.len(), "pull statistics not sent; retrying");
                    unsent.extend_from_slice(chunk);
                }
            }
        }
        if !unsent.is_empty() {
            let mut p = self.pending();
            for e in unsent {
                p.add_pull(e);
            }
        }
        sent
    }

    async fn send(&self, msg: &EventMessage) -> PortResult<()> {
        let body =
            serde_json::to_string(msg).map_err(|e| crate::port::PortError::new(crate::port::ErrorKind::Internal, e))?;
        self.queue.send(queue::EVENTS, &body, Duration::ZERO).await.map(drop)
    }

    /// Sends one committed message and removes its outbox item; false
    /// when it stays for a sweep.
    async fn send_outgoing(&self, m: &Outgoing) -> bool {
        if let Err(e) = self.queue.send(&m.queue, &m.body, Duration::ZERO).await {
            tracing::warn!(error = %e, message = %m.id, queue = %m.queue, "message not sent; the outbox keeps it");
            return false;
        }
        let (pk, sk) = keys::outbox(m.at_ms, &m.id);
        if let Err(e) = self.meta.delete(&pk, &sk, Condition::Always).await {
            // Sent again by a sweep: consumers tolerate the repeat.
            tracing::warn!(error = %e, message = %m.id, "outbox item not removed");
        }
        true
    }

    /// Sends the outbox items older than `min_age` (events whose writer
    /// died before sending them). Returns how many it sent.
    pub async fn sweep(&self, min_age: Duration) -> PortResult<usize> {
        let cutoff = super::now_ms() - i64::try_from(min_age.as_millis()).unwrap_or(i64::MAX);
        let mut sent = 0;
        for shard in 0..keys::OUTBOX_SHARDS {
            let mut cursor = None;
            'partition: loop {
                let page =
                    self.meta.query(Query::table(keys::outbox_partition(shard), "").limit(100).after(cursor)).await?;
                for item in &page.items {
                    let at: i64 = item.sk.split('#').next().and_then(|t| t.parse().ok()).unwrap_or(i64::MAX);
                    if at > cutoff {
                        break 'partition;
                    }
                    match Outgoing::from_outbox(item) {
                        Some(m) => {
                            if self.send_outgoing(&m).await {
                                sent += 1;
                            }
                        }
                        None => {
                            tracing::error!(key = %item.sk, "unreadable outbox item removed");
                            self.meta.delete(&item.pk, &item.sk, Condition::Always).await?;
                        }
                    }
                }
                match page.next {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
        }
        if sent > 0 {
            tracing::info!(messages = sent, "outbox sweep sent messages a process left behind");
        }
        Ok(sent)
    }

    /// Relays until `stop`: committed events at once, pulls every
    /// [`FLUSH_EVERY`], a sweep every [`SWEEP_EVERY`]; a last flush on the way out.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut last_sweep: Option<Instant> = None;
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                () = self.kick.notified() => {}
                () = tokio::time::sleep(FLUSH_EVERY) => {}
            }
            self.flush().await;
            if last_sweep.is_none_or(|t| t.elapsed() >= SWEEP_EVERY) {
                last_sweep = Some(Instant::now());
                if let Err(e) = self.sweep(SWEEP_MIN_AGE).await {
                    tracing::warn!(error = %e, "outbox sweep failed");
                }
            }
        }
        self.flush().await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::events::{Actor, EventKind};

    #[tokio::test]
    async fn repeated_pulls_travel_as_one_counted_event() {
        let (_dir, reg, queue) = crate::testkit::local_registry_and_queue().await;
        let bus = reg.events();
        let pull = |tag: &str, who: &str| {
            Event::artifact(EventKind::PullArtifact, &Actor::new(who, None), "p/app", "sha256:00").with_tag(Some(tag))
        };
        for _ in 0..5 {
            bus.pulled(pull("v1", "alice"));
        }
        bus.pulled(pull("v1", "bob"));
        assert_eq!(bus.flush().await, 1);
        let got = queue.receive(queue::EVENTS, 10, Duration::from_secs(30), Duration::ZERO).await.unwrap();
        let EventMessage::Pulls { pulls, .. } = serde_json::from_str(&got[0].body).unwrap() else { panic!() };
        let mut times: Vec<(String, u64)> = pulls.iter().map(|p| (p.actor.name.clone(), p.times)).collect();
        times.sort();
        assert_eq!(times, [("alice".to_owned(), 5), ("bob".to_owned(), 1)]);
        assert!(bus.is_idle());
    }
}

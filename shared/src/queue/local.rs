//! `Queue` in the embedded database: durable, so a restart loses no job.
//!
//! Tables in the redb file:
//! ```text
//! queue_specs   queue                                -> QueueSpec as JSON
//! queue_msgs    queue \0 message id                  -> StoredMessage as JSON
//! queue_due     queue \0 visible-at (ms, big-endian) \0 message id -> ()
//! ```
//! `queue_due` orders each queue's messages by the time they become
//! deliverable, so a receive reads only the due front of one queue. A
//! receive is one write transaction: it picks due messages, bumps their
//! attempt count and hides them until the visibility timeout, or moves a
//! message that has used up its attempts to the dead-letter queue.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use redb::{ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::{
    ErrorKind, Message, PortError, PortResult, Queue, QueueSpec, dead_letter_queue, validate_receive, validate_send,
    validate_spec,
};
use crate::localdb::{LocalDb, db_error};

const SPECS: TableDefinition<&str, &[u8]> = TableDefinition::new("queue_specs");
const MSGS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("queue_msgs");
const DUE: TableDefinition<&[u8], ()> = TableDefinition::new("queue_due");

/// How often a waiting receive looks again when nothing wakes it.
const POLL: Duration = Duration::from_millis(200);

#[derive(Debug, Clone)]
pub struct LocalQueue {
    db: LocalDb,
    /// Wakes waiting receivers of this process when a message is sent.
    sent: std::sync::Arc<tokio::sync::Notify>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredMessage {
    body: String,
    attempts: u32,
    visible_at_ms: u64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct StoredSpec {
    max_attempts: u32,
    /// Dead-letter queues themselves keep messages however often delivered.
    dead_letter: bool,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn msg_key(queue: &str, id: &str) -> Vec<u8> {
    [queue.as_bytes(), b"\0", id.as_bytes()].concat()
}

fn due_key(queue: &str, visible_at_ms: u64, id: &str) -> Vec<u8> {
    [queue.as_bytes(), b"\0", &visible_at_ms.to_be_bytes(), b"\0", id.as_bytes()].concat()
}

fn internal(e: impl std::fmt::Display) -> PortError {
    PortError::msg(ErrorKind::Internal, format_args!("local queue: {e}"))
}

fn unknown_queue(queue: &str) -> PortError {
    PortError::msg(ErrorKind::NotFound, format_args!("queue {queue} does not exist"))
}

/// A receipt names one delivery: `<id>:<attempt>`.
fn parse_receipt(receipt: &str) -> PortResult<(&str, u32)> {
    receipt
        .rsplit_once(':')
        .and_then(|(id, n)| n.parse().ok().map(|n| (id, n)))
        .ok_or_else(|| PortError::msg(ErrorKind::InvalidInput, format_args!("invalid receipt {receipt:?}")))
}

fn spec_of(txn: &redb::WriteTransaction, queue: &str) -> PortResult<StoredSpec> {
    let specs = txn.open_table(SPECS).map_err(db_error)?;
    let raw = specs.get(queue).map_err(db_error)?.ok_or_else(|| unknown_queue(queue))?;
    serde_json::from_slice(raw.value()).map_err(internal)
}

fn store(txn: &redb::WriteTransaction, queue: &str, id: &str, msg: &StoredMessage) -> PortResult<()> {
    let value = serde_json::to_vec(msg).map_err(internal)?;
    txn.open_table(MSGS)
        .map_err(db_error)?
        .insert(msg_key(queue, id).as_slice(), value.as_slice())
        .map_err(db_error)?;
    txn.open_table(DUE)
        .map_err(db_error)?
        .insert(due_key(queue, msg.visible_at_ms, id).as_slice(), ())
        .map_err(db_error)?;
    Ok(())
}

fn load(txn: &redb::WriteTransaction, queue: &str, id: &str) -> PortResult<Option<StoredMessage>> {
    let msgs = txn.open_table(MSGS).map_err(db_error)?;
    let raw = msgs.get(msg_key(queue, id).as_slice()).map_err(db_error)?;
    raw.map(|v| serde_json::from_slice(v.value()).map_err(internal)).transpose()
}

fn remove(txn: &redb::WriteTransaction, queue: &str, id: &str, msg: &StoredMessage) -> PortResult<()> {
    txn.open_table(MSGS).map_err(db_error)?.remove(msg_key(queue, id).as_slice()).map_err(db_error)?;
    txn.open_table(DUE)
        .map_err(db_error)?
        .remove(due_key(queue, msg.visible_at_ms, id).as_slice())
        .map_err(db_error)?;
    Ok(())
}

impl LocalQueue {
    pub async fn open(db: LocalDb) -> PortResult<Self> {
        db.write(|txn| {
            txn.open_table(SPECS).map_err(db_error)?;
            txn.open_table(MSGS).map_err(db_error)?;
            txn.open_table(DUE).map_err(db_error)?;
            Ok(())
        })
        .await?;
        Ok(Self { db, sent: Default::default() })
    }

    /// One receive pass: takes the due messages (at most `max`) in one
    /// transaction.
    async fn take_due(&self, queue: &str, max: usize, visibility: Duration) -> PortResult<Vec<Message>> {
        let queue = queue.to_owned();
        let visibility_ms = u64::try_from(visibility.as_millis()).unwrap_or(u64::MAX);
        self.db
            .write(move |txn| {
                let spec = spec_of(txn, &queue)?;
                let now = now_ms();
                let start = due_key(&queue, 0, "");
                let end = due_key(&queue, now, "\u{7f}");
                let due: Vec<Vec<u8>> = {
                    let table = txn.open_table(DUE).map_err(db_error)?;
                    let range = table.range(start.as_slice()..end.as_slice()).map_err(db_error)?;
                    // Read a few more than asked for, since some may move to
                    // the dead-letter queue instead of being delivered.
                    range
                        .take(max * 2)
                        .map(|e| e.map(|(k, _)| k.value().to_vec()).map_err(db_error))
                        .collect::<PortResult<_>>()?
                };
                let mut out = Vec::new();
                for key in due {
                    if out.len() == max {
                        break;
                    }
                    let id = std::str::from_utf8(&key[queue.len() + 10..]).map_err(internal)?.to_owned();
                    let Some(mut msg) = load(txn, &queue, &id)? else { continue };
                    remove(txn, &queue, &id, &msg)?;
                    if !spec.dead_letter && msg.attempts >= spec.max_attempts {
                        // The count travels along, as SQS keeps its receive count.
                        let dead = StoredMessage { visible_at_ms: now, ..msg };
                        store(txn, &dead_letter_queue(&queue), &id, &dead)?;
                        continue;
                    }
                    msg.attempts += 1;
                    msg.visible_at_ms = now.saturating_add(visibility_ms);
                    store(txn, &queue, &id, &msg)?;
                    out.push(Message {
                        receipt: format!("{id}:{}", msg.attempts),
                        id,
                        body: msg.body,
                        attempts: msg.attempts,
                    });
                }
                Ok(out)
            })
            .await
    }
}

#[async_trait]
impl Queue for LocalQueue {
    async fn ensure(&self, queue: &str, spec: QueueSpec) -> PortResult<()> {
        validate_spec(spec)?;
        let queue = queue.to_owned();
        self.db
            .write(move |txn| {
                let mut specs = txn.open_table(SPECS).map_err(db_error)?;
                let main = StoredSpec { max_attempts: spec.max_attempts, dead_letter: false };
                let dead = StoredSpec { max_attempts: u32::MAX, dead_letter: true };
                for (name, s) in [(queue.clone(), main), (dead_letter_queue(&queue), dead)] {
                    let value = serde_json::to_vec(&s).map_err(internal)?;
                    specs.insert(name.as_str(), value.as_slice()).map_err(db_error)?;
                }
                Ok(())
            })
            .await
    }

    async fn send(&self, queue: &str, body: &str, delay: Duration) -> PortResult<String> {
        validate_send(body, delay)?;
        let (queue, body) = (queue.to_owned(), body.to_owned());
        let id = uuid::Uuid::new_v4().simple().to_string();
        let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        let msg_id = id.clone();
        self.db
            .write(move |txn| {
                spec_of(txn, &queue)?;
                let msg = StoredMessage { body, attempts: 0, visible_at_ms: now_ms().saturating_add(delay_ms) };
                store(txn, &queue, &msg_id, &msg)
            })
            .await?;
        self.sent.notify_waiters();
        Ok(id)
    }

    async fn receive(&self, queue: &str, max: usize, visibility: Duration, wait: Duration) -> PortResult<Vec<Message>> {
        validate_receive(max, visibility, wait)?;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.sent.notified();
            let got = self.take_due(queue, max, visibility).await?;
            let now = tokio::time::Instant::now();
            if !got.is_empty() || now >= deadline {
                return Ok(got);
            }
            let _ = tokio::time::timeout(POLL.min(deadline - now), notified).await;
        }
    }

    async fn ack(&self, queue: &str, receipt: &str) -> PortResult<()> {
        // Like SQS, a receipt that names no current message acks nothing.
        let Ok((id, _)) = parse_receipt(receipt) else { return Ok(()) };
        let (queue, id) = (queue.to_owned(), id.to_owned());
        self.db
            .write(move |txn| {
                spec_of(txn, &queue)?;
                if let Some(msg) = load(txn, &queue, &id)? {
                    remove(txn, &queue, &id, &msg)?;
                }
                Ok(())
            })
            .await
    }

    async fn retry_later(&self, queue: &str, receipt: &str, delay: Duration) -> PortResult<()> {
        let (id, attempt) = parse_receipt(receipt)?;
        let (queue, id, receipt) = (queue.to_owned(), id.to_owned(), receipt.to_owned());
        let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.db
            .write(move |txn| {
                spec_of(txn, &queue)?;
                // A receipt of an earlier delivery no longer controls the message.
                let mut msg = load(txn, &queue, &id)?
                    .filter(|m| m.attempts == attempt)
                    .ok_or_else(|| PortError::msg(ErrorKind::NotFound, format_args!("delivery {receipt} is over")))?;
                remove(txn, &queue, &id, &msg)?;
                msg.visible_at_ms = now_ms().saturating_add(delay_ms);
                store(txn, &queue, &id, &msg)
            })
            .await?;
        self.sent.notify_waiters();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    async fn fresh() -> Option<(tempfile::TempDir, LocalQueue)> {
        let dir = tempfile::tempdir().unwrap();
        let db = LocalDb::open(&dir.path().join("berth.redb")).unwrap();
        Some((dir, LocalQueue::open(db).await.unwrap()))
    }

    crate::queue_conformance!(fresh);

    #[tokio::test]
    async fn unacknowledged_messages_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.redb");
        {
            let q = LocalQueue::open(LocalDb::open(&path).unwrap()).await.unwrap();
            q.ensure("jobs", QueueSpec::default()).await.unwrap();
            q.send("jobs", "durable", Duration::ZERO).await.unwrap();
            let got = q.receive("jobs", 1, Duration::from_secs(1), Duration::ZERO).await.unwrap();
            assert_eq!(got.len(), 1, "in flight when the process stops");
        }
        let q = LocalQueue::open(LocalDb::open(&path).unwrap()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let got = q.receive("jobs", 1, Duration::from_secs(5), Duration::ZERO).await.unwrap();
        assert_eq!(got.len(), 1, "redelivered after a restart");
        assert_eq!((got[0].body.as_str(), got[0].attempts), ("durable", 2));
    }
}

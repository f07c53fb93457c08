//! The `Queue` port: durable job and event queues (SQS, or a queue stored
//! in the embedded database locally).
//!
//! Owns: send (with delay), receive with a visibility timeout, ack, retry
//! later, and dead-lettering after a queue's attempt limit. Delivery is
//! at least once and unordered: consumers must be idempotent. The
//! dead-letter queue of `q` is the ordinary queue [`dead_letter_queue`]`(q)`.
//! It knows nothing of job kinds or payloads. Every implementation passes
//! the conformance suite in [`conformance`].

pub mod local;
pub mod sqs;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;

pub use crate::port::{ErrorKind, PortError, PortResult};

/// Largest message body (SQS's limit).
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Most messages one receive returns (SQS's limit).
pub const MAX_BATCH: usize = 10;
/// Longest delay of a send or a retry (SQS's limit).
pub const MAX_DELAY: Duration = Duration::from_secs(900);

/// The queues berth uses; names are short and stable (they are also SQS
/// queue names after the configured prefix). Work of different needs goes
/// to different queues, so each can have its own consumers (and, on AWS,
/// its own Lambda settings): events are many and quick, webhook deliveries
/// wait on other servers, jobs run for up to a minute a message.
pub const EVENTS: &str = "events";
pub const WEBHOOKS: &str = "webhooks";
pub const JOBS: &str = "jobs";
pub const ALL_QUEUES: [&str; 3] = [EVENTS, WEBHOOKS, JOBS];

/// Name of the queue that takes `queue`'s messages after too many attempts.
pub fn dead_letter_queue(queue: &str) -> String {
    format!("{queue}-dlq")
}

/// How a queue treats its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSpec {
    /// Deliveries after which an unacknowledged message moves to the
    /// dead-letter queue instead of being delivered again: 1..=1000 (SQS's
    /// range), `InvalidInput` otherwise.
    pub max_attempts: u32,
}

impl Default for QueueSpec {
    fn default() -> Self {
        Self { max_attempts: 5 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: String,
    /// Names this delivery, for `ack` and `retry_later`.
    pub receipt: String,
    pub body: String,
    /// How many times this message has been delivered, this delivery included.
    pub attempts: u32,
}

#[async_trait]
pub trait Queue: Debug + Send + Sync + 'static {
    /// Creates `queue` and its dead-letter queue when missing; an existing
    /// queue keeps its messages. Idempotent.
    async fn ensure(&self, queue: &str, spec: QueueSpec) -> PortResult<()>;

    /// Sends a message, deliverable after `delay` (at most [`MAX_DELAY`]).
    /// Returns its id. An unknown queue is `NotFound`; a body over
    /// [`MAX_BODY_BYTES`] is `InvalidInput`.
    async fn send(&self, queue: &str, body: &str, delay: Duration) -> PortResult<String>;

    /// Receives up to `max` (1..=10) deliverable messages, hiding each from
    /// other receivers for `visibility` (whole seconds, 1 s..=12 h). Waits up to
    /// `wait` (whole seconds, ≤ 20) for a first message; may return fewer
    /// than are waiting. A message delivered `max_attempts` times and not
    /// acked moves to the dead-letter queue instead of a further delivery.
    async fn receive(&self, queue: &str, max: usize, visibility: Duration, wait: Duration) -> PortResult<Vec<Message>>;

    /// Deletes a delivered message for good. Acking twice, or with a receipt
    /// that names no current message, is Ok.
    async fn ack(&self, queue: &str, receipt: &str) -> PortResult<()>;

    /// Makes a delivered message deliverable again after `delay` instead of
    /// at the end of its visibility timeout. `NotFound` when the message was
    /// acked; whether the receipt of an earlier delivery still works once the
    /// message was delivered again is unspecified (SQS may accept it).
    async fn retry_later(&self, queue: &str, receipt: &str, delay: Duration) -> PortResult<()>;
}

/// Checks the arguments every backend refuses alike.
pub fn validate_receive(max: usize, visibility: Duration, wait: Duration) -> PortResult<()> {
    let visibility_ok = (1..=12 * 3600).contains(&visibility.as_secs());
    if !(1..=MAX_BATCH).contains(&max) || !visibility_ok || wait > Duration::from_secs(20) {
        return Err(PortError::msg(
            ErrorKind::InvalidInput,
            "receive takes 1..=10 messages, a visibility of at least 1 s and a wait of at most 20 s",
        ));
    }
    Ok(())
}

pub fn validate_spec(spec: QueueSpec) -> PortResult<()> {
    if !(1..=1000).contains(&spec.max_attempts) {
        return Err(PortError::msg(
            ErrorKind::InvalidInput,
            format_args!("max_attempts of {} (must be 1..=1000)", spec.max_attempts),
        ));
    }
    Ok(())
}

pub fn validate_send(body: &str, delay: Duration) -> PortResult<()> {
    if body.len() > MAX_BODY_BYTES || body.is_empty() {
        return Err(PortError::msg(ErrorKind::InvalidInput, format_args!("message body of {} bytes", body.len())));
    }
    if delay > MAX_DELAY {
        return Err(PortError::msg(ErrorKind::InvalidInput, "delay over 15 minutes"));
    }
    Ok(())
}

//! The job service (Harbor's jobservice, F18): background work as
//! executions of tasks, run by workers from queues.
//!
//! - A [`Job`] is one kind of work (a webhook delivery, an audit purge…):
//!   its `run` does one task, idempotently, in at most about a minute, and
//!   may leave follow-up tasks to continue a large job.
//! - An execution (Harbor's `Execution`) groups the tasks one trigger
//!   started, for one vendor (a policy, or a system job type). Executions,
//!   tasks and their log lines live in the table ([`crate::service::executions`]); an
//!   execution's status is its tasks' ([`Status::of_tasks`]).
//! - Each task travels as a [`TaskMessage`] on its job's queue, written to
//!   the outbox with the task itself, so a task is never left unqueued.
//! - The [`worker`] receives messages, claims the task (so a message
//!   delivered twice runs once), runs it, retries it with backoff, and
//!   records the outcome; a message the queue dead-letters is recorded as
//!   an Error with its last error.
//!
//! The same worker code runs in `berth serve`, in `berth worker` and in the
//! worker Lambda functions.

pub mod adapter_scan;
pub mod cve_export;
pub mod gc;
pub mod host;
pub mod lambda;
pub mod pool;
pub mod preheat;
pub mod purge;
pub mod replication;
pub mod retention;
pub mod scan;
pub mod scan_all;
pub mod schedule;
pub mod webhook;
pub mod worker;

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::service::Registry;

/// The job type of the scheduler: pausing its queue pauses every schedule.
pub const SCHEDULER: &str = "SCHEDULER";

/// The job queues the job service dashboard shows: Harbor's job types, so
/// that its dashboard and tests address the same names. A type berth has no
/// job for yet (it comes with its feature) shows an empty queue and can be
/// paused ahead of time.
pub const JOB_TYPES: [&str; 13] = [
    "GARBAGE_COLLECTION",
    "PURGE_AUDIT_LOG",
    "P2P_PREHEAT",
    "IMAGE_SCAN",
    "REPLICATION",
    "RETENTION",
    "SCAN_DATA_EXPORT",
    SCHEDULER,
    "SLACK",
    "SYSTEM_ARTIFACT_CLEANUP",
    "WEBHOOK",
    "EXECUTION_SWEEP",
    "AUDIT_LOGS_GDPR_COMPLIANT",
];

/// A task's or an execution's status, as Harbor names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Status {
    Pending,
    Running,
    Success,
    Error,
    Stopped,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Running => "Running",
            Self::Success => "Success",
            Self::Error => "Error",
            Self::Stopped => "Stopped",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, Self::Success | Self::Error | Self::Stopped)
    }

    /// An execution's status from its tasks': running while any runs or
    /// waits, else Error if any failed, else Stopped if any stopped, else
    /// Success (an execution without tasks succeeded).
    pub fn of_tasks(tasks: impl IntoIterator<Item = Self>) -> Self {
        let mut seen = std::collections::HashSet::new();
        seen.extend(tasks);
        if seen.contains(&Self::Running) || seen.contains(&Self::Pending) {
            Self::Running
        } else if seen.contains(&Self::Error) {
            Self::Error
        } else if seen.contains(&Self::Stopped) {
            Self::Stopped
        } else {
            Self::Success
        }
    }
}

/// What a queue message of a job carries: the task to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskMessage {
    pub execution: i64,
    pub task: i64,
}

/// Why a task's run failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth another attempt (a receiver answering 500, a timeout).
    #[error("{0}")]
    Retry(String),
    /// Another attempt cannot succeed (a bad payload).
    #[error("{0}")]
    Fatal(String),
}

impl From<crate::service::ServiceError> for JobError {
    fn from(e: crate::service::ServiceError) -> Self {
        if e.is_unavailable() { Self::Retry(e.to_string()) } else { Self::Fatal(e.to_string()) }
    }
}

impl From<crate::port::PortError> for JobError {
    fn from(e: crate::port::PortError) -> Self {
        crate::service::ServiceError::from(e).into()
    }
}

/// One kind of background work.
#[async_trait]
pub trait Job: Send + Sync + std::fmt::Debug + 'static {
    /// The name its tasks are stored under (Harbor's vendor type, e.g.
    /// `WEBHOOK`, `PURGE_AUDIT_LOG`).
    fn kind(&self) -> &'static str;

    /// The queue its tasks go to.
    fn queue(&self) -> &'static str;

    /// Runs one task. Must be idempotent: a task may run again after a
    /// crash part-way. Should finish within about a minute, leaving the
    /// rest to follow-up tasks ([`TaskContext::follow_up`]).
    async fn run(&self, ctx: &mut TaskContext) -> Result<(), JobError>;
}

/// What a running task sees and may do.
#[derive(Debug)]
pub struct TaskContext {
    pub registry: Registry,
    pub execution: i64,
    pub task: i64,
    /// The task's parameters, as its creator gave them.
    pub payload: serde_json::Value,
    /// This run, from 1.
    pub attempt: u32,
    /// Whether a retryable failure of this run ends the task (no attempt
    /// follows).
    pub last_attempt: bool,
    logs: Vec<String>,
    follow_ups: Vec<serde_json::Value>,
    extra: serde_json::Map<String, serde_json::Value>,
}

impl TaskContext {
    pub(crate) fn new(registry: Registry, execution: i64, task: i64, payload: serde_json::Value, attempt: u32) -> Self {
        Self {
            registry,
            execution,
            task,
            payload,
            attempt,
            last_attempt: false,
            logs: Vec::new(),
            follow_ups: Vec::new(),
            extra: serde_json::Map::new(),
        }
    }

    /// Adds a line to the task's log.
    pub fn log(&mut self, line: impl Into<String>) {
        let line = line.into();
        tracing::debug!(execution = self.execution, task = self.task, "{line}");
        self.logs.push(line);
    }

    /// Records a value in the task's `extra_attrs` (progress, results).
    pub fn set_attr(&mut self, key: &str, value: impl Into<serde_json::Value>) {
        self.extra.insert(key.to_owned(), value.into());
    }

    /// Whether the task or its execution was asked to stop: a long task
    /// checks between steps and returns early.
    pub async fn stopped(&self) -> bool {
        self.registry.stop_requested(self.execution, self.task).await.unwrap_or(false)
    }

    /// Queues another task of the same job in this execution, with
    /// `payload`, once this one succeeds.
    pub fn follow_up(&mut self, payload: serde_json::Value) {
        self.follow_ups.push(payload);
    }
}

/// The jobs a worker can run, by kind.
#[derive(Debug, Clone, Default)]
pub struct Jobs {
    jobs: std::collections::BTreeMap<&'static str, Arc<dyn Job>>,
}

impl Jobs {
    pub fn with(mut self, job: Arc<dyn Job>) -> Self {
        self.jobs.insert(job.kind(), job);
        self
    }

    pub fn get(&self, kind: &str) -> Option<&Arc<dyn Job>> {
        self.jobs.get(kind)
    }

    pub fn kinds(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.jobs.keys().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::Status::*;
    use super::*;

    #[test]
    fn execution_status_from_tasks() {
        assert_eq!(Status::of_tasks([]), Success);
        assert_eq!(Status::of_tasks([Success, Running]), Running);
        assert_eq!(Status::of_tasks([Success, Pending, Error]), Running);
        assert_eq!(Status::of_tasks([Success, Error, Stopped]), Error);
        assert_eq!(Status::of_tasks([Success, Stopped]), Stopped);
    }
}

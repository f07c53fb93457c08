//! What the job service dashboard (Harbor's `/jobservice`) shows and
//! controls: the job queues and the worker pools.
//!
//! - A job type's queue is the set of its tasks waiting for a worker
//!   (status Pending): each has an entry `JQ#<type>#<shard>` written and
//!   removed in the same transaction as the task's status
//!   ([`super::executions`]), so the count and the oldest wait are one
//!   keys-only query per shard, whatever the queue service can tell.
//! - A paused job type's tasks stay waiting: a worker that receives one
//!   leaves it Pending and lets its message go; resuming sends every
//!   waiting task of the type again (a task is claimed once however many
//!   messages name it). Pausing `SCHEDULER` pauses the schedules.
//! - Stopping a job type's pending jobs records each waiting task as
//!   Stopped.
//! - Each process that runs workers keeps a pool record fresh with its
//!   heartbeat ([`crate::jobs::pool`]); a pool whose heartbeat is older than
//!   [`POOL_STALE_MS`] has ended and is not shown.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::record::{from_item, to_item};
use super::{Registry, ServiceResult};
use crate::events::{Outgoing, now_ms};
use crate::jobs::{Status, TaskMessage};
use crate::meta::keys::{self, JOB_QUEUE_SHARDS};
use crate::meta::{Condition, Item, Query};

/// A pool that has not beaten for this long has ended.
pub const POOL_STALE_MS: i64 = 90_000;

/// A job queue as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobQueue {
    pub job_type: String,
    /// Tasks waiting for a worker.
    pub count: u64,
    /// When the longest-waiting one began to wait (Unix ms).
    pub oldest_ms: Option<i64>,
    pub paused: bool,
}

/// A process that runs workers (Harbor's worker pool), as its last
/// heartbeat left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolRecord {
    pub id: String,
    pub pid: u32,
    pub host: String,
    /// How many tasks it runs at once.
    pub concurrency: u32,
    /// Unix ms.
    pub start_at: i64,
    pub heartbeat_at: i64,
    /// The tasks it was running at its heartbeat.
    #[serde(default)]
    pub running: Vec<RunningJob>,
}

/// A task a pool is running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningJob {
    /// The job's id on the dashboard ([`job_id`]).
    pub job_id: String,
    pub job_name: String,
    /// Unix ms.
    pub start_at: i64,
}

/// A task's job id on the dashboard: `<execution>-<task>`.
pub fn job_id(execution: i64, task: i64) -> String {
    format!("{execution}-{task}")
}

/// The task a dashboard job id names.
pub fn parse_job_id(id: &str) -> Option<(i64, i64)> {
    let (x, t) = id.split_once('-')?;
    Some((x.parse().ok()?, t.parse().ok()?))
}

/// The execution and task of a job queue entry's sort key.
fn entry_task(sk: &str) -> Option<(i64, i64, i64)> {
    let mut parts = sk.splitn(3, '#');
    let queued = parts.next()?.parse().ok()?;
    Some((queued, parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

impl Registry {
    /// Whether `job_type`'s queue is paused.
    pub async fn job_queue_paused(&self, job_type: &str) -> ServiceResult<bool> {
        let (pk, sk) = keys::job_queue_status(job_type);
        Ok(self.meta.get(&pk, &sk).await?.is_some())
    }

    /// The paused job types.
    pub async fn paused_job_queues(&self) -> ServiceResult<BTreeSet<String>> {
        let items = self.meta.query_all(Query::table(keys::JOB_QUEUE_STATUS, "")).await?;
        Ok(items.into_iter().map(|i| i.sk).collect())
    }

    /// Pauses or resumes `job_type`. Resuming sends each of its waiting
    /// tasks to its queue again; returns how many.
    pub async fn set_job_queue_paused(&self, job_type: &str, paused: bool) -> ServiceResult<usize> {
        let (pk, sk) = keys::job_queue_status(job_type);
        if paused {
            self.meta.put(Item::new(pk, sk).with("paused_at", now_ms()), Condition::Always).await?;
            return Ok(0);
        }
        self.meta.delete(&pk, &sk, Condition::Always).await?;
        let mut sent = 0;
        for (execution, task) in self.waiting_tasks(job_type).await? {
            let Some(t) = self.task(execution, task).await? else { continue };
            if t.status != Status::Pending {
                continue;
            }
            let msg = TaskMessage { execution, task };
            let out =
                Outgoing::new(&t.queue, &msg, &format!("{}-resumed-{}", job_id(execution, task), now_ms()), now_ms())?;
            self.commit_with_messages(Vec::new(), vec![out]).await?;
            sent += 1;
        }
        Ok(sent)
    }

    /// `job_type`'s queue: its waiting tasks and the oldest wait.
    pub async fn job_queue(&self, job_type: &str) -> ServiceResult<(u64, Option<i64>)> {
        let mut count = 0;
        let mut oldest: Option<i64> = None;
        for shard in 0..JOB_QUEUE_SHARDS {
            let query = Query::table(keys::job_queue_partition(job_type, shard), "").keys_only();
            for item in self.meta.query_all(query).await? {
                count += 1;
                if let Some((queued, _, _)) = entry_task(&item.sk) {
                    oldest = Some(oldest.map_or(queued, |o| o.min(queued)));
                }
            }
        }
        Ok((count, oldest))
    }

    /// The queues of `job_types`, with their paused flags.
    pub async fn job_queues(&self, job_types: &[&str]) -> ServiceResult<Vec<JobQueue>> {
        let paused = self.paused_job_queues().await?;
        let mut out = Vec::with_capacity(job_types.len());
        for t in job_types {
            let (count, oldest_ms) = self.job_queue(t).await?;
            out.push(JobQueue { job_type: (*t).to_owned(), count, oldest_ms, paused: paused.contains(*t) });
        }
        Ok(out)
    }

    /// The (execution, task) of every task of `job_type` waiting for a
    /// worker, oldest first within each shard.
    pub async fn waiting_tasks(&self, job_type: &str) -> ServiceResult<Vec<(i64, i64)>> {
        let mut out = Vec::new();
        for shard in 0..JOB_QUEUE_SHARDS {
            let query = Query::table(keys::job_queue_partition(job_type, shard), "").keys_only();
            out.extend(
                self.meta.query_all(query).await?.iter().filter_map(|i| entry_task(&i.sk)).map(|(_, x, t)| (x, t)),
            );
        }
        Ok(out)
    }

    /// Stops every task of `job_type` that waits for a worker (Harbor's
    /// "stop and clean" of a queue's pending jobs); returns how many.
    pub async fn stop_waiting_tasks(&self, job_type: &str) -> ServiceResult<usize> {
        let mut stopped = 0;
        for (execution, task) in self.waiting_tasks(job_type).await? {
            let Some(t) = self.task(execution, task).await? else { continue };
            if t.status != Status::Pending {
                continue;
            }
            let done = self
                .update_task(&t, |t| {
                    t.status = Status::Stopped;
                    t.end_time = now_ms();
                })
                .await?;
            stopped += usize::from(done.is_some());
        }
        Ok(stopped)
    }

    /// Records a pool's heartbeat.
    pub async fn save_pool(&self, pool: &PoolRecord) -> ServiceResult<()> {
        let (pk, sk) = keys::pool(&pool.id);
        let item = to_item(pk, sk, pool, "worker pool")?
            .with(keys::attr::EXPIRES_AT, (pool.heartbeat_at + POOL_STALE_MS) / 1000 + 3600);
        self.meta.put(item, Condition::Always).await.map_err(Into::into)
    }

    /// Removes a pool (its process is ending).
    pub async fn remove_pool(&self, id: &str) -> ServiceResult<()> {
        let (pk, sk) = keys::pool(id);
        self.meta.delete(&pk, &sk, Condition::Always).await.map_err(Into::into)
    }

    /// The pools that beat lately, oldest first.
    pub async fn pools(&self) -> ServiceResult<Vec<PoolRecord>> {
        let now = now_ms();
        let mut pools = Vec::new();
        for item in self.meta.query_all(Query::table(keys::POOLS, "")).await? {
            let pool: PoolRecord = from_item(item, "worker pool")?;
            if pool.heartbeat_at + POOL_STALE_MS >= now {
                pools.push(pool);
            }
        }
        pools.sort_by_key(|p| p.start_at);
        Ok(pools)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn job_ids_name_their_task() {
        assert_eq!(
            parse_job_id(&job_id(1_796_428_800_000_123, 1_796_428_800_001_456)),
            Some((1_796_428_800_000_123, 1_796_428_800_001_456))
        );
        assert_eq!(parse_job_id("966a49aa2278b67d743f8aca"), None);
        assert_eq!(entry_task("0001796428800000#12#34"), Some((1_796_428_800_000, 12, 34)));
    }
}

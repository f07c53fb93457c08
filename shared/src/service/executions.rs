//! The job service's records ([`crate::jobs`]): executions, tasks and task
//! logs in the table (keys in
//! [`crate::meta::keys`]: `X#<execution>` holds the execution, its tasks
//! and their log lines; `XS#<vendor type>#<vendor id>` lists a vendor's
//! executions). Ids are Harbor's integers: the creation time in
//! milliseconds times 1,000 plus three random digits — unique (a create-only
//! write retries on a clash), ordered by time, and within JavaScript's safe
//! integers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::paging::{Listing, PageRequest, count_write};
use super::record::{corrupt, from_item, rfc3339_ms, to_item};
use super::{Registry, ServiceError, ServiceResult};
use crate::events::{Outgoing, now_ms};
use crate::jobs::{Job, Status, TaskMessage};
use crate::meta::keys::{self, Counted};
use crate::meta::{Condition, ErrorKind, Item, Query, Write};

/// Tasks created in one transaction with their execution (each task is
/// three writes: the task, its job queue entry and its queue message; a
/// transaction holds at most 25).
const TASKS_PER_TRANSACTION: usize = 6;
/// Log lines kept per task (the first ones and a note of what was cut).
const MAX_LOG_LINES: usize = 2000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionRecord {
    pub id: i64,
    pub vendor_type: String,
    pub vendor_id: i64,
    /// `MANUAL`, `SCHEDULE` or `EVENT`.
    pub trigger: String,
    /// Unix milliseconds.
    pub start_time: i64,
    #[serde(default)]
    pub stop_requested: bool,
    #[serde(default)]
    pub extra_attrs: serde_json::Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    pub id: i64,
    pub execution_id: i64,
    pub kind: String,
    pub queue: String,
    #[serde(default)]
    pub payload: Value,
    pub status: Status,
    #[serde(default)]
    pub status_message: String,
    #[serde(default)]
    pub run_count: u32,
    /// Unix milliseconds; 0 when not yet.
    pub creation_time: i64,
    /// When it last began to wait for a worker (its job queue entry).
    #[serde(default)]
    pub queued_at: i64,
    #[serde(default)]
    pub start_time: i64,
    #[serde(default)]
    pub end_time: i64,
    pub update_time: i64,
    /// Claims and updates are conditional on it.
    #[serde(default)]
    pub version: i64,
    #[serde(default)]
    pub extra_attrs: serde_json::Map<String, Value>,
}

/// An execution with what its tasks say of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Execution {
    pub record: ExecutionRecord,
    pub status: Status,
    /// The first failure's message, when one failed.
    pub status_message: String,
    /// Tasks by status.
    pub counts: BTreeMap<Status, u64>,
    pub task_count: u64,
    /// When the last task ended (0 while any runs).
    pub end_time: i64,
}

/// A new Harbor-style integer id: the time in milliseconds times 1,000
/// plus a random part, and always above the last one this process made, so
/// that ids made at once (a task's follow-ups, a thousand in a
/// millisecond) never collide here; another process colliding is caught by
/// the create-only write of what it names.
pub fn new_id() -> i64 {
    use std::sync::atomic::{AtomicI64, Ordering};
    static LAST: AtomicI64 = AtomicI64::new(0);
    let fresh = now_ms().saturating_mul(1000).saturating_add(i64::from(rand::random::<u16>() % 1000));
    let prev = LAST.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| Some(fresh.max(last + 1))).unwrap_or(0);
    fresh.max(prev + 1)
}

fn task_item(t: &TaskRecord) -> ServiceResult<Item> {
    let (pk, sk) = keys::task(t.execution_id, t.id);
    to_item(pk, sk, t, "task")
}

impl Registry {
    /// Starts an execution of `job` for `vendor_id` with one task per
    /// payload; each task's message is queued once the execution is
    /// stored. Returns the execution id.
    pub async fn start_execution(
        &self,
        job: &dyn Job,
        vendor_id: i64,
        trigger: &str,
        extra_attrs: serde_json::Map<String, Value>,
        payloads: Vec<Value>,
    ) -> ServiceResult<i64> {
        self.start_execution_guarded(job, vendor_id, trigger, extra_attrs, payloads, None)
            .await?
            .ok_or_else(|| ServiceError::Conflict("no free execution id".to_owned()))
    }

    /// [`Self::start_execution`] at most once for `once` (a marker item
    /// created with the execution): `None` when it was started already.
    pub async fn start_execution_once(
        &self,
        job: &dyn Job,
        vendor_id: i64,
        trigger: &str,
        extra_attrs: serde_json::Map<String, Value>,
        payloads: Vec<Value>,
        once: keys::Key,
    ) -> ServiceResult<Option<i64>> {
        self.start_execution_guarded(job, vendor_id, trigger, extra_attrs, payloads, Some(once)).await
    }

    async fn start_execution_guarded(
        &self,
        job: &dyn Job,
        vendor_id: i64,
        trigger: &str,
        extra_attrs: serde_json::Map<String, Value>,
        payloads: Vec<Value>,
        once: Option<keys::Key>,
    ) -> ServiceResult<Option<i64>> {
        let now = now_ms();
        for _ in 0..4 {
            let id = new_id();
            let record = ExecutionRecord {
                id,
                vendor_type: job.kind().to_owned(),
                vendor_id,
                trigger: trigger.to_owned(),
                start_time: now,
                stop_requested: false,
                extra_attrs: extra_attrs.clone(),
            };
            let (pk, sk) = keys::execution(id);
            let (epk, esk) = keys::execution_entry(job.kind(), vendor_id, id);
            let mut writes = vec![
                Write::Put { item: to_item(pk, sk, &record, "execution")?, cond: Condition::NotExists },
                Write::Put { item: Item::new(epk, esk), cond: Condition::Always },
                count_write(Counted::Executions(job.kind(), vendor_id), &id.to_string(), 1),
            ];
            if let Some((opk, osk)) = &once {
                // Remembered for 15 days: longer than a queue keeps a message.
                let marker = Item::new(opk, osk).with(keys::attr::EXPIRES_AT, now / 1000 + 15 * 24 * 3600);
                writes.push(Write::Put { item: marker, cond: Condition::NotExists });
            }
            let mut chunks = payloads.chunks(TASKS_PER_TRANSACTION);
            let first = chunks.next().unwrap_or(&[]);
            let (task_writes, messages) = self.task_writes(job, id, first)?;
            match self.commit_with_messages([writes, task_writes].concat(), messages).await {
                Ok(()) => {}
                Err(e) if e.is(ErrorKind::ConditionFailed) => {
                    if let Some((opk, osk)) = &once
                        && self.meta.get(opk, osk).await?.is_some()
                    {
                        return Ok(None);
                    }
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
            for chunk in chunks {
                let (task_writes, messages) = self.task_writes(job, id, chunk)?;
                self.commit_with_messages(task_writes, messages).await?;
            }
            return Ok(Some(id));
        }
        Ok(None)
    }

    /// Adds tasks of `job` to execution `execution`.
    pub async fn add_tasks(
        &self,
        job_kind: &str,
        queue: &str,
        execution: i64,
        payloads: &[Value],
    ) -> ServiceResult<()> {
        for chunk in payloads.chunks(TASKS_PER_TRANSACTION) {
            let mut attempts = 0;
            loop {
                let (writes, messages) = self.task_writes_of(job_kind, queue, execution, chunk)?;
                match self.commit_with_messages(writes, messages).await {
                    Ok(()) => break,
                    // Another process made one of these ids: new ones.
                    Err(e) if e.is(ErrorKind::ConditionFailed) && attempts < 3 => attempts += 1,
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }

    fn task_writes(
        &self,
        job: &dyn Job,
        execution: i64,
        payloads: &[Value],
    ) -> ServiceResult<(Vec<Write>, Vec<Outgoing>)> {
        self.task_writes_of(job.kind(), job.queue(), execution, payloads)
    }

    fn task_writes_of(
        &self,
        kind: &str,
        queue: &str,
        execution: i64,
        payloads: &[Value],
    ) -> ServiceResult<(Vec<Write>, Vec<Outgoing>)> {
        let now = now_ms();
        let mut writes = Vec::new();
        let mut messages = Vec::new();
        for payload in payloads {
            let task = TaskRecord {
                id: new_id(),
                execution_id: execution,
                kind: kind.to_owned(),
                queue: queue.to_owned(),
                payload: payload.clone(),
                status: Status::Pending,
                status_message: String::new(),
                run_count: 0,
                creation_time: now,
                queued_at: now,
                start_time: 0,
                end_time: 0,
                update_time: now,
                version: 0,
                extra_attrs: serde_json::Map::new(),
            };
            writes.push(Write::Put { item: task_item(&task)?, cond: Condition::NotExists });
            writes.push(queue_entry_put(&task));
            let msg = TaskMessage { execution, task: task.id };
            messages.push(Outgoing::new(queue, &msg, &format!("{execution}-{}", task.id), now)?);
        }
        Ok((writes, messages))
    }

    pub async fn execution_record(&self, id: i64) -> ServiceResult<ExecutionRecord> {
        let (pk, sk) = keys::execution(id);
        let item = self
            .meta
            .get(&pk, &sk)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("execution {id} not found")))?;
        from_item(item, "execution")
    }

    /// The tasks of an execution, oldest first.
    pub async fn tasks_of(&self, execution: i64) -> ServiceResult<Vec<TaskRecord>> {
        let items = self.meta.query_all(Query::table(keys::execution_partition(execution), keys::TASK_PREFIX)).await?;
        items.into_iter().map(|i| from_item(i, "task")).collect()
    }

    pub async fn task(&self, execution: i64, task: i64) -> ServiceResult<Option<TaskRecord>> {
        let (pk, sk) = keys::task(execution, task);
        self.meta.get(&pk, &sk).await?.map(|i| from_item(i, "task")).transpose()
    }

    /// An execution with its status.
    pub async fn execution(&self, id: i64) -> ServiceResult<Execution> {
        let record = self.execution_record(id).await?;
        let tasks = self.tasks_of(id).await?;
        Ok(summarize(record, &tasks))
    }

    /// A page of a vendor's executions, newest first.
    pub async fn list_executions(
        &self,
        vendor_type: &str,
        vendor_id: i64,
        req: &PageRequest,
    ) -> ServiceResult<Listing<Execution>> {
        let req = PageRequest { descending: true, ..req.clone() };
        let query = Query::table(keys::executions_of(vendor_type, vendor_id), "");
        let counted = Counted::Executions(vendor_type, vendor_id);
        let (entries, next, total) = self.page_of(query, counted, &req, false, |_| true).await?;
        let mut items = Vec::with_capacity(entries.len());
        for e in entries {
            let Ok(id) = e.sk.parse::<i64>() else { return Err(corrupt("execution entry")) };
            match self.execution(id).await {
                Ok(x) => items.push(x),
                Err(ServiceError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Listing { items, total, next })
    }

    /// Asks an execution to stop: its waiting tasks stop now, running ones
    /// at their next check ([`super::TaskContext::stopped`]) or claim.
    pub async fn stop_execution(&self, id: i64) -> ServiceResult<()> {
        let (pk, sk) = keys::execution(id);
        let attrs = crate::meta::Attrs::from_iter([("stop_requested".to_owned(), true.into())]);
        match self.transact(vec![Write::Set { pk, sk, attrs, cond: Condition::Exists }]).await {
            Err(ServiceError::Backend(e)) if e.is(ErrorKind::ConditionFailed) => {
                return Err(ServiceError::NotFound(format!("execution {id} not found")));
            }
            other => other?,
        }
        for task in self.tasks_of(id).await? {
            // A task that changed meanwhile (a worker claimed it) sees the
            // request at its next check; a backend failure is the caller's.
            if task.status == Status::Pending {
                self.update_task(&task, |t| {
                    t.status = Status::Stopped;
                    t.end_time = now_ms();
                })
                .await?;
            }
        }
        Ok(())
    }

    pub async fn execution_stop_requested(&self, id: i64) -> ServiceResult<bool> {
        Ok(self.execution_record(id).await?.stop_requested)
    }

    /// Whether a task should stop: its execution, or the task alone
    /// ([`Self::stop_task`]), was asked to.
    pub async fn stop_requested(&self, execution: i64, task: i64) -> ServiceResult<bool> {
        let (pk, sk) = keys::task_stop(execution, task);
        let (whole, marker) = tokio::join!(self.execution_stop_requested(execution), self.meta.get(&pk, &sk));
        Ok(whole? || marker?.is_some())
    }

    /// Asks one task to stop (Harbor's "stop running job"): a waiting task
    /// stops now, a running one at its next check; the other tasks of its
    /// execution go on. `false` when there is no such task.
    pub async fn stop_task(&self, execution: i64, task: i64) -> ServiceResult<bool> {
        let Some(t) = self.task(execution, task).await? else { return Ok(false) };
        if t.status.is_final() {
            return Ok(true);
        }
        let (pk, sk) = keys::task_stop(execution, task);
        // Kept as long as a queue may still hold one of its messages.
        let marker = Item::new(pk, sk).with(keys::attr::EXPIRES_AT, now_ms() / 1000 + 15 * 24 * 3600);
        self.meta.put(marker, Condition::Always).await?;
        if t.status == Status::Pending {
            // Claimed meanwhile: the worker sees the marker at its next check.
            self.update_task(&t, |t| {
                t.status = Status::Stopped;
                t.end_time = now_ms();
            })
            .await?;
        }
        Ok(true)
    }

    /// Writes `change` of `task`, on the condition that nobody changed it
    /// since it was read; `Ok(None)` when somebody did.
    pub(crate) async fn update_task(
        &self,
        task: &TaskRecord,
        change: impl FnOnce(&mut TaskRecord),
    ) -> ServiceResult<Option<TaskRecord>> {
        let mut next = task.clone();
        change(&mut next);
        next.version = task.version + 1;
        next.update_time = now_ms();
        let cond = Condition::equals(keys::attr::VERSION, task.version);
        let mut writes = Vec::with_capacity(2);
        // A task is in its job queue while it waits for a worker.
        match (task.status == Status::Pending, next.status == Status::Pending) {
            (true, false) => writes.push(queue_entry_delete(task)),
            (false, true) => {
                next.queued_at = next.update_time;
                writes.push(queue_entry_put(&next));
            }
            _ => {}
        }
        writes.insert(0, Write::Put { item: task_item(&next)?, cond });
        match self.transact(writes).await {
            Ok(()) => Ok(Some(next)),
            Err(ServiceError::Backend(e)) if e.is(ErrorKind::ConditionFailed) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Appends lines to a task's log.
    pub(crate) async fn append_task_log(&self, execution: i64, task: i64, lines: &[String]) -> ServiceResult<()> {
        let at = now_ms();
        let lines: Vec<&String> = lines.iter().take(MAX_LOG_LINES).collect();
        for (chunk_no, chunk) in lines.chunks(25).enumerate() {
            let writes = chunk
                .iter()
                .enumerate()
                .map(|(i, line)| {
                    let seq = u32::try_from(chunk_no * 25 + i).unwrap_or(u32::MAX);
                    let (pk, sk) = keys::task_log(execution, task, at, seq);
                    Write::Put { item: Item::new(pk, sk).with("line", line.as_str()), cond: Condition::Always }
                })
                .collect();
            self.transact(writes).await?;
        }
        Ok(())
    }

    /// A task's log, one line per entry.
    pub async fn task_log(&self, execution: i64, task: i64) -> ServiceResult<String> {
        let query = Query::table(keys::execution_partition(execution), keys::task_log_prefix(task));
        let items = self.meta.query_all(query).await?;
        let mut out = String::new();
        for i in items {
            let at: i64 = i.sk.split('#').nth(2).and_then(|t| t.parse().ok()).unwrap_or(0);
            out.push_str(&rfc3339_ms(at));
            out.push_str(" [INFO] ");
            out.push_str(i.str("line").unwrap_or(""));
            out.push('\n');
        }
        Ok(out)
    }
}

/// The job queue entry of a waiting task.
fn queue_entry_put(t: &TaskRecord) -> Write {
    let (pk, sk) = keys::job_queue_entry(&t.kind, t.queued_at, t.execution_id, t.id);
    Write::Put { item: Item::new(pk, sk), cond: Condition::Always }
}

fn queue_entry_delete(t: &TaskRecord) -> Write {
    let (pk, sk) = keys::job_queue_entry(&t.kind, t.queued_at, t.execution_id, t.id);
    Write::Delete { pk, sk, cond: Condition::Always }
}

fn summarize(record: ExecutionRecord, tasks: &[TaskRecord]) -> Execution {
    let mut counts = BTreeMap::new();
    for t in tasks {
        *counts.entry(t.status).or_insert(0) += 1;
    }
    let status = Status::of_tasks(tasks.iter().map(|t| t.status));
    let status_message =
        tasks.iter().find(|t| t.status == Status::Error).map(|t| t.status_message.clone()).unwrap_or_default();
    let end_time =
        if status.is_final() { tasks.iter().map(|t| t.end_time).max().unwrap_or(record.start_time) } else { 0 };
    Execution { task_count: tasks.len() as u64, record, status, status_message, counts, end_time }
}

impl Registry {
    async fn transact(&self, writes: Vec<Write>) -> ServiceResult<()> {
        self.meta.transact(writes).await.map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    /// A task's follow-ups are made in one go: their ids never collide.
    #[test]
    fn ids_made_at_once_are_distinct_and_rising() {
        let ids: Vec<i64> = (0..5000).map(|_| super::new_id()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
    }
}

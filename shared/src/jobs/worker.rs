//! The consumer of berth's queues, the same on every host: `berth serve`
//! runs one per queue in-process, `berth worker` runs only these, and the
//! worker Lambda function hands each SQS record to [`Worker::handle`].
//!
//! - Events (the `events` queue) go to [`crate::events::router`].
//! - Job tasks are claimed with a conditional write (a message delivered
//!   twice, or to two workers, runs once), run, and recorded: Success;
//!   a failure is retried with exponential backoff until the queue's
//!   attempt limit, then recorded as Error; a task of a stopped execution
//!   is recorded as Stopped without running.
//! - A message the queue dead-lettered (its worker died on every attempt)
//!   is recorded as Error with the last error its task saw
//!   ([`Worker::drain_dead_letters`]).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::pool::Pool;
use super::{JobError, Jobs, Status, TaskContext, TaskMessage};
use crate::events::now_ms;
use crate::queue::{self, Message, Queue};
use crate::service::Registry;
use crate::service::executions::TaskRecord;
use crate::service::jobqueues::job_id;

/// What became of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Done with (or not worth another attempt): delete it.
    Done,
    /// Deliver it again after this long.
    Retry(Duration),
}

/// How long a received message stays hidden from other workers: longer
/// than its work may take.
pub fn visibility(queue_name: &str) -> Duration {
    match queue_name {
        queue::JOBS => Duration::from_secs(180),
        queue::WEBHOOKS => Duration::from_secs(60),
        _ => Duration::from_secs(30),
    }
}

/// The delay before attempt `attempts + 1`: 2, 4, 8 … seconds, at most
/// five minutes, with up to a quarter more at random so that failures of
/// many tasks do not come back together.
pub fn backoff(attempts: u32) -> Duration {
    let base = 2u64.saturating_pow(attempts.clamp(1, 16)).min(300);
    let jitter = rand::random::<u64>() % (base / 4 + 1);
    Duration::from_secs(base + jitter)
}

#[derive(Debug)]
pub struct Worker {
    registry: Registry,
    queue: Arc<dyn Queue>,
    jobs: Jobs,
    /// Deliveries before a message is dead-lettered (the queues' setting).
    max_attempts: u32,
    /// What this process runs, for the dashboard.
    pool: Arc<Pool>,
}

impl Worker {
    /// A worker handling one batch at a time (a Lambda instance's).
    pub fn new(registry: Registry, queue: Arc<dyn Queue>, jobs: Jobs, max_attempts: u32) -> Self {
        let pool = Pool::new(u32::try_from(queue::MAX_BATCH).unwrap_or(10));
        Self { registry, queue, jobs, max_attempts, pool }
    }

    /// This worker, publishing what it runs as `pool`.
    #[must_use]
    pub fn with_pool(self, pool: Arc<Pool>) -> Self {
        Self { pool, ..self }
    }

    pub fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn jobs(&self) -> &Jobs {
        &self.jobs
    }

    /// Handles one delivery of a message from `queue_name`.
    pub async fn handle(&self, queue_name: &str, msg: &Message) -> Handled {
        if queue_name == queue::EVENTS {
            return match crate::events::router::handle(&self.registry, &msg.body).await {
                Ok(()) => Handled::Done,
                Err(e) if e.is_permanent() => {
                    tracing::error!(error = %e, message = %msg.id, "event dropped");
                    Handled::Done
                }
                Err(e) => {
                    tracing::warn!(error = %e, message = %msg.id, attempt = msg.attempts, "event failed; retrying");
                    Handled::Retry(backoff(msg.attempts))
                }
            };
        }
        let Ok(task_msg) = serde_json::from_str::<TaskMessage>(&msg.body) else {
            tracing::error!(message = %msg.id, queue = queue_name, "unreadable task message dropped");
            return Handled::Done;
        };
        match self.run_task(&task_msg, msg.attempts).await {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(error = %e, execution = task_msg.execution, task = task_msg.task, "task bookkeeping failed");
                Handled::Retry(backoff(msg.attempts))
            }
        }
    }

    async fn run_task(&self, m: &TaskMessage, attempts: u32) -> crate::service::ServiceResult<Handled> {
        let reg = &self.registry;
        let Some(task) = reg.task(m.execution, m.task).await? else { return Ok(Handled::Done) };
        if task.status.is_final() {
            return Ok(Handled::Done);
        }
        if task.status == Status::Pending && reg.job_queue_paused(&task.kind).await? {
            // It waits in its job queue; resuming the queue sends it again.
            return Ok(Handled::Done);
        }
        if task.status == Status::Running && task.update_time + visibility(&task.queue).as_millis() as i64 > now_ms() {
            // Another worker holds it (a duplicate delivery): come back
            // once it must have finished.
            return Ok(Handled::Retry(Duration::from_secs(10)));
        }
        if reg.stop_requested(m.execution, m.task).await? {
            reg.update_task(&task, |t| {
                t.status = Status::Stopped;
                t.end_time = now_ms();
            })
            .await?;
            return Ok(Handled::Done);
        }
        let Some(job) = self.jobs.get(&task.kind).cloned() else {
            self.fail(&task, format!("no worker runs jobs of kind {}", task.kind)).await?;
            return Ok(Handled::Done);
        };
        let claimed = reg
            .update_task(&task, |t| {
                t.status = Status::Running;
                t.run_count = attempts.max(t.run_count + 1);
                if t.start_time == 0 {
                    t.start_time = now_ms();
                }
            })
            .await?;
        let Some(task) = claimed else { return Ok(Handled::Retry(Duration::from_secs(10))) };
        let mut ctx = TaskContext::new(reg.clone(), task.execution_id, task.id, task.payload.clone(), task.run_count);
        ctx.last_attempt = task.run_count >= self.max_attempts;
        let running = self.pool.running(job_id(task.execution_id, task.id), job.kind());
        let started = std::time::Instant::now();
        let outcome = job.run(&mut ctx).await;
        drop(running);
        let status = match &outcome {
            Ok(()) => "Success",
            Err(JobError::Retry(_)) if task.run_count < self.max_attempts => "Retry",
            Err(_) => "Error",
        };
        crate::metrics::metrics().task_done(job.kind(), status, started.elapsed());
        reg.append_task_log(task.execution_id, task.id, &ctx.logs).await?;
        let stopped = reg.stop_requested(task.execution_id, task.id).await.unwrap_or(false);
        let extra = std::mem::take(&mut ctx.extra);
        let merge = |t: &mut TaskRecord| t.extra_attrs.extend(extra.clone());
        match outcome {
            Ok(()) => {
                reg.add_tasks(job.kind(), job.queue(), task.execution_id, &ctx.follow_ups).await?;
                self.finish(&task, if stopped { Status::Stopped } else { Status::Success }, String::new(), merge)
                    .await?;
                Ok(Handled::Done)
            }
            Err(_) if stopped => {
                self.finish(&task, Status::Stopped, String::new(), merge).await?;
                Ok(Handled::Done)
            }
            Err(JobError::Retry(e)) if task.run_count < self.max_attempts => {
                // Waiting for the next attempt; the error stays visible.
                reg.update_task(&task, |t| {
                    t.status = Status::Pending;
                    t.status_message = e.clone();
                    merge(t);
                })
                .await?;
                Ok(Handled::Retry(backoff(task.run_count)))
            }
            Err(JobError::Retry(e) | JobError::Fatal(e)) => {
                self.finish(&task, Status::Error, e, merge).await?;
                Ok(Handled::Done)
            }
        }
    }

    async fn finish(
        &self,
        task: &TaskRecord,
        status: Status,
        message: String,
        merge: impl FnOnce(&mut TaskRecord),
    ) -> crate::service::ServiceResult<()> {
        let done = self
            .registry
            .update_task(task, |t| {
                t.status = status;
                t.status_message = message;
                t.end_time = now_ms();
                merge(t);
            })
            .await?;
        if done.is_none() {
            tracing::warn!(
                execution = task.execution_id,
                task = task.id,
                "task changed while it ran; outcome not recorded"
            );
        }
        Ok(())
    }

    async fn fail(&self, task: &TaskRecord, message: String) -> crate::service::ServiceResult<()> {
        self.finish(task, Status::Error, message, |_| {}).await
    }

    /// Records the tasks of messages dead-lettered from `queue_name` as
    /// Error and removes the messages. Returns how many it recorded.
    pub async fn drain_dead_letters(&self, queue_name: &str) -> crate::port::PortResult<usize> {
        let dlq = queue::dead_letter_queue(queue_name);
        let mut n = 0;
        loop {
            let batch = self.queue.receive(&dlq, queue::MAX_BATCH, Duration::from_secs(30), Duration::ZERO).await?;
            if batch.is_empty() {
                return Ok(n);
            }
            for msg in batch {
                if let Ok(m) = serde_json::from_str::<TaskMessage>(&msg.body) {
                    match self.registry.task(m.execution, m.task).await {
                        Ok(Some(task)) if !task.status.is_final() => {
                            let last = if task.status_message.is_empty() {
                                "the worker ended before the task did".to_owned()
                            } else {
                                task.status_message.clone()
                            };
                            let message =
                                format!("given up after {} deliveries; last error: {last}", task.run_count.max(1));
                            if let Err(e) = self.fail(&task, message).await {
                                tracing::warn!(error = %e, "dead-lettered task not recorded");
                                continue;
                            }
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "dead-lettered task not read");
                            continue;
                        }
                    }
                } else {
                    tracing::error!(queue = %dlq, body = %msg.body, "dead-lettered message dropped");
                }
                self.queue.ack(&dlq, &msg.receipt).await?;
                n += 1;
            }
        }
    }

    /// Consumes `queue_name` until `stop`: up to ten messages at a time,
    /// handled concurrently; its dead letters every minute.
    pub async fn run(self: Arc<Self>, queue_name: &'static str, stop: CancellationToken) {
        let mut last_drain = std::time::Instant::now() - Duration::from_secs(3600);
        let vis = visibility(queue_name);
        while !stop.is_cancelled() {
            if queue_name != queue::EVENTS && last_drain.elapsed() >= Duration::from_secs(60) {
                last_drain = std::time::Instant::now();
                if let Err(e) = self.drain_dead_letters(queue_name).await {
                    tracing::warn!(error = %e, queue = queue_name, "dead letters not drained");
                }
            }
            let received = tokio::select! {
                () = stop.cancelled() => break,
                r = self.queue.receive(queue_name, queue::MAX_BATCH, vis, Duration::from_secs(5)) => r,
            };
            let batch = match received {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, queue = queue_name, "receive failed");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    continue;
                }
            };
            let this = &self;
            let handled = batch.iter().map(|msg| async move { (msg, this.handle(queue_name, msg).await) });
            for (msg, outcome) in futures::future::join_all(handled).await {
                let done = match outcome {
                    Handled::Done => self.queue.ack(queue_name, &msg.receipt).await,
                    Handled::Retry(delay) => {
                        match self.queue.retry_later(queue_name, &msg.receipt, delay.min(queue::MAX_DELAY)).await {
                            Err(e) if e.is(crate::port::ErrorKind::NotFound) => Ok(()),
                            other => other,
                        }
                    }
                };
                if let Err(e) = done {
                    tracing::warn!(error = %e, queue = queue_name, "message not settled; it comes back");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::events::{Actor, Event, EventKind, EventMessage};
    use crate::jobs::purge::PurgeAuditJob;
    use crate::jobs::webhook::WebhookJob;
    use crate::service::webhooks::{Delivery, Target};

    fn delivery(url: &str) -> serde_json::Value {
        let target = Target {
            kind: "http".into(),
            address: url.into(),
            auth_header: String::new(),
            skip_cert_verify: false,
            payload_format: "Default".into(),
        };
        let event = Event::artifact(EventKind::PushArtifact, &Actor::system(), "p/app", "sha256:00");
        serde_json::to_value(Delivery { policy_id: 1, project_id: 1, target, event }).unwrap()
    }

    /// The one message a new execution queued (relayed from the outbox).
    async fn only_message(reg: &Registry, queue: &dyn Queue, name: &str) -> Message {
        reg.events().flush().await;
        let mut got = queue.receive(name, 10, Duration::from_secs(60), Duration::ZERO).await.unwrap();
        assert_eq!(got.len(), 1);
        got.remove(0)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_kind_has_one_effect_for_a_message_delivered_twice() {
        let (_dir, reg, queue) = crate::testkit::local_registry_and_queue().await;
        let worker = Arc::new(Worker::new(reg.clone(), queue.clone(), super::super::host::all_jobs(), 3));

        // A webhook delivery: the receiver is called once, whether the
        // repeats come one after the other or at once.
        let (url, hits) = crate::testkit::counting_receiver(200).await;
        let x =
            reg.start_execution(&WebhookJob, 1, "EVENT", serde_json::Map::new(), vec![delivery(&url)]).await.unwrap();
        let msg = only_message(&reg, queue.as_ref(), queue::WEBHOOKS).await;
        let (a, b) = tokio::join!(worker.handle(queue::WEBHOOKS, &msg), worker.handle(queue::WEBHOOKS, &msg));
        let outcomes = [a, b];
        assert!(outcomes.contains(&Handled::Done), "{outcomes:?}");
        assert_eq!(worker.handle(queue::WEBHOOKS, &msg).await, Handled::Done);
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        assert_eq!(reg.execution(x).await.unwrap().status, Status::Success);

        // An audit purge: one run, one log.
        let old = Event::about(EventKind::CreateProject, &Actor::system(), Some("p"), "p");
        reg.record_audit(&old).await.unwrap();
        let params = serde_json::json!({"audit_retention_hour": 0});
        let x = reg.start_execution(&PurgeAuditJob, 0, "MANUAL", serde_json::Map::new(), vec![params]).await.unwrap();
        let msg = only_message(&reg, queue.as_ref(), queue::JOBS).await;
        assert_eq!(worker.handle(queue::JOBS, &msg).await, Handled::Done);
        assert_eq!(worker.handle(queue::JOBS, &msg).await, Handled::Done);
        let task = reg.tasks_of(x).await.unwrap().remove(0);
        assert_eq!((task.status, task.run_count), (Status::Success, 1));
        assert_eq!(reg.task_log(x, task.id).await.unwrap().matches("Purged 1 rows").count(), 1);

        // An event: one audit record.
        let push =
            Event::artifact(EventKind::PushArtifact, &Actor::system(), "p/app", "sha256:00").with_tag(Some("v1"));
        let body = serde_json::to_string(&EventMessage::Event(Box::new(push))).unwrap();
        let msg = Message { id: "m".into(), receipt: "r".into(), body, attempts: 1 };
        assert_eq!(worker.handle(queue::EVENTS, &msg).await, Handled::Done);
        assert_eq!(worker.handle(queue::EVENTS, &msg).await, Handled::Done);
        let req = crate::service::paging::PageRequest::first(10);
        let logs = reg.list_audit(None, &Default::default(), &req).await.unwrap();
        assert_eq!(logs.items.iter().filter(|r| r.resource == "p/app:v1").count(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn failures_retry_then_end_in_error_and_dead_letters_are_recorded() {
        let (_dir, reg, queue) = crate::testkit::local_registry_and_queue().await;
        let worker = Worker::new(reg.clone(), queue.clone(), super::super::host::all_jobs(), 2);
        let (url, hits) = crate::testkit::counting_receiver(503).await;
        let x =
            reg.start_execution(&WebhookJob, 1, "EVENT", serde_json::Map::new(), vec![delivery(&url)]).await.unwrap();
        let msg = only_message(&reg, queue.as_ref(), queue::WEBHOOKS).await;
        let Handled::Retry(delay) = worker.handle(queue::WEBHOOKS, &msg).await else { panic!("no retry") };
        assert!(delay >= Duration::from_secs(2));
        let task = reg.tasks_of(x).await.unwrap().remove(0);
        assert_eq!(task.status, Status::Pending);
        assert!(task.status_message.contains("503"), "{}", task.status_message);
        // The last attempt: recorded as Error.
        let again = Message { attempts: 2, ..msg.clone() };
        assert_eq!(worker.handle(queue::WEBHOOKS, &again).await, Handled::Done);
        let task = reg.tasks_of(x).await.unwrap().remove(0);
        assert_eq!((task.status, task.run_count), (Status::Error, 2));
        assert_eq!(hits.load(Ordering::SeqCst), 2);

        // A message dead-lettered before its worker recorded an outcome.
        let x =
            reg.start_execution(&WebhookJob, 1, "EVENT", serde_json::Map::new(), vec![delivery(&url)]).await.unwrap();
        let msg = only_message(&reg, queue.as_ref(), queue::WEBHOOKS).await;
        assert!(matches!(worker.handle(queue::WEBHOOKS, &msg).await, Handled::Retry(_)));
        let dlq = queue::dead_letter_queue(queue::WEBHOOKS);
        queue.send(&dlq, &msg.body, Duration::ZERO).await.unwrap();
        assert_eq!(worker.drain_dead_letters(queue::WEBHOOKS).await.unwrap(), 1);
        let x = reg.execution(x).await.unwrap();
        assert_eq!(x.status, Status::Error);
        assert!(x.status_message.starts_with("given up after 1 deliveries; last error:"), "{}", x.status_message);
        assert!(x.status_message.contains("503"));

        // A stopped execution's waiting task stops without running.
        let x =
            reg.start_execution(&WebhookJob, 1, "EVENT", serde_json::Map::new(), vec![delivery(&url)]).await.unwrap();
        let msg = only_message(&reg, queue.as_ref(), queue::WEBHOOKS).await;
        reg.stop_execution(x).await.unwrap();
        let before = hits.load(Ordering::SeqCst);
        assert_eq!(worker.handle(queue::WEBHOOKS, &msg).await, Handled::Done);
        assert_eq!(hits.load(Ordering::SeqCst), before);
        assert_eq!(reg.execution(x).await.unwrap().status, Status::Stopped);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn retention_and_gc_tasks_delivered_twice_have_one_effect() {
        use crate::jobs::gc::{GcJob, start_payload};
        use crate::jobs::retention::{RetentionJob, plan_payload};
        use crate::oci::{RepoName, Tag};
        use crate::service::projects::{NewProject, Owner};
        let (_dir, reg, queue) = crate::testkit::local_registry_and_queue().await;
        let worker = Worker::new(reg.clone(), queue.clone(), super::super::host::all_jobs(), 3);
        let owner = Owner { id: 1, name: "admin".into(), sysadmin: true };
        let project =
            reg.create_project(NewProject { name: "p".into(), ..NewProject::default() }, &owner).await.unwrap();
        let repo = RepoName::parse("p/app").unwrap();
        for t in ["v1", "v2", "v3"] {
            crate::testkit::push_small_image(&reg, &repo, &Tag::parse(t).unwrap()).await;
        }

        // Retention keeping none (the one image, tagged thrice): the planning
        // task queues one repository task however often it comes; that one
        // deletes once.
        let policy: crate::service::retention::RetentionPolicy = serde_json::from_value(serde_json::json!({
            "rules": [{"template": "latestPushedK", "params": {"latestPushedK": 0},
                "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": "**"}]},
                "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": "**"}]}],
            "scope": {"level": "project", "ref": project.project_id}}))
        .unwrap();
        let id = reg.create_retention(policy).await.unwrap();
        let x = reg
            .start_execution(&RetentionJob, id, "MANUAL", serde_json::Map::new(), vec![plan_payload(id, false)])
            .await
            .unwrap();
        let plan = only_message(&reg, queue.as_ref(), queue::JOBS).await;
        assert_eq!(worker.handle(queue::JOBS, &plan).await, Handled::Done);
        assert_eq!(worker.handle(queue::JOBS, &plan).await, Handled::Done);
        assert_eq!(reg.tasks_of(x).await.unwrap().len(), 2, "one planning task, one repository task");
        let per_repo = only_message(&reg, queue.as_ref(), queue::JOBS).await;
        assert_eq!(worker.handle(queue::JOBS, &per_repo).await, Handled::Done);
        assert_eq!(worker.handle(queue::JOBS, &per_repo).await, Handled::Done);
        let tasks = reg.tasks_of(x).await.unwrap();
        assert!(tasks.iter().all(|t| t.status == Status::Success && t.run_count == 1), "{tasks:?}");
        let log = reg.task_log(x, tasks[1].id).await.unwrap();
        assert_eq!(log.matches("| DEL").count(), 1, "{log}");
        assert!(reg.retention_candidates(&repo).await.unwrap().is_empty());

        // GC: its plan queues the one mark task once; that task queues the
        // parts after the marking once (16 sweeps, 16 orphan shards,
        // uploads, expired items).
        let params =
            crate::service::gc::GcParams { delete_untagged: false, dry_run: false, workers: 1, window_secs: 0 };
        let x = reg
            .start_execution(&GcJob, 0, "MANUAL", serde_json::Map::new(), vec![start_payload(params)])
            .await
            .unwrap();
        let first = only_message(&reg, queue.as_ref(), queue::JOBS).await;
        assert_eq!(worker.handle(queue::JOBS, &first).await, Handled::Done);
        assert_eq!(worker.handle(queue::JOBS, &first).await, Handled::Done);
        assert_eq!(reg.tasks_of(x).await.unwrap().len(), 2, "the plan and one mark task");
        let mark = only_message(&reg, queue.as_ref(), queue::JOBS).await;
        assert_eq!(worker.handle(queue::JOBS, &mark).await, Handled::Done);
        assert_eq!(worker.handle(queue::JOBS, &mark).await, Handled::Done);
        let tasks = reg.tasks_of(x).await.unwrap();
        assert_eq!(tasks.len(), 2 + 34);
        assert!(tasks[..2].iter().all(|t| t.status == Status::Success && t.run_count == 1), "{tasks:?}");
        // A part delivered twice runs once and queues no second page.
        reg.events().flush().await;
        let parts = queue.receive(queue::JOBS, 10, Duration::from_secs(60), Duration::ZERO).await.unwrap();
        assert!(!parts.is_empty());
        assert_eq!(worker.handle(queue::JOBS, &parts[0]).await, Handled::Done);
        assert_eq!(worker.handle(queue::JOBS, &parts[0]).await, Handled::Done);
        let tasks = reg.tasks_of(x).await.unwrap();
        assert_eq!(tasks.len(), 2 + 34, "one page each: no follow-up");
        let ran: Vec<_> = tasks.iter().filter(|t| t.status == Status::Success).collect();
        assert_eq!(ran.len(), 3, "{tasks:?}");
        assert!(ran.iter().all(|t| t.run_count == 1), "{tasks:?}");
    }
}

//! The replication job (Harbor's `REPLICATION`): the tasks of a
//! replication policy's run ([`crate::service::replication`]).
//!
//! - A planning task reads a page of the source and leaves a copy task per
//!   selected repository, and a planning task for the next page.
//! - A copy task copies its repository's artifacts
//!   ([`crate::service::replication::copy`]) for up to [`TASK_BUDGET`];
//!   what is left, including the rest of a big blob, goes on in a
//!   follow-up task. Copies skip what the destination has, so a task
//!   delivered twice, or run again after a crash, copies nothing twice
//!   (beyond the chunk a crash interrupted).
//! - A deletion task deletes an artifact at the destination.
//!
//! Each copy or deletion task that ends records a `REPLICATION` event.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::json;

use super::{Job, JobError, TaskContext};
use crate::events::{Event, EventKind};
use crate::oci::Digest;
use crate::service::replication::copy::{Copier, Outcome, Side, is_accessory_tag};
use crate::service::replication::plan::{CopyRef, ReplicationTask, remote};
use crate::service::replication::{Direction, REPLICATION, ReplicationPolicy, tag_selected};
use crate::service::{Registry, ServiceError};

/// How long one task copies before it leaves a follow-up.
pub const TASK_BUDGET: Duration = Duration::from_secs(45);
/// Most tags of one repository a pull copies.
const MAX_TAGS: usize = 100_000;

/// The replication job.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReplicationJob;

fn fatal(e: impl std::fmt::Display) -> JobError {
    JobError::Fatal(e.to_string())
}

#[async_trait]
impl Job for ReplicationJob {
    fn kind(&self) -> &'static str {
        REPLICATION
    }

    fn queue(&self) -> &'static str {
        crate::queue::JOBS
    }

    async fn run(&self, ctx: &mut TaskContext) -> Result<(), JobError> {
        let task: ReplicationTask =
            serde_json::from_value(ctx.payload.clone()).map_err(|e| fatal(format!("bad parameters: {e}")))?;
        let (src, dst) = task.resources();
        if !src.is_empty() {
            ctx.set_attr("src_resource", src);
            ctx.set_attr("dst_resource", dst);
        }
        ctx.set_attr("operation", task.operation());
        let policy_id = match &task {
            ReplicationTask::Plan { policy_id, .. }
            | ReplicationTask::Copy { policy_id, .. }
            | ReplicationTask::Delete { policy_id, .. } => *policy_id,
        };
        let policy = match ctx.registry.replication_policy(policy_id).await {
            Ok(p) => p,
            Err(ServiceError::NotFound(_)) => {
                ctx.log(format!("policy {policy_id} is gone: nothing to do"));
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        match task.clone() {
            ReplicationTask::Plan { cursor, .. } => Box::pin(plan(ctx, &policy, cursor)).await,
            ReplicationTask::Copy { src_repo, dest_repo, references, .. } => {
                let (names, _) = task.resources();
                let result = Box::pin(copy(ctx, &policy, &src_repo, &dest_repo, references)).await;
                record(ctx, &policy, (&src_repo, &dest_repo), &names, &result).await;
                result
            }
            ReplicationTask::Delete { dest_repo, digest, .. } => {
                let result = Box::pin(delete(ctx, &policy, &dest_repo, &digest)).await;
                let name = format!("{dest_repo}@{digest}");
                record(ctx, &policy, (&dest_repo, &dest_repo), &name, &result).await;
                result
            }
        }
    }
}

/// The two sides of a policy's copies: (source, destination).
pub async fn sides(reg: &Registry, policy: &ReplicationPolicy) -> Result<(Side, Side), JobError> {
    let endpoint = reg.registry_endpoint(policy.endpoint()?).await?;
    let target = reg.registry_endpoint_target(&endpoint)?;
    let client = Arc::new(target.client().map_err(|e| JobError::from(remote(e)))?);
    let other = Side::Remote { client, registry_type: endpoint.registry_type.clone() };
    let local = Side::Local(reg.clone());
    Ok(match policy.direction()? {
        Direction::Push(_) => (local, other),
        Direction::Pull(_) => (other, local),
    })
}

async fn plan(ctx: &mut TaskContext, policy: &ReplicationPolicy, cursor: Option<String>) -> Result<(), JobError> {
    if !policy.enabled && ctx.registry.execution_record(ctx.execution).await?.trigger != "MANUAL" {
        ctx.log(format!("policy {} is disabled: nothing to do", policy.name));
        return Ok(());
    }
    let tasks = ctx.registry.replication_plan(policy, cursor).await?;
    let copies = tasks.iter().filter(|t| matches!(t, ReplicationTask::Copy { .. })).count();
    ctx.log(format!("{copies} repositories to replicate under policy {}", policy.name));
    for t in &tasks {
        if let ReplicationTask::Copy { src_repo, dest_repo, .. } = t {
            ctx.log(format!("to replicate: {src_repo} → {dest_repo}"));
        }
        ctx.follow_up(t.to_value()?);
    }
    Ok(())
}

async fn copy(
    ctx: &mut TaskContext,
    policy: &ReplicationPolicy,
    src_repo: &str,
    dest_repo: &str,
    references: Option<Vec<CopyRef>>,
) -> Result<(), JobError> {
    let (src, dst) = Box::pin(sides(&ctx.registry, policy)).await?;
    let refs = match references {
        Some(r) => r,
        None => {
            // The other registry's tags, as the filters select them; cosign's
            // tag-scheme accessories travel with their subject.
            let tags = src.tags(src_repo, MAX_TAGS).await?;
            let refs: Vec<CopyRef> = tags
                .into_iter()
                .filter(|t| !is_accessory_tag(t) && tag_selected(&policy.filters, t))
                .map(|t| CopyRef { digest: None, tags: vec![t] })
                .collect();
            ctx.log(format!("{src_repo}: {} tags selected", refs.len()));
            refs
        }
    };
    dst.prepare(dest_repo).await?;
    let deadline = Instant::now() + TASK_BUDGET;
    let mut copier = Copier::new(
        ctx.registry.clone(),
        src,
        dst,
        (ctx.execution, ctx.task),
        policy.override_,
        policy.bytes_per_second(),
        deadline,
    );
    let mut failures = Vec::new();
    let mut retryable = true;
    for (i, r) in refs.iter().enumerate() {
        if ctx.stopped().await {
            ctx.log("stopped");
            flush(ctx, &mut copier);
            return Ok(());
        }
        let outcome = if Instant::now() >= deadline {
            Ok(Outcome::Paused)
        } else {
            Box::pin(copier.copy_ref(src_repo, dest_repo, r)).await
        };
        match outcome {
            Ok(Outcome::Done) => {}
            Ok(Outcome::Paused) => {
                flush(ctx, &mut copier);
                if ctx.stopped().await {
                    ctx.log("stopped");
                    return Ok(());
                }
                let rest = ReplicationTask::Copy {
                    policy_id: policy.id,
                    src_repo: src_repo.to_owned(),
                    dest_repo: dest_repo.to_owned(),
                    references: Some(refs[i..].to_vec()),
                };
                ctx.log(format!("{} artifacts left: going on in a follow-up task", refs.len() - i));
                ctx.follow_up(rest.to_value()?);
                return Ok(());
            }
            Err(e) => {
                let name = r.digest.clone().or_else(|| r.tags.first().cloned()).unwrap_or_default();
                retryable &= e.is_unavailable();
                failures.push(format!("{src_repo}:{name}: {e}"));
            }
        }
    }
    flush(ctx, &mut copier);
    ctx.set_attr("artifacts", refs.len());
    if failures.is_empty() {
        return Ok(());
    }
    for f in &failures {
        ctx.log(format!("failed: {f}"));
    }
    let message = failures.join("; ");
    Err(if retryable { JobError::Retry(message) } else { JobError::Fatal(message) })
}

/// Moves a copier's log and figures into the task's.
fn flush(ctx: &mut TaskContext, copier: &mut Copier) {
    for line in copier.log.drain(..) {
        ctx.log(line);
    }
    ctx.set_attr("bytes", copier.bytes);
    ctx.set_attr("blobs", copier.blobs);
    ctx.set_attr("manifests", copier.manifests);
    ctx.set_attr("chunks", copier.chunks);
}

async fn delete(
    ctx: &mut TaskContext,
    policy: &ReplicationPolicy,
    dest_repo: &str,
    digest: &str,
) -> Result<(), JobError> {
    let digest: Digest = digest.parse().map_err(|_| fatal(format!("bad digest {digest}")))?;
    let (_, dst) = sides(&ctx.registry, policy).await?;
    if dst.delete_manifest(dest_repo, &digest).await? {
        ctx.log(format!("deleted {dest_repo}@{digest}"));
    } else {
        ctx.log(format!("{dest_repo}@{digest} is not at the destination"));
    }
    Ok(())
}

/// Records the `REPLICATION` event of a task that ended (a retry to come
/// records nothing yet), for the project at berth's side, with Harbor's
/// `replication` object of the webhook payload as its detail.
async fn record(
    ctx: &mut TaskContext,
    policy: &ReplicationPolicy,
    (src_repo, dest_repo): (&str, &str),
    name_tag: &str,
    result: &Result<(), JobError>,
) {
    let status = match result {
        Ok(()) => "Success",
        Err(JobError::Retry(_)) if !ctx.last_attempt => return,
        Err(_) => "Failure",
    };
    let reg = &ctx.registry;
    let endpoint = match policy.endpoint() {
        Ok(id) => reg.registry_endpoint(id).await.ok(),
        Err(_) => None,
    };
    let (name, kind, url) = endpoint
        .map(|e| (e.name, e.registry_type, e.url))
        .unwrap_or_else(|| (String::new(), String::new(), String::new()));
    let namespace = |repo: &str| repo.split_once('/').map_or(String::new(), |(p, _)| p.to_owned());
    let local = |repo: &str| json!({"registry_name": "Local", "registry_type": "harbor", "endpoint": "", "namespace": namespace(repo)});
    let other = |repo: &str| json!({"registry_name": name, "registry_type": kind, "endpoint": url, "namespace": namespace(repo)});
    let (src, dest, project) = match policy.direction() {
        Ok(Direction::Pull(_)) => (other(src_repo), local(dest_repo), namespace(dest_repo)),
        _ => (local(src_repo), other(dest_repo), namespace(src_repo)),
    };
    let trigger = match reg.execution_record(ctx.execution).await.map(|x| x.trigger) {
        Ok(t) if t == "SCHEDULE" => "scheduled",
        Ok(t) if t == "EVENT" => "event_based",
        _ => "manual",
    };
    let artifact = json!([{"type": "image", "status": status, "name_tag": name_tag}]);
    let mut replication = json!({
        "harbor_hostname": "", "job_status": status, "artifact_type": "image", "authentication_type": "basic",
        "override_mode": policy.override_, "trigger_type": trigger, "policy_creator": "admin",
        "execution_timestamp": crate::events::now_ms() / 1000, "src_resource": src, "dest_resource": dest,
    });
    replication[if status == "Success" { "successful_artifact" } else { "failed_artifact" }] = artifact;
    let resource = match policy.direction() {
        Ok(Direction::Pull(_)) => dest_repo,
        _ => src_repo,
    };
    let project = (!project.is_empty()).then_some(project);
    let mut event = Event::about(EventKind::Replication, reg.actor(), project.as_deref(), resource)
        .with_detail(replication.to_string());
    event.id = format!("replication-{}-{}-{}", ctx.execution, ctx.task, ctx.attempt);
    if let Err(e) = reg.commit_with_events(Vec::new(), vec![event]).await {
        tracing::warn!(execution = ctx.execution, task = ctx.task, "recording the replication event: {e}");
    }
}

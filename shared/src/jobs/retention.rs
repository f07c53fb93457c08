//! The retention job (Harbor's `RETENTION`): runs a project's retention
//! policy ([`crate::service::retention`]).
//!
//! A run starts with a planning task that walks the project's repositories
//! a page at a time and queues a task for each repository some rule scopes
//! (and another planning task for the next page); each repository task
//! decides what stays, deletes the rest unless it is a dry run, and logs
//! every decision as Harbor's table does. A repository task records
//! `total` and `retained`; a real run raises a `TAG_RETENTION` event per
//! repository with what it deleted.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{Job, JobError, TaskContext};
use crate::events::{Event, EventKind};
use crate::oci::{Digest, Reference, RepoName};
use crate::service::ServiceError;
use crate::service::record::rfc3339_ms;
use crate::service::retention::{RETENTION, Verdict};

/// Repositories a planning task walks.
const PLAN_PAGE: usize = 100;

/// What a retention task is asked to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionTask {
    pub policy_id: i64,
    #[serde(default)]
    pub dry_run: bool,
    /// The repository to process; none for a planning task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// Where a planning task resumes (the last repository it saw).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

/// The payload that starts a run.
pub fn plan_payload(policy_id: i64, dry_run: bool) -> serde_json::Value {
    serde_json::to_value(RetentionTask { policy_id, dry_run, repository: None, after: None })
        .unwrap_or(serde_json::Value::Null)
}

#[derive(Debug, Clone, Copy, Default)]
pub struct RetentionJob;

/// Whether the artifact still has exactly the tags it was decided on.
async fn same_tags(
    reg: &crate::service::Registry,
    repo: &RepoName,
    digest: &Digest,
    decided: &[String],
) -> Result<bool, JobError> {
    let mut now = reg.artifact_tag_names(repo, digest).await?;
    now.sort();
    Ok(now == decided)
}

fn time(ms: i64) -> String {
    if ms > 0 { rfc3339_ms(ms) } else { String::new() }
}

#[async_trait]
impl Job for RetentionJob {
    fn kind(&self) -> &'static str {
        RETENTION
    }

    fn queue(&self) -> &'static str {
        crate::queue::JOBS
    }

    async fn run(&self, ctx: &mut TaskContext) -> Result<(), JobError> {
        let task: RetentionTask =
            serde_json::from_value(ctx.payload.clone()).map_err(|e| JobError::Fatal(format!("bad parameters: {e}")))?;
        let (policy, project) = match ctx.registry.retention(task.policy_id).await {
            Ok(found) => found,
            Err(ServiceError::NotFound(m)) => return Err(JobError::Fatal(m)),
            Err(e) => return Err(e.into()),
        };
        let Some(repository) = task.repository.clone() else {
            // Planning: the next page of the project's repositories.
            let (names, last) = ctx.registry.repository_page(&project, task.after.as_deref(), PLAN_PAGE).await?;
            let mut planned = 0;
            for name in &names {
                let short = name.split_once('/').map_or(name.as_str(), |(_, r)| r);
                if policy.scopes(short) {
                    planned += 1;
                    let t = RetentionTask { repository: Some(name.clone()), after: None, ..task.clone() };
                    ctx.follow_up(serde_json::to_value(t).map_err(|e| JobError::Fatal(e.to_string()))?);
                }
            }
            ctx.log(format!("planned {planned} of {} repositories of {project}", names.len()));
            if names.len() == PLAN_PAGE {
                let next = RetentionTask { after: last, ..task };
                ctx.follow_up(serde_json::to_value(next).map_err(|e| JobError::Fatal(e.to_string()))?);
            }
            return Ok(());
        };
        let repo = RepoName::parse(&repository).map_err(|e| JobError::Fatal(format!("bad repository: {e}")))?;
        let reg = &ctx.registry;
        let all = reg.retention_candidates(&repo).await?;
        let immutable = reg.immutability(repo.project()).await?;
        let verdicts = policy.decide(&repo, &all, &immutable, crate::events::now_ms());
        let mut rows = vec![format!(
            "| {:<71} | {:<20} | {:<5} | {:<6} | {:<24} | {:<24} | {:<9} |",
            "Digest", "Tag", "Kind", "Labels", "PushedTime", "PulledTime", "Retention"
        )];
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        for (c, verdict) in all.iter().zip(&verdicts) {
            let mut mark = verdict.mark();
            if *verdict == Verdict::Delete && !task.dry_run {
                if ctx.stopped().await {
                    ctx.log("stopped: the remaining artifacts were left as they are");
                    break;
                }
                let digest: Result<Digest, _> = c.digest.parse();
                match digest {
                    // Tagged or untagged since the decision: not what was
                    // decided on; the next run decides again.
                    Ok(d) if !same_tags(reg, &repo, &d, &c.tags).await? => mark = "CHANGED",
                    Ok(d) => match reg.delete_manifest(&repo, &Reference::Digest(d)).await {
                        Ok(()) | Err(ServiceError::ManifestUnknown(_)) => deleted.push(c.clone()),
                        Err(ServiceError::Immutable(_)) => mark = Verdict::Immutable.mark(),
                        Err(e) => {
                            mark = "ERR";
                            errors.push(format!("Retention error for artifact {repository}:{}: {e}", c.digest));
                        }
                    },
                    Err(e) => {
                        mark = "ERR";
                        errors.push(format!("Retention error for artifact {repository}:{}: {e}", c.digest));
                    }
                }
            }
            rows.push(format!(
                "| {:<71} | {:<20} | {:<5} | {:<6} | {:<24} | {:<24} | {:<9} |",
                c.digest,
                c.tags.join(","),
                "image",
                "",
                time(c.pushed),
                time(c.pulled),
                mark
            ));
        }
        let retained = verdicts.iter().filter(|v| **v != Verdict::Delete).count();
        ctx.log(format!(
            "{}repository {repository}: {} artifacts, {retained} retained",
            if task.dry_run { "[dry run] " } else { "" },
            all.len()
        ));
        for row in rows {
            ctx.log(row);
        }
        for e in &errors {
            ctx.log(e.clone());
        }
        ctx.set_attr("repository", repository.clone());
        ctx.set_attr("total", all.len());
        ctx.set_attr("retained", retained);
        if !task.dry_run && !deleted.is_empty() {
            let mut event =
                Event::artifact(EventKind::TagRetention, ctx.registry.actor(), &repository, &deleted[0].digest);
            event.detail = Some(format!(
                "retention policy {} deleted {} of {} artifacts: {}",
                task.policy_id,
                deleted.len(),
                all.len(),
                deleted.iter().map(|c| c.digest.as_str()).collect::<Vec<_>>().join(",")
            ));
            ctx.registry.commit_with_events(Vec::new(), vec![event]).await.map_err(ServiceError::from)?;
        }
        if errors.is_empty() { Ok(()) } else { Err(JobError::Retry(errors.join("; "))) }
    }
}

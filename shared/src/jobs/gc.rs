//! The garbage collection job (Harbor's `GARBAGE_COLLECTION`), over
//! [`crate::service::gc`], in tasks that any number of workers share:
//! - `plan` walks the catalog a page at a time ([`PLAN_PAGE`] repositories)
//!   and queues a `mark` task per [`REPOS_PER_TASK`] of them;
//! - `mark` collects its repositories (untagged artifacts, unreferenced
//!   links);
//! - once the plan is complete and every planned page is marked (counted in
//!   the table, once per page however often a task runs), the task that
//!   saw it last queues the parts ([`GcPart`]): the candidate sweep and the
//!   orphan objects per shard, abandoned uploads and expired items, each a
//!   `part` task continuing itself a page at a time.
//!
//! Every task records its part of the tally (`purged_blobs`,
//! `purged_manifests`, `freed_space`, `unlinked`, `upload_objects`,
//! `expired_items`); the history sums them.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{Job, JobError, TaskContext};
use crate::oci::RepoName;
use crate::service::gc::{GcParams, GcPart, GcTally};

pub const GARBAGE_COLLECTION: &str = "GARBAGE_COLLECTION";
/// Repositories one mark task collects.
const REPOS_PER_TASK: usize = 20;
/// Repositories one plan task reads from the catalog.
const PLAN_PAGE: usize = 500;

/// What one task of a collection does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcTask {
    #[serde(flatten)]
    pub params: GcParams,
    /// `plan` (the default), `mark` or `part`.
    #[serde(default)]
    pub step: String,
    /// Where a plan or a part continues.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// The repositories a mark task collects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repos: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<GcPart>,
    /// The shard of a `sweep` task queued by an older berth.
    #[serde(default, skip_serializing)]
    pub shard: Option<u8>,
}

/// The payload that starts a collection.
pub fn start_payload(params: GcParams) -> serde_json::Value {
    serde_json::to_value(GcTask {
        params,
        step: "plan".to_owned(),
        after: None,
        repos: Vec::new(),
        part: None,
        shard: None,
    })
    .unwrap_or(serde_json::Value::Null)
}

#[derive(Debug, Clone, Copy, Default)]
pub struct GcJob;

fn record(ctx: &mut TaskContext, t: &GcTally) {
    ctx.set_attr("purged_blobs", t.purged_blobs);
    ctx.set_attr("purged_manifests", t.purged_manifests);
    ctx.set_attr("freed_space", t.freed_space);
    ctx.set_attr("unlinked", t.unlinked);
    ctx.set_attr("upload_objects", t.upload_objects);
    ctx.set_attr("expired_items", t.expired_items);
}

fn value(t: &GcTask) -> Result<serde_json::Value, JobError> {
    serde_json::to_value(t).map_err(|e| JobError::Fatal(e.to_string()))
}

/// Queues the parts after the marking, unless the run was stopped.
async fn start_parts(ctx: &mut TaskContext, task: &GcTask) -> Result<(), JobError> {
    if ctx.stopped().await {
        return Ok(());
    }
    ctx.log("marking done: sweeping candidates, orphan objects, abandoned uploads and expired items");
    for part in GcPart::after_marking() {
        let t = GcTask { step: "part".to_owned(), after: None, repos: Vec::new(), part: Some(part), ..task.clone() };
        ctx.follow_up(value(&t)?);
    }
    Ok(())
}

impl GcJob {
    async fn plan(&self, ctx: &mut TaskContext, task: GcTask) -> Result<(), JobError> {
        let p = &task.params;
        if task.after.is_none() {
            ctx.log(format!(
                "garbage collection: delete_untagged: {}, dry_run: {}, workers: {}, protection window: {} s",
                p.delete_untagged, p.dry_run, p.workers, p.window_secs
            ));
        }
        let page = ctx.registry.catalog(Some(PLAN_PAGE), task.after.as_deref()).await?;
        let marks: Vec<Vec<String>> = page.names.chunks(REPOS_PER_TASK).map(<[String]>::to_vec).collect();
        let here = task.after.clone().unwrap_or_default();
        let over = ctx.registry.gc_planned(ctx.execution, &here, marks.len() as u64, !page.more).await?;
        ctx.log(format!("planned {} repositories in {} tasks", page.names.len(), marks.len()));
        for repos in marks {
            let t = GcTask { step: "mark".to_owned(), after: None, repos, part: None, ..task.clone() };
            ctx.follow_up(value(&t)?);
        }
        if page.more {
            let t = GcTask { after: page.names.last().cloned(), ..task.clone() };
            ctx.follow_up(value(&t)?);
        }
        if over {
            start_parts(ctx, &task).await?;
        }
        Ok(())
    }

    async fn mark(&self, ctx: &mut TaskContext, task: GcTask) -> Result<(), JobError> {
        let mut tally = GcTally::default();
        let mut logs = Vec::new();
        for name in &task.repos {
            if ctx.stopped().await {
                ctx.log("stopped");
                record(ctx, &tally);
                return Ok(());
            }
            let Ok(repo) = RepoName::parse(name) else { continue };
            let part = ctx.registry.gc_repository(&repo, &task.params, ctx.execution, &mut logs).await?;
            tally = GcTally::sum([&tally, &part]);
        }
        for l in logs {
            ctx.log(l);
        }
        record(ctx, &tally);
        let page = task.repos.first().cloned().unwrap_or_default();
        if ctx.registry.gc_marked(ctx.execution, &page).await? {
            start_parts(ctx, &task).await?;
        }
        Ok(())
    }

    async fn part(&self, ctx: &mut TaskContext, task: GcTask, part: GcPart) -> Result<(), JobError> {
        let mut logs = Vec::new();
        let (tally, next) =
            ctx.registry.gc_part(part, task.after.clone(), &task.params, ctx.execution, &mut logs).await?;
        for l in logs {
            ctx.log(l);
        }
        ctx.log(format!(
            "{part:?}: {} blobs, {} upload objects, {} expired items, {} bytes",
            tally.purged_blobs, tally.upload_objects, tally.expired_items, tally.freed_space
        ));
        record(ctx, &tally);
        if next.is_some() && !ctx.stopped().await {
            ctx.follow_up(value(&GcTask { after: next, ..task })?);
        }
        Ok(())
    }
}

#[async_trait]
impl Job for GcJob {
    fn kind(&self) -> &'static str {
        GARBAGE_COLLECTION
    }

    fn queue(&self) -> &'static str {
        crate::queue::JOBS
    }

    async fn run(&self, ctx: &mut TaskContext) -> Result<(), JobError> {
        let task: GcTask =
            serde_json::from_value(ctx.payload.clone()).map_err(|e| JobError::Fatal(format!("bad parameters: {e}")))?;
        match (task.step.as_str(), task.part) {
            ("mark", _) => self.mark(ctx, task).await,
            ("part", Some(part)) => self.part(ctx, task, part).await,
            ("part", None) => Err(JobError::Fatal("a part task names no part".to_owned())),
            ("sweep", _) => {
                let shard = task.shard.unwrap_or(0);
                self.part(ctx, GcTask { step: "part".to_owned(), ..task }, GcPart::Sweep(shard)).await
            }
            _ => self.plan(ctx, task).await,
        }
    }
}

//! The garbage collection job (Harbor's `GARBAGE_COLLECTION`), over
//! [`crate::service::gc`]: a chain of repository tasks walks the catalog a
//! page at a time ([`REPOS_PER_TASK`] repositories each); the last one
//! queues a sweep task per candidate shard, each continuing itself a page
//! at a time. Every task records its part of the tally (`purged_blobs`,
//! `purged_manifests`, `freed_space`, `unlinked`); the history sums them.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{Job, JobError, TaskContext};
use crate::meta::keys::GC_SHARDS;
use crate::oci::RepoName;
use crate::service::gc::{GcParams, GcTally};

pub const GARBAGE_COLLECTION: &str = "GARBAGE_COLLECTION";
/// Repositories one task collects.
const REPOS_PER_TASK: usize = 20;
/// Candidates one sweep task takes.
const CANDIDATES_PER_TASK: usize = 500;

/// What one task of a collection does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcTask {
    #[serde(flatten)]
    pub params: GcParams,
    /// `repos` (the default) or `sweep`.
    #[serde(default)]
    pub step: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<u8>,
}

/// The payload that starts a collection.
pub fn start_payload(params: GcParams) -> serde_json::Value {
    serde_json::to_value(GcTask { params, step: "repos".to_owned(), after: None, shard: None })
        .unwrap_or(serde_json::Value::Null)
}

#[derive(Debug, Clone, Copy, Default)]
pub struct GcJob;

fn record(ctx: &mut TaskContext, t: &GcTally) {
    ctx.set_attr("purged_blobs", t.purged_blobs);
    ctx.set_attr("purged_manifests", t.purged_manifests);
    ctx.set_attr("freed_space", t.freed_space);
    ctx.set_attr("unlinked", t.unlinked);
}

fn value(t: &GcTask) -> Result<serde_json::Value, JobError> {
    serde_json::to_value(t).map_err(|e| JobError::Fatal(e.to_string()))
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
        let p = task.params.clone();
        let mut logs = Vec::new();
        if task.step == "sweep" {
            let shard = task.shard.unwrap_or(0) % GC_SHARDS;
            let (tally, next) = ctx
                .registry
                .gc_sweep(shard, task.after.clone(), &p, ctx.execution, CANDIDATES_PER_TASK, &mut logs)
                .await?;
            for l in logs {
                ctx.log(l);
            }
            ctx.log(format!("shard {shard}: {} blobs eligible for deletion", tally.purged_blobs));
            record(ctx, &tally);
            if next.is_some() && !ctx.stopped().await {
                ctx.follow_up(value(&GcTask { after: next, ..task })?);
            }
            return Ok(());
        }
        if task.after.is_none() {
            ctx.log(format!(
                "garbage collection: delete_untagged: {}, dry_run: {}, workers: {}, protection window: {} s",
                p.delete_untagged, p.dry_run, p.workers, p.window_secs
            ));
        }
        let page = ctx.registry.catalog(Some(REPOS_PER_TASK), task.after.as_deref()).await?;
        let mut tally = GcTally::default();
        for name in &page.names {
            if ctx.stopped().await {
                ctx.log("stopped");
                record(ctx, &tally);
                return Ok(());
            }
            let Ok(repo) = RepoName::parse(name) else { continue };
            let part = ctx.registry.gc_repository(&repo, &p, ctx.execution, &mut logs).await?;
            tally = GcTally::sum([&tally, &part]);
        }
        for l in logs {
            ctx.log(l);
        }
        record(ctx, &tally);
        if page.more {
            let after = page.names.last().cloned();
            ctx.follow_up(value(&GcTask { after, ..task })?);
        } else {
            for shard in 0..GC_SHARDS {
                let sweep = GcTask { step: "sweep".to_owned(), after: None, shard: Some(shard), ..task.clone() };
                ctx.follow_up(value(&sweep)?);
            }
        }
        Ok(())
    }
}

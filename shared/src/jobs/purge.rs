//! Audit log purge (Harbor's `PURGE_AUDIT_LOG`, `/system/purgeaudit`):
//! deletes the audit records older than `audit_retention_hour` hours, of
//! the event types in `include_event_types` (all when empty), a few
//! thousand a task, continuing through follow-up tasks; `dry_run` only
//! counts them.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{Job, JobError, TaskContext};

pub const PURGE_AUDIT_LOG: &str = "PURGE_AUDIT_LOG";
/// Records deleted per task.
const PER_TASK: usize = 5_000;
/// Records a dry run counts at most.
const DRY_RUN_LIMIT: usize = 1_000_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PurgeParams {
    #[serde(default)]
    pub audit_retention_hour: i64,
    /// Comma-separated event types (`create_artifact,delete_artifact`).
    #[serde(default)]
    pub include_event_types: String,
    #[serde(default)]
    pub dry_run: bool,
    /// The cut-off, fixed when the purge starts (Unix milliseconds).
    #[serde(default)]
    pub before_ms: Option<i64>,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct PurgeAuditJob;

#[async_trait]
impl Job for PurgeAuditJob {
    fn kind(&self) -> &'static str {
        PURGE_AUDIT_LOG
    }

    fn queue(&self) -> &'static str {
        crate::queue::JOBS
    }

    async fn run(&self, ctx: &mut TaskContext) -> Result<(), JobError> {
        let mut p: PurgeParams =
            serde_json::from_value(ctx.payload.clone()).map_err(|e| JobError::Fatal(format!("bad parameters: {e}")))?;
        let before = *p.before_ms.get_or_insert_with(|| {
            crate::events::now_ms().saturating_sub(p.audit_retention_hour.max(0).saturating_mul(3_600_000))
        });
        let types: Vec<String> =
            p.include_event_types.split(',').map(|t| t.trim().to_ascii_lowercase()).filter(|t| !t.is_empty()).collect();
        ctx.log(format!(
            "Purge audit job start: retention {} hours, event types {}, dry run {}",
            p.audit_retention_hour,
            if types.is_empty() { "all".to_owned() } else { types.join(",") },
            p.dry_run
        ));
        if ctx.stopped().await {
            ctx.log("stopped before it began");
            return Ok(());
        }
        let limit = if p.dry_run { DRY_RUN_LIMIT } else { PER_TASK };
        let (n, more) = ctx.registry.purge_audit(before, &types, p.dry_run, limit).await?;
        if p.dry_run {
            ctx.log(format!("Dry run: {n} rows of audit logs would be purged"));
        } else {
            ctx.log(format!("Purged {n} rows of audit logs"));
        }
        ctx.set_attr("purged", n);
        if more && !p.dry_run {
            ctx.log("more remain: continuing in a follow-up task");
            ctx.follow_up(serde_json::to_value(&p).map_err(|e| JobError::Fatal(e.to_string()))?);
        }
        Ok(())
    }
}

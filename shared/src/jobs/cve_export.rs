//! The CVE export job (Harbor's `SCAN_DATA_EXPORT`, see
//! [`crate::service::cve_export`]): a planning task walks the project's
//! repositories a page at a time and leaves a task per repository it
//! covers; a repository task writes the rows of a page of its artifacts as
//! one part and leaves a task for the next page. Each task counts its rows
//! (`rows`), so the export's status text needs no file read. A task run
//! twice writes the same part again.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{Job, JobError, TaskContext};
use crate::oci::RepoName;
use crate::service::Registry;
use crate::service::cve_export::{ExportFilter, SCAN_DATA_EXPORT};

const PAGE: usize = 50;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportTask {
    pub filter: ExportFilter,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct CveExportJob;

fn json(t: &ExportTask) -> Result<serde_json::Value, JobError> {
    serde_json::to_value(t).map_err(|e| JobError::Fatal(e.to_string()))
}

#[async_trait]
impl Job for CveExportJob {
    fn kind(&self) -> &'static str {
        SCAN_DATA_EXPORT
    }

    fn queue(&self) -> &'static str {
        crate::queue::JOBS
    }

    async fn run(&self, ctx: &mut TaskContext) -> Result<(), JobError> {
        let task: ExportTask =
            serde_json::from_value(ctx.payload.clone()).map_err(|e| JobError::Fatal(format!("bad parameters: {e}")))?;
        if ctx.stopped().await {
            return Ok(());
        }
        let reg = ctx.registry.clone();
        let Some(repository) = task.repository.clone() else {
            let (names, last) = reg.repository_page(&task.filter.project, task.after.as_deref(), PAGE).await?;
            let mut planned = 0;
            for name in names.iter().filter(|n| Registry::export_covers(&task.filter, n)) {
                planned += 1;
                ctx.follow_up(json(&ExportTask { repository: Some(name.clone()), after: None, ..task.clone() })?);
            }
            ctx.log(format!("planned {planned} of {} repositories", names.len()));
            if names.len() == PAGE {
                ctx.follow_up(json(&ExportTask { after: last, ..task })?);
            }
            return Ok(());
        };
        let repo = RepoName::parse(&repository).map_err(|e| JobError::Fatal(format!("bad repository: {e}")))?;
        let (rows, count, next) = reg.export_rows(&task.filter, &repo, task.after.clone(), PAGE).await?;
        if count > 0 {
            reg.put_export_part(ctx.execution, ctx.task, rows).await?;
        }
        ctx.set_attr("rows", count);
        ctx.log(format!("{repository}: {count} rows"));
        if let Some(next) = next {
            ctx.follow_up(json(&ExportTask { after: Some(next), ..task })?);
        }
        Ok(())
    }
}

//! The scan-all job (Harbor's `SCAN_ALL`): scans every image of the
//! registry with its project's scanner, manually or on a schedule.
//!
//! A planning task walks the catalog a page at a time and leaves a task
//! per repository (and one for the next page); a repository task walks the
//! repository's artifacts a page at a time and starts a scan of each
//! scannable one ([`crate::service::scans`]), at most once per run and
//! artifact, counting what it started. Each scan records the run, so the
//! run's metrics (`/scans/all/metrics`) count its scans' ends, and a scan
//! whose run was stopped ends Stopped.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::scan::ScanJob;
use super::{Job, JobError, TaskContext};
use crate::oci::RepoName;
use crate::service::ServiceError;
use crate::service::paging::PageRequest;
use crate::service::scans::{SCAN_ALL, VULNERABILITY};

/// Repositories a planning task walks, and artifacts a repository task.
const PAGE: usize = 50;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanAllTask {
    /// The repository to scan; none for a planning task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// Where the walk resumes (a repository name, or an artifact page's
    /// cursor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct ScanAllJob;

fn json(t: &ScanAllTask) -> Result<serde_json::Value, JobError> {
    serde_json::to_value(t).map_err(|e| JobError::Fatal(e.to_string()))
}

#[async_trait]
impl Job for ScanAllJob {
    fn kind(&self) -> &'static str {
        SCAN_ALL
    }

    fn queue(&self) -> &'static str {
        crate::queue::JOBS
    }

    async fn run(&self, ctx: &mut TaskContext) -> Result<(), JobError> {
        let task: ScanAllTask =
            serde_json::from_value(ctx.payload.clone()).map_err(|e| JobError::Fatal(format!("bad parameters: {e}")))?;
        if ctx.stopped().await {
            return Ok(());
        }
        let reg = ctx.registry.clone();
        let Some(repository) = task.repository.clone() else {
            let page = reg.catalog(Some(PAGE), task.after.as_deref()).await?;
            for name in &page.names {
                ctx.follow_up(json(&ScanAllTask { repository: Some(name.clone()), after: None })?);
            }
            ctx.log(format!("planned {} repositories", page.names.len()));
            if page.more {
                ctx.follow_up(json(&ScanAllTask { repository: None, after: page.names.last().cloned() })?);
            }
            return Ok(());
        };
        let repo = RepoName::parse(&repository).map_err(|e| JobError::Fatal(format!("bad repository: {e}")))?;
        let scanner = match reg.project_scanner(repo.project()).await {
            Ok(Some(s)) if s.supports(VULNERABILITY) => s,
            Ok(_) => {
                ctx.log(format!("{repository}: the project has no scanner"));
                return Ok(());
            }
            Err(ServiceError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let req = PageRequest { after: task.after.clone(), ..PageRequest::first(PAGE) };
        let filter = crate::service::artifacts::ArtifactFilter { all: true, ..Default::default() };
        let page = match reg.list_artifacts(&repo, &filter, &req).await {
            Ok(p) => p,
            Err(ServiceError::NotFound(_) | ServiceError::NameUnknown(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let trigger = reg.execution_record(ctx.execution).await?.trigger;
        let (mut started, mut skipped) = (0u64, 0u64);
        for a in &page.items {
            if !crate::service::scans::scannable(a) {
                continue;
            }
            match reg.start_batch_scan(&ScanJob::queued(), &repo, a, &scanner, ctx.execution, &trigger).await {
                Ok(true) => started += 1,
                Ok(false) | Err(ServiceError::Conflict(_)) => skipped += 1,
                Err(e) => return Err(e.into()),
            }
        }
        ctx.log(format!("{repository}: {started} scans started, {skipped} under way already"));
        if let Some(next) = page.next.filter(|n| !n.is_empty() && page.items.len() == PAGE) {
            ctx.follow_up(json(&ScanAllTask { repository: Some(repository), after: Some(next) })?);
        }
        Ok(())
    }
}

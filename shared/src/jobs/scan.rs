//! The scan job (Harbor's `IMAGE_SCAN`): one task makes one artifact's
//! report with the scan's scanner ([`crate::service::scans`]).
//!
//! An index's task records a scan of each child and leaves a follow-up
//! task per child. An image's task hands the artifact to the scanner: the
//! built-in one runs here ([`crate::scanner::builtin`]); an adapter gets a
//! scan request with a pull token for the repository, good for an hour,
//! and is polled for the report, within about a minute per task (a task
//! that runs out of time leaves a follow-up that polls on). The adapter's
//! request id is recorded, so a task run again polls rather than submits
//! again. A scan asked to stop ends Stopped at the next poll.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{Job, JobError, TaskContext};
use crate::auth::token::{self, Access, TokenKeys};
use crate::jobs::Status;
use crate::oci::{Digest, Reference, RepoName};
use crate::scanner::client::{AdapterError, Poll};
use crate::scanner::{ArtifactRef, EnabledCapability, RegistryAccess, ScanRequest, VulnerabilityReport};
use crate::service::scans::{IMAGE_SCAN, Outcome, SBOM, ScanRecord, ScanTask};
use crate::service::{Registry, ServiceError};

/// How long one task polls an adapter before leaving a follow-up.
const POLL_BUDGET: Duration = Duration::from_secs(50);
/// How long a scanner's pull token lasts.
const TOKEN_TTL_SECS: i64 = 3600;

/// What the scan job needs besides the registry: how scanners reach and
/// authenticate to it.
#[derive(Debug)]
pub struct ScanEnv {
    pub keys: TokenKeys,
    /// The token service name (the tokens' audience).
    pub service: String,
    /// The registry as scanners on berth's own network reach it (a
    /// registration's `use_internal_addr`).
    pub internal_url: String,
    /// The registry as everyone else reaches it.
    pub external_url: String,
}

impl ScanEnv {
    pub fn from_context(ctx: &crate::context::AppContext) -> Self {
        let listen = ctx.config.server.listen;
        let host = if listen.ip().is_unspecified() { "127.0.0.1".to_owned() } else { listen.ip().to_string() };
        let host = if listen.is_ipv6() && !listen.ip().is_unspecified() { format!("[{host}]") } else { host };
        let internal_url = format!("http://{host}:{}", listen.port());
        let external_url = ctx.config.server.external_url.clone().unwrap_or_else(|| internal_url.clone());
        Self { keys: ctx.token_keys.clone(), service: ctx.config.auth.service.clone(), internal_url, external_url }
    }
}

/// The scan job. The one that queues scans needs no environment; a worker's
/// has one.
#[derive(Debug, Clone, Default)]
pub struct ScanJob {
    env: Option<Arc<ScanEnv>>,
}

impl ScanJob {
    /// The job as the service queues it.
    pub fn queued() -> Self {
        Self { env: None }
    }

    pub fn with_env(env: ScanEnv) -> Self {
        Self { env: Some(Arc::new(env)) }
    }
}

/// An adapter's SBOM report: the document is its `sbom`, of its
/// `media_type`.
fn sbom_outcome(body: Vec<u8>) -> Result<Outcome, String> {
    let report: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| format!("the adapter's SBOM report is unreadable: {e}"))?;
    let document = report.get("sbom").filter(|d| d.is_object()).ok_or("the adapter's SBOM report has no sbom")?;
    let media_type = report["media_type"].as_str().unwrap_or(crate::scanner::SPDX_MIME).to_owned();
    let scanner = serde_json::from_value(report["scanner"].clone()).ok();
    let document = serde_json::to_vec(document).map_err(|e| e.to_string())?;
    Ok(Outcome::Sbom { body: body.into(), document: document.into(), media_type, scanner })
}

fn fatal(e: impl std::fmt::Display) -> JobError {
    JobError::Fatal(e.to_string())
}

#[async_trait]
impl Job for ScanJob {
    fn kind(&self) -> &'static str {
        IMAGE_SCAN
    }

    fn queue(&self) -> &'static str {
        crate::queue::JOBS
    }

    async fn run(&self, ctx: &mut TaskContext) -> Result<(), JobError> {
        let task: ScanTask =
            serde_json::from_value(ctx.payload.clone()).map_err(|e| fatal(format!("bad parameters: {e}")))?;
        let digest: Digest = task.digest.parse().map_err(fatal)?;
        let repo = RepoName::parse(&task.repository).map_err(fatal)?;
        let reg = ctx.registry.clone();
        let Some(record) = reg.scan_record(&digest, &task.scan_type, &task.registration).await? else {
            // The starter records the scan right after queueing it.
            return Err(JobError::Retry("the scan is not recorded yet".to_owned()));
        };
        if record.report_id != task.report_id || record.status.is_final() {
            ctx.log(format!("report {} was replaced or has ended: nothing to do", task.report_id));
            return Ok(());
        }
        let result = self.scan(ctx, &reg, &repo, &digest, record.clone()).await;
        match result {
            Ok(()) => Ok(()),
            Err(JobError::Retry(e)) if !ctx.last_attempt => Err(JobError::Retry(e)),
            Err(JobError::Retry(e) | JobError::Fatal(e)) => {
                ctx.log(format!("scan failed: {e}"));
                reg.finish_scan(&record, Outcome::Failed(e.clone())).await?;
                Err(JobError::Fatal(e))
            }
        }
    }
}

impl ScanJob {
    async fn scan(
        &self,
        ctx: &mut TaskContext,
        reg: &Registry,
        repo: &RepoName,
        digest: &Digest,
        mut record: ScanRecord,
    ) -> Result<(), JobError> {
        if reg.scan_stop_requested(&record, ctx.task).await? {
            ctx.log("stopped before it began");
            reg.finish_scan(&record, Outcome::Stopped).await?;
            return Ok(());
        }
        let artifact = match reg.artifact(repo, &Reference::Digest(digest.clone())).await {
            Ok(a) => a,
            Err(ServiceError::ManifestUnknown(_) | ServiceError::NotFound(_)) => {
                return Err(fatal(format!("artifact {repo}@{digest} is gone")));
            }
            Err(e) => return Err(e.into()),
        };
        if !artifact.references().is_empty() {
            return self.plan_children(ctx, reg, &artifact, record).await;
        }
        let scanner = match reg.scanner(&record.registration).await {
            Ok(s) => s,
            Err(ServiceError::NotFound(m)) => return Err(fatal(m)),
            Err(e) => return Err(e.into()),
        };
        if record.status == Status::Pending {
            record.status = Status::Running;
            if !reg.update_scan(&record).await? {
                return Ok(());
            }
        }
        ctx.log(format!("scanning {repo}@{digest} with {} ({})", scanner.name, record.scan_type));
        if scanner.is_builtin() {
            let outcome = if record.scan_type == SBOM {
                let (body, document) = crate::scanner::builtin::sbom(reg, repo, &artifact).await.map_err(fatal)?;
                ctx.log(format!("SBOM of {} bytes made", document.len()));
                let media_type = crate::scanner::SPDX_MIME.to_owned();
                Outcome::Sbom { body, document, media_type, scanner: Some(crate::scanner::builtin::info()) }
            } else {
                let (body, report) = crate::scanner::builtin::scan(reg, repo, &artifact).await.map_err(fatal)?;
                ctx.log(format!("{} findings", report.vulnerabilities.len()));
                Outcome::Report { body, report: Box::new(report) }
            };
            reg.finish_scan(&record, outcome).await?;
            return Ok(());
        }
        let env = self.env.as_ref().ok_or_else(|| JobError::Retry("this worker cannot reach scanners".into()))?;
        let endpoint = scanner.endpoint();
        if record.request_id.is_empty() {
            let access = Access {
                kind: "repository".to_owned(),
                name: repo.to_string(),
                actions: vec!["pull".to_owned(), "scanner-pull".to_owned()],
            };
            let subject = format!("scanner:{}", scanner.name);
            let jwt =
                token::issue(&env.keys, &env.service, &subject, vec![access], TOKEN_TTL_SECS, crate::meta::now_unix());
            let url = if scanner.use_internal_addr { &env.internal_url } else { &env.external_url };
            let request = ScanRequest {
                registry: RegistryAccess { url: url.clone(), authorization: format!("Bearer {jwt}") },
                artifact: ArtifactRef {
                    repository: repo.to_string(),
                    digest: digest.to_string(),
                    tag: artifact.tags.first().map(|t| t.name.clone()).unwrap_or_default(),
                    mime_type: artifact.manifest.media_type.clone(),
                },
                enabled_capabilities: vec![EnabledCapability {
                    kind: record.scan_type.clone(),
                    produces_mime_types: vec![record.mime_type.clone()],
                    parameters: (record.scan_type == SBOM)
                        .then(|| serde_json::json!({"sbom_media_types": [crate::scanner::SPDX_MIME]})),
                }],
            };
            record.request_id = match endpoint.scan(&request).await {
                Ok(id) => id,
                Err(AdapterError::Refused(m)) => return Err(fatal(m)),
                Err(e) => return Err(JobError::Retry(e.to_string())),
            };
            ctx.log(format!("submitted to {} as request {}", scanner.url, record.request_id));
            if !reg.update_scan(&record).await? {
                return Ok(());
            }
        }
        let started = Instant::now();
        loop {
            if reg.scan_stop_requested(&record, ctx.task).await? {
                ctx.log("stopped");
                reg.finish_scan(&record, Outcome::Stopped).await?;
                return Ok(());
            }
            let sbom_type = (record.scan_type == SBOM).then_some(crate::scanner::SPDX_MIME);
            match endpoint.report(&record.request_id, &record.mime_type, sbom_type).await {
                Ok(Poll::Ready(body)) if record.scan_type == SBOM => {
                    let outcome = sbom_outcome(body).map_err(fatal)?;
                    ctx.log("SBOM received");
                    reg.finish_scan(&record, outcome).await?;
                    return Ok(());
                }
                Ok(Poll::Ready(body)) => {
                    let report: VulnerabilityReport = serde_json::from_slice(&body)
                        .map_err(|e| fatal(format!("the adapter's report is unreadable: {e}")))?;
                    ctx.log(format!("report received: {} findings", report.vulnerabilities.len()));
                    let outcome = Outcome::Report { body: body.into(), report: Box::new(report) };
                    reg.finish_scan(&record, outcome).await?;
                    return Ok(());
                }
                Ok(Poll::Later(wait)) => {
                    if started.elapsed() + wait > POLL_BUDGET {
                        ctx.log("report not ready yet: polling on in a follow-up task");
                        ctx.follow_up(ctx.payload.clone());
                        return Ok(());
                    }
                    tokio::time::sleep(wait).await;
                }
                Err(AdapterError::UnknownRequest) => {
                    // The adapter forgot it (restarted): submit again.
                    record.request_id.clear();
                    reg.update_scan(&record).await?;
                    return Err(JobError::Retry("the adapter does not know the scan request".to_owned()));
                }
                Err(AdapterError::Refused(m)) => return Err(fatal(m)),
                Err(e) => return Err(JobError::Retry(e.to_string())),
            }
        }
    }

    /// An index: a scan of each child, each in its own task.
    async fn plan_children(
        &self,
        ctx: &mut TaskContext,
        reg: &Registry,
        index: &crate::service::artifacts::ArtifactInfo,
        mut record: ScanRecord,
    ) -> Result<(), JobError> {
        let mut children = Vec::new();
        for child in index.references() {
            let Some(c) = reg.start_child_scan(&record, &child.digest).await? else {
                ctx.log(format!("child {} is being scanned already", child.digest));
                children.push(child.digest.to_string());
                continue;
            };
            children.push(child.digest.to_string());
            let task = ScanTask {
                report_id: c.report_id.clone(),
                repository: record.repository.clone(),
                digest: c.digest.clone(),
                registration: record.registration.clone(),
                scan_type: record.scan_type.clone(),
            };
            if c.status == Status::Pending {
                ctx.follow_up(serde_json::to_value(task).map_err(fatal)?);
            }
        }
        ctx.log(format!("index: scanning its {} children", children.len()));
        record.children = children;
        record.status = Status::Running;
        reg.update_scan(&record).await?;
        Ok(())
    }
}

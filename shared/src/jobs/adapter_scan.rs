//! The adapter-scan job: one task scans one image of another registry for
//! a Pluggable Scanner API request ([`crate::service::adapter_scans`]).
//!
//! It opens the sealed request, reads the image manifest from the
//! requester's registry with the request's credential (checked against
//! the digest asked for), streams the layers through the built-in scanner
//! and stores the report. An index is refused: a requester scans each of
//! its images (Harbor does). Network failures are retried; a bad request,
//! a refused credential or an unreadable image end the task in Error,
//! which the requester reads as the scan's failure.

use async_trait::async_trait;

use super::{Job, JobError, TaskContext};
use crate::auth::seal::Sealer;
use crate::auth::token::TokenKeys;
use crate::oci::{Digest, ManifestKind};
use crate::scanner::ScanRequest;
use crate::scanner::builtin::{self, LayerSource, RemoteImage};
use crate::service::adapter_scans::{ADAPTER_SCAN, AdapterScanTask};

/// The seal context of scan requests.
pub const SEAL_CONTEXT: &str = "adapter-scan-request";

/// The job; a worker's holds the keys that open requests.
#[derive(Debug, Clone, Default)]
pub struct AdapterScanJob {
    keys: Option<TokenKeys>,
}

impl AdapterScanJob {
    /// The job as the API queues it.
    pub fn queued() -> Self {
        Self { keys: None }
    }

    pub fn with_keys(keys: TokenKeys) -> Self {
        Self { keys: Some(keys) }
    }
}

fn fatal(e: impl std::fmt::Display) -> JobError {
    JobError::Fatal(e.to_string())
}

/// Whether a request asks for an SBOM (v1.2's `enabled_capabilities`;
/// v1.1 requests are vulnerability scans).
pub fn scan_type_of(request: &ScanRequest) -> &str {
    request.enabled_capabilities.first().map_or("vulnerability", |c| c.kind.as_str())
}

#[async_trait]
impl Job for AdapterScanJob {
    fn kind(&self) -> &'static str {
        ADAPTER_SCAN
    }

    fn queue(&self) -> &'static str {
        crate::queue::JOBS
    }

    async fn run(&self, ctx: &mut TaskContext) -> Result<(), JobError> {
        let task: AdapterScanTask =
            serde_json::from_value(ctx.payload.clone()).map_err(|e| fatal(format!("bad parameters: {e}")))?;
        let keys = self.keys.as_ref().ok_or_else(|| JobError::Retry("this worker holds no seal key".into()))?;
        let sealer = Sealer::new(keys).map_err(fatal)?;
        let request: ScanRequest = serde_json::from_slice(
            &sealer.open(SEAL_CONTEXT, &task.sealed_request).map_err(|e| fatal(format!("the request: {e}")))?,
        )
        .map_err(|e| fatal(format!("the request: {e}")))?;
        let digest: Digest = request.artifact.digest.parse().map_err(fatal)?;
        let repo = &request.artifact.repository;
        ctx.log(format!("scanning {}/{repo}@{digest} for another registry", request.registry.url));
        let image = RemoteImage::new(&request.registry.url, repo, &request.registry.authorization).map_err(fatal)?;
        let manifest = image
            .manifest(&digest, &request.artifact.mime_type)
            .await
            .map_err(|(retry, e)| if retry { JobError::Retry(e) } else { JobError::Fatal(e) })?;
        if manifest.kind == ManifestKind::Index {
            return Err(fatal("an index: scan each of its images"));
        }
        let source = LayerSource::Remote(image);
        let layers = builtin::layers_of(&manifest);
        let artifact = builtin::artifact_json(repo, &request.artifact.digest, &manifest.media_type);
        let body = if scan_type_of(&request) == "sbom" {
            builtin::sbom_of_layers(&source, layers, artifact).await.map_err(fatal)?.0
        } else {
            let (body, report) = builtin::scan_layers(&ctx.registry, &source, layers, artifact).await.map_err(fatal)?;
            ctx.log(format!("{} findings", report.vulnerabilities.len()));
            body
        };
        ctx.registry.store_adapter_report(ctx.execution, body).await?;
        Ok(())
    }
}

//! berth's own scanner (in progress).
use crate::oci::RepoName;
use crate::scanner::{AdapterMetadata, VulnerabilityReport};
use crate::service::artifacts::ArtifactInfo;
use crate::service::{Registry, ServiceResult};

pub async fn metadata(_reg: &Registry) -> ServiceResult<AdapterMetadata> {
    Ok(AdapterMetadata::default())
}

pub async fn scan(
    _reg: &Registry,
    _repo: &RepoName,
    _artifact: &ArtifactInfo,
    _scan_type: &str,
) -> Result<(bytes::Bytes, VulnerabilityReport), String> {
    Err("in progress".to_owned())
}

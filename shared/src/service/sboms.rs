//! SBOMs as accessories (F9): a document a scanner made for an artifact is
//! stored, as Harbor stores it, as an OCI artifact in the same repository
//! whose `subject` is the artifact (artifact type
//! `application/vnd.goharbor.harbor.sbom.v1`, the document its one
//! layer), so it is listed with its subject, pulled like any artifact,
//! replicated with it and deleted with it. A new SBOM of an artifact
//! replaces the one before.

use bytes::Bytes;

use super::blobs::BlobInfo;
use super::{Registry, ServiceError, ServiceResult};
use crate::oci::{Digest, Reference, RepoName, media};

/// The artifact type of Harbor's SBOM accessories.
pub const SBOM_ARTIFACT_TYPE: &str = "application/vnd.goharbor.harbor.sbom.v1";

impl Registry {
    /// Stores bytes as a blob `repo` may read.
    async fn store_blob(&self, repo: &RepoName, bytes: Bytes) -> ServiceResult<BlobInfo> {
        let info = BlobInfo { digest: Digest::sha256_of(&bytes), size: bytes.len() as u64 };
        self.blobs.put_bytes(&crate::blob::keys::blob(&info.digest), bytes).await?;
        self.link_blob(repo, &info).await?;
        Ok(info)
    }

    /// Attaches `document` (of `media_type`, e.g. `application/spdx+json`)
    /// to `subject` as its SBOM, removing `previous` (the SBOM it
    /// replaces); the new accessory's digest.
    pub async fn attach_sbom(
        &self,
        repo: &RepoName,
        subject: &super::artifacts::ArtifactInfo,
        document: Bytes,
        media_type: &str,
        created: &str,
        previous: Option<&str>,
    ) -> ServiceResult<Digest> {
        let doc = self.store_blob(repo, document).await?;
        let empty = self.store_blob(repo, Bytes::from_static(b"{}")).await?;
        let description = if media_type.contains("spdx") { "SPDX JSON SBOM" } else { "CycloneDX JSON SBOM" };
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_MANIFEST,
            "artifactType": SBOM_ARTIFACT_TYPE,
            "config": {"mediaType": media::OCI_EMPTY, "digest": empty.digest.to_string(), "size": empty.size},
            "layers": [{"mediaType": media_type, "digest": doc.digest.to_string(), "size": doc.size}],
            "subject": {"mediaType": subject.manifest.media_type, "digest": subject.digest.to_string(), "size": subject.size},
            "annotations": {
                "created-by": "berth",
                "org.opencontainers.artifact.created": created,
                "org.opencontainers.artifact.description": description,
            },
        });
        let bytes = Bytes::from(serde_json::to_vec(&manifest).map_err(|e| ServiceError::Invalid(e.to_string()))?);
        let digest = Digest::sha256_of(&bytes);
        self.put_manifest(repo, &Reference::Digest(digest.clone()), Some(media::OCI_MANIFEST), bytes).await?;
        if let Some(old) = previous.and_then(|p| p.parse::<Digest>().ok()).filter(|old| *old != digest) {
            match self.delete_artifact(repo, &Reference::Digest(old)).await {
                Ok(()) | Err(ServiceError::ManifestUnknown(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(digest)
    }
}

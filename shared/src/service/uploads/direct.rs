//! Direct uploads: the berth upload extension's service side.
//!
//! A berth-aware client declares the blob's size; the registry opens an
//! upload session that owns an object-store multipart upload and hands out
//! one presigned `PUT` URL per part, so the bytes go from the client straight
//! to the object store and never through a request-size-limited host (a
//! Lambda). On completion the client lists the parts' ETags with the digest;
//! the registry assembles the object, reads it back and hashes it (the
//! object store keeps no whole-object SHA-256 of a multipart upload), and
//! only a match is moved to its content address and linked. A mismatch
//! deletes everything the session stored: nothing becomes visible.
//!
//! A store without presigned URLs (local files) cannot do this; the start
//! answers `None` and leaves nothing behind.

use std::time::Duration;

use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256, Sha512};

use super::{Session, new_id, save_hash};
use crate::blob::{CompletedPart, MAX_PARTS, MIN_PART_SIZE, keys as blob_keys};
use crate::meta::{Condition, ErrorKind, now_unix};
use crate::oci::{Digest, DigestAlgorithm, RepoName};
use crate::service::blobs::BlobInfo;
use crate::service::{Registry, ServiceError, ServiceResult};

const MIB: u64 = 1024 * 1024;
/// Part size when the client names none: few enough requests for a typical
/// layer, small enough that a retried part costs little.
pub const DEFAULT_PART_SIZE: u64 = 16 * MIB;
/// S3's ceiling for one part.
pub const MAX_PART_SIZE: u64 = 5 * 1024 * MIB;
/// S3's ceiling for one object.
pub const MAX_SIZE: u64 = 5 * 1024 * 1024 * MIB;
/// Parts are made larger than asked rather than more numerous than this, so
/// that one answer listing every part URL stays well under a Lambda's 6 MB
/// response limit.
const MAX_PLANNED_PARTS: u64 = 1000;

/// The shape of a direct upload, kept in its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct DirectSpec {
    size: u64,
    part_size: u64,
}

impl DirectSpec {
    /// Plans `size` bytes in parts of `requested` bytes (default
    /// [`DEFAULT_PART_SIZE`]), enlarged to whole MiB when the blob would
    /// need more than [`MAX_PLANNED_PARTS`].
    fn plan(size: u64, requested: Option<u64>) -> ServiceResult<Self> {
        if size == 0 || size > MAX_SIZE {
            return Err(ServiceError::UploadInvalid(format!(
                "a direct upload takes 1 to {MAX_SIZE} bytes, not {size} (send an empty blob the ordinary way)"
            )));
        }
        let requested = requested.unwrap_or(DEFAULT_PART_SIZE);
        if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&requested) {
            return Err(ServiceError::UploadInvalid(format!(
                "part_size must be {MIN_PART_SIZE}..={MAX_PART_SIZE} bytes, not {requested}"
            )));
        }
        let floor = size.div_ceil(MAX_PLANNED_PARTS).div_ceil(MIB) * MIB;
        let part_size = requested.max(floor).min(MAX_PART_SIZE);
        let spec = Self { size, part_size };
        if u64::from(spec.parts()) > u64::from(MAX_PARTS) {
            return Err(ServiceError::TooLarge(format!("{size} bytes need more than {MAX_PARTS} parts")));
        }
        Ok(spec)
    }

    fn parts(&self) -> u32 {
        u32::try_from(self.size.div_ceil(self.part_size)).unwrap_or(u32::MAX)
    }

    /// Offset and length of part `number` (1-based).
    fn part(&self, number: u32) -> (u64, u64) {
        let offset = u64::from(number.saturating_sub(1)) * self.part_size;
        (offset, self.part_size.min(self.size.saturating_sub(offset)))
    }
}

/// Where one part's bytes go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartUrl {
    pub number: u32,
    /// The part's first byte within the blob, and its length.
    pub offset: u64,
    pub size: u64,
    /// Presigned `PUT` URL; the `ETag` of its answer identifies the part.
    pub url: String,
}

/// A direct upload as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DirectUpload {
    pub id: String,
    pub size: u64,
    pub part_size: u64,
    /// Seconds the part URLs stay valid; fetch the upload again for fresh ones.
    pub expires_in: u64,
    pub parts: Vec<PartUrl>,
}

/// A part the client reports as uploaded.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct UploadedPart {
    pub number: u32,
    pub etag: String,
}

impl Registry {
    /// Opens a direct upload of `size` bytes in `repo` and presigns every
    /// part. `None` when the blob store hands out no URLs (nothing is left
    /// behind then).
    pub async fn start_direct_upload(
        &self,
        repo: &RepoName,
        size: u64,
        part_size: Option<u64>,
        ttl: Duration,
    ) -> ServiceResult<Option<DirectUpload>> {
        self.require_project(repo).await?;
        let spec = DirectSpec::plan(size, part_size)?;
        let id = new_id();
        let data_key = blob_keys::upload_data(&id);
        let multipart = self.blobs.create_multipart(&data_key).await?;
        let opened = async {
            let Some(first) = self.blobs.presign_upload_part(&data_key, &multipart, 1, ttl).await? else {
                return Ok(None);
            };
            let session = Session {
                repo: repo.to_string(),
                offset: 0,
                hash: save_hash(&Sha256::new()),
                multipart: Some(multipart.clone()),
                parts: Vec::new(),
                staging: None,
                staging_len: 0,
                version: 0,
                created_at: now_unix(),
                direct: Some(spec),
            };
            self.save_session(&id, &session, Condition::NotExists).await?;
            self.presign_parts(&id, &multipart, spec, Some(first), ttl).await.map(Some)
        };
        let result: ServiceResult<Option<DirectUpload>> = opened.await;
        if !matches!(result, Ok(Some(_))) {
            let _ = self.blobs.abort_multipart(&data_key, &multipart).await;
        }
        result
    }

    /// A direct upload with freshly presigned part URLs (for a client whose
    /// URLs expired, or that lost them).
    pub async fn direct_upload(&self, repo: &RepoName, id: &str, ttl: Duration) -> ServiceResult<DirectUpload> {
        let s = self.load_session(repo, id).await?;
        let (spec, multipart) = direct_parts(&s)?;
        self.presign_parts(id, &multipart, spec, None, ttl).await
    }

    /// Completes a direct upload: assembles the reported parts, reads the
    /// object back and hashes it, and links the blob only when it has the
    /// declared size and `digest`. A wrong digest or size ends the session
    /// and leaves nothing behind; parts that do not assemble (missing, or an
    /// ETag that is not the part's) leave the session open for a retry.
    pub async fn complete_direct_upload(
        &self,
        repo: &RepoName,
        id: &str,
        digest: &Digest,
        uploaded: &[UploadedPart],
    ) -> ServiceResult<BlobInfo> {
        let mut s = self.load_session(repo, id).await?;
        let (spec, multipart) = direct_parts(&s)?;
        let numbers_ok = uploaded.len() == spec.parts() as usize
            && uploaded.iter().zip(1..).all(|(p, n): (&UploadedPart, u32)| p.number == n);
        if !numbers_ok {
            return Err(ServiceError::UploadInvalid(format!(
                "list every part, 1 to {}, in order, each with the ETag of its upload",
                spec.parts()
            )));
        }
        let parts: Vec<CompletedPart> = uploaded
            .iter()
            .map(|p| CompletedPart { number: p.number, etag: p.etag.clone(), size: spec.part(p.number).1 })
            .collect();
        let data_key = blob_keys::upload_data(id);
        self.assemble(&data_key, &multipart, &parts).await?;
        // Assembled: nothing is left to abort, and the object is the
        // session's to delete.
        s.multipart = None;
        let verified = self.verify_object(&data_key, spec.size, digest).await;
        if let Err(e) = verified {
            self.end_session(id, &s, None).await;
            return Err(e);
        }
        let info = BlobInfo { digest: digest.clone(), size: spec.size };
        let (pk, sk) = crate::meta::keys::blob(digest);
        if self.meta.get(&pk, &sk).await?.is_none() {
            self.blobs.copy(&data_key, &blob_keys::blob(digest)).await?;
        }
        self.link_blob(repo, &info).await?;
        self.end_session(id, &s, None).await;
        Ok(info)
    }

    async fn presign_parts(
        &self,
        id: &str,
        multipart: &str,
        spec: DirectSpec,
        first: Option<url::Url>,
        ttl: Duration,
    ) -> ServiceResult<DirectUpload> {
        let data_key = blob_keys::upload_data(id);
        let mut parts = Vec::with_capacity(spec.parts() as usize);
        let mut first = first;
        for number in 1..=spec.parts() {
            let url = match first.take() {
                Some(url) => url,
                None => self
                    .blobs
                    .presign_upload_part(&data_key, multipart, number, ttl)
                    .await?
                    .ok_or_else(|| internal("the blob store stopped presigning"))?,
            };
            let (offset, size) = spec.part(number);
            parts.push(PartUrl { number, offset, size, url: url.into() });
        }
        Ok(DirectUpload {
            id: id.to_owned(),
            size: spec.size,
            part_size: spec.part_size,
            expires_in: ttl.as_secs(),
            parts,
        })
    }

    /// Checks the assembled object's size, then streams it through the
    /// digest's hash.
    async fn verify_object(&self, key: &str, size: u64, digest: &Digest) -> ServiceResult<()> {
        let found = self.blobs.head(key).await?.size;
        if found != size {
            return Err(ServiceError::UploadInvalid(format!(
                "the parts hold {found} bytes, the upload declared {size}"
            )));
        }
        let mut hasher = Hasher::new(digest.algorithm());
        let mut body = self.blobs.get(key, None).await?.body;
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|e| ServiceError::Backend(crate::port::PortError::new(ErrorKind::Unavailable, e)))?
        {
            hasher.update(&chunk);
        }
        let computed = hasher.finish();
        if computed != digest.hex() {
            return Err(ServiceError::DigestInvalid(format!(
                "the uploaded parts have {}:{computed}, not {digest}",
                digest.algorithm().as_str()
            )));
        }
        Ok(())
    }
}

/// The plan and multipart upload of a direct session; an ordinary session
/// (or one already assembled) is not one.
fn direct_parts(s: &Session) -> ServiceResult<(DirectSpec, String)> {
    match (s.direct, &s.multipart) {
        (Some(spec), Some(multipart)) => Ok((spec, multipart.clone())),
        _ => Err(ServiceError::UploadInvalid("not a direct upload: use the ordinary upload endpoints".to_owned())),
    }
}

fn internal(msg: &str) -> ServiceError {
    ServiceError::Backend(crate::port::PortError::msg(ErrorKind::Internal, msg))
}

enum Hasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl Hasher {
    fn new(algorithm: DigestAlgorithm) -> Self {
        match algorithm {
            DigestAlgorithm::Sha256 => Self::Sha256(Sha256::new()),
            DigestAlgorithm::Sha512 => Self::Sha512(Sha512::new()),
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            Self::Sha256(h) => h.update(bytes),
            Self::Sha512(h) => h.update(bytes),
        }
    }

    fn finish(self) -> String {
        match self {
            Self::Sha256(h) => hex::encode(h.finalize()),
            Self::Sha512(h) => hex::encode(h.finalize()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn plans_parts() {
        let spec = DirectSpec::plan(100 * MIB + 1, None).unwrap();
        assert_eq!((spec.part_size, spec.parts()), (DEFAULT_PART_SIZE, 7));
        assert_eq!(spec.part(1), (0, DEFAULT_PART_SIZE));
        assert_eq!(spec.part(7), (6 * DEFAULT_PART_SIZE, 100 * MIB + 1 - 6 * DEFAULT_PART_SIZE));
        assert_eq!(DirectSpec::plan(3, None).unwrap().parts(), 1);
        // A huge blob gets larger parts rather than more than 1,000.
        let huge = DirectSpec::plan(100 * 1024 * MIB, None).unwrap();
        assert!(huge.parts() <= 1000 && huge.part_size.is_multiple_of(MIB), "{huge:?}");
        let max = DirectSpec::plan(MAX_SIZE, None).unwrap();
        assert_eq!(max.part_size, MAX_PART_SIZE);
        assert!(max.parts() <= MAX_PARTS);
        for (size, part) in
            [(0, None), (MAX_SIZE + 1, None), (10, Some(MIN_PART_SIZE - 1)), (10, Some(MAX_PART_SIZE + 1))]
        {
            assert!(DirectSpec::plan(size, part).is_err(), "{size} {part:?}");
        }
    }
}

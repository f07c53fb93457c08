//! Blob upload sessions: the push path of the distribution API.
//!
//! A session lives in the table (`U#<id>`) and carries everything a later
//! request needs, so any replica or Lambda can take the next chunk:
//! the offset, the running SHA-256 state (serialized, ~104 bytes), the
//! object-store multipart upload and its parts, and the tail of bytes not
//! yet a whole part (a staging object). Bytes stream through in parts of
//! [`PART_SIZE`], so memory stays bounded whatever the blob size.
//!
//! Every change of a session is a conditional write on its `version`: of two
//! racing appends one wins and the other fails, and the winner's parts are
//! pinned by their ETags, so a loser can make the upload fail but never
//! corrupt a blob. The digest is checked before the blob becomes visible.
//!
//! [`direct`] is the other way in: berth-aware clients PUT the parts
//! straight to presigned object-store URLs, and the registry hashes the
//! assembled object before linking it.

pub mod direct;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use sha2::digest::common::hazmat::SerializableState;
use sha2::{Digest as _, Sha256, Sha512};

use crate::blob::{ByteStream, CompletedPart, MIN_PART_SIZE, keys as blob_keys};
use crate::meta::{Condition, ErrorKind, Item, keys, now_unix};
use crate::oci::{Digest, DigestAlgorithm, RepoName};

use super::blobs::BlobInfo;
use super::{Registry, ServiceError, ServiceResult};

/// Bytes per object-store part: above S3's 5 MiB floor, small enough that
/// one in flight per request keeps memory low.
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// The chunk size clients are asked to send at least (`OCI-Chunk-Min-Length`):
/// S3's part floor, so that chunked uploads through a size-limited host
/// (Lambda) still map onto parts.
pub const CHUNK_MIN_LENGTH: u64 = MIN_PART_SIZE;
/// An untouched session expires after this long; its objects are cleaned
/// by garbage collection.
const SESSION_TTL_SECS: i64 = 7 * 24 * 3600;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Session {
    repo: String,
    offset: u64,
    /// Base64 of the serialized running SHA-256 state.
    hash: String,
    multipart: Option<String>,
    parts: Vec<CompletedPart>,
    staging: Option<String>,
    staging_len: u64,
    version: i64,
    created_at: i64,
    /// Set for a direct upload: its bytes come through presigned part URLs,
    /// never through this service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    direct: Option<direct::DirectSpec>,
}

/// Where an upload stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadStatus {
    pub id: String,
    pub offset: u64,
}

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn save_hash(h: &Sha256) -> String {
    B64.encode(h.serialize().as_slice())
}

fn load_hash(s: &str) -> ServiceResult<Sha256> {
    let corrupt =
        || ServiceError::Backend(crate::port::PortError::msg(ErrorKind::Internal, "corrupt upload hash state"));
    let bytes = B64.decode(s).map_err(|_| corrupt())?;
    let state = bytes.as_slice().try_into().map_err(|_| corrupt())?;
    Sha256::deserialize(&state).map_err(|_| corrupt())
}

impl Registry {
    /// Opens an upload session in `repo`.
    pub async fn start_upload(&self, repo: &RepoName) -> ServiceResult<UploadStatus> {
        self.require_project(repo).await?;
        let id = new_id();
        let session = Session {
            repo: repo.to_string(),
            offset: 0,
            hash: save_hash(&Sha256::new()),
            multipart: None,
            parts: Vec::new(),
            staging: None,
            staging_len: 0,
            version: 0,
            created_at: now_unix(),
            direct: None,
        };
        self.save_session(&id, &session, Condition::NotExists).await?;
        Ok(UploadStatus { id, offset: 0 })
    }

    /// Where an upload stands (`UploadUnknown` when it does not exist in
    /// `repo`).
    pub async fn upload_status(&self, repo: &RepoName, id: &str) -> ServiceResult<UploadStatus> {
        let s = self.load_session(repo, id).await?;
        Ok(UploadStatus { id: id.to_owned(), offset: s.offset })
    }

    /// Appends a chunk. `start`, when the client gave a `Content-Range`, must
    /// be the current offset (`RangeInvalid` otherwise).
    pub async fn append_upload(
        &self,
        repo: &RepoName,
        id: &str,
        start: Option<u64>,
        body: ByteStream,
    ) -> ServiceResult<UploadStatus> {
        let mut s = self.load_session(repo, id).await?;
        refuse_direct(&s)?;
        check_start(&s, start)?;
        let before = s.clone();
        let tail = self.write_body(id, &mut s, body).await?;
        if s.offset == before.offset {
            return Ok(UploadStatus { id: id.to_owned(), offset: s.offset });
        }
        self.store_tail(id, &mut s, tail).await?;
        s.version += 1;
        if let Err(e) = self.save_session(id, &s, Condition::equals(keys::attr::VERSION, before.version)).await {
            self.drop_object(s.staging.as_deref()).await;
            return Err(e);
        }
        if before.staging != s.staging {
            self.drop_object(before.staging.as_deref()).await;
        }
        Ok(UploadStatus { id: id.to_owned(), offset: s.offset })
    }

    /// Finishes an upload with the blob's digest (and an optional last
    /// chunk): the digest is verified, the bytes are put at their content
    /// address (once per digest), the repository is linked to them, and the
    /// session ends.
    pub async fn complete_upload(
        &self,
        repo: &RepoName,
        id: &str,
        digest: &Digest,
        start: Option<u64>,
        body: Option<ByteStream>,
    ) -> ServiceResult<BlobInfo> {
        let mut s = self.load_session(repo, id).await?;
        refuse_direct(&s)?;
        check_start(&s, start)?;
        let staged_before = s.staging.clone();
        let tail = match body {
            Some(body) => self.write_body(id, &mut s, body).await?,
            None => self.read_staging(&s).await?,
        };
        let computed = Digest::from_parts(DigestAlgorithm::Sha256, &hex::encode(load_hash(&s.hash)?.finalize()))
            .map_err(|e| ServiceError::DigestInvalid(e.to_string()))?;
        if digest.algorithm() == DigestAlgorithm::Sha256 && &computed != digest {
            self.end_session(id, &s, staged_before.as_deref()).await;
            return Err(ServiceError::DigestInvalid(format!("uploaded content has digest {computed}, not {digest}")));
        }
        let info = BlobInfo { digest: digest.clone(), size: s.offset };
        let blob_key = blob_keys::blob(digest);
        let known = self.meta.get(&keys::blob(digest).0, &keys::blob(digest).1).await?.is_some();
        let stored = match s.multipart.clone() {
            None => {
                if digest.algorithm() != DigestAlgorithm::Sha256 && &digest.of_same_kind(&tail) != digest {
                    self.end_session(id, &s, staged_before.as_deref()).await;
                    return Err(ServiceError::DigestInvalid(format!("uploaded content does not match {digest}")));
                }
                if !known {
                    self.blobs.put_bytes(&blob_key, tail).await?;
                }
                Ok(())
            }
            Some(multipart) => self.finish_multipart(id, &mut s, multipart, tail, digest, known).await,
        };
        if let Err(e) = stored {
            if matches!(e, ServiceError::DigestInvalid(_) | ServiceError::UploadInvalid(_)) {
                self.end_session(id, &s, staged_before.as_deref()).await;
            }
            return Err(e);
        }
        self.link_blob(repo, &info).await?;
        self.end_session(id, &s, staged_before.as_deref()).await;
        Ok(info)
    }

    /// Abandons an upload and frees what it stored.
    pub async fn cancel_upload(&self, repo: &RepoName, id: &str) -> ServiceResult<()> {
        let s = self.load_session(repo, id).await?;
        self.end_session(id, &s, None).await;
        Ok(())
    }

    async fn load_session(&self, repo: &RepoName, id: &str) -> ServiceResult<Session> {
        let (pk, sk) = keys::upload(id);
        let item = self.meta.get(&pk, &sk).await?.ok_or(ServiceError::UploadUnknown)?;
        let session: Session = serde_json::from_value(serde_json::Value::Object(item.attrs)).map_err(|e| {
            ServiceError::Backend(crate::port::PortError::new(ErrorKind::Internal, e).context("corrupt upload session"))
        })?;
        // A session is addressed through its repository only.
        if session.repo != repo.as_str() {
            return Err(ServiceError::UploadUnknown);
        }
        Ok(session)
    }

    async fn save_session(&self, id: &str, s: &Session, cond: Condition) -> ServiceResult<()> {
        let (pk, sk) = keys::upload(id);
        let serde_json::Value::Object(mut attrs) = serde_json::to_value(s)
            .map_err(|e| ServiceError::Backend(crate::port::PortError::new(ErrorKind::Internal, e)))?
        else {
            return Err(ServiceError::Backend(crate::port::PortError::msg(
                ErrorKind::Internal,
                "session not an object",
            )));
        };
        attrs.insert(crate::meta::TTL_ATTR.to_owned(), (now_unix() + SESSION_TTL_SECS).into());
        match self.meta.put(Item { pk, sk, attrs }, cond).await {
            Ok(()) => Ok(()),
            Err(e) if e.is(ErrorKind::ConditionFailed) => {
                Err(ServiceError::UploadInvalid("the upload was changed by a concurrent request".to_owned()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Streams a request body into the session: whole parts go to the
    /// object store as they fill, and the rest comes back as the tail (the
    /// earlier staged bytes included). Updates offset, hash and parts.
    async fn write_body(&self, id: &str, s: &mut Session, mut body: ByteStream) -> ServiceResult<Bytes> {
        let mut hasher = load_hash(&s.hash)?;
        let mut buf = Vec::from(self.read_staging(s).await?);
        let mut received = 0u64;
        let mut parts_sent = 0usize;
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|e| ServiceError::UploadInvalid(format!("reading the request body failed: {e}")))?
        {
            hasher.update(&chunk);
            received += chunk.len() as u64;
            let mut rest = &chunk[..];
            while !rest.is_empty() {
                // A part is one buffer of exactly PART_SIZE: the chunk that
                // crosses the boundary is split rather than making the
                // buffer double. The first part of a request grows as bytes
                // come (a small blob stays small); once a request has
                // filled a part, the next ones are allocated whole.
                let take = rest.len().min(PART_SIZE - buf.len());
                if buf.capacity() - buf.len() < take {
                    let want = if parts_sent > 0 {
                        PART_SIZE
                    } else {
                        (buf.capacity() * 2).max(buf.len() + take).min(PART_SIZE)
                    };
                    buf.reserve_exact(want - buf.len());
                }
                buf.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
                if buf.len() == PART_SIZE {
                    let part = Bytes::from(std::mem::take(&mut buf));
                    self.upload_part(id, s, part).await?;
                    parts_sent += 1;
                }
            }
        }
        s.offset += received;
        s.hash = save_hash(&hasher);
        // The staged bytes are now in `buf` or in a part.
        s.staging_len = 0;
        Ok(Bytes::from(buf))
    }

    async fn read_staging(&self, s: &Session) -> ServiceResult<Bytes> {
        let Some(key) = &s.staging else { return Ok(Bytes::new()) };
        let bytes = self.blobs.get_bytes(key).await?;
        if bytes.len() as u64 != s.staging_len {
            return Err(ServiceError::UploadInvalid("the upload's staged bytes are incomplete".to_owned()));
        }
        Ok(bytes)
    }

    /// Keeps the tail for the next request in a fresh staging object.
    async fn store_tail(&self, id: &str, s: &mut Session, tail: Bytes) -> ServiceResult<()> {
        if tail.is_empty() {
            s.staging = None;
            s.staging_len = 0;
            return Ok(());
        }
        let key = blob_keys::upload_staging(id, s.offset);
        s.staging_len = tail.len() as u64;
        self.blobs.put_bytes(&key, tail).await?;
        s.staging = Some(key);
        Ok(())
    }

    async fn upload_part(&self, id: &str, s: &mut Session, part: Bytes) -> ServiceResult<()> {
        let data_key = blob_keys::upload_data(id);
        let multipart = match &s.multipart {
            Some(m) => m.clone(),
            None => {
                let m = self.blobs.create_multipart(&data_key).await?;
                s.multipart = Some(m.clone());
                m
            }
        };
        let number = u32::try_from(s.parts.len() + 1).unwrap_or(u32::MAX);
        if number > crate::blob::MAX_PARTS {
            return Err(ServiceError::TooLarge("a blob of more than 10,000 parts".to_owned()));
        }
        let done = self.blobs.upload_part(&data_key, &multipart, number, part).await?;
        s.parts.push(done);
        Ok(())
    }

    /// Sends the tail as the last part, assembles the object, verifies a
    /// non-SHA-256 digest by reading it back, and moves it to its content
    /// address unless that exists already.
    async fn finish_multipart(
        &self,
        id: &str,
        s: &mut Session,
        multipart: String,
        tail: Bytes,
        digest: &Digest,
        known: bool,
    ) -> ServiceResult<()> {
        if !tail.is_empty() {
            self.upload_part(id, s, tail).await?;
        }
        let data_key = blob_keys::upload_data(id);
        self.assemble(&data_key, &multipart, &s.parts).await?;
        // The multipart upload is finished; nothing is left to abort.
        s.multipart = None;
        s.parts.clear();
        if digest.algorithm() == DigestAlgorithm::Sha512 {
            let mut h = Sha512::new();
            let mut body = self.blobs.get(&data_key, None).await?.body;
            while let Some(chunk) = body
                .try_next()
                .await
                .map_err(|e| ServiceError::Backend(crate::port::PortError::new(ErrorKind::Unavailable, e)))?
            {
                h.update(&chunk);
            }
            if hex::encode(h.finalize()) != digest.hex() {
                let _ = self.blobs.delete(&data_key).await;
                return Err(ServiceError::DigestInvalid(format!("uploaded content does not match {digest}")));
            }
        }
        if !known {
            self.blobs.copy(&data_key, &blob_keys::blob(digest)).await?;
        }
        let _ = self.blobs.delete(&data_key).await;
        Ok(())
    }

    /// Completes the multipart upload of a session; parts that do not
    /// assemble (too small, missing, a wrong ETag) make the upload invalid
    /// rather than the store broken.
    async fn assemble(&self, data_key: &str, multipart: &str, parts: &[CompletedPart]) -> ServiceResult<()> {
        self.blobs.complete_multipart(data_key, multipart, parts).await.map_err(|e| {
            if e.is(ErrorKind::InvalidInput) || e.is(ErrorKind::NotFound) {
                ServiceError::UploadInvalid(format!("assembling the upload failed: {e}"))
            } else {
                e.into()
            }
        })
    }

    /// Deletes the session and everything it stored (best effort: leftovers
    /// under `uploads/` are cleaned by GC).
    async fn end_session(&self, id: &str, s: &Session, staged_before: Option<&str>) {
        let (pk, sk) = keys::upload(id);
        if let Err(e) = self.meta.delete(&pk, &sk, Condition::Always).await {
            tracing::warn!(upload = id, error = %e, "could not delete an upload session");
        }
        let data_key = blob_keys::upload_data(id);
        if let Some(m) = &s.multipart {
            let _ = self.blobs.abort_multipart(&data_key, m).await;
        }
        self.drop_object(s.staging.as_deref()).await;
        self.drop_object(staged_before).await;
        let _ = self.blobs.delete(&data_key).await;
    }

    async fn drop_object(&self, key: Option<&str>) {
        if let Some(key) = key
            && let Err(e) = self.blobs.delete(key).await
        {
            tracing::warn!(key, error = %e, "could not delete an upload object");
        }
    }
}

/// A direct upload's bytes are in presigned parts only: chunks sent the
/// ordinary way would be hashed into a state nothing assembles.
fn refuse_direct(s: &Session) -> ServiceResult<()> {
    match s.direct {
        Some(_) => Err(ServiceError::UploadInvalid(
            "a direct upload takes its bytes through its presigned part URLs and completes through the berth extension"
                .to_owned(),
        )),
        None => Ok(()),
    }
}

fn check_start(s: &Session, start: Option<u64>) -> ServiceResult<()> {
    match start {
        Some(start) if start != s.offset => Err(ServiceError::RangeInvalid { offset: s.offset }),
        _ => Ok(()),
    }
}

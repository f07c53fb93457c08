//! Blob upload sessions: the push path of the distribution API.
//!
//! A session lives in the table (`U#<id>`) and carries everything a later
//! request needs, so any replica or Lambda can take the next chunk:
//! the offset, the running SHA-256 state (serialized, ~104 bytes), the
//! object-store multipart upload and its parts, and the tail of bytes too
//! few to be a part (a staging object).
//!
//! No request holds a blob in memory: a body is cut into parts of at most
//! [`PART_SIZE`] and each part streams to the object store as its bytes
//! arrive (`BlobStore::upload_part`). A body's length is known only at its
//! end, so the store decides then what a part was: a chunked upload's
//! remainder under S3's 5 MiB floor becomes the staging object that opens
//! the next request's first part, and a blob that fits in one part becomes
//! an object, never a multipart upload. A store that needs a part's length
//! up front (S3) holds one part per request; files hold a chunk.
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
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use sha2::digest::common::hazmat::SerializableState;
use sha2::{Digest as _, Sha256, Sha512};

use crate::blob::{ByteStream, CompletedPart, MIN_PART_SIZE, PartWrite, ShortPart, keys as blob_keys};
use crate::meta::{Condition, ErrorKind, Item, keys, now_unix};
use crate::oci::{Digest, DigestAlgorithm, RepoName};

use super::blobs::BlobInfo;
use super::{Registry, ServiceError, ServiceResult};

/// Bytes per object-store part: above S3's 5 MiB floor, small enough that
/// a store holding one in flight per request (S3) keeps memory low.
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// Chunks queued between a request body and the store's writer (both run
/// in one task, so one is enough).
const PIPE_DEPTH: usize = 1;
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
        if let Err(e) = self.write_body(id, &mut s, body, None).await {
            self.drop_new(id, &before, &s).await;
            return Err(e);
        }
        if s.offset == before.offset {
            return Ok(UploadStatus { id: id.to_owned(), offset: s.offset });
        }
        s.version += 1;
        if let Err(e) = self.save_session(id, &s, Condition::equals(keys::attr::VERSION, before.version)).await {
            self.drop_new(id, &before, &s).await;
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
        // Stored already (and not being garbage collected): the bytes need
        // not be written again.
        let known = self.blob_record(digest).await?.is_some_and(|b| b.deleting == 0);
        let sha256 = digest.algorithm() == DigestAlgorithm::Sha256;
        let blob_key = blob_keys::blob(digest);
        let data_key = blob_keys::upload_data(id);
        // A blob that fits in one part is written as one object: straight to
        // its content address when new and its SHA-256 is checked on the way
        // (a mismatch fails the write, which then leaves nothing), else to
        // the upload's data object.
        let last = Last {
            object_key: if sha256 && !known { blob_key.clone() } else { data_key.clone() },
            digest: sha256.then_some(digest),
        };
        let body = body.unwrap_or_else(|| futures::stream::empty().boxed());
        let written = match self.write_body(id, &mut s, body, Some(&last)).await {
            Ok(written) => written,
            Err(e) => {
                if matches!(e, ServiceError::DigestInvalid(_)) {
                    self.end_session(id, &s, staged_before.as_deref()).await;
                }
                return Err(e);
            }
        };
        let computed = Digest::from_parts(DigestAlgorithm::Sha256, &hex::encode(load_hash(&s.hash)?.finalize()))
            .map_err(|e| ServiceError::DigestInvalid(e.to_string()))?;
        if sha256 && &computed != digest {
            self.end_session(id, &s, staged_before.as_deref()).await;
            return Err(ServiceError::DigestInvalid(format!("uploaded content has digest {computed}, not {digest}")));
        }
        let info = BlobInfo { digest: digest.clone(), size: s.offset };
        let stored = match (written, s.multipart.clone()) {
            (Written::Object, _) if last.object_key == blob_key => Ok(()),
            (Written::Object, _) => self.publish_data(&data_key, digest, known).await,
            (Written::Parts, Some(multipart)) => self.finish_multipart(id, &mut s, multipart, digest, known).await,
            (Written::Parts, None) => Err(ServiceError::Backend(crate::port::PortError::msg(
                ErrorKind::Internal,
                "an upload with parts has no multipart upload",
            ))),
        };
        if let Err(e) = stored {
            if matches!(e, ServiceError::DigestInvalid(_) | ServiceError::UploadInvalid(_)) {
                self.end_session(id, &s, staged_before.as_deref()).await;
            }
            return Err(e);
        }
        if let Err(e) = self.link_blob(repo, &info).await {
            // Over quota: the upload is over (its bytes wait for GC).
            if matches!(e, ServiceError::QuotaExceeded(_)) {
                self.end_session(id, &s, staged_before.as_deref()).await;
            }
            return Err(e);
        }
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

    /// Streams a request body into the session, part by part, and updates
    /// offset, hash, parts and staging. The staged bytes of an earlier
    /// request open the first part. A part ends at [`PART_SIZE`] or with the
    /// body; what it becomes is decided at its end: a chunk's remainder
    /// under S3's floor becomes the new staging object, and in the last
    /// request of an upload without parts the whole blob becomes
    /// `last.object_key`.
    async fn write_body(
        &self,
        id: &str,
        s: &mut Session,
        body: ByteStream,
        last: Option<&Last<'_>>,
    ) -> ServiceResult<Written> {
        let data_key = blob_keys::upload_data(id);
        let mut reader = BodyReader { body, carry: None, hasher: load_hash(&s.hash)?, received: 0, ended: false };
        let mut staged = match &s.staging {
            Some(key) => Some(self.staged_bytes(key, s.staging_len).await?),
            None => None,
        };
        let mut part_start = s.offset.saturating_sub(s.staging_len);
        let mut written = Written::Parts;
        loop {
            let (prefix, prefix_len) = staged.take().unwrap_or_else(|| (futures::stream::empty().boxed(), 0));
            let room = PART_SIZE.saturating_sub(usize::try_from(prefix_len).unwrap_or(PART_SIZE));
            let head = reader.next_chunk(room).await?;
            // A part opens for new bytes; the last request also writes out
            // the staged bytes, or the one (empty) object of an empty blob.
            let empty_blob = s.parts.is_empty() && s.offset == 0;
            if head.is_none() && (last.is_none() || (prefix_len == 0 && !empty_blob)) {
                break;
            }
            let staging_key = blob_keys::upload_staging(id, part_start);
            let short = match last {
                None => Some(ShortPart { min_len: MIN_PART_SIZE, key: &staging_key }),
                Some(last) if s.parts.is_empty() => {
                    Some(ShortPart { min_len: PART_SIZE as u64, key: &last.object_key })
                }
                Some(_) => None,
            };
            let number = u32::try_from(s.parts.len() + 1).unwrap_or(u32::MAX);
            if number > crate::blob::MAX_PARTS {
                return Err(ServiceError::TooLarge("a blob of more than 10,000 parts".to_owned()));
            }
            let head_len = head.as_ref().map_or(0, Bytes::len);
            let (tx, rx) = futures::channel::mpsc::channel(PIPE_DEPTH);
            let part = prefix.chain(futures::stream::iter(head.map(Ok))).chain(rx).boxed();
            let store = self.blobs.upload_part(&data_key, s.multipart.as_deref(), number, part, short);
            let received_before = reader.received;
            let feed = reader.feed(tx, room - head_len, last.and_then(|l| l.digest));
            let (fed, stored) = futures::join!(feed, store);
            // A body or digest error comes first: the store saw it as the
            // end of its stream and kept nothing.
            fed?;
            let stored = stored?;
            // The staged bytes are in this part or object now.
            s.staging = None;
            s.staging_len = 0;
            part_start += prefix_len + (reader.received - received_before);
            match stored {
                PartWrite::Part { upload_id, part } => {
                    s.multipart = Some(upload_id);
                    s.parts.push(part);
                }
                PartWrite::Object { .. } if last.is_some() => {
                    written = Written::Object;
                    break;
                }
                PartWrite::Object { size } => {
                    s.staging = Some(staging_key);
                    s.staging_len = size;
                    break;
                }
            }
            if reader.ended {
                break;
            }
        }
        s.offset += reader.received;
        s.hash = save_hash(&reader.hasher);
        crate::metrics::metrics().upload_bytes.inc_by(reader.received);
        Ok(written)
    }

    /// The staged bytes of an earlier request, as a stream, with their
    /// length.
    async fn staged_bytes(&self, key: &str, len: u64) -> ServiceResult<(ByteStream, u64)> {
        let read = self.blobs.get(key, None).await?;
        if read.len != len {
            return Err(ServiceError::UploadInvalid("the upload's staged bytes are incomplete".to_owned()));
        }
        Ok((read.body, len))
    }

    /// Frees what a failed or lost append stored beyond its session: a new
    /// staging object, and a multipart upload it started.
    async fn drop_new(&self, id: &str, before: &Session, s: &Session) {
        if s.staging != before.staging {
            self.drop_object(s.staging.as_deref()).await;
        }
        if let Some(m) = s.multipart.as_deref().filter(|m| before.multipart.as_deref() != Some(*m))
            && let Err(e) = self.blobs.abort_multipart(&blob_keys::upload_data(id), m).await
        {
            tracing::warn!(upload = id, error = %e, "could not abort an upload's multipart upload");
        }
    }

    /// Assembles the parts into the upload's data object and publishes it.
    async fn finish_multipart(
        &self,
        id: &str,
        s: &mut Session,
        multipart: String,
        digest: &Digest,
        known: bool,
    ) -> ServiceResult<()> {
        let data_key = blob_keys::upload_data(id);
        self.assemble(&data_key, &multipart, &s.parts).await?;
        // The multipart upload is finished; nothing is left to abort.
        s.multipart = None;
        s.parts.clear();
        self.publish_data(&data_key, digest, known).await
    }

    /// Moves the upload's data object, the whole blob, to its content
    /// address unless that exists already, after verifying a digest that is
    /// not the running SHA-256 by reading the bytes back.
    async fn publish_data(&self, data_key: &str, digest: &Digest, known: bool) -> ServiceResult<()> {
        if digest.algorithm() == DigestAlgorithm::Sha512 {
            let mut h = Sha512::new();
            let mut body = self.blobs.get(data_key, None).await?.body;
            while let Some(chunk) = body
                .try_next()
                .await
                .map_err(|e| ServiceError::Backend(crate::port::PortError::new(ErrorKind::Unavailable, e)))?
            {
                h.update(&chunk);
            }
            if hex::encode(h.finalize()) != digest.hex() {
                let _ = self.blobs.delete(data_key).await;
                return Err(ServiceError::DigestInvalid(format!("uploaded content does not match {digest}")));
            }
        }
        if !known {
            self.blobs.copy(data_key, &blob_keys::blob(digest)).await?;
        }
        let _ = self.blobs.delete(data_key).await;
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

/// How the last request of an upload ends its body.
struct Last<'a> {
    /// Where a blob that fits in one part is written.
    object_key: String,
    /// Checked at the end of the body, before the store keeps its last
    /// bytes (SHA-256 digests only: the running hash is SHA-256).
    digest: Option<&'a Digest>,
}

/// What the last request's body left behind.
enum Written {
    /// The whole blob as one object (`Last::object_key`).
    Object,
    /// Parts of the session's multipart upload.
    Parts,
}

/// A request body read chunk by chunk, hashed and counted as it goes.
struct BodyReader {
    body: ByteStream,
    /// Bytes read but not yet handed out (a chunk split at a part's end).
    carry: Option<Bytes>,
    hasher: Sha256,
    received: u64,
    ended: bool,
}

impl BodyReader {
    /// The next non-empty piece of at most `max` bytes, `None` at the end.
    async fn next_chunk(&mut self, max: usize) -> ServiceResult<Option<Bytes>> {
        if max == 0 {
            return Ok(None);
        }
        let mut chunk = match self.carry.take() {
            Some(chunk) => chunk,
            None if self.ended => return Ok(None),
            None => loop {
                let next = self
                    .body
                    .try_next()
                    .await
                    .map_err(|e| ServiceError::UploadInvalid(format!("reading the request body failed: {e}")))?;
                match next {
                    Some(chunk) if chunk.is_empty() => {}
                    Some(chunk) => break chunk,
                    None => {
                        self.ended = true;
                        return Ok(None);
                    }
                }
            },
        };
        if chunk.len() > max {
            self.carry = Some(chunk.split_off(max));
        }
        self.hasher.update(&chunk);
        self.received += chunk.len() as u64;
        Ok(Some(chunk))
    }

    /// Sends up to `room` bytes into a part's stream. At the end of the
    /// body the SHA-256 is checked against `verify`; a mismatch, like a
    /// failed read, is sent as an error, so the store keeps nothing. A
    /// store that stops reading (it failed) ends the feeding quietly: its
    /// own error tells why.
    async fn feed(
        &mut self,
        mut tx: futures::channel::mpsc::Sender<std::io::Result<Bytes>>,
        mut room: usize,
        verify: Option<&Digest>,
    ) -> ServiceResult<()> {
        use futures::SinkExt;
        let failed = loop {
            match self.next_chunk(room).await {
                Ok(Some(chunk)) => {
                    room -= chunk.len();
                    if tx.send(Ok(chunk)).await.is_err() {
                        return Ok(());
                    }
                }
                Ok(None) => break None,
                Err(e) => break Some(e),
            }
        };
        let failed = failed.or_else(|| {
            let expected = verify.filter(|_| self.ended)?;
            let computed = hex::encode(self.hasher.clone().finalize());
            (computed != expected.hex()).then(|| {
                ServiceError::DigestInvalid(format!("uploaded content has digest sha256:{computed}, not {expected}"))
            })
        });
        match failed {
            Some(e) => {
                let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                Err(e)
            }
            None => Ok(()),
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::service::projects::{NewProject, Owner};
    use crate::testkit::{MEMORY_MEASUREMENT, local_registry, reset_peak_rss, rss_bytes};

    const MIB: usize = 1024 * 1024;

    async fn setup() -> (tempfile::TempDir, Registry, RepoName) {
        let (dir, reg) = local_registry().await;
        let owner = Owner { id: 1, name: "admin".into(), sysadmin: true };
        reg.create_project(NewProject { name: "up".into(), ..NewProject::default() }, &owner).await.unwrap();
        (dir, reg, RepoName::parse("up/blobs").unwrap())
    }

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        pattern_at(0, len, seed)
    }

    /// Bytes `start..start + len` of the endless pattern of `seed`.
    fn pattern_at(start: usize, len: usize, seed: u8) -> Vec<u8> {
        (start..start + len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed ^ (i >> 16) as u8)).collect()
    }

    /// `bytes` as a request body arriving in chunks of `chunk` bytes.
    fn body(bytes: &[u8], chunk: usize) -> ByteStream {
        let chunks: Vec<std::io::Result<Bytes>> = bytes.chunks(chunk).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        futures::stream::iter(chunks).boxed()
    }

    /// What an upload left behind besides blobs: staging and data objects,
    /// and unfinished multipart uploads of the file store.
    async fn leftovers(dir: &tempfile::TempDir, reg: &Registry) -> Vec<String> {
        let mut out: Vec<String> = reg
            .blobs
            .list(blob_keys::UPLOADS_PREFIX, None, 100)
            .await
            .unwrap()
            .objects
            .into_iter()
            .map(|o| o.key)
            .collect();
        for entry in std::fs::read_dir(dir.path().join("blobs/#multipart")).unwrap() {
            out.push(format!("multipart {:?}", entry.unwrap().file_name()));
        }
        out
    }

    #[derive(Debug, Clone, Copy)]
    enum Way {
        /// The whole blob in the completing PUT (or `POST ?digest=`).
        Monolithic,
        /// One PATCH with the whole blob, then an empty PUT (docker).
        OnePatch,
        /// PATCHes of this many bytes, the last chunk in the PUT.
        Chunks(usize),
    }

    async fn push(reg: &Registry, repo: &RepoName, blob: &[u8], digest: &Digest, way: Way) -> ServiceResult<BlobInfo> {
        let up = reg.start_upload(repo).await?;
        let last = match way {
            Way::Monolithic => blob,
            Way::OnePatch => {
                reg.append_upload(repo, &up.id, Some(0), body(blob, 64 * 1024)).await?;
                &[]
            }
            Way::Chunks(size) => {
                let mut chunks: Vec<&[u8]> = blob.chunks(size).collect();
                let last = chunks.pop().unwrap_or(&[]);
                let mut offset = 0;
                for c in chunks {
                    let status = reg.append_upload(repo, &up.id, Some(offset), body(c, 100_000)).await?;
                    offset += c.len() as u64;
                    assert_eq!(status.offset, offset);
                }
                last
            }
        };
        let start = reg.upload_status(repo, &up.id).await?.offset;
        reg.complete_upload(repo, &up.id, digest, Some(start), Some(body(last, 64 * 1024))).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn blobs_of_every_size_arrive_exact_whichever_way_they_come() {
        let (dir, reg, repo) = setup().await;
        let sizes = [0, 1000, MIN_PART_SIZE as usize - 1, PART_SIZE, PART_SIZE + 1, 2 * PART_SIZE + 5];
        let ways = [Way::Monolithic, Way::OnePatch, Way::Chunks(3 * MIB), Way::Chunks(6 * MIB)];
        for (i, size) in sizes.into_iter().enumerate() {
            for (j, way) in ways.into_iter().enumerate() {
                let blob = pattern(size, u8::try_from(i * 8 + j).unwrap());
                let digest = Digest::sha256_of(&blob);
                let info = push(&reg, &repo, &blob, &digest, way).await.unwrap();
                assert_eq!(info.size, size as u64, "{size} bytes, {way:?}");
                let stored = reg.blobs.get_bytes(&blob_keys::blob(&digest)).await.unwrap();
                assert!(stored == blob, "{size} bytes, {way:?}: the stored blob differs");
                assert_eq!(leftovers(&dir, &reg).await, Vec::<String>::new(), "{size} bytes, {way:?}");
            }
        }
        // A blob pushed again (already stored) is checked and leaves nothing.
        let blob = pattern(PART_SIZE + 1, 0);
        let digest = Digest::sha256_of(&blob);
        for way in ways {
            push(&reg, &repo, &blob, &digest, way).await.unwrap();
            assert_eq!(leftovers(&dir, &reg).await, Vec::<String>::new(), "again, {way:?}");
        }
    }

    #[tokio::test]
    async fn a_wrong_digest_stores_nothing_and_ends_the_upload() {
        let (dir, reg, repo) = setup().await;
        for (size, way) in [(1000, Way::Monolithic), (PART_SIZE + 7, Way::Monolithic), (3 * MIB, Way::Chunks(MIB))] {
            let blob = pattern(size, 3);
            let claimed = Digest::sha256_of(b"something else");
            let err = push(&reg, &repo, &blob, &claimed, way).await.unwrap_err();
            assert!(matches!(err, ServiceError::DigestInvalid(_)), "{size}: {err:?}");
            let missing = reg.blobs.head(&blob_keys::blob(&claimed)).await.unwrap_err();
            assert_eq!(missing.kind(), ErrorKind::NotFound, "{size}: nothing at the claimed address");
            assert_eq!(leftovers(&dir, &reg).await, Vec::<String>::new(), "{size}");
        }
    }

    #[tokio::test]
    async fn sha512_digests_are_checked_too() {
        let (dir, reg, repo) = setup().await;
        for size in [1000, PART_SIZE + 1] {
            let blob = pattern(size, 5);
            let digest = Digest::sha512_of(&blob);
            push(&reg, &repo, &blob, &digest, Way::Monolithic).await.unwrap();
            assert!(reg.blobs.get_bytes(&blob_keys::blob(&digest)).await.unwrap() == blob);
            let wrong = Digest::sha512_of(b"other");
            let err = push(&reg, &repo, &blob, &wrong, Way::OnePatch).await.unwrap_err();
            assert!(matches!(err, ServiceError::DigestInvalid(_)), "{err:?}");
            assert_eq!(reg.blobs.head(&blob_keys::blob(&wrong)).await.unwrap_err().kind(), ErrorKind::NotFound);
            assert_eq!(leftovers(&dir, &reg).await, Vec::<String>::new());
        }
    }

    /// A chunk whose body fails half-way counts for nothing: the upload
    /// stands where it stood and resumes from there.
    #[tokio::test]
    async fn a_broken_chunk_changes_nothing() {
        let (dir, reg, repo) = setup().await;
        let blob = pattern(20 * MIB + 17, 9);
        let first = 3 * MIB + 1;
        let up = reg.start_upload(&repo).await.unwrap();
        reg.append_upload(&repo, &up.id, Some(0), body(&blob[..first], MIB)).await.unwrap();
        let broken = body(&blob[first..first + 9 * MIB], MIB)
            .chain(futures::stream::once(async { Err(std::io::Error::other("client went away")) }))
            .boxed();
        let err = reg.append_upload(&repo, &up.id, Some(first as u64), broken).await.unwrap_err();
        assert!(matches!(err, ServiceError::UploadInvalid(_)), "{err:?}");
        assert_eq!(reg.upload_status(&repo, &up.id).await.unwrap().offset, first as u64);
        reg.append_upload(&repo, &up.id, Some(first as u64), body(&blob[first..], MIB)).await.unwrap();
        let digest = Digest::sha256_of(&blob);
        reg.complete_upload(&repo, &up.id, &digest, None, None).await.unwrap();
        assert!(reg.blobs.get_bytes(&blob_keys::blob(&digest)).await.unwrap() == blob);
        assert_eq!(leftovers(&dir, &reg).await, Vec::<String>::new());
    }

    /// No request holds its blob, nor even a part, in memory on the file
    /// store: four 32 MiB monolithic uploads at once, their bodies made as
    /// they are read in chunks of the size hyper hands out, grow the process
    /// by half of what holding one part each (4 × 8 MiB) would take. The
    /// peak is the whole process's, and other tests may allocate meanwhile,
    /// so one of three runs must keep within the budget.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn uploads_stream_through_without_holding_the_blob() {
        const LEN: usize = 32 * MIB;
        const BUDGET: u64 = 16 * MIB as u64;
        const CHUNK: usize = 256 * 1024;
        let (_dir, reg, repo) = setup().await;
        let reg = std::sync::Arc::new(reg);
        let lazy = |seed: u8| {
            futures::stream::iter((0..LEN).step_by(CHUNK)).map(move |at| Ok(Bytes::from(pattern_at(at, CHUNK, seed))))
        };
        let mut growth = Vec::new();
        for run in 0..3u8 {
            let mut digests = Vec::new();
            for seed in run * 4..run * 4 + 4 {
                let mut h = Sha256::new();
                lazy(seed)
                    .for_each(|c: std::io::Result<Bytes>| {
                        h.update(c.unwrap());
                        futures::future::ready(())
                    })
                    .await;
                digests.push((seed, Digest::from_parts(DigestAlgorithm::Sha256, &hex::encode(h.finalize())).unwrap()));
            }
            let _alone = MEMORY_MEASUREMENT.lock().await;
            reset_peak_rss();
            let (before, _) = rss_bytes();
            let uploads = digests.into_iter().map(|(seed, digest)| {
                let (reg, repo, body) = (reg.clone(), repo.clone(), lazy(seed).boxed());
                tokio::spawn(async move {
                    let up = reg.start_upload(&repo).await.unwrap();
                    reg.complete_upload(&repo, &up.id, &digest, None, Some(body)).await.unwrap()
                })
            });
            for upload in futures::future::join_all(uploads).await {
                assert_eq!(upload.unwrap().size, LEN as u64);
            }
            let (_, peak) = rss_bytes();
            if before == 0 {
                return;
            }
            let grew = peak.saturating_sub(before);
            if grew < BUDGET {
                return;
            }
            growth.push(grew >> 20);
        }
        panic!("memory grew by {growth:?} MiB in three runs of four 32 MiB uploads");
    }
}

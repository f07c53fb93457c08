//! The `BlobStore` port: where blob bytes live (S3, or files on disk locally).
//!
//! Owns: object put/get/head/delete/list, multipart uploads, server-side copy
//! and presigned URLs (GET of an object, PUT of a multipart part). It knows nothing of repositories, digests or
//! permissions: callers hand it keys built by [`keys`], and it must never
//! interpret them. Every implementation passes the one conformance suite in
//! [`conformance`].

pub mod fs;
pub mod keys;
pub mod s3;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

pub use crate::port::{ErrorKind, PortError, PortResult};

/// A stream of object bytes. Producers keep memory bounded: a chunk is at
/// most a few MiB.
pub type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;

/// S3's floor for every part of a multipart upload but the last.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// S3's ceiling on part numbers.
pub const MAX_PARTS: u32 = 10_000;

/// An inclusive byte range; `end: None` reads to the end of the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    /// When the object was last written, in Unix milliseconds.
    pub modified_ms: i64,
}

/// Unix milliseconds of a file time (0 when before the epoch or unknown).
pub fn unix_ms(t: std::io::Result<std::time::SystemTime>) -> i64 {
    t.ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// An object being read: the bytes of the requested range, and where they lie.
pub struct ObjectRead {
    /// Size of the whole object.
    pub size: u64,
    /// First byte of `body` within the object.
    pub start: u64,
    /// Number of bytes `body` yields.
    pub len: u64,
    pub body: ByteStream,
}

impl Debug for ObjectRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectRead")
            .field("size", &self.size)
            .field("start", &self.start)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// One uploaded part of a multipart upload, as `complete_multipart` needs it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CompletedPart {
    pub number: u32,
    pub etag: String,
    pub size: u64,
}

/// Where [`BlobStore::upload_part`] should put a body too short to be a part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShortPart<'a> {
    /// A body of fewer bytes than this is no part.
    pub min_len: u64,
    /// The object such a body becomes instead.
    pub key: &'a str,
}

/// What [`BlobStore::upload_part`] made of a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartWrite {
    /// A part of the upload `upload_id` (the one given, or the one started).
    Part { upload_id: String, part: CompletedPart },
    /// The body was short: it is the object `ShortPart::key`, of `size` bytes.
    Object { size: u64 },
}

/// A stream of one chunk held in memory.
pub fn once(bytes: Bytes) -> ByteStream {
    Box::pin(futures::stream::once(async move { Ok(bytes) }))
}

/// One page of a listing, in lexical key order.
#[derive(Debug, Clone, Default)]
pub struct ListPage {
    pub objects: Vec<ObjectMeta>,
    /// Pass as `after` to get the next page; `None` when the listing is done.
    pub next: Option<String>,
}

#[async_trait]
pub trait BlobStore: Debug + Send + Sync + 'static {
    /// Writes the whole object from a stream and returns its size. Readers see
    /// the old object or the new one, never a partial write; an error leaves
    /// no object behind (or the old one). Memory stays bounded whatever the
    /// size. Overwriting an existing key is allowed.
    async fn put(&self, key: &str, body: ByteStream) -> PortResult<u64>;

    /// Reads an object, or a range of it. A range whose start lies at or past
    /// the end of the object is `InvalidRange` (an empty object has no valid
    /// range); an end past the object is clamped. A missing key is `NotFound`.
    async fn get(&self, key: &str, range: Option<ByteRange>) -> PortResult<ObjectRead>;

    /// Size of an object; `NotFound` when missing.
    async fn head(&self, key: &str) -> PortResult<ObjectMeta>;

    /// Deletes an object. Deleting a missing key is Ok.
    async fn delete(&self, key: &str) -> PortResult<()>;

    /// Lists objects whose key starts with `prefix`, in lexical order,
    /// strictly after the key `after`, at most `limit` per page. Objects of
    /// unfinished multipart uploads are not listed.
    async fn list(&self, prefix: &str, after: Option<&str>, limit: usize) -> PortResult<ListPage>;

    /// Copies an object inside the store without the bytes passing through
    /// the caller; the destination appears atomically. `NotFound` when the
    /// source is missing.
    async fn copy(&self, from: &str, to: &str) -> PortResult<()>;

    /// Starts a multipart upload to `key`; the object appears only on
    /// `complete_multipart`. Returns the upload id.
    async fn create_multipart(&self, key: &str) -> PortResult<String>;

    /// Streams `body` into part `number` (1..=10,000) of the multipart
    /// upload `upload_id` of `key`, first starting an upload of `key` when
    /// `upload_id` is `None`. Uploading the same number again replaces the
    /// part. An unknown upload is `NotFound`. An error while reading the
    /// body stores nothing (an earlier part of that number stays) and starts
    /// no upload.
    ///
    /// With `short`, a body that ends before `short.min_len` bytes is no
    /// part: it becomes the whole object `short.key`, written as `put`
    /// writes, and no upload is started. A caller that cannot know a body's
    /// length before its end (an HTTP request) can so stream it into a part
    /// and still keep a remainder too small to be one.
    ///
    /// Memory: a store that needs a part's length before its first byte
    /// (S3) holds the whole part until the body ends, so callers keep parts
    /// to a few MiB; a store that writes bytes as they come (files) holds
    /// about one chunk.
    async fn upload_part(
        &self,
        key: &str,
        upload_id: Option<&str>,
        number: u32,
        body: ByteStream,
        short: Option<ShortPart<'_>>,
    ) -> PortResult<PartWrite>;

    /// Assembles the listed parts, in ascending part order, into the object.
    /// Every part but the last must be at least [`MIN_PART_SIZE`] bytes
    /// (`InvalidInput` otherwise, and the upload stays open); a part not
    /// uploaded is `InvalidInput`; an unknown upload is `NotFound`.
    async fn complete_multipart(&self, key: &str, upload_id: &str, parts: &[CompletedPart]) -> PortResult<()>;

    /// Abandons an upload and frees its parts. Aborting an unknown or already
    /// finished upload is Ok.
    async fn abort_multipart(&self, key: &str, upload_id: &str) -> PortResult<()>;

    /// A URL from which a plain HTTP client can GET the object for `ttl`
    /// without other credentials, or `None` when the store cannot hand out
    /// URLs (local files: the caller streams the bytes itself). Does not check
    /// that the object exists.
    async fn presign_get(&self, key: &str, ttl: Duration) -> PortResult<Option<url::Url>>;

    /// A URL to which a plain HTTP client can `PUT` the bytes of part
    /// `number` of the multipart upload `upload_id` of `key` for `ttl`,
    /// without other credentials; the `ETag` of its answer is the part's
    /// etag for `complete_multipart`. `None` when the store cannot hand out
    /// URLs (local files). Checks neither that the upload exists nor the
    /// part number: a wrong one fails when the client uses the URL.
    async fn presign_upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        ttl: Duration,
    ) -> PortResult<Option<url::Url>>;

    /// Reads a whole object into memory. For small objects only (manifests,
    /// staging buffers).
    async fn get_bytes(&self, key: &str) -> PortResult<Bytes> {
        use futures::TryStreamExt;
        let read = self.get(key, None).await?;
        let mut out = Vec::with_capacity(usize::try_from(read.len).unwrap_or(0));
        let mut body = read.body;
        while let Some(chunk) = body.try_next().await? {
            out.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(out))
    }

    /// Writes a whole object from memory.
    async fn put_bytes(&self, key: &str, bytes: Bytes) -> PortResult<u64> {
        self.put(key, once(bytes)).await
    }

    /// Uploads a part held in memory to an existing upload.
    async fn upload_part_bytes(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        bytes: Bytes,
    ) -> PortResult<CompletedPart> {
        match self.upload_part(key, Some(upload_id), number, once(bytes), None).await? {
            PartWrite::Part { part, .. } => Ok(part),
            PartWrite::Object { .. } => {
                Err(PortError::msg(ErrorKind::Internal, format_args!("part {number} of {key} was stored as an object")))
            }
        }
    }
}

/// Checks a key before a backend uses it: non-empty, relative, ASCII
/// letters, digits and `/._-` only, no empty, `.` or `..` segment. Keys come
/// from [`keys`], so a failure here is a bug, but the file backend must never
/// be led outside its root.
pub fn validate_key(key: &str) -> PortResult<()> {
    let ok = !key.is_empty()
        && key.len() <= 1024
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b))
        && key.split('/').all(|seg| !seg.is_empty() && seg != "." && seg != "..");
    if ok { Ok(()) } else { Err(PortError::msg(ErrorKind::InvalidInput, format_args!("invalid object key {key:?}"))) }
}

/// Validates and resolves a requested range against an object size into
/// `(start, len)`.
pub fn resolve_range(size: u64, range: Option<ByteRange>) -> PortResult<(u64, u64)> {
    let Some(r) = range else { return Ok((0, size)) };
    if r.start >= size || r.end.is_some_and(|e| e < r.start) {
        return Err(PortError::msg(
            ErrorKind::InvalidRange,
            format_args!("range {}-{:?} outside object of {size} bytes", r.start, r.end),
        ));
    }
    let end = r.end.map_or(size - 1, |e| e.min(size - 1));
    Ok((r.start, end - r.start + 1))
}

//! `BlobStore` on S3 (or any S3-compatible endpoint).
//!
//! Every SDK error is translated into a [`PortError`] here; nothing above
//! this file sees an `aws_sdk_s3` type. Writes of unknown length are cut
//! into 8 MiB parts so that memory stays bounded whatever the object size,
//! and a multipart upload this store starts itself is always either
//! completed or aborted, so no invisible parts are left behind.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::types::{BucketLocationConstraint, CompletedMultipartUpload, CreateBucketConfiguration};
use bytes::{Bytes, BytesMut};
use futures::{StreamExt, TryStreamExt};

use super::{
    BlobStore, ByteRange, ByteStream, CompletedPart, ErrorKind, ListPage, MAX_PARTS, ObjectMeta, ObjectRead, PartWrite,
    PortError, PortResult, ShortPart, validate_key,
};
use crate::config::AwsConfig;

/// Part size of the multipart uploads `put` makes: the memory one `put` holds.
const PART_SIZE: usize = 8 * 1024 * 1024;
/// Largest object a single CopyObject may copy.
const MAX_COPY_OBJECT: u64 = 5 * 1024 * 1024 * 1024;
/// Range copied by each UploadPartCopy when an object is too large for CopyObject.
const COPY_PART_SIZE: u64 = 1024 * 1024 * 1024;
/// Some emulators (moto) store a body sent without a Content-Type as empty,
/// so every write names one.
const CONTENT_TYPE: &str = "application/octet-stream";

#[derive(Debug, Clone)]
pub struct S3BlobStore {
    client: aws_sdk_s3::Client,
    /// Signs presigned URLs; differs from `client` only by its endpoint.
    presign: aws_sdk_s3::Client,
    bucket: String,
}

impl S3BlobStore {
    /// From the berth config and the shared SDK config.
    pub fn from_config(cfg: &AwsConfig, sdk: &aws_config::SdkConfig) -> Self {
        Self::with_bucket(cfg, sdk, &cfg.bucket)
    }

    /// Same with an explicit bucket.
    pub fn with_bucket(cfg: &AwsConfig, sdk: &aws_config::SdkConfig, bucket: &str) -> Self {
        let conf = aws_sdk_s3::config::Builder::from(sdk).force_path_style(crate::aws::path_style(cfg, sdk)).build();
        let client = aws_sdk_s3::Client::from_conf(conf);
        let presign = match &cfg.s3_public_endpoint {
            // A public endpoint is always a custom one, so the rule of
            // `aws::path_style` (path style with a custom endpoint) applies
            // to it even when berth itself talks to AWS by its own names.
            Some(public) => aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(sdk)
                    .endpoint_url(public)
                    .force_path_style(cfg.force_path_style.unwrap_or(true))
                    .build(),
            ),
            None => client.clone(),
        };
        Self { client, presign, bucket: bucket.to_owned() }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Creates the bucket when missing; an existing bucket of ours is fine.
    pub async fn ensure_bucket(&self) -> PortResult<()> {
        let mut req = self.client.create_bucket().bucket(&self.bucket);
        // us-east-1 is the default location and refuses to be named as one.
        if let Some(region) = self.client.config().region().map(|r| r.as_ref()).filter(|r| *r != "us-east-1") {
            req = req.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(region))
                    .build(),
            );
        }
        let err = match req.send().await {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        match err.code() {
            Some("BucketAlreadyOwnedByYou") => Ok(()),
            // Some endpoints answer this for a bucket we own too: whether we
            // can reach it tells the two cases apart.
            Some("BucketAlreadyExists") => self.check().await.map_err(|e| match e.kind() {
                ErrorKind::Unavailable => e,
                _ => PortError::msg(
                    ErrorKind::AlreadyExists,
                    format_args!("create bucket {}: the name is taken by another account", self.bucket),
                ),
            }),
            _ => Err(s3_error(format_args!("create bucket {}", self.bucket), err)),
        }
    }

    /// Checks that the bucket exists and is reachable.
    pub async fn check(&self) -> PortResult<()> {
        let err = match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        let missing = matches!(err.code(), Some("NotFound" | "NoSuchBucket"))
            || err.raw_response().is_some_and(|r| r.status().as_u16() == 404);
        if missing {
            return Err(PortError::msg(
                ErrorKind::NotFound,
                format_args!("bucket {} does not exist: run `berth migrate --backend aws` to create it", self.bucket),
            ));
        }
        Err(s3_error(format_args!("check bucket {}", self.bucket), err))
    }

    /// Refines the error of a request on the upload `upload_id`: some
    /// S3-compatible endpoints (moto) answer a request on an unknown upload
    /// with a server error rather than `NoSuchUpload`. When the upload
    /// turns out not to exist, the answer is `NotFound`, which a retry
    /// would not change.
    async fn unless_upload_missing(&self, key: &str, upload_id: &str, err: PortError) -> PortError {
        if !matches!(err.kind(), ErrorKind::Unavailable | ErrorKind::Internal) {
            return err;
        }
        let probe = self.client.list_parts().bucket(&self.bucket).key(key).upload_id(upload_id).max_parts(1);
        match probe.send().await {
            Err(e) if e.code() == Some("NoSuchUpload") => {
                PortError::msg(ErrorKind::NotFound, format_args!("upload {upload_id} of {key}: NoSuchUpload"))
            }
            _ => err,
        }
    }

    /// Runs `upload`, the rest of the multipart upload `upload_id`, and
    /// aborts the upload unless it succeeds, including when the caller drops
    /// the future halfway (a client hanging up mid-push), so no parts are
    /// left to be billed for.
    async fn abort_unless_done<T>(
        &self,
        key: &str,
        upload_id: &str,
        upload: impl Future<Output = PortResult<T>>,
    ) -> PortResult<T> {
        let mut guard = AbortOnDrop {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            upload_id: upload_id.to_owned(),
            armed: true,
        };
        let result = upload.await;
        if result.is_err()
            && let Err(e) = self.abort_multipart(key, upload_id).await
        {
            tracing::warn!(error = %e, "could not abort a failed multipart upload; its parts stay behind");
        }
        guard.armed = false;
        result
    }

    /// Sends one part held in memory.
    async fn send_part(&self, key: &str, upload_id: &str, number: u32, body: Bytes) -> PortResult<CompletedPart> {
        let size = body.len() as u64;
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(part_number(number))
            .body(body.into())
            .send()
            .await
            .map_err(|e| s3_error(format_args!("upload part {number} of {key}"), e));
        let out = match out {
            Ok(out) => out,
            Err(e) => return Err(self.unless_upload_missing(key, upload_id, e).await),
        };
        let etag = out.e_tag().ok_or_else(|| {
            PortError::msg(ErrorKind::Internal, format_args!("upload part {number} of {key}: no etag returned"))
        })?;
        Ok(CompletedPart { number, etag: etag.to_owned(), size })
    }

    /// Copies an object through a multipart upload of server-side part
    /// copies, for objects too large for CopyObject.
    async fn copy_in_parts(
        &self,
        from: &str,
        to: &str,
        size: u64,
        etag: Option<&str>,
        part_size: u64,
    ) -> PortResult<()> {
        let upload_id = self.create_multipart(to).await?;
        let copy = async {
            let source = copy_source(&self.bucket, from);
            let mut parts = Vec::new();
            let mut offset = 0;
            while offset < size {
                let end = offset.saturating_add(part_size).min(size) - 1;
                let number = u32::try_from(parts.len() + 1).unwrap_or(u32::MAX);
                let mut req = self
                    .client
                    .upload_part_copy()
                    .bucket(&self.bucket)
                    .key(to)
                    .upload_id(&upload_id)
                    .part_number(part_number(number))
                    .copy_source(&source)
                    .copy_source_range(format!("bytes={offset}-{end}"));
                // Every part must come from the same version of the source,
                // or an overwrite during the copy would splice two objects.
                if let Some(etag) = etag {
                    req = req.copy_source_if_match(etag);
                }
                let out =
                    req.send().await.map_err(|e| s3_error(format_args!("copy part {number} of {from} to {to}"), e))?;
                let etag = out.copy_part_result().and_then(|r| r.e_tag()).ok_or_else(|| {
                    PortError::msg(ErrorKind::Internal, format_args!("copy part {number} of {from} to {to}: no etag"))
                })?;
                parts.push(CompletedPart { number, etag: etag.to_owned(), size: end - offset + 1 });
                offset = end + 1;
            }
            self.complete_multipart(to, &upload_id, &parts).await
        };
        self.abort_unless_done(to, &upload_id, copy).await
    }
}

/// Aborts a multipart upload in the background if dropped while armed.
struct AbortOnDrop {
    client: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    upload_id: String,
    armed: bool,
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let req = self.client.abort_multipart_upload().bucket(&self.bucket).key(&self.key).upload_id(&self.upload_id);
        let key = self.key.clone();
        runtime.spawn(async move {
            if let Err(e) = req.send().await {
                let e = s3_error(format_args!("abort upload of {key}"), e);
                tracing::warn!(error = %e, "could not abort an abandoned multipart upload");
            }
        });
    }
}

/// Unix milliseconds of S3's Last-Modified (0 when missing).
fn millis(t: Option<&aws_sdk_s3::primitives::DateTime>) -> i64 {
    t.and_then(|t| t.to_millis().ok()).unwrap_or(0)
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put(&self, key: &str, body: ByteStream) -> PortResult<u64> {
        validate_key(key)?;
        let body_error = |e: std::io::Error| {
            PortError::new(ErrorKind::InvalidInput, e).context(format!("put object {key}: reading the body"))
        };
        let mut parts = Parts::new(body);
        let first = parts.next_part().await.map_err(body_error)?;
        if parts.at_end().await.map_err(body_error)? {
            let size = first.len() as u64;
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .content_type(CONTENT_TYPE)
                .body(first.into())
                .send()
                .await
                .map_err(|e| s3_error(format_args!("put object {key}"), e))?;
            return Ok(size);
        }
        let upload_id = self.create_multipart(key).await?;
        let upload = async {
            let mut done = Vec::new();
            let mut size = 0u64;
            let mut part = first;
            loop {
                let number = u32::try_from(done.len() + 1).unwrap_or(u32::MAX);
                if number > MAX_PARTS {
                    return Err(PortError::msg(
                        ErrorKind::InvalidInput,
                        format_args!("put object {key}: larger than {MAX_PARTS} parts of {} MiB", PART_SIZE >> 20),
                    ));
                }
                size += part.len() as u64;
                done.push(self.send_part(key, &upload_id, number, part).await?);
                if parts.at_end().await.map_err(body_error)? {
                    break;
                }
                part = parts.next_part().await.map_err(body_error)?;
            }
            self.complete_multipart(key, &upload_id, &done).await?;
            Ok(size)
        };
        self.abort_unless_done(key, &upload_id, upload).await
    }

    async fn get(&self, key: &str, range: Option<ByteRange>) -> PortResult<ObjectRead> {
        validate_key(key)?;
        if let Some(r) = range
            && r.end.is_some_and(|end| end < r.start)
        {
            return Err(PortError::msg(
                ErrorKind::InvalidRange,
                format_args!("get object {key}: range {}-{:?} ends before it starts", r.start, r.end),
            ));
        }
        let mut req = self.client.get_object().bucket(&self.bucket).key(key);
        if let Some(r) = range {
            req = req.range(match r.end {
                Some(end) => format!("bytes={}-{end}", r.start),
                None => format!("bytes={}-", r.start),
            });
        }
        let out = req.send().await.map_err(|e| s3_error(format_args!("get object {key}"), e))?;
        let len = length(out.content_length(), || format!("get object {key}"))?;
        let (size, start) = match out.content_range() {
            Some(header) => {
                let (start, end, size) = parse_content_range(header).ok_or_else(|| {
                    PortError::msg(ErrorKind::Internal, format_args!("get object {key}: bad Content-Range {header:?}"))
                })?;
                if end - start + 1 != len {
                    return Err(PortError::msg(
                        ErrorKind::Internal,
                        format_args!("get object {key}: Content-Range {header:?} disagrees with {len} bytes"),
                    ));
                }
                (size, start)
            }
            // A whole object answers a range that covers all of it (or an
            // endpoint that ignores ranges): only then is it what was asked.
            None => {
                let (start, want) =
                    super::resolve_range(len, range).map_err(|e| e.context(format!("get object {key}")))?;
                if (start, want) != (0, len) {
                    return Err(PortError::msg(
                        ErrorKind::Internal,
                        format_args!("get object {key}: the endpoint ignored the requested range"),
                    ));
                }
                (len, 0)
            }
        };
        Ok(ObjectRead { size, start, len, body: into_byte_stream(out.body) })
    }

    async fn head(&self, key: &str) -> PortResult<ObjectMeta> {
        validate_key(key)?;
        let out = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| s3_error(format_args!("head object {key}"), e))?;
        let size = length(out.content_length(), || format!("head object {key}"))?;
        Ok(ObjectMeta { key: key.to_owned(), size, modified_ms: millis(out.last_modified()) })
    }

    async fn delete(&self, key: &str) -> PortResult<()> {
        validate_key(key)?;
        match self.client.delete_object().bucket(&self.bucket).key(key).send().await {
            Ok(_) => Ok(()),
            // S3 answers 204 for a missing key; some endpoints say so instead.
            Err(e) if matches!(e.code(), Some("NoSuchKey" | "NotFound")) => Ok(()),
            Err(e) => Err(s3_error(format_args!("delete object {key}"), e)),
        }
    }

    async fn list(&self, prefix: &str, after: Option<&str>, limit: usize) -> PortResult<ListPage> {
        if limit == 0 {
            return Ok(ListPage::default());
        }
        let out = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .set_start_after(after.map(str::to_owned))
            // S3 returns at most 1000 keys a page whatever is asked.
            .max_keys(i32::try_from(limit.min(1000)).unwrap_or(1000))
            .send()
            .await
            .map_err(|e| s3_error(format_args!("list objects under {prefix:?}"), e))?;
        let mut page = ListPage::default();
        for obj in out.contents() {
            let key = obj.key().unwrap_or_default().to_owned();
            let size = length(obj.size(), || format!("list objects under {prefix:?}: {key}"))?;
            page.objects.push(ObjectMeta { key, size, modified_ms: millis(obj.last_modified()) });
        }
        if out.is_truncated() == Some(true) {
            page.next = page.objects.last().map(|o| o.key.clone());
        }
        Ok(page)
    }

    async fn copy(&self, from: &str, to: &str) -> PortResult<()> {
        validate_key(from)?;
        validate_key(to)?;
        // The size decides between CopyObject and a multipart copy, so the
        // source is measured first; a missing source is NotFound here.
        let src = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(from)
            .send()
            .await
            .map_err(|e| s3_error(format_args!("copy object {from} to {to}"), e))?;
        let size = length(src.content_length(), || format!("copy object {from} to {to}"))?;
        if size > MAX_COPY_OBJECT {
            return self.copy_in_parts(from, to, size, src.e_tag(), COPY_PART_SIZE).await;
        }
        self.client
            .copy_object()
            .bucket(&self.bucket)
            .key(to)
            .copy_source(copy_source(&self.bucket, from))
            .send()
            .await
            .map_err(|e| s3_error(format_args!("copy object {from} to {to}"), e))?;
        Ok(())
    }

    async fn create_multipart(&self, key: &str) -> PortResult<String> {
        validate_key(key)?;
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(CONTENT_TYPE)
            .send()
            .await
            .map_err(|e| s3_error(format_args!("create upload of {key}"), e))?;
        out.upload_id().map(str::to_owned).ok_or_else(|| {
            PortError::msg(ErrorKind::Internal, format_args!("create upload of {key}: no upload id returned"))
        })
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: Option<&str>,
        number: u32,
        body: ByteStream,
        short: Option<ShortPart<'_>>,
    ) -> PortResult<PartWrite> {
        validate_key(key)?;
        if let Some(short) = short {
            validate_key(short.key)?;
        }
        if !(1..=MAX_PARTS).contains(&number) {
            return Err(PortError::msg(
                ErrorKind::InvalidInput,
                format_args!("upload part {number} of {key}: part numbers are 1..={MAX_PARTS}"),
            ));
        }
        // UploadPart needs the length before the bytes, and a body of
        // unknown length has one only at its end: the part is gathered.
        let body = gather(body).await.map_err(|e| {
            PortError::new(ErrorKind::InvalidInput, e)
                .context(format!("upload part {number} of {key}: reading the body"))
        })?;
        if let Some(short) = short.filter(|s| (body.len() as u64) < s.min_len) {
            let size = self.put_bytes(short.key, body).await?;
            return Ok(PartWrite::Object { size });
        }
        let Some(upload_id) = upload_id else {
            let upload_id = self.create_multipart(key).await?;
            let part = self.abort_unless_done(key, &upload_id, self.send_part(key, &upload_id, number, body)).await?;
            return Ok(PartWrite::Part { upload_id, part });
        };
        let part = self.send_part(key, upload_id, number, body).await?;
        Ok(PartWrite::Part { upload_id: upload_id.to_owned(), part })
    }

    async fn complete_multipart(&self, key: &str, upload_id: &str, parts: &[CompletedPart]) -> PortResult<()> {
        validate_key(key)?;
        if parts.is_empty() {
            return Err(PortError::msg(
                ErrorKind::InvalidInput,
                format_args!("complete upload of {key}: a multipart upload needs at least one part"),
            ));
        }
        if parts.windows(2).any(|w| w[0].number >= w[1].number) {
            return Err(PortError::msg(
                ErrorKind::InvalidInput,
                format_args!("complete upload of {key}: parts must be listed in ascending order"),
            ));
        }
        let listed = parts
            .iter()
            .map(|p| {
                aws_sdk_s3::types::CompletedPart::builder().part_number(part_number(p.number)).e_tag(&p.etag).build()
            })
            .collect();
        let done = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(listed)).build())
            .send()
            .await;
        match done {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = s3_error(format_args!("complete upload of {key}"), e);
                Err(self.unless_upload_missing(key, upload_id, e).await)
            }
        }
    }

    async fn abort_multipart(&self, key: &str, upload_id: &str) -> PortResult<()> {
        validate_key(key)?;
        match self.client.abort_multipart_upload().bucket(&self.bucket).key(key).upload_id(upload_id).send().await {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.code(), Some("NoSuchUpload" | "NotFound")) => Ok(()),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(()),
            Err(e) => Err(s3_error(format_args!("abort upload of {key}"), e)),
        }
    }

    async fn presign_get(&self, key: &str, ttl: Duration) -> PortResult<Option<url::Url>> {
        validate_key(key)?;
        let config = PresigningConfig::expires_in(ttl)
            .map_err(|e| PortError::new(ErrorKind::InvalidInput, e).context(format!("presign object {key}")))?;
        let req = self
            .presign
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(|e| s3_error(format_args!("presign object {key}"), e))?;
        let url = url::Url::parse(req.uri())
            .map_err(|e| PortError::new(ErrorKind::Internal, e).context(format!("presign object {key}")))?;
        Ok(Some(url))
    }

    async fn presign_upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        ttl: Duration,
    ) -> PortResult<Option<url::Url>> {
        validate_key(key)?;
        let what = || format!("presign part {number} of {key}");
        let config = PresigningConfig::expires_in(ttl)
            .map_err(|e| PortError::new(ErrorKind::InvalidInput, e).context(what()))?;
        let req = self
            .presign
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(part_number(number))
            .presigned(config)
            .await
            .map_err(|e| s3_error(what(), e))?;
        let url = url::Url::parse(req.uri()).map_err(|e| PortError::new(ErrorKind::Internal, e).context(what()))?;
        Ok(Some(url))
    }
}

/// Translates an S3 error about `what` ("get object <key>"): the S3 codes
/// callers act on get their own kind, everything else goes to
/// [`crate::aws::sdk_error`].
fn s3_error<E>(what: impl Display, err: SdkError<E, HttpResponse>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    let kind = match (err.code(), status) {
        // Not NotFound: a missing bucket is a broken deployment, not a
        // missing object, and must not read as "blob unknown".
        (Some("NoSuchBucket"), _) => Some(ErrorKind::Unavailable),
        (Some("NoSuchKey" | "NotFound" | "NoSuchUpload"), _) => Some(ErrorKind::NotFound),
        (Some("InvalidRange"), _) | (_, Some(416)) => Some(ErrorKind::InvalidRange),
        (Some("EntityTooSmall" | "InvalidPart" | "InvalidPartOrder" | "MalformedXML"), _) => {
            Some(ErrorKind::InvalidInput)
        }
        (Some("PreconditionFailed"), _) | (_, Some(412)) => Some(ErrorKind::ConditionFailed),
        // HEAD answers carry no error body, so a bare 404 is all we get.
        (_, Some(404)) => Some(ErrorKind::NotFound),
        // Throttling and server faults that outlasted the SDK's retries.
        (Some("SlowDown" | "ServiceUnavailable" | "InternalError" | "RequestTimeout"), _) => {
            Some(ErrorKind::Unavailable)
        }
        (_, Some(500..=599)) => Some(ErrorKind::Unavailable),
        _ => None,
    };
    let Some(kind) = kind else { return crate::aws::sdk_error(&what.to_string(), err) };
    let detail = match (err.code(), err.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_owned(),
        _ => format!("http status {}", status.unwrap_or_default()),
    };
    let hint = if err.code() == Some("NoSuchBucket") { " (run `berth migrate --backend aws`)" } else { "" };
    PortError::msg(kind, format_args!("{what}: {detail}{hint}"))
}

/// A length S3 reports as an optional signed number; absent or negative is
/// a broken response.
fn length(value: Option<i64>, what: impl FnOnce() -> String) -> PortResult<u64> {
    value
        .and_then(|v| u64::try_from(v).ok())
        .ok_or_else(|| PortError::msg(ErrorKind::Internal, format_args!("{}: no valid length in the response", what())))
}

/// Part numbers are at most [`MAX_PARTS`], checked by callers, so they fit.
fn part_number(number: u32) -> i32 {
    i32::try_from(number).unwrap_or(i32::MAX)
}

/// The `x-amz-copy-source` of a key. `validate_key` admits only characters
/// that need no percent-encoding, so the key goes in as it is.
fn copy_source(bucket: &str, key: &str) -> String {
    format!("{bucket}/{key}")
}

/// Parses `bytes <start>-<end>/<size>` into `(start, end, size)`.
fn parse_content_range(header: &str) -> Option<(u64, u64, u64)> {
    let (range, size) = header.strip_prefix("bytes ")?.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let (start, end, size) = (start.trim().parse().ok()?, end.trim().parse().ok()?, size.trim().parse().ok()?);
    (start <= end && end < size).then_some((start, end, size))
}

/// Adapts an SDK body to the port's stream, chunk by chunk. The stream ends
/// after the first error rather than polling a failed body again.
fn into_byte_stream(body: aws_sdk_s3::primitives::ByteStream) -> ByteStream {
    futures::stream::unfold(Some(body), |state| async move {
        let mut body = state?;
        match body.next().await? {
            Ok(chunk) => Some((Ok(chunk), Some(body))),
            Err(e) => Some((Err(std::io::Error::other(e)), None)),
        }
    })
    .boxed()
}

/// Reads a whole stream into one buffer; a stream of one chunk is not
/// copied.
async fn gather(mut body: ByteStream) -> std::io::Result<Bytes> {
    let mut first: Option<Bytes> = None;
    let mut buf = BytesMut::new();
    while let Some(chunk) = body.try_next().await? {
        if chunk.is_empty() {
            continue;
        }
        match first.take() {
            None if buf.is_empty() => first = Some(chunk),
            held => {
                if let Some(held) = held {
                    buf.extend_from_slice(&held);
                }
                buf.extend_from_slice(&chunk);
            }
        }
    }
    Ok(first.unwrap_or_else(|| buf.freeze()))
}

/// Cuts a byte stream into parts of [`PART_SIZE`] bytes, holding at most
/// one part plus one read-ahead chunk.
struct Parts {
    body: ByteStream,
    /// A chunk read but not yet placed in a part.
    pending: Option<Bytes>,
    done: bool,
}

impl Parts {
    fn new(body: ByteStream) -> Self {
        Self { body, pending: None, done: false }
    }

    /// The next non-empty chunk, or `None` at the end of the stream.
    async fn next_chunk(&mut self) -> std::io::Result<Option<Bytes>> {
        if let Some(chunk) = self.pending.take() {
            return Ok(Some(chunk));
        }
        while !self.done {
            match self.body.try_next().await? {
                Some(chunk) if chunk.is_empty() => {}
                Some(chunk) => return Ok(Some(chunk)),
                None => self.done = true,
            }
        }
        Ok(None)
    }

    /// Whether the stream has no bytes left, reading ahead one chunk.
    async fn at_end(&mut self) -> std::io::Result<bool> {
        if self.pending.is_none() {
            self.pending = self.next_chunk().await?;
        }
        Ok(self.pending.is_none())
    }

    /// The next part: [`PART_SIZE`] bytes, fewer only at the end of the
    /// stream (empty when nothing is left).
    async fn next_part(&mut self) -> std::io::Result<Bytes> {
        let mut part = BytesMut::new();
        while part.len() < PART_SIZE {
            let Some(mut chunk) = self.next_chunk().await? else { break };
            let room = PART_SIZE - part.len();
            if chunk.len() > room {
                self.pending = Some(chunk.split_off(room));
            }
            // A part that is one chunk (the usual `put_bytes`) needs no copy.
            if part.is_empty() && (chunk.len() == PART_SIZE || self.at_end().await?) {
                return Ok(chunk);
            }
            part.extend_from_slice(&chunk);
        }
        Ok(part.freeze())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::blob::MIN_PART_SIZE;
    use crate::blob::conformance::pattern_stream;

    async fn fresh() -> Option<((), S3BlobStore)> {
        if !crate::testkit::emulator_available("s3 blob store") {
            return None;
        }
        let cfg = AwsConfig::default();
        let sdk = crate::aws::sdk_config(&cfg).await;
        let bucket = crate::testkit::unique("berth-test-").to_lowercase();
        let store = S3BlobStore::with_bucket(&cfg, &sdk, &bucket);
        store.ensure_bucket().await.expect("create bucket");
        Some(((), store))
    }

    crate::blob_store_conformance!(fresh);

    async fn all_bytes(body: ByteStream) -> Vec<u8> {
        body.try_collect::<Vec<Bytes>>().await.expect("read").concat()
    }

    #[tokio::test]
    async fn ensure_bucket_is_idempotent() {
        let Some(((), store)) = fresh().await else { return };
        store.ensure_bucket().await.expect("again");
        store.check().await.expect("bucket reachable");
    }

    #[tokio::test]
    async fn check_reports_a_missing_bucket() {
        if !crate::testkit::emulator_available("s3 check") {
            return;
        }
        let cfg = AwsConfig::default();
        let sdk = crate::aws::sdk_config(&cfg).await;
        let store = S3BlobStore::with_bucket(&cfg, &sdk, &crate::testkit::unique("berth-missing-"));
        let err = store.check().await.expect_err("no such bucket");
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err:?}");
        assert!(err.to_string().contains("berth migrate --backend aws"), "{err}");
        let err = store.put_bytes("a/b", Bytes::from_static(b"x")).await.expect_err("no bucket to write to");
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err:?}");
    }

    #[tokio::test]
    async fn check_reports_an_unreachable_endpoint_quickly() {
        // Gated on the emulator environment only for its dummy credentials.
        if !crate::testkit::emulator_available("s3 unreachable endpoint") {
            return;
        }
        let cfg =
            AwsConfig { endpoint: Some("http://127.0.0.1:9".into()), connect_timeout_secs: 1, ..Default::default() };
        let sdk = crate::aws::sdk_config(&cfg).await;
        let store = S3BlobStore::with_bucket(&cfg, &sdk, "berth-nowhere");
        let started = std::time::Instant::now();
        let err = store.check().await.expect_err("nobody listens");
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(15), "took {:?}", started.elapsed());
    }

    #[tokio::test]
    async fn presigned_urls_name_the_public_endpoint() {
        if !crate::testkit::emulator_available("s3 presign endpoint") {
            return;
        }
        let cfg = AwsConfig { s3_public_endpoint: Some("https://blobs.example.com:8443".into()), ..Default::default() };
        let sdk = crate::aws::sdk_config(&cfg).await;
        let store = S3BlobStore::with_bucket(&cfg, &sdk, "berth-public");
        let url = store.presign_get("blobs/x", Duration::from_secs(60)).await.unwrap().unwrap();
        assert_eq!((url.host_str(), url.port()), (Some("blobs.example.com"), Some(8443)), "{url}");
        assert_eq!(url.path(), "/berth-public/blobs/x");
        let err = store.presign_get("blobs/x", Duration::from_secs(8 * 24 * 3600)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn put_at_part_boundaries() {
        let Some(((), store)) = fresh().await else { return };
        let part = PART_SIZE as u64;
        for (i, len) in [part - 1, part, part + 1, 2 * part].into_iter().enumerate() {
            let key = format!("boundary/{i}");
            let seed = u8::try_from(i).unwrap();
            assert_eq!(store.put(&key, pattern_stream(len, seed)).await.unwrap(), len);
            let read = store.get(&key, None).await.unwrap();
            assert_eq!(read.len, len);
            assert!(all_bytes(read.body).await == all_bytes(pattern_stream(len, seed)).await, "{len} bytes");
            store.delete(&key).await.unwrap();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn copy_in_parts_assembles_the_source() {
        let Some(((), store)) = fresh().await else { return };
        let len = 12 * 1024 * 1024 + 5;
        store.put("big/src", pattern_stream(len, 3)).await.unwrap();
        let src = store.client.head_object().bucket(&store.bucket).key("big/src").send().await.unwrap();
        // 5 MiB pieces stand in for the 1 GiB ones of a real large copy.
        store.copy_in_parts("big/src", "big/dst", len, src.e_tag(), MIN_PART_SIZE).await.unwrap();
        let copied = all_bytes(store.get("big/dst", None).await.unwrap().body).await;
        assert!(copied == all_bytes(pattern_stream(len, 3)).await, "copied bytes differ");
        // A failed copy leaves no destination (moto ignores the source's
        // If-Match on part copies, so a missing source stands in for a
        // replaced one).
        store.delete("big/src").await.unwrap();
        let err = store.copy_in_parts("big/src", "big/dst2", len, src.e_tag(), MIN_PART_SIZE).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err:?}");
        assert_eq!(store.head("big/dst2").await.unwrap_err().kind(), ErrorKind::NotFound);
        store.delete("big/dst").await.unwrap();
    }

    #[test]
    fn content_ranges_parse() {
        assert_eq!(parse_content_range("bytes 100-199/10000"), Some((100, 199, 10_000)));
        assert_eq!(parse_content_range("bytes */10000"), None);
        assert_eq!(parse_content_range("bytes 5-4/10"), None);
        assert_eq!(parse_content_range("bytes 0-10/10"), None);
    }
}

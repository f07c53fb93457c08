//! Copying artifacts between berth and another registry: one engine for
//! both ways, over a [`Side`] that is berth itself (its service calls:
//! digests checked, quotas and immutability apply, events fire) or another
//! registry ([`crate::remote::Client`]).
//!
//! An artifact is copied depth first: an index's manifests before the
//! index, an image's blobs before the image, then its tags, then its
//! accessories (signatures, SBOMs, attestations: what the referrers API or
//! the cosign tag scheme finds) with their tags. What the destination has
//! already is not sent again.
//!
//! Blobs up to [`CHUNKED_ABOVE`] travel in one stream. Larger ones travel in
//! [`CHUNK_SIZE`] ranges, the next one read while the current one is
//! written, each retried on its own; after every chunk the upload session
//! and offset are recorded ([`crate::meta::keys::replication_blob`]), so a
//! copy cut short — a failure, a stopped worker, a task out of time —
//! resumes at the last recorded chunk instead of starting over.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::StreamExt;

use super::plan::{CopyRef, remote};
use crate::blob::ByteStream;
use crate::meta::{Condition, Item, keys};
use crate::oci::{Digest, Manifest, ManifestKind, Reference, RepoName};
use crate::remote::{BlobSource, Client};
use crate::service::{Registry, ServiceError, ServiceResult};

/// The size of a chunk of a big blob.
pub const CHUNK_SIZE: u64 = 16 * 1024 * 1024;
/// Blobs larger than this are copied by chunk (and resume).
pub const CHUNKED_ABOVE: u64 = 2 * CHUNK_SIZE;
/// Tries of one chunk.
const CHUNK_TRIES: u32 = 4;
/// How deep accessories of accessories are followed (a signature of an
/// SBOM of an image).
const ACCESSORY_DEPTH: u32 = 2;
/// The largest manifest copied.
const MAX_MANIFEST: usize = 4 * 1024 * 1024;

/// One side of a copy.
#[derive(Clone)]
pub enum Side {
    Local(Registry),
    Remote { client: Arc<Client>, registry_type: String },
}

impl std::fmt::Debug for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Local(_) => write!(f, "berth"),
            Self::Remote { client, registry_type } => write!(f, "{registry_type} {}", client.base_url()),
        }
    }
}

/// A manifest read from a side.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub media_type: String,
    pub digest: Digest,
    pub bytes: Bytes,
}

fn repo_name(repo: &str) -> ServiceResult<RepoName> {
    RepoName::parse(repo).map_err(|e| ServiceError::Invalid(format!("{repo}: {e}")))
}

fn reference(r: &str) -> ServiceResult<Reference> {
    r.parse().map_err(|_| ServiceError::Invalid(format!("{r:?} is not a tag or a digest")))
}

fn absent(e: &ServiceError) -> bool {
    matches!(e, ServiceError::ManifestUnknown(_) | ServiceError::NotFound(_) | ServiceError::NameUnknown(_))
}

/// Whether a tag is a cosign tag-scheme accessory (`sha256-<hex>.sig`,
/// `.att`, `.sbom`): it travels with its subject.
pub fn is_accessory_tag(tag: &str) -> bool {
    tag.strip_prefix("sha256-")
        .and_then(|rest| rest.split_once('.'))
        .is_some_and(|(hex, ext)| hex.len() == 64 && matches!(ext, "sig" | "att" | "sbom"))
}

impl Side {
    /// A manifest by tag or digest; `None` when the side has none.
    pub async fn manifest(&self, repo: &str, r: &str) -> ServiceResult<Option<Fetched>> {
        match self {
            Self::Local(reg) => match reg.get_manifest(&repo_name(repo)?, &reference(r)?, true).await {
                Ok(m) => Ok(Some(Fetched { media_type: m.media_type, digest: m.digest, bytes: m.body })),
                Err(e) if absent(&e) => Ok(None),
                Err(e) => Err(e),
            },
            Self::Remote { client, .. } => match client.get_manifest(repo, r).await {
                Ok(m) => Ok(Some(Fetched { media_type: m.media_type, digest: m.digest, bytes: m.bytes })),
                Err(e) if e.is_not_found() => Ok(None),
                Err(e) => Err(remote(e)),
            },
        }
    }

    /// The digest a tag or digest names; `None` when the side has none.
    pub async fn resolve(&self, repo: &str, r: &str) -> ServiceResult<Option<Digest>> {
        match self {
            Self::Local(reg) => match reg.get_manifest(&repo_name(repo)?, &reference(r)?, false).await {
                Ok(m) => Ok(Some(m.digest)),
                Err(e) if absent(&e) => Ok(None),
                Err(e) => Err(e),
            },
            Self::Remote { client, .. } => match client.head_manifest(repo, r).await {
                Ok(m) => Ok(Some(m.digest)),
                Err(e) if e.is_not_found() => Ok(None),
                Err(e) => Err(remote(e)),
            },
        }
    }

    /// Whether the repository can read the blob (berth links one it stores
    /// for another repository instead of copying it again).
    async fn has_blob(&self, repo: &str, digest: &Digest) -> ServiceResult<bool> {
        match self {
            Self::Local(reg) => Ok(reg.held_blob(&repo_name(repo)?, digest).await?.is_some()),
            Self::Remote { client, .. } => client.blob_size(repo, digest).await.map(|s| s.is_some()).map_err(remote),
        }
    }

    /// The bytes of a blob, or of the inclusive range `[start, end]`.
    async fn open(&self, repo: &str, digest: &Digest, range: Option<(u64, u64)>) -> ServiceResult<ByteStream> {
        match self {
            Self::Local(reg) => {
                let range = range.map(|(start, end)| crate::blob::ByteRange { start, end: Some(end) });
                Ok(reg.read_linked_blob(&repo_name(repo)?, digest, range).await?.body)
            }
            Self::Remote { client, .. } => {
                let read = client.get_blob(repo, digest, range.map(|(s, e)| (s, Some(e)))).await.map_err(remote)?;
                if range.is_some_and(|(s, _)| s > 0) && !read.partial {
                    return Err(ServiceError::Invalid(format!("{repo}@{digest}: the registry ignores byte ranges")));
                }
                Ok(read.stream)
            }
        }
    }

    /// Stores a whole blob from a stream.
    async fn write_blob(&self, repo: &str, digest: &Digest, size: u64, stream: ByteStream) -> ServiceResult<()> {
        match self {
            Self::Local(reg) => {
                let repo = repo_name(repo)?;
                let upload = reg.start_upload(&repo).await?;
                if let Err(e) = reg.complete_upload(&repo, &upload.id, digest, None, Some(stream)).await {
                    let _ = reg.cancel_upload(&repo, &upload.id).await;
                    return Err(e);
                }
                Ok(())
            }
            Self::Remote { client, .. } => client
                .push_blob(repo, digest, BlobSource::Stream { size, stream }, None)
                .await
                .map(drop)
                .map_err(remote),
        }
    }

    async fn put_manifest(&self, repo: &str, r: &str, media_type: &str, bytes: Bytes) -> ServiceResult<()> {
        match self {
            Self::Local(reg) => {
                reg.put_manifest(&repo_name(repo)?, &reference(r)?, Some(media_type), bytes).await.map(drop)
            }
            Self::Remote { client, .. } => {
                client.put_manifest(repo, r, media_type, bytes).await.map(drop).map_err(remote)
            }
        }
    }

    /// Deletes a manifest (with its tags); `false` when it was not there.
    pub async fn delete_manifest(&self, repo: &str, digest: &Digest) -> ServiceResult<bool> {
        match self {
            Self::Local(reg) => {
                match reg.delete_manifest(&repo_name(repo)?, &Reference::Digest(digest.clone())).await {
                    Ok(()) => Ok(true),
                    Err(e) if absent(&e) => Ok(false),
                    Err(e) => Err(e),
                }
            }
            Self::Remote { client, .. } => match client.delete_manifest(repo, digest).await {
                Ok(()) => Ok(true),
                Err(e) if e.is_not_found() => Ok(false),
                Err(e) => Err(remote(e)),
            },
        }
    }

    /// The accessories of a manifest: digest and the tags that name them.
    async fn accessories(&self, repo: &str, subject: &Digest) -> ServiceResult<Vec<(Digest, Vec<String>)>> {
        match self {
            Self::Local(reg) => {
                let repo = repo_name(repo)?;
                let mut out = Vec::new();
                for a in reg.accessories(&repo, subject).await? {
                    let tags = reg.artifact_tag_names(&repo, &a.digest).await?;
                    out.push((a.digest, tags));
                }
                Ok(out)
            }
            Self::Remote { client, .. } => {
                let mut out: Vec<(Digest, Vec<String>)> = Vec::new();
                match client.referrers(repo, subject, None).await {
                    Ok(r) => {
                        for d in r.descriptors {
                            if let Ok(digest) = d.digest.parse::<Digest>() {
                                out.push((digest, Vec::new()));
                            }
                        }
                    }
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(remote(e)),
                }
                // cosign's tag scheme.
                for ext in ["sig", "att", "sbom"] {
                    let tag = format!("sha256-{}.{ext}", subject.hex());
                    match client.head_manifest(repo, &tag).await {
                        Ok(m) => match out.iter_mut().find(|(d, _)| *d == m.digest) {
                            Some((_, tags)) => tags.push(tag),
                            None => out.push((m.digest, vec![tag])),
                        },
                        Err(e) if e.is_not_found() => {}
                        Err(e) => return Err(remote(e)),
                    }
                }
                Ok(out)
            }
        }
    }

    /// Makes the repository's namespace ready to receive: berth's project,
    /// or a Harbor's (created private when missing, as Harbor's adapter
    /// does).
    pub async fn prepare(&self, repo: &str) -> ServiceResult<()> {
        match self {
            Self::Local(reg) => {
                let name = repo_name(repo)?;
                reg.ensure_project(name.project()).await
            }
            Self::Remote { client, registry_type } if registry_type == crate::remote::adapter::HARBOR => {
                let Some((project, _)) = repo.split_once('/') else { return Ok(()) };
                let body = serde_json::json!({"project_name": project, "metadata": {"public": "false"}});
                client.harbor_api_create("api/v2.0/projects", &body).await.map(drop).map_err(remote)
            }
            Self::Remote { .. } => Ok(()),
        }
    }

    /// The tags of a repository on this side (at most `max`).
    pub async fn tags(&self, repo: &str, max: usize) -> ServiceResult<Vec<String>> {
        match self {
            Self::Local(reg) => {
                let mut out = Vec::new();
                let repo = repo_name(repo)?;
                let mut last: Option<String> = None;
                loop {
                    let page = match reg.list_tags(&repo, Some(1000), last.as_deref()).await {
                        Ok(p) => p,
                        Err(e) if absent(&e) => return Ok(out),
                        Err(e) => return Err(e),
                    };
                    last = page.names.last().cloned();
                    out.extend(page.names);
                    if !page.more || out.len() >= max {
                        return Ok(out);
                    }
                }
            }
            Self::Remote { client, .. } => match client.tags(repo, max).await {
                Ok(t) => Ok(t),
                Err(e) if e.is_not_found() => Ok(Vec::new()),
                Err(e) => Err(remote(e)),
            },
        }
    }
}

/// How a copy went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// Cut short by the task's time or a stop: the same work, run again,
    /// goes on from where it was.
    Paused,
}

/// Keeps a copy under a bandwidth limit.
#[derive(Debug)]
struct Pace {
    bytes_per_second: Option<u64>,
    started: Instant,
    sent: u64,
}

impl Pace {
    async fn sent(&mut self, n: u64) {
        self.sent += n;
        let Some(rate) = self.bytes_per_second else { return };
        #[allow(clippy::cast_precision_loss)]
        let due = Duration::from_secs_f64(self.sent as f64 / rate as f64);
        let elapsed = self.started.elapsed();
        if due > elapsed {
            tokio::time::sleep(due - elapsed).await;
        }
    }
}

/// One task's copying: its sides, limits and what it did.
pub struct Copier {
    pub reg: Registry,
    pub src: Side,
    pub dst: Side,
    pub execution: i64,
    pub task: i64,
    pub override_: bool,
    /// When the task must hand over to a follow-up.
    pub deadline: Instant,
    pace: tokio::sync::Mutex<Pace>,
    pub log: Vec<String>,
    pub bytes: u64,
    pub blobs: u64,
    pub manifests: u64,
    pub chunks: u64,
}

impl Copier {
    pub fn new(
        reg: Registry,
        src: Side,
        dst: Side,
        (execution, task): (i64, i64),
        override_: bool,
        bytes_per_second: Option<u64>,
        deadline: Instant,
    ) -> Self {
        Self {
            reg,
            src,
            dst,
            execution,
            task,
            override_,
            deadline,
            pace: tokio::sync::Mutex::new(Pace { bytes_per_second, started: Instant::now(), sent: 0 }),
            log: Vec::new(),
            bytes: 0,
            blobs: 0,
            manifests: 0,
            chunks: 0,
        }
    }

    fn note(&mut self, line: String) {
        tracing::debug!(execution = self.execution, task = self.task, "{line}");
        self.log.push(line);
    }

    async fn out_of_time(&self) -> bool {
        Instant::now() >= self.deadline || self.reg.stop_requested(self.execution, self.task).await.unwrap_or(false)
    }

    /// Copies one artifact (by digest or by tag) with its selected tags and
    /// its accessories.
    pub async fn copy_ref(&mut self, src_repo: &str, dst_repo: &str, r: &CopyRef) -> ServiceResult<Outcome> {
        let given = r.digest.clone().or_else(|| r.tags.first().cloned());
        let Some(given) = given else { return Ok(Outcome::Done) };
        let Some(top) = self.src.manifest(src_repo, &given).await? else {
            self.note(format!("{src_repo}:{given} is gone from the source: skipped"));
            return Ok(Outcome::Done);
        };
        // Tags the destination has on something else stay, unless told.
        let mut tags = Vec::new();
        for tag in &r.tags {
            match self.dst.resolve(dst_repo, tag).await? {
                Some(d) if d == top.digest => {}
                Some(d) if !self.override_ => {
                    self.note(format!("{dst_repo}:{tag} is {d} at the destination and override is off: kept"));
                    continue;
                }
                _ => {}
            }
            tags.push(tag.clone());
        }
        if !r.tags.is_empty() && tags.is_empty() {
            return Ok(Outcome::Done);
        }
        if Box::pin(self.copy_tree(src_repo, dst_repo, &top, tags.first().map(String::as_str), 0)).await?
            == Outcome::Paused
        {
            return Ok(Outcome::Paused);
        }
        for tag in tags.iter().skip(1) {
            self.dst.put_manifest(dst_repo, tag, &top.media_type, top.bytes.clone()).await?;
        }
        let shown = if tags.is_empty() { top.digest.to_string() } else { tags.join(",") };
        self.note(format!("copied {src_repo}:{shown} to {dst_repo} ({})", top.digest));
        Box::pin(self.copy_accessories(src_repo, dst_repo, &top.digest, 1)).await
    }

    async fn copy_accessories(
        &mut self,
        src_repo: &str,
        dst_repo: &str,
        subject: &Digest,
        depth: u32,
    ) -> ServiceResult<Outcome> {
        if depth > ACCESSORY_DEPTH {
            return Ok(Outcome::Done);
        }
        for (digest, tags) in self.src.accessories(src_repo, subject).await? {
            let Some(m) = self.src.manifest(src_repo, &digest.to_string()).await? else { continue };
            // By its tag first: a cosign signature is known by its tag.
            if Box::pin(self.copy_tree(src_repo, dst_repo, &m, tags.first().map(String::as_str), 0)).await?
                == Outcome::Paused
            {
                return Ok(Outcome::Paused);
            }
            for tag in tags.iter().skip(1) {
                self.dst.put_manifest(dst_repo, tag, &m.media_type, m.bytes.clone()).await?;
            }
            self.note(format!("copied accessory {digest} of {subject}"));
            if Box::pin(self.copy_accessories(src_repo, dst_repo, &digest, depth + 1)).await? == Outcome::Paused {
                return Ok(Outcome::Paused);
            }
        }
        Ok(Outcome::Done)
    }

    /// Copies a manifest after what it references, by `tag` when given
    /// (else by digest).
    async fn copy_tree(
        &mut self,
        src_repo: &str,
        dst_repo: &str,
        m: &Fetched,
        tag: Option<&str>,
        depth: u32,
    ) -> ServiceResult<Outcome> {
        if depth > 2 {
            return Err(ServiceError::Invalid(format!("{src_repo}@{}: indexes nested too deep", m.digest)));
        }
        if m.bytes.len() > MAX_MANIFEST {
            return Err(ServiceError::Invalid(format!("{src_repo}@{}: manifest too large", m.digest)));
        }
        if self.dst.resolve(dst_repo, &m.digest.to_string()).await?.is_some() {
            if let Some(tag) = tag {
                self.dst.put_manifest(dst_repo, tag, &m.media_type, m.bytes.clone()).await?;
            }
            return Ok(Outcome::Done);
        }
        let parsed = Manifest::parse(Some(m.media_type.as_str()), &m.bytes)
            .map_err(|e| ServiceError::Invalid(format!("{src_repo}@{}: {e}", m.digest)))?;
        if parsed.kind == ManifestKind::Index {
            for child in &parsed.manifests {
                let Some(cm) = self.src.manifest(src_repo, &child.digest.to_string()).await? else {
                    return Err(ServiceError::Invalid(format!(
                        "{src_repo}@{}: its manifest {} is not at the source",
                        m.digest, child.digest
                    )));
                };
                if Box::pin(self.copy_tree(src_repo, dst_repo, &cm, None, depth + 1)).await? == Outcome::Paused {
                    return Ok(Outcome::Paused);
                }
            }
        } else {
            for blob in parsed.config.iter().chain(&parsed.layers) {
                if !blob.urls.is_empty() && self.src.open(src_repo, &blob.digest, Some((0, 0))).await.is_err() {
                    // A foreign layer: it lives elsewhere.
                    continue;
                }
                if Box::pin(self.copy_blob(src_repo, dst_repo, &blob.digest, blob.size)).await? == Outcome::Paused {
                    return Ok(Outcome::Paused);
                }
            }
        }
        let reference = tag.map_or_else(|| m.digest.to_string(), str::to_owned);
        self.dst.put_manifest(dst_repo, &reference, &m.media_type, m.bytes.clone()).await?;
        self.manifests += 1;
        Ok(Outcome::Done)
    }

    /// Copies one blob, unless the destination has it.
    pub async fn copy_blob(
        &mut self,
        src_repo: &str,
        dst_repo: &str,
        digest: &Digest,
        size: u64,
    ) -> ServiceResult<Outcome> {
        if self.dst.has_blob(dst_repo, digest).await? {
            return Ok(Outcome::Done);
        }
        if size > CHUNKED_ABOVE {
            return self.copy_chunked(src_repo, dst_repo, digest, size).await;
        }
        let stream = self.src.open(src_repo, digest, None).await?;
        let pace = Arc::new(tokio::sync::Mutex::new(Pace {
            bytes_per_second: self.pace.lock().await.bytes_per_second,
            started: Instant::now(),
            sent: 0,
        }));
        let paced: ByteStream = stream
            .then(move |item| {
                let pace = pace.clone();
                async move {
                    if let Ok(b) = &item {
                        pace.lock().await.sent(b.len() as u64).await;
                    }
                    item
                }
            })
            .boxed();
        self.dst.write_blob(dst_repo, digest, size, paced).await?;
        self.blobs += 1;
        self.bytes += size;
        Ok(Outcome::Done)
    }

    /// Where a chunked copy stands: its upload session and offset.
    async fn progress(&self, dst_repo: &str, digest: &Digest) -> ServiceResult<Option<(String, u64)>> {
        let (pk, sk) = keys::replication_blob(self.execution, dst_repo, digest);
        let item = self.reg.meta.get(&pk, &sk).await?;
        Ok(item.and_then(|i| Some((i.str("session")?.to_owned(), u64::try_from(i.i64("offset")?).ok()?))))
    }

    async fn record_progress(&self, dst_repo: &str, digest: &Digest, session: &str, offset: u64) -> ServiceResult<()> {
        let (pk, sk) = keys::replication_blob(self.execution, dst_repo, digest);
        let item = Item::new(pk, sk)
            .with("session", session)
            .with("offset", i64::try_from(offset).unwrap_or(i64::MAX))
            .with(keys::attr::EXPIRES_AT, crate::meta::now_unix() + 7 * 24 * 3600);
        self.reg.meta.put(item, Condition::Always).await.map_err(Into::into)
    }

    async fn forget_progress(&self, dst_repo: &str, digest: &Digest) -> ServiceResult<()> {
        let (pk, sk) = keys::replication_blob(self.execution, dst_repo, digest);
        self.reg.meta.delete(&pk, &sk, Condition::Always).await.map_err(Into::into)
    }

    /// Where an upload session recorded earlier stands at the destination;
    /// `None` when it is gone.
    async fn session_offset(&self, dst_repo: &str, session: &str) -> ServiceResult<Option<u64>> {
        match &self.dst {
            Side::Local(reg) => match reg.upload_status(&repo_name(dst_repo)?, session).await {
                Ok(s) => Ok(Some(s.offset)),
                Err(ServiceError::UploadUnknown) => Ok(None),
                Err(e) => Err(e),
            },
            Side::Remote { client, .. } => {
                let Ok(url) = url::Url::parse(session) else { return Ok(None) };
                match client.upload_offset(dst_repo, &url).await {
                    Ok(o) => Ok(o),
                    // A session the registry no longer reads (a stale
                    // state): start again.
                    Err(e) if !e.is_retryable() => Ok(None),
                    Err(e) => Err(remote(e)),
                }
            }
        }
    }

    async fn open_session(&self, dst_repo: &str) -> ServiceResult<String> {
        match &self.dst {
            Side::Local(reg) => Ok(reg.start_upload(&repo_name(dst_repo)?).await?.id),
            Side::Remote { client, .. } => Ok(client.begin_upload(dst_repo).await.map_err(remote)?.0.to_string()),
        }
    }

    /// Writes the chunk at `offset`; returns the session as it goes on.
    async fn write_chunk(&self, dst_repo: &str, session: &str, offset: u64, chunk: Bytes) -> ServiceResult<String> {
        match &self.dst {
            Side::Local(reg) => {
                let body: ByteStream = futures::stream::once(async move { Ok(chunk) }).boxed();
                reg.append_upload(&repo_name(dst_repo)?, session, Some(offset), body).await?;
                Ok(session.to_owned())
            }
            Side::Remote { client, .. } => {
                let url =
                    url::Url::parse(session).map_err(|e| ServiceError::Invalid(format!("upload session: {e}")))?;
                Ok(client.patch_chunk(dst_repo, &url, offset, chunk).await.map_err(remote)?.to_string())
            }
        }
    }

    async fn finish_session(&self, dst_repo: &str, session: &str, digest: &Digest) -> ServiceResult<()> {
        match &self.dst {
            Side::Local(reg) => reg.complete_upload(&repo_name(dst_repo)?, session, digest, None, None).await.map(drop),
            Side::Remote { client, .. } => {
                let url =
                    url::Url::parse(session).map_err(|e| ServiceError::Invalid(format!("upload session: {e}")))?;
                client.finish_upload(dst_repo, &url, digest).await.map_err(remote)
            }
        }
    }

    /// Reads `[start, end]` of a blob at the source, retried.
    async fn read_chunk(&self, src_repo: &str, digest: &Digest, start: u64, end: u64) -> ServiceResult<Bytes> {
        let mut tries = 0;
        loop {
            tries += 1;
            let got = async {
                let mut stream = self.src.open(src_repo, digest, Some((start, end))).await?;
                let want = usize::try_from(end - start + 1).unwrap_or(usize::MAX);
                let mut buf = BytesMut::with_capacity(want);
                while let Some(b) = stream.next().await {
                    let b = b.map_err(|e| {
                        ServiceError::Backend(crate::port::PortError::msg(crate::port::ErrorKind::Unavailable, e))
                    })?;
                    buf.extend_from_slice(&b);
                    if buf.len() > want {
                        return Err(ServiceError::Invalid(format!("{digest}: the source sent more than the range")));
                    }
                }
                if buf.len() != want {
                    return Err(ServiceError::Backend(crate::port::PortError::msg(
                        crate::port::ErrorKind::Unavailable,
                        format!("{digest}: {} bytes of the {want} asked", buf.len()),
                    )));
                }
                Ok(buf.freeze())
            }
            .await;
            match got {
                Ok(b) => return Ok(b),
                Err(e) if e.is_unavailable() && tries < CHUNK_TRIES => {
                    tokio::time::sleep(Duration::from_millis(500 * u64::from(tries))).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Copies a big blob chunk by chunk from where an earlier attempt got.
    async fn copy_chunked(
        &mut self,
        src_repo: &str,
        dst_repo: &str,
        digest: &Digest,
        size: u64,
    ) -> ServiceResult<Outcome> {
        let (mut session, mut offset) = match self.progress(dst_repo, digest).await? {
            Some((session, recorded)) => match self.session_offset(dst_repo, &session).await? {
                Some(at) => {
                    self.note(format!("resuming {digest} at byte {at} of {size} (recorded {recorded})"));
                    (session, at)
                }
                None => {
                    self.note(format!("the upload of {digest} is gone at the destination: starting again"));
                    (self.open_session(dst_repo).await?, 0)
                }
            },
            None => (self.open_session(dst_repo).await?, 0),
        };
        self.record_progress(dst_repo, digest, &session, offset).await?;
        let range_of = |at: u64| (at, (at + CHUNK_SIZE).min(size) - 1);
        let mut next: Option<Bytes> = None;
        while offset < size {
            if self.out_of_time().await {
                self.note(format!("{digest}: {offset} of {size} bytes copied; going on in a follow-up"));
                return Ok(Outcome::Paused);
            }
            let (start, end) = range_of(offset);
            let chunk = match next.take() {
                Some(c) => c,
                None => self.read_chunk(src_repo, digest, start, end).await?,
            };
            let len = chunk.len() as u64;
            let after = offset + len;
            // The next chunk is read while this one is written.
            let (written, read) = {
                let write = self.write_chunk_retried(dst_repo, &session, offset, chunk);
                let read = async {
                    if after < size {
                        let (s, e) = range_of(after);
                        Some(self.read_chunk(src_repo, digest, s, e).await)
                    } else {
                        None
                    }
                };
                tokio::join!(write, read)
            };
            session = written?;
            offset = after;
            self.record_progress(dst_repo, digest, &session, offset).await?;
            self.pace.lock().await.sent(len).await;
            self.chunks += 1;
            self.bytes += len;
            next = match read {
                Some(Ok(b)) => Some(b),
                Some(Err(e)) if e.is_unavailable() => None,
                Some(Err(e)) => return Err(e),
                None => None,
            };
        }
        self.finish_session(dst_repo, &session, digest).await?;
        self.forget_progress(dst_repo, digest).await?;
        self.blobs += 1;
        self.note(format!("copied {digest} ({size} bytes) in chunks"));
        Ok(Outcome::Done)
    }

    /// Writes a chunk, retrying what may pass later: after a failure the
    /// session's offset is read again, so a chunk the destination took is
    /// not sent twice.
    async fn write_chunk_retried(
        &self,
        dst_repo: &str,
        session: &str,
        offset: u64,
        chunk: Bytes,
    ) -> ServiceResult<String> {
        let mut tries = 0;
        loop {
            tries += 1;
            match self.write_chunk(dst_repo, session, offset, chunk.clone()).await {
                Ok(s) => return Ok(s),
                Err(e)
                    if tries < CHUNK_TRIES
                        && (e.is_unavailable() || matches!(e, ServiceError::RangeInvalid { .. })) =>
                {
                    tokio::time::sleep(Duration::from_millis(500 * u64::from(tries))).await;
                    if let Ok(Some(at)) = self.session_offset(dst_repo, session).await
                        && at == offset + chunk.len() as u64
                    {
                        return Ok(session.to_owned());
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

//! `BlobStore` on a local directory: the embedded default.
//!
//! Layout under the root: each object is the file `<root>/<key>`. Writes go
//! to `<root>/#tmp/` first and are renamed into place after an fsync, so a
//! crash leaves the old object or the new one. Multipart uploads keep their
//! parts in `<root>/#multipart/<upload id>/<part>.<etag>`. `#` cannot occur
//! in a key, so these folders never collide with objects.

use std::io::{self, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::{
    BlobStore, ByteRange, ByteStream, CompletedPart, ErrorKind, ListPage, MAX_PARTS, MIN_PART_SIZE, ObjectMeta,
    ObjectRead, PartWrite, PortError, PortResult, ShortPart, resolve_range, validate_key,
};

const TMP_DIR: &str = "#tmp";
const MULTIPART_DIR: &str = "#multipart";
const READ_CHUNK: usize = 256 * 1024;
/// Bytes gathered before a write to a file.
const WRITE_BATCH: usize = 512 * 1024;

#[derive(Debug, Clone)]
pub struct FsBlobStore {
    root: PathBuf,
}

impl FsBlobStore {
    /// Opens (creating if needed) a store rooted at `root`.
    pub async fn open(root: impl Into<PathBuf>) -> PortResult<Self> {
        let root = root.into();
        for dir in [TMP_DIR, MULTIPART_DIR] {
            tokio::fs::create_dir_all(root.join(dir)).await.map_err(|e| {
                PortError::new(ErrorKind::Unavailable, e).context(format!("cannot create {}", root.display()))
            })?;
        }
        Ok(Self { root })
    }

    fn path(&self, key: &str) -> PortResult<PathBuf> {
        validate_key(key)?;
        Ok(self.root.join(key))
    }

    fn tmp_path(&self) -> PathBuf {
        self.root.join(TMP_DIR).join(uuid::Uuid::new_v4().simple().to_string())
    }

    fn upload_dir(&self, upload_id: &str) -> PortResult<PathBuf> {
        if upload_id.is_empty() || !upload_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(PortError::msg(ErrorKind::NotFound, format_args!("unknown upload {upload_id:?}")));
        }
        Ok(self.root.join(MULTIPART_DIR).join(upload_id))
    }

    async fn existing_upload_dir(&self, upload_id: &str) -> PortResult<PathBuf> {
        let dir = self.upload_dir(upload_id)?;
        if tokio::fs::metadata(&dir).await.is_err() {
            return Err(PortError::msg(ErrorKind::NotFound, format_args!("unknown upload {upload_id}")));
        }
        Ok(dir)
    }

    /// Moves a finished temp file to its key: parents created, rename, then
    /// the parent directory synced so the rename itself survives a crash.
    async fn publish(&self, tmp: &Path, key: &str) -> PortResult<()> {
        let dest = self.path(key)?;
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        tokio::fs::rename(tmp, &dest).await?;
        if let Some(parent) = dest.parent() {
            sync_dir(parent).await?;
        }
        Ok(())
    }

    /// Like `write_tmp` for bytes already in memory: written and synced in
    /// one blocking call, without the copies and thread hops of an async
    /// file.
    async fn write_tmp_bytes(&self, body: Bytes) -> PortResult<PathBuf> {
        let tmp = self.tmp_path();
        let path = tmp.clone();
        let written = tokio::task::spawn_blocking(move || {
            use std::io::Write as _;
            let mut file = std::fs::File::create(&path)?;
            file.write_all(&body)?;
            file.sync_all()
        })
        .await
        .map_err(|e| PortError::new(ErrorKind::Internal, e))?;
        if let Err(e) = written {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e.into());
        }
        Ok(tmp)
    }

    /// Streams a body into a fresh temp file and syncs it. Chunks are
    /// gathered, not copied, into batches of [`WRITE_BATCH`] bytes, each
    /// written by one blocking call while the next one gathers: a stream
    /// holds about two batches of its own chunks whatever its length.
    async fn write_tmp(&self, mut body: ByteStream) -> PortResult<(PathBuf, u64)> {
        let tmp = self.tmp_path();
        let result = async {
            let mut file = BatchWriter::Idle(tokio::fs::File::create(&tmp).await?.into_std().await);
            let mut batch = Vec::new();
            let mut batched = 0;
            let mut size = 0u64;
            loop {
                let next = body
                    .try_next()
                    .await
                    .map_err(|e| PortError::new(ErrorKind::InvalidInput, e).context("reading the object body"))?;
                let end = next.is_none();
                if let Some(chunk) = next {
                    size += chunk.len() as u64;
                    batched += chunk.len();
                    batch.push(chunk);
                }
                if batched >= WRITE_BATCH || (end && !batch.is_empty()) {
                    file = file.write(std::mem::take(&mut batch)).await?;
                    batched = 0;
                }
                if end {
                    break;
                }
            }
            let file = file.idle().await?;
            tokio::task::spawn_blocking(move || file.sync_all())
                .await
                .map_err(|e| PortError::new(ErrorKind::Internal, e))??;
            Ok::<_, PortError>(size)
        }
        .await;
        match result {
            Ok(size) => Ok((tmp, size)),
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                Err(e)
            }
        }
    }
}

/// A file written by blocking calls, one batch at a time: idle, or busy
/// writing a batch and handed back when that is done.
enum BatchWriter {
    Idle(std::fs::File),
    Busy(tokio::task::JoinHandle<io::Result<std::fs::File>>),
}

impl BatchWriter {
    /// The file, once any batch in flight is written.
    async fn idle(self) -> PortResult<std::fs::File> {
        match self {
            Self::Idle(file) => Ok(file),
            Self::Busy(writing) => Ok(writing.await.map_err(|e| PortError::new(ErrorKind::Internal, e))??),
        }
    }

    /// Starts writing `batch` after the batch in flight.
    async fn write(self, batch: Vec<Bytes>) -> PortResult<Self> {
        use std::io::Write as _;
        let mut file = self.idle().await?;
        Ok(Self::Busy(tokio::task::spawn_blocking(move || {
            for chunk in &batch {
                file.write_all(chunk)?;
            }
            Ok(file)
        })))
    }
}

async fn sync_dir(dir: &Path) -> PortResult<()> {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || std::fs::File::open(&dir)?.sync_all())
        .await
        .map_err(|e| PortError::new(ErrorKind::Internal, e))??;
    Ok(())
}

fn not_found(key: &str) -> impl FnOnce(PortError) -> PortError + '_ {
    move |e| e.context(format!("object {key}"))
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn put(&self, key: &str, body: ByteStream) -> PortResult<u64> {
        validate_key(key)?;
        let (tmp, size) = self.write_tmp(body).await?;
        if let Err(e) = self.publish(&tmp, key).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
        Ok(size)
    }

    async fn put_bytes(&self, key: &str, bytes: Bytes) -> PortResult<u64> {
        validate_key(key)?;
        let size = bytes.len() as u64;
        let tmp = self.write_tmp_bytes(bytes).await?;
        if let Err(e) = self.publish(&tmp, key).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
        Ok(size)
    }

    async fn get(&self, key: &str, range: Option<ByteRange>) -> PortResult<ObjectRead> {
        let path = self.path(key)?;
        let mut file = tokio::fs::File::open(&path).await.map_err(PortError::from).map_err(not_found(key))?;
        let size = file.metadata().await?.len();
        let (start, len) = resolve_range(size, range)?;
        if start > 0 {
            file.seek(SeekFrom::Start(start)).await?;
        }
        let reader = file.take(len);
        let body = tokio_util::io::ReaderStream::with_capacity(reader, READ_CHUNK).boxed();
        Ok(ObjectRead { size, start, len, body })
    }

    async fn head(&self, key: &str) -> PortResult<ObjectMeta> {
        let path = self.path(key)?;
        let meta = tokio::fs::metadata(&path).await.map_err(PortError::from).map_err(not_found(key))?;
        if !meta.is_file() {
            return Err(PortError::msg(ErrorKind::NotFound, format_args!("object {key}")));
        }
        Ok(ObjectMeta { key: key.to_owned(), size: meta.len(), modified_ms: super::unix_ms(meta.modified()) })
    }

    async fn delete(&self, key: &str) -> PortResult<()> {
        let path = self.path(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::IsADirectory => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn list(&self, prefix: &str, after: Option<&str>, limit: usize) -> PortResult<ListPage> {
        let root = self.root.clone();
        let prefix = prefix.to_owned();
        let after = after.map(str::to_owned);
        tokio::task::spawn_blocking(move || list_sorted(&root, &prefix, after.as_deref(), limit))
            .await
            .map_err(|e| PortError::new(ErrorKind::Internal, e))?
    }

    async fn copy(&self, from: &str, to: &str) -> PortResult<()> {
        let src = self.path(from)?;
        validate_key(to)?;
        let tmp = self.tmp_path();
        // A hard link shares the bytes without copying them; a later put to
        // either key replaces its file by rename, so the other is unaffected.
        if let Err(e) = tokio::fs::hard_link(&src, &tmp).await {
            if e.kind() == io::ErrorKind::NotFound {
                return Err(PortError::from(e).context(format!("object {from}")));
            }
            tokio::fs::copy(&src, &tmp).await.map_err(PortError::from).map_err(not_found(from))?;
        }
        if let Err(e) = self.publish(&tmp, to).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
        Ok(())
    }

    async fn create_multipart(&self, key: &str) -> PortResult<String> {
        validate_key(key)?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = self.upload_dir(&id)?;
        tokio::fs::create_dir_all(&dir).await?;
        tokio::fs::write(dir.join("key"), key).await?;
        Ok(id)
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
            return Err(PortError::msg(ErrorKind::InvalidInput, format_args!("part number {number} out of 1..=10000")));
        }
        if let Some(id) = upload_id {
            self.existing_upload_dir(id).await?;
        }
        // The bytes go to disk as they come; only their length, known at the
        // end, decides whether the file becomes a part or an object.
        let (tmp, size) = self.write_tmp(body).await?;
        let mut started = None;
        let placed = async {
            if let Some(short) = short.filter(|s| size < s.min_len) {
                self.publish(&tmp, short.key).await?;
                return Ok(PartWrite::Object { size });
            }
            let upload_id = match upload_id {
                Some(id) => id.to_owned(),
                None => started.insert(self.create_multipart(key).await?).clone(),
            };
            let dir = self.existing_upload_dir(&upload_id).await?;
            let etag = uuid::Uuid::new_v4().simple().to_string();
            // Replace any earlier upload of the same part number.
            for old in part_files(&dir, Some(number)).await? {
                let _ = tokio::fs::remove_file(old.1).await;
            }
            tokio::fs::rename(&tmp, dir.join(format!("{number}.{etag}"))).await?;
            // A part is acknowledged to the client once its session is
            // saved: its name must survive a crash as its bytes do.
            sync_dir(&dir).await?;
            Ok(PartWrite::Part { upload_id, part: CompletedPart { number, etag, size } })
        }
        .await;
        if placed.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
            if let Some(id) = &started {
                let _ = self.abort_multipart(key, id).await;
            }
        }
        placed
    }

    async fn complete_multipart(&self, key: &str, upload_id: &str, parts: &[CompletedPart]) -> PortResult<()> {
        validate_key(key)?;
        let dir = self.existing_upload_dir(upload_id).await?;
        if parts.is_empty() {
            return Err(PortError::msg(ErrorKind::InvalidInput, "a multipart upload needs at least one part"));
        }
        if parts.windows(2).any(|w| w[0].number >= w[1].number) {
            return Err(PortError::msg(ErrorKind::InvalidInput, "parts must be listed in ascending order"));
        }
        let mut files = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            let path = dir.join(format!("{}.{}", part.number, part.etag));
            let meta = tokio::fs::metadata(&path).await.map_err(|_| {
                PortError::msg(ErrorKind::InvalidInput, format_args!("part {} was not uploaded", part.number))
            })?;
            if i + 1 < parts.len() && meta.len() < MIN_PART_SIZE {
                return Err(PortError::msg(
                    ErrorKind::InvalidInput,
                    format_args!("part {} is {} bytes, below the 5 MiB minimum", part.number, meta.len()),
                ));
            }
            files.push(path);
        }
        let tmp = self.tmp_path();
        let assembling = tmp.clone();
        tokio::task::spawn_blocking(move || assemble(&files, &assembling))
            .await
            .map_err(|e| PortError::new(ErrorKind::Internal, e))??;
        self.publish(&tmp, key).await?;
        let _ = tokio::fs::remove_dir_all(&dir).await;
        Ok(())
    }

    async fn abort_multipart(&self, _key: &str, upload_id: &str) -> PortResult<()> {
        let Ok(dir) = self.upload_dir(upload_id) else { return Ok(()) };
        match tokio::fs::remove_dir_all(&dir).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    async fn presign_get(&self, _key: &str, _ttl: Duration) -> PortResult<Option<url::Url>> {
        Ok(None)
    }

    async fn presign_upload_part(
        &self,
        _key: &str,
        _upload_id: &str,
        _number: u32,
        _ttl: Duration,
    ) -> PortResult<Option<url::Url>> {
        Ok(None)
    }
}

/// Joins the (validated) part files into `tmp`, in one blocking call. The
/// first part becomes the object itself (a rename: its bytes are already on
/// disk, written and synced by `upload_part`), and the others are appended
/// with in-kernel copies (`copy_file_range`), so a one-part upload writes no
/// byte twice and nothing passes through user space. On failure the first
/// part is put back as it was, so the upload stays usable.
fn assemble(files: &[PathBuf], tmp: &Path) -> PortResult<()> {
    let Some((first, rest)) = files.split_first() else {
        return Err(PortError::msg(ErrorKind::InvalidInput, "a multipart upload needs at least one part"));
    };
    let first_len = std::fs::metadata(first)?.len();
    std::fs::rename(first, tmp)?;
    let appended = (|| {
        let mut out = std::fs::OpenOptions::new().append(true).open(tmp)?;
        for path in rest {
            let mut part = std::fs::File::open(path)?;
            std::io::copy(&mut part, &mut out)?;
        }
        out.sync_all()
    })();
    if let Err(e) = appended {
        let restored = std::fs::OpenOptions::new()
            .write(true)
            .open(tmp)
            .and_then(|f| f.set_len(first_len))
            .and_then(|()| std::fs::rename(tmp, first));
        if restored.is_err() {
            let _ = std::fs::remove_file(tmp);
        }
        return Err(e.into());
    }
    Ok(())
}

/// The part files of an upload folder as `(number, path)`, optionally only
/// those of one part number.
async fn part_files(dir: &Path, only: Option<u32>) -> PortResult<Vec<(u32, PathBuf)>> {
    let mut out = Vec::new();
    let mut entries = tokio::fs::read_dir(dir).await?;
    while let Some(entry) = entries.next_entry().await? {
        let name = entry.file_name();
        let Some((num, _etag)) = name.to_str().and_then(|n| n.split_once('.')) else { continue };
        let Ok(num) = num.parse::<u32>() else { continue };
        if only.is_none_or(|o| o == num) {
            out.push((num, entry.path()));
        }
    }
    Ok(out)
}

/// Walks the tree in the lexical order of whole keys. Directory entries are
/// ordered as `name/` so that `a-b` (before `/`) sorts ahead of `a/x`; whole
/// subtrees that cannot hold a key after `after` and under `prefix` are
/// skipped, and the walk stops once the page is full.
fn list_sorted(root: &Path, prefix: &str, after: Option<&str>, limit: usize) -> PortResult<ListPage> {
    let mut page = ListPage::default();
    if limit == 0 {
        return Ok(page);
    }
    let mut more = false;
    walk(root, "", prefix, after, limit, &mut page.objects, &mut more)?;
    if more {
        page.next = page.objects.last().map(|o| o.key.clone());
    }
    Ok(page)
}

fn walk(
    dir: &Path,
    rel: &str,
    prefix: &str,
    after: Option<&str>,
    limit: usize,
    out: &mut Vec<ObjectMeta>,
    more: &mut bool,
) -> PortResult<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let mut children = Vec::new();
    for entry in entries {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
        if rel.is_empty() && name.starts_with('#') {
            continue;
        }
        let is_dir = match entry.file_type() {
            Ok(t) => t.is_dir(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e.into()),
        };
        let sort_key = if is_dir { format!("{rel}{name}/") } else { format!("{rel}{name}") };
        children.push((sort_key, is_dir, entry.path()));
    }
    children.sort();
    for (key, is_dir, path) in children {
        if *more {
            return Ok(());
        }
        if is_dir {
            let could_match = key.starts_with(prefix) || prefix.starts_with(&key);
            let past_after = after.is_none_or(|a| a.starts_with(&key) || key.as_str() > a);
            if could_match && past_after {
                walk(&path, &key, prefix, after, limit, out, more)?;
            }
        } else if key.starts_with(prefix) && after.is_none_or(|a| key.as_str() > a) {
            if out.len() == limit {
                *more = true;
                return Ok(());
            }
            let meta = match std::fs::metadata(&path) {
                Ok(m) => m,
                // Deleted while listed: no longer there.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            out.push(ObjectMeta { key, size: meta.len(), modified_ms: super::unix_ms(meta.modified()) });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    async fn fresh() -> Option<(tempfile::TempDir, FsBlobStore)> {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FsBlobStore::open(dir.path()).await.expect("open");
        Some((dir, store))
    }

    crate::blob_store_conformance!(fresh);

    #[tokio::test]
    async fn keys_cannot_escape_the_root() {
        let (_dir, store) = fresh().await.expect("store");
        for key in ["../x", "/etc/passwd", "a//b", "a/./b", "#tmp/x", ""] {
            let err = store.put_bytes(key, Bytes::from_static(b"x")).await.expect_err(key);
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{key}");
        }
    }
}

#[cfg(test)]
mod restart_tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[tokio::test]
    async fn objects_survive_reopening_the_store() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FsBlobStore::open(dir.path()).await.expect("open");
        store.put_bytes("blobs/a", Bytes::from_static(b"kept")).await.expect("put");
        let upload = store.create_multipart("blobs/b").await.expect("create");
        let part = store.upload_part_bytes("blobs/b", &upload, 1, Bytes::from_static(b"part")).await.expect("part");
        drop(store);
        let store = FsBlobStore::open(dir.path()).await.expect("reopen");
        assert_eq!(store.get_bytes("blobs/a").await.expect("get"), Bytes::from_static(b"kept"));
        store.complete_multipart("blobs/b", &upload, &[part]).await.expect("complete after reopen");
        assert_eq!(store.get_bytes("blobs/b").await.expect("get"), Bytes::from_static(b"part"));
    }
}

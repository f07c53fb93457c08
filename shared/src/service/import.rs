//! Moving to berth from Distribution (F23): `berth import <folder>` reads a
//! Distribution filesystem store directly — no running registry needed —
//! and brings every repository, manifest, tag and blob in through berth's
//! own upload and manifest paths (so digests are checked, quotas apply,
//! and the events of each push fire as for any push).
//!
//! The store's layout (`<root>/docker/registry/v2/`):
//! ```text
//! blobs/sha256/<2 hex>/<hex>/data                       every blob's bytes
//! repositories/<name>/_layers/sha256/<hex>/link         a blob of the repository
//! repositories/<name>/_manifests/revisions/sha256/<hex>/link   a manifest of it
//! repositories/<name>/_manifests/tags/<tag>/current/link       a tag → digest
//! ```
//! A one-level name (`alpine`) goes into the project the caller names
//! (`library` by default, as Docker Hub's names do); projects are created
//! (private) when missing. Images come before the indexes that hold them;
//! a blob berth has already is not read again, so an import interrupted
//! or run twice finishes without copying twice.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::{Registry, ServiceError, ServiceResult};
use crate::oci::{Digest, Manifest, ManifestKind, Reference, RepoName};

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub repositories: u64,
    pub manifests: u64,
    pub tags: u64,
    /// Blobs copied (blobs berth had already are not counted).
    pub blobs: u64,
    pub bytes: u64,
    /// What could not be imported, one line each (the rest went on).
    pub failures: Vec<String>,
}

/// One repository of the store.
#[derive(Debug)]
struct StoredRepo {
    /// Its name in the store.
    name: String,
    manifests: Vec<Digest>,
    tags: BTreeMap<String, Digest>,
}

/// The `v2` folder of a store given as its root, its `docker/registry/v2`
/// or anything between.
fn v2_folder(root: &Path) -> ServiceResult<PathBuf> {
    for candidate in [root.join("docker/registry/v2"), root.join("registry/v2"), root.join("v2"), root.to_owned()] {
        if candidate.join("repositories").is_dir() && candidate.join("blobs").is_dir() {
            return Ok(candidate);
        }
    }
    Err(ServiceError::Invalid(format!(
        "{} is not a Distribution filesystem store (no docker/registry/v2/repositories and blobs in it)",
        root.display()
    )))
}

fn blob_path(v2: &Path, digest: &Digest) -> PathBuf {
    let hex = digest.hex();
    v2.join("blobs").join(digest.algorithm().as_str()).join(&hex[..2]).join(hex).join("data")
}

/// A `link` file's digest.
fn read_link(path: &Path) -> Option<Digest> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The digests of `<dir>/<algorithm>/<hex>/link`.
fn linked_digests(dir: &Path) -> Vec<Digest> {
    let mut out = Vec::new();
    let Ok(algorithms) = std::fs::read_dir(dir) else { return out };
    for algorithm in algorithms.flatten() {
        let Ok(entries) = std::fs::read_dir(algorithm.path()) else { continue };
        for entry in entries.flatten() {
            if let Some(d) = read_link(&entry.path().join("link")) {
                out.push(d);
            }
        }
    }
    out.sort_by_key(|d| d.to_string());
    out
}

/// Every repository under `repositories/`, with its manifests and tags.
fn repositories(v2: &Path) -> Vec<StoredRepo> {
    let mut out = Vec::new();
    let mut stack = vec![(v2.join("repositories"), String::new())];
    while let Some((dir, name)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        let mut children: Vec<_> = entries.flatten().collect();
        children.sort_by_key(std::fs::DirEntry::file_name);
        for entry in children {
            let file_name = entry.file_name().to_string_lossy().into_owned();
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if file_name == "_manifests" {
                let manifests = linked_digests(&entry.path().join("revisions"));
                let mut tags = BTreeMap::new();
                if let Ok(tag_dirs) = std::fs::read_dir(entry.path().join("tags")) {
                    for t in tag_dirs.flatten() {
                        if let Some(d) = read_link(&t.path().join("current/link")) {
                            tags.insert(t.file_name().to_string_lossy().into_owned(), d);
                        }
                    }
                }
                out.push(StoredRepo { name: name.clone(), manifests, tags });
            } else if !file_name.starts_with('_') {
                let child = if name.is_empty() { file_name } else { format!("{name}/{file_name}") };
                stack.push((entry.path(), child));
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

impl Registry {
    /// Imports a Distribution filesystem store (see the module's doc);
    /// one-level names go into `default_project`.
    pub async fn import_distribution(&self, root: &Path, default_project: &str) -> ServiceResult<ImportSummary> {
        let v2 = v2_folder(root)?;
        let mut summary = ImportSummary::default();
        for stored in repositories(&v2) {
            let name = if stored.name.contains('/') {
                stored.name.clone()
            } else {
                format!("{default_project}/{}", stored.name)
            };
            let repo = match RepoName::parse(&name) {
                Ok(r) => r,
                Err(e) => {
                    summary.failures.push(format!("{}: {e}", stored.name));
                    continue;
                }
            };
            if let Err(e) = self.ensure_project(repo.project()).await {
                summary.failures.push(format!("{name}: project {}: {e}", repo.project()));
                continue;
            }
            summary.repositories += 1;
            self.import_repository(&v2, &repo, &stored, &mut summary).await;
        }
        Ok(summary)
    }

    pub(crate) async fn ensure_project(&self, name: &str) -> ServiceResult<()> {
        match self.project(&super::projects::ProjectRef::Name(name.to_owned())).await {
            Ok(_) => Ok(()),
            Err(ServiceError::NotFound(_)) => {
                let new = super::projects::NewProject { name: name.to_owned(), ..Default::default() };
                let owner = super::projects::Owner {
                    id: super::users::ADMIN_ID,
                    name: super::users::ADMIN.to_owned(),
                    sysadmin: true,
                };
                match self.create_project(new, &owner).await {
                    Ok(_) | Err(ServiceError::Conflict(_)) => Ok(()),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    async fn import_repository(&self, v2: &Path, repo: &RepoName, stored: &StoredRepo, summary: &mut ImportSummary) {
        // Every manifest of the repository, read and parsed first.
        let mut pending: Vec<(Digest, bytes::Bytes, Manifest)> = Vec::new();
        for digest in &stored.manifests {
            let bytes = match std::fs::read(blob_path(v2, digest)) {
                Ok(b) => bytes::Bytes::from(b),
                Err(e) => {
                    summary.failures.push(format!("{repo}@{digest}: manifest unreadable: {e}"));
                    continue;
                }
            };
            match Manifest::parse(None, &bytes) {
                Ok(m) => pending.push((digest.clone(), bytes, m)),
                Err(e) => summary.failures.push(format!("{repo}@{digest}: {e}")),
            }
        }
        // Images first, then indexes whose children are in, until nothing
        // more can go in.
        let mut stored_manifests: BTreeSet<Digest> = BTreeSet::new();
        loop {
            let mut progress = false;
            let mut rest = Vec::new();
            for (digest, bytes, manifest) in pending {
                let ready = manifest.kind == ManifestKind::Image
                    || manifest.manifests.iter().all(|c| stored_manifests.contains(&c.digest));
                if !ready {
                    rest.push((digest, bytes, manifest));
                    continue;
                }
                progress = true;
                match self.import_manifest(v2, repo, &digest, bytes, &manifest, summary).await {
                    Ok(()) => {
                        stored_manifests.insert(digest);
                        summary.manifests += 1;
                    }
                    Err(e) => summary.failures.push(format!("{repo}@{digest}: {e}")),
                }
            }
            pending = rest;
            if pending.is_empty() || !progress {
                break;
            }
        }
        for (digest, _, _) in &pending {
            summary.failures.push(format!("{repo}@{digest}: an index whose manifests are not in the store"));
        }
        for (tag, digest) in &stored.tags {
            if !stored_manifests.contains(digest) {
                summary.failures.push(format!("{repo}:{tag}: its manifest {digest} was not imported"));
                continue;
            }
            let Ok(tag_ref) = tag.parse() else {
                summary.failures.push(format!("{repo}:{tag}: not a valid tag"));
                continue;
            };
            let bytes = match std::fs::read(blob_path(v2, digest)) {
                Ok(b) => bytes::Bytes::from(b),
                Err(e) => {
                    summary.failures.push(format!("{repo}:{tag}: {e}"));
                    continue;
                }
            };
            match self.put_manifest(repo, &Reference::Tag(tag_ref), None, bytes).await {
                Ok(_) => summary.tags += 1,
                Err(e) => summary.failures.push(format!("{repo}:{tag}: {e}")),
            }
        }
    }

    /// Copies the blobs an image names (those berth lacks), then stores the
    /// manifest by digest.
    async fn import_manifest(
        &self,
        v2: &Path,
        repo: &RepoName,
        digest: &Digest,
        bytes: bytes::Bytes,
        manifest: &Manifest,
        summary: &mut ImportSummary,
    ) -> ServiceResult<()> {
        for blob in manifest.config.iter().chain(&manifest.layers) {
            if self.stat_blob(repo, &blob.digest).await.is_ok() {
                continue;
            }
            let path = blob_path(v2, &blob.digest);
            let file = match tokio::fs::File::open(&path).await {
                Ok(f) => f,
                // A foreign layer (Windows base images) lives elsewhere.
                Err(_) if !blob.urls.is_empty() => continue,
                Err(e) => return Err(ServiceError::Invalid(format!("blob {}: {e}", blob.digest))),
            };
            let stream: crate::blob::ByteStream = Box::pin(tokio_util::io::ReaderStream::new(file));
            let upload = self.start_upload(repo).await?;
            match self.complete_upload(repo, &upload.id, &blob.digest, None, Some(stream)).await {
                Ok(info) => {
                    summary.blobs += 1;
                    summary.bytes += info.size;
                }
                Err(e) => {
                    let _ = self.cancel_upload(repo, &upload.id).await;
                    return Err(e);
                }
            }
        }
        self.put_manifest(repo, &Reference::Digest(digest.clone()), Some(&manifest.media_type), bytes).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_layout_is_found_from_any_level() {
        let dir = tempfile::tempdir().unwrap();
        let v2 = dir.path().join("docker/registry/v2");
        std::fs::create_dir_all(v2.join("repositories/library/alpine/_manifests/tags/3/current")).unwrap();
        std::fs::create_dir_all(v2.join("repositories/solo/_manifests/revisions/sha256")).unwrap();
        std::fs::create_dir_all(v2.join("blobs")).unwrap();
        let d = format!("sha256:{}", "ab".repeat(32));
        std::fs::write(v2.join("repositories/library/alpine/_manifests/tags/3/current/link"), &d).unwrap();
        for root in [dir.path().to_owned(), dir.path().join("docker"), v2.clone()] {
            assert_eq!(v2_folder(&root).unwrap(), v2);
        }
        assert!(v2_folder(&dir.path().join("docker/registry/v2/blobs")).is_err());
        let repos = repositories(&v2);
        let names: Vec<&str> = repos.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["library/alpine", "solo"]);
        assert_eq!(repos[0].tags.get("3").map(|d| d.to_string()), Some(d));
    }
}

//! Harbor's view of what `/v2` stores: repositories with a description and
//! counts, artifacts (a manifest with its type, tags and children) and
//! tags as their own objects, and the operations Harbor's API adds on them:
//! deleting an artifact by any of its tags, adding and removing tags,
//! deleting a whole repository, copying an artifact to another repository.
//!
//! Nothing here has its own storage: it reads and writes the items of
//! [`super::manifests`] (tag, manifest, blob link, repository). Harbor's
//! numeric ids of repositories, artifacts and tags are derived from their
//! names ([`stable_id`]) rather than stored, so the push path writes
//! nothing more for them.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest as _, Sha256};

use crate::blob::keys as blob_keys;
use crate::meta::{Condition, ErrorKind, Item, Query, Write, keys, now_unix};
use crate::oci::{Descriptor, Digest, Manifest, Reference, RepoName, Tag};

use super::record::corrupt;
use super::{Registry, ServiceError, ServiceResult};

/// A positive id below 2^48 (safe in every JSON reader) derived from a
/// name: stable, and distinct for distinct names in practice.
pub fn stable_id(name: &str) -> i64 {
    let h = Sha256::digest(name.as_bytes());
    let mut b = [0u8; 8];
    b[2..].copy_from_slice(&h[..6]);
    i64::from_be_bytes(b).max(1)
}

#[derive(Debug, Clone, PartialEq)]
pub struct RepositoryInfo {
    pub id: i64,
    /// The full name, `<project>/<path>`.
    pub name: RepoName,
    pub description: String,
    pub artifact_count: usize,
    pub creation_time: i64,
    pub update_time: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TagInfo {
    pub name: String,
    pub digest: Digest,
    pub push_time: i64,
}

#[derive(Debug, Clone)]
pub struct ArtifactInfo {
    pub digest: Digest,
    pub manifest: Manifest,
    pub size: u64,
    pub push_time: i64,
    /// Tags on it, by name.
    pub tags: Vec<TagInfo>,
}

impl ArtifactInfo {
    /// Harbor's artifact type, from the config (or artifact) media type.
    pub fn kind(&self) -> &'static str {
        let config = self.manifest.config.as_ref().map(|c| c.media_type.as_str());
        if crate::oci::media::is_index(&self.manifest.media_type) {
            return "IMAGE";
        }
        let artifact = self.manifest.artifact_type.as_deref();
        match config.or(artifact).unwrap_or("") {
            crate::oci::media::OCI_CONFIG | crate::oci::media::DOCKER_CONFIG => "IMAGE",
            "application/vnd.cncf.helm.config.v1+json" => "CHART",
            "application/vnd.cnab.manifest.v1" => "CNAB",
            "application/vnd.cncf.model.config.v1+json" => "CNAI",
            t if t.starts_with("application/vnd.dev.cosign") || t.starts_with("application/vnd.cncf.notary") => {
                "SIGNATURE"
            }
            t if t.contains("sbom") || t.starts_with("application/spdx") || t.contains("cyclonedx") => "SBOM",
            _ => match artifact {
                Some(t) if t.starts_with("application/vnd.dev.cosign") => "SIGNATURE",
                _ => "UNKNOWN",
            },
        }
    }

    /// The media type Harbor reports as the artifact's: its config's.
    pub fn media_type(&self) -> &str {
        self.manifest.config.as_ref().map_or(self.manifest.media_type.as_str(), |c| c.media_type.as_str())
    }

    /// Index children.
    pub fn references(&self) -> &[Descriptor] {
        self.manifest.child_manifests()
    }
}

fn not_found(repo: &RepoName) -> ServiceError {
    ServiceError::NotFound(format!("repository {repo} not found"))
}

impl Registry {
    fn repository_info(&self, item: &Item, artifact_count: usize) -> ServiceResult<RepositoryInfo> {
        let name = item.str("name").and_then(|n| RepoName::parse(n).ok()).ok_or_else(|| corrupt("repository"))?;
        let created = item.i64("created_at").unwrap_or(0);
        Ok(RepositoryInfo {
            id: stable_id(name.as_str()),
            description: item.str("description").unwrap_or_default().to_owned(),
            artifact_count,
            creation_time: created,
            update_time: item.i64("update_time").unwrap_or(created),
            name,
        })
    }

    async fn artifact_count(&self, repo: &RepoName) -> ServiceResult<usize> {
        Ok(self.meta.query_all(Query::table(keys::repo_partition(repo), "A#")).await?.len())
    }

    /// The repositories of a project, by name.
    pub async fn repositories(&self, project: &str) -> ServiceResult<Vec<RepositoryInfo>> {
        let (pk, _) = keys::project(project);
        let items = self.meta.query_all(Query::table(pk, keys::REPOSITORY_PREFIX)).await?;
        let counts = futures::future::join_all(items.iter().map(|i| async move {
            let name = i.str("name").and_then(|n| RepoName::parse(n).ok()).ok_or_else(|| corrupt("repository"))?;
            self.artifact_count(&name).await
        }))
        .await;
        items.iter().zip(counts).map(|(item, count)| self.repository_info(item, count?)).collect()
    }

    /// One repository; `NotFound` when it has never held a manifest (or was
    /// deleted).
    pub async fn repository(&self, repo: &RepoName) -> ServiceResult<RepositoryInfo> {
        let (pk, sk) = keys::repository(repo);
        let item = self.meta.get(&pk, &sk).await?.ok_or_else(|| not_found(repo))?;
        self.repository_info(&item, self.artifact_count(repo).await?)
    }

    pub async fn set_repository_description(&self, repo: &RepoName, description: &str) -> ServiceResult<()> {
        if description.chars().count() > 1024 {
            return Err(ServiceError::Invalid("description is longer than 1024 characters".to_owned()));
        }
        let (pk, sk) = keys::repository(repo);
        let mut item = self.meta.get(&pk, &sk).await?.ok_or_else(|| not_found(repo))?;
        let created = item.i64("created_at").unwrap_or(0);
        item.attrs.insert("description".to_owned(), description.into());
        item.attrs.insert("update_time".to_owned(), now_unix().max(created).into());
        let cond = Condition::equals("name", repo.to_string());
        match self.meta.put(item, cond).await {
            Err(e) if e.is(ErrorKind::ConditionFailed) => Err(not_found(repo)),
            other => other.map_err(Into::into),
        }
    }

    /// Deletes a repository: every artifact with its tags and referrer
    /// entries, its blob links, then the repository and its catalog entry.
    /// Blobs stay for garbage collection.
    pub async fn delete_repository(&self, repo: &RepoName) -> ServiceResult<()> {
        self.repository(repo).await?;
        let partition = keys::repo_partition(repo);
        for item in self.meta.query_all(Query::table(&partition, "A#")).await? {
            let Some(digest) = item.sk.strip_prefix("A#").and_then(|d| d.parse::<Digest>().ok()) else { continue };
            match self.delete_manifest(repo, &Reference::Digest(digest)).await {
                Ok(()) | Err(ServiceError::ManifestUnknown(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let rest = self.meta.query_all(Query::table(&partition, "")).await?;
        for chunk in rest.chunks(crate::meta::MAX_TRANSACTION_WRITES) {
            let writes = chunk
                .iter()
                .map(|i| Write::Delete { pk: i.pk.clone(), sk: i.sk.clone(), cond: Condition::Always })
                .collect();
            self.meta.transact(writes).await?;
        }
        let (pk, sk) = keys::repository(repo);
        let (cpk, csk) = keys::catalog_entry(repo);
        self.meta
            .transact(vec![
                Write::Delete { pk, sk, cond: Condition::Always },
                Write::Delete { pk: cpk, sk: csk, cond: Condition::Always },
            ])
            .await?;
        Ok(())
    }

    /// The manifest of an artifact item, parsed.
    async fn artifact_of(&self, item: &Item, tags: Vec<TagInfo>) -> ServiceResult<ArtifactInfo> {
        let digest: Digest =
            item.sk.strip_prefix("A#").and_then(|d| d.parse().ok()).ok_or_else(|| corrupt("artifact"))?;
        let media_type = item.str("media_type").ok_or_else(|| corrupt("artifact"))?;
        let body = match item.str("body") {
            Some(b64) => bytes::Bytes::from(B64.decode(b64).map_err(|_| corrupt("manifest body"))?),
            None => self.blobs.get_bytes(&blob_keys::blob(&digest)).await?,
        };
        let manifest = Manifest::parse(Some(media_type), &body).map_err(|_| corrupt("stored manifest"))?;
        Ok(ArtifactInfo {
            size: item.i64("size").and_then(|s| u64::try_from(s).ok()).unwrap_or(body.len() as u64),
            push_time: item.i64("pushed_at").unwrap_or(0),
            digest,
            manifest,
            tags,
        })
    }

    /// Every tag of a repository, grouped by the digest it names.
    async fn tags_by_digest(&self, repo: &RepoName) -> ServiceResult<BTreeMap<String, Vec<TagInfo>>> {
        let items = self.meta.query_all(Query::table(keys::repo_partition(repo), keys::TAG_PREFIX)).await?;
        let mut out: BTreeMap<String, Vec<TagInfo>> = BTreeMap::new();
        for item in items {
            let (Some(name), Some(digest)) =
                (keys::tag_name(&item.sk), item.str("digest").and_then(|d| d.parse::<Digest>().ok()))
            else {
                return Err(corrupt("tag"));
            };
            let tag = TagInfo {
                name: name.to_owned(),
                digest: digest.clone(),
                push_time: item.i64("pushed_at").unwrap_or(0),
            };
            out.entry(digest.to_string()).or_default().push(tag);
        }
        Ok(out)
    }

    /// The artifacts of a repository, newest push first.
    pub async fn artifacts(&self, repo: &RepoName) -> ServiceResult<Vec<ArtifactInfo>> {
        self.repository(repo).await?;
        let items = self.meta.query_all(Query::table(keys::repo_partition(repo), "A#")).await?;
        let mut tags = self.tags_by_digest(repo).await?;
        let mut out = Vec::with_capacity(items.len());
        for item in &items {
            let digest = item.sk.strip_prefix("A#").unwrap_or_default();
            out.push(self.artifact_of(item, tags.remove(digest).unwrap_or_default()).await?);
        }
        out.sort_by(|a, b| b.push_time.cmp(&a.push_time).then_with(|| a.digest.to_string().cmp(&b.digest.to_string())));
        Ok(out)
    }

    /// One artifact by tag or digest; `ManifestUnknown` when missing.
    pub async fn artifact(&self, repo: &RepoName, reference: &Reference) -> ServiceResult<ArtifactInfo> {
        let digest = self.resolve(repo, reference).await?;
        let (pk, sk) = keys::artifact(repo, &digest);
        let item =
            self.meta.get(&pk, &sk).await?.ok_or_else(|| ServiceError::ManifestUnknown(reference.to_string()))?;
        let tags = self.tags_by_digest(repo).await?.remove(&digest.to_string()).unwrap_or_default();
        self.artifact_of(&item, tags).await
    }

    /// Deletes the artifact a tag or digest names, with all its tags
    /// (Harbor's artifact delete; `/v2` deletes only the tag).
    pub async fn delete_artifact(&self, repo: &RepoName, reference: &Reference) -> ServiceResult<()> {
        let digest = self.resolve(repo, reference).await?;
        self.delete_manifest(repo, &Reference::Digest(digest)).await
    }

    /// Adds a tag to an artifact; `Conflict` when the repository has the
    /// tag already.
    pub async fn create_tag(&self, repo: &RepoName, reference: &Reference, name: &str) -> ServiceResult<()> {
        let tag = Tag::parse(name).map_err(|e| ServiceError::Invalid(format!("invalid tag {name:?}: {e}")))?;
        let digest = self.artifact(repo, reference).await?.digest;
        let (pk, sk) = keys::tag(repo, &tag);
        let item = Item::new(pk, sk).with("digest", digest.to_string()).with("pushed_at", now_unix());
        match self.meta.put(item, Condition::NotExists).await {
            Err(e) if e.is(ErrorKind::ConditionFailed) => {
                Err(ServiceError::Conflict(format!("the tag {name} already exists in {repo}")))
            }
            other => other.map_err(Into::into),
        }
    }

    /// Removes a tag from the artifact it is on; `NotFound` unless the tag
    /// is on that artifact.
    pub async fn delete_tag(&self, repo: &RepoName, reference: &Reference, name: &str) -> ServiceResult<()> {
        let digest = self.resolve(repo, reference).await?;
        let missing = || ServiceError::NotFound(format!("tag {name} attached to artifact {digest} not found"));
        let tag = Tag::parse(name).map_err(|_| missing())?;
        let (pk, sk) = keys::tag(repo, &tag);
        match self.meta.delete(&pk, &sk, Condition::equals("digest", digest.to_string())).await {
            Err(e) if e.is(ErrorKind::ConditionFailed) => Err(missing()),
            other => other.map_err(Into::into),
        }
    }

    /// Copies an artifact (with the children of an index, and the blobs
    /// they need) from `src` into `dst`, under the source tag when the
    /// reference is one. The caller checked read access to `src`.
    pub async fn copy_artifact(&self, src: &RepoName, reference: &Reference, dst: &RepoName) -> ServiceResult<Digest> {
        let digest = self.resolve(src, reference).await?;
        Box::pin(self.copy_tree(src, &digest, dst)).await?;
        let record = self.get_manifest(src, &Reference::Digest(digest.clone()), true).await?;
        let target = match reference {
            Reference::Tag(_) => reference.clone(),
            Reference::Digest(_) => Reference::Digest(digest.clone()),
        };
        self.put_manifest(dst, &target, Some(&record.media_type), record.body).await?;
        Ok(digest)
    }

    /// Makes everything `digest` refers to present in `dst` (blobs linked,
    /// child manifests stored by digest), depth first.
    async fn copy_tree(&self, src: &RepoName, digest: &Digest, dst: &RepoName) -> ServiceResult<()> {
        let record = self.get_manifest(src, &Reference::Digest(digest.clone()), true).await?;
        let manifest =
            Manifest::parse(Some(&record.media_type), &record.body).map_err(|_| corrupt("stored manifest"))?;
        for blob in manifest.required_blobs() {
            if self.mount_blob(dst, &blob.digest, src).await?.is_none() {
                return Err(ServiceError::BlobUnknown(blob.digest.clone()));
            }
        }
        for child in manifest.child_manifests() {
            Box::pin(self.copy_tree(src, &child.digest, dst)).await?;
            let record = self.get_manifest(src, &Reference::Digest(child.digest.clone()), true).await?;
            self.put_manifest(dst, &Reference::Digest(child.digest.clone()), Some(&record.media_type), record.body)
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ids_are_stable_positive_and_js_safe() {
        let a = stable_id("library/app");
        assert_eq!(a, stable_id("library/app"));
        assert_ne!(a, stable_id("library/app2"));
        assert!(a > 0 && a < (1i64 << 48));
    }
}

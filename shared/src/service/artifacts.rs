//! Harbor's view of what `/v2` stores: repositories with a description and
//! counts, artifacts (a manifest with its type, tags and children) and
//! tags as their own objects, and the operations Harbor's API adds on them:
//! deleting an artifact by any of its tags, adding and removing tags,
//! deleting a whole repository, copying an artifact to another repository.
//!
//! Nothing here has its own storage: it reads and writes the items of
//! [`super::manifests`] (tag, manifest, blob link, repository, and their
//! list entries). Harbor's numeric ids of repositories, artifacts and tags
//! are derived from their names ([`stable_id`]) rather than stored, so the
//! push path writes nothing more for them. Listings are paged
//! ([`super::paging`]): repositories by name, artifacts newest first push
//! first, an artifact's tags by name, each with a counted total.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use sha2::{Digest as _, Sha256};

use crate::blob::keys as blob_keys;
use crate::events::{Event, EventKind};
use crate::meta::keys::{self, Counted};
use crate::meta::{Condition, ErrorKind, Item, Query, Write, now_unix};
use crate::oci::{Descriptor, Digest, Manifest, Reference, RepoName, Tag};

use super::immutability::TagChange;
use super::manifests::{ArtifactRecord, RepositoryRecord, TagEntry};
use super::paging::{Listing, Match, PageRequest, Source, count_write, walk};
use super::record::{corrupt, from_item};
use super::{Registry, ServiceError, ServiceResult};

/// Tags shown with each artifact of a listing (all of them are paged
/// through the artifact's tag list).
const TAGS_PER_ARTIFACT: usize = 100;

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
    pub artifact_count: u64,
    pub pull_count: u64,
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
    /// The last pull, Unix seconds (0: never).
    pub pull_time: i64,
    /// Tags on it, by name (the first [`TAGS_PER_ARTIFACT`]).
    pub tags: Vec<TagInfo>,
    /// How many tags it has.
    pub tag_count: u64,
    /// Which push of the digest this is (ms): what its labels are of.
    pub push_stamp: i64,
    /// An index's child or an accessory: left out of listings.
    pub hidden: bool,
    /// How many indexes of the repository reference it.
    pub parents: i64,
    /// Harbor's `extra_attrs` (see the artifact record's).
    pub extra_attrs: Option<serde_json::Value>,
}

/// The filters of an artifact listing, from Harbor's `q`: a `digest` or a
/// `tags` value given exactly is one lookup; other tests (fuzzy values,
/// `type`) walk the repository's artifacts.
#[derive(Debug, Clone, Default)]
pub struct ArtifactFilter {
    pub digest: Option<Match>,
    pub tags: Option<Match>,
    pub kind: Option<Match>,
    /// The artifact's media type (its config's).
    pub media_type: Option<Match>,
    /// Label ids (Harbor's `labels=(1 2)`: all of them).
    pub labels: Option<Match>,
    /// Index children and accessories too (Harbor's `base=*`).
    pub all: bool,
}

impl ArtifactFilter {
    fn is_empty(&self) -> bool {
        self.digest.is_none()
            && self.tags.is_none()
            && self.kind.is_none()
            && self.media_type.is_none()
            && self.labels.is_none()
    }

    fn keeps(&self, a: &ArtifactInfo, label_ids: &[i64]) -> bool {
        let ids: Vec<String> = label_ids.iter().map(i64::to_string).collect();
        (self.all || !a.hidden)
            && self.digest.as_ref().is_none_or(|m| m.matches(&a.digest.to_string()))
            && self.tags.as_ref().is_none_or(|m| m.matches_any_of(a.tags.iter().map(|t| t.name.as_str())))
            && self.kind.as_ref().is_none_or(|m| m.matches(a.kind()))
            && self.media_type.as_ref().is_none_or(|m| m.matches(a.media_type()))
            && self.labels.as_ref().is_none_or(|m| m.matches_any_of(ids.iter().map(String::as_str)))
    }
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
            "application/vnd.wasm.config.v0+json" | "application/vnd.wasm.config.v1+json" => "WASM",
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

/// Whether a push-order entry is of an artifact listings hide.
fn hidden_entry(e: &Item) -> bool {
    e.attrs.get(keys::attr::HIDDEN).and_then(serde_json::Value::as_bool) == Some(true)
}

fn not_found(repo: &RepoName) -> ServiceError {
    ServiceError::NotFound(format!("repository {repo} not found"))
}

impl Registry {
    async fn repository_info(&self, record: RepositoryRecord) -> ServiceResult<RepositoryInfo> {
        let name = RepoName::parse(&record.name).map_err(|_| corrupt("repository"))?;
        let artifact_count = self.listed_artifacts(&name).await?;
        Ok(RepositoryInfo {
            id: stable_id(name.as_str()),
            description: record.description,
            artifact_count,
            pull_count: u64::try_from(record.pull_count).unwrap_or(0),
            creation_time: record.created_at,
            update_time: if record.update_time == 0 { record.created_at } else { record.update_time },
            name,
        })
    }

    async fn repository_record(&self, repo: &RepoName) -> ServiceResult<RepositoryRecord> {
        let (pk, sk) = keys::repository(repo);
        let item = self.meta.get(&pk, &sk).await?.ok_or_else(|| not_found(repo))?;
        from_item(item, "repository")
    }

    /// A page of a project's repositories by name; a `name` filter (on the
    /// full name) is tested on the list's keys, and pages walked past cost
    /// key-only reads.
    pub async fn list_repositories(
        &self,
        project: &str,
        name: Option<&Match>,
        req: &PageRequest,
    ) -> ServiceResult<Listing<RepositoryInfo>> {
        let (pk, _) = keys::project(project);
        let query = Query::table(pk, keys::REPOSITORY_PREFIX).keys_only();
        let keep = |i: &Item| name.is_none_or(|m| keys::repository_name(&i.sk).is_some_and(|n| m.matches(n)));
        let counted = Counted::Repositories(project);
        let (entries, next, total) = self.page_of(query, counted, req, name.is_some(), keep).await?;
        let mut items = Vec::with_capacity(entries.len());
        for e in entries {
            let repo = keys::repository_name(&e.sk).and_then(|n| RepoName::parse(n).ok());
            let repo = repo.ok_or_else(|| corrupt("repository key"))?;
            match self.repository_record(&repo).await {
                Ok(record) => items.push(self.repository_info(record).await?),
                // Deleted since the listing.
                Err(ServiceError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Listing { items, total, next })
    }

    /// A page of the repositories of every project (`projects: None`), or of
    /// the projects `visible` accepts, by full name. Served from the
    /// catalog: for all projects and no `name` filter it is paged and
    /// counted; otherwise the catalog is walked and tested.
    pub async fn list_all_repositories(
        &self,
        visible: Option<&(dyn Fn(&str) -> bool + Sync)>,
        name: Option<&Match>,
        req: &PageRequest,
    ) -> ServiceResult<Listing<RepositoryInfo>> {
        let project_of = |repo: &str| repo.split_once('/').map_or(repo, |(p, _)| p).to_owned();
        let keep = |e: &Item| visible.is_none_or(|v| v(&project_of(&e.sk))) && name.is_none_or(|m| m.matches(&e.sk));
        let query = Query::table(keys::CATALOG, "").keys_only();
        let filtered = visible.is_some() || name.is_some();
        let (entries, next, total) = self.page_of(query, Counted::Catalog, req, filtered, keep).await?;
        let mut items = Vec::with_capacity(entries.len());
        for e in entries {
            let repo = RepoName::parse(&e.sk).map_err(|_| corrupt("catalog entry"))?;
            match self.repository_record(&repo).await {
                Ok(record) => items.push(self.repository_info(record).await?),
                Err(ServiceError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Listing { items, total, next })
    }

    /// One repository; `NotFound` when it has never held a manifest (or was
    /// deleted).
    pub async fn repository(&self, repo: &RepoName) -> ServiceResult<RepositoryInfo> {
        self.repository_info(self.repository_record(repo).await?).await
    }

    pub async fn set_repository_description(&self, repo: &RepoName, description: &str) -> ServiceResult<()> {
        if description.chars().count() > 1024 {
            return Err(ServiceError::Invalid("description is longer than 1024 characters".to_owned()));
        }
        let record = self.repository_record(repo).await?;
        // Only these attributes: the pull count moves meanwhile.
        let attrs = crate::meta::Attrs::from_iter([
            ("description".to_owned(), description.into()),
            (keys::attr::UPDATE_TIME.to_owned(), now_unix().max(record.created_at).into()),
        ]);
        let (pk, sk) = keys::repository(repo);
        let cond = Condition::equals(keys::attr::NAME, repo.to_string());
        match self.meta.transact(vec![Write::Set { pk, sk, attrs, cond }]).await {
            Err(e) if e.is(ErrorKind::ConditionFailed) => Err(not_found(repo)),
            other => other.map_err(Into::into),
        }
    }

    /// Deletes a repository: every artifact with its tags and referrer
    /// entries, its blob links, then the repository and its catalog entry.
    /// Blobs stay for garbage collection.
    pub async fn delete_repository(&self, repo: &RepoName) -> ServiceResult<()> {
        self.repository_record(repo).await?;
        let partition = keys::repo_partition(repo);
        if !self.immutability(repo.project()).await?.is_empty() {
            // Refused before anything goes, not part-way.
            let tags = self.meta.query_all(Query::table(&partition, keys::TAG_PREFIX).keys_only()).await?;
            let names = tags.iter().filter_map(|t| t.sk.strip_prefix(keys::TAG_PREFIX));
            self.require_mutable_all(repo, names, TagChange::Delete).await?;
        }
        loop {
            let page = self.meta.query(Query::table(&partition, keys::PUSHED_PREFIX).limit(100).keys_only()).await?;
            if page.items.is_empty() {
                break;
            }
            for entry in page.items {
                let digest = keys::pushed_digest(&entry.sk).ok_or_else(|| corrupt("artifact entry"))?;
                match self.delete_manifest(repo, &Reference::Digest(digest)).await {
                    Ok(()) | Err(ServiceError::ManifestUnknown(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        // Blob links, each with its reference in the project's usage.
        loop {
            let query = Query::table(&partition, keys::BLOB_LINK_PREFIX).limit(100).keys_only();
            let page = self.meta.query(query).await?;
            if page.items.is_empty() {
                break;
            }
            for entry in page.items {
                let digest = entry
                    .sk
                    .strip_prefix(keys::BLOB_LINK_PREFIX)
                    .and_then(|d| d.parse::<Digest>().ok())
                    .ok_or_else(|| corrupt("blob link"))?;
                self.unlink_blob(repo, &digest).await?;
            }
        }
        // What is left: whatever a failed delete left.
        loop {
            let page = self.meta.query(Query::table(&partition, "").limit(25).keys_only()).await?;
            if page.items.is_empty() {
                break;
            }
            let writes =
                page.items.into_iter().map(|i| Write::Delete { pk: i.pk, sk: i.sk, cond: Condition::Always }).collect();
            self.meta.transact(writes).await?;
        }
        let (pk, sk) = keys::repository(repo);
        let (cpk, csk) = keys::catalog_entry(repo);
        let writes = vec![
            Write::Delete { pk, sk, cond: Condition::Exists },
            Write::Delete { pk: cpk, sk: csk, cond: Condition::Always },
            count_write(Counted::Repositories(repo.project()), repo.as_str(), -1),
            count_write(Counted::Catalog, repo.as_str(), -1),
        ];
        let mut event = Event::about(EventKind::DeleteRepository, self.actor(), Some(repo.project()), repo.as_str());
        event.repository = Some(repo.to_string());
        match self.commit_with_events(writes, vec![event]).await {
            // Deleted by a concurrent request meanwhile.
            Err(e) if e.is(ErrorKind::ConditionFailed) => Err(not_found(repo)),
            other => other.map_err(Into::into),
        }
    }

    /// The artifact of a record, its manifest parsed, with its first tags.
    async fn artifact_of(
        &self,
        repo: &RepoName,
        digest: Digest,
        record: ArtifactRecord,
    ) -> ServiceResult<ArtifactInfo> {
        let body = match &record.body {
            Some(b64) => bytes::Bytes::from(B64.decode(b64).map_err(|_| corrupt("manifest body"))?),
            None => self.blobs.get_bytes(&blob_keys::blob(&digest)).await?,
        };
        let mut manifest = Manifest::parse(Some(&record.media_type), &body).map_err(|_| corrupt("stored manifest"))?;
        if record.partial {
            // A proxy cache's index references the children it holds.
            let held = futures::future::try_join_all(manifest.manifests.iter().map(|c| async move {
                let (pk, sk) = keys::artifact(repo, &c.digest);
                self.meta.get(&pk, &sk).await.map(|i| i.is_some())
            }))
            .await?;
            let mut held = held.into_iter();
            manifest.manifests.retain(|_| held.next().unwrap_or(false));
        }
        let tags = self.tags_of(repo, &digest, &PageRequest::first(TAGS_PER_ARTIFACT), None).await?.items;
        Ok(ArtifactInfo {
            size: record.size,
            push_time: record.pushed_at,
            pull_time: record.pull_time,
            tag_count: u64::try_from(record.tag_count).unwrap_or(0),
            push_stamp: super::labels::stamp_of(&record),
            hidden: super::references::is_hidden(&record),
            parents: record.parents,
            extra_attrs: record.extra_attrs.clone(),
            digest,
            manifest,
            tags,
        })
    }

    /// A page of an artifact's tags by name (a `name` filter is tested on
    /// the list's keys); the total is the artifact's tag count.
    pub async fn tags_of(
        &self,
        repo: &RepoName,
        digest: &Digest,
        req: &PageRequest,
        name: Option<&Match>,
    ) -> ServiceResult<Listing<TagInfo>> {
        let prefix = keys::artifact_tags_prefix(digest);
        let query = Query::table(keys::repo_partition(repo), prefix.as_str());
        let keep = |e: &Item| name.is_none_or(|m| e.sk.strip_prefix(&prefix).is_some_and(|n| m.matches(n)));
        let (entries, next, walked) =
            walk(self.meta.as_ref(), vec![Source::query(query)], req, name.is_some(), keep).await?;
        let mut items = Vec::with_capacity(entries.len());
        for e in entries {
            let name = e.sk.strip_prefix(&prefix).ok_or_else(|| corrupt("tag entry"))?.to_owned();
            let entry: TagEntry = from_item(e, "tag entry")?;
            items.push(TagInfo { name, digest: digest.clone(), push_time: entry.pushed_at });
        }
        let total = match walked {
            Some(n) => n,
            None => {
                let record = self.artifact_record(repo, digest).await?;
                record.map_or(0, |r| u64::try_from(r.tag_count).unwrap_or(0))
            }
        };
        Ok(Listing { items, total, next })
    }

    /// A page of a repository's artifacts, newest first push first. An
    /// exact `digest` or `tags` filter is one lookup; others walk.
    pub async fn list_artifacts(
        &self,
        repo: &RepoName,
        filter: &ArtifactFilter,
        req: &PageRequest,
    ) -> ServiceResult<Listing<ArtifactInfo>> {
        self.repository_record(repo).await?;
        let exact = match (filter.digest.as_ref().and_then(Match::exact), filter.tags.as_ref().and_then(Match::exact)) {
            (Some(d), _) => Some(d.parse::<Digest>().map(Reference::Digest).ok()),
            (None, Some(t)) => Some(Tag::parse(t).map(Reference::Tag).ok()),
            (None, None) => None,
        };
        if let Some(reference) = exact {
            let found = match reference {
                Some(r) => match self.artifact(repo, &r).await {
                    Ok(a) if self.filter_keeps(repo, filter, &a).await? => Some(a),
                    Ok(_) => None,
                    Err(ServiceError::ManifestUnknown(_)) => None,
                    Err(e) => return Err(e),
                },
                None => None,
            };
            let items: Vec<ArtifactInfo> = found.into_iter().collect();
            return Ok(Listing { total: items.len() as u64, items, next: None });
        }
        // Newest first unless the request is descending by push time.
        let query = Query::table(keys::repo_partition(repo), keys::PUSHED_PREFIX);
        let counts = (Counted::Artifacts(repo), Counted::HiddenArtifacts(repo));
        let target = |e: &Item| keys::pushed_digest(&e.sk).map(|d| (repo.clone(), d));
        let listing = self.pushed_listing(query, counts, filter, req, target).await?;
        Ok(listing.map(|(_, a)| a))
    }

    /// A page of a project's artifacts across its repositories, newest
    /// first push first, with the repository of each.
    pub async fn list_project_artifacts(
        &self,
        project: &str,
        filter: &ArtifactFilter,
        req: &PageRequest,
    ) -> ServiceResult<Listing<(RepoName, ArtifactInfo)>> {
        let query = Query::table(keys::project(project).0, keys::PROJECT_PUSHED_PREFIX);
        let counts = (Counted::ProjectArtifacts(project), Counted::ProjectHiddenArtifacts(project));
        self.pushed_listing(query, counts, filter, req, |e| keys::project_artifact_of(&e.sk)).await
    }

    /// Harbor's `latest_in_repository`: of the artifacts `filter` keeps, the
    /// newest pushed of each repository of the project, paged in the order
    /// asked. A walk of the project's list (newest first); what it keeps is
    /// one artifact per repository.
    pub async fn latest_project_artifacts(
        &self,
        project: &str,
        filter: &ArtifactFilter,
        req: &PageRequest,
    ) -> ServiceResult<Listing<(RepoName, ArtifactInfo)>> {
        let mut query = Query::table(keys::project(project).0, keys::PROJECT_PUSHED_PREFIX).limit(100);
        query.reverse = true;
        let mut latest: Vec<(RepoName, ArtifactInfo)> = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        loop {
            let page = self.meta.query(query.clone()).await?;
            let entries: Vec<Item> = page
                .items
                .into_iter()
                .filter(|e| filter.all || !hidden_entry(e))
                .filter(|e| keys::project_artifact_of(&e.sk).is_some_and(|(repo, _)| !seen.contains(repo.as_str())))
                .collect();
            for (repo, a) in self.artifacts_at(&entries, &|e: &Item| keys::project_artifact_of(&e.sk)).await? {
                if !seen.contains(repo.as_str()) && self.filter_keeps(&repo, filter, &a).await? {
                    seen.insert(repo.to_string());
                    latest.push((repo, a));
                }
            }
            match page.next {
                Some(c) => query.cursor = Some(c),
                None => break,
            }
        }
        if !req.descending {
            latest.reverse();
        }
        Ok(Listing::of_all(latest, req))
    }

    /// A page of a push-order list (`query`, counted in `counts.0`, its
    /// hidden entries in `counts.1`), each entry read as the artifact
    /// `target` names.
    async fn pushed_listing(
        &self,
        query: Query,
        counts: (Counted<'_>, Counted<'_>),
        filter: &ArtifactFilter,
        req: &PageRequest,
        target: impl Fn(&Item) -> Option<(RepoName, Digest)> + Sync,
    ) -> ServiceResult<Listing<(RepoName, ArtifactInfo)>> {
        if filter.is_empty() && filter.all {
            let (entries, next, total) = self.page_of(query.keys_only(), counts.0, req, false, |_| true).await?;
            let items = self.artifacts_at(&entries, &target).await?;
            return Ok(Listing { items, total, next });
        }
        if filter.is_empty() {
            // The entries say which are hidden: the page costs what it skips.
            let (entries, next, _) =
                walk(self.meta.as_ref(), vec![Source::query(query)], req, false, |e| !hidden_entry(e)).await?;
            let items = self.artifacts_at(&entries, &target).await?;
            let total = self.count(counts.0).await?.saturating_sub(self.count(counts.1).await?);
            return Ok(Listing { items, total, next });
        }
        // A test of what only the artifact knows: walk them all, reading
        // each, keeping the page and counting the rest.
        let skip = req.page.saturating_sub(1).saturating_mul(req.size as u64);
        let (mut items, mut total) = (Vec::with_capacity(req.size), 0u64);
        let mut query = Query { reverse: req.descending, ..query }.limit(100);
        loop {
            let page = self.meta.query(query.clone()).await?;
            let entries: Vec<Item> = page.items.into_iter().filter(|e| filter.all || !hidden_entry(e)).collect();
            for (repo, a) in self.artifacts_at(&entries, &target).await? {
                if self.filter_keeps(&repo, filter, &a).await? {
                    if total >= skip && items.len() < req.size {
                        items.push((repo, a));
                    }
                    total += 1;
                }
            }
            match page.next {
                Some(c) => query.cursor = Some(c),
                None => break,
            }
        }
        Ok(Listing { items, total, next: None })
    }

    /// The artifacts push-order entries name, in their order (one deleted
    /// since is left out).
    async fn artifacts_at(
        &self,
        entries: &[Item],
        target: &(impl Fn(&Item) -> Option<(RepoName, Digest)> + Sync),
    ) -> ServiceResult<Vec<(RepoName, ArtifactInfo)>> {
        let reads = entries.iter().map(|e| async move {
            let (repo, digest) = target(e).ok_or_else(|| corrupt("artifact entry"))?;
            match self.artifact_record(&repo, &digest).await? {
                Some(record) => self.artifact_of(&repo, digest, record).await.map(|a| Some((repo, a))),
                None => Ok(None),
            }
        });
        let found = futures::future::try_join_all(reads).await?;
        Ok(found.into_iter().flatten().collect())
    }

    /// How many artifacts a repository's listing shows: all but index
    /// children and accessories.
    pub async fn listed_artifacts(&self, repo: &RepoName) -> ServiceResult<u64> {
        let all = self.count(Counted::Artifacts(repo)).await?;
        Ok(all.saturating_sub(self.count(Counted::HiddenArtifacts(repo)).await?))
    }

    /// Whether an artifact passes a filter (reading its labels when the
    /// filter tests them).
    async fn filter_keeps(&self, repo: &RepoName, filter: &ArtifactFilter, a: &ArtifactInfo) -> ServiceResult<bool> {
        let ids = match filter.labels {
            Some(_) => self.artifact_label_ids(repo, &a.digest, a.push_stamp).await?,
            None => Vec::new(),
        };
        Ok(filter.keeps(a, &ids))
    }

    /// One artifact by tag or digest; `ManifestUnknown` when missing.
    pub async fn artifact(&self, repo: &RepoName, reference: &Reference) -> ServiceResult<ArtifactInfo> {
        let digest = self.resolve(repo, reference).await?;
        let record = self
            .artifact_record(repo, &digest)
            .await?
            .ok_or_else(|| ServiceError::ManifestUnknown(reference.to_string()))?;
        self.artifact_of(repo, digest, record).await
    }

    /// Deletes the artifact a tag or digest names as Harbor does: with all
    /// its tags, its accessories, and the children of an index that no
    /// other index references and no tag names. A child of an index is not
    /// deleted alone (`PreconditionFailed`). (`/v2` deletes only what it
    /// names.)
    pub async fn delete_artifact(&self, repo: &RepoName, reference: &Reference) -> ServiceResult<()> {
        let digest = self.resolve(repo, reference).await?;
        let record = self
            .artifact_record(repo, &digest)
            .await?
            .ok_or_else(|| ServiceError::ManifestUnknown(digest.to_string()))?;
        if record.parents > 0 {
            return Err(ServiceError::PreconditionFailed(format!(
                "the artifact {digest} is referenced by an index of {repo}: delete the index instead"
            )));
        }
        self.delete_deeply(repo, &digest).await
    }

    async fn delete_deeply(&self, repo: &RepoName, digest: &Digest) -> ServiceResult<()> {
        let Some(record) = self.artifact_record(repo, digest).await? else { return Ok(()) };
        let children = self.children_of(digest, &record).await?;
        let accessories = self.accessories(repo, digest).await?;
        match self.delete_manifest(repo, &Reference::Digest(digest.clone())).await {
            Ok(()) | Err(ServiceError::ManifestUnknown(_)) => {}
            Err(e) => return Err(e),
        }
        for a in accessories {
            Box::pin(self.delete_deeply(repo, &a.digest)).await?;
        }
        for child in children {
            let orphan = self.artifact_record(repo, &child).await?.is_some_and(|r| r.parents == 0 && r.tag_count == 0);
            if orphan {
                Box::pin(self.delete_deeply(repo, &child)).await?;
            }
        }
        Ok(())
    }

    /// Adds a tag to an artifact; `Conflict` when the repository has the
    /// tag already.
    pub async fn create_tag(&self, repo: &RepoName, reference: &Reference, name: &str) -> ServiceResult<()> {
        let tag = Tag::parse(name).map_err(|e| ServiceError::Invalid(format!("invalid tag {name:?}: {e}")))?;
        let digest = self.resolve(repo, reference).await?;
        self.add_tag(repo, &digest, &tag).await
    }

    /// Removes a tag from the artifact it is on; `NotFound` unless the tag
    /// is on that artifact.
    pub async fn delete_tag(&self, repo: &RepoName, reference: &Reference, name: &str) -> ServiceResult<()> {
        let digest = self.resolve(repo, reference).await?;
        let missing = || ServiceError::NotFound(format!("tag {name} attached to artifact {digest} not found"));
        let tag = Tag::parse(name).map_err(|_| missing())?;
        match self.untag(repo, &tag, Some(&digest)).await {
            Err(ServiceError::ManifestUnknown(_)) => Err(missing()),
            other => other,
        }
    }

    /// Copies an artifact (with the children of an index, and the blobs
    /// they need) from `src` into `dst` with every tag it has in `src`, as
    /// Harbor does: a tag `dst` has already moves to the copy, unless it is
    /// immutable (then nothing is copied). The caller checked read access
    /// to `src`.
    pub async fn copy_artifact(&self, src: &RepoName, reference: &Reference, dst: &RepoName) -> ServiceResult<Digest> {
        let digest = self.resolve(src, reference).await?;
        let mut tags = Vec::new();
        for name in self.artifact_tag_names(src, &digest).await? {
            tags.push(Tag::parse(&name).map_err(|_| corrupt("tag entry"))?);
        }
        let mut moved = Vec::new();
        for t in &tags {
            if self.tag_record(dst, t).await?.is_some_and(|r| r.digest != digest.to_string()) {
                moved.push(t.as_str());
            }
        }
        self.require_mutable_all(dst, moved, TagChange::Update).await?;
        Box::pin(self.copy_tree(src, &digest, dst)).await?;
        let record = self.get_manifest(src, &Reference::Digest(digest.clone()), true).await?;
        self.put_manifest(dst, &Reference::Digest(digest.clone()), Some(&record.media_type), record.body.clone())
            .await?;
        for t in tags {
            if self.tag_record(dst, &t).await?.is_some_and(|r| r.digest == digest.to_string()) {
                continue;
            }
            self.put_manifest(dst, &Reference::Tag(t), Some(&record.media_type), record.body.clone()).await?;
        }
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

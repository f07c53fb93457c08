//! Manifests, tags, referrers and the catalog.
//!
//! A manifest is stored byte for byte as pushed. Small manifests (nearly
//! all) live inline in their table item, so a pull by tag is two table
//! reads and no object-store request; larger ones go to the blob store at
//! their content address. What an item records beside the body (blob and
//! child lists, annotations) grows with the manifest too: when it would not
//! fit a table item it is left out, the item is marked `in_body`, and readers
//! take it from the manifest. A manifest, its tag and its referrer entry are
//! written in one transaction, so a tag never points at a half-written
//! manifest and two concurrent pushes of one tag leave one consistent winner.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use serde_json::{Value, json};

use crate::blob::keys as blob_keys;
use crate::meta::keys::Key;
use crate::meta::{Condition, ErrorKind, Item, Query, Write, keys, now_unix};
use crate::oci::{Descriptor, Digest, Manifest, Reference, RepoName};

use super::record::corrupt;
use super::{Registry, ServiceError, ServiceResult};

/// Manifests up to this size are kept inline in the table (base64 must fit
/// DynamoDB's 400 KB item).
const INLINE_LIMIT: usize = 192 * 1024;
/// The most tags or repositories one listing request returns.
pub const MAX_PAGE: usize = 10_000;

/// A stored manifest.
#[derive(Debug, Clone)]
pub struct ManifestRecord {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    /// The exact bytes as pushed (empty when only metadata was asked for).
    pub body: Bytes,
}

#[derive(Debug, Clone)]
pub struct PutOutcome {
    pub digest: Digest,
    /// The `subject` the manifest refers to, when it has one.
    pub subject: Option<Digest>,
}

/// One page of names (tags or repositories), in lexical order.
#[derive(Debug, Clone, Default)]
pub struct NamePage {
    pub names: Vec<String>,
    /// More names follow the last one.
    pub more: bool,
}

/// Marks an item that left out attributes which would not fit a table item
/// (blob and child lists, annotations: they grow with the manifest); readers
/// take them from the stored manifest instead.
const IN_BODY: &str = "in_body";

/// Whether the table accepts `item` (its size limit).
fn fits(item: &Item) -> bool {
    crate::meta::validate_item(item).is_ok()
}

/// `item`, without the attributes `derived` (marked [`IN_BODY`]) if it is
/// too large with them.
fn fit_item(mut item: Item, derived: &[&str]) -> Item {
    if fits(&item) {
        return item;
    }
    for attr in derived {
        item.attrs.remove(*attr);
    }
    item.with(IN_BODY, true)
}

impl Registry {
    /// Stores a manifest under its digest, and under `reference` when that
    /// is a tag. Every blob it names must be linked in the repository and
    /// every child manifest stored there (`ManifestBlobUnknown`); a `subject`
    /// may be absent.
    pub async fn put_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
        content_type: Option<&str>,
        bytes: Bytes,
    ) -> ServiceResult<PutOutcome> {
        let manifest =
            Manifest::parse(content_type, &bytes).map_err(|e| ServiceError::ManifestInvalid(e.to_string()))?;
        let digest = match reference {
            Reference::Digest(d) => {
                let actual = d.of_same_kind(&bytes);
                if &actual != d {
                    return Err(ServiceError::DigestInvalid(format!("manifest has digest {actual}, not {d}")));
                }
                actual
            }
            Reference::Tag(_) => Digest::sha256_of(&bytes),
        };
        self.require_project(repo).await?;
        self.check_references(repo, &manifest).await?;

        let (pk, sk) = keys::artifact(repo, &digest);
        let now = now_unix();
        let mut artifact = Item::new(pk, sk)
            .with("media_type", manifest.media_type.clone())
            .with("size", bytes.len())
            .with("pushed_at", now)
            .with("blobs", manifest.required_blobs().iter().map(|d| d.digest.to_string()).collect::<Vec<_>>())
            .with("manifests", manifest.child_manifests().iter().map(|d| d.digest.to_string()).collect::<Vec<_>>());
        if let Some(t) = manifest.referrer_artifact_type() {
            artifact = artifact.with("artifact_type", t);
        }
        if !manifest.annotations.is_empty() {
            artifact = artifact.with("annotations", json!(manifest.annotations));
        }
        if let Some(subject) = &manifest.subject {
            artifact = artifact.with("subject", subject.digest.to_string());
        }
        let mut artifact = fit_item(artifact, &["blobs", "manifests", "annotations"]);
        let inline = artifact.clone().with("body", B64.encode(&bytes));
        if bytes.len() <= INLINE_LIMIT && fits(&inline) {
            artifact = inline;
        } else {
            self.blobs.put_bytes(&blob_keys::blob(&digest), bytes.clone()).await?;
        }

        let mut writes = vec![Write::Put { item: artifact, cond: Condition::Always }];
        if let Reference::Tag(tag) = reference {
            let (pk, sk) = keys::tag(repo, tag);
            let item = Item::new(pk, sk).with("digest", digest.to_string()).with("pushed_at", now);
            writes.push(Write::Put { item, cond: Condition::Always });
        }
        if let Some(subject) = &manifest.subject {
            let (pk, sk) = keys::referrer(repo, &subject.digest, &digest);
            let mut item = Item::new(pk, sk).with("media_type", manifest.media_type.clone()).with("size", bytes.len());
            if let Some(t) = manifest.referrer_artifact_type() {
                item = item.with("artifact_type", t);
            }
            if !manifest.annotations.is_empty() {
                item = item.with("annotations", json!(manifest.annotations));
            }
            writes.push(Write::Put { item: fit_item(item, &["annotations"]), cond: Condition::Always });
        }
        self.ensure_repository(repo).await?;
        self.meta.transact(writes).await?;
        Ok(PutOutcome { digest, subject: manifest.subject.map(|s| s.digest) })
    }

    async fn check_references(&self, repo: &RepoName, manifest: &Manifest) -> ServiceResult<()> {
        let blobs = manifest.required_blobs();
        let children = manifest.child_manifests();
        // Each distinct reference is looked up once: images repeat layers
        // (the empty one), and a 4 MiB manifest can name one blob 20,000 times.
        let checks: BTreeMap<Key, &Digest> = blobs
            .iter()
            .map(|d| (keys::blob_link(repo, &d.digest), &d.digest))
            .chain(children.iter().map(|d| (keys::artifact(repo, &d.digest), &d.digest)))
            .collect();
        let lookups = checks.into_iter().map(|((pk, sk), digest)| async move {
            match self.meta.get(&pk, &sk).await {
                Ok(Some(_)) => Ok(()),
                Ok(None) => Err(ServiceError::ManifestBlobUnknown(digest.clone())),
                Err(e) => Err(e.into()),
            }
        });
        futures::future::try_join_all(lookups).await?;
        Ok(())
    }

    /// Records the repository (and its catalog entry) on its first manifest.
    async fn ensure_repository(&self, repo: &RepoName) -> ServiceResult<()> {
        let (pk, sk) = keys::repository(repo);
        if self.meta.get(&pk, &sk).await?.is_some() {
            return Ok(());
        }
        let now = now_unix();
        let (cpk, csk) = keys::catalog_entry(repo);
        let writes = vec![
            Write::Put {
                item: Item::new(pk, sk).with("name", repo.to_string()).with("created_at", now),
                cond: Condition::NotExists,
            },
            Write::Put { item: Item::new(cpk, csk).with("created_at", now), cond: Condition::Always },
        ];
        match self.meta.transact(writes).await {
            Err(e) if !e.is(ErrorKind::ConditionFailed) => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// The digest a reference names in `repo`.
    pub async fn resolve(&self, repo: &RepoName, reference: &Reference) -> ServiceResult<Digest> {
        match reference {
            Reference::Digest(d) => Ok(d.clone()),
            Reference::Tag(tag) => {
                let (pk, sk) = keys::tag(repo, tag);
                let item =
                    self.meta.get(&pk, &sk).await?.ok_or_else(|| ServiceError::ManifestUnknown(tag.to_string()))?;
                item.str("digest").and_then(|d| d.parse().ok()).ok_or_else(|| corrupt("tag"))
            }
        }
    }

    /// A manifest by tag or digest; `with_body: false` answers a HEAD
    /// without reading large manifests from the blob store.
    pub async fn get_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
        with_body: bool,
    ) -> ServiceResult<ManifestRecord> {
        let digest = self.resolve(repo, reference).await?;
        let (pk, sk) = keys::artifact(repo, &digest);
        let item =
            self.meta.get(&pk, &sk).await?.ok_or_else(|| ServiceError::ManifestUnknown(reference.to_string()))?;
        let media_type = item.str("media_type").ok_or_else(|| corrupt("manifest item"))?.to_owned();
        let size = item.i64("size").and_then(|s| u64::try_from(s).ok()).ok_or_else(|| corrupt("manifest item"))?;
        let body = match (with_body, item.str("body")) {
            (false, _) => Bytes::new(),
            (true, Some(b64)) => Bytes::from(B64.decode(b64).map_err(|_| corrupt("manifest body"))?),
            (true, None) => self.blobs.get_bytes(&blob_keys::blob(&digest)).await?,
        };
        Ok(ManifestRecord { digest, media_type, size, body })
    }

    /// Deletes a tag, or a manifest with every tag on it and its referrer
    /// entry.
    pub async fn delete_manifest(&self, repo: &RepoName, reference: &Reference) -> ServiceResult<()> {
        match reference {
            Reference::Tag(tag) => {
                let (pk, sk) = keys::tag(repo, tag);
                self.meta.delete(&pk, &sk, Condition::Exists).await.map_err(|e| {
                    if e.is(ErrorKind::ConditionFailed) {
                        ServiceError::ManifestUnknown(tag.to_string())
                    } else {
                        e.into()
                    }
                })
            }
            Reference::Digest(digest) => {
                let (pk, sk) = keys::artifact(repo, digest);
                let item =
                    self.meta.get(&pk, &sk).await?.ok_or_else(|| ServiceError::ManifestUnknown(digest.to_string()))?;
                let partition = keys::repo_partition(repo);
                let tags = self.meta.query_all(Query::table(&partition, keys::TAG_PREFIX)).await?;
                let wanted = digest.to_string();
                let mut writes: Vec<Write> = tags
                    .into_iter()
                    .filter(|t| t.str("digest") == Some(wanted.as_str()))
                    .map(|t| Write::Delete { pk: t.pk, sk: t.sk, cond: Condition::equals("digest", wanted.clone()) })
                    .collect();
                if let Some(subject) = item.str("subject").and_then(|s| s.parse::<Digest>().ok()) {
                    let (rpk, rsk) = keys::referrer(repo, &subject, digest);
                    writes.push(Write::Delete { pk: rpk, sk: rsk, cond: Condition::Always });
                }
                // The manifest goes last, with the final batch, so a failure
                // part-way leaves it reachable by digest to delete again.
                writes.push(Write::Delete { pk, sk, cond: Condition::Always });
                for batch in writes.chunks(crate::meta::MAX_TRANSACTION_WRITES) {
                    self.meta.transact(batch.to_vec()).await.map_err(|e| {
                        if e.is(ErrorKind::ConditionFailed) {
                            ServiceError::UploadInvalid("a tag moved while the manifest was being deleted".to_owned())
                        } else {
                            e.into()
                        }
                    })?;
                }
                Ok(())
            }
        }
    }

    /// Tags of a repository in lexical order: up to `n` (all when `None`),
    /// after the tag `last`. `NameUnknown` for a repository with no manifest.
    pub async fn list_tags(&self, repo: &RepoName, n: Option<usize>, last: Option<&str>) -> ServiceResult<NamePage> {
        let (pk, sk) = keys::repository(repo);
        if self.meta.get(&pk, &sk).await?.is_none() {
            return Err(ServiceError::NameUnknown(format!("repository {repo} has no manifests")));
        }
        let query = Query::table(keys::repo_partition(repo), keys::TAG_PREFIX).start_after(last.map(keys::tag_sk));
        self.list_names(query, n, |sk| keys::tag_name(sk).map(str::to_owned)).await
    }

    /// Repositories of the registry in lexical order, like [`Self::list_tags`].
    pub async fn catalog(&self, n: Option<usize>, last: Option<&str>) -> ServiceResult<NamePage> {
        let query = Query::table(keys::CATALOG, "").start_after(last.map(str::to_owned));
        self.list_names(query, n, |sk| Some(sk.to_owned())).await
    }

    async fn list_names(
        &self,
        query: Query,
        n: Option<usize>,
        name_of: impl Fn(&str) -> Option<String>,
    ) -> ServiceResult<NamePage> {
        let want = n.unwrap_or(usize::MAX).min(MAX_PAGE);
        let mut page = NamePage::default();
        if want == 0 {
            return Ok(page);
        }
        let mut query = query;
        loop {
            // One more than wanted tells whether more follow.
            query.limit = (want + 1 - page.names.len()).min(1000);
            let got = self.meta.query(query.clone()).await?;
            for item in got.items {
                if page.names.len() == want {
                    page.more = true;
                    return Ok(page);
                }
                page.names.extend(name_of(&item.sk));
            }
            match got.next {
                Some(c) => query = Query { cursor: Some(c), start_after: None, ..query },
                None => return Ok(page),
            }
        }
    }

    /// Manifests in `repo` whose `subject` is `subject`, optionally only
    /// those of one artifact type, as referrers-API descriptors.
    pub async fn referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> ServiceResult<Vec<Descriptor>> {
        let prefix = keys::referrers_prefix(subject);
        let items = self.meta.query_all(Query::table(keys::repo_partition(repo), prefix.clone())).await?;
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let digest = item
                .sk
                .strip_prefix(&prefix)
                .and_then(|d| d.parse::<Digest>().ok())
                .ok_or_else(|| corrupt("referrer"))?;
            let found_type = item.str("artifact_type").map(str::to_owned);
            if artifact_type.is_some_and(|want| found_type.as_deref() != Some(want)) {
                continue;
            }
            let annotations = if item.attrs.get(IN_BODY) == Some(&Value::Bool(true)) {
                // Too large for the entry: read from the manifest itself,
                // unless it was deleted since the query.
                match self.get_manifest(repo, &Reference::Digest(digest.clone()), true).await {
                    Ok(record) => {
                        Manifest::parse(Some(&record.media_type), &record.body)
                            .map_err(|_| corrupt("referrer manifest"))?
                            .annotations
                    }
                    Err(ServiceError::ManifestUnknown(_)) => continue,
                    Err(e) => return Err(e),
                }
            } else {
                match item.attrs.get("annotations") {
                    Some(Value::Object(map)) => {
                        map.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned()))).collect()
                    }
                    _ => Default::default(),
                }
            };
            out.push(Descriptor {
                media_type: item.str("media_type").ok_or_else(|| corrupt("referrer"))?.to_owned(),
                digest,
                size: item.i64("size").and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                artifact_type: found_type,
                annotations,
                urls: Vec::new(),
                platform: None,
            });
        }
        Ok(out)
    }
}

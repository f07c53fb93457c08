//! Manifests, tags, referrers and the catalog.
//!
//! A manifest is stored byte for byte as pushed. Small manifests (nearly
//! all) live inline in their table item, larger ones in the blob store at
//! their content address. What an item records beside the body (blob and
//! child lists, annotations) grows with the manifest too: when it would not
//! fit a table item it is left out, the item is marked `in_body`, and
//! readers take it from the manifest.
//!
//! A tag item carries what a pull by tag answers — the digest, media type,
//! size and (when the manifest is inline) the body — so a pull by tag or by
//! digest is one table read and no object-store request. Each tag also has
//! an entry among its artifact's tags (`D#<digest>#<tag>`) and each artifact
//! an entry in the order of first push (`N#…`), for listings; an artifact
//! counts its tags (`tag_count`).
//!
//! Every change is one transaction guarded by conditions: a tag moves only
//! from the digest it was read pointing at, it moves onto an artifact only
//! while that artifact exists (its `tag_count` goes up), and an artifact is
//! deleted only while its `tag_count` is what the deletion saw, with every
//! tag it saw. So two concurrent pushes of one tag leave one consistent
//! winner, and a tag never points at a deleted or half-written manifest.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::blob::keys as blob_keys;
use crate::events::{Event, EventKind};
use crate::meta::keys::{self, Counted, Key};
use crate::meta::{Condition, ErrorKind, Item, Query, Write, now_unix};
use crate::oci::{Descriptor, Digest, Manifest, Reference, RepoName, Tag};

use super::immutability::TagChange;
use super::paging::count_write;
use super::record::{corrupt, from_item, to_item};
use super::references;
use super::{Registry, ServiceError, ServiceResult};

/// Manifests up to this size are kept inline in the table (base64 must fit
/// DynamoDB's 400 KB item).
const INLINE_LIMIT: usize = 192 * 1024;
/// The most tags or repositories one listing request returns.
pub const MAX_PAGE: usize = 10_000;
/// The most referrers one referrers answer lists (the OCI spec lets a
/// registry cut the list; a client asks again with an `artifactType`).
pub const MAX_REFERRERS: usize = 1_000;
/// How often a write that lost a race against another is tried again.
const ATTEMPTS: usize = 8;
/// When a manifest PUT last referenced a link or an artifact (Unix ms).
pub(super) const TOUCHED_AT: &str = "touched_at";
/// Tags removed per transaction when an artifact is deleted (two writes
/// each, plus the artifact's count).
const TAGS_PER_BATCH: usize = 10;

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

/// An artifact (a manifest) as stored in its repository's partition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct ArtifactRecord {
    pub media_type: String,
    pub size: u64,
    /// First push, Unix seconds.
    pub pushed_at: i64,
    /// The same in milliseconds (0 in records stored before it was kept):
    /// orders pushes made within one second.
    #[serde(default)]
    pub pushed_at_ms: i64,
    #[serde(default)]
    pub blobs: Vec<String>,
    #[serde(default)]
    pub manifests: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Base64 of the manifest, when it is kept inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The lists above were left out to fit the item: read the manifest.
    #[serde(default)]
    pub in_body: bool,
    /// An index a proxy cache stored before all its children: its
    /// references are the children stored since.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
    #[serde(default)]
    pub tag_count: i64,
    /// The last pull counted, Unix seconds (0: never), set by the pull
    /// statistics consumer.
    #[serde(default)]
    pub pull_time: i64,
    /// How many indexes of the repository reference it (kept whole, so
    /// that conditions can name it).
    #[serde(default)]
    pub parents: i64,
    /// The artifact it is an accessory of (its subject, or what a cosign
    /// signature tagged `sha256-<digest>.sig` signs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accessory_of: Option<String>,
    /// What Harbor shows as `extra_attrs`: an image's platform, author,
    /// creation and run configuration, or a chart's metadata, read from the
    /// config at push.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_attrs: Option<serde_json::Value>,
}

/// A repository as stored in its project's partition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct RepositoryRecord {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub created_at: i64,
    #[serde(default)]
    pub update_time: i64,
    /// Pulls counted by the pull statistics consumer.
    #[serde(default)]
    pub pull_count: i64,
}

impl RepositoryRecord {
    pub(super) fn new(repo: &RepoName, now: i64) -> Self {
        Self { name: repo.to_string(), description: String::new(), created_at: now, update_time: now, pull_count: 0 }
    }
}

/// A tag as stored: what a pull by tag answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct TagRecord {
    pub digest: String,
    /// When the tag was last pushed, Unix seconds.
    pub pushed_at: i64,
    /// Absent in tags stored before tags carried their manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

impl TagRecord {
    /// The tag of `digest`, carrying the artifact's manifest.
    pub(super) fn of(digest: &Digest, artifact: &ArtifactRecord, pushed_at: i64) -> Self {
        Self {
            digest: digest.to_string(),
            pushed_at,
            media_type: Some(artifact.media_type.clone()),
            size: Some(artifact.size),
            body: artifact.body.clone(),
        }
    }
}

/// A tag's entry among its artifact's tags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct TagEntry {
    pub pushed_at: i64,
}

/// A manifest's entry among the referrers of its subject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ReferrerRecord {
    media_type: String,
    size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
    /// The annotations were left out to fit the item: read the manifest.
    #[serde(default)]
    in_body: bool,
}

/// Whether the table accepts `item` (its size limit).
fn fits(item: &Item) -> bool {
    crate::meta::validate_item(item).is_ok()
}

fn artifact_item(repo: &RepoName, digest: &Digest, a: &ArtifactRecord) -> ServiceResult<Item> {
    let (pk, sk) = keys::artifact(repo, digest);
    to_item(pk, sk, a, "artifact")
}

/// The artifact record of a manifest stored at `key`: with its body inline
/// when it fits (else without, and the body goes to the blob store), and
/// without the derived lists when they would not fit.
fn artifact_record(key: &Key, manifest: &Manifest, bytes: &Bytes, now: i64) -> ArtifactRecord {
    let mut record = ArtifactRecord {
        media_type: manifest.media_type.clone(),
        size: bytes.len() as u64,
        pushed_at: now,
        pushed_at_ms: crate::events::now_ms().max(now * 1000),
        blobs: manifest.required_blobs().iter().map(|d| d.digest.to_string()).collect(),
        manifests: manifest.child_manifests().iter().map(|d| d.digest.to_string()).collect(),
        artifact_type: manifest.referrer_artifact_type().map(str::to_owned),
        annotations: manifest.annotations.clone(),
        subject: manifest.subject.as_ref().map(|s| s.digest.to_string()),
        body: None,
        in_body: false,
        partial: false,
        tag_count: 0,
        pull_time: 0,
        parents: 0,
        accessory_of: None,
        extra_attrs: None,
    };
    let fits_as_item =
        |r: &ArtifactRecord| to_item(key.0.clone(), key.1.clone(), r, "artifact").is_ok_and(|i| fits(&i));
    if !fits_as_item(&record) {
        record.blobs.clear();
        record.manifests.clear();
        record.annotations.clear();
        record.in_body = true;
    }
    if bytes.len() <= INLINE_LIMIT {
        let inline = ArtifactRecord { body: Some(B64.encode(bytes)), ..record.clone() };
        if fits_as_item(&inline) {
            return inline;
        }
    }
    record
}

/// The writes that put `tag` on `digest` (an artifact that holds the tag
/// afterwards: its `tag_count` is the caller's to write), taking it from
/// the artifact `from` it was read on, if any.
fn tag_writes(
    repo: &RepoName,
    tag: &Tag,
    digest: &Digest,
    record: &TagRecord,
    from: Option<&Digest>,
) -> ServiceResult<Vec<Write>> {
    let (pk, sk) = keys::tag(repo, tag);
    let mut item = to_item(pk, sk, record, "tag")?;
    if !fits(&item) {
        item.attrs.remove("body");
    }
    let cond = match from {
        None => Condition::NotExists,
        Some(old) => Condition::equals(keys::attr::DIGEST, old.to_string()),
    };
    let mut writes = vec![Write::Put { item, cond }];
    if from != Some(digest) {
        let (epk, esk) = keys::artifact_tag(repo, digest, tag.as_str());
        let entry = to_item(epk, esk, &TagEntry { pushed_at: record.pushed_at }, "tag entry")?;
        writes.push(Write::Put { item: entry, cond: Condition::Always });
        if let Some(old) = from {
            let (opk, osk) = keys::artifact_tag(repo, old, tag.as_str());
            writes.push(Write::Delete { pk: opk, sk: osk, cond: Condition::Always });
            writes.push(tag_count_write(repo, old, -1));
        }
    }
    Ok(writes)
}

/// Adds `delta` to an existing artifact's tag count.
fn tag_count_write(repo: &RepoName, digest: &Digest, delta: i64) -> Write {
    let (pk, sk) = keys::artifact(repo, digest);
    Write::Add { pk, sk, attr: keys::attr::TAG_COUNT.to_owned(), delta, cond: Condition::Exists }
}

fn tag_unknown(tag: &Tag) -> ServiceError {
    ServiceError::ManifestUnknown(tag.to_string())
}

fn raced(what: &str) -> ServiceError {
    ServiceError::Conflict(format!("{what} kept changing under concurrent requests; try again"))
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
        self.store_manifest(repo, reference, content_type, bytes, false).await.map(|(outcome, _)| outcome)
    }

    /// [`Self::put_manifest`]; with `children_may_be_absent` (a proxy
    /// cache storing an index before its children) an index is stored
    /// while children are missing, and the missing ones are returned.
    pub(super) async fn store_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
        content_type: Option<&str>,
        bytes: Bytes,
        children_may_be_absent: bool,
    ) -> ServiceResult<(PutOutcome, Vec<Digest>)> {
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
        let (refs, absent) = self.check_references(repo, &manifest, children_may_be_absent).await?;
        let now = now_unix();
        let mut record = artifact_record(&keys::artifact(repo, &digest), &manifest, &bytes, now);
        record.partial = !absent.is_empty();
        if record.body.is_none() {
            self.record_manifest_body(&digest, bytes.len() as u64).await?;
            self.blobs.put_bytes(&blob_keys::blob(&digest), bytes.clone()).await?;
        }
        self.ensure_repository(repo).await?;
        let tag = match reference {
            Reference::Tag(t) => Some(t),
            Reference::Digest(_) => None,
        };
        let event = Event::artifact(EventKind::PushArtifact, self.actor(), repo.as_str(), &digest.to_string())
            .with_tag(tag.map(|t| t.as_str()))
            .with_manifest(&record.media_type, record.size);
        let children: Vec<Digest> = manifest.child_manifests().iter().map(|c| c.digest.clone()).collect();
        for _ in 0..ATTEMPTS {
            let (apk, ask) = keys::artifact(repo, &digest);
            let exists = self.meta.get(&apk, &ask).await?.is_some();
            let old_tag = match tag {
                Some(t) => self.tag_record(repo, t).await?,
                None => None,
            };
            if let (Some(t), Some(_)) = (tag, &old_tag) {
                // Harbor refuses any push onto an immutable tag, even of
                // the digest it has.
                self.require_mutable(repo, t.as_str(), TagChange::Push).await?;
            }
            let old_digest =
                old_tag.as_ref().map(|t| t.digest.parse::<Digest>()).transpose().map_err(|_| corrupt("tag"))?;
            let gains_tag = tag.is_some() && old_digest.as_ref() != Some(&digest);
            let mut writes = Vec::new();
            let mut quota = None;
            if exists {
                if tag.is_none() {
                    // Stored already, and no tag to move.
                    self.touch_references(&refs).await?;
                    if let Some(subject) = &manifest.subject {
                        let Write::Put { item, cond } =
                            self.referrer_write(repo, &subject.digest, &digest, &manifest, bytes.len())?
                        else {
                            return Err(corrupt("referrer write"));
                        };
                        self.meta.put(item, cond).await?;
                    }
                    // What a push seen before left undone.
                    self.adopt_children(repo, &digest, &children).await?;
                    return Ok((PutOutcome { digest, subject: manifest.subject.map(|s| s.digest) }, absent));
                }
                if gains_tag {
                    writes.push(tag_count_write(repo, &digest, 1));
                } else {
                    writes.push(Write::Check { pk: apk, sk: ask, cond: Condition::Exists });
                }
            } else {
                let by_tag_scheme = tag.and_then(|t| references::tag_scheme_subject(t, &manifest));
                let accessory_of = manifest.subject.as_ref().map(|s| s.digest.clone()).or(by_tag_scheme.clone());
                let created = ArtifactRecord {
                    tag_count: i64::from(gains_tag),
                    accessory_of: accessory_of.as_ref().map(Digest::to_string),
                    ..record.clone()
                };
                writes.push(Write::Put { item: artifact_item(repo, &digest, &created)?, cond: Condition::NotExists });
                if let Some(subject) = &by_tag_scheme {
                    writes.push(Self::tag_accessory_write(repo, subject, &digest, &created)?);
                }
                // The manifest's own bytes count in the project's usage.
                let mut change = self.add_ref(repo.project(), &digest, bytes.len() as u64).await?;
                writes.append(&mut change.writes);
                quota = Some(change);
                writes.extend(references::listing_writes(repo, now, &digest, accessory_of.is_some(), 1));
            }
            if let Some(t) = tag {
                writes.extend(tag_writes(
                    repo,
                    t,
                    &digest,
                    &TagRecord::of(&digest, &record, now),
                    old_digest.as_ref(),
                )?);
            }
            if let Some(subject) = &manifest.subject {
                writes.push(self.referrer_write(repo, &subject.digest, &digest, &manifest, bytes.len())?);
            }
            // The touches join the manifest's transaction when they fit (one
            // durable commit per push), else go first in their own.
            let folded = writes.len() + refs.len() < crate::meta::MAX_TRANSACTION_WRITES;
            if folded {
                writes.extend(Self::touches(&refs));
            } else {
                self.touch_references(&refs).await?;
            }
            match self.commit_with_events(writes, vec![event.clone()]).await {
                Ok(()) => {
                    if let Some(change) = &quota {
                        self.warn_if_near(repo, &digest, change).await;
                    }
                    self.adopt_children(repo, &digest, &children).await?;
                    return Ok((PutOutcome { digest, subject: manifest.subject.map(|s| s.digest) }, absent));
                }
                // Over quota; or a concurrent push or delete moved the tag
                // or the artifact: read again and redo.
                Err(e) if e.is(ErrorKind::ConditionFailed) => {
                    if folded && let Some(gone) = self.missing_reference(&refs).await? {
                        return Err(ServiceError::ManifestBlobUnknown(gone));
                    }
                    if let Some(change) = &quota
                        && let Some(refusal) = self.explain_refusal(repo, &digest, change).await?
                    {
                        return Err(refusal);
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(raced("the tag"))
    }

    fn referrer_write(
        &self,
        repo: &RepoName,
        subject: &Digest,
        digest: &Digest,
        manifest: &Manifest,
        size: usize,
    ) -> ServiceResult<Write> {
        let (pk, sk) = keys::referrer(repo, subject, digest);
        let mut record = ReferrerRecord {
            media_type: manifest.media_type.clone(),
            size: size as u64,
            artifact_type: manifest.referrer_artifact_type().map(str::to_owned),
            annotations: manifest.annotations.clone(),
            in_body: false,
        };
        let mut item = to_item(pk.clone(), sk.clone(), &record, "referrer")?;
        if !fits(&item) {
            record.annotations.clear();
            record.in_body = true;
            item = to_item(pk, sk, &record, "referrer")?;
        }
        Ok(Write::Put { item, cond: Condition::Always })
    }

    /// Checks that every blob a manifest names is linked in the repository
    /// and every child manifest stored there (`ManifestBlobUnknown`): one
    /// read each, distinct ones once (images repeat layers, and a 4 MiB
    /// manifest can name one blob 20,000 times). Returns them, to touch.
    /// With `children_may_be_absent`, a missing child manifest is no error:
    /// it is returned (second) and left out of the references to touch.
    async fn check_references(
        &self,
        repo: &RepoName,
        manifest: &Manifest,
        children_may_be_absent: bool,
    ) -> ServiceResult<(Vec<(Key, Digest)>, Vec<Digest>)> {
        let blobs = manifest.required_blobs();
        let children = manifest.child_manifests();
        let checks: BTreeMap<Key, (Digest, bool)> = blobs
            .iter()
            .map(|d| (keys::blob_link(repo, &d.digest), (d.digest.clone(), false)))
            .chain(children.iter().map(|d| (keys::artifact(repo, &d.digest), (d.digest.clone(), true))))
            .collect();
        let lookups = checks.iter().map(|((pk, sk), (digest, child))| async move {
            match self.meta.get(pk, sk).await {
                Ok(Some(_)) => Ok(None),
                Ok(None) if *child && children_may_be_absent => Ok(Some(digest.clone())),
                Ok(None) => Err(ServiceError::ManifestBlobUnknown(digest.clone())),
                Err(e) => Err(e.into()),
            }
        });
        let found = futures::future::try_join_all(lookups).await?;
        let absent: Vec<Digest> = found.into_iter().flatten().collect();
        let refs = checks.into_iter().filter(|(_, (d, _))| !absent.contains(d)).map(|(k, (d, _))| (k, d)).collect();
        Ok((refs, absent))
    }

    /// The writes that touch references: garbage collection leaves alone
    /// a link or artifact touched within its protection window, so what a
    /// manifest references cannot go between its check and its commit.
    fn touches(refs: &[(Key, Digest)]) -> Vec<Write> {
        let touched_at = crate::events::now_ms();
        refs.iter()
            .map(|((pk, sk), _)| Write::Set {
                pk: pk.clone(),
                sk: sk.clone(),
                attrs: crate::meta::Attrs::from_iter([(TOUCHED_AT.to_owned(), touched_at.into())]),
                cond: Condition::Exists,
            })
            .collect()
    }

    /// Touches references in transactions of their own (when too many to
    /// join the manifest's).
    async fn touch_references(&self, refs: &[(Key, Digest)]) -> ServiceResult<()> {
        let chunks = refs.chunks(crate::meta::MAX_TRANSACTION_WRITES).map(|chunk| async move {
            match self.meta.transact(Self::touches(chunk)).await {
                Ok(()) => Ok(()),
                Err(e) if e.is(ErrorKind::ConditionFailed) => match self.missing_reference(chunk).await? {
                    Some(d) => Err(ServiceError::ManifestBlobUnknown(d)),
                    None => Err(raced("a referenced blob")),
                },
                Err(e) => Err(e.into()),
            }
        });
        futures::future::try_join_all(chunks).await?;
        Ok(())
    }

    /// A reference that is gone, if one is.
    async fn missing_reference(&self, refs: &[(Key, Digest)]) -> ServiceResult<Option<Digest>> {
        for ((pk, sk), digest) in refs {
            if self.meta.get(pk, sk).await?.is_none() {
                return Ok(Some(digest.clone()));
            }
        }
        Ok(None)
    }

    /// Records the repository (and its catalog entry, each counted) on its
    /// first manifest.
    async fn ensure_repository(&self, repo: &RepoName) -> ServiceResult<()> {
        let (pk, sk) = keys::repository(repo);
        if self.meta.get(&pk, &sk).await?.is_some() {
            return Ok(());
        }
        let now = now_unix();
        let (cpk, csk) = keys::catalog_entry(repo);
        let record = RepositoryRecord::new(repo, now);
        let writes = vec![
            Write::Put { item: to_item(pk, sk, &record, "repository")?, cond: Condition::NotExists },
            Write::Put { item: Item::new(cpk, csk), cond: Condition::Always },
            count_write(Counted::Repositories(repo.project()), repo.as_str(), 1),
            count_write(Counted::Catalog, repo.as_str(), 1),
        ];
        match self.meta.transact(writes).await {
            Err(e) if !e.is(ErrorKind::ConditionFailed) => Err(e.into()),
            _ => Ok(()),
        }
    }

    pub(super) async fn tag_record(&self, repo: &RepoName, tag: &Tag) -> ServiceResult<Option<TagRecord>> {
        let (pk, sk) = keys::tag(repo, tag);
        self.meta.get(&pk, &sk).await?.map(|i| from_item(i, "tag")).transpose()
    }

    pub(super) async fn artifact_record(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> ServiceResult<Option<ArtifactRecord>> {
        let (pk, sk) = keys::artifact(repo, digest);
        self.meta.get(&pk, &sk).await?.map(|i| from_item(i, "artifact")).transpose()
    }

    /// The digest a reference names in `repo`.
    pub async fn resolve(&self, repo: &RepoName, reference: &Reference) -> ServiceResult<Digest> {
        match reference {
            Reference::Digest(d) => Ok(d.clone()),
            Reference::Tag(tag) => {
                let record = self.tag_record(repo, tag).await?.ok_or_else(|| tag_unknown(tag))?;
                record.digest.parse().map_err(|_| corrupt("tag"))
            }
        }
    }

    /// A manifest by tag or digest: one table read (and an object-store read
    /// for a manifest too large for the table); `with_body: false` answers a
    /// HEAD without reading the blob store.
    pub async fn get_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
        with_body: bool,
    ) -> ServiceResult<ManifestRecord> {
        let (digest, media_type, size, body) = match reference {
            Reference::Tag(tag) => {
                let t = self.tag_record(repo, tag).await?.ok_or_else(|| tag_unknown(tag))?;
                let digest: Digest = t.digest.parse().map_err(|_| corrupt("tag"))?;
                match (t.media_type, t.size) {
                    (Some(media_type), Some(size)) => (digest, media_type, size, t.body),
                    // A tag stored before tags carried their manifest.
                    _ => {
                        let a = self.artifact_record(repo, &digest).await?.ok_or_else(|| tag_unknown(tag))?;
                        (digest, a.media_type, a.size, a.body)
                    }
                }
            }
            Reference::Digest(digest) => {
                let unknown = || ServiceError::ManifestUnknown(digest.to_string());
                let a = self.artifact_record(repo, digest).await?.ok_or_else(unknown)?;
                (digest.clone(), a.media_type, a.size, a.body)
            }
        };
        let body = match (with_body, body) {
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
            Reference::Tag(tag) => self.untag(repo, tag, None).await,
            Reference::Digest(digest) => self.delete_artifact_of(repo, digest).await,
        }
    }

    /// Removes a tag (only from `on`, when given): `ManifestUnknown` when
    /// there is no such tag.
    pub(super) async fn untag(&self, repo: &RepoName, tag: &Tag, on: Option<&Digest>) -> ServiceResult<()> {
        self.require_mutable(repo, tag.as_str(), TagChange::Delete).await?;
        for _ in 0..ATTEMPTS {
            let Some(record) = self.tag_record(repo, tag).await? else { return Err(tag_unknown(tag)) };
            let digest: Digest = record.digest.parse().map_err(|_| corrupt("tag"))?;
            if on.is_some_and(|d| d != &digest) {
                return Err(tag_unknown(tag));
            }
            let (pk, sk) = keys::tag(repo, tag);
            let (epk, esk) = keys::artifact_tag(repo, &digest, tag.as_str());
            let writes = vec![
                Write::Delete { pk, sk, cond: Condition::equals(keys::attr::DIGEST, digest.to_string()) },
                Write::Delete { pk: epk, sk: esk, cond: Condition::Always },
                tag_count_write(repo, &digest, -1),
            ];
            let event = Event::artifact(EventKind::DeleteTag, self.actor(), repo.as_str(), &digest.to_string())
                .with_tag(Some(tag.as_str()));
            match self.commit_with_events(writes, vec![event]).await {
                Ok(()) => return Ok(()),
                Err(e) if e.is(ErrorKind::ConditionFailed) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(raced("the tag"))
    }

    /// Deletes an artifact with its tags (a batch at a time, each batch
    /// guarded by the artifact's tag count), its entries and its referrer
    /// entry; the manifest item goes last, so a failure part-way leaves it
    /// reachable by digest to delete again.
    async fn delete_artifact_of(&self, repo: &RepoName, digest: &Digest) -> ServiceResult<()> {
        let unknown = || ServiceError::ManifestUnknown(digest.to_string());
        if !self.immutability(repo.project()).await?.is_empty() {
            let tags = self.artifact_tag_names(repo, digest).await?;
            self.require_mutable_all(repo, tags.iter().map(String::as_str), TagChange::Delete).await?;
        }
        let (apk, ask) = keys::artifact(repo, digest);
        let mut lost_races = 0;
        loop {
            let artifact = self.artifact_record(repo, digest).await?.ok_or_else(unknown)?;
            let prefix = keys::artifact_tags_prefix(digest);
            let query = Query::table(keys::repo_partition(repo), prefix.as_str()).limit(TAGS_PER_BATCH).keys_only();
            let tags = self.meta.query(query).await?.items;
            let guard = Condition::equals(keys::attr::TAG_COUNT, artifact.tag_count);
            let last = tags.is_empty();
            let mut writes = Vec::new();
            if last {
                writes.push(Write::Delete { pk: apk.clone(), sk: ask.clone(), cond: guard });
                let hidden = references::is_hidden(&artifact);
                writes.extend(references::listing_writes(repo, artifact.pushed_at, digest, hidden, -1));
                if let Some(subject) = artifact.accessory_of.as_deref().and_then(|s| s.parse::<Digest>().ok()) {
                    let (cpk, csk) = keys::tag_accessory(repo, &subject, digest);
                    writes.push(Write::Delete { pk: cpk, sk: csk, cond: Condition::Always });
                }
                writes.append(&mut self.remove_ref(repo.project(), digest).await?.writes);
                if let Some(subject) = artifact.subject.as_deref().and_then(|s| s.parse::<Digest>().ok()) {
                    let (rpk, rsk) = keys::referrer(repo, &subject, digest);
                    writes.push(Write::Delete { pk: rpk, sk: rsk, cond: Condition::Always });
                }
            } else {
                let removed = i64::try_from(tags.len()).unwrap_or(i64::MAX);
                let attr = keys::attr::TAG_COUNT.to_owned();
                writes.push(Write::Add { pk: apk.clone(), sk: ask.clone(), attr, delta: -removed, cond: guard });
                for entry in tags {
                    let name = entry.sk.strip_prefix(&prefix).ok_or_else(|| corrupt("tag entry"))?;
                    let tag = Tag::parse(name).map_err(|_| corrupt("tag entry"))?;
                    let (tpk, tsk) = keys::tag(repo, &tag);
                    let on_this = Condition::equals(keys::attr::DIGEST, digest.to_string());
                    writes.push(Write::Delete { pk: tpk, sk: tsk, cond: on_this });
                    writes.push(Write::Delete { pk: entry.pk, sk: entry.sk, cond: Condition::Always });
                }
            }
            let events = if last {
                vec![
                    Event::artifact(EventKind::DeleteArtifact, self.actor(), repo.as_str(), &digest.to_string())
                        .with_manifest(&artifact.media_type, artifact.size),
                ]
            } else {
                Vec::new()
            };
            let children = if last { self.children_of(digest, &artifact).await? } else { Vec::new() };
            match self.commit_with_events(writes, events).await {
                Ok(()) if last => {
                    self.release_children(repo, digest, &children).await?;
                    self.forget_parents(repo, digest).await?;
                    return self.sweep_artifact_labels(repo, digest).await;
                }
                Ok(()) => {}
                // A tag moved meanwhile: read again.
                Err(e) if e.is(ErrorKind::ConditionFailed) => {
                    lost_races += 1;
                    if lost_races == ATTEMPTS {
                        return Err(raced("the artifact's tags"));
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Reads an artifact's `extra_attrs` from its config and keeps them in
    /// its record: the events consumer does it for each pushed artifact,
    /// off the push path. Once per push of the digest: a record that has
    /// them, or is gone, or was pushed again meanwhile, is left alone, so a
    /// push event delivered twice writes once.
    pub async fn fill_extra_attrs(&self, repo: &RepoName, digest: &Digest) -> ServiceResult<()> {
        let Some(record) = self.artifact_record(repo, digest).await? else { return Ok(()) };
        if record.extra_attrs.is_some() {
            return Ok(());
        }
        let stored = match self.get_manifest(repo, &Reference::Digest(digest.clone()), true).await {
            Err(ServiceError::ManifestUnknown(_)) => return Ok(()),
            other => other?,
        };
        let manifest =
            Manifest::parse(Some(&stored.media_type), &stored.body).map_err(|_| corrupt("stored manifest"))?;
        let Some(extra) = self.extra_attrs_of(&manifest).await else { return Ok(()) };
        let (pk, sk) = keys::artifact(repo, digest);
        let with = ArtifactRecord { extra_attrs: Some(extra.clone()), ..record.clone() };
        if !to_item(pk.clone(), sk.clone(), &with, "artifact").is_ok_and(|i| fits(&i)) {
            return Ok(());
        }
        let attrs = crate::meta::Attrs::from_iter([("extra_attrs".to_owned(), extra)]);
        let cond = Condition::equals("pushed_at_ms", record.pushed_at_ms);
        match self.meta.transact(vec![Write::Set { pk, sk, attrs, cond }]).await {
            // Deleted or pushed again meanwhile: that push's event fills it.
            Err(e) if e.is(ErrorKind::ConditionFailed) => Ok(()),
            other => other.map_err(Into::into),
        }
    }

    /// The `extra_attrs` of a manifest's artifact, from its config: an
    /// image's architecture, os, author, created and run configuration, a
    /// chart's metadata. `None` for other artifacts, a config too large to
    /// keep or one that cannot be read (the artifact stays without them).
    async fn extra_attrs_of(&self, manifest: &Manifest) -> Option<serde_json::Value> {
        const MAX_CONFIG: u64 = 1024 * 1024;
        const MAX_KEPT: usize = 16 * 1024;
        let config = manifest.config.as_ref().filter(|c| c.size <= MAX_CONFIG)?;
        let image =
            matches!(config.media_type.as_str(), crate::oci::media::OCI_CONFIG | crate::oci::media::DOCKER_CONFIG);
        let chart = config.media_type == "application/vnd.cncf.helm.config.v1+json";
        if !image && !chart {
            return None;
        }
        let bytes = match self.blobs.get_bytes(&blob_keys::blob(&config.digest)).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(config = %config.digest, error = %e, "config unreadable: artifact kept without extra_attrs");
                return None;
            }
        };
        let serde_json::Value::Object(parsed) = serde_json::from_slice::<serde_json::Value>(&bytes).ok()? else {
            return None;
        };
        let mut extra = if chart {
            parsed
        } else {
            ["architecture", "os", "author", "created", "config"]
                .into_iter()
                .filter_map(|k| parsed.get(k).map(|v| (k.to_owned(), v.clone())))
                .collect()
        };
        let size =
            |m: &serde_json::Map<String, serde_json::Value>| serde_json::to_vec(m).map_or(usize::MAX, |v| v.len());
        if size(&extra) > MAX_KEPT {
            extra.remove("config");
        }
        (size(&extra) <= MAX_KEPT).then_some(serde_json::Value::Object(extra))
    }

    /// Every repository of every project (for migrations that visit all).
    pub(super) async fn all_repositories(&self) -> ServiceResult<Vec<RepoName>> {
        let mut out = Vec::new();
        for project in self.project_names().await? {
            let (pk, _) = keys::project(&project);
            for entry in self.meta.query_all(Query::table(pk, keys::REPOSITORY_PREFIX).keys_only()).await? {
                out.extend(keys::repository_name(&entry.sk).and_then(|n| RepoName::parse(n).ok()));
            }
        }
        Ok(out)
    }

    /// Calls `visit` with every stored artifact record of every repository,
    /// a page of records at a time (for migrations that look at them all).
    pub(super) async fn for_each_stored_artifact(
        &self,
        mut visit: impl AsyncFnMut(&RepoName, Digest, ArtifactRecord) -> ServiceResult<()>,
    ) -> ServiceResult<()> {
        for repo in self.all_repositories().await? {
            let mut query = Query::table(keys::repo_partition(&repo), keys::ARTIFACT_PREFIX);
            loop {
                let page = self.meta.query(query.clone()).await?;
                for item in page.items {
                    let digest = item.sk.strip_prefix(keys::ARTIFACT_PREFIX).and_then(|d| d.parse().ok());
                    let digest = digest.ok_or_else(|| corrupt("artifact key"))?;
                    visit(&repo, digest, from_item(item, "artifact")?).await?;
                }
                match page.next {
                    Some(c) => query.cursor = Some(c),
                    None => break,
                }
            }
        }
        Ok(())
    }

    /// The child manifests an artifact record's manifest names.
    pub(super) async fn children_of(&self, digest: &Digest, record: &ArtifactRecord) -> ServiceResult<Vec<Digest>> {
        if !record.in_body {
            return record.manifests.iter().map(|d| d.parse().map_err(|_| corrupt("artifact"))).collect();
        }
        let body = match &record.body {
            Some(b64) => Bytes::from(B64.decode(b64).map_err(|_| corrupt("manifest body"))?),
            None => self.blobs.get_bytes(&blob_keys::blob(digest)).await?,
        };
        let manifest = Manifest::parse(Some(&record.media_type), &body).map_err(|_| corrupt("stored manifest"))?;
        Ok(manifest.child_manifests().iter().map(|c| c.digest.clone()).collect())
    }

    /// Removes the links of the indexes that referenced a deleted artifact
    /// (so a later push of the digest starts unreferenced).
    async fn forget_parents(&self, repo: &RepoName, digest: &Digest) -> ServiceResult<()> {
        let prefix = keys::parents_prefix(digest);
        let links = self.meta.query_all(Query::table(keys::repo_partition(repo), prefix.as_str()).keys_only()).await?;
        for chunk in links.chunks(25) {
            let writes =
                chunk.iter().map(|l| Write::Delete { pk: l.pk.clone(), sk: l.sk.clone(), cond: Condition::Always });
            self.meta.transact(writes.collect()).await?;
        }
        Ok(())
    }

    /// Every tag on an artifact, by name.
    pub async fn artifact_tag_names(&self, repo: &RepoName, digest: &Digest) -> ServiceResult<Vec<String>> {
        let prefix = keys::artifact_tags_prefix(digest);
        let query = Query::table(keys::repo_partition(repo), prefix.as_str()).keys_only();
        let entries = self.meta.query_all(query).await?;
        Ok(entries.iter().filter_map(|e| e.sk.strip_prefix(&prefix)).map(str::to_owned).collect())
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
        let mut query = query.keys_only();
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
    /// those of one artifact type, as referrers-API descriptors (at most
    /// [`MAX_REFERRERS`]).
    pub async fn referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> ServiceResult<Vec<Descriptor>> {
        let prefix = keys::referrers_prefix(subject);
        let mut query = Query::table(keys::repo_partition(repo), prefix.clone());
        let mut out = Vec::new();
        loop {
            let page = self.meta.query(query.clone()).await?;
            for item in page.items {
                if out.len() == MAX_REFERRERS {
                    return Ok(out);
                }
                if let Some(d) = self.referrer_of(repo, &prefix, item, artifact_type).await? {
                    out.push(d);
                }
            }
            match page.next {
                Some(c) => query.cursor = Some(c),
                None => return Ok(out),
            }
        }
    }

    /// The descriptor of a referrer entry, unless filtered out or deleted
    /// since.
    async fn referrer_of(
        &self,
        repo: &RepoName,
        prefix: &str,
        item: Item,
        artifact_type: Option<&str>,
    ) -> ServiceResult<Option<Descriptor>> {
        let digest =
            item.sk.strip_prefix(prefix).and_then(|d| d.parse::<Digest>().ok()).ok_or_else(|| corrupt("referrer"))?;
        let record: ReferrerRecord = from_item(item, "referrer")?;
        if artifact_type.is_some_and(|want| record.artifact_type.as_deref() != Some(want)) {
            return Ok(None);
        }
        let annotations = if record.in_body {
            // Too large for the entry: read from the manifest itself.
            match self.get_manifest(repo, &Reference::Digest(digest.clone()), true).await {
                Ok(m) => {
                    Manifest::parse(Some(&m.media_type), &m.body).map_err(|_| corrupt("referrer manifest"))?.annotations
                }
                Err(ServiceError::ManifestUnknown(_)) => return Ok(None),
                Err(e) => return Err(e),
            }
        } else {
            record.annotations
        };
        Ok(Some(Descriptor {
            media_type: record.media_type,
            digest,
            size: record.size,
            artifact_type: record.artifact_type,
            annotations,
            urls: Vec::new(),
            platform: None,
        }))
    }

    /// Adds `tag` to the artifact `digest` (which must exist): `Conflict`
    /// when the repository has the tag already.
    pub(super) async fn add_tag(&self, repo: &RepoName, digest: &Digest, tag: &Tag) -> ServiceResult<()> {
        let artifact = self
            .artifact_record(repo, digest)
            .await?
            .ok_or_else(|| ServiceError::ManifestUnknown(digest.to_string()))?;
        let record = TagRecord::of(digest, &artifact, now_unix());
        let mut writes = tag_writes(repo, tag, digest, &record, None)?;
        writes.push(tag_count_write(repo, digest, 1));
        let event = Event::artifact(EventKind::CreateTag, self.actor(), repo.as_str(), &digest.to_string())
            .with_tag(Some(tag.as_str()));
        match self.commit_with_events(writes, vec![event]).await {
            Err(e) if e.is(ErrorKind::ConditionFailed) => {
                if self.tag_record(repo, tag).await?.is_some() {
                    Err(ServiceError::Conflict(format!("the tag {tag} already exists in {repo}")))
                } else {
                    Err(ServiceError::ManifestUnknown(digest.to_string()))
                }
            }
            other => other.map_err(Into::into),
        }
    }
}

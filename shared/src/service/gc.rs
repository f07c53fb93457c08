//! Garbage collection (F12), online and lock-free.
//!
//! Bookkeeping: every blob record counts the repositories that link it
//! (`links`, kept in the link's own transaction by `link_blob` and
//! `unlink_blob`), and a blob no repository links has a candidate entry
//! (`GCC#<shard>`) from the moment it lost its last link or was stored
//! without one. A manifest PUT touches (`touched_at`) the links and
//! artifacts it references.
//!
//! A collection ([`crate::jobs::gc`]) has two parts:
//! - per repository ([`Registry::gc_repository`]): with `delete_untagged`,
//!   untagged artifacts no index references; then the links no remaining
//!   artifact references — each older than the protection window (pushed,
//!   linked and touched before it), each removal conditional on no touch
//!   since it was read, so what a push is about to reference stays;
//! - per candidate shard ([`Registry::gc_sweep`]): candidates older than
//!   the window whose count is still 0 are claimed (`deleting`, which a new
//!   link refuses), their object deleted, then their record.
//!
//! A dry run does no deletion; it tallies, per blob, the links the
//! repository part would remove (`GCX#<execution>`), and the sweep counts a
//! blob whose every link would go, so it reports what a real run frees.

use std::collections::{BTreeMap, BTreeSet};

use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::blobs::{DELETING, LINKS};
use super::manifests::{ArtifactRecord, TOUCHED_AT};
use super::record::from_item;
use super::{Registry, ServiceError, ServiceResult};
use crate::events::now_ms;
use crate::meta::{Attrs, Condition, ErrorKind, Item, Query, Write, keys};
use crate::oci::{Digest, Manifest, Reference, RepoName};

/// What a collection is asked to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcParams {
    #[serde(default)]
    pub delete_untagged: bool,
    #[serde(default)]
    pub dry_run: bool,
    /// Harbor's worker count, recorded (berth's parallelism is its tasks).
    #[serde(default = "one")]
    pub workers: u32,
    /// The protection window, fixed when the run starts.
    #[serde(default)]
    pub window_secs: i64,
}

fn one() -> u32 {
    1
}

/// What a part of a collection did (or, dry, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcTally {
    pub purged_blobs: u64,
    pub purged_manifests: u64,
    /// Bytes of blobs, orphan objects and upload leftovers removed.
    pub freed_space: u64,
    pub unlinked: u64,
    /// Objects of abandoned upload sessions removed.
    #[serde(default)]
    pub upload_objects: u64,
    /// Expired table items removed.
    #[serde(default)]
    pub expired_items: u64,
}

impl GcTally {
    fn add(&mut self, other: &Self) {
        self.purged_blobs += other.purged_blobs;
        self.purged_manifests += other.purged_manifests;
        self.freed_space += other.freed_space;
        self.unlinked += other.unlinked;
        self.upload_objects += other.upload_objects;
        self.expired_items += other.expired_items;
    }
}

/// A candidate the sweep counted: its entry's sort key, and the blob it
/// deleted (digest and size), if it did.
type Swept = Option<(String, Option<(Digest, u64)>)>;

/// Links unlinked, or candidates collected, at once by one task.
const IN_FLIGHT: usize = 16;

/// The dry-run tally of one execution: per blob, the links it would lose.
fn dry_tally(execution: i64, digest: &str) -> (String, String) {
    (format!("GCX#{execution}"), digest.to_owned())
}

impl Registry {
    /// Schema 4's migration: sets every linked blob's link count from the
    /// repositories' links. Run it with no older berth serving the store
    /// (an older berth links without counting). Returns how many blobs and
    /// links it counted.
    pub async fn count_blob_links(&self) -> ServiceResult<(u64, u64)> {
        let mut counts: BTreeMap<String, i64> = BTreeMap::new();
        for project in self.project_names().await? {
            let (pk, _) = keys::project(&project);
            for entry in self.meta.query_all(Query::table(pk, keys::REPOSITORY_PREFIX).keys_only()).await? {
                let Some(repo) = keys::repository_name(&entry.sk).and_then(|n| RepoName::parse(n).ok()) else {
                    continue;
                };
                let links = Query::table(keys::repo_partition(&repo), keys::BLOB_LINK_PREFIX).keys_only();
                for link in self.meta.query_all(links).await? {
                    if let Some(digest) = link.sk.strip_prefix(keys::BLOB_LINK_PREFIX) {
                        *counts.entry(digest.to_owned()).or_insert(0) += 1;
                    }
                }
            }
        }
        let (mut blobs, mut links) = (0, 0);
        for (digest, n) in counts {
            let Ok(digest) = digest.parse::<Digest>() else { continue };
            let (pk, sk) = keys::blob(&digest);
            let attrs = Attrs::from_iter([(LINKS.to_owned(), n.into())]);
            let set = Write::Set { pk, sk, attrs, cond: Condition::Exists };
            match self.meta.transact(vec![set]).await {
                Ok(()) => {
                    blobs += 1;
                    links += u64::try_from(n).unwrap_or(0);
                }
                // A link to a blob with no record: nothing to count on.
                Err(e) if e.is(ErrorKind::ConditionFailed) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok((blobs, links))
    }

    /// One repository's part of a collection (see the module).
    pub async fn gc_repository(
        &self,
        repo: &RepoName,
        p: &GcParams,
        execution: i64,
        log: &mut Vec<String>,
    ) -> ServiceResult<GcTally> {
        let cutoff = now_ms() - p.window_secs.saturating_mul(1000);
        let mut tally = GcTally::default();
        let partition = keys::repo_partition(repo);
        let mut artifacts: Vec<(String, ArtifactRecord, i64)> = Vec::new();
        for item in self.meta.query_all(Query::table(&partition, keys::ARTIFACT_PREFIX)).await? {
            let Some(digest) = item.sk.strip_prefix(keys::ARTIFACT_PREFIX).map(str::to_owned) else { continue };
            let touched = item.i64(TOUCHED_AT).unwrap_or(0);
            artifacts.push((digest, from_item(item, "artifact")?, touched));
        }
        // What each artifact references (a record too big to list it is
        // read from its manifest).
        let mut refs: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
        for (digest, record, _) in &artifacts {
            let (mut blobs, mut children) = (record.blobs.clone(), record.manifests.clone());
            if record.in_body
                && let Ok(d) = digest.parse::<Digest>()
            {
                let m = self.get_manifest(repo, &Reference::Digest(d), true).await?;
                if let Ok(parsed) = Manifest::parse(Some(&m.media_type), &m.body) {
                    blobs = parsed.required_blobs().iter().map(|b| b.digest.to_string()).collect();
                    children = parsed.child_manifests().iter().map(|c| c.digest.to_string()).collect();
                }
            }
            refs.insert(digest.clone(), (blobs, children));
        }
        let mut gone: BTreeSet<String> = BTreeSet::new();
        if p.delete_untagged {
            let children: BTreeSet<&String> = refs.values().flat_map(|(_, c)| c.iter()).collect();
            let present: BTreeSet<&String> = artifacts.iter().map(|(d, _, _)| d).collect();
            for (digest, record, touched) in &artifacts {
                // An accessory goes with its subject, not as untagged.
                if record.accessory_of.as_ref().is_some_and(|s| present.contains(s)) {
                    continue;
                }
                let pushed = match record.pushed_at_ms {
                    0 => record.pushed_at.saturating_add(1).saturating_mul(1000),
                    ms => ms,
                };
                let old = pushed.max(*touched) < cutoff;
                if record.tag_count != 0 || children.contains(digest) || !old {
                    continue;
                }
                let Ok(d) = digest.parse::<Digest>() else { continue };
                // Tagged since it was read: not untagged any more.
                if !self.artifact_tag_names(repo, &d).await?.is_empty() {
                    continue;
                }
                if !p.dry_run {
                    match self.delete_manifest(repo, &Reference::Digest(d)).await {
                        Ok(()) | Err(ServiceError::ManifestUnknown(_)) => {}
                        Err(e) => {
                            log.push(format!("{repo}@{digest}: not deleted: {e}"));
                            continue;
                        }
                    }
                }
                log.push(format!("{repo}@{digest}: untagged artifact deleted"));
                gone.insert(digest.clone());
                tally.purged_manifests += 1;
                tally.freed_space += record.size;
            }
        }
        let referenced: BTreeSet<&String> =
            refs.iter().filter(|(d, _)| !gone.contains(*d)).flat_map(|(_, (b, _))| b.iter()).collect();
        let mut unreferenced = Vec::new();
        for link in self.meta.query_all(Query::table(&partition, keys::BLOB_LINK_PREFIX)).await? {
            let Some(digest) = link.sk.strip_prefix(keys::BLOB_LINK_PREFIX).map(str::to_owned) else { continue };
            if referenced.contains(&digest) {
                continue;
            }
            let touched = link.i64(TOUCHED_AT).unwrap_or(0);
            // A link made before milliseconds were kept counts from the end
            // of its second, so the window is never short.
            let linked = match link.i64("linked_at_ms").unwrap_or(0) {
                0 => link.i64("linked_at").unwrap_or(0).saturating_add(1).saturating_mul(1000),
                ms => ms,
            };
            if linked.max(touched) >= cutoff {
                continue;
            }
            let Ok(d) = digest.parse::<Digest>() else { continue };
            unreferenced.push((d, touched));
        }
        // Several at once: their commits are shared (locally) or overlap.
        let unlinks = futures::stream::iter(unreferenced).map(|(d, touched)| async move {
            if p.dry_run {
                let (pk, sk) = dry_tally(execution, &d.to_string());
                let count = Write::Add { pk, sk, attr: "removed".to_owned(), delta: 1, cond: Condition::Always };
                self.meta.transact(vec![count]).await?;
                return Ok(true);
            }
            self.unlink_blob_if(repo, &d, Condition::at_most(TOUCHED_AT, touched)).await
        });
        let done: Vec<ServiceResult<bool>> = unlinks.buffer_unordered(IN_FLIGHT).collect().await;
        for unlinked in done {
            if unlinked? {
                tally.unlinked += 1;
            }
        }
        log.push(format!(
            "{repo}: {} untagged artifacts, {} unreferenced links{}",
            tally.purged_manifests,
            tally.unlinked,
            if p.dry_run { " (dry run)" } else { "" }
        ));
        Ok(tally)
    }

    /// One candidate shard's sweep: up to `limit` candidates after `after`;
    /// the tally and where the next page starts.
    pub async fn gc_sweep(
        &self,
        shard: u8,
        after: Option<String>,
        p: &GcParams,
        execution: i64,
        limit: usize,
        log: &mut Vec<String>,
    ) -> ServiceResult<(GcTally, Option<String>)> {
        let cutoff = now_ms() - p.window_secs.saturating_mul(1000);
        let mut tally = GcTally::default();
        let mut query = Query::table(keys::gc_candidate_partition(shard), "").limit(limit);
        query.start_after = after;
        let page = self.meta.query(query).await?;
        let next = (page.items.len() == limit).then(|| page.items.last().map(|i| i.sk.clone())).flatten();
        let mut counted = BTreeSet::new();
        let collected = futures::stream::iter(page.items).map(|c| async move {
            if c.i64("since").unwrap_or(i64::MAX) >= cutoff {
                return Ok(None);
            }
            let Ok(digest) = c.sk.parse::<Digest>() else { return Ok(None) };
            let blob = self.blob_record(&digest).await?;
            let stale = match &blob {
                None => true,
                Some(b) => b.links.is_none_or(|n| n > 0),
            };
            if stale {
                // Linked again (or gone): not a candidate any more.
                if !p.dry_run {
                    self.meta.delete(&c.pk, &c.sk, Condition::Always).await?;
                }
                return Ok(None);
            }
            let Some(blob) = blob else { return Ok(None) };
            if !p.dry_run && !self.collect_blob(&digest, blob.size, &c).await? {
                return Ok(Some((c.sk, None)));
            }
            Ok(Some((c.sk, Some((digest, blob.size)))))
        });
        let done: Vec<ServiceResult<Swept>> = collected.buffer_unordered(IN_FLIGHT).collect().await;
        for outcome in done {
            let Some((sk, deleted)) = outcome? else { continue };
            counted.insert(sk);
            if let Some((digest, size)) = deleted {
                let done = if p.dry_run { "would be deleted" } else { "deleted" };
                log.push(format!("blob {digest} ({size} bytes) {done}"));
                tally.purged_blobs += 1;
                tally.freed_space += size;
            }
        }
        if p.dry_run && shard == 0 && next.is_none() {
            // The blobs whose every link the repository part would remove.
            for item in self.meta.query_all(Query::table(format!("GCX#{execution}"), "")).await? {
                // The tally has served its purpose.
                self.meta.delete(&item.pk, &item.sk, Condition::Always).await?;
                if counted.contains(&item.sk) {
                    continue;
                }
                let Ok(digest) = item.sk.parse::<Digest>() else { continue };
                if let Some(b) = self.blob_record(&digest).await?
                    && b.links.is_some_and(|n| n > 0 && n <= item.i64("removed").unwrap_or(0))
                {
                    log.push(format!("blob {digest} ({} bytes) would be deleted", b.size));
                    tally.purged_blobs += 1;
                    tally.freed_space += b.size;
                }
            }
        }
        Ok((tally, next))
    }

    /// Deletes a candidate blob: claims it (a link refuses a claimed
    /// blob), deletes its object, then its record and candidate entry.
    /// False when a link took it first.
    async fn collect_blob(&self, digest: &Digest, size: u64, candidate: &Item) -> ServiceResult<bool> {
        let (pk, sk) = keys::blob(digest);
        let claim = Write::Set {
            pk: pk.clone(),
            sk: sk.clone(),
            attrs: Attrs::from_iter([(DELETING.to_owned(), 1.into())]),
            cond: Condition::equals(LINKS, 0),
        };
        match self.meta.transact(vec![claim]).await {
            Ok(()) => {}
            Err(e) if e.is(ErrorKind::ConditionFailed) => return Ok(false),
            Err(e) => return Err(e.into()),
        }
        match self.blobs.delete(&crate::blob::keys::blob(digest)).await {
            Err(e) if !e.is(crate::blob::ErrorKind::NotFound) => return Err(e.into()),
            _ => {}
        }
        let (cpk, csk) = keys::counter_shard(keys::Counted::StoredBytes, &digest.to_string());
        let size = i64::try_from(size).unwrap_or(i64::MAX);
        let writes = vec![
            Write::Delete { pk, sk, cond: Condition::equals(DELETING, 1) },
            Write::Delete { pk: candidate.pk.clone(), sk: candidate.sk.clone(), cond: Condition::Always },
            Write::Add { pk: cpk, sk: csk, attr: keys::attr::COUNT.to_owned(), delta: -size, cond: Condition::Always },
        ];
        self.meta.transact(writes).await?;
        Ok(true)
    }
}

/// The object-store prefixes one orphan shard lists: the blobs whose hex
/// digest starts with the shard's hex digit, of either algorithm.
fn orphan_prefixes(shard: u8) -> [String; 2] {
    let c = char::from_digit(u32::from(shard % keys::GC_SHARDS), 16).unwrap_or('0');
    [format!("{}sha256/{c}", crate::blob::keys::BLOBS_PREFIX), format!("{}sha512/{c}", crate::blob::keys::BLOBS_PREFIX)]
}

impl Registry {
    /// One orphan shard's page: objects under `blobs/` that no blob record
    /// owns (a crash between writing a blob and recording it), older than
    /// the window. Each is claimed first with a record marked `deleting`
    /// and a candidate entry (so a crash midway is finished by the
    /// candidate sweep, and an upload of the same digest meanwhile is told
    /// to upload again), then checked once more, then deleted.
    pub async fn gc_orphans(
        &self,
        shard: u8,
        after: Option<String>,
        p: &GcParams,
        limit: usize,
        log: &mut Vec<String>,
    ) -> ServiceResult<(GcTally, Option<String>)> {
        let cutoff = now_ms() - p.window_secs.saturating_mul(1000);
        let prefixes = orphan_prefixes(shard);
        let at = after.as_deref().map_or(0, |a| usize::from(a.starts_with(&prefixes[1])));
        let page = self.blobs.list(&prefixes[at], after.as_deref(), limit).await?;
        let next = page.next.clone().or_else(|| (at == 0).then(|| prefixes[1].clone()));
        let mut tally = GcTally::default();
        for object in page.objects {
            if object.modified_ms >= cutoff {
                continue;
            }
            let Some(digest) = digest_of_key(&object.key) else { continue };
            if self.blob_record(&digest).await?.is_some() {
                continue;
            }
            if !p.dry_run && !self.collect_orphan(&digest, &object.key, object.size, cutoff).await? {
                continue;
            }
            let done = if p.dry_run { "would be deleted" } else { "deleted" };
            log.push(format!("orphan object {} ({} bytes) {done}", object.key, object.size));
            tally.purged_blobs += 1;
            tally.freed_space += object.size;
        }
        Ok((tally, next))
    }

    async fn collect_orphan(&self, digest: &Digest, key: &str, size: u64, cutoff: i64) -> ServiceResult<bool> {
        let (pk, sk) = keys::blob(digest);
        let claim = crate::meta::Item::new(&pk, &sk)
            .with("size", i64::try_from(size).unwrap_or(i64::MAX))
            .with("created_at", crate::meta::now_unix())
            .with(LINKS, 0)
            .with(DELETING, 1);
        let (gpk, gsk) = keys::gc_candidate(digest);
        let candidate =
            crate::meta::Item::new(&gpk, &gsk).with("since", 0).with("size", i64::try_from(size).unwrap_or(0));
        let writes = vec![
            Write::Put { item: claim, cond: Condition::NotExists },
            Write::Put { item: candidate, cond: Condition::Always },
        ];
        match self.meta.transact(writes).await {
            Ok(()) => {}
            // Recorded meanwhile: an upload finished it.
            Err(e) if e.is(ErrorKind::ConditionFailed) => return Ok(false),
            Err(e) => return Err(e.into()),
        }
        // Written again before the claim (an upload about to record it):
        // let it be.
        // Gone already (the candidate sweep took it): nothing to count.
        let take = match self.blobs.head(key).await {
            Ok(meta) => meta.modified_ms < cutoff,
            Err(e) if e.is(crate::blob::ErrorKind::NotFound) => false,
            Err(e) => return Err(e.into()),
        };
        if take {
            match self.blobs.delete(key).await {
                Err(e) if !e.is(crate::blob::ErrorKind::NotFound) => return Err(e.into()),
                _ => {}
            }
        }
        let release = vec![
            Write::Delete { pk, sk, cond: Condition::equals(DELETING, 1) },
            Write::Delete { pk: gpk, sk: gsk, cond: Condition::Always },
        ];
        self.meta.transact(release).await?;
        Ok(take)
    }

    /// A page of the objects of upload sessions (`uploads/`): those older
    /// than the window whose session is gone (ended, or expired) are
    /// removed. A live session's objects stay, however old.
    pub async fn gc_uploads(
        &self,
        after: Option<String>,
        p: &GcParams,
        limit: usize,
        log: &mut Vec<String>,
    ) -> ServiceResult<(GcTally, Option<String>)> {
        let cutoff = now_ms() - p.window_secs.saturating_mul(1000);
        let page = self.blobs.list(crate::blob::keys::UPLOADS_PREFIX, after.as_deref(), limit).await?;
        let mut alive: BTreeMap<String, bool> = BTreeMap::new();
        let mut tally = GcTally::default();
        for object in page.objects {
            if object.modified_ms >= cutoff {
                continue;
            }
            let rest = &object.key[crate::blob::keys::UPLOADS_PREFIX.len()..];
            let Some((id, _)) = rest.split_once('/') else { continue };
            let live = match alive.get(id) {
                Some(live) => *live,
                None => {
                    let (pk, sk) = keys::upload(id);
                    let live = self.meta.get(&pk, &sk).await?.is_some();
                    alive.insert(id.to_owned(), live);
                    live
                }
            };
            if live {
                continue;
            }
            if !p.dry_run {
                match self.blobs.delete(&object.key).await {
                    Err(e) if !e.is(crate::blob::ErrorKind::NotFound) => return Err(e.into()),
                    _ => {}
                }
            }
            let done = if p.dry_run { "would be deleted" } else { "deleted" };
            log.push(format!("abandoned upload object {} ({} bytes) {done}", object.key, object.size));
            tally.upload_objects += 1;
            tally.freed_space += object.size;
        }
        Ok((tally, page.next))
    }

    /// A page of the table walk for expired items: each is removed (unless
    /// renewed meanwhile), and an expired upload session's multipart upload
    /// is aborted first (its other objects go with `gc_uploads`).
    pub async fn gc_expired(
        &self,
        after: Option<String>,
        p: &GcParams,
        limit: usize,
        log: &mut Vec<String>,
    ) -> ServiceResult<(GcTally, Option<String>)> {
        let page = self.meta.expired(after, limit).await?;
        let mut tally = GcTally::default();
        for item in page.items {
            let Some(expiry) = item.i64(crate::meta::TTL_ATTR) else { continue };
            if !p.dry_run {
                if let Some(id) = item.pk.strip_prefix("U#")
                    && let Some(multipart) = item.attrs.get("multipart").and_then(|m| m.as_str())
                {
                    let data = crate::blob::keys::upload_data(id);
                    if let Err(e) = self.blobs.abort_multipart(&data, multipart).await
                        && !e.is(crate::blob::ErrorKind::NotFound)
                    {
                        return Err(e.into());
                    }
                }
                match self.meta.delete(&item.pk, &item.sk, Condition::at_most(crate::meta::TTL_ATTR, expiry)).await {
                    Ok(()) => {}
                    Err(e) if e.is(ErrorKind::ConditionFailed) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            tally.expired_items += 1;
        }
        if tally.expired_items > 0 {
            log.push(format!("{} expired items removed", tally.expired_items));
        }
        Ok((tally, page.next))
    }
}

/// The digest of a blob object's key (`blobs/<alg>/<2 hex>/<hex>`).
fn digest_of_key(key: &str) -> Option<Digest> {
    let rest = key.strip_prefix(crate::blob::keys::BLOBS_PREFIX)?;
    let (alg, rest) = rest.split_once('/')?;
    let (_, hex) = rest.split_once('/')?;
    let digest: Digest = format!("{alg}:{hex}").parse().ok()?;
    (crate::blob::keys::blob(&digest) == key).then_some(digest)
}

impl Registry {
    /// A whole collection in this process (`berth admin gc`): every
    /// repository, then every candidate shard; each log line to `out`.
    pub async fn collect_garbage(&self, p: &GcParams, mut out: impl FnMut(&str)) -> ServiceResult<GcTally> {
        // A run of its own for the dry-run tally.
        let run = super::executions::new_id();
        let mut total = GcTally::default();
        let mut last: Option<String> = None;
        loop {
            let page = self.catalog(Some(100), last.as_deref()).await?;
            for name in &page.names {
                let Ok(repo) = RepoName::parse(name) else { continue };
                let mut log = Vec::new();
                total.add(&self.gc_repository(&repo, p, run, &mut log).await?);
                log.iter().for_each(|l| out(l));
            }
            if !page.more {
                break;
            }
            last = page.names.last().cloned();
        }
        for part in GcPart::after_marking() {
            let mut after = None;
            loop {
                let mut log = Vec::new();
                let (t, next) = self.gc_part(part, after, p, run, &mut log).await?;
                total.add(&t);
                log.iter().for_each(|l| out(l));
                match next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
        }
        Ok(total)
    }

    /// A page of one part of a collection that follows the marking.
    pub async fn gc_part(
        &self,
        part: GcPart,
        after: Option<String>,
        p: &GcParams,
        execution: i64,
        log: &mut Vec<String>,
    ) -> ServiceResult<(GcTally, Option<String>)> {
        match part {
            GcPart::Sweep(shard) => self.gc_sweep(shard, after, p, execution, 500, log).await,
            GcPart::Orphans(shard) => self.gc_orphans(shard, after, p, 1000, log).await,
            GcPart::Uploads => self.gc_uploads(after, p, 1000, log).await,
            GcPart::Expired => self.gc_expired(after, p, 1000, log).await,
        }
    }
}

/// How long a collection's bookkeeping is kept.
const RUN_TTL_SECS: i64 = 7 * 24 * 3600;

impl Registry {
    /// Records that the marking's plan covered a page (`page`, the catalog
    /// position it started at) with `marks` mark tasks, and, with `last`,
    /// that the plan is complete. Once per page, however often it is
    /// called. True when the marking is over by this call: the caller
    /// starts the parts after it.
    pub async fn gc_planned(&self, execution: i64, page: &str, marks: u64, last: bool) -> ServiceResult<bool> {
        let pk = keys::gc_run(execution);
        let expires = crate::meta::now_unix() + RUN_TTL_SECS;
        let marker = crate::meta::Item::new(&pk, format!("PLAN#{page}")).with(crate::meta::TTL_ATTR, expires);
        let mut writes = vec![
            Write::Put { item: marker, cond: Condition::NotExists },
            Write::Add {
                pk: pk.clone(),
                sk: "COUNT".to_owned(),
                attr: "pending".to_owned(),
                delta: i64::try_from(marks).unwrap_or(i64::MAX),
                cond: Condition::Always,
            },
        ];
        if last {
            let planned = crate::meta::Item::new(&pk, "PLANNED").with(crate::meta::TTL_ATTR, expires);
            writes.push(Write::Put { item: planned, cond: Condition::Always });
        }
        self.record_once(writes).await?;
        self.gc_marking_over(execution).await
    }

    /// Records that the page `page` was marked (once, however many tasks
    /// mark it). True when the marking is over by this call.
    pub async fn gc_marked(&self, execution: i64, page: &str) -> ServiceResult<bool> {
        let pk = keys::gc_run(execution);
        let expires = crate::meta::now_unix() + RUN_TTL_SECS;
        let marker = crate::meta::Item::new(&pk, format!("DONE#{page}")).with(crate::meta::TTL_ATTR, expires);
        let writes = vec![
            Write::Put { item: marker, cond: Condition::NotExists },
            Write::Add {
                pk: pk.clone(),
                sk: "COUNT".to_owned(),
                attr: "pending".to_owned(),
                delta: -1,
                cond: Condition::Always,
            },
        ];
        self.record_once(writes).await?;
        self.gc_marking_over(execution).await
    }

    /// Applies writes guarded by a create-only marker (first write); a
    /// marker that exists means they were applied before.
    async fn record_once(&self, writes: Vec<Write>) -> ServiceResult<()> {
        match self.meta.transact(writes).await {
            Ok(()) => Ok(()),
            Err(e) if e.is(ErrorKind::ConditionFailed) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// True for exactly one caller once the plan is complete and every
    /// planned page is marked.
    async fn gc_marking_over(&self, execution: i64) -> ServiceResult<bool> {
        let pk = keys::gc_run(execution);
        if self.meta.get(&pk, "PLANNED").await?.is_none() {
            return Ok(false);
        }
        let pending = self.meta.get(&pk, "COUNT").await?.and_then(|c| c.i64("pending")).unwrap_or(0);
        if pending > 0 {
            return Ok(false);
        }
        let expires = crate::meta::now_unix() + RUN_TTL_SECS;
        let started = crate::meta::Item::new(&pk, "PARTS").with(crate::meta::TTL_ATTR, expires);
        match self.meta.put(started, Condition::NotExists).await {
            Ok(()) => Ok(true),
            Err(e) if e.is(ErrorKind::ConditionFailed) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

/// The parts of a collection that run once every repository is marked,
/// each a chain of pages, all in parallel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "part", content = "shard")]
pub enum GcPart {
    /// Candidates of one shard.
    Sweep(u8),
    /// Blob objects no record owns, of one shard.
    Orphans(u8),
    /// Objects of abandoned upload sessions.
    Uploads,
    /// Expired table items.
    Expired,
}

impl GcPart {
    pub fn after_marking() -> Vec<Self> {
        let mut parts: Vec<Self> = (0..keys::GC_SHARDS).map(Self::Sweep).collect();
        parts.extend((0..keys::GC_SHARDS).map(Self::Orphans));
        parts.extend([Self::Uploads, Self::Expired]);
        parts
    }
}

impl GcTally {
    /// The sum of many parts.
    pub fn sum<'a>(parts: impl IntoIterator<Item = &'a Self>) -> Self {
        let mut total = Self::default();
        for p in parts {
            total.add(p);
        }
        total
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    /// The marking is over once, when the plan is complete and every
    /// planned page is marked, however often a task reports.
    #[tokio::test]
    async fn the_marking_ends_once_after_every_planned_page() {
        let (_dir, reg) = crate::testkit::local_registry().await;
        assert!(!reg.gc_planned(1, "", 2, false).await.unwrap());
        assert!(!reg.gc_planned(1, "", 2, false).await.unwrap(), "a plan page counts once");
        assert!(!reg.gc_marked(1, "a").await.unwrap());
        assert!(!reg.gc_marked(1, "a").await.unwrap(), "a page marked twice counts once");
        assert!(!reg.gc_marked(1, "b").await.unwrap(), "the plan is not complete");
        assert!(!reg.gc_planned(1, "b", 1, true).await.unwrap(), "one page is still unmarked");
        assert!(reg.gc_marked(1, "c").await.unwrap(), "the last page ends it");
        assert!(!reg.gc_marked(1, "c").await.unwrap(), "and only once");
        // An empty catalog: over at once.
        assert!(reg.gc_planned(2, "", 0, true).await.unwrap());
        assert!(!reg.gc_planned(2, "", 0, true).await.unwrap());
    }
}

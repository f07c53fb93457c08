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
    pub freed_space: u64,
    pub unlinked: u64,
}

impl GcTally {
    fn add(&mut self, other: &Self) {
        self.purged_blobs += other.purged_blobs;
        self.purged_manifests += other.purged_manifests;
        self.freed_space += other.freed_space;
        self.unlinked += other.unlinked;
    }
}

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
            for (digest, record, touched) in &artifacts {
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
            if p.dry_run {
                let (pk, sk) = dry_tally(execution, &digest);
                let count = Write::Add { pk, sk, attr: "removed".to_owned(), delta: 1, cond: Condition::Always };
                self.meta.transact(vec![count]).await?;
            } else if !self.unlink_blob_if(repo, &d, Condition::at_most(TOUCHED_AT, touched)).await? {
                continue;
            }
            tally.unlinked += 1;
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
        for c in page.items {
            if c.i64("since").unwrap_or(i64::MAX) >= cutoff {
                continue;
            }
            let Ok(digest) = c.sk.parse::<Digest>() else { continue };
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
                continue;
            }
            let Some(blob) = blob else { continue };
            counted.insert(c.sk.clone());
            if !p.dry_run && !self.collect_blob(&digest, blob.size, &c).await? {
                continue;
            }
            log.push(format!("blob {digest} ({} bytes) deleted", blob.size));
            tally.purged_blobs += 1;
            tally.freed_space += blob.size;
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
        for shard in 0..keys::GC_SHARDS {
            let mut after = None;
            loop {
                let mut log = Vec::new();
                let (t, next) = self.gc_sweep(shard, after, p, run, 500, &mut log).await?;
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

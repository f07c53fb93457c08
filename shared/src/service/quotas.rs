//! Project quotas (F5, Harbor's `/quotas`): storage used by a project,
//! against its `storage_limit`.
//!
//! A project uses the bytes of each blob (layer, config, or a manifest
//! itself) that any of its repositories references, counted once however
//! many repositories or artifacts share it. The reference of a layer or
//! config is the repository's blob link (`L#<digest>`, made by an upload,
//! a mount or a copy); that of a manifest is its artifact. The project
//! keeps one entry per referenced blob (`P#<project>` / `PB#<digest>`: its
//! size and how many references it has) and its usage (`P#<project>` /
//! `QUOTA`). Each reference is added or removed in one transaction with
//! its entry and, for a blob's first or last reference, the usage: the
//! usage never drifts from the references, and the addition is
//! conditional on the usage staying within the limit, so concurrent pushes
//! can never together pass it.
//!
//! So usage falls when a manifest is deleted (its own bytes) and when a
//! repository goes (its links); layers an artifact deletion leaves
//! unreferenced are freed when garbage collection removes their links.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::record::from_item;
use super::{Registry, ServiceError, ServiceResult};
use crate::events::{Event, EventKind};
use crate::meta::keys;
use crate::meta::{Condition, Query, Write};
use crate::oci::{Digest, RepoName};

/// Harbor's largest storage limit: 1024 TiB.
pub const MAX_STORAGE: i64 = 1_125_899_906_842_624;

const USED: &str = "used";
const REFS: &str = "refs";
/// Set while the usage is over the warning threshold (1) or not (0).
const WARNED: &str = "warned";

/// A project's blob entry: its size and its references in the project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ProjectBlob {
    size: i64,
    refs: i64,
}

/// Bytes as Harbor shows them in its quota messages (`1.5 MiB`).
pub fn display_size(bytes: i64) -> String {
    const UNIT: i64 = 1024;
    if bytes.abs() < UNIT {
        return format!("{bytes} B");
    }
    let (mut div, mut exp) = (UNIT, 0);
    let mut n = bytes.abs() / UNIT;
    while n >= UNIT && exp < 5 {
        div *= UNIT;
        exp += 1;
        n /= UNIT;
    }
    #[allow(clippy::cast_precision_loss)]
    let value = bytes as f64 / div as f64;
    format!("{value:.1} {}iB", ['K', 'M', 'G', 'T', 'P', 'E'][exp])
}

/// Harbor's refusal of a push over quota.
pub fn exceeded_message(adding: i64, used: i64, hard: i64) -> String {
    format!(
        "Quota exceeded when processing the request of adding {} of storage resource, which when updated to current usage of {} will exceed the configured upper limit of {}.",
        display_size(adding),
        display_size(used),
        display_size(hard)
    )
}

/// What a quota sync found and did for one project.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    pub project: String,
    /// Blob entries rewritten to match the references.
    pub entries_corrected: usize,
    /// Entries a concurrent change touched during the sync (left alone).
    pub entries_skipped: usize,
    pub used_before: i64,
    pub used_after: i64,
}

impl SyncReport {
    /// Bytes the stored usage was off by.
    pub fn drift(&self) -> i64 {
        self.used_after - self.used_before
    }
}

/// One change of a blob's references in a project, ready to commit.
pub(super) struct RefChange {
    pub writes: Vec<Write>,
    /// The usage change it makes (0 unless it is the blob's first or last
    /// reference).
    pub delta: i64,
    /// The limit the addition was checked against (-1: none).
    pub hard: i64,
}

impl Registry {
    /// A project's storage usage in bytes.
    pub async fn storage_used(&self, project: &str) -> ServiceResult<i64> {
        let (pk, sk) = keys::quota(project);
        Ok(self.meta.get(&pk, &sk).await?.and_then(|i| i.i64(USED)).unwrap_or(0).max(0))
    }

    /// The limit that applies to a project now: its `storage_limit`, or none
    /// while quotas are turned off (`quota_per_project_enable`).
    async fn storage_hard(&self, project: &str) -> ServiceResult<i64> {
        if !self.settings().await?.quota_per_project_enable {
            return Ok(-1);
        }
        let p = self.project(&super::projects::ProjectRef::Name(project.to_owned())).await?;
        Ok(p.storage_limit)
    }

    /// The writes that add one reference of `project` to the blob `digest`
    /// of `size` bytes: the blob's entry and, for its first reference, the
    /// usage, conditional on staying within the limit. They fail with
    /// `ConditionFailed` when the entry changed meanwhile or the limit would
    /// be passed ([`Self::explain_refusal`] tells which).
    pub(super) async fn add_ref(&self, project: &str, digest: &Digest, size: u64) -> ServiceResult<RefChange> {
        let (pk, sk) = keys::project_blob(project, digest);
        let size = i64::try_from(size).unwrap_or(i64::MAX);
        match self.meta.get(&pk, &sk).await? {
            Some(item) => {
                let entry: ProjectBlob = from_item(item, "project blob")?;
                let writes = vec![Write::Add {
                    pk,
                    sk,
                    attr: REFS.to_owned(),
                    delta: 1,
                    cond: Condition::equals(REFS, entry.refs),
                }];
                Ok(RefChange { writes, delta: 0, hard: -1 })
            }
            None => {
                let hard = self.storage_hard(project).await?;
                let entry = super::record::to_item(pk, sk, &ProjectBlob { size, refs: 1 }, "project blob")?;
                let (qpk, qsk) = keys::quota(project);
                let cond = if hard >= 0 { Condition::at_most(USED, hard - size) } else { Condition::Always };
                let writes = vec![
                    Write::Put { item: entry, cond: Condition::NotExists },
                    Write::Add { pk: qpk, sk: qsk, attr: USED.to_owned(), delta: size, cond },
                ];
                Ok(RefChange { writes, delta: size, hard })
            }
        }
    }

    /// The writes that remove one reference of `project` to `digest`: for
    /// its last, the entry goes and the usage falls. Nothing when the
    /// project has no entry for it (a reference made before quotas were
    /// counted; the quota sync settles those).
    pub(super) async fn remove_ref(&self, project: &str, digest: &Digest) -> ServiceResult<RefChange> {
        let (pk, sk) = keys::project_blob(project, digest);
        let Some(item) = self.meta.get(&pk, &sk).await? else {
            return Ok(RefChange { writes: Vec::new(), delta: 0, hard: -1 });
        };
        let entry: ProjectBlob = from_item(item, "project blob")?;
        let seen = Condition::equals(REFS, entry.refs);
        if entry.refs > 1 {
            let writes = vec![Write::Add { pk, sk, attr: REFS.to_owned(), delta: -1, cond: seen }];
            return Ok(RefChange { writes, delta: 0, hard: -1 });
        }
        let (qpk, qsk) = keys::quota(project);
        let writes = vec![
            Write::Delete { pk, sk, cond: seen },
            Write::Add { pk: qpk, sk: qsk, attr: USED.to_owned(), delta: -entry.size, cond: Condition::Always },
        ];
        Ok(RefChange { writes, delta: -entry.size, hard: -1 })
    }

    /// After a reference's transaction failed its conditions: the quota
    /// refusal (raising `QUOTA_EXCEED`) when the limit is why, else `None`
    /// (a concurrent change: read again and retry).
    pub(super) async fn explain_refusal(
        &self,
        repo: &RepoName,
        digest: &Digest,
        change: &RefChange,
    ) -> ServiceResult<Option<ServiceError>> {
        if change.delta <= 0 || change.hard < 0 {
            return Ok(None);
        }
        let used = self.storage_used(repo.project()).await?;
        if used + change.delta <= change.hard {
            return Ok(None);
        }
        let message = exceeded_message(change.delta, used, change.hard);
        let mut event = Event::artifact(EventKind::QuotaExceed, self.actor(), repo.as_str(), &digest.to_string());
        event.detail = Some(message.clone());
        event.size = Some(u64::try_from(change.delta).unwrap_or(0));
        if let Err(e) = self.commit_with_events(Vec::new(), vec![event]).await {
            tracing::warn!(error = %e, "QUOTA_EXCEED event not raised");
        }
        Ok(Some(ServiceError::QuotaExceeded(message)))
    }

    /// After a reference was added: `QUOTA_WARNING` once the usage is at or
    /// over the warning threshold (`quota_warning_percent` of the limit),
    /// once per crossing however many pushes cross it together (a flag on
    /// the usage item, set conditionally; cleared by the first addition
    /// that finds the usage back under the threshold).
    pub(super) async fn warn_if_near(&self, repo: &RepoName, digest: &Digest, change: &RefChange) {
        if change.delta <= 0 || change.hard <= 0 {
            return;
        }
        let Ok(settings) = self.settings().await else { return };
        let threshold = change.hard.saturating_mul(settings.quota_warning_percent) / 100;
        let Ok(used) = self.storage_used(repo.project()).await else { return };
        let (pk, sk) = keys::quota(repo.project());
        let flag = |on: bool| Write::Set {
            pk: pk.clone(),
            sk: sk.clone(),
            attrs: crate::meta::Attrs::from_iter([(WARNED.to_owned(), i64::from(on).into())]),
            cond: if on { Condition::at_most(WARNED, 0) } else { Condition::equals(WARNED, 1) },
        };
        if used < threshold {
            // Under again: the next crossing warns anew.
            let _ = self.meta.transact(vec![flag(false)]).await;
            return;
        }
        match self.meta.transact(vec![flag(true)]).await {
            Ok(()) => {}
            // Warned already for this crossing.
            Err(e) if e.is(crate::meta::ErrorKind::ConditionFailed) => return,
            Err(e) => {
                tracing::warn!(error = %e, "QUOTA_WARNING not raised");
                return;
            }
        }
        let mut event = Event::artifact(EventKind::QuotaWarning, self.actor(), repo.as_str(), &digest.to_string());
        event.detail = Some(format!(
            "the storage usage {} of project {} reached {}% of its limit {}",
            display_size(used),
            repo.project(),
            settings.quota_warning_percent,
            display_size(change.hard)
        ));
        if let Err(e) = self.commit_with_events(Vec::new(), vec![event]).await {
            tracing::warn!(error = %e, "QUOTA_WARNING event not raised");
        }
    }

    /// Recomputes a project's blob entries and usage from its references
    /// (its repositories' links and artifacts) and corrects what differs:
    /// references made before quotas were counted, or anything a bug or a
    /// hand edit left. Each correction is conditional on the entry it read,
    /// so a push racing the sync is never undone: the sync skips that entry
    /// and says so (a second run settles it).
    pub async fn sync_quota(&self, project: &str) -> ServiceResult<SyncReport> {
        let mut expected: BTreeMap<String, ProjectBlob> = BTreeMap::new();
        let (ppk, _) = keys::project(project);
        let repos = self.meta.query_all(Query::table(&ppk, keys::REPOSITORY_PREFIX).keys_only()).await?;
        for entry in repos {
            let Some(repo) = keys::repository_name(&entry.sk).and_then(|n| RepoName::parse(n).ok()) else { continue };
            let partition = keys::repo_partition(&repo);
            for prefix in [keys::BLOB_LINK_PREFIX, keys::ARTIFACT_PREFIX] {
                for item in self.meta.query_all(Query::table(&partition, prefix)).await? {
                    let (Some(digest), Some(size)) = (item.sk.strip_prefix(prefix), item.i64("size")) else { continue };
                    let e = expected.entry(digest.to_owned()).or_insert(ProjectBlob { size, refs: 0 });
                    e.refs += 1;
                }
            }
        }
        let mut stored: BTreeMap<String, ProjectBlob> = BTreeMap::new();
        for item in self.meta.query_all(Query::table(&ppk, keys::PROJECT_BLOB_PREFIX)).await? {
            if let Some(digest) = item.sk.strip_prefix(keys::PROJECT_BLOB_PREFIX).map(str::to_owned) {
                stored.insert(digest, from_item(item, "project blob")?);
            }
        }
        let mut report = SyncReport { project: project.to_owned(), ..SyncReport::default() };
        let digests: std::collections::BTreeSet<&String> = expected.keys().chain(stored.keys()).collect();
        for digest in digests {
            let (want, have) = (expected.get(digest), stored.get(digest));
            if want == have {
                continue;
            }
            let sk = format!("{}{digest}", keys::PROJECT_BLOB_PREFIX);
            let write = match (want, have) {
                (Some(w), h) => {
                    let cond = h.map_or(Condition::NotExists, |h| Condition::equals(REFS, h.refs));
                    Write::Put { item: super::record::to_item(&ppk, &sk, w, "project blob")?, cond }
                }
                (None, Some(h)) => Write::Delete { pk: ppk.clone(), sk, cond: Condition::equals(REFS, h.refs) },
                (None, None) => continue,
            };
            match self.meta.transact(vec![write]).await {
                Ok(()) => report.entries_corrected += 1,
                Err(e) if e.is(crate::meta::ErrorKind::ConditionFailed) => report.entries_skipped += 1,
                Err(e) => return Err(e.into()),
            }
        }
        // The usage is the sum of the entries as they now stand.
        let (qpk, qsk) = keys::quota(project);
        for _ in 0..8 {
            let entries = self.meta.query_all(Query::table(&ppk, keys::PROJECT_BLOB_PREFIX)).await?;
            let total: i64 = entries.iter().filter_map(|i| i.i64("size")).sum();
            let item = self.meta.get(&qpk, &qsk).await?;
            let used = item.as_ref().and_then(|i| i.i64(USED));
            report.used_before = used.unwrap_or(0);
            report.used_after = total;
            if used == Some(total) {
                return Ok(report);
            }
            let cond = used.map_or(Condition::NotExists, |u| Condition::equals(USED, u));
            let put = Write::Put { item: crate::meta::Item::new(&qpk, &qsk).with(USED, total), cond };
            match self.meta.transact(vec![put]).await {
                Ok(()) => return Ok(report),
                Err(e) if e.is(crate::meta::ErrorKind::ConditionFailed) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::Conflict(format!("the usage of {project} kept changing during the sync; run it again")))
    }

    /// The name of every project (for a sync of all of them).
    pub async fn project_names(&self) -> ServiceResult<Vec<String>> {
        let items = self.meta.query_all(Query::table(keys::PROJECTS, "").keys_only()).await?;
        Ok(items.into_iter().map(|i| i.sk).collect())
    }

    /// Removes a deleted project's usage item.
    pub(super) async fn delete_quota_of(&self, project: &str) -> ServiceResult<()> {
        let (pk, sk) = keys::quota(project);
        self.meta.delete(&pk, &sk, Condition::Always).await.map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_harbor_writes_them() {
        assert_eq!(display_size(512), "512 B");
        assert_eq!(display_size(1536), "1.5 KiB");
        assert_eq!(display_size(10 * 1024 * 1024), "10.0 MiB");
        assert_eq!(
            exceeded_message(2048, 1024, 2560),
            "Quota exceeded when processing the request of adding 2.0 KiB of storage resource, which when updated to current usage of 1.0 KiB will exceed the configured upper limit of 2.5 KiB."
        );
    }
}

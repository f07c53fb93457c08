//! What Harbor hides from a repository's artifact list, and what it shows
//! with an artifact instead: the children of an index (shown as the
//! index's `references`) and accessories — cosign and Notation signatures,
//! SBOMs and other artifacts made for a subject, by the OCI `subject` field
//! or by cosign's tag scheme (`sha256-<digest>.sig`).
//!
//! Each artifact's push-order entry carries `hidden` while it is a child or
//! an accessory, and the repository counts its hidden artifacts, so the
//! list of the rest pages as the list of all does. An index links each
//! child it references (`PA#<child>#<index>`, made once, so a push seen
//! twice counts once) and the child counts its indexes (`parents`); the
//! first link hides the child and the last one's removal shows it again.

use serde::{Deserialize, Serialize};

use crate::meta::keys::{self, Counted};
use crate::meta::{Attrs, Condition, ErrorKind, Item, Query, Write};
use crate::oci::{Digest, Manifest, Tag};

use super::manifests::ArtifactRecord;
use super::paging::count_write;
use super::record::{corrupt, from_item, to_item};
use super::{Registry, ServiceResult};
use crate::oci::RepoName;

/// Tries of a change that lost a race.
const ATTEMPTS: usize = 8;

/// The layer of a cosign signature (simple signing).
const COSIGN_SIGNATURE_LAYER: &str = "application/vnd.dev.cosign.simplesigning.v1+json";

/// Harbor's accessory types.
pub const COSIGN: &str = "signature.cosign";
pub const NOTATION: &str = "signature.notation";
pub const HARBOR_SBOM: &str = "harbor.sbom";
pub const SUBJECT: &str = "subject.accessory";

/// An accessory as its subject lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accessory {
    pub digest: Digest,
    pub subject: Digest,
    /// Harbor's accessory type ([`COSIGN`], …).
    pub kind: &'static str,
    pub size: u64,
    /// Unix seconds.
    pub push_time: i64,
}

/// A cosign signature kept by tag scheme, as its subject lists it.
#[derive(Debug, Serialize, Deserialize)]
struct TagAccessoryEntry {
    size: u64,
    pushed_at: i64,
}

/// The subject a cosign signature tagged `sha256-<hex>.sig` signs, when
/// `manifest` is one.
pub fn tag_scheme_subject(tag: &Tag, manifest: &Manifest) -> Option<Digest> {
    let hex = tag.as_str().strip_prefix("sha256-")?.strip_suffix(".sig")?;
    let signed = manifest.layers.iter().any(|l| l.media_type == COSIGN_SIGNATURE_LAYER);
    if !signed || hex.len() != 64 {
        return None;
    }
    format!("sha256:{hex}").parse().ok()
}

/// Harbor's type of an accessory made through `subject`, by its artifact
/// type.
pub fn subject_accessory_kind(artifact_type: Option<&str>) -> &'static str {
    match artifact_type.unwrap_or("") {
        "application/vnd.dev.cosign.artifact.sig.v1+json" => COSIGN,
        "application/vnd.cncf.notary.signature" => NOTATION,
        "application/vnd.goharbor.harbor.sbom.v1" => HARBOR_SBOM,
        _ => SUBJECT,
    }
}

/// Whether a record is of an artifact the listings hide.
pub(super) fn is_hidden(record: &ArtifactRecord) -> bool {
    record.parents > 0 || record.accessory_of.is_some()
}

/// The condition that `parents` still holds `old` (an older record may
/// lack the attribute: then it holds while missing).
fn parents_are(old: i64, has_attr: bool) -> Condition {
    if old == 0 && !has_attr {
        Condition::at_most(keys::attr::PARENTS, 0)
    } else {
        Condition::equals(keys::attr::PARENTS, old)
    }
}

/// The writes that list a new artifact (`delta` 1) or unlist a deleted
/// one (-1): its entries in the push order of its repository and of its
/// project, with their counts (and the hidden counts, when `hidden`).
pub(super) fn listing_writes(repo: &RepoName, pushed_at: i64, digest: &Digest, hidden: bool, delta: i64) -> Vec<Write> {
    let in_repo = digest.to_string();
    let in_project = format!("{repo}@{digest}");
    let mut writes = Vec::with_capacity(6);
    for (pk, sk) in [keys::artifact_pushed(repo, pushed_at, digest), keys::project_artifact(repo, pushed_at, digest)] {
        writes.push(if delta > 0 {
            let mut entry = Item::new(pk, sk);
            if hidden {
                entry = entry.with(keys::attr::HIDDEN, true);
            }
            Write::Put { item: entry, cond: Condition::Always }
        } else {
            Write::Delete { pk, sk, cond: Condition::Always }
        });
    }
    writes.push(count_write(Counted::Artifacts(repo), &in_repo, delta));
    writes.push(count_write(Counted::ProjectArtifacts(repo.project()), &in_project, delta));
    if hidden {
        writes.push(count_write(Counted::HiddenArtifacts(repo), &in_repo, delta));
        writes.push(count_write(Counted::ProjectHiddenArtifacts(repo.project()), &in_project, delta));
    }
    writes
}

/// The writes that hide or show an artifact in the listings, with the
/// counts.
fn visibility_writes(repo: &RepoName, digest: &Digest, record: &ArtifactRecord, hidden: bool) -> Vec<Write> {
    let delta = if hidden { 1 } else { -1 };
    let mut writes = Vec::with_capacity(4);
    for (pk, sk) in
        [keys::artifact_pushed(repo, record.pushed_at, digest), keys::project_artifact(repo, record.pushed_at, digest)]
    {
        let attrs = Attrs::from_iter([(keys::attr::HIDDEN.to_owned(), hidden.into())]);
        writes.push(Write::Set { pk, sk, attrs, cond: Condition::Exists });
    }
    writes.push(count_write(Counted::HiddenArtifacts(repo), &digest.to_string(), delta));
    writes.push(count_write(Counted::ProjectHiddenArtifacts(repo.project()), &format!("{repo}@{digest}"), delta));
    writes
}

impl Registry {
    async fn record_with_attr(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> ServiceResult<Option<(ArtifactRecord, bool)>> {
        let (pk, sk) = keys::artifact(repo, digest);
        match self.meta.get(&pk, &sk).await? {
            Some(item) => {
                let has = item.attrs.contains_key(keys::attr::PARENTS);
                Ok(Some((from_item(item, "artifact")?, has)))
            }
            None => Ok(None),
        }
    }

    /// Links an index to each of its children (once), hiding a child at
    /// its first index. Safe to run again: a link made is skipped.
    pub(super) async fn adopt_children(
        &self,
        repo: &RepoName,
        index: &Digest,
        children: &[Digest],
    ) -> ServiceResult<()> {
        for child in children {
            self.relink(repo, child, index, true, |found| {
                // A child gone meanwhile is not linked.
                let (record, has) = found?;
                let (apk, ask) = keys::artifact(repo, child);
                let attr = keys::attr::PARENTS.to_owned();
                let mut writes =
                    vec![Write::Add { pk: apk, sk: ask, attr, delta: 1, cond: parents_are(record.parents, *has) }];
                if !is_hidden(record) {
                    writes.extend(visibility_writes(repo, child, record, true));
                }
                Some(writes)
            })
            .await?;
        }
        Ok(())
    }

    /// Undoes [`Self::adopt_children`] for a deleted index: a child no
    /// index references any more is listed again.
    pub(super) async fn release_children(
        &self,
        repo: &RepoName,
        index: &Digest,
        children: &[Digest],
    ) -> ServiceResult<()> {
        for child in children {
            self.relink(repo, child, index, false, |found| match found {
                // The child went first (a /v2 delete), or its record is
                // older than the count: only the link goes.
                None => Some(Vec::new()),
                Some((record, _)) if record.parents <= 0 => Some(Vec::new()),
                Some((record, _)) => {
                    let (apk, ask) = keys::artifact(repo, child);
                    let cond = Condition::equals(keys::attr::PARENTS, record.parents);
                    let attr = keys::attr::PARENTS.to_owned();
                    let mut writes = vec![Write::Add { pk: apk, sk: ask, attr, delta: -1, cond }];
                    let after = ArtifactRecord { parents: record.parents - 1, ..record.clone() };
                    if !is_hidden(&after) {
                        writes.extend(visibility_writes(repo, child, record, false));
                    }
                    Some(writes)
                }
            })
            .await?;
        }
        Ok(())
    }

    /// Makes (`link`) or removes the link of `index` to `child` together
    /// with the writes `change` makes of the child's record (`None`: the
    /// child is gone; `change` answering `None` leaves everything), read
    /// again after a lost race. Nothing when the link is already so.
    async fn relink(
        &self,
        repo: &RepoName,
        child: &Digest,
        index: &Digest,
        link: bool,
        change: impl Fn(Option<&(ArtifactRecord, bool)>) -> Option<Vec<Write>>,
    ) -> ServiceResult<()> {
        let (lpk, lsk) = keys::parent_link(repo, child, index);
        for attempt in 0..ATTEMPTS {
            if self.meta.get(&lpk, &lsk).await?.is_some() == link {
                return Ok(());
            }
            let found = self.record_with_attr(repo, child).await?;
            let Some(mut writes) = change(found.as_ref()) else { return Ok(()) };
            writes.insert(
                0,
                if link {
                    Write::Put { item: Item::new(lpk.clone(), lsk.clone()), cond: Condition::NotExists }
                } else {
                    Write::Delete { pk: lpk.clone(), sk: lsk.clone(), cond: Condition::Exists }
                },
            );
            match self.meta.transact(writes).await {
                Ok(()) => return Ok(()),
                Err(e) if e.is(ErrorKind::ConditionFailed) && attempt + 1 < ATTEMPTS => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// The write that lists a cosign signature under its subject.
    pub(super) fn tag_accessory_write(
        repo: &RepoName,
        subject: &Digest,
        digest: &Digest,
        record: &ArtifactRecord,
    ) -> ServiceResult<Write> {
        let (pk, sk) = keys::tag_accessory(repo, subject, digest);
        let entry = TagAccessoryEntry { size: record.size, pushed_at: record.pushed_at };
        Ok(Write::Put { item: to_item(pk, sk, &entry, "accessory")?, cond: Condition::Always })
    }

    /// An artifact's accessories, by digest: those made through `subject`
    /// (the referrers) and cosign's tag-scheme signatures.
    /// The indexes of `repo` that reference `child` (the first `limit`).
    pub async fn parents_of(&self, repo: &RepoName, child: &Digest, limit: usize) -> ServiceResult<Vec<Digest>> {
        let prefix = keys::parents_prefix(child);
        let query = Query::table(keys::repo_partition(repo), prefix.as_str()).keys_only().limit(limit);
        let links = self.meta.query(query).await?.items;
        Ok(links.iter().filter_map(|l| l.sk.strip_prefix(prefix.as_str())?.parse().ok()).collect())
    }

    pub async fn accessories(&self, repo: &RepoName, subject: &Digest) -> ServiceResult<Vec<Accessory>> {
        let partition = keys::repo_partition(repo);
        let mut out = Vec::new();
        let prefix = keys::referrers_prefix(subject);
        for item in self.meta.query_all(Query::table(&partition, prefix.as_str())).await? {
            let digest: Digest =
                item.sk.strip_prefix(&prefix).and_then(|d| d.parse().ok()).ok_or_else(|| corrupt("referrer"))?;
            // Listed only while the accessory is stored.
            let Some(record) = self.artifact_record(repo, &digest).await? else { continue };
            out.push(Accessory {
                kind: subject_accessory_kind(record.artifact_type.as_deref()),
                subject: subject.clone(),
                size: record.size,
                push_time: record.pushed_at,
                digest,
            });
        }
        let prefix = keys::tag_accessories_prefix(subject);
        for item in self.meta.query_all(Query::table(&partition, prefix.as_str())).await? {
            let digest: Digest =
                item.sk.strip_prefix(&prefix).and_then(|d| d.parse().ok()).ok_or_else(|| corrupt("accessory"))?;
            if out.iter().any(|a| a.digest == digest) || self.artifact_record(repo, &digest).await?.is_none() {
                continue;
            }
            let entry: TagAccessoryEntry = from_item(item, "accessory")?;
            out.push(Accessory {
                digest,
                subject: subject.clone(),
                kind: COSIGN,
                size: entry.size,
                push_time: entry.pushed_at,
            });
        }
        out.sort_by_key(|a| a.digest.to_string());
        Ok(out)
    }

    /// Schema 6: lists every stored artifact in its project's push order
    /// (with its counts). Safe to run again: an entry made is skipped.
    pub async fn index_project_artifacts(&self) -> ServiceResult<u64> {
        let mut indexed = 0;
        self.for_each_stored_artifact(async |repo, digest, record| {
            let hidden = is_hidden(&record);
            let (ppk, psk) = keys::project_artifact(repo, record.pushed_at, &digest);
            let mut made = Item::new(ppk, psk);
            if hidden {
                made = made.with(keys::attr::HIDDEN, true);
            }
            let in_project = format!("{repo}@{digest}");
            let mut writes = vec![
                Write::Put { item: made, cond: Condition::NotExists },
                count_write(Counted::ProjectArtifacts(repo.project()), &in_project, 1),
            ];
            if hidden {
                writes.push(count_write(Counted::ProjectHiddenArtifacts(repo.project()), &in_project, 1));
            }
            match self.meta.transact(writes).await {
                Ok(()) => indexed += 1,
                Err(e) if e.is(ErrorKind::ConditionFailed) => {}
                Err(e) => return Err(e.into()),
            }
            Ok(())
        })
        .await?;
        Ok(indexed)
    }

    /// Schema 6, after [`Self::index_project_artifacts`]: hides what earlier
    /// builds stored without knowing Harbor's rules — referrers made
    /// through `subject` become accessories, and each index links its
    /// children. Safe to run again.
    pub async fn hide_stored_references(&self) -> ServiceResult<u64> {
        let mut changed = 0;
        self.for_each_stored_artifact(async |repo, digest, record| {
            let subject = match (&record.subject, &record.accessory_of) {
                (_, Some(_)) => None,
                (Some(subject), None) => Some((subject.clone(), false)),
                (None, None) => self.signed_by_tag_scheme(repo, &digest, &record).await?.map(|s| (s, true)),
            };
            if let Some((subject, by_tag)) = subject {
                let (apk, ask) = keys::artifact(repo, &digest);
                let attrs = Attrs::from_iter([("accessory_of".to_owned(), subject.clone().into())]);
                let cond = Condition::equals("pushed_at", record.pushed_at);
                let mut writes = vec![Write::Set { pk: apk, sk: ask, attrs, cond }];
                if by_tag && let Ok(subject) = subject.parse::<Digest>() {
                    writes.push(Self::tag_accessory_write(repo, &subject, &digest, &record)?);
                }
                if !is_hidden(&record) {
                    writes.extend(visibility_writes(repo, &digest, &record, true));
                }
                self.meta.transact(writes).await?;
                changed += 1;
            }
            let children = self.children_of(&digest, &record).await?;
            if !children.is_empty() {
                self.adopt_children(repo, &digest, &children).await?;
                changed += 1;
            }
            Ok(())
        })
        .await?;
        Ok(changed)
    }

    /// What a stored cosign signature tagged `sha256-<digest>.sig` signs.
    async fn signed_by_tag_scheme(
        &self,
        repo: &RepoName,
        digest: &Digest,
        record: &ArtifactRecord,
    ) -> ServiceResult<Option<String>> {
        if record.tag_count == 0 {
            return Ok(None);
        }
        for name in self.artifact_tag_names(repo, digest).await? {
            let Ok(tag) = Tag::parse(&name) else { continue };
            if !(name.starts_with("sha256-") && name.ends_with(".sig")) {
                continue;
            }
            let stored = self.get_manifest(repo, &crate::oci::Reference::Digest(digest.clone()), true).await?;
            let manifest =
                Manifest::parse(Some(&stored.media_type), &stored.body).map_err(|_| corrupt("stored manifest"))?;
            if let Some(subject) = tag_scheme_subject(&tag, &manifest) {
                return Ok(Some(subject.to_string()));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn cosign_tag_scheme() {
        let sig = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},
            "layers":[{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}]}"#;
        let m = Manifest::parse(None, sig).unwrap();
        let hex = "a".repeat(64);
        let tag = Tag::parse(&format!("sha256-{hex}.sig")).unwrap();
        assert_eq!(tag_scheme_subject(&tag, &m).unwrap().to_string(), format!("sha256:{hex}"));
        assert!(tag_scheme_subject(&Tag::parse(&format!("sha256-{hex}.att")).unwrap(), &m).is_none());
        assert!(tag_scheme_subject(&Tag::parse("latest").unwrap(), &m).is_none());
        assert_eq!(subject_accessory_kind(Some("application/vnd.cncf.notary.signature")), NOTATION);
        assert_eq!(subject_accessory_kind(Some("application/spdx+json")), SUBJECT);
    }
}

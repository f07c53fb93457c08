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

/// The write that hides or shows an artifact in the listings, with its
/// count.
fn visibility_writes(repo: &RepoName, digest: &Digest, record: &ArtifactRecord, hidden: bool) -> Vec<Write> {
    let (pk, sk) = keys::artifact_pushed(repo, record.pushed_at, digest);
    vec![
        Write::Set {
            pk,
            sk,
            attrs: Attrs::from_iter([(keys::attr::HIDDEN.to_owned(), hidden.into())]),
            cond: Condition::Exists,
        },
        count_write(Counted::HiddenArtifacts(repo), &digest.to_string(), if hidden { 1 } else { -1 }),
    ]
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
            let (lpk, lsk) = keys::parent_link(repo, child, index);
            for attempt in 0..ATTEMPTS {
                if self.meta.get(&lpk, &lsk).await?.is_some() {
                    break;
                }
                let Some((record, has)) = self.record_with_attr(repo, child).await? else { break };
                let (apk, ask) = keys::artifact(repo, child);
                let attr = keys::attr::PARENTS.to_owned();
                let mut writes = vec![
                    Write::Put { item: Item::new(lpk.clone(), lsk.clone()), cond: Condition::NotExists },
                    Write::Add { pk: apk, sk: ask, attr, delta: 1, cond: parents_are(record.parents, has) },
                ];
                if !is_hidden(&record) {
                    writes.extend(visibility_writes(repo, child, &record, true));
                }
                match self.meta.transact(writes).await {
                    Ok(()) => break,
                    Err(e) if e.is(ErrorKind::ConditionFailed) && attempt + 1 < ATTEMPTS => {}
                    Err(e) => return Err(e.into()),
                }
            }
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
            let (lpk, lsk) = keys::parent_link(repo, child, index);
            for attempt in 0..ATTEMPTS {
                if self.meta.get(&lpk, &lsk).await?.is_none() {
                    break;
                }
                let unlink = Write::Delete { pk: lpk.clone(), sk: lsk.clone(), cond: Condition::Exists };
                let writes = match self.record_with_attr(repo, child).await? {
                    // The child went first (a /v2 delete): only the link is left.
                    None => vec![unlink],
                    // Not counted (a record older than the count).
                    Some((record, _)) if record.parents <= 0 => vec![unlink],
                    Some((record, _)) => {
                        let (apk, ask) = keys::artifact(repo, child);
                        let cond = Condition::equals(keys::attr::PARENTS, record.parents);
                        let attr = keys::attr::PARENTS.to_owned();
                        let mut writes = vec![unlink, Write::Add { pk: apk, sk: ask, attr, delta: -1, cond }];
                        let after = ArtifactRecord { parents: record.parents - 1, ..record.clone() };
                        if !is_hidden(&after) {
                            writes.extend(visibility_writes(repo, child, &record, false));
                        }
                        writes
                    }
                };
                match self.meta.transact(writes).await {
                    Ok(()) => break,
                    Err(e) if e.is(ErrorKind::ConditionFailed) && attempt + 1 < ATTEMPTS => {}
                    Err(e) => return Err(e.into()),
                }
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
        out.sort_by(|a, b| a.digest.to_string().cmp(&b.digest.to_string()));
        Ok(out)
    }

    /// The indexes of the repository that reference `child`.
    pub async fn parents_of(&self, repo: &RepoName, child: &Digest) -> ServiceResult<Vec<Digest>> {
        let prefix = keys::parents_prefix(child);
        let links = self.meta.query_all(Query::table(keys::repo_partition(repo), prefix.as_str()).keys_only()).await?;
        Ok(links.iter().filter_map(|l| l.sk.strip_prefix(&prefix).and_then(|d| d.parse().ok())).collect())
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

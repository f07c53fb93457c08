//! Blobs as repositories see them: a blob's bytes are stored once per
//! digest (`blobs/<alg>/…` in the blob store, `B#<digest>` in the table),
//! and a repository may read a blob only through its link (`L#<digest>` in
//! the repository's partition).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::blob::{ByteRange, ErrorKind, ObjectRead, keys as blob_keys};
use crate::meta::{Condition, Write, keys, now_unix};
use crate::oci::{Digest, RepoName};

use super::record::{from_item, to_item};
use super::{Registry, ServiceError, ServiceResult};

/// Tries of a link change that races others (each retry reads again).
const LINK_ATTEMPTS: usize = 8;

/// A blob whose bytes are stored (once per digest), with how many
/// repositories link it (`links`; absent on a blob recorded before links
/// were counted and not counted since: garbage collection never takes such
/// a blob) and whether garbage collection is deleting it (`deleting`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct BlobRecord {
    pub size: u64,
    pub created_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links: Option<i64>,
    #[serde(default)]
    pub deleting: i64,
}

/// The attributes of a blob record the code writes on their own.
pub(super) const LINKS: &str = "links";
pub(super) const DELETING: &str = "deleting";

/// A repository's link to a blob: the repository may read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct LinkRecord {
    size: u64,
    linked_at: i64,
    /// The same in milliseconds (0 in links made before it was kept).
    #[serde(default)]
    linked_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    pub digest: Digest,
    pub size: u64,
}

/// Where a blob read is served from.
#[derive(Debug)]
pub enum BlobBody {
    /// A presigned object-store URL: the client fetches the bytes itself.
    Redirect(url::Url),
    /// The bytes, streamed through this process (local files).
    Stream(ObjectRead),
}

impl Registry {
    /// A blob the repository may read, from its link alone (no object-store
    /// request): `BlobUnknown` when not linked.
    pub async fn stat_blob(&self, repo: &RepoName, digest: &Digest) -> ServiceResult<BlobInfo> {
        let (pk, sk) = keys::blob_link(repo, digest);
        let item = self.meta.get(&pk, &sk).await?.ok_or_else(|| ServiceError::BlobUnknown(digest.clone()))?;
        let link: LinkRecord = from_item(item, "blob link")?;
        Ok(BlobInfo { digest: digest.clone(), size: link.size })
    }

    /// Opens a blob found by [`Self::stat_blob`] for reading: a presigned
    /// URL when the store hands them out, else the bytes of `range`.
    pub async fn open_blob(
        &self,
        info: &BlobInfo,
        range: Option<ByteRange>,
        presign_ttl: Duration,
    ) -> ServiceResult<BlobBody> {
        let (digest, key) = (&info.digest, blob_keys::blob(&info.digest));
        if let Some(url) = self.blobs.presign_get(&key, presign_ttl).await? {
            return Ok(BlobBody::Redirect(url));
        }
        match self.blobs.get(&key, range).await {
            Ok(read) => Ok(BlobBody::Stream(read)),
            Err(e) if e.is(ErrorKind::InvalidRange) => Err(ServiceError::RangeNotSatisfiable { size: info.size }),
            // Linked but gone from the store: report it as unknown rather
            // than a server error, and leave the repair to GC.
            Err(e) if e.is(ErrorKind::NotFound) => Err(ServiceError::BlobUnknown(digest.clone())),
            Err(e) => Err(e.into()),
        }
    }

    /// The blob as `repo` holds it, linking one berth stores already (for
    /// whichever repository) without reading it; `None` when berth does not
    /// have it. For berth's own work (replication, the proxy cache), which
    /// may read every repository.
    pub(crate) async fn held_blob(&self, repo: &RepoName, digest: &Digest) -> ServiceResult<Option<BlobInfo>> {
        match self.stat_blob(repo, digest).await {
            Ok(info) => return Ok(Some(info)),
            Err(ServiceError::BlobUnknown(_)) => {}
            Err(e) => return Err(e),
        }
        match self.blob_record(digest).await? {
            Some(b) if b.deleting == 0 => {
                let info = BlobInfo { digest: digest.clone(), size: b.size };
                self.link_blob(repo, &info).await?;
                Ok(Some(info))
            }
            _ => Ok(None),
        }
    }

    /// The bytes of a blob `repo` links (a range of them), read from the
    /// store whatever it hands out to clients: for berth's own jobs.
    pub(crate) async fn read_linked_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        range: Option<ByteRange>,
    ) -> ServiceResult<ObjectRead> {
        let info = self.stat_blob(repo, digest).await?;
        match self.blobs.get(&blob_keys::blob(digest), range).await {
            Ok(read) => Ok(read),
            Err(e) if e.is(ErrorKind::InvalidRange) => Err(ServiceError::RangeNotSatisfiable { size: info.size }),
            Err(e) if e.is(ErrorKind::NotFound) => Err(ServiceError::BlobUnknown(digest.clone())),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes the repository's link to a blob (and, with its last
    /// reference in the project, its bytes from the project's usage); the
    /// bytes stay for other repositories and GC decides when they go.
    pub async fn delete_blob(&self, repo: &RepoName, digest: &Digest) -> ServiceResult<()> {
        if !self.unlink_blob(repo, digest).await? {
            return Err(ServiceError::BlobUnknown(digest.clone()));
        }
        Ok(())
    }

    /// Removes a link with its reference in the project's quota and the
    /// blob's link count (its last link makes it a garbage candidate);
    /// false when there was no link.
    pub(super) async fn unlink_blob(&self, repo: &RepoName, digest: &Digest) -> ServiceResult<bool> {
        self.unlink_blob_if(repo, digest, Condition::Exists).await
    }

    /// [`Self::unlink_blob`] only while the link meets `cond` (garbage
    /// collection: not touched since it was read); false when it does not.
    pub(super) async fn unlink_blob_if(
        &self,
        repo: &RepoName,
        digest: &Digest,
        cond: Condition,
    ) -> ServiceResult<bool> {
        for _ in 0..LINK_ATTEMPTS {
            let (pk, sk) = keys::blob_link(repo, digest);
            let Some(link) = self.meta.get(&pk, &sk).await? else { return Ok(false) };
            if !cond.holds(Some(&link)) {
                return Ok(false);
            }
            let mut change = self.remove_ref(repo.project(), digest).await?;
            change.writes.insert(0, Write::Delete { pk, sk, cond: cond.clone() });
            if let Some(blob) = self.blob_record(digest).await?
                && let Some(links) = blob.links
            {
                let (bpk, bsk) = keys::blob(digest);
                let delta = Write::Add {
                    pk: bpk,
                    sk: bsk,
                    attr: LINKS.to_owned(),
                    delta: -1,
                    cond: Condition::equals(LINKS, links),
                };
                change.writes.push(delta);
                if links <= 1 {
                    change.writes.push(candidate_write(digest, blob.size));
                }
            }
            match self.meta.transact(change.writes).await {
                Ok(()) => return Ok(true),
                Err(e) if e.is(ErrorKind::ConditionFailed) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::Conflict(format!("the link of {digest} kept changing; try again")))
    }

    pub(super) async fn blob_record(&self, digest: &Digest) -> ServiceResult<Option<BlobRecord>> {
        let (pk, sk) = keys::blob(digest);
        self.meta.get(&pk, &sk).await?.map(|i| from_item(i, "blob")).transpose()
    }

    /// Links a blob that `from` may read into `repo` (a cross-repository
    /// mount). `None` when `from` has no such blob: the caller then starts
    /// an ordinary upload.
    pub async fn mount_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        from: &RepoName,
    ) -> ServiceResult<Option<BlobInfo>> {
        let info = match self.stat_blob(from, digest).await {
            Ok(info) => info,
            Err(ServiceError::BlobUnknown(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        self.link_blob(repo, &info).await?;
        Ok(Some(info))
    }

    /// Records that the blob's bytes exist (once per digest) and lets `repo`
    /// read them, counting them in the project's usage when they are new
    /// to it: `QuotaExceeded` when that would pass its limit. The object
    /// must already be in the store.
    pub(super) async fn link_blob(&self, repo: &RepoName, info: &BlobInfo) -> ServiceResult<()> {
        let now = now_unix();
        let (pk, sk) = keys::blob(&info.digest);
        let record = BlobRecord { size: info.size, created_at: now, links: Some(0), deleting: 0 };
        let blob = to_item(pk, sk, &record, "blob")?;
        // A new blob adds its bytes to what the registry stores, and is a
        // garbage candidate until a repository links it (an upload whose
        // link is refused leaves bytes for GC).
        let (cpk, csk) = keys::counter_shard(keys::Counted::StoredBytes, &info.digest.to_string());
        let size = i64::try_from(info.size).unwrap_or(i64::MAX);
        let stored =
            Write::Add { pk: cpk, sk: csk, attr: keys::attr::COUNT.to_owned(), delta: size, cond: Condition::Always };
        let created = vec![
            Write::Put { item: blob, cond: Condition::NotExists },
            stored,
            candidate_write(&info.digest, info.size),
        ];
        if let Err(e) = self.meta.transact(created).await
            && !e.is(ErrorKind::ConditionFailed)
        {
            return Err(e.into());
        }
        for _ in 0..LINK_ATTEMPTS {
            let (pk, sk) = keys::blob_link(repo, &info.digest);
            if self.meta.get(&pk, &sk).await?.is_some() {
                // Linked already (counted already): touched, so that garbage
                // collection leaves it for a window, as it leaves a new link
                // (the manifest that references it is about to come).
                let touch = Write::Set {
                    pk,
                    sk,
                    attrs: crate::meta::Attrs::from_iter([(
                        super::manifests::TOUCHED_AT.to_owned(),
                        crate::events::now_ms().into(),
                    )]),
                    cond: Condition::Exists,
                };
                match self.meta.transact(vec![touch]).await {
                    Ok(()) => return Ok(()),
                    // Unlinked meanwhile: link it again.
                    Err(e) if e.is(ErrorKind::ConditionFailed) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            let blob = self.blob_record(&info.digest).await?;
            let Some(blob) = blob.filter(|b| b.deleting == 0) else {
                // GC is deleting it (or just did): its bytes may be gone,
                // so the client uploads them again.
                return Err(ServiceError::Backend(crate::port::PortError::msg(
                    crate::port::ErrorKind::Unavailable,
                    format!("blob {} is being garbage collected; upload it again", info.digest),
                )));
            };
            let record = LinkRecord { size: info.size, linked_at: now, linked_at_ms: crate::events::now_ms() };
            let link = to_item(pk, sk, &record, "blob link")?;
            let mut change = self.add_ref(repo.project(), &info.digest, info.size).await?;
            change.writes.insert(0, Write::Put { item: link, cond: Condition::NotExists });
            if let Some(links) = blob.links {
                let (bpk, bsk) = keys::blob(&info.digest);
                // Refused once GC claims it (`deleting`).
                let cond = Condition::at_most(DELETING, 0);
                change.writes.push(Write::Add { pk: bpk, sk: bsk, attr: LINKS.to_owned(), delta: 1, cond });
                if links <= 0 {
                    let (gpk, gsk) = keys::gc_candidate(&info.digest);
                    change.writes.push(Write::Delete { pk: gpk, sk: gsk, cond: Condition::Always });
                }
            }
            match self.meta.transact(std::mem::take(&mut change.writes)).await {
                Ok(()) => {
                    self.warn_if_near(repo, &info.digest, &change).await;
                    return Ok(());
                }
                Err(e) if e.is(ErrorKind::ConditionFailed) => {
                    if let Some(refusal) = self.explain_refusal(repo, &info.digest, &change).await? {
                        return Err(refusal);
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::Conflict(format!("the link of {} kept changing; try again", info.digest)))
    }
}

impl Registry {
    /// Records the object of a manifest too large for its table item, so
    /// that garbage collection never takes it for an orphan: a record
    /// without a link count, which collection leaves alone. Refused while a
    /// collection is deleting an object at that address.
    pub(super) async fn record_manifest_body(&self, digest: &Digest, size: u64) -> ServiceResult<()> {
        let (pk, sk) = keys::blob(digest);
        let record = BlobRecord { size, created_at: now_unix(), links: None, deleting: 0 };
        match self.meta.put(to_item(pk, sk, &record, "blob")?, Condition::NotExists).await {
            Ok(()) => Ok(()),
            Err(e) if e.is(ErrorKind::ConditionFailed) => match self.blob_record(digest).await? {
                Some(b) if b.deleting != 0 => Err(ServiceError::Backend(crate::port::PortError::msg(
                    crate::port::ErrorKind::Unavailable,
                    format!("{digest} is being garbage collected; push the manifest again"),
                ))),
                _ => Ok(()),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// Schema 5's migration: records the objects of the large manifests
    /// stored before they were recorded (see [`Self::record_manifest_body`]).
    /// Returns how many it recorded.
    pub async fn record_manifest_bodies(&self) -> ServiceResult<u64> {
        let mut recorded = 0;
        self.for_each_stored_artifact(async |_, digest, record| {
            if record.body.is_none() && self.blob_record(&digest).await?.is_none() {
                self.record_manifest_body(&digest, record.size).await?;
                recorded += 1;
            }
            Ok(())
        })
        .await?;
        Ok(recorded)
    }
}

/// The entry that makes a blob with no link a garbage candidate (since
/// now; GC takes it once the protection window has passed).
fn candidate_write(digest: &Digest, size: u64) -> Write {
    let (pk, sk) = keys::gc_candidate(digest);
    let item = crate::meta::Item::new(pk, sk)
        .with("since", crate::events::now_ms())
        .with("size", i64::try_from(size).unwrap_or(i64::MAX));
    Write::Put { item, cond: Condition::Always }
}

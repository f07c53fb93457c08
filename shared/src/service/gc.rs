//! Garbage collection's bookkeeping (F12, the collection itself is to
//! come): every blob record counts the repositories that link it
//! (`links`, kept by [`Registry::link_blob`] and [`Registry::unlink_blob`]
//! in the link's own transaction), and a blob no repository links has a
//! candidate entry (`GCC#<shard>`) from the moment it lost its last link or
//! was stored without one. A collection will take only candidates older
//! than its protection window whose count is still 0, claiming each with a
//! conditional write that a new link refuses (`deleting`).

use std::collections::BTreeMap;

use super::blobs::LINKS;
use super::{Registry, ServiceResult};
use crate::meta::{Attrs, Condition, ErrorKind, Query, Write, keys};
use crate::oci::{Digest, RepoName};

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
}

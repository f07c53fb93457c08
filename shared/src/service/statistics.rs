//! Harbor's `/statistics`: how many projects and repositories there are,
//! public and private, and the bytes the registry stores — from the
//! counters kept with each list (a read per public or visible project, not
//! a walk of the repositories).

use serde::Serialize;

use super::{Registry, ServiceResult};
use crate::meta::keys::{self, Counted};
use crate::meta::{Condition, Query, Write};
use crate::oci::RepoName;

/// Harbor's `Statistic`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Statistics {
    pub private_project_count: u64,
    pub private_repo_count: u64,
    pub public_project_count: u64,
    pub public_repo_count: u64,
    pub total_project_count: u64,
    pub total_repo_count: u64,
    pub total_storage_consumption: u64,
}

impl Registry {
    /// The figures the caller may see: everything for an administrator
    /// (`member_of` none), else the public projects and the private ones in
    /// `member_of` (and no storage figure), as Harbor shows them.
    pub async fn statistics(&self, member_of: Option<&[String]>) -> ServiceResult<Statistics> {
        let public = self.meta.query_all(Query::table(keys::PUBLIC_PROJECTS, "").keys_only()).await?;
        let public: Vec<String> = public.into_iter().map(|i| i.sk).collect();
        let mut s = Statistics { public_project_count: public.len() as u64, ..Statistics::default() };
        for p in &public {
            s.public_repo_count += self.count(Counted::Repositories(p)).await?;
        }
        match member_of {
            None => {
                s.total_project_count = self.count(Counted::Projects).await?;
                s.total_repo_count = self.count(Counted::Catalog).await?;
                s.private_project_count = s.total_project_count.saturating_sub(s.public_project_count);
                s.private_repo_count = s.total_repo_count.saturating_sub(s.public_repo_count);
                s.total_storage_consumption = self.count(Counted::StoredBytes).await?;
            }
            Some(mine) => {
                for p in mine.iter().filter(|p| !public.contains(p)) {
                    s.private_project_count += 1;
                    s.private_repo_count += self.count(Counted::Repositories(p)).await?;
                }
                s.total_project_count = s.public_project_count + s.private_project_count;
                s.total_repo_count = s.public_repo_count + s.private_repo_count;
            }
        }
        Ok(s)
    }

    /// Recounts the bytes stored from the blobs the repositories link
    /// (each once): for a store written before the count was kept.
    pub async fn recount_stored_bytes(&self) -> ServiceResult<u64> {
        let mut sizes = std::collections::BTreeMap::new();
        for project in self.project_names().await? {
            let (pk, _) = keys::project(&project);
            for entry in self.meta.query_all(Query::table(pk, keys::REPOSITORY_PREFIX).keys_only()).await? {
                let Some(repo) = keys::repository_name(&entry.sk).and_then(|n| RepoName::parse(n).ok()) else {
                    continue;
                };
                let links = Query::table(keys::repo_partition(&repo), keys::BLOB_LINK_PREFIX);
                for link in self.meta.query_all(links).await? {
                    if let (Some(d), Some(size)) = (link.sk.strip_prefix(keys::BLOB_LINK_PREFIX), link.i64("size")) {
                        sizes.insert(d.to_owned(), size);
                    }
                }
            }
        }
        let total: i64 = sizes.values().sum();
        // The whole count in one shard, the others emptied.
        let partition = keys::counter(Counted::StoredBytes);
        let writes = (0..keys::COUNTER_SHARDS)
            .map(|shard| Write::Put {
                item: crate::meta::Item::new(&partition, shard.to_string())
                    .with(keys::attr::COUNT, if shard == 0 { total } else { 0 }),
                cond: Condition::Always,
            })
            .collect();
        self.meta.transact(writes).await?;
        Ok(u64::try_from(total).unwrap_or(0))
    }
}

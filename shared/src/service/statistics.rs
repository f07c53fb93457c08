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
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Statistics {
    pub private_project_count: u64,
    pub private_repo_count: u64,
    pub public_project_count: u64,
    pub public_repo_count: u64,
    pub total_project_count: u64,
    pub total_repo_count: u64,
    pub total_storage_consumption: u64,
}

/// One project's figures for the metrics exporter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProjectFigures {
    pub name: String,
    pub public: bool,
    pub repositories: u64,
    pub artifacts: u64,
    pub members: u64,
    /// Pulls of its repositories.
    pub pulls: u64,
    pub quota_used: i64,
    /// Bytes; -1: unlimited.
    pub quota_limit: i64,
}

/// What the metrics exporter shows of the registry's contents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExporterFigures {
    pub projects: Vec<ProjectFigures>,
    pub schedules: u64,
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

    /// Every project's figures: a read of the project, its counters and
    /// usage, and one read per repository (its pulls). The exporter caches
    /// the result between scrapes.
    pub async fn exporter_figures(&self) -> ServiceResult<ExporterFigures> {
        let mut projects = Vec::new();
        for name in self.project_names().await? {
            let project = match self.project(&super::projects::ProjectRef::Name(name)).await {
                Ok(p) => p,
                // Deleted since the listing.
                Err(super::ServiceError::NotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            let mut f = ProjectFigures {
                public: project.public(),
                repositories: self.count(Counted::Repositories(&project.name)).await?,
                members: self.count(Counted::Members(project.project_id)).await?,
                quota_used: self.storage_used(&project.name).await?,
                quota_limit: project.storage_limit,
                ..ProjectFigures::default()
            };
            let (pk, _) = keys::project(&project.name);
            let repos = self.meta.query_all(Query::table(pk, keys::REPOSITORY_PREFIX)).await?;
            for item in repos {
                f.pulls += item.i64(keys::attr::PULL_COUNT).and_then(|n| u64::try_from(n).ok()).unwrap_or(0);
                if let Some(repo) = keys::repository_name(&item.sk).and_then(|n| RepoName::parse(n).ok()) {
                    f.artifacts += self.count(Counted::Artifacts(&repo)).await?;
                }
            }
            f.name = project.name;
            projects.push(f);
        }
        Ok(ExporterFigures { projects, schedules: self.count(Counted::Schedules).await? })
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

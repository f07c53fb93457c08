//! What a replication run copies: the tasks of a run and how they are
//! found.
//!
//! - A push policy's planning walks berth's catalog a page at a time
//!   ([`REPOSITORIES_PER_PLAN`] repositories), keeps the repositories its
//!   name filters select and, in each, the artifacts its tag, label and
//!   resource filters select; each kept repository becomes one copy task
//!   naming the artifacts (digest and selected tags).
//! - A pull policy's planning walks the other registry's catalog (a
//!   Harbor's projects and repositories through its API) and leaves one copy
//!   task per selected repository; that task lists the repository's tags
//!   itself, when it runs.
//! - Events: a push of a matching artifact starts a run of that one
//!   artifact under each event-based push policy; with `replicate_deletion`,
//!   its deletion starts a run that deletes it at the destination.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    DEFAULT_PROJECT, Direction, ReplicationPolicy, TriggerKind, destination_repository, has_tag_filter,
    labels_selected, repository_selected, resource_selected, tag_selected,
};
use crate::events::{Event, EventKind};
use crate::meta::keys;
use crate::oci::{Digest, Reference, RepoName};
use crate::service::artifacts::{ArtifactFilter, ArtifactInfo};
use crate::service::paging::{MAX_PAGE_SIZE, PageRequest};
use crate::service::{Registry, ServiceError, ServiceResult};

/// Repositories one planning task walks (berth's catalog).
pub const REPOSITORIES_PER_PLAN: usize = 20;
/// Repositories one planning task takes from another registry's catalog.
const REMOTE_REPOSITORIES_PER_PLAN: usize = 100;
/// Most repositories a Harbor's API listing may give (it is not paged by
/// cursor).
const MAX_REMOTE_REPOSITORIES: usize = 100_000;
/// Artifacts one copy task names; a repository with more becomes several.
pub const ARTIFACTS_PER_TASK: usize = 100;

/// One artifact to copy: by digest (berth's side knows it), or by tag (the
/// other registry's: resolved when copied).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A task of a replication run (its payload).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ReplicationTask {
    /// Find what to copy, from `cursor` on.
    Plan {
        policy_id: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cursor: Option<String>,
    },
    /// Copy artifacts of one repository. `references: None`: every tag the
    /// policy selects (listed when the task runs).
    Copy {
        policy_id: i64,
        src_repo: String,
        dest_repo: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        references: Option<Vec<CopyRef>>,
    },
    /// Delete an artifact at the destination.
    Delete { policy_id: i64, dest_repo: String, digest: String },
}

impl ReplicationTask {
    pub fn to_value(&self) -> ServiceResult<Value> {
        serde_json::to_value(self).map_err(|e| ServiceError::Invalid(e.to_string()))
    }

    /// Harbor's `src_resource` / `dst_resource` of a task.
    pub fn resources(&self) -> (String, String) {
        let refs = |r: &Option<Vec<CopyRef>>| match r {
            None => "*".to_owned(),
            Some(refs) => {
                let names: Vec<String> = refs
                    .iter()
                    .flat_map(|r| {
                        if r.tags.is_empty() {
                            r.digest.clone().into_iter().collect::<Vec<_>>()
                        } else {
                            r.tags.clone()
                        }
                    })
                    .collect();
                names.join(",")
            }
        };
        match self {
            Self::Plan { .. } => (String::new(), String::new()),
            Self::Copy { src_repo, dest_repo, references, .. } => {
                let r = refs(references);
                (format!("{src_repo}:[{r}]"), format!("{dest_repo}:[{r}]"))
            }
            Self::Delete { dest_repo, digest, .. } => {
                (format!("{dest_repo}@{digest}"), format!("{dest_repo}@{digest}"))
            }
        }
    }

    pub fn operation(&self) -> &'static str {
        match self {
            Self::Plan { .. } => "plan",
            Self::Copy { .. } => "copy",
            Self::Delete { .. } => "deletion",
        }
    }
}

/// The name a repository gets at berth when it is the destination: one
/// with no project goes into [`DEFAULT_PROJECT`].
pub fn local_destination(name: &str) -> String {
    if name.contains('/') { name.to_owned() } else { format!("{DEFAULT_PROJECT}/{name}") }
}

/// The destination name of `src` under `policy`.
pub fn destination_of(policy: &ReplicationPolicy, src: &str) -> ServiceResult<String> {
    let name = destination_repository(src, &policy.dest_namespace, policy.dest_namespace_replace_count)?;
    Ok(match policy.direction()? {
        Direction::Pull(_) => local_destination(&name),
        Direction::Push(_) => name,
    })
}

impl Registry {
    /// The reference to copy of one of berth's artifacts under `policy`'s
    /// filters, if it is selected.
    pub(crate) async fn replication_ref_of(
        &self,
        policy: &ReplicationPolicy,
        repo: &RepoName,
        artifact: &ArtifactInfo,
    ) -> ServiceResult<Option<CopyRef>> {
        let filters = &policy.filters;
        if !resource_selected(filters, artifact.kind()) {
            return Ok(None);
        }
        if filters.iter().any(|f| matches!(f, super::Filter::Label { .. })) {
            let labels = self.artifact_labels(repo, &artifact.digest, artifact.push_stamp).await?;
            let names: Vec<String> = labels.into_iter().map(|l| l.name).collect();
            if !labels_selected(filters, &names) {
                return Ok(None);
            }
        }
        let all_tags = if artifact.tag_count as usize > artifact.tags.len() {
            self.artifact_tag_names(repo, &artifact.digest).await?
        } else {
            artifact.tags.iter().map(|t| t.name.clone()).collect()
        };
        let tags: Vec<String> = all_tags.into_iter().filter(|t| tag_selected(filters, t)).collect();
        if tags.is_empty() && has_tag_filter(filters) {
            return Ok(None);
        }
        Ok(Some(CopyRef { digest: Some(artifact.digest.to_string()), tags }))
    }

    /// One planning step of a run: the tasks it leaves (copies, and the
    /// next planning step when there is more).
    pub async fn replication_plan(
        &self,
        policy: &ReplicationPolicy,
        cursor: Option<String>,
    ) -> ServiceResult<Vec<ReplicationTask>> {
        match policy.direction()? {
            Direction::Push(_) => self.plan_push(policy, cursor).await,
            Direction::Pull(endpoint) => self.plan_pull(policy, endpoint, cursor).await,
        }
    }

    async fn plan_push(
        &self,
        policy: &ReplicationPolicy,
        cursor: Option<String>,
    ) -> ServiceResult<Vec<ReplicationTask>> {
        let req = PageRequest { after: cursor, ..PageRequest::first(REPOSITORIES_PER_PLAN) };
        let repos = self.list_all_repositories(None, None, &req).await?;
        let mut tasks = Vec::new();
        for r in &repos.items {
            let repo = r.name.clone();
            if !repository_selected(&policy.filters, repo.as_str()) {
                continue;
            }
            let dest_repo = match destination_of(policy, repo.as_str()) {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(policy = policy.id, repository = %repo, "not replicated: {e}");
                    continue;
                }
            };
            let mut refs = Vec::new();
            let mut areq = PageRequest::first(MAX_PAGE_SIZE);
            loop {
                let page = match self.list_artifacts(&repo, &ArtifactFilter::default(), &areq).await {
                    Ok(p) => p,
                    Err(ServiceError::NotFound(_) | ServiceError::NameUnknown(_)) => break,
                    Err(e) => return Err(e),
                };
                for a in &page.items {
                    if let Some(r) = self.replication_ref_of(policy, &repo, a).await? {
                        refs.push(r);
                    }
                }
                match page.next {
                    Some(n) => areq.after = Some(n),
                    None => break,
                }
            }
            for chunk in refs.chunks(ARTIFACTS_PER_TASK) {
                tasks.push(ReplicationTask::Copy {
                    policy_id: policy.id,
                    src_repo: repo.to_string(),
                    dest_repo: dest_repo.clone(),
                    references: Some(chunk.to_vec()),
                });
            }
        }
        if let Some(next) = repos.next {
            tasks.push(ReplicationTask::Plan { policy_id: policy.id, cursor: Some(next) });
        }
        Ok(tasks)
    }

    async fn plan_pull(
        &self,
        policy: &ReplicationPolicy,
        endpoint: i64,
        cursor: Option<String>,
    ) -> ServiceResult<Vec<ReplicationTask>> {
        let e = self.registry_endpoint(endpoint).await?;
        let target = self.registry_endpoint_target(&e)?;
        let (names, next) = if target.registry_type == crate::remote::adapter::HARBOR {
            (target.list_repositories(MAX_REMOTE_REPOSITORIES).await.map_err(remote)?, None)
        } else {
            let client = target.client().map_err(remote)?;
            let page =
                client.catalog_page(Some(REMOTE_REPOSITORIES_PER_PLAN), cursor.as_deref()).await.map_err(remote)?;
            (page.items, page.next)
        };
        let mut tasks = Vec::new();
        for name in names {
            if !repository_selected(&policy.filters, &name) {
                continue;
            }
            let dest_repo = match destination_of(policy, &name) {
                Ok(d) => d,
                Err(err) => {
                    tracing::warn!(policy = policy.id, repository = %name, "not replicated: {err}");
                    continue;
                }
            };
            tasks.push(ReplicationTask::Copy { policy_id: policy.id, src_repo: name, dest_repo, references: None });
        }
        if let Some(next) = next {
            tasks.push(ReplicationTask::Plan { policy_id: policy.id, cursor: Some(next) });
        }
        Ok(tasks)
    }

    /// Every policy (a handful), for the events.
    async fn all_replication_policies(&self) -> ServiceResult<Vec<ReplicationPolicy>> {
        let mut out = Vec::new();
        let mut req = PageRequest::first(MAX_PAGE_SIZE);
        loop {
            let page = self.list_replication_policies(None, &req).await?;
            out.extend(page.items);
            match page.next {
                Some(n) => req.after = Some(n),
                None => return Ok(out),
            }
        }
    }

    /// Starts, once per event and policy, the runs an event asks for: a
    /// pushed artifact copied, a deleted one deleted, under each enabled
    /// event-based push policy that selects it.
    pub async fn replicate_on_event(&self, event: &Event) -> ServiceResult<()> {
        if !matches!(event.kind, EventKind::PushArtifact | EventKind::DeleteArtifact) {
            return Ok(());
        }
        let (Some(repo), Some(digest)) = (event.repository.as_deref(), event.digest.as_deref()) else {
            return Ok(());
        };
        let (Ok(repo), Ok(digest)) = (RepoName::parse(repo), digest.parse::<Digest>()) else { return Ok(()) };
        let policies: Vec<ReplicationPolicy> = self
            .all_replication_policies()
            .await?
            .into_iter()
            .filter(|p| {
                p.enabled
                    && p.trigger == TriggerKind::EventBased
                    && matches!(p.direction(), Ok(Direction::Push(_)))
                    && repository_selected(&p.filters, repo.as_str())
            })
            .collect();
        if policies.is_empty() {
            return Ok(());
        }
        let job = crate::jobs::replication::ReplicationJob;
        for policy in policies {
            let Ok(dest_repo) = destination_of(&policy, repo.as_str()) else { continue };
            let task = if event.kind == EventKind::DeleteArtifact {
                if !policy.replicate_deletion {
                    continue;
                }
                ReplicationTask::Delete { policy_id: policy.id, dest_repo, digest: digest.to_string() }
            } else {
                let artifact = match self.artifact(&repo, &Reference::Digest(digest.clone())).await {
                    Ok(a) => a,
                    Err(
                        ServiceError::ManifestUnknown(_) | ServiceError::NotFound(_) | ServiceError::NameUnknown(_),
                    ) => {
                        return Ok(());
                    }
                    Err(e) => return Err(e),
                };
                // An index's children and accessories travel with their
                // parent and subject.
                if artifact.hidden {
                    continue;
                }
                let Some(reference) = self.replication_ref_of(&policy, &repo, &artifact).await? else { continue };
                ReplicationTask::Copy {
                    policy_id: policy.id,
                    src_repo: repo.to_string(),
                    dest_repo,
                    references: Some(vec![reference]),
                }
            };
            let mut attrs = serde_json::Map::new();
            attrs.insert("event_id".to_owned(), event.id.clone().into());
            let once = keys::event_handled(&event.id, &format!("replication-{}", policy.id));
            self.start_execution_once(&job, policy.id, "EVENT", attrs, vec![task.to_value()?], once).await?;
        }
        Ok(())
    }
}

/// A failure of the other registry as the service reports it: not found,
/// worth retrying (unreachable, busy, rate-limited), or refused.
pub fn remote(e: crate::remote::RemoteError) -> ServiceError {
    use crate::port::{ErrorKind, PortError};
    if e.is_not_found() {
        ServiceError::NotFound(e.to_string())
    } else if e.is_retryable() {
        ServiceError::Backend(PortError::msg(ErrorKind::Unavailable, e))
    } else {
        ServiceError::Invalid(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tasks_travel_as_json_and_name_their_resources() {
        let t = ReplicationTask::Copy {
            policy_id: 3,
            src_repo: "library/alpine".into(),
            dest_repo: "mirror/alpine".into(),
            references: Some(vec![CopyRef {
                digest: Some("sha256:ab".into()),
                tags: vec!["3".into(), "latest".into()],
            }]),
        };
        let v = t.to_value().unwrap();
        assert_eq!(v["op"], "copy");
        assert_eq!(serde_json::from_value::<ReplicationTask>(v).unwrap(), t);
        assert_eq!(t.resources().1, "mirror/alpine:[3,latest]");
        assert_eq!(local_destination("alpine"), "library/alpine");
        assert_eq!(local_destination("a/b"), "a/b");
    }
}

//! Projects, as far as the distribution API needs them: a repository's
//! first path component names its project, which must exist. The default
//! project `library` is created at start. (Project management, members and
//! metadata belong to the identity and projects work.)

use crate::meta::{Condition, ErrorKind, Item, keys, now_unix};
use crate::oci::RepoName;

use super::{Registry, ServiceError, ServiceResult};

pub const DEFAULT_PROJECT: &str = "library";

impl Registry {
    /// Creates the `library` project, owned by the admin and public like
    /// Harbor's, unless it exists. Safe under concurrent starts.
    pub async fn ensure_default_project(&self) -> ServiceResult<()> {
        let (pk, sk) = keys::project(DEFAULT_PROJECT);
        let item = Item::new(pk, sk)
            .with("name", DEFAULT_PROJECT)
            .with("owner", super::accounts::ADMIN)
            .with("public", true)
            .with("created_at", now_unix());
        match self.meta.put(item, Condition::NotExists).await {
            Err(e) if !e.is(ErrorKind::ConditionFailed) => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Fails with `NameUnknown` when the repository's project does not exist.
    pub async fn require_project(&self, repo: &RepoName) -> ServiceResult<()> {
        let (pk, sk) = keys::project(repo.project());
        match self.meta.get(&pk, &sk).await? {
            Some(_) => Ok(()),
            None => Err(ServiceError::NameUnknown(format!("project {} does not exist", repo.project()))),
        }
    }
}

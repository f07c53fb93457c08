//! Projects: a repository's first path component names its project, which
//! must exist. Each project has a numeric id (Harbor's API addresses
//! projects by name or id), a public switch and Harbor's string metadata.
//! The default project `library` (public, owned by the admin) is created
//! at start.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::meta::{Condition, ErrorKind, Item, Query, Write, keys, now_unix};
use crate::oci::RepoName;

use super::record::{from_item, to_item};
use super::{Registry, ServiceError, ServiceResult};

pub const DEFAULT_PROJECT: &str = "library";

/// Project metadata keys Harbor defines, all string-valued; the ones in
/// [`BOOLEAN_METADATA`] take `"true"` or `"false"`.
const METADATA_KEYS: &[&str] = &[
    "public",
    "enable_content_trust",
    "enable_content_trust_cosign",
    "prevent_vul",
    "severity",
    "auto_scan",
    "auto_sbom_generation",
    "reuse_sys_cve_allowlist",
    "retention_id",
    "proxy_speed_kb",
];
const BOOLEAN_METADATA: &[&str] = &[
    "public",
    "enable_content_trust",
    "enable_content_trust_cosign",
    "prevent_vul",
    "auto_scan",
    "auto_sbom_generation",
    "reuse_sys_cve_allowlist",
];
const SEVERITIES: &[&str] = &["none", "low", "medium", "high", "critical"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Project {
    pub project_id: i64,
    pub name: String,
    /// The owner's user id (0 in projects stored before owners had ids).
    #[serde(default)]
    pub owner_id: i64,
    pub owner_name: String,
    /// Harbor's metadata, `public` included.
    pub metadata: BTreeMap<String, String>,
    /// Bytes, -1 for unlimited.
    pub storage_limit: i64,
    pub creation_time: i64,
    pub update_time: i64,
}

impl Project {
    pub fn public(&self) -> bool {
        self.metadata.get("public").is_some_and(|v| v == "true")
    }
}

/// What a project is created with.
#[derive(Debug, Clone, Default)]
pub struct NewProject {
    pub name: String,
    pub public: Option<bool>,
    pub metadata: BTreeMap<String, String>,
    pub storage_limit: Option<i64>,
}

/// Who creates a project: it becomes its owner and first ProjectAdmin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub id: i64,
    pub name: String,
}

/// A project as the management API names it: by name, or by numeric id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectRef {
    Name(String),
    Id(i64),
}

/// Harbor's project-name rule: lower-case letters and digits, separated by
/// single `.`, `_` or `-`, 1 to 255 characters.
pub fn validate_project_name(name: &str) -> ServiceResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name
            .split(['.', '_', '-'])
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    if ok {
        Ok(())
    } else {
        Err(ServiceError::Invalid(format!(
            "project name {name:?} is invalid: use lower-case letters and digits, separated by single '.', '_' or '-'"
        )))
    }
}

fn validate_metadata(metadata: &BTreeMap<String, String>) -> ServiceResult<()> {
    for (k, v) in metadata {
        if !METADATA_KEYS.contains(&k.as_str()) {
            return Err(ServiceError::Invalid(format!("unknown project metadata {k:?}")));
        }
        if BOOLEAN_METADATA.contains(&k.as_str()) && v != "true" && v != "false" {
            return Err(ServiceError::Invalid(format!(
                "project metadata {k} must be \"true\" or \"false\", not {v:?}"
            )));
        }
        if k == "severity" && !SEVERITIES.contains(&v.as_str()) {
            return Err(ServiceError::Invalid(format!("severity must be one of {SEVERITIES:?}")));
        }
    }
    Ok(())
}

fn validate_storage_limit(limit: i64) -> ServiceResult<()> {
    if limit == -1 || limit > 0 {
        Ok(())
    } else {
        Err(ServiceError::Invalid("storage_limit must be -1 (unlimited) or a positive number of bytes".to_owned()))
    }
}

fn project_item(p: &Project) -> ServiceResult<Item> {
    let (pk, sk) = keys::project(&p.name);
    to_item(pk, sk, p, "project")
}

impl Registry {
    /// Creates a project. `Conflict` when the name is taken.
    pub async fn create_project(&self, new: NewProject, owner: &Owner) -> ServiceResult<Project> {
        validate_project_name(&new.name)?;
        let mut metadata = new.metadata;
        validate_metadata(&metadata)?;
        if let Some(public) = new.public {
            metadata.insert("public".to_owned(), public.to_string());
        }
        metadata.entry("public".to_owned()).or_insert_with(|| "false".to_owned());
        let storage_limit = new.storage_limit.unwrap_or(-1);
        validate_storage_limit(storage_limit)?;
        let (pk, sk) = keys::project(&new.name);
        if self.meta.get(&pk, &sk).await?.is_some() {
            return Err(ServiceError::Conflict(format!("project {} already exists", new.name)));
        }
        let (cpk, csk) = keys::counters();
        let id = self.meta.add(cpk, csk, "project_id", 1, Condition::Always).await?;
        let now = now_unix();
        let project = Project {
            project_id: id,
            name: new.name.clone(),
            owner_id: owner.id,
            owner_name: owner.name.clone(),
            metadata,
            storage_limit,
            creation_time: now,
            update_time: now,
        };
        let (epk, esk) = keys::project_entry(&project.name);
        let (ipk, isk) = keys::project_id(id);
        let admin = super::members::Member {
            id: self.next_member_id().await?,
            project_id: id,
            kind: keys::MemberKind::User,
            entity_id: owner.id,
            entity_name: owner.name.clone(),
            role: crate::auth::rbac::Role::ProjectAdmin,
        };
        let writes = vec![
            Write::Put { item: project_item(&project)?, cond: Condition::NotExists },
            Write::Put { item: Item::new(epk, esk).with("project_id", id), cond: Condition::Always },
            Write::Put { item: Item::new(ipk, isk).with("name", project.name.clone()), cond: Condition::NotExists },
            // Replaces any leftover of a deleted project of the same name.
            Write::Put { item: super::members::member_item(&project.name, &admin), cond: Condition::Always },
        ];
        match self.meta.transact(writes).await {
            Ok(()) => Ok(project),
            Err(e) if e.is(ErrorKind::ConditionFailed) => {
                Err(ServiceError::Conflict(format!("project {} already exists", project.name)))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Creates the `library` project, owned by the admin and public like
    /// Harbor's, unless it exists. Safe under concurrent starts.
    pub async fn ensure_default_project(&self) -> ServiceResult<()> {
        let new = NewProject { name: DEFAULT_PROJECT.to_owned(), public: Some(true), ..NewProject::default() };
        let admin = Owner { id: super::users::ADMIN_ID, name: super::users::ADMIN.to_owned() };
        match self.create_project(new, &admin).await {
            Ok(_) | Err(ServiceError::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// A project by name or id; `NotFound` when missing.
    pub async fn project(&self, r: &ProjectRef) -> ServiceResult<Project> {
        let name = match r {
            ProjectRef::Name(n) => n.clone(),
            ProjectRef::Id(id) => {
                let (pk, sk) = keys::project_id(*id);
                let item = self.meta.get(&pk, &sk).await?;
                item.and_then(|i| i.str("name").map(str::to_owned))
                    .ok_or_else(|| ServiceError::NotFound(format!("project {id} not found")))?
            }
        };
        let (pk, sk) = keys::project(&name);
        let item = self
            .meta
            .get(&pk, &sk)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("project {name} not found")))?;
        from_item(item, "project")
    }

    /// Every project, by name. (The list is one partition; a registry has
    /// projects in the thousands at most.)
    pub async fn list_projects(&self) -> ServiceResult<Vec<Project>> {
        let entries = self.meta.query_all(Query::table(keys::PROJECTS, "")).await?;
        let refs: Vec<ProjectRef> = entries.into_iter().map(|e| ProjectRef::Name(e.sk)).collect();
        let lookups = refs.iter().map(|r| self.project(r));
        let found = futures::future::join_all(lookups).await;
        let mut out = Vec::with_capacity(found.len());
        for p in found {
            match p {
                Ok(p) => out.push(p),
                // Deleted between the listing and the read.
                Err(ServiceError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Changes a project's public switch, metadata and storage limit.
    pub async fn update_project(
        &self,
        r: &ProjectRef,
        public: Option<bool>,
        metadata: BTreeMap<String, String>,
        storage_limit: Option<i64>,
    ) -> ServiceResult<Project> {
        validate_metadata(&metadata)?;
        if let Some(limit) = storage_limit {
            validate_storage_limit(limit)?;
        }
        loop {
            let mut project = self.project(r).await?;
            let stamp = project.update_time;
            let before = project.clone();
            project.metadata.extend(metadata.clone());
            if let Some(public) = public {
                project.metadata.insert("public".to_owned(), public.to_string());
            }
            if let Some(limit) = storage_limit {
                project.storage_limit = limit;
            }
            if project == before {
                return Ok(project);
            }
            project.update_time = now_unix().max(stamp + 1);
            match self.meta.put(project_item(&project)?, Condition::equals("update_time", stamp)).await {
                Ok(()) => return Ok(project),
                // Another update won; apply this one on top of it.
                Err(e) if e.is(ErrorKind::ConditionFailed) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Deletes an empty project. `PreconditionFailed` while it holds
    /// repositories.
    pub async fn delete_project(&self, r: &ProjectRef) -> ServiceResult<()> {
        let project = self.project(r).await?;
        if self.repository_count(&project.name).await? > 0 {
            return Err(ServiceError::PreconditionFailed(format!(
                "project {} contains repositories; delete them first",
                project.name
            )));
        }
        let (pk, sk) = keys::project(&project.name);
        let (epk, esk) = keys::project_entry(&project.name);
        let (ipk, isk) = keys::project_id(project.project_id);
        let writes = vec![
            Write::Delete { pk, sk, cond: Condition::equals("project_id", project.project_id) },
            Write::Delete { pk: epk, sk: esk, cond: Condition::Always },
            Write::Delete { pk: ipk, sk: isk, cond: Condition::Always },
        ];
        match self.meta.transact(writes).await {
            Err(e) if e.is(ErrorKind::ConditionFailed) => {
                return Err(ServiceError::NotFound(format!("project {} not found", project.name)));
            }
            other => other?,
        }
        self.delete_project_members(&project).await?;
        self.delete_project_robots(&project).await
    }

    /// Repositories of a project.
    pub async fn repository_count(&self, project: &str) -> ServiceResult<usize> {
        let (pk, _) = keys::project(project);
        Ok(self.meta.query_all(Query::table(pk, keys::REPOSITORY_PREFIX)).await?.len())
    }

    /// The repository's project; `NameUnknown` when it does not exist.
    pub async fn require_project(&self, repo: &RepoName) -> ServiceResult<Project> {
        match self.project(&ProjectRef::Name(repo.project().to_owned())).await {
            Err(ServiceError::NotFound(_)) => {
                Err(ServiceError::NameUnknown(format!("project {} does not exist", repo.project())))
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn project_names() {
        for ok in ["library", "a", "my-team", "a.b_c-1", "0"] {
            assert!(validate_project_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Library", "a--b", "-a", "a_", "a/b", "a b", &"x".repeat(256)] {
            assert!(validate_project_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn metadata_rules() {
        let m = |k: &str, v: &str| BTreeMap::from([(k.to_owned(), v.to_owned())]);
        assert!(validate_metadata(&m("public", "true")).is_ok());
        assert!(validate_metadata(&m("auto_scan", "yes")).is_err());
        assert!(validate_metadata(&m("severity", "high")).is_ok());
        assert!(validate_metadata(&m("severity", "extreme")).is_err());
        assert!(validate_metadata(&m("colour", "blue")).is_err());
    }
}

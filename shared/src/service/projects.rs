//! Projects: a repository's first path component names its project, which
//! must exist. Each project has a numeric id (Harbor's API addresses
//! projects by name or id), a public switch and Harbor's string metadata.
//! The default project `library` (public, owned by the admin) is created
//! at start.
//!
//! Beside the project item, the project list holds an entry per project
//! (id, owner and public switch, what list filters test) and the public
//! list one per public project, each counted; all change in the project's
//! own transactions. Who may create projects (`project_creation_restriction`)
//! and who chooses a project's quota are decided here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::events::{Event, EventKind};
use crate::meta::keys::{self, Counted};
use crate::meta::{Condition, ErrorKind, Item, Query, Write, now_unix};
use crate::oci::RepoName;
use crate::rbac::Role;

use super::paging::{Listing, Match, PageRequest, Source, count_write, walk};
use super::record::{from_item, to_item};
use super::settings::ProjectCreation;
use super::{Registry, ServiceError, ServiceResult};

pub const DEFAULT_PROJECT: &str = "library";

/// Project metadata keys Harbor defines, all string-valued; the ones in
/// [`BOOLEAN_METADATA`] take `"true"` or `"false"`. Other keys are ignored,
/// as Harbor ignores them.
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
    "proxy_cache_filter_pattern",
    "proxy_cache_filter_kind",
    "proxy_cache_local_on_not_found",
];
const BOOLEAN_METADATA: &[&str] = &[
    "public",
    "enable_content_trust",
    "enable_content_trust_cosign",
    "prevent_vul",
    "auto_scan",
    "auto_sbom_generation",
    "reuse_sys_cve_allowlist",
    "proxy_cache_local_on_not_found",
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
    /// The project's own CVE allowlist (used unless `reuse_sys_cve_allowlist`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cve_allowlist: Option<super::cve_allowlist::CveAllowlist>,
    /// The registry endpoint a proxy-cache project caches (0: none).
    #[serde(default)]
    pub registry_id: i64,
}

impl Project {
    pub fn public(&self) -> bool {
        self.metadata.get("public").is_some_and(|v| v == "true")
    }

    /// Whether the project is a proxy cache of another registry.
    pub fn is_proxy(&self) -> bool {
        self.registry_id != 0
    }
}

/// What a project is created with.
#[derive(Debug, Clone, Default)]
pub struct NewProject {
    pub name: String,
    pub public: Option<bool>,
    pub metadata: BTreeMap<String, String>,
    pub storage_limit: Option<i64>,
    pub cve_allowlist: Option<super::cve_allowlist::CveAllowlist>,
    /// The registry endpoint to proxy-cache (0 or none: an ordinary project).
    pub registry_id: i64,
}

/// Who creates a project: it becomes its owner and first ProjectAdmin
/// (a robot's projects belong to the administrator, as in Harbor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub id: i64,
    pub name: String,
    /// A system administrator, who may create projects whatever the
    /// restriction and choose their quota.
    pub sysadmin: bool,
}

/// A project as the management API names it: by name, or by numeric id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectRef {
    Name(String),
    Id(i64),
}

/// Which projects a listing covers: all, or the public ones and those
/// named (a caller's memberships and grants).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectScope {
    All,
    PublicAnd(Vec<String>),
}

/// The filters of a project listing: `name` is tested on the list's keys
/// (an exact name is one lookup), `public` picks the public list when it
/// can, `owner` is tested on the entries.
#[derive(Debug, Clone, Default)]
pub struct ProjectFilter {
    pub name: Option<Match>,
    pub public: Option<bool>,
    pub owner: Option<Match>,
}

impl ProjectFilter {
    fn is_empty(&self) -> bool {
        self.name.is_none() && self.public.is_none() && self.owner.is_none()
    }

    fn keeps(&self, entry: &Item) -> bool {
        self.name.as_ref().is_none_or(|m| m.matches(&entry.sk))
            && self.public.is_none_or(|p| entry.attrs.get("public").and_then(serde_json::Value::as_bool) == Some(p))
            && self.owner.as_ref().is_none_or(|m| m.matches(entry.str("owner_name").unwrap_or_default()))
    }
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

/// The metadata berth knows, checked; unknown keys are dropped.
fn known_metadata(metadata: BTreeMap<String, String>) -> ServiceResult<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (k, v) in metadata {
        if k == "retention_id" {
            // berth sets it with the project's retention policy; a client
            // sending the project's metadata back does not move it.
            continue;
        }
        if !METADATA_KEYS.contains(&k.as_str()) {
            tracing::debug!(key = %k, "unknown project metadata ignored");
            continue;
        }
        if BOOLEAN_METADATA.contains(&k.as_str()) && v != "true" && v != "false" {
            return Err(ServiceError::Invalid(format!(
                "project metadata {k} must be \"true\" or \"false\", not {v:?}"
            )));
        }
        if k == "severity" && !SEVERITIES.contains(&v.as_str()) {
            return Err(ServiceError::Invalid(format!("severity must be one of {SEVERITIES:?}")));
        }
        if k == "proxy_speed_kb" && v.trim().parse::<i32>().is_err() {
            return Err(ServiceError::Invalid(format!(
                "proxy_speed_kb must be a number of KB/s (-1: no limit), not {v:?}"
            )));
        }
        out.insert(k, v);
    }
    Ok(out)
}

/// One metadata pair as Harbor's metadata API takes it
/// (`/projects/{p}/metadatas`): a known key, a boolean written as Go
/// parses one (`1`, `t`, `TRUE` …) and stored as `true`/`false`, a
/// severity in any case, a speed as a number; `retention_id` is not the
/// API's to set.
pub fn metadata_pair(key: &str, value: &str) -> ServiceResult<(String, String)> {
    let invalid = || ServiceError::Invalid(format!("invalid value: {value}"));
    let value = if BOOLEAN_METADATA.contains(&key) {
        match value {
            "1" | "t" | "T" | "TRUE" | "true" | "True" => "true".to_owned(),
            "0" | "f" | "F" | "FALSE" | "false" | "False" => "false".to_owned(),
            _ => return Err(invalid()),
        }
    } else if key == "severity" {
        let v = value.to_ascii_lowercase();
        if !SEVERITIES.contains(&v.as_str()) {
            return Err(invalid());
        }
        v
    } else if key == "proxy_speed_kb" {
        value.trim().parse::<i32>().map_err(|_| invalid())?.to_string()
    } else if key == "proxy_cache_filter_pattern" || key == "proxy_cache_filter_kind" {
        value.to_owned()
    } else {
        return Err(ServiceError::Invalid(format!("invalid key: {key}")));
    };
    Ok((key.to_owned(), value))
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

/// A project's entry in the project list (and, when public, the public
/// list): what listing filters test.
pub(super) fn entry_item(pk: String, sk: String, p: &Project) -> Item {
    Item::new(pk, sk)
        .with(keys::attr::PROJECT_ID, p.project_id)
        .with("owner_name", p.owner_name.clone())
        .with("public", p.public())
}

/// The writes that list `p` (`delta` 1) or unlist it (-1).
fn list_writes(p: &Project, delta: i64) -> Vec<Write> {
    let (epk, esk) = keys::project_entry(&p.name);
    let mut writes = vec![count_write(Counted::Projects, &p.name, delta)];
    writes.push(if delta > 0 {
        Write::Put { item: entry_item(epk, esk, p), cond: Condition::Always }
    } else {
        Write::Delete { pk: epk, sk: esk, cond: Condition::Always }
    });
    if p.public() {
        writes.extend(public_writes(p, delta));
    }
    writes
}

/// The writes that add `p` to the public list (`delta` 1) or take it off.
fn public_writes(p: &Project, delta: i64) -> Vec<Write> {
    let (pk, sk) = keys::public_project_entry(&p.name);
    let entry = if delta > 0 {
        Write::Put { item: entry_item(pk, sk, p), cond: Condition::NotExists }
    } else {
        Write::Delete { pk, sk, cond: Condition::Exists }
    };
    vec![entry, count_write(Counted::PublicProjects, &p.name, delta)]
}

impl Registry {
    /// Creates a project. `Forbidden` when only administrators may create
    /// projects and `owner` is none; `Conflict` when the name is taken.
    /// Only an administrator chooses the quota: others get the default.
    pub async fn create_project(&self, new: NewProject, owner: &Owner) -> ServiceResult<Project> {
        validate_project_name(&new.name)?;
        if new.metadata.get("retention_id").is_some_and(|v| !v.is_empty()) {
            return Err(ServiceError::Invalid(
                "the retention_id in the request's payload when creating a project should be omitted, alternatively passing an empty string"
                    .to_owned(),
            ));
        }
        let settings = self.settings().await?;
        if settings.project_creation_restriction == ProjectCreation::AdminOnly && !owner.sysadmin {
            return Err(ServiceError::Forbidden("Only system admin can create project".to_owned()));
        }
        let mut metadata = known_metadata(new.metadata)?;
        super::proxy_cache::check_filter(&metadata)?;
        if new.registry_id != 0 {
            match self.registry_endpoint(new.registry_id).await {
                Ok(_) => {}
                Err(ServiceError::NotFound(_)) => {
                    return Err(ServiceError::Invalid(format!("registry {} not found", new.registry_id)));
                }
                Err(e) => return Err(e),
            }
        }
        if let Some(public) = new.public {
            metadata.insert("public".to_owned(), public.to_string());
        }
        metadata.entry("public".to_owned()).or_insert_with(|| "false".to_owned());
        let default_limit = settings.storage_per_project;
        let storage_limit = if owner.sysadmin { new.storage_limit.unwrap_or(default_limit) } else { default_limit };
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
            cve_allowlist: new.cve_allowlist.clone().map(|l| super::cve_allowlist::CveAllowlist {
                creation_time: now,
                update_time: now,
                ..l
            }),
            registry_id: new.registry_id,
        };
        let (ipk, isk) = keys::project_id(id);
        let admin = super::members::Member {
            id: super::members::member_id(keys::MemberKind::User, owner.id),
            project_id: id,
            kind: keys::MemberKind::User,
            entity_id: owner.id,
            entity_name: owner.name.clone(),
            role: Role::ProjectAdmin,
        };
        let mut writes = vec![
            Write::Put { item: project_item(&project)?, cond: Condition::NotExists },
            Write::Put {
                item: Item::new(ipk, isk).with(keys::attr::NAME, project.name.clone()),
                cond: Condition::NotExists,
            },
        ];
        writes.extend(list_writes(&project, 1));
        // The creator's membership (it replaces any leftover of a deleted
        // project of the same name).
        writes.extend(super::members::add_writes(&project.name, &admin)?);
        if project.is_proxy() {
            // Counted in with the project: the endpoint cannot go while used.
            writes.extend(super::registries::registry_endpoint_use(project.registry_id, 1));
        }
        let event = Event::about(EventKind::CreateProject, self.actor(), Some(&project.name), &project.name);
        match self.commit_with_events(writes, vec![event]).await {
            Ok(()) => {}
            Err(e) if e.is(ErrorKind::ConditionFailed) => {
                if project.is_proxy() && self.registry_endpoint(project.registry_id).await.is_err() {
                    return Err(ServiceError::Invalid(format!("registry {} not found", project.registry_id)));
                }
                return Err(ServiceError::Conflict(format!("project {} already exists", project.name)));
            }
            Err(e) => return Err(e.into()),
        }
        if project.is_proxy() {
            // What a proxy cache holds expires: Harbor's default policy.
            self.create_retention(super::proxy_cache::default_retention(project.project_id)).await?;
            return self.project(&ProjectRef::Id(project.project_id)).await;
        }
        Ok(project)
    }

    /// Creates the `library` project, owned by the admin and public like
    /// Harbor's, unless it exists. Safe under concurrent starts.
    pub async fn ensure_default_project(&self) -> ServiceResult<()> {
        let new = NewProject { name: DEFAULT_PROJECT.to_owned(), public: Some(true), ..NewProject::default() };
        let admin = Owner { id: super::users::ADMIN_ID, name: super::users::ADMIN.to_owned(), sysadmin: true };
        match self.create_project(new, &admin).await {
            Ok(_) | Err(ServiceError::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// A project by name or id; `NotFound` when missing.
    pub async fn project(&self, r: &ProjectRef) -> ServiceResult<Project> {
        let name = match r {
            ProjectRef::Name(n) => n.clone(),
            ProjectRef::Id(id) => self.project_name(*id).await?,
        };
        let (pk, sk) = keys::project(&name);
        let item = self
            .meta
            .get(&pk, &sk)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("project {name} not found")))?;
        from_item(item, "project")
    }

    /// The name of the project with this id; `NotFound` when there is none.
    pub async fn project_name(&self, id: i64) -> ServiceResult<String> {
        let (pk, sk) = keys::project_id(id);
        let item = self.meta.get(&pk, &sk).await?;
        item.and_then(|i| i.str(keys::attr::NAME).map(str::to_owned))
            .ok_or_else(|| ServiceError::NotFound(format!("project {id} not found")))
    }

    /// A page of projects by name, among `scope`, passing `filter`.
    pub async fn list_projects(
        &self,
        scope: &ProjectScope,
        filter: &ProjectFilter,
        req: &PageRequest,
    ) -> ServiceResult<Listing<Project>> {
        if let Some(name) = filter.name.as_ref().and_then(Match::exact) {
            return self.project_named(scope, filter, name).await;
        }
        let (entries, next, total) = match scope {
            ProjectScope::All => {
                let public_only = filter.public == Some(true);
                let (partition, counted) = if public_only {
                    (keys::PUBLIC_PROJECTS, Counted::PublicProjects)
                } else {
                    (keys::PROJECTS, Counted::Projects)
                };
                let rest = ProjectFilter { public: filter.public.filter(|p| !p), ..filter.clone() };
                let query = Query::table(partition, "");
                self.page_of(query, counted, req, !rest.is_empty(), |e| rest.keeps(e)).await?
            }
            ProjectScope::PublicAnd(names) => {
                let mine = self.project_entries(names).await?;
                let sources = vec![Source::query(Query::table(keys::PUBLIC_PROJECTS, "")), Source::list(mine.clone())];
                let filtered = !filter.is_empty();
                let (entries, next, walked) =
                    walk(self.meta.as_ref(), sources, req, filtered, |e| filter.keeps(e)).await?;
                let total = match walked {
                    Some(n) => n,
                    None => {
                        let private_mine = mine.iter().filter(|e| !filter_public(e)).count() as u64;
                        self.count(Counted::PublicProjects).await? + private_mine
                    }
                };
                (entries, next, total)
            }
        };
        let items = self.projects_of(&entries).await?;
        Ok(Listing { items, total, next })
    }

    /// The listing of one project named exactly: a single lookup.
    async fn project_named(
        &self,
        scope: &ProjectScope,
        filter: &ProjectFilter,
        name: &str,
    ) -> ServiceResult<Listing<Project>> {
        let (pk, sk) = keys::project_entry(name);
        let visible = |e: &Item| match scope {
            ProjectScope::All => true,
            ProjectScope::PublicAnd(names) => filter_public(e) || names.iter().any(|n| n == name),
        };
        let entries: Vec<Item> =
            self.meta.get(&pk, &sk).await?.into_iter().filter(|e| visible(e) && filter.keeps(e)).collect();
        let items = self.projects_of(&entries).await?;
        Ok(Listing { total: items.len() as u64, items, next: None })
    }

    /// The names of every public project (for filters over other lists;
    /// reads the public list's keys).
    pub async fn public_project_names(&self) -> ServiceResult<std::collections::BTreeSet<String>> {
        let mut out = std::collections::BTreeSet::new();
        let mut query = Query::table(keys::PUBLIC_PROJECTS, "").keys_only();
        loop {
            let page = self.meta.query(query.clone()).await?;
            out.extend(page.items.into_iter().map(|i| i.sk));
            match page.next {
                Some(c) => query.cursor = Some(c),
                None => return Ok(out),
            }
        }
    }

    /// The list entries of the projects named (those that exist).
    async fn project_entries(&self, names: &[String]) -> ServiceResult<Vec<Item>> {
        let found = futures::future::join_all(names.iter().map(|n| {
            let (pk, sk) = keys::project_entry(n);
            async move { self.meta.get(&pk, &sk).await }
        }))
        .await;
        let mut out = Vec::with_capacity(found.len());
        for e in found {
            out.extend(e?);
        }
        Ok(out)
    }

    /// The projects of list entries, in their order (a project deleted
    /// since is left out).
    async fn projects_of(&self, entries: &[Item]) -> ServiceResult<Vec<Project>> {
        let refs: Vec<ProjectRef> = entries.iter().map(|e| ProjectRef::Name(e.sk.clone())).collect();
        let found = futures::future::join_all(refs.iter().map(|r| self.project(r))).await;
        let mut out = Vec::with_capacity(found.len());
        for p in found {
            match p {
                Ok(p) => out.push(p),
                Err(ServiceError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Changes a project's public switch, metadata and storage limit (the
    /// limit only when `by_admin`).
    pub async fn update_project(
        &self,
        r: &ProjectRef,
        public: Option<bool>,
        metadata: BTreeMap<String, String>,
        storage_limit: Option<i64>,
        by_admin: bool,
    ) -> ServiceResult<Project> {
        let metadata = known_metadata(metadata)?;
        if metadata.keys().any(|k| k.starts_with("proxy_cache_filter")) {
            let mut merged = self.project(r).await?.metadata;
            merged.extend(metadata.clone());
            super::proxy_cache::check_filter(&merged)?;
        }
        let storage_limit = storage_limit.filter(|_| by_admin);
        if let Some(limit) = storage_limit {
            validate_storage_limit(limit)?;
        }
        self.change_project(r, |project| {
            project.metadata.extend(metadata.clone());
            if let Some(public) = public {
                project.metadata.insert("public".to_owned(), public.to_string());
            }
            if let Some(limit) = storage_limit {
                project.storage_limit = limit;
            }
        })
        .await
    }

    /// Replaces a project's own CVE allowlist.
    pub async fn set_project_cve_allowlist(
        &self,
        r: &ProjectRef,
        list: super::cve_allowlist::CveAllowlist,
    ) -> ServiceResult<Project> {
        let now = now_unix();
        self.change_project(r, |project| {
            let created = project.cve_allowlist.as_ref().map_or(now, |l| l.creation_time);
            let next = super::cve_allowlist::CveAllowlist { creation_time: created, update_time: now, ..list.clone() };
            let same = project
                .cve_allowlist
                .as_ref()
                .is_some_and(|l| l.items == next.items && l.expires_at == next.expires_at);
            if !same {
                project.cve_allowlist = Some(next);
            }
        })
        .await
    }

    /// Removes one metadata key of a project (a project without `public`
    /// is private).
    pub async fn remove_project_metadata(&self, r: &ProjectRef, key: &str) -> ServiceResult<Project> {
        self.change_project(r, |project| {
            project.metadata.remove(key);
        })
        .await
    }

    /// Applies `change` to a project, atomically against concurrent
    /// changes (re-applied on top of one that won), keeping its list
    /// entries public or not with it; raises `UPDATE_PROJECT`.
    pub(super) async fn change_project(&self, r: &ProjectRef, change: impl Fn(&mut Project)) -> ServiceResult<Project> {
        loop {
            let mut project = self.project(r).await?;
            let stamp = project.update_time;
            let before = project.clone();
            change(&mut project);
            if project == before {
                return Ok(project);
            }
            project.update_time = now_unix().max(stamp + 1);
            let mut writes = vec![Write::Put {
                item: project_item(&project)?,
                cond: Condition::equals(keys::attr::UPDATE_TIME, stamp),
            }];
            if project.public() != before.public() {
                let (epk, esk) = keys::project_entry(&project.name);
                writes.push(Write::Put { item: entry_item(epk, esk, &project), cond: Condition::Exists });
                let delta = if project.public() { 1 } else { -1 };
                writes.extend(public_writes(&project, delta));
            }
            let event = Event::about(EventKind::UpdateProject, self.actor(), Some(&project.name), &project.name);
            match self.commit_with_events(writes, vec![event]).await {
                Ok(()) => {
                    self.proxy.forget(&project.name);
                    return Ok(project);
                }
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
        let (ipk, isk) = keys::project_id(project.project_id);
        let mut writes = vec![
            Write::Delete { pk, sk, cond: Condition::equals(keys::attr::UPDATE_TIME, project.update_time) },
            Write::Delete { pk: ipk, sk: isk, cond: Condition::Always },
        ];
        writes.extend(list_writes(&project, -1));
        if project.is_proxy() {
            writes.extend(super::registries::registry_endpoint_use(project.registry_id, -1));
        }
        let event = Event::about(EventKind::DeleteProject, self.actor(), Some(&project.name), &project.name);
        match self.commit_with_events(writes, vec![event]).await {
            Err(e) if e.is(ErrorKind::ConditionFailed) => {
                return Err(ServiceError::Conflict(format!(
                    "project {} changed while it was being deleted; try again",
                    project.name
                )));
            }
            other => other?,
        }
        self.proxy.forget(&project.name);
        self.delete_project_members(&project).await?;
        self.delete_project_robots(&project).await?;
        self.delete_project_labels(project.project_id).await?;
        self.delete_project_policies(&project).await
    }

    /// Removes what a deleted project's policies left in its partition
    /// (webhook policies, immutability rules, retention, its usage, its
    /// scanner and cosign keys), so a project made later under the same name starts
    /// without them.
    async fn delete_project_policies(&self, project: &Project) -> ServiceResult<()> {
        if let Some(id) = project.metadata.get("retention_id").and_then(|v| v.parse::<i64>().ok()) {
            match self.delete_retention(id).await {
                Ok(()) | Err(ServiceError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        self.delete_immutable_rules_of(&project.name).await?;
        self.delete_quota_of(&project.name).await?;
        for (pk, sk) in [keys::project_scanner(&project.name), keys::project_cosign_keys(&project.name)] {
            self.meta.delete(&pk, &sk, crate::meta::Condition::Always).await?;
        }
        self.delete_webhook_policies_of(&project.name).await?;
        self.delete_preheat_policies_of(&project.name).await
    }

    /// Repositories of a project.
    pub async fn repository_count(&self, project: &str) -> ServiceResult<u64> {
        self.count(Counted::Repositories(project)).await
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

/// Whether a list entry is of a public project.
fn filter_public(entry: &Item) -> bool {
    entry.attrs.get("public").and_then(serde_json::Value::as_bool) == Some(true)
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
        assert!(known_metadata(m("public", "true")).is_ok());
        assert!(known_metadata(m("auto_scan", "yes")).is_err());
        assert!(known_metadata(m("severity", "high")).is_ok());
        assert!(known_metadata(m("severity", "extreme")).is_err());
        assert!(known_metadata(m("proxy_cache_local_on_not_found", "yes")).is_err());
        assert!(known_metadata(m("proxy_speed_kb", "fast")).is_err());
        assert!(known_metadata(m("max_upstream_conn", "3")).unwrap().is_empty(), "ignored");
    }

    fn owner(sysadmin: bool) -> Owner {
        Owner { id: 1, name: "admin".into(), sysadmin }
    }

    fn names(l: &Listing<Project>) -> Vec<&str> {
        l.items.iter().map(|p| p.name.as_str()).collect()
    }

    #[tokio::test]
    async fn listings_page_by_name_with_counted_totals() {
        let (_dir, reg) = crate::testkit::local_registry().await;
        for (name, public) in [("a", true), ("b", false), ("c", true), ("d", false), ("e", false)] {
            let new = NewProject { name: name.into(), public: Some(public), ..NewProject::default() };
            reg.create_project(new, &owner(true)).await.unwrap();
        }
        let all = ProjectFilter::default();
        let page = |n, after: Option<&str>| PageRequest {
            page: n,
            size: 2,
            after: after.map(str::to_owned),
            descending: false,
        };
        let p1 = reg.list_projects(&ProjectScope::All, &all, &page(1, None)).await.unwrap();
        assert_eq!((names(&p1), p1.total, p1.next.as_deref()), (vec!["a", "b"], 5, Some("b")));
        let p3 = reg.list_projects(&ProjectScope::All, &all, &page(3, None)).await.unwrap();
        assert_eq!((names(&p3), p3.next.clone()), (vec!["e"], None));
        let via = reg.list_projects(&ProjectScope::All, &all, &page(2, Some("b"))).await.unwrap();
        assert_eq!(names(&via), ["c", "d"]);
        let down = PageRequest { descending: true, ..page(1, None) };
        let l = reg.list_projects(&ProjectScope::All, &all, &down).await.unwrap();
        assert_eq!((names(&l), l.next.as_deref()), (vec!["e", "d"], Some("d")), "sort=-name");

        let public = ProjectFilter { public: Some(true), ..ProjectFilter::default() };
        let l = reg.list_projects(&ProjectScope::All, &public, &page(1, None)).await.unwrap();
        assert_eq!((names(&l), l.total), (vec!["a", "c"], 2));
        let private = ProjectFilter { public: Some(false), ..ProjectFilter::default() };
        let l = reg.list_projects(&ProjectScope::All, &private, &page(1, None)).await.unwrap();
        assert_eq!((names(&l), l.total), (vec!["b", "d"], 3));

        // A member sees the public projects and its own.
        let mine = ProjectScope::PublicAnd(vec!["d".into(), "c".into(), "gone".into()]);
        let l = reg.list_projects(&mine, &all, &page(1, None)).await.unwrap();
        assert_eq!((names(&l), l.total), (vec!["a", "c"], 3));
        let l = reg.list_projects(&mine, &all, &page(2, None)).await.unwrap();
        assert_eq!(names(&l), ["d"]);
        let exact = ProjectFilter { name: Some(Match::Exact("b".into())), ..ProjectFilter::default() };
        assert_eq!(reg.list_projects(&mine, &exact, &page(1, None)).await.unwrap().total, 0, "b is not visible");
        assert_eq!(reg.list_projects(&ProjectScope::All, &exact, &page(1, None)).await.unwrap().total, 1);

        // Turning a project public moves it into the public list.
        reg.update_project(&ProjectRef::Name("b".into()), Some(true), BTreeMap::new(), None, true).await.unwrap();
        let l = reg.list_projects(&ProjectScope::All, &public, &page(1, None)).await.unwrap();
        assert_eq!((names(&l), l.total), (vec!["a", "b"], 3));
        reg.delete_project(&ProjectRef::Name("b".into())).await.unwrap();
        let l = reg.list_projects(&ProjectScope::All, &all, &page(1, None)).await.unwrap();
        assert_eq!((names(&l), l.total), (vec!["a", "c"], 4));
        assert_eq!(reg.list_projects(&ProjectScope::All, &public, &page(1, None)).await.unwrap().total, 2);
    }

    #[tokio::test]
    async fn only_administrators_choose_quotas_and_may_be_the_only_creators() {
        let (_dir, reg) = crate::testkit::local_registry().await;
        let user = Owner { id: 5, name: "u".into(), sysadmin: false };
        let new = |name: &str| NewProject { name: name.into(), storage_limit: Some(1000), ..NewProject::default() };
        assert_eq!(reg.create_project(new("mine"), &user).await.unwrap().storage_limit, -1);
        assert_eq!(reg.create_project(new("admins"), &owner(true)).await.unwrap().storage_limit, 1000);
        let changes = serde_json::json!({"project_creation_restriction": "adminonly"});
        reg.update_settings(changes.as_object().unwrap(), &[]).await.unwrap();
        assert!(matches!(reg.create_project(new("no"), &user).await, Err(ServiceError::Forbidden(_))));
        reg.create_project(new("yes"), &owner(true)).await.unwrap();
    }
}

//! `/projects`: Harbor's project API over [`crate::service::projects`].

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};

use super::cve_allowlist::{self, AllowlistBody, AllowlistView};
use super::{ApiError, ApiResult, Body, Caller, PREFIX, Paging, created, parse_q, query_bool, rfc3339};
use crate::auth::{On, ProjectAccess, Subject};
use crate::http::state::AppState;
use crate::rbac::{Act, Res, Role};
use crate::service::paging::{Listing, Match};
use crate::service::projects::{NewProject, Owner, Project, ProjectFilter, ProjectRef, ProjectScope};
use crate::service::users::{ADMIN, ADMIN_ID};

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    page: Option<String>,
    page_size: Option<String>,
    cursor: Option<String>,
    sort: Option<String>,
    q: Option<String>,
    name: Option<String>,
    public: Option<String>,
    owner: Option<String>,
    project_name: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct CreateBody {
    project_name: String,
    #[serde(default)]
    public: Option<bool>,
    #[serde(default)]
    metadata: Option<BTreeMap<String, String>>,
    #[serde(default)]
    storage_limit: Option<i64>,
    #[serde(default)]
    registry_id: Option<i64>,
    #[serde(default)]
    cve_allowlist: Option<AllowlistBody>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct UpdateBody {
    #[serde(default)]
    public: Option<bool>,
    #[serde(default)]
    metadata: Option<BTreeMap<String, String>>,
    #[serde(default)]
    storage_limit: Option<i64>,
    #[serde(default)]
    cve_allowlist: Option<AllowlistBody>,
}

/// Harbor's `Project`, as the caller sees it.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ProjectView {
    project_id: i64,
    owner_id: i64,
    owner_name: String,
    name: String,
    registry_id: i64,
    creation_time: String,
    update_time: String,
    deleted: bool,
    togglable: bool,
    current_user_role_id: i64,
    current_user_role_ids: Vec<i64>,
    repo_count: u64,
    metadata: BTreeMap<String, String>,
    cve_allowlist: AllowlistView,
}

fn project_view(p: Project, repo_count: u64, caller: &Caller, access: &ProjectAccess) -> ProjectView {
    let roles: Vec<i64> = access.roles.iter().map(|r| r.id()).collect();
    let owner_id = if p.owner_id == 0 && p.owner_name == ADMIN { ADMIN_ID } else { p.owner_id };
    ProjectView {
        project_id: p.project_id,
        owner_id,
        owner_name: p.owner_name,
        name: p.name,
        registry_id: p.registry_id,
        creation_time: rfc3339(p.creation_time),
        update_time: rfc3339(p.update_time),
        deleted: false,
        togglable: caller.require((Res::Metadata, Act::Update), On::Project(access)).is_ok(),
        current_user_role_id: roles.iter().copied().min().unwrap_or(0),
        current_user_role_ids: roles,
        repo_count,
        metadata: p.metadata,
        cve_allowlist: cve_allowlist::view(p.cve_allowlist.as_ref(), p.project_id, p.creation_time, p.update_time),
    }
}

/// The project a `/projects/{project_name_or_id}/…` request names. Harbor
/// reads it as an id when it is numeric, unless `X-Is-Resource-Name: true`
/// says it is a name.
pub struct Target(pub ProjectRef);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Target {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(params) = Path::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request(e.body_text()))?;
        let raw = params
            .into_iter()
            .find_map(|(k, v)| (k == "project_name_or_id").then_some(v))
            .ok_or_else(|| ApiError::bad_request("the project is missing from the path"))?;
        let is_name =
            parts.headers.get("x-is-resource-name").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
        Ok(Self(match raw.parse::<i64>() {
            Ok(id) if !is_name => ProjectRef::Id(id),
            _ => ProjectRef::Name(raw),
        }))
    }
}

/// Reads a project the caller may act on with `perm`, with the caller's
/// access to it. A project the caller may not even read is reported as
/// forbidden (401 when anonymous), as Harbor does.
pub async fn project_for(
    state: &AppState,
    caller: &Caller,
    r: &ProjectRef,
    perm: (Res, Act),
) -> ApiResult<(Project, ProjectAccess)> {
    let project = state.registry.project(r).await?;
    let access = caller.require_in(state, &project, perm).await?;
    Ok((project, access))
}

/// The projects a caller may see: all for the administrator (and a robot
/// that may read every project), else the public ones and those the caller
/// is a member of (users) or has grants to read (robots).
pub(super) async fn scope_of(state: &AppState, caller: &Caller) -> ApiResult<ProjectScope> {
    if caller.is_sysadmin() {
        return Ok(ProjectScope::All);
    }
    let read = (Res::Project, Act::Read);
    let names = match &caller.0 {
        Subject::User(u) => {
            state.registry.member_projects(u.id, &u.groups).await?.into_iter().map(|(n, _)| n).collect()
        }
        Subject::Robot(r) => {
            let mut names = Vec::new();
            for grant in r.grants.iter().filter(|g| !g.system && g.perms.contains(&read)) {
                match grant.project {
                    None => return Ok(ProjectScope::All),
                    Some(id) => match state.registry.project_name(id).await {
                        Ok(name) => names.push(name),
                        Err(crate::service::ServiceError::NotFound(_)) => {}
                        Err(e) => return Err(e.into()),
                    },
                }
            }
            names
        }
        _ => Vec::new(),
    };
    Ok(ProjectScope::PublicAnd(names))
}

pub async fn list(State(state): State<Arc<AppState>>, caller: Caller, Query(q): Query<ListQuery>) -> ApiResult {
    let paging = Paging::parse(q.page.as_deref(), q.page_size.as_deref(), q.cursor.as_deref())?.sorted(
        q.sort.as_deref(),
        "name",
        false,
    );
    caller.require((Res::Project, Act::List), On::Registry)?;
    let mut terms = parse_q(q.q.as_deref())?;
    if let Some(name) = &q.name {
        terms.insert("name".to_owned(), Match::Fuzzy(name.clone()));
    }
    if let Some(owner) = &q.owner {
        terms.insert("owner".to_owned(), Match::Exact(owner.clone()));
    }
    let public =
        q.public.as_deref().or(terms.get("public").and_then(Match::exact)).filter(|p| !p.is_empty()).map(query_bool);
    let filter = ProjectFilter { name: terms.remove("name"), public, owner: terms.remove("owner") };
    let scope = scope_of(&state, &caller).await?;
    let listing = state.registry.list_projects(&scope, &filter, &paging.0).await?;
    // Each project's access and repository count, read at once.
    let reads = listing.items.iter().map(|p| async {
        let (access, count) = tokio::join!(caller.access(&state, p), state.registry.repository_count(&p.name));
        Ok::<_, ApiError>((access?, count?))
    });
    let read = futures::future::try_join_all(reads).await?;
    let items: Vec<ProjectView> = listing
        .items
        .into_iter()
        .zip(read)
        .map(|(p, (access, count))| project_view(p, count, &caller, &access))
        .collect();
    let rest: Vec<(&str, &str)> =
        [("q", &q.q), ("sort", &q.sort), ("name", &q.name), ("public", &q.public), ("owner", &q.owner)]
            .into_iter()
            .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
            .collect();
    Ok(paging.respond("/projects", &rest, Listing { items, total: listing.total, next: listing.next }))
}

/// `HEAD /projects?project_name=x`: 200 when it exists, 404 otherwise.
pub async fn exists(State(state): State<Arc<AppState>>, caller: Caller, Query(q): Query<ListQuery>) -> ApiResult {
    let name = q.project_name.ok_or_else(|| ApiError::bad_request("project_name is required"))?;
    caller.require_signed_in()?;
    state.registry.project(&ProjectRef::Name(name)).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    headers: HeaderMap,
    Body(body): Body<CreateBody>,
) -> ApiResult {
    caller.require((Res::Project, Act::Create), On::Registry)?;
    let registry_id = body.registry_id.unwrap_or(0);
    if registry_id < 0 {
        return Err(ApiError::bad_request("registry_id must be the id of a registry endpoint"));
    }
    if registry_id != 0 && !caller.is_sysadmin() {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "Only system admin can create proxy cache project"));
    }
    let new = NewProject {
        name: body.project_name,
        public: body.public,
        metadata: body.metadata.unwrap_or_default(),
        storage_limit: body.storage_limit,
        cve_allowlist: body.cve_allowlist.map(AllowlistBody::into_list).transpose()?,
        registry_id,
    };
    // A robot's projects belong to the administrator, as in Harbor.
    let owner = match &caller.0 {
        Subject::User(u) => Owner { id: u.id, name: u.name.clone(), sysadmin: u.sysadmin },
        _ => Owner { id: ADMIN_ID, name: ADMIN.to_owned(), sysadmin: false },
    };
    let project = caller.registry(&state).create_project(new, &owner).await?;
    let by_name =
        headers.get("x-resource-name-in-location").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
    if by_name {
        created(&format!("{PREFIX}/projects/{}", project.name))
    } else {
        created(&format!("{PREFIX}/projects/{}", project.project_id))
    }
}

pub async fn get(State(state): State<Arc<AppState>>, caller: Caller, Target(r): Target) -> ApiResult {
    let (project, access) = project_for(&state, &caller, &r, (Res::Project, Act::Read)).await?;
    let count = state.registry.repository_count(&project.name).await?;
    Ok(Json(project_view(project, count, &caller, &access)).into_response())
}

pub async fn update(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Target(r): Target,
    Body(body): Body<UpdateBody>,
) -> ApiResult {
    project_for(&state, &caller, &r, (Res::Project, Act::Update)).await?;
    let metadata = body.metadata.unwrap_or_default();
    let allowlist = body.cve_allowlist.map(AllowlistBody::into_list).transpose()?;
    let registry = caller.registry(&state);
    registry.update_project(&r, body.public, metadata, body.storage_limit, caller.is_sysadmin()).await?;
    if let Some(list) = allowlist {
        registry.set_project_cve_allowlist(&r, list).await?;
    }
    Ok(StatusCode::OK.into_response())
}

pub async fn delete(State(state): State<Arc<AppState>>, caller: Caller, Target(r): Target) -> ApiResult {
    project_for(&state, &caller, &r, (Res::Project, Act::Delete)).await?;
    caller.registry(&state).delete_project(&r).await?;
    Ok(StatusCode::OK.into_response())
}

/// Harbor's `ProjectSummary`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct Summary {
    repo_count: u64,
    project_admin_count: usize,
    maintainer_count: usize,
    developer_count: usize,
    guest_count: usize,
    limited_guest_count: usize,
    quota: Quota,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct Quota {
    hard: Storage,
    used: Storage,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct Storage {
    storage: i64,
}

/// `GET /projects/{p}/_deletable`: whether a delete would go through (a
/// project holding repositories is not), asked by whoever may delete it.
pub async fn deletable(State(state): State<Arc<AppState>>, caller: Caller, Target(r): Target) -> ApiResult {
    let (project, _) = project_for(&state, &caller, &r, (Res::Project, Act::Delete)).await?;
    #[derive(Serialize, schemars::JsonSchema)]
    pub(super) struct Deletable {
        deletable: bool,
        #[serde(skip_serializing_if = "str::is_empty")]
        message: &'static str,
    }
    let empty = state.registry.repository_count(&project.name).await? == 0;
    let message = if empty { "" } else { "the project contains repositories, can not be deleted" };
    Ok(Json(Deletable { deletable: empty, message }).into_response())
}

pub async fn summary(State(state): State<Arc<AppState>>, caller: Caller, Target(r): Target) -> ApiResult {
    let (project, _) = project_for(&state, &caller, &r, (Res::Project, Act::Read)).await?;
    let repo_count = state.registry.repository_count(&project.name).await?;
    let roles = state.registry.member_roles(&project).await?;
    let with = |role: Role| roles.iter().filter(|r| **r == role).count();
    Ok(Json(Summary {
        repo_count,
        project_admin_count: with(Role::ProjectAdmin),
        maintainer_count: with(Role::Maintainer),
        developer_count: with(Role::Developer),
        guest_count: with(Role::Guest),
        limited_guest_count: with(Role::LimitedGuest),
        quota: Quota {
            hard: Storage { storage: project.storage_limit },
            used: Storage { storage: state.registry.storage_used(&project.name).await? },
        },
    })
    .into_response())
}

/// `GET /statistics`: project and repository counts (and, for
/// administrators, the bytes stored) as the caller may see them.
pub async fn statistics(State(state): State<Arc<AppState>>, caller: Caller) -> ApiResult {
    caller.require_signed_in()?;
    let stats = match scope_of(&state, &caller).await? {
        ProjectScope::All if caller.is_sysadmin() => state.registry.statistics(None).await?,
        ProjectScope::All => {
            // A robot that reads every project: the counts, no storage.
            let mut s = state.registry.statistics(None).await?;
            s.total_storage_consumption = 0;
            s
        }
        ProjectScope::PublicAnd(mine) => state.registry.statistics(Some(&mine)).await?,
    };
    Ok(Json(stats).into_response())
}

#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

/// `GET /search?q=`: the projects and repositories whose names hold `q`
/// that the caller may see (the first 100 of each).
pub async fn search(State(state): State<Arc<AppState>>, caller: Caller, Query(q): Query<SearchQuery>) -> ApiResult {
    let scope = scope_of(&state, &caller).await?;
    let filter = ProjectFilter { name: Some(Match::Fuzzy(q.q.clone())), ..ProjectFilter::default() };
    let req = crate::service::paging::PageRequest::first(super::repositories::SEARCH_LIMIT);
    let mut projects = Vec::new();
    for p in state.registry.list_projects(&scope, &filter, &req).await?.items {
        let access = caller.access(&state, &p).await?;
        let count = state.registry.repository_count(&p.name).await?;
        projects.push(project_view(p, count, &caller, &access));
    }
    let repositories = super::repositories::search_repositories(&state, &caller, &q.q).await?;
    Ok(Json(serde_json::json!({ "project": projects, "repository": repositories })).into_response())
}

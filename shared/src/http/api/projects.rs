//! `/projects`: Harbor's project API over [`crate::service::projects`].

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiResult, Body, Caller, PREFIX, Paging, created, parse_q, q_matches, rfc3339};
use crate::auth::rbac::{Act, Res, Role};
use crate::auth::{On, ProjectAccess, Subject};
use crate::http::state::AppState;
use crate::service::projects::{NewProject, Owner, Project, ProjectRef};
use crate::service::users::{ADMIN, ADMIN_ID};

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    page: Option<String>,
    page_size: Option<String>,
    q: Option<String>,
    name: Option<String>,
    public: Option<String>,
    owner: Option<String>,
    project_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
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
    cve_allowlist: Option<Value>,
}

#[derive(Debug, Deserialize)]
pub struct UpdateBody {
    #[serde(default)]
    public: Option<bool>,
    #[serde(default)]
    metadata: Option<BTreeMap<String, String>>,
    #[serde(default)]
    storage_limit: Option<i64>,
}

/// The project JSON Harbor returns, as `caller` sees it.
fn project_json(p: &Project, repo_count: usize, caller: &Caller, access: &ProjectAccess) -> Value {
    let roles: Vec<i64> = access.roles.iter().map(|r| r.id()).collect();
    let owner_id = if p.owner_id == 0 && p.owner_name == ADMIN { ADMIN_ID } else { p.owner_id };
    json!({
        "project_id": p.project_id,
        "owner_id": owner_id,
        "owner_name": p.owner_name,
        "name": p.name,
        "registry_id": 0,
        "creation_time": rfc3339(p.creation_time),
        "update_time": rfc3339(p.update_time),
        "deleted": false,
        "togglable": caller.require((Res::Metadata, Act::Update), On::Project(access)).is_ok(),
        "current_user_role_id": roles.iter().copied().min().unwrap_or(0),
        "current_user_role_ids": roles,
        "repo_count": repo_count,
        "metadata": p.metadata,
        "cve_allowlist": {
            "id": p.project_id,
            "project_id": p.project_id,
            "items": [],
            "creation_time": rfc3339(p.creation_time),
            "update_time": rfc3339(p.update_time)
        }
    })
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

/// The projects a caller may see, without reading every project's
/// members: all for the administrator, else the public ones and those the
/// caller is a member of (users) or has grants in (robots).
pub(super) async fn visible(state: &AppState, caller: &Caller, all: Vec<Project>) -> ApiResult<Vec<Project>> {
    let member_of = match caller.user() {
        Some(u) if !u.sysadmin => state.registry.member_projects(u.id, &u.groups).await?,
        _ => Vec::new(),
    };
    Ok(all
        .into_iter()
        .filter(|p| {
            let access =
                ProjectAccess { id: p.project_id, name: p.name.clone(), public: p.public(), roles: Vec::new() };
            member_of.contains(&(p.name.clone(), p.project_id))
                || caller.require((Res::Project, Act::Read), On::Project(&access)).is_ok()
        })
        .collect())
}

pub async fn list(State(state): State<Arc<AppState>>, caller: Caller, Query(q): Query<ListQuery>) -> ApiResult {
    let paging = Paging::parse(q.page.as_deref(), q.page_size.as_deref())?;
    caller.require((Res::Project, Act::List), On::Registry)?;
    let mut filters: Vec<(String, String, bool)> = q.q.as_deref().map(parse_q).unwrap_or_default();
    if let Some(name) = q.name.clone() {
        filters.push(("name".to_owned(), name, true));
    }
    if let Some(public) = q.public.clone() {
        filters.push(("public".to_owned(), public, false));
    }
    if let Some(owner) = q.owner.clone() {
        filters.push(("owner".to_owned(), owner, false));
    }
    let all = state.registry.list_projects().await?;
    let out: Vec<Project> = visible(&state, &caller, all)
        .await?
        .into_iter()
        .filter(|p| {
            filters.iter().all(|(k, v, fuzzy)| {
                let field = match k.as_str() {
                    "name" => p.name.clone(),
                    "public" => p.public().to_string(),
                    "owner" => p.owner_name.clone(),
                    _ => return true,
                };
                q_matches(&field, v, *fuzzy)
            })
        })
        .collect();
    let page = paging.page_slice(out.len());
    let mut items = Vec::with_capacity(page.len());
    for p in &out[page] {
        let access = caller.access(&state, p).await?;
        let count = state.registry.repository_count(&p.name).await?;
        items.push(project_json(p, count, &caller, &access));
    }
    Ok(paging.respond_page("/projects", &query_suffix(&q), out.len(), &items))
}

/// The filters of a listing, for its `Link` header.
fn query_suffix(q: &ListQuery) -> String {
    let mut s = String::new();
    for (k, v) in [("q", &q.q), ("name", &q.name), ("public", &q.public), ("owner", &q.owner)] {
        if let Some(v) = v {
            s.push_str(&format!("&{k}={}", url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()));
        }
    }
    s
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
    let settings = state.settings.get().await?;
    if settings.str("project_creation_restriction") == "adminonly" && !caller.is_sysadmin() {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "only administrators may create projects"));
    }
    if body.registry_id.is_some_and(|id| id != 0) {
        return Err(ApiError::bad_request("proxy-cache projects (registry_id) are not supported yet"));
    }
    let _ = body.cve_allowlist;
    // Only administrators choose a project's quota; others get the default.
    let default_limit = settings.int("storage_per_project");
    let storage_limit = if caller.is_sysadmin() { body.storage_limit } else { Some(default_limit) };
    let new = NewProject {
        name: body.project_name,
        public: body.public,
        metadata: body.metadata.unwrap_or_default(),
        storage_limit: storage_limit.or(Some(default_limit)),
    };
    // A robot's projects belong to the administrator, as in Harbor.
    let owner = match &caller.0 {
        Subject::User(u) => Owner { id: u.id, name: u.name.clone() },
        _ => Owner { id: ADMIN_ID, name: ADMIN.to_owned() },
    };
    let project = state.registry.create_project(new, &owner).await?;
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
    Ok(Json(project_json(&project, count, &caller, &access)).into_response())
}

pub async fn update(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Target(r): Target,
    Body(body): Body<UpdateBody>,
) -> ApiResult {
    project_for(&state, &caller, &r, (Res::Project, Act::Update)).await?;
    // The quota is the administrator's to change.
    let storage_limit = if caller.is_sysadmin() { body.storage_limit } else { None };
    state.registry.update_project(&r, body.public, body.metadata.unwrap_or_default(), storage_limit).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn delete(State(state): State<Arc<AppState>>, caller: Caller, Target(r): Target) -> ApiResult {
    project_for(&state, &caller, &r, (Res::Project, Act::Delete)).await?;
    state.registry.delete_project(&r).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn summary(State(state): State<Arc<AppState>>, caller: Caller, Target(r): Target) -> ApiResult {
    let (project, _) = project_for(&state, &caller, &r, (Res::Project, Act::Read)).await?;
    let count = state.registry.repository_count(&project.name).await?;
    let members = state.registry.members(&project).await?;
    let with = |role: Role| members.iter().filter(|m| m.role == role).count();
    Ok(Json(json!({
        "repo_count": count,
        "project_admin_count": with(Role::ProjectAdmin),
        "maintainer_count": with(Role::Maintainer),
        "developer_count": with(Role::Developer),
        "guest_count": with(Role::Guest),
        "limited_guest_count": with(Role::LimitedGuest),
        "quota": { "hard": { "storage": project.storage_limit }, "used": { "storage": 0 } }
    }))
    .into_response())
}

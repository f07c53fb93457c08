//! `/projects`: Harbor's project API over [`crate::service::projects`].

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, Caller, PREFIX, Paging, rfc3339};
use crate::auth::{Action, Resource, Subject};
use crate::http::state::AppState;
use crate::service::projects::{NewProject, Project, ProjectRef};

type ApiResult<T = Response> = Result<T, ApiError>;

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

/// The project JSON Harbor returns.
fn project_json(p: &Project, repo_count: usize, caller: &Caller) -> Value {
    let admin = matches!(caller.0, Subject::User { sysadmin: true, .. });
    json!({
        "project_id": p.project_id,
        "owner_id": if p.owner_name == crate::service::accounts::ADMIN { 1 } else { 0 },
        "owner_name": p.owner_name,
        "name": p.name,
        "registry_id": 0,
        "creation_time": rfc3339(p.creation_time),
        "update_time": rfc3339(p.update_time),
        "deleted": false,
        "togglable": admin,
        "current_user_role_id": if admin { 1 } else { 0 },
        "current_user_role_ids": if admin { vec![1] } else { Vec::<i64>::new() },
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

/// The project a `/projects/{project_name_or_id}` request names. Harbor
/// reads it as an id when it is numeric, unless `X-Is-Resource-Name: true`
/// says it is a name.
pub struct Target(ProjectRef);

impl axum::extract::FromRequestParts<Arc<AppState>> for Target {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let Path(raw) =
            Path::<String>::from_request_parts(parts, state).await.map_err(|e| ApiError::bad_request(e.body_text()))?;
        let is_name =
            parts.headers.get("x-is-resource-name").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
        Ok(Self(match raw.parse::<i64>() {
            Ok(id) if !is_name => ProjectRef::Id(id),
            _ => ProjectRef::Name(raw),
        }))
    }
}

fn resource(p: &Project) -> Resource<'_> {
    Resource::Project { name: &p.name, public: p.public() }
}

/// Reads a project the caller may see; a private project the caller may
/// not read is reported as forbidden (401 when anonymous), as Harbor does.
async fn readable(state: &AppState, caller: &Caller, r: &ProjectRef) -> ApiResult<Project> {
    let project = state.registry.project(r).await?;
    caller.require(Action::Read, resource(&project))?;
    Ok(project)
}

/// A `q` filter of Harbor's query syntax: `k=v` (exact) or `k=~v` (fuzzy),
/// comma-separated.
fn parse_q(q: &str) -> Vec<(String, String, bool)> {
    q.split(',')
        .filter_map(|term| {
            let (k, v) = term.split_once('=')?;
            let (v, fuzzy) = match v.strip_prefix('~') {
                Some(rest) => (rest, true),
                None => (v, false),
            };
            Some((k.trim().to_owned(), v.trim().to_owned(), fuzzy))
        })
        .collect()
}

pub async fn list(State(state): State<Arc<AppState>>, caller: Caller, Query(q): Query<ListQuery>) -> ApiResult {
    let paging = Paging::parse(q.page.as_deref(), q.page_size.as_deref())?;
    caller.require(Action::List, Resource::Registry)?;
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
    let mut out = Vec::new();
    for p in state.registry.list_projects().await? {
        if caller.require(Action::Read, resource(&p)).is_err() {
            continue;
        }
        let keep = filters.iter().all(|(k, v, fuzzy)| {
            let field = match k.as_str() {
                "name" => p.name.clone(),
                "public" => p.public().to_string(),
                "owner" => p.owner_name.clone(),
                _ => return true,
            };
            if *fuzzy { field.contains(v.as_str()) } else { &field == v }
        });
        if keep {
            out.push(p);
        }
    }
    let total_page = paging.page_slice(out.len());
    let mut items = Vec::with_capacity(total_page.len());
    for p in &out[total_page] {
        let count = state.registry.repository_count(&p.name).await?;
        items.push(project_json(p, count, &caller));
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
    if caller.name().is_none() {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "authentication required"));
    }
    state.registry.project(&ProjectRef::Name(name)).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Json<CreateBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    caller.require(Action::Create, Resource::Registry)?;
    let Json(body) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    if body.registry_id.is_some_and(|id| id != 0) {
        return Err(ApiError::bad_request("proxy-cache projects (registry_id) are not supported yet"));
    }
    let _ = body.cve_allowlist;
    let new = NewProject {
        name: body.project_name,
        public: body.public,
        metadata: body.metadata.unwrap_or_default(),
        storage_limit: body.storage_limit,
    };
    let owner = caller.name().unwrap_or_default().to_owned();
    let project = state.registry.create_project(new, &owner).await?;
    let by_name =
        headers.get("x-resource-name-in-location").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
    let location = if by_name {
        format!("{PREFIX}/projects/{}", project.name)
    } else {
        format!("{PREFIX}/projects/{}", project.project_id)
    };
    let loc = HeaderValue::from_str(&location).map_err(|_| ApiError::bad_request("bad project name"))?;
    Ok((StatusCode::CREATED, [(header::LOCATION, loc)]).into_response())
}

pub async fn get(State(state): State<Arc<AppState>>, caller: Caller, Target(r): Target) -> ApiResult {
    let project = readable(&state, &caller, &r).await?;
    let count = state.registry.repository_count(&project.name).await?;
    Ok(Json(project_json(&project, count, &caller)).into_response())
}

pub async fn update(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Target(r): Target,
    body: Result<Json<UpdateBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult {
    let Json(body) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let project = readable(&state, &caller, &r).await?;
    caller.require(Action::Update, resource(&project))?;
    state.registry.update_project(&r, body.public, body.metadata.unwrap_or_default(), body.storage_limit).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn delete(State(state): State<Arc<AppState>>, caller: Caller, Target(r): Target) -> ApiResult {
    let project = readable(&state, &caller, &r).await?;
    caller.require(Action::Delete, resource(&project))?;
    state.registry.delete_project(&r).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn summary(State(state): State<Arc<AppState>>, caller: Caller, Target(r): Target) -> ApiResult {
    let project = readable(&state, &caller, &r).await?;
    let count = state.registry.repository_count(&project.name).await?;
    Ok(Json(json!({
        "repo_count": count,
        "project_admin_count": 1,
        "maintainer_count": 0,
        "developer_count": 0,
        "guest_count": 0,
        "limited_guest_count": 0,
        "quota": { "hard": { "storage": project.storage_limit }, "used": { "storage": 0 } }
    }))
    .into_response())
}

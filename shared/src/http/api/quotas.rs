//! `/quotas`: Harbor's quota API over [`crate::service::quotas`]. A
//! project's quota has the project's id; its hard limit is the project's
//! `storage_limit`, its usage the project's counted bytes.
//!
//! A listing pages through the projects (each page reads its quotas); a
//! listing sorted by `hard.storage` or `used.storage` reads every
//! project's quota first (an administrator's view of all projects).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiResult, Body, Caller, Paging, rfc3339};
use crate::auth::On;
use crate::http::state::AppState;
use crate::rbac::{Act, Res};
use crate::service::paging::{Listing, PageRequest};
use crate::service::projects::{Project, ProjectFilter, ProjectRef, ProjectScope};
use crate::service::quotas::MAX_STORAGE;

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct QuotaRef {
    id: i64,
    name: String,
    owner_name: String,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct Storage {
    storage: i64,
}

/// Harbor's `Quota`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct QuotaView {
    id: i64,
    #[serde(rename = "ref")]
    reference: QuotaRef,
    hard: Storage,
    used: Storage,
    creation_time: String,
    update_time: String,
}

async fn view(state: &AppState, p: Project) -> ApiResult<QuotaView> {
    let used = state.registry.storage_used(&p.name).await?;
    Ok(QuotaView {
        id: p.project_id,
        hard: Storage { storage: p.storage_limit },
        used: Storage { storage: used },
        creation_time: rfc3339(p.creation_time),
        update_time: rfc3339(p.update_time),
        reference: QuotaRef { id: p.project_id, name: p.name, owner_name: p.owner_name },
    })
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    page: Option<String>,
    page_size: Option<String>,
    cursor: Option<String>,
    reference: Option<String>,
    reference_id: Option<String>,
    sort: Option<String>,
}

/// `GET /quotas`: every project's quota (administrators), or one
/// project's (`reference=project&reference_id=<id>`, for who may read it).
pub async fn list(State(state): State<Arc<AppState>>, caller: Caller, Query(q): Query<ListQuery>) -> ApiResult {
    let paging = Paging::parse(q.page.as_deref(), q.page_size.as_deref(), q.cursor.as_deref())?;
    if let Some(kind) = q.reference.as_deref().filter(|r| !r.is_empty())
        && kind != "project"
    {
        return Err(ApiError::bad_request(format!("unsupported quota reference {kind:?}")));
    }
    if let Some(id) = q.reference_id.as_deref().filter(|r| !r.is_empty()) {
        let id: i64 = id.parse().map_err(|_| ApiError::bad_request("reference_id must be a project id"))?;
        let project = state.registry.project(&ProjectRef::Id(id)).await?;
        caller.require_in(&state, &project, (Res::Quota, Act::Read)).await?;
        let one = vec![view(&state, project).await?];
        return Ok(paging.respond("/quotas", &[], Listing { items: one, total: 1, next: None }));
    }
    caller.require((Res::Quota, Act::List), On::Registry)?;
    let rest: Vec<(&str, &str)> = q.sort.as_deref().map(|s| ("sort", s)).into_iter().collect();
    let Some(sort) = q.sort.as_deref().filter(|s| !s.is_empty()) else {
        let listing = state.registry.list_projects(&ProjectScope::All, &ProjectFilter::default(), &paging.0).await?;
        let mut items = Vec::with_capacity(listing.items.len());
        for p in listing.items {
            items.push(view(&state, p).await?);
        }
        return Ok(paging.respond("/quotas", &rest, Listing { items, total: listing.total, next: listing.next }));
    };
    let (field, descending) = match sort.strip_prefix('-') {
        Some(f) => (f, true),
        None => (sort, false),
    };
    if !matches!(field, "hard.storage" | "used.storage") {
        return Err(ApiError::bad_request(format!("cannot sort quotas by {sort:?}")));
    }
    let mut all = Vec::new();
    let mut req = PageRequest::first(crate::service::paging::MAX_PAGE_SIZE);
    loop {
        let listing = state.registry.list_projects(&ProjectScope::All, &ProjectFilter::default(), &req).await?;
        for p in listing.items {
            all.push(view(&state, p).await?);
        }
        match listing.next {
            Some(next) => req = PageRequest { page: req.page + 1, after: Some(next), ..req },
            None => break,
        }
    }
    let key = |v: &QuotaView| if field == "hard.storage" { v.hard.storage } else { v.used.storage };
    all.sort_by(|a, b| if descending { key(b).cmp(&key(a)) } else { key(a).cmp(&key(b)) });
    Ok(paging.respond("/quotas", &rest, Listing::of_all(all, &paging.0)))
}

fn quota_id(id: &str) -> Result<i64, ApiError> {
    id.parse().map_err(|_| ApiError::bad_request("id must be a number"))
}

pub async fn get(State(state): State<Arc<AppState>>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    let project = state.registry.project(&ProjectRef::Id(quota_id(&id)?)).await?;
    caller.require_in(&state, &project, (Res::Quota, Act::Read)).await?;
    Ok(Json(view(&state, project).await?).into_response())
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct UpdateBody {
    #[serde(default)]
    hard: std::collections::BTreeMap<String, i64>,
}

/// `PUT /quotas/{id}`: a new hard limit (administrators).
pub async fn update(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<UpdateBody>,
) -> ApiResult {
    caller.require((Res::Quota, Act::Update), On::Registry)?;
    let project = state.registry.project(&ProjectRef::Id(quota_id(&id)?)).await?;
    let Some(&storage) = body.hard.get("storage") else {
        return Err(ApiError::bad_request("hard.storage is required"));
    };
    if storage != -1 && !(1..=MAX_STORAGE).contains(&storage) {
        return Err(ApiError::bad_request(format!(
            "hard.storage must be -1 (unlimited) or between 1 and {MAX_STORAGE} bytes"
        )));
    }
    let r = ProjectRef::Name(project.name.clone());
    caller.registry(&state).update_project(&r, None, Default::default(), Some(storage), true).await?;
    Ok(StatusCode::OK.into_response())
}

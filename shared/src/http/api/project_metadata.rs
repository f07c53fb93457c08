//! `/projects/{p}/metadatas`: Harbor's project metadata API, one key at a
//! time ([`crate::service::projects::metadata_pair`] says which keys and
//! values it takes).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;

use super::projects::{Target, project_for};
use super::{ApiError, ApiResult, Body, Caller};
use crate::http::state::AppState;
use crate::rbac::{Act, Res};
use crate::service::ServiceError;
use crate::service::projects::{ProjectRef, metadata_pair};

fn meta_name(path: &[(String, String)]) -> Result<String, ApiError> {
    path.iter()
        .find(|(k, _)| k == "meta_name")
        .map(|(_, v)| v.clone())
        .ok_or_else(|| ApiError::bad_request("meta_name is required"))
}

/// The one pair of a body (Harbor allows exactly one).
fn one_pair(body: &BTreeMap<String, String>) -> Result<(String, String), ApiError> {
    match body.iter().next() {
        Some((k, v)) if body.len() == 1 => Ok(metadata_pair(k, v)?),
        _ => Err(ApiError::bad_request("only allow one key/value pair")),
    }
}

/// Sets one checked pair on a project, as the caller.
async fn set(state: &AppState, caller: &Caller, project: String, (k, v): (String, String)) -> ApiResult {
    let r = ProjectRef::Name(project);
    caller.registry(state).update_project(&r, None, BTreeMap::from([(k, v)]), None, false).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn list(State(state): State<Arc<AppState>>, caller: Caller, Target(r): Target) -> ApiResult {
    let (project, _) = project_for(&state, &caller, &r, (Res::Metadata, Act::List)).await?;
    Ok(Json(project.metadata).into_response())
}

pub async fn add(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Target(r): Target,
    Body(body): Body<BTreeMap<String, String>>,
) -> ApiResult {
    let (project, _) = project_for(&state, &caller, &r, (Res::Metadata, Act::Create)).await?;
    set(&state, &caller, project.name, one_pair(&body)?).await
}

pub async fn get(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Target(r): Target,
    Path(path): Path<Vec<(String, String)>>,
) -> ApiResult {
    let name = meta_name(&path)?;
    let (project, _) = project_for(&state, &caller, &r, (Res::Metadata, Act::Read)).await?;
    let value = project
        .metadata
        .get(&name)
        .ok_or_else(|| ServiceError::NotFound(format!("metadata {name} of project {} not found", project.name)))?;
    Ok(Json(BTreeMap::from([(name, value.clone())])).into_response())
}

/// `PUT …/{meta_name}`: the body's value for that key (other keys in it
/// are ignored, as Harbor ignores them).
pub async fn update(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Target(r): Target,
    Path(path): Path<Vec<(String, String)>>,
    Body(body): Body<BTreeMap<String, String>>,
) -> ApiResult {
    let name = meta_name(&path)?;
    let (project, _) = project_for(&state, &caller, &r, (Res::Metadata, Act::Update)).await?;
    let value = body.get(&name).cloned().unwrap_or_default();
    set(&state, &caller, project.name, metadata_pair(&name, &value)?).await
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Target(r): Target,
    Path(path): Path<Vec<(String, String)>>,
) -> ApiResult {
    let name = meta_name(&path)?;
    let (project, _) = project_for(&state, &caller, &r, (Res::Metadata, Act::Delete)).await?;
    caller.registry(&state).remove_project_metadata(&ProjectRef::Name(project.name), &name).await?;
    Ok(StatusCode::OK.into_response())
}

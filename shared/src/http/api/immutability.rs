//! `/projects/{p}/immutabletagrules`: Harbor's tag immutability rules over
//! [`crate::service::immutability`]. A project has at most 15, so a
//! listing pages through them in memory.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;

use super::projects::{Target, project_for};
use super::{ApiError, ApiResult, Body, Caller, PREFIX, Paging, created, path_number};
use crate::http::state::AppState;
use crate::rbac::{Act, Res};
use crate::service::immutability::ImmutableRule;
use crate::service::paging::Listing;
use crate::service::projects::ProjectRef;

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    page: Option<String>,
    page_size: Option<String>,
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Target(r): Target,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    let paging = Paging::parse(q.page.as_deref(), q.page_size.as_deref(), None)?;
    let (project, _) = project_for(&state, &caller, &r, (Res::ImmutableTag, Act::List)).await?;
    let rules = state.registry.immutable_rules(&ProjectRef::Name(project.name.clone())).await?;
    let listing = Listing::of_all(rules, &paging.0);
    Ok(paging.respond(&format!("/projects/{}/immutabletagrules", project.project_id), &[], listing))
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Target(r): Target,
    Body(rule): Body<ImmutableRule>,
) -> ApiResult {
    let (project, _) = project_for(&state, &caller, &r, (Res::ImmutableTag, Act::Create)).await?;
    let id = caller.registry(&state).create_immutable_rule(&ProjectRef::Name(project.name.clone()), rule).await?;
    created(&format!("{PREFIX}/projects/{}/immutabletagrules/{id}", project.project_id))
}

/// `PUT …/{id}`: replaces a rule (enabling or disabling it too); the body's
/// `id`, when given, must be the path's.
pub async fn update(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Target(r): Target,
    Path(path): Path<Vec<(String, String)>>,
    Body(rule): Body<Option<ImmutableRule>>,
) -> ApiResult {
    let id = path_number(&path, "immutable_rule_id")?;
    let (project, _) = project_for(&state, &caller, &r, (Res::ImmutableTag, Act::Update)).await?;
    // A rule that is not there is 404 whatever the body, as in Harbor.
    let rules = state.registry.immutable_rules(&ProjectRef::Name(project.name.clone())).await?;
    if !rules.iter().any(|x| x.id == id) {
        return Err(ApiError::new(StatusCode::NOT_FOUND, format!("immutable rule {id} not found")));
    }
    let rule = rule.ok_or_else(|| ApiError::bad_request("the rule is required"))?;
    if rule.id != 0 && rule.id != id {
        return Err(ApiError::bad_request(
            "the immutable_rule_id doesn't match the id in the payload body of ImmutableRule",
        ));
    }
    caller.registry(&state).update_immutable_rule(&ProjectRef::Name(project.name), id, rule).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Target(r): Target,
    Path(path): Path<Vec<(String, String)>>,
) -> ApiResult {
    let id = path_number(&path, "immutable_rule_id")?;
    let (project, _) = project_for(&state, &caller, &r, (Res::ImmutableTag, Act::Delete)).await?;
    caller.registry(&state).delete_immutable_rule(&ProjectRef::Name(project.name), id).await?;
    Ok(StatusCode::OK.into_response())
}

//! `/usergroups`: Harbor's user group API over [`crate::service::groups`].

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiResult, Body, Caller, Id, PREFIX, Paging, created};
use crate::auth::On;
use crate::auth::rbac::{Act, Res};
use crate::http::state::AppState;
use crate::service::groups::{Group, LDAP_GROUP};

fn group_json(g: &Group) -> Value {
    json!({ "id": g.id, "group_name": g.group_name, "group_type": g.group_type, "ldap_group_dn": g.ldap_group_dn })
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    page: Option<String>,
    page_size: Option<String>,
    ldap_group_dn: Option<String>,
    group_name: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct GroupBody {
    #[serde(default)]
    group_name: String,
    #[serde(default)]
    group_type: i64,
    #[serde(default)]
    ldap_group_dn: String,
}

#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    page: Option<String>,
    page_size: Option<String>,
    groupname: Option<String>,
}

pub async fn list(State(state): State<Arc<AppState>>, caller: Caller, Query(q): Query<ListQuery>) -> ApiResult {
    let paging = Paging::parse(q.page.as_deref(), q.page_size.as_deref())?;
    caller.require((Res::UserGroup, Act::List), On::Registry)?;
    let groups: Vec<Group> = state
        .registry
        .list_groups()
        .await?
        .into_iter()
        .filter(|g| q.ldap_group_dn.as_ref().is_none_or(|dn| g.ldap_group_dn.eq_ignore_ascii_case(dn)))
        .filter(|g| q.group_name.as_ref().is_none_or(|n| g.group_name.contains(n.as_str())))
        .collect();
    let page = paging.page_slice(groups.len());
    let items: Vec<Value> = groups[page].iter().map(group_json).collect();
    Ok(paging.respond_page("/usergroups", "", groups.len(), &items))
}

/// An LDAP group must exist in the directory (it is onboarded from it);
/// other groups are made by name.
pub async fn create(State(state): State<Arc<AppState>>, caller: Caller, Body(body): Body<GroupBody>) -> ApiResult {
    caller.require((Res::UserGroup, Act::Create), On::Registry)?;
    let group = if body.group_type == LDAP_GROUP {
        if state.registry.group_by_identity(LDAP_GROUP, &body.ldap_group_dn).await?.is_some() {
            return Err(ApiError::new(StatusCode::CONFLICT, "the LDAP group exists already"));
        }
        let settings = state.settings.get().await?;
        let directory = state
            .auth
            .directory(settings.auth_mode())
            .ok_or_else(|| ApiError::bad_request("LDAP groups can be added only when the auth mode is ldap_auth"))?;
        directory.onboard_group(&state.registry, &settings, &body.ldap_group_dn, &body.group_name).await?.ok_or_else(
            || ApiError::new(StatusCode::NOT_FOUND, format!("LDAP group {} not found", body.ldap_group_dn)),
        )?
    } else {
        state.registry.create_group(body.group_type, &body.group_name, "").await?
    };
    created(&format!("{PREFIX}/usergroups/{}", group.id))
}

pub async fn get(State(state): State<Arc<AppState>>, caller: Caller, Id(id): Id) -> ApiResult {
    caller.require((Res::UserGroup, Act::Read), On::Registry)?;
    Ok(Json(group_json(&state.registry.group(id).await?)).into_response())
}

pub async fn update(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Id(id): Id,
    Body(body): Body<GroupBody>,
) -> ApiResult {
    caller.require((Res::UserGroup, Act::Update), On::Registry)?;
    state.registry.rename_group(id, &body.group_name).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn delete(State(state): State<Arc<AppState>>, caller: Caller, Id(id): Id) -> ApiResult {
    caller.require((Res::UserGroup, Act::Delete), On::Registry)?;
    state.registry.delete_group(id).await?;
    state.auth.forget_all();
    Ok(StatusCode::OK.into_response())
}

/// `GET /usergroups/search?groupname=`: any signed-in caller.
pub async fn search(State(state): State<Arc<AppState>>, caller: Caller, Query(q): Query<SearchQuery>) -> ApiResult {
    let paging = Paging::parse(q.page.as_deref(), q.page_size.as_deref())?;
    caller.require_signed_in()?;
    let wanted = q.groupname.unwrap_or_default();
    let groups: Vec<Group> =
        state.registry.list_groups().await?.into_iter().filter(|g| g.group_name.contains(&wanted)).collect();
    let page = paging.page_slice(groups.len());
    let items: Vec<Value> = groups[page]
        .iter()
        .map(|g| json!({ "id": g.id, "group_name": g.group_name, "group_type": g.group_type }))
        .collect();
    Ok(paging.respond_page("/usergroups/search", &format!("&groupname={wanted}"), groups.len(), &items))
}

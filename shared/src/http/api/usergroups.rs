//! `/usergroups`: Harbor's user group API over [`crate::service::groups`].

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiResult, Body, Caller, Id, PREFIX, Paging, created};
use crate::auth::On;
use crate::http::state::AppState;
use crate::rbac::{Act, Res};
use crate::service::groups::{Group, GroupFilter, LDAP_GROUP};
use crate::service::paging::Match;

/// Harbor's `UserGroup`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct GroupView {
    id: i64,
    group_name: String,
    group_type: i64,
    ldap_group_dn: String,
}

impl From<Group> for GroupView {
    fn from(g: Group) -> Self {
        Self { id: g.id, group_name: g.group_name, group_type: g.group_type, ldap_group_dn: g.ldap_group_dn }
    }
}

/// Harbor's `UserGroupSearchItem`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct Found {
    id: i64,
    group_name: String,
    group_type: i64,
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    page: Option<String>,
    page_size: Option<String>,
    cursor: Option<String>,
    sort: Option<String>,
    ldap_group_dn: Option<String>,
    group_name: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
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
    cursor: Option<String>,
    groupname: Option<String>,
}

pub async fn list(State(state): State<Arc<AppState>>, caller: Caller, Query(q): Query<ListQuery>) -> ApiResult {
    let paging = Paging::parse(q.page.as_deref(), q.page_size.as_deref(), q.cursor.as_deref())?.sorted(
        q.sort.as_deref(),
        "id",
        false,
    );
    caller.require((Res::UserGroup, Act::List), On::Registry)?;
    let filter = GroupFilter {
        name: q.group_name.clone().map(Match::Fuzzy),
        ldap_group_dn: q.ldap_group_dn.clone(),
        group_type: None,
    };
    let listing = state.registry.list_groups(&filter, &paging.0).await?;
    let rest: Vec<(&str, &str)> = [("group_name", &q.group_name), ("ldap_group_dn", &q.ldap_group_dn)]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
        .collect();
    Ok(paging.respond("/usergroups", &rest, listing.map(GroupView::from)))
}

/// An LDAP group must exist in the directory (it is onboarded from it);
/// other groups are made by name.
pub async fn create(State(state): State<Arc<AppState>>, caller: Caller, Body(body): Body<GroupBody>) -> ApiResult {
    caller.require((Res::UserGroup, Act::Create), On::Registry)?;
    let group = if body.group_type == LDAP_GROUP {
        if state.registry.group_by_identity(LDAP_GROUP, &body.ldap_group_dn).await?.is_some() {
            return Err(ApiError::new(StatusCode::CONFLICT, "the LDAP group exists already"));
        }
        let settings = state.registry.settings().await?;
        let directory = state
            .auth
            .directory(settings.auth_mode)
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
    Ok(Json(GroupView::from(state.registry.group(id).await?)).into_response())
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
    Ok(StatusCode::OK.into_response())
}

/// `GET /usergroups/search?groupname=`: any signed-in caller.
pub async fn search(State(state): State<Arc<AppState>>, caller: Caller, Query(q): Query<SearchQuery>) -> ApiResult {
    let paging = Paging::parse(q.page.as_deref(), q.page_size.as_deref(), q.cursor.as_deref())?;
    caller.require_signed_in()?;
    let wanted = q.groupname.unwrap_or_default();
    let filter = GroupFilter { name: Some(Match::Fuzzy(wanted.clone())), ..GroupFilter::default() };
    let listing = state.registry.list_groups(&filter, &paging.0).await?;
    let found = listing.map(|g| Found { id: g.id, group_name: g.group_name, group_type: g.group_type });
    Ok(paging.respond("/usergroups/search", &[("groupname", wanted.as_str())], found))
}

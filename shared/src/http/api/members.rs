//! `/projects/{project_name_or_id}/members`: Harbor's project member API
//! over [`crate::service::members`].

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};

use super::projects::{Target, project_for};
use super::{ApiError, ApiResult, Body, Caller, Id, PREFIX, Paging, created};
use crate::http::state::AppState;
use crate::meta::keys::MemberKind;
use crate::rbac::{Act, Res, Role};
use crate::service::ServiceError;
use crate::service::groups::{Group, GroupFilter, LDAP_GROUP};
use crate::service::members::Member;
use crate::service::paging::{Match, PageRequest};
use crate::service::projects::ProjectRef;

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    page: Option<String>,
    page_size: Option<String>,
    cursor: Option<String>,
    entityname: Option<String>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub struct MemberUser {
    #[serde(default)]
    user_id: i64,
    #[serde(default)]
    username: String,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub struct MemberGroup {
    #[serde(default)]
    id: i64,
    #[serde(default)]
    group_name: String,
    #[serde(default)]
    group_type: i64,
    #[serde(default)]
    ldap_group_dn: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct CreateBody {
    #[serde(default)]
    role_id: i64,
    #[serde(default)]
    member_user: Option<MemberUser>,
    #[serde(default)]
    member_group: Option<MemberGroup>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct RoleBody {
    #[serde(default)]
    role_id: i64,
}

/// Harbor's `ProjectMemberEntity`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct MemberView {
    id: i64,
    project_id: i64,
    entity_name: String,
    role_name: &'static str,
    role_id: i64,
    entity_id: i64,
    entity_type: &'static str,
}

impl From<Member> for MemberView {
    fn from(m: Member) -> Self {
        Self {
            id: m.id,
            project_id: m.project_id,
            entity_name: m.entity_name,
            role_name: m.role.name(),
            role_id: m.role.id(),
            entity_id: m.entity_id,
            entity_type: m.kind.code(),
        }
    }
}

fn role(id: i64) -> Result<Role, ApiError> {
    Role::from_id(id).ok_or_else(|| ApiError::bad_request("Failed to update project member, role is not in 1,2,3,4,5"))
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Target(r): Target,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    let paging = Paging::parse(q.page.as_deref(), q.page_size.as_deref(), q.cursor.as_deref())?;
    let (project, _) = project_for(&state, &caller, &r, (Res::Member, Act::List)).await?;
    let name = q.entityname.as_deref().filter(|n| !n.is_empty()).map(|n| Match::Fuzzy(n.to_owned()));
    let listing = state.registry.list_members(&project, name.as_ref(), &paging.0).await?;
    let path = format!("/projects/{}/members", project.project_id);
    let rest: Vec<(&str, &str)> = q.entityname.as_deref().map(|n| ("entityname", n)).into_iter().collect();
    Ok(paging.respond(&path, &rest, listing.map(MemberView::from)))
}

/// The user or group a member request names, onboarding it from the
/// directory of the auth mode when berth does not know it yet.
async fn entity(state: &AppState, body: &CreateBody) -> ApiResult<(MemberKind, i64, String)> {
    let settings = state.registry.settings().await?;
    let directory = state.auth.directory(settings.auth_mode);
    let user = body.member_user.as_ref().filter(|u| u.user_id > 0 || !u.username.is_empty());
    let group =
        body.member_group.as_ref().filter(|g| g.id > 0 || !g.group_name.is_empty() || !g.ldap_group_dn.is_empty());
    if let Some(u) = user {
        let found = if u.user_id > 0 {
            Some(
                state
                    .registry
                    .user(u.user_id)
                    .await
                    .map_err(|_| ApiError::bad_request(format!("User {} not found", u.user_id)))?,
            )
        } else {
            match state.registry.user_by_name(&u.username).await? {
                Some(found) => Some(found),
                None => match directory {
                    Some(d) => d.onboard_user(&state.registry, &settings, &u.username).await?,
                    None => None,
                },
            }
        };
        let found =
            found.ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("user {} not found", u.username)))?;
        return Ok((MemberKind::User, found.user_id, found.username));
    }
    let Some(g) = group else {
        return Err(ApiError::bad_request("at least one of member_user or member_group must be provided"));
    };
    let found: Group = if g.id > 0 {
        state.registry.group(g.id).await.map_err(|_| ApiError::bad_request(format!("Group {} not found", g.id)))?
    } else if !g.ldap_group_dn.is_empty() {
        match state.registry.group_by_identity(LDAP_GROUP, &g.ldap_group_dn).await? {
            Some(found) => found,
            None => {
                let onboarded = match directory {
                    Some(d) => d.onboard_group(&state.registry, &settings, &g.ldap_group_dn, &g.group_name).await?,
                    None => None,
                };
                onboarded.ok_or_else(|| {
                    ApiError::new(StatusCode::NOT_FOUND, format!("LDAP group {} not found", g.ldap_group_dn))
                })?
            }
        }
    } else {
        let filter = GroupFilter {
            name: Some(Match::Exact(g.group_name.clone())),
            group_type: Some(g.group_type).filter(|t| *t != 0),
            ..GroupFilter::default()
        };
        let found = state.registry.list_groups(&filter, &PageRequest::first(1)).await?;
        found
            .items
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("group {} not found", g.group_name)))?
    };
    Ok((MemberKind::Group, found.id, found.group_name))
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Target(r): Target,
    Body(body): Body<CreateBody>,
) -> ApiResult {
    let (project, _) = project_for(&state, &caller, &r, (Res::Member, Act::Create)).await?;
    let role = role(body.role_id)?;
    let (kind, id, name) = entity(&state, &body).await?;
    let member = caller.registry(&state).add_member(&project, kind, id, &name, role).await?;
    let shown = match &r {
        ProjectRef::Name(n) => n.clone(),
        ProjectRef::Id(i) => i.to_string(),
    };
    created(&format!("{PREFIX}/projects/{shown}/members/{}", member.id))
}

pub async fn get(State(state): State<Arc<AppState>>, caller: Caller, Target(r): Target, Id(mid): Id) -> ApiResult {
    let (project, _) = project_for(&state, &caller, &r, (Res::Member, Act::Read)).await?;
    let member = state.registry.member(&project, mid).await?;
    Ok(Json(MemberView::from(member)).into_response())
}

pub async fn update(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Target(r): Target,
    Id(mid): Id,
    Body(body): Body<RoleBody>,
) -> ApiResult {
    let (project, _) = project_for(&state, &caller, &r, (Res::Member, Act::Update)).await?;
    caller.registry(&state).update_member_role(&project, mid, role(body.role_id)?).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn delete(State(state): State<Arc<AppState>>, caller: Caller, Target(r): Target, Id(mid): Id) -> ApiResult {
    let (project, _) = project_for(&state, &caller, &r, (Res::Member, Act::Delete)).await?;
    match caller.registry(&state).delete_member(&project, mid).await {
        Ok(()) => Ok(StatusCode::OK.into_response()),
        Err(ServiceError::NotFound(m)) => Err(ApiError::new(StatusCode::NOT_FOUND, m)),
        Err(e) => Err(e.into()),
    }
}

//! `/users`: Harbor's user API over [`crate::service::users`], including
//! `/users/current`, `/users/current/permissions` and an OIDC user's
//! `/users/{id}/cli_secret`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ApiError, ApiResult, Body, Caller, Id, PREFIX, Paging, created, parse_q, query_bool, rfc3339};
use crate::auth::{On, Subject};
use crate::http::state::AppState;
use crate::rbac::{Act, ROBOT_SYSTEM_GRANTABLE, Res, project_permissions};
use crate::service::paging::Match;
use crate::service::passwords;
use crate::service::projects::ProjectRef;
use crate::service::settings::AuthMode;
use crate::service::users::{ADMIN_ID, NewUser, PasswordChange, User, UserFilter};

/// Length of a CLI secret generated for an empty `secret`.
const CLI_SECRET_LEN: usize = 32;

/// Harbor's `UserResp`: as in Harbor (its fields are `omitempty`), an
/// empty `email`, `realname` or `comment` and a missing `oidc_user_meta`
/// are left out, so clients read them as absent rather than `""` or `null`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct UserView {
    user_id: i64,
    username: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    email: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    realname: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    comment: String,
    sysadmin_flag: bool,
    admin_role_in_auth: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    oidc_user_meta: Option<OidcMeta>,
    creation_time: String,
    update_time: String,
}

/// Harbor's `OIDCUserInfo` of an OIDC user (the CLI secret only for the
/// user itself and administrators).
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct OidcMeta {
    id: Value,
    user_id: Value,
    subiss: Value,
    secret: String,
    creation_time: Option<String>,
    update_time: Option<String>,
}

/// Harbor's `UserResp`, the OIDC user's CLI secret left out.
pub fn user_view(u: &User) -> UserView {
    view_with_secret(u, None)
}

/// Harbor's `UserResp` with the OIDC user's CLI secret, as Harbor shows it
/// when the user itself (or an administrator) reads the user in
/// `oidc_auth` mode.
async fn user_view_revealing(state: &AppState, u: &User) -> ApiResult<UserView> {
    let oidc_mode = state.registry.settings().await?.auth_mode == AuthMode::Oidc;
    let secret = if oidc_mode && u.user_id != ADMIN_ID { state.oidc.reveal_secret(u) } else { None };
    Ok(view_with_secret(u, secret.as_deref()))
}

fn view_with_secret(u: &User, secret: Option<&str>) -> UserView {
    let field = |o: &Value, k: &str, default: Value| o.get(k).cloned().unwrap_or(default);
    let time = |o: &Value, k: &str| o.get(k).and_then(Value::as_i64).map(rfc3339);
    UserView {
        user_id: u.user_id,
        username: u.username.clone(),
        email: u.email.clone(),
        realname: u.realname.clone(),
        comment: u.comment.clone(),
        sysadmin_flag: u.sysadmin,
        admin_role_in_auth: u.admin_in_auth,
        oidc_user_meta: u.oidc.as_ref().map(|o| OidcMeta {
            id: field(o, "id", Value::from(0)),
            user_id: field(o, "user_id", Value::from(0)),
            subiss: field(o, "subiss", Value::from("")),
            secret: secret.unwrap_or_default().to_owned(),
            creation_time: time(o, "creation_time"),
            update_time: time(o, "update_time"),
        }),
        creation_time: rfc3339(u.creation_time),
        update_time: rfc3339(u.update_time),
    }
}

/// One match of Harbor's `/users/search`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct Found {
    user_id: i64,
    username: String,
}

/// One of the caller's permissions (`/users/current/permissions`).
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct PermissionView {
    resource: String,
    action: &'static str,
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    page: Option<String>,
    page_size: Option<String>,
    cursor: Option<String>,
    sort: Option<String>,
    q: Option<String>,
    username: Option<String>,
    email: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct CreateBody {
    username: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    realname: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    password: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ProfileBody {
    #[serde(default)]
    email: String,
    #[serde(default)]
    realname: String,
    #[serde(default)]
    comment: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct SysadminBody {
    sysadmin_flag: bool,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct PasswordBody {
    #[serde(default)]
    old_password: String,
    new_password: String,
}

#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    page: Option<String>,
    page_size: Option<String>,
    cursor: Option<String>,
    username: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct PermissionsQuery {
    scope: Option<String>,
    relative: Option<String>,
}

fn is_self(caller: &Caller, id: i64) -> bool {
    caller.user().is_some_and(|u| u.id == id)
}

/// Reading a user: oneself, or an administrator.
fn require_readable(caller: &Caller, id: i64) -> Result<(), ApiError> {
    if is_self(caller, id) {
        return Ok(());
    }
    caller.require((Res::User, Act::Read), On::Registry)
}

/// Changing a user: the registry must allow changing the account at all
/// (under a directory only the local administrator's), and the caller must
/// be the user or may update users.
async fn require_modifiable(state: &AppState, caller: &Caller, id: i64) -> Result<(), ApiError> {
    caller.require_signed_in()?;
    state.registry.require_changeable(id).await?;
    if is_self(caller, id) {
        return Ok(());
    }
    caller.require((Res::User, Act::Update), On::Registry)
}

pub async fn list(State(state): State<Arc<AppState>>, caller: Caller, Query(q): Query<ListQuery>) -> ApiResult {
    let paging = Paging::parse(q.page.as_deref(), q.page_size.as_deref(), q.cursor.as_deref())?.sorted(
        q.sort.as_deref(),
        "username",
        false,
    );
    caller.require((Res::User, Act::List), On::Registry)?;
    let mut terms = parse_q(q.q.as_deref())?;
    if let Some(u) = &q.username {
        terms.insert("username".to_owned(), Match::Fuzzy(u.clone()));
    }
    if let Some(e) = &q.email {
        terms.insert("email".to_owned(), Match::Fuzzy(e.clone()));
    }
    let filter = UserFilter { username: terms.remove("username"), email: terms.remove("email") };
    let listing = state.registry.list_users(&filter, &paging.0).await?;
    let rest: Vec<(&str, &str)> = [("q", &q.q), ("sort", &q.sort), ("username", &q.username), ("email", &q.email)]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
        .collect();
    Ok(paging.respond("/users", &rest, listing.map(|u| user_view(&u))))
}

/// Creating a local user: administrators, or anyone when self-registration
/// is on; only in `db_auth` mode.
pub async fn create(State(state): State<Arc<AppState>>, caller: Caller, Body(body): Body<CreateBody>) -> ApiResult {
    if !state.registry.settings().await?.self_registration {
        caller.require((Res::User, Act::Create), On::Registry)?;
    }
    let new = NewUser {
        username: body.username,
        email: body.email,
        realname: body.realname,
        comment: body.comment,
        password: Some(body.password),
    };
    let user = caller.registry(&state).create_local_user(new).await?;
    created(&format!("{PREFIX}/users/{}", user.user_id))
}

pub async fn get(State(state): State<Arc<AppState>>, caller: Caller, Id(id): Id) -> ApiResult {
    require_readable(&caller, id)?;
    let user = state.registry.user(id).await?;
    Ok(Json(user_view_revealing(&state, &user).await?).into_response())
}

pub async fn update(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Id(id): Id,
    Body(body): Body<ProfileBody>,
) -> ApiResult {
    require_modifiable(&state, &caller, id).await?;
    caller.registry(&state).update_profile(id, &body.email, &body.realname, &body.comment).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn delete(State(state): State<Arc<AppState>>, caller: Caller, Id(id): Id) -> ApiResult {
    caller.require((Res::User, Act::Delete), On::Registry)?;
    caller.registry(&state).delete_user(id, caller.user().map(|u| u.id)).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn set_sysadmin(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Id(id): Id,
    Body(body): Body<SysadminBody>,
) -> ApiResult {
    caller.require((Res::User, Act::Update), On::Registry)?;
    caller.registry(&state).set_sysadmin(id, body.sysadmin_flag).await?;
    Ok(StatusCode::OK.into_response())
}

/// Changing a password: one's own with the current password; an
/// administrator may reset another user's without it.
pub async fn set_password(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Id(id): Id,
    Body(body): Body<PasswordBody>,
) -> ApiResult {
    require_modifiable(&state, &caller, id).await?;
    let change =
        if is_self(&caller, id) { PasswordChange::Own { current: &body.old_password } } else { PasswordChange::Reset };
    caller.registry(&state).change_password(id, change, &body.new_password).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn search(State(state): State<Arc<AppState>>, caller: Caller, Query(q): Query<SearchQuery>) -> ApiResult {
    let paging = Paging::parse(q.page.as_deref(), q.page_size.as_deref(), q.cursor.as_deref())?;
    caller.require_signed_in()?;
    let wanted = q.username.unwrap_or_default();
    let filter = UserFilter { username: Some(Match::Fuzzy(wanted.clone())), ..UserFilter::default() };
    let listing = state.registry.list_users(&filter, &paging.0).await?;
    let found = listing.map(|u| Found { user_id: u.user_id, username: u.username });
    Ok(paging.respond("/users/search", &[("username", wanted.as_str())], found))
}

pub async fn current(State(state): State<Arc<AppState>>, caller: Caller) -> ApiResult {
    let user = match &caller.0 {
        Subject::User(u) => u.clone(),
        Subject::Anonymous => return Err(ApiError::new(StatusCode::UNAUTHORIZED, "authentication required")),
        _ => {
            return Err(ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "get current user not available for a robot account",
            ));
        }
    };
    let user = state.registry.user(user.id).await?;
    Ok(Json(user_view_revealing(&state, &user).await?).into_response())
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct CliSecretBody {
    #[serde(default)]
    secret: String,
}

/// `PUT /users/{user_id}/cli_secret` `{"secret": "…"}`: sets an OIDC user's
/// CLI secret (an empty one is generated); oneself or an administrator,
/// only in `oidc_auth` mode. The old secret stops working at once.
pub async fn set_cli_secret(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Id(id): Id,
    Body(body): Body<CliSecretBody>,
) -> ApiResult {
    let settings = state.registry.settings().await?;
    if settings.auth_mode != AuthMode::Oidc {
        return Err(ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            format!("unable to update CLI secret under authmode: {}", settings.auth_mode),
        ));
    }
    if !is_self(&caller, id) {
        caller.require((Res::User, Act::Update), On::Registry)?;
    }
    let secret = if body.secret.is_empty() { passwords::generate(CLI_SECRET_LEN) } else { body.secret };
    state.oidc.set_cli_secret(&state.registry, id, &secret).await?;
    Ok(StatusCode::OK.into_response())
}

/// `GET /users/current/permissions?scope=/project/1&relative=true`: what
/// the caller may do in a project (or, with `scope=/system`, on the
/// registry). As in Harbor, the scope picks the namespace (the project of
/// `/project/{id}/…`, or the system) and every permission the caller holds
/// there is listed by its full resource (`/project/1/repository`); with
/// `relative`, only the resources at or under the scope are kept, written
/// relative to it (`.` for the scope itself).
pub async fn permissions(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(q): Query<PermissionsQuery>,
) -> ApiResult {
    caller.require_signed_in()?;
    let scope = q.scope.unwrap_or_default();
    let relative = q.relative.as_deref().is_some_and(query_bool);
    let mut granted: Vec<(String, Act)> = Vec::new();
    if scope == "/system" || scope.starts_with("/system/") {
        for perm in ROBOT_SYSTEM_GRANTABLE {
            if caller.require(*perm, On::Registry).is_ok() {
                granted.push((format!("/system/{}", perm.0), perm.1));
            }
        }
    } else if let Some(rest) = scope.strip_prefix("/project/") {
        let id = rest.split('/').next().unwrap_or_default();
        let r = match id.parse::<i64>() {
            Ok(id) => ProjectRef::Id(id),
            Err(_) => ProjectRef::Name(id.to_owned()),
        };
        if let Ok(project) = state.registry.project(&r).await {
            let access = caller.access(&state, &project).await?;
            let root = format!("/project/{id}");
            for perm in project_permissions() {
                if caller.require(perm, On::Project(&access)).is_ok() {
                    let resource = if perm.0 == Res::Project { root.clone() } else { format!("{root}/{}", perm.0) };
                    granted.push((resource, perm.1));
                }
            }
        }
    }
    let out: Vec<PermissionView> = granted
        .into_iter()
        .filter_map(|(resource, action)| {
            let resource = if relative { relative_to(&resource, &scope)? } else { resource };
            Some(PermissionView { resource, action: action.as_str() })
        })
        .collect();
    Ok(Json(out).into_response())
}

/// Harbor's `Resource.RelativeTo`: `resource` without the `scope` prefix
/// and its `/`, `.` when they are equal, nothing when `scope` is no prefix
/// of it.
fn relative_to(resource: &str, scope: &str) -> Option<String> {
    let rest = resource.strip_prefix(scope)?;
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    Some(if rest.is_empty() { ".".to_owned() } else { rest.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::relative_to;

    #[test]
    fn resources_relative_to_a_scope() {
        assert_eq!(relative_to("/project/1/repository", "/project/1/repository").as_deref(), Some("."));
        assert_eq!(relative_to("/project/1/repository", "/project/1").as_deref(), Some("repository"));
        assert_eq!(relative_to("/project/1", "/project/1").as_deref(), Some("."));
        assert_eq!(relative_to("/project/1/member", "/project/1/repository"), None);
        assert_eq!(relative_to("/project/1", "/project/1/"), None);
    }
}

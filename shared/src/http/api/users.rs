//! `/users`: Harbor's user API over [`crate::service::users`], including
//! `/users/current`, `/users/current/permissions` and an OIDC user's
//! `/users/{id}/cli_secret`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiResult, Body, Caller, Id, PREFIX, Paging, created, parse_q, q_matches, rfc3339};
use crate::auth::rbac::{Act, Perm, ROBOT_SYSTEM_GRANTABLE, Res, project_permissions};
use crate::auth::{On, Subject};
use crate::http::state::AppState;
use crate::service::passwords;
use crate::service::projects::ProjectRef;
use crate::service::users::{ADMIN_ID, NewUser, Source, User};

/// Length of a CLI secret generated for an empty `secret`.
const CLI_SECRET_LEN: usize = 32;

/// Harbor's `UserResp` (an OIDC user's CLI secret left out).
pub fn user_json(u: &User) -> Value {
    user_view(u, None)
}

/// Harbor's `UserResp` with the OIDC user's CLI secret, as Harbor shows it
/// when the user itself (or an administrator) reads the user in
/// `oidc_auth` mode.
async fn user_json_revealing(state: &AppState, u: &User) -> ApiResult<Value> {
    let oidc_mode = state.settings.get().await?.auth_mode() == "oidc_auth";
    let secret = if oidc_mode && u.user_id != ADMIN_ID { state.oidc.reveal_secret(u) } else { None };
    Ok(user_view(u, secret.as_deref()))
}

fn user_view(u: &User, secret: Option<&str>) -> Value {
    json!({
        "user_id": u.user_id,
        "username": u.username,
        "email": u.email,
        "realname": u.realname,
        "comment": u.comment,
        "sysadmin_flag": u.sysadmin,
        "admin_role_in_auth": u.admin_in_auth,
        "oidc_user_meta": u.oidc.as_ref().map(|o| oidc_meta(o, secret)),
        "creation_time": rfc3339(u.creation_time),
        "update_time": rfc3339(u.update_time),
    })
}

/// Harbor's `OIDCUserInfo` of an OIDC user (the CLI secret when given:
/// only the user and administrators read a user).
fn oidc_meta(oidc: &Value, secret: Option<&str>) -> Value {
    json!({
        "id": oidc.get("id").cloned().unwrap_or(Value::from(0)),
        "user_id": oidc.get("user_id").cloned().unwrap_or(Value::from(0)),
        "subiss": oidc.get("subiss").cloned().unwrap_or(Value::from("")),
        "secret": secret.unwrap_or_default(),
        "creation_time": oidc.get("creation_time").and_then(Value::as_i64).map(rfc3339),
        "update_time": oidc.get("update_time").and_then(Value::as_i64).map(rfc3339),
    })
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    page: Option<String>,
    page_size: Option<String>,
    q: Option<String>,
    username: Option<String>,
    email: Option<String>,
}

#[derive(Debug, Deserialize)]
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

#[derive(Debug, Deserialize)]
pub struct ProfileBody {
    #[serde(default)]
    email: String,
    #[serde(default)]
    realname: String,
    #[serde(default)]
    comment: String,
}

#[derive(Debug, Deserialize)]
pub struct SysadminBody {
    sysadmin_flag: bool,
}

#[derive(Debug, Deserialize)]
pub struct PasswordBody {
    #[serde(default)]
    old_password: String,
    new_password: String,
}

#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    page: Option<String>,
    page_size: Option<String>,
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

/// Changing a user: in `db_auth` mode oneself or an administrator; under a
/// directory only the local administrator's account, by an administrator.
async fn require_modifiable(state: &AppState, caller: &Caller, id: i64) -> Result<(), ApiError> {
    caller.require_signed_in()?;
    let settings = state.settings.get().await?;
    if settings.auth_mode() == "db_auth" {
        if is_self(caller, id) {
            return Ok(());
        }
        return caller.require((Res::User, Act::Update), On::Registry);
    }
    if id != ADMIN_ID {
        return Err(ApiError::new(StatusCode::FORBIDDEN, format!("User with ID {id} can't be updated")));
    }
    caller.require((Res::User, Act::Update), On::Registry)
}

pub async fn list(State(state): State<Arc<AppState>>, caller: Caller, Query(q): Query<ListQuery>) -> ApiResult {
    let paging = Paging::parse(q.page.as_deref(), q.page_size.as_deref())?;
    caller.require((Res::User, Act::List), On::Registry)?;
    let mut filters = q.q.as_deref().map(parse_q).unwrap_or_default();
    if let Some(u) = q.username.clone() {
        filters.push(("username".to_owned(), u, true));
    }
    if let Some(e) = q.email.clone() {
        filters.push(("email".to_owned(), e, true));
    }
    let names = state.registry.user_names().await?;
    if filters.iter().all(|(k, _, _)| k == "username") {
        // Only name filters: read just the page's users.
        let names: Vec<String> =
            names.into_iter().filter(|n| filters.iter().all(|(_, v, fuzzy)| q_matches(n, v, *fuzzy))).collect();
        let page = paging.page_slice(names.len());
        let items: Vec<Value> = state.registry.users_named(&names[page]).await?.iter().map(user_json).collect();
        return Ok(paging.respond_page("/users", "", names.len(), &items));
    }
    let users: Vec<User> = state
        .registry
        .users_named(&names)
        .await?
        .into_iter()
        .filter(|u| {
            filters.iter().all(|(k, v, fuzzy)| match k.as_str() {
                "username" => q_matches(&u.username, v, *fuzzy),
                "email" => q_matches(&u.email, v, *fuzzy),
                _ => true,
            })
        })
        .collect();
    let page = paging.page_slice(users.len());
    let items: Vec<Value> = users[page].iter().map(user_json).collect();
    Ok(paging.respond_page("/users", "", users.len(), &items))
}

/// Creating a local user: administrators, or anyone when self-registration
/// is on; only in `db_auth` mode.
pub async fn create(State(state): State<Arc<AppState>>, caller: Caller, Body(body): Body<CreateBody>) -> ApiResult {
    let settings = state.settings.get().await?;
    if settings.auth_mode() != "db_auth" {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("creating local user is not allowed under auth mode: {}", settings.auth_mode()),
        ));
    }
    if !settings.bool("self_registration") {
        caller.require((Res::User, Act::Create), On::Registry)?;
    }
    let new = NewUser {
        username: body.username,
        email: body.email,
        realname: body.realname,
        comment: body.comment,
        password: Some(body.password),
    };
    let user = state.registry.create_user(new, Source::Db, settings.robot_prefix()).await?;
    created(&format!("{PREFIX}/users/{}", user.user_id))
}

pub async fn get(State(state): State<Arc<AppState>>, caller: Caller, Id(id): Id) -> ApiResult {
    require_readable(&caller, id)?;
    let user = state.registry.user(id).await?;
    Ok(Json(user_json_revealing(&state, &user).await?).into_response())
}

pub async fn update(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Id(id): Id,
    Body(body): Body<ProfileBody>,
) -> ApiResult {
    require_modifiable(&state, &caller, id).await?;
    state.registry.update_profile(id, &body.email, &body.realname, &body.comment).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn delete(State(state): State<Arc<AppState>>, caller: Caller, Id(id): Id) -> ApiResult {
    caller.require((Res::User, Act::Delete), On::Registry)?;
    if is_self(&caller, id) || id == ADMIN_ID {
        return Err(ApiError::new(StatusCode::FORBIDDEN, format!("User with ID {id} cannot be deleted")));
    }
    state.registry.delete_user(id).await?;
    state.auth.forget_all();
    Ok(StatusCode::OK.into_response())
}

pub async fn set_sysadmin(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Id(id): Id,
    Body(body): Body<SysadminBody>,
) -> ApiResult {
    caller.require((Res::User, Act::Update), On::Registry)?;
    state.registry.set_sysadmin(id, body.sysadmin_flag).await?;
    state.auth.forget_all();
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
    if is_self(&caller, id) {
        let me = state.registry.user(id).await?;
        if state.registry.verify_password(&me.username, &body.old_password).await?.is_none() {
            return Err(ApiError::new(StatusCode::FORBIDDEN, "Current password is incorrect"));
        }
    }
    state.registry.set_password(id, &body.new_password).await?;
    state.auth.forget_all();
    Ok(StatusCode::OK.into_response())
}

pub async fn search(State(state): State<Arc<AppState>>, caller: Caller, Query(q): Query<SearchQuery>) -> ApiResult {
    let paging = Paging::parse(q.page.as_deref(), q.page_size.as_deref())?;
    caller.require_signed_in()?;
    let wanted = q.username.unwrap_or_default();
    let names: Vec<String> = state.registry.user_names().await?.into_iter().filter(|n| n.contains(&wanted)).collect();
    let page = paging.page_slice(names.len());
    let items: Vec<Value> = state
        .registry
        .users_named(&names[page])
        .await?
        .iter()
        .map(|u| json!({ "user_id": u.user_id, "username": u.username }))
        .collect();
    Ok(paging.respond_page("/users/search", &format!("&username={wanted}"), names.len(), &items))
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
    Ok(Json(user_json_revealing(&state, &user).await?).into_response())
}

#[derive(Debug, Deserialize)]
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
    let settings = state.settings.get().await?;
    if settings.auth_mode() != "oidc_auth" {
        return Err(ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            format!("unable to update CLI secret under authmode: {}", settings.auth_mode()),
        ));
    }
    if !is_self(&caller, id) {
        caller.require((Res::User, Act::Update), On::Registry)?;
    }
    let secret = if body.secret.is_empty() { passwords::generate(CLI_SECRET_LEN) } else { body.secret };
    state.oidc.set_cli_secret(&state.registry, id, &secret).await?;
    state.auth.forget_all();
    Ok(StatusCode::OK.into_response())
}

/// `GET /users/current/permissions?scope=/project/1&relative=true`: what
/// the caller may do in a project (or, with `scope=/system`, on the
/// registry).
pub async fn permissions(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(q): Query<PermissionsQuery>,
) -> ApiResult {
    caller.require_signed_in()?;
    let scope = q.scope.unwrap_or_default();
    let scope = scope.trim_end_matches('/');
    let relative = q.relative.as_deref() == Some("true");
    let path = |perm: &Perm, base: &str, own: bool| -> String {
        match (relative, own) {
            (true, true) => ".".to_owned(),
            (true, false) => perm.0.as_str().to_owned(),
            (false, true) => base.to_owned(),
            (false, false) => format!("{base}/{}", perm.0),
        }
    };
    let mut out = Vec::new();
    if scope == "/system" {
        for perm in ROBOT_SYSTEM_GRANTABLE {
            if caller.require(*perm, On::Registry).is_ok() {
                out.push(json!({ "resource": path(perm, scope, false), "action": perm.1.as_str() }));
            }
        }
    } else if let Some(id) = scope.strip_prefix("/project/") {
        let r = match id.parse::<i64>() {
            Ok(id) => ProjectRef::Id(id),
            Err(_) => ProjectRef::Name(id.to_owned()),
        };
        if let Ok(project) = state.registry.project(&r).await {
            let access = caller.access(&state, &project).await?;
            for perm in project_permissions() {
                if caller.require(perm, On::Project(&access)).is_ok() {
                    let own = perm.0 == Res::Project;
                    out.push(json!({ "resource": path(&perm, scope, own), "action": perm.1.as_str() }));
                }
            }
        }
    }
    Ok(Json(out).into_response())
}

//! `/ldap`: Harbor's LDAP API, for administrators: `ping` tests LDAP
//! settings, `users/search` and `groups/search` look in the directory,
//! `users/import` onboards users by name. The look-ups are
//! [`crate::auth::ldap`]'s; this file reads requests and shapes answers as
//! Harbor does (`LdapPingResult`, `LdapUser`, `LdapFailedImportUser`,
//! `UserGroup`).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiResult, Body, Caller};
use crate::auth::On;
use crate::auth::ldap::{self, LdapConfig, LdapFailure, LdapGroup};
use crate::http::state::AppState;
use crate::rbac::{Act, Res};

/// The answer when the directory could not be asked: the administrator
/// sees why (the messages never hold a password).
fn failure(e: LdapFailure) -> ApiError {
    match e {
        LdapFailure::Settings(m) => ApiError::bad_request(format!("LDAP settings: {m}")),
        e => {
            tracing::warn!(error = %e, "ldap look-up failed");
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("LDAP: {e}"))
        }
    }
}

/// Harbor's `LdapConf`: settings to test instead of the stored ones.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub struct PingBody {
    ldap_url: Option<String>,
    ldap_search_dn: Option<String>,
    ldap_search_password: Option<String>,
    ldap_base_dn: Option<String>,
    ldap_filter: Option<String>,
    ldap_uid: Option<String>,
    ldap_scope: Option<i64>,
    ldap_connection_timeout: Option<i64>,
    ldap_verify_cert: Option<bool>,
}

impl PingBody {
    /// The stored settings with these on top; a missing or empty search
    /// password keeps the stored one (Harbor's UI never sends it back).
    fn apply(self, mut cfg: LdapConfig) -> Result<LdapConfig, ApiError> {
        let set = |target: &mut String, value: Option<String>| {
            if let Some(v) = value {
                *target = v;
            }
        };
        set(&mut cfg.url, self.ldap_url);
        set(&mut cfg.search_dn, self.ldap_search_dn);
        set(&mut cfg.search_password, self.ldap_search_password.filter(|p| !p.is_empty()));
        set(&mut cfg.base_dn, self.ldap_base_dn);
        set(&mut cfg.filter, self.ldap_filter);
        set(&mut cfg.uid, self.ldap_uid);
        if let Some(scope) = self.ldap_scope {
            if !(0..=2).contains(&scope) {
                return Err(ApiError::bad_request("ldap_scope must be 0 (base), 1 (one level) or 2 (subtree)"));
            }
            cfg.scope = scope;
        }
        if let Some(secs) = self.ldap_connection_timeout {
            if secs <= 0 {
                return Err(ApiError::bad_request("ldap_connection_timeout must be a positive number of seconds"));
            }
            cfg.timeout = ldap::timeout_secs(secs);
        }
        if let Some(verify) = self.ldap_verify_cert {
            cfg.verify_cert = verify;
        }
        Ok(cfg)
    }
}

/// Harbor's `LdapPingResult`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct PingResult {
    success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

/// Harbor's `LdapUser`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct LdapUserView {
    username: String,
    realname: String,
    email: String,
}

/// Harbor's `LdapFailedImportUser`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct FailedImport {
    uid: String,
    error: String,
}

/// Harbor's `UserGroup` of an LDAP search.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct LdapGroupView {
    group_name: String,
    ldap_group_dn: String,
}

/// `POST /ldap/ping`: connects and binds with the settings given (or the
/// stored ones); always 200 with `success` and, on failure, `message`.
pub async fn ping(State(state): State<Arc<AppState>>, caller: Caller, body: Bytes) -> ApiResult {
    caller.require((Res::Configuration, Act::Read), On::Registry)?;
    let given: PingBody = if body.iter().all(u8::is_ascii_whitespace) {
        PingBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("invalid LDAP settings: {e}")))?
    };
    let cfg = given.apply(LdapConfig::from_settings(&*state.registry.settings().await?))?;
    let answer = match ldap::ping(&cfg).await {
        Ok(()) => PingResult { success: true, message: None },
        Err(e) => PingResult { success: false, message: Some(format!("error: {e}")) },
    };
    Ok(Json(answer).into_response())
}

#[derive(Debug, Deserialize)]
pub struct UserQuery {
    username: Option<String>,
}

/// `GET /ldap/users/search?username=`: the matching users (every user for
/// no name) as Harbor's `LdapUser`.
pub async fn search_users(State(state): State<Arc<AppState>>, caller: Caller, Query(q): Query<UserQuery>) -> ApiResult {
    caller.require((Res::LdapUser, Act::List), On::Registry)?;
    let cfg = LdapConfig::from_settings(&*state.registry.settings().await?);
    let users = ldap::search_users(&cfg, q.username.as_deref().unwrap_or_default()).await.map_err(failure)?;
    let items: Vec<LdapUserView> = users
        .into_iter()
        .map(|u| LdapUserView { username: u.username, realname: u.realname, email: u.email })
        .collect();
    Ok(Json(items).into_response())
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ImportBody {
    ldap_uid_list: Vec<String>,
}

/// `POST /ldap/users/import`: onboards the users; 200 when all were, else
/// 404 with those that were not and why (Harbor's `LdapFailedImportUser`).
pub async fn import_users(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Body(body): Body<ImportBody>,
) -> ApiResult {
    caller.require((Res::LdapUser, Act::Create), On::Registry)?;
    let settings = state.registry.settings().await?;
    if settings.auth_mode != crate::service::settings::AuthMode::Ldap {
        return Err(ApiError::bad_request(format!(
            "LDAP users can be imported only when the auth mode is ldap_auth, not {}",
            settings.auth_mode
        )));
    }
    let cfg = LdapConfig::from_settings(&settings);
    let failed = ldap::import_users(&state.registry, &cfg, &body.ldap_uid_list).await.map_err(failure)?;
    if failed.is_empty() {
        return Ok(StatusCode::OK.into_response());
    }
    let items: Vec<FailedImport> = failed.into_iter().map(|f| FailedImport { uid: f.uid, error: f.error }).collect();
    Ok((StatusCode::NOT_FOUND, Json(items)).into_response())
}

#[derive(Debug, Deserialize)]
pub struct GroupQuery {
    groupname: Option<String>,
    groupdn: Option<String>,
}

/// `GET /ldap/groups/search?groupname=|groupdn=`: the groups by name (under
/// the group base) or the one at a DN, as Harbor's `UserGroup`; 404 when
/// none is found.
pub async fn search_groups(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(q): Query<GroupQuery>,
) -> ApiResult {
    caller.require((Res::LdapUser, Act::List), On::Registry)?;
    let cfg = LdapConfig::from_settings(&*state.registry.settings().await?);
    let name = q.groupname.unwrap_or_default();
    let dn = q.groupdn.unwrap_or_default();
    let groups: Vec<LdapGroup> = if !name.trim().is_empty() {
        ldap::search_groups(&cfg, &name).await.map_err(failure)?
    } else if !dn.trim().is_empty() {
        if !ldap::is_dn(&dn) {
            return Err(ApiError::bad_request(format!("invalid DN: {dn}")));
        }
        ldap::group(&cfg, &dn).await.map_err(failure)?.into_iter().collect()
    } else {
        Vec::new()
    };
    if groups.is_empty() {
        return Err(ApiError::new(StatusCode::NOT_FOUND, format!("group name:{name}, group DN:{dn}")));
    }
    let items: Vec<LdapGroupView> =
        groups.into_iter().map(|g| LdapGroupView { group_name: g.name, ldap_group_dn: g.dn }).collect();
    Ok(Json(items).into_response())
}

//! `/users/current`: who the caller is, in Harbor's `UserResp` shape.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;

use super::{ApiError, Caller, rfc3339};
use crate::auth::Subject;
use crate::http::state::AppState;
use crate::meta::keys;

pub async fn current(State(state): State<Arc<AppState>>, caller: Caller) -> Result<impl IntoResponse, ApiError> {
    let Subject::User { name, sysadmin } = &caller.0 else {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "authentication required"));
    };
    let (pk, sk) = keys::user(name);
    let user = state
        .registry
        .meta
        .get(&pk, sk)
        .await
        .map_err(|e| ApiError::from(crate::service::ServiceError::from(e)))?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("user {name} not found")))?;
    let created = user.i64("created_at").unwrap_or(0);
    let realname = user.attrs.get("profile").and_then(|p| p.get("realname")).and_then(|v| v.as_str()).unwrap_or("");
    Ok(axum::Json(json!({
        "user_id": if name == crate::service::accounts::ADMIN { 1 } else { 0 },
        "username": name,
        "email": user.str("email").unwrap_or(""),
        "realname": realname,
        "comment": "",
        "sysadmin_flag": sysadmin,
        "admin_role_in_auth": false,
        "oidc_user_meta": null,
        "creation_time": rfc3339(created),
        "update_time": rfc3339(created)
    })))
}

//! `/configurations`: the system settings of
//! [`crate::service::settings`], for administrators. `GET` shows every
//! setting but the secrets; `PUT` changes the settings it names, each
//! checked against its declared type.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Map, Value};

use super::{ApiError, ApiResult, Body, Caller};
use crate::auth::On;
use crate::auth::rbac::{Act, Res};
use crate::http::state::AppState;
use crate::service::ServiceError;
use crate::service::settings::normalise;

/// Harbor guards its configuration with the system-level configuration
/// permission, which only administrators hold.
fn require_admin(caller: &Caller) -> Result<(), ApiError> {
    caller.require((Res::Configuration, Act::Read), On::Registry)
}

pub async fn get(State(state): State<Arc<AppState>>, caller: Caller) -> ApiResult {
    require_admin(&caller)?;
    Ok(Json(Value::Object(state.settings.get().await?.public_view())).into_response())
}

pub async fn update(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Body(body): Body<Map<String, Value>>,
) -> ApiResult {
    require_admin(&caller)?;
    let mut changes = Map::new();
    for (k, v) in &body {
        changes.insert(k.clone(), normalise(k, v)?);
    }
    if let Some(mode) = changes.get("auth_mode").and_then(Value::as_str)
        && !state.auth.auth_modes().contains(&mode)
    {
        return Err(ApiError::bad_request(format!("auth mode {mode} is not available in this build")));
    }
    let others = state.registry.has_other_users().await?;
    state
        .settings
        .update(changes, |before, after| {
            if before.auth_mode() != after.auth_mode() && others {
                return Err(ServiceError::Invalid(
                    "the auth mode cannot be modified as new users have been inserted into database".to_owned(),
                ));
            }
            Ok(())
        })
        .await?;
    state.auth.forget_all();
    Ok(StatusCode::OK.into_response())
}

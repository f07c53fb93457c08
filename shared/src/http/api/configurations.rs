//! `/configurations`: the system settings of
//! [`crate::service::settings`], for administrators. `GET` shows every
//! setting but the secrets; `PUT` changes the settings it names, each
//! checked against its declared type (names berth does not know are
//! ignored, as Harbor ignores them).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Map, Value};

use super::{ApiError, ApiResult, Body, Caller};
use crate::auth::On;
use crate::http::state::AppState;
use crate::rbac::{Act, Res};

/// Harbor guards its configuration with the system-level configuration
/// permission, which only administrators hold.
fn require_admin(caller: &Caller) -> Result<(), ApiError> {
    caller.require((Res::Configuration, Act::Read), On::Registry)
}

pub async fn get(State(state): State<Arc<AppState>>, caller: Caller) -> ApiResult {
    require_admin(&caller)?;
    Ok(Json(Value::Object(state.registry.settings().await?.public_view())).into_response())
}

/// `GET /internalconfig`: Harbor's components read the whole
/// configuration here with an internal credential; berth's workers read
/// the table themselves, so it answers administrators only, with the same
/// settings.
pub async fn internal(State(state): State<Arc<AppState>>, caller: Caller) -> ApiResult {
    get(State(state), caller).await
}

pub async fn update(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Body(body): Body<Map<String, Value>>,
) -> ApiResult {
    require_admin(&caller)?;
    caller.registry(&state).update_settings(&body, &state.auth.auth_modes()).await?;
    Ok(StatusCode::OK.into_response())
}

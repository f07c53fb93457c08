//! `/projects/{p}/cosign-keys` (berth's own, beyond Harbor): the cosign
//! public keys a project's content trust verifies signatures with
//! ([`crate::service::cosign_keys`]). Members read them; changing them
//! takes the project's `update`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};

use super::projects::{Target, project_for};
use super::{ApiResult, Body, Caller};
use crate::http::state::AppState;
use crate::rbac::{Act, Res};
use crate::service::cosign_keys::CosignKeys;

/// The keys, as PEM (`-----BEGIN PUBLIC KEY-----`, ECDSA P-256).
#[derive(Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct KeysView {
    #[serde(default)]
    keys: Vec<String>,
}

pub async fn get(State(state): State<Arc<AppState>>, caller: Caller, Target(target): Target) -> ApiResult {
    let (project, _) = project_for(&state, &caller, &target, (Res::Project, Act::Read)).await?;
    let keys = state.registry.cosign_keys(&project.name).await?.keys;
    Ok(Json(KeysView { keys }).into_response())
}

pub async fn put(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Target(target): Target,
    Body(body): Body<KeysView>,
) -> ApiResult {
    let (project, _) = project_for(&state, &caller, &target, (Res::Project, Act::Update)).await?;
    let saved = caller.registry(&state).set_cosign_keys(&project.name, CosignKeys { keys: body.keys }).await?;
    Ok(Json(KeysView { keys: saved.keys }).into_response())
}

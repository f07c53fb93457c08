//! `/system/CVEAllowlist`, and the `cve_allowlist` of a project's JSON:
//! Harbor's `CVEAllowlist` over [`crate::service::cve_allowlist`].

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};

use super::{ApiResult, Body, Caller, rfc3339};
use crate::auth::On;
use crate::http::state::AppState;
use crate::rbac::{Act, Res};
use crate::service::cve_allowlist::CveAllowlist;

/// Harbor's `CVEAllowlistItem`.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub(super) struct ItemView {
    #[serde(default)]
    cve_id: String,
}

/// Harbor's `CVEAllowlist` (the system's has project id 0).
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct AllowlistView {
    id: i64,
    project_id: i64,
    expires_at: Option<i64>,
    items: Vec<ItemView>,
    creation_time: String,
    update_time: String,
}

pub(super) fn view(list: Option<&CveAllowlist>, project_id: i64, created: i64, updated: i64) -> AllowlistView {
    let empty = CveAllowlist::default();
    let list = list.unwrap_or(&empty);
    let or = |t: i64, d: i64| if t > 0 { t } else { d };
    AllowlistView {
        id: project_id,
        project_id,
        expires_at: list.expires_at,
        items: list.items.iter().map(|c| ItemView { cve_id: c.clone() }).collect(),
        creation_time: rfc3339(or(list.creation_time, created)),
        update_time: rfc3339(or(list.update_time, updated)),
    }
}

/// What a request gives for a list (its `id` and `project_id` are
/// ignored, as Harbor ignores them).
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub(super) struct AllowlistBody {
    expires_at: Option<i64>,
    items: Option<Vec<ItemView>>,
}

impl AllowlistBody {
    pub(super) fn into_list(self) -> crate::service::ServiceResult<CveAllowlist> {
        CveAllowlist::new(self.items.unwrap_or_default().into_iter().map(|i| i.cve_id), self.expires_at)
    }
}

/// Readable by every signed-in user.
pub async fn get(State(state): State<Arc<AppState>>, caller: Caller) -> ApiResult {
    caller.require_signed_in()?;
    let list = state.registry.system_cve_allowlist().await?;
    Ok(Json(view(Some(&list), 0, list.creation_time, list.update_time)).into_response())
}

/// Replaced whole, by a system administrator.
pub async fn put(State(state): State<Arc<AppState>>, caller: Caller, Body(body): Body<AllowlistBody>) -> ApiResult {
    caller.require((Res::Configuration, Act::Update), On::Registry)?;
    caller.registry(&state).set_system_cve_allowlist(body.into_list()?).await?;
    Ok(StatusCode::OK.into_response())
}

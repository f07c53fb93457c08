//! `/ping`, `/health` and `/systeminfo`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use serde_json::json;

use super::ApiResult;
use crate::config::Backend;
use crate::http::state::AppState;

/// Harbor's name for where blobs live.
fn storage_provider(state: &AppState) -> &'static str {
    match state.ctx.config.backend {
        Backend::Local => "filesystem",
        Backend::Aws => "s3",
    }
}

pub async fn ping() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"))], "Pong")
}

/// Harbor's overall health with one entry per component berth has.
pub async fn health(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let storage = storage_provider(&state);
    axum::Json(json!({
        "status": "healthy",
        "components": [
            { "name": "core", "status": "healthy" },
            { "name": "registry", "status": "healthy" },
            { "name": "database", "status": "healthy" },
            { "name": "jobservice", "status": "healthy" },
            { "name": format!("storage-{storage}"), "status": "healthy" }
        ]
    }))
}

/// Harbor's `GeneralInfo`, with the fields that apply to berth.
pub async fn systeminfo(State(state): State<Arc<AppState>>) -> ApiResult {
    let storage = storage_provider(&state);
    let settings = state.settings.get().await?;
    let oidc = settings.auth_mode() == "oidc_auth";
    Ok(axum::Json(json!({
        "auth_mode": settings.auth_mode(),
        "primary_auth_mode": settings.bool("primary_auth_mode"),
        "project_creation_restriction": settings.str("project_creation_restriction"),
        "self_registration": settings.bool("self_registration"),
        "oidc_provider_name": if oidc { settings.str("oidc_name") } else { "" },
        "has_ca_root": false,
        "harbor_version": concat!("v2.13.0-berth-", env!("CARGO_PKG_VERSION")),
        "registry_storage_provider_name": storage,
        "read_only": settings.bool("read_only"),
        "with_chartmuseum": false,
        "notification_enable": settings.bool("notification_enable"),
        "current_time": super::rfc3339(crate::meta::now_unix()),
        "banner_message": settings.str("banner_message")
    }))
    .into_response())
}

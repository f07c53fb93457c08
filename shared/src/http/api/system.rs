//! `/ping`, `/health` and `/systeminfo`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;

use super::ApiResult;
use crate::auth::On;
use crate::config::Backend;
use crate::http::state::AppState;
use crate::rbac::{Act, Res};
use crate::service::settings::{AuthMode, ProjectCreation};

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

/// Harbor's `OverallHealthStatus`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct Health {
    status: &'static str,
    components: Vec<Component>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct Component {
    name: String,
    status: &'static str,
}

/// Harbor's overall health with one entry per component berth has.
pub async fn health(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let storage = format!("storage-{}", storage_provider(&state));
    let components = ["core", "registry", "database", "jobservice", storage.as_str()]
        .into_iter()
        .map(|name| Component { name: name.to_owned(), status: "healthy" })
        .collect();
    axum::Json(Health { status: "healthy", components })
}

/// Harbor's `GeneralInfo`, with the fields that apply to berth.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct GeneralInfo {
    auth_mode: AuthMode,
    primary_auth_mode: bool,
    project_creation_restriction: ProjectCreation,
    self_registration: bool,
    oidc_provider_name: String,
    has_ca_root: bool,
    harbor_version: &'static str,
    registry_storage_provider_name: &'static str,
    read_only: bool,
    with_chartmuseum: bool,
    notification_enable: bool,
    current_time: String,
    banner_message: String,
}

pub async fn systeminfo(State(state): State<Arc<AppState>>) -> ApiResult {
    let s = state.registry.settings().await?;
    Ok(axum::Json(GeneralInfo {
        auth_mode: s.auth_mode,
        primary_auth_mode: s.primary_auth_mode,
        project_creation_restriction: s.project_creation_restriction,
        self_registration: s.self_registration,
        oidc_provider_name: if s.auth_mode == AuthMode::Oidc { s.oidc_name.clone() } else { String::new() },
        has_ca_root: state.ctx.config.server.ca_cert.as_ref().is_some_and(|p| p.is_file()),
        harbor_version: concat!("v2.13.0-berth-", env!("CARGO_PKG_VERSION")),
        registry_storage_provider_name: storage_provider(&state),
        read_only: s.read_only,
        with_chartmuseum: false,
        notification_enable: s.notification_enable,
        current_time: super::rfc3339(crate::meta::now_unix()),
        banner_message: s.banner_message.clone(),
    })
    .into_response())
}

/// Harbor's `SystemInfo`: the storage of the disk berth keeps its data on.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct Volumes {
    storage: Vec<Storage>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct Storage {
    total: u64,
    free: u64,
}

/// `GET /systeminfo/volumes`, for administrators: the disk of the local
/// data folder (as Harbor, the local disk only: none when blobs are in S3).
pub async fn volumes(State(state): State<Arc<AppState>>, caller: super::Caller) -> ApiResult {
    caller.require((Res::SystemVolumes, Act::Read), On::Registry)?;
    let storage = match state.ctx.config.backend {
        Backend::Aws => Vec::new(),
        Backend::Local => {
            let dir = state.ctx.config.data_dir.clone();
            let read = tokio::task::spawn_blocking(move || {
                Ok::<_, std::io::Error>((fs4::total_space(&dir)?, fs4::available_space(&dir)?))
            })
            .await
            .map_err(|e| super::ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
            let (total, free) = read.map_err(|e| {
                super::ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("reading the data folder's disk: {e}"))
            })?;
            vec![Storage { total, free }]
        }
    };
    Ok(axum::Json(Volumes { storage }).into_response())
}

/// `GET /systeminfo/getcert`: the configured CA certificate
/// (`server.ca_cert`) as a download; 404 when none is configured.
pub async fn getcert(State(state): State<Arc<AppState>>) -> ApiResult {
    let missing = || super::ApiError::new(StatusCode::NOT_FOUND, "no CA certificate is configured (server.ca_cert)");
    let path = state.ctx.config.server.ca_cert.clone().ok_or_else(missing)?;
    let pem = tokio::fs::read(&path).await.map_err(|_| missing())?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream")),
            (header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"ca.crt\"")),
        ],
        pem,
    )
        .into_response())
}

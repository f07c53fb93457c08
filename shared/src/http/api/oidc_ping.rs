//! `/system/oidc/ping`: whether a URL is an OIDC provider, for the
//! administrator setting up `oidc_auth`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;

use super::{ApiError, ApiResult, Body, Caller};
use crate::auth::On;
use crate::http::state::AppState;
use crate::rbac::{Act, Res};

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct PingBody {
    url: String,
    #[serde(default = "verify_default")]
    verify_cert: bool,
}

fn verify_default() -> bool {
    true
}

/// `POST /system/oidc/ping` `{"url", "verify_cert"}`: 200 when the URL's
/// discovery document answers and names it as issuer, else Harbor's 400.
pub async fn ping(State(state): State<Arc<AppState>>, caller: Caller, Body(body): Body<PingBody>) -> ApiResult {
    caller.require((Res::Configuration, Act::Update), On::Registry)?;
    let url = body.url.trim();
    if !url.starts_with("http://") && !url.starts_with("https://") {
        return Err(ApiError::bad_request("the url must be an http(s) URL"));
    }
    state.oidc.ping(url, body.verify_cert).await.map_err(|e| {
        tracing::warn!(error = %e, "oidc ping failed");
        ApiError::bad_request("failed to verify connection")
    })?;
    Ok(StatusCode::OK.into_response())
}

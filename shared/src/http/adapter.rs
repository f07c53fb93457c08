//! berth's built-in scanner as a Pluggable Scanner API v1.2 adapter, so
//! that another registry (a Harbor, another berth) can register it as a
//! scanner: register `http(s)://<berth>/scanner-adapter` with the
//! credential of a berth account allowed to start scans (`scan-all`
//! create: the administrator, or a system robot granted it), as Basic
//! auth.
//!
//! - `GET  /scanner-adapter/api/v1/metadata`: what it scans and produces;
//! - `POST /scanner-adapter/api/v1/scan`: `202` with the request's id; the
//!   scan runs as a job ([`crate::jobs::adapter_scan`]) that pulls the
//!   image from the requester's registry with the request's credential;
//! - `GET  /scanner-adapter/api/v1/scan/{id}/report`: `302` with
//!   `Refresh-After` until it is ready, then the report in the MIME type
//!   asked for (both vulnerability report types have Harbor's shape);
//!   `404` for an id berth did not give.
//!
//! Errors are the API's `ErrorResponse` (`{"error": {"message": …}}`).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::state::AppState;
use crate::auth::On;
use crate::auth::authorize::{Decision, authorize};
use crate::auth::seal::Sealer;
use crate::jobs::adapter_scan::{AdapterScanJob, SEAL_CONTEXT, scan_type_of};
use crate::rbac::{Act, Res};
use crate::scanner::{
    CONSUMED_MIMES, ERROR_MIME, HARBOR_REPORT_MIME, METADATA_MIME, SBOM_REPORT_MIME, SCAN_RESPONSE_MIME,
    SECURITY_REPORT_MIME, ScanRequest,
};
use crate::service::ServiceError;
use crate::service::adapter_scans::AdapterScanState;

/// Where the adapter is mounted: its registration URL is the registry's
/// URL and this.
pub const PREFIX: &str = "/scanner-adapter";
/// How long a requester waits before asking for a report again.
const REFRESH_AFTER_SECS: u32 = 5;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/metadata", get(metadata))
        .route("/api/v1/scan", post(scan))
        .route("/api/v1/scan/{id}/report", get(report))
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = serde_json::json!({"error": {"message": message.into()}}).to_string();
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static(ERROR_MIME))], body).into_response()
}

fn service_error(e: ServiceError) -> Response {
    match e {
        ServiceError::NotFound(m) => error(StatusCode::NOT_FOUND, m),
        ServiceError::Invalid(m) => error(StatusCode::BAD_REQUEST, m),
        e => {
            tracing::error!(error = %e, "scanner adapter");
            error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

/// Allows callers who may start scans, with the adapter's own error body.
async fn require(state: &AppState, headers: &HeaderMap, act: Act) -> Result<(), Response> {
    let value = headers.get(header::AUTHORIZATION).map(|v| v.to_str().unwrap_or(""));
    let subject = match state.auth.authenticate(value).await {
        Ok(s) => s,
        Err(crate::auth::AuthError::Unavailable(_) | crate::auth::AuthError::Backend(_)) => {
            return Err(error(StatusCode::SERVICE_UNAVAILABLE, "the identity provider is unavailable"));
        }
        Err(_) => return Err(error(StatusCode::UNAUTHORIZED, "invalid credentials")),
    };
    match authorize(&subject, (Res::ScanAll, act), On::Registry) {
        Decision::Allow => Ok(()),
        Decision::Challenge => Err(error(StatusCode::UNAUTHORIZED, "authentication required")),
        Decision::Deny => Err(error(StatusCode::FORBIDDEN, "this account may not start scans")),
    }
}

async fn metadata(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Err(r) = require(&state, &headers, Act::Read).await {
        return r;
    }
    match crate::scanner::builtin::metadata(&state.registry).await {
        Ok(m) => (
            [(header::CONTENT_TYPE, HeaderValue::from_static(METADATA_MIME))],
            serde_json::to_string(&m).unwrap_or_default(),
        )
            .into_response(),
        Err(e) => service_error(e),
    }
}

async fn scan(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = require(&state, &headers, Act::Create).await {
        return r;
    }
    let request: ScanRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid scan request: {e}")),
    };
    if request.artifact.digest.parse::<crate::oci::Digest>().is_err() {
        return error(StatusCode::BAD_REQUEST, format!("invalid artifact digest {:?}", request.artifact.digest));
    }
    if crate::oci::RepoName::parse(&request.artifact.repository).is_err() {
        return error(StatusCode::BAD_REQUEST, format!("invalid repository {:?}", request.artifact.repository));
    }
    if !matches!(url::Url::parse(&request.registry.url).map(|u| u.scheme().to_owned()).as_deref(), Ok("http" | "https"))
    {
        return error(StatusCode::BAD_REQUEST, format!("invalid registry url {:?}", request.registry.url));
    }
    if !CONSUMED_MIMES.contains(&request.artifact.mime_type.as_str()) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("artifacts of type {:?} are not scanned", request.artifact.mime_type),
        );
    }
    let scan_type = scan_type_of(&request).to_owned();
    if !matches!(scan_type.as_str(), "vulnerability" | "sbom") {
        return error(StatusCode::UNPROCESSABLE_ENTITY, format!("scans of type {scan_type:?} are not offered"));
    }
    let sealed = Sealer::new(&state.ctx.token_keys)
        .map_err(|e| e.to_string())
        .and_then(|s| s.seal(SEAL_CONTEXT, &body).map_err(|e| e.to_string()));
    let sealed = match sealed {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "sealing a scan request");
            return error(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
        }
    };
    match state.registry.submit_adapter_scan(&AdapterScanJob::queued(), &scan_type, sealed).await {
        Ok(id) => (
            StatusCode::ACCEPTED,
            [(header::CONTENT_TYPE, HeaderValue::from_static(SCAN_RESPONSE_MIME))],
            serde_json::json!({"id": id}).to_string(),
        )
            .into_response(),
        Err(e) => service_error(e),
    }
}

/// The report MIME type an `Accept` asks for (the Harbor vulnerability
/// report when it names none berth makes).
fn wanted(headers: &HeaderMap) -> &'static str {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    let names = |m: &str| accept.split(',').any(|a| a.trim().eq_ignore_ascii_case(m));
    [SBOM_REPORT_MIME, SECURITY_REPORT_MIME, HARBOR_REPORT_MIME]
        .into_iter()
        .find(|m| names(m))
        .unwrap_or(HARBOR_REPORT_MIME)
}

async fn report(State(state): State<Arc<AppState>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(r) = require(&state, &headers, Act::Read).await {
        return r;
    }
    let mime = wanted(&headers);
    match state.registry.adapter_scan_state(&id).await {
        Ok(AdapterScanState::Running) => (
            StatusCode::FOUND,
            [(header::HeaderName::from_static("refresh-after"), HeaderValue::from(REFRESH_AFTER_SECS))],
        )
            .into_response(),
        Ok(AdapterScanState::Failed(m)) => error(StatusCode::INTERNAL_SERVER_ERROR, m),
        Ok(AdapterScanState::Ready { body, scan_type }) => {
            if (mime == SBOM_REPORT_MIME) != (scan_type == "sbom") {
                return error(StatusCode::BAD_REQUEST, format!("request {id} made a {scan_type} report, not {mime}"));
            }
            ([(header::CONTENT_TYPE, HeaderValue::from_static(mime))], body).into_response()
        }
        Err(e) => service_error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_header_picks_the_report_type() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap_or_else(|_| HeaderValue::from_static("")));
            m
        };
        assert_eq!(wanted(&h(SECURITY_REPORT_MIME)), SECURITY_REPORT_MIME);
        assert_eq!(wanted(&h(&format!("text/plain, {SBOM_REPORT_MIME}"))), SBOM_REPORT_MIME);
        assert_eq!(wanted(&h("*/*")), HARBOR_REPORT_MIME);
        assert_eq!(wanted(&HeaderMap::new()), HARBOR_REPORT_MIME);
    }
}

//! An artifact's scans: `…/scan` (start), `…/scan/stop`,
//! `…/scan/{report_id}/log`, `…/additions/vulnerabilities`, and the
//! `scan_overview` of artifact listings, over [`crate::service::scans`].
//! Scans use the project's scanner ([`crate::service::scanners`]) and
//! follow the project's `scan` role, SBOM scans too.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};

use super::repositories::RepoPath;
use super::{ApiError, ApiResult, Caller};
use crate::http::state::AppState;
use crate::jobs::scan::ScanJob;
use crate::oci::Digest;
use crate::rbac::{Act, Res};
use crate::scanner::ScannerInfo;
use crate::service::scanners::Registration;
use crate::service::scans::{ReportSummary, SBOM, ScanRecord, VULNERABILITY};

/// The overview of a scan: Harbor's `ScanOverview`, keyed by the
/// report's MIME type.
pub(super) type Overview = BTreeMap<String, ReportSummary>;

fn summary_view(r: ScanRecord) -> (String, ReportSummary) {
    let mime = r.mime_type.clone();
    (mime, ReportSummary::of(r))
}

/// Harbor's `SBOMOverview`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct SbomOverviewView {
    report_id: String,
    scan_status: String,
    sbom_digest: String,
    duration: i64,
    start_time: String,
    end_time: Option<String>,
    scanner: ScannerInfo,
}

/// The SBOM overview of each artifact, when asked for (`None` where an
/// artifact has none).
pub(super) async fn sbom_overviews(
    state: &AppState,
    project: &str,
    digests: &[&Digest],
) -> ApiResult<Vec<Option<SbomOverviewView>>> {
    let scanner = state.registry.project_scanner(project).await?;
    let reads = digests.iter().map(|d| state.registry.artifact_scan(scanner.as_ref(), d, SBOM));
    let found = futures::future::try_join_all(reads).await?;
    Ok(found
        .into_iter()
        .map(|r| {
            r.map(|r| {
                let end = (r.end_time > 0).then_some(r.end_time);
                SbomOverviewView {
                    report_id: r.report_id,
                    scan_status: r.status.name().to_owned(),
                    sbom_digest: r.sbom_digest,
                    duration: end.map_or(0, |e| (e - r.start_time).max(0) / 1000),
                    start_time: crate::service::record::rfc3339_ms(r.start_time),
                    end_time: end.map(crate::service::record::rfc3339_ms),
                    scanner: r.scanner,
                }
            })
        })
        .collect())
}

/// The scan overview of each artifact, when asked for (`None` where an
/// artifact has no scan, as Harbor shows it).
pub(super) async fn overviews(
    state: &AppState,
    project: &str,
    digests: &[&Digest],
) -> ApiResult<Vec<Option<Overview>>> {
    let scanner = state.registry.project_scanner(project).await?;
    let reads = digests.iter().map(|d| state.registry.artifact_scan(scanner.as_ref(), d, VULNERABILITY));
    let found = futures::future::try_join_all(reads).await?;
    Ok(found.into_iter().map(|r| r.map(|r| BTreeMap::from([summary_view(r)]))).collect())
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub struct ScanTypeBody {
    #[serde(default)]
    scan_type: Option<String>,
}

/// The scan type a request body names (vulnerability when none).
fn scan_type(body: &[u8]) -> ApiResult<&'static str> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(VULNERABILITY);
    }
    let b: ScanTypeBody =
        serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("invalid scan type body: {e}")))?;
    match b.scan_type.as_deref() {
        None | Some("" | VULNERABILITY) => Ok(VULNERABILITY),
        Some(SBOM) => Ok(SBOM),
        Some(other) => Err(ApiError::bad_request(format!("scan type {other:?} is not vulnerability or sbom"))),
    }
}

/// What a scan request is about, after checking `act` on the project's
/// scans: the type, the artifact and the project's scanner.
async fn scan_target(
    state: &AppState,
    caller: &Caller,
    path: &RepoPath,
    body: &[u8],
    act: Act,
) -> ApiResult<(&'static str, crate::service::artifacts::ArtifactInfo, Registration)> {
    let scan_type = scan_type(body)?;
    // Both scan types are the project's `scan` (Harbor's permission tests
    // have a robot holding only `scan` generate SBOMs).
    let project = path.require(state, caller, (Res::Scan, act)).await?;
    let artifact = state.registry.artifact(path.repo(), &path.reference()?).await?;
    let scanner = state
        .registry
        .project_scanner(&project.name)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no scanner is configured for the project"))?;
    Ok((scan_type, artifact, scanner))
}

/// `POST …/scan`: starts a scan (202); 409 while one runs.
pub async fn scan(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    path: RepoPath,
    body: axum::body::Bytes,
) -> ApiResult {
    let (scan_type, artifact, scanner) = scan_target(&state, &caller, &path, &body, Act::Create).await?;
    caller
        .registry(&state)
        .start_scan(
            &ScanJob::queued(),
            path.repo(),
            &artifact,
            &scanner,
            scan_type,
            crate::service::scans::ScanStart { trigger: "MANUAL", ..Default::default() },
        )
        .await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `POST …/scan/stop`: stops the artifact's scan; one that has ended
/// already is left as it is (202 either way, as Harbor); 400 when the
/// artifact was never scanned.
pub async fn stop(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    path: RepoPath,
    body: axum::body::Bytes,
) -> ApiResult {
    let (scan_type, artifact, scanner) = scan_target(&state, &caller, &path, &body, Act::Stop).await?;
    match state.registry.artifact_scan(Some(&scanner), &artifact.digest, scan_type).await? {
        Some(r) => {
            if !r.status.is_final() {
                caller.registry(&state).stop_scan(&r).await?;
            }
            Ok(StatusCode::ACCEPTED.into_response())
        }
        None => Err(ApiError::bad_request(format!("no {scan_type} scan of {} to stop", artifact.digest))),
    }
}

/// `GET …/scan/{report_id}/log`: the scan job's log, as text.
pub async fn log(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    path: RepoPath,
    Path(params): Path<Vec<(String, String)>>,
) -> ApiResult {
    path.require(&state, &caller, (Res::Scan, Act::Read)).await?;
    let artifact = state.registry.artifact(path.repo(), &path.reference()?).await?;
    let id = params.iter().find(|(k, _)| k == "report_id").map(|(_, v)| v.as_str()).unwrap_or_default();
    let mut found = state.registry.scans_of(&artifact.digest).await?.into_iter().find(|r| r.report_id == id);
    if found.is_none() {
        // A child's report, asked through its index.
        for child in artifact.references() {
            found = state.registry.scans_of(&child.digest).await?.into_iter().find(|r| r.report_id == id);
            if found.is_some() {
                break;
            }
        }
    }
    let record = found.ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("report {id} not found")))?;
    let text = state.registry.scan_log(&record).await?;
    Ok(([(axum::http::header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

/// `GET …/additions/vulnerabilities`: the project scanner's report, keyed
/// by its MIME type (`{}` before one is made).
pub async fn vulnerabilities(State(state): State<Arc<AppState>>, caller: Caller, path: RepoPath) -> ApiResult {
    let project = path.require(&state, &caller, (Res::ArtifactAddition, Act::Read)).await?;
    let artifact = state.registry.artifact(path.repo(), &path.reference()?).await?;
    let scanner = state.registry.project_scanner(&project.name).await?;
    let mut out = serde_json::Map::new();
    if let Some(r) = state.registry.artifact_scan(scanner.as_ref(), &artifact.digest, VULNERABILITY).await?
        && let Some(report) = state.registry.scan_report(&r).await?
    {
        out.insert(r.mime_type.clone(), report);
    }
    Ok(Json(serde_json::Value::Object(out)).into_response())
}

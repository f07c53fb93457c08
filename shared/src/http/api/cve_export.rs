//! `/export/cve…`: Harbor's scan data export over the export job
//! ([`crate::jobs::cve_export`]): start an export of one project's
//! vulnerabilities (the project's `export-cve`), follow it, download its CSV
//! once. An export is its requester's alone: nobody else reads or
//! downloads it, administrators included, as Harbor.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiResult, Body, Caller, path_number};
use crate::http::state::AppState;
use crate::jobs::Status;
use crate::jobs::cve_export::{CveExportJob, ExportTask};
use crate::rbac::{Act, Res};
use crate::service::cve_export::{ExportFilter, SCAN_DATA_EXPORT};
use crate::service::executions::Execution;
use crate::service::paging::PageRequest;
use crate::service::projects::ProjectRef;
use crate::service::record::rfc3339_ms;

/// Harbor's `ScanDataExportRequest`.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct ExportRequest {
    job_name: String,
    projects: Vec<i64>,
    labels: Vec<i64>,
    repositories: String,
    #[serde(rename = "cveIds")]
    cve_ids: String,
    tags: String,
}

/// Harbor's `ScanDataExportJob`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct JobView {
    id: i64,
}

/// Harbor's `ScanDataExportExecution`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct ExecutionView {
    id: i64,
    user_id: i64,
    status: String,
    trigger: String,
    start_time: String,
    end_time: Option<String>,
    status_text: String,
    user_name: String,
    file_present: bool,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct ExecutionListView {
    items: Vec<ExecutionView>,
}

fn requester(caller: &Caller) -> ApiResult<(i64, String)> {
    caller.require_signed_in()?;
    caller
        .user()
        .map(|u| (u.id, u.name.clone()))
        .ok_or_else(|| ApiError::new(StatusCode::FORBIDDEN, "only users export scan data"))
}

/// `POST /export/cve`: starts an export of one project.
pub async fn start(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    headers: HeaderMap,
    Body(body): Body<ExportRequest>,
) -> ApiResult {
    let data_type = headers.get("x-scan-data-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if data_type.trim().is_empty() {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "X-Scan-Data-Type in header is required"));
    }
    let [project_id] = body.projects[..] else {
        return Err(ApiError::bad_request("bad request: only support export single project"));
    };
    let (user_id, user_name) = requester(&caller)?;
    let project = state.registry.project(&ProjectRef::Id(project_id)).await?;
    caller.require_in(&state, &project, (Res::ExportCve, Act::Create)).await?;
    let filter = ExportFilter {
        project: project.name.clone(),
        repositories: body.repositories,
        tags: body.tags,
        cve_ids: body.cve_ids,
        labels: body.labels,
    };
    let payload = serde_json::to_value(ExportTask { filter, repository: None, after: None })
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut attrs = serde_json::Map::new();
    attrs.insert("user_name".into(), user_name.into());
    attrs.insert("project".into(), project.name.into());
    attrs.insert("job_name".into(), body.job_name.into());
    let id = caller.registry(&state).start_execution(&CveExportJob, user_id, "MANUAL", attrs, vec![payload]).await?;
    Ok(Json(JobView { id }).into_response())
}

/// The export `id` of the caller (403 for anybody else's).
async fn own(state: &AppState, caller: &Caller, id: i64) -> ApiResult<Execution> {
    let (user_id, _) = requester(caller)?;
    let x = state.registry.execution(id).await?;
    if x.record.vendor_type != SCAN_DATA_EXPORT {
        return Err(ApiError::new(StatusCode::NOT_FOUND, format!("scan data export {id} not found")));
    }
    if x.record.vendor_id != user_id {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "FORBIDDEN: the export is another user's"));
    }
    Ok(x)
}

async fn view(state: &AppState, x: &Execution) -> ApiResult<ExecutionView> {
    let tasks = state.registry.tasks_of(x.record.id).await?;
    let rows: u64 = tasks.iter().filter_map(|t| t.extra_attrs.get("rows").and_then(serde_json::Value::as_u64)).sum();
    let file_present = x.status == Status::Success && rows > 0 && state.registry.export_has_file(x.record.id).await?;
    let status_text = match x.status {
        Status::Success if rows == 0 => "No vulnerabilities found or matched".to_owned(),
        Status::Success => format!("{rows} vulnerabilities exported"),
        _ => x.status_message.clone(),
    };
    Ok(ExecutionView {
        id: x.record.id,
        user_id: x.record.vendor_id,
        status: x.status.name().to_owned(),
        trigger: x.record.trigger.clone(),
        start_time: rfc3339_ms(x.record.start_time),
        end_time: (x.end_time > 0).then(|| rfc3339_ms(x.end_time)),
        status_text,
        user_name: x.record.extra_attrs.get("user_name").and_then(|v| v.as_str()).unwrap_or_default().to_owned(),
        file_present,
    })
}

pub async fn get(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(p): Path<Vec<(String, String)>>,
) -> ApiResult {
    let x = own(&state, &caller, path_number(&p, "execution_id")?).await?;
    Ok(Json(view(&state, &x).await?).into_response())
}

/// `GET /export/cve/executions`: the caller's exports, newest first.
pub async fn list(State(state): State<Arc<AppState>>, caller: Caller) -> ApiResult {
    let (user_id, _) = requester(&caller)?;
    let xs = state.registry.list_executions(SCAN_DATA_EXPORT, user_id, &PageRequest::first(100)).await?;
    let mut items = Vec::new();
    for x in &xs.items {
        items.push(view(&state, x).await?);
    }
    Ok(Json(ExecutionListView { items }).into_response())
}

/// `GET /export/cve/download/{id}`: the CSV, once.
pub async fn download(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(p): Path<Vec<(String, String)>>,
) -> ApiResult {
    let x = own(&state, &caller, path_number(&p, "execution_id")?).await?;
    if x.status != Status::Success {
        return Err(ApiError::bad_request(format!("the export is {}", x.status.name())));
    }
    let Some(file) = state.registry.export_file(x.record.id).await? else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "the export has no file (none found, or downloaded)"));
    };
    state.registry.delete_export(x.record.id).await?;
    let disposition = format!("attachment; filename=\"scandata_export_{}.csv\"", x.record.id);
    Ok((
        [(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()), (header::CONTENT_DISPOSITION, disposition)],
        file,
    )
        .into_response())
}

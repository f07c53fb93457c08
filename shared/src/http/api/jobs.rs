//! The job service's API: Harbor's `Execution` and `Task` views (shared by
//! every API that shows executions), the audit log purge
//! (`/system/purgeaudit…`) and the schedules (`/schedules`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ApiError, ApiResult, Body, Caller, PREFIX, Paging, created, path_number};
use crate::auth::On;
use crate::http::state::AppState;
use crate::jobs::Status;
use crate::jobs::purge::{PURGE_AUDIT_LOG, PurgeAuditJob, PurgeParams};
use crate::jobs::schedule::{Plan, ScheduleObj, next_after, parse, plan};
use crate::rbac::{Act, Res};
use crate::service::ServiceError;
use crate::service::executions::{Execution, TaskRecord};
use crate::service::record::rfc3339_ms;

/// The vendor id of system jobs (they have no policy).
pub(super) const SYSTEM_VENDOR: i64 = 0;

fn time_or_empty(ms: i64) -> String {
    if ms > 0 { rfc3339_ms(ms) } else { String::new() }
}

/// Harbor's `Execution`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ExecutionView {
    id: i64,
    vendor_type: String,
    vendor_id: i64,
    status: &'static str,
    status_message: String,
    metrics: BTreeMap<&'static str, u64>,
    trigger: String,
    extra_attrs: serde_json::Map<String, Value>,
    start_time: String,
    end_time: String,
}

impl From<Execution> for ExecutionView {
    fn from(x: Execution) -> Self {
        let n = |s: Status| x.counts.get(&s).copied().unwrap_or(0);
        let metrics = BTreeMap::from([
            ("task_count", x.task_count),
            ("success_task_count", n(Status::Success)),
            ("error_task_count", n(Status::Error)),
            ("pending_task_count", n(Status::Pending)),
            ("running_task_count", n(Status::Running)),
            ("scheduled_task_count", 0),
            ("stopped_task_count", n(Status::Stopped)),
        ]);
        Self {
            id: x.record.id,
            vendor_type: x.record.vendor_type,
            vendor_id: x.record.vendor_id,
            status: x.status.name(),
            status_message: x.status_message,
            metrics,
            trigger: x.record.trigger,
            extra_attrs: x.record.extra_attrs,
            start_time: rfc3339_ms(x.record.start_time),
            end_time: time_or_empty(x.end_time),
        }
    }
}

/// Harbor's `Task`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct TaskView {
    id: i64,
    execution_id: i64,
    status: &'static str,
    status_message: String,
    run_count: u32,
    extra_attrs: serde_json::Map<String, Value>,
    creation_time: String,
    update_time: String,
    start_time: String,
    end_time: String,
}

impl From<TaskRecord> for TaskView {
    fn from(t: TaskRecord) -> Self {
        Self {
            id: t.id,
            execution_id: t.execution_id,
            status: t.status.name(),
            status_message: t.status_message,
            run_count: t.run_count,
            extra_attrs: t.extra_attrs,
            creation_time: rfc3339_ms(t.creation_time),
            update_time: rfc3339_ms(t.update_time),
            start_time: time_or_empty(t.start_time),
            end_time: time_or_empty(t.end_time),
        }
    }
}

/// A task's log as `text/plain`.
pub async fn log_response(state: &AppState, execution: i64, task: i64) -> ApiResult {
    if state.registry.task(execution, task).await?.is_none() {
        return Err(ServiceError::NotFound(format!("task {task} not found")).into());
    }
    let log = state.registry.task_log(execution, task).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], log).into_response())
}

/// Harbor's `ExecHistory` (the purge and GC history).
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct ExecHistoryView {
    id: i64,
    job_name: &'static str,
    job_kind: String,
    job_parameters: String,
    job_status: &'static str,
    deleted: bool,
    creation_time: String,
    update_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    schedule: Option<ScheduleObj>,
}

fn history(x: &Execution, params: &Value) -> ExecHistoryView {
    history_of(PURGE_AUDIT_LOG, x, params)
}

/// A system job's execution as Harbor's `ExecHistory`.
pub(super) fn history_of(job_name: &'static str, x: &Execution, params: &Value) -> ExecHistoryView {
    ExecHistoryView {
        id: x.record.id,
        job_name,
        job_kind: x.record.trigger.clone(),
        job_parameters: params.to_string(),
        job_status: x.status.name(),
        deleted: false,
        creation_time: rfc3339_ms(x.record.start_time),
        update_time: rfc3339_ms(if x.end_time > 0 { x.end_time } else { x.record.start_time }),
        schedule: None,
    }
}

async fn purge_history(state: &AppState, id: i64) -> ApiResult<ExecHistoryView> {
    let x = state.registry.execution(id).await?;
    if x.record.vendor_type != PURGE_AUDIT_LOG {
        return Err(ServiceError::NotFound(format!("purge job {id} not found")).into());
    }
    let params = state.registry.tasks_of(id).await?.first().map(|t| t.payload.clone()).unwrap_or(Value::Null);
    Ok(history(&x, &params))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    pub(super) page: Option<String>,
    pub(super) page_size: Option<String>,
    pub(super) cursor: Option<String>,
}

/// `GET /system/purgeaudit`: the purge history, newest first.
pub async fn purge_list(State(state): State<Arc<AppState>>, caller: Caller, Query(q): Query<ListQuery>) -> ApiResult {
    caller.require((Res::PurgeAudit, Act::List), On::Registry)?;
    let paging = Paging::parse(q.page.as_deref(), q.page_size.as_deref(), q.cursor.as_deref())?;
    let listing = state.registry.list_executions(PURGE_AUDIT_LOG, SYSTEM_VENDOR, &paging.0).await?;
    let mut items = Vec::with_capacity(listing.items.len());
    for x in &listing.items {
        let params =
            state.registry.tasks_of(x.record.id).await?.first().map(|t| t.payload.clone()).unwrap_or(Value::Null);
        items.push(history(x, &params));
    }
    let listing = crate::service::paging::Listing { items, total: listing.total, next: listing.next };
    Ok(paging.respond("/system/purgeaudit", &[], listing))
}

pub async fn purge_get(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(path): Path<Vec<(String, String)>>,
) -> ApiResult {
    caller.require((Res::PurgeAudit, Act::Read), On::Registry)?;
    Ok(Json(purge_history(&state, path_number(&path, "purge_id")?).await?).into_response())
}

/// `PUT /system/purgeaudit/{id}`: stops a purge.
pub async fn purge_stop(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(path): Path<Vec<(String, String)>>,
) -> ApiResult {
    caller.require((Res::PurgeAudit, Act::Update), On::Registry)?;
    let id = path_number(&path, "purge_id")?;
    purge_history(&state, id).await?;
    state.registry.stop_execution(id).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn purge_log(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(path): Path<Vec<(String, String)>>,
) -> ApiResult {
    caller.require((Res::PurgeAudit, Act::Read), On::Registry)?;
    let id = path_number(&path, "purge_id")?;
    purge_history(&state, id).await?;
    let tasks = state.registry.tasks_of(id).await?;
    let mut log = String::new();
    for t in tasks {
        log.push_str(&state.registry.task_log(id, t.id).await?);
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], log).into_response())
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ScheduleBody {
    #[serde(default)]
    pub(super) schedule: Option<ScheduleObj>,
    #[serde(default)]
    pub(super) parameters: Option<Value>,
}

fn purge_params(body: &ScheduleBody) -> Result<Value, ApiError> {
    let raw = body.parameters.clone().unwrap_or_else(|| Value::Object(serde_json::Map::new()));
    let p: PurgeParams =
        serde_json::from_value(raw).map_err(|e| ApiError::bad_request(format!("invalid parameters: {e}")))?;
    if p.audit_retention_hour < 0 {
        return Err(ApiError::bad_request("audit_retention_hour must not be negative"));
    }
    serde_json::to_value(p).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// `POST`/`PUT /system/purgeaudit/schedule`: `Manual` runs a purge now,
/// other types set (or `None` removes) the schedule.
pub async fn purge_schedule_set(
    State(state): State<Arc<AppState>>,
    method: axum::http::Method,
    caller: Caller,
    Body(body): Body<ScheduleBody>,
) -> ApiResult {
    caller.require((Res::PurgeAudit, Act::Create), On::Registry)?;
    let obj = body.schedule.clone().unwrap_or_default();
    let params = purge_params(&body)?;
    match plan(&obj)? {
        Plan::Now => {
            let id = caller
                .registry(&state)
                .start_execution(&PurgeAuditJob, SYSTEM_VENDOR, "MANUAL", serde_json::Map::new(), vec![params])
                .await?;
            run_started(&method, &format!("{PREFIX}/system/purgeaudit/{id}"))
        }
        Plan::Never => {
            state.registry.set_schedule(PURGE_AUDIT_LOG, SYSTEM_VENDOR, None, params).await?;
            Ok(schedule_set(&method))
        }
        Plan::Cron(cron) => {
            state.registry.set_schedule(PURGE_AUDIT_LOG, SYSTEM_VENDOR, Some((&obj.kind, &cron)), params).await?;
            Ok(schedule_set(&method))
        }
    }
}

/// A run started by a `Manual` schedule: a `POST` answers 201 with the
/// run's `Location`, a `PUT` (an update of the schedule) 200, as Harbor.
pub(super) fn run_started(method: &axum::http::Method, location: &str) -> ApiResult {
    if method == axum::http::Method::POST { created(location) } else { Ok(StatusCode::OK.into_response()) }
}

/// Harbor answers a schedule's `POST` with 201 and its `PUT` with 200.
fn schedule_set(method: &axum::http::Method) -> axum::response::Response {
    schedule_set_at(method, "/system/purgeaudit/schedule")
}

pub(super) fn schedule_set_at(method: &axum::http::Method, path: &str) -> axum::response::Response {
    if method == axum::http::Method::POST {
        (StatusCode::CREATED, [(header::LOCATION, format!("{PREFIX}{path}"))]).into_response()
    } else {
        StatusCode::OK.into_response()
    }
}

/// `GET /system/purgeaudit/schedule`.
pub async fn purge_schedule_get(State(state): State<Arc<AppState>>, caller: Caller) -> ApiResult {
    caller.require((Res::PurgeAudit, Act::Read), On::Registry)?;
    schedule_view(&state, PURGE_AUDIT_LOG).await
}

/// A system job's schedule as Harbor's `ExecHistory` with its `schedule`
/// (`{}` when none is set).
pub(super) async fn schedule_view(state: &AppState, job_name: &'static str) -> ApiResult {
    let Some(s) = state.registry.schedule(job_name, SYSTEM_VENDOR).await? else {
        return Ok(Json(serde_json::json!({})).into_response());
    };
    let next = parse(&s.cron).ok().and_then(|c| next_after(&c, crate::events::now_ms())).map(rfc3339_ms);
    let view = ExecHistoryView {
        id: s.id,
        job_name,
        job_kind: "SCHEDULE".to_owned(),
        job_parameters: s.params.to_string(),
        job_status: "",
        deleted: false,
        creation_time: rfc3339_ms(s.creation_time),
        update_time: rfc3339_ms(s.update_time),
        schedule: Some(ScheduleObj { kind: s.kind, cron: s.cron, next_scheduled_time: next }),
    };
    Ok(Json(view).into_response())
}

/// `GET /schedules`: every schedule berth fires (Harbor's `ScheduleTask`).
pub async fn schedules(State(state): State<Arc<AppState>>, caller: Caller, Query(q): Query<ListQuery>) -> ApiResult {
    caller.require((Res::JobServiceMonitor, Act::List), On::Registry)?;
    let paging = Paging::parse(q.page.as_deref(), q.page_size.as_deref(), q.cursor.as_deref())?;
    #[derive(Serialize, schemars::JsonSchema)]
    pub(super) struct ScheduleTaskView {
        id: i64,
        vendor_type: String,
        vendor_id: i64,
        cron: String,
        update_time: String,
    }
    let listing = state.registry.list_schedules(&paging.0).await?;
    Ok(paging.respond(
        "/schedules",
        &[],
        listing.map(|s| ScheduleTaskView {
            id: s.id,
            vendor_type: s.vendor_type,
            vendor_id: s.vendor_id,
            cron: s.cron,
            update_time: rfc3339_ms(s.update_time),
        }),
    ))
}

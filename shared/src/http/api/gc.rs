//! `/system/gc…`: Harbor's garbage collection API over the GC job
//! ([`crate::jobs::gc`]): history, one run, stop, log, schedule.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::{Value, json};

use super::jobs::{
    ExecHistoryView, ListQuery, SYSTEM_VENDOR, ScheduleBody, history_of, run_started, schedule_set_at, schedule_view,
};
use super::{ApiError, ApiResult, Body, Caller, PREFIX, Paging, path_number};
use crate::auth::On;
use crate::http::state::AppState;
use crate::jobs::Status;
use crate::jobs::gc::{GARBAGE_COLLECTION, GcJob, GcTask, start_payload};
use crate::jobs::schedule::{Plan, plan};
use crate::rbac::{Act, Res};
use crate::service::ServiceError;
use crate::service::executions::Execution;
use crate::service::gc::{GcParams, GcTally};

/// A run's parameters with its tally so far (Harbor's `job_parameters`).
async fn parameters(state: &AppState, x: &Execution) -> ApiResult<Value> {
    let tasks = state.registry.tasks_of(x.record.id).await?;
    let params = tasks
        .first()
        .and_then(|t| serde_json::from_value::<GcTask>(t.payload.clone()).ok())
        .map(|t| t.params)
        .unwrap_or(GcParams { delete_untagged: false, dry_run: false, workers: 1, window_secs: 0 });
    let parts: Vec<GcTally> = tasks
        .iter()
        .map(|t| serde_json::from_value(Value::Object(t.extra_attrs.clone())).unwrap_or_default())
        .collect();
    let total = GcTally::sum(&parts);
    Ok(json!({
        "delete_untagged": params.delete_untagged, "dry_run": params.dry_run, "workers": params.workers,
        "freed_space": total.freed_space, "purged_blobs": total.purged_blobs, "purged_manifests": total.purged_manifests,
        // berth's own: what else a collection cleans.
        "upload_objects": total.upload_objects, "expired_items": total.expired_items,
    }))
}

async fn run_of(state: &AppState, id: i64) -> ApiResult<(Execution, ExecHistoryView)> {
    let x = state.registry.execution(id).await?;
    if x.record.vendor_type != GARBAGE_COLLECTION {
        return Err(ServiceError::NotFound(format!("garbage collection {id} not found")).into());
    }
    let params = parameters(state, &x).await?;
    let view = history_of(GARBAGE_COLLECTION, &x, &params);
    Ok((x, view))
}

/// `GET /system/gc`: the history, newest first.
pub async fn list(State(state): State<Arc<AppState>>, caller: Caller, Query(q): Query<ListQuery>) -> ApiResult {
    caller.require((Res::GarbageCollection, Act::List), On::Registry)?;
    let paging = Paging::parse(q.page.as_deref(), q.page_size.as_deref(), q.cursor.as_deref())?;
    let listing = state.registry.list_executions(GARBAGE_COLLECTION, SYSTEM_VENDOR, &paging.0).await?;
    let mut items = Vec::with_capacity(listing.items.len());
    for x in &listing.items {
        let params = parameters(&state, x).await?;
        items.push(history_of(GARBAGE_COLLECTION, x, &params));
    }
    let listing = crate::service::paging::Listing { items, total: listing.total, next: listing.next };
    Ok(paging.respond("/system/gc", &[], listing))
}

pub async fn get(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(path): Path<Vec<(String, String)>>,
) -> ApiResult {
    caller.require((Res::GarbageCollection, Act::Read), On::Registry)?;
    Ok(Json(run_of(&state, path_number(&path, "gc_id")?).await?.1).into_response())
}

/// `PUT /system/gc/{id}`: stops a run.
pub async fn stop(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(path): Path<Vec<(String, String)>>,
) -> ApiResult {
    caller.require((Res::GarbageCollection, Act::Stop), On::Registry)?;
    let id = path_number(&path, "gc_id")?;
    run_of(&state, id).await?;
    state.registry.stop_execution(id).await?;
    Ok(StatusCode::OK.into_response())
}

/// `GET /system/gc/{id}/log`: every task's log, with the run's summary.
pub async fn log(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(path): Path<Vec<(String, String)>>,
) -> ApiResult {
    caller.require((Res::GarbageCollection, Act::Read), On::Registry)?;
    let id = path_number(&path, "gc_id")?;
    let (x, _) = run_of(&state, id).await?;
    let mut out = String::new();
    for t in state.registry.tasks_of(id).await? {
        out.push_str(&state.registry.task_log(id, t.id).await?);
    }
    let params = parameters(&state, &x).await?;
    if x.status.is_final() {
        let n = |k: &str| params[k].as_u64().unwrap_or(0);
        out.push_str(&format!(
            "{} blobs and {} manifests eligible for deletion\n{} objects of abandoned uploads and {} expired items removed\nThe GC job actual frees up {} MB space.\n",
            n("purged_blobs"),
            n("purged_manifests"),
            n("upload_objects"),
            n("expired_items"),
            n("freed_space") / 1_000_000
        ));
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], out).into_response())
}

fn gc_params(state: &AppState, body: &ScheduleBody) -> Result<GcParams, ApiError> {
    let raw = body.parameters.clone().unwrap_or_else(|| Value::Object(serde_json::Map::new()));
    let mut p: GcParams =
        serde_json::from_value(raw).map_err(|e| ApiError::bad_request(format!("invalid parameters: {e}")))?;
    if !(1..=5).contains(&p.workers) {
        return Err(ApiError::bad_request("workers must be between 1 and 5"));
    }
    p.window_secs = i64::try_from(state.ctx.config.gc.time_window_secs).unwrap_or(i64::MAX);
    Ok(p)
}

/// `POST`/`PUT /system/gc/schedule`: `Manual` runs a collection now (one
/// at a time), other types set (or `None` removes) the schedule.
pub async fn schedule_set(
    State(state): State<Arc<AppState>>,
    method: axum::http::Method,
    caller: Caller,
    Body(body): Body<ScheduleBody>,
) -> ApiResult {
    caller.require((Res::GarbageCollection, Act::Create), On::Registry)?;
    let obj = body.schedule.clone().unwrap_or_default();
    let params = gc_params(&state, &body)?;
    match plan(&obj)? {
        Plan::Now => {
            // One run at a time. (MSR's "once per minute" is its GC Now
            // button's; Harbor's API, and its own tests, start runs back
            // to back.)
            let first = crate::service::paging::PageRequest::first(5);
            let recent = state.registry.list_executions(GARBAGE_COLLECTION, SYSTEM_VENDOR, &first).await?;
            // A run asked to stop is ending: it does not hold up the next.
            if recent.items.iter().any(|x| x.status == Status::Running && !x.record.stop_requested) {
                return Err(ApiError::new(StatusCode::CONFLICT, "a garbage collection is running or waiting to run"));
            }
            let id = caller
                .registry(&state)
                .start_execution(&GcJob, SYSTEM_VENDOR, "MANUAL", serde_json::Map::new(), vec![start_payload(params)])
                .await?;
            run_started(&method, &format!("{PREFIX}/system/gc/{id}"))
        }
        Plan::Never => {
            state.registry.set_schedule(GARBAGE_COLLECTION, SYSTEM_VENDOR, None, start_payload(params)).await?;
            Ok(schedule_set_at(&method, "/system/gc/schedule"))
        }
        Plan::Cron(cron) => {
            let payload = start_payload(params);
            state.registry.set_schedule(GARBAGE_COLLECTION, SYSTEM_VENDOR, Some((&obj.kind, &cron)), payload).await?;
            Ok(schedule_set_at(&method, "/system/gc/schedule"))
        }
    }
}

pub async fn schedule_get(State(state): State<Arc<AppState>>, caller: Caller) -> ApiResult {
    caller.require((Res::GarbageCollection, Act::Read), On::Registry)?;
    schedule_view(&state, GARBAGE_COLLECTION).await
}

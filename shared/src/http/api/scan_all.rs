//! `/system/scanAll/…` and `/scans/{all,schedule}/metrics`: Harbor's scan
//! all API over the scan-all job ([`crate::jobs::scan_all`]): run now,
//! schedule, stop, and the latest run's progress.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Serialize;

use super::jobs::{SYSTEM_VENDOR, ScheduleBody, run_started, schedule_set_at, schedule_view};
use super::{ApiError, ApiResult, Body, Caller, PREFIX};
use crate::auth::On;
use crate::http::state::AppState;
use crate::jobs::Status;
use crate::jobs::scan_all::{ScanAllJob, ScanAllTask};
use crate::jobs::schedule::{Plan, plan};
use crate::rbac::{Act, Res};
use crate::service::executions::Execution;
use crate::service::paging::PageRequest;
use crate::service::scans::SCAN_ALL;

/// Harbor's `Stats`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct StatsView {
    total: u64,
    completed: u64,
    metrics: BTreeMap<String, u64>,
    ongoing: bool,
    trigger: String,
}

fn start_payload() -> serde_json::Value {
    serde_json::to_value(ScanAllTask::default()).unwrap_or_default()
}

/// How many scans a run's tallies say it started, and how many ended.
fn started_and_ended(tallies: &BTreeMap<String, u64>) -> (u64, u64) {
    let started = tallies.get("Started").copied().unwrap_or(0);
    (started, tallies.iter().filter(|(k, _)| *k != "Started").map(|(_, n)| n).sum())
}

/// The latest runs, newest first.
async fn recent(state: &AppState) -> ApiResult<Vec<Execution>> {
    Ok(state.registry.list_executions(SCAN_ALL, SYSTEM_VENDOR, &PageRequest::first(20)).await?.items)
}

/// `POST`/`PUT /system/scanAll/schedule`: `Manual` scans everything now
/// (one run at a time), other types set (or `None` removes) the schedule.
pub async fn schedule_set(
    State(state): State<Arc<AppState>>,
    method: axum::http::Method,
    caller: Caller,
    Body(body): Body<ScheduleBody>,
) -> ApiResult {
    caller.require((Res::ScanAll, Act::Create), On::Registry)?;
    let obj = body.schedule.clone().unwrap_or_default();
    match plan(&obj)? {
        Plan::Now => {
            if recent(&state).await?.iter().any(|x| x.status == Status::Running && !x.record.stop_requested) {
                return Err(ApiError::new(StatusCode::CONFLICT, "a scan all job is running"));
            }
            let id = caller
                .registry(&state)
                .start_execution(&ScanAllJob, SYSTEM_VENDOR, "MANUAL", serde_json::Map::new(), vec![start_payload()])
                .await?;
            run_started(&method, &format!("{PREFIX}/system/scanAll/{id}"))
        }
        Plan::Never => {
            state.registry.set_schedule(SCAN_ALL, SYSTEM_VENDOR, None, start_payload()).await?;
            Ok(schedule_set_at(&method, "/system/scanAll/schedule"))
        }
        Plan::Cron(cron) => {
            state.registry.set_schedule(SCAN_ALL, SYSTEM_VENDOR, Some((&obj.kind, &cron)), start_payload()).await?;
            Ok(schedule_set_at(&method, "/system/scanAll/schedule"))
        }
    }
}

pub async fn schedule_get(State(state): State<Arc<AppState>>, caller: Caller) -> ApiResult {
    caller.require((Res::ScanAll, Act::Read), On::Registry)?;
    schedule_view(&state, SCAN_ALL).await
}

/// `POST /system/scanAll/stop`: stops the latest scan all and its scans
/// under way (one that has ended is left as it is: 202 either way, as
/// Harbor); 400 when none ever ran.
pub async fn stop(State(state): State<Arc<AppState>>, caller: Caller) -> ApiResult {
    caller.require((Res::ScanAll, Act::Stop), On::Registry)?;
    let Some(x) = recent(&state).await?.into_iter().next() else {
        return Err(ApiError::bad_request("no scan all job is found"));
    };
    // The run is under way while it plans or any scan it started is open.
    let (started, ended) = started_and_ended(&state.registry.scan_all_tallies(x.record.id).await?);
    if x.status == Status::Running || ended < started {
        caller.registry(&state).stop_scan_all(x.record.id).await?;
    }
    Ok(StatusCode::ACCEPTED.into_response())
}

async fn metrics_of(state: &AppState, trigger: &str) -> ApiResult {
    let latest = recent(state).await?.into_iter().find(|x| x.record.trigger == trigger);
    let Some(x) = latest else {
        let empty =
            StatsView { total: 0, completed: 0, metrics: BTreeMap::new(), ongoing: false, trigger: trigger.to_owned() };
        return Ok(Json(empty).into_response());
    };
    let tallies = state.registry.scan_all_tallies(x.record.id).await?;
    let (total, completed) = started_and_ended(&tallies);
    let mut metrics: BTreeMap<String, u64> = tallies.into_iter().filter(|(k, _)| k != "Started").collect();
    let open = total.saturating_sub(completed);
    if open > 0 {
        metrics.insert("Running".to_owned(), open);
    }
    let view = StatsView {
        total,
        completed,
        metrics,
        ongoing: x.status == Status::Running || open > 0,
        trigger: if trigger == "MANUAL" { "Manual".to_owned() } else { "Schedule".to_owned() },
    };
    Ok(Json(view).into_response())
}

/// `GET /scans/all/metrics`: the latest manual run's progress.
pub async fn all_metrics(State(state): State<Arc<AppState>>, caller: Caller) -> ApiResult {
    caller.require((Res::ScanAll, Act::Read), On::Registry)?;
    metrics_of(&state, "MANUAL").await
}

/// `GET /scans/schedule/metrics`: the latest scheduled run's progress.
pub async fn schedule_metrics(State(state): State<Arc<AppState>>, caller: Caller) -> ApiResult {
    caller.require((Res::ScanAll, Act::Read), On::Registry)?;
    metrics_of(&state, "SCHEDULE").await
}

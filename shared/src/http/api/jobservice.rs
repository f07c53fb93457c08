//! The job service dashboard (Harbor's `/jobservice/*` and
//! `/schedules/{job_type}/paused`): job queues with their waiting tasks,
//! pausing, resuming and stopping them, the worker pools and what their
//! workers run, stopping a running job and reading its log. The records
//! behind it are [`crate::service::jobqueues`].

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiResult, Body, Caller};
use crate::auth::On;
use crate::events::now_ms;
use crate::http::state::AppState;
use crate::jobs::{JOB_TYPES, SCHEDULER};
use crate::rbac::{Act, Res};
use crate::service::jobqueues::{PoolRecord, parse_job_id};
use crate::service::record::rfc3339_ms;

/// Harbor's `JobQueue`: `count` and `latency` (seconds the oldest task has
/// waited) are left out for an empty queue, as Harbor leaves them out.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct JobQueueView {
    job_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    latency: Option<i64>,
    paused: bool,
}

/// `GET /jobservice/queues`.
pub async fn queues(State(state): State<Arc<AppState>>, caller: Caller) -> ApiResult {
    caller.require((Res::JobServiceMonitor, Act::List), On::Registry)?;
    let now = now_ms();
    let views: Vec<JobQueueView> = state
        .registry
        .job_queues(&JOB_TYPES)
        .await?
        .into_iter()
        .map(|q| JobQueueView {
            job_type: q.job_type,
            count: (q.count > 0).then_some(q.count),
            // At least a second once anything waits: Harbor's 0 means empty.
            latency: q.oldest_ms.filter(|_| q.count > 0).map(|t| ((now - t) / 1000).max(1)),
            paused: q.paused,
        })
        .collect();
    Ok(Json(views).into_response())
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ActionRequest {
    #[serde(default)]
    action: String,
}

/// The job types a path's `job_type` names: one (any case), or `all`.
fn job_types(given: &str) -> Result<Vec<&'static str>, ApiError> {
    if given.eq_ignore_ascii_case("all") {
        return Ok(JOB_TYPES.to_vec());
    }
    JOB_TYPES
        .iter()
        .find(|t| t.eq_ignore_ascii_case(given))
        .map(|t| vec![*t])
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("job type {given} not found")))
}

/// `PUT /jobservice/queues/{job_type}`: `stop` records the waiting tasks as
/// Stopped, `pause` keeps them waiting, `resume` sends them to the workers.
pub async fn action(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(job_type): Path<String>,
    Body(body): Body<ActionRequest>,
) -> ApiResult {
    caller.require((Res::JobServiceMonitor, Act::Stop), On::Registry)?;
    let action = body.action.to_ascii_lowercase();
    if !matches!(action.as_str(), "stop" | "pause" | "resume") {
        return Err(ApiError::bad_request("the action is not supported"));
    }
    for t in job_types(&job_type)? {
        match action.as_str() {
            "stop" => {
                let n = state.registry.stop_waiting_tasks(t).await?;
                tracing::info!(job_type = t, stopped = n, "pending jobs stopped");
            }
            "pause" => {
                state.registry.set_job_queue_paused(t, true).await?;
            }
            _ => {
                let n = state.registry.set_job_queue_paused(t, false).await?;
                tracing::info!(job_type = t, requeued = n, "job queue resumed");
            }
        }
    }
    Ok(StatusCode::OK.into_response())
}

/// Harbor's `WorkerPool`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct PoolView {
    pid: u32,
    worker_pool_id: String,
    start_at: String,
    heartbeat_at: String,
    concurrency: u32,
    host: String,
}

/// `GET /jobservice/pools`: the processes running workers.
pub async fn pools(State(state): State<Arc<AppState>>, caller: Caller) -> ApiResult {
    caller.require((Res::JobServiceMonitor, Act::List), On::Registry)?;
    let views: Vec<PoolView> = state
        .registry
        .pools()
        .await?
        .into_iter()
        .map(|p| PoolView {
            pid: p.pid,
            worker_pool_id: p.id,
            start_at: rfc3339_ms(p.start_at),
            heartbeat_at: rfc3339_ms(p.heartbeat_at),
            concurrency: p.concurrency,
            host: p.host,
        })
        .collect();
    Ok(Json(views).into_response())
}

/// Harbor's `Worker`: one per unit of a pool's concurrency, the busy ones
/// with the job they run.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct WorkerView {
    id: String,
    pool_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    job_name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    job_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    start_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    checkin_at: Option<String>,
}

fn workers_of(pool: &PoolRecord) -> impl Iterator<Item = WorkerView> + '_ {
    let slots = usize::try_from(pool.concurrency).unwrap_or(0).max(pool.running.len());
    (0..slots).map(move |n| {
        let id = format!("{}-{n}", pool.id);
        match pool.running.get(n) {
            Some(job) => WorkerView {
                id,
                pool_id: pool.id.clone(),
                job_name: job.job_name.clone(),
                job_id: job.job_id.clone(),
                start_at: Some(rfc3339_ms(job.start_at)),
                checkin_at: Some(rfc3339_ms(pool.heartbeat_at)),
            },
            None => WorkerView {
                id,
                pool_id: pool.id.clone(),
                job_name: String::new(),
                job_id: String::new(),
                start_at: None,
                checkin_at: None,
            },
        }
    })
}

/// `GET /jobservice/pools/{pool_id}/workers` (`all`: every pool's).
pub async fn workers(State(state): State<Arc<AppState>>, caller: Caller, Path(pool_id): Path<String>) -> ApiResult {
    caller.require((Res::JobServiceMonitor, Act::List), On::Registry)?;
    let pools = state.registry.pools().await?;
    // A pool that has ended (or never was) has no workers: [] as Harbor
    // answers, since pools come and go under a polling dashboard.
    let all = pool_id.eq_ignore_ascii_case("all");
    let views: Vec<WorkerView> = pools.iter().filter(|p| all || p.id == pool_id).flat_map(workers_of).collect();
    Ok(Json(views).into_response())
}

/// `PUT /jobservice/jobs/{job_id}`: stops a running job (`all`: every job
/// the pools run). A job that is not found has ended: as Harbor, 200.
pub async fn stop_job(State(state): State<Arc<AppState>>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    caller.require((Res::JobServiceMonitor, Act::Stop), On::Registry)?;
    let ids: Vec<String> = if id.eq_ignore_ascii_case("all") {
        state.registry.pools().await?.into_iter().flat_map(|p| p.running).map(|j| j.job_id).collect()
    } else {
        vec![id]
    };
    for id in ids {
        if let Some((execution, task)) = parse_job_id(&id)
            && !state.registry.stop_task(execution, task).await?
        {
            tracing::info!(job = %id, "job to stop not found; it has ended");
        }
    }
    Ok(StatusCode::OK.into_response())
}

/// `GET /jobservice/jobs/{job_id}/log`.
pub async fn job_log(State(state): State<Arc<AppState>>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    caller.require((Res::JobServiceMonitor, Act::List), On::Registry)?;
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, format!("job {id} not found"));
    let (execution, task) = parse_job_id(&id).ok_or_else(not_found)?;
    if state.registry.task(execution, task).await?.is_none() {
        return Err(not_found());
    }
    let log = state.registry.task_log(execution, task).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], log).into_response())
}

/// `GET /schedules/{job_type}/paused`: whether the schedules are paused
/// (the `SCHEDULER` queue); only `all` may be asked.
pub async fn schedules_paused(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(job_type): Path<String>,
) -> ApiResult {
    caller.require_signed_in()?;
    if !job_type.eq_ignore_ascii_case("all") {
        return Err(ApiError::bad_request("job_type can only be 'all'"));
    }
    #[derive(Serialize, schemars::JsonSchema)]
    pub(super) struct SchedulerStatus {
        paused: bool,
    }
    Ok(Json(SchedulerStatus { paused: state.registry.job_queue_paused(SCHEDULER).await? }).into_response())
}

//! `/retentions`: Harbor's tag retention API over
//! [`crate::service::retention`] and the retention job's executions.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::jobs::log_response;
use super::{ApiError, ApiResult, Body, Caller, PREFIX, Paging, created, path_number};
use crate::http::state::AppState;
use crate::jobs::Status;
use crate::jobs::retention::{RetentionJob, RetentionTask, plan_payload};
use crate::rbac::{Act, Res};
use crate::service::ServiceError;
use crate::service::executions::{Execution, TaskRecord};
use crate::service::paging::Listing;
use crate::service::projects::ProjectRef;
use crate::service::record::rfc3339_ms;
use crate::service::retention::{RETENTION, RetentionPolicy};

/// The policy `id` after checking `act` on retention in its project.
async fn policy_for(state: &AppState, caller: &Caller, id: i64, act: Act) -> ApiResult<RetentionPolicy> {
    let (policy, project) = state.registry.retention(id).await?;
    let project = state.registry.project(&ProjectRef::Name(project)).await?;
    caller.require_in(state, &project, (Res::TagRetention, act)).await?;
    Ok(policy)
}

/// An execution of the policy, or 404.
async fn execution_of(state: &AppState, policy: i64, eid: i64) -> ApiResult<Execution> {
    let x = state.registry.execution(eid).await?;
    if x.record.vendor_type != RETENTION || x.record.vendor_id != policy {
        return Err(ServiceError::NotFound(format!("execution {eid} not found")).into());
    }
    Ok(x)
}

/// `GET /retentions/metadatas`: the templates and selectors berth runs.
pub async fn metadatas(caller: Caller) -> ApiResult {
    caller.require_signed_in()?;
    let template = |t: &str, text: &str, unit: Option<&str>| {
        let params = unit.map_or_else(Vec::new, |u| vec![json!({"type": "int", "unit": u, "required": true})]);
        json!({"rule_template": t, "display_text": text, "action": "retain", "params": params})
    };
    Ok(Json(json!({
        "templates": [
            template("latestPushedK", "the most recently pushed # artifacts", Some("COUNT")),
            template("latestPulledN", "the most recently pulled # artifacts", Some("COUNT")),
            template("nDaysSinceLastPush", "pushed within the last # days", Some("DAYS")),
            template("nDaysSinceLastPull", "pulled within the last # days", Some("DAYS")),
            template("always", "always", None),
        ],
        "scope_selectors": [{"display_text": "Repositories", "kind": "doublestar", "decorations": ["repoMatches", "repoExcludes"]}],
        "tag_selectors": [{"display_text": "Tags", "kind": "doublestar", "decorations": ["matches", "excludes"]}],
    }))
    .into_response())
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Body(policy): Body<RetentionPolicy>,
) -> ApiResult {
    let project = match state.registry.project(&ProjectRef::Id(policy.scope.reference)).await {
        Err(ServiceError::NotFound(_)) => {
            return Err(ApiError::bad_request(format!("invalid Project id {}", policy.scope.reference)));
        }
        other => other?,
    };
    caller.require_in(&state, &project, (Res::TagRetention, Act::Create)).await?;
    let id = caller.registry(&state).create_retention(policy).await?;
    created(&format!("{PREFIX}/retentions/{id}"))
}

pub async fn get(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(path): Path<Vec<(String, String)>>,
) -> ApiResult {
    let policy = policy_for(&state, &caller, path_number(&path, "id")?, Act::Read).await?;
    Ok(Json(policy).into_response())
}

pub async fn update(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(path): Path<Vec<(String, String)>>,
    Body(policy): Body<RetentionPolicy>,
) -> ApiResult {
    let id = path_number(&path, "id")?;
    policy_for(&state, &caller, id, Act::Update).await?;
    caller.registry(&state).update_retention(id, policy).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(path): Path<Vec<(String, String)>>,
) -> ApiResult {
    let id = path_number(&path, "id")?;
    policy_for(&state, &caller, id, Act::Delete).await?;
    caller.registry(&state).delete_retention(id).await?;
    Ok(StatusCode::OK.into_response())
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub struct TriggerBody {
    #[serde(default)]
    dry_run: bool,
}

/// `POST /retentions/{id}/executions`: a run now (`dry_run`: decide and
/// log only).
pub async fn trigger(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(path): Path<Vec<(String, String)>>,
    Body(body): Body<TriggerBody>,
) -> ApiResult {
    let id = path_number(&path, "id")?;
    // Harbor's contract has no 404 here: a policy that is not there is a
    // bad request.
    if let Err(ServiceError::NotFound(message)) = state.registry.retention(id).await {
        return Err(ApiError::bad_request(message));
    }
    policy_for(&state, &caller, id, Act::Update).await?;
    let extra = serde_json::Map::from_iter([("dry_run".to_owned(), body.dry_run.into())]);
    let eid = caller
        .registry(&state)
        .start_execution(&RetentionJob, id, "MANUAL", extra, vec![plan_payload(id, body.dry_run)])
        .await?;
    created(&format!("{PREFIX}/retentions/{id}/executions/{eid}"))
}

/// Harbor's `RetentionExecution`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct ExecutionView {
    id: i64,
    policy_id: i64,
    start_time: String,
    end_time: String,
    status: &'static str,
    trigger: String,
    dry_run: bool,
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    page: Option<String>,
    page_size: Option<String>,
    cursor: Option<String>,
}

pub async fn executions(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(path): Path<Vec<(String, String)>>,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    let id = path_number(&path, "id")?;
    policy_for(&state, &caller, id, Act::List).await?;
    let paging = Paging::parse(q.page.as_deref(), q.page_size.as_deref(), q.cursor.as_deref())?;
    let listing = state.registry.list_executions(RETENTION, id, &paging.0).await?;
    let views = listing.map(|x| ExecutionView {
        id: x.record.id,
        policy_id: id,
        start_time: rfc3339_ms(x.record.start_time),
        end_time: if x.end_time > 0 { rfc3339_ms(x.end_time) } else { String::new() },
        status: x.status.name(),
        trigger: x.record.trigger.clone(),
        dry_run: x.record.extra_attrs.get("dry_run").and_then(serde_json::Value::as_bool).unwrap_or(false),
    });
    Ok(paging.respond(&format!("/retentions/{id}/executions"), &[], views))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct OperateBody {
    #[serde(default)]
    action: String,
}

/// `PATCH /retentions/{id}/executions/{eid}` with `{"action": "stop"}`.
pub async fn operate(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(path): Path<Vec<(String, String)>>,
    Body(body): Body<OperateBody>,
) -> ApiResult {
    if body.action != "stop" {
        return Err(ApiError::bad_request("action should be 'stop'"));
    }
    let (id, eid) = (path_number(&path, "id")?, path_number(&path, "eid")?);
    policy_for(&state, &caller, id, Act::Update).await?;
    execution_of(&state, id, eid).await?;
    state.registry.stop_execution(eid).await?;
    Ok(StatusCode::OK.into_response())
}

/// Harbor's `RetentionExecutionTask`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct TaskView {
    id: i64,
    execution_id: i64,
    repository: String,
    job_id: String,
    status: &'static str,
    status_code: i64,
    status_revision: i64,
    start_time: String,
    end_time: String,
    total: u64,
    retained: u64,
}

fn status_code(s: Status) -> i64 {
    match s {
        Status::Pending => 0,
        Status::Running => 2,
        Status::Stopped | Status::Error | Status::Success => 3,
    }
}

fn task_view(t: TaskRecord) -> Option<TaskView> {
    let spec: RetentionTask = serde_json::from_value(t.payload.clone()).ok()?;
    let attr = |k: &str| t.extra_attrs.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
    Some(TaskView {
        id: t.id,
        execution_id: t.execution_id,
        repository: spec.repository?,
        job_id: crate::service::jobqueues::job_id(t.execution_id, t.id),
        status: t.status.name(),
        status_code: status_code(t.status),
        status_revision: t.version,
        start_time: if t.start_time > 0 { rfc3339_ms(t.start_time) } else { String::new() },
        end_time: if t.end_time > 0 { rfc3339_ms(t.end_time) } else { String::new() },
        total: attr("total"),
        retained: attr("retained"),
    })
}

/// `GET …/executions/{eid}/tasks`: a task per repository (the planning
/// tasks are not shown).
pub async fn tasks(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(path): Path<Vec<(String, String)>>,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    let (id, eid) = (path_number(&path, "id")?, path_number(&path, "eid")?);
    policy_for(&state, &caller, id, Act::List).await?;
    execution_of(&state, id, eid).await?;
    let paging = Paging::parse(q.page.as_deref(), q.page_size.as_deref(), None)?;
    let all: Vec<TaskView> = state.registry.tasks_of(eid).await?.into_iter().filter_map(task_view).collect();
    let listing = Listing::of_all(all, &paging.0);
    Ok(paging.respond(&format!("/retentions/{id}/executions/{eid}/tasks"), &[], listing))
}

/// `GET …/tasks/{tid}`: the task's log.
pub async fn task_log(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(path): Path<Vec<(String, String)>>,
) -> ApiResult {
    let (id, eid, tid) = (path_number(&path, "id")?, path_number(&path, "eid")?, path_number(&path, "tid")?);
    policy_for(&state, &caller, id, Act::Read).await?;
    execution_of(&state, id, eid).await?;
    log_response(&state, eid, tid).await
}

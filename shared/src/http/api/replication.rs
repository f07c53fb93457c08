//! `/replication/policies` and `/replication/executions`: Harbor's
//! replication API over [`crate::service::replication`]. All of it is the
//! system's: policies need `replication-policy`, runs `replication`
//! (administrators, and system robots granted them).
//!
//! Harbor's names differ from the job service's here: a run's status is
//! `InProgress`, `Succeed`, `Failed` or `Stopped`, a task's may also be
//! `Pending`; triggers are `manual`, `scheduled` and `event_based`. A run's
//! planning tasks are berth's own and are not listed.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::jobs::log_response;
use super::{ApiError, ApiResult, Body, Caller, Id, PREFIX, Paging, created, path_number};
use crate::auth::On;
use crate::http::state::AppState;
use crate::jobs::Status;
use crate::rbac::{Act, Res};
use crate::service::ServiceError;
use crate::service::executions::{Execution, TaskRecord};
use crate::service::paging::{Listing, Match, PageRequest};
use crate::service::record::rfc3339_ms;
use crate::service::registries::RegistryEndpoint;
use crate::service::replication::plan::ReplicationTask;
use crate::service::replication::{Filter, PolicyInput, REPLICATION, ReplicationPolicy};
use crate::service::{Registry, ServiceResult};

/// Harbor's `Registry` in a policy: only its id is read.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct RegistryRef {
    id: Option<i64>,
}

#[derive(Debug, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(default)]
pub struct TriggerSettings {
    cron: Option<String>,
}

/// Harbor's `ReplicationTrigger`.
#[derive(Debug, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(default)]
pub struct TriggerBody {
    #[serde(rename = "type")]
    kind: Option<String>,
    trigger_settings: Option<TriggerSettings>,
}

/// Harbor's `ReplicationFilter`.
#[derive(Debug, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(default)]
pub struct FilterBody {
    #[serde(rename = "type")]
    kind: Option<String>,
    value: Option<Value>,
    decoration: Option<String>,
}

/// Harbor's `ReplicationPolicy`, as sent.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct PolicyBody {
    name: Option<String>,
    description: Option<String>,
    src_registry: Option<RegistryRef>,
    dest_registry: Option<RegistryRef>,
    dest_namespace: Option<String>,
    dest_namespace_replace_count: Option<i32>,
    trigger: Option<TriggerBody>,
    filters: Option<Vec<FilterBody>>,
    replicate_deletion: Option<bool>,
    /// Deprecated in Harbor for `replicate_deletion`.
    deletion: Option<bool>,
    #[serde(rename = "override")]
    override_: Option<bool>,
    enabled: Option<bool>,
    speed: Option<i32>,
    copy_by_chunk: Option<bool>,
    single_active_replication: Option<bool>,
}

fn input_of(body: PolicyBody) -> Result<PolicyInput, ApiError> {
    let mut filters = Vec::new();
    for f in body.filters.unwrap_or_default() {
        let kind = f.kind.unwrap_or_default();
        let value = f.value.unwrap_or(Value::Null);
        filters.push(Filter::from_harbor(&kind, &value, f.decoration.as_deref().unwrap_or(""))?);
    }
    let trigger = body.trigger.unwrap_or_default();
    Ok(PolicyInput {
        name: body.name.unwrap_or_default(),
        description: body.description.unwrap_or_default(),
        src_registry: body.src_registry.and_then(|r| r.id),
        dest_registry: body.dest_registry.and_then(|r| r.id),
        dest_namespace: body.dest_namespace.unwrap_or_default(),
        dest_namespace_replace_count: body.dest_namespace_replace_count,
        trigger: trigger.kind.unwrap_or_default(),
        cron: trigger.trigger_settings.and_then(|s| s.cron).unwrap_or_default(),
        filters,
        replicate_deletion: body.replicate_deletion.or(body.deletion).unwrap_or(false),
        override_: body.override_.unwrap_or(false),
        enabled: body.enabled.unwrap_or(true),
        speed: body.speed,
        copy_by_chunk: body.copy_by_chunk.unwrap_or(false),
        single_active_replication: body.single_active_replication.unwrap_or(false),
    })
}

/// Harbor's `ReplicationPolicy`, as shown.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct PolicyView {
    id: i64,
    name: String,
    description: String,
    src_registry: Value,
    dest_registry: Value,
    dest_namespace: String,
    dest_namespace_replace_count: i32,
    trigger: TriggerBody,
    filters: Vec<FilterBody>,
    replicate_deletion: bool,
    deletion: bool,
    #[serde(rename = "override")]
    override_: bool,
    enabled: bool,
    creation_time: String,
    update_time: String,
    speed: i32,
    copy_by_chunk: bool,
    single_active_replication: bool,
}

/// berth itself as Harbor shows its local registry (id 0).
fn local_registry(external_url: &str) -> Value {
    json!({
        "id": 0, "name": "Local", "url": external_url, "type": "harbor", "insecure": true,
        "status": "healthy", "description": "",
        "credential": {"type": "secret", "access_key": "", "access_secret": ""},
        "creation_time": "0001-01-01T00:00:00.000Z", "update_time": "0001-01-01T00:00:00.000Z",
    })
}

fn registry_value(e: RegistryEndpoint) -> Value {
    serde_json::to_value(super::registries::RegistryView::from(e)).unwrap_or(Value::Null)
}

async fn side(reg: &Registry, id: Option<i64>, external_url: &str) -> ServiceResult<Value> {
    match id {
        None => Ok(local_registry(external_url)),
        Some(id) => match reg.registry_endpoint(id).await {
            Ok(e) => Ok(registry_value(e)),
            Err(ServiceError::NotFound(_)) => Ok(json!({"id": id})),
            Err(e) => Err(e),
        },
    }
}

async fn policy_view(state: &AppState, p: ReplicationPolicy) -> ServiceResult<PolicyView> {
    let external = state.ctx.config.server.external_url.clone().unwrap_or_default();
    let filters = p
        .filters
        .iter()
        .map(|f| {
            let (kind, value, decoration) = f.to_harbor();
            FilterBody {
                kind: Some(kind.to_owned()),
                value: Some(value),
                decoration: (!decoration.is_empty()).then(|| decoration.to_owned()),
            }
        })
        .collect();
    Ok(PolicyView {
        id: p.id,
        src_registry: side(&state.registry, p.src_registry, &external).await?,
        dest_registry: side(&state.registry, p.dest_registry, &external).await?,
        name: p.name,
        description: p.description,
        dest_namespace: p.dest_namespace,
        dest_namespace_replace_count: p.dest_namespace_replace_count,
        trigger: TriggerBody {
            kind: Some(p.trigger.name().to_owned()),
            trigger_settings: Some(TriggerSettings { cron: Some(p.cron) }),
        },
        filters,
        replicate_deletion: p.replicate_deletion,
        deletion: p.replicate_deletion,
        override_: p.override_,
        enabled: p.enabled,
        creation_time: rfc3339_ms(p.creation_time),
        update_time: rfc3339_ms(p.update_time),
        speed: p.speed,
        copy_by_chunk: p.copy_by_chunk,
        single_active_replication: p.single_active_replication,
    })
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    sort: Option<String>,
    page: Option<String>,
    page_size: Option<String>,
    cursor: Option<String>,
    /// Deprecated in Harbor for `q`.
    name: Option<String>,
}

pub async fn list(State(state): State<Arc<AppState>>, caller: Caller, Query(q): Query<ListQuery>) -> ApiResult {
    caller.require((Res::ReplicationPolicy, Act::List), On::Registry)?;
    let paging = Paging::parse(q.page.as_deref(), q.page_size.as_deref(), q.cursor.as_deref())?;
    let mut name = super::parse_q(q.q.as_deref())?.remove("name");
    if let Some(n) = q.name.as_deref().filter(|n| !n.is_empty()) {
        name = Some(Match::Fuzzy(n.to_owned()));
    }
    let listing = state.registry.list_replication_policies(name.as_ref(), &paging.0).await?;
    let mut views = Vec::with_capacity(listing.items.len());
    for p in listing.items {
        views.push(policy_view(&state, p).await?);
    }
    let rest: Vec<(&str, &str)> = [("q", &q.q), ("sort", &q.sort), ("name", &q.name)]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
        .collect();
    Ok(paging.respond(
        "/replication/policies",
        &rest,
        Listing { items: views, total: listing.total, next: listing.next },
    ))
}

pub async fn create(State(state): State<Arc<AppState>>, caller: Caller, Body(body): Body<PolicyBody>) -> ApiResult {
    caller.require((Res::ReplicationPolicy, Act::Create), On::Registry)?;
    let p = caller.registry(&state).create_replication_policy(input_of(body)?).await?;
    created(&format!("{PREFIX}/replication/policies/{}", p.id))
}

pub async fn get(State(state): State<Arc<AppState>>, caller: Caller, Id(id): Id) -> ApiResult {
    caller.require((Res::ReplicationPolicy, Act::Read), On::Registry)?;
    let p = state.registry.replication_policy(id).await?;
    Ok(Json(policy_view(&state, p).await?).into_response())
}

pub async fn update(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Id(id): Id,
    Body(body): Body<PolicyBody>,
) -> ApiResult {
    caller.require((Res::ReplicationPolicy, Act::Update), On::Registry)?;
    caller.registry(&state).update_replication_policy(id, input_of(body)?).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn delete(State(state): State<Arc<AppState>>, caller: Caller, Id(id): Id) -> ApiResult {
    caller.require((Res::ReplicationPolicy, Act::Delete), On::Registry)?;
    caller.registry(&state).delete_replication_policy(id).await?;
    Ok(StatusCode::OK.into_response())
}

// ------------------------------------------------------------ executions

/// Harbor's `StartReplicationExecution`.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct StartBody {
    policy_id: Option<i64>,
}

fn trigger_name(t: &str) -> &'static str {
    match t {
        "SCHEDULE" => "scheduled",
        "EVENT" => "event_based",
        _ => "manual",
    }
}

fn execution_status(s: Status) -> &'static str {
    match s {
        Status::Pending | Status::Running => "InProgress",
        Status::Success => "Succeed",
        Status::Error => "Failed",
        Status::Stopped => "Stopped",
    }
}

fn task_status(s: Status) -> &'static str {
    match s {
        Status::Pending => "Pending",
        Status::Running => "InProgress",
        other => execution_status(other),
    }
}

/// Harbor's `ReplicationExecution`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ExecutionView {
    id: i64,
    policy_id: i64,
    status: &'static str,
    trigger: &'static str,
    start_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_time: Option<String>,
    status_text: String,
    total: u64,
    failed: u64,
    succeed: u64,
    in_progress: u64,
    stopped: u64,
}

async fn execution_view(reg: &Registry, x: Execution) -> ServiceResult<ExecutionView> {
    let tasks = reg.tasks_of(x.record.id).await?;
    let counts = Registry::replication_counts(&tasks);
    let n = |s: Status| counts.iter().find(|(c, _)| *c == s).map_or(0, |(_, n)| *n);
    Ok(ExecutionView {
        id: x.record.id,
        policy_id: x.record.vendor_id,
        status: execution_status(x.status),
        trigger: trigger_name(&x.record.trigger),
        start_time: rfc3339_ms(x.record.start_time),
        end_time: (x.end_time > 0).then(|| rfc3339_ms(x.end_time)),
        status_text: x.status_message,
        total: counts.iter().map(|(_, n)| n).sum(),
        failed: n(Status::Error),
        succeed: n(Status::Success),
        in_progress: n(Status::Pending) + n(Status::Running),
        stopped: n(Status::Stopped),
    })
}

/// Harbor's `ReplicationTask`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct TaskView {
    id: i64,
    execution_id: i64,
    status: &'static str,
    job_id: String,
    operation: String,
    resource_type: String,
    src_resource: String,
    dst_resource: String,
    start_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_time: Option<String>,
}

fn task_view(t: TaskRecord) -> TaskView {
    let parsed: Option<ReplicationTask> = serde_json::from_value(t.payload.clone()).ok();
    let (src, dst) = parsed.as_ref().map(ReplicationTask::resources).unwrap_or_default();
    TaskView {
        id: t.id,
        execution_id: t.execution_id,
        status: task_status(t.status),
        job_id: t.id.to_string(),
        operation: parsed.as_ref().map_or("copy", ReplicationTask::operation).to_owned(),
        resource_type: "artifact".to_owned(),
        src_resource: src,
        dst_resource: dst,
        start_time: rfc3339_ms(if t.start_time > 0 { t.start_time } else { t.creation_time }),
        end_time: (t.end_time > 0).then(|| rfc3339_ms(t.end_time)),
    }
}

#[derive(Debug, Deserialize)]
pub struct ExecutionsQuery {
    policy_id: Option<String>,
    status: Option<String>,
    trigger: Option<String>,
    sort: Option<String>,
    page: Option<String>,
    page_size: Option<String>,
    cursor: Option<String>,
}

/// Most executions per policy looked at when every policy's are listed.
const MERGED_PER_POLICY: usize = 100;

pub async fn start(State(state): State<Arc<AppState>>, caller: Caller, Body(body): Body<StartBody>) -> ApiResult {
    caller.require((Res::Replication, Act::Create), On::Registry)?;
    let policy = body.policy_id.ok_or_else(|| ApiError::bad_request("policy_id is required"))?;
    let id = match caller.registry(&state).start_replication(policy, "MANUAL").await {
        Err(ServiceError::NotFound(m)) => return Err(ApiError::bad_request(m)),
        other => other?,
    };
    created(&format!("{PREFIX}/replication/executions/{id}"))
}

pub async fn executions(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(q): Query<ExecutionsQuery>,
) -> ApiResult {
    caller.require((Res::Replication, Act::List), On::Registry)?;
    let paging = Paging::parse(q.page.as_deref(), q.page_size.as_deref(), q.cursor.as_deref())?;
    let policy_id = match q.policy_id.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => {
            Some(p.parse::<i64>().map_err(|_| ApiError::bad_request(format!("policy_id {p:?} is not a number")))?)
        }
        None => None,
    };
    let keep = |v: &ExecutionView| {
        q.status.as_deref().is_none_or(|s| s.is_empty() || s.eq_ignore_ascii_case(v.status))
            && q.trigger.as_deref().is_none_or(|t| t.is_empty() || t.eq_ignore_ascii_case(v.trigger))
    };
    let listing = match policy_id {
        Some(id) => {
            let listing = state.registry.list_executions(REPLICATION, id, &paging.0).await?;
            let mut views = Vec::new();
            for x in listing.items {
                let v = execution_view(&state.registry, x).await?;
                if keep(&v) {
                    views.push(v);
                }
            }
            Listing { items: views, total: listing.total, next: listing.next }
        }
        None => {
            // Every policy's latest runs, newest first: each policy gives at
            // most as many as the page needs (unfiltered), or its latest
            // MERGED_PER_POLICY when a filter must look at their status.
            let filtered = q.status.as_deref().is_some_and(|s| !s.is_empty())
                || q.trigger.as_deref().is_some_and(|t| !t.is_empty());
            let page = paging.0.page.max(1);
            let needed = usize::try_from(page).unwrap_or(usize::MAX).saturating_mul(paging.0.size);
            let per_policy = if filtered { MERGED_PER_POLICY } else { needed.clamp(1, MERGED_PER_POLICY) };
            let mut all = Vec::new();
            let mut total = 0u64;
            let mut req = PageRequest::first(crate::service::paging::MAX_PAGE_SIZE);
            loop {
                let policies = state.registry.list_replication_policies(None, &req).await?;
                for p in &policies.items {
                    let xs = state.registry.list_executions(REPLICATION, p.id, &PageRequest::first(per_policy)).await?;
                    total += xs.total;
                    all.extend(xs.items);
                }
                match policies.next {
                    Some(n) => req.after = Some(n),
                    None => break,
                }
            }
            all.sort_by_key(|x| std::cmp::Reverse(x.record.id));
            if filtered {
                let mut views = Vec::new();
                for x in all {
                    let v = execution_view(&state.registry, x).await?;
                    if keep(&v) {
                        views.push(v);
                    }
                }
                Listing::of_all(views, &paging.0)
            } else {
                // Only the page's runs are looked at more closely.
                let start = needed.saturating_sub(paging.0.size);
                let mut views = Vec::new();
                for x in all.into_iter().skip(start).take(paging.0.size) {
                    views.push(execution_view(&state.registry, x).await?);
                }
                let shown = u64::try_from(start + views.len()).unwrap_or(u64::MAX);
                let next = (shown < total).then(String::new);
                Listing { items: views, total, next }
            }
        }
    };
    let rest: Vec<(&str, &str)> =
        [("policy_id", &q.policy_id), ("status", &q.status), ("trigger", &q.trigger), ("sort", &q.sort)]
            .into_iter()
            .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
            .collect();
    Ok(paging.respond("/replication/executions", &rest, listing))
}

/// The id of the replication execution the path names, once the caller
/// may `act` on runs.
async fn execution_id(state: &AppState, caller: &Caller, path: &[(String, String)], act: Act) -> ApiResult<i64> {
    caller.require((Res::Replication, act), On::Registry)?;
    let id = path_number(path, "id")?;
    let x = state.registry.execution_record(id).await?;
    if x.vendor_type != REPLICATION {
        return Err(ServiceError::NotFound(format!("execution {id} not found")).into());
    }
    Ok(id)
}

pub async fn execution(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(path): Path<Vec<(String, String)>>,
) -> ApiResult {
    let id = execution_id(&state, &caller, &path, Act::Read).await?;
    let x = state.registry.execution(id).await?;
    Ok(Json(execution_view(&state.registry, x).await?).into_response())
}

/// `PUT /replication/executions/{id}`: stops the run.
pub async fn stop(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(path): Path<Vec<(String, String)>>,
) -> ApiResult {
    let id = execution_id(&state, &caller, &path, Act::Update).await?;
    state.registry.stop_execution(id).await?;
    Ok(StatusCode::OK.into_response())
}

#[derive(Debug, Deserialize)]
pub struct TasksQuery {
    status: Option<String>,
    resource_type: Option<String>,
    sort: Option<String>,
    page: Option<String>,
    page_size: Option<String>,
    cursor: Option<String>,
}

pub async fn tasks(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(path): Path<Vec<(String, String)>>,
    Query(q): Query<TasksQuery>,
) -> ApiResult {
    let paging = Paging::parse(q.page.as_deref(), q.page_size.as_deref(), q.cursor.as_deref())?;
    let id = execution_id(&state, &caller, &path, Act::Read).await?;
    let views: Vec<TaskView> = state
        .registry
        .tasks_of(id)
        .await?
        .into_iter()
        .filter(|t| Registry::is_replication_task(&t.payload))
        .map(task_view)
        .filter(|t| q.status.as_deref().is_none_or(|s| s.is_empty() || s.eq_ignore_ascii_case(t.status)))
        .filter(|t| q.resource_type.as_deref().is_none_or(|r| r.is_empty() || *r == t.resource_type))
        .collect();
    let rest: Vec<(&str, &str)> = [("status", &q.status), ("resource_type", &q.resource_type), ("sort", &q.sort)]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
        .collect();
    Ok(paging.respond(&format!("/replication/executions/{id}/tasks"), &rest, Listing::of_all(views, &paging.0)))
}

pub async fn task_log(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(path): Path<Vec<(String, String)>>,
) -> ApiResult {
    let id = execution_id(&state, &caller, &path, Act::Read).await?;
    log_response(&state, id, path_number(&path, "task_id")?).await
}

//! `/projects/{p}/webhook/*`: Harbor's webhook policy API over
//! [`crate::service::webhooks`], and each policy's executions, tasks and
//! task logs ([`crate::service::executions`]).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};

use super::jobs::{ExecutionView, TaskView, log_response};
use super::projects::{Target, project_for};
use super::{ApiError, ApiResult, Body, Caller, PREFIX, Paging, created, parse_q, path_number};
use crate::events::WEBHOOK_EVENT_TYPES;
use crate::http::state::AppState;
use crate::rbac::{Act, Res};
use crate::service::ServiceError;
use crate::service::projects::{Project, ProjectRef};
use crate::service::webhooks::{PolicyInput, Target as HookTarget, WEBHOOK, WebhookPolicy};

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    page: Option<String>,
    page_size: Option<String>,
    cursor: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct PolicyBody {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    targets: Vec<HookTarget>,
    #[serde(default)]
    event_types: Vec<String>,
    #[serde(default = "yes")]
    enabled: bool,
}

fn yes() -> bool {
    true
}

impl From<PolicyBody> for PolicyInput {
    fn from(b: PolicyBody) -> Self {
        Self {
            name: b.name,
            description: b.description,
            targets: b.targets,
            event_types: b.event_types,
            enabled: b.enabled,
        }
    }
}

/// Harbor's `WebhookPolicy`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct PolicyView {
    id: i64,
    name: String,
    description: String,
    project_id: i64,
    targets: Vec<HookTarget>,
    event_types: Vec<String>,
    creator: String,
    creation_time: String,
    update_time: String,
    enabled: bool,
}

fn policy_view(p: WebhookPolicy) -> PolicyView {
    PolicyView {
        id: p.id,
        name: p.name,
        description: p.description,
        project_id: p.project_id,
        targets: p.targets,
        event_types: p.event_types,
        creator: p.creator,
        creation_time: super::rfc3339(p.creation_time),
        update_time: super::rfc3339(p.update_time),
        enabled: p.enabled,
    }
}

async fn policy_for(
    state: &AppState,
    caller: &Caller,
    r: &ProjectRef,
    id: i64,
    act: Act,
) -> ApiResult<(Project, WebhookPolicy)> {
    let (project, _) = project_for(state, caller, r, (Res::NotificationPolicy, act)).await?;
    let policy = state.registry.webhook_policy(&ProjectRef::Name(project.name.clone()), id).await?;
    Ok((project, policy))
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Target(r): Target,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    let paging = Paging::parse(q.page.as_deref(), q.page_size.as_deref(), q.cursor.as_deref())?;
    let (project, _) = project_for(&state, &caller, &r, (Res::NotificationPolicy, Act::List)).await?;
    let mut terms = parse_q(q.q.as_deref())?;
    let name = terms.remove("name");
    let listing = state.registry.list_webhook_policies(&r, name.as_ref(), &paging.0).await?;
    let path = format!("/projects/{}/webhook/policies", project.project_id);
    let rest: Vec<(&str, &str)> = q.q.as_deref().map(|v| ("q", v)).into_iter().collect();
    Ok(paging.respond(&path, &rest, listing.map(policy_view)))
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Target(r): Target,
    Body(body): Body<PolicyBody>,
) -> ApiResult {
    let (project, _) = project_for(&state, &caller, &r, (Res::NotificationPolicy, Act::Create)).await?;
    let policy =
        caller.registry(&state).create_webhook_policy(&ProjectRef::Name(project.name.clone()), body.into()).await?;
    created(&format!("{PREFIX}/projects/{}/webhook/policies/{}", project.project_id, policy.id))
}

pub async fn get(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Target(r): Target,
    Path(path): Path<Vec<(String, String)>>,
) -> ApiResult {
    let (_, policy) = policy_for(&state, &caller, &r, path_number(&path, "webhook_policy_id")?, Act::Read).await?;
    Ok(Json(policy_view(policy)).into_response())
}

pub async fn update(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Target(r): Target,
    Path(path): Path<Vec<(String, String)>>,
    Body(body): Body<PolicyBody>,
) -> ApiResult {
    let (project, policy) =
        policy_for(&state, &caller, &r, path_number(&path, "webhook_policy_id")?, Act::Update).await?;
    state.registry.update_webhook_policy(&ProjectRef::Name(project.name), policy.id, body.into()).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Target(r): Target,
    Path(path): Path<Vec<(String, String)>>,
) -> ApiResult {
    let (project, policy) =
        policy_for(&state, &caller, &r, path_number(&path, "webhook_policy_id")?, Act::Delete).await?;
    state.registry.delete_webhook_policy(&ProjectRef::Name(project.name), policy.id).await?;
    Ok(StatusCode::OK.into_response())
}

/// `GET …/policies/{id}/executions`: the policy's deliveries, newest first.
pub async fn executions(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Target(r): Target,
    Path(path): Path<Vec<(String, String)>>,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    let paging = Paging::parse(q.page.as_deref(), q.page_size.as_deref(), q.cursor.as_deref())?;
    let (project, policy) =
        policy_for(&state, &caller, &r, path_number(&path, "webhook_policy_id")?, Act::Read).await?;
    let listing = state.registry.list_executions(WEBHOOK, policy.id, &paging.0).await?;
    let p = format!("/projects/{}/webhook/policies/{}/executions", project.project_id, policy.id);
    Ok(paging.respond(&p, &[], listing.map(ExecutionView::from)))
}

/// The execution of `path` when it belongs to the policy.
async fn execution_of(state: &AppState, caller: &Caller, r: &ProjectRef, path: &[(String, String)]) -> ApiResult<i64> {
    let (_, policy) = policy_for(state, caller, r, path_number(path, "webhook_policy_id")?, Act::Read).await?;
    let id = path_number(path, "execution_id")?;
    let x = state.registry.execution_record(id).await?;
    if x.vendor_type != WEBHOOK || x.vendor_id != policy.id {
        return Err(ServiceError::NotFound(format!("execution {id} not found")).into());
    }
    Ok(id)
}

pub async fn tasks(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Target(r): Target,
    Path(path): Path<Vec<(String, String)>>,
) -> ApiResult {
    let id = execution_of(&state, &caller, &r, &path).await?;
    let tasks: Vec<TaskView> = state.registry.tasks_of(id).await?.into_iter().map(TaskView::from).collect();
    let mut resp = Json(&tasks).into_response();
    resp.headers_mut().insert("x-total-count", tasks.len().into());
    Ok(resp)
}

pub async fn task_log(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Target(r): Target,
    Path(path): Path<Vec<(String, String)>>,
) -> ApiResult {
    let id = execution_of(&state, &caller, &r, &path).await?;
    log_response(&state, id, path_number(&path, "task_id")?).await
}

/// `GET …/webhook/events`: what a policy may name.
pub async fn event_types(State(state): State<Arc<AppState>>, caller: Caller, Target(r): Target) -> ApiResult {
    project_for(&state, &caller, &r, (Res::NotificationPolicy, Act::Read)).await?;
    #[derive(Serialize, schemars::JsonSchema)]
    pub(super) struct Formats {
        notify_type: &'static str,
        formats: &'static [&'static str],
    }
    #[derive(Serialize, schemars::JsonSchema)]
    pub(super) struct Supported {
        event_type: Vec<&'static str>,
        notify_type: [&'static str; 2],
        payload_formats: [Formats; 2],
    }
    Ok(Json(Supported {
        event_type: WEBHOOK_EVENT_TYPES.iter().map(|k| k.name()).collect(),
        notify_type: ["http", "slack"],
        payload_formats: [
            Formats { notify_type: "http", formats: &["Default", "CloudEvents"] },
            Formats { notify_type: "slack", formats: &["Default"] },
        ],
    })
    .into_response())
}

/// `GET …/webhook/lasttrigger`: when each policy last fired, per event type.
pub async fn last_trigger(State(state): State<Arc<AppState>>, caller: Caller, Target(r): Target) -> ApiResult {
    let (project, _) = project_for(&state, &caller, &r, (Res::NotificationPolicy, Act::List)).await?;
    #[derive(Serialize, schemars::JsonSchema)]
    pub(super) struct LastTrigger {
        policy_name: String,
        enabled: bool,
        event_type: String,
        creation_time: String,
        last_trigger_time: String,
    }
    let mut out = Vec::new();
    let mut req = crate::service::paging::PageRequest::first(100);
    loop {
        let page = state.registry.list_webhook_policies(&ProjectRef::Name(project.name.clone()), None, &req).await?;
        for p in &page.items {
            for (event_type, at) in state.registry.webhook_last_triggers(p).await? {
                out.push(LastTrigger {
                    policy_name: p.name.clone(),
                    enabled: p.enabled,
                    event_type,
                    creation_time: super::rfc3339(p.creation_time),
                    last_trigger_time: crate::service::record::rfc3339_ms(at),
                });
            }
        }
        match page.next {
            Some(n) => req.after = Some(n),
            None => break,
        }
    }
    Ok(Json(out).into_response())
}

#[derive(Debug, Deserialize)]
pub struct JobsQuery {
    policy_id: Option<String>,
}

/// `GET …/webhook/jobs?policy_id=` (deprecated in Harbor): the policy's
/// delivery tasks, newest executions first.
pub async fn jobs(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Target(r): Target,
    Query(q): Query<JobsQuery>,
) -> ApiResult {
    let id = q
        .policy_id
        .as_deref()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| ApiError::bad_request("policy_id is required"))?;
    let (_, policy) = policy_for(&state, &caller, &r, id, Act::List).await?;
    #[derive(Serialize, schemars::JsonSchema)]
    pub(super) struct JobView {
        id: i64,
        policy_id: i64,
        event_type: String,
        notify_type: String,
        status: &'static str,
        job_detail: String,
        creation_time: String,
        update_time: String,
    }
    let mut out = Vec::new();
    let recent =
        state.registry.list_executions(WEBHOOK, policy.id, &crate::service::paging::PageRequest::first(50)).await?;
    for x in recent.items {
        let event_type = x.record.extra_attrs.get("event_type").and_then(|v| v.as_str()).unwrap_or_default().to_owned();
        for t in state.registry.tasks_of(x.record.id).await? {
            let notify_type = t.payload.pointer("/target/type").and_then(|v| v.as_str()).unwrap_or("http").to_owned();
            out.push(JobView {
                id: t.id,
                policy_id: policy.id,
                event_type: event_type.clone(),
                notify_type,
                status: t.status.name(),
                job_detail: t.status_message.clone(),
                creation_time: crate::service::record::rfc3339_ms(t.creation_time),
                update_time: crate::service::record::rfc3339_ms(t.update_time),
            });
        }
    }
    Ok(Json(out).into_response())
}

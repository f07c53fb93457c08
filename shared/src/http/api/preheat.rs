//! `/p2p/preheat/*` and a project's `/preheat/*`: Harbor's P2P preheat API
//! over [`crate::service::preheat`]. Instances are the system's
//! (`preheat-instance`: administrators); policies follow the project's
//! `preheat-policy` role (project administrators). A project's name in
//! these paths is always a name, as Harbor's `project_name`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};

use super::jobs::{ExecutionView, TaskView, log_response};
use super::projects::project_for;
use super::{ApiError, ApiResult, Body, Caller, PREFIX, Paging, created, parse_q, path_number};
use crate::auth::On;
use crate::auth::seal::Sealer;
use crate::http::state::AppState;
use crate::rbac::{Act, Res};
use crate::service::ServiceError;
use crate::service::paging::{Listing, Match};
use crate::service::preheat::{Instance, InstanceInput, P2P_PREHEAT, PolicyInput, PreheatPolicy};
use crate::service::projects::{Project, ProjectRef};

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    page: Option<String>,
    page_size: Option<String>,
    cursor: Option<String>,
    sort: Option<String>,
}

/// Harbor's `Instance`, as sent.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct InstanceBody {
    id: i64,
    name: String,
    description: String,
    vendor: String,
    endpoint: String,
    auth_mode: String,
    auth_info: Option<BTreeMap<String, String>>,
    enabled: bool,
    default: bool,
    insecure: bool,
}

impl From<InstanceBody> for InstanceInput {
    fn from(b: InstanceBody) -> Self {
        Self {
            name: b.name,
            description: b.description,
            vendor: b.vendor,
            endpoint: b.endpoint,
            auth_mode: b.auth_mode,
            auth_info: b.auth_info.unwrap_or_default(),
            enabled: b.enabled,
            default: b.default,
            insecure: b.insecure,
        }
    }
}

/// Harbor's `Instance`, as shown: secrets masked.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct InstanceView {
    id: i64,
    name: String,
    description: String,
    vendor: String,
    endpoint: String,
    auth_mode: String,
    auth_info: BTreeMap<String, String>,
    status: String,
    enabled: bool,
    default: bool,
    insecure: bool,
    setup_timestamp: i64,
}

fn instance_view(i: Instance) -> InstanceView {
    InstanceView {
        auth_info: i.masked_auth_info(),
        id: i.id,
        name: i.name,
        description: i.description,
        vendor: i.vendor,
        endpoint: i.endpoint,
        auth_mode: i.auth_mode,
        status: "Unknown".to_owned(),
        enabled: i.enabled,
        default: i.default,
        insecure: i.insecure,
        setup_timestamp: i.setup_timestamp,
    }
}

/// Harbor's `ProviderUnderProject`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct ProviderUnderProject {
    id: i64,
    provider: String,
    enabled: bool,
    default: bool,
}

/// Harbor's `PreheatPolicy`, as sent.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct PolicyBody {
    name: String,
    description: String,
    provider_id: i64,
    filters: String,
    trigger: String,
    enabled: bool,
    scope: String,
    extra_attrs: String,
}

impl From<PolicyBody> for PolicyInput {
    fn from(b: PolicyBody) -> Self {
        Self {
            name: b.name,
            description: b.description,
            provider_id: b.provider_id,
            filters: b.filters,
            trigger: b.trigger,
            enabled: b.enabled,
            scope: b.scope,
            extra_attrs: b.extra_attrs,
        }
    }
}

/// Harbor's `PreheatPolicy`, as shown.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct PolicyView {
    id: i64,
    name: String,
    description: String,
    project_id: i64,
    provider_id: i64,
    provider_name: String,
    filters: String,
    trigger: String,
    enabled: bool,
    scope: String,
    extra_attrs: String,
    creation_time: String,
    update_time: String,
}

/// The policy as shown, naming its instance as it is now called.
fn policy_view(p: PreheatPolicy, instances: &[Instance]) -> PolicyView {
    let provider_name = instances.iter().find(|i| i.id == p.provider_id).map_or(p.provider_name, |i| i.name.clone());
    PolicyView {
        id: p.id,
        name: p.name,
        description: p.description,
        project_id: p.project_id,
        provider_id: p.provider_id,
        provider_name,
        filters: p.filters,
        trigger: p.trigger,
        enabled: p.enabled,
        scope: p.scope,
        extra_attrs: p.extra_attrs,
        creation_time: super::rfc3339(p.creation_time),
        update_time: super::rfc3339(p.update_time),
    }
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct StopBody {
    status: String,
}

fn sealer(state: &AppState) -> ApiResult<Sealer> {
    Sealer::new(&state.ctx.token_keys)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("no seal key: {e}")))
}

fn param<'a>(path: &'a [(String, String)], name: &str) -> &'a str {
    path.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
}

/// The project a `/projects/{project_name}/preheat/…` path names.
fn project_ref(path: &[(String, String)]) -> ProjectRef {
    ProjectRef::Name(param(path, "project_name_or_id").to_owned())
}

pub async fn providers(caller: Caller) -> ApiResult {
    caller.require((Res::PreheatInstance, Act::List), On::Registry)?;
    Ok(Json(crate::p2p::providers()).into_response())
}

pub async fn list_instances(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    caller.require((Res::PreheatInstance, Act::List), On::Registry)?;
    let paging = Paging::parse(q.page.as_deref(), q.page_size.as_deref(), q.cursor.as_deref())?.sorted(
        q.sort.as_deref(),
        "name",
        false,
    );
    let terms = parse_q(q.q.as_deref())?;
    let keeps = |term: &str, value: &str| terms.get(term).is_none_or(|m: &Match| m.matches(value));
    let mut all: Vec<Instance> = state
        .registry
        .p2p_instances()
        .await?
        .into_iter()
        .filter(|i| {
            keeps("name", &i.name)
                && keeps("vendor", &i.vendor)
                && keeps("endpoint", &i.endpoint)
                && keeps("description", &i.description)
        })
        .collect();
    if paging.0.descending {
        all.reverse();
    }
    let listing = Listing::of_all(all, &paging.0).map(instance_view);
    let rest: Vec<(&str, &str)> =
        [("q", &q.q), ("sort", &q.sort)].into_iter().filter_map(|(k, v)| v.as_deref().map(|v| (k, v))).collect();
    Ok(paging.respond("/p2p/preheat/instances", &rest, listing))
}

pub async fn create_instance(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Body(body): Body<InstanceBody>,
) -> ApiResult {
    caller.require((Res::PreheatInstance, Act::Create), On::Registry)?;
    let instance = caller.registry(&state).create_p2p_instance(&sealer(&state)?, body.into()).await?;
    created(&format!("{PREFIX}/p2p/preheat/instances/{}", instance.id))
}

pub async fn get_instance(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(path): Path<Vec<(String, String)>>,
) -> ApiResult {
    caller.require((Res::PreheatInstance, Act::Read), On::Registry)?;
    let instance = state.registry.p2p_instance(param(&path, "preheat_instance_name")).await?;
    Ok(Json(instance_view(instance)).into_response())
}

pub async fn update_instance(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(path): Path<Vec<(String, String)>>,
    Body(body): Body<InstanceBody>,
) -> ApiResult {
    caller.require((Res::PreheatInstance, Act::Update), On::Registry)?;
    let name = param(&path, "preheat_instance_name");
    caller.registry(&state).update_p2p_instance(&sealer(&state)?, name, body.into()).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn delete_instance(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(path): Path<Vec<(String, String)>>,
) -> ApiResult {
    caller.require((Res::PreheatInstance, Act::Delete), On::Registry)?;
    caller.registry(&state).delete_p2p_instance(param(&path, "preheat_instance_name")).await?;
    Ok(StatusCode::OK.into_response())
}

/// `POST /p2p/preheat/instances/ping`: a stored instance (by `id`, its
/// masked secrets the stored ones) or the settings given.
pub async fn ping_instance(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Body(body): Body<InstanceBody>,
) -> ApiResult {
    caller.require((Res::PreheatInstance, Act::Read), On::Registry)?;
    let sealer = sealer(&state)?;
    let driver = if body.id > 0 {
        let stored = state
            .registry
            .p2p_instance_by_id(body.id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("instance {} not found", body.id)))?;
        stored.driver(&sealer)?
    } else {
        if body.endpoint.trim().is_empty() {
            return Err(ApiError::bad_request("the instance's endpoint is required"));
        }
        let mut input = InstanceInput::from(body);
        if input.name.trim().is_empty() {
            "ping".clone_into(&mut input.name);
        }
        crate::service::preheat::check_instance(&mut input)?;
        let auth = match input.auth_mode.as_str() {
            "BASIC" => crate::p2p::Auth::Basic {
                username: input.auth_info.get("username").cloned().unwrap_or_default(),
                password: input.auth_info.get("password").cloned().unwrap_or_default(),
            },
            "OAUTH" => crate::p2p::Auth::Bearer(input.auth_info.get("token").cloned().unwrap_or_default()),
            _ => crate::p2p::Auth::None,
        };
        crate::p2p::Driver { vendor: input.vendor, endpoint: input.endpoint, auth, insecure: input.insecure }
    };
    driver
        .healthy()
        .await
        .map_err(|e| ApiError::bad_request(format!("the instance at {} is not healthy: {e}", driver.endpoint)))?;
    Ok(StatusCode::OK.into_response())
}

/// `GET /projects/{p}/preheat/providers`: the enabled instances.
pub async fn providers_of_project(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(path): Path<Vec<(String, String)>>,
) -> ApiResult {
    project_for(&state, &caller, &project_ref(&path), (Res::PreheatPolicy, Act::Read)).await?;
    let out: Vec<ProviderUnderProject> = state
        .registry
        .p2p_instances()
        .await?
        .into_iter()
        .filter(|i| i.enabled)
        .map(|i| ProviderUnderProject {
            id: i.id,
            provider: format!("{} {}-{}", i.vendor, i.name, i.endpoint),
            enabled: i.enabled,
            default: i.default,
        })
        .collect();
    Ok(Json(out).into_response())
}

async fn policy_for(
    state: &AppState,
    caller: &Caller,
    path: &[(String, String)],
    act: Act,
) -> ApiResult<(Project, PreheatPolicy)> {
    let (project, _) = project_for(state, caller, &project_ref(path), (Res::PreheatPolicy, act)).await?;
    let name = param(path, "preheat_policy_name");
    let policy = state.registry.preheat_policy(&ProjectRef::Name(project.name.clone()), name).await?;
    Ok((project, policy))
}

pub async fn list_policies(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(path): Path<Vec<(String, String)>>,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    let paging = Paging::parse(q.page.as_deref(), q.page_size.as_deref(), q.cursor.as_deref())?;
    let (project, _) = project_for(&state, &caller, &project_ref(&path), (Res::PreheatPolicy, Act::List)).await?;
    let mut terms = parse_q(q.q.as_deref())?;
    let name = terms.remove("name");
    let r = ProjectRef::Name(project.name.clone());
    let listing = state.registry.list_preheat_policies(&r, name.as_ref(), &paging.0).await?;
    let p = format!("/projects/{}/preheat/policies", project.name);
    let rest: Vec<(&str, &str)> = q.q.as_deref().map(|v| ("q", v)).into_iter().collect();
    let instances = state.registry.p2p_instances().await?;
    Ok(paging.respond(&p, &rest, listing.map(|p| policy_view(p, &instances))))
}

pub async fn create_policy(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(path): Path<Vec<(String, String)>>,
    Body(body): Body<PolicyBody>,
) -> ApiResult {
    let (project, _) = project_for(&state, &caller, &project_ref(&path), (Res::PreheatPolicy, Act::Create)).await?;
    let r = ProjectRef::Name(project.name.clone());
    let policy = caller.registry(&state).create_preheat_policy(&r, body.into()).await?;
    created(&format!("{PREFIX}/projects/{}/preheat/policies/{}", project.name, policy.name))
}

pub async fn get_policy(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(path): Path<Vec<(String, String)>>,
) -> ApiResult {
    let (_, policy) = policy_for(&state, &caller, &path, Act::Read).await?;
    let instances = state.registry.p2p_instances().await?;
    Ok(Json(policy_view(policy, &instances)).into_response())
}

pub async fn update_policy(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(path): Path<Vec<(String, String)>>,
    Body(body): Body<PolicyBody>,
) -> ApiResult {
    let (project, policy) = policy_for(&state, &caller, &path, Act::Update).await?;
    let r = ProjectRef::Name(project.name);
    caller.registry(&state).update_preheat_policy(&r, &policy.name, body.into()).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn delete_policy(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(path): Path<Vec<(String, String)>>,
) -> ApiResult {
    let (project, policy) = policy_for(&state, &caller, &path, Act::Delete).await?;
    caller.registry(&state).delete_preheat_policy(&ProjectRef::Name(project.name), &policy.name).await?;
    Ok(StatusCode::OK.into_response())
}

/// `POST …/policies/{name}`: runs the policy now (Harbor's `ManualPreheat`).
pub async fn execute(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(path): Path<Vec<(String, String)>>,
) -> ApiResult {
    let (project, policy) = policy_for(&state, &caller, &path, Act::Update).await?;
    let id = caller.registry(&state).start_preheat(&policy, "MANUAL").await?;
    created(&format!("{PREFIX}/projects/{}/preheat/policies/{}/executions/{id}", project.name, policy.name))
}

pub async fn executions(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(path): Path<Vec<(String, String)>>,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    let paging = Paging::parse(q.page.as_deref(), q.page_size.as_deref(), q.cursor.as_deref())?;
    let (project, policy) = policy_for(&state, &caller, &path, Act::Read).await?;
    let listing = state.registry.list_executions(P2P_PREHEAT, policy.id, &paging.0).await?;
    let p = format!("/projects/{}/preheat/policies/{}/executions", project.name, policy.name);
    Ok(paging.respond(&p, &[], listing.map(ExecutionView::from)))
}

/// The execution of `path` when it belongs to the policy.
async fn execution_of(state: &AppState, caller: &Caller, path: &[(String, String)], act: Act) -> ApiResult<i64> {
    let (_, policy) = policy_for(state, caller, path, act).await?;
    let id = path_number(path, "execution_id")?;
    let x = state.registry.execution_record(id).await?;
    if x.vendor_type != P2P_PREHEAT || x.vendor_id != policy.id {
        return Err(ServiceError::NotFound(format!("execution {id} not found")).into());
    }
    Ok(id)
}

pub async fn execution(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(path): Path<Vec<(String, String)>>,
) -> ApiResult {
    let id = execution_of(&state, &caller, &path, Act::Read).await?;
    Ok(Json(ExecutionView::from(state.registry.execution(id).await?)).into_response())
}

/// `PATCH …/executions/{id}` with `{"status":"Stopped"}`: stops the run.
pub async fn stop(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(path): Path<Vec<(String, String)>>,
    Body(body): Body<StopBody>,
) -> ApiResult {
    if body.status != "Stopped" {
        return Err(ApiError::bad_request(format!("status {:?} is not Stopped", body.status)));
    }
    let id = execution_of(&state, &caller, &path, Act::Update).await?;
    state.registry.stop_execution(id).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn tasks(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(path): Path<Vec<(String, String)>>,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    let paging = Paging::parse(q.page.as_deref(), q.page_size.as_deref(), q.cursor.as_deref())?;
    let id = execution_of(&state, &caller, &path, Act::Read).await?;
    let (project, policy) = (param(&path, "project_name_or_id"), param(&path, "preheat_policy_name"));
    let all: Vec<TaskView> = state.registry.tasks_of(id).await?.into_iter().map(TaskView::from).collect();
    let p = format!("/projects/{project}/preheat/policies/{policy}/executions/{id}/tasks");
    Ok(paging.respond(&p, &[], Listing::of_all(all, &paging.0)))
}

pub async fn task_log(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(path): Path<Vec<(String, String)>>,
) -> ApiResult {
    let id = execution_of(&state, &caller, &path, Act::Read).await?;
    log_response(&state, id, path_number(&path, "task_id")?).await
}

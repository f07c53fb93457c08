//! `/scanners` and a project's `/scanner`: Harbor's scanner registration
//! API over [`crate::service::scanners`]. Registrations are the system's
//! (`scanner` at system level: administrators); a project's choice
//! follows the project's `scanner` role (read: members, create:
//! project administrators).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};

use super::projects::{Target, project_for};
use super::{ApiError, ApiResult, Body, Caller, PREFIX, Paging, created};
use crate::auth::On;
use crate::http::state::AppState;
use crate::rbac::{Act, Res};
use crate::scanner::AdapterMetadata;
use crate::scanner::client::AdapterError;
use crate::service::paging::{Listing, Match};
use crate::service::projects::ProjectRef;
use crate::service::scanners::{Registration, RegistrationInput, capabilities};

/// Harbor's `ScannerRegistration`. The access credential is never shown.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct RegistrationView {
    uuid: String,
    name: String,
    description: String,
    url: String,
    disabled: bool,
    is_default: bool,
    auth: String,
    access_credential: String,
    #[serde(rename = "skip_certVerify")]
    skip_cert_verify: bool,
    use_internal_addr: bool,
    create_time: String,
    update_time: String,
    adapter: String,
    vendor: String,
    version: String,
    health: String,
    capabilities: serde_json::Value,
}

pub(super) fn view(r: Registration, health: Option<bool>) -> RegistrationView {
    let info = r.metadata.as_ref().map(|m| m.scanner.clone()).unwrap_or_default();
    let caps = capabilities(&r);
    RegistrationView {
        uuid: r.uuid,
        name: r.name,
        description: r.description,
        url: r.url,
        disabled: r.disabled,
        is_default: r.is_default,
        auth: r.auth,
        access_credential: String::new(),
        skip_cert_verify: r.skip_cert_verify,
        use_internal_addr: r.use_internal_addr,
        create_time: crate::service::record::rfc3339_ms(r.create_time),
        update_time: crate::service::record::rfc3339_ms(r.update_time),
        adapter: info.name,
        vendor: info.vendor,
        version: info.version,
        health: match health {
            Some(true) => "healthy".to_owned(),
            Some(false) => "unhealthy".to_owned(),
            None => String::new(),
        },
        capabilities: caps,
    }
}

/// Harbor's `ScannerRegistrationReq` (and `ScannerRegistrationSettings`).
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct RegistrationBody {
    name: String,
    description: String,
    url: String,
    auth: String,
    access_credential: String,
    #[serde(rename = "skip_certVerify", alias = "skip_cert_verify")]
    skip_cert_verify: bool,
    use_internal_addr: bool,
    disabled: bool,
}

impl From<RegistrationBody> for RegistrationInput {
    fn from(b: RegistrationBody) -> Self {
        Self {
            name: b.name,
            description: b.description,
            url: b.url,
            auth: b.auth,
            access_credential: b.access_credential,
            skip_cert_verify: b.skip_cert_verify,
            use_internal_addr: b.use_internal_addr,
            disabled: b.disabled,
        }
    }
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub struct DefaultBody {
    #[serde(default)]
    is_default: bool,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
pub struct ProjectScannerBody {
    #[serde(default)]
    uuid: String,
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    page: Option<String>,
    page_size: Option<String>,
    cursor: Option<String>,
    sort: Option<String>,
    q: Option<String>,
}

fn uuid_of(params: &[(String, String)]) -> String {
    params.iter().find(|(k, _)| k == "registration_id").map(|(_, v)| v.clone()).unwrap_or_default()
}

/// The adapter's metadata, or 400 with why it could not be read.
async fn metadata_of(input: &RegistrationInput) -> ApiResult<AdapterMetadata> {
    input.endpoint().metadata().await.map_err(|e| match e {
        AdapterError::Unavailable(m) | AdapterError::Refused(m) => {
            ApiError::bad_request(format!("the scanner adapter at {} cannot be used: {m}", input.url))
        }
        AdapterError::UnknownRequest => ApiError::bad_request("the scanner adapter answered 404"),
    })
}

/// Lists registrations, filtered by `q` (`name`, `description`, `url`).
async fn filtered(state: &AppState, q: &ListQuery) -> ApiResult<(Paging, Listing<RegistrationView>)> {
    let paging = Paging::parse(q.page.as_deref(), q.page_size.as_deref(), q.cursor.as_deref())?.sorted(
        q.sort.as_deref(),
        "name",
        false,
    );
    let terms = super::parse_q(q.q.as_deref())?;
    let keeps = |term: &str, value: &str| terms.get(term).is_none_or(|m: &Match| m.matches(value));
    let mut all: Vec<Registration> = state
        .registry
        .scanners()
        .await?
        .into_iter()
        .filter(|r| keeps("name", &r.name) && keeps("description", &r.description) && keeps("url", &r.url))
        .collect();
    if paging.0.descending {
        all.reverse();
    }
    let listing = Listing::of_all(all, &paging.0).map(|r| view(r, None));
    Ok((paging, listing))
}

pub async fn list(State(state): State<Arc<AppState>>, caller: Caller, Query(q): Query<ListQuery>) -> ApiResult {
    caller.require((Res::Scanner, Act::List), On::Registry)?;
    let (paging, listing) = filtered(&state, &q).await?;
    let rest: Vec<(&str, &str)> =
        [("q", &q.q), ("sort", &q.sort)].into_iter().filter_map(|(k, v)| v.as_deref().map(|v| (k, v))).collect();
    Ok(paging.respond("/scanners", &rest, listing))
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Body(body): Body<RegistrationBody>,
) -> ApiResult {
    caller.require((Res::Scanner, Act::Create), On::Registry)?;
    let mut input = RegistrationInput::from(body);
    crate::service::scanners::check(&mut input)?;
    // Harbor registers an adapter it cannot reach (its health shows it);
    // what it says of itself is recorded when it answers.
    let metadata = input.endpoint().metadata().await.ok();
    let r = caller.registry(&state).create_scanner(input, metadata).await?;
    created(&format!("{PREFIX}/scanners/{}", r.uuid))
}

pub async fn ping(State(state): State<Arc<AppState>>, caller: Caller, Body(body): Body<RegistrationBody>) -> ApiResult {
    let _ = &state;
    caller.require((Res::Scanner, Act::Create), On::Registry)?;
    let mut input = RegistrationInput::from(body);
    crate::service::scanners::check(&mut input)?;
    metadata_of(&input).await?;
    Ok(axum::http::StatusCode::OK.into_response())
}

pub async fn get(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(params): Path<Vec<(String, String)>>,
) -> ApiResult {
    caller.require((Res::Scanner, Act::Read), On::Registry)?;
    let r = state.registry.scanner(&uuid_of(&params)).await?;
    Ok(Json(view(r, None)).into_response())
}

pub async fn update(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(params): Path<Vec<(String, String)>>,
    Body(body): Body<RegistrationBody>,
) -> ApiResult {
    caller.require((Res::Scanner, Act::Update), On::Registry)?;
    let uuid = uuid_of(&params);
    state.registry.scanner(&uuid).await?;
    let input = RegistrationInput::from(body);
    let metadata = input.endpoint().metadata().await.ok();
    caller.registry(&state).update_scanner(&uuid, input, metadata).await?;
    Ok(axum::http::StatusCode::OK.into_response())
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(params): Path<Vec<(String, String)>>,
) -> ApiResult {
    caller.require((Res::Scanner, Act::Delete), On::Registry)?;
    let r = caller.registry(&state).delete_scanner(&uuid_of(&params)).await?;
    Ok(Json(view(r, None)).into_response())
}

pub async fn set_default(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(params): Path<Vec<(String, String)>>,
    Body(body): Body<DefaultBody>,
) -> ApiResult {
    caller.require((Res::Scanner, Act::Update), On::Registry)?;
    let uuid = uuid_of(&params);
    if body.is_default {
        caller.registry(&state).set_default_scanner(&uuid).await?;
    } else {
        state.registry.scanner(&uuid).await?;
    }
    Ok(axum::http::StatusCode::OK.into_response())
}

/// `GET /scanners/{id}/metadata`: asked of the adapter now (and
/// remembered); berth's own scanner answers for itself.
pub async fn metadata(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(params): Path<Vec<(String, String)>>,
) -> ApiResult {
    caller.require((Res::Scanner, Act::Read), On::Registry)?;
    let r = state.registry.scanner(&uuid_of(&params)).await?;
    if r.is_builtin() {
        return Ok(Json(crate::scanner::builtin::metadata(&state.registry).await?).into_response());
    }
    let m = r.endpoint().metadata().await.map_err(|e| {
        ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, format!("scanner {}: {e}", r.name))
    })?;
    state.registry.remember_scanner_metadata(&r.uuid, &m).await?;
    Ok(Json(m).into_response())
}

/// `GET /projects/{p}/scanner`: the scanner the project's scans use.
pub async fn of_project(State(state): State<Arc<AppState>>, caller: Caller, Target(target): Target) -> ApiResult {
    let (project, _) = project_for(&state, &caller, &target, (Res::Scanner, Act::Read)).await?;
    match state.registry.project_scanner(&project.name).await? {
        Some(r) => Ok(Json(view(r, None)).into_response()),
        None => Err(ApiError::new(axum::http::StatusCode::NOT_FOUND, "no scanner is configured")),
    }
}

pub async fn set_of_project(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Target(target): Target,
    Body(body): Body<ProjectScannerBody>,
) -> ApiResult {
    let (project, _) = project_for(&state, &caller, &target, (Res::Scanner, Act::Create)).await?;
    caller.registry(&state).set_project_scanner(&ProjectRef::Name(project.name), &body.uuid).await?;
    Ok(axum::http::StatusCode::OK.into_response())
}

/// `GET /projects/{p}/scanner/candidates`: what the project may choose.
pub async fn candidates(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Target(target): Target,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    let (project, _) = project_for(&state, &caller, &target, (Res::Scanner, Act::Create)).await?;
    let (paging, listing) = filtered(&state, &q).await?;
    let rest: Vec<(&str, &str)> =
        [("q", &q.q), ("sort", &q.sort)].into_iter().filter_map(|(k, v)| v.as_deref().map(|v| (k, v))).collect();
    Ok(paging.respond(&format!("/projects/{}/scanner/candidates", project.name), &rest, listing))
}

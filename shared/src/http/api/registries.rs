//! `/registries`, `/replication/adapters` and `/replication/adapterinfos`:
//! Harbor's registry endpoint API over [`crate::service::registries`] and
//! the registry types of [`crate::remote::adapter`]. All of it is the
//! system's (`registry` and `replication-adapter` at system level:
//! administrators, and system robots granted them). The access secret is
//! never shown: Harbor's `*****` stands in for it.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiResult, Body, Caller, Id, PREFIX, Paging, created};
use crate::auth::On;
use crate::http::state::AppState;
use crate::rbac::{Act, Res};
use crate::remote::adapter::{self, ProviderInfo, RegistryInfo};
use crate::service::paging::Match;
use crate::service::record::rfc3339_ms;
use crate::service::registries::{EndpointChange, MASK, RegistryEndpoint};

/// Harbor's `RegistryCredential`.
#[derive(Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct CredentialBody {
    #[serde(rename = "type")]
    kind: Option<String>,
    access_key: Option<String>,
    access_secret: Option<String>,
}

/// Harbor's `Registry`, as shown.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct RegistryView {
    id: i64,
    url: String,
    name: String,
    credential: CredentialView,
    #[serde(rename = "type")]
    kind: String,
    insecure: bool,
    description: String,
    status: String,
    creation_time: String,
    update_time: String,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
struct CredentialView {
    #[serde(rename = "type")]
    kind: String,
    access_key: String,
    access_secret: String,
}

impl From<RegistryEndpoint> for RegistryView {
    fn from(e: RegistryEndpoint) -> Self {
        let access_secret = if e.has_secret() { MASK.to_owned() } else { String::new() };
        Self {
            id: e.id,
            url: e.url,
            name: e.name,
            credential: CredentialView { kind: e.credential_type, access_key: e.access_key, access_secret },
            kind: e.registry_type,
            insecure: e.insecure,
            description: e.description,
            status: e.status,
            creation_time: rfc3339_ms(e.creation_time),
            update_time: rfc3339_ms(e.update_time),
        }
    }
}

/// Harbor's `Registry`, as given to a create.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct RegistryBody {
    name: Option<String>,
    url: Option<String>,
    credential: Option<CredentialBody>,
    #[serde(rename = "type")]
    kind: Option<String>,
    insecure: Option<bool>,
    description: Option<String>,
}

/// Harbor's `RegistryUpdate`: every field optional.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct UpdateBody {
    name: Option<String>,
    description: Option<String>,
    url: Option<String>,
    credential_type: Option<String>,
    access_key: Option<String>,
    access_secret: Option<String>,
    insecure: Option<bool>,
}

/// Harbor's `RegistryPing`: an endpoint by id, by its settings, or an
/// endpoint's settings with some changed.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct PingBody {
    id: Option<i64>,
    #[serde(rename = "type")]
    kind: Option<String>,
    url: Option<String>,
    credential_type: Option<String>,
    access_key: Option<String>,
    access_secret: Option<String>,
    insecure: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    page: Option<String>,
    page_size: Option<String>,
    cursor: Option<String>,
    q: Option<String>,
    sort: Option<String>,
    /// Deprecated in Harbor in favour of `q`: a fuzzy match of the name.
    name: Option<String>,
}

pub async fn list(State(state): State<Arc<AppState>>, caller: Caller, Query(q): Query<ListQuery>) -> ApiResult {
    caller.require((Res::Registry, Act::List), On::Registry)?;
    let paging = Paging::parse(q.page.as_deref(), q.page_size.as_deref(), q.cursor.as_deref())?;
    let mut filter: Vec<(String, Match)> = super::parse_q(q.q.as_deref())?
        .into_iter()
        .filter(|(k, _)| matches!(k.as_str(), "name" | "type" | "url" | "description"))
        .collect();
    if let Some(name) = q.name.as_deref().filter(|n| !n.is_empty()) {
        filter.push(("name".to_owned(), Match::Fuzzy(name.to_owned())));
    }
    let listing = state.registry.list_registry_endpoints(&filter, &paging.0).await?.map(RegistryView::from);
    let rest: Vec<(&str, &str)> = [("q", &q.q), ("sort", &q.sort), ("name", &q.name)]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
        .collect();
    Ok(paging.respond("/registries", &rest, listing))
}

pub async fn create(State(state): State<Arc<AppState>>, caller: Caller, Body(body): Body<RegistryBody>) -> ApiResult {
    caller.require((Res::Registry, Act::Create), On::Registry)?;
    let credential = body.credential.unwrap_or_default();
    let change = EndpointChange {
        name: body.name,
        description: body.description,
        registry_type: body.kind,
        url: body.url,
        credential_type: credential.kind,
        access_key: credential.access_key,
        access_secret: credential.access_secret,
        insecure: body.insecure,
    };
    let e = caller.registry(&state).create_registry_endpoint(change).await?;
    created(&format!("{PREFIX}/registries/{}", e.id))
}

pub async fn get(State(state): State<Arc<AppState>>, caller: Caller, Id(id): Id) -> ApiResult {
    caller.require((Res::Registry, Act::Read), On::Registry)?;
    Ok(Json(RegistryView::from(state.registry.registry_endpoint(id).await?)).into_response())
}

pub async fn update(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Id(id): Id,
    Body(body): Body<UpdateBody>,
) -> ApiResult {
    caller.require((Res::Registry, Act::Update), On::Registry)?;
    let change = EndpointChange {
        name: body.name,
        description: body.description,
        registry_type: None,
        url: body.url,
        credential_type: body.credential_type,
        access_key: body.access_key,
        access_secret: body.access_secret,
        insecure: body.insecure,
    };
    caller.registry(&state).update_registry_endpoint(id, change).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn delete(State(state): State<Arc<AppState>>, caller: Caller, Id(id): Id) -> ApiResult {
    caller.require((Res::Registry, Act::Delete), On::Registry)?;
    caller.registry(&state).delete_registry_endpoint(id).await?;
    Ok(StatusCode::OK.into_response())
}

/// `POST /registries/ping`: 200 when the registry answers and takes the
/// credentials, else Harbor's 400 saying why.
pub async fn ping(State(state): State<Arc<AppState>>, caller: Caller, Body(body): Body<PingBody>) -> ApiResult {
    caller.require((Res::Registry, Act::Create), On::Registry)?;
    let registry = &state.registry;
    let (stored, mut target) = match body.id {
        Some(id) => {
            let e = registry.registry_endpoint(id).await?;
            let target = registry.registry_endpoint_target(&e)?;
            (Some(e), target)
        }
        None => (
            None,
            adapter::Target {
                registry_type: String::new(),
                url: String::new(),
                credential_type: String::new(),
                access_key: String::new(),
                access_secret: String::new(),
                insecure: false,
                timeout: crate::service::registries::ENDPOINT_TIMEOUT,
            },
        ),
    };
    let changed = body.kind.is_some()
        || body.url.is_some()
        || body.credential_type.is_some()
        || body.access_key.is_some()
        || body.access_secret.as_deref().is_some_and(|s| s != MASK)
        || body.insecure.is_some();
    if let Some(v) = body.kind {
        target.registry_type = v;
    }
    if let Some(v) = body.url {
        target.url = crate::service::registries::normalize_url(&v)?;
    }
    if let Some(v) = body.credential_type {
        target.credential_type = v;
    }
    if let Some(v) = body.access_key {
        target.access_key = v;
    }
    if let Some(v) = body.access_secret.filter(|s| s != MASK) {
        target.access_secret = v;
    }
    if let Some(v) = body.insecure {
        target.insecure = v;
    }
    if target.url.is_empty() {
        return Err(ApiError::bad_request("the registry URL is required"));
    }
    if !adapter::is_known(&target.registry_type) {
        return Err(ApiError::bad_request(format!("adapter for {:?} not found", target.registry_type)));
    }
    let result = target.ping().await;
    if let Some(e) = stored.filter(|_| !changed) {
        registry.set_registry_endpoint_status(e.id, result.is_ok()).await?;
    }
    match result {
        Ok(()) => Ok(StatusCode::OK.into_response()),
        Err(e) => Err(ApiError::bad_request(format!("the registry is unhealthy: {e}"))),
    }
}

pub async fn info(State(state): State<Arc<AppState>>, caller: Caller, Id(id): Id) -> ApiResult {
    caller.require((Res::Registry, Act::Read), On::Registry)?;
    let e = state.registry.registry_endpoint(id).await?;
    Ok(Json::<RegistryInfo>(adapter::info(&e.registry_type)).into_response())
}

pub async fn adapters(caller: Caller) -> ApiResult {
    caller.require((Res::ReplicationAdapter, Act::List), On::Registry)?;
    Ok(Json(adapter::TYPES).into_response())
}

pub async fn adapter_infos(caller: Caller) -> ApiResult {
    caller.require((Res::ReplicationAdapter, Act::List), On::Registry)?;
    let all: BTreeMap<&str, ProviderInfo> = adapter::TYPES.iter().map(|t| (*t, adapter::provider_info(t))).collect();
    Ok(Json(all).into_response())
}

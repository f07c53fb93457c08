//! `/labels` and an artifact's `…/labels`: Harbor's label API over
//! [`crate::service::labels`]. Global labels are the administrator's to
//! change and everyone's to read; a project's labels follow the project's
//! role matrix (`label`), and putting any label on an artifact takes
//! `artifact-label` in the artifact's project.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};

use super::repositories::RepoPath;
use super::{ApiError, ApiResult, Body, Caller, Id, PREFIX, Paging, created, path_number, rfc3339};
use crate::auth::On;
use crate::http::state::AppState;
use crate::rbac::{Act, Res};
use crate::service::labels::{GLOBAL, Label, LabelSpec, PROJECT};
use crate::service::paging::Match;
use crate::service::projects::{Project, ProjectRef};

/// Harbor's `Label`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct LabelView {
    id: i64,
    name: String,
    description: String,
    color: String,
    scope: String,
    project_id: i64,
    creation_time: String,
    update_time: String,
}

impl From<Label> for LabelView {
    fn from(l: Label) -> Self {
        Self {
            id: l.id,
            name: l.name,
            description: l.description,
            color: l.color,
            scope: l.scope,
            project_id: l.project_id,
            creation_time: rfc3339(l.creation_time),
            update_time: rfc3339(l.update_time),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    page: Option<String>,
    page_size: Option<String>,
    cursor: Option<String>,
    sort: Option<String>,
    q: Option<String>,
    name: Option<String>,
    scope: Option<String>,
    project_id: Option<String>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct LabelBody {
    id: Option<i64>,
    name: Option<String>,
    description: Option<String>,
    color: Option<String>,
    scope: Option<String>,
    project_id: Option<i64>,
}

/// The project a project label is of, after checking `act` on its labels
/// there; `None` for a global label, after checking `act` on the system's.
async fn require(state: &AppState, caller: &Caller, project_id: Option<i64>, act: Act) -> ApiResult<Option<Project>> {
    match project_id {
        None if act == Act::Read || act == Act::List => {
            caller.require_signed_in()?;
            Ok(None)
        }
        None => {
            caller.require((Res::Label, act), On::Registry)?;
            Ok(None)
        }
        Some(id) => {
            let project = state.registry.project(&ProjectRef::Id(id)).await?;
            caller.require_in(state, &project, (Res::Label, act)).await?;
            Ok(Some(project))
        }
    }
}

fn scope_of(l: &Label) -> Option<i64> {
    (l.scope == PROJECT).then_some(l.project_id)
}

pub async fn list(State(state): State<Arc<AppState>>, caller: Caller, Query(q): Query<ListQuery>) -> ApiResult {
    let paging = Paging::parse(q.page.as_deref(), q.page_size.as_deref(), q.cursor.as_deref())?.sorted(
        q.sort.as_deref(),
        "id",
        false,
    );
    let project_id = match q.project_id.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => Some(p.parse::<i64>().map_err(|_| ApiError::bad_request(format!("invalid project_id {p:?}")))?),
        None => None,
    };
    let scope = match (q.scope.as_deref().filter(|s| !s.is_empty()), project_id) {
        (Some(GLOBAL), _) | (None, None) => None,
        (Some(PROJECT), Some(id)) | (None, Some(id)) => Some(id),
        (Some(PROJECT), None) => return Err(ApiError::bad_request("must specify project_id for project scope labels")),
        (Some(other), _) => return Err(ApiError::bad_request(format!("invalid scope: {other}"))),
    };
    require(&state, &caller, scope, Act::List).await?;
    let mut terms = super::parse_q(q.q.as_deref())?;
    let name = q.name.clone().filter(|n| !n.is_empty()).map(Match::Fuzzy).or_else(|| terms.remove("name"));
    let listing = state.registry.list_labels(scope, name.as_ref(), &paging.0).await?;
    let rest: Vec<(&str, &str)> =
        [("q", &q.q), ("name", &q.name), ("scope", &q.scope), ("project_id", &q.project_id), ("sort", &q.sort)]
            .into_iter()
            .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
            .collect();
    Ok(paging.respond("/labels", &rest, listing.map(LabelView::from)))
}

pub async fn create(State(state): State<Arc<AppState>>, caller: Caller, Body(body): Body<LabelBody>) -> ApiResult {
    let project_id = match body.scope.as_deref().unwrap_or(GLOBAL) {
        GLOBAL => None,
        PROJECT => match body.project_id {
            Some(id) if id > 0 => Some(id),
            _ => return Err(ApiError::bad_request("a project label needs its project_id")),
        },
        other => return Err(ApiError::bad_request(format!("invalid scope: {other}"))),
    };
    require(&state, &caller, project_id, Act::Create).await?;
    let spec = LabelSpec {
        name: body.name.unwrap_or_default(),
        description: body.description.unwrap_or_default(),
        color: body.color.unwrap_or_default(),
    };
    let label = state.registry.create_label(&spec, project_id).await?;
    created(&format!("{PREFIX}/labels/{}", label.id))
}

pub async fn get(State(state): State<Arc<AppState>>, caller: Caller, Id(id): Id) -> ApiResult {
    let label = state.registry.label(id).await?;
    require(&state, &caller, scope_of(&label), Act::Read).await?;
    Ok(Json(LabelView::from(label)).into_response())
}

/// Changes the name, description and color; fields left out keep their
/// value.
pub async fn update(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Id(id): Id,
    Body(body): Body<LabelBody>,
) -> ApiResult {
    let label = state.registry.label(id).await?;
    require(&state, &caller, scope_of(&label), Act::Update).await?;
    let spec = LabelSpec {
        name: body.name.unwrap_or(label.name),
        description: body.description.unwrap_or(label.description),
        color: body.color.unwrap_or(label.color),
    };
    state.registry.update_label(id, &spec).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn delete(State(state): State<Arc<AppState>>, caller: Caller, Id(id): Id) -> ApiResult {
    let label = state.registry.label(id).await?;
    require(&state, &caller, scope_of(&label), Act::Delete).await?;
    state.registry.delete_label(id).await?;
    Ok(StatusCode::OK.into_response())
}

/// `POST …/artifacts/{reference}/labels` with the label's `id`.
pub async fn add_to_artifact(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    path: RepoPath,
    Body(body): Body<LabelBody>,
) -> ApiResult {
    let project = path.require(&state, &caller, (Res::ArtifactLabel, Act::Create)).await?;
    let id = body.id.filter(|id| *id > 0).ok_or_else(|| ApiError::bad_request("the label's id is required"))?;
    state.registry.add_artifact_label(path.repo(), &path.reference()?, project.project_id, id).await?;
    Ok(StatusCode::OK.into_response())
}

/// `DELETE …/artifacts/{reference}/labels/{label_id}`.
pub async fn remove_from_artifact(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    path: RepoPath,
    axum::extract::Path(params): axum::extract::Path<Vec<(String, String)>>,
) -> ApiResult {
    path.require(&state, &caller, (Res::ArtifactLabel, Act::Delete)).await?;
    let id = path_number(&params, "label_id")?;
    state.registry.remove_artifact_label(path.repo(), &path.reference()?, id).await?;
    Ok(StatusCode::OK.into_response())
}

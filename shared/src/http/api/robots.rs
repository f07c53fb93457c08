//! `/robots`: Harbor's robot account API over [`crate::service::robots`].
//! A system robot is managed with system permissions on robots, a project
//! robot with robot permissions in its project.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiResult, Body, Caller, Id, PREFIX, Paging, created_with, parse_q, rfc3339};
use crate::auth::{On, Subject};
use crate::http::state::AppState;
use crate::rbac::{Act, Res};
use crate::service::paging::Match;
use crate::service::projects::ProjectRef;
use crate::service::robots::{Creator, Permission, PermissionSpec, Robot, RobotLevel, RobotSpec};

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    page: Option<String>,
    page_size: Option<String>,
    cursor: Option<String>,
    sort: Option<String>,
    q: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct RobotBody {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    level: String,
    #[serde(default)]
    duration: Option<i64>,
    #[serde(default)]
    disable: bool,
    #[serde(default)]
    permissions: Vec<PermissionSpec>,
}

#[derive(Debug, Default, Deserialize)]
pub struct SecretBody {
    #[serde(default)]
    secret: String,
}

/// Harbor's `Access` of a robot permission.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct AccessView {
    resource: &'static str,
    action: &'static str,
    effect: &'static str,
}

/// Harbor's `RobotPermission`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct PermissionView {
    kind: &'static str,
    namespace: String,
    access: Vec<AccessView>,
}

impl From<Permission> for PermissionView {
    fn from(p: Permission) -> Self {
        let access = p
            .access
            .iter()
            .map(|a| AccessView { resource: a.resource.as_str(), action: a.action.as_str(), effect: "allow" })
            .collect();
        Self { kind: p.kind.as_str(), namespace: p.namespace, access }
    }
}

/// Harbor's `Robot`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct RobotView {
    id: i64,
    name: String,
    description: String,
    expires_at: i64,
    duration: i64,
    level: &'static str,
    disable: bool,
    editable: bool,
    creator_type: String,
    creator_ref: i64,
    creation_time: String,
    update_time: String,
    permissions: Vec<PermissionView>,
}

fn robot_view(r: Robot, prefix: &str) -> RobotView {
    RobotView {
        id: r.id,
        name: format!("{prefix}{}", r.name),
        description: r.description,
        expires_at: r.expires_at,
        duration: r.duration,
        level: r.level.as_str(),
        disable: r.disabled,
        editable: true,
        creator_type: r.creator_type,
        creator_ref: r.creator_ref,
        creation_time: rfc3339(r.creation_time),
        update_time: rfc3339(r.update_time),
        permissions: r.permissions.into_iter().map(PermissionView::from).collect(),
    }
}

/// Harbor's `RobotCreated`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct Created {
    id: i64,
    name: String,
    secret: String,
    creation_time: String,
    expires_at: i64,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct Secret {
    secret: String,
}

/// Allows `act` on robots of `level` (in `project` for project robots).
async fn require(state: &AppState, caller: &Caller, level: &str, project: ProjectRef, act: Act) -> ApiResult<()> {
    match RobotLevel::parse(level) {
        Some(RobotLevel::System) => caller.require((Res::Robot, act), On::Registry),
        Some(RobotLevel::Project) => {
            let project = state.registry.project(&project).await?;
            caller.require_in(state, &project, (Res::Robot, act)).await.map(|_| ())
        }
        None => Err(ApiError::bad_request(format!("bad request error level input: {level}"))),
    }
}

/// The project a robot belongs to (or the request making one names).
fn project_of(robot: &Robot) -> ProjectRef {
    match robot.level {
        RobotLevel::Project if robot.project_id > 0 => ProjectRef::Id(robot.project_id),
        _ => ProjectRef::Name(robot.permissions.first().map(|p| p.namespace.clone()).unwrap_or_default()),
    }
}

fn requested_project(body: &RobotBody) -> ProjectRef {
    ProjectRef::Name(body.permissions.first().map(|p| p.namespace.clone()).unwrap_or_default())
}

fn spec(body: RobotBody) -> RobotSpec {
    RobotSpec {
        name: body.name,
        description: body.description,
        level: body.level,
        duration: body.duration,
        disable: body.disable,
        permissions: body.permissions,
    }
}

/// Who makes or changes a robot.
fn creator(caller: &Caller) -> ApiResult<Creator> {
    match &caller.0 {
        Subject::User(u) => Ok(Creator::User(u.id)),
        Subject::Robot(r) => Ok(Creator::Robot(r.id)),
        _ => Err(ApiError::new(StatusCode::UNAUTHORIZED, "authentication required")),
    }
}

pub async fn list(State(state): State<Arc<AppState>>, caller: Caller, Query(q): Query<ListQuery>) -> ApiResult {
    let paging = Paging::parse(q.page.as_deref(), q.page_size.as_deref(), q.cursor.as_deref())?.sorted(
        q.sort.as_deref(),
        "name",
        false,
    );
    caller.require_signed_in()?;
    let terms = parse_q(q.q.as_deref())?;
    let term = |k: &str| terms.get(k).and_then(Match::exact);
    let level = term("Level").unwrap_or("system");
    let project_id = match (RobotLevel::parse(level), term("ProjectID")) {
        (Some(RobotLevel::System), _) => None,
        (Some(RobotLevel::Project), Some(id)) => match id.parse::<i64>() {
            Ok(id) if id > 0 => Some(id),
            _ => return Err(ApiError::bad_request("ProjectID must be a positive integer")),
        },
        (Some(RobotLevel::Project), None) => {
            return Err(ApiError::bad_request("must with project ID when to query project robots"));
        }
        (None, _) => return Err(ApiError::bad_request("bad request error level input")),
    };
    require(&state, &caller, level, ProjectRef::Id(project_id.unwrap_or(0)), Act::List).await?;
    let name = terms.get("name").map(|m| match m {
        Match::Exact(n) => Match::Fuzzy(n.clone()),
        other => other.clone(),
    });
    let listing = state.registry.list_robots(project_id, name.as_ref(), &paging.0).await?;
    let prefix = state.registry.settings().await?.robot_prefix().to_owned();
    let rest: Vec<(&str, &str)> =
        [("q", &q.q), ("sort", &q.sort)].into_iter().filter_map(|(k, v)| v.as_deref().map(|v| (k, v))).collect();
    Ok(paging.respond("/robots", &rest, listing.map(|r| robot_view(r, &prefix))))
}

pub async fn create(State(state): State<Arc<AppState>>, caller: Caller, Body(body): Body<RobotBody>) -> ApiResult {
    caller.require_signed_in()?;
    require(&state, &caller, &body.level, requested_project(&body), Act::Create).await?;
    let made = caller.registry(&state).create_robot(spec(body), creator(&caller)?).await?;
    let prefix = state.registry.settings().await?.robot_prefix().to_owned();
    let robot = made.robot;
    created_with(
        &format!("{PREFIX}/robots/{}", robot.id),
        &Created {
            id: robot.id,
            name: format!("{prefix}{}", robot.name),
            secret: made.secret,
            creation_time: rfc3339(robot.creation_time),
            expires_at: robot.expires_at,
        },
    )
}

pub async fn get(State(state): State<Arc<AppState>>, caller: Caller, Id(id): Id) -> ApiResult {
    caller.require_signed_in()?;
    let robot = state.registry.robot(id).await?;
    require(&state, &caller, robot.level.as_str(), project_of(&robot), Act::Read).await?;
    let prefix = state.registry.settings().await?.robot_prefix().to_owned();
    Ok(Json(robot_view(robot, &prefix)).into_response())
}

pub async fn update(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Id(id): Id,
    Body(body): Body<RobotBody>,
) -> ApiResult {
    caller.require_signed_in()?;
    let robot = state.registry.robot(id).await?;
    require(&state, &caller, robot.level.as_str(), project_of(&robot), Act::Update).await?;
    caller.registry(&state).update_robot(id, spec(body), creator(&caller)?).await?;
    Ok(StatusCode::OK.into_response())
}

/// `PATCH /robots/{id}`: a new secret, the one given or a generated one
/// (returned only when generated).
pub async fn refresh(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Id(id): Id,
    body: axum::body::Bytes,
) -> ApiResult {
    // The body is optional: none (or `{}`) asks for a generated secret.
    let body: SecretBody = if body.iter().all(u8::is_ascii_whitespace) {
        SecretBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("invalid body: {e}")))?
    };
    caller.require_signed_in()?;
    let robot = state.registry.robot(id).await?;
    require(&state, &caller, robot.level.as_str(), project_of(&robot), Act::Update).await?;
    let supplied = Some(body.secret).filter(|s| !s.is_empty());
    let fresh = caller.registry(&state).refresh_robot_secret(id, supplied.as_deref()).await?;
    let shown = if supplied.is_some() { String::new() } else { fresh.secret };
    Ok(Json(Secret { secret: shown }).into_response())
}

pub async fn delete(State(state): State<Arc<AppState>>, caller: Caller, Id(id): Id) -> ApiResult {
    caller.require_signed_in()?;
    let robot = state.registry.robot(id).await?;
    require(&state, &caller, robot.level.as_str(), project_of(&robot), Act::Delete).await?;
    caller.registry(&state).delete_robot(id).await?;
    Ok(StatusCode::OK.into_response())
}

/// `GET /permissions`: what a robot may be granted — project permissions
/// for project administrators, and system ones too for system
/// administrators (Harbor's catalogue for its robot pages).
pub async fn permissions(State(state): State<Arc<AppState>>, caller: Caller) -> ApiResult {
    caller.require_signed_in()?;
    let sysadmin = caller.is_sysadmin();
    let mut project_admin = false;
    if !sysadmin && let Some(user) = caller.user() {
        for (name, _) in state.registry.member_projects(user.id, &user.groups).await? {
            let project = state.registry.project(&ProjectRef::Name(name)).await?;
            if caller.access(&state, &project).await?.roles.contains(&crate::rbac::Role::ProjectAdmin) {
                project_admin = true;
                break;
            }
        }
    }
    if !sysadmin && !project_admin {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "only admins(system and project) can access permissions"));
    }
    let list = |perms: &[crate::rbac::Perm]| -> Vec<serde_json::Value> {
        perms.iter().map(|(r, a)| serde_json::json!({"resource": r.as_str(), "action": a.as_str()})).collect()
    };
    let mut body = serde_json::Map::new();
    if sysadmin {
        body.insert("system".to_owned(), list(crate::rbac::ROBOT_SYSTEM_GRANTABLE).into());
    }
    body.insert("project".to_owned(), list(crate::rbac::ROBOT_PROJECT_GRANTABLE).into());
    Ok(Json(body).into_response())
}

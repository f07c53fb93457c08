//! `/robots`: Harbor's robot account API over [`crate::service::robots`].
//! A system robot is managed with system permissions on robots, a project
//! robot with robot permissions in its project; a robot making a robot can
//! give it no more than it holds itself.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiResult, Body, Caller, Id, PREFIX, Paging, created_with, parse_q, rfc3339};
use crate::auth::rbac::{Act, Res};
use crate::auth::{On, Subject};
use crate::http::state::AppState;
use crate::service::projects::ProjectRef;
use crate::service::robots::{
    Creator, LEVEL_PROJECT, LEVEL_SYSTEM, Permission, Robot, RobotSpec, SYSTEM_NAMESPACE, within,
};

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    page: Option<String>,
    page_size: Option<String>,
    q: Option<String>,
}

#[derive(Debug, Deserialize)]
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
    permissions: Vec<Permission>,
}

#[derive(Debug, Default, Deserialize)]
pub struct SecretBody {
    #[serde(default)]
    secret: String,
}

fn robot_json(r: &Robot, prefix: &str) -> Value {
    let permissions: Vec<Value> = r
        .permissions
        .iter()
        .map(|p| {
            let access: Vec<Value> = p
                .access
                .iter()
                .map(|a| {
                    let effect = if a.effect.is_empty() { "allow" } else { a.effect.as_str() };
                    json!({ "resource": a.resource, "action": a.action, "effect": effect })
                })
                .collect();
            json!({ "kind": p.kind, "namespace": p.namespace, "access": access })
        })
        .collect();
    json!({
        "id": r.id,
        "name": format!("{prefix}{}", r.name),
        "description": r.description,
        "expires_at": r.expires_at,
        "duration": r.duration,
        "level": r.level,
        "disable": r.disabled,
        "editable": true,
        "creator_type": r.creator_type,
        "creator_ref": r.creator_ref,
        "creation_time": rfc3339(r.creation_time),
        "update_time": rfc3339(r.update_time),
        "permissions": permissions,
    })
}

/// Allows `act` on robots of `level` (in `project` for project robots).
async fn require(state: &AppState, caller: &Caller, level: &str, project: ProjectRef, act: Act) -> ApiResult<()> {
    match level {
        LEVEL_SYSTEM => caller.require((Res::Robot, act), On::Registry),
        LEVEL_PROJECT => {
            let project = state.registry.project(&project).await?;
            caller.require_in(state, &project, (Res::Robot, act)).await.map(|_| ())
        }
        other => Err(ApiError::bad_request(format!("bad request error level input: {other}"))),
    }
}

/// The project a project robot (or the request making one) belongs to.
fn project_of(level: &str, project_id: i64, permissions: &[Permission]) -> ProjectRef {
    match (level, project_id) {
        (LEVEL_PROJECT, id) if id > 0 => ProjectRef::Id(id),
        _ => ProjectRef::Name(permissions.first().map(|p| p.namespace.clone()).unwrap_or_default()),
    }
}

fn spec(body: RobotBody, duration: i64) -> RobotSpec {
    RobotSpec {
        name: body.name,
        description: body.description,
        level: body.level,
        duration,
        disable: body.disable,
        permissions: body.permissions,
    }
}

pub async fn list(State(state): State<Arc<AppState>>, caller: Caller, Query(q): Query<ListQuery>) -> ApiResult {
    let paging = Paging::parse(q.page.as_deref(), q.page_size.as_deref())?;
    caller.require_signed_in()?;
    let terms = q.q.as_deref().map(parse_q).unwrap_or_default();
    let term = |k: &str| terms.iter().find(|(key, _, _)| key == k).map(|(_, v, _)| v.clone());
    let level = term("Level").unwrap_or_else(|| LEVEL_SYSTEM.to_owned());
    let project_id = match (level.as_str(), term("ProjectID")) {
        (LEVEL_SYSTEM, _) => 0,
        (LEVEL_PROJECT, Some(id)) => match id.parse::<i64>() {
            Ok(id) if id > 0 => id,
            _ => return Err(ApiError::bad_request("ProjectID must be a positive integer")),
        },
        (LEVEL_PROJECT, None) => {
            return Err(ApiError::bad_request("must with project ID when to query project robots"));
        }
        _ => return Err(ApiError::bad_request("bad request error level input")),
    };
    require(&state, &caller, &level, ProjectRef::Id(project_id), Act::List).await?;
    let name = term("name");
    let robots: Vec<Robot> = state
        .registry
        .list_robots()
        .await?
        .into_iter()
        .filter(|r| r.level == level && (level == LEVEL_SYSTEM || r.project_id == project_id))
        .filter(|r| name.as_ref().is_none_or(|n| r.name.contains(n.as_str())))
        .collect();
    let prefix = state.settings.get().await?.robot_prefix().to_owned();
    let page = paging.page_slice(robots.len());
    let items: Vec<Value> = robots[page].iter().map(|r| robot_json(r, &prefix)).collect();
    let rest = q.q.as_ref().map(|q| format!("&q={q}")).unwrap_or_default();
    Ok(paging.respond_page("/robots", &rest, robots.len(), &items))
}

pub async fn create(State(state): State<Arc<AppState>>, caller: Caller, Body(body): Body<RobotBody>) -> ApiResult {
    caller.require_signed_in()?;
    let project = project_of(&body.level, 0, &body.permissions);
    require(&state, &caller, &body.level, project, Act::Create).await?;
    let creator = match &caller.0 {
        Subject::User(u) => Creator { kind: "local", id: u.id },
        Subject::Robot(r) => {
            let own = state.registry.robot(r.id).await?;
            if !within(&body.permissions, &own.permissions) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!(
                        "permission scope is invalid. It must be equal to or more restrictive than the creator robot's \
                         permissions: {}",
                        r.name
                    ),
                ));
            }
            Creator { kind: "robot", id: r.id }
        }
        _ => return Err(ApiError::new(StatusCode::UNAUTHORIZED, "authentication required")),
    };
    let duration = match body.duration {
        Some(d) => d,
        None => state.settings.get().await?.int("robot_token_duration"),
    };
    let made = state.registry.create_robot(spec(body, duration), creator).await?;
    let prefix = state.settings.get().await?.robot_prefix().to_owned();
    created_with(
        &format!("{PREFIX}/robots/{}", made.robot.id),
        json!({
            "id": made.robot.id,
            "name": format!("{prefix}{}", made.robot.name),
            "secret": made.secret,
            "creation_time": rfc3339(made.robot.creation_time),
            "expires_at": made.robot.expires_at,
        }),
    )
}

pub async fn get(State(state): State<Arc<AppState>>, caller: Caller, Id(id): Id) -> ApiResult {
    caller.require_signed_in()?;
    let robot = state.registry.robot(id).await?;
    let project = project_of(&robot.level, robot.project_id, &robot.permissions);
    require(&state, &caller, &robot.level, project, Act::Read).await?;
    let prefix = state.settings.get().await?.robot_prefix().to_owned();
    Ok(Json(robot_json(&robot, &prefix)).into_response())
}

pub async fn update(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Id(id): Id,
    Body(body): Body<RobotBody>,
) -> ApiResult {
    caller.require_signed_in()?;
    let robot = state.registry.robot(id).await?;
    let project = project_of(&robot.level, robot.project_id, &robot.permissions);
    require(&state, &caller, &robot.level, project, Act::Update).await?;
    if let Subject::Robot(r) = &caller.0 {
        let own = state.registry.robot(r.id).await?;
        if !within(&body.permissions, &own.permissions) {
            return Err(ApiError::new(StatusCode::FORBIDDEN, "a robot cannot grant more than it holds"));
        }
    }
    let duration = body.duration.unwrap_or(robot.duration);
    let mut spec = spec(body, duration);
    for p in &mut spec.permissions {
        if p.kind == LEVEL_SYSTEM {
            p.namespace = SYSTEM_NAMESPACE.to_owned();
        }
    }
    state.registry.update_robot(id, spec).await?;
    state.auth.forget_all();
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
    let project = project_of(&robot.level, robot.project_id, &robot.permissions);
    require(&state, &caller, &robot.level, project, Act::Update).await?;
    let supplied = Some(body.secret).filter(|s| !s.is_empty());
    let fresh = state.registry.refresh_robot_secret(id, supplied.as_deref()).await?;
    state.auth.forget_all();
    let shown = if supplied.is_some() { String::new() } else { fresh.secret };
    Ok(Json(json!({ "secret": shown })).into_response())
}

pub async fn delete(State(state): State<Arc<AppState>>, caller: Caller, Id(id): Id) -> ApiResult {
    caller.require_signed_in()?;
    let robot = state.registry.robot(id).await?;
    let project = project_of(&robot.level, robot.project_id, &robot.permissions);
    require(&state, &caller, &robot.level, project, Act::Delete).await?;
    state.registry.delete_robot(id).await?;
    state.auth.forget_all();
    Ok(StatusCode::OK.into_response())
}

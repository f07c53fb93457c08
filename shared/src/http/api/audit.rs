//! The audit log API: Harbor's `/audit-logs` and `/projects/{p}/logs`
//! (`AuditLog`), 2.13's `/auditlog-exts`, `/projects/{p}/auditlog-exts`
//! (`AuditLogExt`) and `/auditlog-exts/events`, over
//! [`crate::service::audit`]. Newest first; `sort=op_time` turns it round
//! (other sort keys are ignored). `q` filters `username`, `resource`,
//! `resource_type`, `operation` and `op_time=[from~to]` (times as
//! `2006-01-02 15:04:05` or RFC 3339, UTC).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};

use super::projects::{Target, project_for};
use super::{ApiError, ApiResult, Caller, Paging, parse_q};
use crate::auth::On;
use crate::http::state::AppState;
use crate::rbac::{Act, Res};
use crate::service::audit::{AuditFilter, AuditRecord, audit_event_types};
use crate::service::paging::Match;
use crate::service::record::rfc3339_ms;

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    sort: Option<String>,
    page: Option<String>,
    page_size: Option<String>,
    cursor: Option<String>,
}

/// Harbor's `AuditLog`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct AuditLogView {
    id: i64,
    username: String,
    resource: String,
    resource_type: String,
    operation: String,
    op_time: String,
}

/// Harbor 2.13's `AuditLogExt`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct AuditLogExtView {
    id: i64,
    username: String,
    resource: String,
    resource_type: String,
    operation: String,
    operation_description: String,
    operation_result: bool,
    op_time: String,
}

fn view(r: AuditRecord) -> AuditLogView {
    AuditLogView {
        id: r.id,
        username: r.username,
        resource: r.resource,
        resource_type: r.resource_type,
        operation: r.operation,
        op_time: rfc3339_ms(r.op_time),
    }
}

fn ext_view(r: AuditRecord) -> AuditLogExtView {
    AuditLogExtView {
        id: r.id,
        username: r.username,
        resource: r.resource,
        resource_type: r.resource_type,
        operation: r.operation,
        operation_description: r.description,
        operation_result: r.result,
        op_time: rfc3339_ms(r.op_time),
    }
}

fn time_ms(s: &str) -> Result<i64, ApiError> {
    let t = humantime::parse_rfc3339_weak(s.trim())
        .map_err(|_| ApiError::bad_request(format!("op_time {s:?} is not a time like 2006-01-02 15:04:05")))?;
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Ok(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn filter(q: Option<&str>) -> Result<AuditFilter, ApiError> {
    let mut terms = parse_q(q)?;
    let mut f = AuditFilter {
        username: terms.remove("username"),
        resource: terms.remove("resource"),
        resource_type: terms.remove("resource_type"),
        operation: terms.remove("operation"),
        ..AuditFilter::default()
    };
    match terms.remove("op_time") {
        Some(Match::Range { min, max }) => {
            f.from_ms = min.as_deref().map(time_ms).transpose()?;
            f.to_ms = max.as_deref().map(time_ms).transpose()?;
        }
        Some(Match::Exact(t)) => {
            let t = time_ms(&t)?;
            (f.from_ms, f.to_ms) = (Some(t), Some(t + 999));
        }
        Some(_) => return Err(ApiError::bad_request("op_time takes a range [from~to]")),
        None => {}
    }
    Ok(f)
}

/// Which listing a request is.
#[derive(Clone, Copy)]
enum Shape {
    Plain,
    Ext,
}

async fn list(state: &AppState, project: Option<(&str, i64)>, q: &ListQuery, path: &str, shape: Shape) -> ApiResult {
    let paging = Paging::parse(q.page.as_deref(), q.page_size.as_deref(), q.cursor.as_deref())?.sorted(
        q.sort.as_deref(),
        "op_time",
        true,
    );
    let f = filter(q.q.as_deref())?;
    let listing = state.registry.list_audit(project.map(|p| p.0), &f, &paging.0).await?;
    let mut rest: Vec<(&str, &str)> = Vec::new();
    if let Some(q) = q.q.as_deref() {
        rest.push(("q", q));
    }
    if let Some(s) = q.sort.as_deref() {
        rest.push(("sort", s));
    }
    Ok(match shape {
        Shape::Plain => paging.respond(path, &rest, listing.map(view)),
        Shape::Ext => paging.respond(path, &rest, listing.map(ext_view)),
    })
}

/// `GET /audit-logs`: the whole log, for whoever may list it.
pub async fn list_all(State(state): State<Arc<AppState>>, caller: Caller, Query(q): Query<ListQuery>) -> ApiResult {
    caller.require((Res::AuditLog, Act::List), On::Registry)?;
    list(&state, None, &q, "/audit-logs", Shape::Plain).await
}

/// `GET /auditlog-exts`.
pub async fn list_all_ext(State(state): State<Arc<AppState>>, caller: Caller, Query(q): Query<ListQuery>) -> ApiResult {
    caller.require((Res::AuditLog, Act::List), On::Registry)?;
    list(&state, None, &q, "/auditlog-exts", Shape::Ext).await
}

/// `GET /projects/{p}/logs`.
pub async fn list_project(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Target(r): Target,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    let (project, _) = project_for(&state, &caller, &r, (Res::Log, Act::List)).await?;
    let path = format!("/projects/{}/logs", project.name);
    list(&state, Some((&project.name, project.project_id)), &q, &path, Shape::Plain).await
}

/// `GET /projects/{p}/auditlog-exts`.
pub async fn list_project_ext(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Target(r): Target,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    let (project, _) = project_for(&state, &caller, &r, (Res::Log, Act::List)).await?;
    let path = format!("/projects/{}/auditlog-exts", project.name);
    list(&state, Some((&project.name, project.project_id)), &q, &path, Shape::Ext).await
}

/// `GET /auditlog-exts/events`: the event types the log records.
pub async fn event_types(caller: Caller) -> ApiResult {
    caller.require_signed_in()?;
    #[derive(Serialize, schemars::JsonSchema)]
    pub(super) struct EventType {
        event_type: String,
    }
    let types: Vec<EventType> = audit_event_types().into_iter().map(|event_type| EventType { event_type }).collect();
    Ok(Json(types).into_response())
}

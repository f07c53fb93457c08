//! `/service/token`: the Docker token service. Basic credentials (or none,
//! for public pulls) in; a short-lived JWT out whose `access` claim holds,
//! for each requested scope, exactly the actions [`authorize`] grants.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::auth::token::{Access, issue as sign, parse_scope};
use crate::auth::{AuthError, Decision, On, Subject, access_to, authorize, scope_word};
use crate::oci::RepoName;
use crate::rbac::{Act, Res};

use super::state::AppState;

/// The token service's answer (docker reads `token`, OAuth clients
/// `access_token`).
#[derive(Debug, Serialize)]
struct Issued {
    token: String,
    access_token: String,
    expires_in: i64,
    issued_at: String,
}

/// A refused token request, in Harbor's error body (a 401 with a basic
/// challenge).
fn refused(status: StatusCode, message: &str) -> Response {
    crate::http::api::ApiError::new(status, message).into_response()
}

/// `GET /service/token?service=…&scope=…`.
pub async fn issue(State(state): State<Arc<AppState>>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let mut scopes = Vec::new();
    let mut service = None;
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "scope" => scopes.extend(v.split(' ').filter(|s| !s.is_empty()).map(str::to_owned)),
            "service" => service = Some(v.into_owned()),
            _ => {}
        }
    }
    let expected = &state.ctx.config.auth.service;
    if service.as_ref().is_some_and(|s| s != expected) {
        return refused(StatusCode::BAD_REQUEST, &format!("unknown service; this registry is {expected}"));
    }
    let value = headers.get(header::AUTHORIZATION).map(|v| v.to_str().unwrap_or(""));
    let subject = match state.auth.authenticate(value).await {
        Ok(Subject::Token(_)) => return refused(StatusCode::UNAUTHORIZED, "present credentials, not a token"),
        Ok(subject) => subject,
        Err(e @ (AuthError::Backend(_) | AuthError::Unavailable(_))) => {
            tracing::error!(error = %e, "token service backend failure");
            return refused(StatusCode::SERVICE_UNAVAILABLE, "the registry cannot check credentials right now");
        }
        Err(_) => return refused(StatusCode::UNAUTHORIZED, "invalid credentials"),
    };
    let mut access = Vec::new();
    for scope in &scopes {
        if let Some(granted) = grant(&state, &subject, scope).await {
            access.push(granted);
        }
    }
    let ttl = match state.registry.settings().await {
        Ok(settings) => settings.token_ttl_secs(),
        Err(e) => {
            tracing::error!(error = %e, "reading the settings failed");
            return refused(StatusCode::SERVICE_UNAVAILABLE, "the registry cannot issue tokens right now");
        }
    };
    let now = crate::meta::now_unix();
    let token = sign(state.auth.keys(), expected, subject.name(), access, ttl, now);
    axum::Json(Issued { access_token: token.clone(), token, expires_in: ttl, issued_at: super::api::rfc3339(now) })
        .into_response()
}

/// The part of one requested scope the subject is allowed; `None` when
/// nothing is.
async fn grant(state: &AppState, subject: &Subject, scope: &str) -> Option<Access> {
    let requested = parse_scope(scope)?;
    let actions: Vec<String> = match requested.kind.as_str() {
        "repository" => {
            let repo = RepoName::parse(&requested.name).ok()?;
            let access = if subject.is_sysadmin() {
                None
            } else {
                match state.registry.require_project(&repo).await {
                    Ok(project) => access_to(&state.registry, subject, &project).await.ok(),
                    Err(_) => None,
                }
            };
            let on = On::Repository { repo: &repo, project: access.as_ref() };
            let wanted = |act: Act| requested.actions.iter().any(|w| w == "*" || Some(w.as_str()) == scope_word(act));
            [Act::Pull, Act::Push, Act::Delete]
                .into_iter()
                .filter(|act| wanted(*act) && authorize(subject, (Res::Repository, *act), on) == Decision::Allow)
                .filter_map(scope_word)
                .map(str::to_owned)
                .collect()
        }
        "registry" if requested.name == "catalog" => {
            if authorize(subject, (Res::Catalog, Act::Read), On::Registry) == Decision::Allow {
                vec!["*".to_owned()]
            } else {
                Vec::new()
            }
        }
        _ => Vec::new(),
    };
    let mut actions = actions;
    actions.dedup();
    (!actions.is_empty()).then_some(Access { kind: requested.kind, name: requested.name, actions })
}

/// containerd tries the OAuth2 POST form first and falls back to GET on a
/// 405, as it does against Harbor.
pub async fn post_refused() -> impl IntoResponse {
    (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, HeaderValue::from_static("GET"))])
}

//! The OCI distribution API (`/v2`): one dispatcher parses the path into a
//! [`route::V2Route`], authenticates the caller, asks [`crate::auth::authorize`]
//! and hands over to the handler of the route. Handlers call the
//! [`crate::service::Registry`] and shape its answers into the spec's headers
//! and bodies; every failure leaves as an [`error::OciError`].

pub mod error;
mod handlers;
pub mod route;
pub mod urls;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};

use crate::auth::{AuthError, Decision, On, Subject, access_to, authorize};
use crate::config::Role;
use crate::oci::RepoName;
use crate::rbac::{Act, Res};

use self::error::{OciCode, OciError};
use self::route::V2Route;
use super::state::AppState;

pub const API_VERSION: HeaderName = HeaderName::from_static("docker-distribution-api-version");

/// Every `/v2` request enters here.
pub async fn dispatch(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let mut resp = match handle(&state, &parts.method, &parts.uri, &parts.headers, &parts.extensions, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    resp.headers_mut().insert(API_VERSION, HeaderValue::from_static("registry/2.0"));
    resp
}

async fn handle(
    state: &AppState,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    extensions: &axum::http::Extensions,
    body: Body,
) -> Result<Response, OciError> {
    let raw = uri.path().strip_prefix("/v2").unwrap_or_default();
    let raw = raw.strip_prefix('/').unwrap_or(raw);
    let rest = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| OciError::new(OciCode::NameInvalid).detail("path is not UTF-8"))?;
    let route = V2Route::parse(&rest)?;
    if state.ctx.config.server.role == Role::Upload
        && !matches!(route, V2Route::UploadStart { .. } | V2Route::Upload { .. })
    {
        return Err(OciError::new(OciCode::NotFound).detail("this host serves blob uploads only"));
    }
    let subject = authenticate(state, headers, &route, method).await?;
    let decision = match &route {
        // Reaching the registry needs an account, nothing more.
        V2Route::Base if subject.is_authenticated() => Decision::Allow,
        V2Route::Base => Decision::Challenge,
        V2Route::Catalog => authorize(&subject, (Res::Catalog, Act::Read), On::Registry),
        _ => match route.name() {
            Some(repo) => check(state, &subject, repo_action(method, &route), repo).await?,
            None => Decision::Deny,
        },
    };
    match decision {
        Decision::Allow => {}
        // A token without the scope this needs: the client should get one
        // that has it (or learn it may not).
        Decision::Deny if matches!(subject, Subject::Token(_)) => {
            return Err(bearer_challenge(state, headers, &route, method, Some("insufficient_scope")));
        }
        Decision::Deny => return Err(OciError::new(OciCode::Denied)),
        Decision::Challenge => return Err(bearer_challenge(state, headers, &route, method, None)),
    }
    let params = Params::parse(uri.query());
    let actor = crate::http::request_actor(&subject, headers, extensions);
    let ctx = handlers::Ctx { state, subject: &subject, actor, method, headers, params: &params };
    handlers::route(ctx, route, body).await
}

/// What a request does to its repository: uploads and puts push, deletes
/// delete, the rest pulls (Harbor's mapping of `/v2` methods).
fn repo_action(method: &Method, route: &V2Route) -> Act {
    match route {
        V2Route::UploadStart { .. } | V2Route::Upload { .. } | V2Route::DirectUpload { .. } => Act::Push,
        _ if *method == Method::DELETE => Act::Delete,
        _ if *method == Method::PUT => Act::Push,
        _ => Act::Pull,
    }
}

/// Whether `subject` may take `act` on `repo`. The project (and the
/// caller's roles in it) is read only for subjects whose rights depend on
/// it: neither the administrator's nor a token's do, so pulls with tokens
/// cost no table read here.
pub(super) async fn check(
    state: &AppState,
    subject: &Subject,
    act: Act,
    repo: &RepoName,
) -> Result<Decision, OciError> {
    let perm = (Res::Repository, act);
    if subject.is_sysadmin() || matches!(subject, Subject::Token(_)) {
        return Ok(authorize(subject, perm, On::Repository { repo, project: None }));
    }
    let access = match state.registry.require_project(repo).await {
        Ok(project) => Some(access_to(&state.registry, subject, &project).await?),
        Err(crate::service::ServiceError::NameUnknown(_)) => None,
        Err(e) => return Err(e.into()),
    };
    Ok(authorize(subject, perm, On::Repository { repo, project: access.as_ref() }))
}

/// The token scope a request needs, for the challenge.
fn scope(route: &V2Route, method: &Method) -> Option<String> {
    if matches!(route, V2Route::Catalog) {
        return Some("registry:catalog:*".to_owned());
    }
    let repo = route.name()?;
    Some(match repo_action(method, route) {
        Act::Push => format!("repository:{repo}:pull,push"),
        Act::Delete => format!("repository:{repo}:delete"),
        _ => format!("repository:{repo}:pull"),
    })
}

/// `401` asking for a registry token from `/service/token` (Docker's token
/// flow), naming the scope the request needs.
fn bearer_challenge(
    state: &AppState,
    headers: &HeaderMap,
    route: &V2Route,
    method: &Method,
    error: Option<&str>,
) -> OciError {
    let realm = format!("{}/service/token", super::external_base(state, headers));
    let mut value = format!("Bearer realm=\"{realm}\",service=\"{}\"", state.ctx.config.auth.service);
    if let Some(scope) = scope(route, method) {
        value.push_str(&format!(",scope=\"{scope}\""));
    }
    if let Some(error) = error {
        value.push_str(&format!(",error=\"{error}\""));
    }
    let header = HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("Bearer"));
    OciError::new(OciCode::Unauthorized).header(header::WWW_AUTHENTICATE, header)
}

/// Refused basic credentials are answered with a basic challenge, as Harbor
/// does once a client has sent an `Authorization` header.
fn basic_challenge() -> OciError {
    OciError::new(OciCode::Unauthorized)
        .header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"berth\", charset=\"UTF-8\""))
}

async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    route: &V2Route,
    method: &Method,
) -> Result<Subject, OciError> {
    let value = headers.get(header::AUTHORIZATION).map(|v| v.to_str().unwrap_or(""));
    match state.auth.authenticate(value).await {
        Ok(subject) => Ok(subject),
        Err(AuthError::Backend(e)) => Err(crate::service::ServiceError::from(e).into()),
        Err(e @ AuthError::Unavailable(_)) => {
            tracing::error!(error = %e, "identity provider unavailable");
            Err(OciError::new(OciCode::Unavailable).detail(e.to_string()))
        }
        Err(e @ AuthError::InvalidToken(_)) => {
            Err(bearer_challenge(state, headers, route, method, Some("invalid_token")).detail(e.to_string()))
        }
        Err(e) => Err(basic_challenge().detail(e.to_string())),
    }
}

/// The query parameters `/v2` understands.
#[derive(Debug, Default)]
pub struct Params {
    pub digest: Option<String>,
    pub mount: Option<String>,
    pub from: Option<String>,
    pub n: Option<String>,
    pub last: Option<String>,
    pub artifact_type: Option<String>,
}

impl Params {
    fn parse(query: Option<&str>) -> Self {
        let mut p = Self::default();
        for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            let slot = match k.as_ref() {
                "digest" => &mut p.digest,
                "mount" => &mut p.mount,
                "from" => &mut p.from,
                "n" => &mut p.n,
                "last" => &mut p.last,
                "artifactType" => &mut p.artifact_type,
                _ => continue,
            };
            *slot = Some(v.into_owned());
        }
        p
    }
}

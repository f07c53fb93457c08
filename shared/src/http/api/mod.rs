//! The Harbor-compatible management API (`/api/v2.0`): same paths, JSON
//! field names and semantics as Harbor's, so Harbor clients and scripts work
//! unchanged. Errors use Harbor's body, `{"errors":[{"code","message"}]}`.
//! Handlers authenticate through [`Caller`], ask [`crate::auth::authorize`]
//! and call services; they hold no rules of their own.

mod projects;
mod system;
mod users;

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;

use crate::auth::{Action, AuthError, Decision, Resource, Subject, authorize};
use crate::service::ServiceError;

use super::state::AppState;

pub const PREFIX: &str = "/api/v2.0";

/// The `/api/v2.0` routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/ping", get(system::ping))
        .route("/health", get(system::health))
        .route("/systeminfo", get(system::systeminfo))
        .route("/projects", get(projects::list).post(projects::create).head(projects::exists))
        .route("/projects/{project_name_or_id}", get(projects::get).put(projects::update).delete(projects::delete))
        .route("/projects/{project_name_or_id}/summary", get(projects::summary))
        .route("/users/current", get(users::current))
}

/// A Harbor API error: status, code and message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// Harbor's code for a status.
    fn code(&self) -> &'static str {
        match self.status {
            StatusCode::BAD_REQUEST => "BAD_REQUEST",
            StatusCode::UNAUTHORIZED => "UNAUTHORIZED",
            StatusCode::FORBIDDEN => "FORBIDDEN",
            StatusCode::NOT_FOUND => "NOT_FOUND",
            StatusCode::METHOD_NOT_ALLOWED => "METHOD_NOT_ALLOWED",
            StatusCode::CONFLICT => "CONFLICT",
            StatusCode::PRECONDITION_FAILED => "PRECONDITION",
            StatusCode::SERVICE_UNAVAILABLE => "SERVICE_UNAVAILABLE",
            _ => "INTERNAL_SERVER_ERROR",
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    errors: [ErrorEntry<'a>; 1],
}

#[derive(Serialize)]
struct ErrorEntry<'a> {
    code: &'static str,
    message: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { errors: [ErrorEntry { code: self.code(), message: &self.message }] };
        let mut resp = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"berth\", charset=\"UTF-8\""));
        }
        resp
    }
}

/// The one translation of service errors into Harbor errors.
impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let status = match &e {
            ServiceError::Invalid(_)
            | ServiceError::ManifestInvalid(_)
            | ServiceError::DigestInvalid(_)
            | ServiceError::UploadInvalid(_)
            | ServiceError::RangeInvalid { .. }
            | ServiceError::RangeNotSatisfiable { .. } => StatusCode::BAD_REQUEST,
            ServiceError::NotFound(_)
            | ServiceError::NameUnknown(_)
            | ServiceError::ManifestUnknown(_)
            | ServiceError::BlobUnknown(_)
            | ServiceError::UploadUnknown
            | ServiceError::ManifestBlobUnknown(_) => StatusCode::NOT_FOUND,
            ServiceError::Conflict(_) => StatusCode::CONFLICT,
            ServiceError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            ServiceError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ServiceError::Backend(p) if p.is(crate::port::ErrorKind::Unavailable) => StatusCode::SERVICE_UNAVAILABLE,
            ServiceError::Backend(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if matches!(e, ServiceError::Backend(_)) {
            tracing::error!(error = %e, "backend failure");
            return Self::new(status, "internal error");
        }
        Self::new(status, e.to_string())
    }
}

/// The authenticated caller of a management request. Bad credentials are a
/// 401, never a silent anonymous request.
pub struct Caller(pub Subject);

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let value = parts.headers.get(header::AUTHORIZATION).map(|v| v.to_str().unwrap_or(""));
        match state.auth.authenticate(value).await {
            Ok(Subject::Token(_)) => {
                Err(ApiError::new(StatusCode::UNAUTHORIZED, "registry tokens are not accepted by the management API"))
            }
            Ok(subject) => Ok(Self(subject)),
            Err(AuthError::Backend(e)) => Err(ServiceError::from(e).into()),
            Err(e) => Err(ApiError::new(StatusCode::UNAUTHORIZED, e.to_string())),
        }
    }
}

impl Caller {
    /// Allows, or fails with 401 (anonymous) or 403.
    pub fn require(&self, action: Action, resource: Resource<'_>) -> Result<(), ApiError> {
        match authorize(&self.0, action, resource) {
            Decision::Allow => Ok(()),
            Decision::Challenge => Err(ApiError::new(StatusCode::UNAUTHORIZED, "authentication required")),
            Decision::Deny => Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden")),
        }
    }

    pub fn name(&self) -> Option<&str> {
        match &self.0 {
            Subject::User { name, .. } => Some(name),
            Subject::Anonymous | Subject::Token(_) => None,
        }
    }
}

/// RFC 3339 time of a Unix timestamp, as Harbor writes times.
pub fn rfc3339(unix: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(unix).unwrap_or(0));
    humantime::format_rfc3339_millis(t).to_string()
}

/// `page` and `page_size` of a listing, with Harbor's defaults and bounds.
#[derive(Debug, Clone, Copy)]
pub struct Paging {
    pub page: usize,
    pub page_size: usize,
}

impl Paging {
    pub fn parse(page: Option<&str>, page_size: Option<&str>) -> Result<Self, ApiError> {
        let num = |v: Option<&str>, name: &str, default: usize| match v {
            None => Ok(default),
            Some(s) => {
                s.parse::<usize>().map_err(|_| ApiError::bad_request(format!("{name} must be a number, got {s:?}")))
            }
        };
        let page = num(page, "page", 1)?.max(1);
        let page_size = num(page_size, "page_size", 10)?;
        if !(1..=100).contains(&page_size) {
            return Err(ApiError::bad_request("page_size must be between 1 and 100"));
        }
        Ok(Self { page, page_size })
    }

    /// The range of a list of `total` items this page covers.
    pub fn page_slice(&self, total: usize) -> std::ops::Range<usize> {
        let start = (self.page - 1).saturating_mul(self.page_size).min(total);
        start..start.saturating_add(self.page_size).min(total)
    }

    /// A page of items (already cut by [`Self::page_slice`]) out of `total`,
    /// with the `X-Total-Count` and `Link` headers.
    pub fn respond_page<T: Serialize>(&self, path: &str, query_rest: &str, total: usize, items: &[T]) -> Response {
        let range = self.page_slice(total);
        let mut resp = axum::Json(items).into_response();
        let h = resp.headers_mut();
        h.insert("x-total-count", HeaderValue::from(total));
        let link = |page: usize, rel: &str| {
            format!("<{PREFIX}{path}?page={page}&page_size={}{query_rest}>; rel=\"{rel}\"", self.page_size)
        };
        let mut links = Vec::new();
        if self.page > 1 && range.start > 0 {
            links.push(link(self.page - 1, "prev"));
        }
        if range.end < total {
            links.push(link(self.page + 1, "next"));
        }
        if !links.is_empty()
            && let Ok(v) = HeaderValue::from_str(&links.join(" , "))
        {
            h.insert(header::LINK, v);
        }
        resp
    }
}

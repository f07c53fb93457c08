//! The OCI distribution error codes, each declared once with its wire code,
//! message and HTTP status, and the `{"errors":[…]}` body built by serde.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::service::ServiceError;

/// Every error `/v2` can answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OciCode {
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    /// A chunk that does not start where the upload stands (416).
    RangeInvalid,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    SizeInvalid,
    /// A body over the configured limit (413).
    TooLarge,
    Unauthorized,
    Denied,
    Unsupported,
    /// No such endpoint (404).
    NotFound,
    /// A bad `n` in a listing (distribution's code for it).
    PaginationInvalid,
    TooManyRequests,
    /// Harbor's code for a refusal by policy: an immutable tag (412).
    Precondition,
    /// Harbor's code for a pull a project's policy refuses (412).
    PolicyViolation,
    /// A backend is unreachable; retrying may help (503).
    Unavailable,
    /// A bug or a broken backend (500).
    Internal,
}

impl OciCode {
    /// The wire code (the spec's, or distribution's `UNKNOWN` for failures
    /// the spec has no code for).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BlobUnknown => "BLOB_UNKNOWN",
            Self::BlobUploadInvalid | Self::RangeInvalid => "BLOB_UPLOAD_INVALID",
            Self::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            Self::DigestInvalid => "DIGEST_INVALID",
            Self::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            Self::ManifestInvalid => "MANIFEST_INVALID",
            Self::ManifestUnknown => "MANIFEST_UNKNOWN",
            Self::NameInvalid => "NAME_INVALID",
            Self::NameUnknown => "NAME_UNKNOWN",
            Self::SizeInvalid | Self::TooLarge => "SIZE_INVALID",
            Self::Unauthorized => "UNAUTHORIZED",
            Self::Denied => "DENIED",
            Self::Unsupported | Self::NotFound => "UNSUPPORTED",
            Self::TooManyRequests => "TOOMANYREQUESTS",
            Self::PaginationInvalid => "PAGINATION_NUMBER_INVALID",
            Self::Precondition => "PRECONDITION",
            Self::PolicyViolation => "PROJECT_POLICY_VIOLATION",
            Self::Unavailable | Self::Internal => "UNKNOWN",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Self::BlobUnknown => "blob unknown to registry",
            Self::BlobUploadInvalid => "blob upload invalid",
            Self::RangeInvalid => "requested range not satisfiable: the chunk does not start at the upload's offset",
            Self::BlobUploadUnknown => "blob upload unknown to registry",
            Self::DigestInvalid => "provided digest did not match uploaded content",
            Self::ManifestBlobUnknown => "manifest references a manifest or blob unknown to registry",
            Self::ManifestInvalid => "manifest invalid",
            Self::ManifestUnknown => "manifest unknown to registry",
            Self::NameInvalid => "invalid repository name",
            Self::NameUnknown => "repository name not known to registry",
            Self::SizeInvalid => "provided length did not match content length",
            Self::TooLarge => "payload too large",
            Self::Unauthorized => "authentication required",
            Self::Denied => "requested access to the resource is denied",
            Self::Unsupported => "the operation is unsupported",
            Self::NotFound => "no such endpoint",
            Self::TooManyRequests => "too many requests",
            Self::PaginationInvalid => "invalid number of results requested",
            Self::Precondition => "the request is refused by a policy of the repository",
            Self::PolicyViolation => "the pull is refused by a policy of the project",
            Self::Unavailable => "the registry's storage is unavailable, try again",
            Self::Internal => "internal error",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Self::BlobUnknown
            | Self::BlobUploadUnknown
            | Self::ManifestBlobUnknown
            | Self::ManifestUnknown
            | Self::NameUnknown
            | Self::NotFound => StatusCode::NOT_FOUND,
            Self::BlobUploadInvalid
            | Self::DigestInvalid
            | Self::ManifestInvalid
            | Self::NameInvalid
            | Self::SizeInvalid
            | Self::PaginationInvalid => StatusCode::BAD_REQUEST,
            Self::RangeInvalid => StatusCode::RANGE_NOT_SATISFIABLE,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Denied => StatusCode::FORBIDDEN,
            Self::Unsupported => StatusCode::METHOD_NOT_ALLOWED,
            Self::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Self::Precondition | Self::PolicyViolation => StatusCode::PRECONDITION_FAILED,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// One error answer: a code plus an optional detail (a string or JSON).
#[derive(Debug, Clone)]
pub struct OciError {
    pub code: OciCode,
    /// Replaces the code's message (clients show the message, not the
    /// detail: Harbor's policy refusals say why in it).
    pub message: Option<String>,
    pub detail: Option<serde_json::Value>,
    /// Extra response headers (the `WWW-Authenticate` challenge, the
    /// upload's `Range` and `Location` after a 416).
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl OciError {
    pub fn new(code: OciCode) -> Self {
        Self { code, message: None, detail: None, headers: Vec::new() }
    }

    pub fn detail(mut self, detail: impl Into<serde_json::Value>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }
}

impl From<OciCode> for OciError {
    fn from(code: OciCode) -> Self {
        Self::new(code)
    }
}

#[derive(Serialize)]
struct Body<'a> {
    errors: [Entry<'a>; 1],
}

#[derive(Serialize)]
struct Entry<'a> {
    code: &'static str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a serde_json::Value>,
}

impl IntoResponse for OciError {
    fn into_response(self) -> Response {
        let body = Body {
            errors: [Entry {
                code: self.code.as_str(),
                message: self.message.as_deref().unwrap_or(self.code.message()),
                detail: self.detail.as_ref(),
            }],
        };
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let mut resp =
            (self.code.status(), [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], json)
                .into_response();
        for (name, value) in self.headers {
            resp.headers_mut().append(name, value);
        }
        if self.code.status().is_server_error() {
            tracing::error!(code = self.code.as_str(), detail = ?self.detail, "request failed");
        }
        resp
    }
}

/// The one translation of service errors into `/v2` errors.
impl From<ServiceError> for OciError {
    fn from(e: ServiceError) -> Self {
        let detail = e.to_string();
        let code = match &e {
            ServiceError::BlobUnknown(_) => OciCode::BlobUnknown,
            ServiceError::UploadUnknown => OciCode::BlobUploadUnknown,
            ServiceError::UploadInvalid(_) => OciCode::BlobUploadInvalid,
            ServiceError::RangeInvalid { .. } => OciCode::RangeInvalid,
            ServiceError::RangeNotSatisfiable { size } => {
                let range = HeaderValue::from_str(&format!("bytes */{size}")).unwrap_or(HeaderValue::from_static("*"));
                return OciError::new(OciCode::RangeInvalid).detail(detail).header(header::CONTENT_RANGE, range);
            }
            ServiceError::DigestInvalid(_) => OciCode::DigestInvalid,
            ServiceError::ManifestUnknown(_) => OciCode::ManifestUnknown,
            ServiceError::ManifestInvalid(_) => OciCode::ManifestInvalid,
            ServiceError::ManifestBlobUnknown(_) => OciCode::ManifestBlobUnknown,
            ServiceError::NameUnknown(_) => OciCode::NameUnknown,
            ServiceError::TooLarge(_) => OciCode::TooLarge,
            ServiceError::Conflict(_) | ServiceError::PreconditionFailed(_) | ServiceError::Forbidden(_) => {
                OciCode::Denied
            }
            ServiceError::Invalid(_) => OciCode::NameInvalid,
            ServiceError::QuotaExceeded(why) => {
                let why = why.clone();
                return OciError { message: Some(why.clone()), ..OciError::new(OciCode::Denied) }.detail(why);
            }
            ServiceError::Immutable(why) => {
                let why = why.clone();
                return OciError { message: Some(why.clone()), ..OciError::new(OciCode::Precondition) }.detail(why);
            }
            ServiceError::PolicyViolation(why) => {
                let why = why.clone();
                return OciError { message: Some(why.clone()), ..OciError::new(OciCode::PolicyViolation) }.detail(why);
            }
            ServiceError::NotFound(_) => OciCode::NameUnknown,
            ServiceError::NotProxied(why) => {
                let why = why.clone();
                return OciError { message: Some(why.clone()), ..OciError::new(OciCode::NameUnknown) }.detail(why);
            }
            ServiceError::Upstream(r) => {
                // The client may retry when the upstream said when.
                let code = if r.kind == crate::remote::ErrorKind::TooManyRequests {
                    OciCode::TooManyRequests
                } else {
                    OciCode::Unavailable
                };
                let why = format!("the upstream registry failed and nothing is cached: {}", r.message);
                let mut err = OciError { message: Some(why.clone()), ..OciError::new(code) }.detail(why);
                if let Some(after) = r.retry_after
                    && let Ok(v) = HeaderValue::from_str(&after.as_secs().max(1).to_string())
                {
                    err = err.header(header::RETRY_AFTER, v);
                }
                return err;
            }
            ServiceError::Backend(p) if p.is(crate::port::ErrorKind::Unavailable) => OciCode::Unavailable,
            ServiceError::Backend(_) => OciCode::Internal,
        };
        // A backend failure's cause is for the log, not the client.
        if matches!(e, ServiceError::Backend(_)) {
            tracing::error!(error = %e, "backend failure");
            return OciError::new(code);
        }
        OciError::new(code).detail(detail)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn error_body_has_the_spec_shape() {
        let resp = OciError::new(OciCode::BlobUnknown).detail("sha256:abc").into_response();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"errors": [{"code": "BLOB_UNKNOWN", "message": "blob unknown to registry", "detail": "sha256:abc"}]})
        );
        assert_eq!(OciCode::RangeInvalid.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    }
}

//! What went wrong talking to another registry, as a kind a caller can act
//! on (retry, give up, report) and a message for people.

use std::time::Duration;

/// What kind of failure a call to another registry met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The credentials were refused (401 after a fresh token), or are
    /// missing for a resource that needs them.
    Unauthorized,
    /// Authenticated, but not allowed (403, `DENIED`).
    Denied,
    /// No such repository, manifest, blob or tag (404).
    NotFound,
    /// The registry could not be reached or answered 5xx: worth retrying.
    Unavailable,
    /// The call took longer than the endpoint's time-out: worth retrying.
    Timeout,
    /// 429: retry after [`RemoteError::retry_after`] (when the registry said).
    TooManyRequests,
    /// The registry refused the request (another 4xx: a manifest it does
    /// not accept, an operation it does not support).
    Refused,
    /// The registry answered something that breaks the protocol: an
    /// unreadable body, a digest that does not match the bytes, a missing
    /// `Location`.
    Protocol,
    /// The caller's input cannot be sent (a bad URL, name or credential).
    Invalid,
}

/// A failed call to another registry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RemoteError {
    pub kind: ErrorKind,
    pub message: String,
    /// The HTTP status the registry answered, when it answered.
    pub status: Option<u16>,
    /// How long the registry asked to wait (`Retry-After` of a 429 or 503).
    pub retry_after: Option<Duration>,
}

pub type RemoteResult<T> = Result<T, RemoteError>;

impl RemoteError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), status: None, retry_after: None }
    }

    pub fn protocol(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Protocol, message)
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, message)
    }

    /// Whether the same call may succeed later unchanged.
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind, ErrorKind::Unavailable | ErrorKind::Timeout | ErrorKind::TooManyRequests)
    }

    pub fn is_not_found(&self) -> bool {
        self.kind == ErrorKind::NotFound
    }

    /// The error of an answer with status `status`, headers `headers` and
    /// body `body` (an OCI or Harbor error body is read for its message);
    /// `what` says what was asked.
    pub fn from_answer(what: &str, status: u16, headers: &reqwest::header::HeaderMap, body: &[u8]) -> Self {
        let kind = match status {
            401 => ErrorKind::Unauthorized,
            403 => ErrorKind::Denied,
            404 => ErrorKind::NotFound,
            408 => ErrorKind::Timeout,
            429 => ErrorKind::TooManyRequests,
            500..=599 => ErrorKind::Unavailable,
            400..=499 => ErrorKind::Refused,
            _ => ErrorKind::Protocol,
        };
        let detail = error_body_message(body).unwrap_or_else(|| format!("HTTP {status}"));
        Self {
            kind,
            message: format!("{what}: {detail}"),
            status: Some(status),
            retry_after: headers.get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(retry_after),
        }
    }

    /// The error of a request that got no answer.
    pub fn from_transport(what: &str, e: &reqwest::Error) -> Self {
        let kind = if e.is_timeout() { ErrorKind::Timeout } else { ErrorKind::Unavailable };
        // reqwest's outer message hides the cause (DNS, refused, TLS).
        let mut message = format!("{what}: {e}");
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            message.push_str(&format!(": {s}"));
            source = s.source();
        }
        Self::new(kind, message)
    }
}

/// The messages of an OCI (`{"errors":[{"code","message","detail"}]}`) or
/// Harbor error body, joined; `None` when the body is not one.
pub fn error_body_message(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Body {
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        code: serde_json::Value,
        #[serde(default)]
        message: String,
    }
    let parsed: Body = serde_json::from_slice(body).ok()?;
    let parts: Vec<String> = parsed
        .errors
        .into_iter()
        .map(|e| {
            let code = match e.code {
                serde_json::Value::String(s) => s,
                serde_json::Value::Number(n) => n.to_string(),
                _ => String::new(),
            };
            match (code.is_empty(), e.message.is_empty()) {
                (false, false) => format!("{code}: {}", e.message),
                (false, true) => code,
                _ => e.message,
            }
        })
        .filter(|m| !m.is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// A `Retry-After` value: seconds (an HTTP date is read as "a while": the
/// registry's clock is not ours).
pub fn retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    match value.parse::<u64>() {
        Ok(secs) => Some(Duration::from_secs(secs)),
        Err(_) => humantime::parse_rfc3339_weak(value)
            .ok()
            .or_else(|| httpdate(value))
            .map(|at| at.duration_since(std::time::SystemTime::now()).unwrap_or_default()),
    }
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the form HTTP dates take.
fn httpdate(value: &str) -> Option<std::time::SystemTime> {
    let parts: Vec<&str> = value.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else { return None };
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = MONTHS.iter().position(|m| m == month)? + 1;
    humantime::parse_rfc3339(&format!("{year}-{month:02}-{day:0>2}T{time}Z")).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn oci_and_harbor_error_bodies_give_their_messages() {
        let oci = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}"#;
        assert_eq!(error_body_message(oci).as_deref(), Some("MANIFEST_UNKNOWN: manifest unknown"));
        let two = br#"{"errors":[{"code":"DENIED","message":"no"},{"message":"and also"}]}"#;
        assert_eq!(error_body_message(two).as_deref(), Some("DENIED: no; and also"));
        let harbor = br#"{"errors":[{"code":"NOT_FOUND","message":"project p not found"}]}"#;
        assert_eq!(error_body_message(harbor).as_deref(), Some("NOT_FOUND: project p not found"));
        assert_eq!(error_body_message(b"<html>bad gateway</html>"), None);
        assert_eq!(error_body_message(br#"{"errors":[]}"#), None);
    }

    #[test]
    fn statuses_map_to_kinds_with_retry_after() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, "7".parse().unwrap());
        let e = RemoteError::from_answer("GET x", 429, &h, b"");
        assert_eq!(
            (e.kind, e.retry_after, e.status),
            (ErrorKind::TooManyRequests, Some(Duration::from_secs(7)), Some(429))
        );
        assert!(e.is_retryable());
        let none = reqwest::header::HeaderMap::new();
        let kind = |s| RemoteError::from_answer("x", s, &none, b"").kind;
        assert_eq!(kind(401), ErrorKind::Unauthorized);
        assert_eq!(kind(403), ErrorKind::Denied);
        assert_eq!(kind(404), ErrorKind::NotFound);
        assert_eq!(kind(400), ErrorKind::Refused);
        assert_eq!(kind(503), ErrorKind::Unavailable);
        assert!(!RemoteError::from_answer("x", 404, &none, b"").is_retryable());
        let e = RemoteError::from_answer(
            "GET /v2/a/manifests/1",
            404,
            &none,
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"gone"}]}"#,
        );
        assert_eq!(e.message, "GET /v2/a/manifests/1: MANIFEST_UNKNOWN: gone");
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(retry_after(""), None);
        assert_eq!(retry_after("Sun, 06 Nov 1994 08:49:37 GMT"), Some(Duration::ZERO), "a past date: now");
        assert_eq!(retry_after("soon"), None);
    }
}

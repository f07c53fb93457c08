//! Calls to a scanner adapter: metadata, scan, report.

use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderName, LOCATION};

use super::{AdapterMetadata, METADATA_MIME, SCAN_REQUEST_MIME, ScanRequest, ScanResponse};

/// How long an adapter may take to answer one call.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Largest body berth reads from an adapter (a report of a big image is a
/// few MB).
const MAX_BODY: usize = 64 * 1024 * 1024;
/// How long berth waits when an adapter says "not yet" without a time.
const DEFAULT_REFRESH: Duration = Duration::from_secs(2);

/// Where an adapter is and how to authenticate to it (a registration's
/// connection settings).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoint {
    /// The adapter's base URL (`/api/v1/…` is appended).
    pub url: String,
    /// `""`, `Basic`, `Bearer` or `X-ScannerAdapter-API-Key`.
    pub auth: String,
    /// `user:password` for Basic, the token for Bearer, the key for the
    /// API-key header.
    pub credential: String,
    pub skip_cert_verify: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    /// The adapter could not be reached or answered 5xx: worth retrying.
    #[error("scanner adapter unavailable: {0}")]
    Unavailable(String),
    /// The adapter refused the call or answered something unreadable.
    #[error("scanner adapter error: {0}")]
    Refused(String),
    /// The adapter does not know the scan request (it may have restarted).
    #[error("scan request unknown to the adapter")]
    UnknownRequest,
}

/// What a report poll found.
#[derive(Debug)]
pub enum Poll {
    Ready(Vec<u8>),
    /// Not ready: ask again after this long.
    Later(Duration),
}

fn client(skip_cert_verify: bool) -> Result<&'static reqwest::Client, AdapterError> {
    static VERIFYING: OnceLock<Option<reqwest::Client>> = OnceLock::new();
    static TRUSTING: OnceLock<Option<reqwest::Client>> = OnceLock::new();
    let cell = if skip_cert_verify { &TRUSTING } else { &VERIFYING };
    cell.get_or_init(|| {
        reqwest::Client::builder()
            .timeout(TIMEOUT)
            .danger_accept_invalid_certs(skip_cert_verify)
            // A report that is not ready answers 302; berth reads it, not
            // whatever the Location points at.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .build()
            .ok()
    })
    .as_ref()
    .ok_or_else(|| AdapterError::Unavailable("no HTTP client".to_owned()))
}

impl Endpoint {
    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.url.trim_end_matches('/'))
    }

    fn request(&self, method: reqwest::Method, path: &str) -> Result<reqwest::RequestBuilder, AdapterError> {
        let req = client(self.skip_cert_verify)?.request(method, self.url(path));
        Ok(match self.auth.as_str() {
            "" => req,
            "Basic" => req.header(
                AUTHORIZATION,
                format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(&self.credential)),
            ),
            "Bearer" => req.header(AUTHORIZATION, format!("Bearer {}", self.credential)),
            _ => req.header(HeaderName::from_static("x-scanneradapter-api-key"), self.credential.as_str()),
        })
    }

    /// The adapter's metadata.
    pub async fn metadata(&self) -> Result<AdapterMetadata, AdapterError> {
        let resp = self.request(reqwest::Method::GET, "/metadata")?.header(ACCEPT, METADATA_MIME).send().await;
        let (status, body) = read(resp).await?;
        if !status.is_success() {
            return Err(refusal(status, &body));
        }
        serde_json::from_slice(&body).map_err(|e| AdapterError::Refused(format!("unreadable metadata: {e}")))
    }

    /// Submits a scan; the adapter's request id.
    pub async fn scan(&self, request: &ScanRequest) -> Result<String, AdapterError> {
        let body = serde_json::to_vec(request).map_err(|e| AdapterError::Refused(e.to_string()))?;
        let resp = self
            .request(reqwest::Method::POST, "/scan")?
            .header(CONTENT_TYPE, SCAN_REQUEST_MIME)
            .header(ACCEPT, super::SCAN_RESPONSE_MIME)
            .body(body)
            .send()
            .await;
        let (status, body) = read(resp).await?;
        if !status.is_success() {
            return Err(refusal(status, &body));
        }
        let r: ScanResponse = serde_json::from_slice(&body)
            .map_err(|e| AdapterError::Refused(format!("unreadable scan response: {e}")))?;
        if r.id.is_empty() {
            return Err(AdapterError::Refused("the scan response has no id".to_owned()));
        }
        Ok(r.id)
    }

    /// Asks for the report of scan request `id` in `mime` (an SBOM report
    /// in the SBOM format `sbom_media_type`).
    pub async fn report(&self, id: &str, mime: &str, sbom_media_type: Option<&str>) -> Result<Poll, AdapterError> {
        let id = percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC);
        let path = match sbom_media_type {
            Some(t) => format!(
                "/scan/{id}/report?sbom_media_type={}",
                percent_encoding::utf8_percent_encode(t, percent_encoding::NON_ALPHANUMERIC)
            ),
            None => format!("/scan/{id}/report"),
        };
        let resp = self.request(reqwest::Method::GET, &path)?.header(ACCEPT, mime).send().await;
        let resp = resp.map_err(|e| AdapterError::Unavailable(e.to_string()))?;
        let status = resp.status();
        if status == StatusCode::FOUND || status == StatusCode::SEE_OTHER || status == StatusCode::ACCEPTED {
            let wait = ["refresh-after", "retry-after"]
                .iter()
                .find_map(|h| resp.headers().get(*h)?.to_str().ok()?.trim().parse::<u64>().ok())
                .map_or(DEFAULT_REFRESH, Duration::from_secs);
            let _ = resp.headers().get(LOCATION);
            return Ok(Poll::Later(wait.clamp(Duration::from_millis(200), Duration::from_secs(60))));
        }
        let (status, body) = read(Ok(resp)).await?;
        if status == StatusCode::NOT_FOUND {
            return Err(AdapterError::UnknownRequest);
        }
        if !status.is_success() {
            return Err(refusal(status, &body));
        }
        Ok(Poll::Ready(body))
    }
}

async fn read(resp: reqwest::Result<reqwest::Response>) -> Result<(StatusCode, Vec<u8>), AdapterError> {
    let mut resp = resp.map_err(|e| AdapterError::Unavailable(e.to_string()))?;
    let status = resp.status();
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| AdapterError::Unavailable(e.to_string()))? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(AdapterError::Refused(format!("the adapter's answer is over {MAX_BODY} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((status, body))
}

/// The error for a non-2xx answer, with the adapter's own message when it
/// sent one.
fn refusal(status: StatusCode, body: &[u8]) -> AdapterError {
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.pointer("/error/message").and_then(|m| m.as_str()).map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned());
    let text = format!("{status}: {message}");
    if status.is_server_error() { AdapterError::Unavailable(text) } else { AdapterError::Refused(text) }
}

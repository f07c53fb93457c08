//! P2P preheat providers (Harbor's `src/pkg/p2p/preheat/provider`): the
//! two drivers Harbor ships, as HTTP clients of the provider's API.
//!
//! - Dragonfly (its manager's open API, as Harbor 2.13 calls it): health
//!   `GET /healthy`; a preheat is a job, `POST /oapi/v1/jobs` with the
//!   image's manifest URL and the `Authorization` header to pull it with,
//!   answered with the job's id, then polled at `GET /oapi/v1/jobs/{id}`
//!   until `SUCCESS` or `FAILURE`.
//! - Kraken: health `GET /health`; a preheat is a Docker registry
//!   notification of a push, `POST /registry/notifications`; a 2xx answer
//!   means done.
//!
//! This module only speaks to providers; which images go to them is the
//! preheat service's ([`crate::service::preheat`]) and the job's.

use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use serde::Serialize;
use serde_json::{Value, json};

pub const DRAGONFLY: &str = "dragonfly";
pub const KRAKEN: &str = "kraken";

/// How long a provider may take to answer one request.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Harbor's provider `Metadata`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Metadata {
    pub id: &'static str,
    pub name: &'static str,
    pub icon: &'static str,
    pub maintainers: &'static [&'static str],
    pub version: &'static str,
    pub source: &'static str,
}

/// The drivers, as Harbor describes them.
pub fn providers() -> [Metadata; 2] {
    [
        Metadata {
            id: DRAGONFLY,
            name: "Dragonfly",
            icon: "https://raw.githubusercontent.com/dragonflyoss/Dragonfly2/master/docs/images/logo/dragonfly-linear.png",
            maintainers: &["chlins.zhang@gmail.com", "gaius.qi@gmail.com"],
            version: "2.1.57",
            source: "https://github.com/dragonflyoss/Dragonfly2",
        },
        Metadata {
            id: KRAKEN,
            name: "Kraken",
            icon: "https://github.com/uber/kraken/blob/master/assets/kraken-logo-color.svg",
            maintainers: &["mmpei/peimingming@corp.netease.com"],
            version: "0.1.3",
            source: "https://github.com/uber/kraken",
        },
    ]
}

pub fn is_vendor(v: &str) -> bool {
    v == DRAGONFLY || v == KRAKEN
}

/// How berth authenticates to a provider.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    None,
    Basic { username: String, password: String },
    Bearer(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::None => "None",
            Self::Basic { .. } => "Basic(..)",
            Self::Bearer(_) => "Bearer(..)",
        })
    }
}

/// A provider instance as a driver reaches it.
#[derive(Debug, Clone)]
pub struct Driver {
    pub vendor: String,
    pub endpoint: String,
    pub auth: Auth,
    pub insecure: bool,
}

/// Why a provider call failed.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// Not reached, or it answered 5xx: worth another try.
    #[error("{0}")]
    Unavailable(String),
    /// It refused the request (4xx, an unreadable answer).
    #[error("{0}")]
    Refused(String),
}

/// What a preheat asks of a provider.
#[derive(Debug, Clone)]
pub struct Image {
    /// `<registry>/v2/<repository>/manifests/<tag>`.
    pub url: String,
    /// The `Authorization` header value that pulls it.
    pub authorization: String,
    pub repository: String,
    pub tag: String,
    pub digest: String,
    pub media_type: String,
    /// The policy's scope: `single_peer`, `all_peers`.
    pub scope: String,
}

/// Where a preheat stands at its provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    Done,
    /// Still running, under this id at the provider.
    Running(String),
    Failed(String),
}

fn client(insecure: bool) -> Result<&'static reqwest::Client, DriverError> {
    static VERIFYING: OnceLock<Option<reqwest::Client>> = OnceLock::new();
    static TRUSTING: OnceLock<Option<reqwest::Client>> = OnceLock::new();
    let cell = if insecure { &TRUSTING } else { &VERIFYING };
    cell.get_or_init(|| {
        reqwest::Client::builder()
            .timeout(TIMEOUT)
            .danger_accept_invalid_certs(insecure)
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .build()
            .ok()
    })
    .as_ref()
    .ok_or_else(|| DriverError::Unavailable("no HTTP client".to_owned()))
}

/// Dragonfly's scope for a policy's.
fn dragonfly_scope(scope: &str) -> &str {
    match scope {
        "all_peers" => "all_peers",
        "all_seed_peers" => "all_seed_peers",
        _ => "single_seed_peer",
    }
}

impl Driver {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.endpoint.trim_end_matches('/'))
    }

    fn request(&self, method: reqwest::Method, path: &str) -> Result<reqwest::RequestBuilder, DriverError> {
        let req = client(self.insecure)?.request(method, self.url(path));
        Ok(match &self.auth {
            Auth::None => req,
            Auth::Basic { username, password } => {
                let b = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
                req.header(reqwest::header::AUTHORIZATION, format!("Basic {b}"))
            }
            Auth::Bearer(token) => req.header(reqwest::header::AUTHORIZATION, format!("Bearer {token}")),
        })
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<(reqwest::StatusCode, Vec<u8>), DriverError> {
        let resp = req.send().await.map_err(|e| {
            DriverError::Unavailable(format!("{} {} cannot be reached: {e}", self.vendor, self.endpoint))
        })?;
        let status = resp.status();
        let body = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
        if status.is_server_error() {
            return Err(DriverError::Unavailable(format!("{} answered {status}", self.vendor)));
        }
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
            return Err(DriverError::Refused(format!("{} answered {status}: {text}", self.vendor)));
        }
        Ok((status, body))
    }

    /// Whether the instance answers its health check.
    pub async fn healthy(&self) -> Result<(), DriverError> {
        let path = if self.vendor == KRAKEN { "/health" } else { "/healthy" };
        self.send(self.request(reqwest::Method::GET, path)?).await.map(|_| ())
    }

    /// Asks the provider to preheat `image`.
    pub async fn preheat(&self, image: &Image) -> Result<Progress, DriverError> {
        if self.vendor == KRAKEN {
            let body = json!({"events": [{
                "id": uuid::Uuid::new_v4().to_string(),
                "timestamp": chrono::Utc::now().to_rfc3339(),
                "action": "push",
                "target": {
                    "mediaType": image.media_type,
                    "digest": image.digest,
                    "repository": image.repository,
                    "url": image.url,
                    "tag": image.tag,
                },
            }]});
            let req = self.request(reqwest::Method::POST, "/registry/notifications")?.json(&body);
            self.send(req).await?;
            return Ok(Progress::Done);
        }
        let body = json!({
            "type": "preheat",
            "args": {
                "type": "image",
                "url": image.url,
                "headers": {"Authorization": image.authorization},
                "scope": dragonfly_scope(&image.scope),
            },
        });
        let (_, answer) = self.send(self.request(reqwest::Method::POST, "/oapi/v1/jobs")?.json(&body)).await?;
        let job = dragonfly_job(&answer)?;
        Ok(job)
    }

    /// Where a running preheat stands (Dragonfly; Kraken's are done when
    /// accepted).
    pub async fn progress(&self, id: &str) -> Result<Progress, DriverError> {
        if self.vendor == KRAKEN {
            return Ok(Progress::Done);
        }
        let (_, answer) = self.send(self.request(reqwest::Method::GET, &format!("/oapi/v1/jobs/{id}"))?).await?;
        dragonfly_job(&answer)
    }
}

/// A Dragonfly job's state from its JSON.
fn dragonfly_job(body: &[u8]) -> Result<Progress, DriverError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| DriverError::Refused(format!("dragonfly's answer is unreadable: {e}")))?;
    let id = match &v["id"] {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => return Err(DriverError::Refused("dragonfly's answer names no job id".to_owned())),
    };
    match v["status"].as_str().unwrap_or_default().to_ascii_uppercase().as_str() {
        "SUCCESS" => Ok(Progress::Done),
        "FAILURE" | "FAILED" => {
            let why = v["result"]["error"].as_str().or_else(|| v["error"].as_str()).unwrap_or("the job failed");
            Ok(Progress::Failed(format!("dragonfly job {id}: {why}")))
        }
        _ => Ok(Progress::Running(id)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn dragonfly_job_states() {
        assert_eq!(dragonfly_job(br#"{"id":7,"status":"PENDING"}"#).unwrap(), Progress::Running("7".into()));
        assert_eq!(dragonfly_job(br#"{"id":"7","status":"SUCCESS"}"#).unwrap(), Progress::Done);
        assert!(matches!(dragonfly_job(br#"{"id":7,"status":"FAILURE"}"#).unwrap(), Progress::Failed(_)));
        assert!(dragonfly_job(b"nope").is_err());
        assert_eq!(dragonfly_scope("all_peers"), "all_peers");
        assert_eq!(dragonfly_scope("single_peer"), "single_seed_peer");
    }
}

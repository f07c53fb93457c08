//! The webhook job: one task delivers one event to one target of a policy
//! ([`crate::service::webhooks`]), in the target's payload format —
//! Harbor's Default JSON, CloudEvents 1.0 (structured mode), or a Slack
//! message — with the target's `Authorization` header. A 2xx answer is
//! success; anything else (a refusal, a 5xx, a timeout) is retried with
//! backoff by the worker until the attempts run out, then recorded as Error.

use std::sync::OnceLock;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::{Job, JobError, TaskContext};
use crate::events::{Event, EventKind};
use crate::oci::RepoName;
use crate::service::projects::ProjectRef;
use crate::service::record::rfc3339_ms;
use crate::service::webhooks::{Delivery, WEBHOOK};

/// The header naming the event a delivery carries.
pub const EVENT_ID_HEADER: &str = "x-berth-event-id";

/// How long a receiver may take to answer.
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, Default)]
pub struct WebhookJob;

fn client(skip_cert_verify: bool) -> Result<&'static reqwest::Client, JobError> {
    static VERIFYING: OnceLock<Option<reqwest::Client>> = OnceLock::new();
    static TRUSTING: OnceLock<Option<reqwest::Client>> = OnceLock::new();
    let cell = if skip_cert_verify { &TRUSTING } else { &VERIFYING };
    cell.get_or_init(|| {
        reqwest::Client::builder()
            .timeout(TIMEOUT)
            .danger_accept_invalid_certs(skip_cert_verify)
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .build()
            .ok()
    })
    .as_ref()
    .ok_or_else(|| JobError::Retry("no HTTP client".to_owned()))
}

/// CloudEvents' type of an event (`harbor.artifact.pushed`).
pub fn cloudevents_type(kind: EventKind) -> String {
    let t = match kind {
        EventKind::PushArtifact => "artifact.pushed",
        EventKind::PullArtifact => "artifact.pulled",
        EventKind::DeleteArtifact => "artifact.deleted",
        EventKind::QuotaExceed => "quota.exceeded",
        EventKind::QuotaWarning => "quota.warned",
        EventKind::Replication => "replication.status.changed",
        EventKind::ScanningFailed => "scan.failed",
        EventKind::ScanningCompleted => "scan.completed",
        EventKind::ScanningStopped => "scan.stopped",
        EventKind::TagRetention => "tag_retention.finished",
        other => return format!("harbor.{}", other.name().to_ascii_lowercase()),
    };
    format!("harbor.{t}")
}

/// Harbor's `event_data` of an artifact event.
async fn event_data(ctx: &TaskContext, d: &Delivery) -> Value {
    let e = &d.event;
    let host = e.actor.host.clone().unwrap_or_default();
    let mut data = serde_json::Map::new();
    if let (Some(repo), Some(digest)) = (&e.repository, &e.digest) {
        let reference = e.tag.as_ref().map_or_else(|| format!("@{digest}"), |t| format!(":{t}"));
        let url = if host.is_empty() { format!("{repo}{reference}") } else { format!("{host}/{repo}{reference}") };
        let mut resource = json!({"digest": digest, "tag": e.tag.clone().unwrap_or_default(), "resource_url": url});
        if let Some(overview) = scan_overview(ctx, e, repo, digest).await {
            resource["scan_overview"] = overview;
        }
        data.insert("resources".to_owned(), json!([resource]));
        let (namespace, name) = repo.split_once('/').unwrap_or(("", repo));
        let public = match ctx.registry.project(&ProjectRef::Name(namespace.to_owned())).await {
            Ok(p) => p.metadata.get("public").is_some_and(|v| v == "true"),
            Err(_) => false,
        };
        let created = match RepoName::parse(repo) {
            Ok(r) => ctx.registry.repository(&r).await.map(|r| r.creation_time).unwrap_or(0),
            Err(_) => 0,
        };
        data.insert(
            "repository".to_owned(),
            json!({"date_created": created, "name": name, "namespace": namespace, "repo_full_name": repo,
                   "repo_type": if public { "public" } else { "private" }}),
        );
    }
    match &e.detail {
        // A replication's detail is Harbor's `replication` object.
        Some(detail) if e.kind == EventKind::Replication => {
            if let Ok(replication) = serde_json::from_str::<Value>(detail) {
                data.insert("replication".to_owned(), replication);
            }
        }
        Some(detail) => {
            data.insert("custom_attributes".to_owned(), json!({"details": detail}));
        }
        None => {}
    }
    Value::Object(data)
}

/// A scanning event's `scan_overview` (Harbor's, keyed by the report's
/// MIME type): the scan as it stands when the delivery is made.
async fn scan_overview(ctx: &TaskContext, e: &Event, repo: &str, digest: &str) -> Option<Value> {
    if !matches!(e.kind, EventKind::ScanningCompleted | EventKind::ScanningFailed | EventKind::ScanningStopped) {
        return None;
    }
    let reg = &ctx.registry;
    let (repo, digest) = (RepoName::parse(repo).ok()?, digest.parse::<crate::oci::Digest>().ok()?);
    let scanner = reg.project_scanner(repo.project()).await.ok()??;
    let kind = crate::service::scans::VULNERABILITY;
    let scan = reg.artifact_scan(Some(&scanner), &digest, kind).await.ok()??;
    let mime = scan.mime_type.clone();
    Some(json!({ mime: crate::service::scans::ReportSummary::of(scan) }))
}

/// The request body and its content type for `d`'s target.
pub async fn body(ctx: &TaskContext, d: &Delivery) -> (Value, &'static str) {
    let e: &Event = &d.event;
    let data = event_data(ctx, d).await;
    if d.target.kind == "slack" {
        let text = format!(
            "*Harbor webhook event*: {}\n*Operator*: {}\n*Occurred at*: {}\n*Resources*: {}",
            e.kind.name(),
            e.actor.name,
            rfc3339_ms(e.at_ms),
            e.repository.as_deref().map_or_else(|| e.audit_resource(), |_| e.audit_resource()),
        );
        return (
            json!({"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}),
            "application/json",
        );
    }
    if d.target.payload_format == "CloudEvents" {
        let body = json!({
            "specversion": "1.0",
            "id": format!("{}-{}", e.id, d.policy_id),
            "requestid": e.id,
            "source": format!("/projects/{}/webhook/policies/{}", d.project_id, d.policy_id),
            "type": cloudevents_type(e.kind),
            "datacontenttype": "application/json",
            "time": rfc3339_ms(e.at_ms),
            "operator": e.actor.name,
            "data": data,
        });
        return (body, "application/cloudevents+json");
    }
    let body = json!({"type": e.kind.name(), "occur_at": e.at_ms / 1000, "operator": e.actor.name, "event_data": data});
    (body, "application/json")
}

#[async_trait]
impl Job for WebhookJob {
    fn kind(&self) -> &'static str {
        WEBHOOK
    }

    fn queue(&self) -> &'static str {
        crate::queue::WEBHOOKS
    }

    async fn run(&self, ctx: &mut TaskContext) -> Result<(), JobError> {
        let d: Delivery =
            serde_json::from_value(ctx.payload.clone()).map_err(|e| JobError::Fatal(format!("bad delivery: {e}")))?;
        let (payload, content_type) = body(ctx, &d).await;
        ctx.log(format!(
            "sending {} to {} ({}), attempt {}",
            d.event.kind.name(),
            d.target.address,
            d.target.kind,
            ctx.attempt
        ));
        let mut req = client(d.target.skip_cert_verify)?
            .post(&d.target.address)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            // Deliveries of one event share it, so a receiver can drop repeats.
            .header(EVENT_ID_HEADER, d.event.id.as_str())
            .body(payload.to_string());
        if !d.target.auth_header.is_empty() {
            req = req.header(reqwest::header::AUTHORIZATION, d.target.auth_header.as_str());
        }
        match req.send().await {
            Ok(resp) if resp.status().is_success() => {
                ctx.log(format!("delivered: {}", resp.status()));
                Ok(())
            }
            Ok(resp) => {
                let msg = format!("{} answered {}", d.target.address, resp.status());
                ctx.log(msg.clone());
                Err(JobError::Retry(msg))
            }
            Err(e) => {
                let msg = format!("{}: {e}", d.target.address);
                ctx.log(msg.clone());
                Err(JobError::Retry(msg))
            }
        }
    }
}

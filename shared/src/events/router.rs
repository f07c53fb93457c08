//! The events queue's consumer: each event becomes its effects — a pushed
//! artifact's `extra_attrs` and its scan when the project scans on push, an audit
//! record (unless `skip_audit_log_database`), a line to the syslog
//! endpoint (`audit_log_forward_endpoint`), webhook deliveries, the
//! security hub's view of a scan or a deleted artifact, preheat and
//! replication runs of event-based policies — and a
//! batch of pulls becomes pull statistics too. Every effect tolerates a
//! repeated message: records are create-only under the event's id, pull
//! batches are counted once, webhook executions are created once per
//! event and policy; only a syslog line may be sent twice.

use super::{Event, EventKind, EventMessage, syslog};
use crate::service::audit::AuditRecord;
use crate::service::{Registry, ServiceError};

#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("unreadable event message: {0}")]
    Unreadable(String),
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error("audit log forwarding: {0}")]
    Forward(String),
}

impl RouteError {
    /// Whether another attempt cannot help.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Unreadable(_))
    }
}

/// Handles one message of the events queue.
pub async fn handle(registry: &Registry, body: &str) -> Result<(), RouteError> {
    let msg: EventMessage = serde_json::from_str(body).map_err(|e| RouteError::Unreadable(e.to_string()))?;
    match msg {
        EventMessage::Event(event) => effects(registry, &event).await,
        EventMessage::Pulls { id, pulls } => {
            registry.count_pulls(&id, &pulls).await?;
            for event in pulls.iter().filter(|e| e.kind == EventKind::PullArtifact) {
                effects(registry, event).await?;
            }
            Ok(())
        }
    }
}

async fn effects(registry: &Registry, event: &Event) -> Result<(), RouteError> {
    if event.kind == EventKind::PushArtifact
        && let (Some(repo), Some(digest)) = (event.repository.as_deref(), event.digest.as_deref())
        && let (Ok(repo), Ok(digest)) = (crate::oci::RepoName::parse(repo), digest.parse::<crate::oci::Digest>())
    {
        registry.fill_extra_attrs(&repo, &digest).await?;
        registry.scan_on_push(&crate::jobs::scan::ScanJob::queued(), &repo, &digest, &event.id).await?;
    }
    // The security hub follows scans and the artifacts they are of.
    if matches!(
        event.kind,
        EventKind::ScanningCompleted
            | EventKind::ScanningFailed
            | EventKind::ScanningStopped
            | EventKind::DeleteArtifact
    ) && let Some(digest) = event.digest.as_deref().and_then(|d| d.parse::<crate::oci::Digest>().ok())
    {
        registry.sync_security_hub(&digest).await?;
    }
    if event.kind == EventKind::DeleteRepository
        && let Some(repo) = event.repository.as_deref().or(event.resource.as_deref())
        && let Ok(repo) = crate::oci::RepoName::parse(repo)
    {
        registry.unindex_repository(&repo).await?;
    }
    let settings = registry.settings().await?;
    let skip_pull = event.kind == EventKind::PullArtifact && settings.pull_audit_log_disable;
    if let Some(record) = AuditRecord::of(event)
        && !skip_pull
    {
        if !settings.skip_audit_log_database {
            registry.record_audit(event).await?;
        }
        let endpoint = settings.audit_log_forward_endpoint.trim();
        if !endpoint.is_empty() {
            syslog::send(endpoint, &record.syslog_line()).await.map_err(RouteError::Forward)?;
        }
    }
    registry.dispatch_webhooks(event).await?;
    registry.preheat_on_push(event).await?;
    registry.replicate_on_event(event).await?;
    Ok(())
}

//! Events: what changed in the registry, who changed it and from where.
//!
//! A service that changes the table writes the change's [`Event`] into the
//! outbox in the same transaction ([`outbox_write`]), so an acknowledged
//! change always has its event. After the commit the [`EventBus`] sends it
//! to the events queue and removes the outbox item; a process that dies in
//! between leaves the item, and a later sweep ([`EventBus::sweep`]) sends
//! it: an event may come late, or twice with the same id, never not at all.
//!
//! Pulls write nothing on the request path: each process collects them
//! ([`EventBus::pulled`]) and sends them as batches at least every second.
//!
//! The events queue's consumer ([`router`]) turns each event into its
//! effects: an audit record, a syslog line, webhook deliveries, pull
//! counters. Consumers tolerate repeats.

pub mod bus;
pub mod router;
pub mod syslog;

use serde::{Deserialize, Serialize};

pub use bus::EventBus;

use crate::meta::keys;
use crate::meta::{Condition, Item, Write};
use crate::port::{ErrorKind, PortError, PortResult};

/// Who made a change, and from where.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Actor {
    /// The account name; `""` for the anonymous caller, `"system"` for
    /// berth's own work.
    pub name: String,
    /// The client's address, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The registry host the client addressed (for the resource URLs of
    /// webhook payloads), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

impl Actor {
    pub fn new(name: impl Into<String>, address: Option<String>) -> Self {
        Self { name: name.into(), address, host: None }
    }

    pub fn via(mut self, host: Option<String>) -> Self {
        self.host = host;
        self
    }

    /// berth itself (bootstrap, jobs, migrations).
    pub fn system() -> Self {
        Self { name: "system".to_owned(), address: None, host: None }
    }
}

/// What happened. The names are Harbor's event types where Harbor has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventKind {
    PushArtifact,
    PullArtifact,
    DeleteArtifact,
    CreateTag,
    DeleteTag,
    DeleteRepository,
    CreateProject,
    UpdateProject,
    DeleteProject,
    CreateMember,
    UpdateMember,
    DeleteMember,
    CreateUser,
    UpdateUser,
    DeleteUser,
    CreateRobot,
    UpdateRobot,
    DeleteRobot,
    UpdateConfiguration,
    ScanningCompleted,
    ScanningFailed,
    ScanningStopped,
    QuotaWarning,
    QuotaExceed,
    Replication,
    TagRetention,
}

/// The event types a webhook policy may name (Harbor's, SPEC F15).
pub const WEBHOOK_EVENT_TYPES: [EventKind; 10] = [
    EventKind::PushArtifact,
    EventKind::PullArtifact,
    EventKind::DeleteArtifact,
    EventKind::ScanningCompleted,
    EventKind::ScanningStopped,
    EventKind::ScanningFailed,
    EventKind::QuotaExceed,
    EventKind::QuotaWarning,
    EventKind::Replication,
    EventKind::TagRetention,
];

impl EventKind {
    /// Harbor's name of the type (`PUSH_ARTIFACT`).
    pub fn name(self) -> &'static str {
        match self {
            Self::PushArtifact => "PUSH_ARTIFACT",
            Self::PullArtifact => "PULL_ARTIFACT",
            Self::DeleteArtifact => "DELETE_ARTIFACT",
            Self::CreateTag => "CREATE_TAG",
            Self::DeleteTag => "DELETE_TAG",
            Self::DeleteRepository => "DELETE_REPOSITORY",
            Self::CreateProject => "CREATE_PROJECT",
            Self::UpdateProject => "UPDATE_PROJECT",
            Self::DeleteProject => "DELETE_PROJECT",
            Self::CreateMember => "CREATE_MEMBER",
            Self::UpdateMember => "UPDATE_MEMBER",
            Self::DeleteMember => "DELETE_MEMBER",
            Self::CreateUser => "CREATE_USER",
            Self::UpdateUser => "UPDATE_USER",
            Self::DeleteUser => "DELETE_USER",
            Self::CreateRobot => "CREATE_ROBOT",
            Self::UpdateRobot => "UPDATE_ROBOT",
            Self::DeleteRobot => "DELETE_ROBOT",
            Self::UpdateConfiguration => "UPDATE_CONFIGURATION",
            Self::ScanningCompleted => "SCANNING_COMPLETED",
            Self::ScanningFailed => "SCANNING_FAILED",
            Self::ScanningStopped => "SCANNING_STOPPED",
            Self::QuotaWarning => "QUOTA_WARNING",
            Self::QuotaExceed => "QUOTA_EXCEED",
            Self::Replication => "REPLICATION",
            Self::TagRetention => "TAG_RETENTION",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
    }

    /// How the audit log records it: (resource type, operation), as
    /// Harbor's audit log names them; `None` for what it does not record.
    pub fn audit(self) -> Option<(&'static str, &'static str)> {
        Some(match self {
            Self::PushArtifact => ("artifact", "create"),
            Self::PullArtifact => ("artifact", "pull"),
            Self::DeleteArtifact => ("artifact", "delete"),
            Self::CreateTag => ("tag", "create"),
            Self::DeleteTag => ("tag", "delete"),
            Self::DeleteRepository => ("repository", "delete"),
            Self::CreateProject => ("project", "create"),
            Self::UpdateProject => ("project", "update"),
            Self::DeleteProject => ("project", "delete"),
            Self::CreateMember => ("member", "create"),
            Self::UpdateMember => ("member", "update"),
            Self::DeleteMember => ("member", "delete"),
            Self::CreateUser => ("user", "create"),
            Self::UpdateUser => ("user", "update"),
            Self::DeleteUser => ("user", "delete"),
            Self::CreateRobot => ("robot", "create"),
            Self::UpdateRobot => ("robot", "update"),
            Self::DeleteRobot => ("robot", "delete"),
            Self::UpdateConfiguration => ("configuration", "update"),
            _ => return None,
        })
    }

    /// Harbor 2.13's audit event type name (`create_artifact`).
    pub fn audit_event_type(self) -> Option<String> {
        self.audit().map(|(resource, operation)| format!("{operation}_{resource}"))
    }

    pub fn all() -> impl Iterator<Item = Self> {
        [
            Self::PushArtifact,
            Self::PullArtifact,
            Self::DeleteArtifact,
            Self::CreateTag,
            Self::DeleteTag,
            Self::DeleteRepository,
            Self::CreateProject,
            Self::UpdateProject,
            Self::DeleteProject,
            Self::CreateMember,
            Self::UpdateMember,
            Self::DeleteMember,
            Self::CreateUser,
            Self::UpdateUser,
            Self::DeleteUser,
            Self::CreateRobot,
            Self::UpdateRobot,
            Self::DeleteRobot,
            Self::UpdateConfiguration,
            Self::ScanningCompleted,
            Self::ScanningFailed,
            Self::ScanningStopped,
            Self::QuotaWarning,
            Self::QuotaExceed,
            Self::Replication,
            Self::TagRetention,
        ]
        .into_iter()
    }
}

/// One change. Artifact events name the repository and digest (and the
/// tag, when the change was made through one); others name their resource
/// in `resource`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unique; a consumer that sees an id again has seen the event.
    pub id: String,
    pub kind: EventKind,
    /// When it happened, Unix milliseconds.
    pub at_ms: i64,
    pub actor: Actor,
    /// The project it happened in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// The full repository name (`project/repo`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The changed resource's name, for events not about an artifact (a
    /// project, a member, a user, a robot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// What was done, in words (the audit log's operation description).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// How many times it happened: a pull repeated by one client within a
    /// batch (about a second) is one event counted up.
    #[serde(default = "once", skip_serializing_if = "is_once")]
    pub times: u64,
}

fn once() -> u64 {
    1
}

fn is_once(n: &u64) -> bool {
    *n == 1
}

/// Unix time in milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Event {
    /// A new event of `kind` by `actor`, now, with a fresh id.
    pub fn new(kind: EventKind, actor: &Actor) -> Self {
        Self {
            id: uuid::Uuid::new_v4().simple().to_string(),
            kind,
            at_ms: now_ms(),
            actor: actor.clone(),
            project: None,
            repository: None,
            digest: None,
            tag: None,
            media_type: None,
            size: None,
            resource: None,
            detail: None,
            times: 1,
        }
    }

    /// An event about an artifact of `repository` (`project/repo`).
    pub fn artifact(kind: EventKind, actor: &Actor, repository: &str, digest: &str) -> Self {
        let mut e = Self::new(kind, actor);
        e.project = repository.split_once('/').map(|(p, _)| p.to_owned());
        e.repository = Some(repository.to_owned());
        e.digest = Some(digest.to_owned());
        e
    }

    /// An event about a named resource of `project` (or of the system).
    pub fn about(kind: EventKind, actor: &Actor, project: Option<&str>, resource: &str) -> Self {
        let mut e = Self::new(kind, actor);
        e.project = project.map(str::to_owned);
        e.resource = Some(resource.to_owned());
        e
    }

    pub fn with_tag(mut self, tag: Option<&str>) -> Self {
        self.tag = tag.map(str::to_owned);
        self
    }

    pub fn with_manifest(mut self, media_type: &str, size: u64) -> Self {
        self.media_type = Some(media_type.to_owned());
        self.size = Some(size);
        self
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// The audit log's resource name: `repo:tag` or `repo@digest` for
    /// artifacts and tags, else the resource's name.
    pub fn audit_resource(&self) -> String {
        match (&self.repository, &self.tag, &self.digest) {
            (Some(r), Some(t), _) => format!("{r}:{t}"),
            (Some(r), None, Some(d)) => format!("{r}@{d}"),
            (Some(r), None, None) => r.clone(),
            _ => self.resource.clone().unwrap_or_default(),
        }
    }
}

/// What travels on the events queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventMessage {
    Event(Box<Event>),
    /// Pulls one process saw, as one message.
    Pulls {
        id: String,
        pulls: Vec<Event>,
    },
}

/// A message for a queue, written to the outbox with the change that
/// causes it and sent once that change is committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub id: String,
    pub at_ms: i64,
    pub queue: String,
    pub body: String,
}

impl Outgoing {
    pub fn event(event: &Event) -> PortResult<Self> {
        Self::new(crate::queue::EVENTS, &EventMessage::Event(Box::new(event.clone())), &event.id, event.at_ms)
    }

    pub fn new(queue: &str, body: &impl Serialize, id: &str, at_ms: i64) -> PortResult<Self> {
        let body = serde_json::to_string(body).map_err(|e| PortError::new(ErrorKind::Internal, e))?;
        Ok(Self { id: id.to_owned(), at_ms, queue: queue.to_owned(), body })
    }

    /// Its outbox item, for the transaction that makes the change.
    pub fn outbox_write(&self) -> Write {
        let (pk, sk) = keys::outbox(self.at_ms, &self.id);
        let item =
            Item::new(pk, sk).with(keys::attr::QUEUE, self.queue.as_str()).with(keys::attr::BODY, self.body.as_str());
        Write::Put { item, cond: Condition::Always }
    }

    pub(crate) fn from_outbox(item: &Item) -> Option<Self> {
        let (at, id) = item.sk.split_once('#')?;
        Some(Self {
            id: id.to_owned(),
            at_ms: at.parse().ok()?,
            queue: item.str(keys::attr::QUEUE).unwrap_or(crate::queue::EVENTS).to_owned(),
            body: item.str(keys::attr::BODY)?.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn kinds_round_trip_by_harbor_name() {
        for kind in EventKind::all() {
            assert_eq!(EventKind::parse(kind.name()), Some(kind));
        }
        assert_eq!(EventKind::parse("PUSH_IMAGE"), None);
        assert_eq!(EventKind::PushArtifact.audit_event_type().as_deref(), Some("create_artifact"));
    }

    #[test]
    fn audit_resources() {
        let a = Actor::new("alice", None);
        let e = Event::artifact(EventKind::PushArtifact, &a, "lib/app", "sha256:ab").with_tag(Some("v1"));
        assert_eq!(e.audit_resource(), "lib/app:v1");
        assert_eq!(e.project.as_deref(), Some("lib"));
        let e = Event::artifact(EventKind::DeleteArtifact, &a, "lib/app", "sha256:ab");
        assert_eq!(e.audit_resource(), "lib/app@sha256:ab");
        let body = serde_json::to_string(&EventMessage::Event(Box::new(e.clone()))).unwrap();
        assert_eq!(serde_json::from_str::<EventMessage>(&body).unwrap(), EventMessage::Event(Box::new(e)));
    }
}

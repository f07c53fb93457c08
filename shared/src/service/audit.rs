//! The audit log (Harbor's `/audit-logs` and `/auditlog-exts`): one record
//! per event that Harbor audits ([`EventKind::audit`]), written by the
//! events consumer, never on the request path.
//!
//! Records are spread over [`keys::AUDIT_SHARDS`] partitions by event id
//! (and a project's over [`keys::PROJECT_AUDIT_SHARDS`] more), each in time
//! order, so a busy registry has no hot partition; a listing merges the
//! shards newest first. Writing a record is create-only under the event's
//! id, so an event delivered twice is recorded once. Totals come from
//! counters kept in the same transaction. Records expire by purge
//! ([`Registry::purge_audit`]).

use serde::{Deserialize, Serialize};

use super::paging::{Listing, Match, PageRequest, Source, count_write, walk};
use super::record::{from_item, to_item};
use super::{Registry, ServiceResult};
use crate::events::{Event, EventKind};
use crate::meta::keys::{self, Counted};
use crate::meta::{Condition, ErrorKind, Item, Query, Write};

/// One audit record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Harbor's integer id: the time in milliseconds and three digits of
    /// the event id (unique enough, and ordered by time).
    pub id: i64,
    pub event_id: String,
    pub username: String,
    pub resource: String,
    pub resource_type: String,
    pub operation: String,
    /// Unix milliseconds.
    pub op_time: i64,
    #[serde(default)]
    pub description: String,
    pub result: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

impl AuditRecord {
    /// The record of `event`, when Harbor audits its kind.
    pub fn of(event: &Event) -> Option<Self> {
        let (resource_type, operation) = event.kind.audit()?;
        let suffix: i64 = event.id.bytes().fold(0i64, |h, b| (h * 31 + i64::from(b)) % 1000);
        let description = event.detail.clone().unwrap_or_else(|| default_description(event, operation));
        Some(Self {
            id: event.at_ms.saturating_mul(1000).saturating_add(suffix),
            event_id: event.id.clone(),
            username: event.actor.name.clone(),
            resource: event.audit_resource(),
            resource_type: resource_type.to_owned(),
            operation: operation.to_owned(),
            op_time: event.at_ms,
            description,
            result: true,
            project: event.project.clone(),
            address: event.actor.address.clone(),
        })
    }

    /// Harbor 2.13's event type (`create_artifact`).
    pub fn event_type(&self) -> String {
        format!("{}_{}", self.operation, self.resource_type)
    }

    /// The line forwarded to syslog, in Harbor's words.
    pub fn syslog_line(&self) -> String {
        format!(
            "operator=\"{}\" time=\"{}\" resourceType=\"{}\" resource:{} action:{} result:{}",
            self.username,
            humantime::format_rfc3339_millis(
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(self.op_time).unwrap_or(0))
            ),
            self.resource_type,
            self.resource,
            self.operation,
            self.result,
        )
    }
}

fn default_description(event: &Event, operation: &str) -> String {
    let what = match event.kind.audit() {
        Some((resource_type, _)) => resource_type,
        None => "resource",
    };
    let times = if event.times > 1 { format!(" ({} times)", event.times) } else { String::new() };
    format!("{operation} {what}: {}{times}", event.audit_resource())
}

/// The audit event types Harbor 2.13 lists (`/auditlog-exts/events`).
pub fn audit_event_types() -> Vec<String> {
    EventKind::all().filter_map(EventKind::audit_event_type).collect()
}

/// What a listing keeps: Harbor's `q` on `username`, `resource`,
/// `resource_type`, `operation` and `op_time` (a range of times, compared
/// as text after conversion by the caller to milliseconds).
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub username: Option<Match>,
    pub resource: Option<Match>,
    pub resource_type: Option<Match>,
    pub operation: Option<Match>,
    /// Inclusive range of Unix milliseconds.
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
}

impl AuditFilter {
    pub fn is_empty(&self) -> bool {
        self.username.is_none()
            && self.resource.is_none()
            && self.resource_type.is_none()
            && self.operation.is_none()
            && self.from_ms.is_none()
            && self.to_ms.is_none()
    }

    fn keeps(&self, r: &AuditRecord) -> bool {
        let test = |m: &Option<Match>, v: &str| m.as_ref().is_none_or(|m| m.matches(v));
        test(&self.username, &r.username)
            && test(&self.resource, &r.resource)
            && test(&self.resource_type, &r.resource_type)
            && test(&self.operation, &r.operation)
            && self.from_ms.is_none_or(|t| r.op_time >= t)
            && self.to_ms.is_none_or(|t| r.op_time <= t)
    }
}

impl Registry {
    /// Records `event` in the audit log (once, however often it comes).
    /// Returns the record, or `None` for an event Harbor does not audit.
    pub async fn record_audit(&self, event: &Event) -> ServiceResult<Option<AuditRecord>> {
        let Some(record) = AuditRecord::of(event) else { return Ok(None) };
        let (pk, sk) = keys::audit(event.at_ms, &event.id);
        let mut writes = vec![
            Write::Put { item: to_item(pk, sk, &record, "audit record")?, cond: Condition::NotExists },
            count_write(Counted::Audit, &event.id, 1),
        ];
        if let Some(project) = &event.project {
            let (ppk, psk) = keys::project_audit(project, event.at_ms, &event.id);
            writes.push(Write::Put { item: to_item(ppk, psk, &record, "audit record")?, cond: Condition::NotExists });
            writes.push(count_write(Counted::ProjectAudit(project), &event.id, 1));
        }
        match self.meta.transact(writes).await {
            Ok(()) => Ok(Some(record)),
            // Recorded already: a repeated event.
            Err(e) if e.is(ErrorKind::ConditionFailed) => Ok(Some(record)),
            Err(e) => Err(e.into()),
        }
    }

    /// A page of the audit log (of one project, when given), newest first
    /// unless `req.descending` is false.
    pub async fn list_audit(
        &self,
        project: Option<&str>,
        filter: &AuditFilter,
        req: &PageRequest,
    ) -> ServiceResult<Listing<AuditRecord>> {
        let sources: Vec<Source> = match project {
            None => {
                (0..keys::AUDIT_SHARDS).map(|s| Source::query(Query::table(keys::audit_partition(s), ""))).collect()
            }
            Some(p) => (0..keys::PROJECT_AUDIT_SHARDS)
                .map(|s| Source::query(Query::table(keys::project_audit_partition(p, s), "")))
                .collect(),
        };
        let filtered = !filter.is_empty();
        let keep = |item: &Item| {
            !filtered || from_item::<AuditRecord>(item.clone(), "audit record").is_ok_and(|r| filter.keeps(&r))
        };
        let (items, next, counted) = walk(self.meta.as_ref(), sources, req, filtered, keep).await?;
        let total = match counted {
            Some(n) => n,
            None => self.count(project.map_or(Counted::Audit, Counted::ProjectAudit)).await?,
        };
        let items = items.into_iter().map(|i| from_item(i, "audit record")).collect::<ServiceResult<Vec<_>>>()?;
        Ok(Listing { items, total, next })
    }

    /// Deletes the audit records older than `before_ms` whose event type
    /// is one of `event_types` (every type when empty); with `dry_run`,
    /// only counts them. At most `limit` records a call, so a purge runs
    /// as steps; returns how many it found and whether more may remain.
    pub async fn purge_audit(
        &self,
        before_ms: i64,
        event_types: &[String],
        dry_run: bool,
        limit: usize,
    ) -> ServiceResult<(u64, bool)> {
        let mut found = 0u64;
        for shard in 0..keys::AUDIT_SHARDS {
            let mut cursor = None;
            loop {
                let page =
                    self.meta.query(Query::table(keys::audit_partition(shard), "").limit(100).after(cursor)).await?;
                let mut reached_newer = false;
                for item in page.items {
                    let record: AuditRecord = from_item(item.clone(), "audit record")?;
                    if record.op_time >= before_ms {
                        reached_newer = true;
                        break;
                    }
                    if !event_types.is_empty() && !event_types.contains(&record.event_type()) {
                        continue;
                    }
                    found += 1;
                    if !dry_run {
                        self.delete_audit(&record).await?;
                    }
                    if found as usize >= limit {
                        return Ok((found, true));
                    }
                }
                match page.next {
                    Some(c) if !reached_newer => cursor = Some(c),
                    _ => break,
                }
            }
        }
        Ok((found, false))
    }

    async fn delete_audit(&self, record: &AuditRecord) -> ServiceResult<()> {
        let (pk, sk) = keys::audit(record.op_time, &record.event_id);
        let mut writes =
            vec![Write::Delete { pk, sk, cond: Condition::Exists }, count_write(Counted::Audit, &record.event_id, -1)];
        if let Some(project) = &record.project {
            let (ppk, psk) = keys::project_audit(project, record.op_time, &record.event_id);
            writes.push(Write::Delete { pk: ppk, sk: psk, cond: Condition::Exists });
            writes.push(count_write(Counted::ProjectAudit(project), &record.event_id, -1));
        }
        match self.meta.transact(writes).await {
            Err(e) if !e.is(ErrorKind::ConditionFailed) => Err(e.into()),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::events::Actor;

    #[tokio::test]
    async fn records_once_page_newest_first_and_purge() {
        let (_dir, reg) = crate::testkit::local_registry().await;
        let alice = Actor::new("alice", Some("10.0.0.1".into()));
        let mut events = Vec::new();
        for i in 0..12 {
            let mut e = Event::artifact(EventKind::PushArtifact, &alice, "lib/app", "sha256:ab")
                .with_tag(Some(&format!("v{i}")));
            e.at_ms = 1_000_000 + i;
            events.push(e);
        }
        let mut other = Event::about(EventKind::CreateProject, &alice, Some("other"), "other");
        other.at_ms = 2_000_000;
        events.push(other);
        for e in &events {
            reg.record_audit(e).await.unwrap();
        }
        // A repeat changes nothing.
        reg.record_audit(&events[0]).await.unwrap();
        // Not audited.
        let scan = Event::artifact(EventKind::ScanningCompleted, &alice, "lib/app", "sha256:ab");
        assert_eq!(reg.record_audit(&scan).await.unwrap(), None);

        let req = PageRequest { descending: true, ..PageRequest::first(5) };
        let page = reg.list_audit(None, &AuditFilter::default(), &req).await.unwrap();
        assert_eq!(page.total, 13);
        assert_eq!(page.items[0].resource, "other");
        assert_eq!(page.items[1].resource, "lib/app:v11");
        assert_eq!(page.items[1].address.as_deref(), Some("10.0.0.1"));
        let next = PageRequest { after: page.next.clone(), ..req.clone() };
        let page2 = reg.list_audit(None, &AuditFilter::default(), &next).await.unwrap();
        assert_eq!(page2.items[0].resource, "lib/app:v7");

        let lib = reg.list_audit(Some("lib"), &AuditFilter::default(), &req).await.unwrap();
        assert_eq!((lib.total, lib.items[0].resource.as_str()), (12, "lib/app:v11"));
        let filter = AuditFilter { resource_type: Some(Match::Exact("project".into())), ..Default::default() };
        let projects = reg.list_audit(None, &filter, &req).await.unwrap();
        assert_eq!((projects.total, projects.items.len()), (1, 1));

        let (n, more) = reg.purge_audit(1_000_006, &[], true, 100).await.unwrap();
        assert_eq!((n, more), (6, false));
        assert_eq!(reg.list_audit(None, &AuditFilter::default(), &req).await.unwrap().total, 13);
        let (n, more) = reg.purge_audit(1_000_006, &[], false, 4).await.unwrap();
        assert_eq!((n, more), (4, true));
        let (n, _) = reg.purge_audit(1_000_006, &[], false, 100).await.unwrap();
        assert_eq!(n, 2);
        assert_eq!(reg.list_audit(None, &AuditFilter::default(), &req).await.unwrap().total, 7);
        assert_eq!(reg.list_audit(Some("lib"), &AuditFilter::default(), &req).await.unwrap().total, 6);
        let types = [String::from("create_project")];
        assert_eq!(reg.purge_audit(3_000_000, &types, false, 100).await.unwrap().0, 1);
    }
}

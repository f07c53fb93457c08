//! Webhook policies (F15, Harbor's `/projects/{p}/webhook/policies`): what
//! a project's events are sent to, and the dispatch of an event to them.
//!
//! Policies live in their project's partition (`P#<project>` /
//! `WH#<id>`), counted for paging. Dispatch ([`Registry::dispatch_webhooks`])
//! runs in the events consumer: for each enabled policy that names the
//! event's type it starts one execution (vendor type `WEBHOOK`, vendor id
//! the policy's) with one delivery task per target, at most once per event
//! and policy. The deliveries themselves are the webhook job
//! ([`crate::jobs::webhook`]).

use serde::{Deserialize, Serialize};

use super::executions::new_id;
use super::paging::{Listing, PageRequest, count_write};
use super::record::{from_item, to_item};
use super::{Registry, ServiceError, ServiceResult};
use crate::events::{Event, EventKind, WEBHOOK_EVENT_TYPES, now_ms};
use crate::meta::keys::{self, Counted};
use crate::meta::{Condition, ErrorKind, Query, Write};
use crate::service::projects::ProjectRef;

/// The vendor type of webhook executions.
pub const WEBHOOK: &str = "WEBHOOK";
/// Harbor's limit on a policy's name.
const MAX_NAME: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Target {
    /// `http` or `slack`.
    #[serde(rename = "type")]
    pub kind: String,
    pub address: String,
    #[serde(default)]
    pub auth_header: String,
    #[serde(default)]
    pub skip_cert_verify: bool,
    /// `Default` or `CloudEvents` (http only).
    #[serde(default)]
    pub payload_format: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookPolicy {
    pub id: i64,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub project_id: i64,
    pub project: String,
    pub targets: Vec<Target>,
    pub event_types: Vec<String>,
    pub creator: String,
    pub creation_time: i64,
    pub update_time: i64,
    pub enabled: bool,
}

/// What a caller sets of a policy.
#[derive(Debug, Clone, Default)]
pub struct PolicyInput {
    pub name: String,
    pub description: String,
    pub targets: Vec<Target>,
    pub event_types: Vec<String>,
    pub enabled: bool,
}

/// What a delivery task carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub policy_id: i64,
    pub project_id: i64,
    pub target: Target,
    pub event: Event,
}

fn check(input: &mut PolicyInput) -> ServiceResult<()> {
    let bad = |m: String| Err(ServiceError::Invalid(m));
    input.name = input.name.trim().to_owned();
    if input.name.is_empty() || input.name.chars().count() > MAX_NAME {
        return bad(format!("a policy name has 1 to {MAX_NAME} characters"));
    }
    if input.targets.is_empty() {
        return bad("a policy needs a target".to_owned());
    }
    for t in &mut input.targets {
        t.kind = t.kind.to_ascii_lowercase();
        if t.kind != "http" && t.kind != "slack" {
            return bad(format!("target type {:?} is not http or slack", t.kind));
        }
        match url::Url::parse(&t.address) {
            Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.host().is_some() => {}
            _ => return bad(format!("target address {:?} is not an http(s) URL", t.address)),
        }
        t.payload_format = match t.payload_format.as_str() {
            "" | "Default" => "Default".to_owned(),
            "CloudEvents" if t.kind == "http" => "CloudEvents".to_owned(),
            other => return bad(format!("payload format {other:?} is not Default or CloudEvents (http only)")),
        };
    }
    if input.event_types.is_empty() {
        return bad("a policy needs an event type".to_owned());
    }
    for e in &input.event_types {
        if !EventKind::parse(e).is_some_and(|k| WEBHOOK_EVENT_TYPES.contains(&k)) {
            return bad(format!("unsupported event type {e:?}"));
        }
    }
    input.event_types.sort();
    input.event_types.dedup();
    Ok(())
}

impl Registry {
    pub async fn create_webhook_policy(
        &self,
        project: &ProjectRef,
        mut input: PolicyInput,
    ) -> ServiceResult<WebhookPolicy> {
        check(&mut input)?;
        let project = self.project(project).await?;
        if self.webhook_policies_all(&project.name).await?.iter().any(|p| p.name == input.name) {
            return Err(ServiceError::Conflict(format!("a webhook policy named {} exists already", input.name)));
        }
        let now = now_ms() / 1000;
        let policy = WebhookPolicy {
            id: new_id(),
            name: input.name,
            description: input.description,
            project_id: project.project_id,
            project: project.name.clone(),
            targets: input.targets,
            event_types: input.event_types,
            creator: self.actor().name.clone(),
            creation_time: now,
            update_time: now,
            enabled: input.enabled,
        };
        let (pk, sk) = keys::webhook_policy(&project.name, policy.id);
        let writes = vec![
            Write::Put { item: to_item(pk, sk, &policy, "webhook policy")?, cond: Condition::NotExists },
            count_write(Counted::WebhookPolicies(&project.name), &policy.id.to_string(), 1),
        ];
        self.meta.transact(writes).await?;
        Ok(policy)
    }

    pub async fn webhook_policy(&self, project: &ProjectRef, id: i64) -> ServiceResult<WebhookPolicy> {
        let project = self.project(project).await?;
        let (pk, sk) = keys::webhook_policy(&project.name, id);
        let item = self.meta.get(&pk, &sk).await?;
        item.map(|i| from_item(i, "webhook policy"))
            .transpose()?
            .ok_or_else(|| ServiceError::NotFound(format!("webhook policy {id} not found")))
    }

    pub async fn update_webhook_policy(
        &self,
        project: &ProjectRef,
        id: i64,
        mut input: PolicyInput,
    ) -> ServiceResult<WebhookPolicy> {
        check(&mut input)?;
        let old = self.webhook_policy(project, id).await?;
        if input.name != old.name && self.webhook_policies_all(&old.project).await?.iter().any(|p| p.name == input.name)
        {
            return Err(ServiceError::Conflict(format!("a webhook policy named {} exists already", input.name)));
        }
        let policy = WebhookPolicy {
            name: input.name,
            description: input.description,
            targets: input.targets,
            event_types: input.event_types,
            enabled: input.enabled,
            update_time: now_ms() / 1000,
            ..old
        };
        let (pk, sk) = keys::webhook_policy(&policy.project, id);
        let item = to_item(pk, sk, &policy, "webhook policy")?;
        match self.meta.put(item, Condition::Exists).await {
            Err(e) if e.is(ErrorKind::ConditionFailed) => {
                Err(ServiceError::NotFound(format!("webhook policy {id} not found")))
            }
            other => other.map(|()| policy).map_err(Into::into),
        }
    }

    pub async fn delete_webhook_policy(&self, project: &ProjectRef, id: i64) -> ServiceResult<()> {
        let policy = self.webhook_policy(project, id).await?;
        let (pk, sk) = keys::webhook_policy(&policy.project, id);
        let writes = vec![
            Write::Delete { pk, sk, cond: Condition::Exists },
            count_write(Counted::WebhookPolicies(&policy.project), &id.to_string(), -1),
        ];
        match self.meta.transact(writes).await {
            Err(e) if e.is(ErrorKind::ConditionFailed) => {
                Err(ServiceError::NotFound(format!("webhook policy {id} not found")))
            }
            other => other.map_err(Into::into),
        }
    }

    /// Removes every policy of a deleted project.
    pub(super) async fn delete_webhook_policies_of(&self, project: &str) -> ServiceResult<()> {
        for policy in self.webhook_policies_all(project).await? {
            let (pk, sk) = keys::webhook_policy(project, policy.id);
            let writes = vec![
                Write::Delete { pk, sk, cond: Condition::Exists },
                count_write(Counted::WebhookPolicies(project), &policy.id.to_string(), -1),
            ];
            match self.meta.transact(writes).await {
                Err(e) if !e.is(ErrorKind::ConditionFailed) => return Err(e.into()),
                _ => {}
            }
        }
        Ok(())
    }

    /// A page of a project's policies, by id (creation order).
    pub async fn list_webhook_policies(
        &self,
        project: &ProjectRef,
        name: Option<&super::paging::Match>,
        req: &PageRequest,
    ) -> ServiceResult<Listing<WebhookPolicy>> {
        let project = self.project(project).await?;
        let query = Query::table(keys::project(&project.name).0, keys::WEBHOOK_POLICY_PREFIX);
        let keep = |i: &crate::meta::Item| name.is_none_or(|m| i.str("name").is_some_and(|n| m.matches(n)));
        let (items, next, total) =
            self.page_of(query, Counted::WebhookPolicies(&project.name), req, name.is_some(), keep).await?;
        let items = items.into_iter().map(|i| from_item(i, "webhook policy")).collect::<ServiceResult<Vec<_>>>()?;
        Ok(Listing { items, total, next })
    }

    /// Every policy of a project (a project has a handful: Harbor's UI
    /// shows them on one page).
    async fn webhook_policies_all(&self, project: &str) -> ServiceResult<Vec<WebhookPolicy>> {
        let query = Query::table(keys::project(project).0, keys::WEBHOOK_POLICY_PREFIX).limit(1000);
        let page = self.meta.query(query).await?;
        page.items.into_iter().map(|i| from_item(i, "webhook policy")).collect()
    }

    /// Starts the deliveries of `event` to every enabled policy of its
    /// project that names its type (once per event and policy, however
    /// often the event comes). Nothing when notifications are turned off
    /// (`notification_enable`).
    pub async fn dispatch_webhooks(&self, event: &Event) -> ServiceResult<()> {
        let Some(project) = &event.project else { return Ok(()) };
        if !WEBHOOK_EVENT_TYPES.contains(&event.kind) || !self.settings().await?.notification_enable {
            return Ok(());
        }
        let policies = match self.webhook_policies_all(project).await {
            Ok(p) => p,
            Err(ServiceError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let job = crate::jobs::webhook::WebhookJob;
        for p in policies.iter().filter(|p| p.enabled && p.event_types.iter().any(|t| t == event.kind.name())) {
            let payloads = p
                .targets
                .iter()
                .map(|t| {
                    let d =
                        Delivery { policy_id: p.id, project_id: p.project_id, target: t.clone(), event: event.clone() };
                    serde_json::to_value(d).map_err(|e| ServiceError::Invalid(e.to_string()))
                })
                .collect::<ServiceResult<Vec<_>>>()?;
            let mut attrs = serde_json::Map::new();
            attrs.insert("event_type".to_owned(), event.kind.name().into());
            attrs.insert("event_id".to_owned(), event.id.clone().into());
            let once = keys::event_handled(&event.id, &format!("webhook-{}", p.id));
            self.start_execution_once(&job, p.id, "EVENT", attrs, payloads, once).await?;
        }
        Ok(())
    }

    /// When each event type last started deliveries of a policy: Harbor's
    /// `/webhook/lasttrigger`, from the newest execution per event type
    /// among the policy's recent ones.
    pub async fn webhook_last_triggers(&self, policy: &WebhookPolicy) -> ServiceResult<Vec<(String, i64)>> {
        let recent = self.list_executions(WEBHOOK, policy.id, &PageRequest::first(100)).await?;
        let mut out: Vec<(String, i64)> = Vec::new();
        for x in recent.items {
            if let Some(t) = x.record.extra_attrs.get("event_type").and_then(|v| v.as_str())
                && !out.iter().any(|(k, _)| k == t)
            {
                out.push((t.to_owned(), x.record.start_time));
            }
        }
        Ok(out)
    }
}

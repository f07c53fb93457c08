//! Replication (F13, Harbor's `/replication/policies` and
//! `/replication/executions`): policies that copy artifacts between berth
//! and another registry, and the start of their runs.
//!
//! - A policy is the system's (`REPL#<id>`, listed in `REPLICATIONS` by id,
//!   its name reserved by `REPLN#<name>`). Exactly one side is a registry
//!   endpoint ([`crate::service::registries`]): `dest_registry` makes it a
//!   push policy (berth → there), `src_registry` a pull policy (there →
//!   berth). The endpoint's use is counted in the policy's own
//!   transaction, so an endpoint a policy uses can't be deleted.
//! - What a run copies is chosen by the policy's [`Filter`]s (name, tag,
//!   label, resource type; doublestar patterns, matching or excluding) and
//!   named at the destination by [`destination_repository`] (namespace and
//!   flattening).
//! - A run is an execution (vendor type [`REPLICATION`], vendor id the
//!   policy's) of the replication job ([`crate::jobs::replication`]): a
//!   planning task walks the source a page at a time ([`plan`]) and leaves
//!   one copy task per repository with the references to copy; copies are
//!   [`copy`]'s. Triggers: manual, scheduled (a schedule of
//!   [`crate::service::schedules`]) and event-based (each push, and with
//!   `replicate_deletion` each deletion, of a matching artifact starts a run
//!   of that one artifact: [`Registry::replicate_on_event`]).

pub mod copy;
pub mod plan;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::paging::{Listing, Match, PageRequest, count_write};
use super::record::{from_item, to_item};
use super::registries::registry_endpoint_use;
use super::{Registry, ServiceError, ServiceResult};
use crate::events::now_ms;
use crate::jobs::Status;
use crate::meta::keys::{self, Counted};
use crate::meta::{Condition, ErrorKind, Item, Query, Write};

/// The job type and vendor type of replication executions.
pub const REPLICATION: &str = "REPLICATION";
/// Harbor's limit on names.
const MAX_NAME: usize = 255;
/// Harbor's (and ECR's) limit on filters per policy.
const MAX_FILTERS: usize = 100;
/// The project one-level names go into when nothing else is said
/// (Docker Hub's official images are `library/…`).
pub const DEFAULT_PROJECT: &str = "library";

/// When a policy runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    Manual,
    EventBased,
    Scheduled,
}

impl TriggerKind {
    pub fn parse(s: &str) -> ServiceResult<Self> {
        match s {
            "" | "manual" => Ok(Self::Manual),
            "event_based" => Ok(Self::EventBased),
            "scheduled" => Ok(Self::Scheduled),
            other => {
                Err(ServiceError::Invalid(format!("trigger type {other:?} is not manual, event_based or scheduled")))
            }
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Manual => "manual",
            Self::EventBased => "event_based",
            Self::Scheduled => "scheduled",
        }
    }
}

/// One filter of a policy. `exclude` is Harbor's `decoration: excludes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Filter {
    /// The repository's name at the source (with its project, for berth's
    /// own): a doublestar pattern.
    Name { pattern: String, exclude: bool },
    /// A tag: a doublestar pattern.
    Tag { pattern: String, exclude: bool },
    /// Labels the artifact carries (all of them), or for `exclude` carries
    /// none of.
    Label { labels: Vec<String>, exclude: bool },
    /// `image` (images and indexes of images), `artifact` (anything) or
    /// `chart` (Helm charts).
    Resource { kind: String },
}

impl Filter {
    /// Reads Harbor's `{"type","value","decoration"}`.
    pub fn from_harbor(kind: &str, value: &Value, decoration: &str) -> ServiceResult<Self> {
        let exclude = match decoration {
            "" | "matches" => false,
            "excludes" => true,
            other => {
                return Err(ServiceError::Invalid(format!("filter decoration {other:?} is not matches or excludes")));
            }
        };
        let text = |what: &str| -> ServiceResult<String> {
            match value {
                Value::String(s) => Ok(s.trim().to_owned()),
                Value::Null => Ok(String::new()),
                _ => Err(ServiceError::Invalid(format!("the {what} filter's value is not a string"))),
            }
        };
        let filter = match kind {
            "name" => Self::Name { pattern: text("name")?, exclude },
            "tag" => Self::Tag { pattern: text("tag")?, exclude },
            "label" => {
                let labels = match value {
                    Value::Array(a) => a
                        .iter()
                        .map(|v| v.as_str().map(str::to_owned))
                        .collect::<Option<Vec<_>>>()
                        .ok_or_else(|| ServiceError::Invalid("label filter values are names".to_owned()))?,
                    Value::String(s) if !s.is_empty() => vec![s.clone()],
                    Value::String(_) | Value::Null => Vec::new(),
                    _ => return Err(ServiceError::Invalid("the label filter's value is a list of names".to_owned())),
                };
                Self::Label { labels, exclude }
            }
            "resource" => {
                let kind = text("resource")?;
                if !matches!(kind.as_str(), "" | "image" | "artifact" | "chart") {
                    return Err(ServiceError::Invalid(format!(
                        "resource type {kind:?} is not image, artifact or chart"
                    )));
                }
                if exclude {
                    return Err(ServiceError::Invalid("a resource filter can't exclude".to_owned()));
                }
                Self::Resource { kind }
            }
            other => {
                return Err(ServiceError::Invalid(format!(
                    "filter type {other:?} is not name, tag, label or resource"
                )));
            }
        };
        if let Self::Name { pattern, .. } | Self::Tag { pattern, .. } = &filter {
            super::selectors::check_pattern(pattern)
                .map_err(|e| ServiceError::Invalid(format!("{kind} filter {pattern:?}: {e}")))?;
        }
        Ok(filter)
    }

    /// Harbor's `(type, value, decoration)`.
    pub fn to_harbor(&self) -> (&'static str, Value, &'static str) {
        let decoration = |exclude: bool| if exclude { "excludes" } else { "matches" };
        match self {
            Self::Name { pattern, exclude } => ("name", pattern.clone().into(), decoration(*exclude)),
            Self::Tag { pattern, exclude } => ("tag", pattern.clone().into(), decoration(*exclude)),
            Self::Label { labels, exclude } => ("label", labels.clone().into(), decoration(*exclude)),
            Self::Resource { kind } => ("resource", kind.clone().into(), ""),
        }
    }
}

/// Whether a repository (its name at the source) passes the name filters.
pub fn repository_selected(filters: &[Filter], name: &str) -> bool {
    filters.iter().all(|f| match f {
        Filter::Name { pattern, exclude } => super::selectors::matches(pattern, name) != *exclude,
        _ => true,
    })
}

/// Whether a tag passes the tag filters.
pub fn tag_selected(filters: &[Filter], tag: &str) -> bool {
    filters.iter().all(|f| match f {
        Filter::Tag { pattern, exclude } => super::selectors::matches(pattern, tag) != *exclude,
        _ => true,
    })
}

/// Whether the policy has tag filters (an untagged artifact then never
/// passes).
pub fn has_tag_filter(filters: &[Filter]) -> bool {
    filters.iter().any(|f| matches!(f, Filter::Tag { pattern, .. } if !pattern.is_empty()))
}

/// Whether an artifact with these labels passes the label filters.
pub fn labels_selected(filters: &[Filter], labels: &[String]) -> bool {
    filters.iter().all(|f| match f {
        Filter::Label { labels: want, exclude: false } => want.iter().all(|w| labels.contains(w)),
        Filter::Label { labels: want, exclude: true } => !want.iter().any(|w| labels.contains(w)),
        _ => true,
    })
}

/// Whether an artifact of Harbor's type `kind` (`IMAGE`, `CHART`, …)
/// passes the resource filters.
pub fn resource_selected(filters: &[Filter], kind: &str) -> bool {
    filters.iter().all(|f| match f {
        Filter::Resource { kind: want } => match want.as_str() {
            "image" => kind == "IMAGE",
            "chart" => kind == "CHART",
            _ => true,
        },
        _ => true,
    })
}

/// The name a source repository gets at the destination: `namespace`
/// replaces the first `replace_count` components of `repo` (Harbor's
/// flattening; `-1` is Harbor's legacy mode, every component but the last):
/// for `a/b/c/image` and namespace `n`, `-1` → `n/image`, `0` →
/// `n/a/b/c/image`, `1` → `n/b/c/image`, `3` → `n/image`, `4` → an error.
/// Without a namespace, `-1` and `0` keep the name and a count removes that
/// many components.
pub fn destination_repository(repo: &str, namespace: &str, replace_count: i32) -> ServiceResult<String> {
    let namespace = namespace.trim_matches('/');
    let parts: Vec<&str> = repo.split('/').collect();
    let kept: Vec<&str> = match replace_count {
        ..=-2 => return Err(ServiceError::Invalid(format!("flattening {replace_count} is not -1 or more"))),
        -1 if namespace.is_empty() => parts.clone(),
        -1 => parts[parts.len() - 1..].to_vec(),
        n => {
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            if n >= parts.len() && n > 0 {
                return Err(ServiceError::Invalid(format!(
                    "{repo} has {} components: flattening {n} of them leaves no name",
                    parts.len()
                )));
            }
            parts[n..].to_vec()
        }
    };
    let name = kept.join("/");
    Ok(if namespace.is_empty() { name } else { format!("{namespace}/{name}") })
}

/// A replication policy as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicationPolicy {
    pub id: i64,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The endpoint copied from (a pull policy), or `None` for berth.
    #[serde(default)]
    pub src_registry: Option<i64>,
    /// The endpoint copied to (a push policy), or `None` for berth.
    #[serde(default)]
    pub dest_registry: Option<i64>,
    #[serde(default)]
    pub dest_namespace: String,
    /// Harbor's `dest_namespace_replace_count` (-1: legacy).
    #[serde(default = "legacy_flattening")]
    pub dest_namespace_replace_count: i32,
    pub trigger: TriggerKind,
    #[serde(default)]
    pub cron: String,
    #[serde(default)]
    pub filters: Vec<Filter>,
    #[serde(default)]
    pub replicate_deletion: bool,
    #[serde(rename = "override", default)]
    pub override_: bool,
    #[serde(default)]
    pub enabled: bool,
    /// KB/s per task; -1 or 0: no limit.
    #[serde(default)]
    pub speed: i32,
    #[serde(default)]
    pub copy_by_chunk: bool,
    #[serde(default)]
    pub single_active_replication: bool,
    /// Unix milliseconds.
    pub creation_time: i64,
    pub update_time: i64,
}

fn legacy_flattening() -> i32 {
    -1
}

/// Which way a policy copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From berth to endpoint `0`.
    Push(i64),
    /// From endpoint `0` to berth.
    Pull(i64),
}

impl ReplicationPolicy {
    pub fn direction(&self) -> ServiceResult<Direction> {
        match (self.src_registry, self.dest_registry) {
            (None, Some(d)) => Ok(Direction::Push(d)),
            (Some(s), None) => Ok(Direction::Pull(s)),
            _ => Err(ServiceError::Invalid("a policy copies between berth and exactly one registry".to_owned())),
        }
    }

    /// The endpoint the policy uses.
    pub fn endpoint(&self) -> ServiceResult<i64> {
        Ok(match self.direction()? {
            Direction::Push(id) | Direction::Pull(id) => id,
        })
    }

    /// The bandwidth limit in bytes per second, if any.
    pub fn bytes_per_second(&self) -> Option<u64> {
        u64::try_from(self.speed).ok().filter(|s| *s > 0).map(|kb| kb * 1024)
    }
}

/// What a create or an update gives.
#[derive(Debug, Clone, Default)]
pub struct PolicyInput {
    pub name: String,
    pub description: String,
    pub src_registry: Option<i64>,
    pub dest_registry: Option<i64>,
    pub dest_namespace: String,
    pub dest_namespace_replace_count: Option<i32>,
    pub trigger: String,
    pub cron: String,
    pub filters: Vec<Filter>,
    pub replicate_deletion: bool,
    pub override_: bool,
    pub enabled: bool,
    pub speed: Option<i32>,
    pub copy_by_chunk: bool,
    pub single_active_replication: bool,
}

impl PolicyInput {
    /// `base` with what this input sets (its id and times kept).
    fn applied(self, trigger: TriggerKind, base: ReplicationPolicy) -> ReplicationPolicy {
        ReplicationPolicy {
            name: self.name,
            description: self.description,
            src_registry: self.src_registry,
            dest_registry: self.dest_registry,
            dest_namespace: self.dest_namespace,
            dest_namespace_replace_count: self.dest_namespace_replace_count.unwrap_or(-1),
            trigger,
            cron: self.cron,
            filters: self.filters,
            replicate_deletion: self.replicate_deletion,
            override_: self.override_,
            enabled: self.enabled,
            speed: self.speed.unwrap_or(-1),
            copy_by_chunk: self.copy_by_chunk,
            single_active_replication: self.single_active_replication,
            ..base
        }
    }
}

fn check_input(input: &mut PolicyInput) -> ServiceResult<TriggerKind> {
    input.name = input.name.trim().to_owned();
    if input.name.is_empty() || input.name.chars().count() > MAX_NAME {
        return Err(ServiceError::Invalid(format!("a policy name has 1 to {MAX_NAME} characters")));
    }
    // Harbor's local registry is id 0.
    input.src_registry = input.src_registry.filter(|id| *id != 0);
    input.dest_registry = input.dest_registry.filter(|id| *id != 0);
    match (input.src_registry, input.dest_registry) {
        (None, None) => {
            return Err(ServiceError::Invalid(
                "either src_registry or dest_registry must be another registry".to_owned(),
            ));
        }
        (Some(_), Some(_)) => {
            return Err(ServiceError::Invalid(
                "src_registry and dest_registry can't both be other registries: one side is this one".to_owned(),
            ));
        }
        _ => {}
    }
    if input.filters.len() > MAX_FILTERS {
        return Err(ServiceError::Invalid(format!("a policy has at most {MAX_FILTERS} filters")));
    }
    input.dest_namespace = input.dest_namespace.trim().trim_matches('/').to_owned();
    if !input.dest_namespace.is_empty() {
        let probe = format!("{}/x", input.dest_namespace);
        crate::oci::RepoName::parse(&probe)
            .map_err(|e| ServiceError::Invalid(format!("dest_namespace {:?}: {e}", input.dest_namespace)))?;
    }
    let count = input.dest_namespace_replace_count.unwrap_or(-1);
    if count < -1 {
        return Err(ServiceError::Invalid(format!("dest_namespace_replace_count {count} is not -1 or more")));
    }
    let trigger = TriggerKind::parse(&input.trigger)?;
    input.cron = input.cron.trim().to_owned();
    if trigger == TriggerKind::Scheduled {
        crate::jobs::schedule::parse(&input.cron)?;
    } else {
        input.cron.clear();
    }
    if input.speed.is_some_and(|s| s < -1) {
        return Err(ServiceError::Invalid("speed is -1 (no limit) or a number of KB/s".to_owned()));
    }
    Ok(trigger)
}

fn not_found(id: i64) -> ServiceError {
    ServiceError::NotFound(format!("replication policy {id} not found"))
}

fn name_taken(name: &str) -> ServiceError {
    ServiceError::Conflict(format!("a replication policy named {name} exists already"))
}

fn items(p: &ReplicationPolicy) -> ServiceResult<(Item, Item)> {
    let (pk, sk) = keys::replication_policy(p.id);
    let (epk, esk) = keys::replication_policy_entry(p.id);
    Ok((to_item(pk, sk, p, "replication policy")?, to_item(epk, esk, p, "replication policy")?))
}

/// The task a run starts with.
fn first_plan(policy: &ReplicationPolicy) -> ServiceResult<Value> {
    plan::ReplicationTask::Plan { policy_id: policy.id, cursor: None }.to_value()
}

impl Registry {
    pub async fn create_replication_policy(&self, mut input: PolicyInput) -> ServiceResult<ReplicationPolicy> {
        let trigger = check_input(&mut input)?;
        if self.replication_policy_named(&input.name).await?.is_some() {
            return Err(name_taken(&input.name));
        }
        let (cpk, csk) = keys::counters();
        let id = self.meta.add(cpk, csk, "replication_policy_id", 1, Condition::Always).await?;
        let now = now_ms();
        let policy = input.applied(
            trigger,
            ReplicationPolicy {
                id,
                name: String::new(),
                description: String::new(),
                src_registry: None,
                dest_registry: None,
                dest_namespace: String::new(),
                dest_namespace_replace_count: -1,
                trigger,
                cron: String::new(),
                filters: Vec::new(),
                replicate_deletion: false,
                override_: false,
                enabled: false,
                speed: -1,
                copy_by_chunk: false,
                single_active_replication: false,
                creation_time: now,
                update_time: now,
            },
        );
        let (record, entry) = items(&policy)?;
        let (npk, nsk) = keys::replication_policy_name(&policy.name);
        let mut writes = vec![
            Write::Put {
                item: Item::new(npk.clone(), nsk.clone()).with(keys::attr::ID, id),
                cond: Condition::NotExists,
            },
            Write::Put { item: record, cond: Condition::NotExists },
            Write::Put { item: entry, cond: Condition::NotExists },
            count_write(Counted::ReplicationPolicies, &id.to_string(), 1),
        ];
        writes.extend(registry_endpoint_use(policy.endpoint()?, 1));
        match self.meta.transact(writes).await {
            Ok(()) => {}
            Err(e) if e.is(ErrorKind::ConditionFailed) => {
                if self.meta.get(&npk, &nsk).await?.is_some() {
                    return Err(name_taken(&policy.name));
                }
                return Err(ServiceError::Invalid(format!("registry {} does not exist", policy.endpoint()?)));
            }
            Err(e) => return Err(e.into()),
        }
        self.schedule_replication(&policy).await?;
        Ok(policy)
    }

    async fn replication_policy_named(&self, name: &str) -> ServiceResult<Option<i64>> {
        let (pk, sk) = keys::replication_policy_name(name);
        Ok(self.meta.get(&pk, &sk).await?.and_then(|i| i.i64(keys::attr::ID)))
    }

    pub async fn replication_policy(&self, id: i64) -> ServiceResult<ReplicationPolicy> {
        let (pk, sk) = keys::replication_policy(id);
        from_item(self.meta.get(&pk, &sk).await?.ok_or_else(|| not_found(id))?, "replication policy")
    }

    /// A page of the policies by id; `name` is tested on the list's
    /// entries.
    pub async fn list_replication_policies(
        &self,
        name: Option<&Match>,
        req: &PageRequest,
    ) -> ServiceResult<Listing<ReplicationPolicy>> {
        let query = Query::table(keys::REPLICATION_POLICIES, "");
        let keep = |i: &Item| name.is_none_or(|m| i.str("name").is_some_and(|n| m.matches(n)));
        let (entries, next, total) =
            self.page_of(query, Counted::ReplicationPolicies, req, name.is_some(), keep).await?;
        let items =
            entries.into_iter().map(|i| from_item(i, "replication policy")).collect::<ServiceResult<Vec<_>>>()?;
        Ok(Listing { items, total, next })
    }

    pub async fn update_replication_policy(&self, id: i64, mut input: PolicyInput) -> ServiceResult<ReplicationPolicy> {
        let trigger = check_input(&mut input)?;
        let old = self.replication_policy(id).await?;
        let policy = input.applied(trigger, ReplicationPolicy { update_time: now_ms(), ..old.clone() });
        let (record, entry) = items(&policy)?;
        let cond = Condition::equals("update_time", old.update_time);
        let mut writes = vec![Write::Put { item: record, cond }, Write::Put { item: entry, cond: Condition::Always }];
        if policy.name != old.name {
            let (opk, osk) = keys::replication_policy_name(&old.name);
            let (npk, nsk) = keys::replication_policy_name(&policy.name);
            writes.push(Write::Delete { pk: opk, sk: osk, cond: Condition::Always });
            writes.push(Write::Put { item: Item::new(npk, nsk).with(keys::attr::ID, id), cond: Condition::NotExists });
        }
        let (before, after) = (old.endpoint()?, policy.endpoint()?);
        if before != after {
            writes.extend(registry_endpoint_use(before, -1));
            writes.extend(registry_endpoint_use(after, 1));
        }
        match self.meta.transact(writes).await {
            Ok(()) => {}
            Err(e) if e.is(ErrorKind::ConditionFailed) => {
                if policy.name != old.name && self.replication_policy_named(&policy.name).await?.is_some() {
                    return Err(name_taken(&policy.name));
                }
                if self.registry_endpoint(after).await.is_err() {
                    return Err(ServiceError::Invalid(format!("registry {after} does not exist")));
                }
                return Err(ServiceError::Conflict(format!("replication policy {id} changed meanwhile: try again")));
            }
            Err(e) => return Err(e.into()),
        }
        self.schedule_replication(&policy).await?;
        Ok(policy)
    }

    /// Deletes a policy; refused (412, as Harbor) while a run of it is
    /// going on.
    pub async fn delete_replication_policy(&self, id: i64) -> ServiceResult<()> {
        let policy = self.replication_policy(id).await?;
        let recent = self.list_executions(REPLICATION, id, &PageRequest::first(10)).await?;
        if recent.items.iter().any(|x| !x.status.is_final()) {
            return Err(ServiceError::PreconditionFailed(format!(
                "replication policy {} has a run in progress: stop it first",
                policy.name
            )));
        }
        self.set_schedule(REPLICATION, id, None, Value::Null).await?;
        let (pk, sk) = keys::replication_policy(id);
        let (epk, esk) = keys::replication_policy_entry(id);
        let (npk, nsk) = keys::replication_policy_name(&policy.name);
        let mut writes = vec![
            Write::Delete { pk, sk, cond: Condition::Exists },
            Write::Delete { pk: epk, sk: esk, cond: Condition::Always },
            Write::Delete { pk: npk, sk: nsk, cond: Condition::Always },
            count_write(Counted::ReplicationPolicies, &id.to_string(), -1),
        ];
        // The endpoint's count goes down; its existence is not required.
        let (upk, usk) = keys::registry_endpoint_uses(policy.endpoint()?);
        writes.push(Write::Add {
            pk: upk,
            sk: usk,
            attr: keys::attr::COUNT.to_owned(),
            delta: -1,
            cond: Condition::Always,
        });
        match self.meta.transact(writes).await {
            Err(e) if e.is(ErrorKind::ConditionFailed) => Err(not_found(id)),
            other => other.map_err(Into::into),
        }
    }

    async fn schedule_replication(&self, policy: &ReplicationPolicy) -> ServiceResult<()> {
        let cron = (policy.trigger == TriggerKind::Scheduled && policy.enabled && !policy.cron.is_empty())
            .then_some(policy.cron.as_str());
        self.set_schedule(REPLICATION, policy.id, cron.map(|c| ("Custom", c)), first_plan(policy)?).await
    }

    /// Runs a policy now (Harbor's `startReplication`): an execution whose
    /// first task plans the rest. A disabled policy does not run (412).
    pub async fn start_replication(&self, id: i64, trigger: &str) -> ServiceResult<i64> {
        let policy = self.replication_policy(id).await?;
        if !policy.enabled {
            return Err(ServiceError::PreconditionFailed(format!("replication policy {} is disabled", policy.name)));
        }
        if policy.single_active_replication {
            let recent = self.list_executions(REPLICATION, id, &PageRequest::first(10)).await?;
            if recent.items.iter().any(|x| !x.status.is_final()) {
                return Err(ServiceError::PreconditionFailed(format!(
                    "replication policy {} allows one run at a time and one is in progress",
                    policy.name
                )));
            }
        }
        let job = crate::jobs::replication::ReplicationJob;
        self.start_execution(&job, policy.id, trigger, serde_json::Map::new(), vec![first_plan(&policy)?]).await
    }

    /// Whether a task of a replication execution is one Harbor shows (a
    /// copy or a deletion; planning is berth's own).
    pub fn is_replication_task(payload: &Value) -> bool {
        payload.get("op").and_then(Value::as_str).is_some_and(|op| op != "plan")
    }

    /// The status of a replication execution's shown tasks, counted.
    pub fn replication_counts(tasks: &[crate::service::executions::TaskRecord]) -> [(Status, u64); 5] {
        let mut out = [
            (Status::Pending, 0),
            (Status::Running, 0),
            (Status::Success, 0),
            (Status::Error, 0),
            (Status::Stopped, 0),
        ];
        for t in tasks.iter().filter(|t| Self::is_replication_task(&t.payload)) {
            if let Some(slot) = out.iter_mut().find(|(s, _)| *s == t.status) {
                slot.1 += 1;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    #[test]
    fn flattening_follows_harbor() {
        let r = "a/b/c/image";
        assert_eq!(destination_repository(r, "n", -1).unwrap(), "n/image");
        assert_eq!(destination_repository(r, "n", 0).unwrap(), "n/a/b/c/image");
        assert_eq!(destination_repository(r, "n", 1).unwrap(), "n/b/c/image");
        assert_eq!(destination_repository(r, "n", 2).unwrap(), "n/c/image");
        assert_eq!(destination_repository(r, "n", 3).unwrap(), "n/image");
        assert!(destination_repository(r, "n", 4).is_err());
        assert_eq!(destination_repository(r, "", -1).unwrap(), r);
        assert_eq!(destination_repository(r, "", 0).unwrap(), r);
        assert_eq!(destination_repository(r, "", 1).unwrap(), "b/c/image");
        assert!(destination_repository("alpine", "mirror", 1).is_err());
        assert_eq!(destination_repository("alpine", "mirror", 0).unwrap(), "mirror/alpine");
        assert_eq!(destination_repository("alpine", "mirror/", -1).unwrap(), "mirror/alpine");
        assert!(destination_repository(r, "n", -2).is_err());
    }

    #[test]
    fn filters_read_harbor_json_and_select() {
        let name = Filter::from_harbor("name", &json!("library/**"), "matches").unwrap();
        let not_tmp = Filter::from_harbor("name", &json!("**/tmp-*"), "excludes").unwrap();
        let tag = Filter::from_harbor("tag", &json!("v{1,2}.*"), "").unwrap();
        let label = Filter::from_harbor("label", &json!(["prod"]), "matches").unwrap();
        let image = Filter::from_harbor("resource", &json!("image"), "").unwrap();
        let filters = vec![name, not_tmp, tag, label, image];
        assert!(repository_selected(&filters, "library/alpine"));
        assert!(repository_selected(&filters, "library/a/b"));
        assert!(!repository_selected(&filters, "library/tmp-x"));
        assert!(!repository_selected(&filters, "other/alpine"));
        assert!(tag_selected(&filters, "v1.2") && tag_selected(&filters, "v2.0"));
        assert!(!tag_selected(&filters, "v3.0") && !tag_selected(&filters, "latest"));
        assert!(has_tag_filter(&filters));
        assert!(labels_selected(&filters, &["prod".into(), "x".into()]));
        assert!(!labels_selected(&filters, &["dev".into()]));
        assert!(resource_selected(&filters, "IMAGE") && !resource_selected(&filters, "CHART"));
        let (t, v, d) = filters[1].to_harbor();
        assert_eq!((t, v, d), ("name", json!("**/tmp-*"), "excludes"));
        assert!(Filter::from_harbor("colour", &json!("red"), "").is_err());
        assert!(Filter::from_harbor("name", &json!("a/{b"), "").is_err());
        assert!(Filter::from_harbor("name", &json!("a"), "sometimes").is_err());
        assert!(Filter::from_harbor("resource", &json!("movie"), "").is_err());
    }

    #[test]
    fn a_policy_has_one_remote_side() {
        let mut input = PolicyInput { name: "p".into(), dest_registry: Some(1), ..PolicyInput::default() };
        assert_eq!(check_input(&mut input).unwrap(), TriggerKind::Manual);
        let mut both =
            PolicyInput { name: "p".into(), src_registry: Some(1), dest_registry: Some(2), ..PolicyInput::default() };
        assert!(check_input(&mut both).is_err());
        let mut none = PolicyInput { name: "p".into(), src_registry: Some(0), ..PolicyInput::default() };
        assert!(check_input(&mut none).is_err());
        let mut cron = PolicyInput {
            name: "p".into(),
            src_registry: Some(1),
            trigger: "scheduled".into(),
            cron: "0 0 * * *".into(),
            ..PolicyInput::default()
        };
        assert!(check_input(&mut cron).is_err());
        cron.cron = "0 */5 * * * *".into();
        assert_eq!(check_input(&mut cron).unwrap(), TriggerKind::Scheduled);
    }
}

//! P2P preheat (F16, Harbor's `/p2p/preheat` and a project's
//! `/preheat/policies`): provider instances, the policies that pick which
//! images go to them, and the start of their executions.
//!
//! - Instances are the system's, in the `P2P_INSTANCES` partition by name
//!   (a handful: one query lists them). Their secrets (a BASIC password,
//!   an OAUTH token) are stored sealed ([`crate::auth::seal`]) and shown
//!   masked. An instance a policy uses is not deleted nor disabled
//!   (Harbor's 412): each policy keeps a `P2PUSE#<instance>` entry, written
//!   with the policy, and the policy's write checks the instance exists.
//! - Policies live in their project's partition (`P#<project>` /
//!   `PH#<id>`), counted for paging; `filters` and `trigger` are Harbor's
//!   JSON strings, checked when stored. A scheduled policy's cron is a
//!   schedule ([`crate::service::schedules`]); an event-based one runs on
//!   each push of a matching artifact ([`Registry::preheat_on_push`]).
//! - A run is an execution (vendor type `P2P_PREHEAT`, vendor id the
//!   policy's) of the preheat job ([`crate::jobs::preheat`]): a planning
//!   task walks the project's repositories a page at a time
//!   ([`Registry::preheat_plan`]) and leaves one preheat task per matching
//!   artifact.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::artifacts::{ArtifactFilter, ArtifactInfo};
use super::executions::new_id;
use super::paging::{Listing, Match, PageRequest, count_write};
use super::projects::{Project, ProjectRef};
use super::record::{from_item, to_item};
use super::{Registry, ServiceError, ServiceResult};
use crate::auth::seal::Sealer;
use crate::events::{Event, EventKind, now_ms};
use crate::meta::keys::{self, Counted};
use crate::meta::{Condition, ErrorKind, Item, Query, Write};
use crate::oci::RepoName;
use crate::p2p::{Auth, Driver};

/// The job type and vendor type of preheat executions.
pub const P2P_PREHEAT: &str = "P2P_PREHEAT";
/// What a secret is shown as.
pub const MASK: &str = "*****";
/// Harbor's limit on names.
const MAX_NAME: usize = 255;
/// Most instances (and policies of a project) one listing reads.
const MAX_LISTED: usize = 1000;
/// Repositories one planning task walks.
pub const REPOSITORIES_PER_PLAN: usize = 10;
/// Artifacts of a repository one planning task looks at.
const ARTIFACTS_PER_REPOSITORY: usize = 1000;

/// A provider instance as stored: `auth_info`'s secrets are sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub id: i64,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub vendor: String,
    pub endpoint: String,
    /// `NONE`, `BASIC` or `OAUTH`.
    pub auth_mode: String,
    #[serde(default)]
    pub auth_info: BTreeMap<String, String>,
    pub enabled: bool,
    pub default: bool,
    pub insecure: bool,
    /// Unix seconds.
    pub setup_timestamp: i64,
}

/// What a caller sets of an instance.
#[derive(Debug, Clone, Default)]
pub struct InstanceInput {
    pub name: String,
    pub description: String,
    pub vendor: String,
    pub endpoint: String,
    pub auth_mode: String,
    pub auth_info: BTreeMap<String, String>,
    pub enabled: bool,
    pub default: bool,
    pub insecure: bool,
}

/// The `auth_info` keys that are secrets.
const SECRETS: [&str; 2] = ["password", "token"];

fn seal_context(id: i64) -> String {
    format!("p2p-instance:{id}")
}

impl Instance {
    /// `auth_info` as shown: secrets masked.
    pub fn masked_auth_info(&self) -> BTreeMap<String, String> {
        self.auth_info
            .iter()
            .map(|(k, v)| (k.clone(), if SECRETS.contains(&k.as_str()) { MASK.to_owned() } else { v.clone() }))
            .collect()
    }

    /// The driver that reaches it, its secrets opened.
    pub fn driver(&self, sealer: &Sealer) -> ServiceResult<Driver> {
        let open = |k: &str| -> ServiceResult<String> {
            let sealed = self.auth_info.get(k).map(String::as_str).unwrap_or_default();
            sealer
                .open_str(&seal_context(self.id), sealed)
                .map_err(|e| ServiceError::Invalid(format!("the {k} of instance {}: {e}", self.name)))
        };
        let auth = match self.auth_mode.as_str() {
            "BASIC" => Auth::Basic {
                username: self.auth_info.get("username").cloned().unwrap_or_default(),
                password: open("password")?,
            },
            "OAUTH" => Auth::Bearer(open("token")?),
            _ => Auth::None,
        };
        Ok(Driver { vendor: self.vendor.clone(), endpoint: self.endpoint.clone(), auth, insecure: self.insecure })
    }
}

/// Checks and normalizes an instance's settings.
pub fn check_instance(input: &mut InstanceInput) -> ServiceResult<()> {
    let bad = |m: String| Err(ServiceError::Invalid(m));
    input.name = input.name.trim().to_owned();
    if input.name.is_empty() || input.name.chars().count() > MAX_NAME {
        return bad(format!("an instance name has 1 to {MAX_NAME} characters"));
    }
    if !crate::p2p::is_vendor(&input.vendor) {
        return bad(format!("unknown provider {:?}: dragonfly or kraken", input.vendor));
    }
    input.endpoint = input.endpoint.trim().to_owned();
    match url::Url::parse(&input.endpoint) {
        Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.host().is_some() => {}
        _ => return bad(format!("endpoint {:?} is not an http(s) URL", input.endpoint)),
    }
    input.auth_mode = input.auth_mode.trim().to_ascii_uppercase();
    if input.auth_mode.is_empty() {
        input.auth_mode = "NONE".to_owned();
    }
    let needs: &[&str] = match input.auth_mode.as_str() {
        "NONE" => &[],
        "BASIC" => &["username", "password"],
        "OAUTH" => &["token"],
        other => return bad(format!("auth_mode {other:?} is not NONE, BASIC or OAUTH")),
    };
    input.auth_info.retain(|k, _| needs.contains(&k.as_str()));
    for k in needs {
        if input.auth_info.get(*k).is_none_or(|v| v.is_empty()) {
            return bad(format!("auth_mode {} needs auth_info.{k}", input.auth_mode));
        }
    }
    Ok(())
}

/// The instance `input` describes, its secrets sealed; a masked secret
/// keeps `old`'s.
fn instance_of(
    sealer: &Sealer,
    id: i64,
    input: InstanceInput,
    old: Option<&Instance>,
    setup_timestamp: i64,
) -> ServiceResult<Instance> {
    let mut auth_info = BTreeMap::new();
    for (k, v) in input.auth_info {
        if !SECRETS.contains(&k.as_str()) {
            auth_info.insert(k, v);
            continue;
        }
        let kept = old.filter(|o| o.auth_mode == input.auth_mode).and_then(|o| o.auth_info.get(&k));
        let sealed = match kept {
            Some(sealed) if v == MASK => sealed.clone(),
            _ if v == MASK => return Err(ServiceError::Invalid(format!("auth_info.{k} is required"))),
            _ => sealer.seal(&seal_context(id), v.as_bytes()).map_err(|e| ServiceError::Invalid(e.to_string()))?,
        };
        auth_info.insert(k, sealed);
    }
    Ok(Instance {
        id,
        name: input.name,
        description: input.description,
        vendor: input.vendor,
        endpoint: input.endpoint,
        auth_mode: input.auth_mode,
        auth_info,
        enabled: input.enabled,
        default: input.default,
        insecure: input.insecure,
        setup_timestamp,
    })
}

/// A preheat policy as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreheatPolicy {
    pub id: i64,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub project_id: i64,
    pub project: String,
    pub provider_id: i64,
    #[serde(default)]
    pub provider_name: String,
    /// Harbor's JSON string of [`Filter`]s.
    #[serde(default)]
    pub filters: String,
    /// Harbor's JSON string of a [`Trigger`].
    #[serde(default)]
    pub trigger: String,
    pub enabled: bool,
    /// `single_peer` or `all_peers`.
    #[serde(default)]
    pub scope: String,
    #[serde(default)]
    pub extra_attrs: String,
    /// Unix seconds.
    pub creation_time: i64,
    pub update_time: i64,
}

/// What a caller sets of a policy.
#[derive(Debug, Clone, Default)]
pub struct PolicyInput {
    pub name: String,
    pub description: String,
    pub provider_id: i64,
    pub filters: String,
    pub trigger: String,
    pub enabled: bool,
    pub scope: String,
    pub extra_attrs: String,
}

/// One of a policy's filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// A doublestar pattern on the repository's name within its project.
    Repository(String),
    /// A doublestar pattern on a tag.
    Tag(String),
    /// Label names, all of which the artifact carries.
    Label(Vec<String>),
    /// Signed artifacts only (when true).
    Signature(bool),
    /// Harbor's severity code from which an artifact is not preheated: an
    /// artifact is kept while its scan's severity is below it (unscanned
    /// artifacts count as `None`, 0).
    Vulnerability(i64),
}

/// Harbor's severity codes.
pub fn severity_code(name: &str) -> Option<i64> {
    Some(match name.to_ascii_lowercase().as_str() {
        "none" | "" => 0,
        "unknown" => 1,
        "negligible" | "low" => 2,
        "medium" => 3,
        "high" => 4,
        "critical" => 5,
        _ => return None,
    })
}

/// Reads a policy's `filters`.
pub fn parse_filters(raw: &str) -> ServiceResult<Vec<Filter>> {
    let bad = |m: String| ServiceError::Invalid(format!("filters: {m}"));
    if raw.trim().is_empty() {
        return Ok(Vec::new());
    }
    let items: Vec<Value> = serde_json::from_str(raw).map_err(|e| bad(format!("not a JSON array of filters: {e}")))?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let value = &item["value"];
        let text = || value.as_str().map(str::to_owned).ok_or_else(|| bad(format!("{item} needs a string value")));
        out.push(match item["type"].as_str().unwrap_or_default() {
            "repository" => Filter::Repository(text()?),
            "tag" => Filter::Tag(text()?),
            "label" => match value {
                Value::String(s) => {
                    Filter::Label(s.split(',').map(|l| l.trim().to_owned()).filter(|l| !l.is_empty()).collect())
                }
                Value::Array(a) => Filter::Label(a.iter().filter_map(|l| l.as_str().map(str::to_owned)).collect()),
                _ => return Err(bad(format!("{item} needs label names"))),
            },
            "signature" => match value {
                Value::Bool(b) => Filter::Signature(*b),
                Value::String(s) if s == "true" || s == "false" => Filter::Signature(s == "true"),
                _ => return Err(bad(format!("{item} needs true or false"))),
            },
            "vulnerability" => match value {
                Value::Number(n) => Filter::Vulnerability(n.as_i64().ok_or_else(|| bad(format!("{item}")))?),
                Value::String(s) => Filter::Vulnerability(
                    s.parse()
                        .ok()
                        .or_else(|| severity_code(s))
                        .ok_or_else(|| bad(format!("unknown severity {s:?}")))?,
                ),
                _ => return Err(bad(format!("{item} needs a severity"))),
            },
            other => return Err(bad(format!("unknown filter type {other:?}"))),
        });
    }
    Ok(out)
}

/// How a policy runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerKind {
    Manual,
    Scheduled,
    EventBased,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    pub kind: TriggerKind,
    /// Harbor's 6-field cron of a scheduled policy (empty: none).
    pub cron: String,
}

/// Reads a policy's `trigger` (empty: manual).
pub fn parse_trigger(raw: &str) -> ServiceResult<Trigger> {
    if raw.trim().is_empty() {
        return Ok(Trigger { kind: TriggerKind::Manual, cron: String::new() });
    }
    let v: Value = serde_json::from_str(raw)
        .map_err(|e| ServiceError::Invalid(format!("trigger: not a JSON trigger object: {e}")))?;
    let kind = match v["type"].as_str().unwrap_or_default() {
        "manual" => TriggerKind::Manual,
        "scheduled" => TriggerKind::Scheduled,
        "event_based" => TriggerKind::EventBased,
        other => return Err(ServiceError::Invalid(format!("trigger: unknown trigger type {other:?}"))),
    };
    let cron = v["trigger_setting"]["cron"].as_str().unwrap_or_default().trim().to_owned();
    if kind == TriggerKind::Scheduled && !cron.is_empty() {
        crate::jobs::schedule::parse(&cron)?;
    }
    Ok(Trigger { kind, cron })
}

/// An artifact as a policy's filters see it.
#[derive(Debug, Clone, Default)]
pub struct Candidate {
    /// The repository's name within its project.
    pub repository: String,
    pub tags: Vec<String>,
    pub labels: Vec<String>,
    pub signed: bool,
    pub severity: i64,
}

impl Candidate {
    /// The first of its tags every filter keeps, if any.
    pub fn matching_tag(&self, filters: &[Filter]) -> Option<String> {
        for f in filters {
            let keep = match f {
                Filter::Repository(p) => super::selectors::matches(p, &self.repository),
                Filter::Label(names) => names.iter().all(|n| self.labels.contains(n)),
                Filter::Signature(only_signed) => !only_signed || self.signed,
                Filter::Vulnerability(code) => self.severity < *code,
                Filter::Tag(_) => true,
            };
            if !keep {
                return None;
            }
        }
        self.tags
            .iter()
            .find(|t| filters.iter().all(|f| !matches!(f, Filter::Tag(p) if !super::selectors::matches(p, t))))
            .cloned()
    }
}

/// What a preheat task carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum PreheatTask {
    /// Walk a page of the project's repositories (after `after`).
    Plan {
        policy_id: i64,
        project: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<String>,
    },
    /// Preheat one artifact by one of its tags.
    Preheat {
        policy_id: i64,
        project: String,
        instance_id: i64,
        repository: String,
        tag: String,
        digest: String,
        media_type: String,
        scope: String,
        /// The provider's id of the job this task polls (a follow-up).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        job: Option<String>,
    },
}

impl PreheatTask {
    pub fn to_value(&self) -> ServiceResult<Value> {
        serde_json::to_value(self).map_err(|e| ServiceError::Invalid(e.to_string()))
    }
}

fn check_policy(input: &mut PolicyInput) -> ServiceResult<(Vec<Filter>, Trigger)> {
    input.name = input.name.trim().to_owned();
    if input.name.is_empty() || input.name.chars().count() > MAX_NAME {
        return Err(ServiceError::Invalid(format!("a policy name has 1 to {MAX_NAME} characters")));
    }
    let filters = parse_filters(&input.filters)?;
    let trigger = parse_trigger(&input.trigger)?;
    if !input.extra_attrs.trim().is_empty() {
        let attrs: Value = serde_json::from_str(&input.extra_attrs)
            .map_err(|e| ServiceError::Invalid(format!("extra_attrs: not a JSON object: {e}")))?;
        if !attrs.is_object() {
            return Err(ServiceError::Invalid("extra_attrs: not a JSON object".to_owned()));
        }
        if input.scope.is_empty()
            && let Some(s) = attrs["scope"].as_str()
        {
            s.clone_into(&mut input.scope);
        }
    }
    input.scope = match input.scope.as_str() {
        "" | "single_peer" => "single_peer".to_owned(),
        "all_peers" => "all_peers".to_owned(),
        other => return Err(ServiceError::Invalid(format!("scope {other:?} is not single_peer or all_peers"))),
    };
    Ok((filters, trigger))
}

impl Registry {
    /// Every instance, by name.
    pub async fn p2p_instances(&self) -> ServiceResult<Vec<Instance>> {
        let page = self.meta.query(Query::table(keys::P2P_INSTANCES, "").limit(MAX_LISTED)).await?;
        page.items.into_iter().map(|i| from_item(i, "preheat instance")).collect()
    }

    pub async fn p2p_instance(&self, name: &str) -> ServiceResult<Instance> {
        let (pk, sk) = keys::p2p_instance(name);
        self.meta
            .get(&pk, &sk)
            .await?
            .map(|i| from_item(i, "preheat instance"))
            .transpose()?
            .ok_or_else(|| ServiceError::NotFound(format!("instance {name} not found")))
    }

    pub async fn p2p_instance_by_id(&self, id: i64) -> ServiceResult<Option<Instance>> {
        Ok(self.p2p_instances().await?.into_iter().find(|i| i.id == id))
    }

    /// Whether a policy uses the instance.
    pub async fn p2p_instance_in_use(&self, id: i64) -> ServiceResult<bool> {
        let page = self.meta.query(Query::table(keys::p2p_instance_uses(id), "").keys_only().limit(1)).await?;
        Ok(!page.items.is_empty())
    }

    /// Writes clearing the `default` mark of every other instance.
    async fn undefault_others(&self, keep: i64) -> ServiceResult<Vec<Write>> {
        let mut writes = Vec::new();
        for other in self.p2p_instances().await?.into_iter().filter(|i| i.default && i.id != keep) {
            let (pk, sk) = keys::p2p_instance(&other.name);
            let attrs = crate::meta::Attrs::from_iter([("default".to_owned(), false.into())]);
            writes.push(Write::Set { pk, sk, attrs, cond: Condition::Exists });
        }
        Ok(writes)
    }

    /// Registers an instance (without reaching it, as Harbor).
    pub async fn create_p2p_instance(&self, sealer: &Sealer, mut input: InstanceInput) -> ServiceResult<Instance> {
        check_instance(&mut input)?;
        let all = self.p2p_instances().await?;
        if all.iter().any(|i| i.name == input.name) {
            return Err(ServiceError::Conflict(format!("an instance named {} exists already", input.name)));
        }
        if all.iter().any(|i| i.endpoint == input.endpoint) {
            return Err(ServiceError::Conflict(format!("an instance of endpoint {} exists already", input.endpoint)));
        }
        let instance = instance_of(sealer, new_id(), input, None, now_ms() / 1000)?;
        let (pk, sk) = keys::p2p_instance(&instance.name);
        let mut writes =
            vec![Write::Put { item: to_item(pk, sk, &instance, "preheat instance")?, cond: Condition::NotExists }];
        if instance.default {
            writes.extend(self.undefault_others(instance.id).await?);
        }
        match self.meta.transact(writes).await {
            Err(e) if e.is(ErrorKind::ConditionFailed) => {
                Err(ServiceError::Conflict(format!("an instance named {} exists already", instance.name)))
            }
            other => other.map(|()| instance).map_err(Into::into),
        }
    }

    pub async fn update_p2p_instance(
        &self,
        sealer: &Sealer,
        name: &str,
        mut input: InstanceInput,
    ) -> ServiceResult<Instance> {
        let old = self.p2p_instance(name).await?;
        if input.name.trim().is_empty() {
            input.name.clone_from(&old.name);
        }
        check_instance(&mut input)?;
        if input.vendor != old.vendor {
            return Err(ServiceError::Invalid(format!("provider [{}] vendor cannot be changed", old.name)));
        }
        if !input.enabled && self.p2p_instance_in_use(old.id).await? {
            return Err(ServiceError::PreconditionFailed(format!(
                "Provider [{}] cannot be disabled as some preheat policies are using it",
                old.name
            )));
        }
        let others = self.p2p_instances().await?;
        if input.name != old.name && others.iter().any(|i| i.name == input.name) {
            return Err(ServiceError::Conflict(format!("an instance named {} exists already", input.name)));
        }
        if others.iter().any(|i| i.id != old.id && i.endpoint == input.endpoint) {
            return Err(ServiceError::Conflict(format!("an instance of endpoint {} exists already", input.endpoint)));
        }
        let instance = instance_of(sealer, old.id, input, Some(&old), old.setup_timestamp)?;
        let (pk, sk) = keys::p2p_instance(&instance.name);
        let item = to_item(pk, sk, &instance, "preheat instance")?;
        let mut writes = if instance.name == old.name {
            vec![Write::Put { item, cond: Condition::Exists }]
        } else {
            let (opk, osk) = keys::p2p_instance(&old.name);
            vec![
                Write::Delete { pk: opk, sk: osk, cond: Condition::Exists },
                Write::Put { item, cond: Condition::NotExists },
            ]
        };
        if instance.default {
            writes.extend(self.undefault_others(instance.id).await?);
        }
        match self.meta.transact(writes).await {
            Err(e) if e.is(ErrorKind::ConditionFailed) => {
                Err(ServiceError::Conflict(format!("instance {} changed meanwhile", old.name)))
            }
            other => other.map(|()| instance).map_err(Into::into),
        }
    }

    /// Deletes an instance no policy uses (Harbor's 412 otherwise).
    pub async fn delete_p2p_instance(&self, name: &str) -> ServiceResult<Instance> {
        let instance = self.p2p_instance(name).await?;
        if self.p2p_instance_in_use(instance.id).await? {
            return Err(ServiceError::PreconditionFailed(format!(
                "Provider [{}] cannot be deleted as some preheat policies are using it",
                instance.name
            )));
        }
        let (pk, sk) = keys::p2p_instance(name);
        self.meta.delete(&pk, &sk, Condition::Always).await?;
        Ok(instance)
    }

    /// Creates a policy (and its schedule).
    pub async fn create_preheat_policy(
        &self,
        project: &ProjectRef,
        mut input: PolicyInput,
    ) -> ServiceResult<PreheatPolicy> {
        let (_, trigger) = check_policy(&mut input)?;
        let project = self.project(project).await?;
        let instance = self.policy_instance(input.provider_id).await?;
        if self.preheat_policies_all(&project.name).await?.iter().any(|p| p.name == input.name) {
            return Err(ServiceError::Conflict(format!("a preheat policy named {} exists already", input.name)));
        }
        let now = now_ms() / 1000;
        let policy = PreheatPolicy {
            id: new_id(),
            name: input.name,
            description: input.description,
            project_id: project.project_id,
            project: project.name.clone(),
            provider_id: instance.id,
            provider_name: instance.name.clone(),
            filters: input.filters,
            trigger: input.trigger,
            enabled: input.enabled,
            scope: input.scope,
            extra_attrs: input.extra_attrs,
            creation_time: now,
            update_time: now,
        };
        let (pk, sk) = keys::preheat_policy(&project.name, policy.id);
        let (upk, usk) = keys::p2p_instance_use(instance.id, &project.name, policy.id);
        let (ipk, isk) = keys::p2p_instance(&instance.name);
        let writes = vec![
            Write::Put { item: to_item(pk, sk, &policy, "preheat policy")?, cond: Condition::NotExists },
            count_write(Counted::PreheatPolicies(&project.name), &policy.id.to_string(), 1),
            Write::Put { item: Item::new(upk, usk), cond: Condition::Always },
            Write::Check { pk: ipk, sk: isk, cond: Condition::Exists },
        ];
        match self.meta.transact(writes).await {
            Err(e) if e.is(ErrorKind::ConditionFailed) => {
                return Err(ServiceError::Invalid(format!("provider {} is gone", instance.id)));
            }
            other => other?,
        }
        self.schedule_preheat(&policy, &trigger).await?;
        Ok(policy)
    }

    async fn policy_instance(&self, id: i64) -> ServiceResult<Instance> {
        self.p2p_instance_by_id(id)
            .await?
            .ok_or_else(|| ServiceError::Invalid(format!("provider instance {id} does not exist")))
    }

    /// Sets (or removes) the schedule of a policy from its trigger.
    async fn schedule_preheat(&self, policy: &PreheatPolicy, trigger: &Trigger) -> ServiceResult<()> {
        let plan = PreheatTask::Plan { policy_id: policy.id, project: policy.project.clone(), after: None };
        let cron =
            (trigger.kind == TriggerKind::Scheduled && !trigger.cron.is_empty()).then_some(trigger.cron.as_str());
        self.set_schedule(P2P_PREHEAT, policy.id, cron.map(|c| ("Custom", c)), plan.to_value()?).await
    }

    pub async fn preheat_policy(&self, project: &ProjectRef, name: &str) -> ServiceResult<PreheatPolicy> {
        let project = self.project(project).await?;
        self.preheat_policies_all(&project.name)
            .await?
            .into_iter()
            .find(|p| p.name == name)
            .ok_or_else(|| ServiceError::NotFound(format!("preheat policy {name} not found")))
    }

    pub async fn update_preheat_policy(
        &self,
        project: &ProjectRef,
        name: &str,
        mut input: PolicyInput,
    ) -> ServiceResult<PreheatPolicy> {
        let (_, trigger) = check_policy(&mut input)?;
        let old = self.preheat_policy(project, name).await?;
        if input.name != old.name && self.preheat_policies_all(&old.project).await?.iter().any(|p| p.name == input.name)
        {
            return Err(ServiceError::Conflict(format!("a preheat policy named {} exists already", input.name)));
        }
        let instance = self.policy_instance(input.provider_id).await?;
        let policy = PreheatPolicy {
            name: input.name,
            description: input.description,
            provider_id: instance.id,
            provider_name: instance.name.clone(),
            filters: input.filters,
            trigger: input.trigger,
            enabled: input.enabled,
            scope: input.scope,
            extra_attrs: input.extra_attrs,
            update_time: now_ms() / 1000,
            ..old.clone()
        };
        let (pk, sk) = keys::preheat_policy(&policy.project, policy.id);
        let mut writes =
            vec![Write::Put { item: to_item(pk, sk, &policy, "preheat policy")?, cond: Condition::Exists }];
        if old.provider_id != policy.provider_id {
            let (opk, osk) = keys::p2p_instance_use(old.provider_id, &old.project, old.id);
            let (upk, usk) = keys::p2p_instance_use(policy.provider_id, &policy.project, policy.id);
            let (ipk, isk) = keys::p2p_instance(&instance.name);
            writes.push(Write::Delete { pk: opk, sk: osk, cond: Condition::Always });
            writes.push(Write::Put { item: Item::new(upk, usk), cond: Condition::Always });
            writes.push(Write::Check { pk: ipk, sk: isk, cond: Condition::Exists });
        }
        match self.meta.transact(writes).await {
            Err(e) if e.is(ErrorKind::ConditionFailed) => {
                return Err(ServiceError::NotFound(format!("preheat policy {name} not found")));
            }
            other => other?,
        }
        self.schedule_preheat(&policy, &trigger).await?;
        Ok(policy)
    }

    pub async fn delete_preheat_policy(&self, project: &ProjectRef, name: &str) -> ServiceResult<()> {
        let policy = self.preheat_policy(project, name).await?;
        self.remove_preheat_policy(&policy).await
    }

    async fn remove_preheat_policy(&self, policy: &PreheatPolicy) -> ServiceResult<()> {
        self.set_schedule(P2P_PREHEAT, policy.id, None, Value::Null).await?;
        let (pk, sk) = keys::preheat_policy(&policy.project, policy.id);
        let (upk, usk) = keys::p2p_instance_use(policy.provider_id, &policy.project, policy.id);
        let writes = vec![
            Write::Delete { pk, sk, cond: Condition::Exists },
            count_write(Counted::PreheatPolicies(&policy.project), &policy.id.to_string(), -1),
            Write::Delete { pk: upk, sk: usk, cond: Condition::Always },
        ];
        match self.meta.transact(writes).await {
            Err(e) if e.is(ErrorKind::ConditionFailed) => {
                Err(ServiceError::NotFound(format!("preheat policy {} not found", policy.name)))
            }
            other => other.map_err(Into::into),
        }
    }

    /// Removes every policy of a deleted project.
    pub(super) async fn delete_preheat_policies_of(&self, project: &str) -> ServiceResult<()> {
        for policy in self.preheat_policies_all(project).await? {
            match self.remove_preheat_policy(&policy).await {
                Ok(()) | Err(ServiceError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// A page of a project's policies, by id (creation order).
    pub async fn list_preheat_policies(
        &self,
        project: &ProjectRef,
        name: Option<&Match>,
        req: &PageRequest,
    ) -> ServiceResult<Listing<PreheatPolicy>> {
        let project = self.project(project).await?;
        let query = Query::table(keys::project(&project.name).0, keys::PREHEAT_POLICY_PREFIX);
        let keep = |i: &Item| name.is_none_or(|m| i.str("name").is_some_and(|n| m.matches(n)));
        let (items, next, total) =
            self.page_of(query, Counted::PreheatPolicies(&project.name), req, name.is_some(), keep).await?;
        let items = items.into_iter().map(|i| from_item(i, "preheat policy")).collect::<ServiceResult<Vec<_>>>()?;
        Ok(Listing { items, total, next })
    }

    /// Every policy of a project (a handful).
    async fn preheat_policies_all(&self, project: &str) -> ServiceResult<Vec<PreheatPolicy>> {
        let query = Query::table(keys::project(project).0, keys::PREHEAT_POLICY_PREFIX).limit(MAX_LISTED);
        let page = self.meta.query(query).await?;
        page.items.into_iter().map(|i| from_item(i, "preheat policy")).collect()
    }

    /// Runs a policy now: an execution whose first task plans the rest.
    pub async fn start_preheat(&self, policy: &PreheatPolicy, trigger: &str) -> ServiceResult<i64> {
        let plan = PreheatTask::Plan { policy_id: policy.id, project: policy.project.clone(), after: None };
        let job = crate::jobs::preheat::PreheatJob::queued();
        self.start_execution(&job, policy.id, trigger, serde_json::Map::new(), vec![plan.to_value()?]).await
    }

    /// The policy a task runs for, by id; `None` once it is deleted.
    pub async fn preheat_policy_by_id(&self, project: &str, id: i64) -> ServiceResult<Option<PreheatPolicy>> {
        let (pk, sk) = keys::preheat_policy(project, id);
        self.meta.get(&pk, &sk).await?.map(|i| from_item(i, "preheat policy")).transpose()
    }

    /// `artifact` of `repo` as `filters` see it.
    async fn candidate(
        &self,
        project: &Project,
        repo: &RepoName,
        artifact: &ArtifactInfo,
        filters: &[Filter],
    ) -> ServiceResult<Candidate> {
        let within = repo.as_str().strip_prefix(&format!("{}/", project.name)).unwrap_or(repo.as_str()).to_owned();
        let mut c = Candidate {
            repository: within,
            tags: artifact.tags.iter().map(|t| t.name.clone()).collect(),
            ..Candidate::default()
        };
        if filters.iter().any(|f| matches!(f, Filter::Label(_))) {
            let labels = self.artifact_labels(repo, &artifact.digest, artifact.push_stamp).await?;
            c.labels = labels.into_iter().map(|l| l.name).collect();
        }
        if filters.iter().any(|f| matches!(f, Filter::Signature(true))) {
            let accessories = self.accessories(repo, &artifact.digest).await?;
            c.signed = accessories.iter().any(|a| a.kind.starts_with("signature."));
        }
        if filters.iter().any(|f| matches!(f, Filter::Vulnerability(_))) {
            let scanner = self.project_scanner(&project.name).await?;
            let scan = self.artifact_scan(scanner.as_ref(), &artifact.digest, super::scans::VULNERABILITY).await?;
            c.severity = scan
                .filter(|s| s.status == crate::jobs::Status::Success)
                .and_then(|s| severity_code(&s.severity))
                .unwrap_or(0);
        }
        Ok(c)
    }

    /// The preheat task of `artifact` under `policy`, when it matches.
    async fn preheat_task_of(
        &self,
        project: &Project,
        policy: &PreheatPolicy,
        filters: &[Filter],
        repo: &RepoName,
        artifact: &ArtifactInfo,
    ) -> ServiceResult<Option<PreheatTask>> {
        if artifact.kind() != "IMAGE" || artifact.tags.is_empty() {
            return Ok(None);
        }
        let candidate = self.candidate(project, repo, artifact, filters).await?;
        Ok(candidate.matching_tag(filters).map(|tag| PreheatTask::Preheat {
            policy_id: policy.id,
            project: project.name.clone(),
            instance_id: policy.provider_id,
            repository: repo.to_string(),
            tag,
            digest: artifact.digest.to_string(),
            media_type: artifact.manifest.media_type.clone(),
            scope: policy.scope.clone(),
            job: None,
        }))
    }

    /// One planning step of a run: the preheat tasks of the matching
    /// artifacts of a page of the project's repositories (after `after`),
    /// and where the next page starts.
    pub async fn preheat_plan(
        &self,
        policy: &PreheatPolicy,
        after: Option<String>,
    ) -> ServiceResult<(Vec<PreheatTask>, Option<String>)> {
        let project = self.project(&ProjectRef::Name(policy.project.clone())).await?;
        let filters = parse_filters(&policy.filters)?;
        let req = PageRequest { after, ..PageRequest::first(REPOSITORIES_PER_PLAN) };
        let repos = self.list_repositories(&project.name, None, &req).await?;
        let mut tasks = Vec::new();
        for r in &repos.items {
            let repo = r.name.clone();
            let full = repo.as_str();
            let within = full.strip_prefix(&format!("{}/", project.name)).unwrap_or(full);
            if !filters.iter().all(|f| !matches!(f, Filter::Repository(p) if !super::selectors::matches(p, within))) {
                continue;
            }
            let mut areq = PageRequest::first(super::paging::MAX_PAGE_SIZE);
            let mut seen = 0;
            loop {
                let page = match self.list_artifacts(&repo, &ArtifactFilter::default(), &areq).await {
                    Ok(p) => p,
                    Err(ServiceError::NotFound(_) | ServiceError::NameUnknown(_)) => break,
                    Err(e) => return Err(e),
                };
                for a in &page.items {
                    if let Some(t) = self.preheat_task_of(&project, policy, &filters, &repo, a).await? {
                        tasks.push(t);
                    }
                }
                seen += page.items.len();
                match page.next {
                    Some(n) if seen < ARTIFACTS_PER_REPOSITORY => areq.after = Some(n),
                    _ => break,
                }
            }
        }
        Ok((tasks, repos.next))
    }

    /// Runs each enabled event-based policy of the pushed artifact's
    /// project that matches it (once per event and policy).
    pub async fn preheat_on_push(&self, event: &Event) -> ServiceResult<()> {
        if event.kind != EventKind::PushArtifact {
            return Ok(());
        }
        let (Some(project), Some(repo), Some(digest)) = (&event.project, &event.repository, &event.digest) else {
            return Ok(());
        };
        let policies = match self.preheat_policies_all(project).await {
            Ok(p) => p,
            Err(ServiceError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let event_based =
            |p: &PreheatPolicy| p.enabled && parse_trigger(&p.trigger).is_ok_and(|t| t.kind == TriggerKind::EventBased);
        let policies: Vec<PreheatPolicy> = policies.into_iter().filter(event_based).collect();
        if policies.is_empty() {
            return Ok(());
        }
        let (Ok(repo), Ok(digest)) = (RepoName::parse(repo), digest.parse::<crate::oci::Digest>()) else {
            return Ok(());
        };
        let artifact = match self.artifact(&repo, &crate::oci::Reference::Digest(digest)).await {
            Ok(a) => a,
            Err(ServiceError::ManifestUnknown(_) | ServiceError::NotFound(_) | ServiceError::NameUnknown(_)) => {
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let project = match self.project(&ProjectRef::Name(project.clone())).await {
            Ok(p) => p,
            Err(ServiceError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let job = crate::jobs::preheat::PreheatJob::queued();
        for policy in policies {
            let Ok(filters) = parse_filters(&policy.filters) else { continue };
            let Some(task) = self.preheat_task_of(&project, &policy, &filters, &repo, &artifact).await? else {
                continue;
            };
            let mut attrs = serde_json::Map::new();
            attrs.insert("event_id".to_owned(), event.id.clone().into());
            let once = keys::event_handled(&event.id, &format!("preheat-{}", policy.id));
            self.start_execution_once(&job, policy.id, "EVENT", attrs, vec![task.to_value()?], once).await?;
        }
        Ok(())
    }

    /// Records what a preheat task submitted to its provider.
    pub async fn record_preheat_submitted(&self, execution: i64, task: i64, job: &str) -> ServiceResult<()> {
        let (pk, sk) = keys::preheat_submitted(execution, task);
        self.meta.put(Item::new(pk, sk).with("job", job), Condition::Always).await.map_err(Into::into)
    }

    /// What a preheat task submitted before (it runs again), if anything.
    pub async fn preheat_submitted(&self, execution: i64, task: i64) -> ServiceResult<Option<String>> {
        let (pk, sk) = keys::preheat_submitted(execution, task);
        Ok(self.meta.get(&pk, &sk).await?.and_then(|i| i.str("job").map(str::to_owned)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn filters_are_read_as_harbor_writes_them() {
        let f = parse_filters(r#"[{"type":"repository","value":"re*"},{"type":"tag","value":"v1.0*"}]"#).unwrap();
        assert_eq!(f, vec![Filter::Repository("re*".into()), Filter::Tag("v1.0*".into())]);
        let f = parse_filters(
            r#"[{"type":"label","value":"release"},{"type":"signature","value":true},{"type":"vulnerability","value":4}]"#,
        )
        .unwrap();
        assert_eq!(f, vec![Filter::Label(vec!["release".into()]), Filter::Signature(true), Filter::Vulnerability(4)]);
        assert!(parse_filters("[{").is_err());
        assert!(parse_filters(r#"[{"type":"colour","value":"red"}]"#).is_err());
        assert_eq!(parse_filters("").unwrap(), vec![]);
    }

    #[test]
    fn triggers_are_checked() {
        let t = parse_trigger(r#"{"type":"scheduled","trigger_setting":{"cron":"0 8 * * * *"}}"#).unwrap();
        assert_eq!((t.kind, t.cron.as_str()), (TriggerKind::Scheduled, "0 8 * * * *"));
        assert!(parse_trigger(r#"{"type":"scheduled","trigger_setting":{"cron":"8 * * *"}}"#).is_err());
        assert!(parse_trigger(r#"{"type":"sometimes"}"#).is_err());
        assert_eq!(
            parse_trigger(r#"{"type":"manual","trigger_setting":{"cron":""}}"#).unwrap().kind,
            TriggerKind::Manual
        );
    }

    #[test]
    fn candidates_match_by_every_filter() {
        let c = Candidate {
            repository: "redis".into(),
            tags: vec!["latest".into(), "v1.0.2".into()],
            labels: vec!["release".into()],
            signed: false,
            severity: 4,
        };
        let f = parse_filters(r#"[{"type":"repository","value":"re*"},{"type":"tag","value":"v1.0*"}]"#).unwrap();
        assert_eq!(c.matching_tag(&f).as_deref(), Some("v1.0.2"));
        let f = parse_filters(r#"[{"type":"repository","value":"{a,b}"}]"#).unwrap();
        assert_eq!(c.matching_tag(&f), None);
        let f = parse_filters(r#"[{"type":"signature","value":true}]"#).unwrap();
        assert_eq!(c.matching_tag(&f), None);
        let f = parse_filters(r#"[{"type":"vulnerability","value":5},{"type":"label","value":"release"}]"#).unwrap();
        assert_eq!(c.matching_tag(&f).as_deref(), Some("latest"));
        let f = parse_filters(r#"[{"type":"vulnerability","value":4}]"#).unwrap();
        assert_eq!(c.matching_tag(&f), None);
    }
}

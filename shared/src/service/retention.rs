//! Tag retention (F11, Harbor's `/retentions`): a project's policy of
//! rules that say which artifacts to keep; a run deletes the others.
//!
//! A project has at most one policy (its `retention_id` metadata names
//! it); the policy lives at `RET#<id>`. Its rules (at most 15, OR-ed) each
//! pick repositories by a scope selector and artifacts by a tag selector
//! (an artifact is picked when any of its tags matches, an untagged one
//! unless the selector's extras say `{"untagged": false}`), then keep some
//! of those by a template: the `latestPushedK` or `latestPulledN` most
//! recent, those pushed or pulled in the last `nDaysSinceLastPush`/
//! `nDaysSinceLastPull` days, or `always`. In each repository some rule's
//! scope selects, an artifact no rule keeps is deleted (with its tags),
//! unless one of its tags is immutable. A run is an execution of the
//! retention job ([`crate::jobs::retention`]): a task per repository, each
//! logging its decisions; a dry run decides and logs the same, deleting
//! nothing. A schedule fires runs through the scheduler.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::executions::new_id;
use super::immutability::Immutability;
use super::projects::ProjectRef;
use super::record::{from_item, to_item};
use super::selectors::{Rule, Selector};
use super::{Registry, ServiceError, ServiceResult};
use crate::meta::{Condition, ErrorKind, keys};
use crate::oci::RepoName;

/// The vendor type of retention executions and schedules.
pub const RETENTION: &str = "RETENTION";
/// Harbor's limit on a policy's rules.
pub const MAX_RULES: usize = 15;
/// The templates a rule may use, with the parameter each takes.
pub const TEMPLATES: [(&str, Option<&str>); 5] = [
    ("latestPushedK", Some("latestPushedK")),
    ("latestPulledN", Some("latestPulledN")),
    ("nDaysSinceLastPush", Some("nDaysSinceLastPush")),
    ("nDaysSinceLastPull", Some("nDaysSinceLastPull")),
    ("always", None),
];

/// Harbor's `RetentionRule`.
pub type RetentionRule = Rule;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Trigger {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub settings: serde_json::Map<String, Value>,
    #[serde(default)]
    pub references: serde_json::Map<String, Value>,
}

impl Trigger {
    /// The schedule's cron, when one is set.
    pub fn cron(&self) -> Option<&str> {
        self.settings.get("cron").and_then(Value::as_str).map(str::trim).filter(|c| !c.is_empty())
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Scope {
    #[serde(default)]
    pub level: String,
    #[serde(default, rename = "ref")]
    pub reference: i64,
}

/// Harbor's `RetentionPolicy`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RetentionPolicy {
    #[serde(default)]
    pub id: i64,
    #[serde(default)]
    pub algorithm: String,
    #[serde(default)]
    pub rules: Vec<RetentionRule>,
    #[serde(default)]
    pub trigger: Trigger,
    #[serde(default)]
    pub scope: Scope,
}

/// A stored policy with the name of its project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Stored {
    policy: RetentionPolicy,
    project: String,
}

fn int_param(rule: &RetentionRule, name: &str) -> Option<i64> {
    match rule.params.get(name)? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

impl Rule {
    /// Checks a rule as given to the retention API.
    fn check_retention(&mut self) -> ServiceResult<()> {
        if self.action.is_empty() {
            "retain".clone_into(&mut self.action);
        }
        if self.action != "retain" {
            return Err(ServiceError::Invalid(format!("unsupported rule action {:?}", self.action)));
        }
        let Some((_, param)) = TEMPLATES.iter().find(|(t, _)| *t == self.template) else {
            return Err(ServiceError::Invalid(format!("unsupported rule template {:?}", self.template)));
        };
        if let Some(p) = param
            && int_param(self, p).is_none_or(|v| v < 0)
        {
            return Err(ServiceError::Invalid(format!("rule template {} needs a number {p} ≥ 0", self.template)));
        }
        self.check_selectors()
    }

    /// Whether the tag selector picks an artifact with `tags`.
    fn picks(&self, tags: &[String]) -> bool {
        let Some(sel) = self.tag_selectors.first() else { return false };
        if tags.is_empty() {
            return untagged_picked(sel);
        }
        let excludes = sel.decoration == "excludes";
        // `matches`: any tag matches; `excludes`: any tag does not match.
        tags.iter().any(|t| super::selectors::matches(&sel.pattern, t) != excludes)
    }

    /// The artifacts (indexes into `all`) this rule keeps of those it picks.
    fn keeps(&self, all: &[Candidate], now: i64) -> Vec<usize> {
        let mut picked: Vec<usize> = (0..all.len()).filter(|&i| self.picks(&all[i].tags)).collect();
        let n = |p: &str| int_param(self, p).unwrap_or(0).max(0);
        let within = |t: i64, days: i64| t > 0 && t >= now - days.saturating_mul(86_400_000);
        match self.template.as_str() {
            "latestPushedK" => {
                picked.sort_by_key(|&i| std::cmp::Reverse(all[i].pushed));
                picked.truncate(usize::try_from(n("latestPushedK")).unwrap_or(usize::MAX));
            }
            "latestPulledN" => {
                picked.sort_by_key(|&i| std::cmp::Reverse(all[i].pulled));
                picked.truncate(usize::try_from(n("latestPulledN")).unwrap_or(usize::MAX));
            }
            "nDaysSinceLastPush" => picked.retain(|&i| within(all[i].pushed, n("nDaysSinceLastPush"))),
            "nDaysSinceLastPull" => picked.retain(|&i| within(all[i].pulled, n("nDaysSinceLastPull"))),
            "always" => {}
            _ => picked.clear(),
        }
        picked
    }
}

/// Whether a tag selector picks untagged artifacts: its extras'
/// `untagged` when they say, else yes for `matches` and no for `excludes`
/// (Harbor's defaults).
fn untagged_picked(sel: &Selector) -> bool {
    #[derive(Deserialize)]
    struct Extras {
        untagged: bool,
    }
    match serde_json::from_str::<Extras>(&sel.extras) {
        Ok(e) => e.untagged,
        Err(_) => sel.decoration != "excludes",
    }
}

/// An artifact of a repository, as retention weighs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub digest: String,
    pub tags: Vec<String>,
    /// Unix milliseconds (0: never).
    pub pushed: i64,
    pub pulled: i64,
}

/// What a run does with an artifact (Harbor's log marks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Retain,
    Delete,
    /// Not retained, but an immutable tag protects it.
    Immutable,
}

impl Verdict {
    pub fn mark(self) -> &'static str {
        match self {
            Self::Retain => "RETAIN",
            Self::Delete => "DEL",
            Self::Immutable => "IMMUTABLE",
        }
    }
}

impl RetentionPolicy {
    /// Checks a policy as given to the API, filling Harbor's defaults.
    fn check(&mut self) -> ServiceResult<()> {
        if self.algorithm.is_empty() {
            "or".clone_into(&mut self.algorithm);
        }
        if self.algorithm != "or" {
            return Err(ServiceError::Invalid(format!("unsupported algorithm {:?}", self.algorithm)));
        }
        if self.rules.len() > MAX_RULES {
            return Err(ServiceError::Invalid(format!("only {MAX_RULES} rules are allowed at most")));
        }
        if self.scope.level != "project" {
            return Err(ServiceError::Invalid(format!("scope {:?} is not supported", self.scope.level)));
        }
        for (n, rule) in self.rules.iter_mut().enumerate() {
            rule.check_retention()?;
            rule.id = i64::try_from(n).unwrap_or(0) + 1;
        }
        for (n, rule) in self.rules.iter().enumerate() {
            let same =
                |r: &RetentionRule| RetentionRule { id: 0, ..r.clone() } == RetentionRule { id: 0, ..rule.clone() };
            if let Some(m) = self.rules[..n].iter().position(same) {
                return Err(ServiceError::Conflict(format!("rule {n} is conflict with rule {m}")));
            }
        }
        if self.trigger.kind.is_empty() {
            "Schedule".clone_into(&mut self.trigger.kind);
        }
        if let Some(cron) = self.trigger.cron() {
            crate::jobs::schedule::parse(cron)?;
        }
        Ok(())
    }

    /// Whether any rule applies to `repository` (the name without the project).
    pub fn scopes(&self, repository: &str) -> bool {
        self.rules.iter().any(|r| r.scopes(repository))
    }

    /// The verdict on each candidate of `repo` at `now` (Unix ms).
    pub fn decide(&self, repo: &RepoName, all: &[Candidate], immutable: &Immutability, now: i64) -> Vec<Verdict> {
        let name = repo.as_str().split_once('/').map_or(repo.as_str(), |(_, r)| r);
        let mut kept = BTreeSet::new();
        for rule in self.rules.iter().filter(|r| r.scopes(name)) {
            kept.extend(rule.keeps(all, now));
        }
        (0..all.len())
            .map(|i| {
                if kept.contains(&i) {
                    Verdict::Retain
                } else if all[i].tags.iter().any(|t| immutable.protects(repo, t)) {
                    Verdict::Immutable
                } else {
                    Verdict::Delete
                }
            })
            .collect()
    }
}

impl Registry {
    /// A policy by id, with its project's name.
    pub async fn retention(&self, id: i64) -> ServiceResult<(RetentionPolicy, String)> {
        let (pk, sk) = keys::retention(id);
        let item = self
            .meta
            .get(&pk, &sk)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("retention policy {id} not found")))?;
        let stored: Stored = from_item(item, "retention policy")?;
        Ok((stored.policy, stored.project))
    }

    /// Creates a project's policy; `Invalid` when the project has one.
    pub async fn create_retention(&self, mut policy: RetentionPolicy) -> ServiceResult<i64> {
        policy.check()?;
        let project = match self.project(&ProjectRef::Id(policy.scope.reference)).await {
            Err(ServiceError::NotFound(_)) => {
                return Err(ServiceError::Invalid(format!("invalid Project id {}", policy.scope.reference)));
            }
            other => other?,
        };
        if let Some(old) = project.metadata.get("retention_id").filter(|v| !v.is_empty()) {
            // A policy deleted by hand leaves a dangling id: that one is free.
            if let Ok(old) = old.parse::<i64>()
                && self.retention(old).await.is_ok()
            {
                return Err(ServiceError::Invalid(format!(
                    "project {} already has retention policy {old}",
                    project.project_id
                )));
            }
        }
        policy.id = new_id();
        let (pk, sk) = keys::retention(policy.id);
        let stored = Stored { policy: policy.clone(), project: project.name.clone() };
        self.meta.put(to_item(pk, sk, &stored, "retention policy")?, Condition::NotExists).await?;
        self.set_project_metadata(&project.name, "retention_id", Some(&policy.id.to_string())).await?;
        self.schedule_retention(&policy).await?;
        Ok(policy.id)
    }

    pub async fn update_retention(&self, id: i64, mut policy: RetentionPolicy) -> ServiceResult<()> {
        let (old, project) = self.retention(id).await?;
        policy.check()?;
        policy.id = id;
        // A policy stays with its project.
        policy.scope = old.scope;
        let (pk, sk) = keys::retention(id);
        let stored = Stored { policy: policy.clone(), project };
        match self.meta.put(to_item(pk, sk, &stored, "retention policy")?, Condition::Exists).await {
            Err(e) if e.is(ErrorKind::ConditionFailed) => {
                return Err(ServiceError::NotFound(format!("retention policy {id} not found")));
            }
            other => other?,
        }
        self.schedule_retention(&policy).await
    }

    pub async fn delete_retention(&self, id: i64) -> ServiceResult<()> {
        let (_, project) = self.retention(id).await?;
        let (pk, sk) = keys::retention(id);
        self.meta.delete(&pk, &sk, Condition::Always).await?;
        self.set_schedule(RETENTION, id, None, Value::Null).await?;
        match self.set_project_metadata(&project, "retention_id", None).await {
            // The project went first.
            Err(ServiceError::NotFound(_)) => Ok(()),
            other => other,
        }
    }

    /// Sets (or removes) the schedule that fires a policy's runs.
    async fn schedule_retention(&self, policy: &RetentionPolicy) -> ServiceResult<()> {
        let payload = crate::jobs::retention::plan_payload(policy.id, false);
        match policy.trigger.cron() {
            Some(cron) => self.set_schedule(RETENTION, policy.id, Some(("Custom", cron)), payload).await,
            None => self.set_schedule(RETENTION, policy.id, None, payload).await,
        }
    }

    /// The artifacts of a repository as retention candidates: the
    /// top-level ones (an index's children go with it) with their tags.
    pub async fn retention_candidates(&self, repo: &RepoName) -> ServiceResult<Vec<Candidate>> {
        let partition = keys::repo_partition(repo);
        let query = crate::meta::Query::table(&partition, keys::ARTIFACT_PREFIX);
        let mut records = Vec::new();
        for item in self.meta.query_all(query).await? {
            let Some(digest) = item.sk.strip_prefix(keys::ARTIFACT_PREFIX).map(str::to_owned) else { continue };
            let record: super::manifests::ArtifactRecord = from_item(item, "artifact")?;
            records.push((digest, record));
        }
        // An index's children go with it. A record too big to list them
        // is read from its manifest.
        let mut children: BTreeSet<String> = BTreeSet::new();
        for (digest, record) in &records {
            children.extend(record.manifests.iter().cloned());
            if record.in_body
                && let Ok(d) = digest.parse::<crate::oci::Digest>()
            {
                let m = self.get_manifest(repo, &crate::oci::Reference::Digest(d), true).await?;
                if let Ok(parsed) = crate::oci::Manifest::parse(Some(&m.media_type), &m.body) {
                    children.extend(parsed.child_manifests().iter().map(|c| c.digest.to_string()));
                }
            }
        }
        let mut out = Vec::new();
        for (digest, record) in &records {
            if children.contains(digest) {
                continue;
            }
            let Ok(d) = digest.parse() else { continue };
            let mut tags = self.artifact_tag_names(repo, &d).await?;
            tags.sort();
            let pushed = if record.pushed_at_ms > 0 { record.pushed_at_ms } else { record.pushed_at * 1000 };
            out.push(Candidate { digest: digest.clone(), tags, pushed, pulled: record.pull_time * 1000 });
        }
        out.sort_by(|a, b| b.pushed.cmp(&a.pushed).then_with(|| a.digest.cmp(&b.digest)));
        Ok(out)
    }

    /// Up to `limit` of a project's repositories (full names) after the
    /// sort key `after`, and the sort key to resume after.
    pub async fn repository_page(
        &self,
        project: &str,
        after: Option<&str>,
        limit: usize,
    ) -> ServiceResult<(Vec<String>, Option<String>)> {
        let (pk, _) = keys::project(project);
        let mut query = crate::meta::Query::table(pk, keys::REPOSITORY_PREFIX).limit(limit).keys_only();
        query.start_after = after.map(str::to_owned);
        let page = self.meta.query(query).await?;
        let last = page.items.last().map(|i| i.sk.clone());
        let names = page.items.iter().filter_map(|i| keys::repository_name(&i.sk)).map(str::to_owned).collect();
        Ok((names, last))
    }

    /// Sets or removes a project's `retention_id` (berth's to write: the
    /// metadata API does not take it, as Harbor's does not).
    async fn set_project_metadata(&self, project: &str, key: &str, value: Option<&str>) -> ServiceResult<()> {
        let r = ProjectRef::Name(project.to_owned());
        self.change_project(&r, |p| match value {
            Some(v) => {
                p.metadata.insert(key.to_owned(), v.to_owned());
            }
            None => {
                p.metadata.remove(key);
            }
        })
        .await
        .map(drop)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeMap;

    use super::*;

    fn rule(template: &str, param: Option<i64>, repo: &str, tag: &str, extras: &str) -> RetentionRule {
        let sel = |decoration: &str, pattern: &str, extras: &str| Selector {
            kind: "doublestar".into(),
            decoration: decoration.into(),
            pattern: pattern.into(),
            extras: extras.into(),
        };
        let mut params = serde_json::Map::new();
        if let Some(p) = param {
            params.insert(template.to_owned(), p.into());
        }
        RetentionRule {
            template: template.into(),
            params,
            tag_selectors: vec![sel("matches", tag, extras)],
            scope_selectors: BTreeMap::from([("repository".to_owned(), vec![sel("repoMatches", repo, "")])]),
            ..RetentionRule::default()
        }
    }

    fn policy(rules: Vec<RetentionRule>) -> RetentionPolicy {
        let mut p =
            RetentionPolicy { rules, scope: Scope { level: "project".into(), reference: 1 }, ..Default::default() };
        p.check().unwrap();
        p
    }

    fn cand(digest: &str, tags: &[&str], pushed: i64, pulled: i64) -> Candidate {
        Candidate { digest: digest.into(), tags: tags.iter().map(|t| (*t).to_owned()).collect(), pushed, pulled }
    }

    #[test]
    fn the_three_latest_pushed_v_tags_stay() {
        let repo = RepoName::parse("p/app").unwrap();
        let all: Vec<Candidate> = (1..=10).map(|n| cand(&format!("d{n}"), &[&format!("v{n}")], n, 0)).collect();
        let p = policy(vec![rule("latestPushedK", Some(3), "**", "v*", "")]);
        let verdicts = p.decide(&repo, &all, &Immutability::default(), 100);
        let kept: Vec<&str> = all
            .iter()
            .zip(&verdicts)
            .filter(|(_, v)| **v == Verdict::Retain)
            .map(|(c, _)| c.tags[0].as_str())
            .collect();
        assert_eq!(kept, ["v8", "v9", "v10"]);
    }

    #[test]
    fn rules_or_together_and_untagged_follow_the_selector() {
        let repo = RepoName::parse("p/test1").unwrap();
        let all = vec![cand("a", &["1.0"], 1, 0), cand("b", &["2.0"], 2, 0), cand("c", &[], 3, 0)];
        // Harbor's test_retention: `latest*` always (untagged picked by
        // default) and `test3*` always: test1 keeps only its untagged one.
        let p = policy(vec![rule("always", None, "**", "latest*", ""), rule("always", None, "test3*", "**", "")]);
        let v = p.decide(&repo, &all, &Immutability::default(), 10);
        assert_eq!(v, [Verdict::Delete, Verdict::Delete, Verdict::Retain]);
        let no_untagged = policy(vec![rule("always", None, "**", "latest*", r#"{"untagged":false}"#)]);
        assert_eq!(no_untagged.decide(&repo, &all, &Immutability::default(), 10)[2], Verdict::Delete);
        // Days since push and pull, and the most recently pulled.
        let day = 86_400_000;
        let all = vec![cand("old", &["x"], 1, 10 * day), cand("new", &["y"], 9 * day, 2 * day)];
        let pushed = policy(vec![rule("nDaysSinceLastPush", Some(2), "**", "**", "")]);
        assert_eq!(pushed.decide(&repo, &all, &Immutability::default(), 10 * day), [Verdict::Delete, Verdict::Retain]);
        let pulled = policy(vec![rule("latestPulledN", Some(1), "**", "**", "")]);
        assert_eq!(pulled.decide(&repo, &all, &Immutability::default(), 10 * day), [Verdict::Retain, Verdict::Delete]);
        // A repository no rule scopes is left alone by the job (not here).
        assert!(!policy(vec![rule("always", None, "other", "**", "")]).scopes("test1"));
    }

    #[test]
    fn policies_are_checked() {
        let base = || RetentionPolicy { scope: Scope { level: "project".into(), reference: 1 }, ..Default::default() };
        let mut bad = RetentionPolicy { rules: vec![rule("latestPushedK", None, "**", "**", "")], ..base() };
        assert!(bad.check().is_err(), "a template without its number");
        let mut bad = RetentionPolicy { rules: vec![rule("sometimes", None, "**", "**", "")], ..base() };
        assert!(bad.check().is_err());
        let r = rule("always", None, "**", "**", "");
        let mut twice = RetentionPolicy { rules: vec![r.clone(), r], ..base() };
        assert!(matches!(twice.check(), Err(ServiceError::Conflict(_))));
        let mut many = RetentionPolicy {
            rules: (0..16).map(|n| rule("always", None, &format!("r{n}"), "**", "")).collect(),
            ..base()
        };
        assert!(many.check().is_err());
    }
}

//! Tag immutability (F7, Harbor's `/projects/{p}/immutabletagrules`).
//!
//! A project's rules (at most [`MAX_RULES`]) live in one item
//! (`P#<project>` / `IMMUTABLE`), changed with a version condition, so the
//! limit and the no-duplicates rule hold under concurrent changes and
//! every check is one read. A tag is immutable when an enabled rule's
//! repository selector selects its repository (the name without the
//! project) and its tag selector selects the tag, as Harbor decides it.
//!
//! An immutable tag can be neither moved nor deleted: not by a manifest
//! PUT (even of the same digest, as Harbor), a tag or artifact or
//! repository delete through `/v2` or the API, nor a copy onto it. Each
//! path asks [`Registry::require_mutable`] (or checks the
//! [`Immutability`] it loaded) before it writes; every refusal is
//! [`ServiceError::Immutable`], Harbor's 412.

use serde::{Deserialize, Serialize};

use super::executions::new_id;
use super::projects::ProjectRef;
use super::record::{from_item, to_item};
use super::selectors::Rule;
#[cfg(test)]
use super::selectors::Selector;
use super::{Registry, ServiceError, ServiceResult};
use crate::meta::keys;
use crate::meta::{Condition, ErrorKind, Write};
use crate::oci::RepoName;

/// Harbor's limit on a project's rules.
pub const MAX_RULES: usize = 15;

/// Harbor's `ImmutableRule`.
pub type ImmutableRule = Rule;

impl Rule {
    /// Checks a rule as given to the immutability API, filling Harbor's
    /// defaults.
    fn check_immutable(&mut self) -> ServiceResult<()> {
        if self.action.is_empty() {
            "immutable".clone_into(&mut self.action);
        }
        if self.template.is_empty() {
            "immutable_template".clone_into(&mut self.template);
        }
        if self.action != "immutable" {
            return Err(ServiceError::Invalid(format!("unsupported action {:?}", self.action)));
        }
        self.check_selectors()
    }

    /// Whether this rule, enabled, protects `tag` of `repository` (the
    /// name without the project).
    pub fn protects(&self, repository: &str, tag: &str) -> bool {
        self.scopes(repository) && self.tag_selector().is_some_and(|s| s.selects(tag))
    }

    /// What makes two rules the same rule (Harbor refuses a second one).
    fn same_selection(&self, other: &Self) -> bool {
        self.tag_selectors == other.tag_selectors && self.scope_selectors == other.scope_selectors
    }
}

/// The stored rules of a project.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct RuleSet {
    #[serde(default)]
    rules: Vec<ImmutableRule>,
    #[serde(default)]
    version: i64,
}

/// The enabled rules of one project, to check tags against.
#[derive(Debug, Clone, Default)]
pub struct Immutability {
    rules: Vec<ImmutableRule>,
}

impl Immutability {
    /// No rule protects anything.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether `tag` of `repo` is immutable.
    pub fn protects(&self, repo: &RepoName, tag: &str) -> bool {
        let name = repo.as_str().split_once('/').map_or(repo.as_str(), |(_, r)| r);
        self.rules.iter().any(|r| r.protects(name, tag))
    }
}

/// How a change would touch a protected tag (it decides Harbor's message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagChange {
    /// A manifest PUT through `/v2` onto the tag.
    Push,
    /// Moving the tag through the API (a copy).
    Update,
    Delete,
}

fn refusal(repo: &RepoName, tag: &str, change: TagChange) -> ServiceError {
    let name = repo.as_str().split_once('/').map_or(repo.as_str(), |(_, r)| r);
    ServiceError::Immutable(match change {
        TagChange::Push => format!("Failed to process request due to '{name}:{tag}' configured as immutable."),
        TagChange::Update => format!("the tag {tag} configured as immutable, cannot be updated"),
        TagChange::Delete => format!("the tag {tag} configured as immutable, cannot be deleted"),
    })
}

impl Registry {
    async fn rule_set(&self, project: &str) -> ServiceResult<RuleSet> {
        let (pk, sk) = keys::immutable_rules(project);
        Ok(self.meta.get(&pk, &sk).await?.map(|i| from_item(i, "immutable rules")).transpose()?.unwrap_or_default())
    }

    /// Applies `change` to a project's rules, atomically.
    async fn change_rules(
        &self,
        project: &str,
        change: impl Fn(&mut Vec<ImmutableRule>) -> ServiceResult<()>,
    ) -> ServiceResult<()> {
        for _ in 0..8 {
            let mut set = self.rule_set(project).await?;
            let version = set.version;
            change(&mut set.rules)?;
            set.version += 1;
            let (pk, sk) = keys::immutable_rules(project);
            let cond =
                if version == 0 { Condition::NotExists } else { Condition::equals(keys::attr::VERSION, version) };
            let item = to_item(pk, sk, &set, "immutable rules")?;
            match self.meta.transact(vec![Write::Put { item, cond }]).await {
                Ok(()) => return Ok(()),
                Err(e) if e.is(ErrorKind::ConditionFailed) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::Conflict("the rules changed meanwhile; try again".to_owned()))
    }

    /// A project's rules, by priority then creation.
    pub async fn immutable_rules(&self, project: &ProjectRef) -> ServiceResult<Vec<ImmutableRule>> {
        let project = self.project(project).await?;
        let mut rules = self.rule_set(&project.name).await?.rules;
        rules.sort_by_key(|r| (r.priority, r.id));
        Ok(rules)
    }

    pub async fn create_immutable_rule(&self, project: &ProjectRef, mut rule: ImmutableRule) -> ServiceResult<i64> {
        rule.check_immutable()?;
        let project = self.project(project).await?;
        rule.id = new_id();
        self.change_rules(&project.name, |rules| {
            if rules.len() >= MAX_RULES {
                return Err(ServiceError::Invalid(format!("a project has at most {MAX_RULES} immutability rules")));
            }
            if rules.iter().any(|r| r.same_selection(&rule)) {
                return Err(ServiceError::Conflict("an identical immutability rule exists already".to_owned()));
            }
            rules.push(rule.clone());
            Ok(())
        })
        .await?;
        Ok(rule.id)
    }

    pub async fn update_immutable_rule(
        &self,
        project: &ProjectRef,
        id: i64,
        mut rule: ImmutableRule,
    ) -> ServiceResult<()> {
        rule.check_immutable()?;
        rule.id = id;
        let project = self.project(project).await?;
        self.change_rules(&project.name, |rules| {
            if rules.iter().any(|r| r.id != id && r.same_selection(&rule)) {
                return Err(ServiceError::Conflict("an identical immutability rule exists already".to_owned()));
            }
            let slot = rules
                .iter_mut()
                .find(|r| r.id == id)
                .ok_or_else(|| ServiceError::NotFound(format!("immutability rule {id} not found")))?;
            *slot = rule.clone();
            Ok(())
        })
        .await
    }

    pub async fn delete_immutable_rule(&self, project: &ProjectRef, id: i64) -> ServiceResult<()> {
        let project = self.project(project).await?;
        self.change_rules(&project.name, |rules| {
            let before = rules.len();
            rules.retain(|r| r.id != id);
            if rules.len() == before {
                return Err(ServiceError::NotFound(format!("immutability rule {id} not found")));
            }
            Ok(())
        })
        .await
    }

    /// The enabled rules of a project (one read).
    pub async fn immutability(&self, project: &str) -> ServiceResult<Immutability> {
        let rules = self.rule_set(project).await?.rules.into_iter().filter(|r| !r.disabled).collect();
        Ok(Immutability { rules })
    }

    /// Fails with Harbor's refusal when a rule protects `tag` of `repo`.
    pub(super) async fn require_mutable(&self, repo: &RepoName, tag: &str, change: TagChange) -> ServiceResult<()> {
        self.require_mutable_all(repo, std::iter::once(tag), change).await
    }

    /// [`Self::require_mutable`] for several tags, with one read of the rules.
    pub(super) async fn require_mutable_all<'a>(
        &self,
        repo: &RepoName,
        tags: impl IntoIterator<Item = &'a str>,
        change: TagChange,
    ) -> ServiceResult<()> {
        let rules = self.immutability(repo.project()).await?;
        if rules.is_empty() {
            return Ok(());
        }
        match tags.into_iter().find(|t| rules.protects(repo, t)) {
            Some(t) => Err(refusal(repo, t, change)),
            None => Ok(()),
        }
    }

    /// Removes a deleted project's rules.
    pub(super) async fn delete_immutable_rules_of(&self, project: &str) -> ServiceResult<()> {
        let (pk, sk) = keys::immutable_rules(project);
        self.meta.delete(&pk, &sk, Condition::Always).await.map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeMap;

    use super::*;

    fn rule(repo_decoration: &str, repo: &str, tag_decoration: &str, tag: &str) -> ImmutableRule {
        let sel = |decoration: &str, pattern: &str| Selector {
            kind: "doublestar".into(),
            decoration: decoration.into(),
            pattern: pattern.into(),
            extras: String::new(),
        };
        ImmutableRule {
            tag_selectors: vec![sel(tag_decoration, tag)],
            scope_selectors: BTreeMap::from([("repository".to_owned(), vec![sel(repo_decoration, repo)])]),
            ..ImmutableRule::default()
        }
    }

    #[test]
    fn rules_select_repositories_and_tags_as_harbor() {
        let r = rule("repoMatches", "image_a", "matches", "la*");
        assert!(r.protects("image_a", "latest") && !r.protects("image_a", "1.3.2") && !r.protects("image_b", "latest"));
        let r = rule("repoExcludes", "{image_a,image_b}", "matches", "**");
        assert!(r.protects("image_c", "3.12.0") && !r.protects("image_b", "latest"));
        let r = rule("repoMatches", "**", "excludes", "v*");
        assert!(r.protects("x/y", "latest") && !r.protects("x/y", "v1"));
        let off = ImmutableRule { disabled: true, ..rule("repoMatches", "**", "matches", "**") };
        assert!(!off.protects("a", "b"));
        let imm = Immutability { rules: vec![rule("repoMatches", "team/*", "matches", "v*")] };
        let repo = RepoName::parse("proj/team/app").unwrap();
        assert!(imm.protects(&repo, "v1") && !imm.protects(&repo, "latest"));
    }

    #[test]
    fn rules_are_checked() {
        let mut ok = rule("repoMatches", "**", "matches", "**");
        ok.check_immutable().unwrap();
        assert_eq!((ok.action.as_str(), ok.template.as_str()), ("immutable", "immutable_template"));
        let mut swapped = rule("matches", "**", "repoMatches", "**");
        assert!(swapped.check_immutable().is_err());
        let mut no_tag = ImmutableRule { tag_selectors: vec![], ..rule("repoMatches", "**", "matches", "**") };
        assert!(no_tag.check_immutable().is_err());
        let mut bad = rule("repoMatches", "{a", "matches", "**");
        assert!(bad.check_immutable().is_err());
    }
}

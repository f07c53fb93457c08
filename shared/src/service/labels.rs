//! Labels: global ones (made by an administrator, usable in every
//! project) and a project's own, attached to artifacts.
//!
//! A label is a record with a name reserved in its scope and an entry in
//! its scope's list. An artifact's labels are links in its repository's
//! partition (`LB#<digest>#<label id>`), so the labels of a listing's
//! artifacts cost one query each; every link has a twin under the label
//! (`LBLU#<label id>`) so deleting the label finds what it is on. A link
//! carries the push time (ms) of the artifact it was made for: an artifact
//! deleted and pushed again starts without labels, and links its deletion
//! left behind are ignored (and overwritten, and swept when their label
//! goes).

use serde::{Deserialize, Serialize};

use crate::meta::keys::{self, Counted};
use crate::meta::{Condition, ErrorKind, Item, Query, Write, now_unix};
use crate::oci::{Digest, Reference, RepoName};

use super::manifests::ArtifactRecord;
use super::paging::{Listing, Match, PageRequest, count_write};
use super::record::{corrupt, from_item, to_item};
use super::{Registry, ServiceError, ServiceResult};

/// Harbor's scopes.
pub const GLOBAL: &str = "g";
pub const PROJECT: &str = "p";

/// The attribute of a link naming the artifact's push it was made for.
const STAMP: &str = "stamp";

/// Writes per transaction when sweeping links.
const BATCH: usize = 24;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    pub id: i64,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub color: String,
    /// [`GLOBAL`] or [`PROJECT`].
    pub scope: String,
    /// The project of a project label; 0 for a global one.
    #[serde(default)]
    pub project_id: i64,
    pub creation_time: i64,
    pub update_time: i64,
}

impl Label {
    fn project(&self) -> Option<i64> {
        (self.scope == PROJECT).then_some(self.project_id)
    }

    /// Whether an artifact of `project_id` may carry it.
    pub fn usable_in(&self, project_id: i64) -> bool {
        self.scope == GLOBAL || self.project_id == project_id
    }
}

/// What a create or an update gives.
#[derive(Debug, Clone, Default)]
pub struct LabelSpec {
    pub name: String,
    pub description: String,
    pub color: String,
}

fn validate(spec: &LabelSpec) -> ServiceResult<()> {
    let name = spec.name.trim();
    if name.is_empty() {
        return Err(ServiceError::Invalid("label name is required".to_owned()));
    }
    if name.chars().count() > 128 || spec.description.chars().count() > 1024 || spec.color.chars().count() > 32 {
        return Err(ServiceError::Invalid(
            "label name, description or color is too long (128, 1024 and 32 characters at most)".to_owned(),
        ));
    }
    Ok(())
}

fn label_items(label: &Label) -> ServiceResult<(Item, Item)> {
    let (pk, sk) = keys::label(label.id);
    let (epk, esk) = keys::label_entry(label.project(), label.id);
    Ok((to_item(pk, sk, label, "label")?, to_item(epk, esk, label, "label")?))
}

fn not_found(id: i64) -> ServiceError {
    ServiceError::NotFound(format!("label {id} not found"))
}

fn name_taken(name: &str) -> ServiceError {
    ServiceError::Conflict(format!("the label {name} exists already"))
}

/// The push (ms) an artifact record is of: what its label links carry.
pub(super) fn stamp_of(record: &ArtifactRecord) -> i64 {
    if record.pushed_at_ms > 0 { record.pushed_at_ms } else { record.pushed_at * 1000 }
}

/// A condition that holds while the artifact is still the push `record`
/// describes.
fn same_push(record: &ArtifactRecord) -> Condition {
    if record.pushed_at_ms > 0 {
        Condition::equals("pushed_at_ms", record.pushed_at_ms)
    } else {
        Condition::equals("pushed_at", record.pushed_at)
    }
}

impl Registry {
    /// Creates a label: global (`project_id: None`) or of a project.
    /// `Conflict` when its scope has one of that name.
    pub async fn create_label(&self, spec: &LabelSpec, project_id: Option<i64>) -> ServiceResult<Label> {
        validate(spec)?;
        let (cpk, csk) = keys::counters();
        let id = self.meta.add(cpk, csk, "label_id", 1, Condition::Always).await?;
        let now = now_unix();
        let label = Label {
            id,
            name: spec.name.trim().to_owned(),
            description: spec.description.clone(),
            color: spec.color.clone(),
            scope: if project_id.is_some() { PROJECT } else { GLOBAL }.to_owned(),
            project_id: project_id.unwrap_or(0),
            creation_time: now,
            update_time: now,
        };
        let (record, entry) = label_items(&label)?;
        let (npk, nsk) = keys::label_name(label.project_id, &label.name);
        let writes = vec![
            Write::Put { item: Item::new(npk, nsk).with(keys::attr::ID, id), cond: Condition::NotExists },
            Write::Put { item: record, cond: Condition::NotExists },
            Write::Put { item: entry, cond: Condition::NotExists },
            count_write(Counted::Labels(project_id), &id.to_string(), 1),
        ];
        match self.meta.transact(writes).await {
            Ok(()) => Ok(label),
            Err(e) if e.is(ErrorKind::ConditionFailed) => Err(name_taken(&label.name)),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn label(&self, id: i64) -> ServiceResult<Label> {
        let (pk, sk) = keys::label(id);
        from_item(self.meta.get(&pk, &sk).await?.ok_or_else(|| not_found(id))?, "label")
    }

    /// A page of the global labels or of a project's, by id; a `name`
    /// filter is tested on the list's entries.
    pub async fn list_labels(
        &self,
        project_id: Option<i64>,
        name: Option<&Match>,
        req: &PageRequest,
    ) -> ServiceResult<Listing<Label>> {
        let query = Query::table(keys::label_list(project_id), "");
        let keep =
            |e: &Item| name.is_none_or(|m| e.attrs.get("name").and_then(|v| v.as_str()).is_some_and(|n| m.matches(n)));
        let (entries, next, total) =
            self.page_of(query, Counted::Labels(project_id), req, name.is_some(), keep).await?;
        let items = entries.into_iter().map(|e| from_item(e, "label")).collect::<ServiceResult<Vec<_>>>()?;
        Ok(Listing { items, total, next })
    }

    /// Changes a label's name, description and color (its scope stays).
    pub async fn update_label(&self, id: i64, spec: &LabelSpec) -> ServiceResult<Label> {
        validate(spec)?;
        let old = self.label(id).await?;
        let mut label = old.clone();
        label.name = spec.name.trim().to_owned();
        label.description = spec.description.clone();
        label.color = spec.color.clone();
        label.update_time = now_unix().max(old.update_time);
        let (record, entry) = label_items(&label)?;
        let unchanged = Condition::equals(keys::attr::UPDATE_TIME, old.update_time);
        let mut writes =
            vec![Write::Put { item: record, cond: unchanged }, Write::Put { item: entry, cond: Condition::Exists }];
        if label.name != old.name {
            let (npk, nsk) = keys::label_name(label.project_id, &label.name);
            let (opk, osk) = keys::label_name(old.project_id, &old.name);
            writes.push(Write::Put { item: Item::new(npk, nsk).with(keys::attr::ID, id), cond: Condition::NotExists });
            writes.push(Write::Delete { pk: opk, sk: osk, cond: Condition::equals(keys::attr::ID, id) });
        }
        match self.meta.transact(writes).await {
            Ok(()) => Ok(label),
            Err(e) if e.is(ErrorKind::ConditionFailed) => match self.label(id).await {
                Ok(now) if now == old => Err(name_taken(&label.name)),
                Ok(_) => Err(ServiceError::Conflict(format!("label {id} changed meanwhile; try again"))),
                Err(e) => Err(e),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes a label: first from every artifact it is on, then itself.
    pub async fn delete_label(&self, id: i64) -> ServiceResult<()> {
        let label = self.label(id).await?;
        loop {
            let page = self.meta.query(Query::table(keys::label_uses(id), "").limit(BATCH / 2).keys_only()).await?;
            if page.items.is_empty() {
                break;
            }
            let mut writes = Vec::with_capacity(page.items.len() * 2);
            for u in page.items {
                let (repo, digest) = u.sk.split_once('@').ok_or_else(|| corrupt("label use"))?;
                let repo = RepoName::parse(repo).map_err(|_| corrupt("label use"))?;
                let digest: Digest = digest.parse().map_err(|_| corrupt("label use"))?;
                let (lpk, lsk) = keys::artifact_label(&repo, &digest, id);
                writes.push(Write::Delete { pk: lpk, sk: lsk, cond: Condition::Always });
                writes.push(Write::Delete { pk: u.pk, sk: u.sk, cond: Condition::Always });
            }
            self.meta.transact(writes).await?;
        }
        let (pk, sk) = keys::label(id);
        let (npk, nsk) = keys::label_name(label.project_id, &label.name);
        let (epk, esk) = keys::label_entry(label.project(), id);
        let writes = vec![
            Write::Delete { pk, sk, cond: Condition::Exists },
            Write::Delete { pk: npk, sk: nsk, cond: Condition::equals(keys::attr::ID, id) },
            Write::Delete { pk: epk, sk: esk, cond: Condition::Always },
            count_write(Counted::Labels(label.project()), &id.to_string(), -1),
        ];
        match self.meta.transact(writes).await {
            // Deleted by a concurrent request.
            Err(e) if e.is(ErrorKind::ConditionFailed) => Err(not_found(id)),
            other => other.map_err(Into::into),
        }
    }

    /// Deletes a deleted project's labels.
    pub(super) async fn delete_project_labels(&self, project_id: i64) -> ServiceResult<()> {
        loop {
            let page = self.meta.query(Query::table(keys::label_list(Some(project_id)), "").limit(100)).await?;
            if page.items.is_empty() {
                return Ok(());
            }
            for entry in page.items {
                let label: Label = from_item(entry, "label")?;
                match self.delete_label(label.id).await {
                    Ok(()) | Err(ServiceError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }

    /// Puts a label on an artifact of project `project_id`. `Conflict`
    /// when it is there already; `Invalid` for another project's label.
    pub async fn add_artifact_label(
        &self,
        repo: &RepoName,
        reference: &Reference,
        project_id: i64,
        label_id: i64,
    ) -> ServiceResult<()> {
        let label = self.label(label_id).await?;
        if !label.usable_in(project_id) {
            return Err(ServiceError::Invalid(format!("label {label_id} belongs to another project")));
        }
        let digest = self.resolve(repo, reference).await?;
        let record = self
            .artifact_record(repo, &digest)
            .await?
            .ok_or_else(|| ServiceError::ManifestUnknown(reference.to_string()))?;
        let stamp = stamp_of(&record);
        let (lpk, lsk) = keys::artifact_label(repo, &digest, label_id);
        let cond = match self.meta.get(&lpk, &lsk).await?.and_then(|i| i.i64(STAMP)) {
            Some(s) if s == stamp => {
                return Err(ServiceError::Conflict(format!("label {label_id} is already on the artifact")));
            }
            // Left by an earlier push of this digest.
            Some(old) => Condition::equals(STAMP, old),
            None => Condition::NotExists,
        };
        let (apk, ask) = keys::artifact(repo, &digest);
        let (upk, usk) = keys::label_use(label_id, repo, &digest);
        let writes = vec![
            Write::Check { pk: apk, sk: ask, cond: same_push(&record) },
            Write::Check { pk: keys::label(label_id).0, sk: keys::label(label_id).1, cond: Condition::Exists },
            Write::Put { item: Item::new(lpk, lsk).with(STAMP, stamp), cond },
            Write::Put { item: Item::new(upk, usk), cond: Condition::Always },
        ];
        match self.meta.transact(writes).await {
            Err(e) if e.is(ErrorKind::ConditionFailed) => {
                Err(ServiceError::Conflict(format!("the artifact or label {label_id} changed meanwhile; try again")))
            }
            other => other.map_err(Into::into),
        }
    }

    /// Takes a label off an artifact; `NotFound` unless it is on it.
    pub async fn remove_artifact_label(
        &self,
        repo: &RepoName,
        reference: &Reference,
        label_id: i64,
    ) -> ServiceResult<()> {
        let digest = self.resolve(repo, reference).await?;
        let record = self
            .artifact_record(repo, &digest)
            .await?
            .ok_or_else(|| ServiceError::ManifestUnknown(reference.to_string()))?;
        let missing = || ServiceError::NotFound(format!("label {label_id} is not on the artifact"));
        let stamp = stamp_of(&record);
        let (lpk, lsk) = keys::artifact_label(repo, &digest, label_id);
        if self.meta.get(&lpk, &lsk).await?.and_then(|i| i.i64(STAMP)) != Some(stamp) {
            return Err(missing());
        }
        let (upk, usk) = keys::label_use(label_id, repo, &digest);
        let writes = vec![
            Write::Delete { pk: lpk, sk: lsk, cond: Condition::equals(STAMP, stamp) },
            Write::Delete { pk: upk, sk: usk, cond: Condition::Always },
        ];
        match self.meta.transact(writes).await {
            Err(e) if e.is(ErrorKind::ConditionFailed) => Err(missing()),
            other => other.map_err(Into::into),
        }
    }

    /// The ids of the labels on an artifact (its push `stamp`), by id.
    pub async fn artifact_label_ids(&self, repo: &RepoName, digest: &Digest, stamp: i64) -> ServiceResult<Vec<i64>> {
        let prefix = keys::artifact_labels_prefix(digest);
        let links = self.meta.query_all(Query::table(keys::repo_partition(repo), prefix.as_str())).await?;
        Ok(links
            .into_iter()
            .filter(|l| l.i64(STAMP) == Some(stamp))
            .filter_map(|l| l.sk.strip_prefix(&prefix).and_then(|id| id.parse().ok()))
            .collect())
    }

    /// The labels on an artifact (its push `stamp`), by id; a label deleted
    /// meanwhile is left out.
    pub async fn artifact_labels(&self, repo: &RepoName, digest: &Digest, stamp: i64) -> ServiceResult<Vec<Label>> {
        let mut out = Vec::new();
        for id in self.artifact_label_ids(repo, digest, stamp).await? {
            match self.label(id).await {
                Ok(l) => out.push(l),
                Err(ServiceError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Removes a deleted artifact's label links (what is left if this
    /// fails is ignored, being of an older push, and swept with its label).
    pub(super) async fn sweep_artifact_labels(&self, repo: &RepoName, digest: &Digest) -> ServiceResult<()> {
        let prefix = keys::artifact_labels_prefix(digest);
        let links = self.meta.query_all(Query::table(keys::repo_partition(repo), prefix.as_str()).keys_only()).await?;
        for chunk in links.chunks(BATCH / 2) {
            let mut writes = Vec::with_capacity(chunk.len() * 2);
            for l in chunk {
                let Some(id) = l.sk.strip_prefix(&prefix).and_then(|id| id.parse::<i64>().ok()) else { continue };
                let (upk, usk) = keys::label_use(id, repo, digest);
                writes.push(Write::Delete { pk: l.pk.clone(), sk: l.sk.clone(), cond: Condition::Always });
                writes.push(Write::Delete { pk: upk, sk: usk, cond: Condition::Always });
            }
            self.meta.transact(writes).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::testkit::local_registry;

    fn spec(name: &str) -> LabelSpec {
        LabelSpec { name: name.into(), description: "d".into(), color: "#FF0000".into() }
    }

    #[tokio::test]
    async fn names_are_unique_per_scope() {
        let (_dir, reg) = local_registry().await;
        let g = reg.create_label(&spec("env"), None).await.unwrap();
        assert!(matches!(reg.create_label(&spec("env"), None).await, Err(ServiceError::Conflict(_))));
        let p = reg.create_label(&spec("env"), Some(7)).await.unwrap();
        assert_eq!((g.scope.as_str(), p.scope.as_str(), p.project_id), (GLOBAL, PROJECT, 7));
        let other = reg.create_label(&spec("other"), None).await.unwrap();
        assert!(matches!(reg.update_label(other.id, &spec("env")).await, Err(ServiceError::Conflict(_))));
        let renamed = reg.update_label(g.id, &spec("stage")).await.unwrap();
        assert_eq!(reg.label(g.id).await.unwrap(), renamed);
        // The old name is free again.
        reg.create_label(&spec("env"), None).await.unwrap();
        let all = reg.list_labels(None, None, &PageRequest::first(10)).await.unwrap();
        assert_eq!(all.total, 3);
        let fuzzy = Match::Fuzzy("TAG".into());
        let found = reg.list_labels(None, Some(&fuzzy), &PageRequest::first(10)).await.unwrap();
        assert_eq!(found.items.iter().map(|l| l.id).collect::<Vec<_>>(), vec![g.id]);
        assert_eq!(reg.list_labels(Some(7), None, &PageRequest::first(10)).await.unwrap().total, 1);
        reg.delete_label(p.id).await.unwrap();
        assert!(matches!(reg.label(p.id).await, Err(ServiceError::NotFound(_))));
        assert_eq!(reg.list_labels(Some(7), None, &PageRequest::first(10)).await.unwrap().total, 0);
        assert!(matches!(reg.create_label(&spec(" "), None).await, Err(ServiceError::Invalid(_))));
    }
}

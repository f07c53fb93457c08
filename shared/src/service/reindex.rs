//! Schema 2's data migration: the list entries, counters and tag items
//! that paged listings and one-read pulls need, rebuilt from the records a
//! schema-1 store holds. `berth migrate` runs it once before it records
//! schema 2 (the local store at its first open by this build); it is safe
//! to run again, as every item it writes is derived from the records and
//! every counter is written whole. Run it with no older berth serving the
//! store: a write made meanwhile by a schema-1 process keeps no entry.

use std::collections::BTreeMap;

use crate::meta::keys::{self, COUNTER_SHARDS, Counted};
use crate::meta::{Condition, Item, Query, Write};
use crate::oci::{Digest, RepoName, Tag};

use super::groups::Group;
use super::manifests::{ArtifactRecord, RepositoryRecord, TagEntry, TagRecord};
use super::projects::{Project, ProjectRef};
use super::record::{corrupt, from_item, to_item};
use super::robots::{Robot, RobotLevel};
use super::{Registry, ServiceResult};

/// What the migration found, for `berth migrate`'s report.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reindexed {
    pub users: u64,
    pub projects: u64,
    pub robots: u64,
    pub groups: u64,
    pub repositories: u64,
    pub artifacts: u64,
    pub tags: u64,
}

/// Counts entries of one list, per counter shard.
struct Tally<'a> {
    list: Counted<'a>,
    shards: BTreeMap<String, i64>,
}

impl<'a> Tally<'a> {
    fn new(list: Counted<'a>) -> Self {
        Self { list, shards: BTreeMap::new() }
    }

    fn add(&mut self, entry: &str) {
        let (_, shard) = keys::counter_shard(self.list, entry);
        *self.shards.entry(shard).or_default() += 1;
    }

    fn total(&self) -> u64 {
        u64::try_from(self.shards.values().sum::<i64>()).unwrap_or(0)
    }

    /// Every shard's item, with its whole count (zero for empty shards).
    fn items(&self) -> Vec<Item> {
        let pk = keys::counter(self.list);
        (0..COUNTER_SHARDS)
            .map(|s| {
                let sk = s.to_string();
                let count = self.shards.get(&sk).copied().unwrap_or(0);
                Item::new(pk.clone(), sk).with(keys::attr::COUNT, count)
            })
            .collect()
    }
}

impl Registry {
    /// Every item of a partition (by sort-key prefix), a page at a time.
    async fn each_item(&self, pk: &str, prefix: &str, mut f: impl FnMut(Item)) -> ServiceResult<()> {
        let mut query = Query::table(pk, prefix);
        loop {
            let page = self.meta.query(query.clone()).await?;
            page.items.into_iter().for_each(&mut f);
            match page.next {
                Some(c) => query.cursor = Some(c),
                None => return Ok(()),
            }
        }
    }

    async fn put_all(&self, items: Vec<Item>) -> ServiceResult<()> {
        for item in items {
            self.meta.put(item, Condition::Always).await?;
        }
        Ok(())
    }

    async fn store_tally(&self, tally: &Tally<'_>) -> ServiceResult<()> {
        self.put_all(tally.items()).await
    }

    /// Rebuilds schema 2's entries, counters and tag items (see the module
    /// documentation).
    pub async fn reindex(&self) -> ServiceResult<Reindexed> {
        let mut report = Reindexed::default();
        self.reindex_users(&mut report).await?;
        self.reindex_groups(&mut report).await?;
        self.reindex_robots(&mut report).await?;
        self.reindex_projects(&mut report).await?;
        self.reindex_repositories(&mut report).await?;
        Ok(report)
    }

    async fn reindex_users(&self, report: &mut Reindexed) -> ServiceResult<()> {
        let mut names = Vec::new();
        self.each_item(keys::USERS, "", |e| names.push(e.sk)).await?;
        let mut tally = Tally::new(Counted::Users);
        for name in names {
            let Some(user) = self.user_by_name(&name).await? else { continue };
            self.meta.put(super::users::user_entry(&user), Condition::Always).await?;
            tally.add(&user.username);
        }
        report.users = tally.total();
        self.store_tally(&tally).await
    }

    async fn reindex_groups(&self, report: &mut Reindexed) -> ServiceResult<()> {
        let mut ids = Vec::new();
        self.each_item(keys::GROUPS, "", |e| ids.extend(e.i64(keys::attr::ID))).await?;
        let mut tally = Tally::new(Counted::Groups);
        for id in ids {
            let (pk, sk) = keys::group(id);
            let Some(item) = self.meta.get(&pk, &sk).await? else { continue };
            let group: Group = from_item(item, "group")?;
            let (epk, esk) = keys::group_entry(id);
            self.meta.put(to_item(epk, esk, &group, "group")?, Condition::Always).await?;
            tally.add(&id.to_string());
        }
        report.groups = tally.total();
        self.store_tally(&tally).await
    }

    /// Robots move from schema 1's one list to the list of their level.
    async fn reindex_robots(&self, report: &mut Reindexed) -> ServiceResult<()> {
        const OLD_LIST: &str = "ROBOTS";
        let mut names = Vec::new();
        self.each_item(OLD_LIST, "", |e| names.push(e.sk)).await?;
        let mut system = Tally::new(Counted::SystemRobots);
        let mut by_project: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        for name in &names {
            let (pk, sk) = keys::robot(name);
            if let Some(item) = self.meta.get(&pk, &sk).await? {
                let robot: Robot = from_item(item, "robot")?;
                let project = (robot.level == RobotLevel::Project).then_some(robot.project_id);
                let (epk, esk) = keys::robot_entry(project, &robot.name);
                self.meta.put(Item::new(epk, esk).with(keys::attr::ID, robot.id), Condition::Always).await?;
                match project {
                    None => system.add(&robot.name),
                    Some(id) => by_project.entry(id).or_default().push(robot.name.clone()),
                }
            }
            self.meta.delete(OLD_LIST, name, Condition::Always).await?;
        }
        self.store_tally(&system).await?;
        report.robots = system.total();
        for (id, names) in &by_project {
            let mut tally = Tally::new(Counted::ProjectRobots(*id));
            names.iter().for_each(|n| tally.add(n));
            self.store_tally(&tally).await?;
            report.robots += tally.total();
        }
        Ok(())
    }

    async fn reindex_projects(&self, report: &mut Reindexed) -> ServiceResult<()> {
        let mut names = Vec::new();
        self.each_item(keys::PROJECTS, "", |e| names.push(e.sk)).await?;
        let (mut all, mut public) = (Tally::new(Counted::Projects), Tally::new(Counted::PublicProjects));
        for name in names {
            let project: Project = match self.project(&ProjectRef::Name(name)).await {
                Ok(p) => p,
                Err(super::ServiceError::NotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            let entry = |(pk, sk): (String, String)| super::projects::entry_item(pk, sk, &project);
            self.meta.put(entry(keys::project_entry(&project.name)), Condition::Always).await?;
            all.add(&project.name);
            let (ppk, psk) = keys::public_project_entry(&project.name);
            if project.public() {
                self.meta.put(entry((ppk, psk)), Condition::Always).await?;
                public.add(&project.name);
            } else {
                self.meta.delete(&ppk, &psk, Condition::Always).await?;
            }
            let (pk, _) = keys::project(&project.name);
            let mut members = Tally::new(Counted::Members(project.project_id));
            let mut repositories = Tally::new(Counted::Repositories(&project.name));
            self.each_item(&pk, "", |i| {
                if i.sk.starts_with(keys::MEMBER_PREFIX) {
                    if let Ok(m) = super::members::member_of(i)
                        && m.project_id == project.project_id
                    {
                        members.add(&super::members::member_key(&m));
                    }
                } else if let Some(repo) = keys::repository_name(&i.sk) {
                    repositories.add(repo);
                }
            })
            .await?;
            self.store_tally(&members).await?;
            self.store_tally(&repositories).await?;
        }
        report.projects = all.total();
        self.store_tally(&all).await?;
        self.store_tally(&public).await
    }

    async fn reindex_repositories(&self, report: &mut Reindexed) -> ServiceResult<()> {
        let mut names = Vec::new();
        self.each_item(keys::CATALOG, "", |e| names.push(e.sk)).await?;
        let mut catalog = Tally::new(Counted::Catalog);
        for name in names {
            let Ok(repo) = RepoName::parse(&name) else { continue };
            let (pk, sk) = keys::repository(&repo);
            let Some(item) = self.meta.get(&pk, &sk).await? else { continue };
            let _: RepositoryRecord = from_item(item, "repository")?;
            catalog.add(repo.as_str());
            self.reindex_artifacts(&repo, report).await?;
        }
        report.repositories = catalog.total();
        self.store_tally(&catalog).await
    }

    /// One repository's artifacts: push-order entries and their count, and
    /// each tag with its manifest, its entry and its artifact's count.
    async fn reindex_artifacts(&self, repo: &RepoName, report: &mut Reindexed) -> ServiceResult<()> {
        let partition = keys::repo_partition(repo);
        let mut artifacts: BTreeMap<String, ArtifactRecord> = BTreeMap::new();
        let mut tags: Vec<(String, TagRecord)> = Vec::new();
        let mut broken = None;
        self.each_item(&partition, "", |i| {
            if let Some(digest) = keys::artifact_digest(&i.sk) {
                match from_item::<ArtifactRecord>(i, "artifact") {
                    Ok(a) => {
                        artifacts.insert(digest.to_string(), a);
                    }
                    Err(e) => broken = Some(e),
                }
            } else if let Some(name) = keys::tag_name(&i.sk).map(str::to_owned) {
                match from_item::<TagRecord>(i, "tag") {
                    Ok(t) => tags.push((name, t)),
                    Err(e) => broken = Some(e),
                }
            }
        })
        .await?;
        if let Some(e) = broken {
            return Err(e);
        }
        let mut counted = Tally::new(Counted::Artifacts(repo));
        let mut tag_counts: BTreeMap<String, i64> = BTreeMap::new();
        for (name, record) in tags {
            let Some(artifact) = artifacts.get(&record.digest) else { continue };
            let digest: Digest = record.digest.parse().map_err(|_| corrupt("tag"))?;
            let tag = Tag::parse(&name).map_err(|_| corrupt("tag"))?;
            let full = TagRecord::of(&digest, artifact, record.pushed_at);
            let (pk, sk) = keys::tag(repo, &tag);
            let mut item = to_item(pk, sk, &full, "tag")?;
            if crate::meta::validate_item(&item).is_err() {
                item.attrs.remove("body");
            }
            let (epk, esk) = keys::artifact_tag(repo, &digest, tag.as_str());
            let entry = to_item(epk, esk, &TagEntry { pushed_at: record.pushed_at }, "tag entry")?;
            self.meta
                .transact(vec![
                    Write::Put { item, cond: Condition::Always },
                    Write::Put { item: entry, cond: Condition::Always },
                ])
                .await?;
            *tag_counts.entry(record.digest.clone()).or_default() += 1;
            report.tags += 1;
        }
        for (digest, mut artifact) in artifacts {
            let d: Digest = digest.parse().map_err(|_| corrupt("artifact"))?;
            artifact.tag_count = tag_counts.get(&digest).copied().unwrap_or(0);
            let (pk, sk) = keys::artifact(repo, &d);
            let (npk, nsk) = keys::artifact_pushed(repo, artifact.pushed_at, &d);
            let writes = vec![
                Write::Put { item: to_item(pk, sk, &artifact, "artifact")?, cond: Condition::Always },
                Write::Put { item: Item::new(npk, nsk), cond: Condition::Always },
            ];
            self.meta.transact(writes).await?;
            counted.add(&digest);
            report.artifacts += 1;
        }
        self.store_tally(&counted).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::service::paging::PageRequest;
    use crate::service::projects::{NewProject, Owner, ProjectFilter, ProjectScope};

    #[tokio::test]
    async fn a_schema_1_store_gets_its_entries_and_counts() {
        let (_dir, reg) = crate::testkit::local_registry().await;
        reg.ensure_admin(Some("Harbor12345")).await.unwrap();
        let owner = Owner { id: 1, name: "admin".into(), sysadmin: true };
        for (name, public) in [("a", true), ("b", false)] {
            let new = NewProject { name: name.into(), public: Some(public), ..NewProject::default() };
            reg.create_project(new, &owner).await.unwrap();
        }
        // What schema 1 lacks: the counters, and the public list.
        let meta = reg.meta_for_tests();
        for pk in [keys::counter(Counted::Projects), keys::counter(Counted::PublicProjects)] {
            for shard in 0..COUNTER_SHARDS {
                meta.delete(&pk, &shard.to_string(), Condition::Always).await.unwrap();
            }
        }
        meta.delete(keys::PUBLIC_PROJECTS, "a", Condition::Always).await.unwrap();
        let all = reg.list_projects(&ProjectScope::All, &ProjectFilter::default(), &PageRequest::first(10)).await;
        assert_eq!(all.unwrap().total, 0, "the counters are gone");

        let report = reg.reindex().await.unwrap();
        assert_eq!((report.projects, report.users), (2, 1), "a, b; admin");
        let all = reg.list_projects(&ProjectScope::All, &ProjectFilter::default(), &PageRequest::first(10)).await;
        assert_eq!(all.unwrap().total, 2);
        let public = ProjectFilter { public: Some(true), ..ProjectFilter::default() };
        let listed = reg.list_projects(&ProjectScope::All, &public, &PageRequest::first(10)).await.unwrap();
        assert_eq!((listed.total, listed.items[0].name.as_str()), (1, "a"));
        assert_eq!(reg.reindex().await.unwrap(), report, "again, the same");
        let all = reg.list_projects(&ProjectScope::All, &ProjectFilter::default(), &PageRequest::first(10)).await;
        assert_eq!(all.unwrap().total, 2, "counts are written whole, not added");
    }

    #[tokio::test]
    async fn schema_1_tags_get_their_manifest_and_entries() {
        use crate::oci::{Reference, Tag};
        use crate::service::artifacts::ArtifactFilter;
        let (_dir, reg) = crate::testkit::local_registry().await;
        let owner = Owner { id: 1, name: "admin".into(), sysadmin: true };
        reg.create_project(NewProject { name: "p".into(), ..NewProject::default() }, &owner).await.unwrap();
        let repo = RepoName::parse("p/app").unwrap();
        let manifest = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "size": 2},
            "layers": []});
        let bytes = bytes::Bytes::from(serde_json::to_vec(&manifest).unwrap());
        let tag = Tag::parse("v1").unwrap();
        let config = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
        let info = super::super::blobs::BlobInfo { digest: config.parse().unwrap(), size: 2 };
        reg.blobs.put_bytes(&crate::blob::keys::blob(&info.digest), bytes::Bytes::from_static(b"{}")).await.unwrap();
        reg.link_blob(&repo, &info).await.unwrap();
        let out = reg.put_manifest(&repo, &Reference::Tag(tag.clone()), None, bytes.clone()).await.unwrap();

        // Back to schema 1's shape: a tag of digest and time, no entries,
        // no counts.
        let meta = reg.meta_for_tests();
        let (tpk, tsk) = keys::tag(&repo, &tag);
        let old = Item::new(tpk, tsk).with("digest", out.digest.to_string()).with("pushed_at", 7);
        meta.put(old, Condition::Always).await.unwrap();
        let partition = keys::repo_partition(&repo);
        for prefix in [keys::PUSHED_PREFIX.to_owned(), keys::artifact_tags_prefix(&out.digest)] {
            for i in meta.query_all(Query::table(&partition, prefix.as_str())).await.unwrap() {
                meta.delete(&i.pk, &i.sk, Condition::Always).await.unwrap();
            }
        }
        let cpk = keys::counter(Counted::Artifacts(&repo));
        for shard in 0..COUNTER_SHARDS {
            meta.delete(&cpk, &shard.to_string(), Condition::Always).await.unwrap();
        }
        assert_eq!(
            reg.list_artifacts(&repo, &ArtifactFilter::default(), &PageRequest::first(10)).await.unwrap().total,
            0
        );

        let report = reg.reindex().await.unwrap();
        assert_eq!((report.repositories, report.artifacts, report.tags), (1, 1, 1));
        let listed = reg.list_artifacts(&repo, &ArtifactFilter::default(), &PageRequest::first(10)).await.unwrap();
        assert_eq!((listed.total, listed.items[0].tag_count), (1, 1));
        assert_eq!(listed.items[0].tags[0].push_time, 7);
        let got = reg.get_manifest(&repo, &Reference::Tag(tag.clone()), true).await.unwrap();
        assert_eq!(got.body, bytes, "the tag carries the manifest now");
        let stored: TagRecord =
            from_item(meta.get(&keys::tag(&repo, &tag).0, &keys::tag(&repo, &tag).1).await.unwrap().unwrap(), "tag")
                .unwrap();
        assert!(stored.body.is_some() && stored.media_type.is_some());
        reg.delete_manifest(&repo, &Reference::Digest(out.digest)).await.unwrap();
        assert!(reg.tag_record(&repo, &tag).await.unwrap().is_none(), "deleted with its tag, as counted");
    }
}

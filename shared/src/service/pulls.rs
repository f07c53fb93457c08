//! Pull statistics: Harbor's artifact `pull_time` and repository
//! `pull_count`, applied from batches of pull events by the events
//! consumer — never written on the pull path, and one update per artifact
//! (and per repository) per batch however often it was pulled.

use std::collections::BTreeMap;

use super::{Registry, ServiceResult};
use crate::events::Event;
use crate::meta::keys;
use crate::meta::{Attrs, Condition, ErrorKind, Item, Write, now_unix};
use crate::oci::{Digest, RepoName};

/// How long a batch is remembered as counted (longer than any queue keeps
/// a message, SQS's 14 days).
const BATCH_MEMORY_SECS: i64 = 15 * 24 * 3600;
/// Updates per transaction, beside the batch's marker.
const UPDATES_PER_TRANSACTION: usize = 24;

impl Registry {
    /// Counts the pulls of batch `batch_id` (once, however often the batch
    /// comes). Pulls of artifacts or repositories deleted meanwhile are
    /// skipped. Settings `pull_time_update_disable` and
    /// `pull_count_update_disable` turn either half off.
    pub async fn count_pulls(&self, batch_id: &str, pulls: &[Event]) -> ServiceResult<()> {
        let settings = self.settings().await?;
        let mut times: BTreeMap<(String, String), i64> = BTreeMap::new();
        let mut counts: BTreeMap<String, i64> = BTreeMap::new();
        for p in pulls {
            let (Some(repo), Some(digest)) = (&p.repository, &p.digest) else { continue };
            let secs = p.at_ms / 1000;
            let t = times.entry((repo.clone(), digest.clone())).or_insert(secs);
            *t = (*t).max(secs);
            *counts.entry(repo.clone()).or_insert(0) += i64::try_from(p.times).unwrap_or(i64::MAX);
        }
        let mut updates = Vec::new();
        if !settings.pull_time_update_disable {
            for ((repo, digest), secs) in times {
                let (Ok(repo), Ok(digest)) = (RepoName::parse(&repo), digest.parse::<Digest>()) else { continue };
                let (pk, sk) = keys::artifact(&repo, &digest);
                let attrs = Attrs::from_iter([(keys::attr::PULL_TIME.to_owned(), secs.into())]);
                updates.push(Write::Set { pk, sk, attrs, cond: Condition::Exists });
            }
        }
        if !settings.pull_count_update_disable {
            for (repo, n) in counts {
                let Ok(repo) = RepoName::parse(&repo) else { continue };
                let (pk, sk) = keys::repository(&repo);
                let attr = keys::attr::PULL_COUNT.to_owned();
                updates.push(Write::Add { pk, sk, attr, delta: n, cond: Condition::Exists });
            }
        }
        for (n, chunk) in updates.chunks(UPDATES_PER_TRANSACTION).enumerate() {
            self.apply_pull_chunk(&format!("{batch_id}#{n}"), chunk.to_vec()).await?;
        }
        Ok(())
    }

    async fn apply_pull_chunk(&self, marker_id: &str, updates: Vec<Write>) -> ServiceResult<()> {
        let (mpk, msk) = keys::pull_batch(marker_id);
        let marker = Item::new(&mpk, &msk).with(keys::attr::EXPIRES_AT, now_unix() + BATCH_MEMORY_SECS);
        let mut writes = vec![Write::Put { item: marker.clone(), cond: Condition::NotExists }];
        writes.extend(updates.iter().cloned());
        match self.meta.transact(writes).await {
            Ok(()) => return Ok(()),
            Err(e) if !e.is(ErrorKind::ConditionFailed) => return Err(e.into()),
            Err(_) => {}
        }
        // Counted already, or something pulled was deleted meanwhile: keep
        // the updates whose item is still there.
        if self.meta.get(&mpk, &msk).await?.is_some() {
            return Ok(());
        }
        let mut kept = vec![Write::Put { item: marker, cond: Condition::NotExists }];
        for w in updates {
            let (pk, sk) = w.key();
            if self.meta.get(pk, sk).await?.is_some() {
                kept.push(w);
            }
        }
        match self.meta.transact(kept).await {
            // Lost to a repeat of this batch, or another deletion: the
            // statistics are best effort past this point.
            Err(e) if !e.is(ErrorKind::ConditionFailed) => Err(e.into()),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::events::{Actor, EventKind};
    use crate::oci::{Reference, Tag};

    #[tokio::test]
    async fn pulls_count_once_per_batch() {
        let (_dir, reg) = crate::testkit::local_registry().await;
        reg.bootstrap(Some("Harbor12345")).await.unwrap();
        let repo = RepoName::parse("library/app").unwrap();
        let digest = crate::testkit::push_small_image(&reg, &repo, &Tag::parse("v1").unwrap()).await;
        let pull = |at_ms| {
            let mut e = Event::artifact(EventKind::PullArtifact, &Actor::system(), repo.as_str(), &digest.to_string());
            e.at_ms = at_ms;
            e
        };
        let batch = [pull(5_000_000), pull(9_000_000), pull(7_000_000)];
        reg.count_pulls("b1", &batch).await.unwrap();
        reg.count_pulls("b1", &batch).await.unwrap();
        assert_eq!(reg.repository(&repo).await.unwrap().pull_count, 3);
        let a = reg.artifact(&repo, &Reference::Digest(digest.clone())).await.unwrap();
        assert_eq!(a.pull_time, 9_000);
        // A batch naming a deleted artifact still counts the rest.
        let mut gone = pull(10_000_000);
        gone.repository = Some("library/gone".to_owned());
        reg.count_pulls("b2", &[gone, pull(11_000_000)]).await.unwrap();
        assert_eq!(reg.repository(&repo).await.unwrap().pull_count, 4);
    }
}

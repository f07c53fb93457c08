//! Every key of the metadata table, built here and nowhere else.
//!
//! ```text
//! item                          pk                       sk
//! schema version                SYS                      SCHEMA
//! user                          USR#<name>               META
//! id counters                   SYS                      COUNTERS
//! token signing key             SYS                      TOKEN_KEY
//! project                       P#<project>              META
//! project list entry            PROJECTS                 <project>
//! project id → name             PID#<id>                 META
//! repository                    P#<project>              R#<repository>
//! catalog entry                 CATALOG                  <repository>
//! tag                           R#<repository>           T#<tag>
//! manifest (artifact)           R#<repository>           A#<digest>
//! blob link (repo may read)     R#<repository>           L#<digest>
//! referrer                      R#<repository>           F#<subject digest>#<digest>
//! blob                          B#<digest>               META
//! upload session                U#<upload id>            META
//! ```
//! A repository's tags, manifests, links and referrers share one partition,
//! so each listing is one query by sort-key prefix. The catalog is its own
//! partition, written only when a repository is created.

use crate::oci::{Digest, RepoName, Tag};

pub type Key = (String, String);

/// The item recording which schema version `berth migrate` has applied.
pub fn schema_version() -> (&'static str, &'static str) {
    ("SYS", "SCHEMA")
}

/// A user account.
pub fn user(name: &str) -> (String, &'static str) {
    (format!("USR#{name}"), "META")
}

/// The generated registry-token signing key (when none is configured).
pub fn token_key() -> (&'static str, &'static str) {
    ("SYS", "TOKEN_KEY")
}

/// The item holding the registry's id counters (one attribute per kind).
pub fn counters() -> (&'static str, &'static str) {
    ("SYS", "COUNTERS")
}

pub fn project(name: &str) -> Key {
    (format!("P#{name}"), "META".to_owned())
}

pub const PROJECTS: &str = "PROJECTS";

pub fn project_entry(name: &str) -> Key {
    (PROJECTS.to_owned(), name.to_owned())
}

pub fn project_id(id: i64) -> Key {
    (format!("PID#{id}"), "META".to_owned())
}

/// The sort-key prefix of a project's repositories in its partition.
pub const REPOSITORY_PREFIX: &str = "R#";

pub fn repository(repo: &RepoName) -> Key {
    (format!("P#{}", repo.project()), format!("R#{repo}"))
}

pub const CATALOG: &str = "CATALOG";

pub fn catalog_entry(repo: &RepoName) -> Key {
    (CATALOG.to_owned(), repo.to_string())
}

/// The partition holding a repository's tags, manifests, links and referrers.
pub fn repo_partition(repo: &RepoName) -> String {
    format!("R#{repo}")
}

pub const TAG_PREFIX: &str = "T#";

pub fn tag(repo: &RepoName, tag: &Tag) -> Key {
    (repo_partition(repo), format!("{TAG_PREFIX}{tag}"))
}

/// The tag name of a tag item's sort key.
pub fn tag_name(sk: &str) -> Option<&str> {
    sk.strip_prefix(TAG_PREFIX)
}

pub fn tag_sk(tag: &str) -> String {
    format!("{TAG_PREFIX}{tag}")
}

pub fn artifact(repo: &RepoName, digest: &Digest) -> Key {
    (repo_partition(repo), format!("A#{digest}"))
}

pub fn blob_link(repo: &RepoName, digest: &Digest) -> Key {
    (repo_partition(repo), format!("L#{digest}"))
}

/// The sort-key prefix of every referrer of `subject`.
pub fn referrers_prefix(subject: &Digest) -> String {
    format!("F#{subject}#")
}

pub fn referrer(repo: &RepoName, subject: &Digest, digest: &Digest) -> Key {
    (repo_partition(repo), format!("{}{digest}", referrers_prefix(subject)))
}

pub fn blob(digest: &Digest) -> Key {
    (format!("B#{digest}"), "META".to_owned())
}

pub fn upload(id: &str) -> Key {
    (format!("U#{id}"), "META".to_owned())
}

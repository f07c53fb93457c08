//! Every key of the metadata table, built here and nowhere else.
//!
//! ```text
//! item                          pk                       sk
//! schema version                SYS                      SCHEMA
//! id counters                   SYS                      COUNTERS
//! token signing key             SYS                      TOKEN_KEY
//! system settings               SYS                      CONFIG
//! user                          USR#<name>               META
//! user id → name                UID#<id>                 META
//! user list entry               USERS                    <name>
//! e-mail address → user         EMAIL#<address>          META
//! user group                    GRP#<id>                 META
//! group by its identity         GRPK#<type>#<dn or name> META
//! group list entry              GROUPS                   <id, 12 digits>
//! robot account                 ROB#<name>               META
//! robot id → name               RID#<id>                 META
//! robot list entry              ROBOTS                   <name>
//! OIDC identity → user          OIDCID#<sha256(iss, sub)> META
//! OIDC login under way (TTL)    OIDC#<state>             STATE
//! OIDC onboarding pending (TTL) OIDC#<id>                ONBOARD
//! logged-out session (TTL)      SESS#<session id>        REVOKED
//! project                       P#<project>              META
//! project member                P#<project>              M#u#<user id> | M#g#<group id>
//!   (gsi1: MEMBER#u#<user id> | MEMBER#g#<group id> → <project>)
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

/// A user's id → name.
pub fn user_id(id: i64) -> Key {
    (format!("UID#{id}"), "META".to_owned())
}

pub const USERS: &str = "USERS";

pub fn user_entry(name: &str) -> Key {
    (USERS.to_owned(), name.to_owned())
}

/// Holds the user an e-mail address belongs to (addresses are unique,
/// compared case-insensitively).
pub fn user_email(email: &str) -> Key {
    (format!("EMAIL#{}", email.to_lowercase()), "META".to_owned())
}

pub fn group(id: i64) -> Key {
    (format!("GRP#{id}"), "META".to_owned())
}

/// A group by what identifies it in its source (an LDAP DN, an OIDC group
/// name), so each is onboarded once.
pub fn group_identity(group_type: i64, identity: &str) -> Key {
    (format!("GRPK#{group_type}#{identity}"), "META".to_owned())
}

pub const GROUPS: &str = "GROUPS";

pub fn group_entry(id: i64) -> Key {
    (GROUPS.to_owned(), format!("{id:012}"))
}

/// A robot account, by its name without the configurable prefix.
pub fn robot(name: &str) -> Key {
    (format!("ROB#{name}"), "META".to_owned())
}

pub fn robot_id(id: i64) -> Key {
    (format!("RID#{id}"), "META".to_owned())
}

pub const ROBOTS: &str = "ROBOTS";

pub fn robot_entry(name: &str) -> Key {
    (ROBOTS.to_owned(), name.to_owned())
}

/// The user an OIDC identity (issuer and subject) was onboarded as. The
/// pair is hashed: both are provider strings of any length.
pub fn oidc_identity(issuer: &str, subject: &str) -> Key {
    use sha2::Digest as _;
    let digest = sha2::Sha256::new().chain_update(issuer).chain_update([0u8]).chain_update(subject).finalize();
    (format!("OIDCID#{}", hex::encode(digest)), "META".to_owned())
}

/// A login redirected to the OIDC provider, by its `state` (random, URL-safe).
pub fn oidc_state(state: &str) -> Key {
    (format!("OIDC#{state}"), "STATE".to_owned())
}

/// A provider-verified identity waiting for its user to choose a name.
pub fn oidc_onboarding(id: &str) -> Key {
    (format!("OIDC#{id}"), "ONBOARD".to_owned())
}

/// A portal session that was logged out.
pub fn session_revoked(id: &str) -> Key {
    (format!("SESS#{id}"), "REVOKED".to_owned())
}

/// The system settings changed through the API.
pub fn settings() -> (&'static str, &'static str) {
    ("SYS", "CONFIG")
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

/// What a member entry is: a user or a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberKind {
    User,
    Group,
}

impl MemberKind {
    /// Harbor's `entity_type`.
    pub fn code(self) -> &'static str {
        match self {
            Self::User => "u",
            Self::Group => "g",
        }
    }
}

/// The sort-key prefix of a project's members in its partition.
pub const MEMBER_PREFIX: &str = "M#";

pub fn member(project: &str, kind: MemberKind, entity_id: i64) -> Key {
    (format!("P#{project}"), format!("M#{}#{entity_id}", kind.code()))
}

/// The gsi1 partition listing the projects a user or group is a member of
/// (the member items carry it, with the project name as gsi1 sort key).
pub fn member_of(kind: MemberKind, entity_id: i64) -> String {
    format!("MEMBER#{}#{entity_id}", kind.code())
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

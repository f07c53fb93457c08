//! Every key of the metadata table, and every attribute name the code
//! addresses directly (in conditions and indexes), built here and nowhere
//! else.
//!
//! ```text
//! item                          pk                       sk
//! schema version                SYS                      SCHEMA
//! id counters                   SYS                      COUNTERS
//! token signing key             SYS                      TOKEN_KEY
//! system settings               SYS                      CONFIG
//! system CVE allowlist          SYS                      CVE_ALLOWLIST
//! built-in scanner's database   SYS                      VULNDB
//! account epoch                 SYS                      ACCOUNTS
//! list counter (sharded)        N#<list>                 <shard 0..3>
//! user                          USR#<name>               META
//! user id → name                UID#<id>                 META
//! user list entry               USERS                    <name>
//! e-mail address → user         EMAIL#<address>          META
//! user group                    GRP#<id>                 META
//! group by its identity         GRPK#<type>#<dn or name> META
//! group list entry              GROUPS                   <id, 12 digits>
//! robot account                 ROB#<name>               META
//! robot id → name               RID#<id>                 META
//! robot list entry              ROBOTS#system            <name>
//!                               ROBOTS#project#<id>      <name>
//! OIDC identity → user          OIDCID#<sha256(iss, sub)> META
//! OIDC login under way (TTL)    OIDC#<state>             STATE
//! OIDC onboarding pending (TTL) OIDC#<id>                ONBOARD
//! logged-out session (TTL)      SESS#<session id>        REVOKED
//! project                       P#<project>              META
//! project member                P#<project>              M#u#<user id> | M#g#<group id>
//!   (gsi1: MEMBER#u#<user id> | MEMBER#g#<group id> → <project>)
//! project list entry            PROJECTS                 <project>
//! artifact of a project by push P#<project>              PN#<push time, 12 digits>#<repository>@<digest>
//! public project list entry     PROJECTS#PUBLIC          <project>
//! project id → name             PID#<id>                 META
//! repository                    P#<project>              R#<repository>
//! catalog entry                 CATALOG                  <repository>
//! tag (with its manifest)       R#<repository>           T#<tag>
//! manifest (artifact)           R#<repository>           A#<digest>
//! artifact by first push        R#<repository>           N#<push time, 12 digits>#<digest>
//! tag of an artifact            R#<repository>           D#<digest>#<tag>
//! blob link (repo may read)     R#<repository>           L#<digest>
//! referrer                      R#<repository>           F#<subject digest>#<digest>
//! cosign tag-scheme signature   R#<repository>           AC#<subject digest>#<digest>
//! index → child reference       R#<repository>           PA#<child digest>#<index digest>
//! label on an artifact          R#<repository>           LB#<digest>#<label id, 12 digits>
//! proxy cache: tag checked (TTL) R#<repository>          PT#<tag>
//! proxy cache: child not cached  R#<repository>          PC#<child digest>#<index digest>
//! proxy cache: blob fetch lease  PXL#<digest>            META
//! blob                          B#<digest>               META
//! blob with no link (GC)        GCC#<shard 0..15>        <digest>
//! a collection's marking (TTL)  GCB#<execution>          COUNT | PLANNED | PLAN#<page> | DONE#<page> | PARTS
//! a dry run's link tally        GCX#<execution>          <digest>
//! upload session                U#<upload id>            META
//! message not yet queued       OUT#<shard 0..3>         <time ms, 13 digits>#<message id>
//! pull batch applied (TTL)      PULLS#<batch id>         DONE
//! audit record                  AUD#<shard 0..7>         <time ms, 13 digits>#<event id>
//! audit record of a project     AUDP#<project>#<0..3>    <time ms, 13 digits>#<event id>
//! webhook policy                P#<project>              WH#<policy id, 16 digits>
//! preheat policy                P#<project>              PH#<policy id, 16 digits>
//! P2P preheat instance          P2P_INSTANCES            <instance name>
//! policy using an instance      P2PUSE#<instance id>     <project>#<policy id, 16 digits>
//! preheat submitted by a task   X#<execution id>         PH#<task id, 16 digits>
//! immutability rules            P#<project>              IMMUTABLE
//! project storage usage         P#<project>              QUOTA
//! retention policy              RET#<policy id>          META
//! blob referenced by a project  P#<project>              PB#<digest>
//! schedule                      SCHEDULES                <vendor type>#<vendor id>
//! fired schedule slot (TTL)     SLOT#<type>#<vendor id>  <slot time ms>
//! job execution                 X#<execution id>         META
//! job task                      X#<execution id>         T#<task id, 16 digits>
//! job task log line             X#<execution id>         L#<task id>#<time ms>#<n>
//! executions of a vendor        XS#<type>#<vendor id>    <execution id, 16 digits>
//! task asked to stop            X#<execution id>         STOP#<task id, 16 digits>
//! task waiting for a worker     JQ#<job type>#<0..3>     <queued ms, 13 digits>#<execution>#<task>
//! job queue paused              JQS                      <job type>
//! worker pool (TTL)             POOLS                    <pool id>
//! event handled (TTL)           EVT#<event id>#<consumer> DONE
//! label                         LBL#<id>                 META
//! label name (unique per scope) LBLN#<project id, 0: global>#<name> META
//! label list entry              LABELS#g | LABELS#p#<project id> <id, 12 digits>
//! artifact carrying a label     LBLU#<label id>          <repository>@<digest>
//! scanner registration          SCANNERS                 <uuid>
//! registry endpoint             REG#<id>                 META
//! what uses a registry endpoint REG#<id>                 USES
//! registry endpoint name        REGN#<name>              META
//! registry endpoint list entry  REGISTRIES               <id, 12 digits>
//! a project's scanner           P#<project>              SCANNER
//! a project's cosign keys       P#<project>              COSIGN_KEYS
//! scan of an artifact           SCAN#<digest>            <scan type>#<registration uuid>
//! a scan-all run's tallies      X#<execution id>         SCANALL#<Started | a scan status>
//! security hub: scanned digest  HUB#<registration>       A#<digest>
//!   its totals (one per figure) HUB#<registration>       N#<figure>
//!   a CVE's description         HUB#<registration>       CVE#<cve id>
//!   digests by danger           HUBDA#<registration>     <critical, high, medium, low: inverted, 10 digits each>#<digest>
//!   digests of a repository     HUBR#<registration>#<repository> <digest>
//!   findings, by score          HUBV#<registration>      <finding>
//!   findings of a digest        HUBVD#<registration>#<digest> <finding>
//!   findings of a CVE           HUBVC#<registration>#<cve id> <finding>
//!   (<finding>: <inverted CVSS v3 score in tenths, 4 digits>#<digest>#<cve id>#<package>#<version>)
//! ```
//! A repository's tags, manifests, links and referrers share one partition,
//! so each listing is one query by sort-key prefix. Lists the API pages
//! through are partitions of small entries (or of the records themselves,
//! when small) in the order the API shows them, and each keeps its count in
//! a [`counter`] written in the same transaction as the entry.

use crate::oci::{Digest, RepoName, Tag};

pub type Key = (String, String);

/// Attribute names the code addresses directly: in conditions, counters
/// and index keys. (Records are stored field for field; their other
/// attribute names are their field names.)
pub mod attr {
    /// The expiry (Unix seconds) of an item: the table's TTL attribute.
    pub const EXPIRES_AT: &str = "expires_at";
    pub const GSI1_PK: &str = "gsi1pk";
    pub const GSI1_SK: &str = "gsi1sk";
    pub const GSI2_PK: &str = "gsi2pk";
    pub const GSI2_SK: &str = "gsi2sk";
    /// An optimistic-concurrency stamp.
    pub const VERSION: &str = "version";
    pub const UPDATE_TIME: &str = "update_time";
    pub const ID: &str = "id";
    pub const NAME: &str = "name";
    pub const USER_ID: &str = "user_id";
    pub const PROJECT_ID: &str = "project_id";
    pub const ENTITY_ID: &str = "entity_id";
    pub const DIGEST: &str = "digest";
    pub const NONCE: &str = "nonce";
    /// The count of a list counter's shard.
    pub const COUNT: &str = "count";
    /// The account epoch ([`super::account_epoch`]).
    pub const EPOCH: &str = "epoch";
    /// How many tags an artifact carries.
    pub const TAG_COUNT: &str = "tag_count";
    /// A serialized record kept whole (an outbox message), and the queue
    /// it goes to.
    pub const BODY: &str = "body";
    pub const QUEUE: &str = "queue";
    /// An artifact's push-order entry marks an artifact Harbor's listings
    /// hide: an index's child, or an accessory (signature, SBOM, referrer).
    pub const HIDDEN: &str = "hidden";
    /// How many indexes of its repository reference an artifact.
    pub const PARENTS: &str = "parents";
    /// An artifact's last pull (Unix seconds) and a repository's pulls.
    pub const PULL_TIME: &str = "pull_time";
    pub const PULL_COUNT: &str = "pull_count";
}

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

/// Which vulnerability database the built-in scanner reads.
pub fn vulndb() -> (&'static str, &'static str) {
    ("SYS", "VULNDB")
}

/// A tally of a scan-all run: `Started`, or scans ended with a status.
pub fn scan_all_tally(execution: i64, what: &str) -> Key {
    (format!("X#{execution}"), format!("SCANALL#{what}"))
}

pub fn scan_all_tallies(execution: i64) -> (String, &'static str) {
    (format!("X#{execution}"), "SCANALL#")
}

pub fn project_cosign_keys(project: &str) -> Key {
    (format!("P#{project}"), "COSIGN_KEYS".to_owned())
}

/// The partition of scanner registrations (few: one query lists them).
pub const SCANNERS: &str = "SCANNERS";

pub fn scanner(uuid: &str) -> Key {
    (SCANNERS.to_owned(), uuid.to_owned())
}

pub fn project_scanner(project: &str) -> Key {
    (format!("P#{project}"), "SCANNER".to_owned())
}

/// The scans of an artifact (by digest: every repository holding it shares
/// them, as Harbor's reports are per digest).
pub fn scans_of(digest: &Digest) -> String {
    format!("SCAN#{digest}")
}

pub fn scan(digest: &Digest, scan_type: &str, registration: &str) -> Key {
    (scans_of(digest), format!("{scan_type}#{registration}"))
}

/// The security hub's entry of a scanned digest, for a scanner.
pub fn hub_entry(registration: &str, digest: &Digest) -> Key {
    (format!("HUB#{registration}"), format!("A#{digest}"))
}

/// One of the hub's totals (`critical`, `fixable`, `scanned`, …).
pub fn hub_total(registration: &str, figure: &str) -> Key {
    (format!("HUB#{registration}"), format!("N#{figure}"))
}

/// The partition and prefix of the hub's totals.
pub fn hub_totals(registration: &str) -> (String, &'static str) {
    (format!("HUB#{registration}"), "N#")
}

pub fn hub_cve(registration: &str, cve: &str) -> Key {
    (format!("HUB#{registration}"), format!("CVE#{cve}"))
}

/// The most dangerous digests first: by critical, high, medium and low
/// findings, each count inverted so that more sorts first.
pub fn hub_danger(registration: &str, counts: [u64; 4], digest: &Digest) -> Key {
    let inv = |n: u64| 9_999_999_999u64.saturating_sub(n.min(9_999_999_999));
    let [c, h, m, l] = counts.map(inv);
    (format!("HUBDA#{registration}"), format!("{c:010}#{h:010}#{m:010}#{l:010}#{digest}"))
}

pub fn hub_dangers(registration: &str) -> String {
    format!("HUBDA#{registration}")
}

pub fn hub_repository_digest(registration: &str, repo: &str, digest: &Digest) -> Key {
    (hub_repository(registration, repo), digest.to_string())
}

pub fn hub_repository(registration: &str, repo: &str) -> String {
    format!("HUBR#{registration}#{repo}")
}

/// A finding's sort key: the highest CVSS v3 score first (tenths, from
/// 100; a finding without one last), then digest, CVE, package, version.
pub fn hub_finding(score_tenths: Option<u32>, digest: &Digest, cve: &str, package: &str, version: &str) -> String {
    let rank = score_tenths.map_or(9999, |s| 1000 - s.min(100));
    format!("{rank:04}#{digest}#{cve}#{package}#{version}")
}

/// The partitions a finding is written to: every finding, the digest's,
/// the CVE's.
pub fn hub_findings(registration: &str) -> String {
    format!("HUBV#{registration}")
}

pub fn hub_digest_findings(registration: &str, digest: &Digest) -> String {
    format!("HUBVD#{registration}#{digest}")
}

pub fn hub_cve_findings(registration: &str, cve: &str) -> String {
    format!("HUBVC#{registration}#{cve}")
}

pub fn label(id: i64) -> Key {
    (format!("LBL#{id}"), "META".to_owned())
}

/// Reserves a label's name in its scope (`project_id` 0: global).
pub fn label_name(project_id: i64, name: &str) -> Key {
    (format!("LBLN#{project_id}#{name}"), "META".to_owned())
}

/// The partition listing the global labels, or a project's.
pub fn label_list(project_id: Option<i64>) -> String {
    match project_id {
        None => "LABELS#g".to_owned(),
        Some(id) => format!("LABELS#p#{id}"),
    }
}

pub fn label_entry(project_id: Option<i64>, id: i64) -> Key {
    (label_list(project_id), format!("{id:012}"))
}

/// The prefix of an artifact's label links in its repository's partition.
pub fn artifact_labels_prefix(digest: &Digest) -> String {
    format!("LB#{digest}#")
}

/// A label on an artifact.
pub fn artifact_label(repo: &RepoName, digest: &Digest, label_id: i64) -> Key {
    (repo_partition(repo), format!("{}{label_id:012}", artifact_labels_prefix(digest)))
}

/// The partition of the artifacts a label is on (so deleting the label
/// finds them).
pub fn label_uses(label_id: i64) -> String {
    format!("LBLU#{label_id}")
}

pub fn label_use(label_id: i64, repo: &RepoName, digest: &Digest) -> Key {
    (label_uses(label_id), format!("{repo}@{digest}"))
}

/// A registry endpoint (another registry berth talks to).
pub fn registry_endpoint(id: i64) -> Key {
    (format!("REG#{id}"), "META".to_owned())
}

/// How many replication policies and proxy-cache projects use a registry
/// endpoint (attribute [`attr::COUNT`]).
pub fn registry_endpoint_uses(id: i64) -> Key {
    (format!("REG#{id}"), "USES".to_owned())
}

/// Reserves a registry endpoint's name.
pub fn registry_endpoint_name(name: &str) -> Key {
    (format!("REGN#{name}"), "META".to_owned())
}

/// The partition listing the registry endpoints, by id.
pub const REGISTRY_ENDPOINTS: &str = "REGISTRIES";

pub fn registry_endpoint_entry(id: i64) -> Key {
    (REGISTRY_ENDPOINTS.to_owned(), format!("{id:012}"))
}

/// A replication policy.
pub fn replication_policy(id: i64) -> Key {
    (format!("REPL#{id}"), "META".to_owned())
}

/// Reserves a replication policy's name.
pub fn replication_policy_name(name: &str) -> Key {
    (format!("REPLN#{name}"), "META".to_owned())
}

/// The partition listing the replication policies, by id.
pub const REPLICATION_POLICIES: &str = "REPLICATIONS";

pub fn replication_policy_entry(id: i64) -> Key {
    (REPLICATION_POLICIES.to_owned(), format!("{id:012}"))
}

/// How far the copy of one blob to one repository has come in a
/// replication execution (kept in the execution's partition, so that a
/// task run again, or its follow-up, resumes it).
pub fn replication_blob(execution: i64, dest_repo: &str, digest: &Digest) -> Key {
    (execution_partition(execution), format!("RB#{dest_repo}@{digest}"))
}

/// A robot account, by its name without the configurable prefix.
pub fn robot(name: &str) -> Key {
    (format!("ROB#{name}"), "META".to_owned())
}

pub fn robot_id(id: i64) -> Key {
    (format!("RID#{id}"), "META".to_owned())
}

/// The partition listing the system robots, or a project's robots.
pub fn robot_list(project_id: Option<i64>) -> String {
    match project_id {
        None => "ROBOTS#system".to_owned(),
        Some(id) => format!("ROBOTS#project#{id}"),
    }
}

pub fn robot_entry(project_id: Option<i64>, name: &str) -> Key {
    (robot_list(project_id), name.to_owned())
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

/// The system's CVE allowlist.
pub fn system_cve_allowlist() -> (&'static str, &'static str) {
    ("SYS", "CVE_ALLOWLIST")
}

/// The counter every account change adds to, so that replicas forget the
/// credentials they remember.
pub fn account_epoch() -> (&'static str, &'static str) {
    ("SYS", "ACCOUNTS")
}

/// A list whose length is kept with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted<'a> {
    Projects,
    PublicProjects,
    Users,
    Groups,
    SystemRobots,
    /// The robots of a project, by project id.
    ProjectRobots(i64),
    /// The members of a project, by project id.
    Members(i64),
    /// The repositories of a project, by name.
    Repositories(&'a str),
    Catalog,
    Artifacts(&'a RepoName),
    /// The artifacts of a repository its listings hide (see
    /// [`attr::HIDDEN`]).
    HiddenArtifacts(&'a RepoName),
    /// A project's artifacts, and those of them its listings hide.
    ProjectArtifacts(&'a str),
    ProjectHiddenArtifacts(&'a str),
    /// The audit log, and one project's part of it (by name).
    Audit,
    ProjectAudit(&'a str),
    /// The executions of a vendor (a job kind and the id of its policy).
    Executions(&'a str, i64),
    /// The webhook policies of a project, by name.
    WebhookPolicies(&'a str),
    /// The preheat policies of a project, by name.
    PreheatPolicies(&'a str),
    Schedules,
    /// The global labels (`None`) or a project's, by project id.
    Labels(Option<i64>),
    /// The registry endpoints.
    RegistryEndpoints,
    /// The replication policies.
    ReplicationPolicies,
    /// Not a list: the bytes of every blob stored once (its shards sum
    /// sizes, not entries).
    StoredBytes,
}

/// How many items a list counter spreads over, so that concurrent writers
/// of one list (pushes to one repository) rarely touch the same item.
pub const COUNTER_SHARDS: u8 = 4;

/// The partition of a list's counter; its items are the shards.
pub fn counter(list: Counted<'_>) -> String {
    match list {
        Counted::Projects => "N#projects".to_owned(),
        Counted::PublicProjects => "N#projects#public".to_owned(),
        Counted::Users => "N#users".to_owned(),
        Counted::Groups => "N#groups".to_owned(),
        Counted::SystemRobots => "N#robots#system".to_owned(),
        Counted::ProjectRobots(id) => format!("N#robots#project#{id}"),
        Counted::Members(id) => format!("N#members#{id}"),
        Counted::Repositories(project) => format!("N#repositories#{project}"),
        Counted::Catalog => "N#catalog".to_owned(),
        Counted::Audit => "N#audit".to_owned(),
        Counted::ProjectAudit(project) => format!("N#audit#{project}"),
        Counted::Executions(kind, vendor) => format!("N#executions#{kind}#{vendor}"),
        Counted::WebhookPolicies(project) => format!("N#webhooks#{project}"),
        Counted::PreheatPolicies(project) => format!("N#preheat#{project}"),
        Counted::Schedules => "N#schedules".to_owned(),
        Counted::Labels(None) => "N#labels#g".to_owned(),
        Counted::Labels(Some(id)) => format!("N#labels#p#{id}"),
        Counted::StoredBytes => "N#stored-bytes".to_owned(),
        Counted::RegistryEndpoints => "N#registries".to_owned(),
        Counted::ReplicationPolicies => "N#replications".to_owned(),
        Counted::Artifacts(repo) => format!("N#artifacts#{repo}"),
        Counted::HiddenArtifacts(repo) => format!("N#hidden#{repo}"),
        Counted::ProjectArtifacts(project) => format!("N#project-artifacts#{project}"),
        Counted::ProjectHiddenArtifacts(project) => format!("N#project-hidden#{project}"),
    }
}

/// The shard of a counter that the entry `entry` counts in: the same shard
/// for its addition and its removal.
pub fn counter_shard(list: Counted<'_>, entry: &str) -> Key {
    use sha2::Digest as _;
    let shard = sha2::Sha256::digest(entry.as_bytes())[0] % COUNTER_SHARDS;
    (counter(list), shard.to_string())
}

/// How many partitions the outbox spreads over.
pub const OUTBOX_SHARDS: u8 = 4;

/// A partition of the outbox: events written with a change, not yet sent
/// to the events queue, oldest first.
pub fn outbox_partition(shard: u8) -> String {
    format!("OUT#{shard}")
}

/// Sort key of a time-ordered entry: the time in milliseconds, zero-padded
/// to 13 digits (good until the year 2286), then the entry's id.
pub fn timed_sk(at_ms: i64, id: &str) -> String {
    format!("{at_ms:013}#{id}")
}

fn shard_of(id: &str, shards: u8) -> u8 {
    use sha2::Digest as _;
    sha2::Sha256::digest(id.as_bytes())[0] % shards
}

pub fn outbox(at_ms: i64, id: &str) -> Key {
    (outbox_partition(shard_of(id, OUTBOX_SHARDS)), timed_sk(at_ms, id))
}

/// Marks a pull batch as counted, so that a batch delivered twice counts once.
pub fn pull_batch(id: &str) -> Key {
    (format!("PULLS#{id}"), "DONE".to_owned())
}

/// Marks an event as handled by one of its consumers.
pub fn event_handled(id: &str, consumer: &str) -> Key {
    (format!("EVT#{id}#{consumer}"), "DONE".to_owned())
}

/// How many partitions the audit log spreads over (and a project's, per project).
pub const AUDIT_SHARDS: u8 = 8;
pub const PROJECT_AUDIT_SHARDS: u8 = 4;

pub fn audit_partition(shard: u8) -> String {
    format!("AUD#{shard}")
}

pub fn project_audit_partition(project: &str, shard: u8) -> String {
    format!("AUDP#{project}#{shard}")
}

pub fn audit(at_ms: i64, id: &str) -> Key {
    (audit_partition(shard_of(id, AUDIT_SHARDS)), timed_sk(at_ms, id))
}

pub fn project_audit(project: &str, at_ms: i64, id: &str) -> Key {
    (project_audit_partition(project, shard_of(id, PROJECT_AUDIT_SHARDS)), timed_sk(at_ms, id))
}

pub const SCHEDULES: &str = "SCHEDULES";

/// The schedule of a vendor (a system job type and its policy id).
pub fn schedule(vendor_type: &str, vendor_id: i64) -> Key {
    (SCHEDULES.to_owned(), format!("{vendor_type}#{vendor_id:016}"))
}

/// The lease of one slot of a schedule.
pub fn schedule_slot(vendor_type: &str, vendor_id: i64, slot_ms: i64) -> Key {
    (format!("SLOT#{vendor_type}#{vendor_id}"), format!("{slot_ms:013}"))
}

/// How many partitions garbage candidates spread over (GC sweeps one a task).
pub const GC_SHARDS: u8 = 16;

/// The bookkeeping of one collection's marking (which pages were planned
/// and marked, and whether the parts after it were started).
pub fn gc_run(execution: i64) -> String {
    format!("GCB#{execution}")
}

pub fn gc_candidate_partition(shard: u8) -> String {
    format!("GCC#{shard}")
}

/// A blob no repository links: a garbage candidate.
pub fn gc_candidate(digest: &Digest) -> Key {
    (gc_candidate_partition(shard_of(&digest.to_string(), GC_SHARDS)), digest.to_string())
}

/// A retention policy (its project's metadata `retention_id` names it).
pub fn retention(id: i64) -> Key {
    (format!("RET#{id}"), "META".to_owned())
}

/// A project's storage usage (its limit is the project's `storage_limit`).
pub fn quota(project: &str) -> Key {
    (format!("P#{project}"), "QUOTA".to_owned())
}

/// A blob the project's repositories reference, with how many times.
pub fn project_blob(project: &str, digest: &Digest) -> Key {
    (format!("P#{project}"), format!("{PROJECT_BLOB_PREFIX}{digest}"))
}

pub const PROJECT_BLOB_PREFIX: &str = "PB#";

/// A project's tag immutability rules (all of them, in one item).
pub fn immutable_rules(project: &str) -> Key {
    (format!("P#{project}"), "IMMUTABLE".to_owned())
}

pub const WEBHOOK_POLICY_PREFIX: &str = "WH#";

/// A webhook policy, in its project's partition.
pub fn webhook_policy(project: &str, id: i64) -> Key {
    (format!("P#{project}"), format!("WH#{id:016}"))
}

pub const PREHEAT_POLICY_PREFIX: &str = "PH#";

/// A preheat policy, in its project's partition.
pub fn preheat_policy(project: &str, id: i64) -> Key {
    (format!("P#{project}"), format!("{PREHEAT_POLICY_PREFIX}{id:016}"))
}

/// The partition of P2P preheat instances (few: one query lists them).
pub const P2P_INSTANCES: &str = "P2P_INSTANCES";

pub fn p2p_instance(name: &str) -> Key {
    (P2P_INSTANCES.to_owned(), name.to_owned())
}

/// The partition naming the policies that use an instance.
pub fn p2p_instance_uses(instance: i64) -> String {
    format!("P2PUSE#{instance}")
}

/// A policy's use of an instance (an instance in use is not deleted).
pub fn p2p_instance_use(instance: i64, project: &str, policy: i64) -> Key {
    (p2p_instance_uses(instance), format!("{project}#{policy:016}"))
}

/// What a preheat task submitted to its provider (its job id there), so a
/// task run again polls instead of submitting again.
pub fn preheat_submitted(execution: i64, task: i64) -> Key {
    (execution_partition(execution), format!("PH#{task:016}"))
}

pub fn execution(id: i64) -> Key {
    (execution_partition(id), "META".to_owned())
}

pub fn execution_partition(id: i64) -> String {
    format!("X#{id}")
}

pub const TASK_PREFIX: &str = "T#";

pub fn task(execution: i64, task: i64) -> Key {
    (execution_partition(execution), format!("T#{task:016}"))
}

pub fn task_log_prefix(task: i64) -> String {
    format!("L#{task:016}#")
}

pub fn task_log(execution: i64, task: i64, at_ms: i64, seq: u32) -> Key {
    (execution_partition(execution), format!("L#{task:016}#{at_ms:013}#{seq:06}"))
}

/// A running task's stop request (the worker sees it at its next check).
pub fn task_stop(execution: i64, task: i64) -> Key {
    (execution_partition(execution), format!("STOP#{task:016}"))
}

/// How many partitions each job type's waiting tasks spread over.
pub const JOB_QUEUE_SHARDS: u8 = 4;

/// A partition of the tasks of one job type that wait for a worker, oldest
/// first (Harbor's job queue, for the job service dashboard).
pub fn job_queue_partition(job_type: &str, shard: u8) -> String {
    format!("JQ#{job_type}#{shard}")
}

/// A task waiting for a worker since `queued_ms`.
pub fn job_queue_entry(job_type: &str, queued_ms: i64, execution: i64, task: i64) -> Key {
    let shard = u8::try_from(task.rem_euclid(i64::from(JOB_QUEUE_SHARDS))).unwrap_or(0);
    (job_queue_partition(job_type, shard), format!("{queued_ms:013}#{execution}#{task}"))
}

/// The paused flags of the job queues, one item per job type.
pub const JOB_QUEUE_STATUS: &str = "JQS";

pub fn job_queue_status(job_type: &str) -> Key {
    (JOB_QUEUE_STATUS.to_owned(), job_type.to_owned())
}

/// The worker pools (processes running workers), by their heartbeat.
pub const POOLS: &str = "POOLS";

pub fn pool(id: &str) -> Key {
    (POOLS.to_owned(), id.to_owned())
}

/// The executions of one vendor (a policy, or a system job type).
pub fn executions_of(vendor_type: &str, vendor_id: i64) -> String {
    format!("XS#{vendor_type}#{vendor_id}")
}

pub fn execution_entry(vendor_type: &str, vendor_id: i64, execution: i64) -> Key {
    (executions_of(vendor_type, vendor_id), format!("{execution:016}"))
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
pub const PUBLIC_PROJECTS: &str = "PROJECTS#PUBLIC";

pub fn project_entry(name: &str) -> Key {
    (PROJECTS.to_owned(), name.to_owned())
}

pub fn public_project_entry(name: &str) -> Key {
    (PUBLIC_PROJECTS.to_owned(), name.to_owned())
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
    (format!("P#{}", repo.project()), format!("{REPOSITORY_PREFIX}{repo}"))
}

/// The repository name of a repository item's sort key.
pub fn repository_name(sk: &str) -> Option<&str> {
    sk.strip_prefix(REPOSITORY_PREFIX)
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

pub const ARTIFACT_PREFIX: &str = "A#";

pub fn artifact(repo: &RepoName, digest: &Digest) -> Key {
    (repo_partition(repo), format!("{ARTIFACT_PREFIX}{digest}"))
}

/// The digest of an artifact item's sort key.
pub fn artifact_digest(sk: &str) -> Option<Digest> {
    sk.strip_prefix(ARTIFACT_PREFIX)?.parse().ok()
}

/// The sort-key prefix of a repository's artifacts in order of first push.
pub const PUSHED_PREFIX: &str = "N#";

/// An artifact's entry in the order of first push (Unix seconds).
pub fn artifact_pushed(repo: &RepoName, pushed_at: i64, digest: &Digest) -> Key {
    (repo_partition(repo), format!("{PUSHED_PREFIX}{:012}#{digest}", pushed_at.max(0)))
}

pub const PROJECT_PUSHED_PREFIX: &str = "PN#";

/// An artifact's entry in its project's order of first push.
pub fn project_artifact(repo: &RepoName, pushed_at: i64, digest: &Digest) -> Key {
    (project(repo.project()).0, format!("{PROJECT_PUSHED_PREFIX}{:012}#{repo}@{digest}", pushed_at.max(0)))
}

/// The repository and digest of a [`project_artifact`] sort key.
pub fn project_artifact_of(sk: &str) -> Option<(RepoName, Digest)> {
    let rest = sk.strip_prefix(PROJECT_PUSHED_PREFIX)?;
    let (_, named) = rest.split_once('#')?;
    let (repo, digest) = named.rsplit_once('@')?;
    Some((RepoName::parse(repo).ok()?, digest.parse().ok()?))
}

/// The digest of an [`artifact_pushed`] sort key.
pub fn pushed_digest(sk: &str) -> Option<Digest> {
    sk.strip_prefix(PUSHED_PREFIX)?.split_once('#')?.1.parse().ok()
}

/// The sort-key prefix of the tags of one artifact.
pub fn artifact_tags_prefix(digest: &Digest) -> String {
    format!("D#{digest}#")
}

/// A tag's entry among its artifact's tags.
pub fn artifact_tag(repo: &RepoName, digest: &Digest, tag: &str) -> Key {
    (repo_partition(repo), format!("{}{tag}", artifact_tags_prefix(digest)))
}

pub const BLOB_LINK_PREFIX: &str = "L#";

pub fn blob_link(repo: &RepoName, digest: &Digest) -> Key {
    (repo_partition(repo), format!("{BLOB_LINK_PREFIX}{digest}"))
}

/// The sort-key prefix of every referrer of `subject`.
pub fn referrers_prefix(subject: &Digest) -> String {
    format!("F#{subject}#")
}

pub fn referrer(repo: &RepoName, subject: &Digest, digest: &Digest) -> Key {
    (repo_partition(repo), format!("{}{digest}", referrers_prefix(subject)))
}

/// The prefix of the cosign signatures tagged `sha256-<subject>.sig`.
pub fn tag_accessories_prefix(subject: &Digest) -> String {
    format!("AC#{subject}#")
}

pub fn tag_accessory(repo: &RepoName, subject: &Digest, digest: &Digest) -> Key {
    (repo_partition(repo), format!("{}{digest}", tag_accessories_prefix(subject)))
}

/// The prefix of the indexes that reference `child`.
pub fn parents_prefix(child: &Digest) -> String {
    format!("PA#{child}#")
}

pub fn parent_link(repo: &RepoName, child: &Digest, parent: &Digest) -> Key {
    (repo_partition(repo), format!("{}{parent}", parents_prefix(child)))
}

/// When a proxy-cache project last asked its upstream what a tag is.
pub fn proxy_tag_check(repo: &RepoName, tag: &Tag) -> Key {
    (repo_partition(repo), format!("PT#{tag}"))
}

/// The prefix of the cached indexes that list `child`, not cached yet.
pub fn proxy_pending_prefix(child: &Digest) -> String {
    format!("PC#{child}#")
}

/// A cached index lists `child`, which is not cached yet.
pub fn proxy_pending_child(repo: &RepoName, child: &Digest, index: &Digest) -> Key {
    (repo_partition(repo), format!("{}{index}", proxy_pending_prefix(child)))
}

/// Who fetches a blob from an upstream registry right now.
pub fn proxy_blob_lease(digest: &Digest) -> Key {
    (format!("PXL#{digest}"), "META".to_owned())
}

pub fn blob(digest: &Digest) -> Key {
    (format!("B#{digest}"), "META".to_owned())
}

pub fn upload(id: &str) -> Key {
    (format!("U#{id}"), "META".to_owned())
}

//! The permission matrix, as data: Harbor's resources, actions and project
//! roles, what each role may do in a project, what anyone may do in a
//! public project, and what a robot account may be granted. Nothing here
//! does I/O or decides; [`super::authorize`] reads these tables.
//!
//! The tables follow Harbor's (`src/common/rbac/project/rbac_role.go`,
//! `rbac_util.go` and `src/common/rbac/const.go`) so that a role means the
//! same thing in berth as in Harbor.

use std::fmt;

/// What a permission is about. Project-level kinds are checked against a
/// project; system-level kinds against the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Res {
    // Project level.
    /// The project itself (Harbor's empty sub-resource; `project` in a
    /// robot's permissions).
    Project,
    Member,
    Metadata,
    Log,
    Label,
    Quota,
    Repository,
    TagRetention,
    ImmutableTag,
    Configuration,
    Robot,
    NotificationPolicy,
    Scan,
    Sbom,
    Scanner,
    Artifact,
    ArtifactAddition,
    Tag,
    Accessory,
    ArtifactLabel,
    PreheatPolicy,
    ExportCve,
    // System level.
    AuditLog,
    Catalog,
    User,
    UserGroup,
    Registry,
    Replication,
    ReplicationPolicy,
    ReplicationAdapter,
    Distribution,
    GarbageCollection,
    ScanAll,
    SystemVolumes,
    PurgeAudit,
    JobServiceMonitor,
    SecurityHub,
    LdapUser,
    PreheatInstance,
}

/// Every resource kind, for walking the matrix.
pub const ALL_RESOURCES: &[Res] = &[
    Res::Project,
    Res::Member,
    Res::Metadata,
    Res::Log,
    Res::Label,
    Res::Quota,
    Res::Repository,
    Res::TagRetention,
    Res::ImmutableTag,
    Res::Configuration,
    Res::Robot,
    Res::NotificationPolicy,
    Res::Scan,
    Res::Sbom,
    Res::Scanner,
    Res::Artifact,
    Res::ArtifactAddition,
    Res::Tag,
    Res::Accessory,
    Res::ArtifactLabel,
    Res::PreheatPolicy,
    Res::ExportCve,
    Res::AuditLog,
    Res::Catalog,
    Res::User,
    Res::UserGroup,
    Res::Registry,
    Res::Replication,
    Res::ReplicationPolicy,
    Res::ReplicationAdapter,
    Res::Distribution,
    Res::GarbageCollection,
    Res::ScanAll,
    Res::SystemVolumes,
    Res::PurgeAudit,
    Res::JobServiceMonitor,
    Res::SecurityHub,
    Res::LdapUser,
    Res::PreheatInstance,
];

impl Res {
    /// Harbor's name of the resource, as robot permissions and
    /// `/users/current/permissions` spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Project => "project",
            Self::Member => "member",
            Self::Metadata => "metadata",
            Self::Log => "log",
            Self::Label => "label",
            Self::Quota => "quota",
            Self::Repository => "repository",
            Self::TagRetention => "tag-retention",
            Self::ImmutableTag => "immutable-tag",
            Self::Configuration => "configuration",
            Self::Robot => "robot",
            Self::NotificationPolicy => "notification-policy",
            Self::Scan => "scan",
            Self::Sbom => "sbom",
            Self::Scanner => "scanner",
            Self::Artifact => "artifact",
            Self::ArtifactAddition => "artifact-addition",
            Self::Tag => "tag",
            Self::Accessory => "accessory",
            Self::ArtifactLabel => "artifact-label",
            Self::PreheatPolicy => "preheat-policy",
            Self::ExportCve => "export-cve",
            Self::AuditLog => "audit-log",
            Self::Catalog => "catalog",
            Self::User => "user",
            Self::UserGroup => "user-group",
            Self::Registry => "registry",
            Self::Replication => "replication",
            Self::ReplicationPolicy => "replication-policy",
            Self::ReplicationAdapter => "replication-adapter",
            Self::Distribution => "distribution",
            Self::GarbageCollection => "garbage-collection",
            Self::ScanAll => "scan-all",
            Self::SystemVolumes => "system-volumes",
            Self::PurgeAudit => "purge-audit",
            Self::JobServiceMonitor => "jobservice-monitor",
            Self::SecurityHub => "security-hub",
            Self::LdapUser => "ldap-user",
            Self::PreheatInstance => "preheat-instance",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        ALL_RESOURCES.iter().copied().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Res {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is done to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Act {
    Pull,
    Push,
    Create,
    Read,
    Update,
    Delete,
    List,
    Operate,
    Stop,
}

pub const ALL_ACTIONS: &[Act] =
    &[Act::Pull, Act::Push, Act::Create, Act::Read, Act::Update, Act::Delete, Act::List, Act::Operate, Act::Stop];

impl Act {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pull => "pull",
            Self::Push => "push",
            Self::Create => "create",
            Self::Read => "read",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::List => "list",
            Self::Operate => "operate",
            Self::Stop => "stop",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        ALL_ACTIONS.iter().copied().find(|a| a.as_str() == s)
    }
}

impl fmt::Display for Act {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Resources and actions are stored and shown by Harbor's names.
macro_rules! serde_by_name {
    ($t:ty, $what:literal) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let name = String::deserialize(d)?;
                Self::parse(&name).ok_or_else(|| serde::de::Error::custom(format!("unknown {} {name:?}", $what)))
            }
        }
    };
}

serde_by_name!(Res, "resource");
serde_by_name!(Act, "action");

/// One permission: an action on a kind of resource.
pub type Perm = (Res, Act);

/// A project role, with Harbor's ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    ProjectAdmin = 1,
    Developer = 2,
    Guest = 3,
    Maintainer = 4,
    LimitedGuest = 5,
}

pub const ALL_ROLES: &[Role] =
    &[Role::ProjectAdmin, Role::Maintainer, Role::Developer, Role::Guest, Role::LimitedGuest];

impl Role {
    pub fn id(self) -> i64 {
        self as i64
    }

    pub fn from_id(id: i64) -> Option<Self> {
        ALL_ROLES.iter().copied().find(|r| r.id() == id)
    }

    /// Harbor's role name, as member listings show it.
    pub fn name(self) -> &'static str {
        match self {
            Self::ProjectAdmin => "projectAdmin",
            Self::Developer => "developer",
            Self::Guest => "guest",
            Self::Maintainer => "maintainer",
            Self::LimitedGuest => "limitedGuest",
        }
    }

    /// What the role may do in its project.
    pub fn permissions(self) -> &'static [Perm] {
        match self {
            Self::ProjectAdmin => PROJECT_ADMIN,
            Self::Maintainer => MAINTAINER,
            Self::Developer => DEVELOPER,
            Self::Guest => GUEST,
            Self::LimitedGuest => LIMITED_GUEST,
        }
    }
}

use Act::{Create as C, Delete as D, List as L, Operate as O, Pull, Push, Read as R, Stop, Update as U};
use Res::*;

const PROJECT_ADMIN: &[Perm] = &[
    (Project, R),
    (Project, U),
    (Project, D),
    (Member, C),
    (Member, R),
    (Member, U),
    (Member, D),
    (Member, L),
    (Metadata, C),
    (Metadata, R),
    (Metadata, U),
    (Metadata, D),
    (Log, L),
    (Label, C),
    (Label, R),
    (Label, U),
    (Label, D),
    (Label, L),
    (Quota, R),
    (Repository, C),
    (Repository, R),
    (Repository, U),
    (Repository, D),
    (Repository, L),
    (Repository, Pull),
    (Repository, Push),
    (TagRetention, C),
    (TagRetention, R),
    (TagRetention, U),
    (TagRetention, D),
    (TagRetention, L),
    (TagRetention, O),
    (ImmutableTag, C),
    (ImmutableTag, U),
    (ImmutableTag, D),
    (ImmutableTag, L),
    (Configuration, R),
    (Configuration, U),
    (Robot, C),
    (Robot, R),
    (Robot, U),
    (Robot, D),
    (Robot, L),
    (NotificationPolicy, C),
    (NotificationPolicy, U),
    (NotificationPolicy, D),
    (NotificationPolicy, L),
    (NotificationPolicy, R),
    (Scan, C),
    (Scan, R),
    (Scan, Stop),
    (Sbom, C),
    (Sbom, Stop),
    (Sbom, R),
    (Scanner, R),
    (Scanner, C),
    (Artifact, C),
    (Artifact, R),
    (Artifact, D),
    (Artifact, L),
    (ArtifactAddition, R),
    (Tag, L),
    (Tag, C),
    (Tag, D),
    (Accessory, L),
    (ArtifactLabel, C),
    (ArtifactLabel, D),
    (PreheatPolicy, C),
    (PreheatPolicy, R),
    (PreheatPolicy, U),
    (PreheatPolicy, D),
    (PreheatPolicy, L),
    (ExportCve, C),
    (ExportCve, R),
    (ExportCve, L),
];

const MAINTAINER: &[Perm] = &[
    (Project, R),
    (Member, R),
    (Member, L),
    (Metadata, R),
    (Quota, R),
    (Label, C),
    (Label, R),
    (Label, U),
    (Label, D),
    (Label, L),
    (Repository, C),
    (Repository, R),
    (Repository, U),
    (Repository, D),
    (Repository, L),
    (Repository, Push),
    (Repository, Pull),
    (TagRetention, C),
    (TagRetention, R),
    (TagRetention, U),
    (TagRetention, D),
    (TagRetention, L),
    (TagRetention, O),
    (Accessory, L),
    (ImmutableTag, C),
    (ImmutableTag, U),
    (ImmutableTag, D),
    (ImmutableTag, L),
    (Configuration, R),
    (Robot, R),
    (Robot, L),
    (NotificationPolicy, R),
    (NotificationPolicy, L),
    (Scan, C),
    (Scan, R),
    (Scan, Stop),
    (Sbom, C),
    (Sbom, Stop),
    (Sbom, R),
    (Scanner, R),
    (Artifact, C),
    (Artifact, R),
    (Artifact, D),
    (Artifact, L),
    (ArtifactAddition, R),
    (Tag, L),
    (Tag, C),
    (Tag, D),
    (ArtifactLabel, C),
    (ArtifactLabel, D),
    (ExportCve, C),
    (ExportCve, R),
    (ExportCve, L),
];

const DEVELOPER: &[Perm] = &[
    (Project, R),
    (Member, R),
    (Member, L),
    (Label, R),
    (Label, L),
    (Quota, R),
    (Repository, C),
    (Repository, R),
    (Repository, U),
    (Repository, L),
    (Repository, Push),
    (Repository, Pull),
    (TagRetention, C),
    (TagRetention, R),
    (TagRetention, U),
    (TagRetention, D),
    (TagRetention, L),
    (TagRetention, O),
    (Configuration, R),
    (Robot, R),
    (Robot, L),
    (Scan, R),
    (Sbom, R),
    (Scanner, R),
    (Artifact, C),
    (Artifact, R),
    (Artifact, L),
    (ArtifactAddition, R),
    (Tag, L),
    (Tag, C),
    (Accessory, L),
    (ArtifactLabel, C),
    (ArtifactLabel, D),
    (ExportCve, C),
    (ExportCve, R),
    (ExportCve, L),
];

const GUEST: &[Perm] = &[
    (Project, R),
    (Member, R),
    (Member, L),
    (Label, R),
    (Label, L),
    (Quota, R),
    (Repository, R),
    (Repository, L),
    (Repository, Pull),
    (Configuration, R),
    (Robot, R),
    (Robot, L),
    (Scan, R),
    (Sbom, R),
    (Scanner, R),
    (Tag, L),
    (Accessory, L),
    (Artifact, R),
    (Artifact, L),
    (ArtifactAddition, R),
];

const LIMITED_GUEST: &[Perm] = &[
    (Project, R),
    (Quota, R),
    (Repository, L),
    (Repository, R),
    (Repository, Pull),
    (Configuration, R),
    (Scan, R),
    (Sbom, R),
    (Scanner, R),
    (Tag, L),
    (Accessory, L),
    (Artifact, R),
    (Artifact, L),
    (ArtifactAddition, R),
];

/// What everyone, anonymous callers included, may do in a public project.
pub const PUBLIC_PROJECT: &[Perm] = &[
    (Project, R),
    (Label, R),
    (Label, L),
    (Repository, L),
    (Repository, Pull),
    (Scan, R),
    (Scanner, R),
    (Tag, L),
    (Artifact, R),
    (Artifact, L),
    (ArtifactAddition, R),
    (Accessory, L),
];

/// What a robot may be granted in a project (Harbor's project scope with
/// its robot extensions).
pub const ROBOT_PROJECT_GRANTABLE: &[Perm] = &[
    (Log, L),
    (Project, R),
    (Project, D),
    (Project, U),
    (Metadata, R),
    (Metadata, C),
    (Metadata, D),
    (Metadata, L),
    (Metadata, U),
    (Repository, R),
    (Repository, U),
    (Repository, D),
    (Repository, L),
    (Repository, Pull),
    (Repository, Push),
    (Artifact, R),
    (Artifact, C),
    (Artifact, L),
    (Artifact, D),
    (Scan, C),
    (Scan, R),
    (Scan, Stop),
    (Sbom, C),
    (Sbom, Stop),
    (Sbom, R),
    (Tag, C),
    (Tag, L),
    (Tag, D),
    (Accessory, L),
    (ArtifactAddition, R),
    (ArtifactLabel, C),
    (ArtifactLabel, D),
    (Scanner, C),
    (Scanner, R),
    (PreheatPolicy, R),
    (PreheatPolicy, C),
    (PreheatPolicy, D),
    (PreheatPolicy, L),
    (PreheatPolicy, U),
    (ImmutableTag, C),
    (ImmutableTag, D),
    (ImmutableTag, L),
    (ImmutableTag, U),
    (NotificationPolicy, R),
    (NotificationPolicy, C),
    (NotificationPolicy, D),
    (NotificationPolicy, L),
    (NotificationPolicy, U),
    (TagRetention, R),
    (TagRetention, C),
    (TagRetention, D),
    (TagRetention, L),
    (TagRetention, U),
    (Label, R),
    (Label, C),
    (Label, D),
    (Label, L),
    (Label, U),
    (Quota, R),
    (Robot, C),
    (Robot, R),
    (Robot, L),
    (Robot, D),
    (ExportCve, C),
    (ExportCve, R),
    (Member, C),
    (Member, R),
    (Member, U),
    (Member, L),
    (Member, D),
];

/// What a system-level robot may be granted on the registry itself.
pub const ROBOT_SYSTEM_GRANTABLE: &[Perm] = &[
    (AuditLog, L),
    (PreheatInstance, R),
    (PreheatInstance, C),
    (PreheatInstance, D),
    (PreheatInstance, L),
    (PreheatInstance, U),
    (Res::Project, L),
    (Res::Project, C),
    (ReplicationPolicy, R),
    (ReplicationPolicy, C),
    (ReplicationPolicy, D),
    (ReplicationPolicy, L),
    (ReplicationPolicy, U),
    (Replication, R),
    (Replication, C),
    (Replication, L),
    (ReplicationAdapter, L),
    (Registry, R),
    (Registry, C),
    (Registry, D),
    (Registry, L),
    (Registry, U),
    (ScanAll, R),
    (ScanAll, U),
    (ScanAll, Stop),
    (ScanAll, C),
    (SystemVolumes, R),
    (GarbageCollection, R),
    (GarbageCollection, C),
    (GarbageCollection, L),
    (GarbageCollection, U),
    (GarbageCollection, Stop),
    (PurgeAudit, R),
    (PurgeAudit, C),
    (PurgeAudit, L),
    (PurgeAudit, U),
    (PurgeAudit, Stop),
    (JobServiceMonitor, L),
    (JobServiceMonitor, Stop),
    (Scanner, R),
    (Scanner, C),
    (Scanner, D),
    (Scanner, L),
    (Scanner, U),
    (Label, R),
    (Label, C),
    (Label, D),
    (Label, U),
    (SecurityHub, R),
    (SecurityHub, L),
    (Catalog, R),
    (Quota, R),
    (Quota, L),
    (Quota, U),
    (Robot, C),
    (Robot, R),
    (Robot, L),
    (Robot, D),
    (User, C),
    (User, R),
    (User, U),
    (User, L),
    (User, D),
    (LdapUser, C),
    (LdapUser, L),
    (UserGroup, C),
    (UserGroup, R),
    (UserGroup, U),
    (UserGroup, L),
    (UserGroup, D),
];

/// Every permission a project can be checked for: what any role or a
/// robot can hold there (the universe of `/users/current/permissions`).
pub fn project_permissions() -> Vec<Perm> {
    let mut all: Vec<Perm> = ALL_ROLES
        .iter()
        .flat_map(|r| r.permissions().iter().copied())
        .chain(ROBOT_PROJECT_GRANTABLE.iter().copied())
        .collect();
    all.sort_unstable();
    all.dedup();
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for r in ALL_RESOURCES {
            assert_eq!(Res::parse(r.as_str()), Some(*r));
        }
        for a in ALL_ACTIONS {
            assert_eq!(Act::parse(a.as_str()), Some(*a));
        }
        for role in ALL_ROLES {
            assert_eq!(Role::from_id(role.id()), Some(*role));
        }
        assert_eq!(Role::from_id(0), None);
        assert_eq!(Role::from_id(6), None);
    }

    #[test]
    fn roles_are_ordered_by_power() {
        let has = |role: Role, p: Perm| role.permissions().contains(&p);
        // Each role below another holds nothing the one above lacks, except
        // where Harbor's table says so (none among these).
        let chain = [Role::ProjectAdmin, Role::Maintainer, Role::Developer, Role::Guest, Role::LimitedGuest];
        for pair in chain.windows(2) {
            for p in pair[1].permissions() {
                assert!(has(pair[0], *p), "{:?} holds {p:?} but {:?} does not", pair[1], pair[0]);
            }
        }
        // The distinctions the roles exist for.
        assert!(has(Role::Developer, (Repository, Push)) && !has(Role::Guest, (Repository, Push)));
        assert!(has(Role::Maintainer, (Artifact, D)) && !has(Role::Developer, (Artifact, D)));
        assert!(has(Role::Guest, (Member, L)) && !has(Role::LimitedGuest, (Member, L)));
        assert!(has(Role::ProjectAdmin, (Member, C)) && !has(Role::Maintainer, (Member, C)));
    }

    #[test]
    fn tables_hold_no_duplicates() {
        for table in [PROJECT_ADMIN, MAINTAINER, DEVELOPER, GUEST, LIMITED_GUEST, PUBLIC_PROJECT] {
            let mut sorted = table.to_vec();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), table.len());
        }
    }
}

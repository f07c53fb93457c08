//! Robot accounts: non-human accounts with explicit permissions, at system
//! level (any projects, and system resources) or project level (one
//! project). A robot signs in with its name (with the configurable prefix,
//! `robot$` by default) and a secret shown only when it is made or
//! refreshed; only the secret's Argon2id hash is stored. Robots expire
//! after a number of days (or never) and can be disabled.
//!
//! A robot item is addressed by its name without the prefix (so changing
//! the prefix renames every robot at once, as in Harbor), with an id → name
//! item and an entry in the list of its level (the system robots, or its
//! project's robots), counted. Project permissions record the project's id,
//! so a robot never gains access to a new project that reuses a deleted
//! one's name. A robot making or changing a robot can grant no more than
//! it holds. Changing, refreshing or deleting a robot moves the account
//! epoch ([`super::revocation`]), so every replica forgets its secret.

use serde::{Deserialize, Serialize};

use crate::events::{Event, EventKind};
use crate::meta::keys::{self, Counted};
use crate::meta::{Condition, ErrorKind, Item, Query, Write, now_unix};
use crate::rbac::{Act, Perm, ROBOT_PROJECT_GRANTABLE, ROBOT_SYSTEM_GRANTABLE, Res};

use super::paging::{Listing, Match, PageRequest, count_write};
use super::projects::{Project, ProjectRef};
use super::record::{from_item, to_item};
use super::{Registry, ServiceError, ServiceResult, passwords};

/// The namespace of a system permission, and of a project permission that
/// covers every project.
pub const SYSTEM_NAMESPACE: &str = "/";
pub const ALL_PROJECTS: &str = "*";

/// A robot's level, and the kind of one of its permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RobotLevel {
    System,
    Project,
}

impl RobotLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::Project => "project",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "system" => Some(Self::System),
            "project" => Some(Self::Project),
            _ => None,
        }
    }
}

/// One permission as stored: what it grants, where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permission {
    pub kind: RobotLevel,
    /// The project's name, [`ALL_PROJECTS`], or [`SYSTEM_NAMESPACE`].
    pub namespace: String,
    /// The id of the project a project permission names (0 for every
    /// project, and for system permissions).
    #[serde(default)]
    pub project_id: i64,
    pub access: Vec<Access>,
}

/// One granted action on a kind of resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    pub resource: Res,
    pub action: Act,
}

impl Permission {
    /// The permissions this grants, as the matrix spells them.
    pub fn perms(&self) -> Vec<Perm> {
        self.access.iter().map(|a| (a.resource, a.action)).collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Robot {
    pub id: i64,
    /// The name without the prefix: `<name>` (system) or
    /// `<project>+<name>` (project level).
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub level: RobotLevel,
    /// The project of a project-level robot (0 for system robots).
    #[serde(default)]
    pub project_id: i64,
    /// Days of validity, -1 for never.
    pub duration: i64,
    /// Unix seconds, -1 for never. (Stored as `expires`: the table's
    /// `expires_at` is the item TTL, which would make the store drop it.)
    #[serde(rename = "expires")]
    pub expires_at: i64,
    #[serde(default)]
    pub disabled: bool,
    /// The secret's PHC string.
    pub secret: String,
    pub permissions: Vec<Permission>,
    #[serde(default)]
    pub creator_type: String,
    #[serde(default)]
    pub creator_ref: i64,
    pub creation_time: i64,
    pub update_time: i64,
}

impl Robot {
    pub fn expired(&self, now: i64) -> bool {
        self.expires_at != -1 && self.expires_at <= now
    }

    /// The project whose list holds the robot (none for system robots).
    fn list_project(&self) -> Option<i64> {
        (self.level == RobotLevel::Project).then_some(self.project_id)
    }
}

/// One permission as Harbor's `RobotPermission` asks for it, unchecked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
pub struct PermissionSpec {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub access: Vec<AccessSpec>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
pub struct AccessSpec {
    #[serde(default)]
    pub resource: String,
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub effect: Option<String>,
}

/// What a robot is made or changed with, as Harbor's `RobotCreate`.
#[derive(Debug, Clone, Default)]
pub struct RobotSpec {
    pub name: String,
    pub description: String,
    pub level: String,
    /// Days, -1 for never; `None` takes the `robot_token_duration` setting
    /// (a change keeps the robot's).
    pub duration: Option<i64>,
    pub disable: bool,
    pub permissions: Vec<PermissionSpec>,
}

/// Who makes or changes a robot (Harbor's `creator_type`/`creator_ref`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Creator {
    User(i64),
    /// A robot, which can grant no more than it holds.
    Robot(i64),
}

impl Creator {
    fn kind(self) -> &'static str {
        match self {
            Self::User(_) => "local",
            Self::Robot(_) => "robot",
        }
    }

    fn id(self) -> i64 {
        match self {
            Self::User(id) | Self::Robot(id) => id,
        }
    }
}

/// A robot just made or given a new secret, with the secret in clear.
#[derive(Debug, Clone)]
pub struct WithSecret {
    pub robot: Robot,
    pub secret: String,
}

fn robot_item(r: &Robot) -> ServiceResult<Item> {
    let (pk, sk) = keys::robot(&r.name);
    to_item(pk, sk, r, "robot")
}

fn list_of(project: Option<i64>) -> Counted<'static> {
    match project {
        None => Counted::SystemRobots,
        Some(id) => Counted::ProjectRobots(id),
    }
}

/// Harbor's robot name rule (a `+` would be ambiguous in project robots).
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name
            .split(['.', '_', '-'])
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
}

fn invalid(msg: impl Into<String>) -> ServiceError {
    ServiceError::Invalid(msg.into())
}

fn expiry(duration: i64, from: i64) -> i64 {
    if duration == -1 { -1 } else { from.saturating_add(duration.saturating_mul(86_400)) }
}

fn check_duration(duration: i64) -> ServiceResult<()> {
    if duration == -1 || (1..i64::from(i32::MAX)).contains(&duration) {
        Ok(())
    } else {
        Err(invalid(format!(
            "bad request error duration input: {duration}, duration must be either -1(Never) or a positive integer"
        )))
    }
}

fn level_of(s: &str) -> ServiceResult<RobotLevel> {
    RobotLevel::parse(s).ok_or_else(|| invalid(format!("bad request error level input: {s}")))
}

/// Checks a spec's permissions against what a robot of `level` may hold
/// and types them (project ids are filled in later).
fn typed_permissions(level: RobotLevel, specs: &[PermissionSpec]) -> ServiceResult<Vec<Permission>> {
    if specs.is_empty() || specs.iter().any(|p| p.access.is_empty()) {
        return Err(invalid("bad request empty permission or access"));
    }
    if level == RobotLevel::Project && (specs.len() != 1 || specs[0].kind != "project") {
        return Err(invalid("a project robot holds exactly one permission, of kind project"));
    }
    specs
        .iter()
        .map(|p| {
            let kind = RobotLevel::parse(&p.kind)
                .ok_or_else(|| invalid(format!("bad request permission level: {}", p.kind)))?;
            let grantable = match kind {
                RobotLevel::System => ROBOT_SYSTEM_GRANTABLE,
                RobotLevel::Project => ROBOT_PROJECT_GRANTABLE,
            };
            let access = p
                .access
                .iter()
                .map(|a| {
                    let perm = Res::parse(&a.resource).zip(Act::parse(&a.action));
                    let allow = a.effect.as_deref().is_none_or(|e| e.is_empty() || e == "allow");
                    match perm {
                        Some((resource, action)) if allow && grantable.contains(&(resource, action)) => {
                            Ok(Access { resource, action })
                        }
                        _ => Err(invalid(format!("bad request permission: {}:{}", a.resource, a.action))),
                    }
                })
                .collect::<ServiceResult<Vec<_>>>()?;
            let namespace = if kind == RobotLevel::System { SYSTEM_NAMESPACE.to_owned() } else { p.namespace.clone() };
            Ok(Permission { kind, namespace, project_id: 0, access })
        })
        .collect()
}

/// Whether every access of `wanted` is held by `holder` for the same
/// namespace (or for every project): a robot may only make robots with
/// less than or as much as it has.
pub fn within(wanted: &[Permission], holder: &[Permission]) -> bool {
    wanted.iter().all(|w| {
        holder
            .iter()
            .filter(|h| {
                h.kind == w.kind
                    && (h.namespace == w.namespace || (h.kind == RobotLevel::Project && h.namespace == ALL_PROJECTS))
            })
            .any(|h| {
                let have = h.perms();
                w.perms().iter().all(|p| have.contains(p))
            })
    })
}

impl Registry {
    /// Fills in the project ids of project permissions; `Invalid` for a
    /// project that does not exist.
    async fn resolve_projects(&self, permissions: &mut [Permission]) -> ServiceResult<()> {
        for p in permissions.iter_mut() {
            match p.kind {
                RobotLevel::Project if p.namespace == ALL_PROJECTS => p.project_id = 0,
                RobotLevel::Project => {
                    let project = self
                        .project(&ProjectRef::Name(p.namespace.clone()))
                        .await
                        .map_err(|_| invalid(format!("project {} not found", p.namespace)))?;
                    p.project_id = project.project_id;
                }
                RobotLevel::System => p.project_id = 0,
            }
        }
        Ok(())
    }

    /// Fails when a robot creator asks for more than it holds.
    async fn check_grantable(&self, by: Creator, wanted: &[Permission]) -> ServiceResult<()> {
        let Creator::Robot(id) = by else { return Ok(()) };
        let own = self.robot(id).await?;
        if within(wanted, &own.permissions) {
            Ok(())
        } else {
            Err(ServiceError::Forbidden(format!(
                "permission scope is invalid. It must be equal to or more restrictive than the creator robot's \
                 permissions: {}",
                own.name
            )))
        }
    }

    /// Makes a robot with a fresh secret. The caller has checked that `by`
    /// may make robots at this level; a robot creator may grant no more
    /// than it holds.
    pub async fn create_robot(&self, spec: RobotSpec, by: Creator) -> ServiceResult<WithSecret> {
        if !valid_name(&spec.name) {
            return Err(invalid("robot name is not in lower case or contains illegal characters"));
        }
        let level = level_of(&spec.level)?;
        let duration = match spec.duration {
            Some(d) => d,
            None => self.settings().await?.robot_token_duration.get(),
        };
        check_duration(duration)?;
        let mut permissions = typed_permissions(level, &spec.permissions)?;
        self.resolve_projects(&mut permissions).await?;
        self.check_grantable(by, &permissions).await?;
        let (name, project_id) = match level {
            RobotLevel::Project => (format!("{}+{}", permissions[0].namespace, spec.name), permissions[0].project_id),
            RobotLevel::System => (spec.name.clone(), 0),
        };
        let secret = passwords::generate(32);
        let (cpk, csk) = keys::counters();
        let id = self.meta.add(cpk, csk, "robot_id", 1, Condition::Always).await?;
        let now = now_unix();
        let robot = Robot {
            id,
            name,
            description: spec.description,
            level,
            project_id,
            duration,
            expires_at: expiry(duration, now),
            disabled: spec.disable,
            secret: passwords::hash(&secret)?,
            permissions,
            creator_type: by.kind().to_owned(),
            creator_ref: by.id(),
            creation_time: now,
            update_time: now,
        };
        let (ipk, isk) = keys::robot_id(id);
        let (epk, esk) = keys::robot_entry(robot.list_project(), &robot.name);
        let writes = vec![
            Write::Put { item: robot_item(&robot)?, cond: Condition::NotExists },
            Write::Put {
                item: Item::new(ipk, isk).with(keys::attr::NAME, robot.name.clone()),
                cond: Condition::NotExists,
            },
            Write::Put { item: Item::new(epk, esk).with(keys::attr::ID, id), cond: Condition::NotExists },
            count_write(list_of(robot.list_project()), &robot.name, 1),
        ];
        let event = Event::about(EventKind::CreateRobot, self.actor(), None, &robot.name);
        match self.commit_with_events(writes, vec![event]).await {
            Ok(()) => Ok(WithSecret { robot, secret }),
            Err(e) if e.is(ErrorKind::ConditionFailed) => {
                Err(ServiceError::Conflict(format!("robot account {} already exists", robot.name)))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A robot by id; `NotFound` when missing.
    pub async fn robot(&self, id: i64) -> ServiceResult<Robot> {
        let not_found = || ServiceError::NotFound(format!("robot {id} not found"));
        let (pk, sk) = keys::robot_id(id);
        let name = self
            .meta
            .get(&pk, &sk)
            .await?
            .and_then(|i| i.str(keys::attr::NAME).map(str::to_owned))
            .ok_or_else(not_found)?;
        self.robot_by_name(&name).await?.filter(|r| r.id == id).ok_or_else(not_found)
    }

    /// A robot by its name without the prefix.
    pub async fn robot_by_name(&self, name: &str) -> ServiceResult<Option<Robot>> {
        let (pk, sk) = keys::robot(name);
        self.meta.get(&pk, &sk).await?.map(|i| from_item(i, "robot")).transpose()
    }

    /// A page of the system robots (`project: None`) or of a project's
    /// robots, by name; a `name` filter is tested on the list's keys.
    pub async fn list_robots(
        &self,
        project: Option<i64>,
        name: Option<&Match>,
        req: &PageRequest,
    ) -> ServiceResult<Listing<Robot>> {
        let query = Query::table(keys::robot_list(project), "");
        let keep = |e: &Item| name.is_none_or(|m| m.matches(&e.sk));
        let (entries, next, total) = self.page_of(query, list_of(project), req, name.is_some(), keep).await?;
        let found = futures::future::join_all(entries.iter().map(|e| self.robot_by_name(&e.sk))).await;
        let mut items = Vec::with_capacity(found.len());
        for r in found {
            items.extend(r?);
        }
        Ok(Listing { items, total, next })
    }

    /// Checks a robot's secret: `Some` for an enabled, unexpired robot with
    /// that secret; `None` otherwise, at the same cost.
    pub async fn verify_robot(&self, name: &str, secret: &str) -> ServiceResult<Option<Robot>> {
        let robot = self.robot_by_name(name).await?;
        let phc = robot.as_ref().map(|r| r.secret.clone());
        if !passwords::verify(secret, phc).await? {
            return Ok(None);
        }
        Ok(robot.filter(|r| !r.disabled && !r.expired(now_unix())))
    }

    /// Stores a changed robot, failing on a concurrent change. Every change
    /// of a robot may take access away, so it moves the account epoch.
    async fn store_robot(&self, robot: &mut Robot, stamp: i64) -> ServiceResult<()> {
        robot.update_time = now_unix().max(stamp + 1);
        let put = Write::Put { item: robot_item(robot)?, cond: Condition::equals(keys::attr::UPDATE_TIME, stamp) };
        let event = Event::about(EventKind::UpdateRobot, self.actor(), None, &robot.name);
        match self.commit_with_events(vec![put, self.epoch.bump()], vec![event]).await {
            Ok(()) => {
                self.epoch.changed_here();
                Ok(())
            }
            Err(e) if e.is(ErrorKind::ConditionFailed) => {
                Err(ServiceError::Conflict(format!("robot {} changed meanwhile; try again", robot.id)))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Changes a robot's description, duration, disabled switch and
    /// permissions; its name, level and project cannot change. A robot
    /// changing a robot may grant no more than it holds.
    pub async fn update_robot(&self, id: i64, spec: RobotSpec, by: Creator) -> ServiceResult<Robot> {
        let mut robot = self.robot(id).await?;
        // The name as the API shows it (with the prefix), as stored, or the
        // short name it was made with.
        let short_name = robot.name.rsplit('+').next().unwrap_or(&robot.name);
        let named = spec.name == robot.name
            || spec.name == short_name
            || spec.name.strip_suffix(robot.name.as_str()).is_some_and(|prefix| !prefix.is_empty());
        if RobotLevel::parse(&spec.level) != Some(robot.level) || !named {
            return Err(invalid("cannot update the level or name of robot"));
        }
        let duration = spec.duration.unwrap_or(robot.duration);
        check_duration(duration)?;
        let mut permissions = typed_permissions(robot.level, &spec.permissions)?;
        self.resolve_projects(&mut permissions).await?;
        if robot.level == RobotLevel::Project && permissions[0].project_id != robot.project_id {
            return Err(invalid("cannot update the project id of robot"));
        }
        self.check_grantable(by, &permissions).await?;
        let stamp = robot.update_time;
        if duration != robot.duration {
            robot.duration = duration;
            robot.expires_at = expiry(duration, robot.creation_time);
        }
        robot.description = spec.description;
        robot.disabled = spec.disable;
        robot.permissions = permissions;
        self.store_robot(&mut robot, stamp).await?;
        Ok(robot)
    }

    /// Gives a robot a new secret: the one supplied (which must meet the
    /// password policy) or a generated one, returned in clear.
    pub async fn refresh_robot_secret(&self, id: i64, supplied: Option<&str>) -> ServiceResult<WithSecret> {
        let mut robot = self.robot(id).await?;
        let secret = match supplied {
            Some(s) => {
                passwords::check_policy(s)?;
                s.to_owned()
            }
            None => passwords::generate(32),
        };
        let stamp = robot.update_time;
        robot.secret = passwords::hash(&secret)?;
        self.store_robot(&mut robot, stamp).await?;
        Ok(WithSecret { robot, secret })
    }

    pub async fn delete_robot(&self, id: i64) -> ServiceResult<()> {
        let robot = self.robot(id).await?;
        let (pk, sk) = keys::robot(&robot.name);
        let (ipk, isk) = keys::robot_id(id);
        let (epk, esk) = keys::robot_entry(robot.list_project(), &robot.name);
        let writes = vec![
            Write::Delete { pk, sk, cond: Condition::equals(keys::attr::ID, id) },
            Write::Delete { pk: ipk, sk: isk, cond: Condition::Always },
            Write::Delete { pk: epk, sk: esk, cond: Condition::Exists },
            count_write(list_of(robot.list_project()), &robot.name, -1),
            self.epoch.bump(),
        ];
        let event = Event::about(EventKind::DeleteRobot, self.actor(), None, &robot.name);
        match self.commit_with_events(writes, vec![event]).await {
            Ok(()) => {
                self.epoch.changed_here();
                Ok(())
            }
            Err(e) if e.is(ErrorKind::ConditionFailed) => Err(ServiceError::NotFound(format!("robot {id} not found"))),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes the project-level robots of a deleted project.
    pub(super) async fn delete_project_robots(&self, project: &Project) -> ServiceResult<()> {
        loop {
            let page = self.list_robots(Some(project.project_id), None, &PageRequest::first(100)).await?;
            if page.items.is_empty() {
                return Ok(());
            }
            for robot in page.items {
                match self.delete_robot(robot.id).await {
                    Ok(()) | Err(ServiceError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::service::projects::{NewProject, Owner};
    use crate::testkit::local_registry;

    fn access(resource: &str, action: &str) -> AccessSpec {
        AccessSpec { resource: resource.into(), action: action.into(), effect: None }
    }

    fn project_spec(project: &str, name: &str, access: Vec<AccessSpec>) -> RobotSpec {
        RobotSpec {
            name: name.into(),
            description: String::new(),
            level: "project".into(),
            duration: Some(-1),
            disable: false,
            permissions: vec![PermissionSpec { kind: "project".into(), namespace: project.into(), access }],
        }
    }

    const ADMIN: Creator = Creator::User(1);

    #[tokio::test]
    async fn robots_lifecycle() {
        let (_dir, reg) = local_registry().await;
        let owner = Owner { id: 1, name: "admin".into(), sysadmin: true };
        let p = reg.create_project(NewProject { name: "team".into(), ..NewProject::default() }, &owner).await.unwrap();
        let made = reg.create_robot(project_spec("team", "ci", vec![access("repository", "push")]), ADMIN);
        let made = made.await.unwrap();
        assert_eq!(made.robot.name, "team+ci");
        assert_eq!((made.robot.project_id, made.robot.expires_at), (p.project_id, -1));
        assert!(reg.verify_robot("team+ci", &made.secret).await.unwrap().is_some());
        assert!(reg.verify_robot("team+ci", "Wrong12345").await.unwrap().is_none());
        assert!(reg.verify_robot("team+nobody", &made.secret).await.unwrap().is_none());
        assert!(matches!(
            reg.create_robot(project_spec("team", "ci", vec![access("repository", "pull")]), ADMIN).await,
            Err(ServiceError::Conflict(_))
        ));
        for bad in [
            project_spec("team", "Bad", vec![access("repository", "pull")]),
            project_spec("team", "a+b", vec![access("repository", "pull")]),
            project_spec("team", "x", vec![access("user", "create")]),
            project_spec("team", "x", vec![access("repository", "fly")]),
            project_spec("team", "x", vec![]),
            project_spec("nowhere", "x", vec![access("repository", "pull")]),
        ] {
            assert!(matches!(reg.create_robot(bad, ADMIN).await, Err(ServiceError::Invalid(_))));
        }
        let listed = reg.list_robots(Some(p.project_id), None, &PageRequest::first(10)).await.unwrap();
        assert_eq!((listed.items.len(), listed.total), (1, 1));
        assert_eq!(reg.list_robots(None, None, &PageRequest::first(10)).await.unwrap().total, 0);

        // Disabled, then expired robots cannot sign in.
        let mut spec = project_spec("team", "ci", vec![access("repository", "pull")]);
        spec.disable = true;
        reg.update_robot(made.robot.id, spec.clone(), ADMIN).await.unwrap();
        assert!(reg.verify_robot("team+ci", &made.secret).await.unwrap().is_none());
        spec.disable = false;
        spec.duration = Some(1);
        let updated = reg.update_robot(made.robot.id, spec.clone(), ADMIN).await.unwrap();
        assert_eq!(updated.expires_at, updated.creation_time + 86_400);
        assert!(reg.verify_robot("team+ci", &made.secret).await.unwrap().is_some());
        spec.name = "other".into();
        assert!(matches!(reg.update_robot(made.robot.id, spec, ADMIN).await, Err(ServiceError::Invalid(_))));

        let fresh = reg.refresh_robot_secret(made.robot.id, None).await.unwrap();
        assert!(reg.verify_robot("team+ci", &made.secret).await.unwrap().is_none(), "the old secret is gone");
        assert!(reg.verify_robot("team+ci", &fresh.secret).await.unwrap().is_some());
        assert!(matches!(reg.refresh_robot_secret(made.robot.id, Some("weak")).await, Err(ServiceError::Invalid(_))));
        reg.refresh_robot_secret(made.robot.id, Some("Chosen12345")).await.unwrap();
        assert!(reg.verify_robot("team+ci", "Chosen12345").await.unwrap().is_some());

        // A robot makes robots with at most what it holds.
        let by = Creator::Robot(made.robot.id);
        let more = project_spec("team", "more", vec![access("repository", "push")]);
        assert!(matches!(reg.create_robot(more, by).await, Err(ServiceError::Forbidden(_))));
        let less = project_spec("team", "less", vec![access("repository", "pull")]);
        assert_eq!(reg.create_robot(less, by).await.unwrap().robot.creator_type, "robot");

        // Deleting the project deletes its robots.
        reg.delete_project(&ProjectRef::Id(p.project_id)).await.unwrap();
        assert!(matches!(reg.robot(made.robot.id).await, Err(ServiceError::NotFound(_))));
        assert_eq!(reg.list_robots(Some(p.project_id), None, &PageRequest::first(10)).await.unwrap().total, 0);
    }

    #[test]
    fn robots_make_robots_within_their_own_permissions() {
        let perm = |ns: &str, a: &[(Res, Act)]| Permission {
            kind: RobotLevel::Project,
            namespace: ns.into(),
            project_id: 0,
            access: a.iter().map(|(resource, action)| Access { resource: *resource, action: *action }).collect(),
        };
        let holder = [perm("team", &[(Res::Repository, Act::Pull), (Res::Repository, Act::Push)])];
        assert!(within(&[perm("team", &[(Res::Repository, Act::Pull)])], &holder));
        assert!(!within(&[perm("team", &[(Res::Repository, Act::Delete)])], &holder));
        assert!(!within(&[perm("other", &[(Res::Repository, Act::Pull)])], &holder));
        let everywhere = [perm(ALL_PROJECTS, &[(Res::Repository, Act::Pull)])];
        assert!(within(&[perm("other", &[(Res::Repository, Act::Pull)])], &everywhere));
    }

    #[test]
    fn stored_robots_of_earlier_versions_still_read() {
        let stored = serde_json::json!({"id": 3, "name": "ci", "level": "system", "duration": -1, "expires": -1,
            "secret": "x", "creation_time": 1, "update_time": 1,
            "permissions": [{"kind": "project", "namespace": "*", "project_id": 0,
                "access": [{"resource": "repository", "action": "pull", "effect": ""}]}]});
        let robot: Robot = serde_json::from_value(stored).unwrap();
        assert_eq!(robot.permissions[0].perms(), [(Res::Repository, Act::Pull)]);
    }
}

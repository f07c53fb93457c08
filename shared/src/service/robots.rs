//! Robot accounts: non-human accounts with explicit permissions, at system
//! level (any projects, and system resources) or project level (one
//! project). A robot signs in with its name (with the configurable prefix,
//! `robot$` by default) and a secret shown only when it is made or
//! refreshed; only the secret's Argon2id hash is stored. Robots expire
//! after a number of days (or never) and can be disabled.
//!
//! A robot item is addressed by its name without the prefix (so changing
//! the prefix renames every robot at once, as in Harbor), with an id → name
//! item and a list entry. Project permissions record the project's id, so
//! a robot never gains access to a new project that reuses a deleted one's
//! name.

use serde::{Deserialize, Serialize};

use crate::auth::rbac::{Act, Perm, ROBOT_PROJECT_GRANTABLE, ROBOT_SYSTEM_GRANTABLE, Res};
use crate::meta::{Condition, ErrorKind, Item, Query, Write, keys, now_unix};

use super::projects::{Project, ProjectRef};
use super::record::{from_item, to_item};
use super::{Registry, ServiceError, ServiceResult, passwords};

pub const LEVEL_SYSTEM: &str = "system";
pub const LEVEL_PROJECT: &str = "project";
/// The namespace of a system permission, and of a project permission that
/// covers every project.
pub const SYSTEM_NAMESPACE: &str = "/";
pub const ALL_PROJECTS: &str = "*";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    pub resource: String,
    pub action: String,
    #[serde(default)]
    pub effect: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permission {
    pub kind: String,
    pub namespace: String,
    /// The id of the project a project permission names (0 for every
    /// project, and for system permissions).
    #[serde(default)]
    pub project_id: i64,
    pub access: Vec<Access>,
}

impl Permission {
    /// The permissions this grants, as the matrix spells them.
    pub fn perms(&self) -> Vec<Perm> {
        self.access
            .iter()
            .filter(|a| a.effect.is_empty() || a.effect == "allow")
            .filter_map(|a| Some((Res::parse(&a.resource)?, Act::parse(&a.action)?)))
            .collect()
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
    pub level: String,
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
}

/// What a robot is made or changed with, as Harbor's `RobotCreate`.
#[derive(Debug, Clone, Default)]
pub struct RobotSpec {
    pub name: String,
    pub description: String,
    pub level: String,
    pub duration: i64,
    pub disable: bool,
    pub permissions: Vec<Permission>,
}

/// Who makes a robot (Harbor's `creator_type`/`creator_ref`).
#[derive(Debug, Clone)]
pub struct Creator {
    pub kind: &'static str,
    pub id: i64,
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

/// Checks the shape of a spec (but its name): duration, level, and that
/// each access is one a robot may hold at its kind.
fn validate(spec: &RobotSpec) -> ServiceResult<()> {
    if spec.duration != -1 && !(1..i64::from(i32::MAX)).contains(&spec.duration) {
        return Err(invalid(format!(
            "bad request error duration input: {}, duration must be either -1(Never) or a positive integer",
            spec.duration
        )));
    }
    if spec.level != LEVEL_SYSTEM && spec.level != LEVEL_PROJECT {
        return Err(invalid(format!("bad request error level input: {}", spec.level)));
    }
    if spec.permissions.is_empty() || spec.permissions.iter().any(|p| p.access.is_empty()) {
        return Err(invalid("bad request empty permission or access"));
    }
    if spec.level == LEVEL_PROJECT && (spec.permissions.len() != 1 || spec.permissions[0].kind != LEVEL_PROJECT) {
        return Err(invalid("a project robot holds exactly one permission, of kind project"));
    }
    for p in &spec.permissions {
        let grantable = match p.kind.as_str() {
            LEVEL_SYSTEM => ROBOT_SYSTEM_GRANTABLE,
            LEVEL_PROJECT => ROBOT_PROJECT_GRANTABLE,
            other => return Err(invalid(format!("bad request permission level: {other}"))),
        };
        for a in &p.access {
            let perm = Res::parse(&a.resource).zip(Act::parse(&a.action));
            if !perm.is_some_and(|perm| grantable.contains(&perm)) || !(a.effect.is_empty() || a.effect == "allow") {
                return Err(invalid(format!("bad request permission: {}:{}", a.resource, a.action)));
            }
        }
    }
    Ok(())
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
                    && (h.namespace == w.namespace || (h.kind == LEVEL_PROJECT && h.namespace == ALL_PROJECTS))
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
            match p.kind.as_str() {
                LEVEL_PROJECT if p.namespace == ALL_PROJECTS => p.project_id = 0,
                LEVEL_PROJECT => {
                    let project = self
                        .project(&ProjectRef::Name(p.namespace.clone()))
                        .await
                        .map_err(|_| invalid(format!("project {} not found", p.namespace)))?;
                    p.project_id = project.project_id;
                }
                _ => {
                    p.namespace = SYSTEM_NAMESPACE.to_owned();
                    p.project_id = 0;
                }
            }
        }
        Ok(())
    }

    /// Makes a robot with a fresh secret. The caller has checked that the
    /// creator may make robots at this level (and, for a robot creator,
    /// that the permissions are [`within`] its own).
    pub async fn create_robot(&self, spec: RobotSpec, creator: Creator) -> ServiceResult<WithSecret> {
        if !valid_name(&spec.name) {
            return Err(invalid("robot name is not in lower case or contains illegal characters"));
        }
        validate(&spec)?;
        let mut permissions = spec.permissions.clone();
        self.resolve_projects(&mut permissions).await?;
        let (name, project_id) = if spec.level == LEVEL_PROJECT {
            (format!("{}+{}", permissions[0].namespace, spec.name), permissions[0].project_id)
        } else {
            (spec.name.clone(), 0)
        };
        let secret = passwords::generate(32);
        let (cpk, csk) = keys::counters();
        let id = self.meta.add(cpk, csk, "robot_id", 1, Condition::Always).await?;
        let now = now_unix();
        let robot = Robot {
            id,
            name,
            description: spec.description,
            level: spec.level,
            project_id,
            duration: spec.duration,
            expires_at: expiry(spec.duration, now),
            disabled: spec.disable,
            secret: passwords::hash(&secret)?,
            permissions,
            creator_type: creator.kind.to_owned(),
            creator_ref: creator.id,
            creation_time: now,
            update_time: now,
        };
        let (ipk, isk) = keys::robot_id(id);
        let (epk, esk) = keys::robot_entry(&robot.name);
        let writes = vec![
            Write::Put { item: robot_item(&robot)?, cond: Condition::NotExists },
            Write::Put { item: Item::new(ipk, isk).with("name", robot.name.clone()), cond: Condition::NotExists },
            Write::Put { item: Item::new(epk, esk).with("id", id), cond: Condition::Always },
        ];
        match self.meta.transact(writes).await {
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
        let name =
            self.meta.get(&pk, &sk).await?.and_then(|i| i.str("name").map(str::to_owned)).ok_or_else(not_found)?;
        self.robot_by_name(&name).await?.filter(|r| r.id == id).ok_or_else(not_found)
    }

    /// A robot by its name without the prefix.
    pub async fn robot_by_name(&self, name: &str) -> ServiceResult<Option<Robot>> {
        let (pk, sk) = keys::robot(name);
        self.meta.get(&pk, &sk).await?.map(|i| from_item(i, "robot")).transpose()
    }

    /// Every robot, by name. (One partition; robots number in the
    /// thousands at most.)
    pub async fn list_robots(&self) -> ServiceResult<Vec<Robot>> {
        let entries = self.meta.query_all(Query::table(keys::ROBOTS, "")).await?;
        let found = futures::future::join_all(entries.iter().map(|e| self.robot_by_name(&e.sk))).await;
        let mut out = Vec::with_capacity(found.len());
        for r in found {
            if let Some(r) = r? {
                out.push(r);
            }
        }
        Ok(out)
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

    /// Stores a changed robot, failing on a concurrent change.
    async fn store_robot(&self, robot: &mut Robot, stamp: i64) -> ServiceResult<()> {
        robot.update_time = now_unix().max(stamp + 1);
        match self.meta.put(robot_item(robot)?, Condition::equals("update_time", stamp)).await {
            Err(e) if e.is(ErrorKind::ConditionFailed) => {
                Err(ServiceError::Conflict(format!("robot {} changed meanwhile; try again", robot.id)))
            }
            other => other.map_err(Into::into),
        }
    }

    /// Changes a robot's description, duration, disabled switch and
    /// permissions; its name, level and project cannot change.
    pub async fn update_robot(&self, id: i64, spec: RobotSpec) -> ServiceResult<Robot> {
        let mut robot = self.robot(id).await?;
        // The name as the API shows it (with the prefix), as stored, or the
        // short name it was made with.
        let short_name = robot.name.rsplit('+').next().unwrap_or(&robot.name);
        let named = spec.name == robot.name
            || spec.name == short_name
            || spec.name.strip_suffix(robot.name.as_str()).is_some_and(|prefix| !prefix.is_empty());
        if spec.level != robot.level || !named {
            return Err(invalid("cannot update the level or name of robot"));
        }
        validate(&spec)?;
        let mut permissions = spec.permissions;
        self.resolve_projects(&mut permissions).await?;
        if robot.level == LEVEL_PROJECT && permissions[0].project_id != robot.project_id {
            return Err(invalid("cannot update the project id of robot"));
        }
        let stamp = robot.update_time;
        if spec.duration != robot.duration {
            robot.duration = spec.duration;
            robot.expires_at = expiry(spec.duration, robot.creation_time);
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
        let (epk, esk) = keys::robot_entry(&robot.name);
        let writes = vec![
            Write::Delete { pk, sk, cond: Condition::equals("id", id) },
            Write::Delete { pk: ipk, sk: isk, cond: Condition::Always },
            Write::Delete { pk: epk, sk: esk, cond: Condition::Always },
        ];
        match self.meta.transact(writes).await {
            Err(e) if e.is(ErrorKind::ConditionFailed) => Err(ServiceError::NotFound(format!("robot {id} not found"))),
            other => other.map_err(Into::into),
        }
    }

    /// Deletes the project-level robots of a deleted project.
    pub(super) async fn delete_project_robots(&self, project: &Project) -> ServiceResult<()> {
        for robot in self.list_robots().await? {
            if robot.level == LEVEL_PROJECT && robot.project_id == project.project_id {
                match self.delete_robot(robot.id).await {
                    Ok(()) | Err(ServiceError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::service::projects::{NewProject, Owner};
    use crate::testkit::local_registry;

    fn access(resource: &str, action: &str) -> Access {
        Access { resource: resource.into(), action: action.into(), effect: String::new() }
    }

    fn project_spec(project: &str, name: &str, access: Vec<Access>) -> RobotSpec {
        RobotSpec {
            name: name.into(),
            description: String::new(),
            level: LEVEL_PROJECT.into(),
            duration: -1,
            disable: false,
            permissions: vec![Permission {
                kind: LEVEL_PROJECT.into(),
                namespace: project.into(),
                project_id: 0,
                access,
            }],
        }
    }

    fn creator() -> Creator {
        Creator { kind: "local", id: 1 }
    }

    #[tokio::test]
    async fn robots_lifecycle() {
        let (_dir, reg) = local_registry().await;
        let owner = Owner { id: 1, name: "admin".into() };
        let p = reg.create_project(NewProject { name: "team".into(), ..NewProject::default() }, &owner).await.unwrap();
        let made = reg.create_robot(project_spec("team", "ci", vec![access("repository", "push")]), creator());
        let made = made.await.unwrap();
        assert_eq!(made.robot.name, "team+ci");
        assert_eq!((made.robot.project_id, made.robot.expires_at), (p.project_id, -1));
        assert!(reg.verify_robot("team+ci", &made.secret).await.unwrap().is_some());
        assert!(reg.verify_robot("team+ci", "Wrong12345").await.unwrap().is_none());
        assert!(reg.verify_robot("team+nobody", &made.secret).await.unwrap().is_none());
        assert!(matches!(
            reg.create_robot(project_spec("team", "ci", vec![access("repository", "pull")]), creator()).await,
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
            assert!(matches!(reg.create_robot(bad, creator()).await, Err(ServiceError::Invalid(_))));
        }

        // Disabled, then expired robots cannot sign in.
        let mut spec = project_spec("team", "ci", vec![access("repository", "pull")]);
        spec.disable = true;
        reg.update_robot(made.robot.id, spec.clone()).await.unwrap();
        assert!(reg.verify_robot("team+ci", &made.secret).await.unwrap().is_none());
        spec.disable = false;
        spec.duration = 1;
        let updated = reg.update_robot(made.robot.id, spec.clone()).await.unwrap();
        assert_eq!(updated.expires_at, updated.creation_time + 86_400);
        assert!(reg.verify_robot("team+ci", &made.secret).await.unwrap().is_some());
        spec.name = "other".into();
        assert!(matches!(reg.update_robot(made.robot.id, spec).await, Err(ServiceError::Invalid(_))));

        let fresh = reg.refresh_robot_secret(made.robot.id, None).await.unwrap();
        assert!(reg.verify_robot("team+ci", &made.secret).await.unwrap().is_none(), "the old secret is gone");
        assert!(reg.verify_robot("team+ci", &fresh.secret).await.unwrap().is_some());
        assert!(matches!(reg.refresh_robot_secret(made.robot.id, Some("weak")).await, Err(ServiceError::Invalid(_))));
        reg.refresh_robot_secret(made.robot.id, Some("Chosen12345")).await.unwrap();
        assert!(reg.verify_robot("team+ci", "Chosen12345").await.unwrap().is_some());

        // Deleting the project deletes its robots.
        reg.delete_project(&ProjectRef::Id(p.project_id)).await.unwrap();
        assert!(matches!(reg.robot(made.robot.id).await, Err(ServiceError::NotFound(_))));
        assert!(reg.list_robots().await.unwrap().is_empty());
    }

    #[test]
    fn robots_make_robots_within_their_own_permissions() {
        let perm = |ns: &str, a: &[(&str, &str)]| Permission {
            kind: LEVEL_PROJECT.into(),
            namespace: ns.into(),
            project_id: 0,
            access: a.iter().map(|(r, x)| access(r, x)).collect(),
        };
        let holder = [perm("team", &[("repository", "pull"), ("repository", "push")])];
        assert!(within(&[perm("team", &[("repository", "pull")])], &holder));
        assert!(!within(&[perm("team", &[("repository", "delete")])], &holder));
        assert!(!within(&[perm("other", &[("repository", "pull")])], &holder));
        let everywhere = [perm(ALL_PROJECTS, &[("repository", "pull")])];
        assert!(within(&[perm("other", &[("repository", "pull")])], &everywhere));
    }
}

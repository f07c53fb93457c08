//! The permission check: who may take which action ([`Perm`]) on the
//! registry, a project or a repository, reading the matrix in
//! [`crate::rbac`]. [`authorize`] is a pure function of the subject and
//! what it acts on; [`access_to`] loads what the decision needs of a
//! project (the caller's roles there). No handler checks roles on its own.

use std::sync::Arc;

use crate::oci::RepoName;
use crate::rbac::{Act, PUBLIC_PROJECT, Perm, Res, Role};
use crate::service::projects::Project;
use crate::service::robots::{Robot, RobotLevel};
use crate::service::users::User;
use crate::service::{Registry, ServiceError};

use super::token;

/// A signed-in user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPrincipal {
    pub id: i64,
    pub name: String,
    /// The stored system-administrator flag, or a directory's admin group.
    pub sysadmin: bool,
    /// The user groups the user belongs to.
    pub groups: Vec<i64>,
}

impl From<&User> for UserPrincipal {
    fn from(u: &User) -> Self {
        Self { id: u.user_id, name: u.username.clone(), sysadmin: u.is_admin(), groups: u.group_ids.clone() }
    }
}

/// What one of a robot's permissions grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// On the registry's own resources.
    pub system: bool,
    /// In one project (by id), or in every project (`None`).
    pub project: Option<i64>,
    pub perms: Vec<Perm>,
}

/// A signed-in robot account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RobotPrincipal {
    pub id: i64,
    /// The name with the prefix, as the robot signs in.
    pub name: String,
    pub level: RobotLevel,
    /// The project of a project-level robot.
    pub project_id: i64,
    /// Unix seconds, -1 for never.
    pub expires_at: i64,
    pub grants: Vec<Grant>,
}

impl RobotPrincipal {
    pub fn new(robot: &Robot, prefix: &str) -> Self {
        let grants = robot
            .permissions
            .iter()
            .map(|p| Grant {
                system: p.kind == RobotLevel::System,
                project: (p.kind == RobotLevel::Project && p.project_id != 0).then_some(p.project_id),
                perms: p.perms(),
            })
            .collect();
        Self {
            id: robot.id,
            name: format!("{prefix}{}", robot.name),
            level: robot.level,
            project_id: robot.project_id,
            expires_at: robot.expires_at,
            grants,
        }
    }

    fn allows_system(&self, perm: Perm) -> bool {
        self.grants.iter().any(|g| g.system && g.perms.contains(&perm))
    }

    /// A robot with push may pull what it pushes to (as in Harbor).
    fn allows_in(&self, project_id: i64, perm: Perm) -> bool {
        let implied = (perm == (Res::Repository, Act::Pull)).then_some((Res::Repository, Act::Push));
        self.grants.iter().filter(|g| !g.system && g.project.is_none_or(|p| p == project_id)).any(|g| {
            // A project robot acts only in its own project.
            (self.level != RobotLevel::Project || project_id == self.project_id)
                && (g.perms.contains(&perm) || implied.is_some_and(|i| g.perms.contains(&i)))
        })
    }
}

/// The caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Anonymous,
    User(Arc<UserPrincipal>),
    Robot(Arc<RobotPrincipal>),
    /// The bearer of a registry token: exactly what its `access` claim
    /// grants (computed by [`authorize`] when the token was issued).
    Token(Box<token::Claims>),
}

impl Subject {
    pub fn is_sysadmin(&self) -> bool {
        matches!(self, Self::User(u) if u.sysadmin)
    }

    pub fn is_authenticated(&self) -> bool {
        !matches!(self, Self::Anonymous)
    }

    /// The account name (empty for the anonymous caller).
    pub fn name(&self) -> &str {
        match self {
            Self::Anonymous => "",
            Self::User(u) => &u.name,
            Self::Robot(r) => &r.name,
            Self::Token(c) => &c.sub,
        }
    }

    pub fn user(&self) -> Option<&UserPrincipal> {
        match self {
            Self::User(u) => Some(u),
            _ => None,
        }
    }
}

/// A project as a permission check needs it: its id, whether it is public,
/// and the roles the subject holds in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectAccess {
    pub id: i64,
    pub name: String,
    pub public: bool,
    pub roles: Vec<Role>,
}

/// What a permission is checked on.
#[derive(Debug, Clone, Copy)]
pub enum On<'a> {
    /// The registry itself (system resources).
    Registry,
    Project(&'a ProjectAccess),
    /// A repository, with its project when it exists (callers skip the
    /// lookup for subjects that do not need it: administrators, tokens).
    Repository {
        repo: &'a RepoName,
        project: Option<&'a ProjectAccess>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// No (or no valid) credentials: the caller should authenticate.
    Challenge,
    /// Authenticated, but not allowed.
    Deny,
}

/// The permission check.
///
/// - The system administrator may do everything.
/// - In a project, a user may do what its roles there allow (Harbor's
///   matrix, [`rbac::Role::permissions`]); a robot what its grants for the
///   project allow; and everyone, anonymous callers included, what
///   [`rbac::PUBLIC_PROJECT`] allows in a public project.
/// - On the registry, a signed-in user may create and list projects (what
///   it sees is filtered per project) and nothing else; a robot what its
///   system grants allow; an anonymous caller may list projects.
/// - A registry token allows exactly the repository actions (and catalog
///   access) of its `access` claim.
pub fn authorize(subject: &Subject, perm: Perm, on: On<'_>) -> Decision {
    let project = match on {
        On::Registry => None,
        On::Project(p) => Some(p),
        On::Repository { project, .. } => project,
    };
    let public = project.is_some_and(|p| p.public && PUBLIC_PROJECT.contains(&perm));
    let allowed = match subject {
        Subject::User(u) if u.sysadmin => true,
        Subject::Token(claims) => token_allows(claims, perm, on),
        Subject::Anonymous => match on {
            On::Registry => perm == (Res::Project, Act::List),
            _ => public,
        },
        Subject::User(_) => match on {
            On::Registry => matches!(perm, (Res::Project, Act::List | Act::Create)),
            _ => public || project.is_some_and(|p| p.roles.iter().any(|r| r.permissions().contains(&perm))),
        },
        Subject::Robot(r) => match on {
            On::Registry => r.allows_system(perm),
            _ => public || project.is_some_and(|p| r.allows_in(p.id, perm)),
        },
    };
    match (allowed, subject) {
        (true, _) => Decision::Allow,
        (false, Subject::Anonymous) => Decision::Challenge,
        (false, _) => Decision::Deny,
    }
}

/// The Docker scope word of a repository action.
pub fn scope_word(act: Act) -> Option<&'static str> {
    match act {
        Act::Pull => Some("pull"),
        Act::Push => Some("push"),
        Act::Delete => Some("delete"),
        _ => None,
    }
}

fn token_allows(claims: &token::Claims, perm: Perm, on: On<'_>) -> bool {
    match (perm, on) {
        ((Res::Catalog, Act::Read), On::Registry) => claims.allows("registry", "catalog", "*"),
        ((Res::Repository, act), On::Repository { repo, .. }) => {
            scope_word(act).is_some_and(|w| claims.allows("repository", repo.as_str(), w))
        }
        _ => false,
    }
}

/// Loads what [`authorize`] needs to know of `project` for `subject`: the
/// roles of a user (its own membership and its groups'); nothing for
/// other subjects.
pub async fn access_to(
    registry: &Registry,
    subject: &Subject,
    project: &Project,
) -> Result<ProjectAccess, ServiceError> {
    let roles = match subject {
        Subject::User(u) => registry.roles_in(project, u.id, &u.groups).await?,
        _ => Vec::new(),
    };
    Ok(ProjectAccess { id: project.project_id, name: project.name.clone(), public: project.public(), roles })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn admin() -> Subject {
        Subject::User(Arc::new(UserPrincipal { id: 1, name: "admin".into(), sysadmin: true, groups: vec![] }))
    }

    #[test]
    fn users_get_their_roles_and_public_reads() {
        let user = Subject::User(Arc::new(UserPrincipal { id: 5, name: "u".into(), sysadmin: false, groups: vec![] }));
        let anon = Subject::Anonymous;
        let private = |roles: Vec<Role>| ProjectAccess { id: 2, name: "p".into(), public: false, roles };
        let public = ProjectAccess { public: true, ..private(vec![]) };
        let pull = (Res::Repository, Act::Pull);
        let push = (Res::Repository, Act::Push);
        assert_eq!(authorize(&admin(), push, On::Project(&private(vec![]))), Decision::Allow);
        assert_eq!(authorize(&anon, pull, On::Project(&private(vec![]))), Decision::Challenge);
        assert_eq!(authorize(&anon, pull, On::Project(&public)), Decision::Allow);
        assert_eq!(authorize(&anon, push, On::Project(&public)), Decision::Challenge);
        assert_eq!(authorize(&user, pull, On::Project(&public)), Decision::Allow);
        assert_eq!(authorize(&user, push, On::Project(&public)), Decision::Deny);
        assert_eq!(authorize(&user, pull, On::Project(&private(vec![]))), Decision::Deny);
        assert_eq!(authorize(&user, push, On::Project(&private(vec![Role::Developer]))), Decision::Allow);
        assert_eq!(authorize(&user, push, On::Project(&private(vec![Role::Guest]))), Decision::Deny);
        assert_eq!(
            authorize(&user, push, On::Project(&private(vec![Role::Guest, Role::Developer]))),
            Decision::Allow,
            "roles add up"
        );
        assert_eq!(authorize(&user, (Res::Catalog, Act::Read), On::Registry), Decision::Deny);
        assert_eq!(authorize(&user, (Res::Project, Act::Create), On::Registry), Decision::Allow);
        assert_eq!(authorize(&anon, (Res::Project, Act::Create), On::Registry), Decision::Challenge);
        let repo = RepoName::parse("p/x").unwrap();
        let unknown = On::Repository { repo: &repo, project: None };
        assert_eq!(authorize(&user, pull, unknown), Decision::Deny, "no project, no access");
        assert_eq!(authorize(&admin(), pull, unknown), Decision::Allow);
    }
}

//! Who is asking, and may they.
//!
//! [`Authenticator`] turns a request's credentials into a [`Subject`]: the
//! anonymous caller, a user (local, or vouched for by a [`Directory`] such
//! as LDAP), a robot account, or the bearer of a registry token.
//! [`authorize`] is the one function that answers whether a subject may
//! take an action ([`rbac::Perm`]) on the registry, a project or a
//! repository, reading the matrix in [`rbac`]. No handler checks roles on
//! its own: handlers load what the decision needs ([`access_to`]: the
//! project and the caller's roles in it) and ask.

pub mod ldap;
pub mod oidc;
pub mod rbac;
pub mod seal;
pub mod session;
pub mod token;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest as _, Sha256};

use crate::oci::RepoName;
use crate::port::PortError;
use crate::service::projects::Project;
use crate::service::robots::{LEVEL_PROJECT, LEVEL_SYSTEM, Robot};
use crate::service::settings::{Settings, SettingsStore};
use crate::service::users::{ADMIN, User};
use crate::service::{Registry, ServiceError};

use self::rbac::{Act, PUBLIC_PROJECT, Perm, Res, Role};

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
    pub level: String,
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
                system: p.kind == LEVEL_SYSTEM,
                project: (p.kind == LEVEL_PROJECT && p.project_id != 0).then_some(p.project_id),
                perms: p.perms(),
            })
            .collect();
        Self {
            id: robot.id,
            name: format!("{prefix}{}", robot.name),
            level: robot.level.clone(),
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
            (self.level != LEVEL_PROJECT || project_id == self.project_id)
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

/// Why credentials were refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("malformed authorization header")]
    Malformed,
    #[error("invalid token: {0}")]
    InvalidToken(String),
    /// The directory (LDAP…) could not be asked.
    #[error("the identity provider is unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Backend(#[from] PortError),
}

impl From<ServiceError> for AuthError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Backend(p) => Self::Backend(p),
            other => Self::Unavailable(other.to_string()),
        }
    }
}

/// A source of identities other than the table's passwords (LDAP; OIDC
/// CLI secrets), used for every user but the administrator in its auth
/// mode. It checks credentials and onboards the user it vouches for.
#[async_trait]
pub trait Directory: Send + Sync + std::fmt::Debug {
    /// The user these credentials belong to (created or refreshed in the
    /// table), or `None` when they are wrong or the user is unknown.
    async fn authenticate(
        &self,
        registry: &Registry,
        settings: &Settings,
        username: &str,
        password: &str,
    ) -> Result<Option<User>, AuthError>;

    /// Onboards a user the directory knows by name, without its password
    /// (a project admin adding a member by name); `None` when unknown.
    async fn onboard_user(
        &self,
        _registry: &Registry,
        _settings: &Settings,
        _username: &str,
    ) -> Result<Option<User>, AuthError> {
        Ok(None)
    }

    /// Onboards a group the directory knows by its identity (an LDAP DN),
    /// named `name` when given; `None` when unknown.
    async fn onboard_group(
        &self,
        _registry: &Registry,
        _settings: &Settings,
        _identity: &str,
        _name: &str,
    ) -> Result<Option<crate::service::groups::Group>, AuthError> {
        Ok(None)
    }
}

/// How long a verified credential is remembered, so that a client sending
/// basic credentials on every request pays for the memory-hard hash (or
/// the directory round trip) once.
const CACHE_TTL: Duration = Duration::from_secs(60);
/// A remembered credential older than this is checked again in the
/// background on its next use, while requests keep using the cached answer
/// until `CACHE_TTL`: a busy client never waits for the check again (when
/// every one of its requests missed the cache at once at expiry, each paid
/// for its own hash: ~0.4 s stalls every minute with 16 connections on two
/// cores).
const REFRESH_AFTER: Duration = Duration::from_secs(45);
const CACHE_MAX: usize = 4096;

type Key = [u8; 32];
/// The answer of one credential check shared by everyone waiting for it:
/// `Some` subject, or `None` for wrong credentials.
type Pending = Arc<tokio::sync::OnceCell<Option<Subject>>>;

/// A remembered subject, when it was checked, and the account epoch then.
type Cached = (Subject, Instant, u64);

#[derive(Clone)]
pub struct Authenticator {
    registry: Registry,
    settings: Arc<SettingsStore>,
    keys: token::TokenKeys,
    service: String,
    /// The directories of the auth modes other than `db_auth`.
    directories: Arc<HashMap<&'static str, Arc<dyn Directory>>>,
    /// SHA-256 of `user:password` → the subject and when it was verified.
    verified: Arc<Mutex<HashMap<Key, Cached>>>,
    /// Checks under way, so that concurrent requests with the same
    /// credentials share one hash.
    pending: Arc<Mutex<HashMap<Key, Pending>>>,
    /// Bumped whenever an account changes in this process, which forgets
    /// every remembered credential.
    epoch: Arc<AtomicU64>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator").finish_non_exhaustive()
    }
}

/// Forgets a pending check when its first waiter is done with it (or gives
/// up), so the next miss starts a fresh one.
struct PendingGuard<'a> {
    pending: &'a Mutex<HashMap<Key, Pending>>,
    key: Key,
    cell: Pending,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut pending) = self.pending.lock()
            && pending.get(&self.key).is_some_and(|c| Arc::ptr_eq(c, &self.cell))
        {
            pending.remove(&self.key);
        }
    }
}

impl Authenticator {
    pub fn new(registry: Registry, settings: Arc<SettingsStore>, keys: token::TokenKeys, service: &str) -> Self {
        Self {
            registry,
            settings,
            keys,
            service: service.to_owned(),
            directories: Arc::default(),
            verified: Arc::default(),
            pending: Arc::default(),
            epoch: Arc::default(),
        }
    }

    /// Adds the directory that serves an auth mode (`ldap_auth`…).
    pub fn with_directory(mut self, mode: &'static str, directory: Arc<dyn Directory>) -> Self {
        Arc::make_mut(&mut self.directories).insert(mode, directory);
        self
    }

    /// The directory serving an auth mode, if any.
    pub fn directory(&self, mode: &str) -> Option<&Arc<dyn Directory>> {
        self.directories.get(mode)
    }

    /// The auth modes this build can serve.
    pub fn auth_modes(&self) -> Vec<&'static str> {
        let mut modes = vec!["db_auth"];
        modes.extend(self.directories.keys().copied());
        modes
    }

    pub fn keys(&self) -> &token::TokenKeys {
        &self.keys
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    /// Forgets every remembered credential (an account changed).
    pub fn forget_all(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut cache) = self.verified.lock() {
            cache.clear();
        }
    }

    /// The subject of an `Authorization` header value; no header is the
    /// anonymous caller.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Subject, AuthError> {
        let Some(value) = authorization else { return Ok(Subject::Anonymous) };
        let (scheme, rest) = value.split_once(' ').ok_or(AuthError::Malformed)?;
        if scheme.eq_ignore_ascii_case("bearer") {
            let claims = token::verify(&self.keys, &self.service, rest.trim()).map_err(AuthError::InvalidToken)?;
            return Ok(Subject::Token(Box::new(claims)));
        }
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(AuthError::Malformed);
        }
        let decoded = B64.decode(rest.trim()).map_err(|_| AuthError::Malformed)?;
        let decoded = String::from_utf8(decoded).map_err(|_| AuthError::Malformed)?;
        let (user, password) = decoded.split_once(':').ok_or(AuthError::Malformed)?;
        self.basic(user, password).await
    }

    /// The subject of a user name and password (or robot secret).
    pub async fn basic(&self, user: &str, password: &str) -> Result<Subject, AuthError> {
        let key: Key = Sha256::new().chain_update(user).chain_update(b":").chain_update(password).finalize().into();
        if let Some((subject, age)) = self.cached(&key) {
            let refreshing = self.pending.lock().map_or(true, |p| p.contains_key(&key));
            if age >= REFRESH_AFTER && !refreshing {
                let (this, user, password) = (self.clone(), user.to_owned(), password.to_owned());
                tokio::spawn(async move {
                    if let Err(e) = this.check(key, &user, &password).await {
                        tracing::warn!(error = %e, "re-checking cached credentials failed");
                    }
                });
            }
            return Ok(subject);
        }
        self.check(key, user, password).await?.ok_or(AuthError::InvalidCredentials)
    }

    /// Checks credentials, once for all the callers asking at the same
    /// time, and records the answer: remembered when right, forgotten when
    /// wrong.
    async fn check(&self, key: Key, user: &str, password: &str) -> Result<Option<Subject>, AuthError> {
        let cell = match self.pending.lock() {
            Ok(mut pending) => pending.entry(key).or_default().clone(),
            Err(_) => Pending::default(),
        };
        let _guard = PendingGuard { pending: &self.pending, key, cell: cell.clone() };
        let answer = cell
            .get_or_try_init(|| async {
                let epoch = self.epoch.load(Ordering::SeqCst);
                let subject = self.verify(user, password).await?;
                if let Ok(mut cache) = self.verified.lock() {
                    match &subject {
                        Some(s) => {
                            if cache.len() >= CACHE_MAX {
                                cache.retain(|_, (_, at, _)| at.elapsed() < CACHE_TTL);
                                if cache.len() >= CACHE_MAX {
                                    cache.clear();
                                }
                            }
                            cache.insert(key, (s.clone(), Instant::now(), epoch));
                        }
                        None => {
                            cache.remove(&key);
                        }
                    }
                }
                Ok::<_, AuthError>(subject)
            })
            .await?;
        Ok(answer.clone())
    }

    /// Asks the right source: robots by their prefix, the administrator
    /// and every user in `db_auth` mode by their stored password, other
    /// users by the directory of the auth mode.
    async fn verify(&self, user: &str, password: &str) -> Result<Option<Subject>, AuthError> {
        let settings = self.settings.get().await?;
        let prefix = settings.robot_prefix();
        if let Some(name) = user.strip_prefix(prefix) {
            let robot = self.registry.verify_robot(name, password).await?;
            return Ok(robot.map(|r| Subject::Robot(Arc::new(RobotPrincipal::new(&r, prefix)))));
        }
        let mode = settings.auth_mode();
        let found = match self.directories.get(mode) {
            Some(directory) if user != ADMIN => {
                directory.authenticate(&self.registry, &settings, user, password).await?
            }
            _ if user != ADMIN && mode != "db_auth" => {
                // An auth mode this build has no directory for: nobody but
                // the administrator signs in (still at the cost of a check).
                let _ = crate::service::passwords::verify(password, None).await;
                None
            }
            _ => self.registry.verify_password(user, password).await?,
        };
        Ok(found.map(|u| Subject::User(Arc::new(UserPrincipal::from(&u)))))
    }

    /// A remembered subject and the age of its check, if still valid.
    fn cached(&self, key: &Key) -> Option<(Subject, Duration)> {
        let cache = self.verified.lock().ok()?;
        let (subject, at, epoch) = cache.get(key)?;
        let age = at.elapsed();
        let expired = match subject {
            Subject::Robot(r) => r.expires_at != -1 && r.expires_at <= crate::meta::now_unix(),
            _ => false,
        };
        (age < CACHE_TTL && *epoch == self.epoch.load(Ordering::SeqCst) && !expired).then(|| (subject.clone(), age))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::service::robots::{Access, Creator, Permission, RobotSpec};
    use crate::testkit::local_registry;

    /// An authenticator over a fresh store with the admin `Harbor12345`.
    async fn authenticator() -> (tempfile::TempDir, Registry, Authenticator) {
        let (dir, registry) = local_registry().await;
        registry.ensure_admin(Some("Harbor12345")).await.unwrap();
        let settings = Arc::new(SettingsStore::new(registry.meta.clone(), 1800));
        let auth =
            Authenticator::new(registry.clone(), settings, token::TokenKeys::from_seed(&[1; 32]), "harbor-registry");
        (dir, registry, auth)
    }

    fn basic(user: &str, password: &str) -> String {
        format!("Basic {}", B64.encode(format!("{user}:{password}")))
    }

    fn admin() -> Subject {
        Subject::User(Arc::new(UserPrincipal { id: 1, name: "admin".into(), sysadmin: true, groups: vec![] }))
    }

    #[tokio::test]
    async fn basic_credentials() {
        let (_dir, _reg, auth) = authenticator().await;
        assert_eq!(auth.authenticate(None).await.unwrap(), Subject::Anonymous);
        assert_eq!(auth.authenticate(Some(&basic("admin", "Harbor12345"))).await.unwrap(), admin());
        assert_eq!(auth.authenticate(Some(&basic("admin", "Harbor12345"))).await.unwrap(), admin(), "cached");
        assert!(matches!(auth.authenticate(Some(&basic("admin", "nope"))).await, Err(AuthError::InvalidCredentials)));
        assert!(matches!(auth.authenticate(Some(&basic("ghost", "x"))).await, Err(AuthError::InvalidCredentials)));
        assert!(matches!(auth.authenticate(Some("Basic !!!")).await, Err(AuthError::Malformed)));
        assert!(matches!(auth.authenticate(Some("Digest abc")).await, Err(AuthError::Malformed)));
        assert!(matches!(auth.authenticate(Some("Bearer x.y.z")).await, Err(AuthError::InvalidToken(_))));
    }

    #[tokio::test]
    async fn tokens_allow_what_they_carry() {
        let (_dir, _reg, auth) = authenticator().await;
        let scope = token::parse_scope("repository:library/a:pull").into_iter().collect();
        let t = token::issue(auth.keys(), "harbor-registry", "admin", scope, 60, crate::meta::now_unix());
        let bearer = auth.authenticate(Some(&format!("Bearer {t}"))).await.unwrap();
        let a = RepoName::parse("library/a").unwrap();
        let b = RepoName::parse("library/b").unwrap();
        let on = |repo| On::Repository { repo, project: None };
        assert_eq!(authorize(&bearer, (Res::Repository, Act::Pull), on(&a)), Decision::Allow);
        assert_eq!(authorize(&bearer, (Res::Repository, Act::Push), on(&a)), Decision::Deny, "only what it grants");
        assert_eq!(authorize(&bearer, (Res::Repository, Act::Pull), on(&b)), Decision::Deny);
        assert_eq!(authorize(&bearer, (Res::Catalog, Act::Read), On::Registry), Decision::Deny);
    }

    #[tokio::test]
    async fn robots_sign_in_with_their_prefix_and_secret() {
        let (_dir, reg, auth) = authenticator().await;
        let spec = RobotSpec {
            name: "ci".into(),
            level: LEVEL_SYSTEM.into(),
            duration: -1,
            permissions: vec![Permission {
                kind: LEVEL_PROJECT.into(),
                namespace: "*".into(),
                project_id: 0,
                access: vec![Access { resource: "repository".into(), action: "push".into(), effect: String::new() }],
            }],
            ..RobotSpec::default()
        };
        let made = reg.create_robot(spec, Creator { kind: "local", id: 1 }).await.unwrap();
        let subject = auth.authenticate(Some(&basic("robot$ci", &made.secret))).await.unwrap();
        let Subject::Robot(r) = &subject else { panic!("a robot: {subject:?}") };
        assert_eq!(r.name, "robot$ci");
        assert!(matches!(
            auth.authenticate(Some(&basic("ci", &made.secret))).await,
            Err(AuthError::InvalidCredentials)
        ));
        let p = ProjectAccess { id: 9, name: "p".into(), public: false, roles: vec![] };
        let repo = RepoName::parse("p/x").unwrap();
        let on = On::Repository { repo: &repo, project: Some(&p) };
        assert_eq!(authorize(&subject, (Res::Repository, Act::Push), on), Decision::Allow);
        assert_eq!(authorize(&subject, (Res::Repository, Act::Pull), on), Decision::Allow, "push implies pull");
        assert_eq!(authorize(&subject, (Res::Repository, Act::Delete), on), Decision::Deny);
        assert_eq!(authorize(&subject, (Res::User, Act::List), On::Registry), Decision::Deny);

        // A disabled robot is forgotten at once in this process.
        reg.delete_robot(made.robot.id).await.unwrap();
        auth.forget_all();
        assert!(matches!(
            auth.authenticate(Some(&basic("robot$ci", &made.secret))).await,
            Err(AuthError::InvalidCredentials)
        ));
    }

    #[tokio::test]
    async fn concurrent_checks_share_one_answer() {
        let (_dir, _reg, auth) = authenticator().await;
        let (right, wrong) = (basic("admin", "Harbor12345"), basic("admin", "nope"));
        let (oks, errs) = tokio::join!(
            futures::future::join_all((0..8).map(|_| auth.authenticate(Some(&right)))),
            futures::future::join_all((0..8).map(|_| auth.authenticate(Some(&wrong)))),
        );
        assert!(oks.iter().all(|r| r.as_ref().is_ok_and(|s| *s == admin())));
        assert!(errs.iter().all(|r| matches!(r, Err(AuthError::InvalidCredentials))));
        assert!(auth.pending.lock().unwrap().is_empty(), "finished checks are forgotten");
        assert_eq!(auth.verified.lock().unwrap().len(), 1, "only the right password is remembered");
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

//! Who is asking: [`Authenticator`] turns a request's credentials into a
//! [`Subject`] — the anonymous caller, a user (local, or vouched for by a
//! [`Directory`] such as LDAP or OIDC CLI secrets), a robot account, or the
//! bearer of a registry token.
//!
//! Verified basic credentials are remembered per process, so a client
//! sending them on every request pays for the memory-hard hash (or the
//! directory round trip) once. What is remembered stays valid only while
//! the account epoch stays where it was at the check
//! ([`crate::service::revocation`]): a changed password, a disabled robot
//! or a deleted user reaches every replica within a couple of seconds.
//! Registry tokens are verified by signature alone, at no table read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest as _, Sha256};

use crate::port::PortError;
use crate::service::revocation::Epoch;
use crate::service::settings::{AuthMode, Settings};
use crate::service::users::{ADMIN, User};
use crate::service::{Registry, ServiceError};

use super::authorize::{RobotPrincipal, Subject, UserPrincipal};
use super::token;

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

/// How long a verified credential is remembered at most (a directory's own
/// changes, such as an LDAP password changed in LDAP, take this long).
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
type Cached = (Subject, Instant, Epoch);

#[derive(Clone)]
pub struct Authenticator {
    registry: Registry,
    keys: token::TokenKeys,
    service: String,
    /// The directories of the auth modes other than `db_auth`.
    directories: Arc<HashMap<AuthMode, Arc<dyn Directory>>>,
    /// SHA-256 of `user:password` → the subject and when it was verified.
    verified: Arc<Mutex<HashMap<Key, Cached>>>,
    /// Checks under way, so that concurrent requests with the same
    /// credentials share one hash.
    pending: Arc<Mutex<HashMap<Key, Pending>>>,
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
    pub fn new(registry: Registry, keys: token::TokenKeys, service: &str) -> Self {
        Self {
            registry,
            keys,
            service: service.to_owned(),
            directories: Arc::default(),
            verified: Arc::default(),
            pending: Arc::default(),
        }
    }

    /// Adds the directory that serves an auth mode.
    pub fn with_directory(mut self, mode: AuthMode, directory: Arc<dyn Directory>) -> Self {
        Arc::make_mut(&mut self.directories).insert(mode, directory);
        self
    }

    /// The directory serving an auth mode, if any.
    pub fn directory(&self, mode: AuthMode) -> Option<&Arc<dyn Directory>> {
        self.directories.get(&mode)
    }

    /// The auth modes this build can serve.
    pub fn auth_modes(&self) -> Vec<AuthMode> {
        let mut modes = vec![AuthMode::Db];
        modes.extend(self.directories.keys().copied());
        modes
    }

    pub fn keys(&self) -> &token::TokenKeys {
        &self.keys
    }

    pub fn service(&self) -> &str {
        &self.service
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
        let epoch = self.registry.account_epoch().await?;
        if let Some((subject, age)) = self.cached(&key, epoch) {
            let refreshing = self.pending.lock().map_or(true, |p| p.contains_key(&key));
            if age >= REFRESH_AFTER && !refreshing {
                let (this, user, password) = (self.clone(), user.to_owned(), password.to_owned());
                tokio::spawn(async move {
                    if let Err(e) = this.check(key, &user, &password, epoch).await {
                        tracing::warn!(error = %e, "re-checking cached credentials failed");
                    }
                });
            }
            return Ok(subject);
        }
        self.check(key, user, password, epoch).await?.ok_or(AuthError::InvalidCredentials)
    }

    /// Checks credentials, once for all the callers asking at the same
    /// time, and records the answer with the account epoch it was checked
    /// under: remembered when right, forgotten when wrong.
    async fn check(&self, key: Key, user: &str, password: &str, epoch: Epoch) -> Result<Option<Subject>, AuthError> {
        let cell = match self.pending.lock() {
            Ok(mut pending) => pending.entry(key).or_default().clone(),
            Err(_) => Pending::default(),
        };
        let _guard = PendingGuard { pending: &self.pending, key, cell: cell.clone() };
        let answer = cell
            .get_or_try_init(|| async {
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
        let settings = self.registry.settings().await?;
        let prefix = settings.robot_prefix();
        if let Some(name) = user.strip_prefix(prefix) {
            let robot = self.registry.verify_robot(name, password).await?;
            return Ok(robot.map(|r| Subject::Robot(Arc::new(RobotPrincipal::new(&r, prefix)))));
        }
        let mode = settings.auth_mode;
        let found = match self.directories.get(&mode) {
            Some(directory) if user != ADMIN => {
                directory.authenticate(&self.registry, &settings, user, password).await?
            }
            _ if user != ADMIN && mode != AuthMode::Db => {
                // An auth mode this build has no directory for: nobody but
                // the administrator signs in (still at the cost of a check).
                let _ = crate::service::passwords::verify(password, None).await;
                None
            }
            _ => self.registry.verify_password(user, password).await?,
        };
        Ok(found.map(|u| Subject::User(Arc::new(UserPrincipal::from(&u)))))
    }

    /// A remembered subject and the age of its check, if still valid under
    /// the account epoch `now_epoch`.
    fn cached(&self, key: &Key, now_epoch: Epoch) -> Option<(Subject, Duration)> {
        let cache = self.verified.lock().ok()?;
        let (subject, at, epoch) = cache.get(key)?;
        let age = at.elapsed();
        let expired = match subject {
            Subject::Robot(r) => r.expires_at != -1 && r.expires_at <= crate::meta::now_unix(),
            _ => false,
        };
        (age < CACHE_TTL && *epoch == now_epoch && !expired).then(|| (subject.clone(), age))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::auth::authorize::{Decision, On, ProjectAccess, authorize};
    use crate::oci::RepoName;
    use crate::rbac::{Act, Res};
    use crate::service::robots::{AccessSpec, Creator, PermissionSpec, RobotSpec};
    use crate::testkit::local_registry;

    /// An authenticator over a fresh store with the admin `Harbor12345`.
    async fn authenticator() -> (tempfile::TempDir, Registry, Authenticator) {
        let (dir, registry) = local_registry().await;
        registry.ensure_admin(Some("Harbor12345")).await.unwrap();
        let auth = Authenticator::new(registry.clone(), token::TokenKeys::from_seed(&[1; 32]), "harbor-registry");
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
            level: "system".into(),
            duration: Some(-1),
            permissions: vec![PermissionSpec {
                kind: "project".into(),
                namespace: "*".into(),
                access: vec![AccessSpec { resource: "repository".into(), action: "push".into(), effect: None }],
            }],
            ..RobotSpec::default()
        };
        let made = reg.create_robot(spec, Creator::User(1)).await.unwrap();
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

        // A deleted robot is forgotten at once in this process.
        reg.delete_robot(made.robot.id).await.unwrap();
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
}

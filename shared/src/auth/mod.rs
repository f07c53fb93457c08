//! Who is asking, and may they.
//!
//! [`Authenticator`] turns a request's credentials into a [`Subject`];
//! [`authorize`] is the one function that answers whether a subject may take
//! an action on a resource. No handler checks roles on its own.
//!
//! Today the subjects are the anonymous caller and local users (basic
//! credentials); only the system administrator is granted anything. Bearer
//! tokens, projects' members, roles and robots extend these same two
//! functions.

pub mod token;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest as _, Sha256};

use crate::meta::{MetaStore, keys};
use crate::oci::RepoName;
use crate::port::PortError;
use crate::service::accounts;

/// The caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Anonymous,
    User {
        name: String,
        sysadmin: bool,
    },
    /// The bearer of a registry token: exactly what its `access` claim
    /// grants (computed by [`authorize`] when the token was issued).
    Token(Box<token::Claims>),
}

/// What a request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Reach the registry at all (`GET /v2/`).
    Ping,
    /// List every repository of the registry.
    Catalog,
    /// Read manifests, blobs, tags, referrers.
    Pull,
    /// Upload blobs, put manifests and tags.
    Push,
    /// Delete manifests, tags, blob links, projects.
    Delete,
    /// Create a project (on the registry) or a resource in a project.
    Create,
    /// Read a project or a resource of it.
    Read,
    /// Change a project or a resource of it.
    Update,
    /// List projects (each caller sees those it may read).
    List,
}

/// What a request acts on. Projects and repositories carry whether their
/// project is public, which lets anonymous callers and every user pull.
#[derive(Debug, Clone, Copy)]
pub enum Resource<'a> {
    Registry,
    Project { name: &'a str, public: bool },
    Repository { repo: &'a RepoName, public: bool },
}

impl Resource<'_> {
    fn public(&self) -> bool {
        matches!(self, Self::Project { public: true, .. } | Self::Repository { public: true, .. })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// No (or no valid) credentials: the caller should authenticate.
    Challenge,
    /// Authenticated, but not allowed.
    Deny,
}

/// The permission check. The system administrator may do everything.
/// Everyone, anonymous callers included, may read and pull what lives in a
/// public project and list projects; signed-in users may also reach the
/// registry and create projects (Harbor's default creation rule). Project
/// members and their roles extend this same function.
pub fn authorize(subject: &Subject, action: Action, resource: Resource<'_>) -> Decision {
    let public_read = matches!(action, Action::Pull | Action::Read) && resource.public();
    let listing = action == Action::List && matches!(resource, Resource::Registry);
    match subject {
        Subject::User { sysadmin: true, .. } => Decision::Allow,
        Subject::User { .. } => {
            let creating = action == Action::Create && matches!(resource, Resource::Registry);
            if public_read || listing || creating || action == Action::Ping { Decision::Allow } else { Decision::Deny }
        }
        Subject::Token(claims) => token_decision(claims, action, resource),
        Subject::Anonymous => {
            if public_read || listing {
                Decision::Allow
            } else {
                Decision::Challenge
            }
        }
    }
}

/// A token allows what its `access` claim lists, and reaching the registry.
fn token_decision(claims: &token::Claims, action: Action, resource: Resource<'_>) -> Decision {
    let granted = match (action, resource) {
        (Action::Ping, _) => true,
        (Action::Catalog, Resource::Registry) => claims.allows("registry", "catalog", "*"),
        (_, Resource::Repository { repo, .. }) => {
            token_actions(action).iter().any(|a| claims.allows("repository", repo.as_str(), a))
        }
        _ => false,
    };
    if granted { Decision::Allow } else { Decision::Deny }
}

/// The token actions (Docker's scope vocabulary) that cover an action.
pub fn token_actions(action: Action) -> &'static [&'static str] {
    match action {
        Action::Pull | Action::Read => &["pull"],
        Action::Push | Action::Create | Action::Update => &["push"],
        Action::Delete => &["delete"],
        Action::Catalog | Action::Ping | Action::List => &["*"],
    }
}

/// The action a token scope's action word asks for.
pub fn action_of_scope(word: &str) -> Option<Action> {
    match word {
        "pull" => Some(Action::Pull),
        "push" => Some(Action::Push),
        "delete" => Some(Action::Delete),
        _ => None,
    }
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
    #[error(transparent)]
    Backend(#[from] PortError),
}

/// How long a verified password is remembered, so that a client sending
/// basic credentials on every request pays for the memory-hard hash once.
const CACHE_TTL: Duration = Duration::from_secs(60);
/// A remembered password older than this is checked again in the
/// background on its next use, while requests keep using the cached answer
/// until `CACHE_TTL`: a busy client never waits for the hash again (when
/// every one of its requests missed the cache at once at expiry, each paid
/// for its own hash: ~0.4 s stalls every minute with 16 connections on two
/// cores).
const REFRESH_AFTER: Duration = Duration::from_secs(45);
const CACHE_MAX: usize = 4096;

type Key = [u8; 32];
/// The answer of one password check shared by everyone waiting for it:
/// `Some` subject, or `None` for wrong credentials.
type Pending = Arc<tokio::sync::OnceCell<Option<Subject>>>;

#[derive(Clone)]
pub struct Authenticator {
    meta: Arc<dyn MetaStore>,
    keys: token::TokenKeys,
    service: String,
    /// SHA-256 of `user:password` → the subject and when it was verified.
    verified: Arc<Mutex<HashMap<Key, (Subject, Instant)>>>,
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
    pub fn new(meta: Arc<dyn MetaStore>, keys: token::TokenKeys, service: &str) -> Self {
        Self { meta, keys, service: service.to_owned(), verified: Arc::default(), pending: Arc::default() }
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

    async fn basic(&self, user: &str, password: &str) -> Result<Subject, AuthError> {
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

    /// Checks a password, once for all the callers asking at the same time,
    /// and records the answer: remembered when right, forgotten when wrong.
    async fn check(&self, key: Key, user: &str, password: &str) -> Result<Option<Subject>, AuthError> {
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
                                cache.retain(|_, (_, at)| at.elapsed() < CACHE_TTL);
                                if cache.len() >= CACHE_MAX {
                                    cache.clear();
                                }
                            }
                            cache.insert(key, (s.clone(), Instant::now()));
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

    async fn verify(&self, user: &str, password: &str) -> Result<Option<Subject>, AuthError> {
        if !accounts::verify_user(self.meta.as_ref(), user, password).await? {
            return Ok(None);
        }
        let (pk, sk) = keys::user(user);
        let sysadmin = self.meta.get(&pk, sk).await?.and_then(|i| i.attrs.get("sysadmin")?.as_bool()).unwrap_or(false);
        Ok(Some(Subject::User { name: user.to_owned(), sysadmin }))
    }

    /// A remembered subject and the age of its check.
    fn cached(&self, key: &Key) -> Option<(Subject, Duration)> {
        let cache = self.verified.lock().ok()?;
        let (subject, at) = cache.get(key)?;
        let age = at.elapsed();
        (age < CACHE_TTL).then(|| (subject.clone(), age))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::localdb::LocalDb;
    use crate::meta::local::LocalMetaStore;

    /// An authenticator over a fresh store with the admin `Harbor12345`.
    async fn authenticator() -> (tempfile::TempDir, Authenticator) {
        let dir = tempfile::tempdir().unwrap();
        let meta: Arc<dyn MetaStore> =
            Arc::new(LocalMetaStore::open(LocalDb::open(&dir.path().join("db")).unwrap()).await.unwrap());
        accounts::ensure_admin(meta.as_ref(), Some("Harbor12345")).await.unwrap();
        (dir, Authenticator::new(meta, token::TokenKeys::from_seed(&[1; 32]), "harbor-registry"))
    }

    fn basic(user: &str, password: &str) -> String {
        format!("Basic {}", B64.encode(format!("{user}:{password}")))
    }

    #[tokio::test]
    async fn basic_credentials() {
        let (_dir, auth) = authenticator().await;
        let admin = Subject::User { name: "admin".into(), sysadmin: true };
        assert_eq!(auth.authenticate(None).await.unwrap(), Subject::Anonymous);
        assert_eq!(auth.authenticate(Some(&basic("admin", "Harbor12345"))).await.unwrap(), admin);
        assert_eq!(auth.authenticate(Some(&basic("admin", "Harbor12345"))).await.unwrap(), admin, "cached");
        assert!(matches!(auth.authenticate(Some(&basic("admin", "nope"))).await, Err(AuthError::InvalidCredentials)));
        assert!(matches!(auth.authenticate(Some(&basic("ghost", "x"))).await, Err(AuthError::InvalidCredentials)));
        assert!(matches!(auth.authenticate(Some("Basic !!!")).await, Err(AuthError::Malformed)));
        assert!(matches!(auth.authenticate(Some("Digest abc")).await, Err(AuthError::Malformed)));
        assert!(matches!(auth.authenticate(Some("Bearer x.y.z")).await, Err(AuthError::InvalidToken(_))));
        let scope = token::parse_scope("repository:library/a:pull").into_iter().collect();
        let t = token::issue(auth.keys(), "harbor-registry", "admin", scope, 60, crate::meta::now_unix());
        let bearer = auth.authenticate(Some(&format!("Bearer {t}"))).await.unwrap();
        let a = RepoName::parse("library/a").unwrap();
        let b = RepoName::parse("library/b").unwrap();
        let on = |repo| Resource::Repository { repo, public: false };
        assert_eq!(authorize(&bearer, Action::Pull, on(&a)), Decision::Allow);
        assert_eq!(authorize(&bearer, Action::Push, on(&a)), Decision::Deny, "only what the token grants");
        assert_eq!(authorize(&bearer, Action::Pull, on(&b)), Decision::Deny);
        let repo = RepoName::parse("library/a").unwrap();
        let private = Resource::Repository { repo: &repo, public: false };
        let public = Resource::Repository { repo: &repo, public: true };
        let user = Subject::User { name: "u".into(), sysadmin: false };
        let anon = Subject::Anonymous;
        assert_eq!(authorize(&admin, Action::Push, private), Decision::Allow);
        assert_eq!(authorize(&anon, Action::Pull, private), Decision::Challenge);
        assert_eq!(authorize(&anon, Action::Pull, public), Decision::Allow);
        assert_eq!(authorize(&anon, Action::Push, public), Decision::Challenge);
        assert_eq!(authorize(&user, Action::Pull, public), Decision::Allow);
        assert_eq!(authorize(&user, Action::Push, public), Decision::Deny);
        assert_eq!(authorize(&user, Action::Pull, private), Decision::Deny);
        assert_eq!(authorize(&user, Action::Catalog, Resource::Registry), Decision::Deny);
        assert_eq!(authorize(&user, Action::Create, Resource::Registry), Decision::Allow);
        assert_eq!(authorize(&anon, Action::Create, Resource::Registry), Decision::Challenge);
    }

    #[tokio::test]
    async fn concurrent_checks_share_one_answer() {
        let (_dir, auth) = authenticator().await;
        let admin = Subject::User { name: "admin".into(), sysadmin: true };
        let (right, wrong) = (basic("admin", "Harbor12345"), basic("admin", "nope"));
        let (oks, errs) = tokio::join!(
            futures::future::join_all((0..8).map(|_| auth.authenticate(Some(&right)))),
            futures::future::join_all((0..8).map(|_| auth.authenticate(Some(&wrong)))),
        );
        assert!(oks.iter().all(|r| r.as_ref().is_ok_and(|s| *s == admin)));
        assert!(errs.iter().all(|r| matches!(r, Err(AuthError::InvalidCredentials))));
        assert!(auth.pending.lock().unwrap().is_empty(), "finished checks are forgotten");
        assert_eq!(auth.verified.lock().unwrap().len(), 1, "only the right password is remembered");
    }
}

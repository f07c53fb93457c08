//! OIDC sign-in (Harbor's `oidc_auth` mode) and OIDC users' CLI secrets.
//!
//! Owns the authorization code flow with PKCE (S256) against the provider
//! of the settings (`oidc_endpoint`, discovered through
//! `/.well-known/openid-configuration` and cached for a minute): the login
//! redirect, the callback's code exchange, ID token verification
//! ([`idtoken`]), the claims that make a user (name, e-mail, groups, admin
//! group), onboarding — automatic or with a name the user picks — and the
//! CLI secret that stands in for a password for docker, podman or skopeo
//! ([`Oidc`] is the [`Directory`] of `oidc_auth`).
//!
//! Nothing lives in process memory between requests: the state, nonce and
//! PKCE verifier of a login sit in a table item with a ten-minute TTL that
//! the callback consumes with a conditional delete (so a replayed callback
//! fails on any replica), and the login is also bound to the browser that
//! started it by a cookie holding the state. Users are matched on later
//! logins by issuer and subject, never by name.
//!
//! The CLI secret is kept twice: as an Argon2id hash, which is what is
//! checked (at the cost of a password, for unknown users too), and sealed
//! ([`super::seal`]) so its owner can read it back, as in Harbor. The
//! provider's tokens are kept sealed as well: as Harbor does, a CLI login
//! whose access token has expired refreshes it at the provider (and takes
//! the user's groups and admin role from the answer); a refused refresh
//! refuses the CLI login until the user signs in to the portal again.
//!
//! It must not know HTTP: the portal handlers in `http::portal` call it.

mod idtoken;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::jwk::Jwk;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};

pub use self::idtoken::{Expected, IdTokenError};
use super::seal::{SealError, Sealer};
use super::token::TokenKeys;
use super::{AuthError, Directory};
use crate::meta::{Condition, ErrorKind, Item, TTL_ATTR, Write, keys, now_unix};
use crate::port::PortError;
use crate::service::groups::OIDC_GROUP;
use crate::service::settings::Settings;
use crate::service::users::{ExternalUser, Source, User};
use crate::service::{Registry, ServiceError, passwords};

/// Harbor's comment on the users it onboards from OIDC.
const ONBOARDED_COMMENT: &str = "Onboarded via OIDC provider";
/// How long a login (and a pending onboarding) may take.
const LOGIN_TTL_SECS: i64 = 600;
/// The scopes asked for when `oidc_scope` is empty; `offline_access` gets a
/// refresh token, without which a CLI secret stops working when the access
/// token expires.
const DEFAULT_SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];
/// Length of generated CLI secrets.
const SECRET_LEN: usize = 32;
const DISCOVERY_TTL: Duration = Duration::from_secs(60);
const JWKS_TTL: Duration = Duration::from_secs(300);
/// A token naming an unknown key refetches the key set at most this often.
const JWKS_MIN_REFETCH: Duration = Duration::from_secs(10);
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// An access token this close to its expiry counts as expired.
const EXPIRY_SLACK_SECS: i64 = 10;
/// Authorization request parameters berth sets itself, which
/// `oidc_extra_redirect_parms` cannot replace.
const RESERVED_PARAMS: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
];

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("auth mode {0} is not OIDC based")]
    NotOidc(String),
    #[error("OIDC is not configured: {0} is empty")]
    NotConfigured(&'static str),
    /// The provider could not be reached, or answered with something that
    /// is not OIDC.
    #[error("the OIDC provider failed: {0}")]
    Provider(String),
    /// The provider answered, and said no (a bad code, a revoked refresh
    /// token, an error in the callback).
    #[error("the OIDC provider refused: {0}")]
    Refused(String),
    #[error(transparent)]
    IdToken(#[from] IdTokenError),
    #[error("the login is unknown, expired or finished already; start it again")]
    State,
    /// The provider's claims do not make a user.
    #[error("{0}")]
    Claims(String),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<PortError> for OidcError {
    fn from(e: PortError) -> Self {
        Self::Service(ServiceError::Backend(e))
    }
}

fn internal(what: impl std::fmt::Display) -> ServiceError {
    ServiceError::Backend(PortError::msg(ErrorKind::Internal, what))
}

impl From<SealError> for ServiceError {
    fn from(e: SealError) -> Self {
        internal(e)
    }
}

/// The OIDC settings, checked.
#[derive(Debug, Clone)]
struct OidcSettings {
    endpoint: String,
    client_id: String,
    client_secret: String,
    groups_claim: String,
    admin_group: String,
    group_filter: Option<regex_lite::Regex>,
    scope: String,
    user_claim: String,
    verify_cert: bool,
    auto_onboard: bool,
    extra_params: Vec<(String, String)>,
    logout: bool,
}

impl OidcSettings {
    fn of(settings: &Settings) -> Result<Self, OidcError> {
        if settings.auth_mode() != "oidc_auth" {
            return Err(OidcError::NotOidc(settings.auth_mode().to_owned()));
        }
        let endpoint = settings.str("oidc_endpoint").trim().trim_end_matches('/').to_owned();
        if endpoint.is_empty() {
            return Err(OidcError::NotConfigured("oidc_endpoint"));
        }
        let client_id = settings.str("oidc_client_id").to_owned();
        if client_id.is_empty() {
            return Err(OidcError::NotConfigured("oidc_client_id"));
        }
        let filter = settings.str("oidc_group_filter");
        // As Harbor: a filter that is no regular expression filters nothing.
        let group_filter = match regex_lite::Regex::new(filter) {
            _ if filter.is_empty() => None,
            Ok(re) => Some(re),
            Err(e) => {
                tracing::warn!(error = %e, "oidc_group_filter is not a regular expression; groups are not filtered");
                None
            }
        };
        let extra_params = match settings.get("oidc_extra_redirect_parms") {
            Some(Value::Object(m)) => m
                .iter()
                .filter(|(k, _)| !RESERVED_PARAMS.contains(&k.as_str()))
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                .collect(),
            _ => Vec::new(),
        };
        Ok(Self {
            endpoint,
            client_id,
            client_secret: settings.str("oidc_client_secret").to_owned(),
            groups_claim: settings.str("oidc_groups_claim").trim().to_owned(),
            admin_group: settings.str("oidc_admin_group").trim().to_owned(),
            group_filter,
            scope: scopes(settings.str("oidc_scope")),
            user_claim: settings.str("oidc_user_claim").trim().to_owned(),
            verify_cert: settings.bool("oidc_verify_cert"),
            auto_onboard: settings.bool("oidc_auto_onboard"),
            extra_params,
            logout: settings.bool("oidc_logout"),
        })
    }
}

/// `oidc_scope` (Harbor writes it comma-separated) as the space-separated
/// scope of a request, always with `openid`.
fn scopes(setting: &str) -> String {
    let mut list: Vec<&str> = setting.split([',', ' ']).map(str::trim).filter(|s| !s.is_empty()).collect();
    if list.is_empty() {
        list = DEFAULT_SCOPES.to_vec();
    }
    if !list.contains(&"openid") {
        list.insert(0, "openid");
    }
    list.dedup();
    list.join(" ")
}

/// The provider's discovery document (the fields berth uses).
#[derive(Debug, Clone, Deserialize)]
struct Provider {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    userinfo_endpoint: Option<String>,
    #[serde(default)]
    end_session_endpoint: Option<String>,
    #[serde(default)]
    token_endpoint_auth_methods_supported: Vec<String>,
}

/// The provider's tokens as berth keeps them (sealed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct StoredToken {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    id_token: Option<String>,
    /// When the access token expires (Unix seconds); 0 when the provider
    /// gave it no lifetime.
    #[serde(default)]
    expiry: i64,
}

impl StoredToken {
    fn valid_at(&self, now: i64) -> bool {
        self.expiry == 0 || self.expiry > now + EXPIRY_SLACK_SECS
    }
}

/// A token endpoint's answer.
#[derive(Debug, Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<Value>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    id_token: Option<String>,
}

impl TokenResponse {
    fn stored(&self, now: i64) -> StoredToken {
        let secs = match &self.expires_in {
            Some(Value::Number(n)) => n.as_i64(),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        };
        StoredToken {
            access_token: self.access_token.clone(),
            refresh_token: self.refresh_token.clone().filter(|t| !t.is_empty()),
            id_token: self.id_token.clone().filter(|t| !t.is_empty()),
            expiry: secs.filter(|s| *s > 0).map_or(0, |s| now.saturating_add(s)),
        }
    }
}

/// Who the provider says the user is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct UserInfo {
    iss: String,
    sub: String,
    /// The name to onboard with (may be empty: not every provider gives one).
    username: String,
    email: String,
    /// The groups after `oidc_group_filter`.
    groups: Vec<String>,
    /// Member of `oidc_admin_group`.
    admin: bool,
}

/// A provider-verified identity on its way to becoming a user: who (with
/// the name to onboard), its groups' ids, and the provider's tokens.
#[derive(Debug, Clone)]
struct Verified {
    info: UserInfo,
    group_ids: Vec<i64>,
    token: StoredToken,
}

/// Where a callback leaves the user.
#[derive(Debug, Clone, PartialEq)]
pub enum Login {
    /// Signed in as this user.
    Done { user: User, return_to: String },
    /// Verified, but not onboarded: the user picks a name and posts it with
    /// the pending onboarding's id ([`Oidc::onboard`]).
    Onboard { id: String, username: String, return_to: String },
}

/// A login redirect: where to send the browser, and the state to bind it to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    pub url: String,
    pub state: String,
}

/// A random URL-safe token of 256 bits (43 characters).
fn random_token() -> String {
    B64.encode(rand::random::<[u8; 32]>())
}

/// Whether `s` looks like a token berth made ([`random_token`]): what a
/// client sends back is checked before it goes into a key.
pub fn is_token(s: &str) -> bool {
    (16..=128).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The PKCE S256 challenge of a verifier (RFC 7636).
fn pkce_challenge(verifier: &str) -> String {
    B64.encode(Sha256::digest(verifier.as_bytes()))
}

/// Whether an OIDC user's CLI secret may authenticate this management API
/// request (`path` under `/api/v2.0`). As in Harbor, it stands in for a
/// password only for registry clients — the token service and `/v2` —
/// and the few API calls they (and replication) make; everything else
/// needs the portal session.
pub fn cli_secret_allowed(method: &http::Method, path: &str) -> bool {
    let p = path.trim_end_matches('/');
    let in_project = p.starts_with("/projects/") && p.contains("/repositories");
    match *method {
        http::Method::GET | http::Method::HEAD => {
            matches!(p, "/projects" | "/systeminfo" | "/labels")
                || (p.starts_with("/projects/") && p.ends_with("/repositories"))
                || (in_project && p.ends_with("/artifacts"))
        }
        http::Method::POST => p == "/projects",
        http::Method::DELETE => in_project && p.contains("/artifacts/") && p.contains("/tags/"),
        _ => false,
    }
}

fn doc_str<'a>(user: &'a User, key: &str) -> Option<&'a str> {
    user.oidc.as_ref()?.get(key)?.as_str()
}

fn set_doc(doc: &mut Value, key: &str, value: impl Into<Value>) -> Result<(), ServiceError> {
    doc.as_object_mut().ok_or_else(|| internal("corrupt OIDC identity document"))?.insert(key.to_owned(), value.into());
    Ok(())
}

fn secret_context(user_id: i64) -> String {
    format!("cli-secret:{user_id}")
}

fn token_context(user_id: i64) -> String {
    format!("oidc-token:{user_id}")
}

fn pending_context(id: &str) -> String {
    format!("oidc-pending:{id}")
}

/// A discovered provider: for which endpoint and certificate check, and
/// when it was read.
struct CachedProvider {
    endpoint: String,
    verify_cert: bool,
    provider: Arc<Provider>,
    at: Instant,
}

/// A provider's signing keys and when they were read.
type CachedKeys = (Arc<Vec<Jwk>>, Instant);

/// The OIDC client of one process (shared by every request).
pub struct Oidc {
    sealer: Option<Sealer>,
    clients: Mutex<HashMap<bool, reqwest::Client>>,
    provider: Mutex<Option<CachedProvider>>,
    jwks: Mutex<HashMap<String, CachedKeys>>,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc").finish_non_exhaustive()
    }
}

impl Oidc {
    pub fn new(keys: &TokenKeys) -> Self {
        let sealer =
            Sealer::new(keys).map_err(|e| tracing::error!(error = %e, "no seal key: OIDC logins will fail")).ok();
        Self { sealer, clients: Mutex::default(), provider: Mutex::default(), jwks: Mutex::default() }
    }

    fn sealer(&self) -> Result<&Sealer, ServiceError> {
        self.sealer.as_ref().ok_or_else(|| internal("no seal key"))
    }

    // ------------------------------------------------------------ the login

    /// Starts a login: records its state, nonce and PKCE verifier, and
    /// returns the provider's authorization URL. `callback` is berth's
    /// redirect URI; `return_to` the local path to land on afterwards.
    pub async fn begin(
        &self,
        registry: &Registry,
        settings: &Settings,
        callback: &str,
        return_to: &str,
    ) -> Result<Redirect, OidcError> {
        let cfg = OidcSettings::of(settings)?;
        let provider = self.provider(&cfg).await?;
        let (state, nonce, verifier) = (random_token(), random_token(), random_token());
        let mut url = url::Url::parse(&provider.authorization_endpoint)
            .map_err(|_| OidcError::Provider("the authorization endpoint is not a URL".to_owned()))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &cfg.client_id)
                .append_pair("redirect_uri", callback)
                .append_pair("scope", &cfg.scope)
                .append_pair("state", &state)
                .append_pair("nonce", &nonce)
                .append_pair("code_challenge", &pkce_challenge(&verifier))
                .append_pair("code_challenge_method", "S256");
            for (k, v) in &cfg.extra_params {
                q.append_pair(k, v);
            }
        }
        let (pk, sk) = keys::oidc_state(&state);
        let item = Item::new(pk, sk)
            .with("nonce", nonce)
            .with("code_verifier", verifier)
            .with("redirect_uri", callback)
            .with("return_to", return_to)
            .with(TTL_ATTR, now_unix() + LOGIN_TTL_SECS);
        registry.meta.put(item, Condition::NotExists).await?;
        Ok(Redirect { url: url.to_string(), state })
    }

    /// Finishes a login at the callback: consumes the state (once), trades
    /// the code for tokens, verifies the ID token and signs the user in,
    /// onboarding it first when `oidc_auto_onboard` is on.
    pub async fn finish(
        &self,
        registry: &Registry,
        settings: &Settings,
        state: &str,
        code: &str,
    ) -> Result<Login, OidcError> {
        let cfg = OidcSettings::of(settings)?;
        let login = take_state(registry, state).await?;
        let provider = self.provider(&cfg).await?;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", login.redirect_uri.as_str()),
            ("code_verifier", login.verifier.as_str()),
        ];
        let tokens = self.token_request(&cfg, &provider, &form).await?;
        let raw =
            tokens.id_token.as_deref().ok_or_else(|| OidcError::Refused("no id_token in the answer".to_owned()))?;
        let claims = self.verify_id_token(&cfg, &provider, raw, Some(&login.nonce)).await?;
        let info = self.user_info(&cfg, &provider, &claims, &tokens.access_token).await?;
        let stored = tokens.stored(now_unix());
        let group_ids = onboard_groups(registry, &info.groups).await?;
        if let Some(user) = user_of_identity(registry, &info.iss, &info.sub).await? {
            let user = self.record_login(registry, user.user_id, &group_ids, info.admin, &stored).await?;
            return Ok(Login::Done { user, return_to: login.return_to });
        }
        if cfg.auto_onboard {
            if info.username.is_empty() {
                return Err(OidcError::Claims(format!(
                    "unable to recover username for auto onboard, username claim: {}",
                    cfg.user_claim
                )));
            }
            let verified = Verified { info, group_ids, token: stored };
            let user = self.create_user(registry, settings, &verified, None).await?;
            return Ok(Login::Done { user, return_to: login.return_to });
        }
        let id = random_token();
        let (pk, sk) = keys::oidc_onboarding(&id);
        let token = serde_json::to_vec(&stored).map_err(internal)?;
        let item = Item::new(pk, sk)
            .with("info", serde_json::to_value(&info).map_err(internal)?)
            .with("group_ids", group_ids)
            .with("token", self.sealer()?.seal(&pending_context(&id), &token).map_err(ServiceError::from)?)
            .with("return_to", login.return_to.clone())
            .with(TTL_ATTR, now_unix() + LOGIN_TTL_SECS);
        registry.meta.put(item, Condition::NotExists).await?;
        Ok(Login::Onboard { id, username: info.username, return_to: login.return_to })
    }

    /// Onboards the identity of a pending onboarding as `username` (Harbor's
    /// onboard step). The pending item is consumed in the same transaction;
    /// a taken name (`Conflict`) leaves it for another try.
    pub async fn onboard(
        &self,
        registry: &Registry,
        settings: &Settings,
        id: &str,
        username: &str,
    ) -> Result<(User, String), OidcError> {
        OidcSettings::of(settings)?;
        if !is_token(id) {
            return Err(OidcError::State);
        }
        let (pk, sk) = keys::oidc_onboarding(id);
        let item = registry.meta.get(&pk, &sk).await?.ok_or(OidcError::State)?;
        let info: UserInfo = item
            .attrs
            .get("info")
            .cloned()
            .and_then(|v| serde_json::from_value(v).ok())
            .ok_or_else(|| internal("corrupt pending onboarding"))?;
        let group_ids: Vec<i64> =
            item.attrs.get("group_ids").and_then(|v| serde_json::from_value(v.clone()).ok()).unwrap_or_default();
        let sealed = item.str("token").ok_or_else(|| internal("corrupt pending onboarding"))?;
        let token: StoredToken = self
            .sealer()?
            .open(&pending_context(id), sealed)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(OidcError::State)?;
        let return_to = item.str("return_to").unwrap_or("/").to_owned();
        let consume = Write::Delete { pk, sk, cond: Condition::Exists };
        let verified = Verified { info: UserInfo { username: username.to_owned(), ..info }, group_ids, token };
        let user = self.create_user(registry, settings, &verified, Some(consume)).await?;
        Ok((user, return_to))
    }

    /// Creates the user of an identity with a fresh CLI secret, and the item
    /// that finds it by identity. When the identity was onboarded
    /// meanwhile (the same person logging in twice at once) that user is
    /// signed in instead.
    async fn create_user(
        &self,
        registry: &Registry,
        settings: &Settings,
        verified: &Verified,
        consume: Option<Write>,
    ) -> Result<User, OidcError> {
        let Verified { info, group_ids, token } = verified;
        let secret = passwords::generate(SECRET_LEN);
        let hash = passwords::hash(&secret)?;
        let token_json = serde_json::to_vec(token).map_err(internal)?;
        let sealer = self.sealer()?;
        let ext = ExternalUser {
            username: info.username.replace(' ', "_"),
            email: info.email.clone(),
            realname: String::new(),
            ldap_dn: None,
            group_ids: group_ids.clone(),
            admin_in_auth: info.admin,
        };
        let prepare = |id: i64| -> Result<(Value, Vec<Write>), ServiceError> {
            let now = now_unix();
            let doc = json!({
                "id": id,
                "user_id": id,
                "subiss": format!("{}{}", info.sub, info.iss),
                "sub": info.sub,
                "iss": info.iss,
                "secret_sealed": sealer.seal(&secret_context(id), secret.as_bytes())?,
                "secret_hash": hash,
                "token": sealer.seal(&token_context(id), &token_json)?,
                "creation_time": now,
                "update_time": now,
            });
            let (ipk, isk) = keys::oidc_identity(&info.iss, &info.sub);
            let mut writes =
                vec![Write::Put { item: Item::new(ipk, isk).with("user_id", id), cond: Condition::NotExists }];
            writes.extend(consume);
            Ok((doc, writes))
        };
        match registry.create_oidc_user(ext, ONBOARDED_COMMENT, settings.robot_prefix(), prepare).await {
            Ok(user) => Ok(user),
            Err(ServiceError::PreconditionFailed(_)) => match user_of_identity(registry, &info.iss, &info.sub).await? {
                Some(user) => Ok(self.record_login(registry, user.user_id, group_ids, info.admin, token).await?),
                None => Err(OidcError::State),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// Records what a login (or refresh) learnt: groups, admin role, tokens.
    async fn record_login(
        &self,
        registry: &Registry,
        id: i64,
        group_ids: &[i64],
        admin: bool,
        token: &StoredToken,
    ) -> Result<User, ServiceError> {
        let sealed = self.sealer()?.seal(&token_context(id), &serde_json::to_vec(token).map_err(internal)?)?;
        registry
            .update_oidc_user(id, |f| {
                f.group_ids = group_ids.to_vec();
                f.admin_in_auth = admin;
                set_doc(&mut f.oidc, "token", sealed.clone())?;
                set_doc(&mut f.oidc, "update_time", now_unix())
            })
            .await
    }

    /// The URL that ends the user's session at the provider, when
    /// `oidc_logout` is on and the provider has an end-session endpoint.
    pub async fn logout_url(&self, settings: &Settings, user: &User, post_logout: &str) -> Option<String> {
        let cfg = OidcSettings::of(settings).ok().filter(|c| c.logout)?;
        let id_token = self.stored_token(user).ok()?.id_token?;
        let provider = self.provider(&cfg).await.ok()?;
        let mut url = url::Url::parse(provider.end_session_endpoint.as_deref()?).ok()?;
        url.query_pairs_mut()
            .append_pair("id_token_hint", &id_token)
            .append_pair("post_logout_redirect_uri", post_logout)
            .append_pair("client_id", &cfg.client_id);
        Some(url.to_string())
    }

    /// Whether `url` is an OIDC provider (its discovery document answers
    /// and names it as issuer).
    pub async fn ping(&self, url: &str, verify_cert: bool) -> Result<(), OidcError> {
        self.discover(url.trim().trim_end_matches('/'), verify_cert).await.map(|_| ())
    }

    // ------------------------------------------------------- CLI secrets

    /// The CLI secret of an OIDC user, for its owner (and administrators).
    pub fn reveal_secret(&self, user: &User) -> Option<String> {
        let sealed = doc_str(user, "secret_sealed")?;
        self.sealer.as_ref()?.open_str(&secret_context(user.user_id), sealed).ok()
    }

    /// Replaces an OIDC user's CLI secret (the password policy applies).
    /// `NotFound` for users that are not OIDC users.
    pub async fn set_cli_secret(&self, registry: &Registry, id: i64, secret: &str) -> Result<(), ServiceError> {
        passwords::check_policy(secret)?;
        let hash = passwords::hash(secret)?;
        let sealed = self.sealer()?.seal(&secret_context(id), secret.as_bytes())?;
        registry
            .update_oidc_user(id, |f| {
                set_doc(&mut f.oidc, "secret_sealed", sealed.clone())?;
                set_doc(&mut f.oidc, "secret_hash", hash.clone())?;
                set_doc(&mut f.oidc, "update_time", now_unix())
            })
            .await
            .map(|_| ())
    }

    /// The user whose CLI secret this is, with a valid provider token.
    async fn check_cli_secret(
        &self,
        registry: &Registry,
        settings: &Settings,
        username: &str,
        secret: &str,
    ) -> Result<Option<User>, AuthError> {
        let user = registry.user_by_name(username).await?.filter(|u| u.source == Source::Oidc);
        let hash = user.as_ref().and_then(|u| doc_str(u, "secret_hash")).map(str::to_owned);
        if !passwords::verify(secret, hash).await? {
            return Ok(None);
        }
        let Some(user) = user else { return Ok(None) };
        match self.fresh(registry, settings, user).await {
            Ok(user) => Ok(Some(user)),
            Err(OidcError::Provider(e)) => Err(AuthError::Unavailable(e)),
            Err(OidcError::Service(e)) => Err(e.into()),
            Err(e) => {
                tracing::info!(user = %username, error = %e, "oidc cli secret refused until the user signs in again");
                Ok(None)
            }
        }
    }

    fn stored_token(&self, user: &User) -> Result<StoredToken, OidcError> {
        let sealed = doc_str(user, "token").ok_or_else(|| OidcError::Refused("no provider token".to_owned()))?;
        let bytes = self
            .sealer()?
            .open(&token_context(user.user_id), sealed)
            .map_err(|_| OidcError::Refused("the stored provider token cannot be read".to_owned()))?;
        serde_json::from_slice(&bytes).map_err(|_| OidcError::Refused("corrupt provider token".to_owned()))
    }

    /// The user, after refreshing its provider token if it expired.
    async fn fresh(&self, registry: &Registry, settings: &Settings, user: User) -> Result<User, OidcError> {
        let token = self.stored_token(&user)?;
        if token.valid_at(now_unix()) {
            return Ok(user);
        }
        let refresh = token
            .refresh_token
            .clone()
            .ok_or_else(|| OidcError::Refused("the access token expired and there is no refresh token".to_owned()))?;
        let cfg = OidcSettings::of(settings)?;
        let provider = self.provider(&cfg).await?;
        let form = [("grant_type", "refresh_token"), ("refresh_token", refresh.as_str())];
        let answer = match self.token_request(&cfg, &provider, &form).await {
            Ok(answer) => answer,
            Err(OidcError::Refused(why)) => {
                // Another replica may have refreshed (and rotated) it first.
                let again = registry.user(user.user_id).await?;
                return match self.stored_token(&again) {
                    Ok(t) if t != token && t.valid_at(now_unix()) => Ok(again),
                    _ => Err(OidcError::Refused(why)),
                };
            }
            Err(e) => return Err(e),
        };
        let mut stored = answer.stored(now_unix());
        let (sub, iss) = (doc_str(&user, "sub").unwrap_or(""), doc_str(&user, "iss").unwrap_or(""));
        let info = match &stored.id_token {
            Some(raw) => {
                let claims = self.verify_id_token(&cfg, &provider, raw, None).await?;
                Some(self.user_info(&cfg, &provider, &claims, &stored.access_token).await?)
            }
            None => self.remote_info(&cfg, &provider, &stored.access_token, iss).await,
        };
        if info.as_ref().is_some_and(|i| i.sub != sub || i.iss != iss) {
            return Err(OidcError::Claims("the refreshed token is another user's".to_owned()));
        }
        stored.refresh_token = stored.refresh_token.or(token.refresh_token);
        stored.id_token = stored.id_token.or(token.id_token);
        let (group_ids, admin) = match info {
            Some(info) => (onboard_groups(registry, &info.groups).await?, info.admin),
            None => (user.group_ids.clone(), user.admin_in_auth),
        };
        Ok(self.record_login(registry, user.user_id, &group_ids, admin, &stored).await?)
    }

    // -------------------------------------------------- claims and users

    /// Harbor's user info: the ID token's claims, merged with the userinfo
    /// endpoint's when it answers (its e-mail and groups win; the username
    /// is `oidc_user_claim` of the ID token, else the userinfo's, else the
    /// `name` claim).
    async fn user_info(
        &self,
        cfg: &OidcSettings,
        provider: &Provider,
        local: &Map<String, Value>,
        access_token: &str,
    ) -> Result<UserInfo, OidcError> {
        let remote = match &provider.userinfo_endpoint {
            Some(url) if !access_token.is_empty() => match self.userinfo(cfg, url, access_token).await {
                Ok(m) => Some(m),
                Err(e) => {
                    tracing::warn!(error = %e, "oidc userinfo failed; using the id token's claims");
                    None
                }
            },
            _ => None,
        };
        let sub = local.get("sub").and_then(Value::as_str).unwrap_or_default().to_owned();
        if let Some(r) = &remote
            && r.get("sub").and_then(Value::as_str) != Some(sub.as_str())
        {
            return Err(OidcError::Claims("the userinfo subject does not match the id token's".to_owned()));
        }
        let claim = |m: &Map<String, Value>, k: &str| {
            (!k.is_empty()).then(|| m.get(k).and_then(Value::as_str)).flatten().map(str::to_owned)
        };
        let username = claim(local, &cfg.user_claim)
            .or_else(|| remote.as_ref().and_then(|r| claim(r, &cfg.user_claim).or_else(|| claim(r, "name"))))
            .or_else(|| claim(local, "name"))
            .unwrap_or_default()
            .replace(' ', "_");
        let email = remote.as_ref().map_or_else(|| claim(local, "email"), |r| claim(r, "email")).unwrap_or_default();
        let raw_groups = remote
            .as_ref()
            .and_then(|r| groups_claim(r, &cfg.groups_claim))
            .or_else(|| groups_claim(local, &cfg.groups_claim))
            .unwrap_or_default();
        Ok(UserInfo {
            iss: local.get("iss").and_then(Value::as_str).unwrap_or_default().to_owned(),
            sub,
            username,
            email,
            admin: !cfg.admin_group.is_empty() && raw_groups.contains(&cfg.admin_group),
            groups: raw_groups
                .into_iter()
                .filter(|g| cfg.group_filter.as_ref().is_none_or(|re| re.is_match(g)))
                .collect(),
        })
    }

    /// The user info of the userinfo endpoint alone (a refresh without a
    /// new ID token); `None` when there is none or it fails.
    async fn remote_info(&self, cfg: &OidcSettings, provider: &Provider, access: &str, iss: &str) -> Option<UserInfo> {
        let url = provider.userinfo_endpoint.as_deref()?;
        let mut remote = match self.userinfo(cfg, url, access).await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "oidc userinfo failed after a refresh; groups are kept");
                return None;
            }
        };
        remote.insert("iss".to_owned(), Value::from(iss));
        self.user_info(cfg, &Provider { userinfo_endpoint: None, ..provider.clone() }, &remote, "").await.ok()
    }

    async fn userinfo(
        &self,
        cfg: &OidcSettings,
        url: &str,
        access_token: &str,
    ) -> Result<Map<String, Value>, OidcError> {
        let client = self.client(cfg.verify_cert)?;
        let req = client.get(url).bearer_auth(access_token).header(http::header::ACCEPT, "application/json");
        match self.send(req).await? {
            (status, Value::Object(m)) if status.is_success() => Ok(m),
            (status, _) => Err(OidcError::Provider(format!("userinfo answered {status}"))),
        }
    }

    // ------------------------------------------------- provider requests

    fn client(&self, verify_cert: bool) -> Result<reqwest::Client, OidcError> {
        let mut clients = self.clients.lock().map_err(|_| OidcError::Provider("client lock poisoned".to_owned()))?;
        if let Some(c) = clients.get(&verify_cert) {
            return Ok(c.clone());
        }
        let client = reqwest::Client::builder()
            .timeout(HTTP_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::limited(5))
            .tls_danger_accept_invalid_certs(!verify_cert)
            .build()
            .map_err(|e| OidcError::Provider(format!("building the HTTP client: {e}")))?;
        clients.insert(verify_cert, client.clone());
        Ok(client)
    }

    /// Sends a request and reads its JSON answer (at most 1 MiB; a body
    /// that is not JSON reads as `null`).
    async fn send(&self, req: reqwest::RequestBuilder) -> Result<(reqwest::StatusCode, Value), OidcError> {
        let mut resp = req.send().await.map_err(|e| OidcError::Provider(e.without_url().to_string()))?;
        let status = resp.status();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| OidcError::Provider(e.without_url().to_string()))? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(OidcError::Provider("the answer is too large".to_owned()));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
    }

    async fn discover(&self, endpoint: &str, verify_cert: bool) -> Result<Provider, OidcError> {
        let url = format!("{endpoint}/.well-known/openid-configuration");
        let req = self.client(verify_cert)?.get(&url).header(http::header::ACCEPT, "application/json");
        let (status, body) = self.send(req).await?;
        if !status.is_success() {
            return Err(OidcError::Provider(format!("discovery answered {status}")));
        }
        let provider: Provider = serde_json::from_value(body)
            .map_err(|e| OidcError::Provider(format!("not an OpenID provider configuration: {e}")))?;
        if provider.issuer.trim_end_matches('/') != endpoint {
            return Err(OidcError::Provider(format!(
                "the provider names its issuer {}, not {endpoint}",
                provider.issuer
            )));
        }
        for u in [&provider.authorization_endpoint, &provider.token_endpoint, &provider.jwks_uri] {
            if !url::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
                return Err(OidcError::Provider(format!("{u:?} is not an http(s) URL")));
            }
        }
        Ok(provider)
    }

    /// The provider's configuration, cached for a minute per endpoint.
    async fn provider(&self, cfg: &OidcSettings) -> Result<Arc<Provider>, OidcError> {
        if let Ok(cached) = self.provider.lock()
            && let Some(c) = cached.as_ref()
            && c.endpoint == cfg.endpoint
            && c.verify_cert == cfg.verify_cert
            && c.at.elapsed() < DISCOVERY_TTL
        {
            return Ok(c.provider.clone());
        }
        let provider = Arc::new(self.discover(&cfg.endpoint, cfg.verify_cert).await?);
        if let Ok(mut cached) = self.provider.lock() {
            *cached = Some(CachedProvider {
                endpoint: cfg.endpoint.clone(),
                verify_cert: cfg.verify_cert,
                provider: provider.clone(),
                at: Instant::now(),
            });
        }
        Ok(provider)
    }

    /// The provider's signing keys, cached; `refetch` asks again (at most
    /// every few seconds) when a token names a key the cache lacks.
    async fn jwks(&self, cfg: &OidcSettings, uri: &str, refetch: bool) -> Result<Arc<Vec<Jwk>>, OidcError> {
        if let Ok(cache) = self.jwks.lock()
            && let Some((keys, at)) = cache.get(uri)
            && at.elapsed() < if refetch { JWKS_MIN_REFETCH } else { JWKS_TTL }
        {
            return Ok(keys.clone());
        }
        let req = self.client(cfg.verify_cert)?.get(uri).header(http::header::ACCEPT, "application/json");
        let (status, body) = self.send(req).await?;
        let list = body.get("keys").and_then(Value::as_array).filter(|_| status.is_success());
        let list = list.ok_or_else(|| OidcError::Provider(format!("the JWKS answered {status} without keys")))?;
        // A key berth cannot use (an encryption key, an unknown type) is
        // skipped rather than failing the whole set.
        let keys: Arc<Vec<Jwk>> =
            Arc::new(list.iter().filter_map(|k| serde_json::from_value(k.clone()).ok()).collect());
        if let Ok(mut cache) = self.jwks.lock() {
            cache.insert(uri.to_owned(), (keys.clone(), Instant::now()));
        }
        Ok(keys)
    }

    async fn verify_id_token(
        &self,
        cfg: &OidcSettings,
        provider: &Provider,
        raw: &str,
        nonce: Option<&str>,
    ) -> Result<Map<String, Value>, OidcError> {
        let expected = Expected { issuer: &provider.issuer, client_id: &cfg.client_id, nonce };
        let keys = self.jwks(cfg, &provider.jwks_uri, false).await?;
        match idtoken::verify(raw, &keys, &expected) {
            // The provider may have rotated its keys since they were cached.
            Err(IdTokenError::NoKey | IdTokenError::Invalid(_)) => {
                let keys = self.jwks(cfg, &provider.jwks_uri, true).await?;
                Ok(idtoken::verify(raw, &keys, &expected)?)
            }
            other => Ok(other?),
        }
    }

    /// A token endpoint request, authenticated as the client
    /// (`client_secret_basic` unless the provider supports only
    /// `client_secret_post`).
    async fn token_request(
        &self,
        cfg: &OidcSettings,
        provider: &Provider,
        form: &[(&str, &str)],
    ) -> Result<TokenResponse, OidcError> {
        let methods = &provider.token_endpoint_auth_methods_supported;
        let post = !methods.is_empty()
            && !methods.iter().any(|m| m == "client_secret_basic")
            && methods.iter().any(|m| m == "client_secret_post");
        let body = {
            let mut body = url::form_urlencoded::Serializer::new(String::new());
            body.extend_pairs(form.iter().copied()).append_pair("client_id", &cfg.client_id);
            if post {
                body.append_pair("client_secret", &cfg.client_secret);
            }
            body.finish()
        };
        let mut req = self
            .client(cfg.verify_cert)?
            .post(&provider.token_endpoint)
            .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(http::header::ACCEPT, "application/json")
            .body(body);
        if !post {
            // RFC 6749 2.3.1: both halves are form-encoded first.
            let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            req = req.basic_auth(enc(&cfg.client_id), Some(enc(&cfg.client_secret)));
        }
        let (status, body) = self.send(req).await?;
        if status.is_success() {
            return serde_json::from_value(body)
                .map_err(|e| OidcError::Provider(format!("the token endpoint's answer is not a token: {e}")));
        }
        let error = body.get("error").and_then(Value::as_str);
        match (status.is_client_error(), error) {
            (true, Some(error)) => {
                let description = body.get("error_description").and_then(Value::as_str).unwrap_or_default();
                Err(OidcError::Refused(format!("{error} {description}").trim().to_owned()))
            }
            _ => Err(OidcError::Provider(format!("the token endpoint answered {status}"))),
        }
    }
}

#[async_trait]
impl Directory for Oidc {
    /// The CLI secret check (Harbor's `oidc_cli` security): the OIDC user's
    /// name and its CLI secret.
    async fn authenticate(
        &self,
        registry: &Registry,
        settings: &Settings,
        username: &str,
        password: &str,
    ) -> Result<Option<User>, AuthError> {
        self.check_cli_secret(registry, settings, username, password).await
    }
}

/// The groups of a claim: a list of strings, or one string (some
/// providers send a single group so); `None` when the claim is missing.
fn groups_claim(claims: &Map<String, Value>, key: &str) -> Option<Vec<String>> {
    match claims.get(key)? {
        Value::Array(list) => Some(list.iter().filter_map(Value::as_str).map(str::to_owned).collect()),
        Value::String(s) => Some(vec![s.clone()]),
        _ => None,
    }
}

/// The ids of the OIDC groups of these names, onboarding new ones.
async fn onboard_groups(registry: &Registry, names: &[String]) -> Result<Vec<i64>, ServiceError> {
    let mut ids = Vec::new();
    for name in names {
        if name.trim().is_empty() || name.chars().count() > 255 {
            continue;
        }
        let id = registry.onboard_group(OIDC_GROUP, name, name).await?.id;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// The user onboarded for an identity. An identity whose user was deleted
/// is forgotten, so that it onboards afresh.
async fn user_of_identity(registry: &Registry, iss: &str, sub: &str) -> Result<Option<User>, ServiceError> {
    let (pk, sk) = keys::oidc_identity(iss, sub);
    let Some(id) = registry.meta.get(&pk, &sk).await?.and_then(|i| i.i64("user_id")) else { return Ok(None) };
    match registry.user(id).await {
        Ok(u) if u.source == Source::Oidc && doc_str(&u, "sub") == Some(sub) && doc_str(&u, "iss") == Some(iss) => {
            Ok(Some(u))
        }
        Ok(_) | Err(ServiceError::NotFound(_)) => {
            match registry.meta.delete(&pk, &sk, Condition::equals("user_id", id)).await {
                Err(e) if !e.is(ErrorKind::ConditionFailed) => return Err(e.into()),
                _ => {}
            }
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// A login under way, as the state item recorded it.
struct PendingLogin {
    nonce: String,
    verifier: String,
    redirect_uri: String,
    return_to: String,
}

/// Consumes the state of a login: it works once, on any replica.
async fn take_state(registry: &Registry, state: &str) -> Result<PendingLogin, OidcError> {
    if !is_token(state) {
        return Err(OidcError::State);
    }
    let (pk, sk) = keys::oidc_state(state);
    let item = registry.meta.get(&pk, &sk).await?.ok_or(OidcError::State)?;
    let get = |k: &str| item.str(k).map(str::to_owned).ok_or(OidcError::State);
    let login = PendingLogin {
        nonce: get("nonce")?,
        verifier: get("code_verifier")?,
        redirect_uri: get("redirect_uri")?,
        return_to: get("return_to")?,
    };
    match registry.meta.delete(&pk, &sk, Condition::equals("nonce", login.nonce.clone())).await {
        Ok(()) => Ok(login),
        Err(e) if e.is(ErrorKind::ConditionFailed) => Err(OidcError::State),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn pkce_matches_rfc_7636() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let t = random_token();
        assert_eq!(t.len(), 43, "a PKCE verifier of 43 characters");
        assert!(is_token(&t) && t != random_token());
        assert!(!is_token("short") && !is_token(&"a".repeat(129)) && !is_token("abc/def+ghi=jklmnopq"));
    }

    #[test]
    fn scopes_always_hold_openid() {
        assert_eq!(scopes(""), "openid profile email offline_access");
        assert_eq!(scopes("openid,offline_access"), "openid offline_access");
        assert_eq!(scopes("profile, email"), "openid profile email");
    }

    #[test]
    fn cli_secrets_serve_registry_clients_only() {
        use http::Method;
        for (m, p) in [
            (Method::GET, "/projects"),
            (Method::GET, "/systeminfo"),
            (Method::POST, "/projects"),
            (Method::GET, "/projects/p/repositories"),
            (Method::GET, "/projects/p/repositories/a%2Fb/artifacts"),
            (Method::DELETE, "/projects/p/repositories/r/artifacts/sha256:1/tags/v1"),
        ] {
            assert!(cli_secret_allowed(&m, p), "{m} {p}");
        }
        for (m, p) in [
            (Method::GET, "/users/current"),
            (Method::PUT, "/users/3/cli_secret"),
            (Method::DELETE, "/projects/p"),
            (Method::GET, "/configurations"),
            (Method::POST, "/projects/p/members"),
        ] {
            assert!(!cli_secret_allowed(&m, p), "{m} {p}");
        }
    }

    /// The settings with these values changed.
    async fn settings(values: Value) -> Arc<Settings> {
        let (_dir, registry) = crate::testkit::local_registry().await;
        let store = crate::service::settings::SettingsStore::new(registry.meta.clone(), 1800);
        let Value::Object(changes) = values else { panic!("an object") };
        store.update(changes, |_, _| Ok(())).await.unwrap()
    }

    #[tokio::test]
    async fn claims_make_harbors_user_info() {
        let values = settings(json!({
            "auth_mode": "oidc_auth", "oidc_endpoint": "https://idp.example/", "oidc_client_id": "berth",
            "oidc_groups_claim": "groups", "oidc_admin_group": "admins", "oidc_group_filter": "^(dev|admins)$",
            "oidc_user_claim": "preferred_username",
        }))
        .await;
        let cfg = OidcSettings::of(&values).unwrap();
        assert_eq!(cfg.endpoint, "https://idp.example");
        let provider = Provider {
            issuer: "https://idp.example".into(),
            authorization_endpoint: String::new(),
            token_endpoint: String::new(),
            jwks_uri: String::new(),
            userinfo_endpoint: None,
            end_session_endpoint: None,
            token_endpoint_auth_methods_supported: vec![],
        };
        let oidc = Oidc::new(&TokenKeys::from_seed(&[1; 32]));
        let info = async |claims: Value| {
            let Value::Object(m) = claims else { panic!("an object") };
            oidc.user_info(&cfg, &provider, &m, "").await.unwrap()
        };
        let got = info(json!({
            "iss": "https://idp.example", "sub": "s1", "preferred_username": "ann lee", "name": "Ann",
            "email": "ann@example.org", "groups": ["dev", "ops", "admins"],
        }))
        .await;
        assert_eq!(got.username, "ann_lee", "the user claim, blanks made underscores");
        assert_eq!(got.groups, ["dev", "admins"], "filtered");
        assert!(got.admin);
        let got = info(json!({ "iss": "i", "sub": "s2", "name": "Bob", "groups": "ops" })).await;
        assert_eq!((got.username.as_str(), got.admin), ("Bob", false), "falls back to name");
        assert!(got.groups.is_empty(), "a single group string, filtered out");
        let got = info(json!({ "iss": "i", "sub": "s3" })).await;
        assert_eq!(got.username, "");

        assert!(matches!(OidcSettings::of(&Settings::defaults(1800)), Err(OidcError::NotOidc(_))));
        let unset = settings(json!({ "auth_mode": "oidc_auth" })).await;
        assert!(matches!(OidcSettings::of(&unset), Err(OidcError::NotConfigured("oidc_endpoint"))));
        let bad_filter = settings(json!({
            "auth_mode": "oidc_auth", "oidc_endpoint": "https://x", "oidc_client_id": "c", "oidc_group_filter": "(",
        }))
        .await;
        assert!(OidcSettings::of(&bad_filter).unwrap().group_filter.is_none(), "as Harbor: no filtering");
    }

    fn verified(sub: &str, name: &str, token: &StoredToken) -> Verified {
        let info = UserInfo {
            iss: "https://idp.example".into(),
            sub: sub.into(),
            username: name.into(),
            email: "ann@example.org".into(),
            groups: vec![],
            admin: false,
        };
        Verified { info, group_ids: vec![], token: token.clone() }
    }

    #[tokio::test]
    async fn identities_onboard_once_and_cli_secrets_check_like_passwords() {
        let (_dir, registry) = crate::testkit::local_registry().await;
        let settings = settings(json!({
            "auth_mode": "oidc_auth", "oidc_endpoint": "https://idp.example", "oidc_client_id": "berth",
        }))
        .await;
        let oidc = Oidc::new(&TokenKeys::from_seed(&[1; 32]));
        let forever = StoredToken { access_token: "at".into(), refresh_token: None, id_token: None, expiry: 0 };
        let ann = oidc.create_user(&registry, &settings, &verified("s1", "ann", &forever), None).await.unwrap();
        assert_eq!((ann.source, ann.comment.as_str()), (Source::Oidc, ONBOARDED_COMMENT));
        let found = user_of_identity(&registry, "https://idp.example", "s1").await.unwrap().unwrap();
        assert_eq!(found.user_id, ann.user_id);
        assert!(user_of_identity(&registry, "https://other.example", "s1").await.unwrap().is_none(), "per issuer");

        // The same identity again (two logins racing) signs the same user
        // in, whatever name the second asked for.
        let again = oidc.create_user(&registry, &settings, &verified("s1", "ann2", &forever), None).await;
        assert_eq!(again.unwrap().user_id, ann.user_id);
        assert!(registry.user_by_name("ann2").await.unwrap().is_none());
        // Another identity cannot take the name.
        let other = oidc.create_user(&registry, &settings, &verified("s2", "ann", &forever), None).await;
        assert!(matches!(other, Err(OidcError::Service(ServiceError::Conflict(_)))));

        let secret = oidc.reveal_secret(&ann).unwrap();
        let check = |name: &'static str, secret: String| {
            let (registry, settings, oidc) = (&registry, &settings, &oidc);
            async move { oidc.check_cli_secret(registry, settings, name, &secret).await.unwrap().map(|u| u.user_id) }
        };
        assert_eq!(check("ann", secret.clone()).await, Some(ann.user_id));
        assert_eq!(check("ann", "Wrong1Secret".into()).await, None);
        assert_eq!(check("nobody", secret.clone()).await, None);
        oidc.set_cli_secret(&registry, ann.user_id, "Rotated1Secret").await.unwrap();
        assert_eq!(check("ann", secret.clone()).await, None, "the old secret is gone");
        assert_eq!(check("ann", "Rotated1Secret".into()).await, Some(ann.user_id));
        assert!(matches!(oidc.set_cli_secret(&registry, ann.user_id, "weak").await, Err(ServiceError::Invalid(_))));
        registry.ensure_admin(Some("Harbor12345")).await.unwrap();
        let local = oidc.set_cli_secret(&registry, crate::service::users::ADMIN_ID, "Admin1Secret").await;
        assert!(matches!(local, Err(ServiceError::NotFound(_))), "only OIDC users have one");
        let stored = registry.user(ann.user_id).await.unwrap();
        assert!(!serde_json::to_string(&stored).unwrap().contains("Rotated1Secret"), "never stored in clear");
        assert_eq!(oidc.reveal_secret(&stored).as_deref(), Some("Rotated1Secret"));

        // An expired provider token without a refresh token refuses the
        // secret (as Harbor), until a login records a fresh one.
        let expired = StoredToken { expiry: 1, ..forever.clone() };
        oidc.record_login(&registry, ann.user_id, &[], false, &expired).await.unwrap();
        assert_eq!(check("ann", "Rotated1Secret".into()).await, None);
        oidc.record_login(&registry, ann.user_id, &[], false, &forever).await.unwrap();
        assert_eq!(check("ann", "Rotated1Secret".into()).await, Some(ann.user_id));

        // A deleted user's identity onboards afresh.
        registry.delete_user(ann.user_id).await.unwrap();
        assert!(user_of_identity(&registry, "https://idp.example", "s1").await.unwrap().is_none());
        let back = oidc.create_user(&registry, &settings, &verified("s1", "ann", &forever), None).await.unwrap();
        assert_ne!(back.user_id, ann.user_id);
    }

    #[tokio::test]
    async fn a_login_state_works_once() {
        let (_dir, registry) = crate::testkit::local_registry().await;
        let state = random_token();
        let (pk, sk) = keys::oidc_state(&state);
        let item = Item::new(pk, sk)
            .with("nonce", "n")
            .with("code_verifier", "v")
            .with("redirect_uri", "http://berth/c/oidc/callback")
            .with("return_to", "/")
            .with(TTL_ATTR, now_unix() + 60);
        registry.meta.put(item.clone(), Condition::NotExists).await.unwrap();
        let login = take_state(&registry, &state).await.unwrap();
        assert_eq!((login.nonce.as_str(), login.verifier.as_str()), ("n", "v"));
        assert!(matches!(take_state(&registry, &state).await, Err(OidcError::State)), "replayed");
        assert!(matches!(take_state(&registry, "../../etc").await, Err(OidcError::State)));
        let stale = random_token();
        let (pk, sk) = keys::oidc_state(&stale);
        let expired = Item { pk, sk, ..item }.with(TTL_ATTR, now_unix() - 1);
        registry.meta.put(expired, Condition::NotExists).await.unwrap();
        assert!(matches!(take_state(&registry, &stale).await, Err(OidcError::State)), "expired");
    }

    #[test]
    fn token_lifetimes() {
        let answer: TokenResponse =
            serde_json::from_value(json!({ "access_token": "a", "expires_in": "60", "refresh_token": "" })).unwrap();
        let t = answer.stored(1_000);
        assert_eq!((t.expiry, t.refresh_token.as_deref()), (1_060, None));
        assert!(t.valid_at(1_000) && !t.valid_at(1_055));
        let forever: TokenResponse = serde_json::from_value(json!({ "access_token": "a" })).unwrap();
        assert!(forever.stored(1_000).valid_at(i64::MAX - 100));
    }
}

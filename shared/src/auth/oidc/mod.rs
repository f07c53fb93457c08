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
//! It keeps nothing in the table itself: logins under way, pending
//! onboardings, identities and users are the registry's
//! ([`crate::service::oidc`]).
//!
//! By job: [`provider`] speaks to the provider (discovery, keys, tokens,
//! userinfo, claims), [`login`] runs the browser flow and onboarding,
//! [`cli`] the CLI secrets, [`refresh`] keeps a CLI user's provider token
//! fresh; [`idtoken`] verifies ID tokens.

mod cli;
mod idtoken;
mod login;
mod provider;
mod refresh;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::jwk::Jwk;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

pub use self::cli::cli_secret_allowed;
pub use self::idtoken::{Expected, IdTokenError};
use super::seal::{SealError, Sealer};
use super::token::TokenKeys;
use super::{AuthError, Directory};
use crate::meta::ErrorKind;
use crate::port::PortError;
use crate::service::oidc::OidcIdentity;
use crate::service::settings::{AuthMode, Settings};
use crate::service::users::User;
use crate::service::{Registry, ServiceError};

/// Harbor's comment on the users it onboards from OIDC.
const ONBOARDED_COMMENT: &str = "Onboarded via OIDC provider";
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
        if settings.auth_mode != AuthMode::Oidc {
            return Err(OidcError::NotOidc(settings.auth_mode.to_string()));
        }
        let endpoint = settings.oidc_endpoint.trim().trim_end_matches('/').to_owned();
        if endpoint.is_empty() {
            return Err(OidcError::NotConfigured("oidc_endpoint"));
        }
        let client_id = settings.oidc_client_id.clone();
        if client_id.is_empty() {
            return Err(OidcError::NotConfigured("oidc_client_id"));
        }
        let filter = settings.oidc_group_filter.as_str();
        // As Harbor: a filter that is no regular expression filters nothing.
        let group_filter = match regex_lite::Regex::new(filter) {
            _ if filter.is_empty() => None,
            Ok(re) => Some(re),
            Err(e) => {
                tracing::warn!(error = %e, "oidc_group_filter is not a regular expression; groups are not filtered");
                None
            }
        };
        let extra_params = settings
            .oidc_extra_redirect_parms
            .0
            .iter()
            .filter(|(k, _)| !RESERVED_PARAMS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(Self {
            endpoint,
            client_id,
            client_secret: settings.oidc_client_secret.expose().to_owned(),
            groups_claim: settings.oidc_groups_claim.trim().to_owned(),
            admin_group: settings.oidc_admin_group.trim().to_owned(),
            group_filter,
            scope: scopes(&settings.oidc_scope),
            user_claim: settings.oidc_user_claim.trim().to_owned(),
            verify_cert: settings.oidc_verify_cert,
            auto_onboard: settings.oidc_auto_onboard,
            extra_params,
            logout: settings.oidc_logout,
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

/// A provider-verified identity on its way to becoming a user: who (with
/// the name to onboard), its groups' ids, and the provider's tokens.
#[derive(Debug, Clone)]
struct Verified {
    info: OidcIdentity,
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

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

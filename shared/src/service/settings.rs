//! System settings: what Harbor calls the user configurations
//! (`/api/v2.0/configurations`): the auth mode, LDAP and OIDC settings,
//! token lifetimes, the robot name prefix, self-registration…
//!
//! Every setting is declared once, as a field of [`Settings`]: its Harbor
//! name is the field's, its type says how a value is checked and shown
//! ([`SettingValue`]; a [`Secret`] is stored but never shown), and the
//! declaration gives its default. The values an administrator changed are
//! kept in one table item (`SYS`/`CONFIG`) and read through a short-lived
//! cache, so a request pays for at most one read every few seconds.
//!
//! As Harbor does, a change naming a setting berth does not know is
//! accepted and the unknown key ignored; a known key with a value of the
//! wrong type is refused, naming the key.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use crate::config::Secret;
use crate::meta::{Condition, ErrorKind, Item, MetaStore, Write, keys};

use super::revocation::AccountEpoch;
use super::{ServiceError, ServiceResult};

/// How a setting's value is read from the API (or the stored item) and
/// shown by it.
pub trait SettingValue: Sized {
    /// Never shown by the API.
    const SECRET: bool = false;

    /// The value of `v`, as Harbor accepts it (numbers and booleans also as
    /// strings); the error says what is expected.
    fn from_api(v: &Value) -> Result<Self, String>;

    /// The value as the API shows it.
    fn to_api(&self) -> Value;
}

impl SettingValue for bool {
    fn from_api(v: &Value) -> Result<Self, String> {
        match v {
            Value::Bool(b) => Ok(*b),
            Value::String(s) if s == "true" || s == "false" => Ok(s == "true"),
            _ => Err("must be true or false".to_owned()),
        }
    }

    fn to_api(&self) -> Value {
        Value::from(*self)
    }
}

impl SettingValue for String {
    fn from_api(v: &Value) -> Result<Self, String> {
        v.as_str().map(str::to_owned).ok_or_else(|| "must be a string".to_owned())
    }

    fn to_api(&self) -> Value {
        Value::from(self.as_str())
    }
}

impl SettingValue for Secret {
    const SECRET: bool = true;

    fn from_api(v: &Value) -> Result<Self, String> {
        String::from_api(v).map(Secret::new)
    }

    fn to_api(&self) -> Value {
        Value::Null
    }
}

fn whole_number(v: &Value) -> Result<i64, String> {
    let n = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    n.ok_or_else(|| "must be a whole number".to_owned())
}

impl SettingValue for i64 {
    fn from_api(v: &Value) -> Result<Self, String> {
        whole_number(v)
    }

    fn to_api(&self) -> Value {
        Value::from(*self)
    }
}

/// A string that must not be blank.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NonEmpty(pub String);

impl NonEmpty {
    fn of(s: &str) -> Self {
        Self(s.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl SettingValue for NonEmpty {
    fn from_api(v: &Value) -> Result<Self, String> {
        match v.as_str() {
            Some(s) if !s.trim().is_empty() => Ok(Self::of(s)),
            _ => Err("must be a non-empty string".to_owned()),
        }
    }

    fn to_api(&self) -> Value {
        Value::from(self.0.as_str())
    }
}

/// A positive whole number (minutes, seconds), below 100,000,000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Positive(pub i64);

impl Positive {
    pub fn get(self) -> i64 {
        self.0
    }
}

impl SettingValue for Positive {
    fn from_api(v: &Value) -> Result<Self, String> {
        match whole_number(v)? {
            n if n > 0 && n <= 99_999_999 => Ok(Self(n)),
            _ => Err("must be a positive number below 100000000".to_owned()),
        }
    }

    fn to_api(&self) -> Value {
        Value::from(self.0)
    }
}

/// An LDAP search scope: 0 (base), 1 (one level) or 2 (subtree).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LdapScope(pub i64);

impl SettingValue for LdapScope {
    fn from_api(v: &Value) -> Result<Self, String> {
        match whole_number(v)? {
            n @ 0..=2 => Ok(Self(n)),
            _ => Err("must be 0 (base), 1 (one level) or 2 (subtree)".to_owned()),
        }
    }

    fn to_api(&self) -> Value {
        Value::from(self.0)
    }
}

/// A map of strings, given as a JSON object or as its JSON text (Harbor
/// shows it as text).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StringMap(pub BTreeMap<String, String>);

impl SettingValue for StringMap {
    fn from_api(v: &Value) -> Result<Self, String> {
        let bad = || "must be a JSON object of strings".to_owned();
        let object = match v {
            Value::Object(m) => m.clone(),
            Value::String(s) if s.trim().is_empty() => Map::new(),
            Value::String(s) => match serde_json::from_str::<Value>(s) {
                Ok(Value::Object(m)) => m,
                _ => return Err(bad()),
            },
            _ => return Err(bad()),
        };
        object
            .into_iter()
            .map(|(k, v)| v.as_str().map(|s| (k, s.to_owned())).ok_or_else(bad))
            .collect::<Result<BTreeMap<_, _>, _>>()
            .map(Self)
    }

    fn to_api(&self) -> Value {
        Value::from(serde_json::to_string(&self.0).unwrap_or_default())
    }
}

/// Declares a closed set of strings as a setting type.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl SettingValue for $name {
            fn from_api(v: &Value) -> Result<Self, String> {
                v.as_str()
                    .and_then(|s| Self::ALL.iter().copied().find(|x| x.as_str() == s))
                    .ok_or_else(|| format!("must be one of {}", [$($text),+].join(", ")))
            }

            fn to_api(&self) -> Value {
                Value::from(self.as_str())
            }
        }
    };
}

string_enum! {
    /// Where users other than the administrator come from.
    AuthMode {
        /// Local users with passwords in the table.
        Db = "db_auth",
        Ldap = "ldap_auth",
        Oidc = "oidc_auth",
    }
}

string_enum! {
    /// Who may create projects.
    ProjectCreation {
        Everyone = "everyone",
        AdminOnly = "adminonly",
    }
}

/// Declares [`Settings`]: one field per setting, with its default.
macro_rules! settings {
    ($($(#[doc = $doc:literal])* $name:ident: $ty:ty = $default:expr;)*) => {
        /// The effective settings: every setting, stored value or default.
        #[derive(Debug, Clone, PartialEq)]
        pub struct Settings {
            $($(#[doc = $doc])* pub $name: $ty,)*
        }

        impl Settings {
            fn declared() -> Self {
                Self { $($name: $default,)* }
            }

            /// Sets the setting `name` from its API (or stored) value;
            /// `Ok(false)` when berth knows no such setting.
            fn set(&mut self, name: &str, value: &Value) -> Result<bool, String> {
                match name {
                    $(stringify!($name) => self.$name = <$ty as SettingValue>::from_api(value)?,)*
                    _ => return Ok(false),
                }
                Ok(true)
            }

            /// The value of `name` to store (its API form; secrets too).
            fn stored_value(&self, name: &str) -> Option<Value> {
                match name {
                    $(stringify!($name) => Some(stored(&self.$name)),)*
                    _ => None,
                }
            }

            /// The settings the API may show: everything but secrets, as
            /// `{name: {"value": …, "editable": true}}`.
            pub fn public_view(&self) -> Map<String, Value> {
                let mut out = Map::new();
                $(
                    if !<$ty as SettingValue>::SECRET {
                        out.insert(
                            stringify!($name).to_owned(),
                            serde_json::json!({ "value": self.$name.to_api(), "editable": true }),
                        );
                    }
                )*
                out
            }
        }
    };
}

/// What is stored for a value: its serde form (a secret in clear, a map as
/// an object).
fn stored<T: SettingValue + Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

settings! {
    auth_mode: AuthMode = AuthMode::Db;
    primary_auth_mode: bool = false;
    self_registration: bool = false;
    project_creation_restriction: ProjectCreation = ProjectCreation::Everyone;
    /// Minutes a registry token lives; the default is `auth.token_ttl_secs`
    /// of the configuration.
    token_expiration: Positive = Positive(30);
    /// Days a new robot lives when its request names no duration.
    robot_token_duration: Positive = Positive(30);
    robot_name_prefix: NonEmpty = NonEmpty::of("robot$");
    read_only: bool = false;
    notification_enable: bool = true;
    /// Minutes of a portal session.
    session_timeout: Positive = Positive(60);
    banner_message: String = String::new();
    quota_per_project_enable: bool = true;
    /// Bytes of a new project's quota, -1 for unlimited.
    storage_per_project: i64 = -1;
    /// The usage, in percent of a project's limit, that raises a
    /// `QUOTA_WARNING` event when a push crosses it (berth's own setting).
    quota_warning_percent: i64 = 85;
    audit_log_forward_endpoint: String = String::new();
    skip_audit_log_database: bool = false;
    pull_time_update_disable: bool = false;
    pull_count_update_disable: bool = false;
    pull_audit_log_disable: bool = false;
    ldap_url: String = String::new();
    ldap_search_dn: String = String::new();
    ldap_search_password: Secret = Secret::new("");
    ldap_base_dn: String = String::new();
    ldap_filter: String = String::new();
    ldap_uid: NonEmpty = NonEmpty::of("cn");
    ldap_scope: LdapScope = LdapScope(2);
    /// Seconds.
    ldap_timeout: Positive = Positive(5);
    ldap_verify_cert: bool = true;
    /// Not in Harbor: upgrade an `ldap://` connection with StartTLS.
    ldap_starttls: bool = false;
    ldap_group_base_dn: String = String::new();
    ldap_group_search_filter: String = String::new();
    ldap_group_attribute_name: String = String::new();
    ldap_group_search_scope: LdapScope = LdapScope(2);
    ldap_group_admin_dn: String = String::new();
    ldap_group_membership_attribute: String = "memberof".to_owned();
    ldap_group_attach_parallel: bool = false;
    oidc_name: String = String::new();
    oidc_endpoint: String = String::new();
    oidc_client_id: String = String::new();
    oidc_client_secret: Secret = Secret::new("");
    oidc_groups_claim: String = String::new();
    oidc_admin_group: String = String::new();
    oidc_group_filter: String = String::new();
    oidc_scope: String = String::new();
    oidc_user_claim: String = String::new();
    oidc_verify_cert: bool = true;
    oidc_auto_onboard: bool = false;
    oidc_extra_redirect_parms: StringMap = StringMap::default();
    oidc_logout: bool = false;
}

impl Settings {
    /// The defaults, with the configuration's token lifetime.
    pub fn defaults(token_ttl_secs: u64) -> Self {
        let minutes = i64::try_from(token_ttl_secs.div_ceil(60)).unwrap_or(30).max(1);
        Self { token_expiration: Positive(minutes), ..Self::declared() }
    }

    /// The defaults overlaid with stored values. A stored value this build
    /// cannot read (a setting whose type changed) keeps its default, and an
    /// unknown one (from a newer berth) is ignored.
    fn with_stored(mut self, stored: &Map<String, Value>) -> Self {
        for (k, v) in stored {
            if let Err(why) = self.set(k, v) {
                tracing::warn!(setting = %k, why, "a stored setting is unreadable; its default applies");
            }
        }
        self
    }

    pub fn robot_prefix(&self) -> &str {
        self.robot_name_prefix.as_str()
    }

    /// Registry-token lifetime, in seconds.
    pub fn token_ttl_secs(&self) -> i64 {
        self.token_expiration.get().saturating_mul(60)
    }

    /// Portal session lifetime, in seconds.
    pub fn session_ttl_secs(&self) -> i64 {
        self.session_timeout.get().saturating_mul(60)
    }
}

/// The changes a `PUT /configurations` asks for, checked: the known
/// settings with their values, in their stored form. Unknown names are
/// dropped, as Harbor drops them.
pub fn parse_changes(body: &Map<String, Value>) -> ServiceResult<Map<String, Value>> {
    let mut probe = Settings::declared();
    let mut changes = Map::new();
    // A null stands for a setting the client did not set (Harbor's Python
    // client sends its unset fields so); it changes nothing.
    for (name, value) in body.iter().filter(|(_, v)| !v.is_null()) {
        match probe.set(name, value) {
            Ok(true) => {
                if let Some(v) = probe.stored_value(name) {
                    changes.insert(name.clone(), v);
                }
            }
            Ok(false) => tracing::debug!(setting = %name, "unknown configuration ignored"),
            Err(why) => return Err(ServiceError::Invalid(format!("configuration {name}: {why}"))),
        }
    }
    Ok(changes)
}

impl super::Registry {
    /// Changes the system settings (`PUT /configurations`): settings berth
    /// does not know are ignored, bad values of known ones refused. The auth
    /// mode can change only to one this build serves (`available`), and
    /// only while no user but the administrator exists.
    pub async fn update_settings(
        &self,
        body: &Map<String, Value>,
        available: &[AuthMode],
    ) -> ServiceResult<Arc<Settings>> {
        let changes = parse_changes(body)?;
        if let Some(mode) =
            changes.get("auth_mode").map(AuthMode::from_api).transpose().map_err(ServiceError::Invalid)?
            && !available.contains(&mode)
        {
            return Err(ServiceError::Invalid(format!("auth mode {mode} is not available in this build")));
        }
        let others = self.has_other_users().await?;
        let event = crate::events::Event::about(
            crate::events::EventKind::UpdateConfiguration,
            self.actor(),
            None,
            "configuration",
        );
        let message = crate::events::Outgoing::event(&event)?;
        let updated = self
            .settings
            .update(changes, &self.epoch, message.outbox_write(), |before, after| {
                if before.auth_mode != after.auth_mode && others {
                    return Err(ServiceError::Invalid(
                        "the auth mode cannot be modified as new users have been inserted into database".to_owned(),
                    ));
                }
                let endpoint = after.audit_log_forward_endpoint.trim();
                if after.skip_audit_log_database && endpoint.is_empty() {
                    return Err(ServiceError::Invalid(
                        "skip_audit_log_database needs an audit_log_forward_endpoint: the audit log would be lost"
                            .to_owned(),
                    ));
                }
                if !endpoint.is_empty() && endpoint != before.audit_log_forward_endpoint.trim() {
                    crate::events::syslog::validate(endpoint).map_err(ServiceError::Invalid)?;
                }
                Ok(())
            })
            .await?;
        self.events().committed(message);
        Ok(updated)
    }
}

const CACHE_TTL: Duration = Duration::from_secs(3);

/// Reads and changes the settings, with a cache of a few seconds (other
/// replicas see a change within that time).
#[derive(Debug)]
pub struct SettingsStore {
    meta: Arc<dyn MetaStore>,
    token_ttl_secs: u64,
    cache: Mutex<Option<(Arc<Settings>, Instant)>>,
}

impl SettingsStore {
    pub fn new(meta: Arc<dyn MetaStore>, token_ttl_secs: u64) -> Self {
        Self { meta, token_ttl_secs, cache: Mutex::new(None) }
    }

    /// The effective settings.
    pub async fn get(&self) -> ServiceResult<Arc<Settings>> {
        if let Ok(cache) = self.cache.lock()
            && let Some((settings, at)) = cache.as_ref()
            && at.elapsed() < CACHE_TTL
        {
            return Ok(settings.clone());
        }
        let (stored, _) = self.stored().await?;
        let settings = Arc::new(Settings::defaults(self.token_ttl_secs).with_stored(&stored));
        if let Ok(mut cache) = self.cache.lock() {
            *cache = Some((settings.clone(), Instant::now()));
        }
        Ok(settings)
    }

    /// The changed values and the item's version (0 when none is stored).
    async fn stored(&self) -> ServiceResult<(Map<String, Value>, i64)> {
        let (pk, sk) = keys::settings();
        let item = self.meta.get(pk, sk).await?;
        let version = item.as_ref().and_then(|i| i.i64(keys::attr::VERSION)).unwrap_or(0);
        let values = item
            .and_then(|mut i| i.attrs.remove("values"))
            .and_then(|v| match v {
                Value::Object(m) => Some(m),
                _ => None,
            })
            .unwrap_or_default();
        Ok((values, version))
    }

    /// Applies changes (from [`parse_changes`]) after `check` accepts the
    /// settings they would give, atomically against concurrent updates and
    /// with `outbox` (the change's event).
    /// Settings decide who signs in and how, so a change also tells every
    /// replica to check remembered credentials again ([`AccountEpoch`]).
    pub(super) async fn update(
        &self,
        changes: Map<String, Value>,
        epoch: &AccountEpoch,
        outbox: Write,
        check: impl Fn(&Settings, &Settings) -> ServiceResult<()>,
    ) -> ServiceResult<Arc<Settings>> {
        loop {
            let (mut stored, version) = self.stored().await?;
            let before = Settings::defaults(self.token_ttl_secs).with_stored(&stored);
            stored.extend(changes.clone());
            let after = Settings::defaults(self.token_ttl_secs).with_stored(&stored);
            check(&before, &after)?;
            let (pk, sk) = keys::settings();
            let item = Item::new(pk, sk).with("values", Value::Object(stored)).with(keys::attr::VERSION, version + 1);
            let cond =
                if version == 0 { Condition::NotExists } else { Condition::equals(keys::attr::VERSION, version) };
            let writes = vec![Write::Put { item, cond }, epoch.bump(), outbox.clone()];
            match self.meta.transact(writes).await {
                Ok(()) => {
                    epoch.changed_here();
                    let after = Arc::new(after);
                    if let Ok(mut cache) = self.cache.lock() {
                        *cache = Some((after.clone(), Instant::now()));
                    }
                    return Ok(after);
                }
                Err(e) if e.is(ErrorKind::ConditionFailed) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    fn one(name: &str, value: Value) -> ServiceResult<Map<String, Value>> {
        parse_changes(&Map::from_iter([(name.to_owned(), value)]))
    }

    #[test]
    fn values_are_checked_and_normalised() {
        assert_eq!(one("auth_mode", json!("ldap_auth")).unwrap()["auth_mode"], json!("ldap_auth"));
        assert!(one("auth_mode", json!("uaa_auth")).is_err());
        assert_eq!(one("self_registration", json!("true")).unwrap()["self_registration"], json!(true));
        assert!(one("self_registration", json!(1)).is_err());
        assert_eq!(one("token_expiration", json!("45")).unwrap()["token_expiration"], json!(45));
        assert!(one("token_expiration", json!(0)).is_err());
        assert!(one("ldap_scope", json!(3)).is_err());
        assert!(one("robot_name_prefix", json!(" ")).is_err());
        assert_eq!(
            one("oidc_extra_redirect_parms", json!("{\"a\":\"b\"}")).unwrap()["oidc_extra_redirect_parms"],
            json!({"a": "b"})
        );
        assert!(one("oidc_extra_redirect_parms", json!({"a": 1})).is_err());
        let err = one("storage_per_project", json!("lots")).unwrap_err().to_string();
        assert!(err.contains("storage_per_project"), "the error names the key: {err}");
    }

    #[test]
    fn unknown_settings_are_ignored_as_harbor_does() {
        let body = json!({"scan_all_policy": {"type": "daily"}, "scanner_skip_update_pulltime": false,
            "self_registration": true, "skip_audit_log_database": null});
        let changes = parse_changes(body.as_object().unwrap()).unwrap();
        assert_eq!(changes, *json!({"self_registration": true}).as_object().unwrap());
    }

    #[test]
    fn stored_values_round_trip_and_secrets_are_never_shown() {
        let body = json!({"ldap_search_password": "s3cret", "oidc_extra_redirect_parms": {"k": "v"},
            "ldap_scope": "1", "project_creation_restriction": "adminonly"});
        let changes = parse_changes(body.as_object().unwrap()).unwrap();
        let s = Settings::defaults(1800).with_stored(&changes);
        assert_eq!(s.ldap_search_password.expose(), "s3cret");
        assert_eq!(s.ldap_scope, LdapScope(1));
        assert_eq!(s.project_creation_restriction, ProjectCreation::AdminOnly);
        assert_eq!(s.oidc_extra_redirect_parms.0["k"], "v");
        let view = s.public_view();
        assert!(!view.contains_key("ldap_search_password") && !view.contains_key("oidc_client_secret"));
        assert_eq!(view["auth_mode"], json!({"value": "db_auth", "editable": true}));
        assert_eq!(view["token_expiration"]["value"], json!(30));
        assert_eq!(view["oidc_extra_redirect_parms"]["value"], json!("{\"k\":\"v\"}"));
        // An unreadable stored value falls back to the default.
        let odd = Settings::defaults(1800).with_stored(json!({"ldap_scope": "wide"}).as_object().unwrap());
        assert_eq!(odd.ldap_scope, LdapScope(2));
    }
}

//! System settings: what Harbor calls the user configurations
//! (`/api/v2.0/configurations`): the auth mode, LDAP and OIDC settings,
//! token lifetimes, the robot name prefix, self-registration…
//!
//! Every setting is declared once in [`ITEMS`] with its type and default;
//! the values an administrator changed are kept in one table item
//! (`SYS`/`CONFIG`) and read through a short-lived cache, so a request pays
//! for at most one read every few seconds. Secret settings (passwords,
//! client secrets) are stored but never returned.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::meta::{Condition, ErrorKind, Item, MetaStore, keys};

use super::{ServiceError, ServiceResult};

/// How a setting's value is typed and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Str,
    /// A string that must not be empty.
    NonEmpty,
    /// A string never returned by the API.
    Secret,
    Bool,
    /// A whole number (Harbor also accepts it as a numeric string).
    Int,
    /// A positive whole number.
    Positive,
    /// One of a fixed list of strings.
    OneOf(&'static [&'static str]),
    /// An LDAP search scope: 0 (base), 1 (one level) or 2 (subtree).
    LdapScope,
    /// A JSON object of string values (given as an object or its JSON text).
    StringMap,
}

/// One setting.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    pub name: &'static str,
    pub kind: Kind,
    pub default: Default,
}

/// A setting's default value.
#[derive(Debug, Clone, Copy)]
pub enum Default {
    Str(&'static str),
    Bool(bool),
    Int(i64),
    /// `{}`.
    EmptyMap,
}

impl Default {
    fn value(self) -> Value {
        match self {
            Self::Str(s) => Value::from(s),
            Self::Bool(b) => Value::from(b),
            Self::Int(i) => Value::from(i),
            Self::EmptyMap => Value::Object(Map::new()),
        }
    }
}

pub const AUTH_MODES: &[&str] = &["db_auth", "ldap_auth", "oidc_auth"];

const fn s(name: &'static str, kind: Kind, default: &'static str) -> Setting {
    Setting { name, kind, default: Default::Str(default) }
}
const fn b(name: &'static str, default: bool) -> Setting {
    Setting { name, kind: Kind::Bool, default: Default::Bool(default) }
}
const fn i(name: &'static str, kind: Kind, default: i64) -> Setting {
    Setting { name, kind, default: Default::Int(default) }
}

/// Every setting berth knows, with Harbor's names and defaults.
pub const ITEMS: &[Setting] = &[
    s("auth_mode", Kind::OneOf(AUTH_MODES), "db_auth"),
    b("primary_auth_mode", false),
    b("self_registration", false),
    s("project_creation_restriction", Kind::OneOf(&["everyone", "adminonly"]), "everyone"),
    // Minutes; the default is `auth.token_ttl_secs` of the configuration.
    i("token_expiration", Kind::Positive, 30),
    i("robot_token_duration", Kind::Positive, 30),
    s("robot_name_prefix", Kind::NonEmpty, "robot$"),
    b("read_only", false),
    b("notification_enable", true),
    i("session_timeout", Kind::Positive, 60),
    s("banner_message", Kind::Str, ""),
    b("quota_per_project_enable", true),
    i("storage_per_project", Kind::Int, -1),
    s("audit_log_forward_endpoint", Kind::Str, ""),
    b("skip_audit_log_database", false),
    b("pull_time_update_disable", false),
    b("pull_count_update_disable", false),
    b("pull_audit_log_disable", false),
    s("ldap_url", Kind::Str, ""),
    s("ldap_search_dn", Kind::Str, ""),
    s("ldap_search_password", Kind::Secret, ""),
    s("ldap_base_dn", Kind::Str, ""),
    s("ldap_filter", Kind::Str, ""),
    s("ldap_uid", Kind::NonEmpty, "cn"),
    i("ldap_scope", Kind::LdapScope, 2),
    i("ldap_timeout", Kind::Positive, 5),
    b("ldap_verify_cert", true),
    // Not in Harbor: upgrade an `ldap://` connection with StartTLS.
    b("ldap_starttls", false),
    s("ldap_group_base_dn", Kind::Str, ""),
    s("ldap_group_search_filter", Kind::Str, ""),
    s("ldap_group_attribute_name", Kind::Str, ""),
    i("ldap_group_search_scope", Kind::LdapScope, 2),
    s("ldap_group_admin_dn", Kind::Str, ""),
    s("ldap_group_membership_attribute", Kind::Str, "memberof"),
    b("ldap_group_attach_parallel", false),
    s("oidc_name", Kind::Str, ""),
    s("oidc_endpoint", Kind::Str, ""),
    s("oidc_client_id", Kind::Str, ""),
    s("oidc_client_secret", Kind::Secret, ""),
    s("oidc_groups_claim", Kind::Str, ""),
    s("oidc_admin_group", Kind::Str, ""),
    s("oidc_group_filter", Kind::Str, ""),
    s("oidc_scope", Kind::Str, ""),
    s("oidc_user_claim", Kind::Str, ""),
    b("oidc_verify_cert", true),
    b("oidc_auto_onboard", false),
    Setting { name: "oidc_extra_redirect_parms", kind: Kind::StringMap, default: Default::EmptyMap },
    b("oidc_logout", false),
];

pub fn setting(name: &str) -> Option<&'static Setting> {
    ITEMS.iter().find(|s| s.name == name)
}

/// The effective settings: every item, stored value or default.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    values: Map<String, Value>,
}

impl Settings {
    /// The defaults, with the configuration's token lifetime.
    pub fn defaults(token_ttl_secs: u64) -> Self {
        let mut values: Map<String, Value> = ITEMS.iter().map(|s| (s.name.to_owned(), s.default.value())).collect();
        let minutes = i64::try_from(token_ttl_secs.div_ceil(60)).unwrap_or(30).max(1);
        values.insert("token_expiration".to_owned(), Value::from(minutes));
        Self { values }
    }

    fn with_stored(mut self, stored: &Map<String, Value>) -> Self {
        for (k, v) in stored {
            if self.values.contains_key(k) {
                self.values.insert(k.clone(), v.clone());
            }
        }
        self
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.values.get(name)
    }

    pub fn str(&self, name: &str) -> &str {
        self.values.get(name).and_then(Value::as_str).unwrap_or("")
    }

    pub fn bool(&self, name: &str) -> bool {
        self.values.get(name).and_then(Value::as_bool).unwrap_or(false)
    }

    pub fn int(&self, name: &str) -> i64 {
        self.values.get(name).and_then(Value::as_i64).unwrap_or(0)
    }

    pub fn auth_mode(&self) -> &str {
        self.str("auth_mode")
    }

    pub fn robot_prefix(&self) -> &str {
        self.str("robot_name_prefix")
    }

    /// Registry-token lifetime, in seconds.
    pub fn token_ttl_secs(&self) -> i64 {
        self.int("token_expiration").max(1).saturating_mul(60)
    }

    /// The settings the API may show: everything but secrets, as
    /// `{name: {"value": …, "editable": true}}`.
    pub fn public_view(&self) -> Map<String, Value> {
        ITEMS
            .iter()
            .filter(|s| s.kind != Kind::Secret)
            .map(|s| {
                let value = self.values.get(s.name).cloned().unwrap_or(Value::Null);
                let value = match (s.kind, value) {
                    // Harbor shows maps as their JSON text.
                    (Kind::StringMap, v @ Value::Object(_)) => Value::from(v.to_string()),
                    (_, v) => v,
                };
                (s.name.to_owned(), serde_json::json!({ "value": value, "editable": true }))
            })
            .collect()
    }
}

/// Checks one new value against its setting and returns it normalised to
/// its type.
pub fn normalise(name: &str, value: &Value) -> ServiceResult<Value> {
    let Some(setting) = setting(name) else {
        return Err(ServiceError::Invalid(format!("unknown configuration {name:?}")));
    };
    let bad = |why: &str| ServiceError::Invalid(format!("configuration {name}: {why}"));
    let int = || match value {
        Value::Number(n) => n.as_i64().ok_or_else(|| bad("must be a whole number")),
        Value::String(s) => s.trim().parse::<i64>().map_err(|_| bad("must be a whole number")),
        _ => Err(bad("must be a whole number")),
    };
    Ok(match setting.kind {
        Kind::Str | Kind::Secret => Value::from(value.as_str().ok_or_else(|| bad("must be a string"))?),
        Kind::NonEmpty => match value.as_str() {
            Some(s) if !s.trim().is_empty() => Value::from(s),
            _ => return Err(bad("must be a non-empty string")),
        },
        Kind::OneOf(allowed) => match value.as_str() {
            Some(s) if allowed.contains(&s) => Value::from(s),
            _ => return Err(bad(&format!("must be one of {}", allowed.join(", ")))),
        },
        Kind::Bool => match value {
            Value::Bool(b) => Value::from(*b),
            Value::String(s) if s == "true" || s == "false" => Value::from(s == "true"),
            _ => return Err(bad("must be true or false")),
        },
        Kind::Int => Value::from(int()?),
        Kind::Positive => {
            let n = int()?;
            if n <= 0 || n > 99_999_999 {
                return Err(bad("must be a positive number below 100000000"));
            }
            Value::from(n)
        }
        Kind::LdapScope => {
            let n = int()?;
            if !(0..=2).contains(&n) {
                return Err(bad("must be 0 (base), 1 (one level) or 2 (subtree)"));
            }
            Value::from(n)
        }
        Kind::StringMap => {
            let map = match value {
                Value::Object(m) => m.clone(),
                Value::String(s) if s.trim().is_empty() => Map::new(),
                Value::String(s) => match serde_json::from_str::<Value>(s) {
                    Ok(Value::Object(m)) => m,
                    _ => return Err(bad("must be a JSON object of strings")),
                },
                _ => return Err(bad("must be a JSON object of strings")),
            };
            if !map.values().all(Value::is_string) {
                return Err(bad("must be a JSON object of strings"));
            }
            Value::Object(map)
        }
    })
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
        let version = item.as_ref().and_then(|i| i.i64("version")).unwrap_or(0);
        let values = item
            .and_then(|mut i| i.attrs.remove("values"))
            .and_then(|v| match v {
                Value::Object(m) => Some(m),
                _ => None,
            })
            .unwrap_or_default();
        Ok((values, version))
    }

    /// Applies changes (already normalised by [`normalise`]) after `check`
    /// accepts the settings they would give, atomically against concurrent
    /// updates.
    pub async fn update(
        &self,
        changes: Map<String, Value>,
        check: impl Fn(&Settings, &Settings) -> ServiceResult<()>,
    ) -> ServiceResult<Arc<Settings>> {
        loop {
            let (mut stored, version) = self.stored().await?;
            let before = Settings::defaults(self.token_ttl_secs).with_stored(&stored);
            stored.extend(changes.clone());
            let after = Settings::defaults(self.token_ttl_secs).with_stored(&stored);
            check(&before, &after)?;
            let (pk, sk) = keys::settings();
            let item = Item::new(pk, sk).with("values", Value::Object(stored)).with("version", version + 1);
            let cond = if version == 0 { Condition::NotExists } else { Condition::equals("version", version) };
            match self.meta.put(item, cond).await {
                Ok(()) => {
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

    #[test]
    fn values_are_checked_and_normalised() {
        assert_eq!(normalise("auth_mode", &json!("ldap_auth")).unwrap(), json!("ldap_auth"));
        assert!(normalise("auth_mode", &json!("uaa_auth")).is_err());
        assert_eq!(normalise("self_registration", &json!("true")).unwrap(), json!(true));
        assert!(normalise("self_registration", &json!(1)).is_err());
        assert_eq!(normalise("token_expiration", &json!("45")).unwrap(), json!(45));
        assert!(normalise("token_expiration", &json!(0)).is_err());
        assert!(normalise("ldap_scope", &json!(3)).is_err());
        assert!(normalise("robot_name_prefix", &json!(" ")).is_err());
        assert!(normalise("no_such_key", &json!("x")).is_err());
        assert_eq!(normalise("oidc_extra_redirect_parms", &json!("{\"a\":\"b\"}")).unwrap(), json!({"a": "b"}));
        assert!(normalise("oidc_extra_redirect_parms", &json!({"a": 1})).is_err());
    }

    #[test]
    fn secrets_are_never_shown() {
        let s = Settings::defaults(1800);
        let view = s.public_view();
        assert!(!view.contains_key("ldap_search_password") && !view.contains_key("oidc_client_secret"));
        assert_eq!(view["auth_mode"], json!({"value": "db_auth", "editable": true}));
        assert_eq!(view["token_expiration"]["value"], json!(30));
        assert_eq!(view["oidc_extra_redirect_parms"]["value"], json!("{}"));
    }
}

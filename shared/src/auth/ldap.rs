//! LDAP and Active Directory: the [`Directory`] of the auth mode
//! `ldap_auth`, and the directory look-ups behind Harbor's `/ldap` API.
//!
//! This module owns everything berth says to an LDAP server, with Harbor's
//! semantics: bind as `ldap_search_dn` (anonymously when it is unset),
//! search the user under `ldap_base_dn` with
//! `(&<ldap_filter>(<ldap_uid>=<name>))`, require exactly one entry, then
//! bind as that entry with the given password. The entry's membership
//! attribute (`memberof`) names its groups: one equal to
//! `ldap_group_admin_dn` makes the user an administrator, and, when
//! `ldap_group_search_filter` is set, each group under the group base DN
//! that matches it is onboarded and attached to the user.
//!
//! Rules it keeps: every value put in a filter is escaped (RFC 4515); an
//! empty password never reaches a bind (RFC 4513 §5.1.2 makes that an
//! "unauthenticated bind" that servers accept as anonymous); every network
//! step is bounded by `ldap_timeout`; a server that cannot be asked is
//! [`AuthError::Unavailable`], wrong credentials are `Ok(None)`, the same
//! answer as an unknown user.
//!
//! It keeps no state between requests: each operation opens its own
//! connection with the settings of that moment (they change at any time,
//! and a Lambda keeps nothing). It decides no permission; that is
//! [`super::authorize`].

use std::borrow::Cow;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt as _;
use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchEntry, ldap_escape};

use crate::service::groups::{Group, LDAP_GROUP};
use crate::service::settings::Settings;
use crate::service::users::{ExternalUser, Source, User};
use crate::service::{Registry, ServiceError};

use super::{AuthError, Directory};

/// Entries asked for per page (Active Directory returns at most 1000).
const PAGE_SIZE: i32 = 500;
/// Group look-ups at once when `ldap_group_attach_parallel` is set.
const PARALLEL_LOOKUPS: usize = 5;

// LDAP result codes (RFC 4511 appendix A) berth tells apart.
const SIZE_LIMIT_EXCEEDED: u32 = 4;
const NO_SUCH_OBJECT: u32 = 32;
const INVALID_CREDENTIALS: u32 = 49;
const BUSY: u32 = 51;
const UNAVAILABLE: u32 = 52;

/// The LDAP settings one operation uses: the stored ones
/// ([`LdapConfig::from_settings`]), or those `/ldap/ping` is asked to try.
#[derive(Clone, PartialEq, Eq)]
pub struct LdapConfig {
    pub url: String,
    pub search_dn: String,
    pub search_password: String,
    pub base_dn: String,
    pub filter: String,
    pub uid: String,
    /// 0 base, 1 one level, 2 subtree.
    pub scope: i64,
    pub timeout: Duration,
    pub verify_cert: bool,
    /// Upgrade an `ldap://` connection with StartTLS (not in Harbor).
    pub starttls: bool,
    pub group_base_dn: String,
    pub group_filter: String,
    pub group_name_attribute: String,
    pub group_scope: i64,
    pub group_admin_dn: String,
    pub group_membership_attribute: String,
    pub group_attach_parallel: bool,
}

impl std::fmt::Debug for LdapConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapConfig")
            .field("url", &self.url)
            .field("search_dn", &self.search_dn)
            .field("base_dn", &self.base_dn)
            .field("filter", &self.filter)
            .field("uid", &self.uid)
            .finish_non_exhaustive()
    }
}

impl LdapConfig {
    pub fn from_settings(s: &Settings) -> Self {
        Self {
            url: s.ldap_url.clone(),
            search_dn: s.ldap_search_dn.clone(),
            search_password: s.ldap_search_password.expose().to_owned(),
            base_dn: s.ldap_base_dn.clone(),
            filter: s.ldap_filter.clone(),
            uid: s.ldap_uid.as_str().to_owned(),
            scope: s.ldap_scope.0,
            timeout: timeout_secs(s.ldap_timeout.get()),
            verify_cert: s.ldap_verify_cert,
            starttls: s.ldap_starttls,
            group_base_dn: s.ldap_group_base_dn.clone(),
            group_filter: s.ldap_group_search_filter.clone(),
            group_name_attribute: s.ldap_group_attribute_name.clone(),
            group_scope: s.ldap_group_search_scope.0,
            group_admin_dn: s.ldap_group_admin_dn.clone(),
            group_membership_attribute: s.ldap_group_membership_attribute.clone(),
            group_attach_parallel: s.ldap_group_attach_parallel,
        }
    }

    /// The base under which groups are looked for: the group base DN, or
    /// the user base DN when it is unset (as Harbor does).
    fn group_base(&self) -> &str {
        if self.group_base_dn.trim().is_empty() { self.base_dn.trim() } else { self.group_base_dn.trim() }
    }
}

/// `ldap_timeout` (seconds) as a duration, at least one second.
pub fn timeout_secs(secs: i64) -> Duration {
    Duration::from_secs(u64::try_from(secs).unwrap_or(5).max(1))
}

/// Why an LDAP operation failed. The messages name settings and servers,
/// never a password; they are for the administrator (logs, `/ldap` API),
/// not for the user signing in.
#[derive(Debug, thiserror::Error)]
pub enum LdapFailure {
    /// The settings cannot work, whatever the server says.
    #[error("{0}")]
    Settings(String),
    /// The server could not be reached, did not answer in time, or its
    /// certificate was refused.
    #[error("{0}")]
    Unreachable(String),
    /// The server answered an operation with an error result.
    #[error("{what} refused by the LDAP server: {} (result {rc}){}", result_name(*.rc), detail(.text))]
    Refused { what: &'static str, rc: u32, text: String },
}

fn detail(text: &str) -> String {
    if text.trim().is_empty() { String::new() } else { format!(": {}", text.trim()) }
}

fn result_name(rc: u32) -> &'static str {
    match rc {
        1 => "operationsError",
        2 => "protocolError",
        3 => "timeLimitExceeded",
        SIZE_LIMIT_EXCEEDED => "sizeLimitExceeded",
        NO_SUCH_OBJECT => "noSuchObject",
        34 => "invalidDNSyntax",
        48 => "inappropriateAuthentication",
        INVALID_CREDENTIALS => "invalidCredentials",
        50 => "insufficientAccessRights",
        BUSY => "busy",
        UNAVAILABLE => "unavailable",
        53 => "unwillingToPerform",
        _ => "error",
    }
}

impl LdapFailure {
    /// The failure as the authenticator reports it, logged here with its
    /// details: the user learns only that the directory cannot be asked.
    fn into_auth(self, during: &str) -> AuthError {
        tracing::warn!(error = %self, during, "ldap unavailable");
        AuthError::Unavailable(
            match self {
                Self::Settings(_) => "the LDAP settings are incomplete or invalid",
                Self::Unreachable(_) => "the LDAP server cannot be reached",
                Self::Refused { .. } => "the LDAP server refused the search",
            }
            .to_owned(),
        )
    }
}

fn op_failure(what: &'static str) -> impl Fn(LdapError) -> LdapFailure {
    move |e| match e {
        LdapError::LdapResult { result } => LdapFailure::Refused { what, rc: result.rc, text: result.text },
        LdapError::FilterParsing => LdapFailure::Settings(format!("{what}: the filter is not a valid LDAP filter")),
        other => LdapFailure::Unreachable(format!("{what}: {other}")),
    }
}

// ------------------------------------------------------------- settings

/// Harbor's reading of `ldap_url`: `ldap` when no scheme is given, port
/// 389 or 636 when none is given, port 636 always meaning `ldaps`; a path
/// is ignored.
fn server_url(raw: &str) -> Result<String, LdapFailure> {
    let bad = |why: &str| LdapFailure::Settings(format!("ldap_url {raw:?}: {why}"));
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(LdapFailure::Settings("ldap_url is not set".to_owned()));
    }
    let (scheme, rest) = match raw.split_once("://") {
        Some((s, r)) => (s.to_ascii_lowercase(), r),
        None => ("ldap".to_owned(), raw),
    };
    if scheme != "ldap" && scheme != "ldaps" {
        return Err(bad("the scheme must be ldap:// or ldaps://"));
    }
    let hostport = rest.split(['/', '?']).next().unwrap_or_default();
    let (host, port) = if let Some(bracketed) = hostport.strip_prefix('[') {
        let (inner, after) = bracketed.split_once(']').ok_or_else(|| bad("unclosed [ in the host"))?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(|| bad("junk after the host"))?),
        };
        (format!("[{inner}]"), port)
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (hostport.to_owned(), None),
        }
    };
    if host.is_empty() || host == "[]" || host.contains(|c: char| c.is_whitespace() || c == '@') {
        return Err(bad("no valid host"));
    }
    let port = match port {
        Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| bad("the port must be 1 to 65535"))?,
        None if scheme == "ldaps" => 636,
        None => 389,
    };
    let scheme = if port == 636 { "ldaps" } else { scheme.as_str() };
    Ok(format!("{scheme}://{host}:{port}"))
}

/// A setting that must be set.
fn required<'a>(name: &str, value: &'a str) -> Result<&'a str, LdapFailure> {
    match value.trim() {
        "" => Err(LdapFailure::Settings(format!("{name} is not set"))),
        v => Ok(v),
    }
}

/// An attribute name setting (`ldap_uid`…), or its default when unset:
/// a descriptor (`uid`, `sAMAccountName`) or an OID.
fn attribute<'a>(name: &str, value: &'a str, default: &'a str) -> Result<&'a str, LdapFailure> {
    let v = value.trim();
    let v = if v.is_empty() { default } else { v };
    let descriptor =
        v.starts_with(|c: char| c.is_ascii_alphabetic()) && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let oid = v.split('.').all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    if descriptor || oid {
        Ok(v)
    } else {
        Err(LdapFailure::Settings(format!("{name} {value:?} is not an attribute name")))
    }
}

/// An administrator's filter as Harbor takes it: trimmed, put in
/// parentheses when it has none, and checked; `None` when unset.
fn configured_filter(name: &str, raw: &str) -> Result<Option<String>, LdapFailure> {
    let f = raw.trim();
    if f.is_empty() {
        return Ok(None);
    }
    let f = if f.starts_with('(') && f.ends_with(')') { f.to_owned() } else { format!("({f})") };
    ldap3::parse_filter(&f)
        .map_err(|()| LdapFailure::Settings(format!("{name} {raw:?} is not a valid LDAP filter")))?;
    Ok(Some(f))
}

/// `(&<base>(<attr>=<value>))`, the value escaped (RFC 4515) so that it is
/// always one literal value; an empty value matches any (`*`).
fn equality_filter(base: Option<&str>, attr: &str, value: &str) -> String {
    let value = value.trim();
    let value = if value.is_empty() { Cow::Borrowed("*") } else { ldap_escape(value) };
    let term = format!("({attr}={value})");
    match base {
        Some(b) => format!("(&{b}{term})"),
        None => term,
    }
}

fn scope(n: i64) -> Scope {
    match n {
        0 => Scope::Base,
        1 => Scope::OneLevel,
        _ => Scope::Subtree,
    }
}

// ------------------------------------------------------------------ DNs

/// The RDNs of a DN (RFC 4514), each normalised for comparison: lowercase,
/// no spaces around `=`, `,` and `+`. `None` when it is not a DN.
fn rdns(dn: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut rdn = String::new();
    let mut chars = dn.trim().chars();
    let mut finish = |rdn: &mut String| -> Option<()> {
        let mut avas = Vec::new();
        for ava in split_unescaped(rdn, '+') {
            let (attr, value) = split_once_unescaped(&ava, '=')?;
            let attr = attr.trim();
            let value = value.trim();
            attribute("dn", attr, "").ok()?;
            avas.push(format!("{}={}", attr.to_lowercase(), value.to_lowercase()));
        }
        out.push(avas.join("+"));
        rdn.clear();
        Some(())
    };
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                rdn.push(c);
                rdn.push(chars.next()?);
            }
            ',' | ';' => finish(&mut rdn)?,
            c => rdn.push(c),
        }
    }
    finish(&mut rdn)?;
    Some(out)
}

/// The parts of `s` between unescaped `sep`s (escapes kept).
fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        let last = parts.last_mut();
        match (c, last) {
            ('\\', Some(p)) => {
                p.push(c);
                if let Some(n) = chars.next() {
                    p.push(n);
                }
            }
            (c, Some(_)) if c == sep => parts.push(String::new()),
            (c, Some(p)) => p.push(c),
            (_, None) => {}
        }
    }
    parts
}

fn split_once_unescaped(s: &str, sep: char) -> Option<(String, String)> {
    let mut parts = split_unescaped(s, sep).into_iter();
    let first = parts.next()?;
    let rest: Vec<String> = parts.collect();
    if rest.is_empty() {
        return None;
    }
    Some((first, rest.join(&sep.to_string())))
}

/// Whether two DNs name the same entry.
pub fn same_dn(a: &str, b: &str) -> bool {
    matches!((rdns(a), rdns(b)), (Some(x), Some(y)) if x == y)
}

/// Whether `child` is `base` or below it; everything is below an empty base.
fn under(base: &str, child: &str) -> bool {
    if base.trim().is_empty() {
        return rdns(child).is_some();
    }
    matches!((rdns(base), rdns(child)), (Some(b), Some(c)) if c.ends_with(&b))
}

/// Whether `dn` is a syntactically valid DN.
pub fn is_dn(dn: &str) -> bool {
    !dn.trim().is_empty() && rdns(dn).is_some()
}

/// The value of a DN's first RDN, unescaped (`developers` of
/// `cn=developers,ou=groups,…`).
fn first_rdn_value(dn: &str) -> Option<String> {
    let first = split_unescaped(dn.trim(), ',').into_iter().next()?;
    let first_ava = split_unescaped(&first, '+').into_iter().next()?;
    let (_, value) = split_once_unescaped(&first_ava, '=')?;
    let mut bytes = Vec::new();
    let mut chars = value.trim().chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0; 4];
            bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let hi = chars.next()?;
        match (hi.to_digit(16), chars.peek().and_then(|c| c.to_digit(16))) {
            (Some(h), Some(l)) => {
                chars.next();
                bytes.push(u8::try_from(h * 16 + l).ok()?);
            }
            _ => {
                let mut buf = [0; 4];
                bytes.extend_from_slice(hi.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    let value = String::from_utf8_lossy(&bytes).into_owned();
    (!value.is_empty()).then_some(value)
}

// ------------------------------------------------------------- entries

/// A user entry as the directory describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapUser {
    /// The value of `ldap_uid`: the berth user name.
    pub username: String,
    pub realname: String,
    pub email: String,
    pub dn: String,
    /// The values of the membership attribute (`memberof`).
    pub group_dns: Vec<String>,
}

/// A group entry: its name (the `ldap_group_attribute_name` value) and DN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapGroup {
    pub name: String,
    pub dn: String,
}

/// An attribute's values, whatever the case of its name.
fn values<'a>(entry: &'a SearchEntry, attr: &str) -> impl Iterator<Item = &'a str> {
    entry
        .attrs
        .iter()
        .filter(move |(k, _)| k.eq_ignore_ascii_case(attr))
        .flat_map(|(_, v)| v.iter().map(|s| s.trim()).filter(|s| !s.is_empty()))
}

fn first_value(entry: &SearchEntry, attrs: &[&str]) -> Option<String> {
    attrs.iter().find_map(|a| values(entry, a).next()).map(str::to_owned)
}

fn group_of(entry: &SearchEntry, name_attr: &str) -> LdapGroup {
    let name =
        first_value(entry, &[name_attr]).or_else(|| first_rdn_value(&entry.dn)).unwrap_or_else(|| entry.dn.clone());
    LdapGroup { name, dn: entry.dn.clone() }
}

// ------------------------------------------------------------- sessions

/// One connection to the server.
struct Session {
    ldap: Ldap,
    timeout: Duration,
}

impl Session {
    async fn open(cfg: &LdapConfig) -> Result<Self, LdapFailure> {
        let url = server_url(&cfg.url)?;
        let settings = LdapConnSettings::new()
            .set_conn_timeout(cfg.timeout)
            .set_starttls(cfg.starttls && url.starts_with("ldap://"))
            .set_no_tls_verify(!cfg.verify_cert);
        let (conn, ldap) = match tokio::time::timeout(cfg.timeout, LdapConnAsync::with_settings(settings, &url)).await {
            Err(_) => {
                return Err(LdapFailure::Unreachable(format!("{url} did not answer within {:?}", cfg.timeout)));
            }
            Ok(Err(e @ (LdapError::UrlParsing { .. } | LdapError::UnknownScheme(_)))) => {
                return Err(LdapFailure::Settings(format!("ldap_url {url:?}: {e}")));
            }
            Ok(Err(e)) => return Err(LdapFailure::Unreachable(format!("cannot connect to {url}: {e}"))),
            Ok(Ok(pair)) => pair,
        };
        tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::debug!(error = %e, "ldap connection ended");
            }
        });
        Ok(Self { ldap, timeout: cfg.timeout })
    }

    /// Another handle on the same connection (LDAP multiplexes operations).
    fn handle(&self) -> Self {
        Self { ldap: self.ldap.clone(), timeout: self.timeout }
    }

    async fn close(mut self) {
        let _ = tokio::time::timeout(self.timeout, self.ldap.unbind()).await;
    }

    /// A simple bind; the result code (0 on success).
    async fn bind(&mut self, dn: &str, password: &str) -> Result<(u32, String), LdapFailure> {
        let res = self.ldap.with_timeout(self.timeout).simple_bind(dn, password).await.map_err(op_failure("bind"))?;
        Ok((res.rc, res.text))
    }

    /// Binds as the search account, or anonymously when none is set.
    async fn bind_searcher(&mut self, cfg: &LdapConfig) -> Result<(), LdapFailure> {
        let dn = cfg.search_dn.trim();
        if !dn.is_empty() && cfg.search_password.is_empty() {
            return Err(LdapFailure::Settings(
                "ldap_search_password is empty: berth never binds with an empty password".to_owned(),
            ));
        }
        let what = if dn.is_empty() { "anonymous bind" } else { "bind as ldap_search_dn" };
        match self.bind(dn, if dn.is_empty() { "" } else { &cfg.search_password }).await? {
            (0, _) => Ok(()),
            (rc, text) => Err(LdapFailure::Refused { what, rc, text }),
        }
    }

    /// A paged search (so that Active Directory's 1000-entry limit does not
    /// cut it short); every step bounded by the timeout. The entries, and
    /// whether they are all (a server's size limit may cut them short).
    async fn search(
        &mut self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[&str],
    ) -> Result<(Vec<SearchEntry>, bool), LdapFailure> {
        let attrs: Vec<String> = attrs.iter().map(|a| (*a).to_owned()).collect();
        let adapters: Vec<Box<dyn Adapter<'_, String, Vec<String>>>> =
            vec![Box::new(EntriesOnly::new()), Box::new(PagedResults::new(PAGE_SIZE))];
        let mut stream = self
            .ldap
            .with_timeout(self.timeout)
            .streaming_search_with(adapters, base, scope, filter, attrs)
            .await
            .map_err(op_failure("search"))?;
        let mut entries = Vec::new();
        while let Some(entry) = stream.next().await.map_err(op_failure("search"))? {
            entries.push(SearchEntry::construct(entry));
        }
        let res = stream.finish().await;
        match res.rc {
            0 => Ok((entries, true)),
            SIZE_LIMIT_EXCEEDED => Ok((entries, false)),
            rc => Err(LdapFailure::Refused { what: "search", rc, text: res.text }),
        }
    }

    /// The user entries matching `username` (every user for an empty one),
    /// and whether they are all.
    async fn find_users(&mut self, cfg: &LdapConfig, username: &str) -> Result<(Vec<LdapUser>, bool), LdapFailure> {
        let base = required("ldap_base_dn", &cfg.base_dn)?;
        let uid = attribute("ldap_uid", &cfg.uid, "cn")?;
        let membership = attribute("ldap_group_membership_attribute", &cfg.group_membership_attribute, "memberof")?;
        let filter = equality_filter(configured_filter("ldap_filter", &cfg.filter)?.as_deref(), uid, username);
        let attrs = [uid, "uid", "cn", "displayName", "mail", "email", membership];
        let (entries, complete) = self.search(base, scope(cfg.scope), &filter, &attrs).await?;
        let users = entries
            .iter()
            .filter_map(|e| {
                let username = first_value(e, &[uid]).or_else(|| {
                    let given = username.trim();
                    (!given.is_empty()).then(|| given.to_owned())
                })?;
                Some(LdapUser {
                    realname: first_value(e, &["cn", "displayName", "uid"]).unwrap_or_else(|| username.clone()),
                    email: first_value(e, &["mail", "email"]).unwrap_or_default(),
                    dn: e.dn.clone(),
                    group_dns: values(e, membership).map(str::to_owned).collect(),
                    username,
                })
            })
            .collect();
        Ok((users, complete))
    }

    /// The group at `dn` when Harbor would attach it: under the group base
    /// and matching `ldap_group_search_filter`.
    async fn group_at(&mut self, cfg: &LdapConfig, dn: &str) -> Result<Option<LdapGroup>, LdapFailure> {
        if !is_dn(dn) || !under(cfg.group_base(), dn) {
            return Ok(None);
        }
        let name_attr = attribute("ldap_group_attribute_name", &cfg.group_name_attribute, "cn")?;
        let base_filter = configured_filter("ldap_group_search_filter", &cfg.group_filter)?;
        let filter = equality_filter(base_filter.as_deref(), name_attr, "");
        match self.search(dn.trim(), Scope::Base, &filter, &[name_attr]).await {
            Ok((entries, _)) => Ok(entries.first().map(|e| group_of(e, name_attr))),
            Err(LdapFailure::Refused { rc: NO_SUCH_OBJECT, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The groups named `name` under the group base.
    async fn groups_named(&mut self, cfg: &LdapConfig, name: &str) -> Result<Vec<LdapGroup>, LdapFailure> {
        let base = required("ldap_group_base_dn (or ldap_base_dn)", cfg.group_base())?;
        let name_attr = attribute("ldap_group_attribute_name", &cfg.group_name_attribute, "cn")?;
        let base_filter = configured_filter("ldap_group_search_filter", &cfg.group_filter)?;
        let filter = equality_filter(base_filter.as_deref(), name_attr, name);
        let (entries, _) = self.search(base, scope(cfg.group_scope), &filter, &[name_attr]).await?;
        Ok(entries.iter().map(|e| group_of(e, name_attr)).collect())
    }

    /// The groups among `dns` that Harbor would attach; a look-up that
    /// fails skips its group, as in Harbor (the login goes on without it).
    async fn attachable_groups(&mut self, cfg: &LdapConfig, dns: &[String]) -> Vec<LdapGroup> {
        // Futures gathered first: a stream combinator over closures that
        // borrow would not be `Send` for every lifetime.
        let mut lookups = Vec::with_capacity(dns.len());
        for dn in dns {
            let mut session = self.handle();
            lookups.push(async move {
                match session.group_at(cfg, dn).await {
                    Ok(found) => found,
                    Err(e) => {
                        tracing::warn!(error = %e, group = %dn, "ldap group look-up failed; not attached");
                        None
                    }
                }
            });
        }
        let parallel = if cfg.group_attach_parallel { PARALLEL_LOOKUPS } else { 1 };
        let found: Vec<Option<LdapGroup>> = futures::stream::iter(lookups).buffered(parallel).collect().await;
        found.into_iter().flatten().collect()
    }

    /// Checks a user's password: the entry when right, with its admin flag
    /// and the groups to attach.
    async fn login(&mut self, cfg: &LdapConfig, username: &str, password: &str) -> Result<Option<Login>, LdapFailure> {
        self.bind_searcher(cfg).await?;
        let (mut found, complete) = self.find_users(cfg, username).await?;
        if found.len() != 1 || !complete {
            tracing::info!(entries = found.len(), "ldap login refused: the user search must find exactly one entry");
            return Ok(None);
        }
        let user = found.remove(0);
        match self.bind(&user.dn, password).await? {
            (0, _) => {}
            (rc @ (BUSY | UNAVAILABLE), text) => {
                return Err(LdapFailure::Refused { what: "bind as the user", rc, text });
            }
            (rc, _) => {
                tracing::info!(rc, dn = %user.dn, "ldap login refused: the bind as the user failed");
                return Ok(None);
            }
        }
        let admin_dn = cfg.group_admin_dn.trim();
        let admin = !admin_dn.is_empty() && user.group_dns.iter().any(|g| same_dn(g, admin_dn));
        // Harbor attaches groups only when a group filter is set.
        let groups = if cfg.group_filter.trim().is_empty() {
            Vec::new()
        } else {
            match self.bind_searcher(cfg).await {
                Ok(()) => self.attachable_groups(cfg, &user.group_dns).await,
                Err(e) => {
                    tracing::warn!(error = %e, "ldap group look-ups skipped");
                    Vec::new()
                }
            }
        };
        Ok(Some(Login { user, admin, groups }))
    }
}

/// What a successful login found.
struct Login {
    user: LdapUser,
    admin: bool,
    groups: Vec<LdapGroup>,
}

/// Opens a session bound as the search account, runs `op`, closes it.
async fn searching<T>(
    cfg: &LdapConfig,
    op: impl AsyncFnOnce(&mut Session) -> Result<T, LdapFailure>,
) -> Result<T, LdapFailure> {
    let mut session = Session::open(cfg).await?;
    let result = match session.bind_searcher(cfg).await {
        Ok(()) => op(&mut session).await,
        Err(e) => Err(e),
    };
    session.close().await;
    result
}

// ------------------------------------------------ the /ldap API's look-ups

/// Connects and binds as the search account (anonymously when unset):
/// what `/ldap/ping` tests.
pub async fn ping(cfg: &LdapConfig) -> Result<(), LdapFailure> {
    searching(cfg, async |_| Ok(())).await
}

/// The users matching `username` (all users for an empty one).
pub async fn search_users(cfg: &LdapConfig, username: &str) -> Result<Vec<LdapUser>, LdapFailure> {
    searching(cfg, async |s| Ok(s.find_users(cfg, username).await?.0)).await
}

/// The groups named `name` under the group base.
pub async fn search_groups(cfg: &LdapConfig, name: &str) -> Result<Vec<LdapGroup>, LdapFailure> {
    searching(cfg, async |s| s.groups_named(cfg, name).await).await
}

/// The group at `dn`, if it is one under the group base matching the group
/// filter.
pub async fn group(cfg: &LdapConfig, dn: &str) -> Result<Option<LdapGroup>, LdapFailure> {
    searching(cfg, async |s| s.group_at(cfg, dn).await).await
}

/// One user `/ldap/users/import` could not import, with Harbor's reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedImport {
    pub uid: String,
    pub error: String,
}

/// Onboards the users named in `uids` (Harbor's `/ldap/users/import`);
/// those that could not be are returned with the reason. A user already
/// onboarded from LDAP is left as it is.
pub async fn import_users(
    registry: &Registry,
    cfg: &LdapConfig,
    uids: &[String],
) -> Result<Vec<FailedImport>, LdapFailure> {
    let mut found = Vec::with_capacity(uids.len());
    searching(cfg, async |s| {
        for uid in uids {
            if uid.trim().is_empty() {
                found.push((uid, Err("empty_uid")));
                continue;
            }
            match s.find_users(cfg, uid).await {
                Ok((users, _)) => found.push((uid, users.into_iter().next().ok_or("unknown_user"))),
                Err(e) => {
                    tracing::warn!(error = %e, uid = %uid, "ldap user search failed");
                    found.push((uid, Err("failed_search_user")));
                }
            }
        }
        Ok(())
    })
    .await?;
    let mut failed = Vec::new();
    for (uid, user) in found {
        let error = match user {
            Err(reason) => Some(reason.to_owned()),
            Ok(user) => match import_one(registry, user).await {
                Ok(()) => None,
                Err(e) => {
                    tracing::warn!(error = %e, uid = %uid, "ldap user import failed");
                    Some(format!("failed to import user: {uid}"))
                }
            },
        };
        if let Some(error) = error {
            failed.push(FailedImport { uid: uid.clone(), error });
        }
    }
    Ok(failed)
}

async fn import_one(registry: &Registry, user: LdapUser) -> Result<(), ServiceError> {
    match registry.user_by_name(&user.username).await? {
        Some(existing) if existing.source == Source::Ldap => Ok(()),
        Some(existing) => {
            Err(ServiceError::Conflict(format!("user {} exists already and is not from LDAP", existing.username)))
        }
        None => registry.onboard_user(external(user, Vec::new(), false), Source::Ldap).await.map(|_| ()),
    }
}

/// The user as [`Registry::onboard_user`] takes it. A user without an
/// e-mail address whose name is one gets it as address (as in Harbor).
fn external(user: LdapUser, group_ids: Vec<i64>, admin_in_auth: bool) -> ExternalUser {
    let email = if user.email.is_empty() && user.username.contains('@') { user.username.clone() } else { user.email };
    ExternalUser {
        username: user.username,
        email,
        realname: user.realname,
        ldap_dn: Some(user.dn),
        group_ids,
        admin_in_auth,
    }
}

// ------------------------------------------------------------ directory

/// The directory of `ldap_auth`.
#[derive(Debug, Default, Clone, Copy)]
pub struct LdapDirectory;

#[async_trait]
impl Directory for LdapDirectory {
    async fn authenticate(
        &self,
        registry: &Registry,
        settings: &Settings,
        username: &str,
        password: &str,
    ) -> Result<Option<User>, AuthError> {
        // An empty password would be an unauthenticated bind, which servers
        // accept as anonymous: never a login.
        if password.is_empty() || username.trim().is_empty() {
            return Ok(None);
        }
        let cfg = LdapConfig::from_settings(settings);
        let mut session = Session::open(&cfg).await.map_err(|e| e.into_auth("login"))?;
        let found = session.login(&cfg, username, password).await;
        session.close().await;
        let Some(login) = found.map_err(|e| e.into_auth("login"))? else { return Ok(None) };
        let mut group_ids = Vec::with_capacity(login.groups.len());
        for g in &login.groups {
            match registry.onboard_group(LDAP_GROUP, &g.dn, &g.name).await {
                Ok(group) => group_ids.push(group.id),
                Err(ServiceError::Backend(e)) => return Err(AuthError::Backend(e)),
                Err(e) => tracing::warn!(error = %e, group = %g.dn, "ldap group not onboarded"),
            }
        }
        match registry.onboard_user(external(login.user, group_ids, login.admin), Source::Ldap).await {
            Ok(user) => Ok(Some(user)),
            Err(e @ (ServiceError::Conflict(_) | ServiceError::Invalid(_))) => {
                tracing::warn!(error = %e, "ldap user cannot be onboarded; login refused");
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn onboard_user(
        &self,
        registry: &Registry,
        settings: &Settings,
        username: &str,
    ) -> Result<Option<User>, AuthError> {
        if username.trim().is_empty() {
            return Ok(None);
        }
        let cfg = LdapConfig::from_settings(settings);
        let users = search_users(&cfg, username).await.map_err(|e| e.into_auth("user onboarding"))?;
        if users.len() > 1 {
            tracing::warn!(entries = users.len(), "several ldap entries match the user; onboarding the first");
        }
        let Some(user) = users.into_iter().next() else { return Ok(None) };
        // The entry's name may differ from the one asked for (case): a user
        // onboarded already keeps the groups of its last login.
        if let Some(existing) = registry.user_by_name(&user.username).await? {
            return Ok(Some(existing));
        }
        Ok(Some(registry.onboard_user(external(user, Vec::new(), false), Source::Ldap).await?))
    }

    async fn onboard_group(
        &self,
        registry: &Registry,
        settings: &Settings,
        identity: &str,
        name: &str,
    ) -> Result<Option<Group>, AuthError> {
        if !is_dn(identity) {
            return Ok(None);
        }
        let cfg = LdapConfig::from_settings(settings);
        let Some(found) = group(&cfg, identity).await.map_err(|e| e.into_auth("group onboarding"))? else {
            return Ok(None);
        };
        let name = if name.trim().is_empty() { found.name.as_str() } else { name.trim() };
        Ok(Some(registry.onboard_group(LDAP_GROUP, &found.dn, name).await?))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn urls_read_as_harbor_reads_them() {
        assert_eq!(server_url("ldap.example.org").unwrap(), "ldap://ldap.example.org:389");
        assert_eq!(server_url(" ldaps://ldap.example.org ").unwrap(), "ldaps://ldap.example.org:636");
        assert_eq!(server_url("ldap://ldap.example.org:636").unwrap(), "ldaps://ldap.example.org:636");
        assert_eq!(server_url("LDAP://10.0.0.1:3389/").unwrap(), "ldap://10.0.0.1:3389");
        assert_eq!(server_url("ldap://[::1]:3389").unwrap(), "ldap://[::1]:3389");
        assert_eq!(server_url("[::1]").unwrap(), "ldap://[::1]:389");
        for bad in
            ["", "http://x", "ldap://", "ldap://x:0", "ldap://x:99999", "ldap://x:y", "ldap://a b", "ldap://[::1"]
        {
            assert!(matches!(server_url(bad), Err(LdapFailure::Settings(_))), "{bad:?}");
        }
    }

    #[test]
    fn filter_values_are_escaped() {
        assert_eq!(equality_filter(None, "uid", "alice"), "(uid=alice)");
        assert_eq!(equality_filter(Some("(objectClass=person)"), "uid", "alice"), "(&(objectClass=person)(uid=alice))");
        assert_eq!(equality_filter(None, "uid", "*)(uid=*"), r"(uid=\2a\29\28uid=\2a)");
        assert_eq!(equality_filter(None, "uid", r"a\b"), r"(uid=a\5cb)");
        assert_eq!(equality_filter(None, "uid", "a\0b"), r"(uid=a\00b)");
        assert_eq!(equality_filter(None, "cn", ""), "(cn=*)", "an empty value matches any");
        // Whatever the value, the filter stays one valid equality term.
        for value in ["*", "(", ")", "*)(|(uid=*", "\\", "é(x)"] {
            let f = equality_filter(Some("(objectClass=person)"), "uid", value);
            assert!(ldap3::parse_filter(&f).is_ok(), "{f}");
        }
    }

    #[test]
    fn settings_are_checked() {
        assert_eq!(configured_filter("f", " objectClass=person ").unwrap().as_deref(), Some("(objectClass=person)"));
        assert_eq!(configured_filter("f", "(|(a=1)(b=2))").unwrap().as_deref(), Some("(|(a=1)(b=2))"));
        assert_eq!(configured_filter("f", "  ").unwrap(), None);
        assert!(matches!(configured_filter("f", "(&(a=1)"), Err(LdapFailure::Settings(_))));
        assert_eq!(attribute("ldap_uid", "sAMAccountName", "cn").unwrap(), "sAMAccountName");
        assert_eq!(attribute("ldap_uid", "", "cn").unwrap(), "cn");
        assert_eq!(attribute("ldap_uid", "0.9.2342.19200300.100.1.1", "cn").unwrap(), "0.9.2342.19200300.100.1.1");
        for bad in ["uid=x", "u id", "(uid)", "1uid", "a*"] {
            assert!(attribute("ldap_uid", bad, "cn").is_err(), "{bad:?}");
        }
        assert!(required("ldap_base_dn", " ").is_err());
    }

    #[test]
    fn dns_compare_as_ldap_does() {
        assert!(same_dn("CN=Admins, OU=Groups,dc=Example,DC=org", "cn=admins,ou=groups,dc=example,dc=org"));
        assert!(!same_dn("cn=admins,ou=groups,dc=example,dc=org", "cn=admins2,ou=groups,dc=example,dc=org"));
        assert!(same_dn(r"cn=a\,b,dc=x", r"CN=A\,B, DC=X"));
        assert!(!same_dn(r"cn=a\,b,dc=x", "cn=a,b,dc=x"), "an escaped comma is no separator");
        assert!(under("ou=groups,dc=example,dc=org", "cn=devs,ou=Groups,dc=example,dc=org"));
        assert!(under("ou=groups,dc=example,dc=org", "ou=groups,dc=example,dc=org"));
        assert!(!under("ou=groups,dc=example,dc=org", "cn=devs,ou=other,dc=example,dc=org"));
        assert!(!under("ou=groups,dc=example,dc=org", "cn=x,dc=org"));
        assert!(under("", "cn=x,dc=org"));
        for bad in ["", "devs", "=x", "cn=a,,dc=x", "cn=a,dc", "c n=a", "cn=a\\"] {
            assert!(!is_dn(bad), "{bad:?}");
        }
        assert!(is_dn("cn=,dc=x"), "an empty value is allowed");
        assert_eq!(first_rdn_value("cn=developers,ou=groups,dc=example,dc=org").as_deref(), Some("developers"));
        assert_eq!(first_rdn_value(r"cn=R\26D\2C Berlin,ou=groups").as_deref(), Some("R&D, Berlin"));
        assert_eq!(first_rdn_value(r"cn=a\,b+uid=c,dc=x").as_deref(), Some("a,b"));
    }

    #[test]
    fn failures_never_tell_the_user_more_than_unavailable() {
        let e = LdapFailure::Unreachable("cannot connect to ldap://10.1.2.3:389: refused".into()).into_auth("login");
        let AuthError::Unavailable(msg) = e else { panic!("{e:?}") };
        assert!(!msg.contains("10.1.2.3"), "{msg}");
        let refused = LdapFailure::Refused { what: "bind as ldap_search_dn", rc: 49, text: String::new() };
        assert_eq!(
            refused.to_string(),
            "bind as ldap_search_dn refused by the LDAP server: invalidCredentials (result 49)"
        );
    }

    #[test]
    fn configs_do_not_print_passwords() {
        let s = Settings::defaults(1800);
        let cfg = LdapConfig { search_password: "hunter2".into(), ..LdapConfig::from_settings(&s) };
        assert!(!format!("{cfg:?}").contains("hunter2"));
        assert_eq!(cfg.uid, "cn");
        assert_eq!(cfg.timeout, Duration::from_secs(5));
        assert_eq!(cfg.group_membership_attribute, "memberof");
    }
}

/// The directory against a real slapd ([`crate::testkit::ldap`]).
#[cfg(test)]
mod slapd_tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::Arc;
    use std::time::Instant;

    use serde_json::{Map, Value, json};

    use super::*;
    use crate::service::settings::AuthMode;
    use crate::testkit::ldap::{self as fixture, ALICE, BOB, CAROL, DAVE, PAREN, Slapd};
    use crate::testkit::local_registry;

    /// Settings for `slapd` (`url` overrides its plain URL) with `extra` on top.
    async fn settings(registry: &Registry, url: &str, extra: &[(&str, Value)]) -> Arc<Settings> {
        let base = [
            ("auth_mode", json!("ldap_auth")),
            ("ldap_url", json!(url)),
            ("ldap_search_dn", json!(fixture::READER_DN)),
            ("ldap_search_password", json!(fixture::READER_PW)),
            ("ldap_base_dn", json!(fixture::BASE_DN)),
            ("ldap_filter", json!(fixture::USER_FILTER)),
            ("ldap_uid", json!("uid")),
            ("ldap_scope", json!(2)),
            ("ldap_timeout", json!(2)),
            ("ldap_group_base_dn", json!(fixture::GROUPS_DN)),
            ("ldap_group_search_filter", json!(fixture::GROUP_FILTER)),
            ("ldap_group_attribute_name", json!("cn")),
            ("ldap_group_admin_dn", json!(fixture::group_dn("admins"))),
        ];
        let changes: Map<String, Value> = base.iter().chain(extra).map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        registry.update_settings(&changes, &[AuthMode::Db, AuthMode::Ldap]).await.unwrap()
    }

    async fn login(registry: &Registry, settings: &Settings, user: &str, password: &str) -> Option<User> {
        LdapDirectory.authenticate(registry, settings, user, password).await.unwrap()
    }

    async fn group_ids(registry: &Registry, cns: &[&str]) -> Vec<i64> {
        let mut ids = Vec::new();
        for cn in cns {
            ids.push(registry.group_by_identity(LDAP_GROUP, &fixture::group_dn(cn)).await.unwrap().unwrap().id);
        }
        ids
    }

    #[tokio::test]
    async fn only_the_right_password_signs_in() {
        let Some(slapd) = Slapd::start("only_the_right_password_signs_in") else { return };
        let (_dir, registry) = local_registry().await;
        let s = settings(&registry, &slapd.url(), &[]).await;

        let alice = login(&registry, &s, ALICE.uid, ALICE.password).await.expect("alice signs in");
        assert_eq!(alice.username, "alice");
        assert_eq!(alice.email, ALICE.mail);
        assert_eq!(alice.realname, ALICE.cn);
        assert_eq!(alice.source, Source::Ldap);
        assert_eq!(alice.ldap_dn.as_deref(), Some(fixture::user_dn(&ALICE).as_str()));
        assert!(alice.password.is_empty(), "no local password");
        assert!(!alice.is_admin());
        // `outsiders` lies outside the group base: not attached.
        assert_eq!(alice.group_ids, group_ids(&registry, &["developers"]).await);
        assert!(registry.group_by_identity(LDAP_GROUP, &fixture::group_dn("outsiders")).await.unwrap().is_none());
        let g = registry.group(alice.group_ids[0]).await.unwrap();
        assert_eq!((g.group_name.as_str(), g.group_type), ("developers", LDAP_GROUP));

        assert_eq!(login(&registry, &s, "ALICE", ALICE.password).await.unwrap().username, "alice", "the entry's name");
        assert!(login(&registry, &s, ALICE.uid, "wrong").await.is_none());
        assert!(login(&registry, &s, ALICE.uid, &format!("{} ", ALICE.password)).await.is_none());
        assert!(login(&registry, &s, "nobody", ALICE.password).await.is_none(), "unknown: the same answer");
        assert!(login(&registry, &s, "", ALICE.password).await.is_none());
        assert!(login(&registry, &s, "  ", ALICE.password).await.is_none());

        // This server accepts an unauthenticated bind (a DN, no password)…
        let cfg = LdapConfig::from_settings(&s);
        let mut raw = Session::open(&cfg).await.unwrap();
        assert_eq!(raw.bind(&fixture::user_dn(&ALICE), "").await.unwrap().0, 0, "slapd allows unauthenticated binds");
        raw.close().await;
        // …which must never sign anyone in.
        assert!(login(&registry, &s, ALICE.uid, "").await.is_none());
        assert!(login(&registry, &s, DAVE.uid, "").await.is_none());

        // An LDAP entry named like the local administrator is not it.
        registry.ensure_admin(Some("Harbor12345")).await.unwrap();
        assert!(login(&registry, &s, "Admin", fixture::LDAP_ADMIN.password).await.is_none());
        assert!(registry.user_by_name("admin").await.unwrap().unwrap().ldap_dn.is_none());
    }

    #[tokio::test]
    async fn filter_metacharacters_are_only_literals() {
        let Some(slapd) = Slapd::start("filter_metacharacters_are_only_literals") else { return };
        let (_dir, registry) = local_registry().await;
        let s = settings(&registry, &slapd.url(), &[]).await;
        for name in ["*", "al*", "*lice", "*)(uid=*", "alice)(|(uid=*", "*)(|(objectClass=*", "alice)", "\\2a"] {
            assert!(login(&registry, &s, name, ALICE.password).await.is_none(), "{name:?}");
        }
        // A name made of metacharacters signs in as itself.
        let paren = login(&registry, &s, PAREN.uid, PAREN.password).await.expect("o(k)* signs in");
        assert_eq!(paren.username, PAREN.uid);
        assert!(login(&registry, &s, "o(k)", PAREN.password).await.is_none());
        // Two entries for one name: nobody, even when the server returns
        // only one of them.
        assert!(login(&registry, &s, "twin", "twin-pw").await.is_none());
        slapd.set_size_limit(1);
        let cfg = LdapConfig::from_settings(&s);
        let mut session = Session::open(&cfg).await.unwrap();
        session.bind_searcher(&cfg).await.unwrap();
        let (twins, complete) = session.find_users(&cfg, "twin").await.unwrap();
        session.close().await;
        assert_eq!((twins.len(), complete), (1, false), "the size limit cuts the search");
        assert!(login(&registry, &s, "twin", "twin-pw").await.is_none());
        assert!(login(&registry, &s, ALICE.uid, ALICE.password).await.is_some());
        // Without a user filter the search still takes the name literally.
        let s = settings(&registry, &slapd.url(), &[("ldap_filter", json!(""))]).await;
        assert!(login(&registry, &s, "*", ALICE.password).await.is_none());
        assert!(login(&registry, &s, ALICE.uid, ALICE.password).await.is_some());
    }

    #[tokio::test]
    async fn groups_and_the_admin_group() {
        let Some(slapd) = Slapd::start("groups_and_the_admin_group") else { return };
        let (_dir, registry) = local_registry().await;
        let s = settings(&registry, &slapd.url(), &[]).await;
        let carol = login(&registry, &s, CAROL.uid, CAROL.password).await.unwrap();
        assert!(carol.admin_in_auth && carol.is_admin(), "a member of ldap_group_admin_dn administers");
        assert!(!carol.sysadmin, "the stored flag is untouched");
        let mut got = carol.group_ids.clone();
        got.sort_unstable();
        let mut want = group_ids(&registry, &["developers", "admins"]).await;
        want.sort_unstable();
        assert_eq!(got, want);
        let bob = login(&registry, &s, BOB.uid, BOB.password).await.unwrap();
        assert_eq!(bob.group_ids, group_ids(&registry, &["qa"]).await);
        assert!(!bob.is_admin());

        // Looked up in parallel: the same groups.
        let p = settings(&registry, &slapd.url(), &[("ldap_group_attach_parallel", json!(true))]).await;
        let again = login(&registry, &p, CAROL.uid, CAROL.password).await.unwrap();
        let mut got = again.group_ids.clone();
        got.sort_unstable();
        assert_eq!(got, want);

        // The group filter decides which groups are attached…
        let only_qa = settings(&registry, &slapd.url(), &[("ldap_group_search_filter", json!("cn=qa"))]).await;
        assert_eq!(login(&registry, &only_qa, CAROL.uid, CAROL.password).await.unwrap().group_ids, Vec::<i64>::new());
        assert_eq!(login(&registry, &only_qa, BOB.uid, BOB.password).await.unwrap().group_ids.len(), 1);
        // …and without one, none is (Harbor), while the admin group still counts.
        let none = settings(&registry, &slapd.url(), &[("ldap_group_search_filter", json!(""))]).await;
        let carol = login(&registry, &none, CAROL.uid, CAROL.password).await.unwrap();
        assert!(carol.group_ids.is_empty() && carol.admin_in_auth);
        // A user that left the admin group is no administrator at its next login.
        let moved = settings(&registry, &slapd.url(), &[("ldap_group_admin_dn", json!(fixture::group_dn("qa")))]).await;
        assert!(!login(&registry, &moved, CAROL.uid, CAROL.password).await.unwrap().is_admin());
        assert!(login(&registry, &moved, BOB.uid, BOB.password).await.unwrap().is_admin());
    }

    #[tokio::test]
    async fn anonymous_search_and_search_account_errors() {
        let Some(slapd) = Slapd::start("anonymous_search_and_search_account_errors") else { return };
        let (_dir, registry) = local_registry().await;
        let anon =
            settings(&registry, &slapd.url(), &[("ldap_search_dn", json!("")), ("ldap_search_password", json!(""))])
                .await;
        assert!(login(&registry, &anon, ALICE.uid, ALICE.password).await.is_some(), "anonymous search");

        let unavailable = |s: Arc<Settings>, registry: Registry| async move {
            let got = LdapDirectory.authenticate(&registry, &s, ALICE.uid, ALICE.password).await;
            assert!(matches!(got, Err(AuthError::Unavailable(_))), "{got:?}");
        };
        let wrong = settings(&registry, &slapd.url(), &[("ldap_search_password", json!("nope"))]).await;
        unavailable(wrong, registry.clone()).await;
        let empty = settings(&registry, &slapd.url(), &[("ldap_search_password", json!(""))]).await;
        unavailable(empty, registry.clone()).await;
        let no_base = settings(&registry, &slapd.url(), &[("ldap_base_dn", json!(""))]).await;
        unavailable(no_base, registry.clone()).await;
        let bad_filter = settings(&registry, &slapd.url(), &[("ldap_filter", json!("(&(a=1)"))]).await;
        unavailable(bad_filter, registry.clone()).await;
        let missing_base = settings(&registry, &slapd.url(), &[("ldap_base_dn", json!("dc=nowhere"))]).await;
        unavailable(missing_base, registry.clone()).await;
    }

    #[tokio::test]
    async fn servers_that_cannot_answer_are_unavailable() {
        let (_dir, registry) = local_registry().await;
        let unavailable = |s: Arc<Settings>, registry: Registry| async move {
            let started = Instant::now();
            let got = LdapDirectory.authenticate(&registry, &s, ALICE.uid, ALICE.password).await;
            assert!(matches!(got, Err(AuthError::Unavailable(_))), "{got:?}");
            started.elapsed()
        };
        // Nobody listens.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let s = settings(&registry, &format!("ldap://127.0.0.1:{port}"), &[]).await;
        assert!(unavailable(s, registry.clone()).await < Duration::from_secs(2));
        // Someone listens and never answers: ldap_timeout bounds the wait.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("ldap://127.0.0.1:{}", silent.local_addr().unwrap().port());
        let s = settings(&registry, &url, &[("ldap_timeout", json!(1))]).await;
        let waited = unavailable(s, registry.clone()).await;
        assert!(waited >= Duration::from_millis(900) && waited < Duration::from_secs(4), "{waited:?}");
        let s = settings(&registry, &url.replace("ldap:", "ldaps:"), &[("ldap_timeout", json!(1))]).await;
        let waited = unavailable(s, registry.clone()).await;
        assert!(waited < Duration::from_secs(4), "a TLS handshake is bounded too: {waited:?}");
        // A server that goes away.
        if let Some(mut slapd) = Slapd::start("servers_that_cannot_answer_are_unavailable") {
            let s = settings(&registry, &slapd.url(), &[]).await;
            assert!(login(&registry, &s, ALICE.uid, ALICE.password).await.is_some());
            slapd.stop();
            unavailable(s, registry.clone()).await;
        }
    }

    #[tokio::test]
    async fn ldaps_and_starttls() {
        let Some(slapd) = Slapd::start("ldaps_and_starttls") else { return };
        let (_dir, registry) = local_registry().await;
        let no_verify = [("ldap_verify_cert", json!(false))];
        let s = settings(&registry, &slapd.ldaps_url(), &no_verify).await;
        assert!(login(&registry, &s, ALICE.uid, ALICE.password).await.is_some(), "ldaps");
        let starttls = [("ldap_verify_cert", json!(false)), ("ldap_starttls", json!(true))];
        let s = settings(&registry, &slapd.url(), &starttls).await;
        assert!(login(&registry, &s, ALICE.uid, ALICE.password).await.is_some(), "starttls");
        // The test CA is in no trust store of this process: verification fails.
        for (url, extra) in [
            (slapd.ldaps_url(), vec![("ldap_verify_cert", json!(true))]),
            (slapd.url(), vec![("ldap_verify_cert", json!(true)), ("ldap_starttls", json!(true))]),
        ] {
            let s = settings(&registry, &url, &extra).await;
            let got = LdapDirectory.authenticate(&registry, &s, ALICE.uid, ALICE.password).await;
            assert!(matches!(got, Err(AuthError::Unavailable(_))), "{url}: {got:?}");
        }
        // StartTLS is refused by a server that cannot do it… and ignored on ldaps.
        let s = settings(&registry, &slapd.ldaps_url(), &starttls).await;
        assert!(login(&registry, &s, ALICE.uid, ALICE.password).await.is_some());
    }

    #[tokio::test]
    async fn onboarding_by_name_and_dn() {
        let Some(slapd) = Slapd::start("onboarding_by_name_and_dn") else { return };
        let (_dir, registry) = local_registry().await;
        let s = settings(&registry, &slapd.url(), &[]).await;
        let d = LdapDirectory;
        let carol = login(&registry, &s, CAROL.uid, CAROL.password).await.unwrap();
        let again = d.onboard_user(&registry, &s, "CAROL").await.unwrap().unwrap();
        assert_eq!(again, carol, "an onboarded user is left as its login made it");
        let bob = d.onboard_user(&registry, &s, BOB.uid).await.unwrap().expect("bob is onboarded");
        assert_eq!((bob.username.as_str(), bob.email.as_str(), bob.source), ("bob", BOB.mail, Source::Ldap));
        assert!(bob.group_ids.is_empty(), "groups come with the login");
        assert!(d.onboard_user(&registry, &s, "nobody").await.unwrap().is_none());
        assert!(d.onboard_user(&registry, &s, "*").await.unwrap().is_none());
        assert!(d.onboard_user(&registry, &s, "").await.unwrap().is_none());

        let devs = d.onboard_group(&registry, &s, &fixture::group_dn("developers"), "").await.unwrap().unwrap();
        assert_eq!((devs.group_name.as_str(), devs.group_type), ("developers", LDAP_GROUP));
        assert_eq!(devs.ldap_group_dn, fixture::group_dn("developers"));
        let spaced = "CN=developers, OU=groups, dc=example, dc=org";
        assert_eq!(d.onboard_group(&registry, &s, spaced, "").await.unwrap().unwrap().id, devs.id, "same DN");
        let qa = d.onboard_group(&registry, &s, &fixture::group_dn("qa"), "Quality").await.unwrap().unwrap();
        assert_eq!(qa.group_name, "Quality", "the name given wins");
        for dn in [fixture::group_dn("outsiders"), "cn=ghost,ou=groups,dc=example,dc=org".into(), "developers".into()] {
            assert!(d.onboard_group(&registry, &s, &dn, "").await.unwrap().is_none(), "{dn}");
        }
        // Without a name attribute the group is named by its first RDN.
        let s = settings(&registry, &slapd.url(), &[("ldap_group_attribute_name", json!("description"))]).await;
        assert!(d.onboard_group(&registry, &s, &fixture::group_dn("admins"), "").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn searches_ping_and_import() {
        let Some(slapd) = Slapd::start("searches_ping_and_import") else { return };
        let (_dir, registry) = local_registry().await;
        let s = settings(&registry, &slapd.url(), &[]).await;
        let cfg = LdapConfig::from_settings(&s);

        let all = search_users(&cfg, "").await.unwrap();
        assert_eq!(all.len(), fixture::USERS.len(), "{all:?}");
        let alice = search_users(&cfg, "alice").await.unwrap();
        assert_eq!(alice.len(), 1);
        assert_eq!((alice[0].realname.as_str(), alice[0].email.as_str()), (ALICE.cn, ALICE.mail));
        assert_eq!(alice[0].group_dns.len(), 2, "memberOf of the overlay: {alice:?}");
        assert!(search_users(&cfg, "*").await.unwrap().is_empty());

        let qa = search_groups(&cfg, "qa").await.unwrap();
        assert_eq!(qa, vec![LdapGroup { name: "qa".into(), dn: fixture::group_dn("qa") }]);
        assert_eq!(search_groups(&cfg, "").await.unwrap().len(), 3, "the groups under the group base");
        assert!(search_groups(&cfg, "outsiders").await.unwrap().is_empty());
        assert_eq!(group(&cfg, &fixture::group_dn("admins")).await.unwrap().unwrap().name, "admins");

        ping(&cfg).await.unwrap();
        let wrong = LdapConfig { search_password: "nope".into(), ..cfg.clone() };
        assert!(matches!(ping(&wrong).await, Err(LdapFailure::Refused { rc: INVALID_CREDENTIALS, .. })));
        let anonymous = LdapConfig { search_dn: String::new(), search_password: String::new(), ..cfg.clone() };
        ping(&anonymous).await.unwrap();

        let uids: Vec<String> = ["dave", "nobody", "", "alice"].map(str::to_owned).to_vec();
        let failed = import_users(&registry, &cfg, &uids).await.unwrap();
        assert_eq!(
            failed,
            vec![
                FailedImport { uid: "nobody".into(), error: "unknown_user".into() },
                FailedImport { uid: String::new(), error: "empty_uid".into() },
            ]
        );
        let dave = registry.user_by_name("dave").await.unwrap().unwrap();
        assert_eq!((dave.source, dave.email.as_str()), (Source::Ldap, ""));
        assert!(import_users(&registry, &cfg, &["dave".to_owned()]).await.unwrap().is_empty(), "again: fine");
    }
}

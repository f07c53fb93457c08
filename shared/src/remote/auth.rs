//! How registries authenticate: the `WWW-Authenticate` challenge of a
//! `401`, the Docker token flow it may point to, and the tokens obtained,
//! kept per scope until they expire.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Lifetime of a token whose answer gives none (the Docker token spec's
/// default).
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(60);
/// A token is dropped this long before it expires, so a request sent with
/// it does not arrive after its end.
const EXPIRY_MARGIN: Duration = Duration::from_secs(5);

/// A `WWW-Authenticate` challenge: its scheme and parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Lower-cased: `bearer`, `basic`.
    pub scheme: String,
    /// Parameter names are lower-cased; values unquoted.
    pub params: HashMap<String, String>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    pub fn is_bearer(&self) -> bool {
        self.scheme == "bearer"
    }

    pub fn is_basic(&self) -> bool {
        self.scheme == "basic"
    }
}

/// The challenges of a `WWW-Authenticate` value (RFC 7235: a scheme, then
/// `name=value` or `name="quoted value"` parameters separated by commas; a
/// new challenge starts at a word not followed by `=`). Quoted values keep
/// their commas (`scope="repository:a:pull,push"`).
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = Vec::new();
    let mut rest = header.trim();
    while !rest.is_empty() {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
        if rest.is_empty() {
            break;
        }
        // A token: up to whitespace, `=` or `,`.
        let end = rest.find(|c: char| c == '=' || c == ',' || c.is_whitespace()).unwrap_or(rest.len());
        let (word, after) = rest.split_at(end);
        let after_ws = after.trim_start();
        if let Some(value_part) = after_ws.strip_prefix('=')
            && let Some(current) = out.last_mut()
        {
            let value_part = value_part.trim_start();
            let (value, remaining) = read_value(value_part);
            current.params.insert(word.to_ascii_lowercase(), value);
            rest = remaining;
        } else if word.is_empty() {
            // A stray `=` with no challenge before it: skip a character.
            rest = &rest[rest.char_indices().nth(1).map_or(rest.len(), |(i, _)| i)..];
        } else {
            out.push(Challenge { scheme: word.to_ascii_lowercase(), params: HashMap::new() });
            rest = after;
        }
    }
    out
}

/// A parameter's value (quoted with `\` escapes, or a bare token) and what
/// follows it.
fn read_value(s: &str) -> (String, &str) {
    if let Some(quoted) = s.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, next)) = chars.next() {
                        value.push(next);
                    }
                }
                '"' => return (value, &quoted[i + 1..]),
                c => value.push(c),
            }
        }
        (value, "")
    } else {
        let end = s.find(|c: char| c == ',' || c.is_whitespace()).unwrap_or(s.len());
        (s[..end].to_owned(), &s[end..])
    }
}

/// The answer of a token endpoint (`token` or, OAuth-style,
/// `access_token`; `expires_in` seconds).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct TokenAnswer {
    #[serde(default)]
    pub token: String,
    #[serde(default)]
    pub access_token: String,
    #[serde(default)]
    pub expires_in: Option<u64>,
}

impl TokenAnswer {
    /// The token, and how long it lasts.
    pub fn into_token(self) -> Option<(String, Duration)> {
        let token = if self.token.is_empty() { self.access_token } else { self.token };
        let ttl = self.expires_in.filter(|s| *s > 0).map_or(DEFAULT_TOKEN_TTL, Duration::from_secs);
        (!token.is_empty()).then_some((token, ttl))
    }
}

/// Bearer tokens by the scopes they were asked for, each until its expiry.
#[derive(Debug, Default)]
pub struct TokenCache {
    tokens: HashMap<String, (String, Instant)>,
}

impl TokenCache {
    /// The key of a set of scopes (order does not matter).
    pub fn key(scopes: &[String]) -> String {
        let mut sorted: Vec<&str> = scopes.iter().map(String::as_str).collect();
        sorted.sort_unstable();
        sorted.dedup();
        sorted.join(" ")
    }

    /// A token for `scopes` still valid at `now`.
    pub fn get(&self, scopes: &[String], now: Instant) -> Option<String> {
        self.tokens.get(&Self::key(scopes)).filter(|(_, until)| now < *until).map(|(t, _)| t.clone())
    }

    /// Keeps `token` for `scopes` for `ttl` from `now` (less a margin).
    pub fn put(&mut self, scopes: &[String], token: String, ttl: Duration, now: Instant) {
        let margin = EXPIRY_MARGIN.min(ttl / 2);
        self.tokens.retain(|_, (_, until)| now < *until);
        self.tokens.insert(Self::key(scopes), (token, now + ttl.saturating_sub(margin)));
    }

    /// Forgets the token of `scopes` (the registry refused it).
    pub fn forget(&mut self, scopes: &[String]) {
        self.tokens.remove(&Self::key(scopes));
    }
}

/// The scope of pulling from `repo`.
pub fn pull_scope(repo: &str) -> String {
    format!("repository:{repo}:pull")
}

/// The scope of pushing to (and pulling from) `repo`.
pub fn push_scope(repo: &str) -> String {
    format!("repository:{repo}:pull,push")
}

/// The scope of deleting from `repo` (Distribution asks `delete`; Harbor
/// grants it as `delete` too).
pub fn delete_scope(repo: &str) -> String {
    format!("repository:{repo}:delete")
}

/// The scope of listing the catalog.
pub const CATALOG_SCOPE: &str = "registry:catalog:*";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn bearer_challenge_with_quoted_commas() {
        let c = parse_challenges(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push""#,
        );
        assert_eq!(c.len(), 1);
        assert!(c[0].is_bearer());
        assert_eq!(c[0].param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c[0].param("service"), Some("registry.docker.io"));
        assert_eq!(c[0].param("scope"), Some("repository:library/busybox:pull,push"));
    }

    #[test]
    fn basic_and_several_challenges_and_odd_spacing() {
        let c = parse_challenges(r#"Basic realm="berth", charset="UTF-8""#);
        assert_eq!(c.len(), 1);
        assert!(c[0].is_basic());
        assert_eq!(c[0].param("charset"), Some("UTF-8"));
        let c = parse_challenges(
            r#"Basic realm="a" , BEARER  realm = "https://x/t" ,service=reg , error="insufficient_scope""#,
        );
        assert_eq!(c.len(), 2);
        assert_eq!(c[1].scheme, "bearer");
        assert_eq!(c[1].param("realm"), Some("https://x/t"));
        assert_eq!(c[1].param("service"), Some("reg"));
        assert_eq!(c[1].param("error"), Some("insufficient_scope"));
        let c = parse_challenges(r#"Bearer realm="a \"quoted\" realm""#);
        assert_eq!(c[0].param("realm"), Some(r#"a "quoted" realm"#));
        assert!(parse_challenges("").is_empty());
        let c = parse_challenges("Basic");
        assert_eq!(c.len(), 1);
        assert!(c[0].params.is_empty());
    }

    #[test]
    fn tokens_are_kept_per_scope_set_until_they_expire() {
        let mut cache = TokenCache::default();
        let t0 = Instant::now();
        let pull = vec![pull_scope("a/b")];
        let both = vec![push_scope("a/b"), pull_scope("c/d")];
        cache.put(&pull, "t1".into(), Duration::from_secs(60), t0);
        cache.put(&both, "t2".into(), Duration::from_secs(300), t0);
        assert_eq!(cache.get(&pull, t0).as_deref(), Some("t1"));
        let reversed = vec![pull_scope("c/d"), push_scope("a/b")];
        assert_eq!(cache.get(&reversed, t0).as_deref(), Some("t2"), "the order of scopes does not matter");
        assert_eq!(cache.get(&pull, t0 + Duration::from_secs(54)).as_deref(), Some("t1"));
        assert_eq!(cache.get(&pull, t0 + Duration::from_secs(56)), None, "dropped before its expiry");
        assert_eq!(cache.get(&both, t0 + Duration::from_secs(200)).as_deref(), Some("t2"));
        cache.forget(&both);
        assert_eq!(cache.get(&both, t0), None);
        assert_eq!(cache.get(&[push_scope("x")], t0), None);
    }

    #[test]
    fn token_answers_default_their_lifetime() {
        let a: TokenAnswer = serde_json::from_str(r#"{"token":"abc"}"#).unwrap();
        assert_eq!(a.into_token(), Some(("abc".into(), DEFAULT_TOKEN_TTL)));
        let a: TokenAnswer = serde_json::from_str(r#"{"access_token":"xyz","expires_in":300}"#).unwrap();
        assert_eq!(a.into_token(), Some(("xyz".into(), Duration::from_secs(300))));
        let a: TokenAnswer = serde_json::from_str(r#"{"token":"","expires_in":300}"#).unwrap();
        assert_eq!(a.into_token(), None);
    }
}

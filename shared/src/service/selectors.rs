//! Harbor's `doublestar` selectors, shared by the policies that pick
//! repositories and tags (immutability, retention, replication filters).
//!
//! A pattern matches a whole name, as Go's `doublestar.Match` does:
//! `*` any run of characters but `/`, `**` any run including `/` (so
//! `**/x` matches `x` and `a/b/x`), `?` one character but `/`,
//! `[abc]`, `[a-z]`, `[!a]`/`[^a]` one character of a class, `{a,b}` any
//! of the alternatives (nested too), `\x` the character `x`. The empty
//! pattern matches everything (Harbor's selectors treat it so).

use serde::{Deserialize, Serialize};

use super::{ServiceError, ServiceResult};

/// Most alternatives a pattern's braces may expand to.
const MAX_ALTERNATIVES: usize = 256;

/// A Harbor selector (`ImmutableSelector`, `RetentionSelector`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Selector {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub decoration: String,
    #[serde(default)]
    pub pattern: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub extras: String,
}

impl Selector {
    /// Checks a repository selector (`repoMatches`/`repoExcludes`) or, with
    /// `tag`, a tag selector (`matches`/`excludes`).
    pub fn validate(&self, tag: bool) -> ServiceResult<()> {
        if self.kind != "doublestar" {
            return Err(ServiceError::Invalid(format!("unsupported selector kind {:?}", self.kind)));
        }
        let allowed: &[&str] = if tag { &["matches", "excludes"] } else { &["repoMatches", "repoExcludes"] };
        if !allowed.contains(&self.decoration.as_str()) {
            return Err(ServiceError::Invalid(format!(
                "unsupported decoration {:?}: one of {}",
                self.decoration,
                allowed.join(", ")
            )));
        }
        compile(&self.pattern).map(drop)
    }

    /// Whether `value` is selected: it matches the pattern, or for an
    /// `excludes` decoration it does not.
    pub fn selects(&self, value: &str) -> bool {
        let matched = matches(&self.pattern, value);
        if self.decoration.ends_with("xcludes") { !matched } else { matched }
    }
}

/// A rule of Harbor's tag policies (`ImmutableRule`, `RetentionRule`):
/// which repositories (its first `repository` scope selector) and which
/// tags (its first tag selector) it is about; what it does is its policy's
/// (`action`, `template`, `params`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Rule {
    #[serde(default)]
    pub id: i64,
    #[serde(default)]
    pub priority: i64,
    #[serde(default)]
    pub disabled: bool,
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub template: String,
    #[serde(default)]
    pub params: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub tag_selectors: Vec<Selector>,
    #[serde(default)]
    pub scope_selectors: std::collections::BTreeMap<String, Vec<Selector>>,
}

impl Rule {
    pub fn tag_selector(&self) -> Option<&Selector> {
        self.tag_selectors.first()
    }

    pub fn repository_selector(&self) -> Option<&Selector> {
        self.scope_selectors.get("repository").and_then(|s| s.first())
    }

    /// Checks that the rule has a valid tag and repository selector.
    pub fn check_selectors(&self) -> ServiceResult<()> {
        self.tag_selector()
            .ok_or_else(|| ServiceError::Invalid("a tag selector is required".into()))?
            .validate(true)?;
        self.repository_selector()
            .ok_or_else(|| ServiceError::Invalid("a repository scope selector is required".into()))?
            .validate(false)
    }

    /// Whether this rule, enabled, applies to `repository` (the name
    /// without the project).
    pub fn scopes(&self, repository: &str) -> bool {
        !self.disabled && self.repository_selector().is_some_and(|s| s.selects(repository))
    }
}

/// A pattern ready to match: its brace alternatives.
fn compile(pattern: &str) -> ServiceResult<Vec<Vec<char>>> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = Vec::new();
    expand(&chars, Vec::new(), &mut out)?;
    for alt in &out {
        check_classes(alt)?;
    }
    Ok(out)
}

/// Checks that a pattern is well formed (balanced braces and classes, not
/// too many alternatives).
pub fn check_pattern(pattern: &str) -> ServiceResult<()> {
    compile(pattern).map(drop)
}

/// Whether `name` matches `pattern` (a malformed pattern matches nothing).
pub fn matches(pattern: &str, name: &str) -> bool {
    if pattern.is_empty() {
        return true;
    }
    let Ok(alternatives) = compile(pattern) else { return false };
    let name: Vec<char> = name.chars().collect();
    alternatives.iter().any(|p| match_here(p, &name))
}

/// Expands the first brace group of `rest` into `prefix` + each
/// alternative, recursively.
fn expand(rest: &[char], prefix: Vec<char>, out: &mut Vec<Vec<char>>) -> ServiceResult<()> {
    let mut i = 0;
    let mut prefix = prefix;
    while i < rest.len() {
        match rest[i] {
            '\\' if i + 1 < rest.len() => {
                prefix.extend_from_slice(&rest[i..i + 2]);
                i += 2;
            }
            '{' => {
                let (alternatives, end) = split_braces(rest, i)?;
                for alt in alternatives {
                    let mut next: Vec<char> = alt;
                    next.extend_from_slice(&rest[end + 1..]);
                    expand(&next, prefix.clone(), out)?;
                    if out.len() > MAX_ALTERNATIVES {
                        return Err(ServiceError::Invalid("pattern has too many alternatives".to_owned()));
                    }
                }
                return Ok(());
            }
            '}' => return Err(ServiceError::Invalid("pattern has an unmatched '}'".to_owned())),
            c => {
                prefix.push(c);
                i += 1;
            }
        }
    }
    out.push(prefix);
    Ok(())
}

/// The top-level alternatives of the brace group opening at `open`, and
/// the index of its closing brace.
fn split_braces(p: &[char], open: usize) -> ServiceResult<(Vec<Vec<char>>, usize)> {
    let mut depth = 0;
    let mut alternatives = vec![Vec::new()];
    let mut i = open + 1;
    while i < p.len() {
        match p[i] {
            '\\' if i + 1 < p.len() => {
                if let Some(last) = alternatives.last_mut() {
                    last.extend_from_slice(&p[i..i + 2]);
                }
                i += 2;
                continue;
            }
            '{' => depth += 1,
            '}' if depth == 0 => return Ok((alternatives, i)),
            '}' => depth -= 1,
            ',' if depth == 0 => {
                alternatives.push(Vec::new());
                i += 1;
                continue;
            }
            _ => {}
        }
        if let Some(last) = alternatives.last_mut() {
            last.push(p[i]);
        }
        i += 1;
    }
    Err(ServiceError::Invalid("pattern has an unmatched '{'".to_owned()))
}

fn check_classes(p: &[char]) -> ServiceResult<()> {
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '\\' => i += 2,
            '[' => match class_end(p, i) {
                Some(end) => i = end + 1,
                None => return Err(ServiceError::Invalid("pattern has an unmatched '['".to_owned())),
            },
            _ => i += 1,
        }
    }
    Ok(())
}

/// The index of the `]` closing the class opening at `open`.
fn class_end(p: &[char], open: usize) -> Option<usize> {
    let mut i = open + 1;
    if matches!(p.get(i), Some('!' | '^')) {
        i += 1;
    }
    // A `]` first in the class is literal.
    if p.get(i) == Some(&']') {
        i += 1;
    }
    while i < p.len() {
        match p[i] {
            '\\' => i += 2,
            ']' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

fn class_matches(class: &[char], c: char) -> bool {
    let (negated, body) = match class.first() {
        Some('!' | '^') => (true, &class[1..]),
        _ => (false, class),
    };
    let mut found = false;
    let mut i = 0;
    while i < body.len() {
        let lo = if body[i] == '\\' && i + 1 < body.len() {
            i += 1;
            body[i]
        } else {
            body[i]
        };
        if i + 2 < body.len() && body[i + 1] == '-' {
            let hi = body[i + 2];
            found |= lo <= c && c <= hi;
            i += 3;
        } else {
            found |= lo == c;
            i += 1;
        }
    }
    found != negated
}

/// Matches one brace-free pattern against the whole name.
fn match_here(p: &[char], s: &[char]) -> bool {
    let Some(&first) = p.first() else { return s.is_empty() };
    match first {
        '*' => {
            let double = p.get(1) == Some(&'*');
            if double {
                let rest = &p[2..];
                // `**/` also matches no segment at all.
                if rest.first() == Some(&'/') && match_here(&rest[1..], s) {
                    return true;
                }
                (0..=s.len()).any(|k| match_here(rest, &s[k..]))
            } else {
                let rest = &p[1..];
                for k in 0..=s.len() {
                    if match_here(rest, &s[k..]) {
                        return true;
                    }
                    if s.get(k) == Some(&'/') {
                        break;
                    }
                }
                false
            }
        }
        '?' => s.first().is_some_and(|c| *c != '/') && match_here(&p[1..], &s[1..]),
        '[' => {
            let Some(end) = class_end(p, 0) else { return false };
            s.first().is_some_and(|c| *c != '/' && class_matches(&p[1..end], *c)) && match_here(&p[end + 1..], &s[1..])
        }
        '\\' if p.len() > 1 => s.first() == Some(&p[1]) && match_here(&p[2..], &s[1..]),
        c => s.first() == Some(&c) && match_here(&p[1..], &s[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doublestar_patterns() {
        for (pattern, name, want) in [
            ("**", "a/b/c", true),
            ("*", "app", true),
            ("*", "team/app", false),
            ("team/*", "team/app", true),
            ("**/app", "app", true),
            ("**/app", "x/y/app", true),
            ("rel*", "release", true),
            ("rel*", "prerelease", false),
            ("v2.*", "v2.1", true),
            ("v2.*", "v3.1", false),
            ("la*", "latest", true),
            ("6.2*", "6.2.2", true),
            ("{image_a,image_b}", "image_b", true),
            ("{image_a,image_b}", "image_c", false),
            ("v{1,2}.{0,1{0,5}}", "v2.15", true),
            ("v?", "v1", true),
            ("v?", "v10", false),
            ("v[0-9]", "v7", true),
            ("v[!0-9]", "v7", false),
            ("v[^a]", "vb", true),
            ("a\\*", "a*", true),
            ("a\\*", "ab", false),
            ("", "anything", true),
            ("1.0", "1.0", true),
            ("1.0", "1.00", false),
        ] {
            assert_eq!(matches(pattern, name), want, "{pattern} ~ {name}");
        }
    }

    #[test]
    fn malformed_patterns_are_refused() {
        for bad in ["{a,b", "a}", "[ab"] {
            assert!(compile(bad).is_err(), "{bad}");
            assert!(!matches(bad, "a"));
        }
        let sel = Selector {
            kind: "doublestar".into(),
            decoration: "matches".into(),
            pattern: "v*".into(),
            ..Default::default()
        };
        assert!(sel.validate(true).is_ok());
        assert!(sel.validate(false).is_err(), "a tag decoration on a repository selector");
        let excl = Selector { decoration: "repoExcludes".into(), ..sel.clone() };
        assert!(excl.selects("app") && !excl.selects("v1"));
    }
}

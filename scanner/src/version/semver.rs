//! Semantic Versioning 2.0.0 as npm, crates.io and Go use it: numeric
//! major.minor.patch, a pre-release sorts before its release, pre-release
//! identifiers compare numerically when both are numbers and numbers sort
//! before text, build metadata is ignored. A `v` prefix (Go modules) and a
//! `go` prefix (the Go toolchain, `go1.21.5`, `go1.22rc1`) are accepted, and
//! missing minor or patch numbers count as 0 (`go1.21` is 1.21.0).

use std::cmp::Ordering;

#[derive(Debug, PartialEq, Eq)]
enum Ident<'a> {
    Num(u64),
    Text(&'a str),
}

impl Ord for Ident<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Ident::Num(a), Ident::Num(b)) => a.cmp(b),
            (Ident::Num(_), Ident::Text(_)) => Ordering::Less,
            (Ident::Text(_), Ident::Num(_)) => Ordering::Greater,
            (Ident::Text(a), Ident::Text(b)) => a.cmp(b),
        }
    }
}

impl PartialOrd for Ident<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

struct Version<'a> {
    core: [u64; 3],
    pre: Vec<Ident<'a>>,
}

fn parse(text: &str) -> Option<Version<'_>> {
    let text = text.trim();
    let text = text.strip_prefix("go").or_else(|| text.strip_prefix('v')).unwrap_or(text);
    let text = text.split('+').next().unwrap_or(text);
    let core_len = text.bytes().take_while(|b| b.is_ascii_digit() || *b == b'.').count();
    let (core_text, rest) = text.split_at(core_len);
    let pre_text = match rest.strip_prefix('-') {
        Some(pre) => Some(pre),
        None if rest.is_empty() => None,
        // Go toolchain pre-releases: go1.22rc1.
        None if rest.starts_with(|c: char| c.is_ascii_lowercase()) => Some(rest),
        None => return None,
    };
    let mut core = [0u64; 3];
    let parts: Vec<&str> = core_text.split('.').collect();
    if parts.is_empty() || parts.len() > 3 {
        return None;
    }
    for (slot, part) in core.iter_mut().zip(&parts) {
        if part.is_empty() || (part.len() > 1 && part.starts_with('0')) {
            return None;
        }
        *slot = part.parse().ok()?;
    }
    let mut pre = Vec::new();
    if let Some(pre_text) = pre_text {
        for ident in pre_text.split('.') {
            if ident.is_empty() || !ident.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                return None;
            }
            pre.push(match ident.parse::<u64>() {
                Ok(n) if ident.bytes().all(|b| b.is_ascii_digit()) => Ident::Num(n),
                _ => Ident::Text(ident),
            });
        }
    }
    Some(Version { core, pre })
}

pub(super) fn compare(a: &str, b: &str) -> Option<Ordering> {
    let (a, b) = (parse(a)?, parse(b)?);
    let pre = match (a.pre.is_empty(), b.pre.is_empty()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => a.pre.cmp(&b.pre),
    };
    Some(a.core.cmp(&b.core).then(pre))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::{Scheme, assert_ascending};
    use std::cmp::Ordering;

    #[test]
    fn semver_spec_ordering() {
        assert_ascending(
            Scheme::Semver,
            &[
                "1.0.0-alpha",
                "1.0.0-alpha.1",
                "1.0.0-alpha.beta",
                "1.0.0-beta",
                "1.0.0-beta.2",
                "1.0.0-beta.11",
                "1.0.0-rc.1",
                "1.0.0",
                "1.0.1",
                "1.1.0",
                "1.10.0",
                "2.0.0",
            ],
        );
        assert_eq!(Scheme::Semver.compare("1.0.0+build.1", "1.0.0+build.2"), Some(Ordering::Equal));
    }

    #[test]
    fn go_prefixes_and_pseudo_versions() {
        assert_ascending(
            Scheme::Semver,
            &["v0.0.0-20230101000000-abcdefabcdef", "v0.1.0", "v0.17.0", "v1.0.0-rc1", "v1.0.0", "v2.0.0+incompatible"],
        );
        assert_ascending(Scheme::Semver, &["go1.20.14", "go1.21", "go1.21.5", "go1.22rc1", "1.22.0", "go1.22.1"]);
    }

    #[test]
    fn invalid_versions_do_not_parse() {
        for bad in ["", "1.0.0.0", "01.0.0", "1.0.0-", "1.0.0-a..b", "latest", "1.x", "^1.2.3", "(devel)"] {
            assert!(!Scheme::Semver.parses(bad), "{bad}");
        }
    }
}

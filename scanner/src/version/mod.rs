//! Version ordering per ecosystem, each after its format's documented rules.
//!
//! [`compare`] answers `None` when either side does not parse: such a
//! version is unknown, and the matcher never reports it as inside a range.
//! Nothing here panics on any input.

mod apk;
mod dpkg;
mod pep440;
mod rpm;
mod semver;

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

/// A version syntax and its ordering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// Debian policy 5.6.12: epoch, upstream, revision; `~` before anything.
    Dpkg,
    /// Alpine's apk-tools algorithm.
    Apk,
    /// Semantic Versioning 2.0.0 (npm, crates.io, Go with `v`/`go` prefixes).
    Semver,
    /// PEP 440 (PyPI).
    Pep440,
    /// rpmvercmp with epoch and release (`~` and `^`).
    Rpm,
}

impl Scheme {
    /// The scheme of an OSV ecosystem name (`Debian:12`, `PyPI`, ...), if
    /// this scanner orders its versions.
    pub fn for_ecosystem(ecosystem: &str) -> Option<Scheme> {
        let base = ecosystem.split(':').next().unwrap_or(ecosystem);
        match base {
            "Debian" | "Ubuntu" => Some(Scheme::Dpkg),
            "Alpine" => Some(Scheme::Apk),
            "PyPI" => Some(Scheme::Pep440),
            "npm" | "crates.io" | "Go" => Some(Scheme::Semver),
            "Red Hat" | "AlmaLinux" | "Rocky Linux" | "openSUSE" | "SUSE" | "Mageia" | "openEuler" => Some(Scheme::Rpm),
            _ => None,
        }
    }

    /// Whether the text is a version of this scheme.
    pub fn parses(self, version: &str) -> bool {
        self.compare(version, version).is_some()
    }

    /// `a` against `b`, or `None` if either does not parse.
    pub fn compare(self, a: &str, b: &str) -> Option<Ordering> {
        if a.len() > 256 || b.len() > 256 {
            return None;
        }
        match self {
            Scheme::Dpkg => dpkg::compare(a, b),
            Scheme::Apk => apk::compare(a, b),
            Scheme::Semver => semver::compare(a, b),
            Scheme::Pep440 => pep440::compare(a, b),
            Scheme::Rpm => rpm::compare(a, b),
        }
    }
}

/// Checks that every adjacent pair of a list sorts ascending, for the tests
/// of each scheme.
#[cfg(test)]
pub(crate) fn assert_ascending(scheme: Scheme, versions: &[&str]) {
    for pair in versions.windows(2) {
        assert_eq!(scheme.compare(pair[0], pair[1]), Some(Ordering::Less), "{} < {}", pair[0], pair[1]);
        assert_eq!(scheme.compare(pair[1], pair[0]), Some(Ordering::Greater), "{} > {}", pair[1], pair[0]);
    }
    for v in versions {
        assert_eq!(scheme.compare(v, v), Some(Ordering::Equal), "{v}");
    }
}

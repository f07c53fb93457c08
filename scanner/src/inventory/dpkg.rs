//! dpkg's database: `var/lib/dpkg/status`, and the one-file-per-package
//! `var/lib/dpkg/status.d/*` of distroless images. Only stanzas whose
//! `Status` is `install ok installed` count (a `status.d` stanza without a
//! `Status` field counts too: distroless writes none). The `Source` field
//! names the source package, optionally with its version in parentheses.
//! dpkg keeps no licenses in its database (they are in
//! `/usr/share/doc/*/copyright`, free text), so none are reported.

use super::{Ecosystem, OsInfo, Package, distro, purl};

const STATUS: &str = "var/lib/dpkg/status";
const STATUS_D: &str = "var/lib/dpkg/status.d/";

pub(crate) fn wants(path: &str) -> bool {
    path == STATUS || path.strip_prefix(STATUS_D).is_some_and(|name| !name.contains('/') && !name.ends_with(".md5sums"))
}

/// The stanzas of a deb822 file: fields with their continuation lines
/// folded into the value.
pub(crate) fn stanzas(text: &str) -> Vec<Vec<(&str, String)>> {
    let mut all = Vec::new();
    let mut current: Vec<(&str, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                all.push(std::mem::take(&mut current));
            }
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = current.last_mut() {
                value.push('\n');
                value.push_str(line.trim());
            }
        } else if let Some((key, value)) = line.split_once(':') {
            current.push((key.trim(), value.trim().to_owned()));
        }
    }
    if !current.is_empty() {
        all.push(current);
    }
    all
}

pub(crate) fn packages(path: &str, text: &str, os: Option<&OsInfo>) -> Vec<Package> {
    let in_status_d = path.starts_with(STATUS_D);
    let namespace = os.map_or("debian", |os| os.id.as_str());
    let distro = distro(os);
    let mut found = Vec::new();
    for stanza in stanzas(text) {
        let field = |name: &str| stanza.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
        let installed = match field("Status") {
            Some(status) => status.split_whitespace().collect::<Vec<_>>() == ["install", "ok", "installed"],
            None => in_status_d,
        };
        let (Some(name), Some(version)) = (field("Package"), field("Version")) else { continue };
        if !installed || !valid_name(name) || version.is_empty() || version.contains(char::is_whitespace) {
            continue;
        }
        let arch = field("Architecture").filter(|a| !a.is_empty());
        let (source_name, source_version) = match field("Source") {
            Some(source) => parse_source(source),
            None => (None, None),
        };
        let upstream = match (&source_name, &source_version) {
            (Some(n), Some(v)) => format!("{n}@{v}"),
            (Some(n), None) => n.clone(),
            _ => String::new(),
        };
        let purl = purl(
            "deb",
            Some(namespace),
            name,
            version,
            &[("arch", arch.unwrap_or_default()), ("distro", &distro), ("upstream", &upstream)],
        );
        found.push(Package {
            name: name.to_owned(),
            version: version.to_owned(),
            ecosystem: Ecosystem::Deb,
            purl,
            path: path.to_owned(),
            licenses: Vec::new(),
            source_name,
            source_version,
            arch: arch.map(str::to_owned),
        });
    }
    found
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 256 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.:_".contains(&b))
}

/// `Source: glibc` or `Source: glibc (2.36-9)`.
fn parse_source(source: &str) -> (Option<String>, Option<String>) {
    let (name, version) = match source.split_once('(') {
        Some((name, rest)) => (name.trim(), rest.split(')').next().map(str::trim).filter(|v| !v.is_empty())),
        None => (source.trim(), None),
    };
    if !valid_name(name) {
        return (None, None);
    }
    (Some(name.to_owned()), version.map(str::to_owned))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const STATUS_TEXT: &str = "\
Package: libc6
Status: install ok installed
Priority: optional
Architecture: amd64
Source: glibc
Version: 2.36-9+deb12u4
Description: GNU C Library: Shared libraries
 Contains the standard libraries.
 .
 More.

Package: removed
Status: deinstall ok config-files
Version: 1.0

Package: libssl3
Status: install ok installed
Architecture: amd64
Source: openssl (3.0.11-1~deb12u2)
Version: 3.0.13-1~deb12u1
";

    #[test]
    fn installed_stanzas_with_sources() {
        let os = OsInfo { id: "debian".into(), version_id: Some("12".into()), pretty_name: None };
        let found = packages(STATUS, STATUS_TEXT, Some(&os));
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].source_name.as_deref(), Some("glibc"));
        assert_eq!(found[0].source_version, None);
        assert_eq!(found[0].purl, "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc");
        assert_eq!(found[1].source_name.as_deref(), Some("openssl"));
        assert_eq!(found[1].source_version.as_deref(), Some("3.0.11-1~deb12u2"));
        assert_eq!(found[1].arch.as_deref(), Some("amd64"));
    }

    #[test]
    fn distroless_status_d() {
        assert!(wants("var/lib/dpkg/status.d/base"));
        assert!(!wants("var/lib/dpkg/status.d/base.md5sums"));
        let found = packages("var/lib/dpkg/status.d/tzdata", "Package: tzdata\nVersion: 2024a-0+deb12u1\n", None);
        assert_eq!(found.len(), 1);
        assert!(packages(STATUS, "Package: tzdata\nVersion: 2024a\n", None).is_empty());
    }

    #[test]
    fn this_machines_status_file() {
        let text = std::fs::read_to_string("/var/lib/dpkg/status").unwrap();
        let found = packages(STATUS, &text, None);
        let installed = text.matches("Status: install ok installed").count();
        assert!(found.len() > 50);
        assert_eq!(found.len(), installed);
    }
}

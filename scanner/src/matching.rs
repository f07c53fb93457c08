//! An inventory against the database: which packages are hit, by what, and
//! how badly.
//!
//! A package is looked up in the ecosystem its origin implies: dpkg packages
//! in `Debian` or `Ubuntu` (by their *source* package, as those advisories
//! name it, and the source version when dpkg records one), apk packages in
//! `Alpine` (by origin), the rest in `PyPI`, `npm`, `crates.io` and `Go`.
//! A release-specific ecosystem (`Debian:12`, `Alpine:v3.19`,
//! `Ubuntu:22.04:LTS`) counts only on that release of the image's OS.
//! Ranges are evaluated as the OSV specification describes; a version that
//! does not parse is never inside a range (only an explicit `versions`
//! entry can name it).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::inventory::{Ecosystem, Inventory, OsInfo, Package};
use crate::osv::{Affected, Event, VulnDb, Vulnerability};
use crate::version::Scheme;

/// Harbor's severity names, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Severity {
    Unknown,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// CVSS v3 qualitative rating of a base score (0.0 is None: Unknown).
    pub fn from_score(score: f64) -> Severity {
        if score >= 9.0 {
            Severity::Critical
        } else if score >= 7.0 {
            Severity::High
        } else if score >= 4.0 {
            Severity::Medium
        } else if score >= 0.1 {
            Severity::Low
        } else {
            Severity::Unknown
        }
    }

    /// The words advisories use: GitHub's `MODERATE`, Debian's urgencies,
    /// Ubuntu's priorities.
    pub fn from_word(word: &str) -> Severity {
        match word.trim().trim_end_matches('*').to_ascii_lowercase().as_str() {
            "critical" => Severity::Critical,
            "high" | "important" => Severity::High,
            "medium" | "moderate" => Severity::Medium,
            "low" | "negligible" | "unimportant" => Severity::Low,
            _ => Severity::Unknown,
        }
    }
}

/// One vulnerability in one package.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The CVE id when the record has exactly one, else the OSV id.
    pub id: String,
    pub osv_id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    pub package: String,
    pub version: String,
    pub ecosystem: Ecosystem,
    pub purl: String,
    pub path: String,
    /// The lowest fixed version above the installed one, if there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_version: Option<String>,
    pub severity: Severity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cvss_score: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cvss_vector: Option<String>,
    pub description: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cwe_ids: Vec<String>,
}

/// Every finding of an inventory, most severe first, then by id, package,
/// version and path.
pub fn find_vulnerabilities(db: &VulnDb, inv: &Inventory) -> Vec<Finding> {
    let mut found: BTreeMap<(String, String, String, String, String), Finding> = BTreeMap::new();
    for package in &inv.packages {
        let Some((base, name, version)) = lookup_key(package, inv.os.as_ref()) else { continue };
        let Some(scheme) = Scheme::for_ecosystem(base) else { continue };
        for (vuln, affected) in db.lookup(base, name) {
            if !release_matches(&affected.ecosystem, inv.os.as_ref()) {
                continue;
            }
            let Some(fixed) = affected_by(scheme, affected, version) else { continue };
            let finding = finding(package, vuln, affected, fixed);
            let key = (
                package.path.clone(),
                package.name.clone(),
                package.version.clone(),
                package.purl.clone(),
                finding.id.clone(),
            );
            match found.get_mut(&key) {
                // The same CVE through two records (GHSA and PYSEC, say):
                // reported once, with the best of what both say.
                Some(existing) => merge(existing, finding, scheme),
                None => {
                    found.insert(key, finding);
                }
            }
        }
    }
    let mut findings: Vec<Finding> = found.into_values().collect();
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.id.cmp(&b.id))
            .then_with(|| (&a.package, &a.version, &a.path).cmp(&(&b.package, &b.version, &b.path)))
    });
    findings
}

/// The OSV ecosystem base, the name and the version to look a package up by.
fn lookup_key<'p>(package: &'p Package, os: Option<&OsInfo>) -> Option<(&'static str, &'p str, &'p str)> {
    let source = || package.source_name.as_deref().unwrap_or(&package.name);
    Some(match package.ecosystem {
        Ecosystem::Deb => {
            let base = match os.map(|o| o.id.as_str()) {
                Some("ubuntu") => "Ubuntu",
                Some("debian") | None => "Debian",
                Some(_) => return None,
            };
            (base, source(), package.source_version.as_deref().unwrap_or(&package.version))
        }
        Ecosystem::Apk => match os.map(|o| o.id.as_str()) {
            Some("alpine") | None => ("Alpine", source(), package.version.as_str()),
            Some(_) => return None,
        },
        Ecosystem::Rpm => {
            let base = match os.map(|o| o.id.as_str())? {
                "rhel" => "Red Hat",
                "almalinux" => "AlmaLinux",
                "rocky" => "Rocky Linux",
                "opensuse-leap" | "opensuse-tumbleweed" | "opensuse" => "openSUSE",
                "sles" | "sled" => "SUSE",
                "mageia" => "Mageia",
                "openEuler" | "openeuler" => "openEuler",
                _ => return None,
            };
            (base, package.name.as_str(), package.version.as_str())
        }
        Ecosystem::PyPI => ("PyPI", package.name.as_str(), package.version.as_str()),
        Ecosystem::Npm => ("npm", package.name.as_str(), package.version.as_str()),
        Ecosystem::Cargo => ("crates.io", package.name.as_str(), package.version.as_str()),
        Ecosystem::Go => ("Go", package.name.as_str(), package.version.as_str()),
    })
}

/// Whether an OSV ecosystem's release part (`Debian:12`) fits the image's
/// OS; a name without a release fits every release.
pub(crate) fn release_matches(ecosystem: &str, os: Option<&OsInfo>) -> bool {
    let mut parts = ecosystem.split(':');
    let base = parts.next().unwrap_or_default();
    let rest: Vec<&str> = parts.collect();
    if rest.is_empty() {
        return true;
    }
    let Some(version_id) = os.and_then(|o| o.version_id.as_deref()) else { return false };
    let leading = |n: usize| version_id.split('.').take(n).collect::<Vec<_>>().join(".");
    match base {
        "Debian" => rest[0] == leading(1),
        "Alpine" => rest[0].trim_start_matches('v') == leading(2),
        // `Ubuntu:22.04:LTS`, `Ubuntu:24.10`; Ubuntu Pro's ESM advisories
        // (`Ubuntu:Pro:18.04:LTS`) need a subscription image, not this one.
        "Ubuntu" => !rest.contains(&"Pro") && rest[0] == leading(2),
        "AlmaLinux" | "Rocky Linux" | "Mageia" => rest[0] == leading(1),
        // `Red Hat:enterprise_linux:9::appstream`.
        "Red Hat" => rest.get(1).is_some_and(|major| *major == leading(1)),
        _ => true,
    }
}

/// `Some(fixed)` if the version is affected, with the lowest fixed version
/// above it in a range that hits it.
pub(crate) fn affected_by(scheme: Scheme, affected: &Affected, version: &str) -> Option<Option<String>> {
    let mut hit = affected.versions.iter().any(|v| v == version);
    let mut fixed: Option<&str> = None;
    if scheme.parses(version) {
        for range in &affected.ranges {
            if !range_hits(scheme, range, version) {
                continue;
            }
            hit = true;
            for event in range {
                if let Event::Fixed(f) = event
                    && scheme.compare(f, version) == Some(Ordering::Greater)
                    && fixed.is_none_or(|lowest| scheme.compare(f, lowest) == Some(Ordering::Less))
                {
                    fixed = Some(f);
                }
            }
        }
    }
    hit.then(|| fixed.map(str::to_owned))
}

/// OSV's range evaluation: events in version order, `introduced` opens,
/// `fixed` (at or below the version) and `last_affected` (below it) close;
/// a `limit` caps the range. An event that does not parse makes the range
/// unusable, so it hits nothing.
fn range_hits(scheme: Scheme, events: &[Event], version: &str) -> bool {
    let zero = |v: &str| v == "0";
    let mut sorted: Vec<&Event> = Vec::with_capacity(events.len());
    let mut limits = Vec::new();
    for event in events {
        match event {
            Event::Introduced(v) if zero(v) => sorted.push(event),
            Event::Limit(v) if v == "*" => {}
            Event::Limit(v) => limits.push(v.as_str()),
            Event::Introduced(v) | Event::Fixed(v) | Event::LastAffected(v) => {
                if !scheme.parses(v) {
                    return false;
                }
                sorted.push(event);
            }
        }
    }
    let value = |e: &Event| match e {
        Event::Introduced(v) | Event::Fixed(v) | Event::LastAffected(v) | Event::Limit(v) => v.clone(),
    };
    sorted.sort_by(|a, b| {
        let (va, vb) = (value(a), value(b));
        match (zero(&va) && matches!(a, Event::Introduced(_)), zero(&vb) && matches!(b, Event::Introduced(_))) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (false, false) => scheme.compare(&va, &vb).unwrap_or(Ordering::Equal),
        }
    });
    let at_least = |v: &str| scheme.compare(version, v).is_some_and(|o| o != Ordering::Less);
    let mut hit = false;
    for event in sorted {
        match event {
            Event::Introduced(v) if zero(v) || at_least(v) => hit = true,
            Event::Fixed(v) if at_least(v) => hit = false,
            Event::LastAffected(v) if scheme.compare(version, v) == Some(Ordering::Greater) => hit = false,
            _ => {}
        }
    }
    hit && (limits.is_empty() || limits.iter().any(|l| scheme.compare(version, l) == Some(Ordering::Less)))
}

fn finding(package: &Package, vuln: &Vulnerability, affected: &Affected, fixed: Option<String>) -> Finding {
    let mut cves: Vec<&String> = vuln.aliases.iter().chain(&vuln.upstream).filter(|a| a.starts_with("CVE-")).collect();
    cves.sort();
    cves.dedup();
    let id = match cves.as_slice() {
        _ if vuln.id.starts_with("CVE-") => vuln.id.clone(),
        [cve] => (*cve).clone(),
        _ => vuln.id.clone(),
    };
    let vector = affected
        .severity
        .iter()
        .chain(&vuln.severity)
        .find(|(kind, score)| kind == "CVSS_V3" && cvss3_base_score(score).is_some())
        .map(|(_, vector)| vector.clone());
    let score = vector.as_deref().and_then(cvss3_base_score);
    let severity = match score {
        Some(score) => Severity::from_score(score),
        None => affected
            .severity_word
            .as_deref()
            .or(vuln.severity_word.as_deref())
            .map_or(Severity::Unknown, Severity::from_word),
    };
    let mut aliases = vuln.aliases.clone();
    aliases.extend(vuln.upstream.iter().filter(|u| !aliases.contains(u)).cloned().collect::<Vec<_>>());
    Finding {
        id,
        osv_id: vuln.id.clone(),
        aliases,
        package: package.name.clone(),
        version: package.version.clone(),
        ecosystem: package.ecosystem,
        purl: package.purl.clone(),
        path: package.path.clone(),
        fixed_version: fixed,
        severity,
        cvss_score: score,
        cvss_vector: vector,
        description: vuln.details.clone().or_else(|| vuln.summary.clone()).unwrap_or_default(),
        links: vuln.references.clone(),
        cwe_ids: vuln.cwe_ids.clone(),
    }
}

fn merge(into: &mut Finding, other: Finding, scheme: Scheme) {
    if let Some(fixed) = other.fixed_version {
        let lower = into.fixed_version.as_deref().is_none_or(|f| scheme.compare(&fixed, f) == Some(Ordering::Less));
        if lower {
            into.fixed_version = Some(fixed);
        }
    }
    if into.cvss_score.is_none() && other.cvss_score.is_some() {
        into.cvss_score = other.cvss_score;
        into.cvss_vector = other.cvss_vector;
        into.severity = other.severity;
    } else if into.cvss_score.is_none() && other.severity > into.severity {
        into.severity = other.severity;
    }
    for alias in other.aliases.into_iter().chain([other.osv_id]) {
        if alias != into.osv_id && !into.aliases.contains(&alias) {
            into.aliases.push(alias);
        }
    }
    for link in other.links {
        if !into.links.contains(&link) {
            into.links.push(link);
        }
    }
    for cwe in other.cwe_ids {
        if !into.cwe_ids.contains(&cwe) {
            into.cwe_ids.push(cwe);
        }
    }
}

/// The CVSS v3.0/v3.1 base score of a vector (`CVSS:3.1/AV:N/AC:L/...`), by
/// the formula of FIRST's CVSS v3.1 specification, section 7.1. `None` if
/// the vector lacks a base metric or has an unknown value.
pub fn cvss3_base_score(vector: &str) -> Option<f64> {
    let mut parts = vector.split('/');
    if !matches!(parts.next(), Some("CVSS:3.0" | "CVSS:3.1")) {
        return None;
    }
    let metrics: BTreeMap<&str, &str> = parts.filter_map(|p| p.split_once(':')).collect();
    let metric = |name: &str| metrics.get(name).copied();
    let changed = match metric("S")? {
        "U" => false,
        "C" => true,
        _ => return None,
    };
    let av = match metric("AV")? {
        "N" => 0.85,
        "A" => 0.62,
        "L" => 0.55,
        "P" => 0.2,
        _ => return None,
    };
    let ac = match metric("AC")? {
        "L" => 0.77,
        "H" => 0.44,
        _ => return None,
    };
    let pr = match (metric("PR")?, changed) {
        ("N", _) => 0.85,
        ("L", false) => 0.62,
        ("L", true) => 0.68,
        ("H", false) => 0.27,
        ("H", true) => 0.5,
        _ => return None,
    };
    let ui = match metric("UI")? {
        "N" => 0.85,
        "R" => 0.62,
        _ => return None,
    };
    let cia = |name: &str| match metric(name)? {
        "H" => Some(0.56),
        "L" => Some(0.22),
        "N" => Some(0.0),
        _ => None,
    };
    let (c, i, a) = (cia("C")?, cia("I")?, cia("A")?);
    let iss = 1.0 - ((1.0 - c) * (1.0 - i) * (1.0 - a));
    let impact = if changed { 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02_f64).powi(15) } else { 6.42 * iss };
    let exploitability = 8.22 * av * ac * pr * ui;
    if impact <= 0.0 {
        return Some(0.0);
    }
    let base = if changed { (1.08 * (impact + exploitability)).min(10.0) } else { (impact + exploitability).min(10.0) };
    Some(round_up(base))
}

/// CVSS v3.1's Roundup (Appendix A): the smallest one-decimal number not
/// below the input, computed on integers so float noise does not round up.
fn round_up(value: f64) -> f64 {
    let scaled = (value * 100_000.0).round() as i64;
    if scaled % 10_000 == 0 { scaled as f64 / 100_000.0 } else { ((scaled / 10_000) + 1) as f64 / 10.0 }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::osv::VulnDbBuilder;
    use crate::osv::tests::{debian_glibc, ghsa_requests};
    use crate::{Limits, inventory::Package};
    use serde_json::json;

    #[test]
    fn cvss_31_base_scores() {
        for (vector, score) in [
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),
            ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8),
            ("CVSS:3.0/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N", 5.9),
            ("CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:H/I:H/A:N", 5.6),
            ("CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", 1.6),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0),
            ("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:L/I:L/A:N/E:P", 6.4),
        ] {
            assert_eq!(cvss3_base_score(vector), Some(score), "{vector}");
        }
        assert_eq!(cvss3_base_score("CVSS:3.1/AV:N/AC:L"), None);
        assert_eq!(cvss3_base_score("AV:N/AC:L/Au:N/C:P/I:P/A:P"), None);
        assert_eq!(cvss3_base_score("CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"), None);
        assert_eq!(Severity::from_score(9.8), Severity::Critical);
        assert_eq!(Severity::from_score(0.0), Severity::Unknown);
    }

    fn package(ecosystem: Ecosystem, name: &str, version: &str, source: Option<&str>) -> Package {
        Package {
            name: name.into(),
            version: version.into(),
            ecosystem,
            purl: format!("pkg:x/{name}@{version}"),
            path: "p".into(),
            licenses: vec![],
            source_name: source.map(str::to_owned),
            source_version: None,
            arch: None,
        }
    }

    fn os(id: &str, version: &str) -> Option<OsInfo> {
        Some(OsInfo { id: id.into(), version_id: Some(version.into()), pretty_name: None })
    }

    fn db(records: &[serde_json::Value]) -> VulnDb {
        let mut builder = VulnDbBuilder::new(&Limits::default());
        for record in records {
            builder.add_json(record.to_string().as_bytes());
        }
        builder.finish().0
    }

    #[test]
    fn matches_by_source_name_release_and_range() {
        let db = db(&[debian_glibc(), ghsa_requests()]);
        let inv = Inventory {
            os: os("debian", "12"),
            packages: vec![
                package(Ecosystem::Deb, "libc6", "2.36-9+deb12u2", Some("glibc")),
                package(Ecosystem::Deb, "libc-bin", "2.36-9+deb12u4", Some("glibc")),
                package(Ecosystem::PyPI, "Requests", "2.31.0", None),
                package(Ecosystem::PyPI, "requests", "2.32.3", None),
                package(Ecosystem::PyPI, "requests", "not a version", None),
            ],
        };
        let found = find_vulnerabilities(&db, &inv);
        let summary: Vec<_> =
            found.iter().map(|f| (f.id.as_str(), f.package.as_str(), f.fixed_version.as_deref(), f.severity)).collect();
        assert_eq!(
            summary,
            [
                ("CVE-2023-4911", "libc6", Some("2.36-9+deb12u3"), Severity::High),
                ("CVE-2024-35195", "Requests", Some("2.32.0"), Severity::Medium),
            ]
        );
        assert_eq!(found[1].osv_id, "GHSA-9wx4-h78v-vm56");
        assert_eq!(found[1].cvss_score, Some(5.6));
        assert_eq!(found[1].cwe_ids, ["CWE-670"]);
        // Only Debian 11's range counts on Debian 11, and 2.36 is above it.
        let inv11 = Inventory { os: os("debian", "11"), ..inv.clone() };
        let found = find_vulnerabilities(&db, &inv11);
        assert!(found.iter().all(|f| f.ecosystem != Ecosystem::Deb));
        let inv_ubuntu = Inventory { os: os("ubuntu", "22.04"), ..inv };
        assert!(find_vulnerabilities(&db, &inv_ubuntu).iter().all(|f| f.ecosystem != Ecosystem::Deb));
    }

    #[test]
    fn one_cve_through_two_records_is_reported_once() {
        let mut pysec = ghsa_requests();
        pysec["id"] = json!("PYSEC-2024-1");
        pysec["severity"] = json!([]);
        pysec["affected"][0]["ranges"][0]["events"] = json!([{"introduced": "2.0"}, {"fixed": "2.31.5"}]);
        let db = db(&[ghsa_requests(), pysec]);
        let inv = Inventory { os: None, packages: vec![package(Ecosystem::PyPI, "requests", "2.31.0", None)] };
        let found = find_vulnerabilities(&db, &inv);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].fixed_version.as_deref(), Some("2.31.5"));
        assert!(found[0].aliases.contains(&"PYSEC-2024-1".to_owned()) || found[0].osv_id == "PYSEC-2024-1");
    }

    #[test]
    fn release_names() {
        let alpine = os("alpine", "3.19.1");
        assert!(release_matches("Alpine:v3.19", alpine.as_ref()));
        assert!(!release_matches("Alpine:v3.1", alpine.as_ref()));
        assert!(release_matches("Alpine", alpine.as_ref()));
        let ubuntu = os("ubuntu", "22.04");
        assert!(release_matches("Ubuntu:22.04:LTS", ubuntu.as_ref()));
        assert!(!release_matches("Ubuntu:Pro:22.04:LTS", ubuntu.as_ref()));
        assert!(!release_matches("Ubuntu:20.04:LTS", ubuntu.as_ref()));
        assert!(release_matches("Debian:12", os("debian", "12").as_ref()));
        assert!(!release_matches("Debian:12", None));
    }

    fn affected(ranges: serde_json::Value, versions: &[&str]) -> Affected {
        Affected {
            ecosystem: "npm".into(),
            name: "x".into(),
            ranges: serde_json::from_value(ranges).unwrap(),
            versions: versions.iter().map(|v| v.to_string()).collect(),
            severity_word: None,
            severity: vec![],
        }
    }

    #[test]
    fn range_events() {
        let a = affected(
            json!([[{"introduced": "0"}, {"fixed": "1.0.5"}, {"introduced": "2.0.0"}, {"last_affected": "2.1.0"}],
                   [{"introduced": "1.0.0"}, {"fixed": "1.0.3"}]]),
            &["9.9.9-weird"],
        );
        let s = Scheme::Semver;
        assert_eq!(affected_by(s, &a, "0.9.0"), Some(Some("1.0.5".into())));
        assert_eq!(affected_by(s, &a, "1.0.1"), Some(Some("1.0.3".into())));
        assert_eq!(affected_by(s, &a, "1.0.5"), None);
        assert_eq!(affected_by(s, &a, "2.1.0"), Some(None));
        assert_eq!(affected_by(s, &a, "2.1.1"), None);
        assert_eq!(affected_by(s, &a, "9.9.9-weird"), Some(None));
        assert_eq!(affected_by(s, &a, "garbage"), None);
        let limited = affected(json!([[{"introduced": "1.0.0"}, {"limit": "1.5.0"}]]), &[]);
        assert_eq!(affected_by(s, &limited, "1.2.0"), Some(None));
        assert_eq!(affected_by(s, &limited, "1.6.0"), None);
        let broken = affected(json!([[{"introduced": "0"}, {"fixed": "not-semver"}]]), &[]);
        assert_eq!(affected_by(s, &broken, "1.0.0"), None);
    }
}

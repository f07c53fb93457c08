//! Harbor's Pluggable Scanner API (v1.1 and v1.2): the wire types a scanner
//! adapter speaks and the client berth calls adapters with.
//!
//! An adapter answers `GET /api/v1/metadata` with what it is and which
//! report MIME types it produces, takes `POST /api/v1/scan` (the registry
//! URL, a short-lived pull credential and the artifact) with `202` and a
//! request id, and serves `GET /api/v1/scan/{id}/report` as `302` with
//! `Refresh-After` (or `Retry-After`) until the report is ready. This module
//! knows nothing of the registry's records: scans and their reports are
//! [`crate::service::scans`], the job that drives an adapter is
//! [`crate::jobs::scan`].

pub mod builtin;
pub mod client;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The metadata MIME type berth asks for.
pub const METADATA_MIME: &str = "application/vnd.scanner.adapter.metadata+json; version=1.1";
/// A scan request's content type.
pub const SCAN_REQUEST_MIME: &str = "application/vnd.scanner.adapter.scan.request+json; version=1.1";
/// A scan response's content type.
pub const SCAN_RESPONSE_MIME: &str = "application/vnd.scanner.adapter.scan.response+json; version=1.0";
/// An adapter's error body.
pub const ERROR_MIME: &str = "application/vnd.scanner.adapter.error+json; version=1.0";
/// Harbor's vulnerability report, the one every adapter produces.
pub const HARBOR_REPORT_MIME: &str = "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0";
/// The newer vulnerability report Harbor prefers when offered.
pub const SECURITY_REPORT_MIME: &str = "application/vnd.security.vulnerability.report; version=1.1";
/// An SBOM report (v1.2 adapters).
pub const SBOM_REPORT_MIME: &str = "application/vnd.security.sbom.report+json; version=1.0";
/// The SBOM formats a v1.2 adapter may be asked for.
pub const SPDX_MIME: &str = "application/spdx+json";
pub const CYCLONEDX_MIME: &str = "application/vnd.cyclonedx+json";

/// The manifest types scanners consume.
pub const CONSUMED_MIMES: [&str; 3] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.index.v1+json",
];

/// What a scanner is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ScannerInfo {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub vendor: String,
    #[serde(default)]
    pub version: String,
}

/// One capability of an adapter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Capability {
    /// `vulnerability` or `sbom` (v1.2; absent means vulnerability).
    #[serde(rename = "type", default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(default)]
    pub consumes_mime_types: Vec<String>,
    #[serde(default)]
    pub produces_mime_types: Vec<String>,
}

impl Capability {
    pub fn kind(&self) -> &str {
        if self.kind.is_empty() { "vulnerability" } else { &self.kind }
    }
}

/// `GET /api/v1/metadata`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AdapterMetadata {
    #[serde(default)]
    pub scanner: ScannerInfo,
    #[serde(default)]
    pub capabilities: Vec<Capability>,
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

impl AdapterMetadata {
    /// The report MIME type berth asks this adapter for, for `scan_type`
    /// (`vulnerability` or `sbom`): Harbor's preference order, or `None`
    /// when the adapter cannot do it.
    pub fn report_mime(&self, scan_type: &str) -> Option<&'static str> {
        let produces = |mime: &str| {
            self.capabilities.iter().any(|c| c.kind() == scan_type && c.produces_mime_types.iter().any(|m| m == mime))
        };
        match scan_type {
            "sbom" => produces(SBOM_REPORT_MIME).then_some(SBOM_REPORT_MIME),
            _ => [SECURITY_REPORT_MIME, HARBOR_REPORT_MIME].into_iter().find(|m| produces(m)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryAccess {
    pub url: String,
    /// `Bearer <token>` (or `Basic …`) for pulling the artifact.
    pub authorization: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactRef {
    pub repository: String,
    pub digest: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tag: String,
    pub mime_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnabledCapability {
    #[serde(rename = "type")]
    pub kind: String,
    pub produces_mime_types: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<serde_json::Value>,
}

/// `POST /api/v1/scan`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanRequest {
    pub registry: RegistryAccess,
    pub artifact: ArtifactRef,
    /// v1.2: what to produce (v1.1 adapters ignore it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub enabled_capabilities: Vec<EnabledCapability>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanResponse {
    pub id: String,
}

/// Harbor's severities, from the least to the most severe.
pub const SEVERITIES: [&str; 6] = ["None", "Unknown", "Low", "Medium", "High", "Critical"];

/// The rank of a severity name in [`SEVERITIES`] (an unknown name ranks as
/// `Unknown`).
pub fn severity_rank(name: &str) -> usize {
    SEVERITIES.iter().position(|s| s.eq_ignore_ascii_case(name)).unwrap_or(1)
}

/// One finding of a Harbor vulnerability report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Vulnerability {
    pub id: String,
    #[serde(default)]
    pub package: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub fix_version: String,
    #[serde(default)]
    pub severity: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub links: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_cvss: Option<serde_json::Value>,
    #[serde(default)]
    pub cwe_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_attributes: Option<serde_json::Value>,
}

/// Harbor's vulnerability report (both vulnerability MIME types share it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct VulnerabilityReport {
    #[serde(default)]
    pub generated_at: String,
    #[serde(default)]
    pub artifact: Option<serde_json::Value>,
    #[serde(default)]
    pub scanner: Option<ScannerInfo>,
    #[serde(default)]
    pub severity: String,
    #[serde(default)]
    pub vulnerabilities: Vec<Vulnerability>,
}

/// Counts of a report by severity, Harbor's `VulnerabilitySummary`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Summary {
    pub total: u64,
    pub fixable: u64,
    /// Findings per severity name (only the severities found).
    pub summary: BTreeMap<String, u64>,
}

impl VulnerabilityReport {
    /// The report's counts and its overall severity (the worst finding's,
    /// `None` when nothing was found).
    pub fn summarize(&self) -> (Summary, String) {
        let mut s = Summary::default();
        let mut worst = 0;
        for v in &self.vulnerabilities {
            s.total += 1;
            if !v.fix_version.is_empty() {
                s.fixable += 1;
            }
            let rank = severity_rank(&v.severity);
            worst = worst.max(rank);
            *s.summary.entry(SEVERITIES[rank].to_owned()).or_default() += 1;
        }
        (s, SEVERITIES[worst].to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_counts_by_severity_and_takes_the_worst() {
        let v = |sev: &str, fix: &str| Vulnerability {
            id: "CVE-1".into(),
            severity: sev.into(),
            fix_version: fix.into(),
            ..Default::default()
        };
        let report = VulnerabilityReport {
            vulnerabilities: vec![v("High", "1.2"), v("low", ""), v("weird", ""), v("High", "")],
            ..Default::default()
        };
        let (s, worst) = report.summarize();
        assert_eq!((s.total, s.fixable, worst.as_str()), (4, 1, "High"));
        assert_eq!(s.summary.get("High"), Some(&2));
        assert_eq!(s.summary.get("Low"), Some(&1));
        assert_eq!(s.summary.get("Unknown"), Some(&1));
        assert_eq!(VulnerabilityReport::default().summarize().1, "None");
    }

    #[test]
    fn report_mime_follows_harbor_preference() {
        let mut m = AdapterMetadata::default();
        assert_eq!(m.report_mime("vulnerability"), None);
        m.capabilities.push(Capability {
            kind: String::new(),
            consumes_mime_types: vec![CONSUMED_MIMES[0].into()],
            produces_mime_types: vec![HARBOR_REPORT_MIME.into(), SECURITY_REPORT_MIME.into()],
        });
        assert_eq!(m.report_mime("vulnerability"), Some(SECURITY_REPORT_MIME));
        assert_eq!(m.report_mime("sbom"), None);
    }
}

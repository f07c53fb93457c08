//! CVE export (F8, Harbor's "scan data export"): the vulnerabilities of a
//! project's artifacts, as the project's scanner reported them, as one CSV
//! file for the user who asked.
//!
//! An export is an execution of the export job ([`crate::jobs::cve_export`],
//! vendor type `SCAN_DATA_EXPORT`, vendor id the user's); each task writes
//! the rows of one repository page as an object
//! (`exports/<execution>/<task>.csv`), and the download joins the parts in
//! order under one header. The file is the requester's only, and is
//! removed once downloaded, as Harbor does.

use serde::{Deserialize, Serialize};

use super::paging::PageRequest;
use super::{Registry, ServiceError, ServiceResult};
use crate::blob::keys as blob_keys;
use crate::oci::RepoName;

/// The vendor type (and job kind) of exports, Harbor's.
pub const SCAN_DATA_EXPORT: &str = "SCAN_DATA_EXPORT";
/// The CSV's header.
pub const CSV_HEADER: &str = "Project,Repository,Digest,Tags,CVE,Package,Current Version,Fixed in version,Severity,CVSS3 Score,CWE Ids,Description\n";

/// What to export (Harbor's `ScanDataExportRequest`, projects checked to be
/// one).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportFilter {
    pub project: String,
    /// Repository name patterns (doublestar, comma-separated); empty: all.
    #[serde(default)]
    pub repositories: String,
    /// Tag patterns (comma-separated); empty: every artifact, tagged or not.
    #[serde(default)]
    pub tags: String,
    /// CVE ids (comma-separated); empty: all.
    #[serde(default)]
    pub cve_ids: String,
    /// Label ids an artifact must carry one of; empty: any.
    #[serde(default)]
    pub labels: Vec<i64>,
}

fn patterns(list: &str) -> Vec<&str> {
    list.split(',').map(str::trim).filter(|p| !p.is_empty()).collect()
}

/// One CSV field, quoted when it must be (RFC 4180).
fn field(v: &str) -> String {
    if v.contains([',', '"', '\n', '\r']) { format!("\"{}\"", v.replace('"', "\"\"")) } else { v.to_owned() }
}

impl Registry {
    /// The CSV rows of one page of a repository's artifacts (from `after`),
    /// and where the next page starts.
    pub async fn export_rows(
        &self,
        f: &ExportFilter,
        repo: &RepoName,
        after: Option<String>,
        page: usize,
    ) -> ServiceResult<(String, u64, Option<String>)> {
        let scanner = self.project_scanner(&f.project).await?;
        let filter = super::artifacts::ArtifactFilter { all: true, ..Default::default() };
        let req = PageRequest { after, ..PageRequest::first(page) };
        let listing = match self.list_artifacts(repo, &filter, &req).await {
            Ok(l) => l,
            Err(ServiceError::NotFound(_) | ServiceError::NameUnknown(_)) => return Ok((String::new(), 0, None)),
            Err(e) => return Err(e),
        };
        let (tags, cves) = (patterns(&f.tags), patterns(&f.cve_ids));
        let mut out = String::new();
        let mut rows = 0;
        for a in &listing.items {
            let names: Vec<&str> = a.tags.iter().map(|t| t.name.as_str()).collect();
            if !tags.is_empty() && !names.iter().any(|n| tags.iter().any(|p| super::selectors::matches(p, n))) {
                continue;
            }
            if !f.labels.is_empty() {
                let ids = self.artifact_label_ids(repo, &a.digest, a.push_stamp).await?;
                if !ids.iter().any(|i| f.labels.contains(i)) {
                    continue;
                }
            }
            let Some(scan) = self.artifact_scan(scanner.as_ref(), &a.digest, super::scans::VULNERABILITY).await? else {
                continue;
            };
            let Some(report) = self.scan_report(&scan).await? else { continue };
            for v in report["vulnerabilities"].as_array().into_iter().flatten() {
                let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
                let id = s("id");
                if !cves.is_empty() && !cves.contains(&id.as_str()) {
                    continue;
                }
                let score = v.pointer("/preferred_cvss/score_v3").and_then(serde_json::Value::as_f64);
                let cwes: Vec<&str> =
                    v["cwe_ids"].as_array().into_iter().flatten().filter_map(serde_json::Value::as_str).collect();
                let cells = [
                    f.project.clone(),
                    repo.to_string(),
                    a.digest.to_string(),
                    names.join(" "),
                    id,
                    s("package"),
                    s("version"),
                    s("fix_version"),
                    s("severity"),
                    score.map(|x| x.to_string()).unwrap_or_default(),
                    cwes.join(" "),
                    s("description"),
                ];
                out.push_str(&cells.iter().map(|c| field(c)).collect::<Vec<_>>().join(","));
                out.push('\n');
                rows += 1;
            }
        }
        let next = listing.next.filter(|n| !n.is_empty() && listing.items.len() == page);
        Ok((out, rows, next))
    }

    /// Whether `repo` is one the export covers.
    pub fn export_covers(f: &ExportFilter, repo: &str) -> bool {
        let short = repo.split_once('/').map_or(repo, |(_, r)| r);
        let pats = patterns(&f.repositories);
        pats.is_empty() || pats.iter().any(|p| super::selectors::matches(p, short))
    }

    /// Stores a part of an export.
    pub async fn put_export_part(&self, execution: i64, task: i64, rows: String) -> ServiceResult<()> {
        self.blobs.put_bytes(&blob_keys::export_part(execution, task), rows.into()).await?;
        Ok(())
    }

    /// The keys of an export's parts, in order.
    pub async fn export_parts(&self, execution: i64) -> ServiceResult<Vec<String>> {
        let prefix = blob_keys::export_prefix(execution);
        let mut keys = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.blobs.list(&prefix, after.as_deref(), 1000).await?;
            keys.extend(page.objects.into_iter().map(|o| o.key));
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        keys.sort();
        Ok(keys)
    }

    /// Whether an export has a file to download (one listing of one key).
    pub async fn export_has_file(&self, execution: i64) -> ServiceResult<bool> {
        let page = self.blobs.list(&blob_keys::export_prefix(execution), None, 1).await?;
        Ok(!page.objects.is_empty())
    }

    /// The export's file: the header and every part, joined.
    pub async fn export_file(&self, execution: i64) -> ServiceResult<Option<bytes::Bytes>> {
        let parts = self.export_parts(execution).await?;
        if parts.is_empty() {
            return Ok(None);
        }
        let mut out = bytes::BytesMut::from(CSV_HEADER.as_bytes());
        for k in &parts {
            out.extend_from_slice(&self.blobs.get_bytes(k).await?);
        }
        Ok(Some(out.freeze()))
    }

    /// Removes an export's file (once downloaded).
    pub async fn delete_export(&self, execution: i64) -> ServiceResult<()> {
        for k in self.export_parts(execution).await? {
            self.blobs.delete(&k).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_when_they_must_be() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\"\nnow"), "\"say \"\"hi\"\"\nnow\"");
    }
}

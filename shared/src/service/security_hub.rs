//! The security hub (F8): the registry's vulnerabilities at a glance —
//! Harbor's `/security/summary` and `/security/vul` — kept beside the scans
//! instead of computed from every report on each request.
//!
//! When a vulnerability scan ends (or an artifact goes), the event's
//! consumer calls [`Registry::sync_security_hub`] for the digest: for each
//! scanner's scan of it, the hub holds one entry per scanned digest (its
//! counts by severity), that scanner's totals (a counter per figure, moved
//! by the difference an entry makes, in the entry's transaction), the
//! digests by danger (for the most dangerous artifacts) and the findings
//! (one small item per digest, CVE, package and version, written to three
//! partitions sorted by CVSS score: all of them, the digest's, the CVE's),
//! with each CVE's description once. A summary is then one query of the
//! totals and two short ones; a page of findings is a query of the
//! partition its filter names (a CVE's, the digests of a repository), in
//! score order.
//!
//! Syncing is idempotent and safe to repeat after a crash: the new
//! findings are written first (the same finding keeps its key), findings
//! of other reports of the digest are removed, and then the entry and
//! totals switch in one transaction conditional on the entry the sync
//! read. A digest is shown in the repository its scan was asked in, and
//! leaves the hub when it is deleted from there.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::paging::{Listing, Match, PageRequest, Source, walk};
use super::record::{from_item, to_item};
use super::scans::{ScanRecord, VULNERABILITY};
use super::{Registry, ServiceError, ServiceResult};
use crate::jobs::Status;
use crate::meta::keys::{self, Key};
use crate::meta::{Condition, ErrorKind, Item, MAX_TRANSACTION_WRITES, Query, Write};
use crate::oci::{Digest, Reference, RepoName};
use crate::scanner::{SEVERITIES, Vulnerability, VulnerabilityReport, severity_rank};

/// The totals the hub keeps per scanner: findings by severity, fixable
/// findings, all findings, scanned digests.
const FIGURES: [&str; 9] = ["critical", "high", "medium", "low", "none", "unknown", "fixable", "total", "scanned"];
/// How many dangerous CVEs and artifacts a summary names (Harbor's 5).
const TOP: usize = 5;
/// How far down the score order a summary looks for distinct critical CVEs.
const DANGEROUS_CVE_WINDOW: usize = 500;
/// A package name or version longer than this is cut in a finding's key
/// (the table's sort keys are at most 1 KiB).
const KEY_PART_MAX: usize = 200;

/// A scanned digest as the hub counts it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct HubEntry {
    report_id: String,
    digest: String,
    repository: String,
    project_id: i64,
    /// Findings by severity, in [`FIGURES`] order (critical … unknown).
    counts: [u64; 6],
    fixable: u64,
    total: u64,
}

impl HubEntry {
    fn figure(&self, name: &str) -> i64 {
        let n = match name {
            "fixable" => self.fixable,
            "total" => self.total,
            "scanned" => 1,
            _ => FIGURES.iter().position(|f| *f == name).and_then(|i| self.counts.get(i)).copied().unwrap_or(0),
        };
        i64::try_from(n).unwrap_or(i64::MAX)
    }

    fn danger(&self) -> [u64; 4] {
        [self.counts[0], self.counts[1], self.counts[2], self.counts[3]]
    }
}

/// One finding of an artifact, as the hub lists it (Harbor's
/// `VulnerabilityItem` without the description, kept once per CVE).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub report_id: String,
    pub project_id: i64,
    pub repository: String,
    pub digest: String,
    pub cve_id: String,
    pub severity: String,
    /// CVSS v3 base score.
    pub score: Option<f64>,
    pub package: String,
    pub version: String,
    pub fixed_version: String,
}

/// A CVE's words, kept once for all its findings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CveInfo {
    pub description: String,
    pub links: Vec<String>,
}

/// Harbor's `DangerousArtifact`.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct DangerousArtifact {
    pub project_id: i64,
    pub repository_name: String,
    pub digest: String,
    pub critical_cnt: u64,
    pub high_cnt: u64,
    pub medium_cnt: u64,
}

/// Harbor's `DangerousCVE`.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct DangerousCve {
    pub cve_id: String,
    pub severity: String,
    pub cvss_score_v3: Option<f64>,
    pub desc: String,
    pub package: String,
    pub version: String,
}

/// Harbor's `SecuritySummary`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, schemars::JsonSchema)]
pub struct SecuritySummary {
    pub critical_cnt: u64,
    pub high_cnt: u64,
    pub medium_cnt: u64,
    pub low_cnt: u64,
    pub none_cnt: u64,
    pub unknown_cnt: u64,
    pub total_vuls: u64,
    pub scanned_cnt: u64,
    pub total_artifact: u64,
    pub fixable_cnt: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dangerous_cves: Option<Vec<DangerousCve>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dangerous_artifacts: Option<Vec<DangerousArtifact>>,
}

/// The filters of `/security/vul`, from Harbor's `q`.
#[derive(Debug, Clone, Default)]
pub struct FindingFilter {
    pub cve_id: Option<String>,
    /// Inclusive bounds of the CVSS v3 score.
    pub score: Option<(Option<f64>, Option<f64>)>,
    pub severity: Option<Match>,
    pub repository: Option<String>,
    pub project_id: Option<i64>,
    pub package: Option<String>,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl FindingFilter {
    fn keeps(&self, f: &Finding) -> bool {
        let score_ok = match self.score {
            None => true,
            Some((min, max)) => f.score.is_some_and(|s| min.is_none_or(|m| s >= m) && max.is_none_or(|m| s <= m)),
        };
        score_ok
            && self.cve_id.as_ref().is_none_or(|c| *c == f.cve_id)
            && self.severity.as_ref().is_none_or(|m| m.matches(&f.severity))
            && self.repository.as_ref().is_none_or(|r| *r == f.repository)
            && self.project_id.is_none_or(|p| p == f.project_id)
            && self.package.as_ref().is_none_or(|p| *p == f.package)
            && self.digest.as_ref().is_none_or(|d| *d == f.digest)
    }
}

/// A finding with its CVE's words and, when asked, its artifact's tags.
#[derive(Debug, Clone, PartialEq)]
pub struct FindingView {
    pub finding: Finding,
    pub cve: CveInfo,
    pub tags: Vec<String>,
}

/// A finding's CVSS v3 base score, from the report's preferred CVSS.
fn score_of(v: &Vulnerability) -> Option<f64> {
    let cvss = v.preferred_cvss.as_ref()?;
    let s = cvss.get("score_v3")?;
    s.as_f64().or_else(|| s.as_str()?.parse().ok()).filter(|s| (0.0..=10.0).contains(s))
}

fn tenths(score: Option<f64>) -> Option<u32> {
    // Within 0..=10 (score_of), so the cast is exact.
    score.map(|s| (s * 10.0).round() as u32)
}

fn cut(s: &str) -> &str {
    if s.len() <= KEY_PART_MAX {
        return s;
    }
    let mut end = KEY_PART_MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn finding_key(f: &Finding) -> ServiceResult<String> {
    let digest: Digest = f.digest.parse().map_err(|_| super::record::corrupt("security hub finding"))?;
    Ok(keys::hub_finding(tenths(f.score), &digest, &f.cve_id, cut(&f.package), cut(&f.version)))
}

/// The three partitions a finding is kept in.
fn finding_partitions(registration: &str, f: &Finding) -> ServiceResult<[String; 3]> {
    let digest: Digest = f.digest.parse().map_err(|_| super::record::corrupt("security hub finding"))?;
    Ok([
        keys::hub_findings(registration),
        keys::hub_digest_findings(registration, &digest),
        keys::hub_cve_findings(registration, &f.cve_id),
    ])
}

async fn run_in_chunks(meta: &dyn crate::meta::MetaStore, writes: Vec<Write>) -> ServiceResult<()> {
    let mut writes = writes.into_iter().peekable();
    while writes.peek().is_some() {
        let chunk: Vec<Write> = writes.by_ref().take(MAX_TRANSACTION_WRITES).collect();
        meta.transact(chunk).await?;
    }
    Ok(())
}

impl Registry {
    /// Brings the security hub up to date with the vulnerability scans of
    /// `digest`: a successful scan's findings in, an unsuccessful or
    /// replaced one's out, and out too once the digest is gone from the
    /// repository its scan was asked in. Safe to call again at any time.
    pub async fn sync_security_hub(&self, digest: &Digest) -> ServiceResult<()> {
        for record in self.scans_of(digest).await? {
            if record.scan_type != VULNERABILITY || !record.children.is_empty() {
                continue; // an index's scan is its children's, each synced on its own
            }
            // Two syncs of one digest at once: the loser reads the winner's
            // entry and finds nothing left to do, or does the rest.
            for attempt in 0..3 {
                match self.sync_hub_entry(&record).await {
                    Err(ServiceError::Conflict(_)) if attempt < 2 => continue,
                    other => other?,
                }
                break;
            }
        }
        Ok(())
    }

    /// Removes from the hub the digests scanned in `repo` (a repository
    /// being deleted).
    pub async fn unindex_repository(&self, repo: &RepoName) -> ServiceResult<()> {
        for scanner in self.scanners().await? {
            let pk = keys::hub_repository(&scanner.uuid, repo.as_str());
            loop {
                let page = self.meta.query(Query::table(pk.clone(), "").keys_only().limit(100)).await?;
                if page.items.is_empty() {
                    break;
                }
                for item in page.items {
                    if let Ok(d) = item.sk.parse::<Digest>() {
                        self.sync_security_hub(&d).await?;
                    }
                    // A digest whose entry names another repository now.
                    self.meta.delete(&item.pk, &item.sk, Condition::Always).await?;
                }
            }
        }
        Ok(())
    }

    async fn sync_hub_entry(&self, record: &ScanRecord) -> ServiceResult<()> {
        let reg = record.registration.as_str();
        let digest = record.digest()?;
        let (epk, esk) = keys::hub_entry(reg, &digest);
        let old: Option<HubEntry> = self.meta.get(&epk, &esk).await?.map(|i| from_item(i, "hub entry")).transpose()?;
        let wanted = record.status == Status::Success && self.still_in(&record.repository, &digest).await?;
        if wanted && old.as_ref().is_some_and(|o| o.report_id == record.report_id) {
            return Ok(());
        }
        if !wanted && old.is_none() {
            return Ok(());
        }
        let new = if wanted { self.hub_findings_of(record).await? } else { None };
        let (entry, findings, cves) = match new {
            Some((e, f, c)) => (Some(e), f, c),
            None if old.is_none() => return Ok(()),
            None => (None, Vec::new(), Vec::new()),
        };
        let keep = entry.as_ref().map(|e| e.report_id.as_str()).unwrap_or_default().to_owned();

        // 1. The new findings (and their CVEs' words).
        let mut writes = Vec::new();
        for (cve, info) in cves {
            let (pk, sk) = keys::hub_cve(reg, &cve);
            writes.push(Write::Put { item: to_item(pk, sk, &info, "hub cve")?, cond: Condition::Always });
        }
        for f in &findings {
            let sk = finding_key(f)?;
            for pk in finding_partitions(reg, f)? {
                writes.push(Write::Put { item: to_item(pk, sk.clone(), f, "hub finding")?, cond: Condition::Always });
            }
        }
        run_in_chunks(self.meta.as_ref(), writes).await?;

        // 2. Findings of any other report of this digest.
        let dpk = keys::hub_digest_findings(reg, &digest);
        let mut cursor = None;
        loop {
            let mut q = Query::table(dpk.clone(), "").limit(200);
            q.cursor = cursor.take();
            let page = self.meta.query(q).await?;
            let mut writes = Vec::new();
            for item in page.items {
                if item.str("report_id") == Some(keep.as_str()) {
                    continue;
                }
                let f: Finding = from_item(item, "hub finding")?;
                let sk = finding_key(&f)?;
                for pk in finding_partitions(reg, &f)? {
                    writes.push(Write::Delete { pk, sk: sk.clone(), cond: Condition::Always });
                }
            }
            run_in_chunks(self.meta.as_ref(), writes).await?;
            match page.next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }

        // 3. The entry and the totals, together.
        let mut writes = Vec::new();
        let cond = match &old {
            Some(o) => Condition::equals("report_id", o.report_id.clone()),
            None => Condition::NotExists,
        };
        match &entry {
            Some(e) => writes.push(Write::Put { item: to_item(epk, esk, e, "hub entry")?, cond }),
            None => writes.push(Write::Delete { pk: epk, sk: esk, cond }),
        }
        for figure in FIGURES {
            let delta = entry.as_ref().map_or(0, |e| e.figure(figure)) - old.as_ref().map_or(0, |o| o.figure(figure));
            if delta != 0 {
                let (pk, sk) = keys::hub_total(reg, figure);
                writes.push(Write::Add { pk, sk, attr: keys::attr::COUNT.to_owned(), delta, cond: Condition::Always });
            }
        }
        let danger = |e: &HubEntry| keys::hub_danger(reg, e.danger(), &digest);
        let repo_entry = |e: &HubEntry| keys::hub_repository_digest(reg, &e.repository, &digest);
        let mut gone: Vec<Key> = Vec::new();
        if let Some(o) = &old {
            gone.push(danger(o));
            gone.push(repo_entry(o));
        }
        if let Some(e) = &entry {
            let (pk, sk) = danger(e);
            let item = Item::new(pk, sk).with("digest", e.digest.clone());
            gone.retain(|k| (k.0.as_str(), k.1.as_str()) != (item.pk.as_str(), item.sk.as_str()));
            writes.push(Write::Put { item, cond: Condition::Always });
            let (pk, sk) = repo_entry(e);
            gone.retain(|k| (k.0.as_str(), k.1.as_str()) != (pk.as_str(), sk.as_str()));
            writes.push(Write::Put { item: Item::new(pk, sk), cond: Condition::Always });
        }
        for (pk, sk) in gone {
            writes.push(Write::Delete { pk, sk, cond: Condition::Always });
        }
        match self.meta.transact(writes).await {
            Ok(()) => Ok(()),
            Err(e) if e.is(ErrorKind::ConditionFailed) => {
                Err(ServiceError::Conflict(format!("the security hub entry of {digest} changed meanwhile")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Whether the artifact is still in `repository`.
    async fn still_in(&self, repository: &str, digest: &Digest) -> ServiceResult<bool> {
        let Ok(repo) = RepoName::parse(repository) else { return Ok(false) };
        match self.artifact(&repo, &Reference::Digest(digest.clone())).await {
            Ok(_) => Ok(true),
            Err(ServiceError::ManifestUnknown(_) | ServiceError::NotFound(_) | ServiceError::NameUnknown(_)) => {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// The entry, findings and CVE words of a successful scan (`None`
    /// when its report is gone).
    #[allow(clippy::type_complexity)]
    async fn hub_findings_of(
        &self,
        record: &ScanRecord,
    ) -> ServiceResult<Option<(HubEntry, Vec<Finding>, Vec<(String, CveInfo)>)>> {
        let Some(body) = self.scan_report(record).await? else { return Ok(None) };
        let report: VulnerabilityReport =
            serde_json::from_value(body).map_err(|_| super::record::corrupt("scan report"))?;
        let project = RepoName::parse(&record.repository).map_err(|_| super::record::corrupt("scan"))?;
        let project_id = match self.project(&super::projects::ProjectRef::Name(project.project().to_owned())).await {
            Ok(p) => p.project_id,
            Err(ServiceError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut entry = HubEntry {
            report_id: record.report_id.clone(),
            digest: record.digest.clone(),
            repository: record.repository.clone(),
            project_id,
            ..HubEntry::default()
        };
        // One finding per CVE, package and version (a report may repeat one
        // for several files of a package).
        let mut findings: BTreeMap<(String, String, String), Finding> = BTreeMap::new();
        let mut cves: HashMap<String, CveInfo> = HashMap::new();
        for v in &report.vulnerabilities {
            if v.id.is_empty() {
                continue;
            }
            let severity = SEVERITIES[severity_rank(&v.severity)].to_owned();
            let f = Finding {
                report_id: record.report_id.clone(),
                project_id,
                repository: record.repository.clone(),
                digest: record.digest.clone(),
                cve_id: v.id.clone(),
                severity,
                score: score_of(v),
                package: v.package.clone(),
                version: v.version.clone(),
                fixed_version: v.fix_version.clone(),
            };
            findings
                .entry((cut(&v.id).to_owned(), cut(&v.package).to_owned(), cut(&v.version).to_owned()))
                .or_insert(f);
            cves.entry(v.id.clone())
                .or_insert_with(|| CveInfo { description: v.description.clone(), links: v.links.clone() });
        }
        for f in findings.values() {
            entry.total += 1;
            if !f.fixed_version.is_empty() {
                entry.fixable += 1;
            }
            // FIGURES order: critical, high, medium, low, none, unknown.
            let slot = match f.severity.as_str() {
                "Critical" => 0,
                "High" => 1,
                "Medium" => 2,
                "Low" => 3,
                "None" => 4,
                _ => 5,
            };
            entry.counts[slot] += 1;
        }
        Ok(Some((entry, findings.into_values().collect(), cves.into_iter().collect())))
    }

    /// The scanner the hub shows: the system's default.
    async fn hub_scanner(&self) -> ServiceResult<Option<String>> {
        Ok(self.default_scanner().await?.map(|s| s.uuid))
    }

    /// Harbor's `/security/summary`, for the default scanner.
    pub async fn security_summary(&self, with_cves: bool, with_artifacts: bool) -> ServiceResult<SecuritySummary> {
        let mut s = SecuritySummary { total_artifact: self.visible_artifact_count().await?, ..Default::default() };
        let Some(reg) = self.hub_scanner().await? else {
            s.dangerous_cves = with_cves.then(Vec::new);
            s.dangerous_artifacts = with_artifacts.then(Vec::new);
            return Ok(s);
        };
        let (pk, prefix) = keys::hub_totals(&reg);
        let totals = self.meta.query(Query::table(pk, prefix).limit(FIGURES.len() + 1)).await?.items;
        for item in totals {
            let n = u64::try_from(item.i64(keys::attr::COUNT).unwrap_or(0)).unwrap_or(0);
            match item.sk.strip_prefix(prefix).unwrap_or_default() {
                "critical" => s.critical_cnt = n,
                "high" => s.high_cnt = n,
                "medium" => s.medium_cnt = n,
                "low" => s.low_cnt = n,
                "none" => s.none_cnt = n,
                "unknown" => s.unknown_cnt = n,
                "fixable" => s.fixable_cnt = n,
                "total" => s.total_vuls = n,
                "scanned" => s.scanned_cnt = n,
                _ => {}
            }
        }
        if with_artifacts {
            let page = self.meta.query(Query::table(keys::hub_dangers(&reg), "").limit(TOP)).await?;
            let mut out = Vec::new();
            for item in page.items {
                let Some(d) = item.str("digest").and_then(|d| d.parse::<Digest>().ok()) else { continue };
                let (pk, sk) = keys::hub_entry(&reg, &d);
                if let Some(e) = self.meta.get(&pk, &sk).await? {
                    let e: HubEntry = from_item(e, "hub entry")?;
                    if e.counts[0] + e.counts[1] + e.counts[2] == 0 {
                        continue; // Harbor names only artifacts with medium findings or worse
                    }
                    out.push(DangerousArtifact {
                        project_id: e.project_id,
                        repository_name: e.repository,
                        digest: e.digest,
                        critical_cnt: e.counts[0],
                        high_cnt: e.counts[1],
                        medium_cnt: e.counts[2],
                    });
                }
            }
            s.dangerous_artifacts = Some(out);
        }
        if with_cves {
            s.dangerous_cves = Some(self.dangerous_cves(&reg).await?);
        }
        Ok(s)
    }

    /// The critical CVEs with the highest scores, each once.
    async fn dangerous_cves(&self, reg: &str) -> ServiceResult<Vec<DangerousCve>> {
        let page = self.meta.query(Query::table(keys::hub_findings(reg), "").limit(DANGEROUS_CVE_WINDOW)).await?;
        let mut out: Vec<DangerousCve> = Vec::new();
        for item in page.items {
            let f: Finding = from_item(item, "hub finding")?;
            if f.severity != "Critical" || f.score.is_none() || out.iter().any(|c| c.cve_id == f.cve_id) {
                continue;
            }
            let info = self.cve_info(reg, &f.cve_id).await?;
            out.push(DangerousCve {
                cve_id: f.cve_id,
                severity: f.severity,
                cvss_score_v3: f.score,
                desc: info.description,
                package: f.package,
                version: f.version,
            });
            if out.len() == TOP {
                break;
            }
        }
        Ok(out)
    }

    async fn cve_info(&self, reg: &str, cve: &str) -> ServiceResult<CveInfo> {
        let (pk, sk) = keys::hub_cve(reg, cve);
        Ok(self.meta.get(&pk, &sk).await?.map(|i| from_item(i, "hub cve")).transpose()?.unwrap_or_default())
    }

    /// Artifacts listings show (not an index's children or accessories),
    /// over every project.
    async fn visible_artifact_count(&self) -> ServiceResult<u64> {
        let mut total = 0u64;
        let mut cursor = None;
        loop {
            let mut q = Query::table(keys::PROJECTS, "").keys_only().limit(500);
            q.cursor = cursor.take();
            let page = self.meta.query(q).await?;
            for p in &page.items {
                let all = self.count(keys::Counted::ProjectArtifacts(&p.sk)).await?;
                let hidden = self.count(keys::Counted::ProjectHiddenArtifacts(&p.sk)).await?;
                total += all.saturating_sub(hidden);
            }
            match page.next {
                Some(c) => cursor = Some(c),
                None => return Ok(total),
            }
        }
    }

    /// Harbor's `/security/vul`: findings of the default scanner, the
    /// highest CVSS score first. `cve_id`, `digest` and `repository_name`
    /// (with `tag`) are served from their partitions; the other filters
    /// test each finding of the partition chosen. A `tag` needs the
    /// `repository_name` it is a tag of.
    pub async fn list_findings(
        &self,
        filter: &FindingFilter,
        req: &PageRequest,
        with_tags: bool,
    ) -> ServiceResult<Listing<FindingView>> {
        let Some(reg) = self.hub_scanner().await? else { return Ok(Listing::of_all(Vec::new(), req)) };
        let mut filter = filter.clone();
        if let Some(tag) = filter.tag.clone() {
            let Some(repo) = filter.repository.as_deref() else {
                return Err(ServiceError::Invalid("the tag filter needs a repository_name filter".to_owned()));
            };
            let repo = RepoName::parse(repo).map_err(|e| ServiceError::Invalid(e.to_string()))?;
            let tag = tag.parse().map_err(|_| ServiceError::Invalid(format!("invalid tag {tag}")))?;
            match self.artifact(&repo, &Reference::Tag(tag)).await {
                Ok(a) => {
                    if filter.digest.as_ref().is_some_and(|d| *d != a.digest.to_string()) {
                        return Ok(Listing::of_all(Vec::new(), req));
                    }
                    filter.digest = Some(a.digest.to_string());
                }
                Err(ServiceError::ManifestUnknown(_) | ServiceError::NotFound(_) | ServiceError::NameUnknown(_)) => {
                    return Ok(Listing::of_all(Vec::new(), req));
                }
                Err(e) => return Err(e),
            }
        }
        let sources = if let Some(d) = &filter.digest {
            let Ok(d) = d.parse::<Digest>() else { return Ok(Listing::of_all(Vec::new(), req)) };
            vec![Source::query(Query::table(keys::hub_digest_findings(&reg, &d), ""))]
        } else if let Some(cve) = &filter.cve_id {
            vec![Source::query(Query::table(keys::hub_cve_findings(&reg, cve), ""))]
        } else if let Some(repo) = &filter.repository {
            // The scanned digests of one repository (the first thousand).
            let digests =
                self.meta.query(Query::table(keys::hub_repository(&reg, repo), "").keys_only().limit(1000)).await?;
            digests
                .items
                .into_iter()
                .filter_map(|i| i.sk.parse::<Digest>().ok())
                .map(|d| Source::query(Query::table(keys::hub_digest_findings(&reg, &d), "")))
                .collect()
        } else {
            vec![Source::query(Query::table(keys::hub_findings(&reg), ""))]
        };
        let unfiltered = filter.score.is_none()
            && filter.severity.is_none()
            && filter.project_id.is_none()
            && filter.package.is_none()
            && filter.digest.is_none()
            && filter.cve_id.is_none()
            && filter.repository.is_none();
        let keep = |item: &Item| from_item::<Finding>(item.clone(), "hub finding").is_ok_and(|f| filter.keeps(&f));
        let (items, next, counted) = walk(self.meta.as_ref(), sources, req, !unfiltered, keep).await?;
        let total = match counted {
            Some(n) => n,
            None => {
                let (pk, sk) = keys::hub_total(&reg, "total");
                u64::try_from(self.meta.get(&pk, &sk).await?.and_then(|i| i.i64(keys::attr::COUNT)).unwrap_or(0))
                    .unwrap_or(0)
            }
        };
        let mut cves: HashMap<String, CveInfo> = HashMap::new();
        let mut tags: HashMap<(String, String), Vec<String>> = HashMap::new();
        let mut views = Vec::with_capacity(items.len());
        for item in items {
            let finding: Finding = from_item(item, "hub finding")?;
            if !cves.contains_key(&finding.cve_id) {
                cves.insert(finding.cve_id.clone(), self.cve_info(&reg, &finding.cve_id).await?);
            }
            let cve = cves.get(&finding.cve_id).cloned().unwrap_or_default();
            let mut artifact_tags = Vec::new();
            if with_tags {
                let key = (finding.repository.clone(), finding.digest.clone());
                if !tags.contains_key(&key) {
                    tags.insert(key.clone(), self.tag_names(&finding.repository, &finding.digest).await?);
                }
                artifact_tags = tags.get(&key).cloned().unwrap_or_default();
            }
            views.push(FindingView { finding, cve, tags: artifact_tags });
        }
        Ok(Listing { items: views, total, next })
    }

    async fn tag_names(&self, repository: &str, digest: &str) -> ServiceResult<Vec<String>> {
        let (Ok(repo), Ok(digest)) = (RepoName::parse(repository), digest.parse::<Digest>()) else {
            return Ok(Vec::new());
        };
        match self.artifact(&repo, &Reference::Digest(digest)).await {
            Ok(a) => Ok(a.tags.into_iter().map(|t| t.name.to_string()).collect()),
            Err(ServiceError::ManifestUnknown(_) | ServiceError::NotFound(_) | ServiceError::NameUnknown(_)) => {
                Ok(Vec::new())
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_come_from_the_preferred_cvss() {
        let v = |cvss: serde_json::Value| Vulnerability { preferred_cvss: Some(cvss), ..Default::default() };
        assert_eq!(score_of(&v(serde_json::json!({"score_v3": 9.8}))), Some(9.8));
        assert_eq!(score_of(&v(serde_json::json!({"score_v3": "7.5"}))), Some(7.5));
        assert_eq!(score_of(&v(serde_json::json!({"score_v3": 11.0}))), None, "not a CVSS score");
        assert_eq!(score_of(&Vulnerability::default()), None);
        assert_eq!(tenths(Some(9.8)), Some(98));
    }

    #[test]
    fn findings_sort_by_score_then_unscored_last() {
        let d: Digest = format!("sha256:{}", "a".repeat(64)).parse().unwrap_or_else(|_| unreachable!());
        let high = keys::hub_finding(Some(98), &d, "CVE-1", "p", "1");
        let low = keys::hub_finding(Some(31), &d, "CVE-2", "p", "1");
        let none = keys::hub_finding(None, &d, "CVE-3", "p", "1");
        let ten = keys::hub_finding(Some(100), &d, "CVE-4", "p", "1");
        let mut all = vec![none.clone(), low.clone(), high.clone(), ten.clone()];
        all.sort();
        assert_eq!(all, vec![ten, high, low, none]);
    }

    #[test]
    fn danger_sorts_more_critical_first() {
        let d: Digest = format!("sha256:{}", "b".repeat(64)).parse().unwrap_or_else(|_| unreachable!());
        let a = keys::hub_danger("r", [2, 0, 0, 0], &d).1;
        let b = keys::hub_danger("r", [1, 50, 0, 0], &d).1;
        let c = keys::hub_danger("r", [1, 49, 99, 0], &d).1;
        assert!(a < b && b < c);
    }

    #[test]
    fn long_key_parts_are_cut_on_a_char_boundary() {
        let s = "é".repeat(150);
        assert!(cut(&s).len() <= KEY_PART_MAX && s.starts_with(cut(&s)));
        assert_eq!(cut("short"), "short");
    }
}

//! Scans (F8): an artifact's scan by a registered scanner, its state and its
//! report.
//!
//! A scan is a record per digest, scan type and scanner (`SCAN#<digest>`,
//! Harbor keeps reports per digest too), naming the execution of the scan
//! job ([`crate::jobs::scan`]) that makes it; the report itself, as the
//! scanner made it, is an object (`reports/<report id>`), and the record
//! keeps its summary for listings. Starting a scan starts the execution
//! first and then records the scan, so the job never finds a record that
//! points nowhere; a scan whose job ended without finishing the record (a
//! crash, the attempts ran out) shows its job's status. An index's scan
//! is its children's: the job scans each child, and the index's report
//! is theirs together.

use serde::{Deserialize, Serialize};

use super::artifacts::{ArtifactInfo, stable_id};
use super::record::{from_item, to_item};
use super::scanners::Registration;
use super::{Registry, ServiceError, ServiceResult};
use crate::events::{Event, EventKind, now_ms};
use crate::jobs::{Job, Status};
use crate::meta::keys;
use crate::meta::{Condition, ErrorKind, Query, Write};
use crate::oci::{Digest, RepoName};
use crate::scanner::{ScannerInfo, Summary, VulnerabilityReport, severity_rank};

/// The vendor type (and job kind) of scans, Harbor's.
pub const IMAGE_SCAN: &str = "IMAGE_SCAN";
/// The vendor type (and job kind) of scan-all runs, Harbor's.
pub const SCAN_ALL: &str = "SCAN_ALL";
pub const VULNERABILITY: &str = "vulnerability";
pub const SBOM: &str = "sbom";
/// The scans a digest may have: one per scanner registration (at most 100)
/// and scan type.
const SCANS_PER_DIGEST: usize = 200;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanRecord {
    pub report_id: String,
    pub digest: String,
    /// The repository the scan was asked in (the scanner pulls from it).
    pub repository: String,
    /// The scanner registration's uuid.
    pub registration: String,
    /// [`VULNERABILITY`] or [`SBOM`].
    pub scan_type: String,
    /// The report's MIME type (what listings key the overview by).
    pub mime_type: String,
    pub status: Status,
    #[serde(default)]
    pub status_message: String,
    pub execution: i64,
    /// Unix milliseconds.
    pub start_time: i64,
    #[serde(default)]
    pub end_time: i64,
    #[serde(default)]
    pub severity: String,
    #[serde(default)]
    pub summary: Option<Summary>,
    #[serde(default)]
    pub scanner: ScannerInfo,
    /// The adapter's id of the scan request, once submitted.
    #[serde(default)]
    pub request_id: String,
    /// An index's children (their scans make its report).
    #[serde(default)]
    pub children: Vec<String>,
    /// An SBOM scan's accessory.
    #[serde(default)]
    pub sbom_digest: String,
    /// The scan-all run that started it (0: none).
    #[serde(default)]
    pub batch: i64,
}

impl ScanRecord {
    pub fn digest(&self) -> ServiceResult<Digest> {
        self.digest.parse().map_err(|_| super::record::corrupt("scan"))
    }
}

/// A scan as Harbor shows it in listings and event payloads, its
/// `NativeReportSummary`.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ReportSummary {
    pub report_id: String,
    pub scan_status: String,
    pub severity: String,
    /// Seconds.
    pub duration: i64,
    pub summary: Option<Summary>,
    pub start_time: String,
    pub end_time: Option<String>,
    pub complete_percent: i64,
    pub scanner: ScannerInfo,
}

impl ReportSummary {
    pub fn of(r: ScanRecord) -> Self {
        let end = (r.end_time > 0).then_some(r.end_time);
        Self {
            report_id: r.report_id,
            scan_status: r.status.name().to_owned(),
            severity: if r.status == Status::Success { r.severity } else { String::new() },
            duration: end.map_or(0, |e| (e - r.start_time).max(0) / 1000),
            summary: r.summary,
            start_time: super::record::rfc3339_ms(r.start_time),
            end_time: end.map(super::record::rfc3339_ms),
            complete_percent: if r.status.is_final() { 100 } else { 0 },
            scanner: r.scanner,
        }
    }
}

/// How a scan ended.
#[derive(Debug)]
pub enum Outcome {
    /// The report's body as the scanner made it, and what it says.
    Report {
        body: bytes::Bytes,
        report: Box<VulnerabilityReport>,
    },
    /// An SBOM report's body, and the document in it (attached to the
    /// artifact as its SBOM accessory).
    Sbom {
        body: bytes::Bytes,
        document: bytes::Bytes,
        media_type: String,
        scanner: Option<ScannerInfo>,
    },
    Failed(String),
    Stopped,
}

/// How a scan is started: by what (`MANUAL`, `EVENT`, `SCHEDULE`), at most
/// once for a marker (an event's), for a scan-all run (0: none).
#[derive(Debug, Clone, Default)]
pub struct ScanStart<'a> {
    pub trigger: &'a str,
    pub once: Option<keys::Key>,
    pub batch: i64,
}

/// What a scan task is asked to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanTask {
    pub report_id: String,
    pub repository: String,
    pub digest: String,
    pub registration: String,
    pub scan_type: String,
}

/// Whether Harbor scans artifacts of this kind: images, not accessories
/// (signatures, SBOMs: hidden without being an index's child), charts or
/// other artifacts.
pub fn scannable(a: &ArtifactInfo) -> bool {
    a.kind() == "IMAGE" && !(a.hidden && a.parents == 0)
}

impl Registry {
    /// The stored record of a scan, as stored.
    pub async fn scan_record(
        &self,
        digest: &Digest,
        scan_type: &str,
        registration: &str,
    ) -> ServiceResult<Option<ScanRecord>> {
        let (pk, sk) = keys::scan(digest, scan_type, registration);
        self.meta.get(&pk, &sk).await?.map(|i| from_item(i, "scan")).transpose()
    }

    /// Every scan of a digest (by any scanner, of any type).
    pub async fn scans_of(&self, digest: &Digest) -> ServiceResult<Vec<ScanRecord>> {
        // At most one per scanner registration and scan type.
        let page = self.meta.query(Query::table(keys::scans_of(digest), "").limit(SCANS_PER_DIGEST)).await?;
        page.items.into_iter().map(|i| from_item(i, "scan")).collect()
    }

    /// Starts a scan of `artifact` in `repo` by `scanner`: `Conflict` while
    /// one of the same type by the same scanner runs. With `once` (an
    /// event's marker), at most once for it: `None` when it was started
    /// already.
    pub async fn start_scan(
        &self,
        job: &dyn Job,
        repo: &RepoName,
        artifact: &ArtifactInfo,
        scanner: &Registration,
        scan_type: &str,
        start: ScanStart<'_>,
    ) -> ServiceResult<Option<ScanRecord>> {
        let ScanStart { trigger, once, batch } = start;
        if !scannable(artifact) {
            return Err(ServiceError::Invalid(format!(
                "artifact {} is of type {}: only images are scanned",
                artifact.digest,
                artifact.kind()
            )));
        }
        if !scanner.supports(scan_type) {
            return Err(ServiceError::Invalid(format!("scanner {} does not support {scan_type} scans", scanner.name)));
        }
        let mime = scanner.metadata.as_ref().and_then(|m| m.report_mime(scan_type)).unwrap_or(match scan_type {
            SBOM => crate::scanner::SBOM_REPORT_MIME,
            _ => crate::scanner::HARBOR_REPORT_MIME,
        });
        let old = self.scan_record(&artifact.digest, scan_type, &scanner.uuid).await?;
        if let Some(old) = &old {
            let now = self.effective_scan(old.clone()).await?;
            if !now.status.is_final() {
                return Err(ServiceError::Conflict(format!(
                    "a {scan_type} scan of {} is under way (report {})",
                    artifact.digest, old.report_id
                )));
            }
        }
        let report_id = uuid::Uuid::new_v4().to_string();
        let task = ScanTask {
            report_id: report_id.clone(),
            repository: repo.to_string(),
            digest: artifact.digest.to_string(),
            registration: scanner.uuid.clone(),
            scan_type: scan_type.to_owned(),
        };
        let payload = serde_json::to_value(&task).map_err(|e| ServiceError::Invalid(e.to_string()))?;
        let mut attrs = serde_json::Map::new();
        attrs.insert("artifact".into(), format!("{repo}@{}", artifact.digest).into());
        attrs.insert("report_id".into(), report_id.clone().into());
        attrs.insert("scan_type".into(), scan_type.into());
        let vendor = stable_id(&format!("{repo}@{}", artifact.digest));
        let execution = match once {
            Some(once) => match self.start_execution_once(job, vendor, trigger, attrs, vec![payload], once).await? {
                Some(id) => id,
                None => return Ok(None),
            },
            None => self.start_execution(job, vendor, trigger, attrs, vec![payload]).await?,
        };
        let record = ScanRecord {
            report_id,
            digest: artifact.digest.to_string(),
            repository: repo.to_string(),
            registration: scanner.uuid.clone(),
            scan_type: scan_type.to_owned(),
            mime_type: mime.to_owned(),
            status: Status::Pending,
            status_message: String::new(),
            execution,
            start_time: now_ms(),
            end_time: 0,
            severity: String::new(),
            summary: None,
            scanner: scanner.metadata.as_ref().map(|m| m.scanner.clone()).unwrap_or_default(),
            request_id: String::new(),
            children: Vec::new(),
            // The SBOM a new one will replace.
            sbom_digest: old.as_ref().map(|o| o.sbom_digest.clone()).unwrap_or_default(),
            batch,
        };
        let cond = match &old {
            Some(o) => Condition::equals("report_id", o.report_id.clone()),
            None => Condition::NotExists,
        };
        let (pk, sk) = keys::scan(&artifact.digest, scan_type, &scanner.uuid);
        let mut writes = vec![Write::Put { item: to_item(pk, sk, &record, "scan")?, cond }];
        if batch != 0 {
            // Counted with the scan itself.
            let (tpk, tsk) = keys::scan_all_tally(batch, "Started");
            writes.push(Write::Add { pk: tpk, sk: tsk, attr: "count".to_owned(), delta: 1, cond: Condition::Always });
        }
        match self.meta.transact(writes).await {
            Ok(()) => Ok(Some(record)),
            Err(e) if e.is(ErrorKind::ConditionFailed) => {
                // Another scan started at the same moment: it wins.
                self.stop_execution(execution).await?;
                Err(ServiceError::Conflict(format!("a {scan_type} scan of {} is under way", artifact.digest)))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Scans a pushed artifact when its project says so (`auto_scan`, and
    /// `auto_sbom_generation` for an SBOM), once per push event. Artifacts that are not scanned (signatures, SBOMs,
    /// charts) and projects without a scanner are passed over; so is an
    /// artifact being scanned already.
    pub async fn scan_on_push(
        &self,
        job: &dyn Job,
        repo: &RepoName,
        digest: &Digest,
        event_id: &str,
    ) -> ServiceResult<()> {
        let project = self.project(&super::projects::ProjectRef::Name(repo.project().to_owned())).await?;
        let on = |k: &str| project.metadata.get(k).is_some_and(|v| v == "true");
        if !on("auto_scan") && !on("auto_sbom_generation") {
            return Ok(());
        }
        let artifact = match self.artifact(repo, &crate::oci::Reference::Digest(digest.clone())).await {
            Ok(a) => a,
            Err(ServiceError::ManifestUnknown(_) | ServiceError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let Some(scanner) = self.project_scanner(&project.name).await? else { return Ok(()) };
        if !scannable(&artifact) {
            return Ok(());
        }
        for (scan_type, setting) in [(VULNERABILITY, "auto_scan"), (SBOM, "auto_sbom_generation")] {
            if project.metadata.get(setting).is_none_or(|v| v != "true") || !scanner.supports(scan_type) {
                continue;
            }
            let once = keys::event_handled(event_id, &format!("scan-{scan_type}"));
            let start = ScanStart { trigger: "EVENT", once: Some(once), batch: 0 };
            match self.start_scan(job, repo, &artifact, &scanner, scan_type, start).await {
                Ok(_) | Err(ServiceError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Starts a vulnerability scan of `artifact` for scan-all run `batch`,
    /// at most once per run: `false` when this run started it already.
    pub async fn start_batch_scan(
        &self,
        job: &dyn Job,
        repo: &RepoName,
        artifact: &ArtifactInfo,
        scanner: &Registration,
        batch: i64,
        trigger: &str,
    ) -> ServiceResult<bool> {
        let once = keys::event_handled(&format!("scanall-{batch}"), &format!("{repo}@{}", artifact.digest));
        let start = ScanStart { trigger, once: Some(once), batch };
        Ok(self.start_scan(job, repo, artifact, scanner, VULNERABILITY, start).await?.is_some())
    }

    /// A scan-all run's tallies: scans started, and ended by status.
    pub async fn scan_all_tallies(&self, batch: i64) -> ServiceResult<std::collections::BTreeMap<String, u64>> {
        let (pk, prefix) = keys::scan_all_tallies(batch);
        // `Started` and one per status.
        let items = self.meta.query(Query::table(pk, prefix).limit(16)).await?.items;
        Ok(items
            .into_iter()
            .filter_map(|i| {
                let n = u64::try_from(i.i64("count")?).ok()?;
                Some((i.sk.strip_prefix(prefix)?.to_owned(), n))
            })
            .collect())
    }

    /// Stops a scan-all run: it plans nothing more, and each scan it
    /// started ends Stopped when its task next looks (a scan checks its
    /// run as well as itself), so stopping costs one write however many
    /// scans the run started.
    pub async fn stop_scan_all(&self, batch: i64) -> ServiceResult<()> {
        self.stop_execution(batch).await
    }

    /// Whether a scan was asked to stop: its own execution, or the scan-all
    /// run that started it.
    pub async fn scan_stop_requested(&self, record: &ScanRecord, task: i64) -> ServiceResult<bool> {
        if self.stop_requested(record.execution, task).await? {
            return Ok(true);
        }
        Ok(record.batch != 0 && self.execution_stop_requested(record.batch).await?)
    }

    /// Replaces a scan's record, unless another scan replaced it meanwhile
    /// (`false` then).
    pub async fn update_scan(&self, record: &ScanRecord) -> ServiceResult<bool> {
        let digest = record.digest()?;
        let (pk, sk) = keys::scan(&digest, &record.scan_type, &record.registration);
        let cond = Condition::equals("report_id", record.report_id.clone());
        match self.meta.put(to_item(pk, sk, record, "scan")?, cond).await {
            Ok(()) => Ok(true),
            Err(e) if e.is(ErrorKind::ConditionFailed) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Records a child scan of an index's scan (same execution, scanner and
    /// type), replacing a finished one; a child scan under way is left to
    /// finish.
    pub async fn start_child_scan(&self, parent: &ScanRecord, child: &Digest) -> ServiceResult<Option<ScanRecord>> {
        if let Some(old) = self.scan_record(child, &parent.scan_type, &parent.registration).await? {
            if old.execution == parent.execution {
                return Ok(Some(old)); // this task ran before
            }
            if !self.effective_scan(old.clone()).await?.status.is_final() {
                return Ok(None);
            }
        }
        let record = ScanRecord {
            report_id: uuid::Uuid::new_v4().to_string(),
            digest: child.to_string(),
            status: Status::Pending,
            start_time: now_ms(),
            children: Vec::new(),
            sbom_digest: String::new(),
            batch: 0,
            ..parent.clone()
        };
        let (pk, sk) = keys::scan(child, &record.scan_type, &record.registration);
        self.meta.put(to_item(pk, sk, &record, "scan")?, Condition::Always).await?;
        Ok(Some(record))
    }

    /// Ends a scan: stores its report and records the outcome with its
    /// event (`SCANNING_COMPLETED`, `_FAILED` or `_STOPPED`). Nothing
    /// happens to a scan that ended already or was replaced.
    pub async fn finish_scan(&self, record: &ScanRecord, outcome: Outcome) -> ServiceResult<()> {
        let Some(current) = self.scan_record(&record.digest()?, &record.scan_type, &record.registration).await? else {
            return Ok(());
        };
        if current.report_id != record.report_id || current.status.is_final() {
            return Ok(());
        }
        let mut done = current.clone();
        done.end_time = now_ms();
        let kind = match outcome {
            Outcome::Report { body, report } => {
                self.blobs.put_bytes(&crate::blob::keys::report(&record.report_id), body).await?;
                let (summary, severity) = report.summarize();
                done.status = Status::Success;
                done.summary = Some(summary);
                done.severity = severity;
                if let Some(s) = report.scanner {
                    done.scanner = s;
                }
                EventKind::ScanningCompleted
            }
            Outcome::Sbom { body, document, media_type, scanner } => {
                let repo = RepoName::parse(&record.repository).map_err(|_| super::record::corrupt("scan"))?;
                let subject = self.artifact(&repo, &crate::oci::Reference::Digest(record.digest()?)).await?;
                let created = super::record::rfc3339_ms(now_ms());
                let previous = Some(current.sbom_digest.as_str()).filter(|d| !d.is_empty());
                let digest = self.attach_sbom(&repo, &subject, document, &media_type, &created, previous).await?;
                self.blobs.put_bytes(&crate::blob::keys::report(&record.report_id), body).await?;
                done.status = Status::Success;
                done.sbom_digest = digest.to_string();
                if let Some(s) = scanner {
                    done.scanner = s;
                }
                EventKind::ScanningCompleted
            }
            Outcome::Failed(message) => {
                done.status = Status::Error;
                done.status_message = message;
                EventKind::ScanningFailed
            }
            Outcome::Stopped => {
                done.status = Status::Stopped;
                EventKind::ScanningStopped
            }
        };
        let (pk, sk) = keys::scan(&record.digest()?, &record.scan_type, &record.registration);
        let put = Write::Put {
            item: to_item(pk, sk, &done, "scan")?,
            cond: Condition::equals("report_id", record.report_id.clone()),
        };
        let mut writes = vec![put];
        if done.batch != 0 {
            let (tpk, tsk) = keys::scan_all_tally(done.batch, done.status.name());
            writes.push(Write::Add { pk: tpk, sk: tsk, attr: "count".to_owned(), delta: 1, cond: Condition::Always });
        }
        let mut event = Event::artifact(kind, self.actor(), &record.repository, &record.digest);
        event.detail = Some(match &done.summary {
            Some(s) => format!("{} scan: {} ({} vulnerabilities)", record.scan_type, done.status.name(), s.total),
            None => format!("{} scan: {} {}", record.scan_type, done.status.name(), done.status_message),
        });
        match self.commit_with_events(writes, vec![event]).await {
            Ok(()) => Ok(()),
            Err(e) if e.is(ErrorKind::ConditionFailed) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// A scan as the API shows it: a record still under way whose job has
    /// ended shows the job's end; an index's shows its children's scans
    /// together.
    pub async fn effective_scan(&self, mut r: ScanRecord) -> ServiceResult<ScanRecord> {
        if !r.children.is_empty() {
            return Box::pin(self.index_scan(r)).await;
        }
        if r.status.is_final() {
            return Ok(r);
        }
        let tasks = self.tasks_of(r.execution).await?;
        let job = Status::of_tasks(tasks.iter().map(|t| t.status));
        if job.is_final() && !tasks.is_empty() {
            r.status = if job == Status::Success { Status::Error } else { job };
            r.status_message = tasks
                .iter()
                .find(|t| t.status == Status::Error)
                .map_or_else(|| "the scan ended without a report".to_owned(), |t| t.status_message.clone());
            r.end_time = tasks.iter().map(|t| t.end_time).max().unwrap_or(0);
        } else if r.status == Status::Pending && tasks.iter().any(|t| t.status == Status::Running) {
            r.status = Status::Running;
        }
        Ok(r)
    }

    async fn index_scan(&self, mut r: ScanRecord) -> ServiceResult<ScanRecord> {
        let mut statuses = Vec::new();
        let mut summary = Summary::default();
        let mut worst = 0;
        let mut end = 0;
        for child in &r.children {
            let Ok(digest) = child.parse::<Digest>() else { continue };
            let Some(c) = self.scan_record(&digest, &r.scan_type, &r.registration).await? else {
                statuses.push(Status::Pending);
                continue;
            };
            let c = Box::pin(self.effective_scan(c)).await?;
            statuses.push(c.status);
            end = end.max(c.end_time);
            if let Some(s) = &c.summary {
                summary.total += s.total;
                summary.fixable += s.fixable;
                for (k, n) in &s.summary {
                    *summary.summary.entry(k.clone()).or_default() += n;
                }
                worst = worst.max(severity_rank(&c.severity));
            }
            if c.scanner != ScannerInfo::default() {
                r.scanner = c.scanner;
            }
        }
        r.status = Status::of_tasks(statuses);
        if r.status.is_final() {
            r.end_time = end;
            r.summary = Some(summary);
            r.severity = crate::scanner::SEVERITIES[worst].to_owned();
        }
        Ok(r)
    }

    /// The scan listings show for an artifact of `project`: the latest of
    /// the project's scanner, of `scan_type`.
    pub async fn artifact_scan(
        &self,
        scanner: Option<&Registration>,
        digest: &Digest,
        scan_type: &str,
    ) -> ServiceResult<Option<ScanRecord>> {
        let Some(scanner) = scanner else { return Ok(None) };
        match self.scan_record(digest, scan_type, &scanner.uuid).await? {
            Some(r) => Ok(Some(self.effective_scan(r).await?)),
            None => Ok(None),
        }
    }

    /// A finished scan's report as its scanner made it (an index's: its
    /// children's findings together). `None` until there is one.
    pub async fn scan_report(&self, r: &ScanRecord) -> ServiceResult<Option<serde_json::Value>> {
        if !r.children.is_empty() {
            let mut merged: Option<serde_json::Value> = None;
            let mut findings = Vec::new();
            for child in &r.children {
                let Ok(digest) = child.parse::<Digest>() else { continue };
                let Some(c) = self.scan_record(&digest, &r.scan_type, &r.registration).await? else { continue };
                if let Some(serde_json::Value::Object(mut report)) = Box::pin(self.scan_report(&c)).await? {
                    if let Some(serde_json::Value::Array(v)) = report.remove("vulnerabilities") {
                        findings.extend(v);
                    }
                    merged.get_or_insert(serde_json::Value::Object(report));
                }
            }
            let Some(serde_json::Value::Object(mut m)) = merged else { return Ok(None) };
            m.insert("severity".into(), r.severity.clone().into());
            m.insert("vulnerabilities".into(), serde_json::Value::Array(findings));
            return Ok(Some(serde_json::Value::Object(m)));
        }
        if r.status != Status::Success {
            return Ok(None);
        }
        match self.blobs.get_bytes(&crate::blob::keys::report(&r.report_id)).await {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|_| super::record::corrupt("scan report")),
            Err(e) if e.is(ErrorKind::NotFound) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The log of a scan's job (an index's: its children's too).
    pub async fn scan_log(&self, r: &ScanRecord) -> ServiceResult<String> {
        let mut out = String::new();
        for t in self.tasks_of(r.execution).await? {
            out.push_str(&self.task_log(r.execution, t.id).await?);
        }
        Ok(out)
    }

    /// Asks a scan under way to stop.
    pub async fn stop_scan(&self, r: &ScanRecord) -> ServiceResult<()> {
        self.stop_execution(r.execution).await?;
        let now = self.effective_scan(r.clone()).await?;
        if now.status == Status::Pending || now.status == Status::Stopped {
            // No worker has it: it ends here.
            self.finish_scan(r, Outcome::Stopped).await?;
        }
        Ok(())
    }
}

//! The vulnerability database: OSV records imported into a compact index.
//!
//! Input is OSV JSON as osv.dev publishes it: a directory tree of `*.json`
//! files or a zip of them (one per ecosystem), each file one record or a
//! JSON array of records. Only what matching and reporting need is kept:
//! per affected package its ecosystem, name, `ECOSYSTEM`/`SEMVER` ranges and
//! explicit versions (`GIT` ranges are dropped), and per record its id,
//! aliases, texts, severities, references and CWE ids. Records whose
//! packages are all in ecosystems this scanner cannot order are skipped.
//!
//! Input is hostile: a file that is not an OSV record is skipped and counted
//! in the [`ImportSummary`], never a panic; the total bytes read and the
//! size of one file are bounded by [`Limits`].
//!
//! The index is stored as gzipped JSON with a format version
//! ([`VulnDb::to_bytes`]); the lookup table is rebuilt on load.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::inventory::python::normalize_name;
use crate::version::Scheme;
use crate::{Limits, ScanError};

/// Bumped whenever the stored layout changes; older bytes are refused.
pub const FORMAT_VERSION: u32 = 1;

/// One OSV record, reduced to what a scan reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vulnerability {
    pub id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// `upstream` ids (Debian and Alpine records name their CVE there).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upstream: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
    /// `severity` entries as `(type, score)`: `("CVSS_V3", "CVSS:3.1/...")`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub severity: Vec<(String, String)>,
    /// A severity word from `database_specific` or `ecosystem_specific`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity_word: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cwe_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified: Option<String>,
    pub affected: Vec<Affected>,
}

/// One `affected` entry: a package in an ecosystem and where it is hit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Affected {
    /// As OSV writes it: `Debian:12`, `Alpine:v3.19`, `PyPI`.
    pub ecosystem: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranges: Vec<Vec<Event>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity_word: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub severity: Vec<(String, String)>,
}

/// An event of an `ECOSYSTEM` or `SEMVER` range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Introduced(String),
    Fixed(String),
    LastAffected(String),
    Limit(String),
}

/// What an import read and what it left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportSummary {
    /// Records found in the input, imported or not.
    pub records_read: u64,
    pub records_imported: u64,
    /// Skipped files or records by reason.
    pub skipped: BTreeMap<String, u64>,
    /// Imported records per ecosystem name as OSV writes it.
    pub ecosystems: BTreeMap<String, u64>,
    /// The newest `modified` of an imported record: when the database was
    /// last updated.
    pub updated_at: Option<String>,
}

/// The imported database, ready for [`crate::find_vulnerabilities`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct VulnDb {
    format_version: u32,
    summary: ImportSummary,
    vulns: Vec<Vulnerability>,
    /// (ecosystem base, package name) → (record, affected entry).
    #[serde(skip)]
    index: HashMap<(String, String), Vec<(u32, u32)>>,
}

impl VulnDb {
    /// Imports a directory tree of OSV JSON, a zip of it, or one JSON file.
    pub fn import(path: &Path, limits: &Limits) -> Result<(VulnDb, ImportSummary), ScanError> {
        let mut builder = VulnDbBuilder::new(limits);
        builder.add_path(path)?;
        Ok(builder.finish())
    }

    /// Builds a database from records in memory, for callers that fetched
    /// them elsewhere and for tests.
    pub fn from_records(records: Vec<Vulnerability>) -> VulnDb {
        let mut summary = ImportSummary { records_read: records.len() as u64, ..ImportSummary::default() };
        for record in &records {
            note_imported(&mut summary, record);
        }
        VulnDb::new(summary, records)
    }

    fn new(summary: ImportSummary, mut vulns: Vec<Vulnerability>) -> VulnDb {
        vulns.sort_by(|a, b| a.id.cmp(&b.id));
        let mut db = VulnDb { format_version: FORMAT_VERSION, summary, vulns, index: HashMap::new() };
        db.build_index();
        db
    }

    fn build_index(&mut self) {
        let mut index: HashMap<(String, String), Vec<(u32, u32)>> = HashMap::new();
        for (v, vuln) in self.vulns.iter().enumerate() {
            for (a, affected) in vuln.affected.iter().enumerate() {
                let base = ecosystem_base(&affected.ecosystem);
                let key = (base.to_owned(), package_key(base, &affected.name));
                index.entry(key).or_default().push((v as u32, a as u32));
            }
        }
        self.index = index;
    }

    pub fn summary(&self) -> &ImportSummary {
        &self.summary
    }

    pub fn len(&self) -> usize {
        self.vulns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.vulns.is_empty()
    }

    /// The records and affected entries naming a package in an ecosystem
    /// (by its base name: `Debian`, `PyPI`); names are compared as the
    /// ecosystem compares them.
    pub fn lookup(&self, ecosystem_base: &str, name: &str) -> impl Iterator<Item = (&Vulnerability, &Affected)> {
        let key = (ecosystem_base.to_owned(), package_key(ecosystem_base, name));
        self.index.get(&key).into_iter().flatten().filter_map(|&(v, a)| {
            let vuln = self.vulns.get(v as usize)?;
            Some((vuln, vuln.affected.get(a as usize)?))
        })
    }

    /// The stored form: gzipped JSON with [`FORMAT_VERSION`].
    pub fn to_bytes(&self) -> Result<Vec<u8>, ScanError> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        serde_json::to_writer(&mut encoder, self).map_err(|e| ScanError::malformed(format!("database: {e}")))?;
        encoder.flush()?;
        Ok(encoder.finish()?)
    }

    /// Reads what [`VulnDb::to_bytes`] wrote, decompressing at most
    /// `limits.max_db_bytes`.
    pub fn from_bytes(bytes: &[u8], limits: &Limits) -> Result<VulnDb, ScanError> {
        let mut json = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .take(limits.max_db_bytes.saturating_add(1))
            .read_to_end(&mut json)
            .map_err(|e| ScanError::malformed(format!("database: {e}")))?;
        if json.len() as u64 > limits.max_db_bytes {
            return Err(ScanError::limit(format!("database larger than {} bytes", limits.max_db_bytes)));
        }
        let mut db: VulnDb =
            serde_json::from_slice(&json).map_err(|e| ScanError::malformed(format!("database: {e}")))?;
        if db.format_version != FORMAT_VERSION {
            return Err(ScanError::malformed(format!(
                "database format {} (this scanner reads {FORMAT_VERSION})",
                db.format_version
            )));
        }
        db.build_index();
        Ok(db)
    }
}

/// `Debian` of `Debian:12`.
pub(crate) fn ecosystem_base(ecosystem: &str) -> &str {
    ecosystem.split(':').next().unwrap_or(ecosystem)
}

/// A package name as its ecosystem compares names.
fn package_key(base: &str, name: &str) -> String {
    if base == "PyPI" { normalize_name(name) } else { name.to_owned() }
}

fn note_imported(summary: &mut ImportSummary, record: &Vulnerability) {
    summary.records_imported += 1;
    let mut seen: Vec<&str> = record.affected.iter().map(|a| a.ecosystem.as_str()).collect();
    seen.sort_unstable();
    seen.dedup();
    for ecosystem in seen {
        *summary.ecosystems.entry(ecosystem.to_owned()).or_default() += 1;
    }
    if let Some(modified) = &record.modified
        && summary.updated_at.as_ref().is_none_or(|newest| modified > newest)
    {
        summary.updated_at = Some(modified.clone());
    }
}

/// Collects OSV records from several sources (osv.dev publishes one zip per
/// ecosystem) into one [`VulnDb`]. A record id seen twice keeps the copy
/// modified last.
#[derive(Debug)]
pub struct VulnDbBuilder {
    limits: Limits,
    bytes_read: u64,
    records: BTreeMap<String, Vulnerability>,
    summary: ImportSummary,
}

impl VulnDbBuilder {
    pub fn new(limits: &Limits) -> Self {
        VulnDbBuilder { limits: *limits, bytes_read: 0, records: BTreeMap::new(), summary: ImportSummary::default() }
    }

    /// A directory (walked for `*.json`, links not followed), a `.zip`, or
    /// one JSON file.
    pub fn add_path(&mut self, path: &Path) -> Result<(), ScanError> {
        let meta = std::fs::symlink_metadata(path)?;
        if meta.is_dir() {
            self.add_dir(path)
        } else if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("zip")) {
            self.add_zip(std::fs::File::open(path)?)
        } else {
            self.add_reader(std::fs::File::open(path)?)
        }
    }

    fn add_dir(&mut self, dir: &Path) -> Result<(), ScanError> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let kind = entry.file_type()?;
            let path = entry.path();
            if kind.is_dir() {
                self.add_dir(&path)?;
            } else if kind.is_file() && path.extension().is_some_and(|e| e == "json") {
                self.add_reader(std::fs::File::open(&path)?)?;
            }
        }
        Ok(())
    }

    /// A zip of OSV JSON files, as osv.dev's `<ecosystem>/all.zip`.
    pub fn add_zip<R: Read + Seek>(&mut self, reader: R) -> Result<(), ScanError> {
        let malformed = |e: zip::result::ZipError| ScanError::malformed(format!("zip: {e}"));
        let mut archive = zip::ZipArchive::new(reader).map_err(malformed)?;
        for i in 0..archive.len() {
            let file = archive.by_index(i).map_err(malformed)?;
            if !file.is_file() || !file.name().ends_with(".json") {
                continue;
            }
            self.add_reader(file)?;
        }
        Ok(())
    }

    /// One JSON file: a record or an array of records.
    pub fn add_reader<R: Read>(&mut self, reader: R) -> Result<(), ScanError> {
        let mut bytes = Vec::new();
        reader.take(self.limits.max_record_bytes.saturating_add(1)).read_to_end(&mut bytes)?;
        self.bytes_read += bytes.len() as u64;
        if self.bytes_read > self.limits.max_db_bytes {
            return Err(ScanError::limit(format!("database input larger than {} bytes", self.limits.max_db_bytes)));
        }
        if bytes.len() as u64 > self.limits.max_record_bytes {
            self.skip("file too large");
            return Ok(());
        }
        self.add_json(&bytes);
        Ok(())
    }

    /// The bytes of one JSON file: a record or an array of records.
    pub fn add_json(&mut self, bytes: &[u8]) {
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Array(records)) => {
                for record in records {
                    self.add_record(record);
                }
            }
            Ok(record) => self.add_record(record),
            Err(_) => self.skip("invalid JSON"),
        }
    }

    fn skip(&mut self, reason: &str) {
        *self.summary.skipped.entry(reason.to_owned()).or_default() += 1;
    }

    fn add_record(&mut self, json: Value) {
        self.summary.records_read += 1;
        let record = match convert(json) {
            Ok(record) => record,
            Err(reason) => return self.skip(reason),
        };
        match self.records.get(&record.id) {
            Some(existing) if existing.modified >= record.modified => self.skip("duplicate id"),
            _ => {
                if self.records.insert(record.id.clone(), record).is_some() {
                    self.skip("duplicate id");
                }
            }
        }
    }

    pub fn finish(mut self) -> (VulnDb, ImportSummary) {
        let records: Vec<Vulnerability> = std::mem::take(&mut self.records).into_values().collect();
        for record in &records {
            note_imported(&mut self.summary, record);
        }
        let db = VulnDb::new(self.summary.clone(), records);
        (db, self.summary)
    }
}

/// OSV's record as far as this scanner reads it. Unknown fields are
/// ignored; a field of the wrong type fails the record.
#[derive(Deserialize)]
struct RawRecord {
    id: String,
    #[serde(default)]
    modified: Option<String>,
    #[serde(default)]
    withdrawn: Option<String>,
    #[serde(default)]
    aliases: Option<Vec<String>>,
    #[serde(default)]
    upstream: Option<Vec<String>>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    details: Option<String>,
    #[serde(default)]
    severity: Option<Vec<RawSeverity>>,
    #[serde(default)]
    affected: Option<Vec<RawAffected>>,
    #[serde(default)]
    references: Option<Vec<RawReference>>,
    #[serde(default)]
    database_specific: Option<Value>,
}

#[derive(Deserialize)]
struct RawSeverity {
    #[serde(rename = "type")]
    kind: String,
    score: String,
}

#[derive(Deserialize)]
struct RawAffected {
    #[serde(default)]
    package: Option<RawPackage>,
    #[serde(default)]
    severity: Option<Vec<RawSeverity>>,
    #[serde(default)]
    ranges: Option<Vec<RawRange>>,
    #[serde(default)]
    versions: Option<Vec<String>>,
    #[serde(default)]
    ecosystem_specific: Option<Value>,
    #[serde(default)]
    database_specific: Option<Value>,
}

#[derive(Deserialize)]
struct RawPackage {
    ecosystem: String,
    name: String,
}

#[derive(Deserialize)]
struct RawRange {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    events: Vec<BTreeMap<String, Value>>,
}

#[derive(Deserialize)]
struct RawReference {
    #[serde(default)]
    url: Option<String>,
}

fn convert(json: Value) -> Result<Vulnerability, &'static str> {
    let raw: RawRecord = serde_json::from_value(json).map_err(|_| "not an OSV record")?;
    if raw.id.is_empty() || raw.id.len() > 256 {
        return Err("not an OSV record");
    }
    if raw.withdrawn.is_some() {
        return Err("withdrawn");
    }
    let mut affected = Vec::new();
    let mut cwe_ids = cwes(raw.database_specific.as_ref());
    for entry in raw.affected.unwrap_or_default() {
        let Some(package) = entry.package else { continue };
        if Scheme::for_ecosystem(&package.ecosystem).is_none() || package.name.is_empty() {
            continue;
        }
        let mut ranges = Vec::new();
        for range in entry.ranges.unwrap_or_default() {
            if range.kind != "ECOSYSTEM" && range.kind != "SEMVER" {
                continue;
            }
            let events: Vec<Event> = range
                .events
                .iter()
                .flat_map(|event| event.iter())
                .filter_map(|(kind, version)| {
                    let version = version.as_str()?.to_owned();
                    match kind.as_str() {
                        "introduced" => Some(Event::Introduced(version)),
                        "fixed" => Some(Event::Fixed(version)),
                        "last_affected" => Some(Event::LastAffected(version)),
                        "limit" => Some(Event::Limit(version)),
                        _ => None,
                    }
                })
                .collect();
            if events.iter().any(|e| matches!(e, Event::Introduced(_))) {
                ranges.push(events);
            }
        }
        let versions = entry.versions.unwrap_or_default();
        if ranges.is_empty() && versions.is_empty() {
            continue;
        }
        cwe_ids.extend(cwes(entry.database_specific.as_ref()));
        let severity_word = severity_word(entry.ecosystem_specific.as_ref())
            .or_else(|| severity_word(entry.database_specific.as_ref()));
        affected.push(Affected {
            ecosystem: package.ecosystem,
            name: package.name,
            ranges,
            versions,
            severity_word,
            severity: scores(entry.severity),
        });
    }
    if affected.is_empty() {
        return Err("no supported ecosystem");
    }
    cwe_ids.sort();
    cwe_ids.dedup();
    let mut severity = scores(raw.severity);
    let mut severity_word = severity_word(raw.database_specific.as_ref());
    // Ubuntu writes its priority as a severity of type "Ubuntu".
    if let Some(pos) = severity.iter().position(|(kind, _)| kind == "Ubuntu") {
        let (_, word) = severity.remove(pos);
        severity_word = severity_word.or(Some(word));
    }
    Ok(Vulnerability {
        id: raw.id,
        aliases: raw.aliases.unwrap_or_default(),
        upstream: raw.upstream.unwrap_or_default(),
        summary: raw.summary.filter(|s| !s.is_empty()),
        details: raw.details.filter(|s| !s.is_empty()),
        severity,
        severity_word,
        references: raw.references.unwrap_or_default().into_iter().filter_map(|r| r.url).collect(),
        cwe_ids,
        modified: raw.modified,
        affected,
    })
}

fn scores(severity: Option<Vec<RawSeverity>>) -> Vec<(String, String)> {
    severity.unwrap_or_default().into_iter().map(|s| (s.kind, s.score)).collect()
}

/// A severity word from `database_specific`/`ecosystem_specific`: GitHub's
/// `severity`, Debian's `urgency`, others' `severity` objects.
fn severity_word(specific: Option<&Value>) -> Option<String> {
    let specific = specific?;
    for key in ["severity", "urgency", "ubuntu_priority"] {
        match specific.get(key) {
            Some(Value::String(word)) if !word.is_empty() => return Some(word.clone()),
            Some(Value::Array(all)) => {
                if let Some(word) =
                    all.iter().find_map(|s| s.get("severity").or(s.get("score")).and_then(Value::as_str))
                {
                    return Some(word.to_owned());
                }
            }
            _ => {}
        }
    }
    None
}

/// GitHub's `database_specific.cwe_ids`.
fn cwes(specific: Option<&Value>) -> Vec<String> {
    specific
        .and_then(|s| s.get("cwe_ids"))
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter().filter_map(Value::as_str).filter(|id| id.starts_with("CWE-")).map(str::to_owned).collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;
    use std::io::Cursor;

    pub fn ghsa_requests() -> Value {
        json!({
            "schema_version": "1.6.0",
            "id": "GHSA-9wx4-h78v-vm56",
            "modified": "2024-06-10T18:23:46Z",
            "published": "2024-05-20T20:15:00Z",
            "aliases": ["CVE-2024-35195"],
            "summary": "Requests `Session` object does not verify requests after making first request with verify=False",
            "details": "When making requests through a Requests `Session`...",
            "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:H/I:H/A:N"}],
            "affected": [{
                "package": {"ecosystem": "PyPI", "name": "requests", "purl": "pkg:pypi/requests"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.32.0"}]}]
            }],
            "references": [{"type": "ADVISORY", "url": "https://nvd.nist.gov/vuln/detail/CVE-2024-35195"}],
            "database_specific": {"cwe_ids": ["CWE-670"], "severity": "MODERATE", "github_reviewed": true}
        })
    }

    pub fn debian_glibc() -> Value {
        json!({
            "id": "DEBIAN-CVE-2023-4911",
            "modified": "2024-09-18T03:17:35Z",
            "upstream": ["CVE-2023-4911"],
            "details": "A buffer overflow was discovered in the GNU C Library's dynamic loader ld.so...",
            "affected": [
                {"package": {"ecosystem": "Debian:12", "name": "glibc"},
                 "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.36-9+deb12u3"}]}],
                 "ecosystem_specific": {"urgency": "high"}},
                {"package": {"ecosystem": "Debian:11", "name": "glibc"},
                 "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.31-13+deb11u7"}]}]},
                {"package": {"ecosystem": "Debian:12", "name": "glibc"},
                 "ranges": [{"type": "GIT", "repo": "x", "events": [{"introduced": "abc"}]}]}
            ]
        })
    }

    fn builder_with(records: &[Value]) -> (VulnDb, ImportSummary) {
        let mut builder = VulnDbBuilder::new(&Limits::default());
        builder.add_json(serde_json::to_vec(&Value::Array(records.to_vec())).unwrap().as_slice());
        builder.finish()
    }

    #[test]
    fn imports_records_and_indexes_by_package() {
        let (db, summary) = builder_with(&[ghsa_requests(), debian_glibc()]);
        assert_eq!(summary.records_imported, 2);
        assert_eq!(summary.updated_at.as_deref(), Some("2024-09-18T03:17:35Z"));
        assert_eq!(summary.ecosystems.get("Debian:12"), Some(&1));
        let hits: Vec<_> = db.lookup("PyPI", "Requests").collect();
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].0.cwe_ids, ["CWE-670"]);
        assert_eq!(hits[0].0.severity_word.as_deref(), Some("MODERATE"));
        let glibc: Vec<_> = db.lookup("Debian", "glibc").collect();
        // The GIT-only entry is dropped.
        assert_eq!(glibc.len(), 2);
        assert_eq!(glibc[0].1.severity_word.as_deref(), Some("high"));
    }

    #[test]
    fn bad_records_are_skipped_and_counted() {
        let mut builder = VulnDbBuilder::new(&Limits { max_record_bytes: 2000, ..Limits::default() });
        builder.add_json(b"{not json");
        builder.add_json(br#"{"id": 5}"#);
        builder.add_json(
            br#"[{"id": "X-1", "affected": [{"package": {"ecosystem": "Hackage", "name": "x"}, "versions": ["1"]}]}]"#,
        );
        builder.add_json(br#"{"id": "X-2", "withdrawn": "2024-01-01T00:00:00Z", "affected": []}"#);
        builder.add_reader(Cursor::new(vec![b' '; 5000])).unwrap();
        builder.add_json(serde_json::to_vec(&ghsa_requests()).unwrap().as_slice());
        let (db, summary) = builder.finish();
        assert_eq!(db.len(), 1);
        assert_eq!(summary.records_read, 4);
        let skipped: Vec<_> = summary.skipped.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(
            skipped,
            [
                ("file too large", 1),
                ("invalid JSON", 1),
                ("no supported ecosystem", 1),
                ("not an OSV record", 1),
                ("withdrawn", 1)
            ]
        );
    }

    #[test]
    fn total_input_is_bounded() {
        let mut builder = VulnDbBuilder::new(&Limits { max_db_bytes: 1000, ..Limits::default() });
        let record = serde_json::to_vec(&ghsa_requests()).unwrap();
        let result = (0..10).try_for_each(|_| builder.add_reader(Cursor::new(record.clone())));
        assert!(matches!(result, Err(ScanError::LimitExceeded { .. })));
    }

    #[test]
    fn imports_a_directory_and_a_zip() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("PyPI")).unwrap();
        std::fs::write(dir.path().join("PyPI/GHSA-9wx4-h78v-vm56.json"), ghsa_requests().to_string()).unwrap();
        std::fs::write(dir.path().join("debian.json"), debian_glibc().to_string()).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a record").unwrap();
        let (db, summary) = VulnDb::import(dir.path(), &Limits::default()).unwrap();
        assert_eq!((db.len(), summary.records_read), (2, 2));

        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        zip.start_file("GHSA-9wx4-h78v-vm56.json", options).unwrap();
        zip.write_all(ghsa_requests().to_string().as_bytes()).unwrap();
        zip.start_file("DEBIAN-CVE-2023-4911.json", options).unwrap();
        zip.write_all(debian_glibc().to_string().as_bytes()).unwrap();
        let bytes = zip.finish().unwrap().into_inner();
        let path = dir.path().join("all.zip");
        std::fs::write(&path, &bytes).unwrap();
        let (db, _) = VulnDb::import(&path, &Limits::default()).unwrap();
        assert_eq!(db.len(), 2);
        let mut builder = VulnDbBuilder::new(&Limits::default());
        assert!(matches!(builder.add_zip(Cursor::new(b"PK not a zip".to_vec())), Err(ScanError::Malformed { .. })));
    }

    #[test]
    fn round_trips_through_bytes() {
        let (db, _) = builder_with(&[ghsa_requests(), debian_glibc()]);
        let bytes = db.to_bytes().unwrap();
        let back = VulnDb::from_bytes(&bytes, &Limits::default()).unwrap();
        assert_eq!(back.vulns, db.vulns);
        assert_eq!(back.summary(), db.summary());
        assert_eq!(back.lookup("PyPI", "requests").count(), 1);
        assert!(matches!(VulnDb::from_bytes(b"junk", &Limits::default()), Err(ScanError::Malformed { .. })));
        let small = Limits { max_db_bytes: 100, ..Limits::default() };
        assert!(matches!(VulnDb::from_bytes(&bytes, &small), Err(ScanError::LimitExceeded { .. })));
    }
}

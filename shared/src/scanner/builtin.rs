//! berth's own scanner: the scan job runs it in-process for the registration
//! whose URL is [`crate::service::scanners::BUILTIN_URL`].
//!
//! It reads the image's layers from the object store as streams (never to
//! disk), lists their packages with [`berth_scanner::inventory`] under the
//! crate's limits, and matches them against the vulnerability database
//! imported with `berth vulndb import` ([`crate::service::vulndb`]), which
//! each process loads once per import. The report is Harbor's
//! vulnerability report. The CPU-bound work runs on the blocking pool.

use std::sync::{Arc, Mutex};

use berth_scanner::{Layer, Limits, VulnDb};
use futures::TryStreamExt as _;
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::oci::RepoName;
use crate::scanner::{
    AdapterMetadata, CONSUMED_MIMES, Capability, HARBOR_REPORT_MIME, SBOM_REPORT_MIME, SECURITY_REPORT_MIME, SPDX_MIME,
    ScannerInfo, Vulnerability, VulnerabilityReport,
};
use crate::service::artifacts::ArtifactInfo;
use crate::service::{Registry, ServiceResult};

/// What the built-in scanner calls itself.
pub fn info() -> ScannerInfo {
    ScannerInfo { name: "berth".to_owned(), vendor: "berth".to_owned(), version: env!("CARGO_PKG_VERSION").to_owned() }
}

/// Its metadata without the database's date (what its registration keeps).
pub fn static_metadata() -> AdapterMetadata {
    AdapterMetadata {
        scanner: info(),
        capabilities: vec![
            Capability {
                kind: "vulnerability".to_owned(),
                consumes_mime_types: CONSUMED_MIMES.iter().map(|m| (*m).to_owned()).collect(),
                produces_mime_types: vec![HARBOR_REPORT_MIME.to_owned(), SECURITY_REPORT_MIME.to_owned()],
            },
            Capability {
                kind: "sbom".to_owned(),
                consumes_mime_types: CONSUMED_MIMES.iter().map(|m| (*m).to_owned()).collect(),
                produces_mime_types: vec![SBOM_REPORT_MIME.to_owned()],
            },
        ],
        properties: [
            ("harbor.scanner-adapter/scanner-type", "os-package-vulnerability"),
            ("harbor.scanner-adapter/vulnerability-database", "OSV (imported with berth vulndb import)"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
    }
}

/// Its metadata now, with when its database was last updated.
pub async fn metadata(reg: &Registry) -> ServiceResult<AdapterMetadata> {
    let mut m = static_metadata();
    if let Some(db) = reg.vulndb_info().await? {
        m.properties.insert("harbor.scanner-adapter/vulnerability-database-updated-at".to_owned(), db.updated_at);
    }
    Ok(m)
}

/// The database this process loaded, by the import's stamp.
static LOADED: Mutex<Option<(String, Arc<VulnDb>)>> = Mutex::new(None);

async fn database(reg: &Registry) -> Result<Arc<VulnDb>, String> {
    let info = reg.vulndb_info().await.map_err(|e| e.to_string())?.ok_or_else(|| {
        "no vulnerability database has been imported: run `berth vulndb import <folder or zip of OSV records>`"
            .to_owned()
    })?;
    if let Ok(loaded) = LOADED.lock()
        && let Some((stamp, db)) = loaded.as_ref()
        && *stamp == info.stamp
    {
        return Ok(db.clone());
    }
    let bytes = reg.vulndb_bytes(&info).await.map_err(|e| format!("reading the vulnerability database: {e}"))?;
    let db = tokio::task::spawn_blocking(move || VulnDb::from_bytes(&bytes, &Limits::default()))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("the vulnerability database is unreadable: {e}"))?;
    let db = Arc::new(db);
    if let Ok(mut loaded) = LOADED.lock() {
        *loaded = Some((info.stamp, db.clone()));
    }
    Ok(db)
}

/// The packages of an image's layers, listed on the blocking pool; each
/// layer is opened when the walk reaches it, so one object read is open
/// at a time.
async fn inventory(reg: &Registry, artifact: &ArtifactInfo) -> Result<berth_scanner::Inventory, String> {
    let layers: Vec<(String, crate::oci::Digest)> =
        artifact.manifest.layers.iter().map(|l| (l.media_type.clone(), l.digest.clone())).collect();
    let (reg, handle) = (reg.clone(), tokio::runtime::Handle::current());
    let work = tokio::task::spawn_blocking(move || {
        let opened = layers.into_iter().map(|(media_type, digest)| {
            let reader: Box<dyn std::io::Read + Send> = match handle.block_on(reg.read_blob(&digest)) {
                Ok(s) => Box::new(SyncIoBridge::new_with_handle(
                    StreamReader::new(s.map_err(std::io::Error::other)),
                    handle.clone(),
                )),
                Err(e) => Box::new(FailingReader(format!("layer {digest}: {e}"))),
            };
            Layer::new(media_type, reader)
        });
        berth_scanner::inventory(opened, &Limits::default()).map_err(|e| e.to_string())
    });
    work.await.map_err(|e| e.to_string())?
}

/// Scans an image for vulnerabilities: its report's body and what it says.
/// The error is the scan's failure as its log and status show it.
pub async fn scan(
    reg: &Registry,
    repo: &RepoName,
    artifact: &ArtifactInfo,
) -> Result<(bytes::Bytes, VulnerabilityReport), String> {
    let db = database(reg).await?;
    let inv = inventory(reg, artifact).await?;
    let packages = inv.packages.len();
    let os = inv.os.clone();
    let findings = tokio::task::spawn_blocking(move || berth_scanner::find_vulnerabilities(&db, &inv))
        .await
        .map_err(|e| e.to_string())?;
    let vulnerabilities: Vec<Vulnerability> = findings
        .into_iter()
        .map(|f| Vulnerability {
            id: f.id,
            package: f.package,
            version: f.version,
            fix_version: f.fixed_version.unwrap_or_default(),
            severity: format!("{:?}", f.severity),
            description: f.description,
            links: f.links,
            preferred_cvss: f.cvss_score.map(|s| serde_json::json!({"score_v3": s, "vector_v3": f.cvss_vector})),
            cwe_ids: f.cwe_ids,
            vendor_attributes: Some(serde_json::json!({
                "osv_id": f.osv_id, "aliases": f.aliases, "purl": f.purl, "path": f.path,
            })),
        })
        .collect();
    let mut report = VulnerabilityReport {
        generated_at: crate::service::record::rfc3339_ms(crate::events::now_ms()),
        artifact: Some(artifact_ref(repo, artifact)),
        scanner: Some(info()),
        severity: String::new(),
        vulnerabilities,
    };
    report.severity = report.summarize().1;
    let mut body = serde_json::to_value(&report).map_err(|e| e.to_string())?;
    if let Some(o) = body.as_object_mut() {
        o.insert(
            "vendor_attributes".to_owned(),
            serde_json::json!({"packages": packages, "os": os.map(|o| o.pretty_name.unwrap_or(o.id))}),
        );
    }
    let bytes = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
    Ok((bytes.into(), report))
}

fn artifact_ref(repo: &RepoName, artifact: &ArtifactInfo) -> serde_json::Value {
    serde_json::json!({
        "repository": repo.to_string(),
        "digest": artifact.digest.to_string(),
        "mime_type": artifact.manifest.media_type,
    })
}

/// Makes an image's SBOM (SPDX 2.3 JSON): the SBOM report's body and the
/// document.
pub async fn sbom(
    reg: &Registry,
    repo: &RepoName,
    artifact: &ArtifactInfo,
) -> Result<(bytes::Bytes, bytes::Bytes), String> {
    let inv = inventory(reg, artifact).await?;
    let created = crate::service::record::rfc3339_ms(crate::events::now_ms());
    let subject = berth_scanner::Subject { repository: repo.to_string(), digest: artifact.digest.to_string() };
    let document = berth_scanner::spdx(&inv, &subject, &created);
    let report = serde_json::json!({
        "generated_at": created,
        "artifact": artifact_ref(repo, artifact),
        "scanner": info(),
        "media_type": SPDX_MIME,
        "sbom": document,
    });
    let document = serde_json::to_vec(&document).map_err(|e| e.to_string())?;
    let body = serde_json::to_vec(&report).map_err(|e| e.to_string())?;
    Ok((body.into(), document.into()))
}

/// A layer that could not be opened: reading it fails with why.
struct FailingReader(String);

impl std::io::Read for FailingReader {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        Err(std::io::Error::other(self.0.clone()))
    }
}

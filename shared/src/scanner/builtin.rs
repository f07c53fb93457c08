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

/// The largest manifest read from another registry.
const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// Where a scan reads an image's layers from: this registry's object
/// store, or another registry that asked berth to scan one of its images
/// (the Pluggable Scanner API, [`crate::http::adapter`]).
#[derive(Clone)]
pub enum LayerSource {
    Local(Registry),
    Remote(RemoteImage),
}

impl LayerSource {
    async fn open(&self, digest: &crate::oci::Digest) -> Result<crate::blob::ByteStream, String> {
        match self {
            Self::Local(reg) => reg.read_blob(digest).await.map_err(|e| format!("layer {digest}: {e}")),
            Self::Remote(image) => image.blob(digest).await,
        }
    }
}

/// An image of another registry, read with the credential its scan
/// request carries (sent to that registry only: a redirect to another host
/// goes without it).
#[derive(Clone)]
pub struct RemoteImage {
    client: reqwest::Client,
    base: String,
    repository: String,
    authorization: String,
}

impl RemoteImage {
    pub fn new(registry_url: &str, repository: &str, authorization: &str) -> Result<Self, String> {
        let base = registry_url.trim_end_matches('/');
        let url = url::Url::parse(base).map_err(|e| format!("registry url {base:?}: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("registry url {base:?}: not http or https"));
        }
        let client = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(10))
            .read_timeout(std::time::Duration::from_secs(60))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            client,
            base: base.to_owned(),
            repository: repository.to_owned(),
            authorization: authorization.to_owned(),
        })
    }

    fn get(&self, what: &str, reference: &str) -> reqwest::RequestBuilder {
        let url = format!("{}/v2/{}/{what}/{reference}", self.base, self.repository);
        let req = self.client.get(url);
        if self.authorization.is_empty() {
            req
        } else {
            req.header(reqwest::header::AUTHORIZATION, &self.authorization)
        }
    }

    /// The image manifest `digest` names, checked against it. The error
    /// says whether another attempt may succeed (the registry unreachable
    /// or failing, not refusing).
    pub async fn manifest(
        &self,
        digest: &crate::oci::Digest,
        media_type: &str,
    ) -> Result<crate::oci::Manifest, (bool, String)> {
        let accept = [media_type, crate::oci::media::OCI_MANIFEST, crate::oci::media::DOCKER_MANIFEST].join(", ");
        let resp = self
            .get("manifests", &digest.to_string())
            .header(reqwest::header::ACCEPT, accept)
            .send()
            .await
            .map_err(|e| (true, format!("fetching the manifest: {e}")))?;
        let status = resp.status();
        if !status.is_success() {
            let retry = status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS;
            return Err((retry, format!("fetching the manifest: the registry answered {status}")));
        }
        let content_type =
            resp.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let bytes = resp.bytes().await.map_err(|e| (true, format!("fetching the manifest: {e}")))?;
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err((false, "the manifest is too large".to_owned()));
        }
        if digest.of_same_kind(&bytes) != *digest {
            return Err((false, format!("the manifest the registry sent is not {digest}")));
        }
        crate::oci::Manifest::parse(content_type.as_deref(), &bytes).map_err(|e| (false, format!("the manifest: {e}")))
    }

    async fn blob(&self, digest: &crate::oci::Digest) -> Result<crate::blob::ByteStream, String> {
        let resp =
            self.get("blobs", &digest.to_string()).send().await.map_err(|e| format!("fetching layer {digest}: {e}"))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(format!("fetching layer {digest}: the registry answered {status}"));
        }
        Ok(Box::pin(resp.bytes_stream().map_err(std::io::Error::other)))
    }
}

/// The layers a scan reads: media type and digest of each.
pub fn layers_of(manifest: &crate::oci::Manifest) -> Vec<(String, crate::oci::Digest)> {
    manifest.layers.iter().map(|l| (l.media_type.clone(), l.digest.clone())).collect()
}

/// The packages of an image's layers, listed on the blocking pool; each
/// layer is opened when the walk reaches it, so one read is open at a time.
async fn inventory(
    source: &LayerSource,
    layers: Vec<(String, crate::oci::Digest)>,
) -> Result<berth_scanner::Inventory, String> {
    let (source, handle) = (source.clone(), tokio::runtime::Handle::current());
    let work = tokio::task::spawn_blocking(move || {
        let opened = layers.into_iter().map(|(media_type, digest)| {
            let reader: Box<dyn std::io::Read + Send> = match handle.block_on(source.open(&digest)) {
                Ok(s) => Box::new(SyncIoBridge::new_with_handle(StreamReader::new(s), handle.clone())),
                Err(e) => Box::new(FailingReader(e)),
            };
            Layer::new(media_type, reader)
        });
        berth_scanner::inventory(opened, &Limits::default()).map_err(|e| e.to_string())
    });
    work.await.map_err(|e| e.to_string())?
}

/// Scans an image of this registry for vulnerabilities: its report's body
/// and what it says. The error is the scan's failure as its log and status
/// show it.
pub async fn scan(
    reg: &Registry,
    repo: &RepoName,
    artifact: &ArtifactInfo,
) -> Result<(bytes::Bytes, VulnerabilityReport), String> {
    let source = LayerSource::Local(reg.clone());
    scan_layers(reg, &source, layers_of(&artifact.manifest), artifact_ref(repo, artifact)).await
}

/// Scans the `layers` of an image for vulnerabilities (`artifact` is what
/// the report says it is of).
pub async fn scan_layers(
    reg: &Registry,
    source: &LayerSource,
    layers: Vec<(String, crate::oci::Digest)>,
    artifact: serde_json::Value,
) -> Result<(bytes::Bytes, VulnerabilityReport), String> {
    let db = database(reg).await?;
    let inv = inventory(source, layers).await?;
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
        artifact: Some(artifact),
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

/// What a report says it is of.
pub fn artifact_json(repository: &str, digest: &str, mime_type: &str) -> serde_json::Value {
    serde_json::json!({"repository": repository, "digest": digest, "mime_type": mime_type})
}

fn artifact_ref(repo: &RepoName, artifact: &ArtifactInfo) -> serde_json::Value {
    artifact_json(repo.as_str(), &artifact.digest.to_string(), &artifact.manifest.media_type)
}

/// Makes an image's SBOM (SPDX 2.3 JSON): the SBOM report's body and the
/// document.
pub async fn sbom(
    reg: &Registry,
    repo: &RepoName,
    artifact: &ArtifactInfo,
) -> Result<(bytes::Bytes, bytes::Bytes), String> {
    let source = LayerSource::Local(reg.clone());
    sbom_of_layers(&source, layers_of(&artifact.manifest), artifact_ref(repo, artifact)).await
}

/// Makes the SBOM of an image's `layers` (`artifact` is what the report
/// says it is of: its `repository` and `digest` name the document).
pub async fn sbom_of_layers(
    source: &LayerSource,
    layers: Vec<(String, crate::oci::Digest)>,
    artifact: serde_json::Value,
) -> Result<(bytes::Bytes, bytes::Bytes), String> {
    let inv = inventory(source, layers).await?;
    let created = crate::service::record::rfc3339_ms(crate::events::now_ms());
    let field = |k: &str| artifact.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
    let subject = berth_scanner::Subject { repository: field("repository"), digest: field("digest") };
    let document = berth_scanner::spdx(&inv, &subject, &created);
    let report = serde_json::json!({
        "generated_at": created,
        "artifact": artifact,
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

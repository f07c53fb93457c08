//! The scan part of `scripts/bench` (berth only): a synthetic OSV database
//! (`osv`) and Debian 12 images with Python packages that berth's built-in
//! scanner finds something in (`scan`).
//!
//! The functions under "the world" are the one place that names packages
//! and versions: a universe of Debian source packages and PyPI projects,
//! each with a ladder of [`RUNGS`] versions (rung 0 the oldest). A database
//! record marks the rungs below its fix as vulnerable; an image installs
//! most of its packages at the newest rung and some at an older one, so
//! every image has findings, and not the same ones. Everything is derived
//! from indexes by a hash, so `osv` and `scan` agree without sharing a file,
//! and two runs make the same database and images.

use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use sha2::{Digest as _, Sha256};

use super::{Gen, Registry, Target, expect, in_parallel};

// --- the world ---------------------------------------------------------------

/// Debian source packages the database knows.
const DEB_SOURCES: usize = 1500;
/// Source packages every image has (its base system): the first ones.
const DEB_BASE: usize = 150;
/// PyPI projects the database knows; the first [`PY_POPULAR`] are the
/// popular ones, in more images and more records.
const PYPI_PROJECTS: usize = 1000;
const PY_POPULAR: usize = 100;
/// Python distributions in each image.
const PY_PER_IMAGE: usize = 40;
/// Versions per package, oldest first.
const RUNGS: u64 = 6;
/// When the records say they were last modified.
const MODIFIED: &str = "2026-12-01T00:00:00Z";

/// Real names first, so reports read like real ones; numbered names after
/// (one string, so the formatter leaves the lists compact).
const DEB_NAMES: &str = "\
    glibc openssl zlib curl systemd perl python3.11 gnutls28 krb5 libxml2 sqlite3 expat ncurses bash coreutils \
    tar gzip xz-utils bzip2 libgcrypt20 libtasn1-6 p11-kit nettle gmp util-linux shadow pam apt dpkg e2fsprogs \
    libseccomp libcap2 libzstd lz4 pcre2 libidn2 libunistring openldap cyrus-sasl2 nghttp2 libssh2 libpsl icu \
    libxslt libyaml libffi readline sed grep findutils diffutils tzdata ca-certificates gnupg2 libgpg-error \
    libassuan keyutils libselinux audit acl attr db5.3 gdbm mawk debconf base-files libtirpc procps libbsd \
    libmd jansson libedit git imagemagick tiff libpng1.6 libjpeg-turbo freetype fontconfig harfbuzz cairo \
    pixman glib2.0 dbus avahi cups openssh wget less vim nano sudo iputils iproute2 netbase mariadb \
    postgresql-15 nginx apache2";
const PY_NAMES: &str = "\
    requests urllib3 certifi idna charset-normalizer setuptools pip wheel six python-dateutil PyYAML Jinja2 \
    MarkupSafe click Flask Werkzeug itsdangerous Django sqlparse asgiref cryptography cffi pycparser pyOpenSSL \
    paramiko bcrypt PyNaCl numpy pandas pytz tzdata Pillow lxml aiohttp multidict yarl frozenlist aiosignal \
    attrs protobuf grpcio boto3 botocore s3transfer jmespath rsa pyasn1 oauthlib SQLAlchemy greenlet \
    psycopg2-binary redis celery kombu gunicorn uvicorn fastapi starlette pydantic anyio sniffio h11 httpx \
    httpcore tornado Twisted Babel docutils Pygments tqdm scipy joblib scikit-learn Mako ansible-core PyJWT \
    waitress zipp importlib-metadata packaging pyparsing filelock virtualenv distlib platformdirs tomli black \
    mistune nltk transformers mlflow gradio streamlit Markdown jsonschema websockets pyarrow Scrapy";
/// CVSS v3.1 vectors of every rating, picked per record.
const VECTORS: &[&str] = &[
    "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
    "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H",
    "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N",
    "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H",
    "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N",
    "CVSS:3.1/AV:L/AC:H/PR:L/UI:N/S:U/C:L/I:N/A:N",
    "CVSS:3.1/AV:N/AC:H/PR:H/UI:R/S:U/C:N/I:L/A:N",
];
const WORDS: &[&str] = &["CRITICAL", "HIGH", "MODERATE", "MODERATE", "LOW"];

/// splitmix64 of two numbers: the world's only source of choices.
fn mix(a: u64, b: u64) -> u64 {
    let mut z = a.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ b.wrapping_add(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn pick(a: u64, b: u64, n: usize) -> usize {
    (mix(a, b) % n as u64) as usize
}

fn deb_source(j: usize) -> String {
    DEB_NAMES.split_whitespace().nth(j).map_or_else(|| format!("libbench{j:04}"), str::to_owned)
}

/// Debian's shape: an epoch on some, a Debian revision, stable updates.
fn deb_version(j: usize, rung: u64) -> String {
    let epoch = if j % 13 == 5 { "1:" } else { "" };
    let upstream = format!("{}.{}.{}", 1 + j % 9, j % 17, j % 7);
    if rung == 0 { format!("{epoch}{upstream}-1") } else { format!("{epoch}{upstream}-1+deb12u{rung}") }
}

fn py_project(p: usize) -> String {
    PY_NAMES.split_whitespace().nth(p).map_or_else(|| format!("bench-py-{p:04}"), str::to_owned)
}

fn py_version(p: usize, rung: u64) -> String {
    format!("{}.{rung}.{}", 1 + p % 4, p % 3)
}

/// The rung image `image` installs of package `key`: mostly the newest.
fn rung(image: u64, key: u64) -> u64 {
    let h = mix(image, key);
    if h % 10 < 7 { RUNGS - 1 } else { (h / 10) % RUNGS }
}

// --- the database --------------------------------------------------------------

/// Writes `records` OSV records, one JSON file each, half `Debian` (one in
/// ten for Debian 11, which a Debian 12 image must not match) and half
/// `PyPI`; about one in twenty has no fix yet.
pub(crate) fn write_osv(out: &Path, records: usize) -> Result<()> {
    let started = Instant::now();
    let deb = records / 2;
    let mut bytes = 0;
    for (dir, n) in [("debian", deb), ("pypi", records - deb)] {
        std::fs::create_dir_all(out.join(dir)).with_context(|| format!("creating {}", out.display()))?;
        for k in 0..n as u64 {
            let (id, record) = if dir == "debian" { deb_record(k) } else { py_record(k) };
            let json = serde_json::to_vec_pretty(&record)?;
            bytes += json.len();
            std::fs::write(out.join(dir).join(format!("{id}.json")), json)?;
        }
    }
    println!("osv_records={records}");
    println!("osv_bytes={bytes}");
    println!("osv_secs={:.3}", started.elapsed().as_secs_f64());
    Ok(())
}

fn severity(k: u64, salt: u64) -> Option<serde_json::Value> {
    let h = mix(k, salt);
    (!h.is_multiple_of(5))
        .then(|| serde_json::json!([{"type": "CVSS_V3", "score": VECTORS[(h / 5) as usize % VECTORS.len()]}]))
}

fn events(k: u64, introduced: String, fixed: impl FnOnce(u64) -> String) -> serde_json::Value {
    let mut events = vec![serde_json::json!({"introduced": introduced})];
    if !mix(k, 4).is_multiple_of(20) {
        events.push(serde_json::json!({"fixed": fixed(1 + mix(k, 5) % (RUNGS - 1))}));
    }
    serde_json::Value::Array(events)
}

/// A record as the Debian security tracker's export writes one: by source
/// package, the CVE upstream.
fn deb_record(k: u64) -> (String, serde_json::Value) {
    // The base system draws more advisories than the rest, as in real life.
    let j = if mix(k, 1) % 10 < 3 { pick(k, 2, DEB_BASE) } else { pick(k, 2, DEB_SOURCES) };
    let release = if mix(k, 3).is_multiple_of(10) { "Debian:11" } else { "Debian:12" };
    let cve = format!("CVE-{}-{}", 2019 + k % 7, 20000 + k);
    let id = format!("DEBIAN-{cve}");
    let name = deb_source(j);
    let urgency = ["not yet assigned", "low", "medium", "high"][pick(k, 6, 4)];
    let mut record = serde_json::json!({
        "schema_version": "1.6.0",
        "id": id,
        "modified": MODIFIED,
        "published": format!("{}-03-0{}T12:00:00Z", 2019 + k % 7, 1 + k % 9),
        "upstream": [cve],
        "summary": format!("{name}: synthetic advisory {k} of the berth scan bench"),
        "details": format!("A flaw in {name} lets a crafted input corrupt memory. Generated for the berth scan \
                            bench; not a real vulnerability."),
        "affected": [{
            "package": {"ecosystem": release, "name": name, "purl": format!("pkg:deb/debian/{name}?arch=source")},
            "ranges": [{"type": "ECOSYSTEM", "events": events(k, "0".to_owned(), |f| deb_version(j, f))}],
            "database_specific": {"urgency": urgency},
        }],
        "references": [{"type": "ADVISORY", "url": format!("https://security-tracker.debian.org/tracker/{cve}")}],
    });
    if let Some(s) = severity(k, 7) {
        record["severity"] = s;
    }
    (id, record)
}

/// A record as GitHub's advisory database writes one: a GHSA id, the CVE
/// as an alias, a severity word.
fn py_record(k: u64) -> (String, serde_json::Value) {
    let p = if mix(k, 11) % 10 < 4 { pick(k, 12, PY_POPULAR) } else { pick(k, 12, PYPI_PROJECTS) };
    const GHSA: &[u8] = b"23456789cfghjmpqrvwx";
    let h = mix(k, 13);
    let part = |o: u32| (0..4).map(|i| GHSA[((h >> (o + 5 * i)) % 20) as usize] as char).collect::<String>();
    let id = format!("GHSA-{}-{}-{}", part(0), part(20), part(40));
    let cve = format!("CVE-{}-{}", 2019 + k % 7, 40000 + k);
    let name = py_project(p);
    // Some advisories start at a later release than the first.
    let introduced = if mix(k, 14).is_multiple_of(4) { format!("{}.1.0", 1 + p % 4) } else { "0".to_owned() };
    let mut record = serde_json::json!({
        "schema_version": "1.6.0",
        "id": id,
        "modified": MODIFIED,
        "published": format!("{}-06-1{}T08:00:00Z", 2019 + k % 7, k % 9),
        "aliases": [cve],
        "summary": format!("{name} mishandles crafted requests (synthetic advisory {k})"),
        "details": "Generated for the berth scan bench; not a real vulnerability.",
        "affected": [{
            "package": {"ecosystem": "PyPI", "name": name, "purl": format!("pkg:pypi/{}", name.to_lowercase())},
            "ranges": [{"type": "ECOSYSTEM", "events": events(k, introduced, |f| format!("{}.{f}.0", 1 + p % 4))}],
        }],
        "references": [{"type": "WEB", "url": format!("https://github.com/advisories/{id}")}],
        "database_specific": {"severity": WORDS[pick(k, 15, WORDS.len())], "cwe_ids": ["CWE-20"]},
    });
    if let Some(s) = severity(k, 16) {
        record["severity"] = s;
    }
    (id, record)
}

// --- the images ------------------------------------------------------------------

struct Blob {
    digest: String,
    bytes: Bytes,
}

impl Blob {
    fn new(bytes: Vec<u8>) -> Self {
        Self { digest: format!("sha256:{}", hex::encode(Sha256::digest(&bytes))), bytes: Bytes::from(bytes) }
    }
}

/// One image: its config and gzipped layers, bottom first.
struct Image {
    config: Blob,
    layers: Vec<Blob>,
}

const OS_RELEASE: &str = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\n\
    VERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n\
    HOME_URL=\"https://www.debian.org/\"\nSUPPORT_URL=\"https://www.debian.org/support\"\n\
    BUG_REPORT_URL=\"https://bugs.debian.org/\"\n";

impl Image {
    /// Image `i`: a Debian 12 base layer (`os-release`, a dpkg database of
    /// `packages` binary packages, `filler_kib` KiB of shared libraries the
    /// scanner walks past) and an application layer of Python packages.
    fn build(i: u64, packages: usize, filler_kib: usize) -> Result<Self> {
        let mut status = String::new();
        let mut sources: Vec<usize> = (0..DEB_BASE).collect();
        let mut chosen: HashSet<usize> = sources.iter().copied().collect();
        let mut count = 0;
        let mut s = 0u64;
        'fill: loop {
            while let Some(&j) = sources.first() {
                sources.remove(0);
                let version = deb_version(j, rung(i, j as u64));
                let src = deb_source(j);
                // Some sources build a second binary package, as real ones do.
                let binaries = if j % 3 == 0 { vec![src.clone(), format!("{src}-common")] } else { vec![src.clone()] };
                for name in binaries {
                    if count == packages {
                        break 'fill;
                    }
                    status.push_str(&stanza(&name, &src, &version, "install ok installed", mix(i, j as u64)));
                    count += 1;
                }
            }
            if chosen.len() == DEB_SOURCES {
                break;
            }
            let j = DEB_BASE + pick(i, 1_000 + s, DEB_SOURCES - DEB_BASE);
            s += 1;
            if chosen.insert(j) {
                sources.push(j);
            }
        }
        // Removed, its configuration kept: not installed, not reported.
        status.push_str(&stanza("oldlib-removed", "oldlib-removed", "0.9-1", "deinstall ok config-files", 0));

        let mut base = vec![
            ("etc/os-release".to_owned(), OS_RELEASE.as_bytes().to_vec(), 0o644),
            ("var/lib/dpkg/status".to_owned(), status.into_bytes(), 0o644),
        ];
        let parts = 8;
        for k in 0..parts {
            let mut lib = vec![0u8; filler_kib * 1024 / parts];
            Gen(mix(i, 7_000 + k as u64)).fill(&mut lib);
            base.push((format!("usr/lib/x86_64-linux-gnu/libbench{k}.so.{i}"), lib, 0o755));
        }

        let mut app = Vec::new();
        let mut projects = HashSet::new();
        let mut s = 0u64;
        while projects.len() < PY_PER_IMAGE.min(PYPI_PROJECTS) {
            let p = if projects.len() < PY_PER_IMAGE / 2 {
                pick(i, 2_000 + s, PY_POPULAR)
            } else {
                pick(i, 2_000 + s, PYPI_PROJECTS)
            };
            s += 1;
            if !projects.insert(p) {
                continue;
            }
            let (name, version) = (py_project(p), py_version(p, rung(i, 100_000 + p as u64)));
            let dir = format!("usr/local/lib/python3.11/site-packages/{}-{version}.dist-info", name.replace('-', "_"));
            let metadata = format!(
                "Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: {name} for the berth scan \
                 bench\nLicense: {}\nRequires-Python: >=3.8\n\n{name} long description.\n",
                ["MIT", "Apache-2.0", "BSD-3-Clause"][p % 3]
            );
            app.push((format!("{dir}/METADATA"), metadata.into_bytes(), 0o644));
            app.push((format!("{dir}/RECORD"), format!("{dir}/METADATA,,\n").into_bytes(), 0o644));
        }
        app.push(("srv/app/main.py".to_owned(), format!("print('image {i}')\n").into_bytes(), 0o644));

        let (base_tar, app_tar) = (tar(&base)?, tar(&app)?);
        let diff_ids: Vec<String> =
            [&base_tar, &app_tar].iter().map(|t| format!("sha256:{}", hex::encode(Sha256::digest(t)))).collect();
        let config = serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "created": "2026-12-01T00:00:00Z",
            "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "PYTHONUNBUFFERED=1"],
                       "Cmd": ["python3", "/srv/app/main.py"], "WorkingDir": "/srv/app"},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created_by": "debian:12 base"}, {"created_by": "pip install -r requirements.txt"}],
        });
        Ok(Self {
            config: Blob::new(serde_json::to_vec(&config)?),
            layers: vec![Blob::new(gzip(&base_tar)?), Blob::new(gzip(&app_tar)?)],
        })
    }

    fn manifest(&self, annotations: Option<serde_json::Value>) -> Result<Vec<u8>> {
        let mut m = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": self.config.digest,
                       "size": self.config.bytes.len()},
            "layers": self.layers.iter().map(|l| serde_json::json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": l.digest, "size": l.bytes.len(),
            })).collect::<Vec<_>>(),
        });
        if let Some(a) = annotations {
            m["annotations"] = a;
        }
        Ok(serde_json::to_vec(&m)?)
    }

    fn bytes(&self) -> usize {
        self.config.bytes.len() + self.layers.iter().map(|l| l.bytes.len()).sum::<usize>()
    }

    /// Pushes the blobs (config last, as docker does) into `reg`'s repository.
    async fn push_blobs(&self, reg: &Registry) -> Result<()> {
        for blob in self.layers.iter().chain(std::iter::once(&self.config)) {
            let digest = reg.push_bytes(blob.bytes.clone()).await?;
            ensure!(digest == blob.digest, "pushed {digest}, expected {}", blob.digest);
        }
        Ok(())
    }
}

fn stanza(name: &str, source: &str, version: &str, status: &str, h: u64) -> String {
    let source = if name == source { String::new() } else { format!("Source: {source}\n") };
    format!(
        "Package: {name}\nStatus: {status}\nPriority: optional\nSection: libs\nInstalled-Size: {}\n\
         Maintainer: Debian Bench Maintainers <bench@lists.debian.org>\nArchitecture: amd64\nMulti-Arch: same\n\
         {source}Version: {version}\nDepends: libc6 (>= 2.34), zlib1g (>= 1:1.2.0)\n\
         Description: {name} for the berth scan bench\n This package is synthetic: its name and version are what\n \
         the scanner matches against the generated OSV records.\n\n",
        64 + h % 4096
    )
}

fn tar(files: &[(String, Vec<u8>, u32)]) -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data, mode) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(*mode);
        h.set_mtime(1_764_547_200);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, path, data.as_slice())?;
    }
    Ok(b.into_inner()?)
}

fn gzip(data: &[u8]) -> Result<Vec<u8>> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data)?;
    Ok(e.finish()?)
}

// --- the runs ------------------------------------------------------------------------

/// A repository's scans as its artifact listing shows them.
struct ScanState {
    status: String,
    findings: u64,
    /// From the scan's start to its end as its record says (ms).
    run_ms: f64,
}

/// Milliseconds since midnight of an RFC 3339 time as berth writes it
/// (`2026-12-05T16:36:54.525Z`); a scan crossing midnight is unwrapped by
/// the caller.
fn day_ms(t: &str) -> Option<f64> {
    let time = t.split_once('T')?.1.trim_end_matches('Z');
    let mut parts = time.split(':');
    let (h, m, s) = (parts.next()?.parse::<f64>().ok()?, parts.next()?.parse::<f64>().ok()?, parts.next()?);
    Some(((h * 60.0 + m) * 60.0 + s.parse::<f64>().ok()?) * 1000.0)
}

impl Registry {
    fn at(&self, repo: &str) -> Registry {
        Registry { http: self.http.clone(), base: self.base.clone(), repo: repo.to_owned() }
    }

    async fn project(&self, name: &str, metadata: serde_json::Value) -> Result<()> {
        let body = serde_json::json!({"project_name": name, "metadata": metadata});
        let resp = self.http.post(self.api("projects")).json(&body).send().await?;
        ensure!(
            resp.status() == StatusCode::CREATED || resp.status() == StatusCode::CONFLICT,
            "POST project {name}: HTTP {}",
            resp.status()
        );
        Ok(())
    }

    /// The vulnerability scan of each artifact of `repo` (project/name)
    /// that has one, by digest: every page of its listing.
    async fn scans(&self, repo: &str) -> Result<HashMap<String, ScanState>> {
        let (project, name) = repo.split_once('/').context("repository without a project")?;
        let mut found = HashMap::new();
        for page in 1.. {
            let mut url = self.api(&format!("projects/{project}/repositories/{name}/artifacts"));
            url.query_pairs_mut()
                .append_pair("page", &page.to_string())
                .append_pair("page_size", "100")
                .append_pair("with_scan_overview", "true")
                .append_pair("with_tag", "false");
            let resp = self.http.get(url).send().await?;
            expect(resp.status(), StatusCode::OK, &format!("GET the artifacts of {repo}"))?;
            let items: Vec<serde_json::Value> = resp.json().await?;
            for item in &items {
                let digest = item["digest"].as_str().unwrap_or_default().to_owned();
                // One report MIME type per scanner; the built-in one has one.
                let Some(overview) = item["scan_overview"].as_object().and_then(|o| o.values().next()) else {
                    continue;
                };
                let status = overview["scan_status"].as_str().unwrap_or_default().to_owned();
                let findings = overview["summary"]["total"].as_u64().unwrap_or(0);
                let time = |k: &str| overview[k].as_str().and_then(day_ms);
                let run_ms = match (time("start_time"), time("end_time")) {
                    (Some(a), Some(b)) if b < a => b + 86_400_000.0 - a,
                    (Some(a), Some(b)) => b - a,
                    _ => 0.0,
                };
                found.insert(digest, ScanState { status, findings, run_ms });
            }
            if items.len() < 100 {
                break;
            }
        }
        Ok(found)
    }
}

/// Each artifact whose scan was seen Success: when first seen so, its
/// findings and the scan's run time (ms).
type Seen = Mutex<HashMap<String, (Instant, u64, f64)>>;

/// A manifest PUT under `tag` into `reg`'s repository: its
/// digest and latency.
async fn put_manifest(reg: &Registry, tag: &str, manifest: Vec<u8>) -> Result<(String, Duration)> {
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&manifest)));
    let started = Instant::now();
    let resp = reg
        .http
        .put(reg.url(&format!("manifests/{tag}")))
        .header(CONTENT_TYPE, "application/vnd.oci.image.manifest.v1+json")
        .body(manifest)
        .send()
        .await?;
    let took = started.elapsed();
    expect(resp.status(), StatusCode::CREATED, &format!("PUT {}:{tag}", reg.repo))?;
    Ok((digest, took))
}

/// Waits until `want` artifacts of `repo` have a successful scan, every
/// `period`; records when each was first seen so. A scan that ends in
/// Error fails the run: a figure made of failures is not a figure.
async fn await_scans(
    reg: &Registry,
    repo: &str,
    want: usize,
    seen: &Seen,
    period: Duration,
    timeout: Duration,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let scans = reg.scans(repo).await?;
        let now = Instant::now();
        let done = {
            let mut seen = seen.lock().expect("lock");
            for (digest, s) in &scans {
                match s.status.as_str() {
                    "Success" => {
                        seen.entry(digest.clone()).or_insert((now, s.findings, s.run_ms));
                    }
                    "Error" => bail!("the scan of {repo}@{digest} ended in Error (see its log: …/scan/<report>/log)"),
                    _ => {}
                }
            }
            seen.len()
        };
        if done >= want {
            return Ok(());
        }
        if now > deadline {
            let pending = scans.values().filter(|s| s.status != "Success").count();
            bail!("{done} of {want} scans of {repo} succeeded within {timeout:?} ({pending} under way)");
        }
        tokio::time::sleep(period).await;
    }
}

fn percentile(sorted: &[f64], pct: usize) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[(sorted.len() * pct).div_ceil(100).clamp(1, sorted.len()) - 1]
}

pub(crate) struct ScanOpts {
    pub pushes: usize,
    pub images: usize,
    pub concurrency: usize,
    pub packages: usize,
    pub filler_kib: usize,
    pub timeout: Duration,
}

pub(crate) async fn scan(t: Target, o: ScanOpts) -> Result<()> {
    let reg = Arc::new(Registry::new(&t)?);
    let scanning = serde_json::json!({"public": "false", "auto_scan": "true"});
    reg.project("bench-scan-on", scanning.clone()).await?;
    reg.project("bench-scan-off", serde_json::json!({"public": "false"})).await?;
    reg.project("bench-scan", scanning).await?;

    let started = Instant::now();
    let (packages, filler) = (o.packages, o.filler_kib);
    let count = o.images;
    let images: Vec<Image> = tokio::task::spawn_blocking(move || {
        // The last one is the image of the timed pushes.
        (0..=count as u64).map(|i| Image::build(i, packages, filler)).collect::<Result<Vec<_>>>()
    })
    .await??;
    println!("scan_build_secs={:.3}", started.elapsed().as_secs_f64());
    println!("scan_image_bytes={}", images[0].bytes());

    // 1. A manifest PUT with auto_scan on and off, alternating, one at a
    //    time, so both see the same machine, the scans of earlier pushes
    //    included.
    if o.pushes > 0 {
        let image = &images[count];
        let (on, off) = (reg.at("bench-scan-on/app"), reg.at("bench-scan-off/app"));
        image.push_blobs(&on).await.context("pushing the timed image's blobs")?;
        image.push_blobs(&off).await.context("pushing the timed image's blobs")?;
        let (mut t_on, mut t_off) = (Vec::new(), Vec::new());
        for i in 0..o.pushes {
            let tag = format!("p{i:05}");
            // Scans are recorded per digest, whatever the repository: the
            // two projects' manifests must differ.
            let manifest = |project: &str| {
                image.manifest(Some(
                    serde_json::json!({"org.example.bench.tag": tag, "org.example.bench.project": project}),
                ))
            };
            t_on.push(put_manifest(&on, &tag, manifest("on")?).await?.1.as_secs_f64() * 1000.0);
            t_off.push(put_manifest(&off, &tag, manifest("off")?).await?.1.as_secs_f64() * 1000.0);
        }
        let last_push = Instant::now();
        for v in [&mut t_on, &mut t_off] {
            v.sort_by(f64::total_cmp);
        }
        println!("scan_push_p50_on_ms={:.3}", percentile(&t_on, 50));
        println!("scan_push_p50_off_ms={:.3}", percentile(&t_off, 50));
        // Their scans must be over before the throughput run starts.
        let seen = Mutex::new(HashMap::new());
        await_scans(&reg, "bench-scan-on/app", o.pushes, &seen, Duration::from_millis(250), o.timeout).await?;
        println!("scan_drain_secs={:.3}", last_push.elapsed().as_secs_f64());
        let off = reg.scans("bench-scan-off/app").await?;
        ensure!(off.is_empty(), "{} artifacts of the project without auto_scan were scanned", off.len());
    }

    // 2. Throughput: every image pushed (blobs, then its manifest),
    //    `concurrency` at a time, while a poller watches their scans.
    let repo = "bench-scan/images";
    let target = Arc::new(reg.at(repo));
    let pushed: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let seen: Arc<Seen> = Arc::default();
    let images = Arc::new(images);
    let started = Instant::now();
    let poller = {
        let (reg, seen, timeout) = (reg.clone(), seen.clone(), o.timeout);
        tokio::spawn(async move { await_scans(&reg, repo, count, &seen, Duration::from_millis(100), timeout).await })
    };
    in_parallel(0..count, o.concurrency, |i| {
        let (target, images, pushed) = (target.clone(), images.clone(), pushed.clone());
        async move {
            let image = &images[i];
            image.push_blobs(&target).await.with_context(|| format!("pushing the blobs of image {i}"))?;
            let (digest, _) = put_manifest(&target, &format!("i{i:05}"), image.manifest(None)?).await?;
            pushed.lock().expect("lock").insert(digest, Instant::now());
            Ok(())
        }
    })
    .await?;
    let push_secs = started.elapsed().as_secs_f64();
    poller.await??;
    let secs = started.elapsed().as_secs_f64();

    let (pushed, seen) = (pushed.lock().expect("lock").clone(), seen.lock().expect("lock").clone());
    let mut latencies: Vec<f64> = Vec::new();
    let mut findings: Vec<u64> = Vec::new();
    let mut runs: Vec<f64> = Vec::new();
    for (digest, at) in &pushed {
        let (done, n, run) = seen.get(digest).with_context(|| format!("no successful scan of {digest}"))?;
        latencies.push(done.saturating_duration_since(*at).as_secs_f64() * 1000.0);
        findings.push(*n);
        runs.push(*run);
    }
    latencies.sort_by(f64::total_cmp);
    runs.sort_by(f64::total_cmp);
    findings.sort_unstable();
    let total: u64 = findings.iter().sum();
    let clean = findings.iter().filter(|n| **n == 0).count();
    ensure!(total > 0, "no image has a finding: the database and the images do not meet");
    println!("scan_images={count}");
    println!("scan_push_secs={push_secs:.3}");
    println!("scan_secs={secs:.3}");
    println!("scan_images_per_min={:.1}", count as f64 / secs * 60.0);
    println!("scan_latency_p50_ms={:.0}", percentile(&latencies, 50));
    println!("scan_latency_p95_ms={:.0}", percentile(&latencies, 95));
    println!("scan_run_p50_ms={:.0}", percentile(&runs, 50));
    println!("scan_run_p95_ms={:.0}", percentile(&runs, 95));
    println!("scan_findings_total={total}");
    println!("scan_findings_min={}", findings.first().copied().unwrap_or(0));
    println!("scan_findings_median={}", findings.get(findings.len() / 2).copied().unwrap_or(0));
    println!("scan_images_without_findings={clean}");

    // One report read whole: its packages must be what the image holds.
    let digest = pushed.keys().next().context("no image pushed")?;
    let url = reg.api(&format!("projects/bench-scan/repositories/images/artifacts/{digest}/additions/vulnerabilities"));
    let resp = reg.http.get(url).send().await?;
    expect(resp.status(), StatusCode::OK, "GET a report")?;
    let body: serde_json::Value = resp.json().await?;
    let report = body.as_object().and_then(|o| o.values().next()).context("an empty report")?;
    let vulns = report["vulnerabilities"].as_array().map_or(0, Vec::len);
    let listed = report["vendor_attributes"]["packages"].as_u64().unwrap_or(0);
    ensure!(vulns > 0, "the report of {digest} lists no vulnerabilities");
    println!("scan_report_vulnerabilities={vulns}");
    println!("scan_report_summary_total={}", seen.get(digest).map_or(0, |s| s.1));
    println!("scan_report_packages={listed}");
    println!("scan_report_expected_packages={}", o.packages + PY_PER_IMAGE);
    Ok(())
}

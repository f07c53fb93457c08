//! OCI Distribution Specification v1.1 conformance of the whole `/v2` API,
//! end to end: the real `berth` binary, driven over HTTP.
//!
//! Every scenario runs twice, once per backend, from the
//! [`conformance!`] list at the bottom: `local::<scenario>` on files and the
//! embedded database, `aws::<scenario>` on S3, DynamoDB and SQS in the
//! emulator (skipped, or failed under `BERTH_TEST_REQUIRE_EMULATORS=1`, when
//! `AWS_ENDPOINT_URL` is unset). Each test starts its own server on its own
//! store (its own bucket and table on AWS), so tests are independent and may
//! run in parallel.
//!
//! The behaviours follow the spec text and the official Go conformance suite
//! (pull, push, content discovery, content management), plus what the spec
//! leaves to the registry, asserted as berth does it and said so in a comment.
//!
//! One difference between the backends is visible to clients and handled in
//! [`Registry::fetch_blob`]: on AWS a blob GET answers `307` with a presigned
//! S3 URL, which the client then fetches itself (without the registry's
//! credentials).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Write as _};
use std::sync::Barrier;
use std::time::Duration;

use reqwest::Method;
use reqwest::blocking::{Body, Client, RequestBuilder};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::support::{AwsResources, Server};

// ---------------------------------------------------------------------------
// Media types and credentials
// ---------------------------------------------------------------------------

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// What a client that understands every manifest type sends.
const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

const USER: &str = "admin";
const PASSWORD: &str = "Harbor12345";
/// `admin:Harbor12345` in base64, for the raw-socket requests.
const BASIC_ADMIN: &str = "YWRtaW46SGFyYm9yMTIzNDU=";

const MIB: usize = 1024 * 1024;

// ---------------------------------------------------------------------------
// The registry under test
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Local,
    Aws,
}

/// One `berth serve` on a fresh store, and an HTTP client for it.
struct Registry {
    server: Server,
    backend: Backend,
    http: Client,
    _dir: tempfile::TempDir,
}

impl Registry {
    fn start(backend: Backend) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let server = match backend {
            Backend::Local => Server::start(dir.path(), &["--data", "data"], &[("BERTH_ADMIN_PASSWORD", PASSWORD)]),
            // A bucket, table and queues of its own: nothing is shared with
            // any other test.
            Backend::Aws => AwsResources::new("berth-conf-").serve(dir.path(), &[]),
        };
        // Redirects are never followed: the 307 of a blob GET is part of
        // what is tested, and its target must not get our credentials.
        let http = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap();
        Self { server, backend, http, _dir: dir }
    }

    /// A repository name no other test uses.
    fn repo(&self) -> String {
        format!("library/{}", berth::testkit::unique("conf-"))
    }

    /// A URL from a path or a `Location`/`Link` target (relative or absolute).
    fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            self.server.url(path)
        }
    }

    /// A request with the administrator's credentials.
    fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.anon(method, path).basic_auth(USER, Some(PASSWORD))
    }

    /// A request without credentials.
    fn anon(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.url(path))
    }

    fn call(&self, rb: RequestBuilder) -> Resp {
        Resp::from(rb.send().unwrap())
    }

    fn get(&self, path: &str) -> Resp {
        self.call(self.req(Method::GET, path))
    }

    fn head(&self, path: &str) -> Resp {
        self.call(self.req(Method::HEAD, path))
    }

    fn delete(&self, path: &str) -> Resp {
        self.call(self.req(Method::DELETE, path))
    }

    // -- blobs --------------------------------------------------------------

    /// Opens an upload session: `202` and its `Location`.
    fn start_upload(&self, repo: &str) -> String {
        let r = self.call(self.req(Method::POST, &format!("/v2/{repo}/blobs/uploads/")).header("content-length", "0"));
        r.expect(202);
        r.h("location").to_owned()
    }

    /// `PUT <location>?digest=` with an optional last chunk.
    fn finish_upload(&self, location: &str, digest: &str, body: Vec<u8>, range: Option<String>) -> Resp {
        let mut rb = self
            .req(Method::PUT, &with_query(location, &format!("digest={}", enc(digest))))
            .header("content-type", "application/octet-stream")
            .body(body);
        if let Some(range) = range {
            rb = rb.header("content-range", range);
        }
        self.call(rb)
    }

    /// `PATCH <location>` with a chunk, and its `Content-Range` if given.
    fn patch(&self, location: &str, chunk: Vec<u8>, range: Option<String>) -> Resp {
        let mut rb = self.req(Method::PATCH, location).header("content-type", "application/octet-stream").body(chunk);
        if let Some(range) = range {
            rb = rb.header("content-range", range);
        }
        self.call(rb)
    }

    /// Pushes a blob monolithically (POST then PUT) and returns its digest.
    fn push_blob(&self, repo: &str, bytes: &[u8]) -> String {
        let digest = sha256(bytes);
        let location = self.start_upload(repo);
        self.finish_upload(&location, &digest, bytes.to_vec(), None).expect(201);
        digest
    }

    /// GETs a blob the way a client does. On AWS a successful GET must be a
    /// `307` to a presigned URL, which is then fetched (with the same
    /// `Range`, and without our credentials); errors come from berth itself.
    fn fetch_blob(&self, repo: &str, digest: &str, range: Option<&str>) -> Resp {
        let mut rb = self.req(Method::GET, &format!("/v2/{repo}/blobs/{digest}"));
        if let Some(range) = range {
            rb = rb.header("range", range);
        }
        let r = self.call(rb);
        if self.backend == Backend::Local || r.status >= 400 {
            return r;
        }
        r.expect(307);
        assert_eq!(r.h("docker-content-digest"), digest);
        let target = r.h("location");
        assert!(target.starts_with("http"), "a presigned URL, not {target:?}");
        let mut rb = self.http.get(target);
        if let Some(range) = range {
            rb = rb.header("range", range);
        }
        self.call(rb)
    }

    /// Asserts that `repo` serves exactly `bytes` at `digest` (GET and HEAD).
    fn assert_blob(&self, repo: &str, digest: &str, bytes: &[u8]) {
        let head = self.head(&format!("/v2/{repo}/blobs/{digest}"));
        head.expect(200);
        assert_eq!(head.h("content-length"), bytes.len().to_string(), "HEAD Content-Length");
        assert_eq!(head.h("docker-content-digest"), digest);
        assert!(head.body.is_empty());
        let get = self.fetch_blob(repo, digest, None);
        get.expect(200);
        assert_eq!(get.body.len(), bytes.len(), "blob length");
        assert!(get.body == bytes, "blob bytes differ (digest of what came back: {})", sha256(&get.body));
    }

    // -- manifests ----------------------------------------------------------

    fn put_manifest(&self, repo: &str, reference: &str, media_type: &str, bytes: &[u8]) -> Resp {
        self.call(
            self.req(Method::PUT, &format!("/v2/{repo}/manifests/{reference}"))
                .header("content-type", media_type)
                .body(bytes.to_vec()),
        )
    }

    /// Pushes a manifest (`201`, checking `Location` and
    /// `Docker-Content-Digest`) and returns its digest.
    fn push_manifest(&self, repo: &str, reference: &str, media_type: &str, bytes: &[u8]) -> String {
        let digest = sha256(bytes);
        let r = self.put_manifest(repo, reference, media_type, bytes);
        r.expect(201);
        assert_eq!(r.h("docker-content-digest"), digest);
        assert_eq!(r.h("location"), format!("/v2/{repo}/manifests/{digest}"));
        digest
    }

    /// Pushes a config and `layers` layers of random bytes, then an OCI image
    /// manifest over them under `reference` (a tag or `None` for by digest).
    fn push_image(&self, repo: &str, reference: Option<&str>, layers: usize) -> Image {
        let config = json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
            "nonce": berth::testkit::unique("")});
        let config = serde_json::to_vec(&config).unwrap();
        self.push_blob(repo, &config);
        let layers: Vec<Vec<u8>> = (0..layers).map(|_| random_bytes(1000 + random_u64() as usize % 3000)).collect();
        for layer in &layers {
            self.push_blob(repo, layer);
        }
        let layer_refs: Vec<&[u8]> = layers.iter().map(Vec::as_slice).collect();
        let bytes = oci_image(&config, &layer_refs, None);
        let digest = sha256(&bytes);
        self.push_manifest(repo, reference.unwrap_or(&digest), OCI_MANIFEST, &bytes);
        Image { bytes, digest, layers }
    }

    /// GETs a manifest with an Accept header for every type.
    fn get_manifest(&self, repo: &str, reference: &str) -> Resp {
        self.call(
            self.req(Method::GET, &format!("/v2/{repo}/manifests/{reference}")).header("accept", ACCEPT_MANIFESTS),
        )
    }

    fn head_manifest(&self, repo: &str, reference: &str) -> Resp {
        self.call(
            self.req(Method::HEAD, &format!("/v2/{repo}/manifests/{reference}")).header("accept", ACCEPT_MANIFESTS),
        )
    }

    /// Asserts GET and HEAD of `reference` answer the manifest byte for byte.
    fn assert_manifest(&self, repo: &str, reference: &str, media_type: &str, bytes: &[u8]) {
        let digest = sha256(bytes);
        let get = self.get_manifest(repo, reference);
        get.expect(200);
        assert_eq!(get.h("content-type"), media_type);
        assert_eq!(get.h("docker-content-digest"), digest);
        assert_eq!(get.h("content-length"), bytes.len().to_string());
        assert!(get.body == bytes, "manifest bytes differ: {}", String::from_utf8_lossy(&get.body));
        let head = self.head_manifest(repo, reference);
        head.expect(200);
        assert_eq!(head.h("content-type"), media_type);
        assert_eq!(head.h("docker-content-digest"), digest);
        assert_eq!(head.h("content-length"), bytes.len().to_string());
        assert!(head.body.is_empty());
    }

    fn tags(&self, repo: &str) -> Vec<String> {
        let r = self.get(&format!("/v2/{repo}/tags/list"));
        r.expect(200);
        strings(&r.json()["tags"])
    }

    fn referrers(&self, repo: &str, subject: &str) -> Vec<Value> {
        let r = self.get(&format!("/v2/{repo}/referrers/{subject}"));
        r.expect(200);
        assert_eq!(r.h("content-type"), OCI_INDEX);
        r.json()["manifests"].as_array().unwrap().clone()
    }

    /// A request the HTTP client would not send as written (`..` segments
    /// are resolved by URL parsers), over a raw socket: status and body.
    fn raw_get(&self, path: &str) -> (u16, Vec<u8>) {
        let mut stream = std::net::TcpStream::connect(self.server.addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Basic {BASIC_ADMIN}\r\nConnection: close\r\n\r\n",
            self.server.addr
        );
        stream.write_all(request.as_bytes()).unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        let text = String::from_utf8_lossy(&raw).into_owned();
        let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.as_bytes().to_vec()).unwrap_or_default();
        (status, body)
    }

    /// The server is still up and never panicked.
    fn assert_healthy(&self) {
        let health = self.http.get(self.url("/health")).send().unwrap();
        assert_eq!(health.status().as_u16(), 200);
        let log = self.server.log_text();
        assert!(!log.contains("panicked"), "the server panicked:\n{log}");
    }
}

impl Drop for Registry {
    /// A failing test shows what the server logged.
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.server.log_text();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- berth log ({:?}), last lines ---", self.backend);
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// A pushed image manifest.
struct Image {
    bytes: Vec<u8>,
    digest: String,
    layers: Vec<Vec<u8>>,
}

/// A response, read whole.
struct Resp {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl From<reqwest::blocking::Response> for Resp {
    fn from(r: reqwest::blocking::Response) -> Self {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let body = r.bytes().unwrap().to_vec();
        Self { status, headers, body }
    }
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// A header that must be there.
    fn h(&self, name: &str) -> &str {
        self.header(name).unwrap_or_else(|| panic!("no {name} header in {} response: {:?}", self.status, self.headers))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    #[track_caller]
    fn expect(&self, status: u16) -> &Self {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.text());
        self
    }

    /// An error answer: this status, and the spec's body
    /// `{"errors":[{"code","message","detail"}]}` with `code` first.
    #[track_caller]
    fn expect_error(&self, status: u16, code: &str) {
        self.expect(status);
        assert_eq!(error_code(self), code, "error code; body: {}", self.text());
    }
}

/// The first error code of an error body, after checking the body has the
/// spec's shape: a JSON `errors` array whose entries have a `code` of
/// upper-case letters and underscores and, if present, a string `message`.
#[track_caller]
fn error_code(r: &Resp) -> String {
    assert!(r.status >= 400, "not an error: {}", r.status);
    let content_type = r.h("content-type");
    assert!(content_type.starts_with("application/json"), "error Content-Type {content_type}");
    let body = r.json();
    let errors = body["errors"].as_array().unwrap_or_else(|| panic!("no errors array: {body}"));
    assert!(!errors.is_empty(), "empty errors array");
    for e in errors {
        let code = e["code"].as_str().unwrap_or_else(|| panic!("code missing in {e}"));
        assert!(!code.is_empty() && code.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'), "code {code:?}");
        assert!(e.get("message").is_none_or(Value::is_string), "message must be a string: {e}");
    }
    errors[0]["code"].as_str().unwrap().to_owned()
}

// ---------------------------------------------------------------------------
// Content helpers
// ---------------------------------------------------------------------------

fn sha256(bytes: &[u8]) -> String {
    berth::oci::Digest::sha256_of(bytes).to_string()
}

fn sha512(bytes: &[u8]) -> String {
    berth::oci::Digest::sha512_of(bytes).to_string()
}

/// A random number (std's randomly keyed hasher; no extra dependency).
fn random_u64() -> u64 {
    std::collections::hash_map::RandomState::new().build_hasher().finish()
}

/// `len` pseudo-random bytes (xorshift from a random seed): distinct blobs
/// per test, so no test ever sees another's content.
fn random_bytes(len: usize) -> Vec<u8> {
    let mut x = random_u64() | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn descriptor(media_type: &str, bytes: &[u8]) -> Value {
    json!({"mediaType": media_type, "digest": sha256(bytes), "size": bytes.len()})
}

/// An OCI image manifest over a config and layers, pretty-printed so that
/// byte-exactness is really tested (a registry re-serialising would differ).
fn oci_image(config: &[u8], layers: &[&[u8]], extra: Option<Value>) -> Vec<u8> {
    let mut m = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, config),
        "layers": layers.iter().map(|l| descriptor(OCI_LAYER, l)).collect::<Vec<_>>(),
    });
    if let Some(Value::Object(extra)) = extra {
        m.as_object_mut().unwrap().extend(extra);
    }
    serde_json::to_vec_pretty(&m).unwrap()
}

/// An index over manifests (all OCI image manifests), each with a platform.
fn oci_index(children: &[(&[u8], &str)]) -> Vec<u8> {
    let manifests: Vec<Value> = children
        .iter()
        .map(|(bytes, arch)| {
            let mut d = descriptor(OCI_MANIFEST, bytes);
            d["platform"] = json!({"architecture": arch, "os": "linux"});
            d
        })
        .collect();
    serde_json::to_vec_pretty(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests})).unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().unwrap_or_else(|| panic!("not an array: {v}")).iter().map(|s| s.as_str().unwrap().to_owned()).collect()
}

/// Percent-encodes a query value (everything but unreserved characters).
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn with_query(location: &str, query: &str) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!("{location}{sep}{query}")
}

/// The target of a `Link: <url>; rel="next"` header, if any.
fn next_link(r: &Resp) -> Option<String> {
    let link = r.header("link")?;
    assert!(link.contains("rel=\"next\""), "Link without rel=\"next\": {link}");
    let start = link.find('<').unwrap() + 1;
    let end = link.find('>').unwrap();
    Some(link[start..end].to_owned())
}

/// Inclusive `Content-Range` of a chunk at `start` of `len` bytes.
fn chunk_range(start: usize, len: usize) -> String {
    format!("{start}-{}", start + len - 1)
}

/// A body that trickles out slowly, so two requests really overlap.
struct Trickle {
    data: Vec<u8>,
    pos: usize,
    piece: usize,
    pause: Duration,
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.data.len() {
            return Ok(0);
        }
        std::thread::sleep(self.pause);
        let n = self.piece.min(buf.len()).min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

// ===========================================================================
// Pull
// ===========================================================================

/// GET and HEAD of a manifest by tag and by digest: the exact bytes, the
/// stored media type, the digest and the length.
fn pull_manifest_by_tag_and_digest(reg: &Registry) {
    let repo = reg.repo();
    let image = reg.push_image(&repo, Some("v1"), 2);
    reg.assert_manifest(&repo, "v1", OCI_MANIFEST, &image.bytes);
    reg.assert_manifest(&repo, &image.digest, OCI_MANIFEST, &image.bytes);
    // The ETag is the digest (lets clients make conditional requests).
    assert_eq!(reg.get_manifest(&repo, "v1").h("etag"), format!("\"{}\"", image.digest));
}

/// GET and HEAD of blobs: bytes, `Content-Length`, `Docker-Content-Digest`.
fn pull_blob_get_and_head(reg: &Registry) {
    let repo = reg.repo();
    let image = reg.push_image(&repo, Some("v1"), 2);
    for layer in &image.layers {
        reg.assert_blob(&repo, &sha256(layer), layer);
    }
    // An empty blob is a blob too.
    let empty = reg.push_blob(&repo, b"");
    let head = reg.head(&format!("/v2/{repo}/blobs/{empty}"));
    head.expect(200);
    assert_eq!(head.h("content-length"), "0");
}

/// Unknown manifests and blobs are `404` with the spec's codes.
fn pull_missing_content_is_404(reg: &Registry) {
    let repo = reg.repo();
    reg.push_image(&repo, Some("v1"), 1);
    let absent = sha256(b"never pushed");
    reg.get_manifest(&repo, "nosuchtag").expect_error(404, "MANIFEST_UNKNOWN");
    reg.get_manifest(&repo, &absent).expect_error(404, "MANIFEST_UNKNOWN");
    reg.head_manifest(&repo, "nosuchtag").expect(404);
    reg.head_manifest(&repo, &absent).expect(404);
    reg.get(&format!("/v2/{repo}/blobs/{absent}")).expect_error(404, "BLOB_UNKNOWN");
    reg.head(&format!("/v2/{repo}/blobs/{absent}")).expect(404);
    // A repository nothing was ever pushed to: still a manifest/blob 404
    // (berth answers per item, not NAME_UNKNOWN; the spec only requires 404).
    let never = reg.repo();
    reg.get_manifest(&never, "latest").expect_error(404, "MANIFEST_UNKNOWN");
    reg.get(&format!("/v2/{never}/blobs/{absent}")).expect_error(404, "BLOB_UNKNOWN");
}

/// Range requests on a blob: `206` with `Content-Range` for a closed, an
/// open-ended and a suffix range; a range past the end is `416`. On AWS the
/// range goes with the redirect, and S3 answers it.
fn pull_blob_ranges(reg: &Registry) {
    let repo = reg.repo();
    let blob = random_bytes(10_000);
    let digest = reg.push_blob(&repo, &blob);
    let size = blob.len();
    let cases: [(&str, usize, usize); 4] = [
        ("bytes=10-19", 10, 19),
        ("bytes=9000-", 9000, size - 1),
        ("bytes=-16", size - 16, size - 1),
        // An end past the blob is cut to the blob (RFC 9110).
        ("bytes=9990-20000", 9990, size - 1),
    ];
    for (range, start, end) in cases {
        let r = reg.fetch_blob(&repo, &digest, Some(range));
        r.expect(206);
        assert_eq!(r.h("content-range"), format!("bytes {start}-{end}/{size}"), "{range}");
        assert_eq!(r.h("content-length"), (end - start + 1).to_string(), "{range}");
        assert!(r.body == blob[start..=end], "{range}: wrong bytes");
    }
    // Unsatisfiable ranges are refused by berth before any redirect.
    for range in [format!("bytes={size}-"), format!("bytes={}-{}", size + 5, size + 10)] {
        let r = reg.fetch_blob(&repo, &digest, Some(&range));
        r.expect(416);
        assert_eq!(r.h("content-range"), format!("bytes */{size}"), "{range}");
    }
}

/// What one repository holds is invisible from another: blobs, manifests
/// and tags are per repository even though bytes are stored once.
fn pull_is_scoped_to_the_repository(reg: &Registry) {
    let (a, b) = (reg.repo(), reg.repo());
    let image = reg.push_image(&a, Some("v1"), 1);
    reg.push_image(&b, Some("other"), 1);
    let layer = sha256(&image.layers[0]);
    reg.get(&format!("/v2/{b}/blobs/{layer}")).expect_error(404, "BLOB_UNKNOWN");
    reg.head(&format!("/v2/{b}/blobs/{layer}")).expect(404);
    reg.get_manifest(&b, &image.digest).expect_error(404, "MANIFEST_UNKNOWN");
    reg.get_manifest(&b, "v1").expect_error(404, "MANIFEST_UNKNOWN");
    assert_eq!(reg.tags(&b), ["other"]);
    // And the owner still sees it.
    reg.assert_blob(&a, &layer, &image.layers[0]);
}

// ===========================================================================
// Push
// ===========================================================================

/// POST then PUT with the whole blob: `202` with a session `Location`, then
/// `201` with the blob's `Location` and digest.
fn push_monolithic_post_then_put(reg: &Registry) {
    let repo = reg.repo();
    let blob = random_bytes(4321);
    let digest = sha256(&blob);
    let post = reg.call(reg.req(Method::POST, &format!("/v2/{repo}/blobs/uploads/")).header("content-length", "0"));
    post.expect(202);
    let location = post.h("location").to_owned();
    assert!(location.contains(&format!("/v2/{repo}/blobs/uploads/")), "{location}");
    // berth asks for chunks of at least S3's part floor.
    let min: u64 = post.h("oci-chunk-min-length").parse().unwrap();
    assert!(min >= 5 * MIB as u64, "OCI-Chunk-Min-Length {min}");
    let put = reg.finish_upload(&location, &digest, blob.clone(), None);
    put.expect(201);
    assert_eq!(put.h("location"), format!("/v2/{repo}/blobs/{digest}"));
    assert_eq!(put.h("docker-content-digest"), digest);
    reg.assert_blob(&repo, &digest, &blob);
    // The session is over.
    reg.get(&location).expect_error(404, "BLOB_UPLOAD_UNKNOWN");
}

/// A single POST with `?digest=` and the body: `201` straight away.
fn push_single_post_with_digest(reg: &Registry) {
    let repo = reg.repo();
    let blob = random_bytes(2048);
    let digest = sha256(&blob);
    let r = reg.call(
        reg.req(Method::POST, &format!("/v2/{repo}/blobs/uploads/?digest={}", enc(&digest)))
            .header("content-type", "application/octet-stream")
            .body(blob.clone()),
    );
    r.expect(201);
    assert_eq!(r.h("location"), format!("/v2/{repo}/blobs/{digest}"));
    assert_eq!(r.h("docker-content-digest"), digest);
    reg.assert_blob(&repo, &digest, &blob);
    // With the wrong digest nothing is stored.
    let wrong = sha256(b"something else");
    let r = reg.call(
        reg.req(Method::POST, &format!("/v2/{repo}/blobs/uploads/?digest={}", enc(&wrong)))
            .header("content-type", "application/octet-stream")
            .body(random_bytes(100)),
    );
    r.expect_error(400, "DIGEST_INVALID");
    reg.head(&format!("/v2/{repo}/blobs/{wrong}")).expect(404);
}

/// Streamed PATCHes (no `Content-Range`, one of them chunk-encoded) then an
/// empty closing PUT.
fn push_streamed_patch_then_put(reg: &Registry) {
    let repo = reg.repo();
    let (first, second) = (random_bytes(70_000), random_bytes(1_000));
    let location = reg.start_upload(&repo);
    let r = reg.patch(&location, first.clone(), None);
    r.expect(202);
    assert_eq!(r.h("range"), format!("0-{}", first.len() - 1));
    assert_eq!(r.h("content-length"), "0");
    let location = r.h("location").to_owned();
    // A body of unknown length, as `docker push` streams layers.
    let trickle = Trickle { data: second.clone(), pos: 0, piece: 300, pause: Duration::ZERO };
    let r = reg.call(
        reg.req(Method::PATCH, &location).header("content-type", "application/octet-stream").body(Body::new(trickle)),
    );
    r.expect(202);
    let total = first.len() + second.len();
    assert_eq!(r.h("range"), format!("0-{}", total - 1));
    let blob = [first, second].concat();
    let digest = sha256(&blob);
    let put = reg.finish_upload(r.h("location"), &digest, Vec::new(), None);
    put.expect(201);
    assert_eq!(put.h("docker-content-digest"), digest);
    reg.assert_blob(&repo, &digest, &blob);
}

/// Chunked upload in small chunks (below `OCI-Chunk-Min-Length`, which is
/// only a SHOULD), the last one in the closing PUT; status GETs in between.
fn push_chunked_small_chunks(reg: &Registry) {
    let repo = reg.repo();
    let blob = random_bytes(25_000);
    let digest = sha256(&blob);
    let mut location = reg.start_upload(&repo);
    let mut offset = 0;
    for size in [10_000, 1, 4_999, 7_000] {
        let r = reg.patch(&location, blob[offset..offset + size].to_vec(), Some(chunk_range(offset, size)));
        r.expect(202);
        offset += size;
        assert_eq!(r.h("range"), format!("0-{}", offset - 1));
        location = r.h("location").to_owned();
        let status = reg.get(&location);
        status.expect(204);
        assert_eq!(status.h("range"), format!("0-{}", offset - 1));
        assert!(!status.h("location").is_empty());
    }
    let last = blob.len() - offset;
    let put = reg.finish_upload(&location, &digest, blob[offset..].to_vec(), Some(chunk_range(offset, last)));
    put.expect(201);
    assert_eq!(put.h("location"), format!("/v2/{repo}/blobs/{digest}"));
    reg.assert_blob(&repo, &digest, &blob);
}

/// A 20 MiB blob in 3 MiB chunks: chunks straddle the store's 8 MiB parts,
/// so multipart assembly and the staged tails between requests are used.
fn push_chunked_large_blob_spanning_parts(reg: &Registry) {
    let repo = reg.repo();
    let blob = random_bytes(20 * MIB);
    let digest = sha256(&blob);
    let mut location = reg.start_upload(&repo);
    let chunk = 3 * MIB;
    let mut offset = 0;
    while offset < blob.len() {
        let len = chunk.min(blob.len() - offset);
        let r = reg.patch(&location, blob[offset..offset + len].to_vec(), Some(chunk_range(offset, len)));
        r.expect(202);
        offset += len;
        assert_eq!(r.h("range"), format!("0-{}", offset - 1));
        location = r.h("location").to_owned();
    }
    let status = reg.get(&location);
    status.expect(204);
    assert_eq!(status.h("range"), format!("0-{}", blob.len() - 1));
    let put = reg.finish_upload(&location, &digest, Vec::new(), None);
    put.expect(201);
    let head = reg.head(&format!("/v2/{repo}/blobs/{digest}"));
    head.expect(200);
    assert_eq!(head.h("content-length"), blob.len().to_string());
    let got = reg.fetch_blob(&repo, &digest, None);
    got.expect(200);
    assert_eq!(got.body.len(), blob.len());
    assert_eq!(sha256(&got.body), digest, "the assembled blob");
}

/// Chunks out of order are `416`: a gap, a first chunk not at 0, and a
/// retried chunk. The session survives: its status is unchanged and the
/// upload completes.
fn push_chunk_out_of_order_then_resume(reg: &Registry) {
    let repo = reg.repo();
    let blob = random_bytes(3_000);
    let digest = sha256(&blob);
    let location = reg.start_upload(&repo);
    // The first chunk must start at 0.
    let r = reg.patch(&location, blob[1000..2000].to_vec(), Some(chunk_range(1000, 1000)));
    r.expect_error(416, "BLOB_UPLOAD_INVALID");
    let r = reg.patch(&location, blob[..1000].to_vec(), Some(chunk_range(0, 1000)));
    r.expect(202);
    assert_eq!(r.h("range"), "0-999");
    let location = r.h("location").to_owned();
    // A gap.
    let r = reg.patch(&location, blob[2000..].to_vec(), Some(chunk_range(2000, 1000)));
    r.expect_error(416, "BLOB_UPLOAD_INVALID");
    // After a 416 berth tells where the upload stands, as a status GET does.
    assert_eq!(r.h("range"), "0-999");
    assert!(!r.h("location").is_empty());
    // The previous chunk again.
    reg.patch(&location, blob[..1000].to_vec(), Some(chunk_range(0, 1000))).expect_error(416, "BLOB_UPLOAD_INVALID");
    let status = reg.get(&location);
    status.expect(204);
    assert_eq!(status.h("range"), "0-999");
    let location = status.h("location").to_owned();
    // A closing PUT whose chunk does not start at the offset is refused too.
    reg.finish_upload(&location, &digest, blob[2000..].to_vec(), Some(chunk_range(2000, 1000)))
        .expect_error(416, "BLOB_UPLOAD_INVALID");
    let r = reg.patch(&location, blob[1000..2000].to_vec(), Some(chunk_range(1000, 1000)));
    r.expect(202);
    assert_eq!(r.h("range"), "0-1999");
    let put = reg.finish_upload(r.h("location"), &digest, blob[2000..].to_vec(), Some(chunk_range(2000, 1000)));
    put.expect(201);
    reg.assert_blob(&repo, &digest, &blob);
}

/// A closing PUT with a digest that is not the content's: `400
/// DIGEST_INVALID`, and neither digest becomes readable.
fn push_wrong_digest_is_refused(reg: &Registry) {
    let repo = reg.repo();
    let blob = random_bytes(5_000);
    let wrong = sha256(b"not these bytes");
    let location = reg.start_upload(&repo);
    reg.finish_upload(&location, &wrong, blob.clone(), None).expect_error(400, "DIGEST_INVALID");
    reg.head(&format!("/v2/{repo}/blobs/{wrong}")).expect(404);
    reg.head(&format!("/v2/{repo}/blobs/{}", sha256(&blob))).expect(404);
    // The same after chunks, with the content in PATCHes.
    let location = reg.start_upload(&repo);
    let r = reg.patch(&location, blob.clone(), Some(chunk_range(0, blob.len())));
    r.expect(202);
    reg.finish_upload(r.h("location"), &wrong, Vec::new(), None).expect_error(400, "DIGEST_INVALID");
    // A malformed digest is DIGEST_INVALID as well.
    let location = reg.start_upload(&repo);
    reg.finish_upload(&location, "sha256:nothex", blob, None).expect_error(400, "DIGEST_INVALID");
}

/// SHA-512 digests (which the spec lets registries support): a blob pushed
/// monolithically and one in chunks over a part, a wrong SHA-512 refused,
/// and a manifest pushed by its SHA-512 digest.
fn push_sha512_digests(reg: &Registry) {
    let repo = reg.repo();
    let small = random_bytes(3_000);
    let digest = sha512(&small);
    let location = reg.start_upload(&repo);
    let put = reg.finish_upload(&location, &digest, small.clone(), None);
    put.expect(201);
    assert_eq!(put.h("docker-content-digest"), digest);
    assert_eq!(put.h("location"), format!("/v2/{repo}/blobs/{digest}"));
    reg.assert_blob(&repo, &digest, &small);
    let large = random_bytes(9 * MIB);
    let digest = sha512(&large);
    let mut location = reg.start_upload(&repo);
    for (start, end) in [(0, 6 * MIB), (6 * MIB, large.len())] {
        let r = reg.patch(&location, large[start..end].to_vec(), Some(chunk_range(start, end - start)));
        r.expect(202);
        location = r.h("location").to_owned();
    }
    reg.finish_upload(&location, &digest, Vec::new(), None).expect(201);
    let got = reg.fetch_blob(&repo, &digest, None);
    got.expect(200);
    assert_eq!(sha512(&got.body), digest);
    let wrong = sha512(b"other");
    let location = reg.start_upload(&repo);
    reg.finish_upload(&location, &wrong, small.clone(), None).expect_error(400, "DIGEST_INVALID");
    reg.head(&format!("/v2/{repo}/blobs/{wrong}")).expect(404);
    // A manifest addressed by its SHA-512 digest, naming the blob by its
    // SHA-512 digest (the only one it is known by here).
    reg.push_blob(&repo, b"{}");
    let layer = json!({"mediaType": OCI_LAYER, "digest": sha512(&small), "size": small.len()});
    let manifest = oci_image(b"{}", &[], Some(json!({"layers": [layer]})));
    let digest = sha512(&manifest);
    let r = reg.put_manifest(&repo, &digest, OCI_MANIFEST, &manifest);
    r.expect(201);
    assert_eq!(r.h("docker-content-digest"), digest);
    let got = reg.get_manifest(&repo, &digest);
    got.expect(200);
    assert_eq!(got.h("docker-content-digest"), digest);
    assert!(got.body == manifest);
}

/// DELETE of an upload session: `204`, then the session is unknown.
fn push_cancel_upload(reg: &Registry) {
    let repo = reg.repo();
    let location = reg.start_upload(&repo);
    reg.patch(&location, random_bytes(100), Some(chunk_range(0, 100))).expect(202);
    reg.delete(&location).expect(204);
    reg.get(&location).expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    reg.patch(&location, random_bytes(10), None).expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    reg.delete(&location).expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    reg.finish_upload(&location, &sha256(b"x"), b"x".to_vec(), None).expect_error(404, "BLOB_UPLOAD_UNKNOWN");
}

/// Upload sessions are found only through the repository that opened them,
/// and ids berth never issued are unknown.
fn push_unknown_upload_session(reg: &Registry) {
    let (a, b) = (reg.repo(), reg.repo());
    let location = reg.start_upload(&a);
    let id = location.rsplit('/').next().unwrap().to_owned();
    reg.get(&format!("/v2/{b}/blobs/uploads/{id}")).expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    reg.get(&format!("/v2/{a}/blobs/uploads/{}", "0".repeat(32))).expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    reg.get(&format!("/v2/{a}/blobs/uploads/not-an-upload")).expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    reg.get(&location).expect(204);
}

/// Cross-repository mount: `201` with the blob's `Location` in the target,
/// and the blob readable there.
fn push_cross_repo_mount(reg: &Registry) {
    let (from, to) = (reg.repo(), reg.repo());
    let blob = random_bytes(3_333);
    let digest = reg.push_blob(&from, &blob);
    let r = reg.call(
        reg.req(Method::POST, &format!("/v2/{to}/blobs/uploads/?mount={}&from={}", enc(&digest), enc(&from)))
            .header("content-length", "0"),
    );
    r.expect(201);
    assert_eq!(r.h("location"), format!("/v2/{to}/blobs/{digest}"));
    assert_eq!(r.h("docker-content-digest"), digest);
    reg.assert_blob(&to, &digest, &blob);
    // The target can now use it in a manifest.
    reg.push_blob(&to, b"{}");
    let manifest = oci_image(b"{}", &[&blob], None);
    reg.push_manifest(&to, "mounted", OCI_MANIFEST, &manifest);
}

/// A mount that cannot be done (the source lacks the blob, the source does
/// not exist, or no `from`) starts an ordinary upload session: `202`.
fn push_mount_fallback_starts_upload(reg: &Registry) {
    let (from, to) = (reg.repo(), reg.repo());
    reg.push_blob(&from, b"something");
    let blob = random_bytes(1_234);
    let digest = sha256(&blob);
    let queries = [
        format!("mount={}&from={}", enc(&digest), enc(&from)),
        format!("mount={}&from={}", enc(&digest), enc(&reg.repo())),
        format!("mount={}", enc(&digest)),
    ];
    for query in queries {
        let r =
            reg.call(reg.req(Method::POST, &format!("/v2/{to}/blobs/uploads/?{query}")).header("content-length", "0"));
        r.expect(202);
        let location = r.h("location").to_owned();
        reg.get(&location).expect(204);
        reg.finish_upload(&location, &digest, blob.clone(), None).expect(201);
    }
    reg.assert_blob(&to, &digest, &blob);
    reg.head(&format!("/v2/{from}/blobs/{digest}")).expect(404);
}

/// Pushing into a project that does not exist: `404 NAME_UNKNOWN`.
fn push_to_unknown_project(reg: &Registry) {
    let repo = format!("noproject{}/image", random_u64() % 1000);
    let r = reg.call(reg.req(Method::POST, &format!("/v2/{repo}/blobs/uploads/")).header("content-length", "0"));
    r.expect_error(404, "NAME_UNKNOWN");
    let blob = b"bytes".to_vec();
    let r = reg
        .call(reg.req(Method::POST, &format!("/v2/{repo}/blobs/uploads/?digest={}", enc(&sha256(&blob)))).body(blob));
    r.expect_error(404, "NAME_UNKNOWN");
    let manifest = oci_image(b"{}", &[], None);
    reg.put_manifest(&repo, "v1", OCI_MANIFEST, &manifest).expect_error(404, "NAME_UNKNOWN");
}

// ===========================================================================
// Manifests
// ===========================================================================

/// OCI image manifests by tag and by digest: `201`, `Location` and
/// `Docker-Content-Digest`; both pull back byte for byte.
fn manifest_oci_image_by_tag_and_by_digest(reg: &Registry) {
    let repo = reg.repo();
    let config = b"{\"architecture\":\"arm64\",\"os\":\"linux\"}".to_vec();
    let layer = random_bytes(500);
    reg.push_blob(&repo, &config);
    reg.push_blob(&repo, &layer);
    let by_tag = oci_image(&config, &[&layer], None);
    let r = reg.put_manifest(&repo, "tagged", OCI_MANIFEST, &by_tag);
    r.expect(201);
    assert!(r.header("oci-subject").is_none(), "no subject, no OCI-Subject");
    let digest = reg.push_manifest(&repo, "tagged", OCI_MANIFEST, &by_tag);
    reg.assert_manifest(&repo, "tagged", OCI_MANIFEST, &by_tag);
    reg.assert_manifest(&repo, &digest, OCI_MANIFEST, &by_tag);
    let by_digest = oci_image(&config, &[&layer], Some(json!({"annotations": {"k": "v"}})));
    let digest = sha256(&by_digest);
    reg.push_manifest(&repo, &digest, OCI_MANIFEST, &by_digest);
    reg.assert_manifest(&repo, &digest, OCI_MANIFEST, &by_digest);
    // A push by digest tags nothing.
    assert_eq!(reg.tags(&repo), ["tagged"]);
    // Pushing the same bytes again is fine (idempotent).
    reg.push_manifest(&repo, &digest, OCI_MANIFEST, &by_digest);
}

/// An OCI index over children pushed first; an index whose child is
/// missing is `MANIFEST_BLOB_UNKNOWN`.
fn manifest_oci_index(reg: &Registry) {
    let repo = reg.repo();
    let amd = reg.push_image(&repo, None, 1);
    let arm = reg.push_image(&repo, None, 1);
    let index = oci_index(&[(&amd.bytes, "amd64"), (&arm.bytes, "arm64")]);
    let digest = reg.push_manifest(&repo, "multi", OCI_INDEX, &index);
    reg.assert_manifest(&repo, "multi", OCI_INDEX, &index);
    reg.assert_manifest(&repo, &digest, OCI_INDEX, &index);
    reg.assert_manifest(&repo, &amd.digest, OCI_MANIFEST, &amd.bytes);
    // A child that is not in the repository (berth checks children).
    let missing = oci_image(b"{\"never\":1}", &[], None);
    let orphan = oci_index(&[(&amd.bytes, "amd64"), (&missing, "s390x")]);
    reg.put_manifest(&repo, "orphan", OCI_INDEX, &orphan).expect_error(404, "MANIFEST_BLOB_UNKNOWN");
}

/// Docker image manifest v2 schema 2 and manifest list: accepted and served
/// with their Docker media types.
fn manifest_docker_schema2_and_list(reg: &Registry) {
    let repo = reg.repo();
    let config = b"{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\"}}".to_vec();
    let layer = random_bytes(700);
    reg.push_blob(&repo, &config);
    reg.push_blob(&repo, &layer);
    let manifest = serde_json::to_vec_pretty(&json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": descriptor(DOCKER_CONFIG, &config),
        "layers": [descriptor(DOCKER_LAYER, &layer)],
    }))
    .unwrap();
    let digest = reg.push_manifest(&repo, "docker", DOCKER_MANIFEST, &manifest);
    reg.assert_manifest(&repo, "docker", DOCKER_MANIFEST, &manifest);
    let mut child = descriptor(DOCKER_MANIFEST, &manifest);
    child["platform"] = json!({"architecture": "amd64", "os": "linux"});
    let list = serde_json::to_vec_pretty(&json!({"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": [child]}))
        .unwrap();
    reg.push_manifest(&repo, "list", DOCKER_LIST, &list);
    reg.assert_manifest(&repo, "list", DOCKER_LIST, &list);
    reg.assert_manifest(&repo, &digest, DOCKER_MANIFEST, &manifest);
}

/// The list of blobs may be empty: a manifest with no layers, and an
/// artifact whose config is the empty descriptor.
fn manifest_without_layers(reg: &Registry) {
    let repo = reg.repo();
    let config = b"{\"architecture\":\"amd64\",\"os\":\"linux\"}".to_vec();
    reg.push_blob(&repo, &config);
    let manifest = oci_image(&config, &[], None);
    reg.push_manifest(&repo, "nolayers", OCI_MANIFEST, &manifest);
    reg.assert_manifest(&repo, "nolayers", OCI_MANIFEST, &manifest);
    reg.push_blob(&repo, b"{}");
    let artifact = serde_json::to_vec_pretty(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.thing.v1",
        "config": descriptor(OCI_EMPTY, b"{}"),
        "layers": [],
    }))
    .unwrap();
    reg.push_manifest(&repo, "artifact", OCI_MANIFEST, &artifact);
    reg.assert_manifest(&repo, "artifact", OCI_MANIFEST, &artifact);
}

/// A manifest naming a blob the repository does not have is refused with
/// `MANIFEST_BLOB_UNKNOWN`. The spec gives no status for it; berth answers
/// `404` (the code's status in its error table), asserted here.
fn manifest_with_missing_blob(reg: &Registry) {
    let repo = reg.repo();
    let config = b"{\"os\":\"linux\"}".to_vec();
    reg.push_blob(&repo, &config);
    let missing_layer = oci_image(&config, &[b"no such layer".as_slice()], None);
    reg.put_manifest(&repo, "v1", OCI_MANIFEST, &missing_layer).expect_error(404, "MANIFEST_BLOB_UNKNOWN");
    let missing_config = oci_image(b"{\"no such config\":1}", &[], None);
    reg.put_manifest(&repo, "v1", OCI_MANIFEST, &missing_config).expect_error(404, "MANIFEST_BLOB_UNKNOWN");
    // A blob of another repository does not count.
    let other = reg.repo();
    let layer = random_bytes(64);
    reg.push_blob(&other, &layer);
    let foreign = oci_image(&config, &[&layer], None);
    reg.put_manifest(&repo, "v1", OCI_MANIFEST, &foreign).expect_error(404, "MANIFEST_BLOB_UNKNOWN");
    reg.get_manifest(&repo, "v1").expect_error(404, "MANIFEST_UNKNOWN");
}

/// Malformed manifests are `400 MANIFEST_INVALID`.
fn manifest_invalid(reg: &Registry) {
    let repo = reg.repo();
    let config = b"{}".to_vec();
    reg.push_blob(&repo, &config);
    let good = oci_image(&config, &[], None);
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        ("not JSON", OCI_MANIFEST, b"{ this is not json".to_vec()),
        ("a JSON array", OCI_MANIFEST, b"[]".to_vec()),
        // The body says image manifest, the header says index.
        ("mediaType vs Content-Type", OCI_INDEX, good.clone()),
        ("Docker type on an OCI body", DOCKER_MANIFEST, good),
        (
            "schema 1",
            "application/vnd.docker.distribution.manifest.v1+json",
            serde_json::to_vec(&json!({"schemaVersion": 1, "name": "x", "tag": "y", "fsLayers": []})).unwrap(),
        ),
        (
            "no config",
            OCI_MANIFEST,
            serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []})).unwrap(),
        ),
        (
            "bad descriptor digest",
            OCI_MANIFEST,
            serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": "sha256:nothex", "size": 2}, "layers": []}))
            .unwrap(),
        ),
    ];
    for (what, content_type, body) in cases {
        let r = reg.put_manifest(&repo, "bad", content_type, &body);
        assert_eq!(r.status, 400, "{what}: {}", r.text());
        assert_eq!(error_code(&r), "MANIFEST_INVALID", "{what}");
    }
    reg.get_manifest(&repo, "bad").expect_error(404, "MANIFEST_UNKNOWN");
}

/// PUT by digest with bytes of another digest: `400 DIGEST_INVALID`.
fn manifest_put_by_mismatching_digest(reg: &Registry) {
    let repo = reg.repo();
    reg.push_blob(&repo, b"{}");
    let manifest = oci_image(b"{}", &[], None);
    let other = sha256(b"other bytes");
    reg.put_manifest(&repo, &other, OCI_MANIFEST, &manifest).expect_error(400, "DIGEST_INVALID");
    reg.get_manifest(&repo, &other).expect_error(404, "MANIFEST_UNKNOWN");
    reg.get_manifest(&repo, &sha256(&manifest)).expect_error(404, "MANIFEST_UNKNOWN");
}

/// An OCI image manifest over the `{}` config whose `pad` annotation makes
/// it exactly `target` bytes long.
fn padded_manifest(target: usize, extra: Value) -> Vec<u8> {
    let with_pad = |pad: String| {
        let mut fields = json!({"annotations": {"pad": pad}});
        fields.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
        oci_image(b"{}", &[], Some(fields))
    };
    let base = with_pad(String::new()).len();
    let m = with_pad("x".repeat(target - base));
    assert_eq!(m.len(), target);
    m
}

/// Manifests up to the 4 MiB default limit are taken; over it is `413`.
/// The spec gives no code; berth answers `SIZE_INVALID`.
fn manifest_size_limit(reg: &Registry) {
    let repo = reg.repo();
    reg.push_blob(&repo, b"{}");
    let at_limit = padded_manifest(4 * MIB, json!({}));
    reg.push_manifest(&repo, "limit", OCI_MANIFEST, &at_limit);
    reg.assert_manifest(&repo, "limit", OCI_MANIFEST, &at_limit);
    let over = padded_manifest(4 * MIB + 1, json!({}));
    let r = reg.put_manifest(&repo, "over", OCI_MANIFEST, &over);
    r.expect_error(413, "SIZE_INVALID");
    reg.get_manifest(&repo, "over").expect_error(404, "MANIFEST_UNKNOWN");
}

/// Large manifests of every shape pull back byte for byte: berth keeps small
/// manifests in its table and large ones in the blob store, and what it
/// records beside them (annotations, blob lists, referrer entries) grows
/// with them, so the sizes around its table item limit (350 KiB) matter.
fn manifest_large_manifests(reg: &Registry) {
    let repo = reg.repo();
    reg.push_blob(&repo, b"{}");
    let subject = reg.push_image(&repo, Some("subject"), 1);
    let cases = [
        // Just under the inline limit (192 KiB), mostly one annotation.
        ("inline", padded_manifest(190 * 1024, json!({}))),
        // Out of line, an annotation bigger than a table item.
        ("big", padded_manifest(MIB, json!({}))),
        // A referrer whose annotations are bigger than a table item.
        ("referrer", padded_manifest(600 * 1024, json!({"subject": descriptor(OCI_MANIFEST, &subject.bytes)}))),
    ];
    for (tag, manifest) in &cases {
        let r = reg.put_manifest(&repo, tag, OCI_MANIFEST, manifest);
        assert_eq!(r.status, 201, "{tag} ({} bytes): {}", manifest.len(), r.text());
        reg.assert_manifest(&repo, tag, OCI_MANIFEST, manifest);
    }
    let listed = reg.referrers(&repo, &subject.digest);
    assert_eq!(listed.len(), 1);
    let pad = listed[0]["annotations"]["pad"].as_str().unwrap_or_default();
    assert!(pad.len() > 500 * 1024, "the referrer's annotations are listed whole ({} bytes)", pad.len());
    // Images often repeat a layer (the empty one): 15,000 references to one
    // blob (about 2.6 MB of manifest).
    let layer = random_bytes(32);
    reg.push_blob(&repo, &layer);
    let repeated = vec![layer.as_slice(); 15_000];
    let manifest = oci_image(b"{}", &repeated, None);
    let r = reg.put_manifest(&repo, "repeated", OCI_MANIFEST, &manifest);
    assert_eq!(r.status, 201, "repeated layers ({} bytes): {}", manifest.len(), r.text());
    reg.assert_manifest(&repo, "repeated", OCI_MANIFEST, &manifest);
    // And they go away again.
    for tag in ["inline", "big", "referrer", "repeated"] {
        let digest = reg.head_manifest(&repo, tag).h("docker-content-digest").to_owned();
        reg.delete(&format!("/v2/{repo}/manifests/{digest}")).expect(202);
        reg.get_manifest(&repo, tag).expect_error(404, "MANIFEST_UNKNOWN");
    }
    assert!(reg.referrers(&repo, &subject.digest).is_empty());
}

/// Pushing another manifest to an existing tag moves the tag; the old
/// manifest stays reachable by digest.
fn manifest_repush_moves_the_tag(reg: &Registry) {
    let repo = reg.repo();
    let first = reg.push_image(&repo, Some("latest"), 1);
    let second = reg.push_image(&repo, Some("latest"), 1);
    assert_ne!(first.digest, second.digest);
    reg.assert_manifest(&repo, "latest", OCI_MANIFEST, &second.bytes);
    reg.assert_manifest(&repo, &first.digest, OCI_MANIFEST, &first.bytes);
    assert_eq!(reg.tags(&repo), ["latest"]);
}

// ===========================================================================
// Content discovery
// ===========================================================================

/// Tags come back in lexical order whatever the push order.
///
/// Only lower-case tags are used: on them the spec's "lexical (i.e.
/// case-insensitive alphanumeric)" order and byte order agree. berth (like
/// Distribution) orders tags by their bytes, so `Z` comes before `a`: a
/// known divergence for mixed-case tags, left out of this suite.
fn tags_list_sorted(reg: &Registry) {
    let repo = reg.repo();
    let image = reg.push_image(&repo, Some("latest"), 1);
    let tags = ["v1.10", "v1.2", "1.0", "a_b", "a-b", "a.b", "z", "0", "v1.2-rc1", "__x"];
    for tag in tags {
        reg.push_manifest(&repo, tag, OCI_MANIFEST, &image.bytes);
    }
    let mut want: Vec<String> = tags.iter().map(|t| (*t).to_owned()).chain(["latest".to_owned()]).collect();
    want.sort();
    let r = reg.get(&format!("/v2/{repo}/tags/list"));
    r.expect(200);
    assert!(r.h("content-type").starts_with("application/json"));
    let body = r.json();
    assert_eq!(body["name"], repo.as_str());
    assert_eq!(strings(&body["tags"]), want);
    assert!(r.header("link").is_none(), "everything fits one page");
}

/// `n` and `last`: pages of at most `n` in order, a `Link` to the next page
/// while more follow, and following the links yields every tag exactly once.
fn tags_pagination(reg: &Registry) {
    let repo = reg.repo();
    let image = reg.push_image(&repo, None, 1);
    let mut all: Vec<String> = (0..7).map(|i| format!("t{i}")).collect();
    for tag in &all {
        reg.push_manifest(&repo, tag, OCI_MANIFEST, &image.bytes);
    }
    all.sort();

    // Following Link headers from n=3.
    let mut seen = Vec::new();
    let mut next = Some(format!("/v2/{repo}/tags/list?n=3"));
    let mut pages = 0;
    while let Some(path) = next {
        let r = reg.get(&path);
        r.expect(200);
        let page = strings(&r.json()["tags"]);
        assert!(page.len() <= 3, "page of {} with n=3", page.len());
        next = next_link(&r);
        if next.is_some() {
            assert_eq!(page.len(), 3, "a page with a Link must be full (n results)");
        }
        seen.extend(page);
        pages += 1;
        assert!(pages <= 10, "pagination does not end");
    }
    assert_eq!(seen, all, "every tag exactly once, in order");
    assert_eq!(pages, 3);

    // `last` alone, and with `n`.
    let r = reg.get(&format!("/v2/{repo}/tags/list?last=t3"));
    r.expect(200);
    assert_eq!(strings(&r.json()["tags"]), ["t4", "t5", "t6"]);
    let r = reg.get(&format!("/v2/{repo}/tags/list?n=2&last=t1"));
    r.expect(200);
    assert_eq!(strings(&r.json()["tags"]), ["t2", "t3"]);
    assert!(next_link(&r).is_some());
    // `last` need not be a tag that exists: the list goes on after it.
    let r = reg.get(&format!("/v2/{repo}/tags/list?last=t35"));
    assert_eq!(strings(&r.json()["tags"]), ["t4", "t5", "t6"]);
    // A large n: everything, no Link.
    let r = reg.get(&format!("/v2/{repo}/tags/list?n=100"));
    assert_eq!(strings(&r.json()["tags"]), all);
    assert!(r.header("link").is_none());
    // Exactly n left: no Link either.
    let r = reg.get(&format!("/v2/{repo}/tags/list?n=7"));
    assert_eq!(strings(&r.json()["tags"]).len(), 7);
    assert!(r.header("link").is_none(), "no more tags, no Link");
    // n=0: an empty list and no Link (spec MUST).
    let r = reg.get(&format!("/v2/{repo}/tags/list?n=0"));
    r.expect(200);
    assert_eq!(r.json()["tags"], json!([]));
    assert!(r.header("link").is_none());
    // A non-number n: berth answers 400 PAGINATION_NUMBER_INVALID
    // (distribution's code; the spec has none).
    reg.get(&format!("/v2/{repo}/tags/list?n=many")).expect_error(400, "PAGINATION_NUMBER_INVALID");
}

/// Tags of a repository that does not exist: `404 NAME_UNKNOWN`.
fn tags_of_unknown_repository(reg: &Registry) {
    reg.get(&format!("/v2/{}/tags/list", reg.repo())).expect_error(404, "NAME_UNKNOWN");
    reg.get(&format!("/v2/{}/tags/list?n=1", reg.repo())).expect_error(404, "NAME_UNKNOWN");
}

/// `/v2/_catalog` lists every repository with a manifest, in order, and
/// pages with `n`, `last` and `Link`.
fn catalog_lists_repositories(reg: &Registry) {
    let base = reg.repo();
    let mut repos: Vec<String> = ["c", "a", "b/nested", "b"].iter().map(|s| format!("{base}/{s}")).collect();
    for repo in &repos {
        reg.push_image(repo, Some("v1"), 1);
    }
    // A repository with blobs but no manifest is not (yet) one.
    reg.push_blob(&format!("{base}/blobs-only"), b"x");
    repos.sort();
    let r = reg.get("/v2/_catalog");
    r.expect(200);
    // This server's store holds only this test's repositories.
    assert_eq!(strings(&r.json()["repositories"]), repos);
    let mut seen = Vec::new();
    let mut next = Some("/v2/_catalog?n=3".to_owned());
    while let Some(path) = next {
        let r = reg.get(&path);
        r.expect(200);
        let page = strings(&r.json()["repositories"]);
        assert!(page.len() <= 3);
        next = next_link(&r);
        seen.extend(page);
        assert!(seen.len() <= repos.len(), "pagination repeats: {seen:?}");
    }
    assert_eq!(seen, repos);
    let r = reg.get(&format!("/v2/_catalog?n=1&last={}", enc(&repos[1])));
    assert_eq!(strings(&r.json()["repositories"]), [repos[2].clone()]);
    let r = reg.get("/v2/_catalog?n=0");
    r.expect(200);
    assert_eq!(r.json()["repositories"], json!([]));
    assert!(r.header("link").is_none());
}

/// Pushes the empty config blob `{}` and an artifact manifest with
/// `subject`, checking `OCI-Subject`; returns its bytes.
fn push_referrer(reg: &Registry, repo: &str, subject: &[u8], artifact_type: &str, note: &str) -> Vec<u8> {
    reg.push_blob(repo, b"{}");
    let layer = format!("{note} about {}", sha256(subject)).into_bytes();
    reg.push_blob(repo, &layer);
    let manifest = serde_json::to_vec_pretty(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": descriptor(OCI_EMPTY, b"{}"),
        "layers": [descriptor("application/vnd.example.blob", &layer)],
        "subject": descriptor(OCI_MANIFEST, subject),
        "annotations": {"org.example.note": note, "org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
    }))
    .unwrap();
    let r = reg.put_manifest(repo, &sha256(&manifest), OCI_MANIFEST, &manifest);
    r.expect(201);
    assert_eq!(r.h("oci-subject"), sha256(subject));
    manifest
}

/// The referrers API: descriptors of every manifest with this `subject`,
/// with `artifactType` (an image's config type when it has none, omitted for
/// an index without one) and the annotations; filtering by `artifactType`.
fn referrers_list_and_filter(reg: &Registry) {
    let repo = reg.repo();
    let subject = reg.push_image(&repo, Some("v1"), 1);
    let sbom = push_referrer(reg, &repo, &subject.bytes, "application/vnd.example.sbom.v1", "sbom");
    // An image manifest without artifactType: its config's type is reported.
    let sig_config = b"{\"signature\":true}".to_vec();
    reg.push_blob(&repo, &sig_config);
    let mut sig: Value = serde_json::from_slice(&oci_image(&sig_config, &[], None)).unwrap();
    sig["config"]["mediaType"] = json!("application/vnd.example.signature.config.v1+json");
    sig["subject"] = descriptor(OCI_MANIFEST, &subject.bytes);
    let sig = serde_json::to_vec(&sig).unwrap();
    let r = reg.put_manifest(&repo, "sig", OCI_MANIFEST, &sig);
    r.expect(201);
    assert_eq!(r.h("oci-subject"), subject.digest);
    // An index with a subject and no artifactType.
    let index = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [],
        "subject": descriptor(OCI_MANIFEST, &subject.bytes), "annotations": {"kind": "index"}}))
    .unwrap();
    let r = reg.put_manifest(&repo, &sha256(&index), OCI_INDEX, &index);
    r.expect(201);
    assert_eq!(r.h("oci-subject"), subject.digest);

    let r = reg.get(&format!("/v2/{repo}/referrers/{}", subject.digest));
    r.expect(200);
    assert_eq!(r.h("content-type"), OCI_INDEX);
    assert!(r.header("oci-filters-applied").is_none());
    let body = r.json();
    assert_eq!(body["schemaVersion"], 2);
    assert_eq!(body["mediaType"], OCI_INDEX);
    let found = body["manifests"].as_array().unwrap();
    assert_eq!(found.len(), 3, "{body}");
    let by_digest = |bytes: &[u8]| {
        let d = sha256(bytes);
        found.iter().find(|m| m["digest"] == d.as_str()).unwrap_or_else(|| panic!("{d} not listed: {body}")).clone()
    };
    let entry = by_digest(&sbom);
    assert_eq!(entry["mediaType"], OCI_MANIFEST);
    assert_eq!(entry["size"], sbom.len());
    assert_eq!(entry["artifactType"], "application/vnd.example.sbom.v1");
    assert_eq!(
        entry["annotations"],
        json!({"org.example.note": "sbom", "org.opencontainers.image.created": "2024-01-01T00:00:00Z"})
    );
    let entry = by_digest(&sig);
    assert_eq!(entry["artifactType"], "application/vnd.example.signature.config.v1+json");
    assert_eq!(entry["size"], sig.len());
    let entry = by_digest(&index);
    assert_eq!(entry["mediaType"], OCI_INDEX);
    assert!(entry.get("artifactType").is_none(), "an index without artifactType has none: {entry}");
    assert_eq!(entry["annotations"], json!({"kind": "index"}));

    // Filtered.
    let path =
        format!("/v2/{repo}/referrers/{}?artifactType={}", subject.digest, enc("application/vnd.example.sbom.v1"));
    let r = reg.get(&path);
    r.expect(200);
    assert_eq!(r.h("oci-filters-applied"), "artifactType");
    let found = r.json()["manifests"].as_array().unwrap().clone();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["digest"], sha256(&sbom));
    // A filter nothing matches: an empty list, still filtered.
    let r = reg.get(&format!("/v2/{repo}/referrers/{}?artifactType={}", subject.digest, enc("application/x-none")));
    r.expect(200);
    assert_eq!(r.h("oci-filters-applied"), "artifactType");
    assert_eq!(r.json()["manifests"], json!([]));
    // The referrers of a referrer are its own (none here).
    assert!(reg.referrers(&repo, &sha256(&sbom)).is_empty());
}

/// Referrers of a digest nothing refers to: `200` and an empty list, never
/// `404`. Also in a repository that does not exist (berth answers the same;
/// the spec only says "assuming a repository is found"); a malformed
/// digest is `400`.
fn referrers_of_unknown_digest(reg: &Registry) {
    let repo = reg.repo();
    reg.push_image(&repo, Some("v1"), 1);
    let unknown = sha256(b"nothing refers to this");
    let r = reg.get(&format!("/v2/{repo}/referrers/{unknown}"));
    r.expect(200);
    assert_eq!(r.h("content-type"), OCI_INDEX);
    let body = r.json();
    assert_eq!(body["schemaVersion"], 2);
    assert_eq!(body["manifests"], json!([]));
    assert!(reg.referrers(&reg.repo(), &unknown).is_empty());
    reg.get(&format!("/v2/{repo}/referrers/sha256:zz")).expect_error(400, "DIGEST_INVALID");
}

/// A referrer may be pushed before its subject exists; it is listed, and
/// the subject pushed later is served normally.
fn referrers_subject_pushed_after_referrer(reg: &Registry) {
    let repo = reg.repo();
    let config = b"{\"later\":true}".to_vec();
    reg.push_blob(&repo, &config);
    let subject = oci_image(&config, &[], None);
    let subject_digest = sha256(&subject);
    let referrer = push_referrer(reg, &repo, &subject, "application/vnd.example.early.v1", "early");
    reg.get_manifest(&repo, &subject_digest).expect_error(404, "MANIFEST_UNKNOWN");
    let listed = reg.referrers(&repo, &subject_digest);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["digest"], sha256(&referrer));
    reg.push_manifest(&repo, &subject_digest, OCI_MANIFEST, &subject);
    reg.assert_manifest(&repo, &subject_digest, OCI_MANIFEST, &subject);
    let listed = reg.referrers(&repo, &subject_digest);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["artifactType"], "application/vnd.example.early.v1");
}

// ===========================================================================
// Content management
// ===========================================================================

/// DELETE of a tag: `202`; the tag is gone, the manifest stays by digest
/// and under its other tags.
fn delete_tag_keeps_the_manifest(reg: &Registry) {
    let repo = reg.repo();
    let image = reg.push_image(&repo, Some("gone"), 1);
    reg.push_manifest(&repo, "kept", OCI_MANIFEST, &image.bytes);
    reg.delete(&format!("/v2/{repo}/manifests/gone")).expect(202);
    reg.get_manifest(&repo, "gone").expect_error(404, "MANIFEST_UNKNOWN");
    reg.assert_manifest(&repo, &image.digest, OCI_MANIFEST, &image.bytes);
    reg.assert_manifest(&repo, "kept", OCI_MANIFEST, &image.bytes);
    assert_eq!(reg.tags(&repo), ["kept"]);
    reg.delete(&format!("/v2/{repo}/manifests/gone")).expect_error(404, "MANIFEST_UNKNOWN");
    // With its last tag gone the repository still exists: an empty list
    // (the spec allows it).
    reg.delete(&format!("/v2/{repo}/manifests/kept")).expect(202);
    assert!(reg.tags(&repo).is_empty());
    reg.assert_manifest(&repo, &image.digest, OCI_MANIFEST, &image.bytes);
}

/// DELETE of a manifest by digest: `202`; it and every tag on it are gone;
/// a second DELETE is `404`. Other manifests are untouched.
fn delete_manifest_by_digest(reg: &Registry) {
    let repo = reg.repo();
    let image = reg.push_image(&repo, Some("a"), 1);
    reg.push_manifest(&repo, "b", OCI_MANIFEST, &image.bytes);
    let other = reg.push_image(&repo, Some("other"), 1);
    reg.delete(&format!("/v2/{repo}/manifests/{}", image.digest)).expect(202);
    reg.get_manifest(&repo, &image.digest).expect_error(404, "MANIFEST_UNKNOWN");
    reg.head_manifest(&repo, &image.digest).expect(404);
    reg.get_manifest(&repo, "a").expect_error(404, "MANIFEST_UNKNOWN");
    reg.get_manifest(&repo, "b").expect_error(404, "MANIFEST_UNKNOWN");
    assert_eq!(reg.tags(&repo), ["other"]);
    reg.assert_manifest(&repo, "other", OCI_MANIFEST, &other.bytes);
    reg.delete(&format!("/v2/{repo}/manifests/{}", image.digest)).expect_error(404, "MANIFEST_UNKNOWN");
    // In a repository that does not exist: 404 as well.
    let never = reg.repo();
    reg.delete(&format!("/v2/{never}/manifests/{}", image.digest)).expect_error(404, "MANIFEST_UNKNOWN");
    reg.delete(&format!("/v2/{never}/manifests/latest")).expect_error(404, "MANIFEST_UNKNOWN");
    // Its blobs are still linked (only GC removes bytes).
    reg.assert_blob(&repo, &sha256(&image.layers[0]), &image.layers[0]);
    // It can be pushed again.
    reg.push_manifest(&repo, "a", OCI_MANIFEST, &image.bytes);
}

/// DELETE of a blob: `202`, then `404` for GET, HEAD and a second DELETE;
/// another repository's link to the same bytes is untouched.
fn delete_blob(reg: &Registry) {
    let (repo, other) = (reg.repo(), reg.repo());
    let blob = random_bytes(999);
    let digest = reg.push_blob(&repo, &blob);
    reg.push_blob(&other, &blob);
    reg.delete(&format!("/v2/{repo}/blobs/{digest}")).expect(202);
    reg.get(&format!("/v2/{repo}/blobs/{digest}")).expect_error(404, "BLOB_UNKNOWN");
    reg.head(&format!("/v2/{repo}/blobs/{digest}")).expect(404);
    reg.delete(&format!("/v2/{repo}/blobs/{digest}")).expect_error(404, "BLOB_UNKNOWN");
    reg.assert_blob(&other, &digest, &blob);
}

/// Deleting a referring manifest removes its referrers entry.
fn delete_referrer_updates_the_referrers_list(reg: &Registry) {
    let repo = reg.repo();
    let subject = reg.push_image(&repo, Some("v1"), 1);
    let first = push_referrer(reg, &repo, &subject.bytes, "application/vnd.example.a.v1", "a");
    let second = push_referrer(reg, &repo, &subject.bytes, "application/vnd.example.b.v1", "b");
    assert_eq!(reg.referrers(&repo, &subject.digest).len(), 2);
    reg.delete(&format!("/v2/{repo}/manifests/{}", sha256(&first))).expect(202);
    let listed = reg.referrers(&repo, &subject.digest);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["digest"], sha256(&second));
    reg.delete(&format!("/v2/{repo}/manifests/{}", sha256(&second))).expect(202);
    assert!(reg.referrers(&repo, &subject.digest).is_empty());
    // The subject is untouched.
    reg.assert_manifest(&repo, "v1", OCI_MANIFEST, &subject.bytes);
}

// ===========================================================================
// Errors, names and authentication
// ===========================================================================

/// Names outside the grammar (or without a project) are `400 NAME_INVALID`
/// on every route that takes a name.
fn invalid_repository_names(reg: &Registry) {
    let digest = sha256(b"x");
    let long = format!("library/{}", "a".repeat(250));
    let names =
        ["library/Upper", "Library/x", "library/a..b", "conf", "library//x", "library/-x", "library/x-", long.as_str()];
    for name in names {
        let paths = [
            format!("/v2/{name}/tags/list"),
            format!("/v2/{name}/manifests/latest"),
            format!("/v2/{name}/blobs/{digest}"),
            format!("/v2/{name}/referrers/{digest}"),
        ];
        for path in &paths {
            let r = reg.get(path);
            assert_eq!(r.status, 400, "{path}: {}", r.text());
            assert_eq!(error_code(&r), "NAME_INVALID", "{path}");
        }
        let r = reg.call(reg.req(Method::POST, &format!("/v2/{name}/blobs/uploads/")).header("content-length", "0"));
        assert_eq!((r.status, error_code(&r).as_str()), (400, "NAME_INVALID"), "POST upload to {name}");
        let r = reg.put_manifest(name, "v1", OCI_MANIFEST, b"{}");
        assert_eq!((r.status, error_code(&r).as_str()), (400, "NAME_INVALID"), "PUT manifest to {name}");
    }
    // `..` as a whole path component: HTTP clients resolve it away, so it
    // is sent over a raw socket.
    for path in ["/v2/library/../x/tags/list", "/v2/library/./x/manifests/latest"] {
        let (status, body) = reg.raw_get(path);
        assert_eq!(status, 400, "{path}: {}", String::from_utf8_lossy(&body));
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["errors"][0]["code"], "NAME_INVALID", "{path}");
    }
}

/// Malformed digests in paths (and in `?digest=`) are `400 DIGEST_INVALID`.
fn invalid_digests(reg: &Registry) {
    let repo = reg.repo();
    reg.push_image(&repo, Some("v1"), 1);
    let bad = ["sha256:nothex", "sha256:abc", "sha256:", "md5:d41d8cd98f00b204e9800998ecf8427e", "notadigest"];
    for d in bad {
        let r = reg.get(&format!("/v2/{repo}/blobs/{d}"));
        assert_eq!((r.status, error_code(&r).as_str()), (400, "DIGEST_INVALID"), "blob {d}: {}", r.text());
        assert_eq!(reg.head(&format!("/v2/{repo}/blobs/{d}")).status, 400, "HEAD blob {d}");
        let r = reg.delete(&format!("/v2/{repo}/blobs/{d}"));
        assert_eq!((r.status, error_code(&r).as_str()), (400, "DIGEST_INVALID"), "DELETE blob {d}");
        let r = reg.get(&format!("/v2/{repo}/referrers/{d}"));
        assert_eq!((r.status, error_code(&r).as_str()), (400, "DIGEST_INVALID"), "referrers {d}");
        if d.contains(':') {
            // Without a ':' it is read as a (bad) tag, not a digest.
            let r = reg.get_manifest(&repo, d);
            assert_eq!((r.status, error_code(&r).as_str()), (400, "DIGEST_INVALID"), "manifest {d}");
        }
    }
}

/// Without credentials, or with wrong ones: `401` with a Basic challenge
/// naming the realm, and an `UNAUTHORIZED` body.
fn authentication_required(reg: &Registry) {
    let repo = reg.repo();
    reg.push_image(&repo, Some("v1"), 1);
    // A private project, made through the management API.
    let project = berth::testkit::unique("private-");
    let created = reg.call(
        reg.req(Method::POST, "/api/v2.0/projects")
            .header("content-type", "application/json")
            .body(format!(r#"{{"project_name":"{project}","public":false}}"#)),
    );
    created.expect(201);
    let private = format!("{project}/app");
    reg.push_image(&private, Some("v1"), 1);

    let challenge = |r: &Resp| {
        assert_eq!(r.status, 401, "{}", r.text());
        let www = r.h("www-authenticate");
        assert!(www.starts_with("Basic realm=\"berth\"") || www.starts_with("Bearer realm=\"http"), "{www}");
        assert_eq!(error_code(r), "UNAUTHORIZED");
    };
    let paths = [
        "/v2/".to_owned(),
        format!("/v2/{repo}/manifests/v1"),
        format!("/v2/{repo}/tags/list"),
        format!("/v2/{private}/manifests/v1"),
        "/v2/_catalog".to_owned(),
    ];
    // Bad credentials are refused everywhere, public project or not.
    for path in &paths {
        challenge(&reg.call(reg.anon(Method::GET, path).basic_auth(USER, Some("wrong password"))));
        challenge(&reg.call(reg.anon(Method::GET, path).basic_auth("nobody", Some(PASSWORD))));
        challenge(&reg.call(reg.anon(Method::GET, path).header("authorization", "Basic !!!not-base64")));
        challenge(&reg.call(reg.anon(Method::GET, path).header("authorization", "Bearer some.token")));
    }
    // Without credentials: the registry root, the catalog and a private
    // project ask for them; a public project (library) may be pulled.
    for path in [
        "/v2/".to_owned(),
        "/v2/_catalog".to_owned(),
        format!("/v2/{private}/manifests/v1"),
        format!("/v2/{private}/tags/list"),
    ] {
        challenge(&reg.call(reg.anon(Method::GET, &path)));
    }
    reg.call(reg.anon(Method::GET, &format!("/v2/{repo}/manifests/v1"))).expect(200);
    reg.call(reg.anon(Method::GET, &format!("/v2/{repo}/tags/list"))).expect(200);
    // Writing always needs credentials.
    challenge(&reg.call(reg.anon(Method::POST, &format!("/v2/{repo}/blobs/uploads/")).header("content-length", "0")));
    challenge(&reg.call(reg.anon(Method::DELETE, &format!("/v2/{repo}/manifests/v1"))));
    // HEAD answers have no body, but the same status and challenge.
    let r = reg.call(reg.anon(Method::HEAD, &format!("/v2/{private}/manifests/v1")));
    assert_eq!(r.status, 401);
    assert!(r.h("www-authenticate").starts_with("Bearer "));
    // Nothing was deleted.
    reg.get_manifest(&repo, "v1").expect(200);
    // With credentials, the base endpoint answers 200 and the API version.
    let r = reg.get("/v2/");
    r.expect(200);
    assert_eq!(r.h("docker-distribution-api-version"), "registry/2.0");
}

/// Unknown endpoints are `404` with a JSON error body; a known endpoint with
/// a method it does not take is `405`. berth uses the spec's `UNSUPPORTED`
/// code for both.
fn unknown_endpoints(reg: &Registry) {
    let repo = reg.repo();
    reg.push_image(&repo, Some("v1"), 1);
    for path in [format!("/v2/{repo}/nothing/here"), format!("/v2/{repo}"), "/v2/_nothing".to_owned()] {
        let r = reg.get(&path);
        assert_eq!(r.status, 404, "{path}: {}", r.text());
        assert_eq!(error_code(&r), "UNSUPPORTED", "{path}");
    }
    let cases = [
        (Method::POST, format!("/v2/{repo}/manifests/v1")),
        (Method::PATCH, format!("/v2/{repo}/manifests/v1")),
        (Method::PUT, format!("/v2/{repo}/tags/list")),
        (Method::DELETE, "/v2/_catalog".to_owned()),
        (Method::PUT, format!("/v2/{repo}/blobs/uploads/")),
    ];
    for (method, path) in cases {
        let r = reg.call(reg.req(method.clone(), &path));
        assert_eq!(r.status, 405, "{method} {path}: {}", r.text());
        assert_eq!(error_code(&r), "UNSUPPORTED", "{method} {path}");
    }
    reg.get_manifest(&repo, "v1").expect(200);
}

// ===========================================================================
// Concurrency
// ===========================================================================

/// Two clients push different manifests to one tag at the same moment,
/// several times: each push succeeds or fails cleanly, and afterwards the
/// tag names exactly one of the two, served whole and matching its digest.
fn concurrent_pushes_to_one_tag(reg: &Registry) {
    let repo = reg.repo();
    let a = reg.push_image(&repo, None, 1);
    let b = reg.push_image(&repo, None, 1);
    for round in 0..6 {
        let tag = format!("race{}", round % 2);
        let barrier = Barrier::new(2);
        let statuses: Vec<Resp> = std::thread::scope(|s| {
            let push = |image: &Image| {
                let (barrier, repo, tag) = (&barrier, &repo, &tag);
                let bytes = image.bytes.clone();
                s.spawn(move || {
                    barrier.wait();
                    reg.put_manifest(repo, tag, OCI_MANIFEST, &bytes)
                })
            };
            let (ha, hb) = (push(&a), push(&b));
            vec![ha.join().unwrap(), hb.join().unwrap()]
        });
        for r in &statuses {
            assert!(r.status == 201 || (400..500).contains(&r.status), "round {round}: {} {}", r.status, r.text());
            if r.status != 201 {
                error_code(r);
            }
        }
        assert!(statuses.iter().any(|r| r.status == 201), "round {round}: neither push succeeded");
        let got = reg.get_manifest(&repo, &tag);
        got.expect(200);
        let served = got.h("docker-content-digest").to_owned();
        assert!(served == a.digest || served == b.digest, "round {round}: tag names {served}");
        assert_eq!(sha256(&got.body), served, "round {round}: the body is the manifest the digest names");
        assert_eq!(got.h("content-length"), got.body.len().to_string());
        let want = if served == a.digest { &a.bytes } else { &b.bytes };
        assert!(&got.body == want);
    }
    assert_eq!(reg.tags(&repo), ["race0", "race1"]);
    reg.assert_healthy();
}

/// Four clients upload the same blob (over a part, so through multipart
/// assembly) into one repository at once, and one more into another: every
/// upload succeeds and the blob is intact.
fn concurrent_uploads_of_one_blob(reg: &Registry) {
    let (repo, other) = (reg.repo(), reg.repo());
    let blob = random_bytes(9 * MIB);
    let digest = sha256(&blob);
    let barrier = Barrier::new(5);
    std::thread::scope(|s| {
        let handles: Vec<_> = [&repo, &repo, &repo, &repo, &other]
            .into_iter()
            .map(|repo| {
                let (barrier, blob, digest) = (&barrier, &blob, &digest);
                s.spawn(move || {
                    let location = reg.start_upload(repo);
                    barrier.wait();
                    reg.finish_upload(&location, digest, blob.clone(), None)
                })
            })
            .collect();
        for h in handles {
            let r = h.join().unwrap();
            r.expect(201);
            assert_eq!(r.h("docker-content-digest"), digest);
        }
    });
    for repo in [&repo, &other] {
        let got = reg.fetch_blob(repo, &digest, None);
        got.expect(200);
        assert_eq!(sha256(&got.body), digest);
    }
    reg.assert_healthy();
}

/// Two PATCHes of the same chunk range race on one upload, their bodies
/// trickling in so that both are in flight at once: no panic, at most one
/// wins, and the upload then completes with the winner's bytes (or ends in
/// a clean 4xx). Once with small chunks (staged bytes), once with chunks
/// over a part (multipart parts).
fn racing_patches_on_one_upload(reg: &Registry) {
    let repo = reg.repo();
    for (size, piece) in [(200_000, 10_000), (9 * MIB, 512 * 1024)] {
        let bodies = [random_bytes(size), random_bytes(size)];
        let location = reg.start_upload(&repo);
        let barrier = Barrier::new(2);
        let results: Vec<Resp> = std::thread::scope(|s| {
            let handles: Vec<_> = bodies
                .iter()
                .map(|body| {
                    let (barrier, location) = (&barrier, &location);
                    let trickle = Trickle { data: body.clone(), pos: 0, piece, pause: Duration::from_millis(10) };
                    s.spawn(move || {
                        barrier.wait();
                        reg.call(
                            reg.req(Method::PATCH, location)
                                .header("content-type", "application/octet-stream")
                                .header("content-range", chunk_range(0, size))
                                .body(Body::new(trickle)),
                        )
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for r in &results {
            assert!(r.status == 202 || (400..500).contains(&r.status), "{size}: {} {}", r.status, r.text());
            if r.status != 202 {
                error_code(r);
            }
        }
        // Both claim bytes 0-<size-1>, so at most one can be taken; the
        // other fails (416 if it came second, 400 if it lost the race).
        let winners: Vec<usize> = (0..2).filter(|&i| results[i].status == 202).collect();
        assert!(winners.len() <= 1, "{size}: both PATCHes of bytes 0-{} were accepted", size - 1);
        for r in results.iter().filter(|r| r.status != 202) {
            assert!([400, 416].contains(&r.status), "{size}: {} {}", r.status, r.text());
            assert_eq!(error_code(r), "BLOB_UPLOAD_INVALID");
        }
        let status = reg.get(&location);
        if let [w] = winners[..] {
            status.expect(204);
            assert_eq!(status.h("range"), format!("0-{}", size - 1));
            let digest = sha256(&bodies[w]);
            let put = reg.finish_upload(&location, &digest, Vec::new(), None);
            assert!(put.status == 201 || (400..500).contains(&put.status), "{size}: {} {}", put.status, put.text());
            if put.status == 201 {
                let got = reg.fetch_blob(&repo, &digest, None);
                got.expect(200);
                assert_eq!(sha256(&got.body), digest, "{size}: the winner's bytes");
            } else {
                error_code(&put);
            }
        } else {
            // Both lost: the session is unchanged (or gone), never broken.
            assert!(status.status == 204 || status.status == 404, "{size}: {}", status.status);
        }
    }
    reg.assert_healthy();
}

// ---------------------------------------------------------------------------
// The test functions: every scenario on both backends
// ---------------------------------------------------------------------------

/// Generates `local::<scenario>` and `aws::<scenario>` test functions, each
/// on a fresh server of that backend.
macro_rules! conformance {
    ($($scenario:ident),* $(,)?) => {
        /// Files and the embedded database.
        mod local {
            $(
                #[test]
                fn $scenario() {
                    super::$scenario(&super::Registry::start(super::Backend::Local));
                }
            )*
        }
        /// S3, DynamoDB and SQS on the AWS emulator.
        mod aws {
            $(
                #[test]
                fn $scenario() {
                    if crate::support::emulator(concat!("oci_conformance::aws::", stringify!($scenario))) {
                        super::$scenario(&super::Registry::start(super::Backend::Aws));
                    }
                }
            )*
        }
    };
}

conformance!(
    // Pull
    pull_manifest_by_tag_and_digest,
    pull_blob_get_and_head,
    pull_missing_content_is_404,
    pull_blob_ranges,
    pull_is_scoped_to_the_repository,
    // Push
    push_monolithic_post_then_put,
    push_single_post_with_digest,
    push_streamed_patch_then_put,
    push_chunked_small_chunks,
    push_chunked_large_blob_spanning_parts,
    push_chunk_out_of_order_then_resume,
    push_wrong_digest_is_refused,
    push_sha512_digests,
    push_cancel_upload,
    push_unknown_upload_session,
    push_cross_repo_mount,
    push_mount_fallback_starts_upload,
    push_to_unknown_project,
    // Manifests
    manifest_oci_image_by_tag_and_by_digest,
    manifest_oci_index,
    manifest_docker_schema2_and_list,
    manifest_without_layers,
    manifest_with_missing_blob,
    manifest_invalid,
    manifest_put_by_mismatching_digest,
    manifest_size_limit,
    manifest_large_manifests,
    manifest_repush_moves_the_tag,
    // Content discovery
    tags_list_sorted,
    tags_pagination,
    tags_of_unknown_repository,
    catalog_lists_repositories,
    referrers_list_and_filter,
    referrers_of_unknown_digest,
    referrers_subject_pushed_after_referrer,
    // Content management
    delete_tag_keeps_the_manifest,
    delete_manifest_by_digest,
    delete_blob,
    delete_referrer_updates_the_referrers_list,
    // Errors, names and authentication
    invalid_repository_names,
    invalid_digests,
    authentication_required,
    unknown_endpoints,
    // Concurrency
    concurrent_pushes_to_one_tag,
    concurrent_uploads_of_one_blob,
    racing_patches_on_one_upload,
);

//! Proxy-cache projects (F14): a project bound to a registry endpoint, in
//! front of Debian's Distribution started here, behind a counting and
//! fault-injecting HTTP proxy written here. The first pull fetches (each
//! blob once, even under concurrent pulls), the next is local; with the
//! upstream answering 429, then stopped, the cached image still pulls
//! bit-exact with docker, podman and skopeo. An index is stored before its
//! children, one child pulled, its `references` in the API; pushes are
//! refused; doublestar and regex filters; the quota; the default 7-day
//! retention policy; the endpoint cannot go while a project uses it.
//!
//! Harbor's own `test_proxy_cache.py` cannot run here: its upstream is
//! registry.goharbor.io.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::support::app::{ADMIN_PASSWORD, TestApp, TestAppBuilder};
use crate::support::cli::{DockerCleanup, docker, docker_login, ok, podman, require, require_docker};
use crate::support::distribution::Distribution;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const ACCEPT_ALL: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

// ------------------------------------------------------------ the proxy

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Forward,
    /// Every request answered 429 with `Retry-After: 1`.
    TooMany,
}

/// A counting, fault-injecting HTTP proxy in front of the upstream.
struct Fault {
    upstream: String,
    mode: Mutex<Mode>,
    /// `METHOD path` of every request, and the status answered.
    seen: Mutex<Vec<(String, u16)>>,
}

impl Fault {
    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn count(&self, what: &str) -> usize {
        self.seen.lock().unwrap().iter().filter(|(w, _)| w.as_str() == what).count()
    }

    fn total(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    fn statuses(&self) -> Vec<u16> {
        self.seen.lock().unwrap().iter().map(|(_, s)| *s).collect()
    }
}

async fn relay(fault: Arc<Fault>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let what = format!("{method} {}", uri.path());
    if *fault.mode.lock().unwrap() == Mode::TooMany {
        fault.seen.lock().unwrap().push((what, 429));
        return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], "slow down").into_response();
    }
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut req = client.request(method, format!("{}{path}", fault.upstream)).body(body);
    for (k, v) in &headers {
        if k != "host" {
            req = req.header(k, v);
        }
    }
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => {
            fault.seen.lock().unwrap().push((what, 502));
            return (StatusCode::BAD_GATEWAY, e.to_string()).into_response();
        }
    };
    let status = resp.status();
    fault.seen.lock().unwrap().push((what, status.as_u16()));
    let mut out = HeaderMap::new();
    for (k, v) in resp.headers() {
        if k != "transfer-encoding" && k != "connection" {
            out.insert(k.clone(), v.clone());
        }
    }
    let bytes = resp.bytes().await.unwrap_or_default();
    (status, out, bytes).into_response()
}

/// The proxy on a loopback port; its task ends (and the port refuses
/// connections) when aborted.
async fn start_fault(upstream: String) -> (Arc<Fault>, SocketAddr, tokio::task::JoinHandle<()>) {
    let fault = Arc::new(Fault { upstream, mode: Mutex::new(Mode::Forward), seen: Mutex::default() });
    let f = fault.clone();
    let app = axum::Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
        relay(f.clone(), method, uri, headers, body)
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (fault, addr, task)
}

// ------------------------------------------------------------ upstream content

fn sha(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u64).wrapping_mul(2_654_435_761).wrapping_add(u64::from(seed)) as u8).collect()
}

async fn put_blob(url: &str, repo: &str, bytes: &[u8]) -> String {
    let client = reqwest::Client::new();
    let d = sha(bytes);
    let r = client.post(format!("{url}/v2/{repo}/blobs/uploads/")).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let location = if location.starts_with("http") { location } else { format!("{url}{location}") };
    let sep = if location.contains('?') { '&' } else { '?' };
    let r = client.put(format!("{location}{sep}digest={d}")).body(bytes.to_vec()).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    d
}

async fn put_manifest(url: &str, repo: &str, reference: &str, media: &str, body: &[u8]) -> String {
    let r = reqwest::Client::new()
        .put(format!("{url}/v2/{repo}/manifests/{reference}"))
        .header("content-type", media)
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    sha(body)
}

/// An OCI image of one layer of `size` bytes in `repo:tag` upstream:
/// (manifest digest, config digest, layer digest).
async fn upstream_image(
    url: &str,
    repo: &str,
    tag: &str,
    size: usize,
    seed: u8,
    arch: &str,
) -> (String, Vec<u8>, [String; 2]) {
    let config =
        format!(r#"{{"architecture":"{arch}","os":"linux","seed":{seed},"rootfs":{{"type":"layers","diff_ids":[]}}}}"#);
    let layer = pattern(size, seed);
    let c = put_blob(url, repo, config.as_bytes()).await;
    let l = put_blob(url, repo, &layer).await;
    let m = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": c, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": l, "size": layer.len()}]});
    let body = serde_json::to_vec(&m).unwrap();
    let d = put_manifest(url, repo, tag, OCI_MANIFEST, &body).await;
    (d, body, [c, l])
}

// ------------------------------------------------------------ berth side

async fn endpoint(app: &TestApp, url: &str) -> i64 {
    let name = berth::testkit::unique("upstream-");
    let body = json!({"name": name, "type": "docker-registry", "url": url, "insecure": true});
    app.admin().post("/api/v2.0/registries").json(&body).send().await.success().location_id()
}

async fn proxy_project(app: &TestApp, name: &str, registry_id: i64, metadata: Value) -> i64 {
    let body = json!({"project_name": name, "public": false, "registry_id": registry_id, "metadata": metadata});
    app.admin().post("/api/v2.0/projects").json(&body).send().await.success().location_id()
}

fn proxy_builder(ttl: u64) -> TestAppBuilder {
    TestApp::builder().config(move |c| {
        c.proxy.tag_ttl_secs = ttl;
        c.proxy.timeout_secs = 5;
    })
}

/// The HTTP flow every backend must pass; returns the project, the proxy
/// and its task (for the client part).
async fn core_flow(app: &TestApp) {
    let mut upstream = Distribution::start(&[]);
    let (fault, addr, task) = start_fault(upstream.url()).await;
    let registry_id = endpoint(app, &format!("http://{addr}")).await;
    let project = berth::testkit::unique("cache-");
    let project_id = proxy_project(app, &project, registry_id, json!({})).await;

    // The project shows its registry, and got the 7-day retention policy.
    let p: Value = app.admin().get(&format!("/api/v2.0/projects/{project_id}")).send().await.success().json();
    assert_eq!(p["registry_id"], registry_id);
    let retention_id = p["metadata"]["retention_id"].as_str().expect("a retention policy").to_owned();
    let r: Value = app.admin().get(&format!("/api/v2.0/retentions/{retention_id}")).send().await.success().json();
    assert_eq!(r["rules"][0]["template"], "nDaysSinceLastPull");
    assert_eq!(r["rules"][0]["params"]["nDaysSinceLastPull"], 7);

    let (digest, body, [config, layer]) =
        upstream_image(&upstream.url(), "team/app", "1", 2 * 1024 * 1024 + 5, 1, "amd64").await;
    let admin = app.admin();
    let before = fault.total();
    let m =
        admin.get(&format!("/v2/{project}/team/app/manifests/1")).header("accept", ACCEPT_ALL).send().await.success();
    assert_eq!(m.header("docker-content-digest"), digest);
    assert_eq!(m.body, body, "bit-exact");
    assert_eq!(fault.count("GET /v2/team/app/manifests/1"), 1);
    assert_eq!(fault.count(&format!("GET /v2/team/app/blobs/{layer}")), 1, "blobs came with the manifest");
    assert_eq!(fault.count(&format!("GET /v2/team/app/blobs/{config}")), 1);
    let first = fault.total() - before;
    for d in [&config, &layer] {
        let b = admin.get(&format!("/v2/{project}/team/app/blobs/{d}")).send().await;
        assert!(matches!(b.code(), 200 | 307), "{}", b.text());
    }
    // Within the time-to-live nothing is asked again.
    admin.get(&format!("/v2/{project}/team/app/manifests/1")).header("accept", ACCEPT_ALL).send().await.success();
    assert_eq!(fault.total() - before, first, "the second pull is local");

    // An ordinary artifact of the project: listed, counted in the quota.
    let arts: Value = admin
        .get(&format!("/api/v2.0/projects/{project}/repositories/team%252Fapp/artifacts"))
        .send()
        .await
        .success()
        .json();
    assert_eq!(arts[0]["digest"], digest);
    let q: Value = admin
        .get(&format!("/api/v2.0/quotas?reference=project&reference_id={project_id}"))
        .send()
        .await
        .success()
        .json();
    assert!(q[0]["used"]["storage"].as_i64().unwrap() > 2 * 1024 * 1024, "{q}");

    // Concurrent pulls of a blob berth lacks: one upstream fetch.
    let big = pattern(1024 * 1024 + 3, 9);
    let big_digest = put_blob(&upstream.url(), "team/other", &big).await;
    let pulls = (0..5).map(|_| admin.get(&format!("/v2/{project}/team/other/blobs/{big_digest}")).send());
    for r in futures::future::join_all(pulls).await {
        assert!(matches!(r.code(), 200 | 307), "{}", r.text());
    }
    assert_eq!(fault.count(&format!("GET /v2/team/other/blobs/{big_digest}")), 1, "one fetch");
    let unknown = sha(b"never pushed");
    let r = admin.get(&format!("/v2/{project}/team/other/blobs/{unknown}")).send().await;
    assert_eq!(r.status_and_code(), (404, "BLOB_UNKNOWN".to_owned()));
    let r = admin.get(&format!("/v2/{project}/team/app/manifests/nope")).send().await;
    assert_eq!(r.status_and_code(), (404, "MANIFEST_UNKNOWN".to_owned()));

    // An index: stored before its children; one child pulled.
    let (arm, arm_body, _) = upstream_image(&upstream.url(), "team/multi", "arm", 1000, 2, "arm64").await;
    let (amd, amd_body, _) = upstream_image(&upstream.url(), "team/multi", "amd", 1000, 3, "amd64").await;
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": amd, "size": amd_body.len(), "platform": {"architecture": "amd64", "os": "linux"}},
        {"mediaType": OCI_MANIFEST, "digest": arm, "size": arm_body.len(), "platform": {"architecture": "arm64", "os": "linux"}}]});
    let index_body = serde_json::to_vec(&index).unwrap();
    let index_digest = put_manifest(&upstream.url(), "team/multi", "both", OCI_INDEX, &index_body).await;
    let got = admin
        .get(&format!("/v2/{project}/team/multi/manifests/both"))
        .header("accept", ACCEPT_ALL)
        .send()
        .await
        .success();
    assert_eq!(got.header("docker-content-digest"), index_digest);
    let child = admin
        .get(&format!("/v2/{project}/team/multi/manifests/{arm}"))
        .header("accept", ACCEPT_ALL)
        .send()
        .await
        .success();
    assert_eq!(child.body, arm_body);
    let a: Value = admin
        .get(&format!("/api/v2.0/projects/{project}/repositories/team%252Fmulti/artifacts/both"))
        .send()
        .await
        .success()
        .json();
    let refs = a["references"].as_array().unwrap();
    assert_eq!(refs.len(), 1, "the child pulled: {a}");
    assert_eq!(refs[0]["child_digest"], arm);

    // Pushes are refused.
    let r = admin
        .put(&format!("/v2/{project}/team/app/manifests/2"))
        .header("content-type", OCI_MANIFEST)
        .body(body.clone())
        .send()
        .await;
    assert_eq!(r.status_and_code(), (403, "DENIED".to_owned()));
    assert!(r.text().contains("can not push artifact to a proxy project"), "{}", r.text());
    let r = admin.post(&format!("/v2/{project}/team/app/blobs/uploads/")).send().await;
    assert_eq!(r.code(), 403);

    // The upstream answers 429: the cached copy is served (after the TTL).
    tokio::time::sleep(Duration::from_millis(2100)).await;
    fault.set(Mode::TooMany);
    let asked = fault.total();
    let m =
        admin.get(&format!("/v2/{project}/team/app/manifests/1")).header("accept", ACCEPT_ALL).send().await.success();
    assert_eq!(m.body, body);
    assert!(fault.total() > asked && fault.statuses().contains(&429), "the upstream was asked");
    // Nothing cached: the 429 is the client's.
    let r = admin.get(&format!("/v2/{project}/team/app/manifests/9")).send().await;
    assert_eq!(r.status_and_code(), (429, "TOOMANYREQUESTS".to_owned()));
    assert_eq!(r.header("retry-after"), "1");

    // The upstream gone (and its proxy): still served.
    fault.set(Mode::Forward);
    upstream.stop();
    task.abort();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let m =
        admin.get(&format!("/v2/{project}/team/app/manifests/1")).header("accept", ACCEPT_ALL).send().await.success();
    assert_eq!(m.body, body);
    let r = admin.get(&format!("/v2/{project}/team/app/manifests/9")).send().await;
    assert_eq!(r.code(), 503, "{}", r.text());

    // The endpoint cannot go while the project uses it.
    let r = admin.delete(&format!("/api/v2.0/registries/{registry_id}")).send().await;
    assert_eq!(r.code(), 412, "{}", r.text());
    let spare = berth::testkit::unique("spare-");
    let spare_id = proxy_project(app, &spare, registry_id, json!({})).await;
    admin.delete(&format!("/api/v2.0/projects/{spare_id}")).send().await.success();
    let r = admin.delete(&format!("/api/v2.0/registries/{registry_id}")).send().await;
    assert_eq!(r.code(), 412, "{project} still uses it");
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_cache_local() {
    let app = proxy_builder(2).local().await;
    core_flow(&app).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_cache_aws() {
    if let Some(app) = proxy_builder(2).aws("berth-e2e-px-").await {
        core_flow(&app).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_cache_filters_quota_and_endpoint_use() {
    let app = proxy_builder(60).local().await;
    let upstream = Distribution::start(&[]);
    upstream_image(&upstream.url(), "nightly/for_proxy", "1.0", 3000, 1, "amd64").await;
    upstream_image(&upstream.url(), "nightly/redis", "latest", 3000, 2, "amd64").await;
    upstream_image(&upstream.url(), "nightly/busybox", "latest", 3000, 3, "amd64").await;
    let registry_id = endpoint(&app, &upstream.url()).await;
    let admin = app.admin();

    // A missing endpoint, an invalid regex: 400.
    let body = json!({"project_name": "nope", "registry_id": 999_999});
    assert_eq!(admin.post("/api/v2.0/projects").json(&body).send().await.code(), 400);
    let bad = json!({"proxy_cache_filter_pattern": "nightly/(*", "proxy_cache_filter_kind": "regex"});
    let body = json!({"project_name": "nope", "registry_id": registry_id, "metadata": bad});
    assert_eq!(admin.post("/api/v2.0/projects").json(&body).send().await.code(), 400);

    let project = berth::testkit::unique("filtered-");
    let meta = json!({"proxy_cache_filter_pattern": "nightly/for_proxy", "proxy_cache_filter_kind": "doublestar"});
    let id = proxy_project(&app, &project, registry_id, meta).await;
    admin.get(&format!("/v2/{project}/nightly/for_proxy/manifests/1.0")).send().await.success();
    let r = admin.get(&format!("/v2/{project}/nightly/redis/manifests/latest")).send().await;
    assert_eq!(r.code(), 404);
    assert!(r.text().contains("repository filter"), "{}", r.text());
    let regex = json!({"metadata": {"proxy_cache_filter_pattern": "^nightly/(for_proxy|redis)$", "proxy_cache_filter_kind": "regex"}});
    admin.put(&format!("/api/v2.0/projects/{id}")).json(&regex).send().await.success();
    admin.get(&format!("/v2/{project}/nightly/redis/manifests/latest")).send().await.success();
    let r = admin.get(&format!("/v2/{project}/nightly/busybox/manifests/latest")).send().await;
    assert!(r.code() == 404 && r.text().contains("repository filter"), "{}", r.text());
    let bad = json!({"metadata": {"proxy_cache_filter_pattern": "(", "proxy_cache_filter_kind": "regex"}});
    assert_eq!(admin.put(&format!("/api/v2.0/projects/{id}")).json(&bad).send().await.code(), 400);

    // The quota applies to what is cached.
    let small = berth::testkit::unique("small-");
    let body = json!({"project_name": small, "registry_id": registry_id, "storage_limit": 2000});
    admin.post("/api/v2.0/projects").json(&body).send().await.success();
    let r = admin.get(&format!("/v2/{small}/nightly/busybox/manifests/latest")).send().await;
    assert_eq!(r.code(), 403, "{}", r.text());
    assert!(r.text().contains("quota") || r.text().contains("exceed"), "{}", r.text());

    // The endpoint is used twice; deleting the projects gives it back.
    let r = admin.delete(&format!("/api/v2.0/registries/{registry_id}")).send().await;
    assert_eq!(r.code(), 412);
}

/// Real clients pull a cached image with the upstream stopped.
#[tokio::test(flavor = "multi_thread")]
async fn proxy_cache_serves_docker_podman_skopeo_with_the_upstream_stopped() {
    require_docker();
    require("skopeo", &["--version"]);
    require("podman", &["--version"]);
    let app = proxy_builder(1).local().await;
    let addr = app.serve().await;
    let host = addr.to_string();
    let mut upstream = Distribution::start(&[]);
    let up_host = upstream.host();
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().to_owned();
    let name = berth::testkit::unique("berth-e2e-px-");
    let local = format!("{name}:build");
    let pushed = format!("{up_host}/team/app:1");
    let project = berth::testkit::unique("cache-");
    let through = format!("{host}/{project}/team/app:1");
    let mut cleanup =
        DockerCleanup { images: vec![local.clone(), pushed.clone(), through.clone()], containers: vec![] };

    let w = work.clone();
    let (id, up_dir) = tokio::task::spawn_blocking(move || {
        let ctx = w.join("ctx");
        std::fs::create_dir_all(&ctx).unwrap();
        std::fs::write(ctx.join("data.bin"), pattern(3 * 1024 * 1024 + 11, 5)).unwrap();
        std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY data.bin /\n").unwrap();
        ok(docker(&w).args(["build", "-q", "-t", &local]).arg(&ctx));
        let id = ok(docker(&w).args(["image", "inspect", "--format", "{{.Id}}", &local])).trim().to_owned();
        ok(docker(&w).args(["tag", &local, &pushed]));
        ok(docker(&w).args(["push", &pushed]));
        let up_dir = w.join("upstream-copy");
        ok(Command::new("skopeo")
            .args(["copy", "--src-tls-verify=false"])
            .arg(format!("docker://{pushed}"))
            .arg(format!("dir:{}", up_dir.display())));
        (id, up_dir)
    })
    .await
    .unwrap();
    cleanup.images.push(id.clone());

    let registry_id = endpoint(&app, &upstream.url()).await;
    proxy_project(&app, &project, registry_id, json!({})).await;
    let w = work.clone();
    let through2 = through.clone();
    let host2 = host.clone();
    // The first pull caches.
    tokio::task::spawn_blocking(move || {
        let login = docker_login(&w, &host2, "admin", ADMIN_PASSWORD);
        assert!(login.status.success(), "{}", String::from_utf8_lossy(&login.stderr));
        ok(docker(&w).args(["pull", &through2]));
        ok(docker(&w).args(["rmi", &through2]));
    })
    .await
    .unwrap();

    upstream.stop();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let w = work.clone();
    tokio::task::spawn_blocking(move || {
        ok(docker(&w).args(["pull", &through]));
        let pulled = ok(docker(&w).args(["image", "inspect", "--format", "{{.Id}}", &through])).trim().to_owned();
        assert_eq!(pulled, id, "docker: the built image");

        let creds = format!("admin:{ADMIN_PASSWORD}");
        let out = w.join("skopeo-copy");
        ok(Command::new("skopeo")
            .args(["copy", "--src-tls-verify=false", "--src-creds", &creds])
            .arg(format!("docker://{through}"))
            .arg(format!("dir:{}", out.display())));
        for entry in std::fs::read_dir(&up_dir).unwrap() {
            let entry = entry.unwrap();
            let file = entry.file_name();
            if file == "version" {
                continue;
            }
            assert_eq!(
                std::fs::read(entry.path()).unwrap(),
                std::fs::read(out.join(&file)).unwrap(),
                "skopeo: {file:?}"
            );
        }

        let pw = w.join("podman");
        std::fs::create_dir_all(&pw).unwrap();
        ok(podman(&pw).args(["pull", "--tls-verify=false", "--creds", &creds, &through]));
        let pid = ok(podman(&pw).args(["image", "inspect", "--format", "{{.Id}}", &through])).trim().to_owned();
        assert_eq!(format!("sha256:{pid}"), id, "podman: the built image");
    })
    .await
    .unwrap();
    cleanup.run();
}

/// An image whose blobs take longer to cache than `proxy.manifest_wait_secs`
/// (here 0): its manifest is served as the upstream sent it at once, its
/// blobs pull through the fetches under way, and the image is cached all
/// the same, pullable with the upstream gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_big_image_is_served_before_it_is_cached() {
    let app = TestApp::builder()
        .config(|c| {
            c.proxy.tag_ttl_secs = 60;
            c.proxy.timeout_secs = 5;
            c.proxy.manifest_wait_secs = 0;
        })
        .local()
        .await;
    let mut upstream = Distribution::start(&[]);
    let (_fault, addr, task) = start_fault(upstream.url()).await;
    let registry_id = endpoint(&app, &format!("http://{addr}")).await;
    let project = berth::testkit::unique("cache-");
    proxy_project(&app, &project, registry_id, json!({})).await;
    let (digest, body, [config, layer]) =
        upstream_image(&upstream.url(), "team/big", "1", 8 * 1024 * 1024 + 3, 7, "amd64").await;
    let admin = app.admin();
    let m =
        admin.get(&format!("/v2/{project}/team/big/manifests/1")).header("accept", ACCEPT_ALL).send().await.success();
    assert_eq!(m.header("docker-content-digest"), digest);
    assert_eq!(m.body, body, "served as the upstream sent it");
    for d in [&config, &layer] {
        let b = admin.get(&format!("/v2/{project}/team/big/blobs/{d}")).send().await;
        assert!(matches!(b.code(), 200 | 307), "{}", b.text());
    }
    // Cached in the background: the artifact appears, then pulls with the
    // upstream gone.
    let listed = super::events::eventually(Duration::from_secs(30), || async {
        let r = admin.get(&format!("/api/v2.0/projects/{project}/repositories/team%252Fbig/artifacts")).send().await;
        (r.code() == 200 && r.json::<Value>().as_array().is_some_and(|a| !a.is_empty())).then_some(())
    })
    .await;
    assert!(listed.is_some(), "the image was cached");
    task.abort();
    upstream.stop();
    let m =
        admin.get(&format!("/v2/{project}/team/big/manifests/1")).header("accept", ACCEPT_ALL).send().await.success();
    assert_eq!(m.body, body);
}

//! Replication (F13): policies and their runs against Debian's Distribution
//! started by the test (pull with filters and flattening, migration with
//! `**`, push, event-based push and deletion, a scheduled run) and berth to
//! berth (a second berth as a Harbor-type endpoint: an index with its
//! cosign signature and SBOM arrives with its accessories).

use std::time::Duration;

use serde_json::{Value, json};
use sha2::Digest as _;

use super::events::eventually;
use super::import::{
    DOCKER_MANIFEST, Fixture, OCI_INDEX, OCI_MANIFEST, digest, fill_distribution, image, noise, put_manifest,
};
use crate::support::app::TestApp;
use crate::support::distribution::Distribution;

/// An endpoint of `kind` at `url`; its id.
async fn endpoint(app: &TestApp, name: &str, kind: &str, url: &str, key: &str, secret: &str) -> i64 {
    let r = app
        .admin()
        .post("/api/v2.0/registries")
        .json(&json!({"name": name, "type": kind, "url": url, "insecure": true,
            "credential": {"type": "basic", "access_key": key, "access_secret": secret}}))
        .send()
        .await
        .expect(201);
    r.header("location").rsplit('/').next().unwrap().parse().unwrap()
}

async fn create_policy(app: &TestApp, body: Value) -> i64 {
    let r = app.admin().post("/api/v2.0/replication/policies").json(&body).send().await.expect(201);
    r.header("location").rsplit('/').next().unwrap().parse().unwrap()
}

async fn start(app: &TestApp, policy: i64) -> i64 {
    let r = app
        .admin()
        .post("/api/v2.0/replication/executions")
        .json(&json!({"policy_id": policy}))
        .send()
        .await
        .expect(201);
    r.header("location").rsplit('/').next().unwrap().parse().unwrap()
}

/// Waits for an execution to end; its view.
async fn finished(app: &TestApp, id: i64) -> Value {
    eventually(Duration::from_secs(120), || async {
        let x: Value =
            app.admin().get(&format!("/api/v2.0/replication/executions/{id}")).send().await.expect(200).json();
        (x["status"] != "InProgress").then_some(x)
    })
    .await
    .unwrap_or_else(|| panic!("execution {id} never ended"))
}

async fn tasks(app: &TestApp, id: i64) -> Vec<Value> {
    let t: Value =
        app.admin().get(&format!("/api/v2.0/replication/executions/{id}/tasks")).send().await.expect(200).json();
    t.as_array().unwrap().clone()
}

/// The log of every task of an execution, for failure messages.
async fn logs(app: &TestApp, id: i64) -> String {
    let mut out = String::new();
    for t in tasks(app, id).await {
        let tid = t["id"].as_i64().unwrap();
        out.push_str(
            &app.admin().get(&format!("/api/v2.0/replication/executions/{id}/tasks/{tid}/log")).send().await.text(),
        );
    }
    out
}

/// A manifest berth serves: (media type, bytes).
async fn berth_manifest(app: &TestApp, repo: &str, reference: &str) -> Option<(String, Vec<u8>)> {
    let r = app
        .admin()
        .get(&format!("/v2/{repo}/manifests/{reference}"))
        .header("accept", &format!("{OCI_MANIFEST}, {OCI_INDEX}, {DOCKER_MANIFEST}"))
        .send()
        .await;
    (r.code() == 200).then(|| (r.header("content-type").to_owned(), r.body.to_vec()))
}

/// The tags berth has of a repository.
async fn berth_tags(app: &TestApp, repo: &str) -> Vec<String> {
    let r = app.admin().get(&format!("/v2/{repo}/tags/list")).send().await;
    if r.code() != 200 {
        return Vec::new();
    }
    let v: Value = r.json();
    let mut tags: Vec<String> =
        v["tags"].as_array().map(|a| a.iter().map(|t| t.as_str().unwrap().to_owned()).collect()).unwrap_or_default();
    tags.sort();
    tags
}

/// A blob berth serves, following its redirect.
async fn berth_blob(app: &TestApp, repo: &str, digest: &str) -> Vec<u8> {
    let r = app.admin().get(&format!("/v2/{repo}/blobs/{digest}")).send().await;
    match r.code() {
        200 => r.body.to_vec(),
        307 => reqwest::get(r.header("location")).await.unwrap().bytes().await.unwrap().to_vec(),
        other => panic!("blob {repo}@{digest}: {other}"),
    }
}

/// The bytes of a manifest Distribution serves by reference.
async fn dist_manifest(url: &str, repo: &str, reference: &str) -> Option<Vec<u8>> {
    let r = reqwest::Client::new()
        .get(format!("{url}/v2/{repo}/manifests/{reference}"))
        .header("accept", format!("{OCI_MANIFEST}, {OCI_INDEX}, {DOCKER_MANIFEST}"))
        .send()
        .await
        .unwrap();
    if r.status() == 200 { Some(r.bytes().await.unwrap().to_vec()) } else { None }
}

/// Fills a Distribution with the import test's images (`alpine`,
/// `team/tools/app`), and `team/tools/other` (v1) and `tmp/junk` (x).
async fn fill(url: String) -> Fixture {
    tokio::task::spawn_blocking(move || {
        let http = reqwest::blocking::Client::new();
        let fixture = fill_distribution(&http, &url, 3 * 1024 * 1024 + 5);
        for (repo, tag, seed) in [("team/tools/other", "v1", 6), ("tmp/junk", "x", 7)] {
            let m = image(&http, &url, repo, OCI_MANIFEST, "amd64", &[&noise(200, seed)]);
            put_manifest(&http, &url, repo, tag, OCI_MANIFEST, &m);
        }
        fixture
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pull_replication_from_distribution_with_filters_flattening_and_migration() {
    let dist = Distribution::start(&[]);
    let src = fill(dist.url()).await;
    let app = TestApp::local().await;
    let _workers = app.run_workers();
    let reg = endpoint(&app, "dist", "docker-registry", &dist.url(), "", "").await;

    // Bad policies are refused with Harbor's errors.
    let admin = app.admin();
    admin.post("/api/v2.0/replication/policies").json(&json!({"name": "both-local"})).send().await.expect(400);
    admin
        .post("/api/v2.0/replication/policies")
        .json(&json!({"name": "bad", "src_registry": {"id": reg}, "filters": [{"type": "name", "value": "a/{b"}]}))
        .send()
        .await
        .expect(400);
    admin
        .post("/api/v2.0/replication/policies")
        .json(&json!({"name": "nowhere", "src_registry": {"id": 9999}}))
        .send()
        .await
        .expect(400);

    // team/** but not **/other, tags v*, flattened one level into mirror.
    let policy = create_policy(
        &app,
        json!({"name": "team-mirror", "src_registry": {"id": reg}, "dest_namespace": "mirror",
            "dest_namespace_replace_count": 1, "override": true, "enabled": true,
            "trigger": {"type": "manual", "trigger_settings": {"cron": ""}},
            "filters": [{"type": "name", "value": "team/**"}, {"type": "name", "value": "**/other", "decoration": "excludes"},
                        {"type": "tag", "value": "v*"}]}),
    )
    .await;
    let got: Value = admin.get(&format!("/api/v2.0/replication/policies/{policy}")).send().await.expect(200).json();
    assert_eq!(got["name"], "team-mirror");
    assert_eq!(got["src_registry"]["id"], reg);
    assert_eq!(got["dest_registry"]["id"], 0, "berth is Harbor's local registry: {got}");
    assert_eq!(got["filters"][1], json!({"type": "name", "value": "**/other", "decoration": "excludes"}));
    admin
        .post("/api/v2.0/replication/policies")
        .json(&json!({"name": "team-mirror", "src_registry": {"id": reg}}))
        .send()
        .await
        .expect(409);
    // The endpoint is in use.
    admin.delete(&format!("/api/v2.0/registries/{reg}")).send().await.expect(412);

    let x = start(&app, policy).await;
    let view = finished(&app, x).await;
    assert_eq!(view["status"], "Succeed", "{view}\n{}", logs(&app, x).await);
    assert_eq!(
        (view["trigger"].as_str(), view["total"].as_u64(), view["succeed"].as_u64()),
        (Some("manual"), Some(1), Some(1)),
        "{view}"
    );
    let t = tasks(&app, x).await;
    assert_eq!(t[0]["src_resource"], "team/tools/app:[*]", "{t:?}");
    assert_eq!(t[0]["operation"], "copy");
    assert_eq!(berth_tags(&app, "mirror/tools/app").await, ["v1", "v2"]);
    assert!(berth_tags(&app, "mirror/tools/other").await.is_empty(), "excluded by name");
    assert!(berth_tags(&app, "mirror/alpine").await.is_empty() && berth_tags(&app, "library/alpine").await.is_empty());
    // Bit-exact: the manifests and the big layer.
    let (_, v1) = berth_manifest(&app, "mirror/tools/app", "v1").await.unwrap();
    assert_eq!(v1, src.v1);
    let big = berth_blob(&app, "mirror/tools/app", &digest(&src.big)).await;
    assert_eq!(sha2::Sha256::digest(&big).as_slice(), sha2::Sha256::digest(&src.big).as_slice());
    assert_eq!(berth_manifest(&app, "mirror/tools/app", "v2").await.unwrap().1, src.v2);
    // A run again copies nothing new and succeeds.
    let again = finished(&app, start(&app, policy).await).await;
    assert_eq!(again["status"], "Succeed");

    // Migration: everything, names kept; one-level names go into library.
    let all = create_policy(
        &app,
        json!({"name": "migrate", "src_registry": {"id": reg}, "override": true, "enabled": true,
            "filters": [{"type": "name", "value": "**"}]}),
    )
    .await;
    let x = start(&app, all).await;
    let view = finished(&app, x).await;
    assert_eq!(view["status"], "Succeed", "{view}\n{}", logs(&app, x).await);
    assert_eq!(view["total"], 4, "four repositories: {view}");
    assert_eq!(berth_tags(&app, "library/alpine").await, ["3.19", "latest"]);
    assert_eq!(berth_manifest(&app, "library/alpine", "3.19").await.unwrap().1, src.alpine);
    assert_eq!(berth_tags(&app, "team/tools/app").await, ["multi", "v1", "v2"]);
    assert_eq!(berth_tags(&app, "team/tools/other").await, ["v1"]);
    assert_eq!(berth_tags(&app, "tmp/junk").await, ["x"]);
    let (media, _) = berth_manifest(&app, "team/tools/app", "multi").await.unwrap();
    assert_eq!(media, OCI_INDEX);

    // Listing, filters and the disabled policy.
    let list: Value = admin.get("/api/v2.0/replication/executions").send().await.expect(200).json();
    assert_eq!(list.as_array().unwrap().len(), 3, "every policy's runs: {list}");
    let first = admin.get("/api/v2.0/replication/executions?page=1&page_size=2").send().await.expect(200);
    assert_eq!(first.header("x-total-count"), "3");
    let (first, second): (Value, Value) = (
        first.json(),
        admin.get("/api/v2.0/replication/executions?page=2&page_size=2").send().await.expect(200).json(),
    );
    assert_eq!((first.as_array().unwrap().len(), second.as_array().unwrap().len()), (2, 1));
    assert!(first[0]["id"].as_i64() > first[1]["id"].as_i64() && first[1]["id"].as_i64() > second[0]["id"].as_i64());
    let succeeded: Value = admin.get("/api/v2.0/replication/executions?status=Succeed").send().await.expect(200).json();
    assert_eq!(succeeded.as_array().unwrap().len(), 3);
    let mine = admin.get(&format!("/api/v2.0/replication/executions?policy_id={all}")).send().await.expect(200);
    assert_eq!(mine.header("x-total-count"), "1");
    let mut body: Value = admin.get(&format!("/api/v2.0/replication/policies/{all}")).send().await.expect(200).json();
    body["enabled"] = json!(false);
    admin.put(&format!("/api/v2.0/replication/policies/{all}")).json(&body).send().await.expect(200);
    admin.post("/api/v2.0/replication/executions").json(&json!({"policy_id": all})).send().await.expect(412);
    admin.delete(&format!("/api/v2.0/replication/policies/{all}")).send().await.expect(200);
    admin.delete(&format!("/api/v2.0/replication/policies/{policy}")).send().await.expect(200);
    admin.get(&format!("/api/v2.0/replication/policies/{policy}")).send().await.expect(404);
    // No policy uses the endpoint any more.
    admin.delete(&format!("/api/v2.0/registries/{reg}")).send().await.expect(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn push_replication_to_distribution_on_push_delete_and_schedule() {
    let dist = Distribution::start(&[]);
    let url = dist.url();
    let app = TestApp::local().await;
    let _workers = app.run_workers();
    let pid = app.create_project("src", false).await;
    let first = app.push_image("src/app", "v1").await;
    let reg = endpoint(&app, "dist", "docker-registry", &url, "", "").await;
    // The source project hears of its replications.
    let (hook, got) = super::events::receiver().await;
    let policy = json!({"name": "repl", "enabled": true, "event_types": ["REPLICATION"],
        "targets": [{"type": "http", "address": format!("http://{hook}/ok/repl"), "payload_format": "Default"}]});
    app.admin().post(&format!("/api/v2.0/projects/{pid}/webhook/policies")).json(&policy).send().await.expect(201);

    // Manual: what is there now, into copy/src/app (no flattening).
    let manual = create_policy(
        &app,
        json!({"name": "to-dist", "dest_registry": {"id": reg}, "dest_namespace": "copy",
            "dest_namespace_replace_count": 0, "override": true, "enabled": true,
            "filters": [{"type": "name", "value": "src/**"}]}),
    )
    .await;
    let x = start(&app, manual).await;
    let view = finished(&app, x).await;
    assert_eq!(view["status"], "Succeed", "{view}\n{}", logs(&app, x).await);
    let (_, pushed) = berth_manifest(&app, "src/app", "v1").await.unwrap();
    assert_eq!(dist_manifest(&url, "copy/src/app", "v1").await.as_deref(), Some(pushed.as_slice()));
    assert_eq!(digest(&pushed), first);
    let heard = eventually(Duration::from_secs(20), || async {
        got.lock().unwrap().iter().find(|(_, _, b)| b["type"] == "REPLICATION").map(|(_, _, b)| b.clone())
    })
    .await
    .expect("a REPLICATION webhook");
    let r = &heard["event_data"]["replication"];
    assert_eq!(r["job_status"], "Success", "{heard}");
    assert_eq!(r["trigger_type"], "manual");
    assert_eq!(r["src_resource"]["namespace"], "src");
    assert_eq!(r["dest_resource"]["registry_type"], "docker-registry");
    assert_eq!(r["dest_resource"]["namespace"], "copy");
    assert_eq!(r["successful_artifact"][0]["name_tag"], "src/app:[v1]", "{heard}");

    // Event-based, with deletions: a push arrives within seconds, a
    // deletion follows.
    create_policy(
        &app,
        json!({"name": "on-push", "dest_registry": {"id": reg}, "dest_namespace": "live",
            "override": true, "enabled": true, "replicate_deletion": true,
            "trigger": {"type": "event_based"}, "filters": [{"type": "name", "value": "src/app"}]}),
    )
    .await;
    let second = app.push_image("src/app", "v2").await;
    let arrived = eventually(Duration::from_secs(30), || async {
        dist_manifest(&url, "live/app", "v2").await.filter(|b| digest(b) == second)
    })
    .await;
    assert!(arrived.is_some(), "an event-based policy copies a push within seconds");
    app.admin().delete(&format!("/api/v2.0/projects/src/repositories/app/artifacts/{second}")).send().await.expect(200);
    let gone = eventually(Duration::from_secs(30), || async {
        dist_manifest(&url, "live/app", &second).await.is_none().then_some(())
    })
    .await;
    assert!(gone.is_some(), "the deletion is replicated");

    // Scheduled: every 10 seconds.
    let scheduled = create_policy(
        &app,
        json!({"name": "timed", "dest_registry": {"id": reg}, "dest_namespace": "timed", "override": true,
            "enabled": true, "trigger": {"type": "scheduled", "trigger_settings": {"cron": "*/10 * * * * *"}},
            "filters": [{"type": "name", "value": "src/**"}]}),
    )
    .await;
    let ran = eventually(Duration::from_secs(60), || async {
        let xs: Value = app
            .admin()
            .get(&format!("/api/v2.0/replication/executions?policy_id={scheduled}"))
            .send()
            .await
            .expect(200)
            .json();
        xs.as_array().unwrap().iter().find(|x| x["trigger"] == "scheduled" && x["status"] == "Succeed").cloned()
    })
    .await;
    assert!(ran.is_some(), "the scheduled policy ran");
    assert!(dist_manifest(&url, "timed/app", "v1").await.is_some());
    // A policy stops running once deleted (its schedule goes with it).
    let mut body: Value =
        app.admin().get(&format!("/api/v2.0/replication/policies/{scheduled}")).send().await.expect(200).json();
    body["trigger"] = json!({"type": "manual"});
    app.admin().put(&format!("/api/v2.0/replication/policies/{scheduled}")).json(&body).send().await.expect(200);
    let schedules: Value = app.admin().get("/api/v2.0/schedules").send().await.expect(200).json();
    assert!(!schedules.to_string().contains("REPLICATION"), "{schedules}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn berth_to_berth_brings_signatures_and_sboms_along() {
    let source = TestApp::local().await;
    let _workers = source.run_workers();
    let target = TestApp::local().await;
    let addr = target.serve().await;
    let [amd, arm, index, sig, sbom] = super::accessories::push_all(&source).await;
    let reg = endpoint(&source, "twin", "harbor", &format!("http://{addr}"), "admin", "Harbor12345").await;
    let policy = create_policy(
        &source,
        json!({"name": "twin", "dest_registry": {"id": reg}, "override": true, "enabled": true,
            "filters": [{"type": "name", "value": "acc/**"}, {"type": "tag", "value": "multi"}]}),
    )
    .await;
    let x = start(&source, policy).await;
    let view = finished(&source, x).await;
    assert_eq!(view["status"], "Succeed", "{view}\n{}", logs(&source, x).await);
    // The project was made at the target; the index, its images, the
    // signature by its tag and the SBOM by subject are there.
    let (_, idx) = berth_manifest(&target, "acc/app", "multi").await.expect("the index arrived");
    assert_eq!(digest(&idx), index);
    for d in [&amd, &arm, &sig, &sbom] {
        assert!(berth_manifest(&target, "acc/app", d).await.is_some(), "{d} arrived");
    }
    let sig_tag = format!("{}.sig", index.replace(':', "-"));
    let (_, s) = berth_manifest(&target, "acc/app", &sig_tag).await.expect("the signature's tag arrived");
    assert_eq!(digest(&s), sig);
    let acc: Value = target
        .admin()
        .get("/api/v2.0/projects/acc/repositories/app/artifacts/multi/accessories")
        .send()
        .await
        .expect(200)
        .json();
    let mut kinds: Vec<String> =
        acc.as_array().unwrap().iter().map(|a| a["type"].as_str().unwrap().to_owned()).collect();
    kinds.sort();
    assert_eq!(kinds, ["signature.cosign", "subject.accessory"], "{acc}");
    let referrers: Value =
        target.admin().get(&format!("/v2/acc/app/referrers/{index}")).send().await.expect(200).json();
    assert!(referrers.to_string().contains(&sbom), "{referrers}");
    // The tag filter left the images' own tags behind.
    assert_eq!(berth_tags(&target, "acc/app").await.iter().filter(|t| t.as_str() == "amd64").count(), 0);
}

/// A copy task delivered twice (at once and again) copies once; a layer
/// over the chunk threshold goes by chunk (S3 multipart parts on AWS).
async fn copy_task_delivered_twice(app: TestApp) {
    let dist = Distribution::start(&[]);
    let src = fill(dist.url()).await;
    let url = dist.url();
    let chunky = noise(40 * 1024 * 1024 + 3, 12);
    let layer = digest(&chunky);
    let chunky_image = tokio::task::spawn_blocking(move || {
        let http = reqwest::blocking::Client::new();
        let m = image(&http, &url, "chunky", OCI_MANIFEST, "amd64", &[&chunky]);
        put_manifest(&http, &url, "chunky", "v1", OCI_MANIFEST, &m);
        m
    })
    .await
    .unwrap();
    let reg = endpoint(&app, "dist", "docker-registry", &dist.url(), "", "").await;
    let policy = create_policy(
        &app,
        json!({"name": "twice", "src_registry": {"id": reg}, "dest_namespace": "twice", "override": true,
            "enabled": true, "filters": [{"type": "name", "value": "{alpine,chunky}"}]}),
    )
    .await;
    let x = start(&app, policy).await;
    super::builtin_scanner::drain_twice(&app).await;
    let view: Value = app.admin().get(&format!("/api/v2.0/replication/executions/{x}")).send().await.expect(200).json();
    assert_eq!(view["status"], "Succeed", "{view}\n{}", logs(&app, x).await);
    assert_eq!(view["total"], 2, "one copy task per repository: {view}");
    assert_eq!(berth_tags(&app, "twice/alpine").await, ["3.19", "latest"]);
    assert_eq!(berth_manifest(&app, "twice/alpine", "latest").await.unwrap().1, src.alpine);
    assert_eq!(berth_manifest(&app, "twice/chunky", "v1").await.unwrap().1, chunky_image);
    let got = berth_blob(&app, "twice/chunky", &layer).await;
    assert_eq!(digest(&got), layer);
    let arts: Value =
        app.admin().get("/api/v2.0/projects/twice/repositories/alpine/artifacts").send().await.expect(200).json();
    assert_eq!(arts.as_array().unwrap().len(), 1, "{arts}");
    let log = logs(&app, x).await;
    assert!(log.contains("in chunks"), "{log}");
    for t in tasks(&app, x).await {
        assert_eq!(t["status"], "Succeed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_copy_task_delivered_twice_copies_once() {
    copy_task_delivered_twice(TestApp::local().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_copy_task_delivered_twice_copies_once_on_aws() {
    let Some(app) = TestApp::aws("repl-twice").await else { return };
    copy_task_delivered_twice(app).await;
}

/// A TCP proxy in front of `upstream` that counts the bytes it sends back.
struct CountingProxy {
    addr: std::net::SocketAddr,
    sent: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl CountingProxy {
    fn start(upstream: std::net::SocketAddr) -> Self {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = sent.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = std::net::TcpStream::connect(upstream) else { continue };
                let (mut c_read, mut s_write) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c_read, &mut s_write);
                    let _ = s_write.shutdown(std::net::Shutdown::Write);
                });
                let (mut s_read, mut c_write) = (server, client);
                let counter = counter.clone();
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 256 * 1024];
                    loop {
                        match std::io::Read::read(&mut s_read, &mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                counter.fetch_add(n as u64, Ordering::Relaxed);
                                if std::io::Write::write_all(&mut c_write, &buf[..n]).is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    let _ = c_write.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        Self { addr, sent }
    }

    fn sent(&self) -> u64 {
        self.sent.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Pushes a `size`-byte blob (a 64 MiB pattern repeated) to Distribution in
/// chunks; its digest.
fn push_big_blob(url: &str, repo: &str, size: u64) -> String {
    let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(600)).build().unwrap();
    let block = noise(64 * 1024 * 1024, 11);
    let mut hasher = sha2::Sha256::new();
    let r = http.post(format!("{url}/v2/{repo}/blobs/uploads/")).send().unwrap();
    assert_eq!(r.status(), 202);
    let mut location = r.headers()["location"].to_str().unwrap().to_owned();
    let mut offset = 0u64;
    while offset < size {
        let n = (size - offset).min(block.len() as u64) as usize;
        let chunk = &block[..n];
        hasher.update(chunk);
        let abs = if location.starts_with("http") { location.clone() } else { format!("{url}{location}") };
        let r = http
            .patch(abs)
            .header("content-type", "application/octet-stream")
            .header("content-range", format!("{offset}-{}", offset + n as u64 - 1))
            .body(chunk.to_vec())
            .send()
            .unwrap();
        assert_eq!(r.status(), 202, "{}", r.text().unwrap_or_default());
        location = r.headers()["location"].to_str().unwrap().to_owned();
        offset += n as u64;
    }
    let d = format!("sha256:{}", hex::encode(hasher.finalize()));
    let abs = if location.starts_with("http") { location } else { format!("{url}{location}") };
    let sep = if abs.contains('?') { '&' } else { '?' };
    let r = http.put(format!("{abs}{sep}digest={d}")).send().unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().unwrap_or_default());
    d
}

/// A 2 GiB layer replicates in chunks; the worker is killed mid-copy, and
/// after the restart the copy resumes where it was: the source sends the
/// blob once, plus at most the chunks in flight when it died.
#[test]
fn a_big_blob_copy_resumes_after_the_worker_is_killed() {
    use crate::support::Server;
    const SIZE: u64 = 2 * 1024 * 1024 * 1024;
    const CHUNK: u64 = 16 * 1024 * 1024;
    let dist = Distribution::start(&[]);
    let url = dist.url();
    let layer = push_big_blob(&url, "big/blob", SIZE);
    let http = reqwest::blocking::Client::new();
    let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_digest = super::import::put_blob(&http, &url, "big/blob", config);
    let manifest = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": SIZE}]}))
    .unwrap();
    put_manifest(&http, &url, "big/blob", "v1", OCI_MANIFEST, &manifest);
    let proxy = CountingProxy::start(dist.host().parse().unwrap());

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let env = [("BERTH_ADMIN_PASSWORD", "Harbor12345")];
    let args = ["--data", data.to_str().unwrap()];
    let api = |server: &Server, path: &str| server.url(&format!("/api/v2.0{path}"));
    let mut server = Server::start(dir.path(), &args, &env);
    let admin = |r: reqwest::blocking::RequestBuilder| r.basic_auth("admin", Some("Harbor12345")).send().unwrap();
    let r = admin(http.post(api(&server, "/registries")).json(&json!({"name": "dist", "type": "docker-registry",
        "url": format!("http://{}", proxy.addr), "insecure": true})));
    assert_eq!(r.status(), 201);
    let reg: i64 = r.headers()["location"].to_str().unwrap().rsplit('/').next().unwrap().parse().unwrap();
    let r = admin(
        http.post(api(&server, "/replication/policies")).json(&json!({"name": "big", "src_registry": {"id": reg},
        "override": true, "enabled": true, "copy_by_chunk": true, "filters": [{"type": "name", "value": "big/**"}]})),
    );
    assert_eq!(r.status(), 201);
    let policy: i64 = r.headers()["location"].to_str().unwrap().rsplit('/').next().unwrap().parse().unwrap();
    let r = admin(http.post(api(&server, "/replication/executions")).json(&json!({"policy_id": policy})));
    assert_eq!(r.status(), 201);
    let x: i64 = r.headers()["location"].to_str().unwrap().rsplit('/').next().unwrap().parse().unwrap();

    // Killed once a good part has crossed.
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    while proxy.sent() < SIZE / 4 {
        assert!(std::time::Instant::now() < deadline, "the copy never got going: {}", server.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let at_kill = proxy.sent();
    assert!(at_kill < SIZE, "killed mid-copy");

    // Restarted: the task comes back once its message's time is up.
    let server = Server::start(dir.path(), &args, &env);
    let deadline = std::time::Instant::now() + Duration::from_secs(600);
    let view = loop {
        let v: Value = admin(http.get(api(&server, &format!("/replication/executions/{x}")))).json().unwrap();
        if v["status"] != "InProgress" {
            break v;
        }
        assert!(std::time::Instant::now() < deadline, "the copy never finished: {v}\n{}", server.log_text());
        std::thread::sleep(Duration::from_secs(1));
    };
    assert_eq!(view["status"], "Succeed", "{view}\n{}", server.log_text());
    let total = proxy.sent();
    println!("the source sent {total} bytes for a {SIZE}-byte blob; killed at {at_kill}");
    assert!(total >= SIZE, "the whole blob crossed: {total}");
    assert!(
        total <= SIZE + 3 * CHUNK + 4 * 1024 * 1024,
        "no chunk crossed twice beyond those in flight at the kill: {total} bytes for {SIZE} (killed at {at_kill})"
    );
    // berth has the layer with its digest (checked when the upload ended).
    let head = http
        .head(server.url(&format!("/v2/big/blob/blobs/{layer}")))
        .basic_auth("admin", Some("Harbor12345"))
        .send()
        .unwrap();
    assert!(matches!(head.status().as_u16(), 200 | 307), "{}", head.status());
    let m = http
        .get(server.url("/v2/big/blob/manifests/v1"))
        .header("accept", OCI_MANIFEST)
        .basic_auth("admin", Some("Harbor12345"))
        .send()
        .unwrap();
    assert_eq!(m.bytes().unwrap().to_vec(), manifest);
}

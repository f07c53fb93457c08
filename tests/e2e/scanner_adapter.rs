//! berth's built-in scanner served as a Pluggable Scanner API adapter: one
//! berth (the requester, as a Harbor would) registers another berth's
//! `/scanner-adapter` as its scanner, with Basic auth; its scans on push
//! then go through the adapter API, which pulls the image back from the
//! requester with the pull token the request carries, and the report is
//! exactly what the built-in scanner finds in place. Also: the protocol's
//! answers to bad requests, unknown ids and refused credentials.

use std::time::Duration;

use serde_json::{Value, json};

use super::builtin_scanner::{debian_image, drain_twice, osv_fixture, push, report};
use super::events::eventually;
use crate::support::app::{ADMIN_PASSWORD, TestApp, TestAppBuilder, Workers};

const BASE: &str = "/scanner-adapter/api/v1";
const HARBOR_MIME: &str = "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0";

/// An app served on the port its configuration names as its URL.
async fn served() -> (TestApp, Workers, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let external = url.clone();
    let app = TestAppBuilder::default()
        .config(move |c| {
            c.server.external_url = Some(external);
            c.queue.max_attempts = 2;
        })
        .local()
        .await;
    app.serve_on(listener);
    let workers = app.run_workers();
    (app, workers, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn another_registry_scans_through_berths_adapter() {
    let (scanner, _w1, scanner_url) = served().await;
    let dir = tempfile::tempdir().unwrap();
    osv_fixture(dir.path());
    scanner.ctx().registry().import_vulndb(vec![dir.path().to_owned()]).await.unwrap();

    let (requester, _w2, requester_url) = served().await;
    let body = json!({
        "name": "remote-berth", "url": format!("{scanner_url}/scanner-adapter"),
        "auth": "Basic", "access_credential": format!("admin:{ADMIN_PASSWORD}"),
    });
    let resp = requester.admin().post("/api/v2.0/scanners").json(&body).send().await.expect(201);
    let uuid = resp.header("location").rsplit('/').next().unwrap().to_owned();
    requester.admin().post("/api/v2.0/scanners/ping").json(&body).send().await.expect(200);
    let meta: Value =
        requester.admin().get(&format!("/api/v2.0/scanners/{uuid}/metadata")).send().await.expect(200).json();
    assert_eq!(meta["scanner"]["name"], "berth");
    assert_eq!(meta["properties"]["harbor.scanner-adapter/vulnerability-database-updated-at"], "2026-11-30T12:00:00Z");

    let pid = requester.create_project("sec", false).await;
    requester
        .admin()
        .put(&format!("/api/v2.0/projects/{pid}/scanner"))
        .json(&json!({"uuid": uuid}))
        .send()
        .await
        .expect(200);
    requester.set_project_metadata(pid, json!({"auto_scan": "true"})).await;
    let digest = push(&requester, "sec/debian", "v1", &debian_image()).await;
    let (o, found) = report(&requester, "debian", &digest).await;
    assert_eq!(o["scan_status"], "Success", "{o}");
    let ids: Vec<&str> = found.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(ids, ["CVE-2023-32681", "CVE-2026-1000"], "the same findings as the scanner in place");
    assert_eq!(o["scanner"]["name"], "berth");
    // Asked directly, the adapter makes a CycloneDX SBOM of the same image,
    // pulled with a token of the requester's.
    let token: Value = reqwest::Client::new()
        .get(format!("{requester_url}/service/token?scope=repository:sec/debian:pull"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let request = json!({
        "registry": {"url": requester_url, "authorization": format!("Bearer {}", token["token"].as_str().unwrap())},
        "artifact": {"repository": "sec/debian", "digest": digest, "mime_type": "application/vnd.oci.image.manifest.v1+json"},
        "enabled_capabilities": [{"type": "sbom", "produces_mime_types": ["application/vnd.security.sbom.report+json; version=1.0"],
                                  "parameters": {"sbom_media_types": ["application/vnd.cyclonedx+json"]}}],
    });
    let id =
        scanner.admin().post(&format!("{BASE}/scan")).json(&request).send().await.expect(202).json::<Value>()["id"]
            .as_str()
            .unwrap()
            .to_owned();
    let sbom = eventually(Duration::from_secs(30), || async {
        let r = scanner
            .admin()
            .get(&format!("{BASE}/scan/{id}/report"))
            .header("accept", "application/vnd.security.sbom.report+json; version=1.0")
            .send()
            .await;
        (r.code() == 200).then(|| r.json::<Value>())
    })
    .await
    .expect("no SBOM report");
    assert_eq!(sbom["media_type"], "application/vnd.cyclonedx+json");
    assert_eq!(sbom["sbom"]["specVersion"], "1.5");
    let names: Vec<&str> =
        sbom["sbom"]["components"].as_array().unwrap().iter().filter_map(|c| c["name"].as_str()).collect();
    assert!(names.contains(&"libssl3") && names.contains(&"requests"), "{names:?}");

    // The scanning berth ran it as its own job, once.
    let runs = scanner
        .ctx()
        .registry()
        .list_executions("ADAPTER_SCAN", 0, &berth::service::paging::PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(runs.items.len(), 2, "the vulnerability scan and the SBOM");
    assert!(runs.items.iter().all(|r| r.status == berth::jobs::Status::Success));
}

#[tokio::test]
async fn the_adapter_api_answers_in_its_own_format() {
    let app = TestAppBuilder::default().config(|c| c.queue.max_attempts = 1).local().await;
    // Credentials first.
    let r = app.anonymous().get(&format!("{BASE}/metadata")).send().await.expect(401);
    assert!(r.header("content-type").starts_with("application/vnd.scanner.adapter.error+json"));
    assert!(r.json::<Value>()["error"]["message"].is_string());
    app.create_user("dev", "Passw0rd!x").await;
    app.user("dev", "Passw0rd!x").get(&format!("{BASE}/metadata")).send().await.expect(403);
    let r = app.admin().get(&format!("{BASE}/metadata")).send().await.expect(200);
    assert_eq!(r.header("content-type"), "application/vnd.scanner.adapter.metadata+json; version=1.1");
    let m: Value = r.json();
    let kinds: Vec<&str> = m["capabilities"].as_array().unwrap().iter().map(|c| c["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["vulnerability", "sbom"]);

    // Bad requests.
    let app = &app;
    let scan = |body: Value| async move { app.admin().post(&format!("{BASE}/scan")).json(&body).send().await };
    let good = json!({
        "registry": {"url": "http://127.0.0.1:9", "authorization": "Bearer x"},
        "artifact": {"repository": "lib/app", "digest": format!("sha256:{}", "a".repeat(64)),
                     "mime_type": "application/vnd.oci.image.manifest.v1+json"},
    });
    let mut bad = good.clone();
    bad["artifact"]["digest"] = json!("sha256:nope");
    assert_eq!(scan(bad).await.code(), 400);
    let mut bad = good.clone();
    bad["registry"]["url"] = json!("file:///etc/passwd");
    assert_eq!(scan(bad).await.code(), 400);
    let mut bad = good.clone();
    bad["artifact"]["mime_type"] = json!("application/vnd.cncf.helm.config.v1+json");
    assert_eq!(scan(bad).await.code(), 422);
    let mut bad = good.clone();
    bad["enabled_capabilities"] = json!([{"type": "malware", "produces_mime_types": []}]);
    assert_eq!(scan(bad).await.code(), 422);
    assert_eq!(app.admin().post(&format!("{BASE}/scan")).body("{").send().await.code(), 400);

    // A request is accepted at once; its report is not ready while its job waits.
    let r = scan(good).await.expect(202);
    assert_eq!(r.header("content-type"), "application/vnd.scanner.adapter.scan.response+json; version=1.0");
    let id = r.json::<Value>()["id"].as_str().unwrap().to_owned();
    let r = app.admin().get(&format!("{BASE}/scan/{id}/report")).header("accept", HARBOR_MIME).send().await.expect(302);
    assert_eq!(r.header("refresh-after"), "5");
    // An id berth did not give, or one with another nonce: unknown.
    let (execution, _) = id.split_once('-').unwrap();
    for other in [format!("{execution}-0000"), "12-34".to_owned(), "junk".to_owned()] {
        app.admin().get(&format!("{BASE}/scan/{other}/report")).send().await.expect(404);
    }
    // Its job fails (nothing listens on port 9): the report says why.
    let _workers = app.run_workers();
    let failed = eventually(Duration::from_secs(60), || async {
        let r = app.admin().get(&format!("{BASE}/scan/{id}/report")).send().await;
        (r.code() == 500).then_some(r)
    })
    .await
    .expect("the scan never failed");
    assert!(failed.json::<Value>()["error"]["message"].as_str().unwrap().contains("manifest"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_adapter_scan_task_delivered_twice_scans_once() {
    // Registry and scanner in one: it scans an image it holds itself.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = TestApp::local().await;
    app.serve_on(listener);
    let dir = tempfile::tempdir().unwrap();
    osv_fixture(dir.path());
    app.ctx().registry().import_vulndb(vec![dir.path().to_owned()]).await.unwrap();
    app.create_project("sec", false).await;
    let digest = push(&app, "sec/debian", "v1", &debian_image()).await;
    let token: Value = reqwest::Client::new()
        .get(format!("{url}/service/token?scope=repository:sec/debian:pull"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let request = json!({
        "registry": {"url": url, "authorization": format!("Bearer {}", token["token"].as_str().unwrap())},
        "artifact": {"repository": "sec/debian", "digest": digest, "mime_type": "application/vnd.oci.image.manifest.v1+json"},
    });
    let r = app.admin().post(&format!("{BASE}/scan")).json(&request).send().await.expect(202);
    let id = r.json::<Value>()["id"].as_str().unwrap().to_owned();

    // Its one message handled twice at once and once more after.
    drain_twice(&app).await;
    let runs = app
        .ctx()
        .registry()
        .list_executions("ADAPTER_SCAN", 0, &berth::service::paging::PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(runs.items.len(), 1);
    let tasks = app.ctx().registry().tasks_of(runs.items[0].record.id).await.unwrap();
    assert_eq!((tasks.len(), tasks[0].run_count), (1, 1), "{tasks:?}");
    let report: Value = app
        .admin()
        .get(&format!("{BASE}/scan/{id}/report"))
        .header("accept", HARBOR_MIME)
        .send()
        .await
        .expect(200)
        .json();
    let mut ids: Vec<&str> =
        report["vulnerabilities"].as_array().unwrap().iter().map(|v| v["id"].as_str().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, ["CVE-2023-32681", "CVE-2026-1000"]);
}

//! berth's built-in scanner served as a Pluggable Scanner API adapter: one
//! berth (the requester, as a Harbor would) registers another berth's
//! `/scanner-adapter` as its scanner, with Basic auth; its scans on push
//! then go through the adapter API, which pulls the image back from the
//! requester with the pull token the request carries, and the report is
//! exactly what the built-in scanner finds in place. Also: the protocol's
//! answers to bad requests, unknown ids and refused credentials.

use std::time::Duration;

use serde_json::{Value, json};

use super::builtin_scanner::{debian_image, osv_fixture, push, report};
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

    let (requester, _w2, _) = served().await;
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
    requester
        .admin()
        .put(&format!("/api/v2.0/projects/{pid}"))
        .json(&json!({"metadata": {"auto_scan": "true"}}))
        .send()
        .await
        .expect(200);
    let digest = push(&requester, "sec/debian", "v1", &debian_image()).await;
    let (o, found) = report(&requester, "debian", &digest).await;
    assert_eq!(o["scan_status"], "Success", "{o}");
    let ids: Vec<&str> = found.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(ids, ["CVE-2023-32681", "CVE-2026-1000"], "the same findings as the scanner in place");
    assert_eq!(o["scanner"]["name"], "berth");
    // The scanning berth ran it as its own job, once.
    let runs = scanner
        .ctx()
        .registry()
        .list_executions("ADAPTER_SCAN", 0, &berth::service::paging::PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(runs.items.len(), 1);
    assert_eq!(runs.items[0].status, berth::jobs::Status::Success);
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

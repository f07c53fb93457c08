//! Vulnerability scanning (F8) with a scanner adapter written here from the
//! Pluggable Scanner API spec: registration, scan on push, the report in
//! `additions/vulnerabilities` and `scan_overview`, a manual scan, stop,
//! the scan log, a project's own scanner, and an adapter that fails.
//!
//! The adapter pulls the manifest it is asked to scan from the registry URL
//! with the credential berth gave it, as a real adapter does, and refuses
//! the scan when that fails: a passing scan shows berth's pull token works.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::events::eventually;
use crate::support::app::{TestApp, TestAppBuilder};

const REPORT_MIME: &str = "application/vnd.security.vulnerability.report; version=1.1";

#[derive(Default)]
struct Adapter {
    /// Scan request id → (repository, digest, polls so far).
    scans: Mutex<HashMap<String, (String, String, u32)>>,
    /// The Authorization headers berth sent the adapter itself.
    seen_auth: Mutex<Vec<String>>,
}

async fn metadata(State(a): State<Arc<Adapter>>, headers: HeaderMap) -> Response {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    a.seen_auth.lock().unwrap().push(auth);
    Json(json!({
        "scanner": {"name": "TestScan", "vendor": "berth tests", "version": "1.0"},
        "capabilities": [{
            "consumes_mime_types": ["application/vnd.oci.image.manifest.v1+json",
                                    "application/vnd.docker.distribution.manifest.v2+json"],
            "produces_mime_types": [REPORT_MIME]
        }],
        "properties": {"harbor.scanner-adapter/scanner-type": "os-package-vulnerability"}
    }))
    .into_response()
}

async fn scan(State(a): State<Arc<Adapter>>, Json(req): Json<Value>) -> Response {
    let url = req["registry"]["url"].as_str().unwrap_or_default();
    let auth = req["registry"]["authorization"].as_str().unwrap_or_default();
    let repo = req["artifact"]["repository"].as_str().unwrap_or_default().to_owned();
    let digest = req["artifact"]["digest"].as_str().unwrap_or_default().to_owned();
    let pulled = reqwest::Client::new()
        .get(format!("{url}/v2/{repo}/manifests/{digest}"))
        .header("authorization", auth)
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await;
    match pulled {
        Ok(r) if r.status().is_success() => {}
        other => {
            let why = format!("cannot pull {repo}@{digest}: {:?}", other.map(|r| r.status()));
            return (StatusCode::BAD_REQUEST, Json(json!({"error": {"message": why}}))).into_response();
        }
    }
    let id = format!("req-{}", a.scans.lock().unwrap().len() + 1);
    a.scans.lock().unwrap().insert(id.clone(), (repo, digest, 0));
    (StatusCode::ACCEPTED, Json(json!({"id": id}))).into_response()
}

async fn report(State(a): State<Arc<Adapter>>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let accept = headers.get("accept").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let mut scans = a.scans.lock().unwrap();
    let Some((repo, digest, polls)) = scans.get_mut(&id) else {
        return (StatusCode::NOT_FOUND, Json(json!({"error": {"message": "unknown"}}))).into_response();
    };
    *polls += 1;
    if *polls == 1 || repo.contains("slow") {
        return (StatusCode::FOUND, [("refresh-after", "1"), ("location", "/")]).into_response();
    }
    assert_eq!(accept, REPORT_MIME);
    Json(json!({
        "generated_at": "2026-12-05T10:00:00Z",
        "artifact": {"repository": repo, "digest": digest, "mime_type": "application/vnd.oci.image.manifest.v1+json"},
        "scanner": {"name": "TestScan", "vendor": "berth tests", "version": "1.0"},
        "severity": "High",
        "vulnerabilities": [
            {"id": "CVE-2026-0001", "package": "openssl", "version": "3.0.1", "fix_version": "3.0.9",
             "severity": "High", "description": "a bad one", "links": ["https://example.test/1"]},
            {"id": "CVE-2026-0002", "package": "zlib", "version": "1.2", "fix_version": "",
             "severity": "Low", "description": "a small one", "links": []}
        ]
    }))
    .into_response()
}

async fn start_adapter() -> (SocketAddr, Arc<Adapter>) {
    let adapter = Arc::new(Adapter::default());
    let app = axum::Router::new()
        .route("/api/v1/metadata", get(metadata))
        .route("/api/v1/scan", post(scan))
        .route("/api/v1/scan/{id}/report", get(report))
        .with_state(adapter.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, adapter)
}

/// An app served on a port its configuration names as its external URL
/// (what scanners are told to pull from), with its workers.
async fn served_app() -> (TestApp, crate::support::app::Workers) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = TestAppBuilder::default()
        .config(move |c| {
            c.server.external_url = Some(format!("http://{addr}"));
            c.queue.max_attempts = 2;
        })
        .local()
        .await;
    app.serve_on(listener);
    let workers = app.run_workers();
    (app, workers)
}

async fn register(app: &TestApp, name: &str, url: &str) -> String {
    let body = json!({"name": name, "url": url, "auth": "Bearer", "access_credential": "adapter-token"});
    let resp = app.admin().post("/api/v2.0/scanners").json(&body).send().await.expect(201);
    resp.header("location").rsplit('/').next().unwrap().to_owned()
}

/// The artifact's overview once its scan has ended.
async fn scanned(app: &TestApp, path: &str) -> Value {
    eventually(Duration::from_secs(30), || async {
        let a: Value = app.admin().get(&format!("{path}?with_scan_overview=true")).send().await.expect(200).json();
        let o = a["scan_overview"][REPORT_MIME].clone();
        let status = o["scan_status"].as_str().unwrap_or_default().to_owned();
        ["Success", "Error", "Stopped"].contains(&status.as_str()).then_some(o)
    })
    .await
    .expect("the scan did not end")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_adapter_scans_on_push_and_on_demand() {
    let (adapter_addr, adapter) = start_adapter().await;
    let (app, _workers) = served_app().await;
    let uuid = register(&app, "testscan", &format!("http://{adapter_addr}")).await;
    app.admin()
        .patch(&format!("/api/v2.0/scanners/{uuid}"))
        .json(&json!({"is_default": true}))
        .send()
        .await
        .expect(200);
    assert!(adapter.seen_auth.lock().unwrap().iter().all(|a| a == "Bearer adapter-token"));
    // The credential is kept sealed: the table never holds it in clear.
    let (pk, sk) = berth::meta::keys::scanner(&uuid);
    let stored = app.ctx().meta.get(&pk, &sk).await.unwrap().unwrap();
    let stored = serde_json::to_string(&stored.attrs).unwrap();
    assert!(!stored.contains("adapter-token") && stored.contains("credential_sealed"), "{stored}");

    let r: Value = app.admin().get(&format!("/api/v2.0/scanners/{uuid}")).send().await.expect(200).json();
    assert_eq!(
        (r["name"].as_str(), r["is_default"].as_bool(), r["adapter"].as_str()),
        (Some("testscan"), Some(true), Some("TestScan"))
    );
    assert_eq!(r["access_credential"], "", "the credential is never shown");
    let m: Value = app.admin().get(&format!("/api/v2.0/scanners/{uuid}/metadata")).send().await.expect(200).json();
    assert_eq!(m["scanner"]["vendor"], "berth tests");

    // Scan on push.
    let pid = app.create_project("scanme", false).await;
    app.set_project_metadata(pid, json!({"auto_scan": "true"})).await;
    let digest = app.push_image("scanme/app", "v1").await;
    let path = format!("/api/v2.0/projects/scanme/repositories/app/artifacts/{digest}");
    let o = scanned(&app, &path).await;
    assert_eq!(o["scan_status"], "Success", "{o}");
    assert_eq!(o["severity"], "High");
    assert_eq!(o["summary"]["total"], 2);
    assert_eq!(o["summary"]["fixable"], 1);
    assert_eq!(o["summary"]["summary"]["High"], 1);
    assert_eq!(o["summary"]["summary"]["Low"], 1);
    assert_eq!(o["scanner"]["name"], "TestScan");
    assert_eq!(o["complete_percent"], 100);

    // The report, and the log of the job that made it.
    let v: Value = app.admin().get(&format!("{path}/additions/vulnerabilities")).send().await.expect(200).json();
    let ids: Vec<&str> =
        v[REPORT_MIME]["vulnerabilities"].as_array().unwrap().iter().filter_map(|x| x["id"].as_str()).collect();
    assert_eq!(ids, ["CVE-2026-0001", "CVE-2026-0002"]);
    let report_id = o["report_id"].as_str().unwrap();
    let log = app.admin().get(&format!("{path}/scan/{report_id}/log")).send().await.expect(200).text();
    assert!(log.contains("submitted to"), "{log}");
    app.admin().get(&format!("{path}/scan/not-a-report/log")).send().await.expect(404);

    // Listings show the overview when asked, and only then.
    let list = "/api/v2.0/projects/scanme/repositories/app/artifacts";
    let arts: Vec<Value> = app.admin().get(&format!("{list}?with_scan_overview=true")).send().await.expect(200).json();
    assert_eq!(arts[0]["scan_overview"][REPORT_MIME]["report_id"], report_id);
    let arts: Vec<Value> = app.admin().get(list).send().await.expect(200).json();
    assert!(arts[0]["scan_overview"].is_null());

    // A manual scan makes a new report.
    app.admin().post(&format!("{path}/scan")).send().await.expect(202);
    let again = scanned(&app, &path).await;
    assert_eq!(again["scan_status"], "Success");
    assert_ne!(again["report_id"], o["report_id"]);

    // A project without auto_scan is not scanned on push.
    app.create_project("quiet", false).await;
    let d2 = app.push_image("quiet/app", "v1").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let a: Value = app
        .admin()
        .get(&format!("/api/v2.0/projects/quiet/repositories/app/artifacts/{d2}?with_scan_overview=true"))
        .send()
        .await
        .expect(200)
        .json();
    assert!(a["scan_overview"].is_null(), "{a}");
    let v: Value = app
        .admin()
        .get(&format!("/api/v2.0/projects/quiet/repositories/app/artifacts/{d2}/additions/vulnerabilities"))
        .send()
        .await
        .expect(200)
        .json();
    assert_eq!(v, json!({}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_scan_stops_and_a_failing_adapter_fails_the_scan() {
    let (adapter_addr, _adapter) = start_adapter().await;
    let (app, _workers) = served_app().await;
    let uuid = register(&app, "testscan", &format!("http://{adapter_addr}")).await;
    app.create_project("stopme", false).await;
    // The project chooses the scanner itself.
    app.admin().put("/api/v2.0/projects/stopme/scanner").json(&json!({"uuid": uuid})).send().await.expect(200);
    let chosen: Value = app.admin().get("/api/v2.0/projects/stopme/scanner").send().await.expect(200).json();
    assert_eq!(chosen["uuid"], uuid);

    let digest = app.push_image("stopme/slow", "v1").await;
    let path = format!("/api/v2.0/projects/stopme/repositories/slow/artifacts/{digest}");
    app.admin().post(&format!("{path}/scan")).send().await.expect(202);
    app.admin().post(&format!("{path}/scan")).send().await.expect(409);
    app.admin()
        .post(&format!("{path}/scan/stop"))
        .json(&json!({"scan_type": "vulnerability"}))
        .send()
        .await
        .expect(202);
    let o = scanned(&app, &path).await;
    assert_eq!(o["scan_status"], "Stopped", "{o}");
    // Stopping what has ended changes nothing (202, as Harbor).
    app.admin()
        .post(&format!("{path}/scan/stop"))
        .json(&json!({"scan_type": "vulnerability"}))
        .send()
        .await
        .expect(202);
    assert_eq!(scanned(&app, &path).await["scan_status"], "Stopped");

    // An adapter that refuses the request: the scan ends in Error.
    let bad = json!({"name": "gone", "url": "http://127.0.0.1:9", "description": "nothing listens"});
    let resp = app.admin().post("/api/v2.0/scanners").json(&bad).send().await.expect(201);
    let gone = resp.header("location").rsplit('/').next().unwrap().to_owned();
    app.admin().put("/api/v2.0/projects/stopme/scanner").json(&json!({"uuid": gone})).send().await.expect(200);
    let d2 = app.push_image("stopme/other", "v1").await;
    let p2 = format!("/api/v2.0/projects/stopme/repositories/other/artifacts/{d2}");
    app.admin().post(&format!("{p2}/scan")).send().await.expect(202);
    let o = eventually(Duration::from_secs(60), || async {
        let a: Value = app.admin().get(&format!("{p2}?with_scan_overview=true")).send().await.expect(200).json();
        let o = a["scan_overview"].as_object()?.values().next()?.clone();
        (o["scan_status"] == "Error").then_some(o)
    })
    .await
    .expect("the scan did not fail");
    assert_eq!(o["summary"], Value::Null);
}

#[tokio::test]
async fn scanner_registrations_are_checked_and_administered() {
    let (adapter_addr, _adapter) = start_adapter().await;
    let app = TestApp::local().await;
    let url = format!("http://{adapter_addr}");
    let admin = app.admin();
    admin.post("/api/v2.0/scanners/ping").json(&json!({"name": "p", "url": url})).send().await.expect(200);
    admin
        .post("/api/v2.0/scanners/ping")
        .json(&json!({"name": "p", "url": "http://127.0.0.1:9"}))
        .send()
        .await
        .expect(400);
    admin.post("/api/v2.0/scanners").json(&json!({"name": "x", "url": "ftp://nope"})).send().await.expect(400);
    admin
        .post("/api/v2.0/scanners")
        .json(&json!({"name": "x", "url": url, "auth": "Basic", "access_credential": "nocolon"}))
        .send()
        .await
        .expect(400);
    let uuid = register(&app, "one", &url).await;
    admin
        .post("/api/v2.0/scanners")
        .json(&json!({"name": "one", "url": "http://127.0.0.1:10"}))
        .send()
        .await
        .expect(409);
    admin.post("/api/v2.0/scanners").json(&json!({"name": "two", "url": url})).send().await.expect(409);

    let all: Vec<Value> = admin.get("/api/v2.0/scanners").send().await.expect(200).json();
    assert!(all.iter().any(|r| r["uuid"] == uuid));
    let found: Vec<Value> = admin.get("/api/v2.0/scanners?q=name%3D~on").send().await.expect(200).json();
    assert_eq!(found.len(), 1);

    // Not for users: a signed-in user may neither list nor register.
    app.create_user("dev", "Passw0rd!x").await;
    app.user("dev", "Passw0rd!x").get("/api/v2.0/scanners").send().await.expect(403);

    admin
        .put(&format!("/api/v2.0/scanners/{uuid}"))
        .json(&json!({"name": "renamed", "url": url, "description": "d"}))
        .send()
        .await
        .expect(200);
    let r: Value = admin.get(&format!("/api/v2.0/scanners/{uuid}")).send().await.expect(200).json();
    assert_eq!((r["name"].as_str(), r["description"].as_str()), (Some("renamed"), Some("d")));
    // A project's choice goes with the project.
    let pid = app.create_project("chooser", false).await;
    admin.put("/api/v2.0/projects/chooser/scanner").json(&json!({"uuid": uuid})).send().await.expect(200);
    admin.delete(&format!("/api/v2.0/projects/{pid}")).send().await.expect(200);
    app.create_project("chooser", false).await;
    let now: Value = admin.get("/api/v2.0/projects/chooser/scanner").send().await.expect(200).json();
    assert_eq!(now["name"], "berth", "the new project uses the default");

    let deleted: Value = admin.delete(&format!("/api/v2.0/scanners/{uuid}")).send().await.expect(200).json();
    assert_eq!(deleted["name"], "renamed");
    admin.get(&format!("/api/v2.0/scanners/{uuid}")).send().await.expect(404);
}

/// Harbor's project permission test: a robot holding `scan` scans and
/// generates SBOMs.
#[tokio::test]
async fn a_project_robot_with_scan_permissions_scans() {
    let app = TestApp::local().await;
    app.create_project("robo", false).await;
    let digest = app.push_image("robo/app", "v1").await;
    let robot = app.project_robot("robo", "scanner", &[("scan", "create"), ("scan", "read"), ("scan", "stop")]).await;
    let path = format!("/api/v2.0/projects/robo/repositories/app/artifacts/{digest}/scan");
    app.robot(&robot).get(&format!("{path}/nope/log")).send().await.expect(404);
    app.robot(&robot).post(&path).json(&json!({"scan_type": "vulnerability"})).send().await.expect(202);
    app.robot(&robot).post(&path).json(&json!({"scan_type": "sbom"})).send().await.expect(202);
}

//! What Harbor shows beside an artifact: `extra_attrs`, additions (an
//! image's build history, a chart's values, readme and dependencies), type
//! icons, and the system's volumes and CA certificate. Charts are pushed
//! and pulled by Helm itself.

use std::process::Command;

use serde_json::{Value, json};

use crate::support::app::{ADMIN_PASSWORD, TestApp, digest_of, image_manifest};

/// The Python with helm-python-sdk installed (`.ci/run` makes the venv).
fn helm_python() -> std::path::PathBuf {
    crate::support::cli::installed_tool("BERTH_TEST_HELM_PYTHON", "helm-venv/bin/python")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn image_extra_attrs_build_history_and_icons() {
    let app = TestApp::local().await;
    app.create_project("add", false).await;
    let config = json!({"architecture": "arm64", "os": "linux", "author": "berth tests",
        "created": "2026-12-01T10:00:00Z", "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [{"created": "2026-12-01T10:00:00Z", "created_by": "ADD file:abc in /"}, {"created_by": "CMD [\"/bin/sh\"]", "empty_layer": true}]});
    let config = serde_json::to_vec(&config).unwrap();
    let config_digest = app.upload_blob("add/app", &config).await;
    let layer = app.upload_blob("add/app", b"layer").await;
    let manifest = image_manifest(&config_digest, config.len() as u64).layer(&layer, 5).bytes();
    let digest = app.put_manifest("add/app", "v1", &manifest).await;
    let base = "/api/v2.0/projects/add/repositories/app/artifacts/v1";
    // extra_attrs come from the push event's consumer, not the push: none
    // until it runs (here by hand), and a delivery seen twice writes once.
    let art: Value = app.admin().get(base).send().await.expect(200).json();
    assert_eq!(art["extra_attrs"], json!({}));
    let (repo, digest) =
        (berth::oci::RepoName::parse("add/app").unwrap(), digest.parse::<berth::oci::Digest>().unwrap());
    let event = berth::events::Event::artifact(
        berth::events::EventKind::PushArtifact,
        &berth::events::Actor::system(),
        "add/app",
        &digest.to_string(),
    );
    let message = serde_json::to_string(&berth::events::EventMessage::Event(Box::new(event))).unwrap();
    let registry = app.ctx().registry();
    berth::events::router::handle(&registry, &message).await.unwrap();
    let first: Value = app.admin().get(base).send().await.expect(200).json();
    berth::events::router::handle(&registry, &message).await.unwrap();
    registry.fill_extra_attrs(&repo, &digest).await.unwrap();
    let art: Value = app.admin().get(base).send().await.expect(200).json();
    assert_eq!(art["extra_attrs"], first["extra_attrs"]);
    assert_eq!(art["type"], "IMAGE");
    assert_eq!(art["extra_attrs"]["architecture"], "arm64");
    assert_eq!(art["extra_attrs"]["os"], "linux");
    assert_eq!(art["extra_attrs"]["author"], "berth tests");
    assert_eq!(art["extra_attrs"]["config"]["Cmd"], json!(["/bin/sh"]));
    assert!(art["extra_attrs"].get("history").is_none(), "{art}");
    let links: Vec<&String> = art["addition_links"].as_object().unwrap().keys().collect();
    assert_eq!(links, ["build_history", "vulnerabilities"], "{art}");
    let history = app.admin().get(&format!("{base}/additions/build_history")).send().await.expect(200);
    assert!(history.header("content-type").starts_with("application/json"));
    let history: Value = history.json();
    assert_eq!(history[0]["created_by"], "ADD file:abc in /");
    assert_eq!(history.as_array().unwrap().len(), 2);
    // Not a chart: no chart additions. No scan yet: no reports.
    app.admin().get(&format!("{base}/additions/dependencies")).send().await.expect(400);
    app.admin().get(&format!("{base}/additions/values.yaml")).send().await.expect(400);
    let vulns: Value = app.admin().get(&format!("{base}/additions/vulnerabilities")).send().await.expect(200).json();
    assert_eq!(vulns, json!({}));
    // Its type's icon, served to anyone.
    let icon = art["icon"].as_str().unwrap();
    assert!(icon.starts_with("sha256:"), "{art}");
    let got: Value = app.anonymous().get(&format!("/api/v2.0/icons/{icon}")).send().await.expect(200).json();
    assert_eq!(got["content-type"], "image/svg+xml");
    use base64::Engine as _;
    let svg = base64::engine::general_purpose::STANDARD.decode(got["content"].as_str().unwrap()).unwrap();
    assert_eq!(digest_of(&svg), icon);
    assert!(String::from_utf8(svg).unwrap().starts_with("<svg"));
    app.anonymous().get("/api/v2.0/icons/sha256:0000").send().await.expect(404);
    // Someone without access to the project reads none of it.
    app.create_user("out", "Passw0rd1").await;
    app.user("out", "Passw0rd1").get(&format!("{base}/additions/build_history")).send().await.expect(403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn volumes_and_ca_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("ca.crt");
    std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").unwrap();
    let with_cert = cert.clone();
    let app = TestApp::builder().config(move |c| c.server.ca_cert = Some(with_cert)).local().await;
    let v: Value = app.admin().get("/api/v2.0/systeminfo/volumes").send().await.expect(200).json();
    let storage = &v["storage"][0];
    assert!(
        storage["total"].as_u64().unwrap() > 0
            && storage["free"].as_u64().unwrap() <= storage["total"].as_u64().unwrap(),
        "{v}"
    );
    app.create_user("u", "Passw0rd1").await;
    app.user("u", "Passw0rd1").get("/api/v2.0/systeminfo/volumes").send().await.expect(403);
    let info: Value = app.anonymous().get("/api/v2.0/systeminfo").send().await.expect(200).json();
    assert_eq!(info["has_ca_root"], true);
    let got = app.anonymous().get("/api/v2.0/systeminfo/getcert").send().await.expect(200);
    assert_eq!(got.header("content-disposition"), "attachment; filename=\"ca.crt\"");
    assert_eq!(got.text(), std::fs::read_to_string(&cert).unwrap());
    let plain = TestApp::local().await;
    plain.anonymous().get("/api/v2.0/systeminfo/getcert").send().await.expect(404);
}

/// A chart pushed and pulled by Helm: listed as a CHART with its metadata,
/// and its values, readme and dependencies read from the archive.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn helm_chart_through_oci() {
    let python = helm_python();
    assert!(python.exists(), "helm-python-sdk is missing: {} (run .ci/run)", python.display());
    let app = TestApp::local().await;
    let pid = app.create_project("charts", false).await;
    let _workers = app.run_workers();
    let addr = app.serve().await;
    let work = tempfile::tempdir().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/e2e/helm_chart.py");
    let work_path = work.path().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .args([script, &addr.to_string(), "admin", ADMIN_PASSWORD, "charts"])
            .arg(&work_path)
            .env("HOME", &work_path)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "helm failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let digest = stdout.lines().last().and_then(|l| l.strip_prefix("digest ")).unwrap().to_owned();
    let base = "/api/v2.0/projects/charts/repositories/webapp/artifacts";
    // The workers consume the push event, which fills extra_attrs.
    let mut listed: Value = Value::Null;
    for _ in 0..100 {
        listed = app.admin().get(base).send().await.expect(200).json();
        if listed[0]["extra_attrs"]["name"].is_string() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let art = &listed[0];
    assert_eq!((art["type"].as_str(), art["digest"].as_str()), (Some("CHART"), Some(digest.as_str())));
    assert_eq!(art["media_type"], "application/vnd.cncf.helm.config.v1+json");
    assert_eq!(art["tags"][0]["name"], "0.3.0");
    assert_eq!(art["extra_attrs"]["name"], "webapp");
    assert_eq!(art["extra_attrs"]["version"], "0.3.0");
    let values = app.admin().get(&format!("{base}/0.3.0/additions/values.yaml")).send().await.expect(200);
    assert!(values.text().contains("replicaCount"), "{}", values.text());
    let readme = app.admin().get(&format!("{base}/0.3.0/additions/readme.md")).send().await.expect(200);
    assert_eq!(readme.text(), "# webapp\n\nServes the web.\n");
    assert!(readme.header("content-type").starts_with("text/markdown"));
    let deps: Value = app.admin().get(&format!("{base}/0.3.0/additions/dependencies")).send().await.expect(200).json();
    assert_eq!(deps, json!([{"name": "cache", "version": "0.1.0", "repository": "oci://example.test/charts"}]));
    app.admin().get(&format!("{base}/0.3.0/additions/build_history")).send().await.expect(400);
    // Harbor's links to them, and the portal's artifact page shows them.
    let links = &art["addition_links"];
    assert_eq!(links["readme.md"]["absolute"], false);
    assert_eq!(
        links["values.yaml"]["href"],
        format!("/api/v2.0/projects/charts/repositories/webapp/artifacts/{digest}/additions/values.yaml")
    );
    assert!(links.get("build_history").is_none(), "{links}");
    let cookie = super::portal::admin_session(&app).await;
    let page = app
        .get(&format!("/harbor/projects/{pid}/repositories/webapp/artifacts-tab/artifacts/{digest}"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect(200)
        .text();
    assert!(page.contains("Chart README") && page.contains("Serves the web."), "{page}");
    assert!(page.contains("Chart values") && page.contains("replicaCount"), "{page}");
    let icon = art["icon"].as_str().unwrap();
    let image_icon = {
        app.push_image("charts/img", "v1").await;
        let img: Value =
            app.admin().get("/api/v2.0/projects/charts/repositories/img/artifacts/v1").send().await.expect(200).json();
        img["icon"].as_str().unwrap().to_owned()
    };
    assert_ne!(icon, image_icon, "a chart shows the chart icon");
}

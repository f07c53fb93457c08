//! The security hub (`/security/summary`, `/security/vul`) over real scans
//! by the built-in scanner: the figures are the scans' together, the
//! findings come in CVSS order and filter as Harbor documents, a deleted
//! artifact leaves the hub, a rescan counts once, and an event delivered
//! twice changes nothing.

use std::time::Duration;

use serde_json::{Value, json};

use super::builtin_scanner::{alpine_image, debian_image, layer, osv_fixture, push, report};
use super::events::eventually;
use crate::support::app::{TestApp, TestAppBuilder};

async fn summary(app: &TestApp) -> Value {
    app.admin()
        .get("/api/v2.0/security/summary?with_dangerous_cve=true&with_dangerous_artifact=true")
        .send()
        .await
        .expect(200)
        .json()
}

/// The findings a query lists: (cve, repository) in order, and the total.
async fn vul(app: &TestApp, query: &str) -> (Vec<(String, String)>, u64, Vec<Value>) {
    let r = app.admin().get(&format!("/api/v2.0/security/vul?{query}")).send().await.expect(200);
    let total = r.header("x-total-count").parse().unwrap();
    let items: Vec<Value> = r.json();
    let rows = items
        .iter()
        .map(|v| (v["cve_id"].as_str().unwrap().to_owned(), v["repository_name"].as_str().unwrap().to_owned()))
        .collect();
    (rows, total, items)
}

async fn hub_total(app: &TestApp, want: u64) -> Value {
    eventually(Duration::from_secs(30), || async {
        let s = summary(app).await;
        (s["total_vuls"] == want).then_some(s)
    })
    .await
    .unwrap_or_else(|| panic!("the hub never counted {want} findings"))
}

fn row(cve: &str, repo: &str) -> (String, String) {
    (cve.to_owned(), repo.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_security_hub_sums_the_scans_and_lists_their_findings() {
    let app = TestAppBuilder::default().config(|c| c.queue.max_attempts = 1).local().await;
    let _workers = app.run_workers();
    let dir = tempfile::tempdir().unwrap();
    osv_fixture(dir.path());
    app.ctx().registry().import_vulndb(vec![dir.path().to_owned()]).await.unwrap();
    let empty = summary(&app).await;
    assert_eq!((empty["total_vuls"].as_u64(), empty["scanned_cnt"].as_u64()), (Some(0), Some(0)));
    assert_eq!(empty["dangerous_cves"], json!([]));

    let pid = app.create_project("sec", false).await;
    app.admin()
        .put(&format!("/api/v2.0/projects/{pid}"))
        .json(&json!({"metadata": {"auto_scan": "true"}}))
        .send()
        .await
        .expect(200);
    let d = push(&app, "sec/debian", "v1", &debian_image()).await;
    let a = push(&app, "sec/alpine", "v1", &alpine_image()).await;
    let plain = push(&app, "sec/plain", "v1", &[layer(&[("etc/hostname", Some("plain\n"))])]).await;
    for (repo, digest) in [("debian", &d), ("alpine", &a), ("plain", &plain)] {
        let (o, _) = report(&app, repo, digest).await;
        assert_eq!(o["scan_status"], "Success");
    }

    let s = hub_total(&app, 3).await;
    let figures = |k: &str| s[k].as_u64().unwrap();
    assert_eq!(
        ["critical_cnt", "high_cnt", "medium_cnt", "low_cnt", "fixable_cnt", "scanned_cnt", "total_artifact"]
            .map(figures),
        [1, 1, 1, 0, 3, 3, 3],
        "{s}"
    );
    assert_eq!(s["dangerous_cves"].as_array().unwrap().len(), 1, "{s}");
    assert_eq!(s["dangerous_cves"][0]["cve_id"], "CVE-2026-3000");
    assert_eq!(s["dangerous_cves"][0]["cvss_score_v3"], 9.8);
    assert_eq!(s["dangerous_cves"][0]["package"], "busybox");
    let dangerous: Vec<&str> =
        s["dangerous_artifacts"].as_array().unwrap().iter().map(|x| x["repository_name"].as_str().unwrap()).collect();
    assert_eq!(dangerous, ["sec/alpine", "sec/debian"], "most critical first; nothing for an image without findings");
    assert_eq!(s["dangerous_artifacts"][0]["digest"], a.as_str());
    assert_eq!(s["dangerous_artifacts"][0]["project_id"], pid);

    // Every finding, the highest score first, one without a score last.
    let (rows, total, items) = vul(&app, "").await;
    assert_eq!(
        rows,
        [row("CVE-2026-3000", "sec/alpine"), row("CVE-2026-1000", "sec/debian"), row("CVE-2023-32681", "sec/debian")]
    );
    assert_eq!(total, 3);
    assert_eq!(items[1]["cvss_v3_score"], 7.5);
    assert_eq!(items[1]["package"], "libssl3");
    assert_eq!(items[1]["fixed_version"], "3.0.13-1~deb12u1");
    assert_eq!(items[1]["digest"], d.as_str());
    assert!(items[1]["desc"].as_str().unwrap().contains("openssl"), "{}", items[1]);
    assert_eq!(items[1]["links"][0], "https://osv.test/DEBIAN-CVE-2026-1000");
    assert!(items[1].get("tags").is_none(), "tags only when asked");

    // Harbor's filters.
    assert_eq!(vul(&app, "q=cve_id%3DCVE-2026-1000").await.0, [row("CVE-2026-1000", "sec/debian")]);
    assert_eq!(vul(&app, "q=repository_name%3Dsec%2Fdebian").await.1, 2);
    assert_eq!(vul(&app, "q=cvss_score_v3%3D%5B9~10%5D").await.0, [row("CVE-2026-3000", "sec/alpine")]);
    assert_eq!(vul(&app, "q=severity%3DMedium").await.0, [row("CVE-2023-32681", "sec/debian")]);
    assert_eq!(vul(&app, "q=package%3Dbusybox").await.1, 1);
    assert_eq!(vul(&app, &format!("q=project_id%3D{pid}")).await.1, 3);
    assert_eq!(vul(&app, &format!("q=project_id%3D{}", pid + 100)).await.1, 0);
    assert_eq!(vul(&app, &format!("q=digest%3D{a}")).await.0, [row("CVE-2026-3000", "sec/alpine")]);
    let (rows, _, items) = vul(&app, "q=repository_name%3Dsec%2Fdebian,tag%3Dv1&with_tag=true").await;
    assert_eq!(rows.len(), 2);
    assert_eq!(items[0]["tags"], json!(["v1"]));
    assert_eq!(vul(&app, "q=repository_name%3Dsec%2Fdebian,tag%3Dnope").await.1, 0);
    app.admin().get("/api/v2.0/security/vul?q=tag%3Dv1").send().await.expect(400);
    app.admin().get("/api/v2.0/security/vul?q=cvss_score_v3%3D%5Bx~1%5D").send().await.expect(400);
    // Pages.
    let p2 = app.admin().get("/api/v2.0/security/vul?page=2&page_size=1").send().await.expect(200);
    assert_eq!(p2.json::<Vec<Value>>()[0]["cve_id"], "CVE-2026-1000");
    assert!(p2.header("link").contains("rel=\"next\"") && p2.header("link").contains("rel=\"prev\""));

    // Only who may read the hub.
    app.create_user("dev", "Passw0rd!").await;
    app.user("dev", "Passw0rd!").get("/api/v2.0/security/summary").send().await.expect(403);
    app.user("dev", "Passw0rd!").get("/api/v2.0/security/vul").send().await.expect(403);
    app.anonymous().get("/api/v2.0/security/vul").send().await.expect(401);

    // A rescan counts once.
    app.admin()
        .post(&format!("/api/v2.0/projects/sec/repositories/debian/artifacts/{d}/scan"))
        .json(&json!({}))
        .send()
        .await
        .expect(202);
    eventually(Duration::from_secs(30), || async {
        let a: Value = app
            .admin()
            .get(&format!("/api/v2.0/projects/sec/repositories/debian/artifacts/{d}?with_scan_overview=true"))
            .send()
            .await
            .expect(200)
            .json();
        let o = a["scan_overview"].as_object()?.values().next()?.clone();
        (o["scan_status"] == "Success").then_some(())
    })
    .await
    .unwrap();
    // Every event is handled again, as a redelivery would: nothing moves.
    let registry = app.ctx().registry();
    for digest in [&d, &a] {
        registry.sync_security_hub(&digest.parse().unwrap()).await.unwrap();
    }
    let again = hub_total(&app, 3).await;
    assert_eq!((again["scanned_cnt"].as_u64(), again["fixable_cnt"].as_u64()), (Some(3), Some(3)));
    assert_eq!(vul(&app, "").await.1, 3);

    // A deleted artifact leaves the hub; so does a deleted repository's.
    app.admin().delete(&format!("/api/v2.0/projects/sec/repositories/alpine/artifacts/{a}")).send().await.expect(200);
    let s = hub_total(&app, 2).await;
    assert_eq!((s["critical_cnt"].as_u64(), s["scanned_cnt"].as_u64()), (Some(0), Some(2)));
    assert_eq!(s["dangerous_cves"], json!([]));
    assert_eq!(vul(&app, "").await.0, [row("CVE-2026-1000", "sec/debian"), row("CVE-2023-32681", "sec/debian")]);
    app.admin().delete("/api/v2.0/projects/sec/repositories/debian").send().await.expect(200);
    let s = hub_total(&app, 0).await;
    assert_eq!(s["scanned_cnt"], 1, "the image without findings is still scanned");
    assert_eq!(vul(&app, "").await, (vec![], 0, vec![]));
}

//! The built-in scanner (F8) end to end: images made here with dpkg, apk and
//! Python packages at versions an OSV fixture (also made here) marks
//! vulnerable, scanned on push by the default scanner, report exactly the
//! expected CVEs; a package a later layer deletes is not reported; a scan
//! before any database is imported, and one of a layer of garbage, end in
//! Error with the reason in the scan log.

use std::time::Duration;

use serde_json::{Value, json};

use super::events::eventually;
use crate::support::app::{TestApp, TestAppBuilder, image_manifest};

const MIME: &str = "application/vnd.security.vulnerability.report; version=1.1";

/// A gzipped tar of `files` (path, contents); a `None` content is a
/// whiteout of that path.
pub(crate) fn layer(files: &[(&str, Option<&str>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, body) in files {
        let (path, data) = match body {
            Some(d) => (path.to_string(), d.as_bytes()),
            None => {
                let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
                (format!("{dir}/.wh.{name}"), &b""[..])
            }
        };
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, path, data).unwrap();
    }
    let tar = b.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    gz.finish().unwrap()
}

pub(crate) async fn push(app: &TestApp, repo: &str, tag: &str, layers: &[Vec<u8>]) -> String {
    let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_digest = app.upload_blob(repo, config).await;
    let mut m = image_manifest(&config_digest, config.len() as u64);
    for l in layers {
        let d = app.upload_blob(repo, l).await;
        m = m.layer_of_type(&d, l.len() as u64, "application/vnd.oci.image.layer.v1.tar+gzip");
    }
    app.put_manifest(repo, tag, &m.bytes()).await
}

const DPKG_STATUS: &str = "Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\nSource: openssl\nVersion: 3.0.11-1~deb12u1\n\n\
Package: zlib1g\nStatus: install ok installed\nArchitecture: amd64\nSource: zlib\nVersion: 1:1.2.13.dfsg-1\n\n\
Package: removed-pkg\nStatus: deinstall ok config-files\nVersion: 1.0\n\n";

pub(crate) fn debian_image() -> Vec<Vec<u8>> {
    let meta = |name: &str, version: &str| format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n");
    vec![
        layer(&[
            ("etc/os-release", Some("ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n")),
            ("var/lib/dpkg/status", Some(DPKG_STATUS)),
            ("usr/lib/python3/dist-packages/urllib3-1.26.0.dist-info/METADATA", Some(&meta("urllib3", "1.26.0"))),
        ]),
        layer(&[
            ("usr/lib/python3/dist-packages/requests-2.25.0.dist-info/METADATA", Some(&meta("requests", "2.25.0"))),
            ("usr/lib/python3/dist-packages/urllib3-1.26.0.dist-info", None),
        ]),
    ]
}

pub(crate) fn alpine_image() -> Vec<Vec<u8>> {
    vec![layer(&[
        ("etc/os-release", Some("ID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME=\"Alpine Linux v3.19\"\n")),
        (
            "lib/apk/db/installed",
            Some(
                "C:Q1abc=\nP:busybox\nV:1.36.1-r15\nA:x86_64\no:busybox\nL:GPL-2.0-only\n\nP:musl\nV:1.2.4-r2\nA:x86_64\no:musl\n\n",
            ),
        ),
    ])]
}

/// An AlmaLinux 9 image: its rpm database, then an upper layer's replacing it.
pub(crate) fn alma_image() -> Vec<Vec<u8>> {
    let base: Vec<Rpm<'_>> = vec![
        ("openssl-libs", 1, "3.0.7", "20.el9", "openssl-3.0.7-20.el9.src.rpm"),
        ("bash", 0, "5.1.8", "6.el9", "bash-5.1.8-6.el9.src.rpm"),
        ("gpg-pubkey", 0, "b86b3716", "61e69f29", ""),
    ];
    let upgraded = [("openssl-libs", 1, "3.0.7", "24.el9", "openssl-3.0.7-24.el9.src.rpm"), base[1], base[2]];
    let os = "ID=\"almalinux\"\nVERSION_ID=\"9.3\"\nPRETTY_NAME=\"AlmaLinux 9.3 (Shamrock Pampas Cat)\"\n";
    vec![
        layer_bytes(&[("etc/os-release", os.as_bytes()), ("var/lib/rpm/rpmdb.sqlite", &rpmdb(&base))]),
        layer_bytes(&[("var/lib/rpm/rpmdb.sqlite", &rpmdb(&upgraded))]),
    ]
}

/// A gzipped tar of binary files.
fn layer_bytes(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, path, *data).unwrap();
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &b.into_inner().unwrap()).unwrap();
    gz.finish().unwrap()
}

/// An rpm package as an `rpmdb.sqlite` row holds it: name, epoch (0:
/// none), version, release, source rpm.
pub(crate) type Rpm<'a> = (&'a str, u32, &'a str, &'a str, &'a str);

/// An `rpmdb.sqlite` (the `Packages` table of rpm headers) holding these
/// packages, as rpm 4.16+ writes it: each header's index entries and
/// NUL-terminated strings (the epoch an INT32).
pub(crate) fn rpmdb(packages: &[Rpm<'_>]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rpmdb.sqlite");
    let db = rusqlite::Connection::open(&path).unwrap();
    db.execute_batch("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)").unwrap();
    for (name, epoch, version, release, source) in packages {
        let (mut index, mut data) = (Vec::<[u32; 4]>::new(), Vec::<u8>::new());
        let mut string = |tag: u32, v: &str, index: &mut Vec<[u32; 4]>| {
            index.push([tag, 6, data.len() as u32, 1]);
            data.extend(v.as_bytes());
            data.push(0);
        };
        for (tag, v) in [(1000, *name), (1001, *version), (1002, *release), (1022, "x86_64"), (1044, *source)] {
            if !v.is_empty() {
                string(tag, v, &mut index);
            }
        }
        if *epoch > 0 {
            data.resize(data.len().next_multiple_of(4), 0);
            index.push([1003, 4, data.len() as u32, 1]);
            data.extend(epoch.to_be_bytes());
        }
        let mut blob = Vec::new();
        blob.extend((index.len() as u32).to_be_bytes());
        blob.extend((data.len() as u32).to_be_bytes());
        blob.extend(index.iter().flatten().flat_map(|v| v.to_be_bytes()));
        blob.extend(data);
        db.execute("INSERT INTO Packages (blob) VALUES (?1)", [blob]).unwrap();
    }
    drop(db);
    std::fs::read(path).unwrap()
}

/// The OSV fixture: records that match the images above, and some that
/// must not (fixed below the installed version, another release, a package
/// deleted by a later layer).
pub(crate) fn osv_fixture(dir: &std::path::Path) {
    let rec = |id: &str, aliases: &[&str], eco: &str, name: &str, fixed: &str, extra: Value| {
        let mut v = json!({
            "id": id, "aliases": aliases, "modified": "2026-11-30T12:00:00Z", "summary": format!("{name} is vulnerable"),
            "affected": [{"package": {"ecosystem": eco, "name": name},
                          "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]}],
            "references": [{"type": "ADVISORY", "url": format!("https://osv.test/{id}")}]
        });
        v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        std::fs::write(dir.join(format!("{id}.json")), v.to_string()).unwrap();
    };
    let high = json!({"severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"}]});
    let critical = json!({"severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]});
    rec("DEBIAN-CVE-2026-1000", &["CVE-2026-1000"], "Debian:12", "openssl", "3.0.13-1~deb12u1", high.clone());
    rec("DEBIAN-CVE-2026-1001", &["CVE-2026-1001"], "Debian:12", "zlib", "1:1.2.13.dfsg-0", high.clone());
    rec("DEBIAN-CVE-2026-1002", &["CVE-2026-1002"], "Debian:11", "openssl", "9.9.9-1", high);
    rec(
        "GHSA-j8r2-6x86-q33q",
        &["CVE-2023-32681"],
        "PyPI",
        "requests",
        "2.31.0",
        json!({"database_specific": {"severity": "MODERATE"}}),
    );
    rec(
        "GHSA-aaaa-bbbb-cccc",
        &["CVE-2026-2000"],
        "PyPI",
        "urllib3",
        "1.26.18",
        json!({"database_specific": {"severity": "HIGH"}}),
    );
    rec("ALPINE-CVE-2026-3000", &["CVE-2026-3000"], "Alpine:v3.19", "busybox", "1.36.1-r16", critical);
    let moderate = json!({"database_specific": {"severity": "MODERATE"}});
    rec("ALSA-2026:4000", &["CVE-2026-4000"], "AlmaLinux:9", "openssl-libs", "1:3.0.7-27.el9", moderate.clone());
    rec("ALSA-2026:4001", &["CVE-2026-4001"], "AlmaLinux:8", "bash", "9.9-1.el8", moderate);
    std::fs::write(dir.join("broken.json"), "{ not json").unwrap();
}

/// The findings of an artifact's report once its scan has ended: its
/// overview and (id, package, severity, fix version) of each finding.
pub(crate) async fn report(app: &TestApp, repo: &str, digest: &str) -> (Value, Vec<(String, String, String, String)>) {
    let path = format!("/api/v2.0/projects/sec/repositories/{repo}/artifacts/{digest}");
    let overview = eventually(Duration::from_secs(30), || async {
        let a: Value = app.admin().get(&format!("{path}?with_scan_overview=true")).send().await.expect(200).json();
        let o = a["scan_overview"].as_object()?.values().next()?.clone();
        ["Success", "Error"].contains(&o["scan_status"].as_str()?).then_some(o)
    })
    .await
    .expect("the scan did not end");
    let v: Value = app.admin().get(&format!("{path}/additions/vulnerabilities")).send().await.expect(200).json();
    let mut found: Vec<(String, String, String, String)> = v[MIME]["vulnerabilities"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| {
                    let s = |k: &str| x[k].as_str().unwrap_or_default().to_owned();
                    (s("id"), s("package"), s("severity"), s("fix_version"))
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    (overview, found)
}

async fn log_of(app: &TestApp, repo: &str, digest: &str, overview: &Value) -> String {
    let path = format!(
        "/api/v2.0/projects/sec/repositories/{repo}/artifacts/{digest}/scan/{}/log",
        overview["report_id"].as_str().unwrap()
    );
    app.admin().get(&path).send().await.expect(200).text()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_builtin_scanner_reports_exactly_the_expected_cves() {
    let app = TestAppBuilder::default().config(|c| c.queue.max_attempts = 1).local().await;
    let _workers = app.run_workers();
    let scanners: Vec<Value> = app.admin().get("/api/v2.0/scanners").send().await.expect(200).json();
    assert_eq!(scanners.len(), 1);
    assert_eq!((scanners[0]["name"].as_str(), scanners[0]["is_default"].as_bool()), (Some("berth"), Some(true)));
    let own = scanners[0]["uuid"].as_str().unwrap().to_owned();
    app.admin().delete(&format!("/api/v2.0/scanners/{own}")).send().await.expect(403);

    let pid = app.create_project("sec", false).await;
    app.set_project_metadata(pid, json!({"auto_scan": "true"})).await;

    // Before any database: the scan fails and says why.
    let early = push(&app, "sec/early", "v1", &[layer(&[("var/lib/dpkg/status", Some(DPKG_STATUS))])]).await;
    let (o, found) = report(&app, "early", &early).await;
    assert_eq!(o["scan_status"], "Error");
    assert!(found.is_empty());
    assert!(log_of(&app, "early", &early, &o).await.contains("berth vulndb import"));

    let dir = tempfile::tempdir().unwrap();
    osv_fixture(dir.path());
    let (info, summary) = app.ctx().registry().import_vulndb(vec![dir.path().to_owned()]).await.unwrap();
    assert_eq!(summary.records_imported, 8);
    assert_eq!(info.updated_at, "2026-11-30T12:00:00Z");
    let m: Value = app.admin().get(&format!("/api/v2.0/scanners/{own}/metadata")).send().await.expect(200).json();
    assert_eq!(m["properties"]["harbor.scanner-adapter/vulnerability-database-updated-at"], "2026-11-30T12:00:00Z");

    let d = push(&app, "sec/debian", "v1", &debian_image()).await;
    let (o, found) = report(&app, "debian", &d).await;
    assert_eq!(o["scan_status"], "Success", "{o}: {}", log_of(&app, "debian", &d, &o).await);
    let row =
        |id: &str, pkg: &str, sev: &str, fix: &str| (id.to_owned(), pkg.to_owned(), sev.to_owned(), fix.to_owned());
    assert_eq!(
        found,
        vec![
            row("CVE-2023-32681", "requests", "Medium", "2.31.0"),
            row("CVE-2026-1000", "libssl3", "High", "3.0.13-1~deb12u1"),
        ]
    );
    assert_eq!(o["severity"], "High");
    assert_eq!(o["summary"]["total"], 2);
    assert_eq!(o["summary"]["fixable"], 2);
    assert_eq!(o["scanner"]["name"], "berth");

    let a = push(&app, "sec/alpine", "v1", &alpine_image()).await;
    let (o, found) = report(&app, "alpine", &a).await;
    assert_eq!(found, vec![row("CVE-2026-3000", "busybox", "Critical", "1.36.1-r16")]);
    assert_eq!(o["severity"], "Critical");

    let alma = push(&app, "sec/alma", "v1", &alma_image()).await;
    let (o, found) = report(&app, "alma", &alma).await;
    assert_eq!(found, vec![row("CVE-2026-4000", "openssl-libs", "Medium", "1:3.0.7-27.el9")], "{o}");

    // Garbage where a layer should be: an Error with the reason, nothing else.
    let junk: Vec<u8> = (0..64 * 1024u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let g = push(&app, "sec/junk", "v1", &[junk]).await;
    let (o, found) = report(&app, "junk", &g).await;
    assert_eq!(o["scan_status"], "Error", "{o}");
    assert!(found.is_empty());
    assert!(!log_of(&app, "junk", &g, &o).await.is_empty());
}

/// A manifest GET as the administrator: its status and error code.
async fn pull(app: &TestApp, repo: &str, reference: &str) -> (u16, String) {
    let r = app
        .admin()
        .get(&format!("/v2/{repo}/manifests/{reference}"))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await;
    let code = if r.code() == 200 {
        String::new()
    } else {
        r.json::<Value>()["errors"][0]["code"].as_str().unwrap_or_default().to_owned()
    };
    (r.code(), code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn vulnerable_and_unsigned_pulls_are_refused_by_policy() {
    let app = TestAppBuilder::default().config(|c| c.queue.max_attempts = 1).local().await;
    let _workers = app.run_workers();
    let dir = tempfile::tempdir().unwrap();
    osv_fixture(dir.path());
    app.ctx().registry().import_vulndb(vec![dir.path().to_owned()]).await.unwrap();
    let pid = app.create_project("sec", false).await;
    let meta = |m: Value| {
        let app = &app;
        async move {
            app.admin().put(&format!("/api/v2.0/projects/{pid}")).json(&json!({"metadata": m})).send().await.expect(200)
        }
    };
    meta(json!({"auto_scan": "true", "prevent_vul": "true", "severity": "high"})).await;
    let debian = push(&app, "sec/debian", "v1", &debian_image()).await;
    let (o, _) = report(&app, "debian", &debian).await;
    assert_eq!(o["severity"], "High");
    // Not scanned: refused too.
    meta(json!({"auto_scan": "false"})).await;
    let unscanned = push(&app, "sec/alpine", "v1", &alpine_image()).await;
    tokio::time::sleep(berth::service::pull_policy::POLICY_TTL).await;
    assert_eq!(pull(&app, "sec/debian", "v1").await, (412, "PROJECT_POLICY_VIOLATION".to_owned()));
    assert_eq!(pull(&app, "sec/alpine", "v1").await, (412, "PROJECT_POLICY_VIOLATION".to_owned()));
    // HEAD is not a pull.
    app.admin().head("/v2/sec/debian/manifests/v1").send().await.expect(200);

    // The system allowlist lets the High one through; the Medium one is
    // under the line.
    app.admin()
        .put("/api/v2.0/system/CVEAllowlist")
        .json(&json!({"items": [{"cve_id": "CVE-2026-1000"}]}))
        .send()
        .await
        .expect(200);
    assert_eq!(pull(&app, "sec/debian", "v1").await, (200, String::new()));
    app.admin().put("/api/v2.0/system/CVEAllowlist").json(&json!({"items": []})).send().await.expect(200);
    assert_eq!(pull(&app, "sec/debian", "v1").await.0, 412);

    // Content trust: unsigned is refused even when the gate passes.
    meta(json!({"prevent_vul": "false", "enable_content_trust_cosign": "true"})).await;
    tokio::time::sleep(berth::service::pull_policy::POLICY_TTL).await;
    assert_eq!(pull(&app, "sec/alpine", "v1").await, (412, "PROJECT_POLICY_VIOLATION".to_owned()));
    let payload = format!(r#"{{"critical":{{"image":{{"docker-manifest-digest":"{unscanned}"}}}}}}"#);
    let layer = app.upload_blob("sec/alpine", payload.as_bytes()).await;
    let config = app.upload_blob("sec/alpine", b"{}").await;
    let mut sig: Value =
        serde_json::from_slice(&image_manifest(&config, 2).layer(&layer, payload.len() as u64).bytes()).unwrap();
    sig["layers"][0]["mediaType"] = json!("application/vnd.dev.cosign.simplesigning.v1+json");
    let sig_tag = format!("{}.sig", unscanned.replace(':', "-"));
    app.put_manifest("sec/alpine", &sig_tag, &serde_json::to_vec(&sig).unwrap()).await;
    assert_eq!(pull(&app, "sec/alpine", "v1").await, (200, String::new()));
    // The signature itself is always pulled (verifying needs it).
    assert_eq!(pull(&app, "sec/alpine", &sig_tag).await.0, 200);
    assert_eq!(pull(&app, "sec/debian", "v1").await.0, 412);
}

/// The SBOM overview once its generation has ended.
async fn sbom_done(app: &TestApp, path: &str) -> Value {
    eventually(Duration::from_secs(30), || async {
        let a: Value = app.admin().get(&format!("{path}?with_sbom_overview=true")).send().await.expect(200).json();
        let o = a["sbom_overview"].clone();
        ["Success", "Error"].contains(&o["scan_status"].as_str()?).then_some(o)
    })
    .await
    .expect("the SBOM was not made")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_sbom_is_made_on_push_listed_with_its_subject_and_deleted_with_it() {
    let app = TestAppBuilder::default().config(|c| c.queue.max_attempts = 1).local().await;
    let _workers = app.run_workers();
    let pid = app.create_project("sec", false).await;
    app.set_project_metadata(pid, json!({"auto_sbom_generation": "true"})).await;
    let d = push(&app, "sec/debian", "v1", &debian_image()).await;
    let path = format!("/api/v2.0/projects/sec/repositories/debian/artifacts/{d}");
    let o = sbom_done(&app, &path).await;
    assert_eq!(o["scan_status"], "Success", "{o}");
    let sbom = o["sbom_digest"].as_str().unwrap().to_owned();

    // An accessory of its subject, hidden from the plain listing.
    let acc: Vec<Value> = app.admin().get(&format!("{path}/accessories")).send().await.expect(200).json();
    assert_eq!(acc.len(), 1);
    assert_eq!((acc[0]["digest"].as_str(), acc[0]["type"].as_str()), (Some(sbom.as_str()), Some("harbor.sbom")));
    let listed: Vec<Value> =
        app.admin().get("/api/v2.0/projects/sec/repositories/debian/artifacts").send().await.expect(200).json();
    assert_eq!(listed.len(), 1);

    // Downloadable like any artifact: its one layer is the SPDX document.
    let m: Value = app
        .admin()
        .get(&format!("/v2/sec/debian/manifests/{sbom}"))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .expect(200)
        .json();
    assert_eq!(m["subject"]["digest"], d);
    let layer = m["layers"][0]["digest"].as_str().unwrap();
    let doc: Value = app.admin().get(&format!("/v2/sec/debian/blobs/{layer}")).send().await.expect(200).json();
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    let mut names: Vec<&str> = doc["packages"].as_array().unwrap().iter().filter_map(|p| p["name"].as_str()).collect();
    names.sort();
    for expected in ["libssl3", "requests", "zlib1g"] {
        assert!(names.contains(&expected), "{expected} missing from {names:?}");
    }
    assert!(!names.contains(&"urllib3"), "a package a later layer deleted is listed: {names:?}");

    // On demand: a new SBOM replaces the old one.
    app.admin().post(&format!("{path}/scan")).json(&json!({"scan_type": "sbom"})).send().await.expect(202);
    let again = eventually(Duration::from_secs(30), || async {
        let o = sbom_done(&app, &path).await;
        (o["report_id"] != json!(null) && o["sbom_digest"] != json!(sbom)).then_some(o)
    })
    .await
    .expect("no new SBOM");
    let new_sbom = again["sbom_digest"].as_str().unwrap().to_owned();
    let acc: Vec<Value> = app.admin().get(&format!("{path}/accessories")).send().await.expect(200).json();
    assert_eq!(acc.iter().map(|a| a["digest"].as_str().unwrap()).collect::<Vec<_>>(), [new_sbom.as_str()]);

    // Deleted with its subject.
    app.admin().delete(&path).send().await.expect(200);
    app.admin()
        .get(&format!("/v2/sec/debian/manifests/{new_sbom}"))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .expect(404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scan_all_scans_every_image_and_reports_its_progress() {
    let app = TestAppBuilder::default().config(|c| c.queue.max_attempts = 1).local().await;
    let _workers = app.run_workers();
    let dir = tempfile::tempdir().unwrap();
    osv_fixture(dir.path());
    app.ctx().registry().import_vulndb(vec![dir.path().to_owned()]).await.unwrap();
    app.create_project("sec", false).await;
    app.create_project("other", true).await;
    let d = push(&app, "sec/debian", "v1", &debian_image()).await;
    let a = push(&app, "other/alpine", "v1", &alpine_image()).await;
    let empty: Value = app.admin().get("/api/v2.0/scans/all/metrics").send().await.expect(200).json();
    assert_eq!((empty["total"].as_u64(), empty["ongoing"].as_bool()), (Some(0), Some(false)));
    app.admin().post("/api/v2.0/system/scanAll/stop").send().await.expect(400);

    app.admin()
        .post("/api/v2.0/system/scanAll/schedule")
        .json(&json!({"schedule": {"type": "Manual"}}))
        .send()
        .await
        .expect(201);
    let m = eventually(Duration::from_secs(30), || async {
        let m: Value = app.admin().get("/api/v2.0/scans/all/metrics").send().await.expect(200).json();
        (m["total"] == 2 && m["completed"] == 2 && m["ongoing"] == false).then_some(m)
    })
    .await
    .expect("scan all did not finish");
    assert_eq!(m["metrics"]["Success"], 2, "{m}");
    assert_eq!(m["trigger"], "Manual");
    let (o, found) = report(&app, "debian", &d).await;
    assert_eq!((o["scan_status"].as_str(), found.len()), (Some("Success"), 2));
    let a: Value = app
        .admin()
        .get(&format!("/api/v2.0/projects/other/repositories/alpine/artifacts/{a}?with_scan_overview=true"))
        .send()
        .await
        .expect(200)
        .json();
    assert_eq!(a["scan_overview"][MIME]["severity"], "Critical");

    // Stopping a run that has ended changes nothing; a schedule is kept
    // and shown.
    app.admin().post("/api/v2.0/system/scanAll/stop").send().await.expect(202);
    let after: Value = app.admin().get("/api/v2.0/scans/all/metrics").send().await.expect(200).json();
    assert_eq!(after["metrics"]["Success"], 2);
    app.admin()
        .put("/api/v2.0/system/scanAll/schedule")
        .json(&json!({"schedule": {"type": "Custom", "cron": "0 0 2 * * *"}}))
        .send()
        .await
        .expect(200);
    let s: Value = app.admin().get("/api/v2.0/system/scanAll/schedule").send().await.expect(200).json();
    assert_eq!(s["schedule"]["cron"], "0 0 2 * * *");
    let nobody = app.create_user("dev", "Passw0rd!x").await;
    let _ = nobody;
    app.user("dev", "Passw0rd!x").get("/api/v2.0/scans/all/metrics").send().await.expect(403);
}

#[tokio::test]
async fn the_database_is_imported_by_the_cli_or_seeded_at_start() {
    let fixture = tempfile::tempdir().unwrap();
    osv_fixture(fixture.path());
    let data = tempfile::tempdir().unwrap();
    let berth = env!("CARGO_BIN_EXE_berth");
    let run = |args: &[&str]| {
        let out =
            std::process::Command::new(berth).args(args).env("BERTH_ADMIN_PASSWORD", "Harbor12345").output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let d = data.path().to_str().unwrap();
    assert!(run(&["vulndb", "--data", d, "show"]).contains("no vulnerability database"));
    let out = run(&["vulndb", "--data", d, "import", fixture.path().to_str().unwrap()]);
    assert!(out.contains("imported 8 of 8 OSV records"), "{out}");
    assert!(out.contains("skipped 1: invalid JSON"), "{out}");
    assert!(run(&["vulndb", "--data", d, "show"]).contains("8 records"));

    let seed = fixture.path().to_str().unwrap().to_owned();
    let app = TestAppBuilder::default().config(move |c| c.scanner.vulndb_seed = seed).local().await;
    let info = app.ctx().registry().vulndb_info().await.unwrap().expect("the seed was not imported");
    assert_eq!(info.records, 8);
}

#[tokio::test]
async fn a_push_event_delivered_twice_starts_one_scan() {
    let app = TestApp::local().await;
    let pid = app.create_project("sec", false).await;
    let d = push(&app, "sec/debian", "v1", &debian_image()).await;
    app.set_project_metadata(pid, json!({"auto_scan": "true"})).await;
    let reg = app.ctx().registry();
    let repo = berth::oci::RepoName::parse("sec/debian").unwrap();
    let digest: berth::oci::Digest = d.parse().unwrap();
    let job = berth::jobs::scan::ScanJob::queued();
    reg.scan_on_push(&job, &repo, &digest, "event-1").await.unwrap();
    let first = reg.scans_of(&digest).await.unwrap();
    // The same event again (a redelivery), after the first scan ended.
    reg.finish_scan(&first[0], berth::service::scans::Outcome::Failed("ended".into())).await.unwrap();
    reg.scan_on_push(&job, &repo, &digest, "event-1").await.unwrap();
    let again = reg.scans_of(&digest).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].report_id, again[0].report_id);
    let vendor = berth::service::artifacts::stable_id(&format!("sec/debian@{d}"));
    let runs = reg
        .list_executions(berth::service::scans::IMAGE_SCAN, vendor, &berth::service::paging::PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(runs.total, 1);
    // Another push event of it does scan again.
    reg.scan_on_push(&job, &repo, &digest, "event-2").await.unwrap();
    assert_ne!(reg.scans_of(&digest).await.unwrap()[0].report_id, first[0].report_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cve_export_is_its_requesters_csv_downloaded_once() {
    let app = TestAppBuilder::default().config(|c| c.queue.max_attempts = 1).local().await;
    let _workers = app.run_workers();
    let dir = tempfile::tempdir().unwrap();
    osv_fixture(dir.path());
    app.ctx().registry().import_vulndb(vec![dir.path().to_owned()]).await.unwrap();
    let pid = app.create_project("sec", false).await;
    let quiet = app.create_project("quiet", false).await;
    app.create_user("owner", "Passw0rd!x").await;
    app.create_user("other", "Passw0rd!x").await;
    app.add_member(pid, "owner", 1).await;
    app.add_member(quiet, "owner", 1).await;
    app.set_project_metadata(pid, json!({"auto_scan": "true"})).await;
    let d = push(&app, "sec/debian", "v1", &debian_image()).await;
    report(&app, "debian", &d).await;

    let owner = app.user("owner", "Passw0rd!x");
    const TYPE: &str = "application/vnd.security.vulnerability.report; version=1.1";
    let start = |projects: Value, extra: Value| {
        let mut body = json!({"job_name": "e2e", "projects": projects});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        owner.post("/api/v2.0/export/cve").header("x-scan-data-type", TYPE).json(&body)
    };
    owner.post("/api/v2.0/export/cve").json(&json!({"projects": [pid]})).send().await.expect(422);
    start(json!([pid, quiet]), json!({})).send().await.expect(400);
    app.user("other", "Passw0rd!x")
        .post("/api/v2.0/export/cve")
        .header("x-scan-data-type", TYPE)
        .json(&json!({"projects": [pid]}))
        .send()
        .await
        .expect(403);
    let id = start(json!([pid]), json!({})).send().await.expect(200).json::<Value>()["id"].as_i64().unwrap();
    let path = format!("/api/v2.0/export/cve/execution/{id}");
    let done = eventually(Duration::from_secs(30), || async {
        let x: Value = owner.get(&path).send().await.expect(200).json();
        (x["status"] == "Success").then_some(x)
    })
    .await
    .expect("the export did not finish");
    assert_eq!((done["file_present"].as_bool(), done["user_name"].as_str()), (Some(true), Some("owner")));
    app.admin().get(&path).send().await.expect(403);
    let mine: Value = owner.get("/api/v2.0/export/cve/executions").send().await.expect(200).json();
    assert_eq!(mine["items"][0]["id"], id);
    let theirs: Value = app.admin().get("/api/v2.0/export/cve/executions").send().await.expect(200).json();
    assert!(theirs["items"].as_array().unwrap().is_empty());

    let download = format!("/api/v2.0/export/cve/download/{id}");
    app.user("other", "Passw0rd!x").get(&download).send().await.expect(403);
    let csv = owner.get(&download).send().await.expect(200).text();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("Project,Repository,Digest"), "{csv}");
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(csv.contains("CVE-2026-1000") && csv.contains("CVE-2023-32681"), "{csv}");
    owner.get(&download).send().await.expect(404);

    // Filters: one CVE; a project with nothing found.
    let id = start(json!([pid]), json!({"cveIds": "CVE-2026-1000"})).send().await.expect(200).json::<Value>()["id"]
        .as_i64()
        .unwrap();
    eventually(Duration::from_secs(30), || async {
        let x: Value = owner.get(&format!("/api/v2.0/export/cve/execution/{id}")).send().await.expect(200).json();
        (x["status"] == "Success").then_some(())
    })
    .await
    .unwrap();
    let csv = owner.get(&format!("/api/v2.0/export/cve/download/{id}")).send().await.expect(200).text();
    assert_eq!(csv.lines().count(), 2, "{csv}");
    let id = start(json!([quiet]), json!({})).send().await.expect(200).json::<Value>()["id"].as_i64().unwrap();
    let x = eventually(Duration::from_secs(30), || async {
        let x: Value = owner.get(&format!("/api/v2.0/export/cve/execution/{id}")).send().await.expect(200).json();
        (x["status"] == "Success").then_some(x)
    })
    .await
    .unwrap();
    assert_eq!(x["status_text"], "No vulnerabilities found or matched");
    assert_eq!(x["file_present"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_scanning_webhook_carries_the_scan_overview() {
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    let sink = received.clone();
    let receiver = axum::Router::new().fallback(move |body: axum::body::Bytes| {
        let sink = sink.clone();
        async move {
            if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                sink.lock().unwrap().push(v);
            }
            axum::http::StatusCode::OK
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, receiver).await });

    let app = TestAppBuilder::default().config(|c| c.queue.max_attempts = 1).local().await;
    let _workers = app.run_workers();
    let dir = tempfile::tempdir().unwrap();
    osv_fixture(dir.path());
    app.ctx().registry().import_vulndb(vec![dir.path().to_owned()]).await.unwrap();
    let pid = app.create_project("sec", false).await;
    app.set_project_metadata(pid, json!({"auto_scan": "true"})).await;
    app.admin()
        .post(&format!("/api/v2.0/projects/{pid}/webhook/policies"))
        .json(&json!({"name": "scans", "enabled": true, "event_types": ["SCANNING_COMPLETED"],
            "targets": [{"type": "http", "address": url}]}))
        .send()
        .await
        .expect(201);
    push(&app, "sec/debian", "v1", &debian_image()).await;
    let event = eventually(Duration::from_secs(30), || async {
        received.lock().unwrap().iter().find(|e| e["type"] == "SCANNING_COMPLETED").cloned()
    })
    .await
    .expect("no SCANNING_COMPLETED delivery");
    let o = &event["event_data"]["resources"][0]["scan_overview"][MIME];
    assert_eq!(o["scan_status"], "Success", "{event}");
    assert_eq!(o["summary"]["total"], 2, "{event}");
    assert_eq!(o["severity"], "High");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_scan_task_delivered_twice_scans_once() {
    let app = TestApp::local().await;
    let dir = tempfile::tempdir().unwrap();
    osv_fixture(dir.path());
    let reg = app.ctx().registry();
    reg.import_vulndb(vec![dir.path().to_owned()]).await.unwrap();
    app.create_project("sec", false).await;
    let d = push(&app, "sec/debian", "v1", &debian_image()).await;
    let path = format!("/api/v2.0/projects/sec/repositories/debian/artifacts/{d}");
    app.admin().post(&format!("{path}/scan")).send().await.expect(202);

    // The scan's one message, delivered twice at once and once more after.
    reg.events().flush().await;
    let queue = app.ctx().queue.clone();
    let mut got = queue.receive(berth::queue::JOBS, 10, Duration::from_secs(60), Duration::ZERO).await.unwrap();
    assert_eq!(got.len(), 1);
    let msg = got.remove(0);
    let worker = berth::jobs::host::worker(app.ctx());
    let (a, b) = tokio::join!(worker.handle(berth::queue::JOBS, &msg), worker.handle(berth::queue::JOBS, &msg));
    let _ = (a, b);
    worker.handle(berth::queue::JOBS, &msg).await;
    let scans = reg.scans_of(&d.parse().unwrap()).await.unwrap();
    assert_eq!(scans.len(), 1);
    assert_eq!(scans[0].status, berth::jobs::Status::Success);
    let tasks = reg.tasks_of(scans[0].execution).await.unwrap();
    assert_eq!((tasks.len(), tasks[0].run_count), (1, 1), "{tasks:?}");
    let log = reg.scan_log(&scans[0]).await.unwrap();
    assert_eq!(log.matches("findings").count(), 1, "{log}");
}

/// Handles every message of the jobs queue twice at once and once more, as
/// a queue delivering each twice would, until none is left.
pub(crate) async fn drain_twice(app: &TestApp) {
    let reg = app.ctx().registry();
    let queue = app.ctx().queue.clone();
    let worker = berth::jobs::host::worker(app.ctx());
    for _ in 0..50 {
        reg.events().flush().await;
        let got = queue.receive(berth::queue::JOBS, 10, Duration::from_secs(120), Duration::ZERO).await.unwrap();
        if got.is_empty() {
            return;
        }
        for msg in &got {
            let _ = tokio::join!(worker.handle(berth::queue::JOBS, msg), worker.handle(berth::queue::JOBS, msg));
            worker.handle(berth::queue::JOBS, msg).await;
        }
    }
    panic!("the jobs queue never emptied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scan_all_and_export_tasks_delivered_twice_count_once() {
    let app = TestApp::local().await;
    let dir = tempfile::tempdir().unwrap();
    osv_fixture(dir.path());
    app.ctx().registry().import_vulndb(vec![dir.path().to_owned()]).await.unwrap();
    let pid = app.create_project("sec", false).await;
    push(&app, "sec/debian", "v1", &debian_image()).await;

    app.admin()
        .post("/api/v2.0/system/scanAll/schedule")
        .json(&json!({"schedule": {"type": "Manual"}}))
        .send()
        .await
        .expect(201);
    drain_twice(&app).await;
    let m: Value = app.admin().get("/api/v2.0/scans/all/metrics").send().await.expect(200).json();
    assert_eq!((m["total"].as_u64(), m["completed"].as_u64()), (Some(1), Some(1)), "{m}");
    assert_eq!(m["metrics"]["Success"], 1, "{m}");

    let id = app
        .admin()
        .post("/api/v2.0/export/cve")
        .header("x-scan-data-type", MIME)
        .json(&json!({"projects": [pid]}))
        .send()
        .await
        .expect(200)
        .json::<Value>()["id"]
        .as_i64()
        .unwrap();
    drain_twice(&app).await;
    let csv = app.admin().get(&format!("/api/v2.0/export/cve/download/{id}")).send().await.expect(200).text();
    assert_eq!(csv.lines().count(), 3, "one header, two findings, nothing twice: {csv}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stopped_scan_all_stops_the_scans_it_started() {
    let app = TestApp::local().await;
    let dir = tempfile::tempdir().unwrap();
    osv_fixture(dir.path());
    let reg = app.ctx().registry();
    reg.import_vulndb(vec![dir.path().to_owned()]).await.unwrap();
    app.create_project("sec", false).await;
    let d: berth::oci::Digest = push(&app, "sec/debian", "v1", &debian_image()).await.parse().unwrap();
    app.admin()
        .post("/api/v2.0/system/scanAll/schedule")
        .json(&json!({"schedule": {"type": "Manual"}}))
        .send()
        .await
        .expect(201);
    // Run the run's own tasks (plan, repository) until its scan is queued.
    let (queue, worker) = (app.ctx().queue.clone(), berth::jobs::host::worker(app.ctx()));
    while reg.scans_of(&d).await.unwrap().is_empty() {
        reg.events().flush().await;
        let got = queue.receive(berth::queue::JOBS, 1, Duration::from_secs(120), Duration::ZERO).await.unwrap();
        assert!(!got.is_empty(), "the run queued no scan");
        worker.handle(berth::queue::JOBS, &got[0]).await;
    }
    app.admin().post("/api/v2.0/system/scanAll/stop").send().await.expect(202);
    drain_twice(&app).await;
    assert_eq!(reg.scans_of(&d).await.unwrap()[0].status, berth::jobs::Status::Stopped);
    let m: Value = app.admin().get("/api/v2.0/scans/all/metrics").send().await.expect(200).json();
    assert_eq!((m["total"].as_u64(), m["metrics"]["Stopped"].as_u64()), (Some(1), Some(1)), "{m}");
}

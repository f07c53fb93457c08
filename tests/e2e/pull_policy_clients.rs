//! The vulnerability gate (F8) with real clients against the real binary:
//! a project that prevents High vulnerabilities refuses skopeo, podman and
//! docker pulls of an image the built-in scanner found a High CVE in (with
//! Harbor's 412 `PROJECT_POLICY_VIOLATION`), and lets all three through
//! once the system CVE allowlist names the CVE. The database is the OSV
//! fixture of `builtin_scanner.rs`, seeded at start
//! (`BERTH_SCANNER_VULNDB_SEED`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read as _;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::builtin_scanner::{debian_image, osv_fixture};
use super::clients::{PASSWORD, USER};
use crate::support::Server;
use crate::support::cli::{DockerCleanup, docker, docker_login, fails, ok, podman, require, require_docker};

fn sha(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

struct Api<'a> {
    server: &'a Server,
    http: reqwest::blocking::Client,
}

impl Api<'_> {
    fn send(&self, req: reqwest::blocking::RequestBuilder) -> reqwest::blocking::Response {
        req.basic_auth(USER, Some(PASSWORD)).send().unwrap()
    }

    fn upload(&self, repo: &str, bytes: &[u8]) -> String {
        let digest = sha(bytes);
        let url = self.server.url(&format!("/v2/{repo}/blobs/uploads/?digest={digest}"));
        let r = self.send(self.http.post(url).body(bytes.to_vec()));
        assert_eq!(r.status(), 201, "blob upload");
        digest
    }

    /// Pushes an image of gzipped tar `layers` with a config naming their
    /// diff ids, as docker requires; its digest.
    fn push(&self, repo: &str, tag: &str, layers: &[Vec<u8>]) -> String {
        let mut diff_ids = Vec::new();
        let mut descriptors = Vec::new();
        for l in layers {
            let mut tar = Vec::new();
            flate2::read::GzDecoder::new(&l[..]).read_to_end(&mut tar).unwrap();
            diff_ids.push(sha(&tar));
            let d = self.upload(repo, l);
            descriptors.push(
                json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": l.len()}),
            );
        }
        let config = serde_json::to_vec(&json!({"architecture": "amd64", "os": "linux",
            "config": {"Cmd": ["/bin/true"]}, "rootfs": {"type": "layers", "diff_ids": diff_ids}}))
        .unwrap();
        let c = self.upload(repo, &config);
        let manifest =
            serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": c, "size": config.len()},
            "layers": descriptors}))
            .unwrap();
        let url = self.server.url(&format!("/v2/{repo}/manifests/{tag}"));
        let r = self.send(
            self.http
                .put(url)
                .header("content-type", "application/vnd.oci.image.manifest.v1+json")
                .body(manifest.clone()),
        );
        assert_eq!(r.status(), 201, "manifest push");
        sha(&manifest)
    }
}

#[test]
fn a_vulnerable_image_is_refused_to_skopeo_podman_and_docker_until_allowlisted() {
    require("skopeo", &["--version"]);
    require("podman", &["--version"]);
    require_docker();
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let osv = work.join("osv");
    std::fs::create_dir_all(&osv).unwrap();
    osv_fixture(&osv);
    let seed = osv.to_str().unwrap().to_owned();
    let server = Server::start(
        work,
        &["--data", "data"],
        &[("BERTH_ADMIN_PASSWORD", PASSWORD), ("BERTH_SCANNER_VULNDB_SEED", &seed)],
    );
    let api = Api { server: &server, http: reqwest::blocking::Client::new() };
    let meta = json!({"public": "false", "auto_scan": "true", "prevent_vul": "true", "severity": "high"});
    let r = api
        .send(api.http.post(server.url("/api/v2.0/projects")).json(&json!({"project_name": "gate", "metadata": meta})));
    assert_eq!(r.status(), 201);
    let digest = api.push("gate/debian", "v1", &debian_image());

    // Wait for the scan on push.
    let path =
        server.url(&format!("/api/v2.0/projects/gate/repositories/debian/artifacts/{digest}?with_scan_overview=true"));
    let start = Instant::now();
    loop {
        let a: Value = api.send(api.http.get(&path)).json().unwrap();
        let status = a["scan_overview"].as_object().and_then(|o| o.values().next()).map(|o| o["scan_status"].clone());
        if status == Some(json!("Success")) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no scan: {a}");
        std::thread::sleep(Duration::from_millis(200));
    }

    let host = server.addr.to_string();
    let image = format!("{host}/gate/debian:v1");
    let creds = format!("{USER}:{PASSWORD}");
    let skopeo = |dest: &str| {
        let mut c = Command::new("skopeo");
        c.args(["--insecure-policy", "copy", "--src-creds", &creds, "--src-tls-verify=false"])
            .arg(format!("docker://{image}"))
            .arg(format!("oci:{}", work.join(dest).display()));
        c
    };
    let podman_pull = || {
        let mut c = podman(work);
        c.args(["pull", "--tls-verify=false", "--creds", &creds, &image]);
        c
    };
    let login = docker_login(work, &host, USER, PASSWORD);
    assert!(login.status.success(), "docker login: {}", String::from_utf8_lossy(&login.stderr));
    let mut cleanup = DockerCleanup { images: vec![image.clone()], containers: vec![] };

    // Each client shows Harbor's message.
    const WHY: &str = "cannot be pulled due to configured policy";
    let refused = fails(&mut skopeo("refused"));
    assert!(refused.contains(WHY), "skopeo: {refused}");
    let refused = fails(&mut podman_pull());
    assert!(refused.contains(WHY), "podman: {refused}");
    let refused = fails(docker(work).args(["pull", &image]));
    assert!(refused.contains(WHY), "docker: {refused}");

    // The system allowlist names the High CVE: all three pull.
    let r = api.send(
        api.http
            .put(server.url("/api/v2.0/system/CVEAllowlist"))
            .json(&json!({"items": [{"cve_id": "CVE-2026-1000"}]})),
    );
    assert_eq!(r.status(), 200);
    ok(&mut skopeo("allowed"));
    ok(&mut podman_pull());
    ok(docker(work).args(["pull", &image]));
    cleanup.run();
}

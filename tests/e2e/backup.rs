//! Metadata backup (F23): `berth export` of a registry that served pushes,
//! accounts and policies, `berth import --metadata` into a fresh data
//! folder (with the blob folder copied, as the object store is backed up
//! on its own), and the restored registry serves the same: the user signs
//! in, the project and its policy are there, the image pulls bit-exact.

use std::time::Duration;

use crate::support::{Server, run};

const PASSWORD: &str = "Harbor12345";

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn an_export_restores_into_a_fresh_backend() {
    let http = reqwest::blocking::Client::new();
    let admin = |r: reqwest::blocking::RequestBuilder| r.basic_auth("admin", Some(PASSWORD)).send().unwrap();
    let env = [("BERTH_ADMIN_PASSWORD", PASSWORD)];
    let first = tempfile::tempdir().unwrap();
    let mut server = Server::start(first.path(), &["--data", "data"], &env);
    let api = |s: &Server, p: &str| s.url(&format!("/api/v2.0{p}"));
    let r = admin(http.post(api(&server, "/users")).json(&serde_json::json!({
        "username": "alice", "email": "alice@example.com", "realname": "Alice", "password": "Alice12345"})));
    assert_eq!(r.status(), 201);
    let r = admin(
        http.post(api(&server, "/projects"))
            .json(&serde_json::json!({"project_name": "keep", "metadata": {"public": "false"}})),
    );
    assert_eq!(r.status(), 201);
    let r = admin(http.post(api(&server, "/projects/keep/immutabletagrules")).json(&serde_json::json!({
        "disabled": false, "action": "immutable", "template": "immutable_template",
        "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": "v*"}],
        "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": "**"}]}})));
    assert_eq!(r.status(), 201, "{}", r.text().unwrap());
    let layer = super::import::noise(300_000, 21);
    let m = super::import::image(
        &http_admin(),
        &server.url(""),
        "keep/app",
        super::import::OCI_MANIFEST,
        "amd64",
        &[&layer],
    );
    let r = admin(
        http.put(server.url("/v2/keep/app/manifests/v1"))
            .header("content-type", super::import::OCI_MANIFEST)
            .body(m.clone()),
    );
    assert_eq!(r.status(), 201, "{}", r.text().unwrap());
    server.child.kill().unwrap();
    server.child.wait().unwrap();

    // Export, then restore into a fresh folder with the blobs copied.
    let (out, _) = run(first.path(), &["export", "--data", "data", "backup.jsonl"], &env, Duration::from_secs(60));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    let exported: u64 = said.trim().trim_start_matches("exported ").trim_end_matches(" items").parse().unwrap();
    assert!(exported > 20, "{said}");
    let backup = first.path().join("backup.jsonl");
    let second = tempfile::tempdir().unwrap();
    let restore = |extra: &[&str]| {
        let mut args = vec!["import", "--metadata", "--data", "data"];
        args.extend_from_slice(extra);
        args.push(backup.to_str().unwrap());
        run(second.path(), &args, &env, Duration::from_secs(60)).0
    };
    let out = restore(&[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("restored {exported} items from {}", backup.display())
    );
    let again = restore(&[]);
    assert!(!again.status.success(), "a restore into a table that holds items is refused");
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("holds items already"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(restore(&["--overwrite"]).status.success());
    copy_dir(&first.path().join("data/blobs"), &second.path().join("data/blobs"));

    let server = Server::start(second.path(), &["--data", "data"], &env);
    let me = http.get(api(&server, "/users/current")).basic_auth("alice", Some("Alice12345")).send().unwrap();
    assert_eq!(me.status(), 200, "alice signs in with her password");
    let rules: serde_json::Value = admin(http.get(api(&server, "/projects/keep/immutabletagrules"))).json().unwrap();
    assert_eq!(rules.as_array().map(Vec::len), Some(1), "{rules}");
    let got = admin(http.get(server.url("/v2/keep/app/manifests/v1")).header("accept", super::import::OCI_MANIFEST));
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().unwrap().to_vec(), m);
    let blob = admin(http.get(server.url(&format!("/v2/keep/app/blobs/{}", super::import::digest(&layer)))));
    assert_eq!(blob.status(), 200);
    assert_eq!(blob.bytes().unwrap().to_vec(), layer);
    // The tag is immutable there too: another image can't take it.
    let other = super::import::image(
        &http_admin(),
        &server.url(""),
        "keep/app",
        super::import::OCI_MANIFEST,
        "arm64",
        &[&layer],
    );
    let r = admin(
        http.put(server.url("/v2/keep/app/manifests/v1"))
            .header("content-type", super::import::OCI_MANIFEST)
            .body(other),
    );
    assert_eq!(r.status(), 412, "{}", r.text().unwrap());
}

/// A client that sends the administrator's Basic credentials with every
/// request (the import helpers take a plain client).
fn http_admin() -> reqwest::blocking::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let value = format!(
        "Basic {}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("admin:{PASSWORD}"))
    );
    headers.insert(reqwest::header::AUTHORIZATION, value.parse().unwrap());
    reqwest::blocking::Client::builder().default_headers(headers).build().unwrap()
}

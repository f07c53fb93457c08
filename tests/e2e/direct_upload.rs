//! The berth upload extension end to end: `berth push-blob` sends a blob of
//! over 100 MiB through presigned part URLs straight to the object store
//! (AWS emulator), the registry verifies it by reading it back, and it is
//! then pullable; a completion with the wrong digest is refused and leaves
//! nothing visible; the local backend answers `UNSUPPORTED`.

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::clients::{MIB, PASSWORD, USER, random_seed, sha256_file, write_random};
use crate::support::cli::{CLIENT_TIMEOUT, exec};
use crate::support::{AwsResources, BERTH, Server, emulator};

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn push_blob(server: &Server, repo: &str, file: &std::path::Path) -> std::process::Output {
    exec(
        Command::new(BERTH)
            .args(["push-blob", "--registry", &server.url(""), "--repository", repo, "--username", USER])
            .arg("--password-stdin")
            .arg(file),
        Some(format!("{PASSWORD}\n").as_bytes()),
        CLIENT_TIMEOUT,
    )
}

#[test]
fn push_blob_sends_bytes_straight_to_the_object_store() {
    if !emulator("push_blob_sends_bytes_straight_to_the_object_store") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let aws = AwsResources::new("berth-direct-");
    let server = aws.serve(dir.path(), &[]);
    let file = dir.path().join("big.bin");
    write_random(&file, 100 * MIB + 4_321, &mut random_seed());
    let want = sha256_file(&file);

    let io_before = proc_io(&server);
    let started = std::time::Instant::now();
    let out = push_blob(&server, "library/direct", &file);
    assert!(out.status.success(), "push-blob: {}", String::from_utf8_lossy(&out.stderr));
    let io_after = proc_io(&server);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), want, "push-blob prints the digest");
    eprintln!("push-blob of 100 MiB through presigned parts took {:?}", started.elapsed());
    // The bytes came from the object store (the read-back hash), not from
    // the client: berth read them once, and wrote almost nothing.
    let wrote = io_after.1 - io_before.1;
    assert!(wrote < 4 * MIB, "berth wrote {wrote} bytes for a direct upload");

    let c = client();
    let blob = server.url(&format!("/v2/library/direct/blobs/{want}"));
    let head = c.head(&blob).basic_auth(USER, Some(PASSWORD)).send().unwrap();
    assert_eq!(head.status().as_u16(), 200);
    assert_eq!(head.headers()["content-length"], (100 * MIB + 4_321).to_string().as_str());
    let get = c.get(&blob).basic_auth(USER, Some(PASSWORD)).send().unwrap();
    assert_eq!(get.status().as_u16(), 307);
    let pulled = dir.path().join("pulled.bin");
    let mut resp = c.get(get.headers()["location"].to_str().unwrap()).send().unwrap();
    assert!(resp.status().is_success());
    std::io::copy(&mut resp, &mut std::fs::File::create(&pulled).unwrap()).unwrap();
    assert_eq!(sha256_file(&pulled), want, "the pulled blob is the pushed one");
}

#[test]
fn a_wrong_digest_is_refused_and_leaves_no_blob() {
    if !emulator("a_wrong_digest_is_refused_and_leaves_no_blob") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let aws = AwsResources::new("berth-direct-bad-");
    let server = aws.serve(dir.path(), &[]);
    let c = client();
    let auth = |r: reqwest::blocking::RequestBuilder| r.basic_auth(USER, Some(PASSWORD));
    let blob: Vec<u8> = (0..6 * MIB + 17).map(|i| (i % 251) as u8).collect();
    let real = berth::oci::Digest::sha256_of(&blob);
    let wrong = berth::oci::Digest::sha256_of(b"something else");

    let anonymous = c.post(server.url("/v2/library/bad/_berth/uploads")).json(&json!({"size": blob.len()})).send();
    assert_eq!(anonymous.unwrap().status().as_u16(), 401, "the extension is authorized like a push");
    let start = auth(c.post(server.url("/v2/library/bad/_berth/uploads/")))
        .json(&json!({"size": blob.len(), "part_size": 5 * MIB}))
        .send()
        .unwrap();
    assert_eq!(start.status().as_u16(), 202);
    let location = start.headers()["location"].to_str().unwrap().to_owned();
    let upload: Value = start.json().unwrap();
    let parts = upload["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 2, "{upload}");
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap();
    let mut done = Vec::new();
    for p in parts {
        let url = p["url"].as_str().unwrap();
        assert!(url.starts_with(&endpoint) && url.contains("X-Amz-Signature="), "{url} is presigned for the store");
        let (offset, size) = (p["offset"].as_u64().unwrap() as usize, p["size"].as_u64().unwrap() as usize);
        let put = c
            .put(url)
            .header("content-type", "application/octet-stream")
            .body(blob[offset..offset + size].to_vec())
            .send()
            .unwrap();
        assert!(put.status().is_success(), "{}", put.status());
        done.push(json!({"number": p["number"], "etag": put.headers()["etag"].to_str().unwrap()}));
    }
    // An ordinary chunk cannot be mixed in.
    let id = upload["id"].as_str().unwrap();
    let patch = auth(c.patch(server.url(&format!("/v2/library/bad/blobs/uploads/{id}"))))
        .header("content-type", "application/octet-stream")
        .body(vec![1u8; 10])
        .send()
        .unwrap();
    assert_eq!(patch.status().as_u16(), 400);
    // Parts missing from the completion are refused, and the session stays.
    let partial = auth(c.put(server.url(&format!("{location}?digest={real}"))))
        .json(&json!({"parts": [done[0].clone()]}))
        .send()
        .unwrap();
    assert_eq!(partial.status().as_u16(), 400);

    let refused = auth(c.put(server.url(&format!("{location}?digest={wrong}")))).json(&json!({"parts": done})).send();
    let refused = refused.unwrap();
    assert_eq!(refused.status().as_u16(), 400);
    let body: Value = refused.json().unwrap();
    assert_eq!(body["errors"][0]["code"], "DIGEST_INVALID", "{body}");
    for digest in [&wrong, &real] {
        let head = auth(c.head(server.url(&format!("/v2/library/bad/blobs/{digest}")))).send().unwrap();
        assert_eq!(head.status().as_u16(), 404, "no blob {digest} after a refused completion");
    }
    let again = auth(c.put(server.url(&format!("{location}?digest={real}")))).json(&json!({"parts": done})).send();
    assert_eq!(again.unwrap().status().as_u16(), 404, "the session ended with the refusal");
    let left = objects(aws.bucket()).unwrap_or_default();
    assert!(left.is_empty(), "the refused upload left objects behind: {left:?}");
}

#[test]
fn the_local_backend_answers_unsupported() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--data", "data"], &[("BERTH_ADMIN_PASSWORD", PASSWORD)]);
    let resp = client()
        .post(server.url("/v2/library/x/_berth/uploads"))
        .basic_auth(USER, Some(PASSWORD))
        .json(&json!({"size": 10}))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    let body: Value = resp.json().unwrap();
    assert_eq!(body["errors"][0]["code"], "UNSUPPORTED", "{body}");
    let file = dir.path().join("small.bin");
    std::fs::write(&file, b"0123456789").unwrap();
    let out = push_blob(&server, "library/x", &file);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("UNSUPPORTED") && stderr.lines().count() == 1, "{stderr}");
}

/// `(rchar, wchar)` of the server process.
fn proc_io(server: &Server) -> (u64, u64) {
    let io = std::fs::read_to_string(format!("/proc/{}/io", server.child.id())).unwrap();
    let field = |name: &str| io.lines().find_map(|l| l.strip_prefix(name)).unwrap().trim().parse::<u64>().unwrap();
    (field("rchar:"), field("wchar:"))
}

/// Every object key in the bucket, and every unfinished multipart upload.
fn objects(bucket: &str) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
        let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build());
        let mut keys: Vec<String> = Vec::new();
        let listed = s3.list_objects_v2().bucket(bucket).send().await?;
        keys.extend(listed.contents().iter().filter_map(|o| o.key().map(str::to_owned)));
        let uploads = s3.list_multipart_uploads().bucket(bucket).send().await?;
        keys.extend(uploads.uploads().iter().filter_map(|u| u.key().map(|k| format!("multipart {k}"))));
        Ok(keys)
    })
}

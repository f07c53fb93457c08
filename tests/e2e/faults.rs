//! Crashes are inputs too: a berth killed with SIGKILL in the middle of an
//! upload loses no acknowledged chunk, and the client resumes where the
//! registry says the upload stands.

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use crate::support::Server;

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().unwrap()
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed ^ (i >> 16) as u8)).collect()
}

#[test]
fn killed_mid_upload_resumes_from_the_last_acknowledged_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_arg = data.to_str().unwrap();
    let env = [("BERTH_ADMIN_PASSWORD", "Harbor12345")];
    let c = client();
    let blob = pattern(20 * 1024 * 1024 + 17, 9);
    let digest = berth::oci::Digest::sha256_of(&blob);
    let first = 3 * 1024 * 1024 + 1;

    let mut server = Server::start(dir.path(), &["--data", data_arg], &env);
    let start =
        c.post(server.url("/v2/library/crash/blobs/uploads/")).basic_auth("admin", Some("Harbor12345")).send().unwrap();
    assert_eq!(start.status().as_u16(), 202);
    let location = start.headers()["location"].to_str().unwrap().to_owned();
    let patch = c
        .patch(server.url(&location))
        .basic_auth("admin", Some("Harbor12345"))
        .header("content-range", format!("0-{}", first - 1))
        .body(blob[..first].to_vec())
        .send()
        .unwrap();
    assert_eq!(patch.status().as_u16(), 202, "first chunk acknowledged");

    // A second chunk is cut off half-way by a SIGKILL of the server.
    let mut raw = TcpStream::connect(server.addr).unwrap();
    let rest = &blob[first..];
    write!(
        raw,
        "PATCH {location} HTTP/1.1\r\nHost: {}\r\nAuthorization: Basic YWRtaW46SGFyYm9yMTIzNDU=\r\nContent-Type: application/octet-stream\r\nContent-Range: {first}-{}\r\nContent-Length: {}\r\n\r\n",
        server.addr,
        blob.len() - 1,
        rest.len()
    )
    .unwrap();
    raw.write_all(&rest[..rest.len() / 2]).unwrap();
    raw.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    drop(raw);

    let server = Server::start(dir.path(), &["--data", data_arg], &env);
    let status = c.get(server.url(&location)).basic_auth("admin", Some("Harbor12345")).send().unwrap();
    assert_eq!(status.status().as_u16(), 204);
    assert_eq!(
        status.headers()["range"],
        format!("0-{}", first - 1).as_str(),
        "the acknowledged chunk survived, the cut one did not count"
    );
    let patch = c
        .patch(server.url(&location))
        .basic_auth("admin", Some("Harbor12345"))
        .header("content-range", format!("{first}-{}", blob.len() - 1))
        .body(rest.to_vec())
        .send()
        .unwrap();
    assert_eq!(patch.status().as_u16(), 202);
    let put = c
        .put(server.url(&format!("{location}?digest={digest}")))
        .basic_auth("admin", Some("Harbor12345"))
        .send()
        .unwrap();
    assert_eq!(put.status().as_u16(), 201, "{}", put.text().unwrap_or_default());
    let got = c
        .get(server.url(&format!("/v2/library/crash/blobs/{digest}")))
        .basic_auth("admin", Some("Harbor12345"))
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    assert_eq!(got.len(), blob.len());
    assert!(got.as_ref() == blob.as_slice(), "the blob is bit-exact after the crash");
}

/// A berth killed with SIGKILL while a push's webhook delivery is under
/// way (the receiver holds the request when the process dies): after a
/// restart the event is delivered, and every delivery of it carries the
/// one event id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_between_a_push_and_its_webhook_the_event_still_arrives() {
    use std::sync::{Arc, Mutex};
    let got: Arc<Mutex<Vec<(String, serde_json::Value)>>> = Arc::default();
    let sink = got.clone();
    let hook = axum::Router::new().fallback(move |headers: axum::http::HeaderMap, body: bytes::Bytes| {
        let sink = sink.clone();
        async move {
            let id = headers.get("x-berth-event-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
            sink.lock().unwrap().push((id, serde_json::from_slice(&body).unwrap_or_default()));
            // Slow enough that the first delivery is in flight at the kill.
            tokio::time::sleep(Duration::from_secs(3)).await;
            axum::http::StatusCode::OK
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, hook).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let args = ["--data", data.to_str().unwrap()];
    let env = [("BERTH_ADMIN_PASSWORD", "Harbor12345")];
    let mut server = Server::start(dir.path(), &args, &env);
    let c = reqwest::Client::new();
    let policy = serde_json::json!({"name": "crash", "enabled": true, "event_types": ["PUSH_ARTIFACT"],
        "targets": [{"type": "http", "address": format!("http://{hook_addr}/hook")}]});
    let r = c
        .post(server.url("/api/v2.0/projects/library/webhook/policies"))
        .basic_auth("admin", Some("Harbor12345"))
        .json(&policy)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let config = b"{}";
    let config_digest = berth::oci::Digest::sha256_of(config).to_string();
    let up = c
        .post(server.url(&format!("/v2/library/crash/blobs/uploads/?digest={config_digest}")))
        .basic_auth("admin", Some("Harbor12345"))
        .body(config.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(up.status().as_u16(), 201);
    let manifest = serde_json::to_vec(&serde_json::json!({"schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config_digest, "size": 2},
        "layers": []}))
    .unwrap();
    let digest = berth::oci::Digest::sha256_of(&manifest).to_string();
    let put = c
        .put(server.url("/v2/library/crash/manifests/v1"))
        .basic_auth("admin", Some("Harbor12345"))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status().as_u16(), 201);
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let before = got.lock().unwrap().len();

    let server = Server::start(dir.path(), &args, &env);
    // Delivered again once the dead process's claim runs out (the
    // webhooks queue's visibility timeout, 60 s).
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let policies: serde_json::Value = c
        .get(server.url("/api/v2.0/projects/library/webhook/policies"))
        .basic_auth("admin", Some("Harbor12345"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let executions = format!("/api/v2.0/projects/library/webhook/policies/{}/executions", policies[0]["id"]);
    loop {
        let list: serde_json::Value = c
            .get(server.url(&executions))
            .basic_auth("admin", Some("Harbor12345"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if list[0]["status"] == "Success" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not delivered after the restart: {list}\n{}", server.log_text());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let got = got.lock().unwrap().clone();
    // The delivery under way at the kill never finished (the receiver
    // answers after 3 s), so the one that succeeded came after the restart.
    assert!(got.len() > before, "{got:?}");
    let id = &got[0].0;
    assert!(!id.is_empty());
    assert!(
        got.iter().all(|(i, body)| i == id && body["event_data"]["resources"][0]["digest"] == digest.as_str()),
        "{got:?}"
    );
}

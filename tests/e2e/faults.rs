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

//! `berth import` of a Distribution filesystem store (F23): images pushed
//! to Debian's Distribution (one-level and nested names, Docker and OCI
//! manifests, an index, an untagged manifest, a layer shared between
//! images, a multi-MiB layer), Distribution stopped, its folder imported
//! by the real CLI, then pulled from `berth serve` with skopeo bit-exactly;
//! a second import copies nothing.

use std::process::Command;
use std::time::Duration;

use sha2::Digest as _;

use crate::support::cli::{ok, ok_bytes};
use crate::support::distribution::Distribution;
use crate::support::{Server, run};

const PASSWORD: &str = "Harbor12345";
pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(crate) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

pub(crate) fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// Pushes a blob to Distribution (monolithic upload).
pub(crate) fn put_blob(client: &reqwest::blocking::Client, url: &str, repo: &str, bytes: &[u8]) -> String {
    let d = digest(bytes);
    let r = client.post(format!("{url}/v2/{repo}/blobs/uploads/")).send().unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().unwrap_or_default());
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let location = if location.starts_with("http") { location } else { format!("{url}{location}") };
    let sep = if location.contains('?') { '&' } else { '?' };
    let r = client.put(format!("{location}{sep}digest={d}")).body(bytes.to_vec()).send().unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().unwrap_or_default());
    d
}

pub(crate) fn put_manifest(
    client: &reqwest::blocking::Client,
    url: &str,
    repo: &str,
    reference: &str,
    media: &str,
    body: &[u8],
) {
    let r = client
        .put(format!("{url}/v2/{repo}/manifests/{reference}"))
        .header("content-type", media)
        .body(body.to_vec())
        .send()
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().unwrap_or_default());
}

/// An image manifest of `media` with a config and these layers.
pub(crate) fn image(
    client: &reqwest::blocking::Client,
    url: &str,
    repo: &str,
    media: &str,
    arch: &str,
    layers: &[&[u8]],
) -> Vec<u8> {
    let config = format!(r#"{{"architecture":"{arch}","os":"linux","rootfs":{{"type":"layers","diff_ids":[]}}}}"#);
    let layer_media = if media == DOCKER_MANIFEST {
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    } else {
        "application/vnd.oci.image.layer.v1.tar+gzip"
    };
    let config_media = if media == DOCKER_MANIFEST {
        "application/vnd.docker.container.image.v1+json"
    } else {
        "application/vnd.oci.image.config.v1+json"
    };
    let layers: Vec<serde_json::Value> = layers
        .iter()
        .map(|l| serde_json::json!({"mediaType": layer_media, "digest": put_blob(client, url, repo, l), "size": l.len()}))
        .collect();
    let m = serde_json::json!({
        "schemaVersion": 2, "mediaType": media,
        "config": {"mediaType": config_media, "digest": put_blob(client, url, repo, config.as_bytes()), "size": config.len()},
        "layers": layers,
    });
    serde_json::to_vec_pretty(&m).unwrap()
}

pub(crate) fn noise(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2654435761) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn skopeo() -> Command {
    let mut c = Command::new("skopeo");
    c.arg("--insecure-policy");
    c
}

/// What [`fill_distribution`] pushed.
pub(crate) struct Fixture {
    pub shared: Vec<u8>,
    pub big: Vec<u8>,
    pub alpine: Vec<u8>,
    pub v1: Vec<u8>,
    pub v2: Vec<u8>,
    pub index: Vec<u8>,
    pub untagged: Vec<u8>,
}

/// Fills a Distribution: `alpine` (Docker manifest, tags 3.19 and latest),
/// `team/tools/app` (OCI images v1 with a `big_len`-byte layer and v2, an
/// index `multi` of both, an untagged image), a layer shared by both
/// repositories.
pub(crate) fn fill_distribution(http: &reqwest::blocking::Client, url: &str, big_len: usize) -> Fixture {
    let shared = noise(70_000, 1);
    let big = noise(big_len, 2);

    let alpine = image(http, url, "alpine", DOCKER_MANIFEST, "amd64", &[&shared, &noise(1000, 3)]);
    put_manifest(http, url, "alpine", "3.19", DOCKER_MANIFEST, &alpine);
    put_manifest(http, url, "alpine", "latest", DOCKER_MANIFEST, &alpine);
    let v1 = image(http, url, "team/tools/app", OCI_MANIFEST, "amd64", &[&shared, &big]);
    let v2 = image(http, url, "team/tools/app", OCI_MANIFEST, "arm64", &[&noise(5000, 4), &shared]);
    put_manifest(http, url, "team/tools/app", "v1", OCI_MANIFEST, &v1);
    put_manifest(http, url, "team/tools/app", "v2", OCI_MANIFEST, &v2);
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": digest(&v1), "size": v1.len(), "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": OCI_MANIFEST, "digest": digest(&v2), "size": v2.len(), "platform": {"architecture": "arm64", "os": "linux"}},
        ],
    }))
    .unwrap();
    put_manifest(http, url, "team/tools/app", "multi", OCI_INDEX, &index);
    let untagged = image(http, url, "team/tools/app", OCI_MANIFEST, "s390x", &[&noise(300, 5)]);
    put_manifest(http, url, "team/tools/app", &digest(&untagged), OCI_MANIFEST, &untagged);
    Fixture { shared, big, alpine, v1, v2, index, untagged }
}

#[test]
fn a_distribution_store_is_imported_and_pulls_bit_exact() {
    let mut dist = Distribution::start(&[]);
    let url = dist.url();
    let http = reqwest::blocking::Client::new();
    let Fixture { shared, big, alpine, v1, index, untagged, .. } = fill_distribution(&http, &url, 6 * 1024 * 1024 + 17);
    dist.stop();

    let work = tempfile::tempdir().unwrap();
    let env = [("BERTH_ADMIN_PASSWORD", PASSWORD)];
    let store = dist.storage();
    let import = |what: &str| {
        let (out, _) =
            run(work.path(), &["import", "--data", "data", store.to_str().unwrap()], &env, Duration::from_secs(120));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{what}: {text}\n{}", String::from_utf8_lossy(&out.stderr));
        text
    };
    let first = import("first import");
    assert!(
        first.contains("imported 2 repositories: 5 manifests, 5 tags, 10 blobs"),
        "the shared layer once per repository: {first}"
    );
    assert!(import("second import").contains("5 manifests, 5 tags, 0 blobs (0 bytes) copied"));

    let server = Server::start(work.path(), &["--data", "data"], &env);
    let host = server.addr.to_string();
    let creds = format!("admin:{PASSWORD}");
    let raw = |reference: &str| {
        ok_bytes(
            skopeo()
                .args(["inspect", "--raw", "--creds", &creds, "--tls-verify=false"])
                .arg(format!("docker://{host}/{reference}")),
        )
    };
    assert_eq!(raw("library/alpine:3.19"), alpine, "a one-level name lands in library/");
    assert_eq!(raw("library/alpine:latest"), alpine);
    assert_eq!(raw("team/tools/app:v1"), v1);
    assert_eq!(raw("team/tools/app:multi"), index);
    assert_eq!(raw(&format!("team/tools/app@{}", digest(&untagged))), untagged, "untagged manifests come too");
    let tags = ok(skopeo()
        .args(["list-tags", "--creds", &creds, "--tls-verify=false"])
        .arg(format!("docker://{host}/team/tools/app")));
    for t in ["v1", "v2", "multi"] {
        assert!(tags.contains(&format!("\"{t}\"")), "{tags}");
    }
    // Every byte of an image, pulled by a real client.
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("v1");
    ok(skopeo()
        .args(["copy", "--src-creds", &creds, "--src-tls-verify=false"])
        .arg(format!("docker://{host}/team/tools/app:v1"))
        .arg(format!("dir:{}", dest.display())));
    for layer in [&shared, &big] {
        let hex = digest(layer).trim_start_matches("sha256:").to_owned();
        assert_eq!(&std::fs::read(dest.join(&hex)).unwrap(), layer, "layer {hex}");
    }
}

#[test]
fn a_folder_that_is_no_store_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let (out, _) = run(
        work.path(),
        &["import", "--data", "data", work.path().to_str().unwrap()],
        &[("BERTH_ADMIN_PASSWORD", PASSWORD)],
        Duration::from_secs(60),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a Distribution filesystem store"));
}

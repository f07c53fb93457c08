//! Real registry clients against the real `berth` binary: skopeo (with
//! images built by umoci, one layer over 100 MiB), podman, oras-py and
//! docker, each on the local backends and on the AWS backends (emulator).
//!
//! The clients are required: a missing one fails the test (`.ci/run`
//! installs them all). Every client command is killed, and the test failed,
//! when it outlives a generous timeout. On the AWS backends a blob pull must
//! be a `307` to the object store, and berth itself must send none of the
//! blob bytes (its `wchar` in `/proc/<pid>/io` stays far below them).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::support::cli::{
    CLIENT_TIMEOUT, DockerCleanup, docker, docker_login, exec, fails, ok, ok_bytes, podman, require, require_docker,
};
use crate::support::{AwsResources, Server, emulator};

pub(crate) const USER: &str = "admin";
pub(crate) const PASSWORD: &str = "Harbor12345";
const CREDS: &str = "admin:Harbor12345";
pub(crate) const MIB: u64 = 1024 * 1024;
/// The big layer's file: over 100 MiB and not a whole number of parts.
const BIG_FILE: u64 = 100 * MIB + 123_457;
/// What berth may write while a client pulls from the AWS backends.
const PROXY_LIMIT: u64 = 5 * MIB;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const ARTIFACT_TYPE: &str = "application/vnd.berth.e2e.artifact.v1";
const REFERRER_TYPE: &str = "application/vnd.berth.e2e.signature.v1";

// ---------------------------------------------------------------- the tests

#[test]
fn skopeo_local() {
    skopeo_round_trip(&Registry::local());
}

#[test]
fn skopeo_aws() {
    if let Some(registry) = Registry::aws("skopeo_aws") {
        skopeo_round_trip(&registry);
    }
}

#[test]
fn podman_local() {
    podman_round_trip(&Registry::local());
}

#[test]
fn podman_aws() {
    if let Some(registry) = Registry::aws("podman_aws") {
        podman_round_trip(&registry);
    }
}

#[test]
fn skopeo_multi_arch_local() {
    skopeo_multi_arch(&Registry::local());
}

#[test]
fn skopeo_multi_arch_aws() {
    if let Some(registry) = Registry::aws("skopeo_multi_arch_aws") {
        skopeo_multi_arch(&registry);
    }
}

#[test]
fn oras_local() {
    oras_referrers(&Registry::local());
}

#[test]
fn oras_aws() {
    if let Some(registry) = Registry::aws("oras_aws") {
        oras_referrers(&registry);
    }
}

#[test]
fn docker_local() {
    docker_round_trip(&Registry::local());
}

#[test]
fn docker_aws() {
    require_docker();
    if let Some(registry) = Registry::aws("docker_aws") {
        docker_round_trip(&registry);
    }
}

// ------------------------------------------------------------------ skopeo

/// umoci builds a three-layer OCI image (one layer over 100 MiB of
/// incompressible bytes); skopeo pushes it as OCI and as Docker schema 2,
/// copies it back to `oci:` and `dir:`, lists tags, inspects and deletes.
fn skopeo_round_trip(registry: &Registry) {
    require("skopeo", &["--version"]);
    require("umoci", &["--version"]);
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let repo = berth::testkit::unique("library/skopeo-");
    let host = registry.host();
    let src = build_umoci_image(work);
    let image = OciImage::read(&work.join("src"), "base");
    let big = image.layers.iter().max_by_key(|l| l.size).unwrap().clone();
    assert!(big.size > 100 * MIB, "the big layer is {} bytes", big.size);

    let dest = |tag: &str| format!("docker://{host}/{repo}:{tag}");
    let skopeo = || {
        let mut c = Command::new("skopeo");
        c.arg("--insecure-policy");
        c
    };
    let copy_to = |from: &str, to: &str, extra: &[&str]| {
        ok(skopeo().args(["copy", "--dest-creds", CREDS, "--dest-tls-verify=false"]).args(extra).args([from, to]))
    };
    let copy_from =
        |from: &str, to: &str| ok(skopeo().args(["copy", "--src-creds", CREDS, "--src-tls-verify=false", from, to]));
    let inspect = |tag: &str| {
        let mut c = skopeo();
        c.args(["inspect", "--raw", "--creds", CREDS, "--tls-verify=false"]).arg(dest(tag));
        c
    };
    let list_tags = || {
        let mut c = skopeo();
        c.args(["list-tags", "--creds", CREDS, "--tls-verify=false"]).arg(format!("docker://{host}/{repo}"));
        skopeo_tags(&ok(&mut c))
    };

    // `library` is public: anonymous clients may read it (here: nothing
    // there yet) through the token flow, but never write to it.
    let anonymous_tags = || {
        let mut c = skopeo();
        c.args(["list-tags", "--tls-verify=false"]).arg(format!("docker://{host}/{repo}"));
        c
    };
    let err = fails(&mut anonymous_tags());
    assert!(err.contains("404"), "{err}");
    let err = fails(skopeo().args(["copy", "--dest-tls-verify=false", &src, &dest("anon")]));
    assert!(err.contains("authentication required") || err.contains("unauthorized") || err.contains("denied"), "{err}");

    // Push the OCI image under two tags.
    copy_to(&src, &dest("v1"), &[]);
    copy_to(&src, &dest("v2"), &[]);
    let raw = ok_bytes(&mut inspect("v1"));
    assert_eq!(raw, image.manifest_bytes, "the registry serves the pushed manifest byte for byte");
    assert_eq!(list_tags(), ["v1", "v2"]);

    // The manifest over plain HTTP, and the big blob: streamed by berth
    // locally, a redirect to the object store on AWS.
    let resp = registry.get(&format!("/v2/{repo}/manifests/v1"), Some(OCI_MANIFEST));
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["docker-content-digest"], image.manifest_digest.as_str());
    assert_eq!(resp.headers()["content-type"], OCI_MANIFEST);
    registry.check_blob_get(&repo, &big);

    // Copy back out, to an OCI layout and to a `dir:`: every blob bit-exact.
    let blob_bytes: u64 = image.layers.iter().map(|l| l.size).sum();
    let out = work.join("out-oci");
    registry.pull(blob_bytes, || copy_from(&dest("v1"), &format!("oci:{}:v1", out.display())));
    let pulled = OciImage::read(&out, "v1");
    assert_eq!(pulled.manifest_digest, image.manifest_digest);
    assert_eq!(pulled.manifest_bytes, image.manifest_bytes);
    assert_eq!(pulled.config, image.config);
    assert_eq!(pulled.layers, image.layers);
    check_blobs(&out.join("blobs/sha256"), &image.blobs());

    let dir = work.join("out-dir");
    copy_from(&dest("v2"), &format!("dir:{}", dir.display()));
    let manifest = std::fs::read(dir.join("manifest.json")).unwrap();
    assert_eq!(manifest, image.manifest_bytes);
    check_blobs(&dir, &image.blobs());

    // Docker schema 2: same config and layers, a converted manifest.
    let v2s2 = format!("docker://{host}/{repo}-v2s2:v1");
    copy_to(&src, &v2s2, &["--format", "v2s2"]);
    let raw = ok_bytes(skopeo().args(["inspect", "--raw", "--creds", CREDS, "--tls-verify=false", &v2s2]));
    let doc: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(doc["mediaType"], DOCKER_MANIFEST, "{doc}");
    assert_eq!(doc["config"]["digest"], image.config.digest.as_str());
    let layers: Vec<&str> = doc["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap()).collect();
    let want: Vec<&str> = image.layers.iter().map(|l| l.digest.as_str()).collect();
    assert_eq!(layers, want);
    let resp = registry.get(&format!("/v2/{repo}-v2s2/manifests/v1"), Some(DOCKER_MANIFEST));
    assert_eq!(resp.headers()["content-type"], DOCKER_MANIFEST);
    assert_eq!(resp.headers()["docker-content-digest"], sha256_digest(&raw).as_str());
    let dir2 = work.join("out-v2s2");
    copy_from(&v2s2, &format!("dir:{}", dir2.display()));
    assert_eq!(std::fs::read(dir2.join("manifest.json")).unwrap(), raw);
    check_blobs(&dir2, &image.blobs());

    // Delete: skopeo deletes by digest, so both tags of that manifest go.
    ok(skopeo().args(["delete", "--creds", CREDS, "--tls-verify=false", &dest("v1")]));
    assert_eq!(list_tags(), Vec::<String>::new());
    let err = fails(&mut inspect("v1"));
    assert!(err.contains("manifest unknown"), "{err}");
    let resp = registry.get(&format!("/v2/{repo}/manifests/{}", image.manifest_digest), Some(OCI_MANIFEST));
    assert_eq!(resp.status().as_u16(), 404);
    // The other repository keeps its own image.
    assert_eq!(registry.get(&format!("/v2/{repo}-v2s2/manifests/v1"), Some(DOCKER_MANIFEST)).status().as_u16(), 200);
}

/// An OCI layout `src` with image `base`: three layers (text files; one
/// file of [`BIG_FILE`] PRNG bytes; a few small files and a symlink) and a
/// config with a command and a label. Returns the skopeo source reference.
fn build_umoci_image(work: &Path) -> String {
    let layout = work.join("src");
    let image = format!("{}:base", layout.display());
    let mut seed = random_seed();
    ok(Command::new("umoci").args(["init", "--layout"]).arg(&layout));
    ok(Command::new("umoci").args(["new", "--image", &image]));

    let l1 = work.join("l1");
    std::fs::create_dir_all(l1.join("etc")).unwrap();
    std::fs::write(l1.join("etc/motd"), "berth end-to-end\n").unwrap();
    std::fs::write(l1.join("etc/hostname"), "berth\n").unwrap();
    let l2 = work.join("l2");
    std::fs::create_dir_all(l2.join("data")).unwrap();
    write_random(&l2.join("data/big.bin"), BIG_FILE, &mut seed);
    let l3 = work.join("l3");
    std::fs::create_dir_all(l3.join("app/bin")).unwrap();
    write_random(&l3.join("app/bin/tool"), 3 * MIB + 17, &mut seed);
    std::fs::write(l3.join("app/README"), "three layers\n").unwrap();
    std::os::unix::fs::symlink("bin/tool", l3.join("app/tool")).unwrap();
    for layer in [&l1, &l2, &l3] {
        ok(Command::new("umoci").args(["insert", "--image", &image]).arg(layer).arg("/"));
        std::fs::remove_dir_all(layer).unwrap();
    }
    ok(Command::new("umoci").args([
        "config",
        "--image",
        &image,
        "--config.cmd",
        "/app/tool",
        "--config.label",
        "org.opencontainers.image.title=berth-e2e",
    ]));
    ok(Command::new("umoci").args(["gc", "--layout"]).arg(&layout));
    format!("oci:{image}")
}

fn skopeo_tags(out: &str) -> Vec<String> {
    let doc: Value = serde_json::from_str(out).unwrap();
    let mut tags: Vec<String> =
        doc["Tags"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_owned()).collect();
    tags.sort();
    tags
}

/// A blob reference from a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Blob {
    digest: String,
    size: u64,
}

impl Blob {
    fn of(desc: &Value) -> Self {
        Self { digest: desc["digest"].as_str().unwrap().to_owned(), size: desc["size"].as_u64().unwrap() }
    }
}

/// One image of an OCI layout, as its `index.json` names it.
struct OciImage {
    manifest_digest: String,
    manifest_bytes: Vec<u8>,
    config: Blob,
    layers: Vec<Blob>,
}

impl OciImage {
    fn read(layout: &Path, tag: &str) -> Self {
        let index: Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
        let desc = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
            .unwrap_or_else(|| panic!("no {tag} in {index}"));
        let manifest_digest = desc["digest"].as_str().unwrap().to_owned();
        let manifest_bytes = std::fs::read(blob_path(&layout.join("blobs/sha256"), &manifest_digest)).unwrap();
        assert_eq!(sha256_digest(&manifest_bytes), manifest_digest);
        let manifest: Value = serde_json::from_slice(&manifest_bytes).unwrap();
        let layers = manifest["layers"].as_array().unwrap().iter().map(Blob::of).collect();
        Self { manifest_digest, manifest_bytes, config: Blob::of(&manifest["config"]), layers }
    }

    fn blobs(&self) -> Vec<Blob> {
        std::iter::once(self.config.clone()).chain(self.layers.iter().cloned()).collect()
    }
}

fn blob_path(dir: &Path, digest: &str) -> PathBuf {
    dir.join(digest.strip_prefix("sha256:").unwrap())
}

/// Every blob is in `dir` (named by its hex digest) with its size and hash.
fn check_blobs(dir: &Path, blobs: &[Blob]) {
    for blob in blobs {
        let path = blob_path(dir, &blob.digest);
        let size = std::fs::metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).len();
        assert_eq!(size, blob.size, "{}", path.display());
        assert_eq!(sha256_file(&path), blob.digest, "{}", path.display());
    }
}

// ------------------------------------------------------------------ podman

/// podman (scratch vfs store) imports a rootfs, pushes it as OCI and as
/// Docker schema 2, removes it and pulls both back.
fn podman_round_trip(registry: &Registry) {
    require("podman", &["--version"]);
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let host = registry.host();
    let repo = berth::testkit::unique("library/podman-");
    let local = format!("localhost/{}:1", berth::testkit::unique("berth-e2e-"));
    let podman = || podman(work);
    let inspect = |image: &str, format: &str| {
        ok(podman().args(["image", "inspect", "--format", format, image])).trim().to_owned()
    };

    let rootfs = work.join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    let mut seed = random_seed();
    write_random(&rootfs.join("bin/tool"), 16 * MIB + 5, &mut seed);
    std::fs::write(rootfs.join("etc/os-release"), "NAME=berth-e2e\n").unwrap();
    ok(Command::new("tar").arg("-C").arg(&rootfs).arg("-cf").arg(work.join("rootfs.tar")).arg("."));
    ok(podman().arg("import").args(["--change", "CMD=/bin/tool"]).arg(work.join("rootfs.tar")).arg(&local));
    let id = inspect(&local, "{{.Id}}");
    let diff_ids = inspect(&local, "{{json .RootFS.Layers}}");

    let creds = ["--tls-verify=false", "--creds", CREDS];
    ok(podman().arg("push").args(creds).arg(&local).arg(format!("docker://{host}/{repo}:1")));
    ok(podman()
        .arg("push")
        .args(creds)
        .args(["--format", "v2s2"])
        .arg(&local)
        .arg(format!("docker://{host}/{repo}:v2s2")));
    let accept = format!("{OCI_MANIFEST}, {DOCKER_MANIFEST}");
    let resp = registry.get(&format!("/v2/{repo}/manifests/v2s2"), Some(&accept));
    assert_eq!(resp.headers()["content-type"], DOCKER_MANIFEST);
    let resp = registry.get(&format!("/v2/{repo}/manifests/1"), Some(&accept));
    assert_eq!(resp.headers()["content-type"], OCI_MANIFEST);
    let layer = Blob::of(&resp.json::<Value>().unwrap()["layers"][0]);

    ok(podman().args(["rmi", &local]));
    assert_eq!(ok(podman().args(["images", "-q"])).trim(), "", "the store is empty before the pull");
    let pulled = format!("{host}/{repo}:1");
    registry.pull(layer.size, || ok(podman().arg("pull").args(creds).arg(&pulled)));
    assert_eq!(inspect(&pulled, "{{.Id}}"), id, "the pulled image is the pushed one");
    assert_eq!(inspect(&pulled, "{{json .RootFS.Layers}}"), diff_ids);
    // Docker schema 2 converts the config (so the id), never the layers.
    let pulled = format!("{host}/{repo}:v2s2");
    ok(podman().arg("pull").args(creds).arg(&pulled));
    assert_eq!(inspect(&pulled, "{{json .RootFS.Layers}}"), diff_ids);
    let tags: Value = registry.get(&format!("/v2/{repo}/tags/list"), None).json().unwrap();
    assert_eq!(tags["tags"], serde_json::json!(["1", "v2s2"]));
}

// -------------------------------------------------------------------- oras

/// oras-py pushes an artifact with an `artifactType`, then a referrer of it
/// (chunked upload), pulls both back; the referrers API lists the referrer.
fn oras_referrers(registry: &Registry) {
    let python = oras_python();
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let host = registry.host();
    let repo = berth::testkit::unique("library/oras-");
    let mut seed = random_seed();
    write_random(&work.join("artifact.bin"), 3 * MIB + 1, &mut seed);
    write_random(&work.join("signature.bin"), 13 * MIB + 3, &mut seed);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/e2e/oras_referrers.py");
    let oras = |mode: &str| -> Value {
        let out = ok(Command::new(&python)
            .arg(script)
            .args([mode, &host, &repo])
            .current_dir(work)
            .env("ORAS_USER", USER)
            .env("ORAS_PASS", PASSWORD));
        serde_json::from_str(out.lines().last().unwrap_or_default()).unwrap_or_else(|e| panic!("{e}: {out}"))
    };

    let pushed = oras("push");
    let artifact = pushed["artifact_digest"].as_str().unwrap().to_owned();
    let referrer = pushed["referrer_digest"].as_str().unwrap().to_owned();
    assert_eq!(pushed["artifact_manifest"]["artifactType"], ARTIFACT_TYPE);
    assert_eq!(pushed["referrer_manifest"]["artifactType"], REFERRER_TYPE);
    assert_eq!(pushed["referrer_manifest"]["subject"]["digest"], artifact.as_str());
    let signature = Blob::of(&pushed["referrer_manifest"]["layers"][0]);
    assert_eq!(signature.digest, sha256_file(&work.join("signature.bin")));

    let pulled = registry.pull(signature.size + 3 * MIB, || oras("pull"));
    assert_eq!(pulled["tags"], serde_json::json!(["sig", "v1"]));
    for (key, name) in [("pulled_artifact", "artifact.bin"), ("pulled_referrer", "signature.bin")] {
        let files = pulled[key].as_array().unwrap();
        assert_eq!(files.len(), 1, "{pulled}");
        let path = Path::new(files[0].as_str().unwrap());
        assert_eq!(sha256_file(path), sha256_file(&work.join(name)), "{key}");
    }

    // The referrers API, without and with the artifactType filter.
    let manifest = registry.get(&format!("/v2/{repo}/manifests/{referrer}"), Some(OCI_MANIFEST)).bytes().unwrap();
    assert_eq!(sha256_digest(&manifest), referrer);
    let referrers = |query: &str| {
        let resp = registry.get(&format!("/v2/{repo}/referrers/{artifact}{query}"), None);
        assert_eq!(resp.status().as_u16(), 200);
        assert_eq!(resp.headers()["content-type"], OCI_INDEX);
        let filtered = resp.headers().get("oci-filters-applied").map(|v| v.to_str().unwrap().to_owned());
        (resp.json::<Value>().unwrap(), filtered)
    };
    let (index, filtered) = referrers("");
    assert_eq!(filtered, None);
    assert_eq!(index["mediaType"], OCI_INDEX);
    let listed = index["manifests"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{index}");
    assert_eq!(listed[0]["digest"], referrer.as_str());
    assert_eq!(listed[0]["artifactType"], REFERRER_TYPE);
    assert_eq!(listed[0]["mediaType"], OCI_MANIFEST);
    assert_eq!(listed[0]["size"], manifest.len());
    assert_eq!(listed[0]["annotations"]["org.opencontainers.image.description"], "berth e2e referrer");
    let (index, filtered) = referrers(&format!("?artifactType={REFERRER_TYPE}"));
    assert_eq!(filtered.as_deref(), Some("artifactType"));
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1, "{index}");
    let (index, _) = referrers("?artifactType=application/vnd.other");
    assert_eq!(index["manifests"], serde_json::json!([]));
    let resp = registry.get(&format!("/v2/{repo}/referrers/{referrer}"), None);
    assert_eq!(resp.json::<Value>().unwrap()["manifests"], serde_json::json!([]));

    // Harbor's view: the referrer is the artifact's accessory, not an
    // artifact of the list.
    let api = format!("/api/v2.0/projects/library/repositories/{}/artifacts", repo.trim_start_matches("library/"));
    let listed: Value = registry.get(&api, None).json().unwrap();
    let digests: Vec<&str> = listed.as_array().unwrap().iter().map(|a| a["digest"].as_str().unwrap()).collect();
    assert_eq!(digests, [artifact.as_str()], "{listed}");
    let accessories: Value = registry.get(&format!("{api}/{artifact}/accessories"), None).json().unwrap();
    assert_eq!(accessories[0]["digest"], referrer.as_str(), "{accessories}");
    assert_eq!(accessories[0]["type"], "subject.accessory");
}

/// containerd's `ctr` pulls (and unpacks) a reference from berth over plain
/// HTTP, in a namespace of its own that is removed after.
fn ctr_pull(reference: &str) {
    const SOCKET: &str = "/run/docker/containerd/containerd.sock";
    require("ctr", &["--version"]);
    let namespace = berth::testkit::unique("berth-e2e-");
    let ctr = || {
        let mut c = Command::new("ctr");
        c.args(["-a", SOCKET, "-n", &namespace]);
        c
    };
    let user = format!("{USER}:{PASSWORD}");
    ok(ctr().args(["image", "pull", "--plain-http", "--user", &user, reference]));
    let listed = ok(ctr().args(["image", "ls", "-q"]));
    assert!(listed.lines().any(|l| l == reference), "{listed}");
    ok(ctr().args(["image", "rm", reference]));
    let _ = exec(ctr().args(["namespace", "rm", &namespace]), None, Duration::from_secs(30));
}

// -------------------------------------------------------- multi-arch index

/// skopeo pushes a two-platform index (`copy --all`) built from umoci
/// images: Harbor's list shows the index alone, with its children as its
/// references; deleting the index through the API takes the children.
fn skopeo_multi_arch(registry: &Registry) {
    require("skopeo", &["--version"]);
    require("umoci", &["--version"]);
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("multi");
    ok(Command::new("umoci").args(["init", "--layout"]).arg(&layout));
    let mut children = Vec::new();
    for arch in ["amd64", "arm64"] {
        let image = format!("{}:{arch}", layout.display());
        ok(Command::new("umoci").args(["new", "--image", &image]));
        let files = tmp.path().join(arch);
        std::fs::create_dir_all(&files).unwrap();
        std::fs::write(files.join("arch"), arch).unwrap();
        ok(Command::new("umoci").args(["insert", "--image", &image]).arg(&files).arg("/"));
        ok(Command::new("umoci").args(["config", "--image", &image, "--architecture", arch, "--os", "linux"]));
        let img = OciImage::read(&layout, arch);
        children.push((img.manifest_digest.clone(), img.manifest_bytes.len(), arch));
    }
    // The index, as a blob of the layout tagged `multi`.
    let manifests: Vec<Value> = children
        .iter()
        .map(|(d, size, arch)| {
            serde_json::json!({"mediaType": OCI_MANIFEST, "digest": d, "size": size,
            "platform": {"architecture": arch, "os": "linux"}})
        })
        .collect();
    let index =
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}))
            .unwrap();
    let index_digest = sha256_digest(&index);
    std::fs::write(blob_path(&layout.join("blobs/sha256"), &index_digest), &index).unwrap();
    let top = layout.join("index.json");
    let mut top_doc: Value = serde_json::from_slice(&std::fs::read(&top).unwrap()).unwrap();
    top_doc["manifests"].as_array_mut().unwrap().push(serde_json::json!({"mediaType": OCI_INDEX,
        "digest": index_digest, "size": index.len(), "annotations": {"org.opencontainers.image.ref.name": "multi"}}));
    std::fs::write(&top, serde_json::to_vec(&top_doc).unwrap()).unwrap();

    let repo = berth::testkit::unique("library/multi-");
    let dest = format!("docker://{}/{repo}:multi", registry.host());
    ok(Command::new("skopeo")
        .args(["--insecure-policy", "copy", "--all", "--dest-creds", CREDS, "--dest-tls-verify=false"])
        .arg(format!("oci:{}:multi", layout.display()))
        .arg(&dest));
    let api = format!("/api/v2.0/projects/library/repositories/{}/artifacts", repo.trim_start_matches("library/"));
    let listed: Value = registry.get(&api, None).json().unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["digest"], index_digest.as_str());
    let refs: Vec<&str> =
        listed[0]["references"].as_array().unwrap().iter().map(|r| r["child_digest"].as_str().unwrap()).collect();
    let want: Vec<&str> = children.iter().map(|(d, _, _)| d.as_str()).collect();
    assert_eq!(refs, want);
    assert_eq!(listed[0]["references"][1]["platform"]["architecture"], "arm64");
    let all: Value = registry.get(&format!("{api}?q=base%3D*"), None).json().unwrap();
    assert_eq!(all.as_array().unwrap().len(), 3, "{all}");
    ctr_pull(&format!("{}/{repo}:multi", registry.host()));
    // A child alone is not deleted (412); the index takes both.
    let client = reqwest::blocking::Client::new();
    let delete =
        |path: String| client.delete(registry.server.url(&path)).basic_auth(USER, Some(PASSWORD)).send().unwrap();
    assert_eq!(delete(format!("{api}/{}", children[0].0)).status().as_u16(), 412);
    assert_eq!(delete(format!("{api}/multi")).status().as_u16(), 200);
    for (d, _, _) in &children {
        assert_eq!(registry.get(&format!("/v2/{repo}/manifests/{d}"), Some(OCI_MANIFEST)).status().as_u16(), 404);
    }
}

/// The Python that has oras-py: `BERTH_TEST_ORAS_PYTHON`, else the venv
/// that `.ci/run` makes, else `python3`.
fn oras_python() -> PathBuf {
    let venv = crate::support::cli::installed_tool("BERTH_TEST_ORAS_PYTHON", "oras-venv/bin/python");
    let python = if venv.exists() { venv } else { PathBuf::from("python3") };
    let check = exec(Command::new(&python).args(["-c", "import oras.client"]), None, Duration::from_secs(60));
    assert!(
        check.status.success(),
        "{} cannot import oras (install it with .ci/run, or set BERTH_TEST_ORAS_PYTHON): {}",
        python.display(),
        String::from_utf8_lossy(&check.stderr)
    );
    python
}

// ------------------------------------------------------------------ docker

/// docker builds an image FROM scratch, logs in, pushes, removes it, pulls
/// it back: same image id, same file contents.
fn docker_round_trip(registry: &Registry) {
    require_docker();
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let host = registry.host();
    let repo = berth::testkit::unique("library/docker-");
    let name = berth::testkit::unique("berth-e2e-");
    let local = format!("{name}:build");
    let remote = format!("{host}/{repo}:1");
    let mut cleanup = DockerCleanup { images: vec![local.clone(), remote.clone()], containers: vec![name.clone()] };
    let docker = || docker(work);

    let ctx = work.join("context");
    std::fs::create_dir_all(ctx.join("data")).unwrap();
    let mut seed = random_seed();
    write_random(&ctx.join("data/blob.bin"), 16 * MIB + 9, &mut seed);
    std::fs::write(ctx.join("hello.txt"), format!("hello from {name}\n")).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY data /data\nCOPY hello.txt /\nCMD [\"/data/blob.bin\"]\n",
    )
    .unwrap();
    let built = ok(docker().args(["build", "-q", "-t", &local]).arg(&ctx)).trim().to_owned();
    let id = ok(docker().args(["image", "inspect", "--format", "{{.Id}}", &local])).trim().to_owned();
    assert_eq!(built, id);
    cleanup.images.push(id.clone());

    let login = |password: &str| docker_login(work, &host, USER, password);
    let wrong = login("not-the-password");
    assert!(!wrong.status.success(), "a wrong password is refused");
    let right = login(PASSWORD);
    assert!(right.status.success(), "docker login: {}", String::from_utf8_lossy(&right.stderr));

    ok(docker().args(["tag", &local, &remote]));
    let push = ok(docker().args(["push", &remote]));
    let digest = push
        .split_whitespace()
        .skip_while(|w| *w != "digest:")
        .nth(1)
        .unwrap_or_else(|| panic!("no digest in: {push}"))
        .to_owned();
    let resp = registry.get(&format!("/v2/{repo}/manifests/1"), Some(DOCKER_MANIFEST));
    assert_eq!(resp.headers()["docker-content-digest"], digest.as_str());
    assert_eq!(resp.headers()["content-type"], DOCKER_MANIFEST);
    let manifest: Value = resp.json().unwrap();
    let blob_bytes: u64 = manifest["layers"].as_array().unwrap().iter().map(|l| Blob::of(l).size).sum();

    ok(docker().args(["rmi", &local, &remote]));
    assert!(!exec(docker().args(["image", "inspect", &id]), None, CLIENT_TIMEOUT).status.success(), "image removed");
    registry.pull(blob_bytes, || ok(docker().args(["pull", &remote])));
    let pulled = ok(docker().args(["image", "inspect", "--format", "{{.Id}} {{json .RepoDigests}}", &remote]));
    let (pulled_id, repo_digests) = pulled.trim().split_once(' ').unwrap();
    assert_eq!(pulled_id, id, "the pulled image is the built one");
    assert!(repo_digests.contains(&format!("{host}/{repo}@{digest}")), "{repo_digests}");

    ok(docker().args(["create", "--name", &name, &remote]));
    let out = work.join("out");
    std::fs::create_dir_all(&out).unwrap();
    ok(docker().args(["cp", &format!("{name}:/data/blob.bin")]).arg(out.join("blob.bin")));
    ok(docker().args(["cp", &format!("{name}:/hello.txt")]).arg(out.join("hello.txt")));
    assert_eq!(sha256_file(&out.join("blob.bin")), sha256_file(&ctx.join("data/blob.bin")));
    assert_eq!(std::fs::read(out.join("hello.txt")).unwrap(), std::fs::read(ctx.join("hello.txt")).unwrap());
    ok(docker().args(["logout", &host]));
    cleanup.run();
}

#[test]
fn a_hanging_client_is_killed_and_fails_the_test() {
    let start = Instant::now();
    let hang = std::panic::catch_unwind(|| exec(Command::new("sleep").arg("60"), None, Duration::from_secs(1)));
    let err = hang.map(|_| ()).unwrap_err();
    let msg = err.downcast_ref::<String>().map(String::as_str).unwrap_or_default();
    assert!(msg.contains("still running after 1s, killed"), "{msg}");
    assert!(start.elapsed() < Duration::from_secs(10), "took {:?}", start.elapsed());
}

// ---------------------------------------------------------------- registry

/// A berth server for one test, with its data folder; on AWS its own
/// bucket, table and queues, removed afterwards.
struct Registry {
    server: Server,
    aws: Option<AwsResources>,
    _dir: tempfile::TempDir,
}

impl Registry {
    fn local() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(dir.path(), &["--data", "data"], &[("BERTH_ADMIN_PASSWORD", PASSWORD)]);
        Self { server, aws: None, _dir: dir }
    }

    fn aws(test: &str) -> Option<Self> {
        if !emulator(test) {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let resources = AwsResources::new("berth-e2e-cl-");
        let server = resources.serve(dir.path(), &[]);
        Some(Self { server, aws: Some(resources), _dir: dir })
    }

    fn host(&self) -> String {
        self.server.addr.to_string()
    }

    /// A raw GET with basic auth that follows no redirect.
    fn get(&self, path: &str, accept: Option<&str>) -> reqwest::blocking::Response {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let mut req = client.get(self.server.url(path)).basic_auth(USER, Some(PASSWORD));
        if let Some(accept) = accept {
            req = req.header("accept", accept);
        }
        req.send().unwrap()
    }

    /// A blob GET: on AWS a `307` to a presigned URL on the emulator; locally
    /// the blob itself.
    fn check_blob_get(&self, repo: &str, blob: &Blob) {
        let resp = self.get(&format!("/v2/{repo}/blobs/{}", blob.digest), None);
        assert_eq!(resp.headers()["docker-content-digest"], blob.digest.as_str());
        if self.aws.is_some() {
            assert_eq!(resp.status().as_u16(), 307, "a blob pull is a redirect on AWS");
            let location = resp.headers()["location"].to_str().unwrap();
            let location = reqwest::Url::parse(location).unwrap();
            let endpoint = reqwest::Url::parse(&std::env::var("AWS_ENDPOINT_URL").unwrap()).unwrap();
            assert_eq!(
                (location.host_str(), location.port_or_known_default()),
                (endpoint.host_str(), endpoint.port_or_known_default()),
                "{location} is on the emulator"
            );
            assert!(location.path().contains(blob.digest.strip_prefix("sha256:").unwrap()), "{location}");
            assert!(location.query().is_some_and(|q| q.contains("X-Amz-Signature=")), "{location} is presigned");
        } else {
            assert_eq!(resp.status().as_u16(), 200);
            assert_eq!(resp.headers()["content-length"], blob.size.to_string().as_str());
        }
    }

    /// Bytes berth has written so far (sockets and files), from `/proc`.
    fn written(&self) -> u64 {
        let io = std::fs::read_to_string(format!("/proc/{}/io", self.server.child.id())).unwrap();
        io.lines().find_map(|l| l.strip_prefix("wchar:")).unwrap().trim().parse().unwrap()
    }

    /// Runs a pull that fetches `blob_bytes` of blobs. On AWS those come
    /// from the object store, so berth writes far less; locally berth sends
    /// them itself (which shows the measure sees them).
    fn pull<T>(&self, blob_bytes: u64, pull: impl FnOnce() -> T) -> T {
        let before = self.written();
        let result = pull();
        let grew = self.written() - before;
        eprintln!("berth wrote {grew} bytes while a client pulled {blob_bytes} bytes of blobs");
        if self.aws.is_some() {
            assert!(blob_bytes > 3 * PROXY_LIMIT, "the pull must be big enough to tell: {blob_bytes}");
            assert!(
                grew < PROXY_LIMIT,
                "berth wrote {grew} bytes while a client pulled {blob_bytes} bytes of blobs: \
                 blob pulls must go to the object store"
            );
        } else {
            assert!(grew >= blob_bytes, "berth wrote {grew} bytes for {blob_bytes} bytes of blobs");
        }
        result
    }
}

// ----------------------------------------------------------------- helpers

/// A seed that differs from run to run, so no two tests share a blob.
pub(crate) fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    h.write_u32(std::process::id());
    h.finish()
}

/// Writes `len` incompressible bytes from a SplitMix64 stream.
pub(crate) fn write_random(path: &Path, len: u64, seed: &mut u64) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut left = len;
    let mut chunk = vec![0u8; MIB as usize];
    while left > 0 {
        for word in chunk.chunks_exact_mut(8) {
            *seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = *seed;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            word.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
        }
        let n = left.min(MIB) as usize;
        file.write_all(&chunk[..n]).unwrap();
        left -= n as u64;
    }
    file.flush().unwrap();
}

fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

pub(crate) fn sha256_file(path: &Path) -> String {
    let mut file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; MIB as usize];
    loop {
        let n = file.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    format!("sha256:{}", hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

//! Other registries: berth's client of them ([`berth::remote`]) against
//! real peers — Debian's Distribution (`docker-registry`), anonymous and
//! behind htpasswd Basic auth, and a second berth (the Docker token flow,
//! blobs answered with a `307` to a presigned URL on the AWS backends, the
//! referrers API) — and Harbor's registry endpoint API (`/registries`,
//! `/replication/adapters`, `/replication/adapterinfos`).

use std::time::Duration;

use berth::oci::Digest;
use berth::remote::adapter::Target;
use berth::remote::{BlobSource, Client, Credential, Endpoint, ErrorKind, Pushed};
use bytes::Bytes;
use serde_json::{Value, json};

use crate::support::app::{ADMIN_PASSWORD, TestApp};
use crate::support::distribution::Distribution;
use crate::support::free_port;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const SIGNATURE_TYPE: &str = "application/vnd.berth.e2e.signature.v1";
const MIB: usize = 1024 * 1024;

// ---------------------------------------------------------------- peers

fn client(url: &str, credential: Credential) -> Client {
    // Small sizes, so that a 3 MiB blob goes up in chunks.
    Client::new(Endpoint::new(url, credential).unwrap()).unwrap().with_push_sizes(MIB, MIB)
}

fn basic(user: &str, password: &str) -> Credential {
    Credential::Basic { username: user.to_owned(), password: password.to_owned() }
}

/// Bytes that do not repeat in a way a store could deduplicate.
fn pattern(len: usize, seed: u8) -> Bytes {
    (0..len)
        .map(|i| (i as u64).wrapping_mul(2_654_435_761).wrapping_add(u64::from(seed)) as u8)
        .collect::<Vec<_>>()
        .into()
}

fn manifest(
    config: &Digest,
    config_size: usize,
    layer: &Digest,
    layer_size: usize,
    subject: Option<(&Digest, usize)>,
) -> Bytes {
    let mut m = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.to_string(), "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer.to_string(), "size": layer_size}],
    });
    if let Some((s, size)) = subject {
        m["artifactType"] = json!(SIGNATURE_TYPE);
        m["subject"] = json!({"mediaType": OCI_MANIFEST, "digest": s.to_string(), "size": size});
    }
    Bytes::from(serde_json::to_vec(&m).unwrap())
}

/// An image pushed through `client` to `repo:tag`: its manifest and blobs.
struct Pushed3 {
    manifest: Bytes,
    digest: Digest,
    config: (Digest, Bytes),
    layer: (Digest, Bytes),
}

/// `chunks`: how many PATCHes the 3 MiB layer takes (1 MiB chunks, or the
/// registry's `OCI-Chunk-Min-Length` when larger).
async fn push_image(client: &Client, repo: &str, tag: &str, seed: u8, chunks: usize) -> Pushed3 {
    let config = Bytes::from(format!(
        r#"{{"architecture":"amd64","os":"linux","seed":{seed},"rootfs":{{"type":"layers","diff_ids":[]}}}}"#
    ));
    let config_digest = Digest::sha256_of(&config);
    let layer = pattern(3 * MIB + 17, seed);
    let layer_digest = Digest::sha256_of(&layer);
    assert_eq!(client.blob_size(repo, &layer_digest).await.unwrap(), None, "not there yet");
    let how = client.push_blob(repo, &config_digest, BlobSource::Bytes(config.clone()), None).await.unwrap();
    assert_eq!(how, Pushed::Monolithic);
    // The layer as a stream of uneven pieces, pushed in 1 MiB chunks.
    let pieces: Vec<Result<Bytes, std::io::Error>> =
        layer.chunks(700_001).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    let source = BlobSource::Stream { size: layer.len() as u64, stream: Box::pin(futures::stream::iter(pieces)) };
    let how = client.push_blob(repo, &layer_digest, source, None).await.unwrap();
    assert_eq!(how, Pushed::Chunked(chunks));
    assert_eq!(client.blob_size(repo, &layer_digest).await.unwrap(), Some(layer.len() as u64));
    let m = manifest(&config_digest, config.len(), &layer_digest, layer.len(), None);
    let digest = client.put_manifest(repo, tag, OCI_MANIFEST, m.clone()).await.unwrap();
    assert_eq!(digest, Digest::sha256_of(&m));
    Pushed3 { manifest: m, digest, config: (config_digest, config), layer: (layer_digest, layer) }
}

/// What every peer must do: push, list with paging, pull back bit-exact
/// (whole and by range), mount, referrers, delete. `prefix` is the
/// repository namespace the credentials may write to.
async fn round_trip(client: &Client, prefix: &str, referrers_api: bool, chunks: usize) {
    client.ping().await.unwrap();
    let repo = format!("{prefix}/app");
    let image = push_image(client, &repo, "v1", 1, chunks).await;

    // Pulls, bit for bit.
    let m = client.get_manifest(&repo, "v1").await.unwrap();
    assert_eq!((m.media_type.as_str(), &m.digest, &m.bytes), (OCI_MANIFEST, &image.digest, &image.manifest));
    let by_digest = client.get_manifest(&repo, &image.digest.to_string()).await.unwrap();
    assert_eq!(by_digest.bytes, image.manifest);
    let head = client.head_manifest(&repo, "v1").await.unwrap();
    assert_eq!((head.digest, head.size), (image.digest.clone(), image.manifest.len() as u64));
    for (digest, bytes) in [&image.config, &image.layer] {
        let blob = client.get_blob(&repo, digest, None).await.unwrap();
        assert_eq!(blob.bytes(8 * MIB).await.unwrap(), bytes, "blob {digest}");
    }
    let part = client.get_blob(&repo, &image.layer.0, Some((1000, Some(1999)))).await.unwrap();
    assert!(part.partial);
    assert_eq!(part.bytes(MIB).await.unwrap(), image.layer.1.slice(1000..2000));
    let err = client.get_manifest(&repo, "nope").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    assert!(err.message.contains("MANIFEST_UNKNOWN"), "the OCI error body is read: {err}");

    // Tags and the catalog, page by page.
    for tag in ["v2", "v3"] {
        client.put_manifest(&repo, tag, OCI_MANIFEST, image.manifest.clone()).await.unwrap();
    }
    let mut tags = client.tags(&repo, 100).await.unwrap();
    tags.sort();
    assert_eq!(tags, ["v1", "v2", "v3"]);
    for name in ["b", "c"] {
        let other = format!("{prefix}/{name}");
        // A mount from the first repository: no byte sent.
        for (digest, _) in [&image.config, &image.layer] {
            let how = client.push_blob(&other, digest, BlobSource::Bytes(Bytes::new()), Some(&repo)).await.unwrap();
            assert_eq!(how, Pushed::Mounted, "{digest} into {other}");
        }
        client.put_manifest(&other, "latest", OCI_MANIFEST, image.manifest.clone()).await.unwrap();
    }
    let first = client.catalog_page(Some(2), None).await.unwrap();
    assert_eq!(first.items.len(), 2, "{first:?}");
    let next = first.next.clone().expect("a Link to the next page");
    let second = client.catalog_page(None, Some(&next)).await.unwrap();
    let mut paged: Vec<String> = first.items.into_iter().chain(second.items).collect();
    let mut all = client.catalog(1000).await.unwrap();
    for list in [&mut paged, &mut all] {
        list.retain(|r| r.starts_with(&format!("{prefix}/")));
        list.sort();
    }
    let expected = [format!("{prefix}/app"), format!("{prefix}/b"), format!("{prefix}/c")];
    assert_eq!(all, expected);
    assert!(paged.iter().all(|r| expected.contains(r)) && paged.len() >= 2, "{paged:?}");
    let err = client.catalog(1).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Protocol, "a listing over its bound is an error, not a cut: {err}");

    // Referrers: the API, or the tag schema where the registry has none.
    let empty = client.referrers(&repo, &image.digest, None).await.unwrap();
    assert!(empty.descriptors.is_empty());
    assert_eq!(empty.from_tag_schema, !referrers_api);
    let sig = Bytes::from_static(b"signature");
    let sig_digest = Digest::sha256_of(&sig);
    client.push_blob(&repo, &sig_digest, BlobSource::Bytes(sig.clone()), None).await.unwrap();
    let referrer = manifest(
        &image.config.0,
        image.config.1.len(),
        &sig_digest,
        sig.len(),
        Some((&image.digest, image.manifest.len())),
    );
    let referrer_digest = client
        .put_manifest(&repo, &Digest::sha256_of(&referrer).to_string(), OCI_MANIFEST, referrer.clone())
        .await
        .unwrap();
    if !referrers_api {
        // What a client of the tag schema writes beside the referrer.
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": referrer_digest.to_string(), "size": referrer.len(), "artifactType": SIGNATURE_TYPE}]});
        let tag = format!("sha256-{}", image.digest.hex());
        client.put_manifest(&repo, &tag, OCI_INDEX, Bytes::from(serde_json::to_vec(&index).unwrap())).await.unwrap();
    }
    let found = client.referrers(&repo, &image.digest, None).await.unwrap();
    assert_eq!(found.from_tag_schema, !referrers_api);
    assert_eq!(found.descriptors.len(), 1, "{found:?}");
    assert_eq!(found.descriptors[0].digest, referrer_digest.to_string());
    assert_eq!(found.descriptors[0].artifact_type.as_deref(), Some(SIGNATURE_TYPE));
    let filtered = client.referrers(&repo, &image.digest, Some("application/other")).await.unwrap();
    assert!(filtered.descriptors.is_empty());

    // Deleting a manifest removes it (and its tags).
    client.delete_manifest(&format!("{prefix}/c"), &image.digest).await.unwrap();
    let err = client.get_manifest(&format!("{prefix}/c"), "latest").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    assert!(client.get_manifest(&repo, "v1").await.is_ok(), "other repositories keep theirs");
}

// ---------------------------------------------------------------- the client against Distribution

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_against_distribution_anonymous() {
    let d = Distribution::start(&[]);
    round_trip(&client(&d.url(), Credential::Anonymous), "anon", false, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_against_distribution_with_basic_auth() {
    let d = Distribution::start(&[("alice", "s3cret-pass")]);
    for (credential, what) in [(Credential::Anonymous, "anonymous"), (basic("alice", "wrong"), "a wrong password")] {
        let err = client(&d.url(), credential).ping().await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Unauthorized, "{what}: {err}");
        assert!(!err.is_retryable());
    }
    round_trip(&client(&d.url(), basic("alice", "s3cret-pass")), "team", false, 4).await;
}

/// ECR's keys become the registry's Basic password through
/// `ecr:GetAuthorizationToken` (on the emulator, whose token is
/// `AWS:<account>-auth-token`), here used against a Distribution that
/// holds that password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecr_keys_become_a_registry_password() {
    if !crate::support::emulator("ecr_keys_become_a_registry_password") {
        return;
    }
    let d = Distribution::start(&[("AWS", "123456789012-auth-token")]);
    let target = |secret: &str| Target {
        registry_type: "aws-ecr".into(),
        url: d.url(),
        credential_type: "basic".into(),
        access_key: "testing".into(),
        access_secret: secret.into(),
        insecure: false,
        timeout: Duration::from_secs(30),
    };
    target("testing").ping().await.unwrap();
    let c = target("testing").client().unwrap().with_push_sizes(MIB, MIB);
    let image = push_image(&c, "ecr/app", "1", 3, 4).await;
    assert_eq!(c.get_manifest("ecr/app", "1").await.unwrap().digest, image.digest);
}

// ---------------------------------------------------------------- the client against berth

async fn berth_peer(stem: &str) -> TestApp {
    // On the AWS backends when the emulator is there: blob GETs are then
    // 307s to presigned URLs on another host.
    match TestApp::aws(stem).await {
        Some(app) => app,
        None => TestApp::local().await,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn client_against_berth_token_flow() {
    let peer = berth_peer("remote-client").await;
    let addr = peer.serve().await;
    let url = format!("http://{addr}");
    let on_aws = peer.aws_resources().is_some();

    // Token flow: anonymous gets a token but may not push; bad credentials
    // are refused by the token service.
    let err = client(&url, basic("admin", "wrong")).ping().await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unauthorized, "{err}");
    let anon = client(&url, Credential::Anonymous);
    let err = anon
        .push_blob("library/x", &Digest::sha256_of(b"x"), BlobSource::Bytes(Bytes::from_static(b"x")), None)
        .await
        .unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Unauthorized | ErrorKind::Denied), "{err}");

    let admin = client(&url, basic("admin", ADMIN_PASSWORD));
    // On S3 berth asks for chunks of 5 MiB at least: the layer goes in one.
    let chunks = if on_aws { 1 } else { 4 };
    round_trip(&admin, "library", true, chunks).await;

    if on_aws {
        // A blob GET is a 307 to the object store, which the client follows
        // without berth's credentials.
        let layer = pattern(3 * MIB + 17, 1);
        let digest = Digest::sha256_of(&layer);
        let raw = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let token: Value = raw
            .get(format!("{url}/service/token?service=harbor-registry&scope=repository:library/app:pull"))
            .basic_auth("admin", Some(ADMIN_PASSWORD))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let resp = raw
            .get(format!("{url}/v2/library/app/blobs/{digest}"))
            .bearer_auth(token["token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 307);
        let location = resp.headers()["location"].to_str().unwrap().to_owned();
        assert!(!location.starts_with(&url), "the redirect leaves berth: {location}");
        let blob = admin.get_blob("library/app", &digest, None).await.unwrap();
        assert_eq!(blob.bytes(8 * MIB).await.unwrap(), layer);
    }

    // A project robot: pull and push in its project only.
    peer.create_project("team", false).await;
    let robot = peer.project_robot("team", "mirror", &[("repository", "pull"), ("repository", "push")]).await;
    let rc = client(&url, basic(&robot.name, &robot.secret));
    rc.ping().await.unwrap();
    let image = push_image(&rc, "team/app", "1", 7, chunks).await;
    assert_eq!(rc.get_manifest("team/app", "1").await.unwrap().bytes, image.manifest);
    // `library` is public: the robot reads it, but may not push there.
    assert!(rc.get_manifest("library/app", "v1").await.is_ok());
    let x = Bytes::from_static(b"x");
    let err = rc.push_blob("library/robot", &Digest::sha256_of(&x), BlobSource::Bytes(x), None).await.unwrap_err();
    assert!(matches!(err.kind, ErrorKind::Unauthorized | ErrorKind::Denied), "{err}");
}

/// A `harbor` endpoint lists repositories through Harbor's API (projects,
/// then their repositories), as Harbor's adapter does.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn harbor_type_lists_repositories_through_the_api() {
    let peer = TestApp::local().await;
    let addr = peer.serve().await;
    peer.create_project("p1", false).await;
    peer.push_image("p1/a", "1").await;
    peer.push_image("p1/nested/b", "1").await;
    peer.push_image("library/c", "1").await;
    let target = Target {
        registry_type: "harbor".into(),
        url: format!("http://{addr}"),
        credential_type: "basic".into(),
        access_key: "admin".into(),
        access_secret: ADMIN_PASSWORD.into(),
        insecure: false,
        timeout: Duration::from_secs(30),
    };
    target.ping().await.unwrap();
    let mut repos = target.list_repositories(100).await.unwrap();
    repos.sort();
    assert_eq!(repos, ["library/c", "p1/a", "p1/nested/b"]);
    let wrong = Target { access_secret: "nope".into(), ..target.clone() };
    let err = wrong.ping().await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unauthorized, "{err}");
}

// ---------------------------------------------------------------- /registries

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn registries_api() {
    let app = TestApp::local().await;
    let peer = TestApp::local().await;
    let peer_addr = peer.serve().await;
    let peer_url = format!("http://{peer_addr}");
    let admin = app.admin();

    // Types and their patterns.
    let types: Vec<String> = admin.get("/api/v2.0/replication/adapters").send().await.expect(200).json();
    for t in [
        "harbor",
        "docker-registry",
        "docker-hub",
        "aws-ecr",
        "google-gcr",
        "azure-acr",
        "quay",
        "github-ghcr",
        "gitlab",
        "jfrog-artifactory",
        "ali-acr",
        "huawei-SWR",
        "volcengine-cr",
        "tencent-tcr",
        "dtr",
    ] {
        assert!(types.iter().any(|x| x == t), "{t} in {types:?}");
    }
    let infos: Value = admin.get("/api/v2.0/replication/adapterinfos").send().await.expect(200).json();
    assert_eq!(infos["docker-hub"]["endpoint_pattern"]["endpoint_type"], "EndpointPatternTypeFix");
    assert_eq!(infos["aws-ecr"]["endpoint_pattern"]["endpoint_type"], "EndpointPatternTypeList");
    assert_eq!(infos["google-gcr"]["credential_pattern"]["access_key_data"], "_json_key");

    // Create: 201 with a Location; the secret is never shown.
    let body = json!({"name": "peer", "type": "harbor", "url": format!("{peer_url}/"), "description": "the other berth",
        "insecure": true, "credential": {"type": "basic", "access_key": "admin", "access_secret": ADMIN_PASSWORD}});
    let created = admin.post("/api/v2.0/registries").json(&body).send().await.expect(201);
    let location = created.header("location").to_owned();
    let id = created.location_id();
    assert_eq!(location, format!("/api/v2.0/registries/{id}"));
    let got: Value = admin.get(&location).send().await.expect(200).json();
    assert_eq!(got["name"], "peer");
    assert_eq!(got["url"], peer_url, "kept without the trailing slash");
    assert_eq!(got["type"], "harbor");
    assert_eq!(got["insecure"], true);
    assert_eq!(got["status"], "unknown");
    assert_eq!(got["credential"], json!({"type": "basic", "access_key": "admin", "access_secret": "*****"}));
    assert!(!got.to_string().contains(ADMIN_PASSWORD));
    let stored = app.ctx().registry().registry_endpoint(id).await.unwrap();
    assert!(!stored.access_secret_sealed.contains(ADMIN_PASSWORD), "sealed at rest");
    assert_eq!(app.ctx().registry().registry_endpoint_target(&stored).unwrap().access_secret, ADMIN_PASSWORD);

    // Bad input and duplicates.
    let dup = admin.post("/api/v2.0/registries").json(&body).send().await;
    assert_eq!(dup.code(), 409, "{}", dup.text());
    for bad in [
        json!({"name": "x", "type": "nexus", "url": "https://x.example"}),
        json!({"name": "x", "type": "harbor", "url": "ftp://x.example"}),
        json!({"name": "x", "type": "harbor"}),
        json!({"type": "harbor", "url": "https://x.example"}),
        json!({"name": "x", "type": "harbor", "url": "https://x.example", "credential": {"type": "kerberos", "access_key": "a", "access_secret": "b"}}),
    ] {
        let r = admin.post("/api/v2.0/registries").json(&bad).send().await;
        assert_eq!(r.code(), 400, "{bad}: {}", r.text());
    }

    // Ping: by id (recording the status), by settings, bad credentials,
    // unreachable.
    admin.post("/api/v2.0/registries/ping").json(&json!({"id": id})).send().await.expect(200);
    let got: Value = admin.get(&location).send().await.expect(200).json();
    assert_eq!(got["status"], "healthy");
    admin
        .post("/api/v2.0/registries/ping")
        .json(&json!({"type": "docker-registry", "url": peer_url, "access_key": "admin", "access_secret": ADMIN_PASSWORD}))
        .send()
        .await
        .expect(200);
    let r = admin.post("/api/v2.0/registries/ping").json(&json!({"id": id, "access_secret": "wrong"})).send().await;
    assert_eq!(r.code(), 400, "{}", r.text());
    let r = admin
        .post("/api/v2.0/registries/ping")
        .json(&json!({"type": "harbor", "url": format!("http://127.0.0.1:{}", free_port())}))
        .send()
        .await;
    assert_eq!(r.code(), 400, "{}", r.text());
    admin.post("/api/v2.0/registries/ping").json(&json!({"id": 999_999})).send().await.expect(404);

    // Info.
    let info: Value = admin.get(&format!("{location}/info")).send().await.expect(200).json();
    assert_eq!(info["type"], "harbor");
    assert_eq!(info["supported_triggers"], json!(["manual", "scheduled"]));
    assert!(info["supported_resource_filters"].as_array().unwrap().iter().any(|f| f["type"] == "name"));
    admin.get("/api/v2.0/registries/999999/info").send().await.expect(404);

    // Update: fields optional; an empty secret keeps the stored one.
    admin.put(&location).json(&json!({"description": "changed"})).send().await.expect(200);
    let got: Value = admin.get(&location).send().await.expect(200).json();
    assert_eq!((got["description"].as_str(), got["name"].as_str()), (Some("changed"), Some("peer")));
    admin.put(&location).json(&json!({"access_secret": ""})).send().await.expect(200);
    admin.post("/api/v2.0/registries/ping").json(&json!({"id": id})).send().await.expect(200);
    admin.put(&location).json(&json!({"access_secret": "wrong"})).send().await.expect(200);
    admin.post("/api/v2.0/registries/ping").json(&json!({"id": id})).send().await.expect(400);
    let got: Value = admin.get(&location).send().await.expect(200).json();
    assert_eq!(got["status"], "unhealthy");
    let second = json!({"name": "second", "type": "docker-hub", "url": "https://hub.docker.com"});
    let second_id = admin.post("/api/v2.0/registries").json(&second).send().await.expect(201).location_id();
    let r = admin.put(&format!("/api/v2.0/registries/{second_id}")).json(&json!({"name": "peer"})).send().await;
    assert_eq!(r.code(), 409, "{}", r.text());
    admin.put(&format!("/api/v2.0/registries/{second_id}")).json(&json!({"name": "hub"})).send().await.expect(200);
    admin.put("/api/v2.0/registries/999999").json(&json!({"name": "z"})).send().await.expect(404);

    // Listing: paged, filtered.
    for i in 0..3 {
        let b =
            json!({"name": format!("extra-{i}"), "type": "docker-registry", "url": format!("https://r{i}.example")});
        admin.post("/api/v2.0/registries").json(&b).send().await.expect(201);
    }
    let page = admin.get("/api/v2.0/registries?page=1&page_size=2").send().await.expect(200);
    assert_eq!(page.header("x-total-count"), "5");
    assert!(page.header("link").contains("rel=\"next\""), "{}", page.header("link"));
    assert_eq!(page.json::<Vec<Value>>().len(), 2);
    let found: Vec<Value> = admin.get("/api/v2.0/registries?q=name%3D~extra").send().await.expect(200).json();
    assert_eq!(found.len(), 3);
    let found: Vec<Value> = admin.get("/api/v2.0/registries?name=hub").send().await.expect(200).json();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["credential"]["access_secret"], "", "no secret, no mask");

    // A non-administrator may do none of it.
    app.create_user("plain", "Passw0rd1").await;
    let plain = app.user("plain", "Passw0rd1");
    plain.get("/api/v2.0/registries").send().await.expect(403);
    plain.get(&location).send().await.expect(403);
    plain.post("/api/v2.0/registries").json(&body).send().await.expect(403);
    plain.put(&location).json(&json!({"description": "x"})).send().await.expect(403);
    plain.delete(&location).send().await.expect(403);
    plain.post("/api/v2.0/registries/ping").json(&json!({"id": id})).send().await.expect(403);
    plain.get(&format!("{location}/info")).send().await.expect(403);
    plain.get("/api/v2.0/replication/adapters").send().await.expect(403);
    app.anonymous().get("/api/v2.0/registries").send().await.expect(401);

    // Delete: refused while in use, then gone.
    let uses = berth::service::registries::registry_endpoint_use(id, 1);
    app.ctx().meta.transact(uses).await.unwrap();
    admin.delete(&location).send().await.expect(412);
    app.ctx().meta.transact(berth::service::registries::registry_endpoint_use(id, -1)).await.unwrap();
    admin.delete(&location).send().await.expect(200);
    admin.get(&location).send().await.expect(404);
    admin.delete(&location).send().await.expect(404);
    let page = admin.get("/api/v2.0/registries").send().await.expect(200);
    assert_eq!(page.header("x-total-count"), "4");
    // The name is free again.
    admin.post("/api/v2.0/registries").json(&body).send().await.expect(201);
    assert!(
        app.ctx().meta.transact(berth::service::registries::registry_endpoint_use(id, 1)).await.is_err(),
        "no use of a deleted endpoint"
    );
}

/// A system robot granted `registry` may manage endpoints (Harbor's
/// permission test holds it to that).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_system_robot_with_registry_access_manages_endpoints() {
    let app = TestApp::local().await;
    let access: Vec<Value> = ["create", "read", "update", "delete", "list"]
        .iter()
        .map(|a| json!({"resource": "registry", "action": a}))
        .collect();
    let robot = app
        .create_robot(&json!({"name": "reg", "level": "system", "duration": -1,
            "permissions": [{"kind": "system", "namespace": "/", "access": access}]}))
        .await;
    let rc = app.robot(&robot);
    let body = json!({"name": "r", "type": "harbor", "url": "https://registry.example", "insecure": false});
    let id = rc.post("/api/v2.0/registries").json(&body).send().await.expect(201).location_id();
    rc.get(&format!("/api/v2.0/registries/{id}")).send().await.expect(200);
    rc.get(&format!("/api/v2.0/registries/{id}/info")).send().await.expect(200);
    rc.put(&format!("/api/v2.0/registries/{id}")).json(&body).send().await.expect(200);
    rc.delete(&format!("/api/v2.0/registries/{id}")).send().await.expect(200);
    rc.get("/api/v2.0/replication/adapters").send().await.expect(403);
}

/// The regular health check pings every endpoint once per slot, whichever
/// replica ticks first, and records what it found.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn endpoints_are_checked_every_five_minutes_once() {
    let app = TestApp::local().await;
    let dist = Distribution::start(&[]);
    let admin = app.admin();
    let up = admin
        .post("/api/v2.0/registries")
        .json(&json!({"name": "up", "type": "docker-registry", "url": dist.url()}))
        .send()
        .await
        .expect(201)
        .location_id();
    let down = admin
        .post("/api/v2.0/registries")
        .json(&json!({"name": "down", "type": "docker-registry", "url": format!("http://127.0.0.1:{}", free_port())}))
        .send()
        .await
        .expect(201)
        .location_id();
    let reg = app.ctx().registry();
    let now = berth::events::now_ms();
    assert_eq!(reg.recheck_registry_endpoints(now).await.unwrap(), 2);
    assert_eq!(reg.registry_endpoint(up).await.unwrap().status, "healthy");
    assert_eq!(reg.registry_endpoint(down).await.unwrap().status, "unhealthy");
    // The slot is leased in the table: a second tick in it, from this
    // replica or another, checks nothing.
    assert_eq!(reg.recheck_registry_endpoints(now).await.unwrap(), 0, "one check per slot");
    let next_slot = now + berth::service::registries::HEALTH_EVERY_MS;
    drop(dist);
    assert_eq!(reg.recheck_registry_endpoints(next_slot).await.unwrap(), 2);
    assert_eq!(reg.registry_endpoint(up).await.unwrap().status, "unhealthy", "the next slot sees it stopped");
}

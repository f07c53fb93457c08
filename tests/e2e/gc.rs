//! Garbage collection: its bookkeeping (every blob counts the repositories
//! linking it, under concurrent links and unlinks; a blob without links is
//! a candidate, and stops being one when linked again; a manifest PUT
//! touches what it references; schema 4 counts the links of a store written
//! before counts were kept) and collections through the API, racing
//! pushes and deletes.

use serde_json::Value;

use crate::support::app::{TestApp, digest_of, image_manifest};

const CONFIG: &[u8] = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;

async fn links(app: &TestApp, digest: &str) -> Option<i64> {
    let item = app.ctx().meta.get(&format!("B#{digest}"), "META").await.unwrap()?;
    item.i64("links")
}

async fn candidate(app: &TestApp, digest: &str) -> bool {
    for shard in 0..16 {
        let page = app.ctx().meta.query_all(berth::meta::Query::table(format!("GCC#{shard}"), digest)).await.unwrap();
        if page.iter().any(|i| i.sk == digest) {
            return true;
        }
    }
    false
}

/// Pushes the shared image (config and one layer) into `repo`.
async fn push(app: &TestApp, repo: &str, layer: &[u8]) -> u16 {
    for blob in [CONFIG.to_vec(), layer.to_vec()] {
        let r =
            app.admin().post(&format!("/v2/{repo}/blobs/uploads/?digest={}", digest_of(&blob))).body(blob).send().await;
        if r.code() != 201 {
            return r.code();
        }
    }
    let manifest =
        image_manifest(&digest_of(CONFIG), CONFIG.len() as u64).layer(&digest_of(layer), layer.len() as u64).bytes();
    app.admin()
        .put(&format!("/v2/{repo}/manifests/v1"))
        .header("content-type", berth::oci::media::OCI_MANIFEST)
        .body(manifest)
        .send()
        .await
        .code()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn blobs_count_their_links_under_concurrent_pushes_and_deletes() {
    counted(&TestApp::local().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn blobs_count_their_links_under_concurrent_pushes_and_deletes_on_the_emulator() {
    let Some(app) = TestApp::aws("gc").await else { return };
    counted(&app).await;
}

async fn counted(app: &TestApp) {
    app.create_project("g", false).await;
    let layer = b"a layer shared by eight repositories".to_vec();
    let (config, shared) = (digest_of(CONFIG), digest_of(&layer));
    let pushes = (0..8).map(|n| {
        let (app, layer) = (app, &layer);
        async move { push(app, &format!("g/r{n}"), layer).await }
    });
    assert!(futures::future::join_all(pushes).await.iter().all(|c| *c == 201));
    assert_eq!(links(app, &shared).await, Some(8));
    assert_eq!(links(app, &config).await, Some(8));
    assert!(!candidate(app, &shared).await);
    // The manifest PUT touched the links it references.
    let link = app.ctx().meta.get("R#g/r0", &format!("L#{shared}")).await.unwrap().unwrap();
    assert!(link.i64("touched_at").is_some_and(|t| t > 0), "{link:?}");

    // Seven repositories go at once: one link left, no candidate.
    let deletes = (1..8).map(|n| async move {
        app.admin().delete(&format!("/api/v2.0/projects/g/repositories/r{n}")).send().await.code()
    });
    assert!(futures::future::join_all(deletes).await.iter().all(|c| *c == 200));
    assert_eq!(links(app, &shared).await, Some(1));
    assert!(!candidate(app, &shared).await);
    // The last one: a candidate.
    app.admin().delete("/api/v2.0/projects/g/repositories/r0").send().await.expect(200);
    assert_eq!(links(app, &shared).await, Some(0));
    assert!(candidate(app, &shared).await && candidate(app, &config).await);
    // Linked again: no longer one.
    assert_eq!(push(app, "g/again", &layer).await, 201);
    assert_eq!(links(app, &shared).await, Some(1));
    assert!(!candidate(app, &shared).await);

    // An upload whose link a full quota refuses leaves a candidate.
    let pid: Vec<Value> = app.admin().get("/api/v2.0/projects?name=g").send().await.expect(200).json();
    let pid = pid[0]["project_id"].as_i64().unwrap();
    let limit = super::quotas::used(app, pid).await;
    app.admin()
        .put(&format!("/api/v2.0/quotas/{pid}"))
        .json(&serde_json::json!({"hard": {"storage": limit}}))
        .send()
        .await
        .expect(200);
    let orphan = b"refused by the quota".to_vec();
    let r = app
        .admin()
        .post(&format!("/v2/g/again/blobs/uploads/?digest={}", digest_of(&orphan)))
        .body(orphan.clone())
        .send()
        .await;
    assert_eq!(r.code(), 403, "{}", r.text());
    assert_eq!(links(app, &digest_of(&orphan)).await, Some(0));
    assert!(candidate(app, &digest_of(&orphan)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn schema_4_counts_the_links_of_an_older_store() {
    let app = TestApp::local().await;
    app.create_project("old", false).await;
    let layer = b"an older layer".to_vec();
    for repo in ["old/a", "old/b", "old/c"] {
        assert_eq!(push(&app, repo, &layer).await, 201);
    }
    let shared = digest_of(&layer);
    // As a schema-3 store holds it: no counts.
    let meta = &app.ctx().meta;
    for digest in [shared.clone(), digest_of(CONFIG)] {
        let mut item = meta.get(&format!("B#{digest}"), "META").await.unwrap().unwrap();
        item.attrs.remove("links");
        meta.put(item, berth::meta::Condition::Always).await.unwrap();
    }
    meta.put(berth::meta::Item::new("SYS", "SCHEMA").with("version", 3), berth::meta::Condition::Always).await.unwrap();
    assert_eq!(links(&app, &shared).await, None);
    let report = app.ctx().migrate_local().await.unwrap();
    assert!(report.steps.iter().any(|s| s.starts_with("schema 4: counted 6 links of 2 blobs")), "{:?}", report.steps);
    assert_eq!(links(&app, &shared).await, Some(3));
    assert_eq!(links(&app, &digest_of(CONFIG)).await, Some(3));
}

/// A large manifest stored before schema 5 has no blob record: the
/// migration records it, so that GC never takes its object for an orphan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_5_records_the_objects_of_large_manifests() {
    let app = TestApp::local().await;
    app.create_project("old", false).await;
    let l = layer("big");
    assert_eq!(push(&app, "old/a", &l).await, 201);
    let big = serde_json::to_vec(&serde_json::json!({"schemaVersion": 2,
        "mediaType": berth::oci::media::OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest_of(CONFIG), "size": CONFIG.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest_of(&l), "size": l.len()}],
        "annotations": {"padding": "p".repeat(300 * 1024)}}))
    .unwrap();
    let digest = app.put_manifest("old/a", "big", &big).await;
    let meta = &app.ctx().meta;
    assert!(meta.get(&format!("B#{digest}"), "META").await.unwrap().is_some(), "recorded when pushed");
    // As a schema-4 store holds it: no record.
    meta.delete(&format!("B#{digest}"), "META", berth::meta::Condition::Always).await.unwrap();
    meta.put(berth::meta::Item::new("SYS", "SCHEMA").with("version", 4), berth::meta::Condition::Always).await.unwrap();
    let report = app.ctx().migrate_local().await.unwrap();
    assert!(
        report.steps.iter().any(|s| s.starts_with("schema 5: recorded the objects of 1 large manifests")),
        "{:?}",
        report.steps
    );
    let record = meta.get(&format!("B#{digest}"), "META").await.unwrap().expect("recorded by the migration");
    assert_eq!(record.i64("links"), None, "never a garbage candidate");
}

fn layer(name: &str) -> Vec<u8> {
    format!("the layer {name} {}", "x".repeat(2000)).into_bytes()
}

/// Pushes the config and `layers` as image `tag` of `repo`.
async fn push_image(app: &TestApp, repo: &str, tag: &str, layers: &[Vec<u8>]) -> (u16, String) {
    let mut builder = image_manifest(&digest_of(CONFIG), CONFIG.len() as u64);
    for blob in std::iter::once(CONFIG.to_vec()).chain(layers.iter().cloned()) {
        let r = app
            .admin()
            .post(&format!("/v2/{repo}/blobs/uploads/?digest={}", digest_of(&blob)))
            .body(blob.clone())
            .send()
            .await;
        if r.code() != 201 {
            return (r.code(), format!("blob upload: {}", r.text()));
        }
    }
    for l in layers {
        builder = builder.layer(&digest_of(l), l.len() as u64);
    }
    let manifest = builder.bytes();
    let r = app
        .admin()
        .put(&format!("/v2/{repo}/manifests/{tag}"))
        .header("content-type", berth::oci::media::OCI_MANIFEST)
        .body(manifest.clone())
        .send()
        .await;
    if r.code() != 201 {
        return (r.code(), format!("manifest: {}", r.text()));
    }
    (r.code(), digest_of(&manifest))
}

async fn stored(app: &TestApp, bytes: &[u8]) -> bool {
    let digest: berth::oci::Digest = digest_of(bytes).parse().unwrap();
    app.ctx().blobs.head(&berth::blob::keys::blob(&digest)).await.is_ok()
}

/// An app whose collections take everything unreferenced at once.
fn zero_window() -> crate::support::app::TestAppBuilder {
    crate::support::app::TestAppBuilder::default().config(|c| {
        c.queue.max_attempts = 3;
        c.gc.time_window_secs = 0;
    })
}

/// Runs a collection through the API and waits for it: its history entry.
async fn collect(app: &TestApp, delete_untagged: bool, dry_run: bool) -> (i64, Value) {
    let body = serde_json::json!({"schedule": {"type": "Manual"},
        "parameters": {"delete_untagged": delete_untagged, "dry_run": dry_run, "workers": 1}});
    let id = app.admin().post("/api/v2.0/system/gc/schedule").json(&body).send().await.expect(201).location_id();
    let done = super::events::eventually(std::time::Duration::from_secs(30), || async {
        let h: Value = app.admin().get(&format!("/api/v2.0/system/gc/{id}")).send().await.expect(200).json();
        (h["job_status"] == "Success").then_some(h)
    })
    .await;
    let Some(done) = done else {
        let h: Value = app.admin().get(&format!("/api/v2.0/system/gc/{id}")).send().await.json();
        let log = app.admin().get(&format!("/api/v2.0/system/gc/{id}/log")).send().await.text();
        let tasks = app.ctx().registry().tasks_of(id).await.unwrap();
        let tasks: Vec<String> =
            tasks.iter().map(|t| format!("{} {:?} {} {}", t.id, t.status, t.run_count, t.status_message)).collect();
        panic!("the collection did not succeed: {h}\n{log}\n{tasks:#?}");
    };
    (id, done)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_collection_frees_what_nothing_references_and_its_dry_run_says_so_first() {
    let app = zero_window().local().await;
    let _workers = app.run_workers();
    app.create_project("p", false).await;
    let (la, lb, lk, lu) = (layer("a"), layer("b"), layer("k"), layer("u"));
    let (code, a) = push_image(&app, "p/a", "v1", std::slice::from_ref(&la)).await;
    assert_eq!(code, 201);
    assert_eq!(push_image(&app, "p/b", "v1", std::slice::from_ref(&lb)).await.0, 201);
    assert_eq!(push_image(&app, "p/keep", "v1", std::slice::from_ref(&lk)).await.0, 201);
    let (_, u) = push_image(&app, "p/a", "u", std::slice::from_ref(&lu)).await;
    app.admin().delete("/api/v2.0/projects/p/repositories/b").send().await.expect(200);
    app.admin().delete(&format!("/api/v2.0/projects/p/repositories/a/artifacts/{u}/tags/u")).send().await.expect(200);

    // The dry run: b's layer (no link left) and u's (its untagged artifact
    // would go, and with it the only reference to its layer).
    let (dry, h) = collect(&app, true, true).await;
    let params: Value = serde_json::from_str(h["job_parameters"].as_str().unwrap()).unwrap();
    assert_eq!((params["purged_blobs"].as_u64(), params["purged_manifests"].as_u64()), (Some(2), Some(1)), "{params}");
    assert_eq!(params["dry_run"], true);
    assert!(stored(&app, &lb).await && stored(&app, &lu).await, "a dry run deletes nothing");
    app.admin().get(&format!("/v2/p/a/manifests/{u}")).send().await.expect(200);
    let log = app.admin().get(&format!("/api/v2.0/system/gc/{dry}/log")).send().await.expect(200).text();
    assert!(log.contains("2 blobs and 1 manifests eligible for deletion") && log.contains("workers: 1"), "{log}");

    // The real run frees the same.
    let (_, h) = collect(&app, true, false).await;
    let real: Value = serde_json::from_str(h["job_parameters"].as_str().unwrap()).unwrap();
    for k in ["purged_blobs", "purged_manifests", "freed_space"] {
        assert_eq!(real[k], params[k], "{k}: {real} vs {params}");
    }
    assert!(!stored(&app, &lb).await && !stored(&app, &lu).await);
    app.admin().get(&format!("/v2/p/a/manifests/{u}")).send().await.expect(404);
    // What is referenced stays, bit-exact.
    for (repo, l) in [("p/a", &la), ("p/keep", &lk)] {
        app.admin().get(&format!("/v2/{repo}/manifests/v1")).send().await.expect(200);
        let got = app.admin().get(&format!("/v2/{repo}/blobs/{}", digest_of(l))).send().await.expect(200);
        assert_eq!(got.text().as_bytes(), l.as_slice());
        let config = app.admin().get(&format!("/v2/{repo}/blobs/{}", digest_of(CONFIG))).send().await.expect(200);
        assert_eq!(config.text().as_bytes(), CONFIG);
    }
    app.admin().get(&format!("/v2/p/a/manifests/{a}")).send().await.expect(200);
    // One run at a time: while one waits (its queue paused), another is refused.
    let jq = "/api/v2.0/jobservice/queues/GARBAGE_COLLECTION";
    app.admin().put(jq).json(&serde_json::json!({"action": "pause"})).send().await.expect(200);
    let again = serde_json::json!({"schedule": {"type": "Manual"}, "parameters": {"workers": 1}});
    let waiting = app.admin().post("/api/v2.0/system/gc/schedule").json(&again).send().await.expect(201).location_id();
    app.admin().post("/api/v2.0/system/gc/schedule").json(&again).send().await.expect(409);
    app.admin().put(&format!("/api/v2.0/system/gc/{waiting}")).send().await.expect(200);
    app.admin().put(jq).json(&serde_json::json!({"action": "resume"})).send().await.expect(200);
    let history: Vec<Value> = app.admin().get("/api/v2.0/system/gc").send().await.expect(200).json();
    assert_eq!(history[0]["job_name"], "GARBAGE_COLLECTION");
    assert_eq!(history[0]["job_kind"], "MANUAL");

    // A schedule, listed with the others.
    let weekly = serde_json::json!({"schedule": {"type": "Custom", "cron": "0 0 0 * * 0"},
        "parameters": {"delete_untagged": true, "workers": 2}});
    app.admin().post("/api/v2.0/system/gc/schedule").json(&weekly).send().await.expect(201);
    let got: Value = app.admin().get("/api/v2.0/system/gc/schedule").send().await.expect(200).json();
    assert_eq!(got["schedule"]["cron"], "0 0 0 * * 0");
    let schedules: Vec<Value> = app.admin().get("/api/v2.0/schedules").send().await.expect(200).json();
    assert!(schedules.iter().any(|s| s["vendor_type"] == "GARBAGE_COLLECTION"));
    let bad = serde_json::json!({"schedule": {"type": "Manual"}, "parameters": {"workers": 9}});
    app.admin().post("/api/v2.0/system/gc/schedule").json(&bad).send().await.expect(400);
    app.create_user("plain", "Passw0rd1").await;
    app.user("plain", "Passw0rd1").get("/api/v2.0/system/gc").send().await.expect(403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nothing_younger_than_the_window_is_collected() {
    let app = TestApp::local().await;
    app.create_project("young", false).await;
    let l = layer("young");
    assert_eq!(push_image(&app, "young/a", "v1", std::slice::from_ref(&l)).await.0, 201);
    app.admin().delete("/api/v2.0/projects/young/repositories/a").send().await.expect(200);
    let p = berth::service::gc::GcParams { delete_untagged: true, dry_run: false, workers: 1, window_secs: 7200 };
    let registry = app.ctx().registry();
    let mut log = Vec::new();
    for shard in 0..16 {
        let (t, _) = registry.gc_sweep(shard, None, &p, 1, 500, &mut log).await.unwrap();
        assert_eq!(t.purged_blobs, 0);
    }
    assert!(stored(&app, &l).await);
}

/// Pushes, deletes and collections at once, round after round, with a one
/// second window: round `i` pushes an image (a shared base layer and a
/// layer of its own) as tag `t<i>` of one of 40 repositories, deletes the
/// image of round `i - 3` in four rounds of five, and collects the
/// repositories it touched plus every part after the marking (candidates,
/// orphans, uploads, expired items). Afterwards skopeo pulls every image
/// that stayed, bit-exact; the blobs GC removed never include one a
/// surviving image or the shared layers need; and a last collection
/// removes the own layer of every deleted image.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn collections_racing_pushes_and_deletes_never_take_a_referenced_blob() {
    race(&TestApp::local().await, 1000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn collections_racing_pushes_and_deletes_never_take_a_referenced_blob_on_the_emulator() {
    let Some(app) = TestApp::aws("gc-race").await else { return };
    race(&app, 100).await;
}

const RACE_REPOS: usize = 40;

fn race_repo(i: usize) -> String {
    format!("race/r{}", i % RACE_REPOS)
}

/// The digests GC's log lines say it deleted.
fn removed_in(log: &[String], removed: &mut std::collections::BTreeSet<String>) {
    for line in log {
        if let Some(rest) = line.strip_prefix("blob ")
            && let Some((digest, _)) = rest.split_once(' ')
        {
            removed.insert(digest.to_owned());
        } else if let Some(rest) = line.strip_prefix("orphan object blobs/")
            && let Some((key, _)) = rest.split_once(' ')
            && let Some((alg, hex)) = key.split_once('/').map(|(a, r)| (a, r.rsplit('/').next().unwrap_or("")))
        {
            removed.insert(format!("{alg}:{hex}"));
        }
    }
}

async fn race(app: &TestApp, rounds: usize) {
    use berth::service::gc::GcPart;
    use std::collections::{BTreeMap, BTreeSet};
    app.create_project("race", false).await;
    let base = layer("base");
    let registry = app.ctx().registry();
    let p = berth::service::gc::GcParams { delete_untagged: true, dry_run: false, workers: 1, window_secs: 1 };
    let mut removed = BTreeSet::new();
    // Round -> the digest of its manifest, for the pushes that succeeded.
    let mut pushed: BTreeMap<usize, String> = BTreeMap::new();
    let mut deleted = BTreeSet::new();
    // The walk for expired items (the whole table) only every tenth round:
    // it concerns no blob.
    let collect = |repos: Vec<String>, expired: bool| {
        let registry = registry.clone();
        let p = p.clone();
        async move {
            let mut log = Vec::new();
            for name in repos {
                let repo = berth::oci::RepoName::parse(&name).unwrap();
                registry.gc_repository(&repo, &p, 1, &mut log).await.unwrap();
            }
            // The parts run at once, as on several workers.
            let parts = GcPart::after_marking().into_iter().filter(|p| expired || *p != GcPart::Expired).map(|part| {
                let registry = registry.clone();
                let p = p.clone();
                async move {
                    let mut log = Vec::new();
                    let mut after = None;
                    loop {
                        let (_, next) = registry.gc_part(part, after, &p, 1, &mut log).await.unwrap();
                        match next {
                            Some(n) => after = Some(n),
                            None => return log,
                        }
                    }
                }
            });
            log.extend(futures::future::join_all(parts).await.into_iter().flatten());
            log
        }
    };
    for i in 0..rounds {
        let layers = [base.clone(), layer(&format!("own-{i}"))];
        let repo = race_repo(i);
        let tag = format!("t{i}");
        let push = push_image(app, &repo, &tag, &layers);
        let victim = (i >= 3 && i % 5 != 0).then(|| i - 3).and_then(|v| pushed.get(&v).map(|d| (v, d.clone())));
        let delete = async {
            let (v, digest) = victim.clone()?;
            let r = app.admin().delete(&format!("/v2/{}/manifests/{digest}", race_repo(v))).send().await;
            (r.code() == 202).then_some(v)
        };
        let gc = collect(vec![repo.clone(), race_repo(i + RACE_REPOS - 3)], i % 10 == 0);
        let ((code, digest), gone, log) = tokio::join!(push, delete, gc);
        assert!(matches!(code, 201 | 503), "round {i}: {code} {digest}");
        if code == 201 {
            pushed.insert(i, digest);
        }
        deleted.extend(gone);
        removed_in(&log, &mut removed);
    }
    // A last collection of everything, a window apart: what the deleted
    // images alone held goes.
    let all: Vec<String> = (0..RACE_REPOS).map(race_repo).collect();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    removed_in(&collect(all.clone(), true).await, &mut removed);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    removed_in(&collect(all, true).await, &mut removed);

    let survivors: Vec<usize> = pushed.keys().copied().filter(|i| !deleted.contains(i)).collect();
    assert!(survivors.len() >= rounds / 5, "{} of {rounds} survived", survivors.len());
    assert!(deleted.len() >= rounds / 2, "{} deleted", deleted.len());
    let (base_d, config_d) = (digest_of(&base), digest_of(CONFIG));
    assert!(!removed.contains(&base_d) && !removed.contains(&config_d), "a shared blob was collected");
    for i in &survivors {
        let own = digest_of(&layer(&format!("own-{i}")));
        assert!(!removed.contains(&own), "round {i}: its layer {own} was collected while referenced");
    }
    for i in &deleted {
        let own = layer(&format!("own-{i}"));
        assert!(!stored(app, &own).await, "round {i}: its deleted image's layer stayed");
        assert!(removed.contains(&digest_of(&own)));
    }

    // skopeo pulls every surviving image, and only those, bit-exact.
    let expected = |r: usize| -> BTreeSet<String> {
        survivors.iter().filter(|i| *i % RACE_REPOS == r).map(|i| format!("t{i}")).collect()
    };
    let mut holding = Vec::new();
    for r in 0..RACE_REPOS {
        if expected(r).is_empty() {
            // skopeo refuses to sync a repository without tags.
            let listed = app.admin().get(&format!("/v2/race/r{r}/tags/list")).send().await;
            let tags = if listed.code() == 200 { listed.json::<Value>()["tags"].clone() } else { Value::Null };
            assert!(tags.as_array().is_none_or(Vec::is_empty), "r{r}: {tags}");
        } else {
            holding.push(r);
        }
    }
    let addr = app.serve().await;
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().to_owned();
    tokio::task::spawn_blocking(move || {
        crate::support::cli::require("skopeo", &["--version"]);
        for r in holding {
            crate::support::cli::ok(
                std::process::Command::new("skopeo")
                    .args(["sync", "--src", "docker", "--dest", "dir", "--src-tls-verify=false"])
                    .args(["--src-creds", &format!("admin:{}", crate::support::app::ADMIN_PASSWORD)])
                    .arg(format!("{addr}/race/r{r}"))
                    .arg(dest.join(format!("r{r}"))),
            );
        }
    })
    .await
    .unwrap();
    let mut pulled = 0;
    for r in 0..RACE_REPOS {
        let dir = out.path().join(format!("r{r}"));
        let tags: BTreeSet<String> = std::fs::read_dir(&dir)
            .map(|d| {
                d.filter_map(|e| e.ok()?.file_name().into_string().ok()?.split_once(':').map(|(_, t)| t.to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(tags, expected(r), "r{r}: pulled tags");
        for tag in tags {
            let i: usize = tag[1..].parse().unwrap();
            let image = dir.join(format!("r{r}:{tag}"));
            for bytes in [CONFIG.to_vec(), base.clone(), layer(&format!("own-{i}"))] {
                let hex = digest_of(&bytes)["sha256:".len()..].to_owned();
                let got = std::fs::read(image.join(&hex)).unwrap_or_else(|e| panic!("{tag}: {hex}: {e}"));
                assert_eq!(got, bytes, "{tag}: {hex} differs");
            }
            pulled += 1;
        }
    }
    assert_eq!(pulled, survivors.len());
}

/// What no blob record owns goes too: an object a crash left under
/// `blobs/`, the objects of upload sessions that ended or expired (with
/// their multipart upload), and expired table items; an upload still in
/// progress keeps its bytes and finishes after the collection. The dry run
/// counts the same and touches nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_collection_removes_orphans_abandoned_uploads_and_expired_items() {
    let app = zero_window().local().await;
    leftovers_collected(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_collection_removes_orphans_abandoned_uploads_and_expired_items_on_the_emulator() {
    let Some(app) = zero_window().aws("gc-leftovers").await else {
        return;
    };
    leftovers_collected(&app).await;
}

async fn leftovers_collected(app: &TestApp) {
    let _workers = app.run_workers();
    app.create_project("p", false).await;
    assert_eq!(push_image(app, "p/keep", "v1", &[layer("keep")]).await.0, 201);
    let blobs = app.ctx().blobs.clone();
    let meta = app.ctx().meta.clone();
    // A manifest too large for its table item lives in the blob store: it
    // is no orphan.
    let keep = layer("keep");
    let big = serde_json::to_vec(&serde_json::json!({"schemaVersion": 2,
        "mediaType": berth::oci::media::OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest_of(CONFIG), "size": CONFIG.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest_of(&keep), "size": keep.len()}],
        "annotations": {"padding": "p".repeat(300 * 1024)}}))
    .unwrap();
    app.admin()
        .put("/v2/p/keep/manifests/big")
        .header("content-type", berth::oci::media::OCI_MANIFEST)
        .body(big.clone())
        .send()
        .await
        .expect(201);
    // A blob object whose record a crash never wrote.
    let orphan = layer("orphan");
    let orphan_digest: berth::oci::Digest = digest_of(&orphan).parse().unwrap();
    blobs.put_bytes(&berth::blob::keys::blob(&orphan_digest), orphan.clone().into()).await.unwrap();
    // Objects of a session that is gone.
    blobs.put_bytes("uploads/0123abcd/staging-0-00000000", vec![7u8; 100].into()).await.unwrap();
    // A session with a staged chunk and a part, then expired.
    let expired_at = start_upload(app).await;
    let part = vec![3u8; 6 * 1024 * 1024];
    app.admin().patch(&expired_at).body(part).send().await.expect(202);
    let expired_id = expired_at.trim_end_matches('/').rsplit('/').next().unwrap().split('?').next().unwrap().to_owned();
    let mut session = meta.get(&format!("U#{expired_id}"), "META").await.unwrap().expect("session");
    let multipart = session.attrs["multipart"].as_str().expect("a part was written").to_owned();
    let parts: Vec<berth::blob::CompletedPart> = serde_json::from_value(session.attrs["parts"].clone()).unwrap();
    session.attrs.insert("expires_at".into(), (berth::meta::now_unix() - 5).into());
    meta.put(session, berth::meta::Condition::Always).await.unwrap();
    // A session in progress.
    let live_at = start_upload(app).await;
    let (head, tail) = (b"the first half ".to_vec(), b"and the second".to_vec());
    app.admin().patch(&live_at).body(head.clone()).send().await.expect(202);
    let uploads = |blobs: std::sync::Arc<dyn berth::blob::BlobStore>| async move {
        blobs.list("uploads/", None, 1000).await.unwrap().objects.into_iter().map(|o| o.key).collect::<Vec<_>>()
    };
    let before = uploads(blobs.clone()).await;
    assert!(before.iter().any(|k| k.starts_with("uploads/0123abcd/")), "{before:?}");

    let (_, h) = collect(app, false, true).await;
    let dry: Value = serde_json::from_str(h["job_parameters"].as_str().unwrap()).unwrap();
    assert_eq!(dry["purged_blobs"], 1, "the orphan: {dry}");
    assert_eq!(dry["upload_objects"], 1, "the object of the ended session: {dry}");
    assert!(dry["expired_items"].as_u64().unwrap() >= 1, "{dry}");
    assert!(stored(app, &orphan).await, "a dry run deletes nothing");
    assert_eq!(uploads(blobs.clone()).await, before);

    let (id, h) = collect(app, false, false).await;
    let real: Value = serde_json::from_str(h["job_parameters"].as_str().unwrap()).unwrap();
    for k in ["purged_blobs", "upload_objects", "freed_space"] {
        assert_eq!(real[k], dry[k], "{k}: {real} vs {dry}");
    }
    assert!(!stored(app, &orphan).await, "the orphan object is gone");
    assert!(meta.get(&format!("B#{orphan_digest}"), "META").await.unwrap().is_none(), "its claim is released");
    let after = uploads(blobs.clone()).await;
    assert!(!after.iter().any(|k| k.contains(&expired_id) || k.starts_with("uploads/0123abcd/")), "{after:?}");
    // The expired session is gone from the table too, not just hidden.
    let mut walk = None;
    loop {
        let page = meta.expired(walk, 1000).await.unwrap();
        assert!(!page.items.iter().any(|i| i.pk == format!("U#{expired_id}")), "still stored: {:?}", page.items);
        match page.next {
            Some(n) => walk = Some(n),
            None => break,
        }
    }
    // Its multipart upload was aborted: its parts cannot be assembled.
    let data = berth::blob::keys::upload_data(&expired_id);
    assert!(blobs.complete_multipart(&data, &multipart, &parts).await.is_err(), "the multipart upload is aborted");
    assert!(blobs.head(&data).await.is_err());
    let log = app.admin().get(&format!("/api/v2.0/system/gc/{id}/log")).send().await.expect(200).text();
    assert!(log.contains("orphan object") && log.contains("abandoned upload object"), "{log}");
    // The live upload finishes, bit-exact, and an orphan's digest can be
    // pushed again.
    let whole = [head, tail.clone()].concat();
    let sep = if live_at.contains('?') { '&' } else { '?' };
    app.admin().put(&format!("{live_at}{sep}digest={}", digest_of(&whole))).body(tail).send().await.expect(201);
    served_exactly(app, "p/keep", &whole).await;
    let got = app.admin().get("/v2/p/keep/manifests/big").send().await.expect(200);
    assert_eq!(got.body.as_ref(), big.as_slice(), "the large manifest is whole");
    assert_eq!(push_image(app, "p/again", "v1", std::slice::from_ref(&orphan)).await.0, 201);
    served_exactly(app, "p/again", &orphan).await;
}

async fn start_upload(app: &TestApp) -> String {
    let r = app.admin().post("/v2/p/keep/blobs/uploads/").send().await.expect(202);
    r.header("location").to_owned()
}

/// `repo` serves `bytes` (a HEAD through the API; the bytes from the store,
/// which on AWS a GET redirects to).
async fn served_exactly(app: &TestApp, repo: &str, bytes: &[u8]) {
    let digest = digest_of(bytes);
    app.admin().head(&format!("/v2/{repo}/blobs/{digest}")).send().await.expect(200);
    let key = berth::blob::keys::blob(&digest.parse().unwrap());
    assert_eq!(app.ctx().blobs.get_bytes(&key).await.unwrap().as_ref(), bytes);
}

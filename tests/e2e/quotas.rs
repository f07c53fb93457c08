//! Project quotas (F5) through the in-process app:
//!
//! - 8 concurrent pushes that together exceed the limit: usage stays
//!   within it, equals the bytes of the accepted images, and each refused
//!   push gets a 403 `DENIED` with Harbor's message; `QUOTA_EXCEED` and
//!   `QUOTA_WARNING` reach a webhook;
//! - a blob is counted once per project however many repositories hold
//!   it; usage falls with a manifest's deletion and a repository's;
//! - `/quotas`: list (by project, sorted), get, and changing the limit.

use std::time::Duration;

use serde_json::{Value, json};

use super::events::{eventually, receiver};
use crate::support::app::{TestApp, TestAppBuilder, digest_of, image_manifest};

const CONFIG: &[u8] = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
const LAYER: usize = 10_000;

/// Image `n`: the shared config, a layer of its own, and its manifest.
fn image(n: usize) -> (Vec<u8>, Vec<u8>) {
    let layer: Vec<u8> = (0..LAYER).map(|i| u8::try_from((i * 7 + n * 13) % 251).unwrap()).collect();
    let manifest = image_manifest(&digest_of(CONFIG), CONFIG.len() as u64)
        .layer(&digest_of(&layer), layer.len() as u64)
        .annotation("n", &n.to_string())
        .bytes();
    (layer, manifest)
}

pub(crate) async fn used(app: &TestApp, pid: i64) -> i64 {
    let q: Vec<Value> = app
        .admin()
        .get(&format!("/api/v2.0/quotas?reference=project&reference_id={pid}"))
        .send()
        .await
        .expect(200)
        .json();
    q[0]["used"]["storage"].as_i64().unwrap()
}

/// Pushes image `n` into `repo` through `/v2`: the status of the first
/// refused request (with its body), or the manifest's 201.
async fn push(app: &TestApp, repo: &str, n: usize) -> (u16, String) {
    let (layer, manifest) = image(n);
    for blob in [CONFIG.to_vec(), layer] {
        let r =
            app.admin().post(&format!("/v2/{repo}/blobs/uploads/?digest={}", digest_of(&blob))).body(blob).send().await;
        if r.code() != 201 {
            return (r.code(), r.text());
        }
    }
    let r = app
        .admin()
        .put(&format!("/v2/{repo}/manifests/v{n}"))
        .header("content-type", berth::oci::media::OCI_MANIFEST)
        .body(manifest)
        .send()
        .await;
    (r.code(), r.text())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_pushes_never_pass_the_limit_together() {
    let app = TestAppBuilder::default().config(|c| c.queue.max_attempts = 3).local().await;
    race(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_pushes_never_pass_the_limit_together_on_the_emulator() {
    let Some(app) = TestAppBuilder::default().config(|c| c.queue.max_attempts = 3).aws("quota").await else { return };
    race(&app).await;
}

async fn race(app: &TestApp) {
    let _workers = app.run_workers();
    let pid = app.create_project("tight", false).await;
    let manifest_len = image(0).1.len();
    assert!((0..8).all(|n| image(n).1.len() == manifest_len));
    // Room for the config and three images, not four layers.
    let limit = (CONFIG.len() + 3 * (LAYER + manifest_len) + 5_000) as i64;
    app.admin()
        .put(&format!("/api/v2.0/quotas/{pid}"))
        .json(&json!({"hard": {"storage": limit}}))
        .send()
        .await
        .expect(200);
    let (rx, got) = receiver().await;
    let hook = json!({"name": "quota", "enabled": true, "event_types": ["QUOTA_EXCEED", "QUOTA_WARNING"],
        "targets": [{"type": "http", "address": format!("http://{rx}/ok/quota")}]});
    app.admin().post(&format!("/api/v2.0/projects/{pid}/webhook/policies")).json(&hook).send().await.expect(201);

    let pushes = (0..8).map(|n| async move { push(app, "tight/app", n).await });
    let outcomes = futures::future::join_all(pushes).await;
    let accepted = outcomes.iter().filter(|(code, _)| *code == 201).count();
    assert_eq!(accepted, 3, "{outcomes:?}");
    for (code, body) in outcomes.iter().filter(|(code, _)| *code != 201) {
        assert_eq!(*code, 403, "{body}");
        let err: Value = serde_json::from_str(body).unwrap();
        assert_eq!(err["errors"][0]["code"], "DENIED");
        let message = err["errors"][0]["message"].as_str().unwrap();
        assert!(
            message.starts_with("Quota exceeded when processing the request of adding 9.8 KiB of storage resource")
                && message.ends_with(&format!(
                    "will exceed the configured upper limit of {}.",
                    berth::service::quotas::display_size(limit)
                )),
            "{message}"
        );
    }
    let usage = used(app, pid).await;
    assert!(usage <= limit);
    assert_eq!(usage, (CONFIG.len() + 3 * (LAYER + manifest_len)) as i64);
    let summary: Value = app.admin().get(&format!("/api/v2.0/projects/{pid}/summary")).send().await.expect(200).json();
    assert_eq!(summary["quota"], json!({"hard": {"storage": limit}, "used": {"storage": usage}}));

    // The events: QUOTA_EXCEED for the refusals, QUOTA_WARNING once the
    // usage crossed 85 % of the limit.
    let types = eventually(Duration::from_secs(20), || async {
        let types: Vec<String> =
            got.lock().unwrap().iter().filter_map(|(_, _, body)| body["type"].as_str().map(str::to_owned)).collect();
        (types.contains(&"QUOTA_EXCEED".to_owned()) && types.contains(&"QUOTA_WARNING".to_owned())).then_some(types)
    })
    .await;
    assert!(types.is_some(), "{:?}", got.lock().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn blobs_count_once_per_project_and_usage_falls_with_what_references_them() {
    let app = TestApp::local().await;
    let pid = app.create_project("shared", false).await;
    let other = app.create_project("elsewhere", false).await;
    assert_eq!(used(&app, pid).await, 0);
    let manifest_len = image(1).1.len() as i64;
    let one = CONFIG.len() as i64 + LAYER as i64 + manifest_len;
    assert_eq!(push(&app, "shared/a", 1).await.0, 201);
    assert_eq!(used(&app, pid).await, one);
    // The same image in a second repository of the project: no change;
    // in another project: counted there.
    assert_eq!(push(&app, "shared/b", 1).await.0, 201);
    assert_eq!(used(&app, pid).await, one);
    assert_eq!(push(&app, "elsewhere/a", 1).await.0, 201);
    assert_eq!(used(&app, other).await, one);
    // A second image shares the config.
    assert_eq!(push(&app, "shared/a", 2).await.0, 201);
    assert_eq!(used(&app, pid).await, one + LAYER as i64 + manifest_len);

    // Deleting a manifest frees its own bytes once no repository holds it;
    // its layer stays linked (until GC removes the link).
    let digest2 = digest_of(&image(2).1);
    app.admin().delete(&format!("/v2/shared/a/manifests/{digest2}")).send().await.expect(202);
    assert_eq!(used(&app, pid).await, one + LAYER as i64);
    // A repository's deletion frees what only it referenced.
    app.admin().delete("/api/v2.0/projects/shared/repositories/a").send().await.expect(200);
    assert_eq!(used(&app, pid).await, one);
    app.admin().delete("/api/v2.0/projects/shared/repositories/b").send().await.expect(200);
    assert_eq!(used(&app, pid).await, 0);

    // The API: sorted listings, a single quota, limits and who may.
    let by_used: Vec<Value> = app.admin().get("/api/v2.0/quotas?sort=-used.storage").send().await.expect(200).json();
    assert_eq!(by_used[0]["ref"]["name"], "elsewhere");
    assert_eq!(by_used[0]["used"]["storage"], one);
    let ascending: Vec<Value> = app.admin().get("/api/v2.0/quotas?sort=used.storage").send().await.expect(200).json();
    assert!(ascending.windows(2).all(|w| w[0]["used"]["storage"].as_i64() <= w[1]["used"]["storage"].as_i64()));
    let all = app.admin().get("/api/v2.0/quotas?page_size=1").send().await.expect(200);
    assert_eq!(all.header("x-total-count"), "3");
    let q: Value = app.admin().get(&format!("/api/v2.0/quotas/{other}")).send().await.expect(200).json();
    assert_eq!(q["id"], other);
    assert_eq!(q["hard"]["storage"], -1);
    let put = |storage: Value| json!({"hard": {"storage": storage}});
    app.admin().put(&format!("/api/v2.0/quotas/{other}")).json(&put(json!(0))).send().await.expect(400);
    app.admin().put(&format!("/api/v2.0/quotas/{other}")).json(&put(json!(one))).send().await.expect(200);
    let q: Value = app.admin().get(&format!("/api/v2.0/quotas/{other}")).send().await.expect(200).json();
    assert_eq!((q["hard"]["storage"].as_i64(), q["used"]["storage"].as_i64()), (Some(one), Some(one)));
    // At the limit exactly: one byte more is refused.
    let (code, body) = push(&app, "elsewhere/a", 3).await;
    assert_eq!(code, 403, "{body}");
    app.admin().get("/api/v2.0/quotas/999999").send().await.expect(404);
    app.create_user("plain", "Passw0rd1").await;
    let plain = app.user("plain", "Passw0rd1");
    plain.get("/api/v2.0/quotas").send().await.expect(403);
    plain.put(&format!("/api/v2.0/quotas/{other}")).json(&put(json!(-1))).send().await.expect(403);
    plain.get(&format!("/api/v2.0/quotas/{pid}")).send().await.expect(403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_quota_sync_corrects_drift_from_the_references() {
    let app = TestApp::local().await;
    let pid = app.create_project("drifted", false).await;
    assert_eq!(push(&app, "drifted/a", 1).await.0, 201);
    assert_eq!(push(&app, "drifted/b", 1).await.0, 201);
    let right = used(&app, pid).await;
    let registry = app.ctx().registry();
    // Nothing to correct.
    let r = registry.sync_quota("drifted").await.unwrap();
    assert_eq!((r.entries_corrected, r.drift(), r.used_after), (0, 0, right));

    // Break it as references made before quotas were counted would: the
    // entries gone, the usage wrong.
    let meta = &app.ctx().meta;
    let entries = meta.query_all(berth::meta::Query::table("P#drifted", "PB#")).await.unwrap();
    assert_eq!(entries.len(), 3, "config, layer, manifest");
    for e in &entries {
        meta.delete(&e.pk, &e.sk, berth::meta::Condition::Always).await.unwrap();
    }
    meta.put(berth::meta::Item::new("P#drifted", "QUOTA").with("used", 5), berth::meta::Condition::Always)
        .await
        .unwrap();
    let r = registry.sync_quota("drifted").await.unwrap();
    assert_eq!((r.entries_corrected, r.used_before, r.used_after), (3, 5, right));
    assert_eq!(used(&app, pid).await, right);
    // The corrected entries count each reference: both repositories must go
    // before the usage falls to nothing.
    app.admin().delete("/api/v2.0/projects/drifted/repositories/a").send().await.expect(200);
    assert_eq!(used(&app, pid).await, right);
    app.admin().delete("/api/v2.0/projects/drifted/repositories/b").send().await.expect(200);
    assert_eq!(used(&app, pid).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migrating_to_schema_3_counts_what_was_stored_before_quotas() {
    let app = TestApp::local().await;
    let pid = app.create_project("older", false).await;
    assert_eq!(push(&app, "older/a", 1).await.0, 201);
    assert_eq!(push(&app, "older/a", 2).await.0, 201);
    let right = used(&app, pid).await;
    // As a schema-2 store holds it: no entries, no usage.
    let meta = &app.ctx().meta;
    for e in meta.query_all(berth::meta::Query::table("P#older", "PB#")).await.unwrap() {
        meta.delete(&e.pk, &e.sk, berth::meta::Condition::Always).await.unwrap();
    }
    meta.delete("P#older", "QUOTA", berth::meta::Condition::Always).await.unwrap();
    let version = berth::meta::Item::new("SYS", "SCHEMA").with("version", 2);
    meta.put(version, berth::meta::Condition::Always).await.unwrap();
    assert_eq!(used(&app, pid).await, 0);
    let report = app.ctx().migrate_local().await.unwrap();
    assert!(report.steps.iter().any(|s| s.starts_with("schema 3: counted the storage of")), "{:?}", report.steps);
    assert_eq!(used(&app, pid).await, right);
}

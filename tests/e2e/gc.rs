//! Garbage collection's bookkeeping (the collection itself is to come):
//! every blob counts the repositories linking it, under concurrent links
//! and unlinks; a blob without links is a candidate, and stops being one
//! when linked again; a manifest PUT touches what it references; schema 4
//! counts the links of a store written before counts were kept.

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
    let used: Vec<Value> = app
        .admin()
        .get(&format!("/api/v2.0/quotas?reference=project&reference_id={pid}"))
        .send()
        .await
        .expect(200)
        .json();
    let limit = used[0]["used"]["storage"].as_i64().unwrap();
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

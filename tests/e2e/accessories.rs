//! What Harbor's artifact list hides (an index's children, signatures,
//! SBOMs and other accessories), and how accessories are listed and deleted
//! with their subject.

use serde_json::{Value, json};

use crate::support::app::{TestApp, digest_of, image_manifest};

const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const ARTIFACTS: &str = "/api/v2.0/projects/acc/repositories/app/artifacts";

async fn put(app: &TestApp, reference: &str, media_type: &str, body: &Value) -> String {
    let bytes = serde_json::to_vec(body).unwrap();
    app.admin()
        .put(&format!("/v2/acc/app/manifests/{reference}"))
        .header("content-type", media_type)
        .body(bytes.clone())
        .send()
        .await
        .expect(201);
    digest_of(&bytes)
}

fn digests(list: &Value) -> Vec<String> {
    let mut out: Vec<String> =
        list.as_array().unwrap().iter().map(|a| a["digest"].as_str().unwrap().to_owned()).collect();
    out.sort();
    out
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Pushes two images, an index of both, a cosign signature by tag scheme
/// and an SBOM through `subject`; the digests (amd64, arm64, index,
/// signature, sbom).
pub(crate) async fn push_all(app: &TestApp) -> [String; 5] {
    app.create_project("acc", false).await;
    let amd = app.push_image("acc/app", "amd64").await;
    let arm = app.push_image("acc/app", "arm64").await;
    let index = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": amd, "size": 1, "platform": {"architecture": "amd64", "os": "linux"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": arm, "size": 1, "platform": {"architecture": "arm64", "os": "linux"}}]});
    let index = put(app, "multi", INDEX, &index).await;
    // cosign: a simple-signing layer, tagged sha256-<index hex>.sig.
    let payload = format!(r#"{{"critical":{{"image":{{"docker-manifest-digest":"{index}"}}}}}}"#);
    let layer = app.upload_blob("acc/app", payload.as_bytes()).await;
    let config = app.upload_blob("acc/app", b"{}").await;
    let mut sig: Value =
        serde_json::from_slice(&image_manifest(&config, 2).layer(&layer, payload.len() as u64).bytes()).unwrap();
    sig["layers"][0]["mediaType"] = json!("application/vnd.dev.cosign.simplesigning.v1+json");
    let sig_tag = format!("{}.sig", index.replace(':', "-"));
    let sig = put(app, &sig_tag, "application/vnd.oci.image.manifest.v1+json", &sig).await;
    // An SBOM made for the amd64 image through subject.
    let sbom_body = app.upload_blob("acc/app", br#"{"spdxVersion":"SPDX-2.3"}"#).await;
    let empty = app.upload_blob("acc/app", b"{}").await;
    let sbom = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/spdx+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [{"mediaType": "application/spdx+json", "digest": sbom_body, "size": 26}],
        "subject": {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": index, "size": 1}});
    let sbom = put(app, "sbom-of-index", "application/vnd.oci.image.manifest.v1+json", &sbom).await;
    [amd, arm, index, sig, sbom]
}

async fn hidden_and_listed(app: &TestApp) {
    let [amd, arm, index, sig, sbom] = push_all(app).await;
    let admin = app.admin();
    // Only the index is listed; the repository counts it alone.
    let listed = admin.get(ARTIFACTS).send().await.expect(200);
    assert_eq!(listed.header("x-total-count"), "1");
    assert_eq!(digests(&listed.json()), vec![index.clone()]);
    let repo: Value = admin.get("/api/v2.0/projects/acc/repositories/app").send().await.expect(200).json();
    assert_eq!(repo["artifact_count"], 1);
    // base=* lists all five.
    let all = admin.get(&format!("{ARTIFACTS}?q=base%3D*")).send().await.expect(200);
    assert_eq!(all.header("x-total-count"), "5");
    assert_eq!(digests(&all.json()), sorted(vec![amd.clone(), arm.clone(), index.clone(), sig.clone(), sbom.clone()]));
    admin.get(&format!("{ARTIFACTS}?q=base%3Done")).send().await.expect(400);
    // The index's accessories, by the endpoint and with the artifact.
    let acc: Value = admin.get(&format!("{ARTIFACTS}/multi/accessories")).send().await.expect(200).json();
    let mut kinds: Vec<(String, String)> = acc
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["digest"].as_str().unwrap().to_owned(), a["type"].as_str().unwrap().to_owned()))
        .collect();
    kinds.sort();
    let mut want = vec![(sig.clone(), "signature.cosign".to_owned()), (sbom.clone(), "subject.accessory".to_owned())];
    want.sort();
    assert_eq!(kinds, want);
    assert_eq!(acc[0]["subject_artifact_digest"], index.as_str());
    let one: Value = admin.get(&format!("{ARTIFACTS}/multi?with_accessory=true")).send().await.expect(200).json();
    assert_eq!(one["accessories"].as_array().unwrap().len(), 2);
    let plain: Value = admin.get(&format!("{ARTIFACTS}/multi")).send().await.expect(200).json();
    assert_eq!(plain["accessories"], Value::Null);
    let child: Value = admin.get(&format!("{ARTIFACTS}/{amd}?with_accessory=true")).send().await.expect(200).json();
    assert_eq!(child["accessories"], Value::Null);
    assert_eq!(plain["references"].as_array().unwrap().len(), 2);

    // A child is not deleted alone.
    admin.delete(&format!("{ARTIFACTS}/{amd}")).send().await.expect(412);
    // The index goes with its accessories and its untagged... here tagged
    // children stay (a tag names them), listed again.
    admin.delete(&format!("{ARTIFACTS}/multi")).send().await.expect(200);
    for gone in [&index, &sig, &sbom] {
        admin.get(&format!("/v2/acc/app/manifests/{gone}")).send().await.expect(404);
    }
    let listed = admin.get(ARTIFACTS).send().await.expect(200);
    assert_eq!(listed.header("x-total-count"), "2");
    assert_eq!(digests(&listed.json()), sorted(vec![amd.clone(), arm.clone()]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hidden_and_listed_local() {
    hidden_and_listed(&TestApp::local().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hidden_and_listed_aws() {
    let Some(app) = TestApp::aws("berth-acc-").await else { return };
    hidden_and_listed(&app).await;
}

/// Untagged children go with their index; through `/v2` only what is
/// named goes, and children are listed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn untagged_children_go_with_their_index() {
    let app = TestApp::local().await;
    let [amd, arm, _, _, _] = push_all(&app).await;
    let admin = app.admin();
    // Untag the children: now only the index keeps them.
    admin.delete("/v2/acc/app/manifests/amd64").send().await.expect(202);
    admin.delete("/v2/acc/app/manifests/arm64").send().await.expect(202);
    // A second index of one child: that child stays when the first goes.
    let second = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": arm, "size": 1}]});
    let second = put(&app, "second", INDEX, &second).await;
    // Pushed twice: referenced once.
    put(
        &app,
        "second",
        INDEX,
        &json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": arm, "size": 1}]}),
    )
    .await;
    admin.delete(&format!("{ARTIFACTS}/multi")).send().await.expect(200);
    admin.get(&format!("/v2/acc/app/manifests/{amd}")).send().await.expect(404);
    admin.get(&format!("/v2/acc/app/manifests/{arm}")).send().await.expect(200);
    let listed = admin.get(ARTIFACTS).send().await.expect(200);
    assert_eq!(digests(&listed.json()), vec![second.clone()]);
    // /v2 deletes the index alone; its child is listed again.
    admin.delete(&format!("/v2/acc/app/manifests/{second}")).send().await.expect(202);
    let listed = admin.get(ARTIFACTS).send().await.expect(200);
    assert_eq!(listed.header("x-total-count"), "1");
    assert_eq!(digests(&listed.json()), vec![arm]);
}

/// The project-wide list: every repository's artifacts, newest first, with
/// the same rules for what is hidden.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn project_artifacts_across_repositories() {
    let app = TestApp::local().await;
    let [_, _, index, _, _] = push_all(&app).await;
    let other = app.push_image("acc/other", "v1").await;
    let admin = app.admin();
    let listed = admin.get("/api/v2.0/projects/acc/artifacts?with_tag=false").send().await.expect(200);
    assert_eq!(listed.header("x-total-count"), "2");
    let body: Value = listed.json();
    let got: Vec<(&str, &str)> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["repository_name"].as_str().unwrap(), a["digest"].as_str().unwrap()))
        .collect();
    assert_eq!(got, vec![("acc/other", other.as_str()), ("acc/app", index.as_str())], "newest first");
    assert_eq!(body[0]["tags"], Value::Null);
    let all = admin.get("/api/v2.0/projects/acc/artifacts?q=base%3D*").send().await.expect(200);
    assert_eq!(all.header("x-total-count"), "6");
    let paged = admin.get("/api/v2.0/projects/acc/artifacts?page=2&page_size=1").send().await.expect(200);
    assert_eq!(digests(&paged.json()), vec![index.clone()]);
    let charts = admin.get("/api/v2.0/projects/acc/artifacts?q=type%3DCHART").send().await.expect(200);
    assert_eq!(charts.header("x-total-count"), "0");
    // The newest of each repository, by type.
    let newer = app.push_image("acc/other", "v2").await;
    let latest: Value = admin
        .get("/api/v2.0/projects/acc/artifacts?latest_in_repository=true&q=type%3DIMAGE&with_tag=false")
        .send()
        .await
        .expect(200)
        .json();
    let got: Vec<(&str, &str)> = latest
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["repository_name"].as_str().unwrap(), a["digest"].as_str().unwrap()))
        .collect();
    assert_eq!(got, vec![("acc/other", newer.as_str()), ("acc/app", index.as_str())]);
    admin.get("/api/v2.0/projects/acc/artifacts?latest_in_repository=true").send().await.expect(400);
    admin.delete(&format!("/api/v2.0/projects/acc/repositories/other/artifacts/{newer}")).send().await.expect(200);
    // The same by id; a member of nothing sees nothing.
    let pid = {
        let p: Value = admin.get("/api/v2.0/projects/acc").send().await.expect(200).json();
        p["project_id"].as_i64().unwrap()
    };
    admin.get(&format!("/api/v2.0/projects/{pid}/artifacts")).send().await.expect(200);
    app.create_user("nobody", "Passw0rd1").await;
    app.user("nobody", "Passw0rd1").get("/api/v2.0/projects/acc/artifacts").send().await.expect(403);
    // Deleted artifacts leave it.
    admin.delete("/api/v2.0/projects/acc/repositories/other").send().await.expect(200);
    let listed = admin.get("/api/v2.0/projects/acc/artifacts").send().await.expect(200);
    assert_eq!(listed.header("x-total-count"), "1");
}

/// Schema 6 lists what a schema-5 store holds in its projects' lists, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migrating_to_schema_6_lists_project_artifacts() {
    let app = TestApp::local().await;
    app.create_project("older", false).await;
    app.push_image("older/a", "v1").await;
    app.push_image("older/b", "v1").await;
    // As a schema-5 store holds it: no project list, no counts.
    let meta = &app.ctx().meta;
    for prefix in ["N#project-artifacts#older", "N#project-hidden#older"] {
        for e in meta.query_all(berth::meta::Query::table(prefix, "")).await.unwrap() {
            meta.delete(&e.pk, &e.sk, berth::meta::Condition::Always).await.unwrap();
        }
    }
    for e in meta.query_all(berth::meta::Query::table("P#older", "PN#")).await.unwrap() {
        meta.delete(&e.pk, &e.sk, berth::meta::Condition::Always).await.unwrap();
    }
    let version = berth::meta::Item::new("SYS", "SCHEMA").with("version", 5);
    meta.put(version, berth::meta::Condition::Always).await.unwrap();
    let before = app.admin().get("/api/v2.0/projects/older/artifacts").send().await.expect(200);
    assert_eq!(before.header("x-total-count"), "0");
    for _ in 0..2 {
        let report = app.ctx().migrate_local().await.unwrap();
        let version = berth::meta::Item::new("SYS", "SCHEMA").with("version", 5);
        meta.put(version, berth::meta::Condition::Always).await.unwrap();
        assert!(report.steps.iter().any(|s| s.starts_with("schema 6: listed")), "{:?}", report.steps);
    }
    let after = app.admin().get("/api/v2.0/projects/older/artifacts").send().await.expect(200);
    assert_eq!(after.header("x-total-count"), "2", "run twice, counted once");
    assert_eq!(after.json::<Value>().as_array().unwrap().len(), 2);
}

/// Schema 6 also hides what earlier builds stored without the rules: the
/// children of stored indexes, referrers and tag-scheme signatures.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migrating_to_schema_6_hides_stored_children_and_accessories() {
    let app = TestApp::local().await;
    let [_, _, index, _, _] = push_all(&app).await;
    // As an earlier build stored them: nothing hidden, nothing linked.
    let meta = &app.ctx().meta;
    let all = |pk: &str, prefix: &str| berth::meta::Query::table(pk, prefix);
    for item in meta.query_all(all("R#acc/app", "A#")).await.unwrap() {
        let attrs =
            berth::meta::Attrs::from_iter([("parents".to_owned(), json!(0)), ("accessory_of".to_owned(), Value::Null)]);
        meta.transact(vec![berth::meta::Write::Set {
            pk: item.pk,
            sk: item.sk,
            attrs,
            cond: berth::meta::Condition::Exists,
        }])
        .await
        .unwrap();
    }
    for (pk, prefix) in [("R#acc/app", "N#"), ("P#acc", "PN#")] {
        for item in meta.query_all(all(pk, prefix)).await.unwrap() {
            meta.put(berth::meta::Item::new(item.pk, item.sk), berth::meta::Condition::Always).await.unwrap();
        }
    }
    for (pk, prefix) in
        [("R#acc/app", "PA#"), ("R#acc/app", "AC#"), ("N#hidden#acc/app", ""), ("N#project-hidden#acc", "")]
    {
        for item in meta.query_all(all(pk, prefix)).await.unwrap() {
            meta.delete(&item.pk, &item.sk, berth::meta::Condition::Always).await.unwrap();
        }
    }
    let before = app.admin().get(ARTIFACTS).send().await.expect(200);
    assert_eq!(before.header("x-total-count"), "5");
    meta.put(berth::meta::Item::new("SYS", "SCHEMA").with("version", 5), berth::meta::Condition::Always).await.unwrap();
    let report = app.ctx().migrate_local().await.unwrap();
    assert!(report.steps.iter().any(|s| s.contains("accessories and indexes looked at")), "{:?}", report.steps);
    let after = app.admin().get(ARTIFACTS).send().await.expect(200);
    assert_eq!(after.header("x-total-count"), "1");
    assert_eq!(digests(&after.json()), vec![index.clone()]);
    let project = app.admin().get("/api/v2.0/projects/acc/artifacts").send().await.expect(200);
    assert_eq!(project.header("x-total-count"), "1");
    let acc: Value = app.admin().get(&format!("{ARTIFACTS}/multi/accessories")).send().await.expect(200).json();
    assert_eq!(acc.as_array().unwrap().len(), 2, "{acc}");
}

//! Tag immutability (F7) through the in-process app: the rules API with
//! Harbor's selectors, limits and duplicates; the status in artifact
//! listings; and the refusal (412, Harbor's message) on every path that
//! could move or delete a protected tag: a `/v2` manifest PUT (even of the
//! same digest), a `/v2` DELETE by tag or digest, the API's tag, artifact
//! and repository deletes, and a copy onto the tag. A disabled rule
//! protects nothing; a deleted project takes its rules with it.

use serde_json::{Value, json};

use crate::support::app::TestApp;

fn rule(repo_decoration: &str, repo: &str, tag_decoration: &str, tag: &str) -> Value {
    json!({"action": "immutable", "template": "immutable_template", "priority": 0,
        "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": repo_decoration, "pattern": repo}]},
        "tag_selectors": [{"kind": "doublestar", "decoration": tag_decoration, "pattern": tag}]})
}

async fn tags_status(app: &TestApp, reference: &str) -> Vec<(String, bool)> {
    let path = format!("/api/v2.0/projects/frozen/repositories/app/artifacts/{reference}?with_immutable_status=true");
    let artifact: Value = app.admin().get(&path).send().await.expect(200).json();
    let mut tags: Vec<(String, bool)> = artifact["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap().to_owned(), t["immutable"].as_bool().unwrap()))
        .collect();
    tags.sort();
    tags
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn immutable_tags_cannot_be_moved_or_deleted_by_any_path() {
    let app = TestApp::local().await;
    let pid = app.create_project("frozen", false).await;
    let digest = app.push_image("frozen/app", "v1").await;
    let manifest = app.admin().get("/v2/frozen/app/manifests/v1").send().await.expect(200).text();
    app.put_manifest("frozen/app", "latest", manifest.as_bytes()).await;
    let other = app.push_image("frozen/app", "other").await;
    let other_manifest = app.admin().get("/v2/frozen/app/manifests/other").send().await.expect(200).text();
    app.push_image("frozen/side", "v1").await;

    let rules = format!("/api/v2.0/projects/{pid}/immutabletagrules");
    let id = app.admin().post(&rules).json(&rule("repoMatches", "app", "matches", "v*")).send().await.expect(201);
    let id = id.location_id();
    // The same selection again is a conflict; a bad selector is refused.
    app.admin().post(&rules).json(&rule("repoMatches", "app", "matches", "v*")).send().await.expect(409);
    app.admin().post(&rules).json(&rule("matches", "app", "repoMatches", "v*")).send().await.expect(400);
    app.admin().post(&rules).json(&rule("repoMatches", "{app", "matches", "v*")).send().await.expect(400);
    let listed: Vec<Value> = app.admin().get(&rules).send().await.expect(200).json();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], id);
    assert_eq!(listed[0]["scope_selectors"]["repository"][0]["pattern"], "app");

    // Only v1 of frozen/app is protected, and shown so when asked.
    assert_eq!(tags_status(&app, "v1").await, [("latest".to_owned(), false), ("v1".to_owned(), true)]);
    let plain: Value =
        app.admin().get("/api/v2.0/projects/frozen/repositories/app/artifacts/v1").send().await.expect(200).json();
    assert!(plain["tags"].as_array().unwrap().iter().all(|t| t["immutable"] == false));

    // /v2: no push onto it (not even of its own digest), no delete of it.
    for body in [&other_manifest, &manifest] {
        let r = app
            .admin()
            .put("/v2/frozen/app/manifests/v1")
            .header("content-type", berth::oci::media::OCI_MANIFEST)
            .body(body.clone().into_bytes())
            .send()
            .await
            .expect(412);
        let err: Value = r.json();
        assert_eq!(err["errors"][0]["code"], "PRECONDITION");
        assert_eq!(err["errors"][0]["message"], "Failed to process request due to 'app:v1' configured as immutable.");
    }
    app.admin().delete("/v2/frozen/app/manifests/v1").send().await.expect(412);
    app.admin().delete(&format!("/v2/frozen/app/manifests/{digest}")).send().await.expect(412);
    // Other tags, and the same tag in another repository, are free.
    app.put_manifest("frozen/app", "latest", other_manifest.as_bytes()).await;
    let side = app.admin().get("/v2/frozen/side/manifests/v1").send().await.expect(200).text();
    app.put_manifest("frozen/side", "v1", side.as_bytes()).await;

    // The API: tag, artifact and repository deletes; a copy onto the tag.
    let art = "/api/v2.0/projects/frozen/repositories/app/artifacts";
    let r = app.admin().delete(&format!("{art}/v1/tags/v1")).send().await.expect(412);
    assert!(r.text().contains("the tag v1 configured as immutable, cannot be deleted"), "{}", r.text());
    app.admin().delete(&format!("{art}/{digest}")).send().await.expect(412);
    let r = app.admin().delete("/api/v2.0/projects/frozen/repositories/app").send().await.expect(412);
    assert!(r.text().contains("configured as immutable, cannot be deleted"));
    let r = app.admin().post(&format!("{art}?from=frozen/side:v1")).send().await.expect(412);
    assert!(r.text().contains("the tag v1 configured as immutable, cannot be updated"), "{}", r.text());
    // Nothing was removed on the way.
    assert_eq!(app.admin().get("/v2/frozen/app/manifests/v1").send().await.expect(200).text(), manifest);
    app.admin().get(&format!("/v2/frozen/app/manifests/{other}")).send().await.expect(200);

    // Disabled, the rule protects nothing: the tag moves and goes.
    let mut changed = listed[0].clone();
    changed["disabled"] = json!(true);
    app.admin().put(&format!("{rules}/{id}")).json(&changed).send().await.expect(200);
    assert_eq!(tags_status(&app, "v1").await, [("v1".to_owned(), false)]);
    app.put_manifest("frozen/app", "v1", other_manifest.as_bytes()).await;
    app.admin().delete("/v2/frozen/app/manifests/v1").send().await.expect(202);
    // A copy by digest brings the source's tags along, as Harbor's does.
    let side_digest = berth::oci::Digest::sha256_of(side.as_bytes());
    app.admin().post(&format!("{art}?from=frozen/side@{side_digest}")).send().await.expect(201);
    assert_eq!(app.admin().get("/v2/frozen/app/manifests/v1").send().await.expect(200).text(), side);

    // Excluding rules, and the limit of 15.
    changed["disabled"] = json!(false);
    app.admin().put(&format!("{rules}/{id}")).json(&changed).send().await.expect(200);
    app.admin().post(&rules).json(&rule("repoExcludes", "{app,side}", "matches", "**")).send().await.expect(201);
    app.push_image("frozen/third", "anything").await;
    let r = app.admin().delete("/v2/frozen/third/manifests/anything").send().await.expect(412);
    assert!(r.text().contains("'third:anything'") || r.text().contains("configured as immutable"));
    app.admin().delete("/v2/frozen/side/manifests/v1").send().await.expect(202);
    for n in 2..15 {
        app.admin().post(&rules).json(&rule("repoMatches", &format!("r{n}"), "matches", "**")).send().await.expect(201);
    }
    app.admin().post(&rules).json(&rule("repoMatches", "r15", "matches", "**")).send().await.expect(400);
    let page: Vec<Value> = app.admin().get(&format!("{rules}?page=2&page_size=10")).send().await.expect(200).json();
    assert_eq!(page.len(), 5);
    app.admin().put(&format!("{rules}/12345")).json(&rule("repoMatches", "x", "matches", "y")).send().await.expect(404);
    app.admin().delete(&format!("{rules}/12345")).send().await.expect(404);

    // Who may: project administrators and maintainers, not developers.
    app.create_user("dev", "Passw0rd1").await;
    app.add_member(pid, "dev", 2).await;
    let dev = app.user("dev", "Passw0rd1");
    dev.get(&rules).send().await.expect(403);
    dev.post(&rules).json(&rule("repoMatches", "dev", "matches", "**")).send().await.expect(403);
    dev.delete(&format!("{rules}/{id}")).send().await.expect(403);

    // A deleted project takes its rules (and webhook policies) along.
    app.admin().delete(&format!("{rules}/{id}")).send().await.expect(200);
    let listed: Vec<Value> = app.admin().get(&format!("{rules}?page_size=50")).send().await.expect(200).json();
    assert_eq!(listed.len(), 14);
    for r in listed {
        app.admin().delete(&format!("{rules}/{}", r["id"])).send().await.expect(200);
    }
    let hook = json!({"name": "h", "enabled": true, "event_types": ["PUSH_ARTIFACT"],
        "targets": [{"type": "http", "address": "http://127.0.0.1:9/x"}]});
    app.admin().post(&format!("/api/v2.0/projects/{pid}/webhook/policies")).json(&hook).send().await.expect(201);
    app.admin().post(&rules).json(&rule("repoMatches", "**", "matches", "**")).send().await.expect(201);
    for repo in ["app", "side", "third"] {
        app.admin().delete(&format!("/api/v2.0/projects/frozen/repositories/{repo}")).send().await;
    }
    // The rule protects everything: the repositories stay, so does the project.
    app.admin().delete(&format!("/api/v2.0/projects/{pid}")).send().await.expect(412);
    let all: Vec<Value> = app.admin().get(&rules).send().await.expect(200).json();
    app.admin().delete(&format!("{rules}/{}", all[0]["id"])).send().await.expect(200);
    for repo in ["app", "side", "third"] {
        let r = app.admin().delete(&format!("/api/v2.0/projects/frozen/repositories/{repo}")).send().await;
        assert!(matches!(r.code(), 200 | 404), "{repo}: {}", r.text());
    }
    app.admin().post(&rules).json(&rule("repoMatches", "**", "matches", "**")).send().await.expect(201);
    app.admin().delete(&format!("/api/v2.0/projects/{pid}")).send().await.expect(200);
    let again = app.create_project("frozen", false).await;
    let rules = format!("/api/v2.0/projects/{again}/immutabletagrules");
    let listed: Vec<Value> = app.admin().get(&rules).send().await.expect(200).json();
    assert!(listed.is_empty(), "{listed:?}");
    let hooks: Vec<Value> =
        app.admin().get(&format!("/api/v2.0/projects/{again}/webhook/policies")).send().await.expect(200).json();
    assert!(hooks.is_empty(), "{hooks:?}");
}

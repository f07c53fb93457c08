//! Labels (global and project), on artifacts, and CVE allowlists, through
//! `/api/v2.0` as Harbor clients use them.

use serde_json::{Value, json};

use crate::support::app::TestApp;

fn ids(list: &Value) -> Vec<i64> {
    list.as_array().unwrap().iter().map(|l| l["id"].as_i64().unwrap()).collect()
}

async fn labels_on_artifacts(app: &TestApp) {
    let pid = app.create_project("lab", false).await;
    let other = app.create_project("other", false).await;
    app.create_user("dev", "Passw0rd1").await;
    app.add_member(pid, "dev", 2).await;
    app.create_user("guest", "Passw0rd1").await;
    app.add_member(pid, "guest", 3).await;
    let (dev, guest) = (app.user("dev", "Passw0rd1"), app.user("guest", "Passw0rd1"));

    // Global labels are the administrator's to make, everyone's to read.
    let body = json!({"name": "env:prod", "description": "production", "color": "#FF0000", "scope": "g"});
    dev.post("/api/v2.0/labels").json(&body).send().await.expect(403);
    let g = app.admin().post("/api/v2.0/labels").json(&body).send().await.expect(201).location_id();
    app.admin().post("/api/v2.0/labels").json(&body).send().await.expect(409);
    let got: Value = guest.get(&format!("/api/v2.0/labels/{g}")).send().await.expect(200).json();
    assert_eq!(
        (got["name"].as_str(), got["scope"].as_str(), got["project_id"].as_i64()),
        (Some("env:prod"), Some("g"), Some(0))
    );
    app.anonymous().get("/api/v2.0/labels?scope=g").send().await.expect(401);

    // A project's labels: its administrator (not a developer) makes them;
    // the same name may be used in another scope.
    let pbody = json!({"name": "env:prod", "scope": "p", "project_id": pid, "color": "#00FF00"});
    dev.post("/api/v2.0/labels").json(&pbody).send().await.expect(403);
    let p = app.admin().post("/api/v2.0/labels").json(&pbody).send().await.expect(201).location_id();
    let o = app
        .admin()
        .post("/api/v2.0/labels")
        .json(&json!({"name": "theirs", "scope": "p", "project_id": other}))
        .send()
        .await
        .expect(201)
        .location_id();
    let listed: Value =
        guest.get(&format!("/api/v2.0/labels?scope=p&project_id={pid}")).send().await.expect(200).json();
    assert_eq!(ids(&listed), vec![p]);
    guest.get(&format!("/api/v2.0/labels?scope=p&project_id={other}")).send().await.expect(403);
    app.admin().get("/api/v2.0/labels?scope=p").send().await.expect(400);
    let globals = app.admin().get("/api/v2.0/labels?scope=g&name=prod").send().await.expect(200);
    assert_eq!(globals.header("x-total-count"), "1");
    assert_eq!(ids(&globals.json()), vec![g]);

    // On artifacts: a developer puts them on, a guest may not; another
    // project's label is refused.
    app.push_image("lab/app", "v1").await;
    app.push_image("lab/app", "v2").await;
    let art = "/api/v2.0/projects/lab/repositories/app/artifacts";
    dev.post(&format!("{art}/v1/labels")).json(&json!({"id": g})).send().await.expect(200);
    dev.post(&format!("{art}/v1/labels")).json(&json!({"id": p})).send().await.expect(200);
    dev.post(&format!("{art}/v1/labels")).json(&json!({"id": g})).send().await.expect(409);
    guest.post(&format!("{art}/v2/labels")).json(&json!({"id": g})).send().await.expect(403);
    dev.post(&format!("{art}/v2/labels")).json(&json!({"id": o})).send().await.expect(400);
    dev.post(&format!("{art}/v2/labels")).json(&json!({"id": 999_999})).send().await.expect(404);
    let one: Value = guest.get(&format!("{art}/v1?with_label=true")).send().await.expect(200).json();
    assert_eq!(ids(&one["labels"]), vec![g, p]);
    assert_eq!(one["labels"][0]["name"], "env:prod");
    let without: Value = guest.get(&format!("{art}/v1")).send().await.expect(200).json();
    assert_eq!(without["labels"], json!([]));
    // Filtered by label: every label asked for.
    let by: Value = guest.get(&format!("{art}?q=labels%3D({g})&with_label=true")).send().await.expect(200).json();
    assert_eq!(by.as_array().unwrap().len(), 1);
    assert_eq!(by[0]["tags"][0]["name"], "v1");
    let both: Value = guest.get(&format!("{art}?q=labels%3D({g}%20{p})")).send().await.expect(200).json();
    assert_eq!(both.as_array().unwrap().len(), 1);
    let none: Value = guest.get(&format!("{art}?q=labels%3D({g}%20{o})")).send().await.expect(200).json();
    assert!(none.as_array().unwrap().is_empty());

    // Off again; a label not on it is 404.
    guest.delete(&format!("{art}/v1/labels/{p}")).send().await.expect(403);
    dev.delete(&format!("{art}/v1/labels/{p}")).send().await.expect(200);
    dev.delete(&format!("{art}/v1/labels/{p}")).send().await.expect(404);

    // A renamed label shows its new name; a deleted one leaves every
    // artifact.
    let rename = json!({"name": "stage", "description": "renamed"});
    dev.put(&format!("/api/v2.0/labels/{g}")).json(&rename).send().await.expect(403);
    app.admin().put(&format!("/api/v2.0/labels/{g}")).json(&rename).send().await.expect(200);
    let one: Value = guest.get(&format!("{art}/v1?with_label=true")).send().await.expect(200).json();
    assert_eq!(one["labels"][0]["name"], "stage");
    assert_eq!(one["labels"][0]["color"], "#FF0000", "a field left out keeps its value");
    app.admin().delete(&format!("/api/v2.0/labels/{g}")).send().await.expect(200);
    app.admin().get(&format!("/api/v2.0/labels/{g}")).send().await.expect(404);
    let one: Value = guest.get(&format!("{art}/v1?with_label=true")).send().await.expect(200).json();
    assert_eq!(one["labels"], json!([]));

    // An artifact deleted and pushed again starts without labels.
    dev.post(&format!("{art}/v2/labels")).json(&json!({"id": p})).send().await.expect(200);
    let digest = app.push_image("lab/app", "v2").await;
    app.admin().delete(&format!("{art}/{digest}")).send().await.expect(200);
    app.push_image("lab/app", "v2").await;
    let again: Value = guest.get(&format!("{art}/v2?with_label=true")).send().await.expect(200).json();
    assert_eq!(again["labels"], json!([]));
    dev.post(&format!("{art}/v2/labels")).json(&json!({"id": p})).send().await.expect(200);

    // A project's labels go with it.
    app.admin().delete("/api/v2.0/projects/lab/repositories/app").send().await.expect(200);
    app.admin().delete(&format!("/api/v2.0/projects/{pid}")).send().await.expect(200);
    app.admin().get(&format!("/api/v2.0/labels/{p}")).send().await.expect(404);
    app.admin().get(&format!("/api/v2.0/labels/{o}")).send().await.expect(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn labels_on_artifacts_local() {
    labels_on_artifacts(&TestApp::local().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn labels_on_artifacts_aws() {
    let Some(app) = TestApp::aws("berth-lbl-").await else { return };
    labels_on_artifacts(&app).await;
}

/// The system allowlist (every signed-in user reads it, administrators
/// replace it) and a project's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cve_allowlists() {
    let app = TestApp::local().await;
    app.create_user("u", "Passw0rd1").await;
    let u = app.user("u", "Passw0rd1");
    let path = "/api/v2.0/system/CVEAllowlist";
    let empty: Value = u.get(path).send().await.expect(200).json();
    assert_eq!(
        (empty["items"].clone(), empty["expires_at"].clone(), empty["project_id"].clone()),
        (json!([]), Value::Null, json!(0))
    );
    let list = json!({"items": [{"cve_id": "CVE-2019-12310"}], "expires_at": null});
    u.put(path).json(&list).send().await.expect(403);
    app.anonymous().get(path).send().await.expect(401);
    app.admin().put(path).json(&list).send().await.expect(200);
    let got: Value = u.get(path).send().await.expect(200).json();
    assert_eq!(got["items"], json!([{"cve_id": "CVE-2019-12310"}]));
    assert_eq!(got["expires_at"], Value::Null);
    app.admin()
        .put(path)
        .json(&json!({"items": [{"cve_id": "CVE-1"}], "expires_at": 1_900_000_000}))
        .send()
        .await
        .expect(200);
    let got: Value = u.get(path).send().await.expect(200).json();
    assert_eq!(got["expires_at"], 1_900_000_000);
    let twice = json!({"items": [{"cve_id": "CVE-1"}, {"cve_id": "CVE-1"}]});
    app.admin().put(path).json(&twice).send().await.expect(400);

    // A project's own list, set with the project.
    let body =
        json!({"project_name": "cves", "cve_allowlist": {"items": [{"cve_id": "CVE-2"}], "expires_at": 1_800_000_000}});
    app.admin().post("/api/v2.0/projects").json(&body).send().await.expect(201);
    let p: Value = app.admin().get("/api/v2.0/projects/cves").send().await.expect(200).json();
    assert_eq!(p["cve_allowlist"]["items"], json!([{"cve_id": "CVE-2"}]));
    assert_eq!(p["cve_allowlist"]["expires_at"], 1_800_000_000);
    let update = json!({"cve_allowlist": {"items": [{"cve_id": "CVE-3"}, {"cve_id": "CVE-4"}]}});
    app.admin().put("/api/v2.0/projects/cves").json(&update).send().await.expect(200);
    let p: Value = app.admin().get("/api/v2.0/projects/cves").send().await.expect(200).json();
    assert_eq!(p["cve_allowlist"]["items"], json!([{"cve_id": "CVE-3"}, {"cve_id": "CVE-4"}]));
    assert_eq!(p["cve_allowlist"]["expires_at"], Value::Null);
    app.admin()
        .put("/api/v2.0/projects/cves")
        .json(&json!({"cve_allowlist": {"items": [{"cve_id": ""}]}}))
        .send()
        .await
        .expect(400);
}

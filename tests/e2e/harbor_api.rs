//! The Harbor-compatible management API (`/api/v2.0`): projects and the
//! system endpoints, driven in process for the exact semantics, and by
//! harborapi, a Harbor client written by others that validates every
//! response against its models of Harbor's API (over a loopback port).

use std::path::PathBuf;
use std::process::Command;

use http::Method;
use serde_json::Value;

use crate::support::app::{ADMIN_PASSWORD, TestApp};

/// The Python with harborapi installed (`.ci/run` makes the venv).
fn harbor_python() -> PathBuf {
    crate::support::cli::installed_tool("BERTH_TEST_HARBOR_PYTHON", "harbor-venv/bin/python")
}

/// Runs harbor_client.py against the app, served on a loopback port.
async fn harbor_client_script(app: &TestApp) {
    let python = harbor_python();
    assert!(python.exists(), "harborapi is missing: {} (run .ci/run)", python.display());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/e2e/harbor_client.py");
    let project = berth::testkit::unique("harbor-");
    let url = format!("http://{}", app.serve().await);
    // The script blocks this thread; the runtime's other threads serve it.
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python).args([script, &url, "admin", ADMIN_PASSWORD, &project]).output().unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "harborapi run failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    for step in [
        "systeminfo",
        "current user admin",
        "health healthy",
        "created",
        "conflict ok",
        "updated",
        "repositories deleted",
        "accounts done",
        "deleted",
        "unauthorized ok",
    ] {
        assert!(stdout.contains(step), "step {step} missing:\n{stdout}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn harbor_client_local() {
    let app = TestApp::local().await;
    harbor_client_script(&app).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn harbor_client_aws() {
    let Some(app) = TestApp::aws("berth-hc-").await else { return };
    harbor_client_script(&app).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn projects_api_semantics() {
    let app = TestApp::local().await;
    let admin = &app.admin();
    let anon = &app.anonymous();
    let api = |path: &str| format!("/api/v2.0{path}");
    let create = |body: &'static str| async move {
        admin.post(&api("/projects")).header("content-type", "application/json").body(body).send().await
    };
    let create_owned = |body: String| async move {
        admin.post(&api("/projects")).header("content-type", "application/json").body(body).send().await
    };

    // Create: 201 with a Location by id, or by name when asked.
    let r = create(r#"{"project_name":"alpha","public":false,"storage_limit":1048576}"#).await;
    assert_eq!(r.code(), 201);
    let location = r.header("location").to_owned();
    assert!(
        location.starts_with("/api/v2.0/projects/")
            && location.trim_start_matches("/api/v2.0/projects/").parse::<i64>().is_ok(),
        "{location}"
    );
    let r = admin
        .post(&api("/projects"))
        .header("content-type", "application/json")
        .header("x-resource-name-in-location", "true")
        .body(r#"{"project_name":"beta","metadata":{"public":"true"}}"#)
        .send()
        .await;
    assert_eq!(r.header("location"), "/api/v2.0/projects/beta");
    for i in 0..12 {
        assert_eq!(create_owned(format!(r#"{{"project_name":"p{i:02}"}}"#)).await.code(), 201);
    }

    // Bad input and conflicts, in Harbor's error body.
    assert_eq!(create(r#"{"project_name":"alpha"}"#).await.status_and_code(), (409, "CONFLICT".to_owned()));
    assert_eq!(create(r#"{"project_name":"Bad Name"}"#).await.status_and_code(), (400, "BAD_REQUEST".to_owned()));
    assert_eq!(create(r#"{"project_name":"m","metadata":{"auto_scan":"maybe"}}"#).await.status_and_code().0, 400);
    assert_eq!(create(r#"{"project_name":"s","storage_limit":0}"#).await.status_and_code().0, 400);
    assert_eq!(create("not json").await.status_and_code().0, 400);

    // Reading by name or id; X-Is-Resource-Name forces a name.
    let alpha: Value = admin.get(&api("/projects/alpha")).send().await.json();
    assert_eq!((alpha["name"].as_str(), alpha["metadata"]["public"].as_str()), (Some("alpha"), Some("false")));
    let id = alpha["project_id"].as_i64().unwrap();
    let by_id: Value = admin.get(&api(&format!("/projects/{id}"))).send().await.json();
    assert_eq!(by_id["name"], "alpha");
    assert_eq!(create(r#"{"project_name":"42"}"#).await.code(), 201);
    let named: Value = admin.get(&api("/projects/42")).header("x-is-resource-name", "true").send().await.json();
    assert_eq!(named["name"], "42");
    assert_eq!(admin.get(&api("/projects/nothing")).send().await.status_and_code(), (404, "NOT_FOUND".to_owned()));

    // HEAD existence check.
    assert_eq!(admin.head(&api("/projects?project_name=alpha")).send().await.code(), 200);
    assert_eq!(admin.head(&api("/projects?project_name=nothing")).send().await.code(), 404);

    // Paging: X-Total-Count and Link.
    let page = admin.get(&api("/projects?page=2&page_size=5")).send().await;
    let total: usize = page.header("x-total-count").parse().unwrap();
    assert_eq!(total, 16, "library, alpha, beta, p00..p11, 42");
    let link = page.header("link").to_owned();
    assert!(
        link.contains("page=1&page_size=5>; rel=\"prev\"") && link.contains("page=3&page_size=5&cursor="),
        "{link}"
    );
    let items: Vec<Value> = page.json();
    assert_eq!(items.len(), 5);
    let fuzzy: Vec<Value> = admin.get(&api("/projects?q=name%3D~p0")).send().await.json();
    assert_eq!(fuzzy.len(), 10);
    assert_eq!(admin.get(&api("/projects?page_size=1000")).send().await.status_and_code().0, 400);

    // Anonymous callers see public projects only, and cannot change any.
    let listed: Vec<Value> = anon.get(&api("/projects?page_size=100")).send().await.json();
    let names: Vec<&str> = listed.iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(names, ["beta", "library"]);
    assert_eq!(anon.get(&api("/projects/alpha")).send().await.status_and_code().0, 401);
    assert_eq!(anon.get(&api("/projects/beta")).send().await.code(), 200);
    let r = anon
        .post(&api("/projects"))
        .header("content-type", "application/json")
        .body(r#"{"project_name":"x"}"#)
        .send()
        .await;
    assert_eq!(r.status_and_code(), (401, "UNAUTHORIZED".to_owned()));
    let r = app.user("admin", "wrong").get(&api("/projects")).send().await;
    assert_eq!(r.status_and_code().0, 401);

    // Update: public switch and metadata.
    let r = admin
        .put(&api("/projects/alpha"))
        .header("content-type", "application/json")
        .body(r#"{"metadata":{"public":"true","severity":"high"}}"#)
        .send()
        .await;
    assert_eq!(r.code(), 200);
    let alpha: Value = anon.get(&api("/projects/alpha")).send().await.json();
    assert_eq!(
        (alpha["metadata"]["public"].as_str(), alpha["metadata"]["severity"].as_str()),
        (Some("true"), Some("high"))
    );

    // A project with repositories cannot be deleted (412); an empty one
    // can. (The push requires 201 for each blob and the manifest.)
    app.push_image("alpha/app", "v1").await;
    let alpha: Value = admin.get(&api("/projects/alpha")).send().await.json();
    assert_eq!(alpha["repo_count"], 1);
    assert_eq!(admin.delete(&api("/projects/alpha")).send().await.status_and_code(), (412, "PRECONDITION".to_owned()));
    assert_eq!(admin.delete(&api("/projects/p00")).send().await.code(), 200);
    assert_eq!(admin.get(&api("/projects/p00")).send().await.code(), 404);

    // Pushing into a project that does not exist is refused on /v2.
    let r = admin.request(Method::POST, "/v2/p00/app/blobs/uploads/").send().await;
    assert_eq!(r.code(), 404);

    // System endpoints.
    assert_eq!(anon.get(&api("/ping")).send().await.text(), "Pong");
    let health: Value = anon.get(&api("/health")).send().await.json();
    assert_eq!(health["status"], "healthy");
    let me: Value = admin.get(&api("/users/current")).send().await.json();
    assert_eq!((me["username"].as_str(), me["sysadmin_flag"].as_bool()), (Some("admin"), Some(true)));
    assert_eq!(anon.get(&api("/users/current")).send().await.status_and_code().0, 401);
    let info: Value = anon.get(&api("/systeminfo")).send().await.json();
    assert_eq!(info["registry_storage_provider_name"], "filesystem");
}

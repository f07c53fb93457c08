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
        "labels",
        "accessories 1",
        "additions sha256:",
        "system ",
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

/// What Harbor clients send that berth does not know is ignored, as Harbor
/// ignores it; a known key with a wrong value is still a clear 400, and an
/// unknown path a Harbor 404.
#[tokio::test(flavor = "multi_thread")]
async fn harbor_lenient_inputs() {
    let app = TestApp::local().await;
    let admin = app.admin();

    // The Terraform provider (3.12+) always sends this metadata key.
    let body = serde_json::json!({"project_name": "tf", "public": false,
        "metadata": {"proxy_cache_local_on_not_found": "false", "auto_scan": "true"}, "unknown_field": 1});
    admin.post("/api/v2.0/projects").json(&body).send().await.expect(201);
    let tf: Value = admin.get("/api/v2.0/projects/tf").header("x-is-resource-name", "true").send().await.json();
    assert_eq!(tf["metadata"]["auto_scan"], "true");
    assert_eq!(tf["metadata"]["proxy_cache_local_on_not_found"], "false", "a proxy-cache key Harbor keeps too");
    let bad = serde_json::json!({"project_name": "tf2", "metadata": {"auto_scan": "sometimes"}});
    assert_eq!(admin.post("/api/v2.0/projects").json(&bad).send().await.status_and_code(), (400, "BAD_REQUEST".into()));

    // `harbor_config_system` always sends these.
    let config = serde_json::json!({"scanner_skip_update_pulltime": false, "scan_all_policy": {"type": "daily"},
        "robot_token_duration": 7});
    admin.put("/api/v2.0/configurations").json(&config).send().await.expect(200);
    let shown: Value = admin.get("/api/v2.0/configurations").send().await.json();
    assert_eq!(shown["robot_token_duration"]["value"], 7);
    assert!(shown.get("scan_all_policy").is_none());
    let wrong = serde_json::json!({"robot_token_duration": "a week"});
    let r = admin.put("/api/v2.0/configurations").json(&wrong).send().await;
    assert_eq!(r.status_and_code(), (400, "BAD_REQUEST".into()));
    assert!(r.text().contains("robot_token_duration"), "the error names the key: {}", r.text());

    // Unknown paths and methods answer in Harbor's error body.
    let r = admin.get("/api/v2.0/no/such/api").send().await;
    assert_eq!(r.status_and_code(), (404, "NOT_FOUND".into()));
    let r = app.anonymous().get("/api/v2.0/nothing").send().await;
    assert_eq!(r.status_and_code(), (404, "NOT_FOUND".into()));
    let r = admin.request(Method::PATCH, "/api/v2.0/projects").send().await;
    assert_eq!(r.status_and_code(), (405, "METHOD_NOT_ALLOWED".into()));
    let version: Value = app.get("/api/version").send().await.success().json();
    assert_eq!(version, serde_json::json!({"version": "v2.0"}));
}

/// Paged listings: `X-Total-Count` from the counters, a `Link` whose next
/// page carries its position, and the same page when reached by number.
#[tokio::test(flavor = "multi_thread")]
async fn listings_page_by_number_and_by_link() {
    let app = TestApp::local().await;
    for i in 0..7 {
        app.create_user(&format!("pager{i}"), "Passw0rd1").await;
    }
    let admin = app.admin();
    let page2 = admin.get("/api/v2.0/users?page=2&page_size=3").send().await.success();
    assert_eq!(page2.header("x-total-count"), "8", "admin and 7 users");
    let names = |r: &crate::support::app::TestResponse| -> Vec<String> {
        r.json::<Vec<Value>>().iter().map(|u| u["username"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(names(&page2), ["pager2", "pager3", "pager4"]);
    let link = page2.header("link").to_owned();
    let next = link
        .split(" , ")
        .find(|l| l.ends_with("rel=\"next\""))
        .and_then(|l| l.strip_prefix('<'))
        .and_then(|l| l.split_once('>'))
        .map(|(url, _)| url.to_owned())
        .unwrap_or_else(|| panic!("no next link: {link}"));
    assert!(next.contains("page=3") && next.contains("cursor="), "{next}");
    let by_link = admin.get(&next).send().await.success();
    let by_number = admin.get("/api/v2.0/users?page=3&page_size=3").send().await.success();
    assert_eq!(names(&by_link), names(&by_number));
    assert_eq!(names(&by_link), ["pager5", "pager6"]);
    assert!(by_link.headers.get("link").is_none_or(|l| !l.to_str().unwrap().contains("next")), "the last page");
    let fuzzy = admin.get("/api/v2.0/users?q=username%3D~PAGER&page_size=100").send().await.success();
    assert_eq!(fuzzy.header("x-total-count"), "7", "the total of a filtered list is counted");
    let bad = admin.get("/api/v2.0/users?cursor=!!!").send().await;
    assert_eq!(bad.code(), 400);
}

/// What Harbor's own API tests (tests/apitests/python) depend on beyond the
/// swagger: how Python's swagger client spells booleans, which user fields
/// Harbor leaves out, its refusal text, and permissions below a project.
#[tokio::test(flavor = "multi_thread")]
async fn harbor_python_client_spellings() {
    let app = TestApp::local().await;
    let admin = app.admin();

    // A user created without a comment has no comment key (Harbor's
    // omitempty), and its own permissions list works below the project.
    let body = serde_json::json!({"username": "py", "email": "py@example.org", "realname": "Py",
        "password": "Passw0rdX"});
    admin.post("/api/v2.0/users").json(&body).send().await.expect(201);
    let py = app.user("py", "Passw0rdX");
    let me: Value = py.get("/api/v2.0/users/current").send().await.success().json();
    assert!(me.get("comment").is_none() && me.get("oidc_user_meta").is_none(), "{me}");
    assert_eq!((me["email"].as_str(), me["sysadmin_flag"].as_bool()), (Some("py@example.org"), Some(false)));

    // Private projects by public=False, the Python client's spelling.
    let hidden = serde_json::json!({"project_name": "hidden", "metadata": {"public": "false"}});
    admin.post("/api/v2.0/projects").json(&hidden).send().await.expect(201);
    let names = |v: Vec<Value>| -> Vec<String> { v.iter().map(|p| p["name"].as_str().unwrap().to_owned()).collect() };
    let private: Vec<Value> = admin.get("/api/v2.0/projects?public=False").send().await.success().json();
    let id = private[0]["project_id"].as_i64().unwrap();
    assert_eq!(names(private), ["hidden"]);
    let public: Vec<Value> = admin.get("/api/v2.0/projects?public=True").send().await.success().json();
    assert_eq!(names(public), ["library"]);

    // Permissions: a guest of `hidden` may pull its repositories, not push.
    let uid = me["user_id"].as_i64().unwrap();
    let member = serde_json::json!({"role_id": 3, "member_user": {"user_id": uid}});
    admin.post(&format!("/api/v2.0/projects/{id}/members")).json(&member).send().await.expect(201);
    let perms = async |q: &str| -> Vec<(String, String)> {
        let v: Vec<Value> = py.get(&format!("/api/v2.0/users/current/permissions?{q}")).send().await.success().json();
        v.iter()
            .map(|p| (p["resource"].as_str().unwrap().to_owned(), p["action"].as_str().unwrap().to_owned()))
            .collect()
    };
    let repo = perms(&format!("scope=/project/{id}/repository&relative=True")).await;
    assert!(repo.contains(&(".".to_owned(), "pull".to_owned())), "{repo:?}");
    assert!(!repo.iter().any(|(r, a)| r != "." || a == "push"), "{repo:?}");
    let project = perms(&format!("scope=/project/{id}&relative=true")).await;
    assert!(project.contains(&("repository".to_owned(), "pull".to_owned())), "{project:?}");
    let absolute = perms(&format!("scope=/project/{id}/repository")).await;
    assert!(absolute.contains(&(format!("/project/{id}/repository"), "pull".to_owned())), "{absolute:?}");
    assert!(absolute.iter().any(|(r, _)| r != &format!("/project/{id}/repository")), "the whole project: {absolute:?}");

    // Project creation restricted to administrators: Harbor's refusal text.
    let restrict = serde_json::json!({"project_creation_restriction": "adminonly"});
    admin.put("/api/v2.0/configurations").json(&restrict).send().await.expect(200);
    let r = py.post("/api/v2.0/projects").json(&serde_json::json!({"project_name": "mine"})).send().await.expect(403);
    let body: Value = r.json();
    assert_eq!(body["errors"][0]["message"], "Only system admin can create project");
}

/// `/projects/{p}/metadatas`: one key at a time, Harbor's keys and values,
/// `public` keeping the project's listings right.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn project_metadata_api() {
    let app = crate::support::app::TestApp::local().await;
    let pid = app.create_project("meta", false).await;
    let base = format!("/api/v2.0/projects/{pid}/metadatas");
    let all: serde_json::Value = app.admin().get(&format!("{base}/")).send().await.expect(200).json();
    assert_eq!(all, serde_json::json!({"public": "false"}));
    app.admin().post(&format!("{base}/")).json(&serde_json::json!({"auto_scan": "T"})).send().await.expect(200);
    app.admin().post(&base).json(&serde_json::json!({"severity": "HIGH"})).send().await.expect(200);
    let one: serde_json::Value = app.admin().get(&format!("{base}/auto_scan")).send().await.expect(200).json();
    assert_eq!(one, serde_json::json!({"auto_scan": "true"}));
    let sev: serde_json::Value = app.admin().get(&format!("{base}/severity")).send().await.expect(200).json();
    assert_eq!(sev, serde_json::json!({"severity": "high"}));
    // Two pairs, an unknown key, a bad value, retention_id: refused.
    let two = serde_json::json!({"auto_scan": "true", "prevent_vul": "true"});
    app.admin().post(&base).json(&two).send().await.expect(400);
    app.admin().post(&base).json(&serde_json::json!({"colour": "blue"})).send().await.expect(400);
    app.admin().post(&base).json(&serde_json::json!({"prevent_vul": "maybe"})).send().await.expect(400);
    app.admin().post(&base).json(&serde_json::json!({"retention_id": "7"})).send().await.expect(400);
    // Public through the metadata API: the project is listed as public.
    app.admin().put(&format!("{base}/public")).json(&serde_json::json!({"public": "true"})).send().await.expect(200);
    let public: Vec<serde_json::Value> =
        app.anonymous().get("/api/v2.0/projects?name=meta").send().await.expect(200).json();
    assert_eq!(public.len(), 1);
    app.admin().delete(&format!("{base}/public")).send().await.expect(200);
    let public: Vec<serde_json::Value> =
        app.anonymous().get("/api/v2.0/projects?name=meta").send().await.expect(200).json();
    assert!(public.is_empty());
    app.admin().delete(&format!("{base}/auto_scan")).send().await.expect(200);
    app.admin().get(&format!("{base}/auto_scan")).send().await.expect(404);
    // Who may (Harbor's matrix): a maintainer reads, does not write; a
    // guest does neither.
    app.create_user("m", "Passw0rd1").await;
    app.add_member(pid, "m", 4).await;
    app.create_user("g", "Passw0rd1").await;
    app.add_member(pid, "g", 3).await;
    let m = app.user("m", "Passw0rd1");
    m.get(&format!("{base}/severity")).send().await.expect(200);
    m.put(&format!("{base}/severity")).json(&serde_json::json!({"severity": "low"})).send().await.expect(403);
    let g = app.user("g", "Passw0rd1");
    g.get(&format!("{base}/severity")).send().await.expect(403);
    g.put(&format!("{base}/severity")).json(&serde_json::json!({"severity": "low"})).send().await.expect(403);
}

/// Read-only mode: every change is refused with Harbor's 403 `DENIED`
/// (the API and `/v2` alike); reads, pulls and turning it off are not.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn read_only_mode_refuses_every_change() {
    let app = crate::support::app::TestApp::local().await;
    app.create_project("ro", false).await;
    app.push_image("ro/app", "v1").await;
    let config = "/api/v2.0/configurations";
    app.admin().put(config).json(&serde_json::json!({"read_only": true})).send().await.expect(200);
    let refused = app
        .admin()
        .post("/api/v2.0/projects")
        .json(&serde_json::json!({"project_name": "other"}))
        .send()
        .await
        .expect(403);
    let err: serde_json::Value = refused.json();
    assert_eq!(err["errors"][0]["code"], "DENIED");
    assert_eq!(err["errors"][0]["message"], "The system is in read only mode. Any modification is prohibited.");
    app.admin().post("/v2/ro/app/blobs/uploads/").send().await.expect(403);
    app.admin().delete("/v2/ro/app/manifests/v1").send().await.expect(403);
    app.admin().delete("/api/v2.0/projects/ro/repositories/app").send().await.expect(403);
    // Reads and pulls go on.
    app.admin().get("/v2/ro/app/manifests/v1").send().await.expect(200);
    app.admin().get("/api/v2.0/projects/ro/repositories").send().await.expect(200);
    // Turning it off is allowed.
    app.admin().put(config).json(&serde_json::json!({"read_only": false})).send().await.expect(200);
    app.admin().post("/api/v2.0/projects").json(&serde_json::json!({"project_name": "other"})).send().await.expect(201);
}

/// `_deletable`, and `retention_id` being berth's to set.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn project_deletable_and_retention_id() {
    let app = crate::support::app::TestApp::local().await;
    let pid = app.create_project("del", false).await;
    let d: serde_json::Value =
        app.admin().get(&format!("/api/v2.0/projects/{pid}/_deletable")).send().await.expect(200).json();
    assert_eq!(d, serde_json::json!({"deletable": true}));
    app.push_image("del/app", "v1").await;
    let d: serde_json::Value = app.admin().get("/api/v2.0/projects/del/_deletable").send().await.expect(200).json();
    assert_eq!(d["deletable"], false);
    assert_eq!(d["message"], "the project contains repositories, can not be deleted");
    let with_id = serde_json::json!({"project_name": "x", "metadata": {"retention_id": "5"}});
    app.admin().post("/api/v2.0/projects").json(&with_id).send().await.expect(400);
    let empty_id = serde_json::json!({"project_name": "x", "metadata": {"retention_id": ""}});
    app.admin().post("/api/v2.0/projects").json(&empty_id).send().await.expect(201);
    // An update sending it back changes nothing.
    let back = serde_json::json!({"metadata": {"retention_id": "99", "public": "true"}});
    app.admin().put(&format!("/api/v2.0/projects/{pid}")).json(&back).send().await.expect(200);
    let p: serde_json::Value = app.admin().get(&format!("/api/v2.0/projects/{pid}")).send().await.expect(200).json();
    assert!(p["metadata"].get("retention_id").is_none(), "{p}");
    assert_eq!(p["metadata"]["public"], "true");
}

/// `/statistics`: counts by visibility, the bytes stored for administrators.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn statistics_count_what_the_caller_sees() {
    let app = crate::support::app::TestApp::local().await;
    let open = app.create_project("open", true).await;
    let shut = app.create_project("shut", false).await;
    let _ = (open, shut);
    app.push_image("open/a", "v1").await;
    app.push_image("open/b", "v1").await;
    app.push_image("shut/c", "v1").await;
    let s: serde_json::Value = app.admin().get("/api/v2.0/statistics").send().await.expect(200).json();
    // `library` is berth's default public project.
    assert_eq!(s["public_project_count"], 2);
    assert_eq!(s["public_repo_count"], 2);
    assert_eq!(s["private_project_count"], 1);
    assert_eq!(s["private_repo_count"], 1);
    assert_eq!(s["total_project_count"], 3);
    assert_eq!(s["total_repo_count"], 3);
    // Each image: a shared config and a layer of its own.
    let stored = s["total_storage_consumption"].as_u64().unwrap();
    assert!(stored > 0, "{s}");
    app.create_user("u", "Passw0rd1").await;
    let u: serde_json::Value = app.user("u", "Passw0rd1").get("/api/v2.0/statistics").send().await.expect(200).json();
    assert_eq!((u["private_project_count"].as_u64(), u["total_project_count"].as_u64()), (Some(0), Some(2)));
    assert_eq!(u["total_storage_consumption"], 0);
    app.anonymous().get("/api/v2.0/statistics").send().await.expect(401);
    // A store counted before the figure was kept: the migration recounts it.
    let again = app.ctx().registry().recount_stored_bytes().await.unwrap();
    assert_eq!(again, stored);
}

/// `/search`: projects and repositories by name, as the caller may see them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn search_finds_what_the_caller_may_see() {
    let app = crate::support::app::TestApp::local().await;
    app.create_project("findme-open", true).await;
    app.create_project("findme-shut", false).await;
    app.push_image("findme-open/tool", "v1").await;
    app.push_image("findme-shut/tool", "v1").await;
    app.push_image("library/other", "v1").await;
    let found: serde_json::Value = app.admin().get("/api/v2.0/search?q=findme").send().await.expect(200).json();
    let names = |v: &serde_json::Value, key: &str, field: &str| -> Vec<String> {
        let mut n: Vec<String> =
            v[key].as_array().unwrap().iter().map(|p| p[field].as_str().unwrap().to_owned()).collect();
        n.sort();
        n
    };
    assert_eq!(names(&found, "project", "name"), ["findme-open", "findme-shut"]);
    assert_eq!(names(&found, "repository", "repository_name"), ["findme-open/tool", "findme-shut/tool"]);
    let tool: serde_json::Value = app.admin().get("/api/v2.0/search?q=tool").send().await.expect(200).json();
    assert_eq!(tool["repository"][0]["artifact_count"], 1);
    // Anonymous callers see the public ones only.
    let anon: serde_json::Value = app.anonymous().get("/api/v2.0/search?q=findme").send().await.expect(200).json();
    assert_eq!(names(&anon, "project", "name"), ["findme-open"]);
    assert_eq!(names(&anon, "repository", "repository_name"), ["findme-open/tool"]);
    assert_eq!(anon["repository"][0]["project_public"], true);
}

/// `/permissions`: the grantable robot permissions, for admins only.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn permissions_list_what_robots_may_be_granted() {
    let app = crate::support::app::TestApp::local().await;
    let all: serde_json::Value = app.admin().get("/api/v2.0/permissions").send().await.expect(200).json();
    let has = |v: &serde_json::Value, scope: &str, res: &str, act: &str| {
        v[scope].as_array().is_some_and(|l| l.iter().any(|p| p["resource"] == res && p["action"] == act))
    };
    assert!(has(&all, "project", "repository", "push"), "{all}");
    assert!(has(&all, "system", "project", "create"), "{all}");
    let pid = app.create_project("perm", false).await;
    app.create_user("padmin", "Passw0rd1").await;
    app.add_member(pid, "padmin", 1).await;
    let mine: serde_json::Value =
        app.user("padmin", "Passw0rd1").get("/api/v2.0/permissions").send().await.expect(200).json();
    assert!(has(&mine, "project", "repository", "pull") && mine.get("system").is_none(), "{mine}");
    app.create_user("nobody", "Passw0rd1").await;
    app.user("nobody", "Passw0rd1").get("/api/v2.0/permissions").send().await.expect(403);
    app.anonymous().get("/api/v2.0/permissions").send().await.expect(401);
}

/// `/internalconfig` answers administrators only.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn internalconfig_is_for_administrators() {
    let app = crate::support::app::TestApp::local().await;
    let all: Value = app.admin().get("/api/v2.0/internalconfig").send().await.expect(200).json();
    assert!(all.get("auth_mode").is_some(), "{all}");
    app.create_user("plain", "Passw0rd1").await;
    app.user("plain", "Passw0rd1").get("/api/v2.0/internalconfig").send().await.expect(403);
    app.anonymous().get("/api/v2.0/internalconfig").send().await.expect(401);
}

/// The OpenAPI document lists every operation once, and each answers: no
/// documented path is an unknown path or a method berth does not serve;
/// what the reads answer matches the schemas the document gives.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_documented_operation_answers() {
    let app = crate::support::app::TestApp::local().await;
    let doc: Value = app.anonymous().get("/api/v2.0/openapi.json").send().await.expect(200).json();
    assert_eq!(doc["openapi"], "3.0.3");
    let paths = doc["paths"].as_object().unwrap();
    let mut ops = Vec::new();
    for (path, methods) in paths {
        for (method, op) in methods.as_object().unwrap() {
            ops.push((method.to_uppercase(), path.clone(), op["operationId"].as_str().unwrap().to_owned()));
        }
    }
    assert!(ops.len() >= 140, "{} operations", ops.len());
    let tools = |file: &str| crate::support::cli::installed_tool("BERTH_TEST_OPENAPI_VENV", "openapi-venv").join(file);
    // A validator written by others finds it a valid OpenAPI 3 document.
    let validator = tools("bin/openapi-spec-validator");
    assert!(validator.exists(), "openapi-spec-validator is missing: {} (run .ci/run)", validator.display());
    let work = tempfile::tempdir().unwrap();
    let doc_file = work.path().join("openapi.json");
    std::fs::write(&doc_file, serde_json::to_vec(&doc).unwrap()).unwrap();
    let out = Command::new(&validator).arg(&doc_file).output().unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));

    // Something to read: an image with a label, a member, a robot, a webhook.
    app.push_image("library/app", "v1").await;
    let label = app
        .admin()
        .post("/api/v2.0/labels")
        .json(&serde_json::json!({"name": "l", "scope": "g"}))
        .send()
        .await
        .expect(201)
        .location_id();
    app.admin()
        .post("/api/v2.0/projects/library/repositories/app/artifacts/v1/labels")
        .json(&serde_json::json!({"id": label}))
        .send()
        .await
        .expect(200);
    let uid = app.create_user("reader", "Passw0rd1").await;
    let value = |name: &str| -> String {
        match name {
            "project_name_or_id" | "project_name" => "library".into(),
            "repository_name" => "app".into(),
            "reference" => "v1".into(),
            "label_id" => label.to_string(),
            "user_id" => uid.to_string(),
            "meta_name" => "public".into(),
            "addition" => "build_history".into(),
            n if n.ends_with("_id") || matches!(n, "id" | "mid" | "eid" | "tid") => "999999".into(),
            _ => "nothing".into(),
        }
    };
    // Deletions last: they may remove what the others read.
    ops.sort_by_key(|(m, _, _)| m == "DELETE");
    let mut answers = Vec::new();
    for (method, path, id) in &ops {
        let mut concrete = String::new();
        for seg in path.split('/').filter(|s| !s.is_empty()) {
            concrete.push('/');
            match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => concrete.push_str(&value(name)),
                None => concrete.push_str(seg),
            }
        }
        if path.ends_with('/') {
            concrete.push('/');
        }
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = app.admin().request(m, &format!("/api/v2.0{concrete}"));
        if matches!(method.as_str(), "POST" | "PUT" | "PATCH") {
            req = req.json(&serde_json::json!({}));
        }
        let res = req.send().await;
        let unknown = res.code() == 405 || (res.code() == 404 && res.text().contains("is not an API of this registry"));
        assert!(!unknown, "{method} {path} ({id}) is documented but not served: {} {}", res.code(), res.text());
        let json = res.headers.get("content-type").is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
        if method == "GET" && res.code() == 200 && json {
            answers
                .push(serde_json::json!({"method": method, "path": path, "status": 200, "body": res.json::<Value>()}));
        }
    }
    let answers_file = work.path().join("answers.json");
    std::fs::write(&answers_file, serde_json::to_vec(&answers).unwrap()).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/e2e/openapi_check.py");
    let out = Command::new(tools("bin/python")).arg(script).arg(&doc_file).arg(&answers_file).output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "an answer does not match its schema:\n{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let checked: usize = said.trim().strip_prefix("checked ").unwrap().parse().unwrap();
    assert!(checked >= 30, "only {checked} answers had a schema to check");
}

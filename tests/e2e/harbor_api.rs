//! The Harbor-compatible management API (`/api/v2.0`): projects and the
//! system endpoints, driven by raw HTTP for the exact semantics and by
//! harborapi, a Harbor client written by others that validates every
//! response against its models of Harbor's API.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::support::{AwsResources, Server, emulator};

const PASSWORD: &str = "Harbor12345";

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().unwrap()
}

/// The Python with harborapi installed (`.ci/run` makes the venv).
fn harbor_python() -> PathBuf {
    crate::support::cli::installed_tool("BERTH_TEST_HARBOR_PYTHON", "harbor-venv/bin/python")
}

fn harbor_client_script(server: &Server) {
    let python = harbor_python();
    assert!(python.exists(), "harborapi is missing: {} (run .ci/run)", python.display());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/e2e/harbor_client.py");
    let project = berth::testkit::unique("harbor-");
    let out = Command::new(python).args([script, &server.url(""), "admin", PASSWORD, &project]).output().unwrap();
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

#[test]
fn harbor_client_local() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[], &[("BERTH_ADMIN_PASSWORD", PASSWORD)]);
    harbor_client_script(&server);
}

#[test]
fn harbor_client_aws() {
    if !emulator("harbor_client_aws") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = AwsResources::new("berth-hc-").serve(dir.path(), &[]);
    harbor_client_script(&server);
}

struct Api {
    server: Server,
    http: reqwest::blocking::Client,
}

impl Api {
    fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::blocking::RequestBuilder {
        self.http.request(method, self.server.url(&format!("/api/v2.0{path}"))).basic_auth("admin", Some(PASSWORD))
    }

    fn anon(&self, method: reqwest::Method, path: &str) -> reqwest::blocking::RequestBuilder {
        self.http.request(method, self.server.url(&format!("/api/v2.0{path}")))
    }

    fn create(&self, body: &str) -> reqwest::blocking::Response {
        self.admin(reqwest::Method::POST, "/projects")
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .unwrap()
    }
}

fn error_code(resp: reqwest::blocking::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let body: Value = resp.json().unwrap();
    let errors = body["errors"].as_array().unwrap_or_else(|| panic!("Harbor error body expected: {body}"));
    assert!(errors[0]["message"].is_string(), "{body}");
    (status, errors[0]["code"].as_str().unwrap().to_owned())
}

#[test]
fn projects_api_semantics() {
    let dir = tempfile::tempdir().unwrap();
    let api = Api { server: Server::start(dir.path(), &[], &[("BERTH_ADMIN_PASSWORD", PASSWORD)]), http: client() };
    use reqwest::Method;

    // Create: 201 with a Location by id, or by name when asked.
    let r = api.create(r#"{"project_name":"alpha","public":false,"storage_limit":1048576}"#);
    assert_eq!(r.status().as_u16(), 201);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("/api/v2.0/projects/")
            && location.trim_start_matches("/api/v2.0/projects/").parse::<i64>().is_ok(),
        "{location}"
    );
    let r = api
        .admin(Method::POST, "/projects")
        .header("content-type", "application/json")
        .header("x-resource-name-in-location", "true")
        .body(r#"{"project_name":"beta","metadata":{"public":"true"}}"#)
        .send()
        .unwrap();
    assert_eq!(r.headers()["location"], "/api/v2.0/projects/beta");
    for i in 0..12 {
        assert_eq!(api.create(&format!(r#"{{"project_name":"p{i:02}"}}"#)).status().as_u16(), 201);
    }

    // Bad input and conflicts, in Harbor's error body.
    assert_eq!(error_code(api.create(r#"{"project_name":"alpha"}"#)), (409, "CONFLICT".to_owned()));
    assert_eq!(error_code(api.create(r#"{"project_name":"Bad Name"}"#)), (400, "BAD_REQUEST".to_owned()));
    assert_eq!(error_code(api.create(r#"{"project_name":"m","metadata":{"auto_scan":"maybe"}}"#)).0, 400);
    assert_eq!(error_code(api.create(r#"{"project_name":"s","storage_limit":0}"#)).0, 400);
    assert_eq!(error_code(api.create("not json")).0, 400);

    // Reading by name or id; X-Is-Resource-Name forces a name.
    let alpha: Value = api.admin(Method::GET, "/projects/alpha").send().unwrap().json().unwrap();
    assert_eq!((alpha["name"].as_str(), alpha["metadata"]["public"].as_str()), (Some("alpha"), Some("false")));
    let id = alpha["project_id"].as_i64().unwrap();
    let by_id: Value = api.admin(Method::GET, &format!("/projects/{id}")).send().unwrap().json().unwrap();
    assert_eq!(by_id["name"], "alpha");
    assert_eq!(api.create(r#"{"project_name":"42"}"#).status().as_u16(), 201);
    let named: Value =
        api.admin(Method::GET, "/projects/42").header("x-is-resource-name", "true").send().unwrap().json().unwrap();
    assert_eq!(named["name"], "42");
    assert_eq!(error_code(api.admin(Method::GET, "/projects/nothing").send().unwrap()), (404, "NOT_FOUND".to_owned()));

    // HEAD existence check.
    assert_eq!(api.admin(Method::HEAD, "/projects?project_name=alpha").send().unwrap().status().as_u16(), 200);
    assert_eq!(api.admin(Method::HEAD, "/projects?project_name=nothing").send().unwrap().status().as_u16(), 404);

    // Paging: X-Total-Count and Link.
    let page = api.admin(Method::GET, "/projects?page=2&page_size=5").send().unwrap();
    let total: usize = page.headers()["x-total-count"].to_str().unwrap().parse().unwrap();
    assert_eq!(total, 16, "library, alpha, beta, p00..p11, 42");
    let link = page.headers()["link"].to_str().unwrap().to_owned();
    assert!(
        link.contains("page=1&page_size=5>; rel=\"prev\"") && link.contains("page=3&page_size=5&cursor="),
        "{link}"
    );
    let items: Vec<Value> = page.json().unwrap();
    assert_eq!(items.len(), 5);
    let fuzzy: Vec<Value> = api.admin(Method::GET, "/projects?q=name%3D~p0").send().unwrap().json().unwrap();
    assert_eq!(fuzzy.len(), 10);
    assert_eq!(error_code(api.admin(Method::GET, "/projects?page_size=1000").send().unwrap()).0, 400);

    // Anonymous callers see public projects only, and cannot change any.
    let anon: Vec<Value> = api.anon(Method::GET, "/projects?page_size=100").send().unwrap().json().unwrap();
    let names: Vec<&str> = anon.iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(names, ["beta", "library"]);
    assert_eq!(error_code(api.anon(Method::GET, "/projects/alpha").send().unwrap()).0, 401);
    assert_eq!(api.anon(Method::GET, "/projects/beta").send().unwrap().status().as_u16(), 200);
    let r = api
        .anon(Method::POST, "/projects")
        .header("content-type", "application/json")
        .body(r#"{"project_name":"x"}"#)
        .send()
        .unwrap();
    assert_eq!(error_code(r), (401, "UNAUTHORIZED".to_owned()));
    let r = api.anon(Method::GET, "/projects").basic_auth("admin", Some("wrong")).send().unwrap();
    assert_eq!(error_code(r).0, 401);

    // Update: public switch and metadata.
    let r = api
        .admin(Method::PUT, "/projects/alpha")
        .header("content-type", "application/json")
        .body(r#"{"metadata":{"public":"true","severity":"high"}}"#)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let alpha: Value = api.anon(Method::GET, "/projects/alpha").send().unwrap().json().unwrap();
    assert_eq!(
        (alpha["metadata"]["public"].as_str(), alpha["metadata"]["severity"].as_str()),
        (Some("true"), Some("high"))
    );

    // A project with repositories cannot be deleted (412); an empty one can.
    let blob = b"{}";
    let digest = berth::oci::Digest::sha256_of(blob);
    let v2 = |m: Method, p: &str| api.http.request(m, api.server.url(p)).basic_auth("admin", Some(PASSWORD));
    assert_eq!(
        v2(Method::POST, &format!("/v2/alpha/app/blobs/uploads/?digest={digest}"))
            .body(blob.to_vec())
            .send()
            .unwrap()
            .status()
            .as_u16(),
        201
    );
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{digest}","size":2}},"layers":[]}}"#
    );
    let put = v2(Method::PUT, "/v2/alpha/app/manifests/v1")
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest)
        .send()
        .unwrap();
    assert_eq!(put.status().as_u16(), 201);
    let alpha: Value = api.admin(Method::GET, "/projects/alpha").send().unwrap().json().unwrap();
    assert_eq!(alpha["repo_count"], 1);
    assert_eq!(
        error_code(api.admin(Method::DELETE, "/projects/alpha").send().unwrap()),
        (412, "PRECONDITION".to_owned())
    );
    assert_eq!(api.admin(Method::DELETE, "/projects/p00").send().unwrap().status().as_u16(), 200);
    assert_eq!(api.admin(Method::GET, "/projects/p00").send().unwrap().status().as_u16(), 404);

    // Pushing into a project that does not exist is refused on /v2.
    let r = v2(Method::POST, "/v2/p00/app/blobs/uploads/").send().unwrap();
    assert_eq!(r.status().as_u16(), 404);

    // System endpoints.
    assert_eq!(api.anon(Method::GET, "/ping").send().unwrap().text().unwrap(), "Pong");
    let health: Value = api.anon(Method::GET, "/health").send().unwrap().json().unwrap();
    assert_eq!(health["status"], "healthy");
    let me: Value = api.admin(Method::GET, "/users/current").send().unwrap().json().unwrap();
    assert_eq!((me["username"].as_str(), me["sysadmin_flag"].as_bool()), (Some("admin"), Some(true)));
    assert_eq!(error_code(api.anon(Method::GET, "/users/current").send().unwrap()).0, 401);
    let info: Value = api.anon(Method::GET, "/systeminfo").send().unwrap().json().unwrap();
    assert_eq!(info["registry_storage_provider_name"], "filesystem");
}

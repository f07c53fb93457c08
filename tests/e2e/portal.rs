//! The portal in a real browser: headless Chromium, driven by Selenium
//! (tests/e2e/portal_browser.py), against the real `berth` binary, with
//! images pushed and pulled by skopeo. Each scenario saves a screenshot of
//! every page it visits under `BERTH_TEST_SCREENSHOTS` (default
//! `target/portal-screenshots/`) and prints the file names.
//!
//! Beside the browser: the headers every page carries (the CSP that
//! forbids inline script, the assets' long cache lifetime) and the page
//! weights, over plain HTTP.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::Server;
use crate::support::cli::{installed_tool, ok, require};

const PASSWORD: &str = "Harbor12345";
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The Python with Selenium installed (`.ci/run` makes the venv).
fn selenium_python() -> PathBuf {
    installed_tool("BERTH_TEST_SELENIUM_PYTHON", "selenium-venv/bin/python")
}

fn screenshots() -> PathBuf {
    std::env::var_os("BERTH_TEST_SCREENSHOTS")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/portal-screenshots"), PathBuf::from)
}

/// An OCI layout holding a small image `base` (umoci: a config, no layers).
fn image_layout(dir: &Path) -> PathBuf {
    require("umoci", &["--version"]);
    let layout = dir.join("image");
    ok(Command::new("umoci").arg("init").arg("--layout").arg(&layout));
    ok(Command::new("umoci").arg("new").arg("--image").arg(format!("{}:base", layout.display())));
    layout
}

/// Runs one scenario of the browser script against a fresh berth and
/// checks that it reached every step.
fn scenario(name: &str, steps: &[&str]) {
    scenario_with(name, steps, |_| Vec::new());
}

/// [`scenario`], with `prepare` setting berth up first; it returns the
/// environment variables the script is given.
fn scenario_with(name: &str, steps: &[&str], prepare: impl FnOnce(&Server) -> Vec<(&'static str, String)>) {
    require("skopeo", &["--version"]);
    let python = selenium_python();
    assert!(python.exists(), "selenium is missing: {} (run .ci/run)", python.display());
    let tmp = tempfile::tempdir().unwrap();
    let layout = image_layout(tmp.path());
    let server = Server::start(tmp.path(), &["--data", "data"], &[("BERTH_ADMIN_PASSWORD", PASSWORD)]);
    let env = prepare(&server);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/e2e/portal_browser.py");
    let shots = screenshots();
    std::fs::create_dir_all(&shots).unwrap();
    let shots = shots.canonicalize().unwrap();
    let out = crate::support::cli::exec(
        Command::new(python).args([script, name, &server.url(""), PASSWORD]).arg(&layout).arg(&shots).envs(env),
        None,
        Duration::from_secs(600),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "the {name} scenario failed:\n{stdout}\n{}\nberth's log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log_text()
    );
    for step in steps {
        assert!(stdout.contains(step), "step {step:?} missing:\n{stdout}");
    }
    assert!(stdout.contains("screenshot "), "no screenshots:\n{stdout}");
}

/// Sign in as admin, create a project, push an image and find it with its
/// tags, add and remove a tag, scan, add a member, use the administration
/// pages, create a robot and pull with its secret, save the configuration,
/// add labels, an immutability rule and a webhook, sign in as the member
/// and see what a developer may do, change the member's password, delete
/// the artifact, the repository and the project.
#[test]
fn portal_journey() {
    scenario(
        "journey",
        &[
            "wrong password refused",
            "signed in as admin",
            "project created",
            "pushed image listed with its tag",
            "tags added and removed",
            "scan started",
            "member added",
            "administration pages",
            "robot pulled with its secret",
            "configuration saved",
            "labels, immutability and webhooks",
            "member sees what a developer may do",
            "own password changed",
            "artifact deleted",
            "project deleted",
            "journey done",
        ],
    );
}

/// Tag retention (a rule added, edited, dry-run, its run's task and log
/// read, scheduled, deleted), garbage collection (a dry run and its log, a
/// schedule), the audit log purge, a webhook edited and disabled with its
/// deliveries read, a robot edited and its secret refreshed (then used).
#[test]
fn portal_operations() {
    scenario(
        "operations",
        &[
            "retention rule added and edited",
            "retention dry run read in the browser",
            "retention schedule saved and rule deleted",
            "garbage collection run, log read and scheduled",
            "audit log purge run and log read",
            "webhook edited, disabled, deliveries read",
            "robot edited and its secret refreshed",
            "error pages keep the user menu",
            "read-only mode offers no writes",
            "operations done",
        ],
    );
}

/// Replication in the browser: an endpoint to this berth itself, a push
/// rule copying a repository into another project, run, its execution,
/// task and log read, the copy found, the rule edited and deleted.
#[test]
fn portal_replication() {
    scenario(
        "replication",
        &[
            "endpoint to this berth created",
            "replication rule created",
            "replication run, task and log read",
            "replicated image found in the other project",
            "replication rule edited",
            "replication done",
        ],
    );
}

/// P2P preheat in the browser: a Dragonfly instance created (its failed
/// test shown), edited; a project's policy created, listed, run (it fails:
/// the instance answers nothing; the run's task and log read), edited,
/// deleted; the instance deleted.
#[test]
fn portal_preheat() {
    scenario(
        "preheat",
        &[
            "preheat instance created",
            "preheat instance ping failure shown",
            "preheat instance edited, its secret kept",
            "preheat policy created and listed",
            "preheat run, its task and log read",
            "preheat policy edited",
            "preheat policy and instance deleted",
            "preheat done",
        ],
    );
}

/// The administration pages in the browser: a system robot edited, its
/// secret refreshed and used, disabled; registry endpoints created, tested
/// (one working, one failing), edited and deleted; a configuration value
/// changed and kept; a scan of everything run.
#[test]
fn portal_administration() {
    scenario(
        "administration",
        &[
            "system robot edited, its secret refreshed and used",
            "registry endpoints created, tested, edited and deleted",
            "configuration value changed and kept",
            "scan all run",
            "administration done",
        ],
    );
}

/// OIDC in the browser against `oidc-provider-mock`: the sign-in page's
/// button, the provider's form, onboarding with a chosen name, the user
/// signed in, the CLI secret page showing a secret that works with the
/// API.
#[test]
fn portal_oidc_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let provider =
        super::oidc::Provider::start(dir.path(), &[super::oidc::user("carol-sub", "carol", &["developers"])]);
    scenario_with(
        "oidc",
        &[
            "oidc button offered",
            "provider form completed",
            "onboarded",
            "oidc signed in",
            "cli secret shown",
            "oidc done",
        ],
        |server| {
            let mut settings = super::oidc::oidc_settings(&provider);
            settings["oidc_auto_onboard"] = serde_json::Value::Bool(false);
            let r = reqwest::blocking::Client::new()
                .put(server.url("/api/v2.0/configurations"))
                .basic_auth("admin", Some(PASSWORD))
                .json(&settings)
                .send()
                .unwrap();
            assert_eq!(r.status(), 200, "{}", r.text().unwrap());
            vec![("BERTH_TEST_OIDC_URL", provider.url.clone())]
        },
    );
}

/// Names made of HTML and script metacharacters render as text on every
/// page, and no script of theirs runs.
#[test]
fn portal_hostile_names() {
    scenario(
        "hostile",
        &[
            "hostile artifacts rendered as text",
            "hostile artifact rendered as text",
            "hostile robots rendered as text",
            "hostile members rendered as text",
            "hostile labels rendered as text",
            "hostile webhooks rendered as text",
            "hostile webhook rendered as text",
            "hostile robot rendered as text",
            "hostile retention rendered as text",
            "hostile retention-rule rendered as text",
            "hostile registries rendered as text",
            "hostile replication-rule rendered as text",
            "hostile distributions rendered as text",
            "hostile preheat-policies rendered as text",
            "hostile preheat-policy rendered as text",
            "hostile reflected rendered as text",
            "hostile done",
        ],
    );
}

/// Each of the five roles is offered exactly the project tabs and actions
/// it may use.
#[test]
fn portal_roles() {
    scenario(
        "roles",
        &[
            "role projectAdmin offered exactly its actions",
            "role maintainer offered exactly its actions",
            "role developer offered exactly its actions",
            "role guest offered exactly its actions",
            "role limitedGuest offered exactly its actions",
            "roles done",
        ],
    );
}

/// Every page carries the CSP; the assets are immutable for a year under
/// their hashed names; a visitor is sent to sign in; a form without the
/// session's CSRF token is refused.
#[test]
fn portal_headers() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(tmp.path(), &["--data", "data"], &[("BERTH_ADMIN_PASSWORD", PASSWORD)]);
    let client = reqwest::blocking::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();

    let root = client.get(server.url("/")).send().unwrap();
    assert_eq!(root.status(), 303);
    assert_eq!(root.headers()["location"], "/account/sign-in");
    let projects = client.get(server.url("/harbor/projects")).send().unwrap();
    assert_eq!(projects.status(), 303);
    assert_eq!(projects.headers()["location"], "/account/sign-in?redirect_url=%2Fharbor%2Fprojects");

    let page = client.get(server.url("/account/sign-in")).send().unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-security-policy"], CSP);
    let html = page.text().unwrap();
    assert!(!html.contains("<script>") && !html.contains("style="), "inline script or style:\n{html}");
    for ext in ["css", "js"] {
        let path = html_asset(&html, ext);
        let asset = client.get(server.url(&path)).send().unwrap();
        assert_eq!(asset.status(), 200, "{path}");
        assert_eq!(asset.headers()["cache-control"], "public, max-age=31536000, immutable");
    }
    assert_eq!(client.get(server.url("/assets/portal.0000000000000000.css")).send().unwrap().status(), 404);

    // Signed in: a form posted without the CSRF field is refused.
    let login = client
        .post(server.url("/account/sign-in"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("principal=admin&password={PASSWORD}"))
        .send()
        .unwrap();
    assert_eq!(login.status(), 303);
    let cookies: Vec<String> = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect();
    let cookie = cookies.join("; ");
    let refused = client
        .post(server.url("/harbor/projects"))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("project_name=nocsrf")
        .send()
        .unwrap();
    assert_eq!(refused.status(), 403);
    let listed = client.get(server.url("/harbor/projects")).header("cookie", &cookie).send().unwrap();
    assert_eq!(listed.status(), 200);
    assert_eq!(listed.headers()["content-security-policy"], CSP);
    assert!(!listed.text().unwrap().contains("nocsrf"));
}

/// The URL of the page's `ext` asset.
fn html_asset(html: &str, ext: &str) -> String {
    html.split('"').find(|s| s.starts_with("/assets/portal.") && s.ends_with(&format!(".{ext}"))).unwrap().to_owned()
}

/// A page action the role may not use, posted by address with a valid
/// CSRF token, is refused by the API behind it: the page comes back with
/// the refusal and nothing changes.
#[test]
fn portal_actions_are_refused_as_the_api_refuses_them() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(tmp.path(), &["--data", "data"], &[("BERTH_ADMIN_PASSWORD", PASSWORD)]);
    let client = reqwest::blocking::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let admin = |method: reqwest::Method, path: &str, body: serde_json::Value| {
        let r = client
            .request(method, server.url(&format!("/api/v2.0{path}")))
            .basic_auth("admin", Some(PASSWORD))
            .json(&body)
            .send()
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r
    };
    admin(reqwest::Method::POST, "/projects", serde_json::json!({"project_name": "guarded"}));
    for name in ["visitor", "bystander"] {
        admin(
            reqwest::Method::POST,
            "/users",
            serde_json::json!({"username": name, "email": format!("{name}@example.com"), "realname": name,
                "password": "Visitor12345"}),
        );
    }
    let project: serde_json::Value = client
        .get(server.url("/api/v2.0/projects/guarded"))
        .basic_auth("admin", Some(PASSWORD))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let id = project["project_id"].as_i64().unwrap();
    admin(
        reqwest::Method::POST,
        &format!("/projects/{id}/members"),
        serde_json::json!({"role_id": 3, "member_user": {"username": "visitor"}}),
    );

    let login = client
        .post(server.url("/account/sign-in"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("principal=visitor&password=Visitor12345")
        .send()
        .unwrap();
    assert_eq!(login.status(), 303);
    let cookies: Vec<String> = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect();
    let csrf = cookies.iter().find_map(|c| c.strip_prefix("__csrf=")).unwrap().to_owned();
    let cookie = cookies.join("; ");
    let post = |path: &str, form: &str| {
        client
            .post(server.url(path))
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("_csrf={csrf}&{form}"))
            .send()
            .unwrap()
    };
    let members = format!("/harbor/projects/{id}/members");
    let r = post(&members, "username=bystander&role_id=1");
    assert_eq!(r.status(), 303);
    let to = r.headers()["location"].to_str().unwrap();
    assert!(to.starts_with(&format!("{members}?error=")), "{to}");
    let r = post(&format!("/harbor/projects/{id}/configs"), "public=on&severity=low");
    assert!(r.headers()["location"].to_str().unwrap().contains("error="));
    let list: Vec<serde_json::Value> = client
        .get(server.url(&format!("/api/v2.0/projects/{id}/members")))
        .basic_auth("admin", Some(PASSWORD))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(list.iter().all(|m| m["entity_name"] != "bystander"), "{list:?}");
    let project: serde_json::Value = client
        .get(server.url(&format!("/api/v2.0/projects/{id}")))
        .basic_auth("admin", Some(PASSWORD))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(project["metadata"]["public"], "false");
    // The page itself offers neither.
    let page = client.get(server.url(&members)).header("cookie", &cookie).send().unwrap().text().unwrap();
    assert!(!page.contains("id=\"member_name\"") && !page.contains("Change role"), "{page}");

    // Replication and preheat: the administration pages are refused, their
    // forms posted anyway come back with the API's refusal and change
    // nothing; a guest's project has no preheat tab and its form is refused.
    for path in ["/harbor/replications", "/harbor/replications/new", "/harbor/distribution/instances"] {
        let r = client.get(server.url(path)).header("cookie", &cookie).send().unwrap();
        assert_eq!(r.status(), 403, "{path}");
    }
    let preheat_tab = format!("/harbor/projects/{id}/p2p-provider");
    for (path, form) in [
        ("/harbor/replications", "name=sneaky&mode=push&registry=1&replace_count=0&trigger=manual"),
        ("/harbor/distribution/instances", "name=sneaky&vendor=dragonfly&endpoint=http%3A%2F%2F127.0.0.1%3A9"),
        (preheat_tab.as_str(), "name=sneaky&provider_id=1&repository=**&tag=**"),
    ] {
        let r = post(path, form);
        assert_eq!(r.status(), 303, "{path}");
        let to = r.headers()["location"].to_str().unwrap();
        assert!(to.contains("error="), "{path}: {to}");
    }
    for path in ["/replication/policies", "/p2p/preheat/instances", "/projects/guarded/preheat/policies"] {
        let list: Vec<serde_json::Value> = client
            .get(server.url(&format!("/api/v2.0{path}")))
            .basic_auth("admin", Some(PASSWORD))
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert!(list.is_empty(), "{path}: {list:?}");
    }
    let page = client.get(server.url(&members)).header("cookie", &cookie).send().unwrap().text().unwrap();
    assert!(!page.contains("/p2p-provider\""), "a guest is offered the preheat tab");
}

/// The administrator signed in to the portal of an in-process app: the
/// session's `Cookie` header.
pub(crate) async fn admin_session(app: &crate::support::app::TestApp) -> String {
    let login = app
        .post("/account/sign-in")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("principal=admin&password={PASSWORD}"))
        .send()
        .await
        .expect(303);
    let cookie: Vec<String> = login
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect();
    cookie.join("; ")
}

/// The heaviest pages with 10,000 artifacts in one repository (made
/// through the service layer: one small manifest each, tagged, a few
/// hundred with a label) each stay under 100 KB: every list is paged. The
/// weights and the in-process times (debug build, not asserted) are
/// printed; `scripts/bench-portal` gives the release build's times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portal_pages_stay_small_with_ten_thousand_artifacts() {
    use berth::oci::name::{Reference, RepoName};
    use futures::StreamExt as _;

    use crate::support::app::{TestApp, image_manifest};

    const ARTIFACTS: usize = 10_000;
    const LIMIT: usize = 100 * 1024;
    let app = TestApp::local().await;
    let pid = app.create_project("heavy", false).await;
    let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_digest = app.upload_blob("heavy/app", config).await;
    let layer_digest = app.upload_blob("heavy/app", b"one shared layer").await;
    let registry = app.ctx().registry();
    let repo = RepoName::parse("heavy/app").unwrap();
    futures::stream::iter(0..ARTIFACTS)
        .for_each_concurrent(16, |i| {
            let manifest = image_manifest(&config_digest, config.len() as u64)
                .layer(&layer_digest, 16)
                .annotation("org.example.n", &i.to_string())
                .bytes();
            let (registry, repo) = (&registry, &repo);
            async move {
                let tag = Reference::parse(&format!("v{i:05}")).unwrap();
                registry
                    .put_manifest(repo, &tag, Some(berth::oci::media::OCI_MANIFEST), manifest.into())
                    .await
                    .unwrap_or_else(|e| panic!("artifact {i}: {e}"));
            }
        })
        .await;
    let listed = app.admin().get("/api/v2.0/projects/heavy/repositories/app/artifacts?page_size=1").send().await;
    assert_eq!(listed.success().header("x-total-count"), ARTIFACTS.to_string());

    let cookie = admin_session(&app).await;
    let newest: Vec<serde_json::Value> =
        app.admin().get("/api/v2.0/projects/heavy/repositories/app/artifacts?page_size=1").send().await.json();
    let digest = newest[0]["digest"].as_str().unwrap().to_owned();
    let pages = [
        format!("/harbor/projects/{pid}/repositories/app/artifacts-tab"),
        format!("/harbor/projects/{pid}/repositories/app/artifacts-tab/artifacts/{digest}"),
        format!("/harbor/projects/{pid}/repositories"),
        format!("/harbor/projects/{pid}/logs"),
        "/harbor/logs".to_owned(),
        "/harbor/projects".to_owned(),
        format!("/harbor/projects/{pid}/repositories/app/artifacts-tab?page=400"),
    ];
    for path in &pages {
        let mut times = Vec::new();
        let mut size = 0;
        for _ in 0..5 {
            let started = std::time::Instant::now();
            let page = app.get(path).header("cookie", &cookie).send().await;
            times.push(started.elapsed());
            assert_eq!(page.code(), 200, "{path}: {}", page.text());
            size = page.body.len();
        }
        times.sort();
        println!(
            "page {path}: {size} bytes, {:.1} ms (median of 5, debug build, in process)",
            times[2].as_secs_f64() * 1e3
        );
        assert!(size < LIMIT, "{path} weighs {size} bytes");
    }
    // The last page is the 400th of 15 rows: paging reaches the end.
    let last = app.get(&pages[6]).header("cookie", &cookie).send().await.text();
    assert!(last.contains("Page 400 of 667") && last.matches("<td").count() >= 15, "{last}");
}

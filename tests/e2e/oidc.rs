//! OIDC sign-in, portal sessions and CLI secrets, end to end: the real
//! `berth` binary against a real OIDC provider (`oidc-provider-mock`, in
//! its own venv made by `.ci/run`, started here on a free loopback port),
//! driven headless with HTTP: `/c/oidc/login` → the provider's authorize
//! form → `/c/oidc/callback` → the `sid` cookie. Then real registry
//! clients (skopeo, podman, docker) push and pull with the CLI secret.
//!
//! The provider is required: a missing one fails the test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Method;
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::support::app::{ADMIN_PASSWORD, TestApp};
use crate::support::cli::{
    CLIENT_TIMEOUT, docker, docker_login, exec, fails, installed_tool, ok, require, require_docker, scratch_context,
};
use crate::support::{AwsResources, Server, emulator, free_port};

/// The provider's access and ID tokens live this long, so that CLI logins
/// in the test find them expired and refresh them.
const TOKEN_SECS: u64 = 4;

// ------------------------------------------------------------ the provider

/// The mock provider's executable (`.ci/run` installs it).
fn provider_bin() -> PathBuf {
    installed_tool("BERTH_TEST_OIDC_PROVIDER", "oidc-venv/bin/oidc-provider-mock")
}

/// A running `oidc-provider-mock`, killed on drop.
pub(crate) struct Provider {
    child: Child,
    pub(crate) url: String,
}

impl Provider {
    pub(crate) fn start(dir: &Path, users: &[Value]) -> Self {
        let bin = provider_bin();
        assert!(bin.exists(), "oidc-provider-mock is missing: {} (run .ci/run)", bin.display());
        let port = free_port();
        let log = std::fs::File::create(dir.join("oidc-provider.log")).unwrap();
        let mut cmd = Command::new(bin);
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string(), "-e", &TOKEN_SECS.to_string()]);
        for u in users {
            cmd.arg("--user-claims").arg(u.to_string());
        }
        let child = cmd.stdout(Stdio::from(log.try_clone().unwrap())).stderr(Stdio::from(log)).spawn().unwrap();
        let provider = Self { child, url: format!("http://127.0.0.1:{port}") };
        let deadline = Instant::now() + Duration::from_secs(30);
        let discovery = format!("{}/.well-known/openid-configuration", provider.url);
        while Instant::now() < deadline {
            if http().get(&discovery).send().is_ok_and(|r| r.status() == 200) {
                return provider;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the OIDC provider did not start:\n{}", std::fs::read_to_string(dir.join("oidc-provider.log")).unwrap());
    }

    /// Replaces a user's claims at the provider.
    fn set_user(&self, sub: &str, claims: &Value) {
        let r = http().put(format!("{}/users/{sub}", self.url)).json(claims).send().unwrap();
        assert_eq!(r.status(), 204, "{}", r.text().unwrap());
    }

    /// Revokes every token the provider issued to a user.
    fn revoke(&self, sub: &str) {
        let r = http().post(format!("{}/users/{sub}/revoke-tokens", self.url)).send().unwrap();
        assert_eq!(r.status(), 204);
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP client that follows no redirects (each step is checked).
fn http() -> Client {
    Client::builder().redirect(reqwest::redirect::Policy::none()).timeout(Duration::from_secs(30)).build().unwrap()
}

fn location(r: &Response) -> String {
    assert_eq!(r.status(), 302, "a redirect expected, got {} {:?}", r.status(), r.headers());
    r.headers()["location"].to_str().unwrap().to_owned()
}

/// The value a response (its headers) sets for a cookie, with its
/// attributes.
fn set_cookie(headers: &HeaderMap, name: &str) -> Option<(String, String)> {
    headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).find_map(|v| {
        let (pair, attrs) = v.split_once(';').unwrap_or((v, ""));
        let (k, value) = pair.split_once('=')?;
        (k == name).then(|| (value.to_owned(), attrs.to_owned()))
    })
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

// ------------------------------------------------------------------ berth

struct Berth {
    server: Server,
    _dir: tempfile::TempDir,
}

impl Berth {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(dir.path(), &["--data", "data"], &[("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD)]);
        Self { server, _dir: dir }
    }

    /// berth on the AWS backends (the emulator), or `None` when the
    /// emulator is not configured (a failure under
    /// `BERTH_TEST_REQUIRE_EMULATORS=1`).
    fn aws(test: &str) -> Option<Self> {
        if !emulator(test) {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let server = AwsResources::new("berth-oidc-").serve(dir.path(), &[]);
        Some(Self { server, _dir: dir })
    }

    fn host(&self) -> String {
        self.server.addr.to_string()
    }

    fn api(&self, method: Method, path: &str) -> RequestBuilder {
        http().request(method, self.server.url(&format!("/api/v2.0{path}")))
    }

    fn admin(&self, method: Method, path: &str) -> RequestBuilder {
        self.api(method, path).basic_auth("admin", Some(ADMIN_PASSWORD))
    }

    /// `POST /c/login` with a form, as Harbor's portal sends it.
    fn portal_login(&self, principal: &str, password: &str) -> Response {
        http()
            .post(self.server.url("/c/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("principal", principal), ("password", password)]))
            .send()
            .unwrap()
    }

    fn configure(&self, settings: Value) {
        let r = self.admin(Method::PUT, "/configurations").json(&settings).send().unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().unwrap());
    }
}

/// A signed-in browser: its session cookie and CSRF token.
#[derive(Debug, Clone)]
struct Portal {
    sid: String,
    csrf: String,
}

impl Portal {
    /// The session a sign-in response (its headers) started.
    fn of(headers: &HeaderMap) -> Self {
        let (sid, attrs) = set_cookie(headers, "sid").unwrap_or_else(|| panic!("no session cookie: {headers:?}"));
        assert!(attrs.contains("HttpOnly") && attrs.contains("SameSite=Lax"), "{attrs}");
        let (csrf, _) = set_cookie(headers, "__csrf").expect("a CSRF cookie");
        assert_eq!(headers["x-harbor-csrf-token"], csrf.as_str(), "the token is also in the header");
        Self { sid, csrf }
    }

    /// The `cookie` header of the session.
    fn cookie(&self) -> String {
        format!("sid={}", self.sid)
    }

    /// A request with the session cookie (and no CSRF token).
    fn bare(&self, berth: &Berth, method: Method, path: &str) -> RequestBuilder {
        berth.api(method, path).header("cookie", self.cookie())
    }

    /// A request with the session cookie and the CSRF token.
    fn call(&self, berth: &Berth, method: Method, path: &str) -> RequestBuilder {
        self.bare(berth, method, path).header("x-harbor-csrf-token", &self.csrf)
    }

    fn current(&self, berth: &Berth) -> Value {
        let r = self.bare(berth, Method::GET, "/users/current").send().unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().unwrap());
        r.json().unwrap()
    }
}

/// What a headless login left: the callback's response, the callback URL
/// and the state cookie it was sent with.
struct Callback {
    response: Response,
    url: String,
    state: String,
}

/// Logs `sub` in through the provider's authorize form.
fn login(berth: &Berth, sub: &str) -> Callback {
    let c = http();
    let r = c.get(berth.server.url("/c/oidc/login")).send().unwrap();
    let authorize = location(&r);
    let (state, attrs) = set_cookie(r.headers(), "__oidc_state").expect("the login's state cookie");
    assert!(attrs.contains("HttpOnly") && attrs.contains("Path=/c/oidc"), "{attrs}");
    let query: Vec<(String, String)> =
        url::Url::parse(&authorize).unwrap().query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    let param = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
    assert_eq!(param("state"), state);
    assert_eq!((param("code_challenge_method").as_str(), param("code_challenge").len()), ("S256", 43));
    assert!(!param("nonce").is_empty() && param("client_id") == "berth");
    assert!(param("scope").split(' ').any(|s| s == "openid"));
    let r = c
        .post(&authorize)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("sub", sub)]))
        .send()
        .unwrap();
    let url = location(&r);
    assert!(url.starts_with(&berth.server.url("/c/oidc/callback?")), "{url}");
    let response = c.get(&url).header("cookie", format!("__oidc_state={state}")).send().unwrap();
    Callback { response, url, state }
}

/// Logs `sub` in and returns the session (the user is onboarded already,
/// or automatic onboarding is on).
fn sign_in(berth: &Berth, sub: &str) -> Portal {
    let cb = login(berth, sub);
    assert_eq!(location(&cb.response), "/", "a signed-in user lands on /");
    Portal::of(cb.response.headers())
}

fn error_code(r: Response) -> (u16, String) {
    let status = r.status().as_u16();
    (status, crate::support::error_code(&r.bytes().unwrap()))
}

// ------------------------------------------------------------ the clients

/// A tiny OCI layout with one file layer, for skopeo.
fn oci_layout(work: &Path, text: &str) -> String {
    let layout = work.join(format!("oci-{}", berth::testkit::unique("")));
    let image = format!("{}:base", layout.display());
    ok(Command::new("umoci").args(["init", "--layout"]).arg(&layout));
    ok(Command::new("umoci").args(["new", "--image", &image]));
    let layer = work.join(berth::testkit::unique("layer-"));
    std::fs::create_dir_all(&layer).unwrap();
    std::fs::write(layer.join("hello.txt"), text).unwrap();
    ok(Command::new("umoci").args(["insert", "--image", &image]).arg(&layer).arg("/"));
    format!("oci:{image}")
}

fn skopeo() -> Command {
    let mut c = Command::new("skopeo");
    c.arg("--insecure-policy");
    c
}

/// skopeo pushes to `repo` with `creds`, then copies it back; both must work.
fn skopeo_push_pull(work: &Path, host: &str, repo: &str, creds: &str) {
    let src = oci_layout(work, repo);
    let dest = format!("docker://{host}/{repo}:1");
    ok(skopeo().args(["copy", "--dest-tls-verify=false", "--dest-creds", creds, &src, &dest]));
    let out = work.join(berth::testkit::unique("pulled-"));
    ok(skopeo()
        .args(["copy", "--src-tls-verify=false", "--src-creds", creds, &dest])
        .arg(format!("dir:{}", out.display())));
    assert!(out.join("manifest.json").exists());
}

/// skopeo's push with `creds` fails; its error.
fn skopeo_push_fails(work: &Path, host: &str, repo: &str, creds: &str) -> String {
    let src = oci_layout(work, repo);
    let dest = format!("docker://{host}/{repo}:1");
    fails(skopeo().args(["copy", "--dest-tls-verify=false", "--dest-creds", creds, &src, &dest]))
}

/// podman (scratch vfs store) imports a rootfs, pushes it with `creds`,
/// removes it and pulls it back.
fn podman_push_pull(work: &Path, host: &str, repo: &str, creds: &str) {
    require("podman", &["--version"]);
    let store = work.join("podman");
    let podman = || {
        let mut c = Command::new("podman");
        c.arg("--root").arg(store.join("root"));
        c.arg("--runroot").arg(store.join("runroot"));
        c.arg("--tmpdir").arg(store.join("libpod"));
        c.args(["--storage-driver", "vfs", "--events-backend", "none"]);
        c.env("TMPDIR", work);
        c
    };
    let rootfs = work.join("rootfs");
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    std::fs::write(rootfs.join("etc/motd"), format!("{repo}\n")).unwrap();
    ok(Command::new("tar").arg("-C").arg(&rootfs).arg("-cf").arg(work.join("rootfs.tar")).arg("."));
    let local = format!("localhost/{}:1", berth::testkit::unique("oidc-e2e-"));
    ok(podman().arg("import").arg(work.join("rootfs.tar")).arg(&local));
    let remote = format!("{host}/{repo}:1");
    ok(podman().args(["push", "--tls-verify=false", "--creds", creds, &local]).arg(format!("docker://{remote}")));
    ok(podman().args(["rmi", &local]));
    ok(podman().args(["pull", "--tls-verify=false", "--creds", creds, &remote]));
}

/// docker logs in with the CLI secret, builds a `FROM scratch` image,
/// pushes it, removes it and pulls it back.
fn docker_push_pull(work: &Path, host: &str, repo: &str, user: &str, secret: &str) {
    require_docker();
    let docker = || docker(work);
    let ctx = scratch_context(work, &format!("{repo}\n"));
    let remote = format!("{host}/{repo}:1");
    let login = |password: &str| docker_login(work, host, user, password);
    assert!(!login("Wrong1Secret").status.success(), "a wrong secret is refused");
    let right = login(secret);
    assert!(right.status.success(), "docker login: {}", String::from_utf8_lossy(&right.stderr));
    let built = ok(docker().args(["build", "-q", "-t", &remote]).arg(&ctx)).trim().to_owned();
    let pushed = exec(docker().args(["push", &remote]), None, CLIENT_TIMEOUT);
    let _ = exec(docker().args(["rmi", "-f", &remote, &built]), None, CLIENT_TIMEOUT);
    assert!(pushed.status.success(), "docker push: {}", String::from_utf8_lossy(&pushed.stderr));
    let pulled = exec(docker().args(["pull", &remote]), None, CLIENT_TIMEOUT);
    let _ = exec(docker().args(["rmi", "-f", &remote]), None, CLIENT_TIMEOUT);
    assert!(pulled.status.success(), "docker pull: {}", String::from_utf8_lossy(&pulled.stderr));
    ok(docker().args(["logout", host]));
}

// ------------------------------------------------------------------ tests

pub(crate) fn user(sub: &str, name: &str, groups: &[&str]) -> Value {
    json!({ "sub": sub, "name": name, "email": format!("{name}@example.org"), "groups": groups })
}

/// The OIDC settings of these tests, for `provider`.
pub(crate) fn oidc_settings(provider: &Provider) -> Value {
    json!({
        "auth_mode": "oidc_auth",
        "oidc_name": "mock",
        "oidc_endpoint": provider.url,
        "oidc_client_id": "berth",
        "oidc_client_secret": "client-s3cret",
        "oidc_scope": "openid,profile,email,offline_access",
        "oidc_groups_claim": "groups",
        "oidc_admin_group": "admins",
        "oidc_group_filter": "^(developers|qa-team|admins)$",
        "oidc_user_claim": "name",
        "oidc_verify_cert": true,
        "oidc_auto_onboard": true,
        "oidc_logout": true,
    })
}

/// The whole OIDC story on one server.
#[test]
fn oidc_login_sessions_and_cli_secrets() {
    require("skopeo", &["--version"]);
    require("umoci", &["--version"]);
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let provider = Provider::start(
        work,
        &[
            user("alice-sub", "alice", &["developers"]),
            user("bob-sub", "bob", &["admins", "developers"]),
            user("dave-sub", "dave", &["qa-team", "not-ours"]),
            user("eve-sub", "eve", &[]),
            user("frank-sub", "frank", &[]),
            user("carol-sub", "carol", &[]),
            user("gina-sub", "gina", &[]),
        ],
    );
    let berth = Berth::start();
    let host = berth.host();

    // The administrator checks the provider, then switches to OIDC.
    let ping =
        |url: &str| berth.admin(Method::POST, "/system/oidc/ping").json(&json!({ "url": url, "verify_cert": true }));
    assert_eq!(ping(&provider.url).send().unwrap().status(), 200);
    assert_eq!(error_code(ping(&berth.server.url("")).send().unwrap()), (400, "BAD_REQUEST".into()), "not a provider");
    let anonymous_ping = berth.api(Method::POST, "/system/oidc/ping").json(&json!({ "url": provider.url }));
    assert_eq!(anonymous_ping.send().unwrap().status(), 401);
    // Before OIDC is on, its endpoints say so.
    let r = http().get(berth.server.url("/c/oidc/login")).header("accept", "text/html").send().unwrap();
    assert_eq!(r.status(), 412);
    assert!(r.text().unwrap().contains("not OIDC based"));
    berth.configure(oidc_settings(&provider));
    let info: Value = berth.api(Method::GET, "/systeminfo").send().unwrap().json().unwrap();
    assert_eq!((info["auth_mode"].as_str(), info["oidc_provider_name"].as_str()), (Some("oidc_auth"), Some("mock")));

    // Automatic onboarding; the session reads the user and its CLI secret.
    let cb = login(&berth, "alice-sub");
    assert_eq!(location(&cb.response), "/");
    let (cleared, _) = set_cookie(cb.response.headers(), "__oidc_state").unwrap();
    assert_eq!(cleared, "", "the state cookie is cleared");
    let alice = Portal::of(cb.response.headers());
    let me = alice.current(&berth);
    assert_eq!(me["username"], "alice");
    assert_eq!(me["email"], "alice@example.org");
    assert_eq!(me["admin_role_in_auth"], false);
    let alice_id = me["user_id"].as_i64().unwrap();
    let secret = me["oidc_user_meta"]["secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 32, "{me}");
    assert_eq!(me["oidc_user_meta"]["subiss"], format!("alice-sub{}", provider.url));
    let listed: Value = berth.admin(Method::GET, "/users").send().unwrap().json().unwrap();
    assert!(listed.to_string().find(&secret).is_none(), "a listing never shows CLI secrets");
    let by_id: Value = berth.admin(Method::GET, &format!("/users/{alice_id}")).send().unwrap().json().unwrap();
    assert_eq!(by_id["oidc_user_meta"]["secret"], secret.as_str(), "administrators read it too");

    // The callback works once: the same code and state again is refused.
    let replay = http().get(&cb.url).header("cookie", format!("__oidc_state={}", cb.state)).send().unwrap();
    assert_eq!(replay.status(), 400, "state replay");
    assert!(set_cookie(replay.headers(), "sid").is_none());
    // A callback without the browser's state cookie is refused.
    let cb2 = login(&berth, "alice-sub");
    assert_eq!(cb2.response.status(), 302);
    let r = http().get(&cb2.url).header("cookie", "__oidc_state=someone-elses-login-state").send().unwrap();
    assert_eq!(r.status(), 400);
    let r = http().get(&cb2.url).send().unwrap();
    assert_eq!(r.status(), 400);
    // A login may only return to a local path.
    let r = http().get(berth.server.url("/c/oidc/login?redirect_url=https://evil.example/")).send().unwrap();
    assert_eq!(r.status(), 400);

    // CSRF: the session's unsafe requests need its token.
    let rotate = |p: &Portal, id: i64, secret: &str| {
        p.call(&berth, Method::PUT, &format!("/users/{id}/cli_secret")).json(&json!({ "secret": secret }))
    };
    let r = alice
        .bare(&berth, Method::PUT, &format!("/users/{alice_id}/cli_secret"))
        .json(&json!({ "secret": "Csrf1Secret" }));
    assert_eq!(error_code(r.send().unwrap()), (403, "FORBIDDEN".into()), "no CSRF token");
    let r = alice
        .bare(&berth, Method::PUT, &format!("/users/{alice_id}/cli_secret"))
        .header("x-harbor-csrf-token", "forged")
        .json(&json!({ "secret": "Csrf1Secret" }));
    assert_eq!(r.send().unwrap().status(), 403, "a wrong CSRF token");
    let tampered = Portal { sid: format!("{}x", alice.sid), ..alice.clone() };
    assert_eq!(
        tampered.bare(&berth, Method::GET, "/users/current").send().unwrap().status(),
        401,
        "a tampered session"
    );

    // A private project: alice is a member; the OIDC group qa-team is one
    // (dave's login onboards the group).
    let dave = sign_in(&berth, "dave-sub");
    let groups: Value = berth.admin(Method::GET, "/usergroups").send().unwrap().json().unwrap();
    let names: Vec<&str> = groups.as_array().unwrap().iter().map(|g| g["group_name"].as_str().unwrap()).collect();
    assert!(names.contains(&"qa-team") && !names.contains(&"not-ours"), "filtered groups: {names:?}");
    let r = berth
        .admin(Method::POST, "/projects")
        .json(&json!({ "project_name": "oidcp", "metadata": { "public": "false" } }));
    assert_eq!(r.send().unwrap().status(), 201);
    for member in [
        json!({ "role_id": 2, "member_user": { "username": "alice" } }),
        json!({ "role_id": 2, "member_group": { "group_name": "qa-team", "group_type": 3 } }),
    ] {
        let r = berth.admin(Method::POST, "/projects/oidcp/members").json(&member).send().unwrap();
        assert_eq!(r.status(), 201, "{member}: {}", r.text().unwrap());
    }

    // The CLI secret is alice's password for skopeo, podman and docker.
    let creds = format!("alice:{secret}");
    skopeo_push_pull(work, &host, "oidcp/skopeo", &creds);
    podman_push_pull(work, &host, "oidcp/podman", &creds);
    docker_push_pull(work, &host, "oidcp/docker", "alice", &secret);
    // Only for registry clients: the API takes it for a project listing,
    // not for account changes.
    let basic = |method: Method, path: &str| berth.api(method, path).basic_auth("alice", Some(&secret));
    assert_eq!(basic(Method::GET, "/projects").send().unwrap().status(), 200);
    assert_eq!(basic(Method::GET, "/users/current").send().unwrap().status(), 401);
    let r = basic(Method::PUT, &format!("/users/{alice_id}/cli_secret")).json(&json!({ "secret": "Basic1Secret" }));
    assert_eq!(r.send().unwrap().status(), 401);

    // The group's member pushes; a user in no group of the project cannot.
    let dave_secret = dave.current(&berth)["oidc_user_meta"]["secret"].as_str().unwrap().to_owned();
    skopeo_push_pull(work, &host, "oidcp/dave", &format!("dave:{dave_secret}"));
    let frank = sign_in(&berth, "frank-sub");
    let frank_secret = frank.current(&berth)["oidc_user_meta"]["secret"].as_str().unwrap().to_owned();
    let err = skopeo_push_fails(work, &host, "oidcp/frank", &format!("frank:{frank_secret}"));
    assert!(err.contains("denied") || err.contains("unauthorized") || err.contains("authentication required"), "{err}");

    // The admin group makes bob a system administrator.
    let bob = sign_in(&berth, "bob-sub");
    assert_eq!(bob.current(&berth)["admin_role_in_auth"], true);
    assert_eq!(bob.bare(&berth, Method::GET, "/users").send().unwrap().status(), 200);
    assert_eq!(alice.bare(&berth, Method::GET, "/users").send().unwrap().status(), 403);
    let bob_secret = bob.current(&berth)["oidc_user_meta"]["secret"].as_str().unwrap().to_owned();
    skopeo_push_pull(work, &host, "oidcp/bob", &format!("bob:{bob_secret}"));

    // Rotation: the old secret stops working, the new one works.
    assert_eq!(error_code(rotate(&alice, alice_id, "weak").send().unwrap()), (400, "BAD_REQUEST".into()), "policy");
    let bob_id = bob.current(&berth)["user_id"].as_i64().unwrap();
    assert_eq!(rotate(&alice, bob_id, "Other1Secret").send().unwrap().status(), 403, "not another user's");
    assert_eq!(rotate(&alice, alice_id, "Rotated1Secret").send().unwrap().status(), 200);
    assert_eq!(alice.current(&berth)["oidc_user_meta"]["secret"], "Rotated1Secret");
    let err = skopeo_push_fails(work, &host, "oidcp/skopeo", &creds);
    assert!(err.contains("unauthorized") || err.contains("401") || err.contains("invalid"), "{err}");
    skopeo_push_pull(work, &host, "oidcp/skopeo", "alice:Rotated1Secret");
    // An empty secret is generated; an administrator may set anyone's.
    assert_eq!(rotate(&alice, alice_id, "").send().unwrap().status(), 200);
    let generated = alice.current(&berth)["oidc_user_meta"]["secret"].as_str().unwrap().to_owned();
    assert!(generated.len() == 32 && generated != "Rotated1Secret");
    assert_eq!(rotate(&bob, alice_id, "ByAdmin1Secret").send().unwrap().status(), 200);

    // The provider keeps the CLI secret honest. Once the access token of
    // the login has expired, a CLI login refreshes it and takes the groups
    // from the provider's answer: eve signed in with no group, then joined
    // qa-team at the provider...
    let eve = sign_in(&berth, "eve-sub");
    let eve_secret = eve.current(&berth)["oidc_user_meta"]["secret"].as_str().unwrap().to_owned();
    provider.set_user("eve-sub", &user("eve-sub", "eve", &["qa-team"]));
    std::thread::sleep(Duration::from_secs(TOKEN_SECS + 1));
    skopeo_push_pull(work, &host, "oidcp/eve", &format!("eve:{eve_secret}"));
    // ... and a refresh the provider refuses refuses the secret, until the
    // user signs in to the portal again.
    let _ = sign_in(&berth, "alice-sub");
    provider.revoke("alice-sub");
    berth.configure(json!({ "oidc_auto_onboard": true })); // forgets remembered credentials
    std::thread::sleep(Duration::from_secs(TOKEN_SECS + 1));
    let err = skopeo_push_fails(work, &host, "oidcp/skopeo", "alice:ByAdmin1Secret");
    assert!(err.contains("unauthorized") || err.contains("401") || err.contains("invalid"), "{err}");
    assert!(berth.server.log_text().contains("invalid_grant"), "refused by the provider's refresh");
    let alice = sign_in(&berth, "alice-sub");
    skopeo_push_pull(work, &host, "oidcp/skopeo", "alice:ByAdmin1Secret");

    // Onboarding with a chosen name, when automatic onboarding is off.
    berth.configure(json!({ "oidc_auto_onboard": false }));
    let cb = login(&berth, "carol-sub");
    let to = location(&cb.response);
    assert!(to.starts_with("/oidc-onboard?username=carol"), "{to}");
    assert!(set_cookie(cb.response.headers(), "sid").is_none(), "no session before onboarding");
    let (pending, _) = set_cookie(cb.response.headers(), "__oidc_onboard").unwrap();
    let onboard = |name: &str, cookie: &str| {
        http()
            .post(berth.server.url("/c/oidc/onboard"))
            .header("cookie", format!("__oidc_onboard={cookie}"))
            .json(&json!({ "username": name }))
            .send()
            .unwrap()
    };
    assert_eq!(error_code(onboard("alice", &pending)), (409, "CONFLICT".into()), "a taken name");
    assert_eq!(onboard("bad,name", &pending).status(), 400);
    assert_eq!(onboard("carol-picked", "unknown-onboarding-id-000").status(), 400);
    let r = onboard("carol-picked", &pending);
    assert_eq!(r.status(), 200);
    let carol = Portal::of(r.headers());
    assert_eq!(carol.current(&berth)["username"], "carol-picked");
    assert_eq!(onboard("carol-again", &pending).status(), 400, "an onboarding is used once");
    // Later logins find her by subject and issuer, not by name.
    let again = sign_in(&berth, "carol-sub");
    assert_eq!(again.current(&berth)["username"], "carol-picked");

    // The same through the portal's pages: the sign-in page offers the
    // provider; the onboarding page's form posts to /c/oidc/onboard and
    // lands where the login was going, or comes back with the reason.
    let page = http().get(berth.server.url("/account/sign-in?redirect_url=/harbor/projects")).send().unwrap();
    let html = page.text().unwrap();
    assert!(html.contains("href=\"/c/oidc/login?redirect_url=%2Fharbor%2Fprojects\""), "{html}");
    let cb = login(&berth, "gina-sub");
    let to = location(&cb.response);
    let page = http().get(berth.server.url(&to)).send().unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().unwrap();
    assert!(html.contains("action=\"/c/oidc/onboard\"") && html.contains("value=\"gina\""), "{html}");
    let (pending, _) = set_cookie(cb.response.headers(), "__oidc_onboard").unwrap();
    let post = |name: &str| {
        http()
            .post(berth.server.url("/c/oidc/onboard"))
            .header("cookie", format!("__oidc_onboard={pending}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("username", name), ("redirect_url", "/harbor/projects")]))
            .send()
            .unwrap()
    };
    let see_other = |r: &Response| {
        assert_eq!(r.status(), 303);
        r.headers()["location"].to_str().unwrap().to_owned()
    };
    let back = see_other(&post("alice"));
    assert!(back.starts_with("/oidc-onboard?username=alice") && back.contains("&error="), "{back}");
    let r = post("gina-picked");
    assert_eq!(see_other(&r), "/harbor/projects");
    let gina = Portal::of(r.headers());
    assert_eq!(gina.current(&berth)["username"], "gina-picked");
    // Her CLI secret page shows the secret, and its form replaces it.
    let secret = gina.current(&berth)["oidc_user_meta"]["secret"].as_str().unwrap().to_owned();
    let cookie = format!("sid={}", gina.sid);
    let page = http().get(berth.server.url("/account/cli-secret")).header("cookie", &cookie).send().unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().unwrap().contains(&format!("<code id=\"cli-secret\">{secret}</code>")));
    let r = http()
        .post(berth.server.url("/account/cli-secret"))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("_csrf", &gina.csrf), ("secret", "Gina1NewSecret")]))
        .send()
        .unwrap();
    assert_eq!(see_other(&r), "/account/cli-secret?done=The+CLI+secret+was+replaced.");
    assert_eq!(gina.current(&berth)["oidc_user_meta"]["secret"], "Gina1NewSecret");

    // Portal login under OIDC: Harbor's redirect for users, the password
    // for the administrator.
    let r = berth.portal_login("alice", "anything");
    assert_eq!(r.status(), 403);
    let body: Value = r.json().unwrap();
    assert_eq!(body["redirect_location"], berth.server.url("/c/oidc/login"));
    assert_eq!(berth.portal_login("admin", "wrong").status(), 401);
    let admin = Portal::of(berth.portal_login("admin", ADMIN_PASSWORD).headers());
    assert_eq!(admin.current(&berth)["username"], "admin");

    // Logout ends the session here (its cookie no longer works) and, with
    // oidc_logout, at the provider.
    let r = http().get(berth.server.url("/c/log_out")).header("cookie", format!("sid={}", alice.sid)).send().unwrap();
    let end = location(&r);
    assert!(
        end.starts_with(&format!("{}/oauth2/end_session?", provider.url)) && end.contains("id_token_hint="),
        "{end}"
    );
    assert_eq!(set_cookie(r.headers(), "sid").unwrap().0, "", "the cookie is cleared");
    assert_eq!(alice.bare(&berth, Method::GET, "/users/current").send().unwrap().status(), 401, "revoked");
    assert_eq!(carol.current(&berth)["username"], "carol-picked", "other sessions live on");
    assert!(!berth.server.log_text().contains(&secret), "no CLI secret in the log");
}

/// The flow on the AWS backends: the login state, the identity item, the
/// session revocation and the user's sealed secrets live in DynamoDB.
#[test]
fn oidc_login_on_aws() {
    let Some(berth) = Berth::aws("oidc_login_on_aws") else { return };
    require("skopeo", &["--version"]);
    require("umoci", &["--version"]);
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let provider = Provider::start(work, &[user("alice-sub", "alice", &["qa-team"])]);
    berth.configure(oidc_settings(&provider));
    let cb = login(&berth, "alice-sub");
    assert_eq!(location(&cb.response), "/");
    let alice = Portal::of(cb.response.headers());
    let replay = http().get(&cb.url).header("cookie", format!("__oidc_state={}", cb.state)).send().unwrap();
    assert_eq!(replay.status(), 400, "state replay");
    let me = alice.current(&berth);
    let secret = me["oidc_user_meta"]["secret"].as_str().unwrap().to_owned();
    let path = format!("/users/{}/cli_secret", me["user_id"]);
    let r = alice.bare(&berth, Method::PUT, &path).json(&json!({ "secret": "Csrf1Secret" }));
    assert_eq!(r.send().unwrap().status(), 403, "no CSRF token");

    let r = berth
        .admin(Method::POST, "/projects")
        .json(&json!({ "project_name": "oidcaws", "metadata": { "public": "false" } }));
    assert_eq!(r.send().unwrap().status(), 201);
    let member = json!({ "role_id": 2, "member_group": { "group_name": "qa-team", "group_type": 3 } });
    assert_eq!(berth.admin(Method::POST, "/projects/oidcaws/members").json(&member).send().unwrap().status(), 201);
    skopeo_push_pull(work, &berth.host(), "oidcaws/skopeo", &format!("alice:{secret}"));

    let r = http().get(berth.server.url("/c/log_out")).header("cookie", format!("sid={}", alice.sid)).send().unwrap();
    assert_eq!(r.status(), 302, "to the provider's end-session endpoint");
    assert_eq!(alice.bare(&berth, Method::GET, "/users/current").send().unwrap().status(), 401, "revoked");
    let again = sign_in(&berth, "alice-sub");
    assert_eq!(again.current(&berth)["username"], "alice", "found again by subject");
}

/// Sessions in `db_auth` mode: `/c/login` for a local user, the CSRF
/// rule, logout; CLI secrets are refused outside `oidc_auth`. No provider
/// is involved, so the router runs in process.
#[tokio::test(flavor = "multi_thread")]
async fn portal_sessions_for_local_users() {
    let app = TestApp::local().await;
    let r = app
        .admin()
        .post("/api/v2.0/users")
        .json(&json!({ "username": "lu", "email": "lu@example.org", "realname": "L U", "password": "Passw0rd1" }))
        .send()
        .await;
    assert_eq!(r.code(), 201);
    // `POST /c/login` with a form, as Harbor's portal sends it (from a page
    // of `origin`, when given).
    let portal_login = |origin: Option<String>, principal: &'static str, password: &'static str| {
        let app = &app;
        async move {
            let mut req = app
                .post("/c/login")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form(&[("principal", principal), ("password", password)]));
            if let Some(origin) = origin {
                req = req.header("origin", &origin);
            }
            req.send().await
        }
    };
    assert_eq!(portal_login(None, "lu", "wrong").await.code(), 401);
    assert_eq!(portal_login(None, "ghost", "Passw0rd1").await.code(), 401);
    let cross = portal_login(Some("https://evil.example".to_owned()), "lu", "Passw0rd1").await;
    assert_eq!(cross.code(), 403, "a login posted from another site");
    let same_site = portal_login(Some(app.url("")), "lu", "Passw0rd1").await;
    assert_eq!(same_site.code(), 200, "a login posted from the registry's own page");
    let lu = Portal::of(&portal_login(None, "lu", "Passw0rd1").await.headers);
    let bare =
        |method: Method, path: &str| app.request(method, &format!("/api/v2.0{path}")).header("cookie", &lu.cookie());
    let call = |method: Method, path: &str| bare(method, path).header("x-harbor-csrf-token", &lu.csrf);
    let current = || async move {
        let r = bare(Method::GET, "/users/current").send().await;
        assert_eq!(r.code(), 200, "{}", r.text());
        r.json::<Value>()
    };
    let me = current().await;
    assert_eq!(me["username"], "lu");
    let id = me["user_id"].as_i64().unwrap();
    assert_eq!(me["oidc_user_meta"], Value::Null);

    let profile = json!({ "email": "lu2@example.org", "realname": "L U", "comment": "" });
    let r = bare(Method::PUT, &format!("/users/{id}")).json(&profile).send().await;
    assert_eq!(r.status_and_code(), (403, "FORBIDDEN".into()), "no CSRF token");
    let r = call(Method::PUT, &format!("/users/{id}")).json(&profile).send().await;
    assert_eq!(r.code(), 200);
    assert!(r.headers.contains_key("x-harbor-csrf-token"));
    assert_eq!(current().await["email"], "lu2@example.org");
    // A request with credentials of its own is judged by them, not the cookie.
    let r = bare(Method::GET, "/users/current").basic("admin", ADMIN_PASSWORD).send().await;
    assert_eq!(r.json::<Value>()["username"], "admin");

    let r = call(Method::PUT, &format!("/users/{id}/cli_secret")).json(&json!({ "secret": "Valid1Secret" }));
    assert_eq!(r.send().await.status_and_code(), (412, "PRECONDITION".into()), "no CLI secrets outside oidc_auth");

    let r = app.get("/c/log_out").header("cookie", &lu.cookie()).send().await;
    assert_eq!(r.code(), 200);
    assert_eq!(bare(Method::GET, "/users/current").send().await.code(), 401);
    // Logging out without a session is fine.
    assert_eq!(app.get("/c/log_out").send().await.code(), 200);
}

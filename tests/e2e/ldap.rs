//! LDAP end to end: the real `berth` binary in `ldap_auth` mode against a
//! real slapd ([`berth::testkit::ldap`]), over ldaps with its certificate
//! verified. The administrator configures LDAP through `/configurations`;
//! LDAP users sign in with skopeo, podman and docker and push and pull in
//! a project where they are members, by name or through an LDAP group; a
//! member of the admin group is a system administrator; wrong passwords
//! get a 401 with an error body; a directory that went away is a 503;
//! Harbor's `/ldap` API answers in Harbor's shapes.
//!
//! The `/ldap` API test speaks only HTTP, yet runs on the binary too: berth
//! trusts each test's own slapd CA through `SSL_CERT_FILE`, which the LDAP
//! client reads once per process, so it cannot vary between tests sharing
//! one.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use berth::testkit::ldap::{self as fixture, ALICE, BOB, CAROL, DAVE, Slapd};
use reqwest::Method;
use reqwest::blocking::{Client, RequestBuilder, Response};
use serde_json::{Value, json};

use crate::support::Server;
use crate::support::cli::{
    CLIENT_TIMEOUT, DockerCleanup, docker, docker_login, exec, fails, ok, require, require_docker, scratch_context,
};

const ADMIN_PASSWORD: &str = "Harbor12345";
const PROJECT: &str = "ldap-team";

/// berth (trusting slapd's CA) and slapd, for one test.
struct World {
    slapd: Slapd,
    server: Server,
    http: Client,
    _dir: tempfile::TempDir,
}

impl World {
    fn start(test: &str) -> Option<Self> {
        let slapd = Slapd::start(test)?;
        let dir = tempfile::tempdir().unwrap();
        let ca = slapd.ca_file();
        let server = Server::start(
            dir.path(),
            &["--data", "data"],
            &[("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD), ("SSL_CERT_FILE", ca.to_str().unwrap())],
        );
        let http = Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
        Some(Self { slapd, server, http, _dir: dir })
    }

    fn host(&self) -> String {
        self.server.addr.to_string()
    }

    fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.server.url(path))
    }

    fn admin(&self, method: Method, path: &str) -> RequestBuilder {
        self.req(method, path).basic_auth("admin", Some(ADMIN_PASSWORD))
    }

    fn as_user(&self, user: &fixture::FixtureUser, method: Method, path: &str) -> RequestBuilder {
        self.req(method, path).basic_auth(user.uid, Some(user.password))
    }

    /// The LDAP settings of this slapd, over ldaps with the certificate
    /// verified.
    fn ldap_settings(&self) -> Value {
        json!({
            "ldap_url": self.slapd.ldaps_url(),
            "ldap_verify_cert": true,
            "ldap_search_dn": fixture::READER_DN,
            "ldap_search_password": fixture::READER_PW,
            "ldap_base_dn": fixture::BASE_DN,
            "ldap_filter": fixture::USER_FILTER,
            "ldap_uid": "uid",
            "ldap_scope": 2,
            "ldap_timeout": 3,
            "ldap_group_base_dn": fixture::GROUPS_DN,
            "ldap_group_search_filter": fixture::GROUP_FILTER,
            "ldap_group_attribute_name": "cn",
            "ldap_group_search_scope": 2,
            "ldap_group_admin_dn": fixture::group_dn("admins"),
            "ldap_group_membership_attribute": "memberof",
        })
    }

    /// Switches to `ldap_auth` with [`Self::ldap_settings`].
    fn enable_ldap(&self) {
        let mut body = self.ldap_settings();
        body["auth_mode"] = json!("ldap_auth");
        expect(self.admin(Method::PUT, "/api/v2.0/configurations").json(&body), 200);
    }
}

/// Sends and checks the status; the response.
fn expect(rb: RequestBuilder, status: u16) -> Response {
    let r = rb.send().unwrap();
    if r.status().as_u16() != status {
        panic!("expected {status}, got {}: {}", r.status(), r.text().unwrap_or_default());
    }
    r
}

/// A Harbor error body's code.
fn error_code(r: Response) -> String {
    crate::support::error_code(&r.bytes().unwrap())
}

/// A one-layer OCI image in `work/src`; the skopeo source reference.
fn small_image(work: &Path) -> String {
    let layout = work.join("src");
    let image = format!("{}:base", layout.display());
    let files = work.join("files");
    std::fs::create_dir_all(files.join("etc")).unwrap();
    std::fs::write(files.join("etc/motd"), "pushed by an LDAP user\n").unwrap();
    ok(Command::new("umoci").args(["init", "--layout"]).arg(&layout));
    ok(Command::new("umoci").args(["new", "--image", &image]));
    ok(Command::new("umoci").args(["insert", "--image", &image]).arg(&files).arg("/"));
    format!("oci:{image}")
}

fn skopeo() -> Command {
    let mut c = Command::new("skopeo");
    c.arg("--insecure-policy");
    c
}

fn creds(u: &fixture::FixtureUser) -> String {
    format!("{}:{}", u.uid, u.password)
}

#[test]
fn ldap_users_push_and_pull_with_real_clients() {
    let Some(mut world) = World::start("ldap_users_push_and_pull_with_real_clients") else { return };
    require("skopeo", &["--version"]);
    require("podman", &["--version"]);
    require("umoci", &["--version"]);
    world.enable_ldap();
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let host = world.host();

    // A private project: alice a Developer by name (onboarded from LDAP),
    // the qa group (bob) a Developer by DN.
    expect(world.admin(Method::POST, "/api/v2.0/projects").json(&json!({"project_name": PROJECT})), 201);
    let members = format!("/api/v2.0/projects/{PROJECT}/members");
    expect(world.admin(Method::POST, &members).json(&json!({"role_id": 2, "member_user": {"username": "alice"}})), 201);
    let qa = fixture::group_dn("qa");
    expect(
        world.admin(Method::POST, &members).json(&json!({"role_id": 2, "member_group": {"ldap_group_dn": qa}})),
        201,
    );
    let listed: Value = expect(world.admin(Method::GET, &members), 200).json().unwrap();
    let names: Vec<&str> = listed.as_array().unwrap().iter().map(|m| m["entity_name"].as_str().unwrap()).collect();
    assert!(names.contains(&"alice") && names.contains(&"qa"), "{listed}");
    let unknown = json!({"role_id": 2, "member_user": {"username": "nobody"}});
    assert_eq!(error_code(expect(world.admin(Method::POST, &members).json(&unknown), 404)), "NOT_FOUND");

    // skopeo: alice pushes, bob (through qa) pulls and pushes, dave (no
    // member) may not read.
    let src = small_image(work);
    let dest = |tag: &str| format!("docker://{host}/{PROJECT}/app:{tag}");
    let push = |who: &fixture::FixtureUser, tag: &str| {
        ok(skopeo().args(["copy", "--dest-tls-verify=false", "--dest-creds", &creds(who), &src, &dest(tag)]))
    };
    push(&ALICE, "alice");
    let out = work.join("pulled");
    ok(skopeo()
        .args(["copy", "--src-tls-verify=false", "--src-creds", &creds(&BOB), &dest("alice")])
        .arg(format!("dir:{}", out.display())));
    assert!(out.join("manifest.json").is_file());
    push(&BOB, "bob");
    let err = fails(skopeo().args(["inspect", "--tls-verify=false", "--creds", &creds(&DAVE), &dest("alice")]));
    assert!(err.contains("denied") || err.contains("unauthorized") || err.contains("401"), "{err}");
    let err = fails(skopeo().args(["inspect", "--tls-verify=false", "--creds", "alice:wrong", &dest("alice")]));
    assert!(err.contains("unauthorized") || err.contains("401") || err.contains("invalid"), "{err}");

    // podman: bob signs in, pushes, removes and pulls back.
    let authfile = work.join("podman-auth.json");
    let podman = || {
        let mut c = Command::new("podman");
        c.arg("--root").arg(work.join("root")).arg("--runroot").arg(work.join("runroot"));
        c.arg("--tmpdir").arg(work.join("libpod"));
        c.args(["--storage-driver", "vfs", "--events-backend", "none"]);
        c.env("TMPDIR", work);
        c
    };
    let login = |password: &str| {
        exec(
            podman()
                .args(["login", "--tls-verify=false", "-u", BOB.uid, "--password-stdin"])
                .arg("--authfile")
                .arg(&authfile)
                .arg(&host),
            Some(password.as_bytes()),
            CLIENT_TIMEOUT,
        )
    };
    assert!(!login("wrong").status.success(), "podman login with a wrong password fails");
    let logged = login(BOB.password);
    assert!(logged.status.success(), "podman login: {}", String::from_utf8_lossy(&logged.stderr));
    let tar = work.join("rootfs.tar");
    ok(Command::new("tar").arg("-C").arg(work.join("files")).arg("-cf").arg(&tar).arg("."));
    let local = "localhost/berth-ldap-e2e:1";
    ok(podman().arg("import").arg(&tar).arg(local));
    let remote = format!("{host}/{PROJECT}/podman:1");
    let authed = |c: &mut Command| {
        c.args(["--tls-verify=false", "--authfile"]).arg(&authfile);
    };
    let mut c = podman();
    c.arg("push");
    authed(&mut c);
    ok(c.arg(local).arg(format!("docker://{remote}")));
    ok(podman().args(["rmi", local]));
    let mut c = podman();
    c.arg("pull");
    authed(&mut c);
    ok(c.arg(&remote));

    // docker: alice signs in, pushes and pulls.
    docker_round_trip(&world, work);

    // carol is in the admin group: a system administrator.
    let catalog = expect(world.as_user(&CAROL, Method::GET, "/v2/_catalog"), 200).json::<Value>().unwrap();
    let repos = catalog["repositories"].as_array().unwrap();
    assert!(repos.contains(&json!(format!("{PROJECT}/app"))), "{catalog}");
    let carol: Value = expect(world.as_user(&CAROL, Method::GET, "/api/v2.0/users/current"), 200).json().unwrap();
    assert_eq!(carol["admin_role_in_auth"], true, "{carol}");
    let alice: Value = expect(world.as_user(&ALICE, Method::GET, "/api/v2.0/users/current"), 200).json().unwrap();
    assert_eq!((alice["admin_role_in_auth"].clone(), alice["email"].clone()), (json!(false), json!(ALICE.mail)));
    let r = world.as_user(&ALICE, Method::GET, "/v2/_catalog").send().unwrap();
    assert!(matches!(r.status().as_u16(), 401 | 403), "alice sees no catalog: {}", r.status());

    // Wrong credentials: 401 with an error body, the same for an unknown
    // user; an empty password is never a login.
    let impostor = fixture::LDAP_ADMIN.password;
    for (user, password) in [
        ("alice", "wrong"),
        ("nobody", "whatever"),
        ("alice", ""),
        ("bob", ALICE.password),
        ("admin", impostor),
        ("Admin", impostor),
    ] {
        let r = expect(world.req(Method::GET, "/api/v2.0/users/current").basic_auth(user, Some(password)), 401);
        assert_eq!(error_code(r), "UNAUTHORIZED", "{user}");
        let r = expect(
            world.req(Method::GET, "/service/token?service=harbor-registry").basic_auth(user, Some(password)),
            401,
        );
        let body: Value = r.json().unwrap();
        assert!(body["errors"][0]["message"].is_string(), "{body}");
        let r = expect(world.req(Method::GET, "/v2/").basic_auth(user, Some(password)), 401);
        let body: Value = r.json().unwrap();
        assert_eq!(body["errors"][0]["code"], "UNAUTHORIZED", "{body}");
    }
    // The administrator keeps its local password in ldap_auth mode.
    let me: Value = expect(world.admin(Method::GET, "/api/v2.0/users/current"), 200).json().unwrap();
    assert_eq!(me["username"], "admin");

    // A directory that went away: 503, never a login.
    world.slapd.stop();
    let r = expect(world.req(Method::GET, "/api/v2.0/users/current").basic_auth("bob", Some("not-cached")), 503);
    assert_eq!(error_code(r), "SERVICE_UNAVAILABLE");
    expect(world.req(Method::GET, "/service/token?service=harbor-registry").basic_auth("bob", Some("x")), 503);
    expect(world.admin(Method::GET, "/api/v2.0/users/current"), 200);
}

/// docker (a `FROM scratch` image) as alice: a wrong password is refused,
/// the right one signs in, push, remove, pull.
fn docker_round_trip(world: &World, work: &Path) {
    require_docker();
    let host = world.host();
    let name = berth::testkit::unique("berth-ldap-");
    let local = format!("{name}:build");
    let remote = format!("{host}/{PROJECT}/docker:1");
    let mut cleanup = DockerCleanup { images: vec![local.clone(), remote.clone()], containers: Vec::new() };
    let docker = || docker(work);
    let ctx = scratch_context(work, &format!("hello from {name}\n"));
    ok(docker().args(["build", "-q", "-t", &local]).arg(&ctx));
    let login = |password: &str| docker_login(work, &host, ALICE.uid, password);
    assert!(!login("wrong").status.success(), "docker login with a wrong password fails");
    let right = login(ALICE.password);
    assert!(right.status.success(), "docker login: {}", String::from_utf8_lossy(&right.stderr));
    ok(docker().args(["tag", &local, &remote]));
    ok(docker().args(["push", &remote]));
    ok(docker().args(["rmi", &local, &remote]));
    ok(docker().args(["pull", &remote]));
    ok(docker().args(["logout", &host]));
    cleanup.run();
}

#[test]
fn ldap_api_answers_in_harbors_shapes() {
    let Some(world) = World::start("ldap_api_answers_in_harbors_shapes") else { return };
    let ping = |body: Option<Value>| -> Value {
        let mut rb = world.admin(Method::POST, "/api/v2.0/ldap/ping");
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        expect(rb, 200).json().unwrap()
    };

    // Settings can be tried before they are stored.
    let plain = json!({"ldap_url": world.slapd.url(), "ldap_search_dn": fixture::READER_DN,
        "ldap_search_password": fixture::READER_PW, "ldap_base_dn": fixture::BASE_DN, "ldap_uid": "uid",
        "ldap_scope": 2, "ldap_connection_timeout": 2, "ldap_verify_cert": false});
    assert_eq!(ping(Some(plain.clone())), json!({"success": true}));
    let mut wrong = plain.clone();
    wrong["ldap_search_password"] = json!("nope");
    let answer = ping(Some(wrong));
    assert_eq!(answer["success"], false);
    let message = answer["message"].as_str().unwrap();
    assert!(message.starts_with("error: ") && message.contains("invalidCredentials"), "{message}");
    assert!(!message.contains("nope"), "no password in messages: {message}");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("ldap://127.0.0.1:{}", closed.local_addr().unwrap().port());
    drop(closed);
    let mut down = plain.clone();
    down["ldap_url"] = json!(dead);
    assert_eq!(ping(Some(down))["success"], false);
    let mut bad = plain.clone();
    bad["ldap_scope"] = json!(7);
    expect(world.admin(Method::POST, "/api/v2.0/ldap/ping").json(&bad), 400);
    expect(world.admin(Method::POST, "/api/v2.0/ldap/ping").body("{").header("content-type", "application/json"), 400);
    expect(world.req(Method::POST, "/api/v2.0/ldap/ping").json(&plain), 401);

    world.enable_ldap();
    let config: Value = expect(world.admin(Method::GET, "/api/v2.0/configurations"), 200).json().unwrap();
    assert_eq!(config["auth_mode"]["value"], "ldap_auth");
    assert_eq!(config["ldap_url"]["value"], world.slapd.ldaps_url().as_str());
    assert!(config.get("ldap_search_password").is_none(), "the search password is never shown");
    // An empty ping tries the stored settings; a body without a password
    // tries it with the stored one.
    assert_eq!(ping(None), json!({"success": true}));
    let mut no_password = plain.clone();
    no_password.as_object_mut().unwrap().remove("ldap_search_password");
    assert_eq!(ping(Some(no_password)), json!({"success": true}));

    // Users.
    let search = |query: &str| -> Value {
        expect(world.admin(Method::GET, &format!("/api/v2.0/ldap/users/search{query}")), 200).json().unwrap()
    };
    assert_eq!(search("?username=alice"), json!([{"username": "alice", "realname": ALICE.cn, "email": ALICE.mail}]));
    assert_eq!(search("?username=nobody"), json!([]));
    assert_eq!(search("?username=*"), json!([]), "no wildcard from the caller");
    assert_eq!(search("").as_array().unwrap().len(), fixture::USERS.len());

    let import = |list: Value, status: u16| {
        expect(world.admin(Method::POST, "/api/v2.0/ldap/users/import").json(&json!({"ldap_uid_list": list})), status)
    };
    let failed: Value = import(json!(["dave", "nobody", ""]), 404).json().unwrap();
    assert_eq!(failed, json!([{"uid": "nobody", "error": "unknown_user"}, {"uid": "", "error": "empty_uid"}]));
    let found: Value = expect(world.admin(Method::GET, "/api/v2.0/users/search?username=dave"), 200).json().unwrap();
    assert_eq!(found[0]["username"], "dave", "{found}");
    import(json!(["dave"]), 200);
    expect(world.admin(Method::POST, "/api/v2.0/ldap/users/import").json(&json!({"uids": []})), 400);

    // Groups.
    let groups = |query: &str, status: u16| {
        expect(world.admin(Method::GET, &format!("/api/v2.0/ldap/groups/search{query}")), status)
    };
    let qa: Value = groups("?groupname=qa", 200).json().unwrap();
    assert_eq!(qa, json!([{"group_name": "qa", "ldap_group_dn": fixture::group_dn("qa")}]));
    let admins: Value = groups(&format!("?groupdn={}", fixture::group_dn("admins")), 200).json().unwrap();
    assert_eq!(admins[0]["group_name"], "admins");
    assert_eq!(error_code(groups("?groupname=ghost", 404)), "NOT_FOUND");
    assert_eq!(error_code(groups(&format!("?groupdn={}", fixture::group_dn("outsiders")), 404)), "NOT_FOUND");
    assert_eq!(error_code(groups("?groupdn=not-a-dn", 400)), "BAD_REQUEST");
    groups("", 404);
    // An LDAP user group is onboarded from the directory.
    let body = json!({"group_type": 1, "ldap_group_dn": fixture::group_dn("developers")});
    expect(world.admin(Method::POST, "/api/v2.0/usergroups").json(&body), 201);
    let ghost = json!({"group_type": 1, "ldap_group_dn": "cn=ghost,ou=groups,dc=example,dc=org"});
    expect(world.admin(Method::POST, "/api/v2.0/usergroups").json(&ghost), 404);

    // Administrators only, as in Harbor.
    for path in ["/api/v2.0/ldap/users/search?username=alice", "/api/v2.0/ldap/groups/search?groupname=qa"] {
        assert_eq!(error_code(expect(world.as_user(&ALICE, Method::GET, path), 403)), "FORBIDDEN");
        expect(world.req(Method::GET, path), 401);
    }
    expect(world.as_user(&ALICE, Method::POST, "/api/v2.0/ldap/ping").json(&plain), 403);
    let list = json!({"ldap_uid_list": ["bob"]});
    expect(world.as_user(&ALICE, Method::POST, "/api/v2.0/ldap/users/import").json(&list), 403);
}

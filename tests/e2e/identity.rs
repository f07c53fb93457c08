//! Accounts with real clients: local users and a robot account log in
//! with skopeo, podman and docker and push and pull as their roles allow;
//! a Guest's push is refused; a Limited Guest cannot list the members.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use reqwest::blocking::Client;
use serde_json::{Value, json};

use crate::support::Server;
use crate::support::cli::{
    CLIENT_TIMEOUT, DockerCleanup, docker, docker_login, exec, fails, ok, podman, require, require_docker,
    scratch_context,
};

const ADMIN_PASSWORD: &str = "Harbor12345";
const PASSWORD: &str = "Crew1234pw";

struct Crew {
    server: Server,
    http: Client,
    robot: (String, String),
}

impl Crew {
    fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::blocking::RequestBuilder {
        self.http.request(method, self.server.url(path)).basic_auth("admin", Some(ADMIN_PASSWORD))
    }

    fn host(&self) -> String {
        self.server.addr.to_string()
    }
}

fn must(r: reqwest::blocking::RequestBuilder) -> reqwest::blocking::Response {
    let r = r.send().unwrap();
    assert!(r.status().is_success(), "setup failed: {} {}", r.status(), r.text().unwrap_or_default());
    r
}

/// A private project `crew` with a Developer, a Guest and a Limited Guest,
/// and a project robot that may push.
fn crew(dir: &Path) -> Crew {
    let server = Server::start(dir, &["--data", "data"], &[("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD)]);
    let http = Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    let mut crew = Crew { server, http, robot: (String::new(), String::new()) };
    must(crew.admin(reqwest::Method::POST, "/api/v2.0/projects").json(&json!({"project_name": "crew"})));
    for (user, role) in [("dana", 2), ("gus", 3), ("lina", 5)] {
        let body = json!({"username": user, "email": format!("{user}@example.com"), "realname": user,
            "password": PASSWORD});
        must(crew.admin(reqwest::Method::POST, "/api/v2.0/users").json(&body));
        let body = json!({"role_id": role, "member_user": {"username": user}});
        must(
            crew.admin(reqwest::Method::POST, "/api/v2.0/projects/crew/members")
                .header("x-is-resource-name", "true")
                .json(&body),
        );
    }
    let body = json!({"name": "ci", "level": "project", "duration": -1, "description": "pipeline",
        "permissions": [{"kind": "project", "namespace": "crew",
            "access": [{"resource": "repository", "action": "push"}, {"resource": "repository", "action": "pull"}]}]});
    let made: Value = must(crew.admin(reqwest::Method::POST, "/api/v2.0/robots").json(&body)).json().unwrap();
    assert_eq!(made["name"], "robot$crew+ci");
    crew.robot = (made["name"].as_str().unwrap().to_owned(), made["secret"].as_str().unwrap().to_owned());
    crew
}

/// A one-layer OCI layout built with umoci; the skopeo source reference.
fn tiny_image(work: &Path) -> String {
    require("umoci", &["--version"]);
    let layout = work.join("layout");
    let image = format!("{}:base", layout.display());
    ok(Command::new("umoci").args(["init", "--layout"]).arg(&layout));
    ok(Command::new("umoci").args(["new", "--image", &image]));
    let root = work.join("root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/crew"), berth::testkit::unique("crew-")).unwrap();
    ok(Command::new("umoci").args(["insert", "--image", &image]).arg(&root).arg("/"));
    format!("oci:{image}")
}

#[test]
fn users_and_robots_push_and_pull_with_real_clients() {
    require("skopeo", &["--version"]);
    require("podman", &["--version"]);
    let dir = tempfile::tempdir().unwrap();
    let crew = crew(dir.path());
    let host = crew.host();
    let work = dir.path();
    let image = tiny_image(work);
    let skopeo_push = |creds: &str, tag: &str| {
        let mut c = Command::new("skopeo");
        c.args(["copy", "--dest-tls-verify=false", "--dest-creds", creds, &image]);
        c.arg(format!("docker://{host}/crew/app:{tag}"));
        c
    };
    let (robot, secret) = &crew.robot;

    // skopeo: the Developer and the robot push; the Guest may not, but pulls.
    ok(&mut skopeo_push(&format!("dana:{PASSWORD}"), "dana"));
    ok(&mut skopeo_push(&format!("{robot}:{secret}"), "robot"));
    let refused = fails(&mut skopeo_push(&format!("gus:{PASSWORD}"), "gus"));
    assert!(refused.to_lowercase().contains("denied") || refused.contains("403"), "{refused}");
    let pulled = work.join("pulled");
    ok(Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false", "--src-creds", &format!("gus:{PASSWORD}")])
        .arg(format!("docker://{host}/crew/app:dana"))
        .arg(format!("dir:{}", pulled.display())));
    assert!(pulled.join("manifest.json").exists());
    // A wrong password, and someone who is no member, get nothing.
    fails(&mut skopeo_push(&format!("dana:{PASSWORD}x"), "nope"));

    // podman: log in as the robot, push; as the Guest, pull only.
    let podman = || podman(work);
    ok(podman()
        .args(["pull", "--tls-verify=false", "--creds", &format!("gus:{PASSWORD}")])
        .arg(format!("{host}/crew/app:dana")));
    let login = exec(
        podman().args(["login", "--tls-verify=false", "-u", robot, "--password-stdin", &host]),
        Some(secret.as_bytes()),
        CLIENT_TIMEOUT,
    );
    assert!(login.status.success(), "podman login as the robot: {}", String::from_utf8_lossy(&login.stderr));
    ok(podman().args(["tag", &format!("{host}/crew/app:dana"), &format!("{host}/crew/app:podman")]));
    ok(podman().args(["push", "--tls-verify=false", &format!("{host}/crew/app:podman")]));
    let as_guest = fails(
        podman()
            .args(["push", "--tls-verify=false", "--creds", &format!("gus:{PASSWORD}")])
            .arg(format!("{host}/crew/app:podman")),
    );
    assert!(!as_guest.is_empty());

    // docker: the Developer logs in and pushes an image built FROM scratch;
    // the robot pulls it back.
    require_docker();
    let docker = || docker(work);
    let ctx = scratch_context(work, &berth::testkit::unique("crew-docker-"));
    let remote = format!("{host}/crew/docker:1");
    let mut cleanup = DockerCleanup { images: vec![remote.clone()], containers: vec![] };
    ok(docker().args(["build", "-q", "-t", &remote]).arg(&ctx));
    let login = |user: &str, password: &str| docker_login(work, &host, user, password);
    let out = login("dana", PASSWORD);
    assert!(out.status.success(), "docker login: {}", String::from_utf8_lossy(&out.stderr));
    ok(docker().args(["push", &remote]));
    ok(docker().args(["rmi", &remote]));
    let out = login(robot, secret);
    assert!(out.status.success(), "docker login as the robot: {}", String::from_utf8_lossy(&out.stderr));
    ok(docker().args(["pull", &remote]));
    let out = login("gus", PASSWORD);
    assert!(out.status.success());
    ok(docker().args(["tag", &remote, &format!("{host}/crew/docker:guest")]));
    cleanup.images.push(format!("{host}/crew/docker:guest"));
    fails(docker().args(["push", &format!("{host}/crew/docker:guest")]));
    assert!(!login("gus", "wrong-password").status.success(), "a wrong password is refused");
    cleanup.run();

    let tags: Value = crew.admin(reqwest::Method::GET, "/v2/crew/app/tags/list").send().unwrap().json().unwrap();
    assert_eq!(tags["tags"], json!(["dana", "podman", "robot"]));

    // Members: the Guest may list them, the Limited Guest may not.
    let members = |user: &str| {
        crew.http
            .get(crew.server.url("/api/v2.0/projects/crew/members"))
            .header("x-is-resource-name", "true")
            .basic_auth(user, Some(PASSWORD))
            .send()
            .unwrap()
    };
    assert_eq!(members("gus").status().as_u16(), 200);
    let r = members("lina");
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(r.json::<Value>().unwrap()["errors"][0]["code"], "FORBIDDEN");
}

/// `berth admin` manages accounts while the server is down: a new system
/// administrator, and a reset of the admin's password.
#[test]
fn admin_cli_creates_administrators_and_resets_passwords() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let admin = |args: &[&str], stdin: &str| {
        let mut child = Command::new(crate::support::BERTH)
            .current_dir(dir.path())
            .args(["admin", "--data", "data"])
            .args(args)
            .env("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let out = admin(&["create-user", "--username", "ops", "--email", "ops@example.com", "--sysadmin"], "Ops12345pw\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let weak = admin(&["create-user", "--username", "weak", "--email", "weak@example.com"], "short\n");
    assert!(!weak.status.success(), "the password policy applies");
    let out = admin(&["password"], "Changed12345\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let server = Server::start(dir.path(), &["--data", "data"], &[]);
    let http = Client::new();
    let status = |user: &str, password: &str| {
        http.get(server.url("/api/v2.0/users")).basic_auth(user, Some(password)).send().unwrap().status().as_u16()
    };
    assert_eq!(status("ops", "Ops12345pw"), 200, "ops is a system administrator");
    assert_eq!(status("admin", "Changed12345"), 200);
    assert_eq!(status("admin", ADMIN_PASSWORD), 401, "the old password is gone");
}

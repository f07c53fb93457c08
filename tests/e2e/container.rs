//! The container image (infra/container/Dockerfile.scratch, built by
//! scripts/build-image from the `berth` binary these tests run): it builds
//! on the local Docker engine without pulling anything, runs as a non-root
//! user, answers `/health` and `/ready`, takes a `docker push` and gives the
//! image back on `docker pull`, and stops cleanly. Then the same image runs
//! as two API replicas on the AWS emulator: a push through one is pullable
//! through the other.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::clients::{PASSWORD, USER};
use crate::support::cli::{CLIENT_TIMEOUT, DockerCleanup, exec, ok, require_docker};
use crate::support::{BERTH, emulator, free_port};

/// Builds the image from the binary under test; its tag.
fn build_image(cleanup: &mut DockerCleanup) -> String {
    let tag = format!("{}:test", berth::testkit::unique("berth-image-"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/build-image");
    let started = Instant::now();
    ok(Command::new("bash").arg(script).args(["--binary", BERTH, "--tag", &tag]));
    eprintln!("built {tag} in {:?}", started.elapsed());
    cleanup.images.push(tag.clone());
    tag
}

/// A running container of the image, on the host network.
struct Container {
    name: String,
    port: u16,
}

impl Container {
    fn start(image: &str, cleanup: &mut DockerCleanup, env: &[(&str, &str)], docker_args: &[&str]) -> Self {
        let name = berth::testkit::unique("berth-ctr-");
        let port = free_port();
        let mut cmd = Command::new("docker");
        cmd.args(["run", "-d", "--name", &name, "--network", "host"]).args(docker_args);
        for (k, v) in env {
            cmd.arg("-e").arg(format!("{k}={v}"));
        }
        cmd.arg(image).arg("serve").arg("--listen").arg(format!("127.0.0.1:{port}"));
        ok(&mut cmd);
        cleanup.containers.push(name.clone());
        let c = Self { name, port };
        c.wait_ready();
        c
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn wait_ready(&self) {
        let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = client.get(format!("http://{}/ready", self.host())).send();
            if ready.is_ok_and(|r| r.status().is_success()) {
                let health = client.get(format!("http://{}/health", self.host())).send().unwrap();
                assert!(health.status().is_success());
                return;
            }
            let running = ok(Command::new("docker").args(["inspect", "--format", "{{.State.Running}}", &self.name]));
            assert!(running.trim() == "true", "container {} exited:\n{}", self.name, self.logs());
            assert!(Instant::now() < deadline, "container {} not ready within 60 s:\n{}", self.name, self.logs());
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn logs(&self) -> String {
        let out = exec(Command::new("docker").args(["logs", &self.name]), None, CLIENT_TIMEOUT);
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    }

    /// `docker stop` (SIGTERM): berth shuts down gracefully and exits 0.
    fn stop(&self) {
        ok(Command::new("docker").args(["stop", "-t", "20", &self.name]));
        let code = ok(Command::new("docker").args(["inspect", "--format", "{{.State.ExitCode}}", &self.name]));
        assert_eq!(code.trim(), "0", "exit code after docker stop:\n{}", self.logs());
    }
}

/// docker, with its own config folder (logins) for one test.
fn docker(config: &Path) -> Command {
    let mut c = Command::new("docker");
    c.arg("--config").arg(config);
    c
}

/// Builds a small image FROM scratch for pushing; its tag and id.
fn payload_image(work: &Path, cleanup: &mut DockerCleanup) -> (String, String) {
    let ctx = work.join("payload");
    std::fs::create_dir_all(&ctx).unwrap();
    let name = berth::testkit::unique("berth-payload-");
    std::fs::write(ctx.join("hello.txt"), format!("hello from {name}\n")).unwrap();
    std::fs::write(ctx.join("blob.bin"), vec![7u8; 3 * 1024 * 1024 + 5]).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY hello.txt blob.bin /\nCMD [\"/hello.txt\"]\n").unwrap();
    let tag = format!("{name}:build");
    ok(Command::new("docker").args(["build", "-q", "-t", &tag]).arg(&ctx));
    let id = ok(Command::new("docker").args(["image", "inspect", "--format", "{{.Id}}", &tag])).trim().to_owned();
    cleanup.images.push(tag.clone());
    cleanup.images.push(id.clone());
    (tag, id)
}

fn login(config: &Path, host: &str) {
    let out = exec(
        docker(config).args(["login", host, "-u", USER, "--password-stdin"]),
        Some(PASSWORD.as_bytes()),
        CLIENT_TIMEOUT,
    );
    assert!(out.status.success(), "docker login {host}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Pushes `local` as `<push_host>/<repo>:1`, removes it, pulls it back as
/// `<pull_host>/<repo>:1` and checks it is the same image.
fn push_then_pull(config: &Path, local: &str, id: &str, push_host: &str, pull_host: &str, cleanup: &mut DockerCleanup) {
    let repo = berth::testkit::unique("library/ctr-");
    let pushed = format!("{push_host}/{repo}:1");
    let pulled = format!("{pull_host}/{repo}:1");
    cleanup.images.extend([pushed.clone(), pulled.clone()]);
    ok(docker(config).args(["tag", local, &pushed]));
    ok(docker(config).args(["push", &pushed]));
    ok(docker(config).args(["rmi", &pushed]));
    ok(docker(config).args(["pull", &pulled]));
    let got = ok(docker(config).args(["image", "inspect", "--format", "{{.Id}}", &pulled]));
    assert_eq!(got.trim(), id, "{pulled} is the image pushed as {pushed}");
    ok(docker(config).args(["rmi", &pulled]));
}

#[test]
fn container_image_serves_docker_push_and_pull() {
    require_docker();
    let mut cleanup = DockerCleanup { images: Vec::new(), containers: Vec::new() };
    let image = build_image(&mut cleanup);
    let user = ok(Command::new("docker").args(["image", "inspect", "--format", "{{.Config.User}}", &image]));
    assert_eq!(user.trim(), "65532:65532", "the image runs as a numeric non-root user");

    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("docker-config");
    let (local, id) = payload_image(work.path(), &mut cleanup);
    let started = Instant::now();
    let registry = Container::start(&image, &mut cleanup, &[("BERTH_ADMIN_PASSWORD", PASSWORD)], &[]);
    eprintln!("the container was ready {:?} after docker run", started.elapsed());
    let id_in = ok(Command::new("docker").args(["exec", &registry.name, "/usr/local/bin/berth", "--version"]));
    assert!(id_in.starts_with("berth "), "{id_in}");
    login(&config, &registry.host());
    push_then_pull(&config, &local, &id, &registry.host(), &registry.host(), &mut cleanup);
    registry.stop();
}

#[test]
fn two_container_replicas_share_the_aws_backends() {
    require_docker();
    if !emulator("two_container_replicas_share_the_aws_backends") {
        return;
    }
    let mut cleanup = DockerCleanup { images: Vec::new(), containers: Vec::new() };
    let image = build_image(&mut cleanup);
    let aws = crate::support::AwsResources::new("berth-ctr-");
    let mut env: Vec<(String, String)> =
        aws.env().into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect::<Vec<_>>();
    env.push(("BERTH_BACKEND".into(), "aws".into()));
    for var in ["AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
        env.push((var.into(), std::env::var(var).unwrap_or_else(|_| panic!("{var} is unset"))));
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();

    // `berth migrate` from the image itself, as a Kubernetes Job would run it.
    let mut migrate = Command::new("docker");
    migrate.args(["run", "--rm", "--network", "host"]);
    for (k, v) in &env {
        migrate.arg("-e").arg(format!("{k}={v}"));
    }
    ok(migrate.arg(&image).arg("migrate"));

    // On the AWS backends berth writes nothing to its file system, so the
    // replicas run read-only, as the Kubernetes manifests ask.
    let a = Container::start(&image, &mut cleanup, &env, &["--read-only"]);
    let b = Container::start(&image, &mut cleanup, &env, &["--read-only"]);
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("docker-config");
    let (local, id) = payload_image(work.path(), &mut cleanup);
    login(&config, &a.host());
    login(&config, &b.host());
    push_then_pull(&config, &local, &id, &a.host(), &b.host(), &mut cleanup);
    a.stop();
    b.stop();
}

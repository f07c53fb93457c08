//! Running real client programs from tests: each command is killed, and
//! the test failed, when it outlives a generous timeout; required tools
//! fail the test when missing (`.ci/run` installs them all).

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(300);

/// A tool `.ci/run` installs under `BERTH_TOOLS_DIR` (default
/// `~/.cache/berth-tools`) at `rel`, or the one the variable `var` names.
pub fn installed_tool(var: &str, rel: &str) -> std::path::PathBuf {
    if let Some(p) = std::env::var_os(var) {
        return p.into();
    }
    std::env::var_os("BERTH_TOOLS_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/berth-tools")
        })
        .join(rel)
}

/// Fails the test unless `tool` runs.
pub fn require(tool: &str, args: &[&str]) {
    let out = Command::new(tool).args(args).output();
    assert!(out.as_ref().is_ok_and(|o| o.status.success()), "{tool} is required (.ci/run installs it): {out:?}");
}

/// Runs a command to completion with `input` on its stdin; kills it and
/// fails the test when it runs longer than `timeout`.
pub fn exec(cmd: &mut Command, input: Option<&[u8]>, timeout: Duration) -> Output {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    if let Some(input) = input {
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input).unwrap();
    }
    let reader = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let stdout = reader(Box::new(child.stdout.take().unwrap()));
    let stderr = reader(Box::new(child.stderr.take().unwrap()));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    let Some(status) = status else {
        panic!("{what} still running after {timeout:?}, killed; stderr: {}", String::from_utf8_lossy(&stderr));
    };
    Output { status, stdout, stderr }
}

/// Runs a client command that must succeed; its stdout.
pub fn ok(cmd: &mut Command) -> String {
    String::from_utf8(ok_bytes(cmd)).unwrap()
}

pub fn ok_bytes(cmd: &mut Command) -> Vec<u8> {
    let out = exec(cmd, None, CLIENT_TIMEOUT);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Runs a client command that must fail; its stderr.
pub fn fails(cmd: &mut Command) -> String {
    let out = exec(cmd, None, CLIENT_TIMEOUT);
    assert!(!out.status.success(), "{cmd:?} should have failed:\n{}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// podman on a scratch vfs store under `work` (no uidmap or slirp needed
/// as root).
pub fn podman(work: &Path) -> Command {
    let mut c = Command::new("podman");
    c.arg("--root").arg(work.join("root"));
    c.arg("--runroot").arg(work.join("runroot"));
    c.arg("--tmpdir").arg(work.join("libpod"));
    c.args(["--storage-driver", "vfs", "--events-backend", "none"]);
    c.env("TMPDIR", work);
    c
}

/// Docker is required: a machine without a working engine fails the test.
pub fn require_docker() {
    let out = exec(Command::new("docker").args(["info", "--format", "{{.ServerVersion}}"]), None, CLIENT_TIMEOUT);
    assert!(
        out.status.success() && !out.stdout.trim_ascii().is_empty(),
        "docker is required but `docker info` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// docker with a config folder of the test's own (`<work>/docker-config`),
/// so its logins never touch another test's or the machine's.
pub fn docker(work: &Path) -> Command {
    let mut c = Command::new("docker");
    c.arg("--config").arg(work.join("docker-config"));
    c
}

/// `docker login <host>` as `user`, the password on stdin.
pub fn docker_login(work: &Path, host: &str, user: &str, password: &str) -> Output {
    exec(docker(work).args(["login", host, "-u", user, "--password-stdin"]), Some(password.as_bytes()), CLIENT_TIMEOUT)
}

/// A build context under `work` for a `FROM scratch` image of one file
/// holding `content`; its folder.
pub fn scratch_context(work: &Path, content: &str) -> std::path::PathBuf {
    let ctx = work.join("docker-context");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("hello.txt"), content).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY hello.txt /\n").unwrap();
    ctx
}

/// Removes the containers and images a docker test made, even when it fails.
pub struct DockerCleanup {
    pub images: Vec<String>,
    pub containers: Vec<String>,
}

impl DockerCleanup {
    pub fn run(&mut self) {
        for c in self.containers.drain(..) {
            let _ = exec(Command::new("docker").args(["rm", "-f", &c]), None, CLIENT_TIMEOUT);
        }
        for i in self.images.drain(..) {
            let _ = exec(Command::new("docker").args(["rmi", "-f", &i]), None, CLIENT_TIMEOUT);
        }
    }
}

impl Drop for DockerCleanup {
    fn drop(&mut self) {
        self.run();
    }
}

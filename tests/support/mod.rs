//! Support for the end-to-end tests: the real `berth` binary as a child
//! process on a free loopback port, killed when the handle drops.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod cli;

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BERTH: &str = env!("CARGO_BIN_EXE_berth");

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Whether the AWS emulator is configured for this run; when it is not, the
/// test is skipped, or fails under `BERTH_TEST_REQUIRE_EMULATORS=1`.
pub fn emulator(test: &str) -> bool {
    berth::testkit::emulator_available(test)
}

/// A running `berth serve`.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: std::path::PathBuf,
}

impl Server {
    /// Starts `berth serve --listen <free port> <args>` in `cwd` and waits
    /// until `/health` answers.
    pub fn start(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log = cwd.join(format!("berth-{}.log", addr.port()));
        let mut cmd = Command::new(BERTH);
        cmd.current_dir(cwd).arg("serve").arg("--listen").arg(addr.to_string()).args(args);
        cmd.envs(env.iter().copied());
        cmd.stdout(Stdio::from(std::fs::File::create(&log).unwrap()));
        cmd.stderr(Stdio::from(std::fs::File::options().append(true).open(&log).unwrap()));
        let child = cmd.spawn().unwrap();
        let mut server = Self { child, addr, log };
        server.wait_healthy();
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("berth exited with {status} before becoming healthy:\n{}", self.log_text());
            }
            if std::net::TcpStream::connect(self.addr).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("berth did not listen within 30 s:\n{}", self.log_text());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `berth <args>` to completion (killed after `timeout`) and returns
/// its output and how long it took.
pub fn run(cwd: &Path, args: &[&str], env: &[(&str, &str)], timeout: Duration) -> (Output, Duration) {
    let start = Instant::now();
    let mut child = Command::new(BERTH)
        .current_dir(cwd)
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    while start.elapsed() < timeout {
        if child.try_wait().unwrap().is_some() {
            return (child.wait_with_output().unwrap(), start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    panic!("berth {args:?} still running after {timeout:?}; stderr: {}", String::from_utf8_lossy(&out.stderr));
}

/// The one line a failed command printed on stderr.
pub fn one_line_error(out: &Output) -> String {
    assert!(!out.status.success(), "expected a failure, got {:?}", out.status);
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("berth:")).collect();
    assert_eq!(lines.len(), 1, "exactly one error line expected, got: {stderr}");
    assert!(!stderr.contains("panicked"), "no panic: {stderr}");
    lines[0].to_owned()
}

/// A bucket, table and queue prefix of one test's own on the AWS emulator,
/// so nothing is shared with any other test.
pub struct AwsResources {
    name: String,
    prefix: String,
}

impl AwsResources {
    pub fn new(stem: &str) -> Self {
        let name = berth::testkit::unique(stem);
        let prefix = format!("{name}-");
        Self { name, prefix }
    }

    /// The variables that point berth at these resources, with the admin
    /// password the tests use.
    pub fn env(&self) -> Vec<(&str, &str)> {
        vec![
            ("BERTH_AWS_BUCKET", self.name.as_str()),
            ("BERTH_AWS_TABLE", self.name.as_str()),
            ("BERTH_AWS_QUEUE_PREFIX", self.prefix.as_str()),
            ("BERTH_ADMIN_PASSWORD", "Harbor12345"),
        ]
    }

    /// `berth migrate --backend aws`, which must succeed.
    pub fn migrate(&self, cwd: &Path) {
        let (out, _) = run(cwd, &["migrate", "--backend", "aws"], &self.env(), Duration::from_secs(120));
        assert!(out.status.success(), "migrate: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Migrates, then starts `berth serve --backend aws <args>` on them.
    pub fn serve(&self, cwd: &Path, args: &[&str]) -> Server {
        self.migrate(cwd);
        let mut all = vec!["--backend", "aws"];
        all.extend_from_slice(args);
        Server::start(cwd, &all, &self.env())
    }
}

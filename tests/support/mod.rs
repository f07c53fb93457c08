//! Support for the end-to-end tests: the real `berth` binary as a child
//! process on a free loopback port, killed when the handle drops; the real
//! router in this process ([`app::TestApp`]); and one test's own AWS
//! resources on the emulator ([`AwsResources`]), deleted when the last
//! handle on them drops.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod app;
pub mod cli;
pub mod distribution;

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
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
    /// The AWS resources it serves from, when [`AwsResources::serve`]
    /// started it: held so that they outlive the process (fields drop after
    /// `Drop::drop` has killed it).
    pub aws: Option<AwsResources>,
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
        let mut server = Self { child, addr, log, aws: None };
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

/// The code of a Harbor or OCI error body (`{"errors":[{"code":…,
/// "message":…}]}`, the shape both share); a body without one, or without
/// a message, is a failure.
pub fn error_code(body: &[u8]) -> String {
    let body: serde_json::Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("an error body expected ({e}): {}", String::from_utf8_lossy(body)));
    let first = &body["errors"][0];
    let message = first["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "an error body with a message expected: {body}");
    first["code"].as_str().unwrap_or_else(|| panic!("an error code expected: {body}")).to_owned()
}

/// A bucket, a table and a queue prefix of one test's own on the AWS
/// emulator, so nothing is shared with any other test. Clones share them;
/// when the last clone drops, everything is deleted (objects and unfinished
/// multipart uploads, the bucket, the table, every queue and dead-letter
/// queue of the prefix), so a run leaves the emulator as it found it.
#[derive(Clone)]
pub struct AwsResources(Arc<AwsNames>);

struct AwsNames {
    /// The bucket's and the table's name.
    name: String,
    queue_prefix: String,
}

/// The variables an AWS SDK in this process (migrate, the in-process
/// backends, the cleanup) needs so that it talks to the emulator only and
/// never looks for instance credentials or an instance's region.
const AWS_VARIABLES: [&str; 4] = ["AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"];

impl AwsResources {
    /// Fresh names (nothing is created yet: [`Self::migrate`],
    /// [`Self::serve`] or `TestApp::aws` do that).
    pub fn new(stem: &str) -> Self {
        for var in AWS_VARIABLES {
            assert!(std::env::var_os(var).is_some(), "{var} is unset; eval \"$(scripts/emulator env)\"");
        }
        assert_eq!(
            std::env::var("AWS_EC2_METADATA_DISABLED").as_deref(),
            Ok("true"),
            "AWS_EC2_METADATA_DISABLED=true is required: no SDK may look for instance credentials"
        );
        let name = berth::testkit::unique(stem);
        let queue_prefix = format!("{name}-");
        Self(Arc::new(AwsNames { name, queue_prefix }))
    }

    pub fn bucket(&self) -> &str {
        &self.0.name
    }

    pub fn table(&self) -> &str {
        &self.0.name
    }

    pub fn queue_prefix(&self) -> &str {
        &self.0.queue_prefix
    }

    /// The variables that point the `berth` binary at these resources, with
    /// the admin password the tests use.
    pub fn env(&self) -> Vec<(&str, &str)> {
        vec![
            ("BERTH_AWS_BUCKET", self.bucket()),
            ("BERTH_AWS_TABLE", self.table()),
            ("BERTH_AWS_QUEUE_PREFIX", self.queue_prefix()),
            ("BERTH_ADMIN_PASSWORD", app::ADMIN_PASSWORD),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]
    }

    /// Points a configuration at these resources (the in-process
    /// equivalent of [`Self::env`] plus `--backend aws`).
    pub fn apply(&self, config: &mut berth::config::Config) {
        config.backend = berth::config::Backend::Aws;
        config.aws.bucket = self.bucket().to_owned();
        config.aws.table = self.table().to_owned();
        config.aws.queue_prefix = self.queue_prefix().to_owned();
    }

    /// `berth migrate --backend aws`, which must succeed.
    pub fn migrate(&self, cwd: &Path) {
        let (out, _) = run(cwd, &["migrate", "--backend", "aws"], &self.env(), Duration::from_secs(120));
        assert!(out.status.success(), "migrate: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Migrates, then starts `berth serve --backend aws <args>` on them; the
    /// server holds a clone, so they outlive it.
    pub fn serve(&self, cwd: &Path, args: &[&str]) -> Server {
        self.migrate(cwd);
        let mut all = vec!["--backend", "aws"];
        all.extend_from_slice(args);
        let mut server = Server::start(cwd, &all, &self.env());
        server.aws = Some(self.clone());
        server
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Drop for AwsNames {
    fn drop(&mut self) {
        // This may run inside a test's runtime, which refuses to block on
        // another one: the cleanup gets a thread and a runtime of its own.
        let (name, prefix) = (self.name.clone(), self.queue_prefix.clone());
        let cleanup = std::thread::spawn(move || -> Result<(), BoxError> {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(delete_aws_resources(&name, &prefix))
        });
        match cleanup.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("cleaning up the AWS resources {}: {e}", self.name),
            Err(_) => eprintln!("cleaning up the AWS resources {}: the cleanup panicked", self.name),
        }
    }
}

/// Deletes what exists of one test's resources; a part never created (the
/// test stopped before `migrate`, or migrated with another tool) is no
/// error.
async fn delete_aws_resources(name: &str, queue_prefix: &str) -> Result<(), BoxError> {
    use aws_sdk_s3::error::DisplayErrorContext;
    let sdk = berth::aws::sdk_config(&berth::config::AwsConfig::default()).await;
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build());
    let mut failures = Vec::new();
    match s3.head_bucket().bucket(name).send().await {
        Ok(_) => {
            if let Err(e) = delete_bucket(&s3, name).await {
                failures.push(format!("bucket: {e}"));
            }
        }
        Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => {}
        Err(e) => failures.push(format!("bucket: {}", DisplayErrorContext(&e))),
    }
    match aws_sdk_dynamodb::Client::new(&sdk).delete_table().table_name(name).send().await {
        Ok(_) => {}
        Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => {}
        Err(e) => failures.push(format!("table: {}", DisplayErrorContext(&e))),
    }
    // The prefix is unique to this test, so every queue it lists (the
    // queues and their dead-letter queues) is this test's.
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    match sqs.list_queues().queue_name_prefix(queue_prefix).send().await {
        Ok(listed) => {
            for url in listed.queue_urls() {
                if let Err(e) = sqs.delete_queue().queue_url(url).send().await {
                    failures.push(format!("queue {url}: {}", DisplayErrorContext(&e)));
                }
            }
        }
        Err(e) => failures.push(format!("queues: {}", DisplayErrorContext(&e))),
    }
    if failures.is_empty() { Ok(()) } else { Err(failures.join("; ").into()) }
}

/// Aborts the bucket's unfinished multipart uploads, deletes its objects,
/// then the bucket.
async fn delete_bucket(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<(), BoxError> {
    let uploads = s3.list_multipart_uploads().bucket(bucket).send().await?;
    for u in uploads.uploads() {
        let (Some(key), Some(id)) = (u.key(), u.upload_id()) else { continue };
        s3.abort_multipart_upload().bucket(bucket).key(key).upload_id(id).send().await?;
    }
    let mut pages = s3.list_objects_v2().bucket(bucket).into_paginator().send();
    while let Some(page) = pages.next().await {
        for object in page?.contents() {
            if let Some(key) = object.key() {
                s3.delete_object().bucket(bucket).key(key).send().await?;
            }
        }
    }
    s3.delete_bucket().bucket(bucket).send().await?;
    Ok(())
}

//! Starting berth: zero-configuration local mode, the AWS backends after
//! `berth migrate`, and one-line errors for every way a start can fail.

use std::time::Duration;

use crate::support::{AwsResources, Server, emulator, one_line_error, run};

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build().unwrap()
}

#[test]
fn serves_with_no_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[], &[]);
    let v2 = client().get(server.url("/v2/")).send().unwrap();
    assert_eq!(v2.status().as_u16(), 401, "the registry asks for credentials");
    assert!(v2.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer realm="));
    assert_eq!(v2.headers()["docker-distribution-api-version"], "registry/2.0");
    let log = server.log_text();
    let password = log
        .split("with password ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("the generated password is printed once: {log}"));
    let v2 = client().get(server.url("/v2/")).basic_auth("admin", Some(password)).send().unwrap();
    assert_eq!(v2.status().as_u16(), 200, "the printed password works");
    let health = client().get(server.url("/health")).send().unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let body: serde_json::Value = health.json().unwrap();
    assert_eq!(body["status"], "healthy");
    assert!(dir.path().join("data/berth.redb").exists(), "local store created under ./data");
    assert!(dir.path().join("data/blobs").is_dir());
}

#[test]
fn admin_password_from_the_environment_is_not_printed() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--data", "store"], &[("BERTH_ADMIN_PASSWORD", "Harbor12345")]);
    assert_eq!(client().get(server.url("/health")).send().unwrap().status().as_u16(), 200);
    assert!(dir.path().join("store/berth.redb").exists());
    assert!(!server.log_text().contains("Harbor12345"));
}

#[test]
fn a_second_server_on_the_same_data_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Server::start(dir.path(), &[], &[]);
    let (out, _) = run(dir.path(), &["serve", "--listen", "127.0.0.1:0"], &[], Duration::from_secs(20));
    let line = one_line_error(&out);
    assert!(line.contains("berth.redb"), "{line}");
}

#[test]
fn bad_configuration_is_one_line_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.toml"), "[server]\npresign_ttl_secs = \"soon\"\n").unwrap();
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (&["serve", "--config", "bad.toml"], &[], "server.presign_ttl_secs"),
        (&["serve"], &[("BERTH_QUEUE_MAX_ATTEMPTS", "many")], "BERTH_QUEUE_MAX_ATTEMPTS"),
        (&["serve", "--backend", "aws"], &[], "aws.bucket"),
        (&["serve", "--config", "missing.toml"], &[], "missing.toml"),
        (&["serve"], &[("BERTH_SERVER_LISTEN", "nowhere")], "server.listen"),
    ];
    for (args, env, needle) in cases {
        let (out, took) = run(dir.path(), args, env, Duration::from_secs(20));
        let line = one_line_error(&out);
        assert!(line.contains(needle), "{args:?}: {line:?} should name {needle}");
        assert!(took < Duration::from_secs(5), "{args:?} took {took:?}");
    }
}

#[test]
fn unreachable_aws_endpoint_is_one_line_and_quick() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("BERTH_AWS_BUCKET", "berth-none"),
        ("BERTH_AWS_TABLE", "berth-none"),
        ("BERTH_AWS_ENDPOINT", "http://127.0.0.1:9"),
        ("BERTH_AWS_CONNECT_TIMEOUT_SECS", "1"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    let (out, took) = run(dir.path(), &["serve", "--backend", "aws"], &env, Duration::from_secs(60));
    let line = one_line_error(&out);
    assert!(line.contains("127.0.0.1:9") || line.to_lowercase().contains("connect"), "{line}");
    assert!(took < Duration::from_secs(30), "took {took:?}");
}

#[test]
fn aws_backend_after_migrate() {
    if !emulator("aws_backend_after_migrate") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Declared before the server, so the resources outlive it.
    let aws = AwsResources::new("berth-e2e-");
    let env = aws.env();

    let (out, _) = run(dir.path(), &["serve", "--backend", "aws"], &env, Duration::from_secs(60));
    let line = one_line_error(&out);
    assert!(line.contains("berth migrate --backend aws"), "a missing bucket or table names the fix: {line}");

    for round in 0..2 {
        let (out, _) = run(dir.path(), &["migrate", "--backend", "aws"], &env, Duration::from_secs(120));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "migrate round {round}: {}", String::from_utf8_lossy(&out.stderr));
        let version = berth::meta::schema::table_schema().schema_version;
        assert!(stdout.contains(&format!("schema version {version}")), "{stdout}");
    }

    let server = Server::start(dir.path(), &["--backend", "aws"], &env);
    assert_eq!(client().get(server.url("/health")).send().unwrap().status().as_u16(), 200);
    let v2 = client().get(server.url("/v2/")).basic_auth("admin", Some("Harbor12345")).send().unwrap();
    assert_eq!(v2.status().as_u16(), 200);
    assert!(!dir.path().join("data").exists(), "the aws backend writes nothing locally");
}

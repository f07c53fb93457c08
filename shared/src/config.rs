//! berth's configuration: typed sections with defaults, read from an optional
//! TOML file, then `BERTH_*` environment variables, then command-line flags,
//! and validated before anything starts.
//!
//! Environment variables name a key as `BERTH_<SECTION>_<KEY>` in upper case
//! (`BERTH_AWS_BUCKET` is `aws.bucket`, `BERTH_SERVER_LISTEN` is
//! `server.listen`, `BERTH_ADMIN_PASSWORD` is `admin.password`); top-level
//! keys drop the section (`BERTH_BACKEND`, `BERTH_DATA_DIR`). Every error
//! names the key (and the variable) and the reason.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Which backends hold blobs, metadata and queues.
    pub backend: Backend,
    /// Folder of the local backends (blob files, embedded database).
    pub data_dir: PathBuf,
    pub server: ServerConfig,
    pub aws: AwsConfig,
    pub queue: QueueConfig,
    pub worker: WorkerConfig,
    pub admin: AdminConfig,
    pub auth: AuthConfig,
    pub log: LogConfig,
    pub gc: GcConfig,
    pub metric: MetricConfig,
    pub scanner: ScannerConfig,
    pub proxy: ProxyConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            backend: Backend::Local,
            data_dir: PathBuf::from("./data"),
            server: ServerConfig::default(),
            aws: AwsConfig::default(),
            queue: QueueConfig::default(),
            worker: WorkerConfig::default(),
            admin: AdminConfig::default(),
            auth: AuthConfig::default(),
            log: LogConfig::default(),
            gc: GcConfig::default(),
            metric: MetricConfig::default(),
            scanner: ScannerConfig::default(),
            proxy: ProxyConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Files, an embedded database and a durable local queue under `data_dir`.
    Local,
    /// S3, DynamoDB and SQS (or compatible endpoints).
    Aws,
}

/// Which endpoints a server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything: the registry API, the management API and the workers.
    All,
    /// Only the blob upload endpoints (the upload host of a serverless
    /// deployment).
    Upload,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub role: Role,
    /// Base URL of upload `Location`s (the upload host); default: the
    /// address each request came to.
    pub upload_base_url: Option<String>,
    /// The registry's public URL (the token realm is `<it>/service/token`);
    /// default: the scheme and host each request came to.
    pub external_url: Option<String>,
    /// Largest manifest accepted, in bytes.
    pub max_manifest_bytes: usize,
    /// How long a presigned blob URL stays valid, in seconds.
    pub presign_ttl_secs: u64,
    /// The CA certificate (PEM) that clients need to trust the registry's
    /// TLS, served at `/api/v2.0/systeminfo/getcert`
    /// (`BERTH_SERVER_CA_CERT`).
    pub ca_cert: Option<PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 5000)),
            role: Role::All,
            upload_base_url: None,
            external_url: None,
            max_manifest_bytes: 4 * 1024 * 1024,
            presign_ttl_secs: 1200,
            ca_cert: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AwsConfig {
    /// Region; default: the standard AWS environment (`AWS_REGION`).
    pub region: Option<String>,
    /// One endpoint for S3, DynamoDB and SQS (an emulator, LocalStack);
    /// default: `AWS_ENDPOINT_URL`, else AWS itself.
    pub endpoint: Option<String>,
    /// Endpoint that presigned URLs are signed for, when clients reach the
    /// object store by another name than berth does.
    pub s3_public_endpoint: Option<String>,
    /// Path-style S3 addressing (needed by most emulators); default: on when
    /// an endpoint is set.
    pub force_path_style: Option<bool>,
    pub bucket: String,
    pub table: String,
    /// Prefix of every SQS queue name.
    pub queue_prefix: String,
    /// Seconds to wait for a connection before calling a service unreachable.
    pub connect_timeout_secs: u64,
}

impl Default for AwsConfig {
    fn default() -> Self {
        Self {
            region: None,
            endpoint: None,
            s3_public_endpoint: None,
            force_path_style: None,
            bucket: String::new(),
            table: String::new(),
            queue_prefix: "berth-".to_owned(),
            connect_timeout_secs: 3,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Deliveries of a message before it goes to the dead-letter queue.
    pub max_attempts: u32,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self { max_attempts: 5 }
    }
}

/// Garbage collection.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GcConfig {
    /// No blob, link or artifact younger than this is collected
    /// (`BERTH_GC_TIME_WINDOW_SECS`): what a push is about to reference.
    pub time_window_secs: u64,
}

impl Default for GcConfig {
    fn default() -> Self {
        Self { time_window_secs: 7200 }
    }
}

/// Proxy-cache projects.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyConfig {
    /// How long a tag's digest, once checked upstream, is trusted before
    /// the upstream is asked again (`BERTH_PROXY_TAG_TTL_SECS`; 0: every
    /// pull by tag asks, as Harbor does).
    pub tag_ttl_secs: u64,
    /// How long one call to an upstream registry may take (for a blob: any
    /// pause in it) before the cached copy is served instead
    /// (`BERTH_PROXY_TIMEOUT_SECS`).
    pub timeout_secs: u64,
    /// How long the first pull of an image waits for its blobs to be
    /// cached before its manifest is served straight from the upstream (the
    /// blobs then come as the client asks for them, and the manifest is
    /// stored once they are in) (`BERTH_PROXY_MANIFEST_WAIT_SECS`): under
    /// the time limits of gateways in front of berth.
    pub manifest_wait_secs: u64,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self { tag_ttl_secs: 60, timeout_secs: 20, manifest_wait_secs: 20 }
    }
}

/// The built-in scanner.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScannerConfig {
    /// A folder of OSV records (or a zip of them) imported as the
    /// vulnerability database at start when none has been imported yet
    /// (`BERTH_SCANNER_VULNDB_SEED`; empty: none). Later imports are
    /// `berth vulndb import`'s.
    pub vulndb_seed: String,
}

/// Prometheus metrics, as Harbor's `metric` settings: served on their own
/// port of the listen address (`BERTH_METRIC_ENABLED`, `BERTH_METRIC_PORT`,
/// `BERTH_METRIC_PATH`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricConfig {
    pub enabled: bool,
    pub port: u16,
    pub path: String,
}

impl Default for MetricConfig {
    fn default() -> Self {
        Self { enabled: false, port: 9090, path: "/metrics".to_owned() }
    }
}

/// The worker Lambda function's queue (`BERTH_WORKER_QUEUE`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerConfig {
    /// The queue a worker function consumes: `events`, `webhooks` or `jobs`.
    pub queue: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Password of the initial `admin` account; generated and printed once
    /// at first start when unset.
    pub password: Option<Secret>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Ed25519 private key (PKCS#8 PEM) that signs registry tokens; every
    /// replica must share it. Default: one made at first start and kept in
    /// the metadata table.
    pub token_key: Option<Secret>,
    /// Lifetime of a registry token, in seconds.
    pub token_ttl_secs: u64,
    /// The token service name (`service=` of the challenge, `aud` of tokens).
    pub service: String,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self { token_key: None, token_ttl_secs: 1800, service: "harbor-registry".to_owned() }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A tracing filter (`info`, `berth=debug`); `RUST_LOG` wins.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { format: LogFormat::Text, level: "info".to_owned() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// A secret string: never printed by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

/// A configuration error; the message names the key and the reason.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

impl ConfigError {
    fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}

/// Values given on the command line, which win over file and environment.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub backend: Option<Backend>,
    pub role: Option<Role>,
}

const ENV_PREFIX: &str = "BERTH_";

impl Config {
    /// Loads the file (if any), then the process environment, then the
    /// overrides, and validates the result.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        Self::load_from(file, std::env::vars(), overrides)
    }

    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &Overrides,
    ) -> Result<Self, ConfigError> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError::new(format!("cannot read {}: {e}", path.display())))?;
                text.parse::<toml::Table>()
                    .map_err(|e| ConfigError::new(format!("{}: {}", path.display(), one_line(&e.to_string()))))?
            }
            None => toml::Table::new(),
        };
        apply_env(&mut table, env)?;
        let mut config: Config = serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            let path = e.path().to_string();
            ConfigError::new(format!("key `{path}`: {}", one_line(&e.into_inner().to_string())))
        })?;
        if let Some(v) = overrides.listen {
            config.server.listen = v;
        }
        if let Some(v) = &overrides.data_dir {
            config.data_dir.clone_from(v);
        }
        if let Some(v) = overrides.backend {
            config.backend = v;
        }
        if let Some(v) = overrides.role {
            config.server.role = v;
        }
        config.validate()?;
        Ok(config)
    }

    /// Rules that serde types cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, why: &str| Err(ConfigError::new(format!("key `{key}`: {why}")));
        if self.backend == Backend::Aws {
            if self.aws.bucket.is_empty() {
                return bad("aws.bucket", "required when backend = \"aws\" (set BERTH_AWS_BUCKET)");
            }
            if self.aws.table.is_empty() {
                return bad("aws.table", "required when backend = \"aws\" (set BERTH_AWS_TABLE)");
            }
        }
        if !self.aws.bucket.is_empty() && !valid_bucket(&self.aws.bucket) {
            return bad("aws.bucket", "not a valid S3 bucket name (3-63 of a-z 0-9 . -)");
        }
        if !self.aws.table.is_empty() && !valid_name(&self.aws.table, 3, 255, "_.-") {
            return bad("aws.table", "not a valid DynamoDB table name (3-255 of A-Z a-z 0-9 _ . -)");
        }
        if !self.metric.path.starts_with('/') || self.metric.path.len() < 2 {
            return bad("metric.path", "a path such as /metrics");
        }
        if self.metric.enabled && self.metric.port == self.server.listen.port() {
            return bad("metric.port", "must differ from the port of server.listen");
        }
        if !valid_name(&self.aws.queue_prefix, 0, 60, "_-") {
            return bad("aws.queue_prefix", "SQS names take only A-Z a-z 0-9 _ - (at most 60 here)");
        }
        for (key, url) in [
            ("aws.endpoint", &self.aws.endpoint),
            ("aws.s3_public_endpoint", &self.aws.s3_public_endpoint),
            ("server.upload_base_url", &self.server.upload_base_url),
            ("server.external_url", &self.server.external_url),
        ] {
            if let Some(u) = url {
                match url::Url::parse(u) {
                    Ok(p) if matches!(p.scheme(), "http" | "https") && p.host().is_some() => {}
                    _ => return bad(key, &format!("{u:?} is not an http(s) URL")),
                }
            }
        }
        if !(1..=1000).contains(&self.queue.max_attempts) {
            return bad("queue.max_attempts", "must be 1..=1000");
        }
        if !(1..=604_800).contains(&self.server.presign_ttl_secs) {
            return bad("server.presign_ttl_secs", "must be 1..=604800 (S3 allows at most 7 days)");
        }
        if !(1024..=64 * 1024 * 1024).contains(&self.server.max_manifest_bytes) {
            return bad("server.max_manifest_bytes", "must be 1024..=67108864");
        }
        if !(1..=300).contains(&self.aws.connect_timeout_secs) {
            return bad("aws.connect_timeout_secs", "must be 1..=300");
        }
        if let Some(p) = &self.admin.password
            && p.expose().len() < 8
        {
            return bad("admin.password", "must be at least 8 characters");
        }
        if self.proxy.tag_ttl_secs > 86_400 {
            return bad("proxy.tag_ttl_secs", "must be 0..=86400");
        }
        if !(1..=600).contains(&self.proxy.timeout_secs) {
            return bad("proxy.timeout_secs", "must be 1..=600");
        }
        if self.proxy.manifest_wait_secs > 600 {
            return bad("proxy.manifest_wait_secs", "must be 0..=600");
        }
        if !(60..=86_400).contains(&self.auth.token_ttl_secs) {
            return bad("auth.token_ttl_secs", "must be 60..=86400");
        }
        if let Some(key) = &self.auth.token_key
            && let Err(e) = crate::auth::token::TokenKeys::from_pem(key.expose())
        {
            return bad("auth.token_key", &e.to_string());
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return bad("log.level", "not a valid tracing filter (try `info` or `berth=debug`)");
        }
        Ok(())
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn valid_bucket(b: &str) -> bool {
    valid_name(b, 3, 63, ".-")
        && !b.bytes().any(|c| c.is_ascii_uppercase())
        && b.starts_with(|c: char| c.is_ascii_alphanumeric())
        && b.ends_with(|c: char| c.is_ascii_alphanumeric())
}

fn valid_name(s: &str, min: usize, max: usize, extra: &str) -> bool {
    (min..=max).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
}

/// Folds `BERTH_*` variables into the table. A variable's type comes from
/// the key's default value, so `BERTH_SERVER_PRESIGN_TTL_SECS=60` is an
/// integer and `BERTH_ADMIN_PASSWORD=12345678` stays a string.
fn apply_env(table: &mut toml::Table, env: impl IntoIterator<Item = (String, String)>) -> Result<(), ConfigError> {
    let defaults = match toml::Value::try_from(Config::default()) {
        Ok(toml::Value::Table(t)) => t,
        _ => return Err(ConfigError::new("internal: defaults do not serialize")),
    };
    let sections: BTreeMap<String, &toml::Table> =
        defaults.iter().filter_map(|(k, v)| v.as_table().map(|t| (k.clone(), t))).collect();
    let mut vars: Vec<(String, String)> = env.into_iter().filter(|(k, _)| k.starts_with(ENV_PREFIX)).collect();
    vars.sort();
    for (var, raw) in vars {
        let name = var[ENV_PREFIX.len()..].to_ascii_lowercase();
        let (section, key) = match name.split_once('_') {
            Some((s, k)) if sections.contains_key(s) => (Some(s.to_owned()), k.to_owned()),
            _ => (None, name.clone()),
        };
        let default = match &section {
            Some(s) => sections.get(s).and_then(|t| t.get(&key)),
            None => defaults.get(&key).filter(|v| !v.is_table()),
        };
        let path = section.as_ref().map_or(key.clone(), |s| format!("{s}.{key}"));
        let known = default.is_some() || optional_string_key(&path);
        if !known {
            // Other tools' variables share the prefix only by accident in
            // tests; an unknown BERTH_ key is almost always a typo.
            if is_reserved_env(&var) {
                continue;
            }
            return Err(ConfigError::new(format!("{var}: no configuration key `{path}`")));
        }
        let value = match default {
            Some(toml::Value::Integer(_)) => raw
                .trim()
                .parse::<i64>()
                .map(toml::Value::Integer)
                .map_err(|_| ConfigError::new(format!("{var} (key `{path}`): {raw:?} is not an integer")))?,
            Some(toml::Value::Boolean(_)) => toml::Value::Boolean(
                parse_bool(&raw)
                    .ok_or_else(|| ConfigError::new(format!("{var} (key `{path}`): {raw:?} is not true or false")))?,
            ),
            _ if path == "aws.force_path_style" => toml::Value::Boolean(
                parse_bool(&raw)
                    .ok_or_else(|| ConfigError::new(format!("{var} (key `{path}`): {raw:?} is not true or false")))?,
            ),
            _ => toml::Value::String(raw),
        };
        let target = match section {
            Some(s) => {
                let entry = table.entry(s.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
                match entry {
                    toml::Value::Table(t) => t,
                    _ => return Err(ConfigError::new(format!("key `{s}`: must be a table"))),
                }
            }
            None => &mut *table,
        };
        target.insert(key, value);
    }
    Ok(())
}

/// Keys whose default is `None` (so absent from the serialized defaults).
fn optional_string_key(path: &str) -> bool {
    matches!(
        path,
        "server.upload_base_url"
            | "aws.region"
            | "aws.endpoint"
            | "aws.s3_public_endpoint"
            | "aws.force_path_style"
            | "admin.password"
            | "auth.token_key"
            | "server.external_url"
    )
}

/// `BERTH_*` variables that are not configuration keys: test switches and
/// the variables read by scripts (`scripts/emulator`, `.ci/run`).
fn is_reserved_env(var: &str) -> bool {
    var.starts_with("BERTH_TEST_")
        || var.starts_with("BERTH_EMULATOR_")
        || matches!(var, "BERTH_BIN" | "BERTH_CONFIG" | "BERTH_TOOLS_DIR")
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn load(file: Option<&str>, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.toml");
        if let Some(text) = file {
            std::fs::write(&path, text).unwrap();
        }
        Config::load_from(file.map(|_| path.as_path()), env(vars), &Overrides::default())
    }

    #[test]
    fn defaults_need_nothing() {
        let c = load(None, &[]).unwrap();
        assert_eq!(c.backend, Backend::Local);
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:5000");
        assert_eq!(c.data_dir, PathBuf::from("./data"));
    }

    #[test]
    fn file_then_env_then_flags() {
        let file =
            "backend = \"aws\"\n[aws]\nbucket = \"from-file\"\ntable = \"table1\"\n[server]\npresign_ttl_secs = 60\n";
        let c = load(
            Some(file),
            &[
                ("BERTH_AWS_BUCKET", "from-env"),
                ("BERTH_SERVER_PRESIGN_TTL_SECS", "90"),
                ("BERTH_ADMIN_PASSWORD", "12345678"),
            ],
        )
        .unwrap();
        assert_eq!((c.aws.bucket.as_str(), c.aws.table.as_str()), ("from-env", "table1"));
        assert_eq!(c.server.presign_ttl_secs, 90);
        assert_eq!(c.admin.password.as_ref().map(Secret::expose), Some("12345678"));
        assert!(!format!("{c:?}").contains("12345678"), "secrets never printed");
        let o = Overrides { backend: Some(Backend::Local), ..Overrides::default() };
        let c = Config::load_from(None, env(&[("BERTH_BACKEND", "aws")]), &o).unwrap();
        assert_eq!(c.backend, Backend::Local);
    }

    #[test]
    fn script_and_test_variables_are_not_keys() {
        let vars = [
            ("BERTH_TOOLS_DIR", "/tmp/tools"),
            ("BERTH_EMULATOR_PORT", "4567"),
            ("BERTH_EMULATOR_RUN_DIR", "/tmp/run"),
            ("BERTH_TEST_REQUIRE_EMULATORS", "1"),
        ];
        assert_eq!(load(None, &vars).unwrap().backend, Backend::Local);
    }

    /// A config file, variables, and the key its error must name.
    type Case<'a> = (Option<&'a str>, &'a [(&'a str, &'a str)], &'a str);

    #[test]
    fn bad_values_name_the_key() {
        let cases: &[Case] = &[
            (Some("[server]\nlisten = \"nowhere\"\n"), &[], "server.listen"),
            (Some("[server]\nlistn = \"x\"\n"), &[], "listn"),
            (Some("backend = \"cloud\"\n"), &[], "backend"),
            (Some("[aws\n"), &[], "berth.toml"),
            (None, &[("BERTH_SERVER_PRESIGN_TTL_SECS", "soon")], "BERTH_SERVER_PRESIGN_TTL_SECS"),
            (None, &[("BERTH_SERVER_PRESIGN_TTL_SECS", "0")], "server.presign_ttl_secs"),
            (None, &[("BERTH_BACKEND", "aws")], "aws.bucket"),
            (
                None,
                &[("BERTH_BACKEND", "aws"), ("BERTH_AWS_BUCKET", "Bad_Bucket"), ("BERTH_AWS_TABLE", "table1")],
                "aws.bucket",
            ),
            (None, &[("BERTH_AWS_ENDPOINT", "localhost:4566")], "aws.endpoint"),
            (None, &[("BERTH_NO_SUCH_THING", "1")], "BERTH_NO_SUCH_THING"),
            (None, &[("BERTH_ADMIN_PASSWORD", "short")], "admin.password"),
            (None, &[("BERTH_LOG_FORMAT", "xml")], "log.format"),
        ];
        for (file, vars, needle) in cases {
            let err = load(*file, vars).unwrap_err().to_string();
            assert!(err.contains(needle), "{err:?} should name {needle}");
            assert!(!err.contains('\n'), "one line: {err:?}");
        }
    }
}

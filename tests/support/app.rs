//! `TestApp`: berth's real router in this process, over fresh local
//! backends in a temporary folder or over fresh AWS resources on the
//! emulator, bootstrapped as `berth serve` does it (the administrator
//! `admin` with [`ADMIN_PASSWORD`], the `library` project).
//!
//! Requests go straight into the router (`tower::ServiceExt::oneshot`): no
//! socket, no child process. [`TestApp::serve`] puts the same router on a
//! loopback port, inside this process, for clients that need a real URL
//! (harborapi). The context stays reachable ([`TestApp::ctx`]) so that a
//! test can look at the ports behind the API, and so that pending jobs can
//! be run from here once berth has a job runner.
//!
//! Tests that exercise real clients, the `berth` command line or the
//! process itself (start-up, restarts after a kill, its memory or I/O)
//! use [`super::Server`] instead.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use base64::Engine as _;
use berth::config::{Config, Secret};
use berth::context::AppContext;
use berth::meta::counting::{CountingMetaStore, Counts};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, header};
use http_body_util::BodyExt as _;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tower::ServiceExt as _;

use super::AwsResources;

/// The administrator's password in every test.
pub const ADMIN_PASSWORD: &str = "Harbor12345";

/// The host in-process requests are addressed to, so that the URLs berth
/// builds from the request (token realms, `Link`s, origin checks) have one.
pub const HOST: &str = "berth.test";

type ConfigChange = Box<dyn FnOnce(&mut Config) + Send>;

/// Changes to the configuration before the app starts.
#[derive(Default)]
pub struct TestAppBuilder {
    changes: Vec<ConfigChange>,
    count_meta: bool,
}

impl TestAppBuilder {
    /// Changes the configuration (after the test defaults, before start).
    pub fn config(mut self, change: impl FnOnce(&mut Config) + Send + 'static) -> Self {
        self.changes.push(Box::new(change));
        self
    }

    /// Counts the requests the app makes of its metadata store
    /// ([`TestApp::meta_counts`]).
    pub fn count_meta(mut self) -> Self {
        self.count_meta = true;
        self
    }

    /// The app on fresh local backends in a temporary folder.
    pub async fn local(self) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let count = self.count_meta;
        let config = self.configure(dir.path(), None);
        TestApp::open(config, dir, None, count).await
    }

    /// The app on fresh AWS resources on the emulator (a bucket, a table
    /// and queues named after `stem`, migrated here and deleted when the
    /// app drops); `None` when the emulator is not configured, which is a
    /// failure under `BERTH_TEST_REQUIRE_EMULATORS=1`.
    pub async fn aws(self, stem: &str) -> Option<TestApp> {
        // The test harness names each test's thread after the test.
        let test = std::thread::current().name().unwrap_or(stem).to_owned();
        if !berth::testkit::emulator_available(&test) {
            return None;
        }
        let aws = AwsResources::new(stem);
        let dir = tempfile::tempdir().unwrap();
        let count = self.count_meta;
        let config = self.configure(dir.path(), Some(&aws));
        if let Err(e) = berth::migrate::apply_aws(&config).await {
            panic!("migrating {}: {e}", aws.bucket());
        }
        Some(TestApp::open(config, dir, Some(aws), count).await)
    }

    fn configure(self, dir: &Path, aws: Option<&AwsResources>) -> Config {
        let mut config = Config { data_dir: dir.join("data"), ..Config::default() };
        config.admin.password = Some(Secret::new(ADMIN_PASSWORD));
        if let Some(aws) = aws {
            aws.apply(&mut config);
        }
        for change in self.changes {
            change(&mut config);
        }
        config.validate().unwrap_or_else(|e| panic!("test configuration: {e}"));
        config
    }
}

/// The real router over one context; see the module documentation.
pub struct TestApp {
    ctx: Arc<AppContext>,
    router: Router,
    served: Served,
    counting: Option<Arc<CountingMetaStore>>,
    // Declared last so they drop last: the backends live in them.
    aws: Option<AwsResources>,
    dir: tempfile::TempDir,
}

/// The running background side of a [`TestApp`]; dropping it stops it.
pub struct Workers(tokio_util::sync::CancellationToken);

impl Drop for Workers {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

impl TestApp {
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder::default()
    }

    /// [`TestAppBuilder::local`] with the test defaults.
    pub async fn local() -> Self {
        Self::builder().local().await
    }

    /// [`TestAppBuilder::aws`] with the test defaults.
    pub async fn aws(stem: &str) -> Option<Self> {
        Self::builder().aws(stem).await
    }

    /// Opens the context and bootstraps, as `berth serve` does.
    async fn open(config: Config, dir: tempfile::TempDir, aws: Option<AwsResources>, count_meta: bool) -> Self {
        let mut ctx = AppContext::open(config).await.unwrap_or_else(|e| panic!("opening the app: {e}"));
        let mut counting = None;
        if count_meta {
            let counter = Arc::new(CountingMetaStore::new(ctx.meta.clone()));
            counting = Some(counter.clone());
            let events = Arc::new(berth::events::EventBus::new(counter.clone(), ctx.queue.clone()));
            ctx = Arc::new(AppContext::assemble(
                ctx.config.clone(),
                ctx.blobs.clone(),
                counter,
                ctx.queue.clone(),
                ctx.token_keys.clone(),
                events,
            ));
        }
        ctx.bootstrap().await.unwrap_or_else(|e| panic!("bootstrapping: {e}"));
        let router = berth::http::router(ctx.clone());
        Self { ctx, router, served: Served::default(), counting, aws, dir }
    }

    /// Starts this app's background side, as `berth serve` does: the event
    /// relay, the scheduler and a consumer of every queue; they stop when
    /// the guard is dropped.
    pub fn run_workers(&self) -> Workers {
        let stop = tokio_util::sync::CancellationToken::new();
        berth::jobs::host::start(&self.ctx, &berth::queue::ALL_QUEUES, &stop);
        Workers(stop)
    }

    /// Another replica on the same AWS resources (its own context, caches
    /// and router), as a second container or a warm Lambda would be.
    pub async fn replica(&self) -> Self {
        let aws = self.aws.clone().expect("replicas share AWS resources; this app runs on local backends");
        let dir = tempfile::tempdir().unwrap();
        Self::open(self.ctx.config.clone(), dir, Some(aws), false).await
    }

    /// The requests made of the metadata store so far (the app was built
    /// with [`TestAppBuilder::count_meta`]).
    pub fn meta_counts(&self) -> Counts {
        self.counting.as_ref().expect("built with count_meta()").counts()
    }

    /// Stops this app and starts another on the same configuration and
    /// backends, as a restarted server would.
    pub async fn restart(self) -> Self {
        let config = self.ctx.config.clone();
        let count = self.counting.is_some();
        let Self { ctx, router, served, counting, aws, dir } = self;
        drop(counting);
        for task in served.take() {
            task.abort();
            let _ = task.await;
        }
        drop(router);
        // Requests may have left tasks behind (credential re-checks) that
        // hold the context; the local database opens only once they end.
        let alone = berth::testkit::eventually(Duration::from_secs(10), || {
            let count = Arc::strong_count(&ctx);
            async move { (count == 1).then_some(()) }
        })
        .await;
        assert!(alone.is_some(), "the old context is still in use");
        drop(ctx);
        Self::open(config, dir, aws, count).await
    }

    /// The context: configuration and ports.
    pub fn ctx(&self) -> &Arc<AppContext> {
        &self.ctx
    }

    /// The app's temporary folder (the local backends live in `data/`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The AWS resources of an app made by [`Self::aws`].
    pub fn aws_resources(&self) -> Option<&AwsResources> {
        self.aws.as_ref()
    }

    /// The base URL in-process requests appear to come to.
    pub fn url(&self, path: &str) -> String {
        format!("http://{HOST}{path}")
    }

    /// Serves the same router on a free loopback port, inside this process,
    /// until the app drops; its address.
    pub async fn serve(&self) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        self.serve_on(listener)
    }

    /// Serves the same router on `listener` (bound before the app was
    /// built, when its configuration must name the address).
    pub fn serve_on(&self, listener: tokio::net::TcpListener) -> SocketAddr {
        let addr = listener.local_addr().unwrap();
        let router = self.router.clone();
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                eprintln!("the test server on {addr} stopped: {e}");
            }
        });
        self.served.0.lock().unwrap().push(task);
        addr
    }

    /// A request without credentials.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder<'_> {
        RequestBuilder::new(self, method, path)
    }

    pub fn get(&self, path: &str) -> RequestBuilder<'_> {
        self.request(Method::GET, path)
    }

    pub fn post(&self, path: &str) -> RequestBuilder<'_> {
        self.request(Method::POST, path)
    }

    pub fn put(&self, path: &str) -> RequestBuilder<'_> {
        self.request(Method::PUT, path)
    }

    pub fn patch(&self, path: &str) -> RequestBuilder<'_> {
        self.request(Method::PATCH, path)
    }

    pub fn delete(&self, path: &str) -> RequestBuilder<'_> {
        self.request(Method::DELETE, path)
    }

    pub fn head(&self, path: &str) -> RequestBuilder<'_> {
        self.request(Method::HEAD, path)
    }

    /// A client with the administrator's credentials.
    pub fn admin(&self) -> Client<'_> {
        self.client(Credentials::basic("admin", ADMIN_PASSWORD))
    }

    /// A client with a user's (or a robot's) name and password.
    pub fn user(&self, name: &str, password: &str) -> Client<'_> {
        self.client(Credentials::basic(name, password))
    }

    /// A client of a robot made by [`Self::create_robot`].
    pub fn robot(&self, robot: &Robot) -> Client<'_> {
        self.user(&robot.name, &robot.secret)
    }

    /// A client without credentials.
    pub fn anonymous(&self) -> Client<'_> {
        self.client(Credentials::None)
    }

    pub fn client(&self, credentials: Credentials) -> Client<'_> {
        Client { app: self, credentials }
    }

    async fn call(&self, request: Request<Body>) -> TestResponse {
        let response = self.router.clone().oneshot(request).await.unwrap_or_else(|e| match e {});
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap_or_else(|e| panic!("reading a response body: {e}")).to_bytes();
        TestResponse { status: parts.status, headers: parts.headers, body }
    }

    // ------------------------------------------------- Harbor API helpers

    /// Creates a local user (e-mail `<name>@example.com`) as the
    /// administrator; its id.
    pub async fn create_user(&self, name: &str, password: &str) -> i64 {
        let body = json!({"username": name, "email": format!("{name}@example.com"), "realname": name,
            "password": password});
        self.admin().post("/api/v2.0/users").json(&body).send().await.success().location_id()
    }

    /// Creates a project as the administrator; its id.
    pub async fn create_project(&self, name: &str, public: bool) -> i64 {
        let body = json!({"project_name": name, "public": public});
        self.admin().post("/api/v2.0/projects").json(&body).send().await.success().location_id()
    }

    /// Makes a user a member of a project (by id) with Harbor's role id
    /// (1 project admin, 2 developer, 3 guest, 4 maintainer, 5 limited
    /// guest); the member id.
    /// Sets project metadata (`{"auto_scan": "true"}`) as the administrator.
    pub async fn set_project_metadata(&self, project_id: i64, metadata: Value) {
        self.admin()
            .put(&format!("/api/v2.0/projects/{project_id}"))
            .json(&serde_json::json!({ "metadata": metadata }))
            .send()
            .await
            .expect(200);
    }

    pub async fn add_member(&self, project_id: i64, username: &str, role: i64) -> i64 {
        let body = json!({"role_id": role, "member_user": {"username": username}});
        let path = format!("/api/v2.0/projects/{project_id}/members");
        self.admin().post(&path).json(&body).send().await.success().location_id()
    }

    /// Creates a robot from a Harbor `RobotCreate` body as the
    /// administrator.
    pub async fn create_robot(&self, body: &Value) -> Robot {
        let made: Value = self.admin().post("/api/v2.0/robots").json(body).send().await.success().json();
        Robot {
            id: made["id"].as_i64().unwrap(),
            name: made["name"].as_str().unwrap().to_owned(),
            secret: made["secret"].as_str().unwrap().to_owned(),
        }
    }

    /// A project robot that never expires, holding `(resource, action)`
    /// pairs in `project`.
    pub async fn project_robot(&self, project: &str, name: &str, access: &[(&str, &str)]) -> Robot {
        let access: Vec<Value> = access.iter().map(|(r, a)| json!({"resource": r, "action": a})).collect();
        self.create_robot(&json!({"name": name, "level": "project", "duration": -1,
            "permissions": [{"kind": "project", "namespace": project, "access": access}]}))
            .await
    }

    /// Uploads a blob in one request as the administrator (`201` required);
    /// its digest.
    pub async fn upload_blob(&self, repo: &str, bytes: &[u8]) -> String {
        let digest = digest_of(bytes);
        let r =
            self.admin().post(&format!("/v2/{repo}/blobs/uploads/?digest={digest}")).body(bytes.to_vec()).send().await;
        assert_eq!(r.status, StatusCode::CREATED, "blob upload to {repo}: {}", r.text());
        digest
    }

    /// Puts an OCI image manifest as the administrator (`201` required);
    /// its digest.
    pub async fn put_manifest(&self, repo: &str, reference: &str, manifest: &[u8]) -> String {
        let r = self
            .admin()
            .put(&format!("/v2/{repo}/manifests/{reference}"))
            .header("content-type", berth::oci::media::OCI_MANIFEST)
            .body(manifest.to_vec())
            .send()
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "manifest {repo}:{reference}: {}", r.text());
        digest_of(manifest)
    }

    /// Pushes a small image (a config and one layer, both uploaded through
    /// `/v2`, then the manifest) as the administrator; the manifest digest.
    pub async fn push_image(&self, repo: &str, tag: &str) -> String {
        let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
        let layer = format!("layer of {repo}:{tag}").into_bytes();
        let config_digest = self.upload_blob(repo, config).await;
        let layer_digest = self.upload_blob(repo, &layer).await;
        let manifest = image_manifest(&config_digest, config.len() as u64)
            .layer(&layer_digest, layer.len() as u64)
            .annotation("org.opencontainers.image.title", repo)
            .bytes();
        self.put_manifest(repo, tag, &manifest).await
    }
}

/// The listeners started by [`TestApp::serve`], stopped when the app drops.
#[derive(Default)]
struct Served(Mutex<Vec<tokio::task::JoinHandle<()>>>);

impl Served {
    fn take(&self) -> Vec<tokio::task::JoinHandle<()>> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        for task in self.take() {
            task.abort();
        }
    }
}

/// What a robot creation returned.
#[derive(Debug, Clone)]
pub struct Robot {
    pub id: i64,
    pub name: String,
    pub secret: String,
}

/// Who a [`Client`] is.
#[derive(Debug, Clone)]
pub enum Credentials {
    None,
    Basic(String, String),
    Bearer(String),
}

impl Credentials {
    pub fn basic(user: &str, password: &str) -> Self {
        Self::Basic(user.to_owned(), password.to_owned())
    }
}

/// Requests with one set of credentials.
#[derive(Clone)]
pub struct Client<'a> {
    app: &'a TestApp,
    credentials: Credentials,
}

impl<'a> Client<'a> {
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder<'a> {
        let rb = self.app.request(method, path);
        match &self.credentials {
            Credentials::None => rb,
            Credentials::Basic(user, password) => rb.basic(user, password),
            Credentials::Bearer(token) => rb.bearer(token),
        }
    }

    pub fn get(&self, path: &str) -> RequestBuilder<'a> {
        self.request(Method::GET, path)
    }

    pub fn post(&self, path: &str) -> RequestBuilder<'a> {
        self.request(Method::POST, path)
    }

    pub fn put(&self, path: &str) -> RequestBuilder<'a> {
        self.request(Method::PUT, path)
    }

    pub fn patch(&self, path: &str) -> RequestBuilder<'a> {
        self.request(Method::PATCH, path)
    }

    pub fn delete(&self, path: &str) -> RequestBuilder<'a> {
        self.request(Method::DELETE, path)
    }

    pub fn head(&self, path: &str) -> RequestBuilder<'a> {
        self.request(Method::HEAD, path)
    }
}

/// One in-process request being built.
#[must_use = "a request does nothing until sent"]
pub struct RequestBuilder<'a> {
    app: &'a TestApp,
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Option<Bytes>,
}

impl<'a> RequestBuilder<'a> {
    fn new(app: &'a TestApp, method: Method, path: &str) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static(HOST));
        Self { app, method, path: path.to_owned(), headers, body: None }
    }

    /// Sets a header, replacing any value it had (`host` included).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let name = HeaderName::from_bytes(name.as_bytes()).unwrap_or_else(|e| panic!("header name {name:?}: {e}"));
        let value = HeaderValue::from_str(value).unwrap_or_else(|e| panic!("header {name}: {e}"));
        self.headers.insert(name, value);
        self
    }

    pub fn basic(self, user: &str, password: &str) -> Self {
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        self.header("authorization", &format!("Basic {encoded}"))
    }

    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    /// A JSON body, with its content type.
    pub fn json<T: Serialize + ?Sized>(self, value: &T) -> Self {
        let bytes = serde_json::to_vec(value).unwrap();
        self.header("content-type", "application/json").body(bytes)
    }

    pub fn body(mut self, bytes: impl Into<Bytes>) -> Self {
        self.body = Some(bytes.into());
        self
    }

    pub async fn send(self) -> TestResponse {
        let mut request = Request::builder().method(self.method).uri(&self.path);
        if let Some(headers) = request.headers_mut() {
            *headers = self.headers;
            // What an HTTP client sends with a body.
            if let Some(body) = &self.body {
                headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
            }
        }
        let request = request
            .body(self.body.map_or_else(Body::empty, Body::from))
            .unwrap_or_else(|e| panic!("building a request for {}: {e}", self.path));
        self.app.call(request).await
    }
}

/// A whole response.
#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl TestResponse {
    /// The status as a number.
    pub fn code(&self) -> u16 {
        self.status.as_u16()
    }

    /// A header that must be there, as text.
    pub fn header(&self, name: &str) -> &str {
        let value = self.headers.get(name).unwrap_or_else(|| panic!("no {name} header: {:?}", self.headers));
        value.to_str().unwrap()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; a body that is not is a failure naming it.
    pub fn json<T: DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("{} with a body that is not the JSON expected ({e}): {}", self.status, self.text())
        })
    }

    /// Requires a 2xx status.
    pub fn success(self) -> Self {
        assert!(self.status.is_success(), "expected success, got {}: {}", self.status, self.text());
        self
    }

    /// Requires exactly `status`.
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(self.code(), status, "unexpected status; body: {}", self.text());
        self
    }

    /// The code of the Harbor or OCI error body ([`super::error_code`]).
    pub fn error_code(&self) -> String {
        super::error_code(&self.body)
    }

    /// The status and the error code.
    pub fn status_and_code(&self) -> (u16, String) {
        (self.code(), self.error_code())
    }

    /// The id at the end of the `Location` of a created resource.
    pub fn location_id(&self) -> i64 {
        let location = self.header("location");
        location.rsplit('/').next().and_then(|id| id.parse().ok()).unwrap_or_else(|| panic!("no id in {location}"))
    }
}

/// The digest of some bytes, as text.
pub fn digest_of(bytes: &[u8]) -> String {
    berth::oci::Digest::sha256_of(bytes).to_string()
}

/// An OCI image manifest over a config blob; see [`ManifestBuilder`].
pub fn image_manifest(config_digest: &str, config_size: u64) -> ManifestBuilder {
    ManifestBuilder { config: (config_digest.to_owned(), config_size), layers: Vec::new(), annotations: Vec::new() }
}

/// Builds the bytes of an OCI image manifest.
pub struct ManifestBuilder {
    config: (String, u64),
    layers: Vec<(String, u64, String)>,
    annotations: Vec<(String, String)>,
}

impl ManifestBuilder {
    /// Adds a layer (an uncompressed tar, by media type).
    pub fn layer(self, digest: &str, size: u64) -> Self {
        self.layer_of_type(digest, size, "application/vnd.oci.image.layer.v1.tar")
    }

    /// Adds a layer of another media type (`…tar+gzip`).
    pub fn layer_of_type(mut self, digest: &str, size: u64, media_type: &str) -> Self {
        self.layers.push((digest.to_owned(), size, media_type.to_owned()));
        self
    }

    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        self.annotations.push((key.to_owned(), value.to_owned()));
        self
    }

    pub fn bytes(&self) -> Vec<u8> {
        use berth::oci::media::{OCI_CONFIG, OCI_MANIFEST};
        let layers: Vec<Value> =
            self.layers.iter().map(|(d, s, t)| json!({"mediaType": t, "digest": d, "size": s})).collect();
        let mut manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": self.config.0, "size": self.config.1},
            "layers": layers,
        });
        if !self.annotations.is_empty() {
            manifest["annotations"] = self.annotations.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        }
        serde_json::to_vec(&manifest).unwrap()
    }
}

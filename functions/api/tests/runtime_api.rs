//! The `api` Lambda binary under a Lambda Runtime API served by this test:
//! it receives API Gateway HTTP API (v2) / function URL events and must
//! answer them with the same router as `berth serve`, here a manifest GET
//! and a blob GET that redirects to a presigned S3 URL (AWS emulator).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use berth::config::{Backend, Config, Overrides};
use berth::context::AppContext;
use berth::oci::{Digest, Reference, RepoName};
use berth::service::Registry;
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{Value, json};

/// What the fake runtime hands out and what it got back.
#[derive(Default)]
struct Runtime {
    events: Mutex<VecDeque<(String, Value)>>,
    responses: Mutex<Vec<(String, Value)>>,
    init_errors: Mutex<Vec<Value>>,
}

async fn next(State(rt): State<Arc<Runtime>>) -> Response {
    loop {
        let event = rt.events.lock().unwrap().pop_front();
        if let Some((id, body)) = event {
            let mut resp = axum::Json(body).into_response();
            let h = resp.headers_mut();
            h.insert("lambda-runtime-aws-request-id", HeaderValue::from_str(&id).unwrap());
            h.insert("lambda-runtime-deadline-ms", HeaderValue::from_static("9999999999999"));
            h.insert(
                "lambda-runtime-invoked-function-arn",
                HeaderValue::from_static("arn:aws:lambda:us-east-1:123456789012:function:api"),
            );
            h.insert("lambda-runtime-trace-id", HeaderValue::from_static("Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700"));
            return resp;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn respond(State(rt): State<Arc<Runtime>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    rt.responses.lock().unwrap().push((id, serde_json::from_slice(&body).unwrap_or(Value::Null)));
    StatusCode::ACCEPTED
}

async fn init_error(State(rt): State<Arc<Runtime>>, _h: HeaderMap, body: Bytes) -> StatusCode {
    rt.init_errors.lock().unwrap().push(serde_json::from_slice(&body).unwrap_or(Value::Null));
    StatusCode::ACCEPTED
}

async fn start_runtime(rt: Arc<Runtime>) -> SocketAddr {
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{id}/response", post(respond))
        .route("/2018-06-01/runtime/invocation/{id}/error", post(respond))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(rt);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// A function URL / HTTP API (payload 2.0) event.
fn http_event(method: &str, path: &str, auth: &str) -> Value {
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {
            "authorization": auth,
            "accept": "application/vnd.oci.image.manifest.v1+json",
            "host": "abcdefg.lambda-url.us-east-1.on.aws",
            "x-forwarded-proto": "https"
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abcdefg",
            "domainName": "abcdefg.lambda-url.us-east-1.on.aws",
            "domainPrefix": "abcdefg",
            "http": { "method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test" },
            "requestId": "req",
            "routeKey": "$default",
            "stage": "$default",
            "time": "29/Nov/2026:16:00:00 +0000",
            "timeEpoch": 1_796_054_400_000_i64
        },
        "isBase64Encoded": false
    })
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_function_serves_http_events() {
    if !berth::testkit::emulator_available("api_function_serves_http_events") {
        return;
    }
    let name = berth::testkit::unique("berth-lambda-");
    let env: Vec<(String, String)> = vec![
        ("BERTH_BACKEND".into(), "aws".into()),
        ("BERTH_AWS_BUCKET".into(), name.clone()),
        ("BERTH_AWS_TABLE".into(), name.clone()),
        ("BERTH_AWS_QUEUE_PREFIX".into(), format!("{name}-")),
        ("BERTH_ADMIN_PASSWORD".into(), "Harbor12345".into()),
    ];
    // Prepare the AWS resources and content through the library, as
    // `berth migrate` and a push would.
    let config = Config::load_from(None, env.clone(), &Overrides::default()).unwrap();
    assert_eq!(config.backend, Backend::Aws);
    berth::migrate::apply_aws(&config).await.unwrap();
    let ctx = AppContext::open(config).await.unwrap();
    berth::service::bootstrap(&ctx).await.unwrap();
    let registry = Registry::new(&ctx);
    let repo = RepoName::parse("library/lambda").unwrap();
    let layer = Bytes::from(vec![7u8; 3 * 1024 * 1024 + 11]);
    let layer_digest = Digest::sha256_of(&layer);
    let config_blob = Bytes::from_static(b"{}");
    let config_digest = Digest::sha256_of(&config_blob);
    for (bytes, digest) in [(layer.clone(), &layer_digest), (config_blob.clone(), &config_digest)] {
        let up = registry.start_upload(&repo).await.unwrap();
        let body = one_chunk(bytes);
        registry.complete_upload(&repo, &up.id, digest, None, Some(body)).await.unwrap();
    }
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest.to_string(), "size": 2 },
        "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest.to_string(), "size": layer.len() }]
    });
    let manifest_bytes = Bytes::from(serde_json::to_vec(&manifest).unwrap());
    let tag = Reference::parse("v1").unwrap();
    let put = registry
        .put_manifest(&repo, &tag, Some("application/vnd.oci.image.manifest.v1+json"), manifest_bytes.clone())
        .await
        .unwrap();

    let rt = Arc::new(Runtime::default());
    let auth = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("admin:Harbor12345"));
    rt.events.lock().unwrap().extend([
        ("m1".to_owned(), http_event("GET", "/v2/library/lambda/manifests/v1", &auth)),
        ("b1".to_owned(), http_event("GET", &format!("/v2/library/lambda/blobs/{layer_digest}"), &auth)),
        ("u1".to_owned(), http_event("GET", "/v2/library/lambda/manifests/v1", "Basic bm9ib2R5Om5vbmU=")),
    ]);
    let addr = start_runtime(rt.clone()).await;
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_api"))
        .envs(env)
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "api")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/api")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let _child = Killed(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    while rt.responses.lock().unwrap().len() < 3 {
        assert!(rt.init_errors.lock().unwrap().is_empty(), "init failed: {:?}", rt.init_errors.lock().unwrap());
        assert!(Instant::now() < deadline, "the function did not answer three events within 60 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("api function answered three events {:?} after start", started.elapsed());
    let responses: std::collections::HashMap<String, Value> = rt.responses.lock().unwrap().iter().cloned().collect();

    let m = &responses["m1"];
    assert_eq!(m["statusCode"], 200, "{m}");
    let header = |r: &Value, h: &str| r["headers"][h].as_str().map(str::to_owned);
    assert_eq!(header(m, "content-type").as_deref(), Some("application/vnd.oci.image.manifest.v1+json"));
    assert_eq!(header(m, "docker-content-digest"), Some(put.digest.to_string()));
    let body = m["body"].as_str().unwrap();
    let body = if m["isBase64Encoded"].as_bool() == Some(true) {
        base64::engine::general_purpose::STANDARD.decode(body).unwrap()
    } else {
        body.as_bytes().to_vec()
    };
    assert_eq!(body, manifest_bytes.to_vec(), "the manifest comes back byte for byte");

    let b = &responses["b1"];
    assert_eq!(b["statusCode"], 307, "{b}");
    let location = header(b, "location").unwrap();
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap();
    assert!(location.starts_with(&endpoint), "{location} points at the object store {endpoint}");
    assert!(location.contains(&name), "{location} names the bucket");
    let fetched = reqwest_get(&location).await;
    assert_eq!(Digest::sha256_of(&fetched), layer_digest, "the presigned URL serves the blob");

    let u = &responses["u1"];
    assert_eq!(u["statusCode"], 401, "{u}");
    assert!(header(u, "www-authenticate").is_some());
}

fn one_chunk(bytes: Bytes) -> berth::blob::ByteStream {
    futures::stream::once(async move { Ok(bytes) }).boxed()
}

async fn reqwest_get(url: &str) -> Bytes {
    let resp = reqwest::get(url).await.unwrap();
    assert!(resp.status().is_success(), "GET {url}: {}", resp.status());
    resp.bytes().await.unwrap()
}

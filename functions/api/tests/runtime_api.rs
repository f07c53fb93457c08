//! The `api` Lambda binary under a Lambda Runtime API served by this test:
//! it receives API Gateway HTTP API (v2) / function URL events and must
//! answer them with the same router as `berth serve`: a whole push
//! (monolithic blob uploads and a manifest PUT) and a pull (the manifest,
//! a blob GET that redirects to a presigned S3 URL, the tag list), on the
//! AWS emulator. Prints the function's cold init time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use base64::Engine as _;
use berth::oci::Digest;
use berth::testkit::lambda::Function;
use bytes::Bytes;
use serde_json::{Value, json};

/// One HTTP request as a function URL / HTTP API (payload 2.0) event.
struct Req<'a> {
    method: &'a str,
    path: &'a str,
    query: &'a str,
    headers: Vec<(&'a str, String)>,
    body: Option<&'a [u8]>,
}

impl<'a> Req<'a> {
    fn new(method: &'a str, path: &'a str, auth: &str) -> Self {
        Self { method, path, query: "", headers: vec![("authorization", auth.to_owned())], body: None }
    }

    fn event(&self) -> Value {
        let mut headers = serde_json::Map::new();
        headers.insert("host".into(), "abcdefg.lambda-url.us-east-1.on.aws".into());
        headers.insert("x-forwarded-proto".into(), "https".into());
        for (k, v) in &self.headers {
            headers.insert((*k).to_owned(), v.clone().into());
        }
        let body = self.body.map(|b| base64::engine::general_purpose::STANDARD.encode(b));
        json!({
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": self.path,
            "rawQueryString": self.query,
            "headers": headers,
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "abcdefg",
                "domainName": "abcdefg.lambda-url.us-east-1.on.aws",
                "domainPrefix": "abcdefg",
                "http": { "method": self.method, "path": self.path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test" },
                "requestId": "req",
                "routeKey": "$default",
                "stage": "$default",
                "time": "29/Nov/2026:16:00:00 +0000",
                "timeEpoch": 1_796_054_400_000_i64
            },
            "body": body,
            "isBase64Encoded": self.body.is_some()
        })
    }
}

fn header(r: &Value, h: &str) -> Option<String> {
    r["headers"][h].as_str().map(str::to_owned)
}

fn body_of(r: &Value) -> Vec<u8> {
    let body = r["body"].as_str().unwrap_or_default();
    if r["isBase64Encoded"].as_bool() == Some(true) {
        base64::engine::general_purpose::STANDARD.decode(body).unwrap()
    } else {
        body.as_bytes().to_vec()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_function_serves_a_push_and_a_pull() {
    if !berth::testkit::emulator_available("api_function_serves_a_push_and_a_pull") {
        return;
    }
    // The AWS resources, as `berth migrate` (a deploy step) makes them.
    let (env, ctx) = berth::testkit::lambda::deployed("berth-lambda-", &[]).await;
    let name = ctx.config.aws.bucket.clone();

    let started = Instant::now();
    // BERTH_TEST_API_BINARY runs another build (the `bootstrap` of a
    // packaged zip, say) under the same events.
    let binary = std::env::var("BERTH_TEST_API_BINARY").unwrap_or_else(|_| env!("CARGO_BIN_EXE_api").to_owned());
    let mut f = Function::start(&binary, "api", &env).await;
    let auth = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("admin:Harbor12345"));

    // Push: two monolithic blob uploads (POST, then PUT ?digest= with the
    // bytes, under the Lambda request limit), then the manifest.
    let layer: Vec<u8> = (0..3 * 1024 * 1024 + 11).map(|i: u32| (i % 253) as u8).collect();
    let layer_digest = Digest::sha256_of(&layer);
    let config_blob = b"{}".to_vec();
    let config_digest = Digest::sha256_of(&config_blob);
    for (i, (bytes, digest)) in [(&layer, &layer_digest), (&config_blob, &config_digest)].into_iter().enumerate() {
        let start = f.invoke(Req::new("POST", "/v2/library/lambda/blobs/uploads/", &auth).event()).await;
        if i == 0 {
            let init = f.init_time().unwrap();
            eprintln!("api function cold init (process start to first event request): {init:?}");
            eprintln!("api function first answer {:?} after start", started.elapsed());
        }
        assert_eq!(start["statusCode"], 202, "{start}");
        let location = header(&start, "location").unwrap();
        assert!(location.starts_with("/v2/library/lambda/blobs/uploads/"), "{location}");
        let query = format!("digest={digest}");
        let mut put = Req::new("PUT", &location, &auth);
        put.query = &query;
        put.headers.push(("content-type", "application/octet-stream".into()));
        put.body = Some(bytes);
        let put = f.invoke(put.event()).await;
        assert_eq!(put["statusCode"], 201, "{put}");
        assert_eq!(header(&put, "docker-content-digest"), Some(digest.to_string()));
    }
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest.to_string(), "size": 2 },
        "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest.to_string(), "size": layer.len() }]
    });
    let manifest_bytes = serde_json::to_vec(&manifest).unwrap();
    let manifest_digest = Digest::sha256_of(&manifest_bytes);
    let mut put = Req::new("PUT", "/v2/library/lambda/manifests/v1", &auth);
    put.headers.push(("content-type", "application/vnd.oci.image.manifest.v1+json".into()));
    put.body = Some(&manifest_bytes);
    let put = f.invoke(put.event()).await;
    assert_eq!(put["statusCode"], 201, "{put}");
    assert_eq!(header(&put, "docker-content-digest"), Some(manifest_digest.to_string()));

    // Pull: the manifest from the table, the blob as a redirect to S3.
    let mut get = Req::new("GET", "/v2/library/lambda/manifests/v1", &auth);
    get.headers.push(("accept", "application/vnd.oci.image.manifest.v1+json".into()));
    let m = f.invoke(get.event()).await;
    assert_eq!(m["statusCode"], 200, "{m}");
    assert_eq!(header(&m, "content-type").as_deref(), Some("application/vnd.oci.image.manifest.v1+json"));
    assert_eq!(header(&m, "docker-content-digest"), Some(manifest_digest.to_string()));
    assert_eq!(body_of(&m), manifest_bytes, "the manifest comes back byte for byte");

    let b = f.invoke(Req::new("GET", &format!("/v2/library/lambda/blobs/{layer_digest}"), &auth).event()).await;
    assert_eq!(b["statusCode"], 307, "{b}");
    let location = header(&b, "location").unwrap();
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap();
    assert!(location.starts_with(&endpoint), "{location} points at the object store {endpoint}");
    assert!(location.contains(&name), "{location} names the bucket");
    let fetched = reqwest_get(&location).await;
    assert_eq!(Digest::sha256_of(&fetched), layer_digest, "the presigned URL serves the blob");

    let tags = f.invoke(Req::new("GET", "/v2/library/lambda/tags/list", &auth).event()).await;
    assert_eq!(tags["statusCode"], 200, "{tags}");
    let tags: Value = serde_json::from_slice(&body_of(&tags)).unwrap();
    assert_eq!(tags["tags"], json!(["v1"]));

    let u = f.invoke(Req::new("GET", "/v2/library/lambda/manifests/v1", "Basic bm9ib2R5Om5vbmU=").event()).await;
    assert_eq!(u["statusCode"], 401, "{u}");
    assert!(header(&u, "www-authenticate").is_some());
}

async fn reqwest_get(url: &str) -> Bytes {
    let resp = reqwest::get(url).await.unwrap();
    assert!(resp.status().is_success(), "GET {url}: {}", resp.status());
    resp.bytes().await.unwrap()
}

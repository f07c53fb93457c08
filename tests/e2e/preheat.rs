//! P2P preheat (F16): provider instances, project policies and their runs,
//! against stand-ins of Dragonfly's manager open API and Kraken's registry
//! notifications, written here from those APIs.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::events::eventually;
use crate::support::app::{TestApp, TestAppBuilder, Workers};

/// How a Dragonfly stand-in's jobs end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// PENDING at the first poll, SUCCESS at the second.
    Succeed,
    Fail,
    /// PENDING for ever.
    Hang,
}

#[derive(Debug)]
struct Provider {
    ending: Ending,
    /// (path, Authorization header, body) of every request.
    requests: Mutex<Vec<(String, String, Value)>>,
    polls: Mutex<std::collections::HashMap<u64, u32>>,
}

impl Provider {
    fn posted(&self, path: &str) -> Vec<Value> {
        self.requests.lock().unwrap().iter().filter(|(p, _, _)| p == path).map(|(_, _, b)| b.clone()).collect()
    }

    fn auth_of(&self, path: &str) -> Vec<String> {
        self.requests.lock().unwrap().iter().filter(|(p, _, _)| p == path).map(|(_, a, _)| a.clone()).collect()
    }

    fn record(&self, path: &str, headers: &HeaderMap, body: Value) {
        let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        self.requests.lock().unwrap().push((path.to_owned(), auth, body));
    }
}

async fn df_healthy(State(p): State<Arc<Provider>>, headers: HeaderMap) -> StatusCode {
    p.record("/healthy", &headers, Value::Null);
    StatusCode::OK
}

async fn df_create(State(p): State<Arc<Provider>>, headers: HeaderMap, Json(body): Json<Value>) -> impl IntoResponse {
    p.record("/oapi/v1/jobs", &headers, body);
    let id = p.posted("/oapi/v1/jobs").len() as u64;
    Json(json!({"id": id, "type": "preheat", "status": "PENDING"}))
}

async fn df_job(State(p): State<Arc<Provider>>, Path(id): Path<u64>) -> impl IntoResponse {
    let n = {
        let mut polls = p.polls.lock().unwrap();
        let n = polls.entry(id).or_insert(0);
        *n += 1;
        *n
    };
    let status = match (p.ending, n) {
        (_, 1) | (Ending::Hang, _) => "PENDING",
        (Ending::Succeed, _) => "SUCCESS",
        (Ending::Fail, _) => "FAILURE",
    };
    Json(json!({"id": id, "type": "preheat", "status": status, "result": {"error": "seed peer unreachable"}}))
}

async fn kraken_health(State(p): State<Arc<Provider>>, headers: HeaderMap) -> StatusCode {
    p.record("/health", &headers, Value::Null);
    StatusCode::OK
}

async fn kraken_notify(State(p): State<Arc<Provider>>, headers: HeaderMap, Json(body): Json<Value>) -> StatusCode {
    p.record("/registry/notifications", &headers, body);
    StatusCode::OK
}

/// A Dragonfly manager stand-in.
async fn dragonfly(ending: Ending) -> (String, Arc<Provider>) {
    let p = Arc::new(Provider { ending, requests: Mutex::default(), polls: Mutex::default() });
    let app = axum::Router::new()
        .route("/healthy", get(df_healthy))
        .route("/oapi/v1/jobs", post(df_create))
        .route("/oapi/v1/jobs/{id}", get(df_job))
        .with_state(p.clone());
    (serve(app).await, p)
}

/// A Kraken stand-in.
async fn kraken() -> (String, Arc<Provider>) {
    let p = Arc::new(Provider { ending: Ending::Succeed, requests: Mutex::default(), polls: Mutex::default() });
    let app = axum::Router::new()
        .route("/health", get(kraken_health))
        .route("/registry/notifications", post(kraken_notify))
        .with_state(p.clone());
    (serve(app).await, p)
}

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// An app served on the port its configuration names as its external URL.
async fn served_app(workers: bool) -> (TestApp, Option<Workers>, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = TestAppBuilder::default()
        .config(move |c| {
            c.server.external_url = Some(format!("http://{addr}"));
            c.queue.max_attempts = 1;
        })
        .local()
        .await;
    app.serve_on(listener);
    let w = workers.then(|| app.run_workers());
    (app, w, format!("http://{addr}"))
}

async fn instance(app: &TestApp, name: &str, vendor: &str, endpoint: &str) -> i64 {
    let body = json!({"name": name, "vendor": vendor, "endpoint": endpoint, "auth_mode": "NONE", "enabled": true});
    app.admin().post("/api/v2.0/p2p/preheat/instances").json(&body).send().await.expect(201).location_id()
}

async fn policy(app: &TestApp, project: &str, name: &str, provider: i64, filters: &str, trigger: &str) {
    let body = json!({"name": name, "provider_id": provider, "filters": filters, "trigger": trigger, "enabled": true});
    app.admin().post(&format!("/api/v2.0/projects/{project}/preheat/policies")).json(&body).send().await.expect(201);
}

const MANUAL: &str = r#"{"type":"manual","trigger_setting":{"cron":""}}"#;
const RE_V1: &str = r#"[{"type":"repository","value":"re*"},{"type":"tag","value":"v1.0*"}]"#;

/// Runs a policy now; the execution's path.
async fn execute(app: &TestApp, project: &str, name: &str) -> String {
    let path = format!("/api/v2.0/projects/{project}/preheat/policies/{name}");
    let resp = app.admin().post(&path).json(&json!({})).send().await.expect(201);
    let location = resp.header("location").to_owned();
    assert!(location.starts_with(&format!("{path}/executions/")), "{location}");
    location
}

async fn ended(app: &TestApp, execution: &str) -> Value {
    eventually(Duration::from_secs(30), || async {
        let x: Value = app.admin().get(execution).send().await.expect(200).json();
        (x["status"] != "Running" && x["status"] != "Pending").then_some(x)
    })
    .await
    .expect("the execution did not end")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_are_the_administrators() {
    let app = TestApp::local().await;
    let providers: Value = app.admin().get("/api/v2.0/p2p/preheat/providers").send().await.expect(200).json();
    let ids: Vec<&str> = providers.as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["dragonfly", "kraken"]);

    // Unreachable, and created all the same (as Harbor: no check on create).
    let body = json!({"name": "df", "vendor": "dragonfly", "endpoint": "http://127.0.0.1:9", "auth_mode": "NONE",
                      "enabled": true, "insecure": true});
    let resp = app.admin().post("/api/v2.0/p2p/preheat/instances").json(&body).send().await.expect(201);
    assert!(resp.header("location").starts_with("/api/v2.0/p2p/preheat/instances/"));
    let again = json!({"name": "df", "vendor": "dragonfly", "endpoint": "http://127.0.0.1:8", "auth_mode": "NONE"});
    app.admin().post("/api/v2.0/p2p/preheat/instances").json(&again).send().await.expect(409);
    let bad = json!({"name": "x", "vendor": "bittorrent", "endpoint": "http://127.0.0.1:7"});
    app.admin().post("/api/v2.0/p2p/preheat/instances").json(&bad).send().await.expect(400);

    // Secrets are kept and never shown.
    let (df_url, df) = dragonfly(Ending::Succeed).await;
    let basic = json!({"name": "basic", "vendor": "dragonfly", "endpoint": df_url, "auth_mode": "BASIC",
                       "auth_info": {"username": "u", "password": "pa55-secret"}, "enabled": true});
    let basic_id =
        app.admin().post("/api/v2.0/p2p/preheat/instances").json(&basic).send().await.expect(201).location_id();
    let (kr_url, kr) = kraken().await;
    let oauth = json!({"name": "oauth", "vendor": "kraken", "endpoint": kr_url, "auth_mode": "OAUTH",
                       "auth_info": {"token": "t0ken-secret"}, "enabled": true});
    let oauth_id =
        app.admin().post("/api/v2.0/p2p/preheat/instances").json(&oauth).send().await.expect(201).location_id();
    let got: Value = app.admin().get("/api/v2.0/p2p/preheat/instances/basic").send().await.expect(200).json();
    assert_eq!(
        (got["id"].as_i64(), &got["auth_info"]),
        (Some(basic_id), &json!({"username": "u", "password": "*****"}))
    );
    let list = app.admin().get("/api/v2.0/p2p/preheat/instances?page_size=10").send().await.expect(200);
    assert_eq!(list.header("x-total-count"), "3");
    assert!(!list.text().contains("secret"), "{}", list.text());
    let one = app.admin().get("/api/v2.0/p2p/preheat/instances?q=name%3Doauth").send().await.expect(200);
    assert_eq!(one.json::<Value>()[0]["auth_info"]["token"], "*****");

    // Ping: the stored instances with their secrets, and given settings.
    let ping = "/api/v2.0/p2p/preheat/instances/ping";
    app.admin().post(ping).json(&json!({"id": basic_id})).send().await.expect(200);
    app.admin().post(ping).json(&json!({"id": oauth_id})).send().await.expect(200);
    assert_eq!(df.auth_of("/healthy"), ["Basic dTpwYTU1LXNlY3JldA=="]);
    assert_eq!(kr.auth_of("/health"), ["Bearer t0ken-secret"]);
    app.admin().post(ping).json(&json!({"vendor": "dragonfly", "endpoint": df_url})).send().await.expect(200);
    let down = json!({"vendor": "dragonfly", "endpoint": "http://127.0.0.1:9"});
    app.admin().post(ping).json(&down).send().await.expect(400);
    app.admin().post(ping).json(&json!({"id": 4242})).send().await.expect(404);

    // An update keeping the masked secret keeps the secret.
    let update = json!({"name": "basic", "vendor": "dragonfly", "endpoint": df_url, "auth_mode": "BASIC",
                        "auth_info": {"username": "u", "password": "*****"}, "enabled": true, "description": "d"});
    app.admin().put("/api/v2.0/p2p/preheat/instances/basic").json(&update).send().await.expect(200);
    app.admin().post(ping).json(&json!({"id": basic_id})).send().await.expect(200);
    assert_eq!(df.auth_of("/healthy").last().unwrap(), "Basic dTpwYTU1LXNlY3JldA==");
    let got: Value = app.admin().get("/api/v2.0/p2p/preheat/instances/basic").send().await.expect(200).json();
    assert_eq!(got["description"], "d");

    // Others may not manage instances.
    app.create_user("dev", "Passw0rd1").await;
    let dev = app.user("dev", "Passw0rd1");
    dev.get("/api/v2.0/p2p/preheat/instances").send().await.expect(403);
    dev.post("/api/v2.0/p2p/preheat/instances").json(&body).send().await.expect(403);
    dev.delete("/api/v2.0/p2p/preheat/instances/df").send().await.expect(403);
    app.anonymous().get("/api/v2.0/p2p/preheat/providers").send().await.expect(401);

    app.admin().delete("/api/v2.0/p2p/preheat/instances/df").send().await.expect(200);
    app.admin().get("/api/v2.0/p2p/preheat/instances/df").send().await.expect(404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn policies_are_the_project_administrators() {
    let app = TestApp::local().await;
    let provider = instance(&app, "df", "dragonfly", "http://127.0.0.1:9").await;
    app.create_user("owner", "Passw0rd1").await;
    let owner = app.user("owner", "Passw0rd1");
    let pid = owner
        .post("/api/v2.0/projects")
        .json(&json!({"project_name": "hot", "metadata": {"public": "false"}}))
        .send()
        .await
        .expect(201)
        .location_id();
    let base = "/api/v2.0/projects/hot/preheat/policies";
    let body = |name: &str, filters: &str, trigger: &str, provider: i64| {
        json!({"name": name, "project_id": pid, "provider_id": provider, "description": "d",
               "filters": filters, "trigger": trigger, "enabled": true})
    };
    owner.post(base).json(&body("p1", RE_V1, MANUAL, provider)).send().await.expect(201);
    owner.post(base).json(&body("p1", RE_V1, MANUAL, provider)).send().await.expect(409);
    owner.post(base).json(&body("p2", "[{", MANUAL, provider)).send().await.expect(400);
    owner.post(base).json(&body("p2", RE_V1, r#"{"type":"whenever"}"#, provider)).send().await.expect(400);
    owner.post(base).json(&body("p2", RE_V1, MANUAL, 4242)).send().await.expect(400);
    let cron = r#"{"type":"scheduled","trigger_setting":{"cron":"8 * * *"}}"#;
    owner.post(base).json(&body("p2", RE_V1, cron, provider)).send().await.expect(400);

    let got: Value = owner.get(&format!("{base}/p1")).send().await.expect(200).json();
    assert_eq!((got["filters"].as_str(), got["provider_id"].as_i64()), (Some(RE_V1), Some(provider)));
    assert_eq!((got["project_id"].as_i64(), got["provider_name"].as_str()), (Some(pid), Some("df")));
    let list = owner.get(&format!("{base}?page=1&page_size=10")).send().await.expect(200);
    assert_eq!(list.header("x-total-count"), "1");
    let providers: Value = owner.get("/api/v2.0/projects/hot/preheat/providers").send().await.expect(200).json();
    assert_eq!(providers[0]["id"].as_i64(), Some(provider), "{providers}");

    // Renamed and scheduled (Harbor's test's update): a schedule appears.
    let filters = r#"[{"type":"repository","value":"zgila/alpine*"},{"type":"tag","value":"v1.0*"},{"type":"label","value":"release"}]"#;
    let scheduled = r#"{"type":"scheduled","trigger_setting":{"cron":"0 8 * * * *"}}"#;
    let mut update = body("policy_new_name", filters, scheduled, provider);
    update["enabled"] = json!(false);
    owner.put(&format!("{base}/p1")).json(&update).send().await.expect(200);
    owner.get(&format!("{base}/p1")).send().await.expect(404);
    let got: Value = owner.get(&format!("{base}/policy_new_name")).send().await.expect(200).json();
    assert_eq!((got["trigger"].as_str(), got["enabled"].as_bool()), (Some(scheduled), Some(false)));
    let schedules: Value = app.admin().get("/api/v2.0/schedules?page_size=100").send().await.expect(200).json();
    let ours = schedules.as_array().unwrap().iter().find(|s| s["vendor_type"] == "P2P_PREHEAT").cloned();
    assert_eq!(ours.as_ref().map(|s| s["vendor_id"].as_i64()), Some(got["id"].as_i64()), "{schedules}");

    // Only project administrators see policies (Harbor's role matrix); the
    // instance in use stays.
    app.create_user("dev", "Passw0rd1").await;
    app.add_member(pid, "dev", 2).await;
    let dev = app.user("dev", "Passw0rd1");
    dev.get(&format!("{base}/policy_new_name")).send().await.expect(403);
    dev.post(base).json(&body("p3", RE_V1, MANUAL, provider)).send().await.expect(403);
    dev.delete(&format!("{base}/policy_new_name")).send().await.expect(403);
    owner.delete("/api/v2.0/p2p/preheat/instances/df").send().await.expect(403);
    // A renamed instance is named so in its policies.
    let renamed = json!({"name": "df2", "vendor": "dragonfly", "endpoint": "http://127.0.0.1:9", "enabled": true});
    app.admin().put("/api/v2.0/p2p/preheat/instances/df").json(&renamed).send().await.expect(200);
    let got: Value = owner.get(&format!("{base}/policy_new_name")).send().await.expect(200).json();
    assert_eq!(got["provider_name"], "df2");
    let back = json!({"name": "df", "vendor": "dragonfly", "endpoint": "http://127.0.0.1:9", "enabled": true});
    app.admin().put("/api/v2.0/p2p/preheat/instances/df2").json(&back).send().await.expect(200);
    let refused = app.admin().delete("/api/v2.0/p2p/preheat/instances/df").send().await;
    assert_eq!(refused.code(), 412, "{}", refused.text());
    let disable = json!({"name": "df", "vendor": "dragonfly", "endpoint": "http://127.0.0.1:9", "enabled": false});
    app.admin().put("/api/v2.0/p2p/preheat/instances/df").json(&disable).send().await.expect(412);

    // Deleting the project takes its policies (and their schedules) along.
    owner.delete(&format!("/api/v2.0/projects/{pid}")).send().await.expect(200);
    let schedules: Value = app.admin().get("/api/v2.0/schedules?page_size=100").send().await.expect(200).json();
    assert!(!schedules.to_string().contains("P2P_PREHEAT"), "{schedules}");
    app.admin().delete("/api/v2.0/p2p/preheat/instances/df").send().await.expect(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_manual_run_preheats_the_matching_images() {
    let (df_url, df) = dragonfly(Ending::Succeed).await;
    let (kr_url, kr) = kraken().await;
    let (app, _workers, registry) = served_app(true).await;
    app.create_project("hot", false).await;
    let wanted = app.push_image("hot/redis", "v1.0.1").await;
    app.push_image("hot/redis", "latest").await;
    app.push_image("hot/nginx", "v1.0.1").await;
    app.push_image("hot/rebar/deep", "v1.0").await;
    let provider = instance(&app, "df", "dragonfly", &df_url).await;
    policy(&app, "hot", "redis", provider, RE_V1, MANUAL).await;

    let execution = execute(&app, "hot", "redis").await;
    let x = ended(&app, &execution).await;
    assert_eq!(x["status"], "Success", "{x}");
    assert_eq!((x["vendor_type"].as_str(), x["trigger"].as_str()), (Some("P2P_PREHEAT"), Some("MANUAL")));
    let jobs = df.posted("/oapi/v1/jobs");
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let args = &jobs[0]["args"];
    assert_eq!(jobs[0]["type"], "preheat");
    assert_eq!((args["type"].as_str(), args["scope"].as_str()), (Some("image"), Some("single_seed_peer")));
    let url = format!("{registry}/v2/hot/redis/manifests/v1.0.1");
    assert_eq!(args["url"].as_str(), Some(url.as_str()));
    // The token given pulls the manifest from berth, and pushes nothing.
    let auth = args["headers"]["Authorization"].as_str().unwrap().to_owned();
    let http = reqwest::Client::new();
    let pulled = http
        .get(&url)
        .header("authorization", &auth)
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap();
    assert_eq!(pulled.status(), 200);
    assert_eq!(pulled.headers()["docker-content-digest"].to_str().unwrap(), wanted);
    let other = http.get(format!("{registry}/v2/hot/nginx/manifests/v1.0.1")).header("authorization", &auth);
    assert_eq!(other.send().await.unwrap().status(), 401);

    let tasks_path = format!("{execution}/tasks");
    let tasks: Vec<Value> = app.admin().get(&tasks_path).send().await.expect(200).json();
    let preheats: Vec<&Value> = tasks.iter().filter(|t| t["extra_attrs"]["artifact"].is_string()).collect();
    assert_eq!(preheats.len(), 1, "{tasks:?}");
    assert_eq!(preheats[0]["extra_attrs"]["artifact"], "hot/redis:v1.0.1");
    assert!(tasks.iter().all(|t| t["status"] == "Success"), "{tasks:?}");
    let log = app.admin().get(&format!("{tasks_path}/{}/logs", preheats[0]["id"])).send().await.expect(200).text();
    assert!(log.contains("preheated"), "{log}");
    let list: Value = app.admin().get("/api/v2.0/projects/hot/preheat/policies/redis/executions").send().await.json();
    assert_eq!(list.as_array().map(Vec::len), Some(1));

    // Kraken gets a registry notification per image, every tag of `re*`.
    let kraken_id = instance(&app, "kr", "kraken", &kr_url).await;
    policy(&app, "hot", "everything", kraken_id, r#"[{"type":"repository","value":"{redis,rebar/**}"}]"#, MANUAL).await;
    let x = ended(&app, &execute(&app, "hot", "everything").await).await;
    assert_eq!(x["status"], "Success", "{x}");
    let mut seen: Vec<String> = kr
        .posted("/registry/notifications")
        .iter()
        .map(|n| {
            let t = &n["events"][0]["target"];
            assert_eq!(n["events"][0]["action"], "push");
            format!("{}:{}", t["repository"].as_str().unwrap(), t["tag"].as_str().unwrap())
        })
        .collect();
    seen.sort();
    assert_eq!(seen, ["hot/rebar/deep:v1.0", "hot/redis:latest", "hot/redis:v1.0.1"]);

    // A label filter picks the labelled image only.
    let label = app
        .admin()
        .post("/api/v2.0/labels")
        .json(&json!({"name": "release", "scope": "g"}))
        .send()
        .await
        .expect(201)
        .location_id();
    app.admin()
        .post("/api/v2.0/projects/hot/repositories/nginx/artifacts/v1.0.1/labels")
        .json(&json!({"id": label}))
        .send()
        .await
        .expect(200);
    policy(&app, "hot", "released", kraken_id, r#"[{"type":"label","value":"release"}]"#, MANUAL).await;
    let x = ended(&app, &execute(&app, "hot", "released").await).await;
    assert_eq!(x["status"], "Success", "{x}");
    let last = kr.posted("/registry/notifications");
    assert_eq!(last.len(), 4);
    assert_eq!(last[3]["events"][0]["target"]["repository"], "hot/nginx");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_provider_fails_the_run_and_a_run_stops() {
    let (bad_url, _bad) = dragonfly(Ending::Fail).await;
    let (slow_url, slow) = dragonfly(Ending::Hang).await;
    let (app, _workers, _) = served_app(true).await;
    app.create_project("hot", false).await;
    app.push_image("hot/redis", "v1.0").await;
    let bad = instance(&app, "bad", "dragonfly", &bad_url).await;
    policy(&app, "hot", "fails", bad, RE_V1, MANUAL).await;
    let execution = execute(&app, "hot", "fails").await;
    let x = ended(&app, &execution).await;
    assert_eq!(x["status"], "Error", "{x}");
    let tasks: Vec<Value> = app.admin().get(&format!("{execution}/tasks")).send().await.expect(200).json();
    let failed: Vec<&Value> = tasks.iter().filter(|t| t["status"] == "Error").collect();
    assert_eq!(failed.len(), 1, "{tasks:?}");
    let log = app.admin().get(&format!("{execution}/tasks/{}/logs", failed[0]["id"])).send().await.text();
    assert!(log.contains("seed peer unreachable"), "{log}");

    let hang = instance(&app, "slow", "dragonfly", &slow_url).await;
    policy(&app, "hot", "hangs", hang, RE_V1, MANUAL).await;
    let execution = execute(&app, "hot", "hangs").await;
    eventually(Duration::from_secs(20), || async { (!slow.posted("/oapi/v1/jobs").is_empty()).then_some(()) })
        .await
        .expect("the provider got no job");
    app.admin().patch(&execution).json(&json!({"status": "Running"})).send().await.expect(400);
    app.admin().patch(&execution).json(&json!({"status": "Stopped"})).send().await.expect(200);
    let x = ended(&app, &execution).await;
    assert_eq!(x["status"], "Stopped", "{x}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_event_based_policy_preheats_each_matching_push() {
    let (kr_url, kr) = kraken().await;
    let (app, _workers, _) = served_app(true).await;
    app.create_project("hot", false).await;
    let provider = instance(&app, "kr", "kraken", &kr_url).await;
    let on_push = r#"{"type":"event_based","trigger_setting":{"cron":""}}"#;
    policy(&app, "hot", "on-push", provider, RE_V1, on_push).await;
    app.push_image("hot/nginx", "v1.0").await;
    let digest = app.push_image("hot/redis", "v1.0.3").await;
    let got = eventually(Duration::from_secs(20), || async {
        let n = kr.posted("/registry/notifications");
        (!n.is_empty()).then_some(n)
    })
    .await
    .expect("nothing preheated on push");
    let target = &got[0]["events"][0]["target"];
    assert_eq!((target["repository"].as_str(), target["digest"].as_str()), (Some("hot/redis"), Some(digest.as_str())));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(kr.posted("/registry/notifications").len(), 1);
    let runs: Value = app.admin().get("/api/v2.0/projects/hot/preheat/policies/on-push/executions").send().await.json();
    assert_eq!(runs[0]["trigger"], "EVENT", "{runs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_preheat_task_delivered_twice_preheats_once() {
    let (df_url, df) = dragonfly(Ending::Succeed).await;
    let (app, _, _) = served_app(false).await;
    app.create_project("hot", false).await;
    app.push_image("hot/redis", "v1.0").await;
    let provider = instance(&app, "df", "dragonfly", &df_url).await;
    policy(&app, "hot", "redis", provider, RE_V1, MANUAL).await;
    let execution = execute(&app, "hot", "redis").await;
    let reg = app.ctx().registry();
    let queue = app.ctx().queue.clone();
    let worker = berth::jobs::host::worker(app.ctx());
    for _ in 0..10 {
        reg.events().flush().await;
        let got = queue.receive(berth::queue::JOBS, 10, Duration::from_secs(120), Duration::ZERO).await.unwrap();
        if got.is_empty() {
            break;
        }
        for msg in &got {
            let _ = tokio::join!(worker.handle(berth::queue::JOBS, msg), worker.handle(berth::queue::JOBS, msg));
            worker.handle(berth::queue::JOBS, msg).await;
        }
    }
    assert_eq!(df.posted("/oapi/v1/jobs").len(), 1);
    let x: Value = app.admin().get(&execution).send().await.expect(200).json();
    assert_eq!(x["status"], "Success", "{x}");
}

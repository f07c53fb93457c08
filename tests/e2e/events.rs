//! Events and the work they drive, through the in-process app with its
//! background side running (the relay, the workers, the scheduler):
//!
//! - a push reaches webhook receivers in each payload format with the
//!   auth header; a receiver that fails twice gets it on the third
//!   attempt, visible in the execution's task; one that always fails ends
//!   as Error;
//! - pulls write nothing on the request path and still become the
//!   repository's `pull_count` and the artifact's `pull_time`;
//! - push, pull, delete and a project creation reach `/audit-logs` and a
//!   syslog receiver;
//! - the audit purge runs, stops, and keeps its schedule;
//! - an every-minute schedule fires once per minute however many replicas tick.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use serde_json::{Value, json};

use crate::support::app::{TestApp, TestAppBuilder};

/// What a webhook receiver got: the path, the headers, the body.
pub(crate) type Got = Arc<Mutex<Vec<(String, HeaderMap, Value)>>>;

/// An HTTP receiver on a free port: `/ok/*` answers 200, `/flaky/*` 500
/// for its first two requests then 200, `/down/*` always 500, `/slow/*`
/// 200 after four seconds.
pub(crate) async fn receiver() -> (SocketAddr, Got) {
    #[derive(Clone, Default)]
    struct Rx {
        got: Got,
        calls: Arc<Mutex<BTreeMap<String, u32>>>,
    }
    async fn take(State(rx): State<Rx>, Path(path): Path<String>, headers: HeaderMap, body: Bytes) -> StatusCode {
        let n = {
            let mut calls = rx.calls.lock().unwrap();
            let n = calls.entry(path.clone()).or_insert(0);
            *n += 1;
            *n
        };
        let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
        rx.got.lock().unwrap().push((path.clone(), headers, body));
        match path.split('/').next() {
            Some("ok") => StatusCode::OK,
            Some("slow") => {
                tokio::time::sleep(Duration::from_secs(4)).await;
                StatusCode::OK
            }
            Some("flaky") if n > 2 => StatusCode::OK,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
    let rx = Rx::default();
    let got = rx.got.clone();
    let app = axum::Router::new().route("/{*path}", axum::routing::post(take)).with_state(rx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, got)
}

/// Polls `check` every 200 ms until it returns `Some`, for up to `limit`.
pub(crate) async fn eventually<T, F, Fut>(limit: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if start.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// An app whose tasks give up after three deliveries (so a failing
/// receiver is given up on within seconds).
async fn app() -> TestApp {
    TestAppBuilder::default().config(|c| c.queue.max_attempts = 3).local().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_push_reaches_webhooks_in_each_format_with_retries_and_failures_recorded() {
    let app = app().await;
    let _workers = app.run_workers();
    let (rx, got) = receiver().await;
    let pid = app.create_project("hooks", false).await;
    let target = |path: &str, format: &str| {
        json!({"type": "http", "address": format!("http://{rx}/{path}"), "auth_header": "Bearer s3cret",
               "skip_cert_verify": false, "payload_format": format})
    };
    let policy = json!({"name": "all", "enabled": true, "event_types": ["PUSH_ARTIFACT", "DELETE_ARTIFACT"],
        "targets": [target("ok/default", "Default"), target("ok/cloud", "CloudEvents"),
                    target("flaky/x", "Default"), target("down/x", "Default")]});
    let policies = format!("/api/v2.0/projects/{pid}/webhook/policies");
    let policy_id = app.admin().post(&policies).json(&policy).send().await.expect(201).location_id();
    // A pull is not among the policy's types.
    let digest = app.push_image("hooks/app", "v1").await;
    app.admin().get("/v2/hooks/app/manifests/v1").send().await.expect(200);

    let of = |prefix: &str| -> Vec<(HeaderMap, Value)> {
        got.lock()
            .unwrap()
            .iter()
            .filter(|(p, ..)| p.starts_with(prefix))
            .map(|(_, h, b)| (h.clone(), b.clone()))
            .collect()
    };
    let ok = eventually(Duration::from_secs(20), || async { (of("ok/").len() >= 2).then_some(()) }).await;
    assert!(ok.is_some(), "the push did not reach the receivers: {:?}", got.lock().unwrap());
    let default = &of("ok/default")[0];
    assert_eq!(default.0["authorization"], "Bearer s3cret");
    assert_eq!(default.0["content-type"], "application/json");
    assert_eq!(default.1["type"], "PUSH_ARTIFACT");
    assert_eq!(default.1["operator"], "admin");
    assert_eq!(default.1["event_data"]["resources"][0]["digest"], digest.as_str());
    assert_eq!(default.1["event_data"]["resources"][0]["tag"], "v1");
    assert_eq!(default.1["event_data"]["repository"]["repo_full_name"], "hooks/app");
    assert_eq!(default.1["event_data"]["repository"]["repo_type"], "private");
    let cloud = &of("ok/cloud")[0];
    assert_eq!(cloud.0["content-type"], "application/cloudevents+json");
    assert_eq!(cloud.0["authorization"], "Bearer s3cret");
    assert_eq!(cloud.1["specversion"], "1.0");
    assert_eq!(cloud.1["type"], "harbor.artifact.pushed");
    assert_eq!(cloud.1["source"], format!("/projects/{pid}/webhook/policies/{policy_id}"));
    assert_eq!(cloud.1["data"]["resources"][0]["digest"], digest.as_str());
    let event_id = default.0["x-berth-event-id"].to_str().unwrap().to_owned();
    assert_eq!(cloud.0["x-berth-event-id"], event_id.as_str());

    // The flaky receiver gets it on the third attempt; the one that is
    // down is given up on after three. Both show in the execution.
    let executions = format!("{policies}/{policy_id}/executions");
    let settled = eventually(Duration::from_secs(40), || async {
        let list: Vec<Value> = app.admin().get(&executions).send().await.expect(200).json();
        let x = list.first()?.clone();
        (x["status"] != "Running").then_some(x)
    })
    .await
    .expect("the deliveries did not settle");
    assert_eq!(settled["status"], "Error", "{settled}");
    assert_eq!(settled["trigger"], "EVENT");
    assert_eq!(settled["metrics"]["task_count"], 4);
    assert_eq!(settled["metrics"]["success_task_count"], 3);
    assert_eq!(settled["metrics"]["error_task_count"], 1);
    let tasks: Vec<Value> =
        app.admin().get(&format!("{executions}/{}/tasks", settled["id"])).send().await.expect(200).json();
    let by_count: Vec<(String, u64)> =
        tasks.iter().map(|t| (t["status"].as_str().unwrap().to_owned(), t["run_count"].as_u64().unwrap())).collect();
    assert!(by_count.contains(&("Success".to_owned(), 3)), "the flaky target took three attempts: {by_count:?}");
    assert!(by_count.contains(&("Error".to_owned(), 3)), "the target that is down was tried three times: {by_count:?}");
    assert_eq!(of("flaky/").len(), 3);
    assert_eq!(of("down/").len(), 3);
    let failed = tasks.iter().find(|t| t["status"] == "Error").unwrap();
    assert!(failed["status_message"].as_str().unwrap().contains("500"), "{failed}");
    let log = app
        .admin()
        .get(&format!("{executions}/{}/tasks/{}/log", settled["id"], failed["id"]))
        .send()
        .await
        .expect(200)
        .text();
    assert!(log.contains("answered 500"), "{log}");
    // Every delivery of the push carried the one event id.
    assert!(got.lock().unwrap().iter().all(|(_, h, _)| h["x-berth-event-id"] == event_id.as_str()));

    // Harbor's side views.
    let last: Vec<Value> =
        app.admin().get(&format!("/api/v2.0/projects/{pid}/webhook/lasttrigger")).send().await.expect(200).json();
    assert_eq!(last[0]["event_type"], "PUSH_ARTIFACT");
    let kinds: Value =
        app.admin().get(&format!("/api/v2.0/projects/{pid}/webhook/events")).send().await.expect(200).json();
    assert!(kinds["event_type"].as_array().unwrap().contains(&json!("TAG_RETENTION")));
    // A disabled policy sends nothing.
    let mut off = policy.clone();
    off["enabled"] = json!(false);
    app.admin().put(&format!("{policies}/{policy_id}")).json(&off).send().await.expect(200);
    let before = got.lock().unwrap().len();
    app.push_image("hooks/app", "v2").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(got.lock().unwrap().len(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhook_policies_are_checked() {
    let app = app().await;
    let pid = app.create_project("rules", false).await;
    let policies = format!("/api/v2.0/projects/{pid}/webhook/policies");
    let good = json!({"name": "p", "event_types": ["PUSH_ARTIFACT"],
        "targets": [{"type": "http", "address": "https://example.com/hook"}]});
    for (change, why) in [
        (json!({"name": ""}), "no name"),
        (json!({"targets": []}), "no target"),
        (json!({"event_types": ["PUSH_IMAGE"]}), "unknown event type"),
        (json!({"targets": [{"type": "email", "address": "https://x"}]}), "unknown target type"),
        (json!({"targets": [{"type": "http", "address": "ftp://x"}]}), "not http"),
        (json!({"targets": [{"type": "slack", "address": "https://x", "payload_format": "CloudEvents"}]}), "slack"),
    ] {
        let mut body = good.clone();
        for (k, v) in change.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = app.admin().post(&policies).json(&body).send().await;
        assert_eq!(r.code(), 400, "{why}: {}", r.text());
    }
    let id = app.admin().post(&policies).json(&good).send().await.expect(201).location_id();
    app.admin().post(&policies).json(&good).send().await.expect(409);
    let got: Value = app.admin().get(&format!("{policies}/{id}")).send().await.expect(200).json();
    assert_eq!(got["targets"][0]["payload_format"], "Default");
    assert_eq!(got["creator"], "admin");
    let r = app.admin().get(&policies).send().await.expect(200);
    assert_eq!(r.header("x-total-count"), "1");
    // A user with no role in the project sees none of it.
    app.create_user("outsider", "Passw0rd1").await;
    app.user("outsider", "Passw0rd1").get(&policies).send().await.expect(403);
    app.admin().delete(&format!("{policies}/{id}")).send().await.expect(200);
    app.admin().get(&format!("{policies}/{id}")).send().await.expect(404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pulls_write_nothing_and_become_pull_count_and_pull_time() {
    let app = TestAppBuilder::default().count_meta().local().await;
    app.create_project("stats", true).await;
    let digest = app.push_image("stats/app", "v1").await;
    let before = app.meta_counts();
    for reference in ["v1", "v1", digest.as_str()] {
        app.admin().get(&format!("/v2/stats/app/manifests/{reference}")).send().await.expect(200);
    }
    let after = app.meta_counts();
    assert_eq!(after.writes(), before.writes(), "a pull wrote to the table");
    let _workers = app.run_workers();
    let repo = "/api/v2.0/projects/stats/repositories/app";
    let counted = eventually(Duration::from_secs(15), || async {
        let r: Value = app.admin().get(repo).send().await.expect(200).json();
        (r["pull_count"] == 3).then_some(r)
    })
    .await;
    assert!(counted.is_some(), "pull_count never reached 3");
    let artifact: Value = app.admin().get(&format!("{repo}/artifacts/v1")).send().await.expect(200).json();
    assert!(!artifact["pull_time"].as_str().unwrap().starts_with("0001"), "{artifact}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn changes_reach_the_audit_log_and_the_syslog_endpoint() {
    let app = app().await;
    let _workers = app.run_workers();
    let syslog = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let syslog_addr = syslog.local_addr().unwrap();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = syslog.accept().await.unwrap();
            let sink = sink.clone();
            tokio::spawn(async move {
                let mut text = String::new();
                let _ = tokio::io::AsyncReadExt::read_to_string(&mut s, &mut text).await;
                sink.lock().unwrap().extend(text.lines().map(str::to_owned));
            });
        }
    });
    let config = "/api/v2.0/configurations";
    // Skipping the database needs a forward endpoint.
    app.admin().put(config).json(&json!({"skip_audit_log_database": true})).send().await.expect(400);
    app.admin().put(config).json(&json!({"audit_log_forward_endpoint": "no-port"})).send().await.expect(400);
    app.admin()
        .put(config)
        .json(&json!({"audit_log_forward_endpoint": syslog_addr.to_string()}))
        .send()
        .await
        .expect(200);

    let pid = app.create_project("audited", false).await;
    app.create_user("member1", "Passw0rd1").await;
    let mid = app.add_member(pid, "member1", 3).await;
    let member = format!("/api/v2.0/projects/{pid}/members/{mid}");
    app.admin().put(&member).json(&json!({"role_id": 2})).send().await.expect(200);
    app.admin().delete(&member).send().await.expect(200);
    let digest = app.push_image("audited/app", "v1").await;
    app.admin().get("/v2/audited/app/manifests/v1").send().await.expect(200);
    app.admin().delete(&format!("/v2/audited/app/manifests/{digest}")).send().await.expect(202);

    let want = [
        ("project", "create", "audited".to_owned()),
        ("member", "create", "member1".to_owned()),
        ("member", "update", "member1".to_owned()),
        ("member", "delete", "member1".to_owned()),
        ("user", "create", "leaver".to_owned()),
        ("user", "update", "leaver".to_owned()),
        ("user", "delete", "leaver".to_owned()),
        ("robot", "create", "auditor".to_owned()),
        ("robot", "update", "auditor".to_owned()),
        ("artifact", "create", "audited/app:v1".to_owned()),
        ("artifact", "pull", "audited/app:v1".to_owned()),
        ("artifact", "delete", format!("audited/app@{digest}")),
    ];
    let leaver = format!("/api/v2.0/users/{}", app.create_user("leaver", "Passw0rd1").await);
    let profile = json!({"email": "leaver@example.com", "realname": "Leaver", "comment": "bye"});
    app.admin().put(&leaver).json(&profile).send().await.expect(200);
    app.admin().delete(&leaver).send().await.expect(200);
    let robot = app
        .create_robot(&json!({"name": "auditor", "level": "system", "duration": -1,
            "permissions": [{"kind": "project", "namespace": "*", "access": [{"resource": "repository", "action": "pull"}]}]}))
        .await;
    let robot_path = format!("/api/v2.0/robots/{}", robot.id);
    let mut changed: Value = app.admin().get(&robot_path).send().await.expect(200).json();
    changed["disable"] = json!(true);
    app.admin().put(&robot_path).json(&changed).send().await.expect(200);
    let logs = eventually(Duration::from_secs(15), || async {
        let logs: Vec<Value> = app.admin().get("/api/v2.0/audit-logs?page_size=50").send().await.expect(200).json();
        let have = |(t, op, res): &(&str, &str, String)| {
            logs.iter().any(|l| l["resource_type"] == *t && l["operation"] == *op && l["resource"] == res.as_str())
        };
        want.iter().all(have).then_some(logs)
    })
    .await;
    let Some(logs) = logs else {
        let logs: Vec<Value> = app.admin().get("/api/v2.0/audit-logs?page_size=50").send().await.expect(200).json();
        let have: Vec<_> = logs.iter().map(|l| (&l["resource_type"], &l["operation"], &l["resource"])).collect();
        panic!("the audit log lacks an entry of {want:?}: {have:?}");
    };
    // The settings change that set the endpoint is recorded too (it may
    // precede the forwarding it turned on).
    assert!(logs.iter().any(|l| l["resource_type"] == "configuration" && l["operation"] == "update"), "{logs:?}");
    // Ours are the administrator's; berth's own (the administrator and the
    // default project, made at the first start) are the system's.
    let bootstrap = |l: &&Value| l["resource"] == "library" || l["resource"] == "admin";
    assert!(logs.iter().filter(bootstrap).all(|l| l["username"] == "system"), "{logs:?}");
    assert!(logs.iter().filter(|l| !bootstrap(l)).all(|l| l["username"] == "admin"), "{logs:?}");
    // Newest first.
    assert_eq!((&logs[0]["resource_type"], &logs[0]["operation"]), (&json!("robot"), &json!("update")));
    let ext: Vec<Value> = app.admin().get("/api/v2.0/auditlog-exts?q=operation%3Dpull").send().await.expect(200).json();
    assert_eq!(ext.len(), 1);
    assert_eq!(ext[0]["operation_result"], true);
    let project: Vec<Value> = app.admin().get("/api/v2.0/projects/audited/logs").send().await.expect(200).json();
    assert_eq!(project.len(), 7);
    let types: Vec<Value> = app.admin().get("/api/v2.0/auditlog-exts/events").send().await.expect(200).json();
    assert!(types.contains(&json!({"event_type": "create_artifact"})));
    app.create_user("nobody", "Passw0rd1").await;
    app.user("nobody", "Passw0rd1").get("/api/v2.0/audit-logs").send().await.expect(403);

    let forwarded = eventually(Duration::from_secs(10), || async {
        let lines = lines.lock().unwrap().clone();
        want.iter()
            .all(|(t, op, res)| {
                lines.iter().any(|l| {
                    l.contains(&format!("resourceType=\"{t}\""))
                        && l.contains(&format!("action:{op}"))
                        && l.contains(res)
                })
            })
            .then_some(lines)
    })
    .await;
    assert!(forwarded.is_some(), "syslog got {:?}", lines.lock().unwrap());
    assert!(lines.lock().unwrap().iter().all(|l| l.starts_with("<134>1 ") && l.contains("operator=\"admin\"")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_audit_purge_runs_stops_and_keeps_its_schedule() {
    let app = app().await;
    let _workers = app.run_workers();
    app.create_project("old", false).await;
    let schedule = "/api/v2.0/system/purgeaudit/schedule";
    let manual = |hours: i64, dry: bool| {
        json!({"schedule": {"type": "Manual"}, "parameters": {"audit_retention_hour": hours, "dry_run": dry,
               "include_event_types": "create_project"}})
    };
    // Wait until the project creations (berth's default project and this
    // one) are recorded.
    let projects = eventually(Duration::from_secs(10), || async {
        let logs: Vec<Value> = app.admin().get("/api/v2.0/audit-logs").send().await.expect(200).json();
        let n = logs.iter().filter(|l| l["resource_type"] == "project").count();
        (n == 2).then_some(n)
    })
    .await
    .expect("no audit record");
    let id = app.admin().post(schedule).json(&manual(0, false)).send().await.expect(201).location_id();
    let job = format!("/api/v2.0/system/purgeaudit/{id}");
    let done = eventually(Duration::from_secs(15), || async {
        let h: Value = app.admin().get(&job).send().await.expect(200).json();
        (h["job_status"] == "Success").then_some(h)
    })
    .await
    .expect("the purge did not succeed");
    assert_eq!(done["job_name"], "PURGE_AUDIT_LOG");
    let params: Value = serde_json::from_str(done["job_parameters"].as_str().unwrap()).unwrap();
    assert_eq!(params["include_event_types"], "create_project");
    let log = app.admin().get(&format!("{job}/log")).send().await.expect(200).text();
    let purged = format!("Purged {projects} rows of audit logs");
    assert!(log.contains("Purge audit job start") && log.contains(&purged), "{log}");
    let logs: Vec<Value> = app.admin().get("/api/v2.0/audit-logs").send().await.expect(200).json();
    assert!(logs.iter().all(|l| l["resource_type"] != "project"), "{logs:?}");

    // A stopped purge ends Stopped (or Success, when it was quicker).
    let id = app.admin().post(schedule).json(&manual(1, true)).send().await.expect(201).location_id();
    app.admin().put(&format!("/api/v2.0/system/purgeaudit/{id}")).send().await.expect(200);
    let stopped = eventually(Duration::from_secs(15), || async {
        let h: Value = app.admin().get(&format!("/api/v2.0/system/purgeaudit/{id}")).send().await.expect(200).json();
        matches!(h["job_status"].as_str(), Some("Stopped" | "Success")).then_some(())
    })
    .await;
    assert!(stopped.is_some());
    let history = app.admin().get("/api/v2.0/system/purgeaudit").send().await.expect(200);
    assert_eq!(history.header("x-total-count"), "2");

    // A schedule is kept as given.
    let weekly = json!({"schedule": {"type": "Weekly", "cron": "0 0 0 * * 0"},
        "parameters": {"audit_retention_hour": 24, "include_event_types": "create_artifact,delete_artifact", "dry_run": false}});
    app.admin().post(schedule).json(&weekly).send().await.expect(201);
    let custom = json!({"schedule": {"type": "Custom", "cron": "0 15 10 ? * *"},
        "parameters": {"audit_retention_hour": 12, "include_event_types": "create_artifact", "dry_run": false}});
    app.admin().put(schedule).json(&custom).send().await.expect(200);
    let got: Value = app.admin().get(schedule).send().await.expect(200).json();
    assert_eq!(got["schedule"]["type"], "Custom");
    assert_eq!(got["schedule"]["cron"], "0 15 10 ? * *");
    let params: Value = serde_json::from_str(got["job_parameters"].as_str().unwrap()).unwrap();
    assert_eq!(
        (params["audit_retention_hour"].as_i64(), params["include_event_types"].as_str()),
        (Some(12), Some("create_artifact"))
    );
    let bad = json!({"schedule": {"type": "Custom", "cron": "* * * * *"}});
    app.admin().put(schedule).json(&bad).send().await.expect(400);
    let schedules: Vec<Value> = app.admin().get("/api/v2.0/schedules").send().await.expect(200).json();
    assert_eq!(schedules[0]["vendor_type"], "PURGE_AUDIT_LOG");
    // Only administrators.
    app.create_user("plain", "Passw0rd1").await;
    let plain = app.user("plain", "Passw0rd1");
    plain.post(schedule).json(&manual(1, true)).send().await.expect(403);
    plain.get(schedule).send().await.expect(403);
    plain.get("/api/v2.0/system/purgeaudit").send().await.expect(403);
}

/// Two replicas tick through three minutes of an every-minute schedule,
/// each second, at once: three executions, one per minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_every_minute_schedule_fires_once_a_minute_across_replicas() {
    let Some(a) = TestApp::aws("schedules").await else { return };
    let b = a.replica().await;
    let (ra, rb) = (a.ctx().registry(), b.ctx().registry());
    let every_minute = json!({"schedule": {"type": "Custom", "cron": "0 * * * * *"},
        "parameters": {"audit_retention_hour": 24, "dry_run": true}});
    a.admin().post("/api/v2.0/system/purgeaudit/schedule").json(&every_minute).send().await.expect(201);
    let set = ra.schedule("PURGE_AUDIT_LOG", 0).await.unwrap().unwrap().update_time;
    // From the next whole minute on, for three minutes, both tick each second.
    let start = (set / 60_000 + 1) * 60_000;
    let mut fired = 0;
    for second in 0..180 {
        let now = start + second * 1000 + 500;
        let (x, y) = tokio::join!(berth::jobs::schedule::tick(&ra, now), berth::jobs::schedule::tick(&rb, now));
        fired += x.unwrap() + y.unwrap();
    }
    assert_eq!(fired, 3);
    let history = a.admin().get("/api/v2.0/system/purgeaudit").send().await.expect(200);
    assert_eq!(history.header("x-total-count"), "3");
    let list: Vec<Value> = history.json();
    assert!(list.iter().all(|h| h["job_kind"] == "SCHEDULE"));
}

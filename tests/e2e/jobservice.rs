//! The job service dashboard through the in-process app with its workers
//! running (what Harbor's test_job_service_dashboard checks, on the job
//! types berth runs today):
//!
//! - a paused queue keeps its tasks waiting, counted with their latency;
//!   resuming runs them; stopping a queue's pending jobs ends them Stopped;
//! - pausing the scheduler shows in `/schedules/all/paused`;
//! - the worker pools and their workers, with the job a worker runs;
//!   stopping that job ends its task Stopped; its log by job id;
//! - only administrators see and act, except the scheduler's status.

use std::time::Duration;

use serde_json::{Value, json};

use super::events::{eventually, receiver};
use crate::support::app::{TestApp, TestAppBuilder};

const QUEUES: &str = "/api/v2.0/jobservice/queues";
const PURGE: &str = "/api/v2.0/system/purgeaudit";

async fn queue(app: &TestApp, job_type: &str) -> Value {
    let queues: Vec<Value> = app.admin().get(QUEUES).send().await.expect(200).json();
    queues.into_iter().find(|q| q["job_type"] == job_type).unwrap_or_else(|| panic!("no queue {job_type}"))
}

async fn act(app: &TestApp, job_type: &str, action: &str) {
    let path = format!("{QUEUES}/{job_type}");
    app.admin().put(&path).json(&json!({ "action": action })).send().await.expect(200);
}

async fn start_purge(app: &TestApp) -> i64 {
    let manual = json!({"schedule": {"type": "Manual"}, "parameters": {"audit_retention_hour": 1, "dry_run": true}});
    app.admin().post(&format!("{PURGE}/schedule")).json(&manual).send().await.expect(201).location_id()
}

async fn purge_status(app: &TestApp, id: i64) -> String {
    let h: Value = app.admin().get(&format!("{PURGE}/{id}")).send().await.expect(200).json();
    h["job_status"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn paused_queues_keep_their_jobs_until_resumed_or_stopped() {
    let app = TestAppBuilder::default().config(|c| c.queue.max_attempts = 3).local().await;
    let _workers = app.run_workers();
    let queues: Vec<Value> = app.admin().get(QUEUES).send().await.expect(200).json();
    let mut types: Vec<&str> = queues.iter().filter_map(|q| q["job_type"].as_str()).collect();
    types.sort_unstable();
    assert_eq!(types.len(), 13);
    assert!(types.contains(&"GARBAGE_COLLECTION") && types.contains(&"SCHEDULER") && types.contains(&"WEBHOOK"));
    assert!(queues.iter().all(|q| q["paused"] == false && q.get("count").is_none()), "{queues:?}");

    // Paused: the purge waits, counted, its latency growing.
    act(&app, "PURGE_AUDIT_LOG", "pause").await;
    assert_eq!(queue(&app, "PURGE_AUDIT_LOG").await["paused"], true);
    let id = start_purge(&app).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let q = queue(&app, "PURGE_AUDIT_LOG").await;
    assert_eq!(q["count"], 1, "{q}");
    assert!(q["latency"].as_i64().unwrap() >= 2, "{q}");
    assert_eq!(purge_status(&app, id).await, "Running");

    // Resumed: it runs.
    act(&app, "purge_audit_log", "resume").await;
    let done =
        eventually(Duration::from_secs(15), || async { (purge_status(&app, id).await == "Success").then_some(()) });
    assert!(done.await.is_some(), "the resumed purge did not run");
    let q = queue(&app, "PURGE_AUDIT_LOG").await;
    assert!(q.get("count").is_none() && q.get("latency").is_none() && q["paused"] == false, "{q}");

    // Paused, then its pending jobs stopped: Stopped, and it never runs.
    act(&app, "PURGE_AUDIT_LOG", "pause").await;
    let id = start_purge(&app).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(queue(&app, "PURGE_AUDIT_LOG").await["count"], 1);
    act(&app, "PURGE_AUDIT_LOG", "stop").await;
    assert_eq!(purge_status(&app, id).await, "Stopped");
    assert!(queue(&app, "PURGE_AUDIT_LOG").await.get("count").is_none());
    act(&app, "all", "resume").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(purge_status(&app, id).await, "Stopped");

    // The scheduler's status follows its queue; only `all` may be asked.
    act(&app, "scheduler", "pause").await;
    let paused: Value = app.admin().get("/api/v2.0/schedules/all/paused").send().await.expect(200).json();
    assert_eq!(paused, json!({"paused": true}));
    act(&app, "all", "resume").await;
    let paused: Value = app.admin().get("/api/v2.0/schedules/all/paused").send().await.expect(200).json();
    assert_eq!(paused, json!({"paused": false}));
    let bad = app.admin().get("/api/v2.0/schedules/GARBAGE_COLLECTION/paused").send().await.expect(400);
    assert!(bad.text().contains("job_type can only be 'all'"));
    act(&app, "all", "pause").await;
    let queues: Vec<Value> = app.admin().get(QUEUES).send().await.expect(200).json();
    assert!(queues.iter().all(|q| q["paused"] == true));
    act(&app, "all", "resume").await;

    // Unknown types and actions.
    let path = format!("{QUEUES}/NOT_A_JOB");
    app.admin().put(&path).json(&json!({"action": "pause"})).send().await.expect(404);
    let path = format!("{QUEUES}/WEBHOOK");
    app.admin().put(&path).json(&json!({"action": "explode"})).send().await.expect(400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pools_show_running_jobs_that_can_be_stopped_and_read() {
    let app = TestAppBuilder::default().config(|c| c.queue.max_attempts = 3).local().await;
    let _workers = app.run_workers();
    let pools = eventually(Duration::from_secs(10), || async {
        let pools: Vec<Value> = app.admin().get("/api/v2.0/jobservice/pools").send().await.expect(200).json();
        (!pools.is_empty()).then_some(pools)
    })
    .await
    .expect("no worker pool");
    assert_eq!(pools.len(), 1);
    let pool = &pools[0];
    let pool_id = pool["worker_pool_id"].as_str().unwrap().to_owned();
    assert_eq!(pool["pid"], std::process::id());
    let concurrency = pool["concurrency"].as_u64().unwrap();
    assert!(concurrency >= 10, "{pool}");
    assert!(pool["start_at"].is_string() && pool["heartbeat_at"].is_string());
    let workers: Vec<Value> =
        app.admin().get(&format!("/api/v2.0/jobservice/pools/{pool_id}/workers")).send().await.expect(200).json();
    assert_eq!(workers.len() as u64, concurrency);
    assert!(workers.iter().all(|w| w["pool_id"] == pool_id.as_str() && w["id"].is_string()));
    let none: serde_json::Value =
        app.admin().get("/api/v2.0/jobservice/pools/nosuchpool/workers").send().await.expect(200).json();
    assert_eq!(none, serde_json::json!([]), "an ended pool has no workers");

    // A webhook delivery to a slow receiver shows as the job a worker runs.
    let (rx, _got) = receiver().await;
    let pid = app.create_project("dash", false).await;
    let policy = json!({"name": "slow", "enabled": true, "event_types": ["PUSH_ARTIFACT"],
        "targets": [{"type": "http", "address": format!("http://{rx}/slow/x"), "payload_format": "Default"}]});
    let policies = format!("/api/v2.0/projects/{pid}/webhook/policies");
    let policy_id = app.admin().post(&policies).json(&policy).send().await.expect(201).location_id();
    app.push_image("dash/app", "v1").await;
    let busy = eventually(Duration::from_secs(10), || async {
        let workers: Vec<Value> =
            app.admin().get("/api/v2.0/jobservice/pools/all/workers").send().await.expect(200).json();
        workers.into_iter().find(|w| w["job_name"] == "WEBHOOK")
    })
    .await
    .expect("no worker shows the delivery");
    let job_id = busy["job_id"].as_str().unwrap().to_owned();
    assert!(busy["start_at"].is_string(), "{busy}");

    // Stopped while it runs: its task ends Stopped.
    app.admin().put(&format!("/api/v2.0/jobservice/jobs/{job_id}")).send().await.expect(200);
    let executions = format!("{policies}/{policy_id}/executions");
    let stopped = eventually(Duration::from_secs(15), || async {
        let xs: Vec<Value> = app.admin().get(&executions).send().await.expect(200).json();
        xs.first().filter(|x| x["status"] == "Stopped").cloned()
    })
    .await;
    assert!(stopped.is_some(), "the stopped delivery did not end Stopped");
    let log = app.admin().get(&format!("/api/v2.0/jobservice/jobs/{job_id}/log")).send().await.expect(200);
    assert!(log.header("content-type").starts_with("text/plain"));

    // A job that is not running (or never was) stops as a no-op, as in Harbor.
    app.admin().put("/api/v2.0/jobservice/jobs/966a49aa2278b67d743f8aca").send().await.expect(200);
    app.admin().put("/api/v2.0/jobservice/jobs/all").send().await.expect(200);
    app.admin().get("/api/v2.0/jobservice/jobs/966a49aa2278b67d743f8aca/log").send().await.expect(404);

    // Only administrators, except the scheduler's status.
    app.create_user("plain", "Passw0rd1").await;
    let plain = app.user("plain", "Passw0rd1");
    plain.get(QUEUES).send().await.expect(403);
    plain.put(&format!("{QUEUES}/WEBHOOK")).json(&json!({"action": "pause"})).send().await.expect(403);
    plain.put(&format!("/api/v2.0/jobservice/jobs/{job_id}")).send().await.expect(403);
    plain.get("/api/v2.0/jobservice/pools").send().await.expect(403);
    plain.get(&format!("/api/v2.0/jobservice/pools/{pool_id}/workers")).send().await.expect(403);
    plain.get(&format!("/api/v2.0/jobservice/jobs/{job_id}/log")).send().await.expect(403);
    plain.get("/api/v2.0/schedules").send().await.expect(403);
    plain.get("/api/v2.0/schedules/all/paused").send().await.expect(200);
    app.anonymous().get("/api/v2.0/schedules/all/paused").send().await.expect(401);
}

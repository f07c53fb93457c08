//! Tag retention (F11) through the in-process app with its workers:
//! "retain the 3 most recently pushed `v*`" over v1…v10 leaves v8, v9 and
//! v10; the dry run deletes nothing and logs the same decisions; an
//! immutable tag is never removed; policies are checked, scheduled, and go
//! with their project's `retention_id`.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};

use super::events::eventually;
use crate::support::app::{TestApp, TestAppBuilder};

fn rule(template: &str, params: Value, repos: &str, tags: &str) -> Value {
    json!({"disabled": false, "action": "retain", "template": template, "params": params,
        "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": repos}]},
        "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": tags}]})
}

fn policy(pid: i64, rules: Vec<Value>, cron: &str) -> Value {
    json!({"algorithm": "or", "rules": rules, "scope": {"level": "project", "ref": pid},
        "trigger": {"kind": "Schedule", "settings": {"cron": cron}, "references": {}}})
}

async fn tags(app: &TestApp, repo: &str) -> BTreeSet<String> {
    let path = format!("/api/v2.0/projects/keep/repositories/{repo}/artifacts?page_size=50");
    let arts: Vec<Value> = app.admin().get(&path).send().await.expect(200).json();
    arts.iter()
        .flat_map(|a| a["tags"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["name"].as_str().map(str::to_owned))
        .collect()
}

/// Runs the policy and waits for the execution to end: its tasks by
/// repository, with each task's log.
async fn run(app: &TestApp, id: i64, dry_run: bool) -> Vec<(Value, String)> {
    let base = format!("/api/v2.0/retentions/{id}/executions");
    let eid = app.admin().post(&base).json(&json!({"dry_run": dry_run})).send().await.expect(201).location_id();
    let done = eventually(Duration::from_secs(30), || async {
        let xs: Vec<Value> = app.admin().get(&base).send().await.expect(200).json();
        xs.into_iter().find(|x| x["id"] == eid && x["status"] == "Success")
    })
    .await
    .expect("the run did not succeed");
    assert_eq!(done["dry_run"], dry_run);
    assert_eq!(done["trigger"], "MANUAL");
    let tasks: Vec<Value> = app.admin().get(&format!("{base}/{eid}/tasks")).send().await.expect(200).json();
    let mut out = Vec::new();
    for t in tasks {
        let log = app.admin().get(&format!("{base}/{eid}/tasks/{}", t["id"])).send().await.expect(200).text();
        out.push((t, log));
    }
    out.sort_by_key(|(t, _)| t["repository"].as_str().unwrap_or_default().to_owned());
    out
}

/// The (digest, mark) pairs of a task log's table.
fn decisions(log: &str) -> BTreeSet<(String, String)> {
    log.lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let digest = cells.iter().find(|c| c.starts_with("sha256:"))?;
            let mark = cells.iter().rev().find(|c| !c.is_empty())?;
            Some(((*digest).to_owned(), (*mark).to_owned()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_three_latest_v_tags_stay_and_the_dry_run_decides_the_same() {
    let app = TestAppBuilder::default().config(|c| c.queue.max_attempts = 3).local().await;
    let _workers = app.run_workers();
    let pid = app.create_project("keep", false).await;
    for n in 1..=10 {
        app.push_image("keep/app", &format!("v{n}")).await;
    }
    for n in 1..=5 {
        app.push_image("keep/frozen", &format!("v{n}")).await;
    }
    app.push_image("keep/other", "x").await;
    let immutable = json!({"action": "immutable", "template": "immutable_template",
        "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": "frozen"}]},
        "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": "v1"}]});
    app.admin().post(&format!("/api/v2.0/projects/{pid}/immutabletagrules")).json(&immutable).send().await.expect(201);

    let rules = vec![rule("latestPushedK", json!({"latestPushedK": 3}), "{app,frozen}", "v*")];
    let id = app.admin().post("/api/v2.0/retentions").json(&policy(pid, rules.clone(), "")).send().await.expect(201);
    let id = id.location_id();
    let project: Value = app.admin().get(&format!("/api/v2.0/projects/{pid}")).send().await.expect(200).json();
    assert_eq!(project["metadata"]["retention_id"], id.to_string());
    let got: Value = app.admin().get(&format!("/api/v2.0/retentions/{id}")).send().await.expect(200).json();
    assert_eq!(got["rules"][0]["params"]["latestPushedK"], 3);

    // The dry run deletes nothing.
    let dry = run(&app, id, true).await;
    assert_eq!(dry.len(), 2, "one task per repository in scope: {dry:?}");
    assert_eq!(tags(&app, "app").await.len(), 10);
    let (task, log) = &dry[0];
    assert_eq!(
        (task["repository"].as_str(), task["total"].as_u64(), task["retained"].as_u64()),
        (Some("keep/app"), Some(10), Some(3))
    );
    let dry_app = decisions(log);
    assert_eq!(dry_app.iter().filter(|(_, m)| m == "DEL").count(), 7, "{log}");
    let dry_frozen = decisions(&dry[1].1);

    // The real run: v8, v9, v10 stay; v1 of frozen is immutable.
    let real = run(&app, id, false).await;
    assert_eq!(tags(&app, "app").await, BTreeSet::from(["v8".to_owned(), "v9".to_owned(), "v10".to_owned()]));
    assert_eq!(
        tags(&app, "frozen").await,
        BTreeSet::from(["v1".to_owned(), "v3".to_owned(), "v4".to_owned(), "v5".to_owned()])
    );
    assert_eq!(tags(&app, "other").await, BTreeSet::from(["x".to_owned()]), "out of scope");
    assert_eq!(decisions(&real[0].1), dry_app, "the same decisions");
    assert_eq!(decisions(&real[1].1), dry_frozen);
    assert_eq!(dry_frozen.iter().filter(|(_, m)| m == "IMMUTABLE").count(), 1, "{}", dry[1].1);

    // Checks: conflicting or too many rules, a second policy, a bad cron.
    let twice = policy(pid, vec![rules[0].clone(), rules[0].clone()], "");
    app.admin().put(&format!("/api/v2.0/retentions/{id}")).json(&twice).send().await.expect(409);
    let many = policy(pid, (0..16).map(|n| rule("always", json!({}), &format!("r{n}"), "**")).collect(), "");
    app.admin().put(&format!("/api/v2.0/retentions/{id}")).json(&many).send().await.expect(400);
    app.admin().post("/api/v2.0/retentions").json(&policy(pid, rules.clone(), "")).send().await.expect(400);
    app.admin()
        .put(&format!("/api/v2.0/retentions/{id}"))
        .json(&policy(pid, rules.clone(), "* * *"))
        .send()
        .await
        .expect(400);
    let missing = rule("latestPushedK", json!({}), "**", "**");
    app.admin()
        .put(&format!("/api/v2.0/retentions/{id}"))
        .json(&policy(pid, vec![missing], ""))
        .send()
        .await
        .expect(400);

    // A schedule, listed with the others; stopping; the metadata.
    let weekly = policy(pid, rules.clone(), "0 0 0 * * 0");
    app.admin().put(&format!("/api/v2.0/retentions/{id}")).json(&weekly).send().await.expect(200);
    let schedules: Vec<Value> = app.admin().get("/api/v2.0/schedules").send().await.expect(200).json();
    assert!(
        schedules.iter().any(|s| s["vendor_type"] == "RETENTION" && s["vendor_id"] == id && s["cron"] == "0 0 0 * * 0")
    );
    let xs: Vec<Value> =
        app.admin().get(&format!("/api/v2.0/retentions/{id}/executions")).send().await.expect(200).json();
    let x = format!("/api/v2.0/retentions/{id}/executions/{}", xs[0]["id"]);
    app.admin().patch(&x).json(&json!({"action": "stop"})).send().await.expect(200);
    app.admin().patch(&x).json(&json!({"action": "go"})).send().await.expect(400);
    let meta: Value = app.admin().get("/api/v2.0/retentions/metadatas").send().await.expect(200).json();
    assert_eq!(meta["templates"].as_array().unwrap().len(), 5);

    // Who may: developers and up (as Harbor), not guests.
    app.create_user("guest", "Passw0rd1").await;
    app.add_member(pid, "guest", 3).await;
    let dev = app.user("guest", "Passw0rd1");
    dev.post(&format!("/api/v2.0/retentions/{id}/executions")).json(&json!({"dry_run": true})).send().await.expect(403);
    dev.delete(&format!("/api/v2.0/retentions/{id}")).send().await.expect(403);

    // Deleted: the project forgets it, the schedule goes.
    app.admin().delete(&format!("/api/v2.0/retentions/{id}")).send().await.expect(200);
    let project: Value = app.admin().get(&format!("/api/v2.0/projects/{pid}")).send().await.expect(200).json();
    assert!(project["metadata"].get("retention_id").is_none(), "{project}");
    let schedules: Vec<Value> = app.admin().get("/api/v2.0/schedules").send().await.expect(200).json();
    assert!(!schedules.iter().any(|s| s["vendor_type"] == "RETENTION"));
    app.admin().get(&format!("/api/v2.0/retentions/{id}")).send().await.expect(404);
}

//! Several replicas on one table, and what a pull costs it.
//!
//! - Two replicas on the emulator: a password changed, and a robot
//!   disabled, through one are refused by the other within 5 s, although
//!   the other remembered the credentials from an earlier request.
//! - A pull (manifest by tag or digest, blob) with a registry token costs
//!   one table read per manifest and at most one per blob, and writes
//!   nothing.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::app::{TestApp, TestAppBuilder};

const NEW_PASSWORD: &str = "Changed1Password";

/// Polls `check` until it holds; how long that took, or `None` after 10 s.
async fn time_until<F, Fut>(mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if check().await {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_through_one_replica_is_refused_by_another_within_5_s() {
    let Some(a) = TestApp::aws("replicas").await else { return };
    let b = a.replica().await;

    // A user, known to replica B (it remembers the verified password).
    a.create_user("rina", "Passw0rd1").await;
    let me = "/api/v2.0/users/current";
    assert_eq!(status(&b, "rina", "Passw0rd1", me).await, 200);
    a.user("rina", "Passw0rd1")
        .put(&format!("/api/v2.0/users/{}/password", current_id(&a, "rina", "Passw0rd1").await))
        .json(&json!({"old_password": "Passw0rd1", "new_password": NEW_PASSWORD}))
        .send()
        .await
        .expect(200);
    assert_eq!(status(&a, "rina", "Passw0rd1", me).await, 401);
    let waited = time_until(|| async { status(&b, "rina", "Passw0rd1", me).await == 401 }).await;
    let waited = waited.expect("replica B still accepts the old password after 10 s");
    assert!(waited < Duration::from_secs(5), "replica B took {waited:?}");
    assert_eq!(status(&b, "rina", NEW_PASSWORD, me).await, 200);

    // A robot, known to replica B, disabled through replica A.
    a.create_project("fleet", false).await;
    let robot = a.project_robot("fleet", "ci", &[("repository", "pull"), ("repository", "push")]).await;
    let sign_in = "/service/token?service=harbor-registry";
    assert_eq!(status(&b, &robot.name, &robot.secret, sign_in).await, 200);
    let body = json!({"name": "ci", "level": "project", "duration": -1, "disable": true,
        "permissions": [{"kind": "project", "namespace": "fleet",
            "access": [{"resource": "repository", "action": "pull"}]}]});
    a.admin().put(&format!("/api/v2.0/robots/{}", robot.id)).json(&body).send().await.expect(200);
    assert_eq!(status(&a, &robot.name, &robot.secret, sign_in).await, 401);
    let waited = time_until(|| async { status(&b, &robot.name, &robot.secret, sign_in).await == 401 }).await;
    let waited = waited.expect("replica B still accepts the disabled robot after 10 s");
    assert!(waited < Duration::from_secs(5), "replica B took {waited:?}");
    assert_eq!(status(&b, &robot.name, &robot.secret, "/v2/fleet/app/tags/list").await, 401, "nor on /v2");
}

/// The status of a GET of `path` with basic credentials.
async fn status(app: &TestApp, user: &str, password: &str, path: &str) -> u16 {
    app.user(user, password).get(path).send().await.code()
}

async fn current_id(app: &TestApp, user: &str, password: &str) -> i64 {
    let me: serde_json::Value = app.user(user, password).get("/api/v2.0/users/current").send().await.success().json();
    me["user_id"].as_i64().unwrap()
}

/// A registry token for `scope`, as docker gets one.
async fn token(app: &TestApp, scope: &str) -> String {
    let path = format!("/service/token?service=harbor-registry&scope={scope}");
    let body: serde_json::Value = app.admin().get(&path).send().await.success().json();
    body["token"].as_str().unwrap().to_owned()
}

async fn pull_costs(app: TestApp) {
    let digest = app.push_image("library/app", "v1").await;
    let token = token(&app, "repository:library/app:pull").await;
    let manifest = berth::oci::media::OCI_MANIFEST;
    let get = |path: String| app.get(&path).bearer(&token).header("accept", manifest);
    // Warm what a process reads once (the settings, the account epoch).
    get("/v2/library/app/manifests/v1".to_owned()).send().await.expect(200);

    for (what, path) in [
        ("GET by tag", "/v2/library/app/manifests/v1".to_owned()),
        ("GET by digest", format!("/v2/library/app/manifests/{digest}")),
    ] {
        let before = app.meta_counts();
        let r = get(path.clone()).send().await.expect(200);
        assert_eq!(r.header("docker-content-digest"), digest);
        let cost = app.meta_counts().since(&before);
        assert_eq!((cost.reads(), cost.writes()), (1, 0), "{what}: {cost:?}");
        let before = app.meta_counts();
        app.head(&path).bearer(&token).header("accept", manifest).send().await.expect(200);
        let cost = app.meta_counts().since(&before);
        assert_eq!((cost.reads(), cost.writes()), (1, 0), "HEAD {what}: {cost:?}");
    }

    let manifest: serde_json::Value = get(format!("/v2/library/app/manifests/{digest}")).send().await.json();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap().to_owned();
    let before = app.meta_counts();
    let r = app.get(&format!("/v2/library/app/blobs/{layer}")).bearer(&token).send().await;
    assert!(matches!(r.code(), 200 | 307), "blob GET: {}", r.code());
    let cost = app.meta_counts().since(&before);
    assert!(cost.reads() <= 1 && cost.writes() == 0, "blob GET: {cost:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pull_reads_the_table_once_and_writes_nothing_local() {
    pull_costs(TestAppBuilder::default().count_meta().local().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pull_reads_the_table_once_and_writes_nothing_aws() {
    let Some(app) = TestAppBuilder::default().count_meta().aws("pulls").await else { return };
    pull_costs(app).await;
}

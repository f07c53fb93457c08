//! Helpers shared by the port conformance suites and other tests: emulator
//! detection with the skip-or-fail rule, unique names, memory high-water marks,
//! and a throwaway OpenLDAP server ([`ldap`]).

use std::time::Duration;

pub mod lambda;
pub mod ldap;

/// The variable that turns a skipped emulator-backed test into a failure (CI
/// sets it, so a missing emulator can never pass as green).
pub const REQUIRE_EMULATORS: &str = "BERTH_TEST_REQUIRE_EMULATORS";

/// Whether emulator-backed tests can run: `AWS_ENDPOINT_URL` must point at an
/// emulator. When it is unset the test is skipped with a message, unless
/// `BERTH_TEST_REQUIRE_EMULATORS=1`, which makes that a failure.
pub fn emulator_available(test: &str) -> bool {
    if std::env::var_os("AWS_ENDPOINT_URL").is_some() {
        return true;
    }
    let required = std::env::var(REQUIRE_EMULATORS).is_ok_and(|v| v == "1");
    assert!(!required, "{test}: AWS_ENDPOINT_URL is unset but {REQUIRE_EMULATORS}=1");
    eprintln!("skipping {test}: set AWS_ENDPOINT_URL (and AWS_REGION, credentials) to an AWS emulator to run it");
    false
}

/// A short random name for isolating one test's keys, tables or queues.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// Held by tests that measure this process's memory, so that two such
/// tests (of different backends) never run at once and blur each other's
/// figures.
pub static MEMORY_MEASUREMENT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Resets this process's peak-RSS mark (Linux `clear_refs`), so that
/// [`peak_rss_bytes`] afterwards measures only what follows.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Current resident set size and its high-water mark since the last reset.
pub fn rss_bytes() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Polls `check` until it returns `Some` or `timeout` passes.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A registry over fresh local backends in a temporary folder (dropped
/// with the folder), with nothing bootstrapped.
#[cfg(test)]
pub async fn local_registry() -> (tempfile::TempDir, crate::service::Registry) {
    let (dir, registry, _) = local_registry_and_queue().await;
    (dir, registry)
}

/// [`local_registry`] with its queue (every queue created).
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub async fn local_registry_and_queue()
-> (tempfile::TempDir, crate::service::Registry, std::sync::Arc<dyn crate::queue::Queue>) {
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let blobs = crate::blob::fs::FsBlobStore::open(dir.path().join("blobs")).await.unwrap();
    let db = crate::localdb::LocalDb::open(&dir.path().join("berth.redb")).unwrap();
    let meta: Arc<dyn crate::meta::MetaStore> =
        Arc::new(crate::meta::local::LocalMetaStore::open(db.clone()).await.unwrap());
    let queue: Arc<dyn crate::queue::Queue> = Arc::new(crate::queue::local::LocalQueue::open(db).await.unwrap());
    crate::migrate::ensure_queues(queue.as_ref(), &crate::config::Config::default()).await.unwrap();
    let events = Arc::new(crate::events::EventBus::new(meta.clone(), queue.clone()));
    (dir, crate::service::Registry::from_ports(Arc::new(blobs), meta, events, 1800), queue)
}

/// Pushes a one-config, no-layer image to `repo` (whose project must
/// exist) under `tag`; returns its digest.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub async fn push_small_image(
    reg: &crate::service::Registry,
    repo: &crate::oci::RepoName,
    tag: &crate::oci::Tag,
) -> crate::oci::Digest {
    reg.push_small_image_for_tests(repo, tag).await
}

/// An HTTP receiver on a free loopback port answering `status` to every
/// request, counting them: its URL (`/hook`) and the count.
#[allow(clippy::unwrap_used)]
pub async fn counting_receiver(status: u16) -> (String, std::sync::Arc<std::sync::atomic::AtomicU32>) {
    use std::sync::atomic::Ordering;
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let count = hits.clone();
    let app = axum::Router::new().fallback(move || {
        let count = count.clone();
        async move {
            count.fetch_add(1, Ordering::SeqCst);
            axum::http::StatusCode::from_u16(status).unwrap()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, hits)
}

//! Prometheus metrics (F21), named as Harbor names them where Harbor has
//! them, so its dashboards and alerts work unchanged:
//!
//! - `core`: `harbor_core_http_*` for `/api/v2.0`, the portal and tokens;
//! - `registry`: Distribution's `registry_http_*` for `/v2`, and
//!   `registry_storage_action_seconds` for object-store calls;
//! - `jobservice`: `harbor_jobservice_*` for the jobs a worker runs;
//! - `exporter`: the registry's contents (`harbor_project_*`,
//!   `harbor_artifact_pulled`, `harbor_task_*`, `harbor_health`, …),
//!   computed from the table when scraped ([`crate::http::metrics`]);
//! - berth's own, `berth_*`: table and queue calls, uploaded bytes.
//!
//! The collectors are process-wide (one set per process, as a Prometheus
//! client keeps them); `process_*` describe the process. Harbor's Go
//! runtime figures (`go_*`) have no counterpart in a Rust process and are
//! not made up.

pub mod exporter;
pub mod ports;

use std::sync::OnceLock;

use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry};

/// Seconds: 1 ms to about 30 s.
const LATENCY_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
/// Bytes: 256 B to 1 GiB.
const SIZE_BUCKETS: &[f64] =
    &[256.0, 4096.0, 65536.0, 1_048_576.0, 16_777_216.0, 134_217_728.0, 536_870_912.0, 1_073_741_824.0];

pub struct Metrics {
    registry: Registry,
    pub core_requests: IntCounterVec,
    pub core_duration: HistogramVec,
    pub core_inflight: IntGaugeVec,
    pub registry_requests: IntCounterVec,
    pub registry_duration: HistogramVec,
    pub registry_request_size: HistogramVec,
    pub registry_response_size: HistogramVec,
    pub registry_inflight: IntGaugeVec,
    pub storage_action: HistogramVec,
    pub meta_action: HistogramVec,
    pub queue_action: HistogramVec,
    pub upload_bytes: IntCounter,
    pub jobservice_info: IntGaugeVec,
    pub job_tasks: IntCounterVec,
    pub job_time: HistogramVec,
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).unwrap_or_else(|e| unreachable!("metric {name}: {e}"));
    r.register(Box::new(c.clone())).unwrap_or_else(|e| unreachable!("metric {name}: {e}"));
    c
}

fn gauge(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).unwrap_or_else(|e| unreachable!("metric {name}: {e}"));
    r.register(Box::new(g.clone())).unwrap_or_else(|e| unreachable!("metric {name}: {e}"));
    g
}

fn histogram(r: &Registry, name: &str, help: &str, labels: &[&str], buckets: &[f64]) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    let h = HistogramVec::new(opts, labels).unwrap_or_else(|e| unreachable!("metric {name}: {e}"));
    r.register(Box::new(h.clone())).unwrap_or_else(|e| unreachable!("metric {name}: {e}"));
    h
}

impl Metrics {
    fn new() -> Self {
        let r = Registry::new();
        #[cfg(target_os = "linux")]
        {
            let process = prometheus::process_collector::ProcessCollector::for_self();
            r.register(Box::new(process)).unwrap_or_else(|e| unreachable!("process metrics: {e}"));
        }
        let upload_bytes = IntCounter::new("berth_upload_bytes_total", "Blob bytes received by uploads.")
            .unwrap_or_else(|e| unreachable!("berth_upload_bytes_total: {e}"));
        r.register(Box::new(upload_bytes.clone())).unwrap_or_else(|e| unreachable!("upload bytes: {e}"));
        Self {
            core_requests: counter(
                &r,
                "harbor_core_http_request_total",
                "Requests to the management API, the portal and the token service.",
                &["method", "operation", "code"],
            ),
            core_duration: histogram(
                &r,
                "harbor_core_http_request_duration_seconds",
                "Time to answer a management API request.",
                &["method", "operation"],
                LATENCY_BUCKETS,
            ),
            core_inflight: gauge(
                &r,
                "harbor_core_http_inflight_requests",
                "Management API requests being answered.",
                &["operation"],
            ),
            registry_requests: counter(
                &r,
                "registry_http_requests_total",
                "Requests to the registry API (/v2).",
                &["method", "handler", "code"],
            ),
            registry_duration: histogram(
                &r,
                "registry_http_request_duration_seconds",
                "Time to answer a registry API request (to its last body byte for uploads).",
                &["method", "handler"],
                LATENCY_BUCKETS,
            ),
            registry_request_size: histogram(
                &r,
                "registry_http_request_size_bytes",
                "Declared request body sizes of registry API requests.",
                &["method", "handler"],
                SIZE_BUCKETS,
            ),
            registry_response_size: histogram(
                &r,
                "registry_http_response_size_bytes",
                "Declared response body sizes of registry API requests.",
                &["method", "handler"],
                SIZE_BUCKETS,
            ),
            registry_inflight: gauge(
                &r,
                "registry_http_in_flight_requests",
                "Registry API requests being answered.",
                &["handler"],
            ),
            storage_action: histogram(
                &r,
                "registry_storage_action_seconds",
                "Time of object-store calls.",
                &["driver", "action"],
                LATENCY_BUCKETS,
            ),
            meta_action: histogram(
                &r,
                "berth_meta_action_seconds",
                "Time of metadata-table calls.",
                &["driver", "action"],
                LATENCY_BUCKETS,
            ),
            queue_action: histogram(
                &r,
                "berth_queue_action_seconds",
                "Time of queue calls.",
                &["driver", "action"],
                LATENCY_BUCKETS,
            ),
            upload_bytes,
            jobservice_info: gauge(
                &r,
                "harbor_jobservice_info",
                "The job workers of this process.",
                &["node", "pool", "workers"],
            ),
            job_tasks: counter(&r, "harbor_jobservice_task_total", "Job tasks run, by outcome.", &["type", "status"]),
            job_time: histogram(
                &r,
                "harbor_jobservice_task_process_time_seconds",
                "Time a job task ran.",
                &["type", "status"],
                LATENCY_BUCKETS,
            ),
            registry: r,
        }
    }

    /// Records a job task's run.
    pub fn task_done(&self, kind: &str, status: &str, took: std::time::Duration) {
        self.job_tasks.with_label_values(&[kind, status]).inc();
        self.job_time.with_label_values(&[kind, status]).observe(took.as_secs_f64());
    }

    /// The families of a component (`core`, `registry`, `jobservice`,
    /// `exporter`), or all with `None`, in the text format. The process's
    /// own figures come with each.
    pub fn encode(&self, comp: Option<&str>) -> String {
        let families = self.registry.gather();
        let keep = |name: &str| match comp {
            None => true,
            Some(c) => name.starts_with("process_") || component_of(name) == c,
        };
        let chosen: Vec<_> = families.into_iter().filter(|f| keep(f.name())).collect();
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus::TextEncoder::new().encode_utf8(&chosen, &mut out);
        out
    }
}

/// Which of Harbor's components a family belongs to.
pub fn component_of(name: &str) -> &'static str {
    if name.starts_with("harbor_core_") || name.starts_with("berth_") {
        "core"
    } else if name.starts_with("registry_") {
        "registry"
    } else if name.starts_with("harbor_jobservice_") {
        "jobservice"
    } else {
        "exporter"
    }
}

/// The `handler` labels of `/v2` ([`registry_handler`]).
pub const REGISTRY_HANDLERS: [&str; 8] =
    ["base", "catalog", "blob_upload", "blob", "manifest", "tags", "referrers", "other"];

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let m = Metrics::new();
        // Requests in flight are a state: 0 is a reading, shown from the start.
        for handler in REGISTRY_HANDLERS {
            m.registry_inflight.with_label_values(&[handler]).set(0);
        }
        m
    })
}

/// The `handler` label of a `/v2` path, as Distribution names its routes.
pub fn registry_handler(path: &str) -> &'static str {
    let rest = path.trim_start_matches("/v2").trim_start_matches('/');
    if rest.is_empty() {
        return "base";
    }
    if rest == "_catalog" {
        return "catalog";
    }
    if rest.contains("/blobs/uploads") {
        return "blob_upload";
    }
    if rest.contains("/blobs/") {
        return "blob";
    }
    if rest.contains("/manifests/") {
        return "manifest";
    }
    if rest.ends_with("/tags/list") {
        return "tags";
    }
    if rest.contains("/referrers/") {
        return "referrers";
    }
    "other"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handlers_and_components() {
        assert_eq!(registry_handler("/v2/"), "base");
        assert_eq!(registry_handler("/v2/a/b/blobs/uploads/123"), "blob_upload");
        assert_eq!(registry_handler("/v2/a/blobs/sha256:ab"), "blob");
        assert_eq!(registry_handler("/v2/a/manifests/v1"), "manifest");
        assert_eq!(registry_handler("/v2/a/tags/list"), "tags");
        assert_eq!(component_of("registry_storage_action_seconds"), "registry");
        assert_eq!(component_of("harbor_project_total"), "exporter");
        assert_eq!(component_of("berth_upload_bytes_total"), "core");
    }

    #[test]
    fn families_are_encoded_by_component() {
        let m = metrics();
        m.registry_requests.with_label_values(&["GET", "manifest", "200"]).inc();
        m.core_requests.with_label_values(&["GET", "/api/v2.0/projects", "200"]).inc();
        let registry = m.encode(Some("registry"));
        assert!(registry.contains("registry_http_requests_total{code=\"200\",handler=\"manifest\",method=\"GET\"}"));
        assert!(!registry.contains("harbor_core_http_request_total"));
        assert!(registry.contains("registry_http_in_flight_requests{handler=\"blob_upload\"}"), "shown from the start");
        let all = m.encode(None);
        assert!(all.contains("harbor_core_http_request_total") && all.contains("registry_http_requests_total"));
    }
}

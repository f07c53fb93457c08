//! Prometheus metrics (F21) of the real binary: Harbor's names on the
//! metric port, checked by `promtool` and scraped by a real Prometheus
//! (Debian `prometheus`, which .ci/run installs).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::cli::{exec, require};
use crate::support::{Server, free_port};

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build().unwrap()
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A Prometheus query's single value, once it has one.
fn query(prom: &str, q: &str) -> Option<f64> {
    let url = url::Url::parse_with_params(&format!("{prom}/api/v1/query"), [("query", q)]).ok()?;
    let res: Value = client().get(url).send().ok()?.json().ok()?;
    res["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

#[test]
fn harbor_metrics_are_scraped_by_prometheus() {
    require("promtool", &["--version"]);
    require("prometheus", &["--version"]);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = Server::start(
        dir.path(),
        &[],
        &[
            ("BERTH_ADMIN_PASSWORD", "Harbor12345"),
            ("BERTH_METRIC_ENABLED", "true"),
            ("BERTH_METRIC_PORT", &port.to_string()),
        ],
    );
    let admin = |r: reqwest::blocking::RequestBuilder| r.basic_auth("admin", Some("Harbor12345"));
    let c = client();
    for (name, public) in [("pub1", true), ("priv1", false), ("priv2", false)] {
        let body = json!({"project_name": name, "public": public, "storage_limit": 1_000_000});
        let res = admin(c.post(server.url("/api/v2.0/projects"))).json(&body).send().unwrap();
        assert_eq!(res.status().as_u16(), 201);
    }
    // A blob pushed to priv1/app: uploaded bytes and registry requests.
    let blob = b"metrics blob".to_vec();
    let digest = format!("sha256:{}", hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&blob)));
    let res =
        admin(c.post(server.url(&format!("/v2/priv1/app/blobs/uploads/?digest={digest}")))).body(blob).send().unwrap();
    assert_eq!(res.status().as_u16(), 201);
    admin(c.get(server.url("/api/v2.0/projects"))).send().unwrap();

    let metrics = format!("http://127.0.0.1:{port}/metrics");
    let all = c.get(&metrics).send().unwrap();
    assert!(all.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let text = all.text().unwrap();
    for name in [
        "harbor_core_http_request_total{code=\"200\",method=\"GET\",operation=\"/api/v2.0/projects\"}",
        "harbor_core_http_request_duration_seconds_bucket",
        "harbor_core_http_inflight_requests",
        "registry_http_requests_total{code=\"201\",handler=\"blob_upload\",method=\"POST\"} 1",
        "registry_http_request_duration_seconds_count",
        "registry_http_request_size_bytes_sum",
        "registry_storage_action_seconds_count{action=\"Writer\",driver=\"filesystem\"}",
        "berth_meta_action_seconds_count{action=\"transact\",driver=\"localdb\"}",
        "berth_upload_bytes_total 12",
        "harbor_project_total{public=\"false\"} 2",
        "harbor_project_total{public=\"true\"} 2",
        "harbor_project_quota_byte{project_name=\"priv1\"} 1000000",
        "harbor_project_member_total{project_name=\"pub1\"} 1",
        "harbor_health 1",
        "harbor_system_info{auth_mode=\"db_auth\"",
        "harbor_task_queue_size{type=\"GARBAGE_COLLECTION\"}",
        "harbor_jobservice_info{",
        "process_resident_memory_bytes",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    // Harbor's components, one at a time.
    let core = c.get(format!("{metrics}?comp=core")).send().unwrap().text().unwrap();
    assert!(core.contains("harbor_core_http_request_total") && !core.contains("registry_http_requests_total"));
    let registry = c.get(format!("{metrics}?comp=registry")).send().unwrap().text().unwrap();
    assert!(registry.contains("registry_http_requests_total") && !registry.contains("harbor_project_total"));
    let exporter = c.get(format!("{metrics}?comp=exporter")).send().unwrap().text().unwrap();
    assert!(exporter.contains("harbor_project_total") && !exporter.contains("harbor_core_http_request_total"));

    // promtool parses the exposition; its lint finds nothing but the
    // `_total` gauges that Harbor's exporter names so (kept, as dashboards
    // use them).
    let out = exec(Command::new("promtool").args(["check", "metrics"]), Some(text.as_bytes()), Duration::from_secs(30));
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let harbors = [
        "harbor_project_artifact_total",
        "harbor_project_member_total",
        "harbor_project_repo_total",
        "harbor_project_total",
        "harbor_task_scheduled_total",
    ];
    for line in said.lines().filter(|l| !l.trim().is_empty()) {
        let name = line.split_whitespace().next().unwrap_or("");
        let harbor_gauge =
            harbors.contains(&name) && line.ends_with("non-counter metrics should not have \"_total\" suffix");
        assert!(harbor_gauge, "promtool: {line}\n{said}");
    }
    assert!(said.contains("harbor_project_total"), "promtool ran its lint: {said}");

    // A real Prometheus scrapes it.
    let prom_port = free_port();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: berth\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        ),
    )
    .unwrap();
    let check = exec(Command::new("promtool").args(["check", "config"]).arg(&config), None, Duration::from_secs(30));
    assert!(check.status.success(), "{check:?}");
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let _prom = Killed(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("tsdb").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap(),
    );
    let prom = format!("http://127.0.0.1:{prom_port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut up, mut private) = (None, None);
    while Instant::now() < deadline && !(up == Some(1.0) && private == Some(2.0)) {
        std::thread::sleep(Duration::from_millis(500));
        up = query(&prom, "up{job=\"berth\"}");
        private = query(&prom, "harbor_project_total{public=\"false\"}");
    }
    let log = std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();
    assert_eq!(up, Some(1.0), "Prometheus scraped berth:\n{log}");
    assert_eq!(private, Some(2.0));
    let uploaded = query(&prom, "berth_upload_bytes_total");
    assert_eq!(uploaded, Some(12.0));
    drop(server);
}

#[test]
fn metrics_are_off_by_default_and_the_port_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = Server::start(dir.path(), &[], &[("BERTH_METRIC_PORT", &port.to_string())]);
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "no metrics listener unless enabled");
    drop(server);
    let (out, _) = crate::support::run(
        dir.path(),
        &["serve", "--listen", "127.0.0.1:5999"],
        &[("BERTH_METRIC_ENABLED", "true"), ("BERTH_METRIC_PORT", "5999")],
        Duration::from_secs(20),
    );
    let line = crate::support::one_line_error(&out);
    assert!(line.contains("metric.port"), "{line}");
}

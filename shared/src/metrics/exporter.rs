//! Harbor's exporter figures: what the registry holds (projects,
//! repositories, artifacts, members, quotas, pulls) and how its job queues
//! stand, read from the table when scraped and encoded as Harbor's
//! exporter names them.

use prometheus::{IntGaugeVec, Opts, Registry};

use crate::events::now_ms;
use crate::service::Registry as Service;
use crate::service::jobqueues::{JobQueue, PoolRecord};
use crate::service::statistics::ExporterFigures;

/// What one scrape of the exporter reads.
pub struct Snapshot {
    pub figures: ExporterFigures,
    pub queues: Vec<JobQueue>,
    pub pools: Vec<PoolRecord>,
    pub auth_mode: String,
    pub self_registration: bool,
}

/// Reads a snapshot; `None` when the table cannot be read (the exporter
/// then reports the registry unhealthy).
pub async fn snapshot(registry: &Service) -> Option<Snapshot> {
    let read = async {
        let figures = registry.exporter_figures().await?;
        let queues = registry.job_queues(&crate::jobs::JOB_TYPES).await?;
        let pools = registry.pools().await?;
        let settings = registry.settings().await?;
        Ok::<_, crate::service::ServiceError>(Snapshot {
            figures,
            queues,
            pools,
            auth_mode: settings.auth_mode.as_str().to_owned(),
            self_registration: settings.self_registration,
        })
    };
    match read.await {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "metrics exporter: cannot read the registry's figures");
            None
        }
    }
}

fn gauge(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).unwrap_or_else(|e| unreachable!("metric {name}: {e}"));
    r.register(Box::new(g.clone())).unwrap_or_else(|e| unreachable!("metric {name}: {e}"));
    g
}

/// The exporter's families in the text format.
pub fn encode(snapshot: Option<&Snapshot>) -> String {
    let r = Registry::new();
    let health = gauge(&r, "harbor_health", "Whether the registry can read its table (1) or not (0).", &[]);
    let up = gauge(&r, "harbor_up", "Whether each component answers (1) or not (0).", &["component"]);
    let info = gauge(
        &r,
        "harbor_system_info",
        "The registry's version and settings.",
        &["auth_mode", "harbor_version", "self_registration"],
    );
    health.with_label_values::<&str>(&[]).set(i64::from(snapshot.is_some()));
    let version = concat!("v2.13.0-berth-", env!("CARGO_PKG_VERSION"));
    up.with_label_values(&["core"]).set(1);
    up.with_label_values(&["registry"]).set(1);
    up.with_label_values(&["database"]).set(i64::from(snapshot.is_some()));
    let Some(s) = snapshot else { return text(&r) };
    up.with_label_values(&["jobservice"]).set(i64::from(!s.pools.is_empty()));
    info.with_label_values(&[s.auth_mode.as_str(), version, &s.self_registration.to_string()]).set(1);

    let total = gauge(&r, "harbor_project_total", "Projects, public and private.", &["public"]);
    let repos = gauge(&r, "harbor_project_repo_total", "Repositories of each project.", &["project_name", "public"]);
    let artifacts =
        gauge(&r, "harbor_project_artifact_total", "Artifacts of each project.", &["project_name", "public"]);
    let members = gauge(&r, "harbor_project_member_total", "Members of each project.", &["project_name"]);
    let used = gauge(&r, "harbor_project_quota_usage_byte", "Bytes each project stores.", &["project_name"]);
    let limit =
        gauge(&r, "harbor_project_quota_byte", "Each project's storage limit in bytes (-1: none).", &["project_name"]);
    let pulled = gauge(&r, "harbor_artifact_pulled", "Pulls of each project's artifacts.", &["project_name"]);
    let (mut public, mut private) = (0, 0);
    for p in &s.figures.projects {
        let name = p.name.as_str();
        let is_public = p.public.to_string();
        if p.public {
            public += 1;
        } else {
            private += 1;
        }
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        repos.with_label_values(&[name, &is_public]).set(n(p.repositories));
        artifacts.with_label_values(&[name, &is_public]).set(n(p.artifacts));
        members.with_label_values(&[name]).set(n(p.members));
        used.with_label_values(&[name]).set(p.quota_used);
        limit.with_label_values(&[name]).set(p.quota_limit);
        pulled.with_label_values(&[name]).set(n(p.pulls));
    }
    total.with_label_values(&["true"]).set(public);
    total.with_label_values(&["false"]).set(private);

    let size = gauge(&r, "harbor_task_queue_size", "Tasks waiting for a worker, by job type.", &["type"]);
    let latency = gauge(
        &r,
        "harbor_task_queue_latency",
        "Seconds the longest-waiting task of each job type has waited.",
        &["type"],
    );
    let concurrency =
        gauge(&r, "harbor_task_concurrency", "Tasks running, by job type and worker pool.", &["type", "pool"]);
    let scheduled = gauge(&r, "harbor_task_scheduled_total", "Schedules that start jobs.", &[]);
    let now = now_ms();
    for q in &s.queues {
        size.with_label_values(&[q.job_type.as_str()]).set(i64::try_from(q.count).unwrap_or(i64::MAX));
        let waited = q.oldest_ms.filter(|_| q.count > 0).map_or(0, |t| ((now - t) / 1000).max(0));
        latency.with_label_values(&[q.job_type.as_str()]).set(waited);
    }
    for pool in &s.pools {
        for q in &s.queues {
            let running = pool.running.iter().filter(|j| j.job_name == q.job_type).count();
            concurrency
                .with_label_values(&[q.job_type.as_str(), pool.id.as_str()])
                .set(i64::try_from(running).unwrap_or(i64::MAX));
        }
    }
    scheduled.with_label_values::<&str>(&[]).set(i64::try_from(s.figures.schedules).unwrap_or(i64::MAX));
    text(&r)
}

fn text(r: &Registry) -> String {
    let mut out = String::new();
    let _ = prometheus::TextEncoder::new().encode_utf8(&r.gather(), &mut out);
    out
}

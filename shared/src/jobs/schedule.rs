//! Schedules: Harbor's schedule objects and 6-field cron (seconds first,
//! weekdays 0-6, `?`), and the firing of due schedules.
//!
//! Schedules are stored by their owner ([`crate::service::schedules`]); no
//! cloud resource is made per schedule. A tick ([`tick`]) starts, for each
//! schedule, the executions of the slots that fell due in the last
//! [`WINDOW`]: each slot is leased with a create-only write, so however many
//! replicas tick, one fires it. Long-lived hosts tick every
//! [`TICK_EVERY`] ([`run`]); on AWS the scheduler's one-minute
//! EventBridge tick calls [`tick`] in the worker function.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::service::{Registry, ServiceError, ServiceResult};

/// How often a long-lived host looks for due slots.
pub const TICK_EVERY: Duration = Duration::from_secs(5);
/// How far back a tick looks for slots (covers a late or missed tick; the
/// EventBridge tick comes every minute).
pub const WINDOW: Duration = Duration::from_secs(90);

/// Harbor's `ScheduleObj`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ScheduleObj {
    /// `Hourly`, `Daily`, `Weekly`, `Custom`, `Schedule`, `Manual` or `None`.
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub cron: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_scheduled_time: Option<String>,
}

/// What a schedule object asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Run once now.
    Now,
    /// No schedule.
    Never,
    /// Run at each slot of this cron.
    Cron(String),
}

/// Reads a schedule object as Harbor does: the periodic types carry their
/// own cron (Harbor's UI sends it too), `Custom`/`Schedule` need a valid one.
pub fn plan(obj: &ScheduleObj) -> ServiceResult<Plan> {
    let cron = obj.cron.trim();
    let given_or = |default: &str| if cron.is_empty() { default.to_owned() } else { cron.to_owned() };
    let cron = match obj.kind.as_str() {
        "Manual" => return Ok(Plan::Now),
        "None" | "" => return Ok(Plan::Never),
        "Hourly" => given_or("0 0 * * * *"),
        "Daily" => given_or("0 0 0 * * *"),
        "Weekly" => given_or("0 0 0 * * 0"),
        "Custom" | "Schedule" => cron.to_owned(),
        other => return Err(ServiceError::Invalid(format!("unknown schedule type {other:?}"))),
    };
    parse(&cron)?;
    Ok(Plan::Cron(cron))
}

/// Parses a 6-field cron.
pub fn parse(cron: &str) -> ServiceResult<croner::Cron> {
    if cron.split_whitespace().count() != 6 {
        return Err(ServiceError::Invalid(format!("cron {cron:?} must have 6 fields (seconds first)")));
    }
    croner::Cron::new(cron)
        .with_seconds_required()
        .parse()
        .map_err(|e| ServiceError::Invalid(format!("invalid cron {cron:?}: {e}")))
}

fn utc(ms: i64) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp_millis(ms)
}

/// The first slot of `cron` strictly after `after_ms`.
pub fn next_after(cron: &croner::Cron, after_ms: i64) -> Option<i64> {
    cron.find_next_occurrence(&utc(after_ms)?, false).ok().map(|t| t.timestamp_millis())
}

/// The slots of `cron` in `(from_ms, to_ms]`.
pub fn slots_between(cron: &croner::Cron, from_ms: i64, to_ms: i64) -> Vec<i64> {
    let mut out = Vec::new();
    let mut t = from_ms;
    while let Some(next) = next_after(cron, t) {
        if next > to_ms || out.len() >= 100 {
            break;
        }
        out.push(next);
        t = next;
    }
    out
}

/// Fires the slots due at `now_ms` (in the last [`WINDOW`]) of every
/// schedule: returns how many executions this call started.
pub async fn tick(registry: &Registry, now_ms: i64) -> ServiceResult<usize> {
    if registry.job_queue_paused(super::SCHEDULER).await? {
        // Paused schedules fire nothing; a slot missed by less than
        // WINDOW fires when they resume.
        return Ok(0);
    }
    let jobs = super::host::all_jobs();
    let from = now_ms - i64::try_from(WINDOW.as_millis()).unwrap_or(0);
    let mut started = 0;
    for s in registry.all_schedules().await? {
        let Ok(cron) = parse(&s.cron) else { continue };
        let Some(job) = jobs.get(&s.vendor_type) else { continue };
        // A schedule fires only the slots after it was last set.
        for slot in slots_between(&cron, from.max(s.update_time), now_ms) {
            if registry.lease_slot(&s.vendor_type, s.vendor_id, slot).await? {
                registry
                    .start_execution(
                        job.as_ref(),
                        s.vendor_id,
                        "SCHEDULE",
                        serde_json::Map::new(),
                        vec![s.params.clone()],
                    )
                    .await?;
                started += 1;
            }
        }
    }
    // The registry endpoints' regular health check rides on the tick.
    if let Err(e) = registry.recheck_registry_endpoints(now_ms).await {
        tracing::warn!(error = %e, "the registry endpoints' health check failed");
    }
    Ok(started)
}

/// Ticks every [`TICK_EVERY`] until `stop`.
pub async fn run(registry: Registry, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(TICK_EVERY) => {}
        }
        if let Err(e) = tick(&registry, crate::events::now_ms()).await {
            tracing::warn!(error = %e, "schedule tick failed");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn obj(kind: &str, cron: &str) -> ScheduleObj {
        ScheduleObj { kind: kind.into(), cron: cron.into(), next_scheduled_time: None }
    }

    #[test]
    fn harbor_schedule_objects() {
        assert_eq!(plan(&obj("Manual", "")).unwrap(), Plan::Now);
        assert_eq!(plan(&obj("None", "")).unwrap(), Plan::Never);
        assert_eq!(plan(&obj("Weekly", "")).unwrap(), Plan::Cron("0 0 0 * * 0".into()));
        assert_eq!(plan(&obj("Custom", "0 15 10 ? * *")).unwrap(), Plan::Cron("0 15 10 ? * *".into()));
        assert!(plan(&obj("Custom", "* * * * *")).is_err(), "5 fields");
        assert!(plan(&obj("Custom", "0 99 * * * *")).is_err());
        assert!(plan(&obj("Sometimes", "")).is_err());
    }

    #[test]
    fn slots() {
        // 2026-12-05T00:00:00Z is a Saturday.
        let midnight = 1_796_428_800_000;
        let every_minute = parse("0 * * * * *").unwrap();
        assert_eq!(slots_between(&every_minute, midnight, midnight + 180_000).len(), 3);
        let sundays = parse("0 0 0 * * 0").unwrap();
        assert_eq!(next_after(&sundays, midnight), Some(midnight + 86_400_000));
        let at_1015 = parse("0 15 10 ? * *").unwrap();
        assert_eq!(next_after(&at_1015, midnight), Some(midnight + (10 * 3600 + 15 * 60) * 1000));
    }
}

//! The registry's clearing jobs (Harbor's "Clean up"): garbage collection
//! and the audit log purge. Both have the same shape in the API — a run
//! now (`Manual`) or a schedule through `…/schedule`, a paged history, a
//! log per run, a stop — so one page serves both, each with its own
//! parameters.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use maud::{Markup, html};
use serde_json::{Value, json};

use super::layout::{button_form, csrf, page, pager};
use super::{Visit, after, checked, field, form, html, int, items, text, when};
use crate::http::state::AppState;

/// A clearing job: where its page is, where its API is, and its
/// parameters.
struct Job {
    page: &'static str,
    api: &'static str,
    title: &'static str,
    /// Says what a run did ("Garbage collection").
    noun: &'static str,
    params: fn(&[(String, String)], bool) -> Value,
    /// The parameters' fields, their ids starting with the prefix given.
    fields: fn(&Value, &str) -> Markup,
}

const GC: Job = Job {
    page: "/harbor/clearing-job/gc",
    api: "/system/gc",
    title: "Garbage collection",
    noun: "Garbage collection",
    params: gc_params,
    fields: gc_fields,
};

const PURGE: Job = Job {
    page: "/harbor/clearing-job/audit-log-purge",
    api: "/system/purgeaudit",
    title: "Audit log purge",
    noun: "The audit log purge",
    params: purge_params,
    fields: purge_fields,
};

pub fn routes() -> Router<Arc<AppState>> {
    let mut r = Router::new();
    for (job, name) in [(&GC, "gc"), (&PURGE, "purge")] {
        let which = name == "gc";
        let pick = move || if which { &GC } else { &PURGE };
        r = r
            .route(job.page, get(move |v: Visit| history(v, pick())).post(move |v: Visit, b: Bytes| run(v, pick(), b)))
            .route(&format!("{}/schedule", job.page), post(move |v: Visit, b: Bytes| schedule(v, pick(), b)))
            .route(&format!("{}/{{rid}}/log", job.page), get(move |v: Visit, Path(rid): Path<i64>| log(v, pick(), rid)))
            .route(
                &format!("{}/{{rid}}/stop", job.page),
                post(move |v: Visit, Path(rid): Path<i64>| stop(v, pick(), rid)),
            );
    }
    r
}

fn gc_params(fields: &[(String, String)], now: bool) -> Value {
    json!({
        "delete_untagged": checked(fields, "delete_untagged"),
        "dry_run": now && checked(fields, "dry_run"),
        "workers": field(fields, "workers").parse::<u32>().unwrap_or(1),
    })
}

fn gc_fields(current: &Value, prefix: &str) -> Markup {
    let workers = current.get("workers").and_then(Value::as_u64).unwrap_or(1);
    html! {
        label.check { input type="checkbox" name="delete_untagged"
            checked[current.get("delete_untagged").and_then(Value::as_bool).unwrap_or(false)]; "Delete untagged artifacts" }
        label for=(format!("{prefix}_workers")) { "Workers (1 to 5)" }
        input id=(format!("{prefix}_workers")) type="number" name="workers" min="1" max="5" value=(workers);
    }
}

fn purge_params(fields: &[(String, String)], now: bool) -> Value {
    json!({
        "audit_retention_hour": field(fields, "audit_retention_hour").parse::<i64>().unwrap_or(0),
        "include_event_types": field(fields, "include_event_types"),
        "dry_run": now && checked(fields, "dry_run"),
    })
}

fn purge_fields(current: &Value, prefix: &str) -> Markup {
    let hours = current.get("audit_retention_hour").and_then(Value::as_i64).unwrap_or(24 * 30);
    html! {
        label for=(format!("{prefix}_hours")) { "Keep the entries of the last (hours)" }
        input id=(format!("{prefix}_hours")) type="number" name="audit_retention_hour" min="0" value=(hours) required;
        label for=(format!("{prefix}_types")) { "Only these event types (comma-separated; empty: all)" }
        input id=(format!("{prefix}_types")) type="text" name="include_event_types" value=(text(current, "include_event_types"));
    }
}

/// The schedule types of Harbor's schedule objects, as offered.
const KINDS: [(&str, &str); 5] =
    [("None", "None"), ("Hourly", "Hourly"), ("Daily", "Daily"), ("Weekly", "Weekly"), ("Custom", "Custom (cron)")];

/// A schedule form posting to `action`, showing `schedule` (the API's
/// schedule view) and the job's own `extra` fields.
pub(super) fn schedule_form(visit: &Visit, action: &str, prefix: &str, schedule: &Value, extra: Markup) -> Markup {
    let kind = schedule.pointer("/schedule/type").and_then(Value::as_str).unwrap_or("None");
    let cron = schedule.pointer("/schedule/cron").and_then(Value::as_str).unwrap_or_default();
    let next = schedule.pointer("/schedule/next_scheduled_time").and_then(Value::as_str).unwrap_or_default();
    html! {
        form.panel method="post" action=(action) {
            h2 { "Schedule" }
            p { "Now: " strong { (kind) } @if !cron.is_empty() { " (" code { (cron) } ")" }
                @if !next.is_empty() { ", next run " (when(next)) } }
            (csrf(visit))
            label for=(format!("{prefix}_kind")) { "Run" }
            select id=(format!("{prefix}_kind")) name="schedule_type" {
                @for (k, label) in KINDS { option value=(k) selected[k == kind] { (label) } }
            }
            label for=(format!("{prefix}_cron")) { "Cron (seconds first, for Custom)" }
            input id=(format!("{prefix}_cron")) type="text" name="cron" value=(cron) placeholder="0 0 3 * * *";
            (extra)
            p { button.secondary type="submit" { "Save schedule" } }
        }
    }
}

/// The schedule object a schedule form posted.
pub(super) fn schedule_of(fields: &[(String, String)]) -> Value {
    let kind = field(fields, "schedule_type");
    let cron = if kind == "Custom" { field(fields, "cron") } else { "" };
    json!({"type": kind, "cron": cron})
}

async fn history(visit: Visit, job: &Job) -> Response {
    let viewer = match visit.viewer().await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let (answer, schedule) =
        tokio::join!(visit.get(format!("{}?{}", job.api, visit.paging())), visit.get(format!("{}/schedule", job.api)));
    let (total, next) = (answer.total.unwrap_or(0), answer.next.clone());
    let list = match answer.into_body(&visit) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let current: Value = serde_json::from_str(&text(&schedule.body, "job_parameters")).unwrap_or(Value::Null);
    let writes = !viewer.read_only;
    let body = html! {
        p.crumbs { "Administration" }
        h1 { (job.title) }
        @if writes {
            form.panel method="post" action=(job.page) {
                h2 { "Run now" }
                (csrf(&visit))
                ((job.fields)(&current, "now"))
                label.check { input type="checkbox" name="dry_run"; "Dry run (report only)" }
                p { button type="submit" { "Run " (job.title.to_lowercase()) " now" } }
            }
            (schedule_form(&visit, &format!("{}/schedule", job.page), "job", &schedule.body, (job.fields)(&current, "job")))
        }
        h2 { "History" }
        div.table-wrap { table #history {
            thead { tr { th scope="col" { "Id" } th scope="col" { "Trigger" } th scope="col" { "Status" }
                th scope="col" { "Dry run" } th.wide-only scope="col" { "Parameters" } th scope="col" { "Started" }
                th scope="col" { "Updated" } th scope="col" { "Log" } } }
            tbody { @for g in items(&list) {
                @let rid = int(g, "id");
                @let params = text(g, "job_parameters");
                @let status = text(g, "job_status");
                tr {
                    td { (rid) }
                    td { (g.pointer("/schedule/type").and_then(Value::as_str).unwrap_or("Manual")) }
                    td { (status)
                        @if writes && matches!(status.as_str(), "Running" | "Pending") {
                            " "
                            (button_form(&visit, &format!("{}/{rid}/stop", job.page), "secondary", "Stop", Some(&format!("Stop run {rid}")), None))
                        }
                    }
                    td { @if params.contains("\"dry_run\":true") { "Yes" } @else { "No" } }
                    td.wide-only.mono { (params) }
                    td { (when(&text(g, "creation_time"))) } td { (when(&text(g, "update_time"))) }
                    td { a href=(format!("{}/{rid}/log", job.page)) aria-label=(format!("Log of run {rid}")) { "Log" } }
                }
            } }
        } }
        @if items(&list).is_empty() { p.muted { "No runs yet." } }
        (pager(&visit, job.page, total, next.as_deref()))
    };
    html(StatusCode::OK, page(&visit, Some(&viewer), job.title, body))
}

async fn run(visit: Visit, job: &Job, body: Bytes) -> Response {
    let fields = form(&body);
    let body = json!({"schedule": {"type": "Manual"}, "parameters": (job.params)(&fields, true)});
    let answer = visit.api(Method::POST, &format!("{}/schedule", job.api), Some(&body)).await;
    after(&visit, job.page, &answer, &format!("{} was started.", job.noun))
}

async fn schedule(visit: Visit, job: &Job, body: Bytes) -> Response {
    let fields = form(&body);
    let body = json!({"schedule": schedule_of(&fields), "parameters": (job.params)(&fields, false)});
    let answer = visit.api(Method::PUT, &format!("{}/schedule", job.api), Some(&body)).await;
    after(&visit, job.page, &answer, "The schedule was saved.")
}

async fn stop(visit: Visit, job: &Job, rid: i64) -> Response {
    let answer = visit.api(Method::PUT, &format!("{}/{rid}", job.api), None).await;
    after(&visit, job.page, &answer, "The run was asked to stop.")
}

async fn log(visit: Visit, job: &Job, rid: i64) -> Response {
    let viewer = match visit.viewer().await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let answer = visit.get(format!("{}/{rid}/log", job.api)).await;
    let log = match answer.into_body(&visit) {
        Ok(Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(r) => return *r,
    };
    let title = format!("{} {rid}: log", job.title);
    let body = html! {
        p.crumbs { "Administration" }
        h1 { (title) }
        p { a href=(job.page) { "Back to " (job.title.to_lowercase()) } }
        pre.panel #job-log { (log) }
    };
    html(StatusCode::OK, page(&visit, Some(&viewer), &title, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn forms_become_the_apis_bodies() {
        let f = fields(&[("schedule_type", "Custom"), ("cron", "0 0 3 * * *"), ("dry_run", "on"), ("workers", "3")]);
        assert_eq!(schedule_of(&f), json!({"type": "Custom", "cron": "0 0 3 * * *"}));
        assert_eq!(gc_params(&f, true), json!({"delete_untagged": false, "dry_run": true, "workers": 3}));
        // A schedule never dry-runs.
        assert_eq!(gc_params(&f, false)["dry_run"], false);
        let daily = fields(&[("schedule_type", "Daily"), ("cron", "ignored")]);
        assert_eq!(schedule_of(&daily), json!({"type": "Daily", "cron": ""}));
        let purge = fields(&[("audit_retention_hour", "48"), ("include_event_types", "create_artifact")]);
        assert_eq!(
            purge_params(&purge, false),
            json!({"audit_retention_hour": 48, "include_event_types": "create_artifact", "dry_run": false})
        );
    }
}

//! Replication (administration): the rules that copy repositories between
//! berth and another registry (`/replication/policies`), each rule's runs
//! (`/replication/executions?policy_id=`), a run's tasks and each task's
//! log, and the actions on them: create, edit, delete, replicate now,
//! stop a run.
//!
//! A rule's direction is Harbor's "mode": push (berth is the source, a
//! registry endpoint the destination) or pull (the other way round); the
//! form has one endpoint select and the mode decides which side it is.

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
use super::{Viewer, Visit, after, back, checked, field, form, html, int, items, text, when};
use crate::http::state::AppState;

const REPLICATIONS: &str = "/harbor/replications";

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(REPLICATIONS, get(list).post(create))
        .route("/harbor/replications/new", get(new_rule))
        .route("/harbor/replications/{id}", get(rule).post(save))
        .route("/harbor/replications/{id}/delete", post(delete))
        .route("/harbor/replications/{id}/start", post(start))
        .route("/harbor/replications/{id}/executions/{eid}", get(execution))
        .route("/harbor/replications/{id}/executions/{eid}/stop", post(stop))
        .route("/harbor/replications/{id}/executions/{eid}/tasks/{tid}/log", get(task_log))
}

/// Harbor's flattening choices (`dest_namespace_replace_count`).
const FLATTENING: [(i64, &str); 5] = [
    (-1, "Flatten all levels"),
    (0, "No flattening"),
    (1, "Flatten 1 level"),
    (2, "Flatten 2 levels"),
    (3, "Flatten 3 levels"),
];

const TRIGGERS: [(&str, &str); 3] = [("manual", "Manual"), ("scheduled", "Scheduled"), ("event_based", "Event based")];

fn admin_page(visit: &Visit, viewer: &Viewer, title: &str, content: Markup) -> Response {
    let body = html! {
        p.crumbs { "Administration" " / " a href=(REPLICATIONS) { "Replications" } }
        h1 { (title) }
        (content)
    };
    html(StatusCode::OK, page(visit, Some(viewer), title, body))
}

/// Whether a rule pushes (berth is its source).
fn is_push(p: &Value) -> bool {
    p.pointer("/src_registry/id").and_then(Value::as_i64).unwrap_or(0) == 0
}

/// A side of a rule as shown: "Local" or the endpoint's name (and URL).
fn side(p: &Value, key: &str) -> String {
    let reg = p.get(key).unwrap_or(&Value::Null);
    match int(reg, "id") {
        0 => "Local".to_owned(),
        id => match text(reg, "name") {
            n if n.is_empty() => format!("endpoint {id} (deleted)"),
            n => format!("{n} ({})", text(reg, "url")),
        },
    }
}

/// A filter's value and decoration in a rule.
fn filter<'a>(p: &'a Value, kind: &str) -> Option<&'a Value> {
    p.get("filters").map(items).unwrap_or_default().iter().find(|f| text(f, "type") == kind)
}

fn filter_value(p: &Value, kind: &str) -> String {
    filter(p, kind).map(|f| text(f, "value")).unwrap_or_default()
}

fn flag(p: &Value, key: &str) -> bool {
    p.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn trigger_label(kind: &str) -> &'static str {
    TRIGGERS.iter().find(|(k, _)| *k == kind).map_or("Manual", |(_, l)| l)
}

// ------------------------------------------------------------ the list

async fn list(visit: Visit) -> Response {
    let viewer = match visit.viewer().await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let answer = visit.get(format!("/replication/policies?{}", visit.paging())).await;
    let (total, next) = (answer.total.unwrap_or(0), answer.next.clone());
    let list = match answer.into_body(&visit) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let writes = !viewer.read_only;
    let body = html! {
        @if writes { p { a.button href="/harbor/replications/new" { "New replication rule" } } }
        div.table-wrap { table #replications {
            thead { tr {
                th scope="col" { "Name" } th scope="col" { "Enabled" } th scope="col" { "Mode" }
                th scope="col" { "Source" } th scope="col" { "Destination" } th scope="col" { "Destination namespace" }
                th scope="col" { "Trigger" } @if writes { th scope="col" { "Actions" } }
            } }
            tbody { @for p in items(&list) {
                @let (id, name) = (int(p, "id"), text(p, "name"));
                tr {
                    td { a href=(format!("{REPLICATIONS}/{id}")) { (name) } }
                    td { @if flag(p, "enabled") { "Yes" } @else { "No" } }
                    td { @if is_push(p) { "Push" } @else { "Pull" } }
                    td { (side(p, "src_registry")) }
                    td { (side(p, "dest_registry")) }
                    td.mono { (text(p, "dest_namespace")) }
                    td { (trigger_label(p.pointer("/trigger/type").and_then(Value::as_str).unwrap_or_default())) }
                    @if writes { td {
                        (button_form(&visit, &format!("{REPLICATIONS}/{id}/start"), "secondary", "Replicate", Some(&format!("Replicate {name}")), None))
                        " "
                        (button_form(&visit, &format!("{REPLICATIONS}/{id}/delete"), "danger", "Delete", Some(&format!("Delete {name}")), Some(&format!("Delete the replication rule {name}?"))))
                    } }
                }
            } }
        } }
        @if items(&list).is_empty() { p.muted { "No replication rules." } }
        (pager(&visit, REPLICATIONS, total, next.as_deref()))
    };
    admin_page(&visit, &viewer, "Replications", body)
}

// ------------------------------------------------------------ the form

/// The registry endpoints to choose from (the first page of them: a
/// registry has few), or the page that says why the visitor may not.
async fn endpoints(visit: &Visit) -> Result<Vec<(i64, String)>, Response> {
    let list = visit.get("/registries?page=1&page_size=100").await.into_body(visit).map_err(|r| *r)?;
    Ok(items(&list).iter().map(|r| (int(r, "id"), format!("{} ({})", text(r, "name"), text(r, "url")))).collect())
}

/// The fields of a rule (a new one when `p` is null).
fn rule_fields(p: &Value, endpoints: &[(i64, String)]) -> Markup {
    let new = p.is_null();
    let push = new || is_push(p);
    let endpoint = if push { p.pointer("/dest_registry/id") } else { p.pointer("/src_registry/id") }
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let tag = filter(p, "tag");
    let tag_excludes = tag.is_some_and(|f| text(f, "decoration") == "excludes");
    let count = if new { 1 } else { int(p, "dest_namespace_replace_count") };
    let trigger = p.pointer("/trigger/type").and_then(Value::as_str).unwrap_or("manual");
    let cron = p.pointer("/trigger/trigger_settings/cron").and_then(Value::as_str).unwrap_or_default();
    let resource = filter_value(p, "resource");
    html! {
        label for="rule_name" { "Name" }
        input #rule_name type="text" name="name" required maxlength="255" value=(text(p, "name"));
        label for="rule_description" { "Description" }
        input #rule_description type="text" name="description" value=(text(p, "description"));
        fieldset {
            legend { "Replication mode" }
            label.check { input type="radio" name="mode" value="push" checked[push]; "Push-based (from berth to the endpoint)" }
            label.check { input type="radio" name="mode" value="pull" checked[!push]; "Pull-based (from the endpoint to berth)" }
        }
        label for="rule_registry" { "Registry endpoint" }
        select #rule_registry name="registry" required {
            @for (id, label) in endpoints { option value=(id) selected[*id == endpoint] { (label) } }
        }
        @if endpoints.is_empty() {
            p.muted { "No registry endpoints yet: " a href="/harbor/registries" { "add one" } " first." }
        }
        fieldset {
            legend { "Source resource filters" }
            label for="rule_name_filter" { "Name (e.g. library/** ; empty: all)" }
            input #rule_name_filter type="text" name="name_filter" value=(filter_value(p, "name"));
            label for="rule_tag_filter" { "Tag (e.g. v1.* ; empty: all)" }
            input #rule_tag_filter type="text" name="tag_filter" value=(filter_value(p, "tag"));
            label for="rule_tag_decoration" { "Tags" }
            select #rule_tag_decoration name="tag_decoration" {
                option value="matches" selected[!tag_excludes] { "matching" }
                option value="excludes" selected[tag_excludes] { "excluding" }
            }
            label for="rule_resource" { "Resource" }
            select #rule_resource name="resource" {
                option value="" selected[resource.is_empty()] { "All" }
                option value="image" selected[resource == "image"] { "Image" }
                option value="artifact" selected[resource == "artifact"] { "Artifact" }
            }
        }
        label for="rule_namespace" { "Destination namespace (empty: the source's)" }
        input #rule_namespace type="text" name="dest_namespace" value=(text(p, "dest_namespace"));
        label for="rule_flattening" { "Flattening" }
        select #rule_flattening name="replace_count" {
            @for (v, l) in FLATTENING { option value=(v) selected[v == count] { (l) } }
        }
        label for="rule_trigger" { "Trigger mode" }
        select #rule_trigger name="trigger" {
            @for (k, l) in TRIGGERS { option value=(k) selected[k == trigger] { (l) } }
        }
        label for="rule_cron" { "Cron (seconds first, for Scheduled)" }
        input #rule_cron type="text" name="cron" value=(cron) placeholder="0 0 3 * * *";
        label for="rule_speed" { "Bandwidth (KB/s; −1: unlimited)" }
        input #rule_speed type="number" name="speed" min="-1" value=(if new { -1 } else { int(p, "speed") });
        label.check { input type="checkbox" name="override" checked[new || flag(p, "override")]; "Override artifacts at the destination" }
        label.check { input type="checkbox" name="replicate_deletion" checked[flag(p, "replicate_deletion")]; "Replicate deletions" }
        label.check { input type="checkbox" name="enabled" checked[new || flag(p, "enabled")]; "Enabled" }
    }
}

/// The API's policy from a posted form.
fn policy_of(f: &[(String, String)]) -> Result<Value, String> {
    let registry = field(f, "registry").parse::<i64>().map_err(|_| "Choose a registry endpoint.".to_owned())?;
    let count = field(f, "replace_count").parse::<i64>().map_err(|_| "Choose a flattening.".to_owned())?;
    let speed = match field(f, "speed") {
        "" => -1,
        s => s.parse::<i64>().map_err(|_| "The bandwidth must be a whole number.".to_owned())?,
    };
    let push = field(f, "mode") != "pull";
    let endpoint = json!({"id": registry});
    let mut filters = Vec::new();
    if !field(f, "name_filter").is_empty() {
        filters.push(json!({"type": "name", "value": field(f, "name_filter"), "decoration": "matches"}));
    }
    if !field(f, "tag_filter").is_empty() {
        let decoration = if field(f, "tag_decoration") == "excludes" { "excludes" } else { "matches" };
        filters.push(json!({"type": "tag", "value": field(f, "tag_filter"), "decoration": decoration}));
    }
    if !field(f, "resource").is_empty() {
        filters.push(json!({"type": "resource", "value": field(f, "resource")}));
    }
    let trigger = field(f, "trigger");
    let cron = if trigger == "scheduled" { field(f, "cron") } else { "" };
    Ok(json!({
        "name": field(f, "name"),
        "description": field(f, "description"),
        "src_registry": if push { Value::Null } else { endpoint.clone() },
        "dest_registry": if push { endpoint } else { Value::Null },
        "dest_namespace": field(f, "dest_namespace"),
        "dest_namespace_replace_count": count,
        "filters": filters,
        "trigger": {"type": trigger, "trigger_settings": {"cron": cron}},
        "override": checked(f, "override"),
        "replicate_deletion": checked(f, "replicate_deletion"),
        "enabled": checked(f, "enabled"),
        "speed": speed,
    }))
}

async fn new_rule(visit: Visit) -> Response {
    let viewer = match visit.viewer().await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let endpoints = match endpoints(&visit).await {
        Ok(e) => e,
        Err(r) => return r,
    };
    let body = html! {
        form.panel method="post" action=(REPLICATIONS) {
            (csrf(&visit))
            (rule_fields(&Value::Null, &endpoints))
            p { button type="submit" { "Create replication rule" } }
        }
    };
    admin_page(&visit, &viewer, "New replication rule", body)
}

async fn create(visit: Visit, body: Bytes) -> Response {
    let policy = match policy_of(&form(&body)) {
        Ok(p) => p,
        Err(m) => return back("/harbor/replications/new", Err(&m)),
    };
    let answer = visit.api(Method::POST, "/replication/policies", Some(&policy)).await;
    match answer.location.rsplit_once('/').map(|(_, id)| id) {
        Some(id) if answer.ok() => back(&format!("{REPLICATIONS}/{id}"), Ok("The replication rule was created.")),
        _ => after(&visit, "/harbor/replications/new", &answer, ""),
    }
}

// ------------------------------------------------------------ a rule

/// A rule: its settings (editable), its runs, replicate now, delete.
async fn rule(visit: Visit, Path(id): Path<i64>) -> Response {
    let viewer = match visit.viewer().await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let (policy, runs) = tokio::join!(
        visit.get(format!("/replication/policies/{id}")),
        visit.get(format!("/replication/executions?policy_id={id}&{}", visit.paging()))
    );
    let p = match policy.into_body(&visit) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let (total, next) = (runs.total.unwrap_or(0), runs.next.clone());
    let runs = match runs.into_body(&visit) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let endpoints = match endpoints(&visit).await {
        Ok(e) => e,
        Err(r) => return r,
    };
    let here = format!("{REPLICATIONS}/{id}");
    let writes = !viewer.read_only;
    let name = text(&p, "name");
    let body = html! {
        p { (if is_push(&p) { "Push" } else { "Pull" }) " from " strong { (side(&p, "src_registry")) }
            " to " strong { (side(&p, "dest_registry")) } " · Updated " (when(&text(&p, "update_time"))) }
        @if writes {
            (button_form(&visit, &format!("{here}/start"), "", "Replicate", Some(&format!("Replicate {name}")), None))
            " "
            (button_form(&visit, &format!("{here}/delete"), "danger", "Delete", Some(&format!("Delete {name}")), Some(&format!("Delete the replication rule {name}?"))))
        }
        h2 { "Executions" }
        div.table-wrap { table #replication-runs {
            thead { tr {
                th scope="col" { "Id" } th scope="col" { "Status" } th scope="col" { "Trigger" }
                th scope="col" { "Started" } th scope="col" { "Ended" } th scope="col" { "Total" }
                th scope="col" { "Succeeded" } th scope="col" { "Failed" } th scope="col" { "Stopped" }
            } }
            tbody { @for x in items(&runs) {
                @let eid = int(x, "id");
                tr {
                    td { a href=(format!("{here}/executions/{eid}")) aria-label=(format!("Execution {eid}")) { (eid) } }
                    td { (text(x, "status")) }
                    td { (trigger_label(&text(x, "trigger"))) }
                    td { (when(&text(x, "start_time"))) } td { (when(&text(x, "end_time"))) }
                    td { (int(x, "total")) } td { (int(x, "succeed")) } td { (int(x, "failed")) } td { (int(x, "stopped")) }
                }
            } }
        } }
        @if items(&runs).is_empty() { p.muted { "No executions yet." } }
        (pager(&visit, &here, total, next.as_deref()))
        @if writes {
            form.panel method="post" action=(here) {
                h2 { "Settings" }
                (csrf(&visit))
                (rule_fields(&p, &endpoints))
                p { button type="submit" { "Save replication rule" } }
            }
        }
    };
    admin_page(&visit, &viewer, &format!("Replication rule {name}"), body)
}

async fn save(visit: Visit, Path(id): Path<i64>, body: Bytes) -> Response {
    let here = format!("{REPLICATIONS}/{id}");
    let policy = match policy_of(&form(&body)) {
        Ok(p) => p,
        Err(m) => return back(&here, Err(&m)),
    };
    let answer = visit.api(Method::PUT, &format!("/replication/policies/{id}"), Some(&policy)).await;
    after(&visit, &here, &answer, "The replication rule was saved.")
}

async fn delete(visit: Visit, Path(id): Path<i64>) -> Response {
    let answer = visit.api(Method::DELETE, &format!("/replication/policies/{id}"), None).await;
    after(&visit, REPLICATIONS, &answer, "The replication rule was deleted.")
}

async fn start(visit: Visit, Path(id): Path<i64>) -> Response {
    let answer = visit.api(Method::POST, "/replication/executions", Some(&json!({"policy_id": id}))).await;
    after(&visit, &format!("{REPLICATIONS}/{id}"), &answer, "The replication was started.")
}

// ------------------------------------------------------------ a run

/// A run of rule `id`, or the page that says it is not one.
async fn run_of(visit: &Visit, id: i64, eid: i64) -> Result<Value, Response> {
    let x = visit.get(format!("/replication/executions/{eid}")).await.into_body(visit).map_err(|r| *r)?;
    if int(&x, "policy_id") != id {
        return Err(super::layout::error_page(visit, visit.seen.get(), StatusCode::NOT_FOUND, "No such execution."));
    }
    Ok(x)
}

/// A run: its counts, its tasks (source, destination, operation,
/// status) with their logs, and stop while it runs.
async fn execution(visit: Visit, Path((id, eid)): Path<(i64, i64)>) -> Response {
    let viewer = match visit.viewer().await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let x = match run_of(&visit, id, eid).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let answer = visit.get(format!("/replication/executions/{eid}/tasks?{}", visit.paging())).await;
    let (total, next) = (answer.total.unwrap_or(0), answer.next.clone());
    let tasks = match answer.into_body(&visit) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let here = format!("{REPLICATIONS}/{id}/executions/{eid}");
    let status = text(&x, "status");
    let body = html! {
        p { a href=(format!("{REPLICATIONS}/{id}")) { "Back to the rule" } }
        dl #replication-run {
            dt { "Status" } dd { (status) }
            @if !text(&x, "status_text").is_empty() { dt { "Message" } dd { (text(&x, "status_text")) } }
            dt { "Trigger" } dd { (trigger_label(&text(&x, "trigger"))) }
            dt { "Started" } dd { (when(&text(&x, "start_time"))) }
            dt { "Ended" } dd { (when(&text(&x, "end_time"))) }
            dt { "Tasks" } dd { (int(&x, "total")) " in all, " (int(&x, "succeed")) " succeeded, "
                (int(&x, "failed")) " failed, " (int(&x, "in_progress")) " in progress, " (int(&x, "stopped")) " stopped" }
        }
        @if !viewer.read_only && status == "InProgress" {
            (button_form(&visit, &format!("{here}/stop"), "danger", "Stop", None, Some("Stop this replication?")))
        }
        h2 { "Tasks" }
        div.table-wrap { table #replication-tasks {
            thead { tr {
                th scope="col" { "Id" } th scope="col" { "Resource type" } th scope="col" { "Source" }
                th scope="col" { "Destination" } th scope="col" { "Operation" } th scope="col" { "Status" }
                th scope="col" { "Started" } th scope="col" { "Ended" } th scope="col" { "Log" }
            } }
            tbody { @for t in items(&tasks) {
                @let tid = int(t, "id");
                tr {
                    td { (tid) } td { (text(t, "resource_type")) }
                    td.mono { (text(t, "src_resource")) } td.mono { (text(t, "dst_resource")) }
                    td { (text(t, "operation")) } td { (text(t, "status")) }
                    td { (when(&text(t, "start_time"))) } td { (when(&text(t, "end_time"))) }
                    td { a href=(format!("{here}/tasks/{tid}/log")) aria-label=(format!("Log of task {tid}")) { "Log" } }
                }
            } }
        } }
        @if items(&tasks).is_empty() { p.muted { "No tasks." } }
        (pager(&visit, &here, total, next.as_deref()))
    };
    admin_page(&visit, &viewer, &format!("Replication execution {eid}"), body)
}

async fn stop(visit: Visit, Path((id, eid)): Path<(i64, i64)>) -> Response {
    let here = format!("{REPLICATIONS}/{id}/executions/{eid}");
    let answer = visit.api(Method::PUT, &format!("/replication/executions/{eid}"), None).await;
    after(&visit, &here, &answer, "The replication is stopping.")
}

async fn task_log(visit: Visit, Path((id, eid, tid)): Path<(i64, i64, i64)>) -> Response {
    let viewer = match visit.viewer().await {
        Ok(v) => v,
        Err(r) => return r,
    };
    if let Err(r) = run_of(&visit, id, eid).await {
        return r;
    }
    let answer = visit.get(format!("/replication/executions/{eid}/tasks/{tid}/log")).await;
    let log = match answer.into_body(&visit) {
        Ok(Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(r) => return *r,
    };
    let body = html! {
        p { a href=(format!("{REPLICATIONS}/{id}/executions/{eid}")) { "Back to the execution" } }
        pre.panel #task-log { (log) }
        @if log.trim().is_empty() { p.muted { "The log is empty." } }
    };
    admin_page(&visit, &viewer, &format!("Log of replication task {tid}"), body)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn a_form_is_a_policy() {
        let push = policy_of(&fields(&[
            ("name", "copy"),
            ("mode", "push"),
            ("registry", "3"),
            ("replace_count", "1"),
            ("name_filter", "a/**"),
            ("tag_filter", "v*"),
            ("tag_decoration", "excludes"),
            ("resource", ""),
            ("trigger", "manual"),
            ("cron", "0 0 1 * * *"),
            ("speed", ""),
            ("enabled", "on"),
        ]))
        .unwrap();
        assert_eq!(push["src_registry"], Value::Null);
        assert_eq!(push["dest_registry"]["id"], 3);
        assert_eq!(push["dest_namespace_replace_count"], 1);
        assert_eq!(push["speed"], -1);
        assert_eq!(push["trigger"]["trigger_settings"]["cron"], "", "a cron only for a scheduled rule");
        assert_eq!(
            push["filters"],
            json!([
                {"type": "name", "value": "a/**", "decoration": "matches"},
                {"type": "tag", "value": "v*", "decoration": "excludes"},
            ])
        );
        assert_eq!((push["enabled"].clone(), push["override"].clone()), (json!(true), json!(false)));
        let pull = policy_of(&fields(&[
            ("mode", "pull"),
            ("registry", "4"),
            ("replace_count", "-1"),
            ("resource", "image"),
            ("trigger", "scheduled"),
            ("cron", "0 0 1 * * *"),
            ("speed", "512"),
        ]))
        .unwrap();
        assert_eq!(pull["src_registry"]["id"], 4);
        assert_eq!(pull["dest_registry"], Value::Null);
        assert_eq!(pull["filters"], json!([{"type": "resource", "value": "image"}]));
        assert_eq!(pull["trigger"]["trigger_settings"]["cron"], "0 0 1 * * *");
        assert_eq!(pull["speed"], 512);
        assert!(policy_of(&fields(&[("registry", ""), ("replace_count", "0")])).is_err());
        assert!(policy_of(&fields(&[("registry", "1"), ("replace_count", "0"), ("speed", "fast")])).is_err());
        assert!(is_push(&push) && !is_push(&json!({"src_registry": {"id": 4}})));
    }
}

//! A project's policies: labels, tag immutability and retention
//! (Harbor's "tag strategy" tab) and webhooks.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::Method;
use axum::response::Response;
use axum::routing::{get, post};
use maud::{Markup, html};
use serde_json::{Value, json};

use super::layout::{button_form, csrf, pager};
use super::projects::Frame;
use super::{Visit, after, checked, field, form, int, items, text, when};
use crate::http::state::AppState;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/harbor/projects/{id}/labels", get(labels).post(create_label))
        .route("/harbor/projects/{id}/labels/{lid}/delete", post(delete_label))
        .route("/harbor/projects/{id}/tag-strategy", get(tag_strategy))
        .route("/harbor/projects/{id}/tag-strategy/immutability", post(create_rule))
        .route("/harbor/projects/{id}/tag-strategy/immutability/{rid}/delete", post(delete_rule))
        .route("/harbor/projects/{id}/webhook", get(webhooks).post(create_webhook))
        .route("/harbor/projects/{id}/webhook/{wid}/delete", post(delete_webhook))
        .route("/harbor/projects/{id}/webhook/{wid}", get(webhook).post(save_webhook))
        .route("/harbor/projects/{id}/webhook/{wid}/enabled", post(enable_webhook))
        .route("/harbor/projects/{id}/webhook/{wid}/executions/{eid}", get(webhook_tasks))
        .route("/harbor/projects/{id}/webhook/{wid}/executions/{eid}/tasks/{tid}", get(webhook_log))
}

/// A delete button in its own form.
fn delete_form(visit: &Visit, action: &str, what: &str) -> Markup {
    html! {
        (button_form(visit, action, "danger", "Delete", Some(&format!("Delete {what}")), Some(&format!("Delete {what}?"))))
    }
}

// ------------------------------------------------------------ labels

async fn labels(visit: Visit, Path(id): Path<i64>) -> Response {
    let frame = match Frame::load(&visit, id).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let answer = visit.get(format!("/labels?scope=p&project_id={id}&{}", visit.paging())).await;
    let (total, next) = (answer.total.unwrap_or(0), answer.next.clone());
    let list = match answer.into_body(&visit) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let (may_create, may_delete) = (frame.perms.can("label", "create"), frame.perms.can("label", "delete"));
    let here = format!("/harbor/projects/{id}/labels");
    let body = html! {
        h2 { "Labels" }
        div.table-wrap { table #labels {
            thead { tr { th scope="col" { "Name" } th scope="col" { "Colour" } th scope="col" { "Description" }
                th.wide-only scope="col" { "Created" } @if may_delete { th scope="col" { "Actions" } } } }
            tbody { @for l in items(&list) {
                @let name = text(l, "name");
                tr {
                    td { span.badge { (name) } } td.mono { (text(l, "color")) } td { (text(l, "description")) }
                    td.wide-only { (when(&text(l, "creation_time"))) }
                    @if may_delete { td { (delete_form(&visit, &format!("{here}/{}/delete", int(l, "id")), &format!("the label {name}"))) } }
                }
            } }
        } }
        @if items(&list).is_empty() { p.muted { "No labels." } }
        (pager(&visit, &here, total, next.as_deref()))
        @if may_create {
            form.panel method="post" action=(here) {
                h2 { "New label" }
                (csrf(&visit))
                label for="label_name" { "Name" } input #label_name type="text" name="name" required maxlength="128";
                label for="label_color" { "Colour" } input #label_color type="color" name="color" value="#0065ab";
                label for="label_description" { "Description" } input #label_description type="text" name="description";
                p { button type="submit" { "Create label" } }
            }
        }
    };
    frame.render(&visit, "labels", "Labels", body)
}

async fn create_label(visit: Visit, Path(id): Path<i64>, body: Bytes) -> Response {
    let fields = form(&body);
    let body = json!({
        "name": field(&fields, "name"),
        "color": field(&fields, "color"),
        "description": field(&fields, "description"),
        "scope": "p",
        "project_id": id,
    });
    let answer = visit.api(Method::POST, "/labels", Some(&body)).await;
    after(&visit, &format!("/harbor/projects/{id}/labels"), &answer, "The label was created.")
}

async fn delete_label(visit: Visit, Path((id, lid)): Path<(i64, i64)>) -> Response {
    let answer = visit.api(Method::DELETE, &format!("/labels/{lid}"), None).await;
    after(&visit, &format!("/harbor/projects/{id}/labels"), &answer, "The label was deleted.")
}

// ------------------------------------------------------------ tag strategy

/// The repository and tag patterns of a rule, as shown.
fn selectors(rule: &Value) -> Markup {
    let first = |v: Option<&Value>| v.map(items).and_then(|s| s.first()).cloned().unwrap_or(Value::Null);
    let repo = first(rule.pointer("/scope_selectors/repository"));
    let tag = first(rule.get("tag_selectors"));
    html! {
        "repositories " (text(&repo, "decoration")) " " code { (text(&repo, "pattern")) }
        ", tags " (text(&tag, "decoration")) " " code { (text(&tag, "pattern")) }
    }
}

async fn tag_strategy(visit: Visit, Path(id): Path<i64>) -> Response {
    let frame = match Frame::load(&visit, id).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let can_immutable = frame.perms.can("immutable-tag", "list");
    let (retention, rules) = tokio::join!(super::retention::section(&visit, &frame), async {
        if can_immutable {
            Some(visit.get(format!("/projects/{id}/immutabletagrules?page_size=100")).await)
        } else {
            None
        }
    });
    let (may_create, may_delete) =
        (frame.perms.can("immutable-tag", "create"), frame.perms.can("immutable-tag", "delete"));
    let here = format!("/harbor/projects/{id}/tag-strategy");
    let body = html! {
        (retention)
        @if let Some(rules) = &rules {
            h2 { "Tag immutability" }
            div.table-wrap { table #immutability {
                thead { tr { th scope="col" { "Rule" } th scope="col" { "Enabled" } @if may_delete { th scope="col" { "Actions" } } } }
                tbody { @for r in items(&rules.body) { tr {
                    td { (selectors(r)) }
                    td { @if r.get("disabled").and_then(Value::as_bool).unwrap_or(false) { "No" } @else { "Yes" } }
                    @if may_delete { td { (delete_form(&visit, &format!("{here}/immutability/{}/delete", int(r, "id")), "this immutability rule")) } }
                } } }
            } }
            @if items(&rules.body).is_empty() { p.muted { "No immutability rules." } }
            @if may_create {
                form.panel method="post" action=(format!("{here}/immutability")) {
                    h2 { "New immutability rule" }
                    (csrf(&visit))
                    label for="repo_pattern" { "Repositories matching (** for all)" }
                    input #repo_pattern type="text" name="repositories" value="**" required;
                    label for="tag_pattern" { "Tags matching" }
                    input #tag_pattern type="text" name="tags" value="**" required;
                    p { button type="submit" { "Add rule" } }
                }
            }
        }
    };
    frame.render(&visit, "tag-strategy", "Policy", body)
}

async fn create_rule(visit: Visit, Path(id): Path<i64>, body: Bytes) -> Response {
    let fields = form(&body);
    let body = json!({
        "disabled": false,
        "action": "immutable",
        "template": "immutable_template",
        "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": field(&fields, "tags")}],
        "scope_selectors": {"repository": [
            {"kind": "doublestar", "decoration": "repoMatches", "pattern": field(&fields, "repositories")}
        ]},
    });
    let answer = visit.api(Method::POST, &format!("/projects/{id}/immutabletagrules"), Some(&body)).await;
    after(&visit, &format!("/harbor/projects/{id}/tag-strategy"), &answer, "The rule was added.")
}

async fn delete_rule(visit: Visit, Path((id, rid)): Path<(i64, i64)>) -> Response {
    let answer = visit.api(Method::DELETE, &format!("/projects/{id}/immutabletagrules/{rid}"), None).await;
    after(&visit, &format!("/harbor/projects/{id}/tag-strategy"), &answer, "The rule was deleted.")
}

// ------------------------------------------------------------ webhooks

async fn webhooks(visit: Visit, Path(id): Path<i64>) -> Response {
    let frame = match Frame::load(&visit, id).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let (answer, events, last) = tokio::join!(
        visit.get(format!("/projects/{id}/webhook/policies?{}", visit.paging())),
        visit.get(format!("/projects/{id}/webhook/events")),
        visit.get(format!("/projects/{id}/webhook/lasttrigger"))
    );
    let (total, next) = (answer.total.unwrap_or(0), answer.next.clone());
    let list = match answer.into_body(&visit) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let event_types: Vec<String> = events
        .body
        .get("event_type")
        .map(items)
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    let last_of = |name: &str| {
        items(&last.body)
            .iter()
            .filter(|t| text(t, "policy_name") == name)
            .map(|t| text(t, "last_trigger_time"))
            .max()
            .unwrap_or_default()
    };
    let (may_create, may_delete) =
        (frame.perms.can("notification-policy", "create"), frame.perms.can("notification-policy", "delete"));
    let here = format!("/harbor/projects/{id}/webhook");
    let body = html! {
        h2 { "Webhooks" }
        div.table-wrap { table #webhooks {
            thead { tr { th scope="col" { "Name" } th scope="col" { "Endpoint" } th scope="col" { "Events" }
                th scope="col" { "Enabled" } th.wide-only scope="col" { "Last triggered" }
                @if may_delete { th scope="col" { "Actions" } } } }
            tbody { @for w in items(&list) {
                @let name = text(w, "name");
                tr {
                    td { a href=(format!("{here}/{}", int(w, "id"))) { (name) } }
                    td.mono { @for t in w.get("targets").map(items).unwrap_or_default() { (text(t, "address")) " " } }
                    td { @for e in w.get("event_types").map(items).unwrap_or_default() { span.badge { (e.as_str().unwrap_or_default()) } } }
                    td { @if w.get("enabled").and_then(Value::as_bool).unwrap_or(false) { "Yes" } @else { "No" } }
                    td.wide-only { (when(&last_of(&name))) }
                    @if may_delete { td { (delete_form(&visit, &format!("{here}/{}/delete", int(w, "id")), &format!("the webhook {name}"))) } }
                }
            } }
        } }
        @if items(&list).is_empty() { p.muted { "No webhooks." } }
        (pager(&visit, &here, total, next.as_deref()))
        @if may_create {
            form.panel method="post" action=(here) {
                h2 { "New webhook" }
                (csrf(&visit))
                (hook_fields(None, &event_types))
                p { button type="submit" { "Create webhook" } }
            }
        }
    };
    frame.render(&visit, "webhook", "Webhooks", body)
}

/// The fields of a webhook policy (a new one, or `hook` being edited).
fn hook_fields(hook: Option<&Value>, event_types: &[String]) -> Markup {
    let target = hook.and_then(|h| h.get("targets")).map(items).and_then(|t| t.first()).cloned().unwrap_or(Value::Null);
    let chosen: Vec<String> = hook
        .and_then(|h| h.get("event_types"))
        .map(items)
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    let kind = text(&target, "type");
    let format = text(&target, "payload_format");
    html! {
        label for="hook_name" { "Name" }
        input #hook_name type="text" name="name" required value=(hook.map(|h| text(h, "name")).unwrap_or_default());
        label for="hook_description" { "Description" }
        input #hook_description type="text" name="description" value=(hook.map(|h| text(h, "description")).unwrap_or_default());
        label for="hook_type" { "Notify type" }
        select #hook_type name="type" {
            option value="http" selected[kind != "slack"] { "HTTP" }
            option value="slack" selected[kind == "slack"] { "Slack" }
        }
        label for="hook_format" { "Payload format (HTTP)" }
        select #hook_format name="payload_format" {
            option value="Default" selected[format != "CloudEvents"] { "Default" }
            option value="CloudEvents" selected[format == "CloudEvents"] { "CloudEvents" }
        }
        label for="hook_address" { "Endpoint URL" }
        input #hook_address type="text" name="address" required placeholder="https://…" value=(text(&target, "address"));
        label for="hook_auth" { "Auth header (optional)" }
        input #hook_auth type="text" name="auth_header" value=(text(&target, "auth_header"));
        label.check { input type="checkbox" name="skip_cert_verify"
            checked[target.get("skip_cert_verify").and_then(Value::as_bool).unwrap_or(false)]; "Skip certificate verification" }
        @if let Some(h) = hook {
            label.check { input type="checkbox" name="enabled"
                checked[h.get("enabled").and_then(Value::as_bool).unwrap_or(false)]; "Enabled" }
        }
        fieldset {
            legend { "Events" }
            @for e in event_types {
                label.check { input type="checkbox" name="event" value=(e) checked[hook.is_none() || chosen.contains(e)]; (e) }
            }
        }
    }
}

/// A webhook policy from the form's fields.
fn hook_of(fields: &[(String, String)], enabled: bool) -> Value {
    let events: Vec<&str> = fields.iter().filter(|(k, _)| k == "event").map(|(_, v)| v.as_str()).collect();
    let kind = if field(fields, "type") == "slack" { "slack" } else { "http" };
    let format =
        if kind == "http" && field(fields, "payload_format") == "CloudEvents" { "CloudEvents" } else { "Default" };
    json!({
        "name": field(fields, "name"),
        "description": field(fields, "description"),
        "enabled": enabled,
        "event_types": events,
        "targets": [{
            "type": kind,
            "address": field(fields, "address"),
            "auth_header": field(fields, "auth_header"),
            "skip_cert_verify": checked(fields, "skip_cert_verify"),
            "payload_format": format,
        }],
    })
}

async fn create_webhook(visit: Visit, Path(id): Path<i64>, body: Bytes) -> Response {
    let body = hook_of(&form(&body), true);
    let answer = visit.api(Method::POST, &format!("/projects/{id}/webhook/policies"), Some(&body)).await;
    after(&visit, &format!("/harbor/projects/{id}/webhook"), &answer, "The webhook was created.")
}

async fn delete_webhook(visit: Visit, Path((id, wid)): Path<(i64, i64)>) -> Response {
    let answer = visit.api(Method::DELETE, &format!("/projects/{id}/webhook/policies/{wid}"), None).await;
    after(&visit, &format!("/harbor/projects/{id}/webhook"), &answer, "The webhook was deleted.")
}

/// One webhook: its settings (editable), and its history of deliveries.
async fn webhook(visit: Visit, Path((id, wid)): Path<(i64, i64)>) -> Response {
    let frame = match Frame::load(&visit, id).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let (hook, events, runs) = tokio::join!(
        visit.get(format!("/projects/{id}/webhook/policies/{wid}")),
        visit.get(format!("/projects/{id}/webhook/events")),
        visit.get(format!("/projects/{id}/webhook/policies/{wid}/executions?{}", visit.paging()))
    );
    let hook = match hook.into_body(&visit) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let event_types: Vec<String> = events
        .body
        .get("event_type")
        .map(items)
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    let may_update = frame.perms.can("notification-policy", "update");
    let here = format!("/harbor/projects/{id}/webhook/{wid}");
    let enabled = hook.get("enabled").and_then(Value::as_bool).unwrap_or(false);
    let body = html! {
        p { a href=(format!("/harbor/projects/{id}/webhook")) { "Back to the webhooks" } }
        h2 { "Webhook " (text(&hook, "name")) }
        p { "Enabled: " strong { @if enabled { "Yes" } @else { "No" } } }
        @if may_update {
            form.inline method="post" action=(format!("{here}/enabled")) {
                (csrf(&visit))
                input type="hidden" name="enabled" value=(if enabled { "false" } else { "true" });
                button.secondary type="submit" { @if enabled { "Disable webhook" } @else { "Enable webhook" } }
            }
            form.panel method="post" action=(here) {
                h3 { "Settings" }
                (csrf(&visit))
                (hook_fields(Some(&hook), &event_types))
                p { button type="submit" { "Save webhook" } }
            }
        }
        h3 { "Deliveries" }
        div.table-wrap { table #webhook-runs {
            thead { tr { th scope="col" { "Id" } th scope="col" { "Event" } th scope="col" { "Status" }
                th scope="col" { "Started" } th scope="col" { "Ended" } } }
            tbody { @for x in items(&runs.body) { tr {
                td { a href=(format!("{here}/executions/{}", int(x, "id"))) aria-label=(format!("Delivery {}", int(x, "id"))) { (int(x, "id")) } }
                td { (x.pointer("/extra_attrs/event_type").and_then(Value::as_str).unwrap_or_default()) }
                td { (text(x, "status")) }
                td { (when(&text(x, "start_time"))) } td { (when(&text(x, "end_time"))) }
            } } }
        } }
        @if items(&runs.body).is_empty() { p.muted { "Nothing delivered yet." } }
        (pager(&visit, &here, runs.total.unwrap_or(0), runs.next.as_deref()))
    };
    frame.render(&visit, "webhook", "Webhook", body)
}

async fn save_webhook(visit: Visit, Path((id, wid)): Path<(i64, i64)>, body: Bytes) -> Response {
    let fields = form(&body);
    let body = hook_of(&fields, checked(&fields, "enabled"));
    let answer = visit.api(Method::PUT, &format!("/projects/{id}/webhook/policies/{wid}"), Some(&body)).await;
    after(&visit, &format!("/harbor/projects/{id}/webhook/{wid}"), &answer, "The webhook was saved.")
}

/// Turns a webhook on or off, keeping the rest of it.
async fn enable_webhook(visit: Visit, Path((id, wid)): Path<(i64, i64)>, body: Bytes) -> Response {
    let here = format!("/harbor/projects/{id}/webhook/{wid}");
    let current = visit.get(format!("/projects/{id}/webhook/policies/{wid}")).await;
    if !current.ok() {
        return after(&visit, &here, &current, "");
    }
    let mut hook = current.body;
    let on = field(&form(&body), "enabled") == "true";
    hook["enabled"] = Value::Bool(on);
    let answer = visit.api(Method::PUT, &format!("/projects/{id}/webhook/policies/{wid}"), Some(&hook)).await;
    after(&visit, &here, &answer, if on { "The webhook was enabled." } else { "The webhook was disabled." })
}

/// One delivery: its tasks (one per target), each with its log.
async fn webhook_tasks(visit: Visit, Path((id, wid, eid)): Path<(i64, i64, i64)>) -> Response {
    let frame = match Frame::load(&visit, id).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let answer = visit.get(format!("/projects/{id}/webhook/policies/{wid}/executions/{eid}/tasks")).await;
    let list = match answer.into_body(&visit) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let here = format!("/harbor/projects/{id}/webhook/{wid}/executions/{eid}");
    let body = html! {
        p { a href=(format!("/harbor/projects/{id}/webhook/{wid}")) { "Back to the webhook" } }
        h2 { "Delivery " (eid) }
        div.table-wrap { table #webhook-tasks {
            thead { tr { th scope="col" { "Task" } th scope="col" { "Status" } th scope="col" { "Message" }
                th scope="col" { "Attempts" } th scope="col" { "Ended" } th scope="col" { "Log" } } }
            tbody { @for t in items(&list) { tr {
                td { (int(t, "id")) } td { (text(t, "status")) } td { (text(t, "status_message")) }
                td { (int(t, "run_count")) } td { (when(&text(t, "end_time"))) }
                td { a href=(format!("{here}/tasks/{}", int(t, "id"))) aria-label=(format!("Log of task {}", int(t, "id"))) { "Log" } }
            } } }
        } }
    };
    frame.render(&visit, "webhook", &format!("Delivery {eid}"), body)
}

async fn webhook_log(visit: Visit, Path((id, wid, eid, tid)): Path<(i64, i64, i64, i64)>) -> Response {
    let frame = match Frame::load(&visit, id).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let answer = visit.get(format!("/projects/{id}/webhook/policies/{wid}/executions/{eid}/tasks/{tid}/log")).await;
    let log = match answer.into_body(&visit) {
        Ok(Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(r) => return *r,
    };
    let body = html! {
        p { a href=(format!("/harbor/projects/{id}/webhook/{wid}/executions/{eid}")) { "Back to delivery " (eid) } }
        h2 { "Delivery " (eid) ": task " (tid) }
        pre.panel #task-log { (log) }
    };
    frame.render(&visit, "webhook", &format!("Delivery task {tid}"), body)
}

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

use super::layout::{csrf, pager};
use super::projects::Frame;
use super::{Visit, after, checked, field, form, int, items, seg, text, when};
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
}

/// A delete button in its own form.
fn delete_form(visit: &Visit, action: &str, what: &str) -> Markup {
    html! {
        form.inline method="post" action=(action) data-confirm=(format!("Delete {what}?")) {
            (csrf(visit))
            button.danger type="submit" aria-label=(format!("Delete {what}")) { "Delete" }
        }
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
    let retention_id = frame.project.pointer("/metadata/retention_id").and_then(Value::as_str).unwrap_or_default();
    let can_retention = frame.perms.can("tag-retention", "read") && !retention_id.is_empty();
    let can_immutable = frame.perms.can("immutable-tag", "list");
    let (retention, rules) = tokio::join!(
        async {
            if can_retention { Some(visit.get(format!("/retentions/{}", seg(retention_id))).await) } else { None }
        },
        async {
            if can_immutable {
                Some(visit.get(format!("/projects/{id}/immutabletagrules?page_size=100")).await)
            } else {
                None
            }
        }
    );
    let (may_create, may_delete) =
        (frame.perms.can("immutable-tag", "create"), frame.perms.can("immutable-tag", "delete"));
    let here = format!("/harbor/projects/{id}/tag-strategy");
    let body = html! {
        h2 { "Tag retention" }
        @match retention.as_ref().filter(|r| r.ok()) {
            Some(r) => {
                p { "Schedule: " (r.body.pointer("/trigger/settings/cron").and_then(Value::as_str).filter(|c| !c.is_empty()).unwrap_or("none")) }
                ul { @for rule in r.body.get("rules").map(items).unwrap_or_default() {
                    li { (text(rule, "template")) " " (rule.get("params").map(Value::to_string).unwrap_or_default())
                        ": " (selectors(rule)) @if rule.get("disabled").and_then(Value::as_bool).unwrap_or(false) { " (disabled)" } }
                } }
                @if r.body.get("rules").map(items).unwrap_or_default().is_empty() { p.muted { "No retention rules." } }
            }
            None => { p.muted { "No retention policy." } }
        }
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
    let (answer, events) = tokio::join!(
        visit.get(format!("/projects/{id}/webhook/policies?{}", visit.paging())),
        visit.get(format!("/projects/{id}/webhook/events"))
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
    let (may_create, may_delete) =
        (frame.perms.can("notification-policy", "create"), frame.perms.can("notification-policy", "delete"));
    let here = format!("/harbor/projects/{id}/webhook");
    let body = html! {
        h2 { "Webhooks" }
        div.table-wrap { table #webhooks {
            thead { tr { th scope="col" { "Name" } th scope="col" { "Endpoint" } th scope="col" { "Events" }
                th scope="col" { "Enabled" } @if may_delete { th scope="col" { "Actions" } } } }
            tbody { @for w in items(&list) {
                @let name = text(w, "name");
                tr {
                    td { (name) }
                    td.mono { @for t in w.get("targets").map(items).unwrap_or_default() { (text(t, "address")) " " } }
                    td { @for e in w.get("event_types").map(items).unwrap_or_default() { span.badge { (e.as_str().unwrap_or_default()) } } }
                    td { @if w.get("enabled").and_then(Value::as_bool).unwrap_or(false) { "Yes" } @else { "No" } }
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
                label for="hook_name" { "Name" } input #hook_name type="text" name="name" required;
                label for="hook_address" { "Endpoint URL" } input #hook_address type="text" name="address" required placeholder="https://…";
                label for="hook_auth" { "Auth header (optional)" } input #hook_auth type="text" name="auth_header";
                label.check { input type="checkbox" name="skip_cert_verify"; "Skip certificate verification" }
                fieldset {
                    legend { "Events" }
                    @for e in &event_types {
                        label.check { input type="checkbox" name="event" value=(e) checked; (e) }
                    }
                }
                p { button type="submit" { "Create webhook" } }
            }
        }
    };
    frame.render(&visit, "webhook", "Webhooks", body)
}

async fn create_webhook(visit: Visit, Path(id): Path<i64>, body: Bytes) -> Response {
    let fields = form(&body);
    let events: Vec<&str> = fields.iter().filter(|(k, _)| k == "event").map(|(_, v)| v.as_str()).collect();
    let body = json!({
        "name": field(&fields, "name"),
        "enabled": true,
        "event_types": events,
        "targets": [{
            "type": "http",
            "address": field(&fields, "address"),
            "auth_header": field(&fields, "auth_header"),
            "skip_cert_verify": checked(&fields, "skip_cert_verify"),
            "payload_format": "Default",
        }],
    });
    let answer = visit.api(Method::POST, &format!("/projects/{id}/webhook/policies"), Some(&body)).await;
    after(&visit, &format!("/harbor/projects/{id}/webhook"), &answer, "The webhook was created.")
}

async fn delete_webhook(visit: Visit, Path((id, wid)): Path<(i64, i64)>) -> Response {
    let answer = visit.api(Method::DELETE, &format!("/projects/{id}/webhook/policies/{wid}"), None).await;
    after(&visit, &format!("/harbor/projects/{id}/webhook"), &answer, "The webhook was deleted.")
}

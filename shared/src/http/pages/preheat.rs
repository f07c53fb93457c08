//! P2P preheat: the provider instances (administration,
//! `/p2p/preheat/instances`: create, edit, test, delete) and a project's
//! preheat policies (the "P2P Preheat" tab, `/projects/{p}/preheat/…`:
//! create, edit, delete, run now, the runs, their tasks and logs, stop).
//!
//! Harbor keeps a policy's filters and trigger as JSON text; the forms
//! here have a field per filter and build that text, and read it back
//! when editing.

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
use super::projects::Frame;
use super::{Viewer, Visit, after, back, checked, field, form, html, int, items, seg, text, when};
use crate::http::state::AppState;

const INSTANCES: &str = "/harbor/distribution/instances";

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(INSTANCES, get(instances).post(create_instance))
        .route("/harbor/distribution/instances/{name}", get(instance).post(save_instance))
        .route("/harbor/distribution/instances/{name}/delete", post(delete_instance))
        .route("/harbor/distribution/instances/{name}/ping", post(ping_instance))
        .route("/harbor/projects/{id}/p2p-provider", get(policies).post(create_policy))
        .route("/harbor/projects/{id}/p2p-provider/{policy}", get(policy).post(save_policy))
        .route("/harbor/projects/{id}/p2p-provider/{policy}/delete", post(delete_policy))
        .route("/harbor/projects/{id}/p2p-provider/{policy}/execute", post(execute))
        .route("/harbor/projects/{id}/p2p-provider/{policy}/executions/{eid}", get(execution))
        .route("/harbor/projects/{id}/p2p-provider/{policy}/executions/{eid}/stop", post(stop))
        .route("/harbor/projects/{id}/p2p-provider/{policy}/executions/{eid}/tasks/{tid}", get(task_log))
}

fn flag(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn admin_page(visit: &Visit, viewer: &Viewer, title: &str, content: Markup) -> Response {
    let body = html! {
        p.crumbs { "Administration" " / " a href=(INSTANCES) { "Distributions" } }
        h1 { (title) }
        (content)
    };
    html(StatusCode::OK, page(visit, Some(viewer), title, body))
}

// ------------------------------------------------------------ instances

const AUTH_MODES: [(&str, &str); 3] = [("NONE", "None"), ("BASIC", "Basic"), ("OAUTH", "OAuth (token)")];

/// The fields of an instance (a new one when `i` is null); `providers`
/// are the API's provider descriptions.
fn instance_fields(i: &Value, providers: &Value) -> Markup {
    let new = i.is_null();
    let vendor = text(i, "vendor");
    let mode = match text(i, "auth_mode") {
        m if m.is_empty() => "NONE".to_owned(),
        m => m,
    };
    let info = |k: &str| i.pointer(&format!("/auth_info/{k}")).and_then(Value::as_str).unwrap_or_default().to_owned();
    html! {
        @if new {
            label for="inst_vendor" { "Provider" }
            select #inst_vendor name="vendor" {
                @for p in items(providers) {
                    option value=(text(p, "id")) selected[text(p, "id") == vendor] { (text(p, "name")) " " (text(p, "version")) }
                }
            }
            label for="inst_name" { "Name" }
            input #inst_name type="text" name="name" required maxlength="255";
        } @else {
            input type="hidden" name="vendor" value=(vendor);
            input type="hidden" name="name" value=(text(i, "name"));
        }
        label for="inst_description" { "Description" }
        input #inst_description type="text" name="description" value=(text(i, "description"));
        label for="inst_endpoint" { "Endpoint" }
        input #inst_endpoint type="text" name="endpoint" required placeholder="https://…" value=(text(i, "endpoint"));
        label for="inst_auth" { "Authentication" }
        select #inst_auth name="auth_mode" {
            @for (k, l) in AUTH_MODES { option value=(k) selected[k == mode] { (l) } }
        }
        label for="inst_username" { "User name (Basic)" }
        input #inst_username type="text" name="username" autocomplete="off" value=(info("username"));
        label for="inst_password" { @if new { "Password (Basic)" } @else { "Password (Basic; empty: unchanged)" } }
        input #inst_password type="password" name="password" autocomplete="new-password";
        label for="inst_token" { @if new { "Token (OAuth)" } @else { "Token (OAuth; empty: unchanged)" } }
        input #inst_token type="password" name="token" autocomplete="new-password";
        label.check { input type="checkbox" name="enabled" checked[new || flag(i, "enabled")]; "Enabled" }
        label.check { input type="checkbox" name="default" checked[flag(i, "default")]; "Default" }
        label.check { input type="checkbox" name="insecure" checked[flag(i, "insecure")]; "Do not verify the certificate" }
    }
}

/// The API's instance from a posted form. An empty secret on an edit is
/// sent masked, which keeps the stored one.
fn instance_of(f: &[(String, String)], editing: bool) -> Value {
    let mode = field(f, "auth_mode");
    let secret = |k: &str| match field(f, k) {
        "" if editing => crate::service::preheat::MASK.to_owned(),
        v => v.to_owned(),
    };
    let auth_info = match mode {
        "BASIC" => json!({"username": field(f, "username"), "password": secret("password")}),
        "OAUTH" => json!({"token": secret("token")}),
        _ => json!({}),
    };
    json!({
        "name": field(f, "name"),
        "vendor": field(f, "vendor"),
        "description": field(f, "description"),
        "endpoint": field(f, "endpoint"),
        "auth_mode": mode,
        "auth_info": auth_info,
        "enabled": checked(f, "enabled"),
        "default": checked(f, "default"),
        "insecure": checked(f, "insecure"),
    })
}

async fn instances(visit: Visit) -> Response {
    let viewer = match visit.viewer().await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let (answer, providers) = tokio::join!(
        visit.get(format!("/p2p/preheat/instances?{}", visit.paging())),
        visit.get("/p2p/preheat/providers")
    );
    let (total, next) = (answer.total.unwrap_or(0), answer.next.clone());
    let list = match answer.into_body(&visit) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let writes = !viewer.read_only;
    let body = html! {
        div.table-wrap { table #instances {
            thead { tr {
                th scope="col" { "Name" } th scope="col" { "Endpoint" } th scope="col" { "Provider" }
                th scope="col" { "Enabled" } th scope="col" { "Default" } th scope="col" { "Authentication" }
                th.wide-only scope="col" { "Description" } @if writes { th scope="col" { "Actions" } }
            } }
            tbody { @for i in items(&list) {
                @let name = text(i, "name");
                @let here = format!("{INSTANCES}/{}", seg(&name));
                tr {
                    td { a href=(here) { (name) } }
                    td.mono { (text(i, "endpoint")) } td { (text(i, "vendor")) }
                    td { @if flag(i, "enabled") { "Yes" } @else { "No" } }
                    td { @if flag(i, "default") { "Yes" } @else { "No" } }
                    td { (text(i, "auth_mode")) }
                    td.wide-only { (text(i, "description")) }
                    @if writes { td {
                        (button_form(&visit, &format!("{here}/ping"), "secondary", "Test", Some(&format!("Test connection to {name}")), None))
                        " "
                        (button_form(&visit, &format!("{here}/delete"), "danger", "Delete", Some(&format!("Delete {name}")), Some(&format!("Delete the instance {name}?"))))
                    } }
                }
            } }
        } }
        @if items(&list).is_empty() { p.muted { "No preheat provider instances." } }
        (pager(&visit, INSTANCES, total, next.as_deref()))
        @if writes {
            form.panel method="post" action=(INSTANCES) {
                h2 { "New instance" }
                (csrf(&visit))
                (instance_fields(&Value::Null, &providers.body))
                p { button type="submit" { "Create instance" } }
            }
        }
    };
    admin_page(&visit, &viewer, "Distributions", body)
}

async fn create_instance(visit: Visit, body: Bytes) -> Response {
    let answer = visit.api(Method::POST, "/p2p/preheat/instances", Some(&instance_of(&form(&body), false))).await;
    after(&visit, INSTANCES, &answer, "The instance was created.")
}

async fn instance(visit: Visit, Path(name): Path<String>) -> Response {
    let viewer = match visit.viewer().await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let i = match visit.get(format!("/p2p/preheat/instances/{}", seg(&name))).await.into_body(&visit) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let here = format!("{INSTANCES}/{}", seg(&name));
    let body = html! {
        p { a href=(INSTANCES) { "Back to the instances" } }
        p { "Provider: " (text(&i, "vendor")) " · Set up " (when(&super::super::api::rfc3339(int(&i, "setup_timestamp")))) }
        @if !viewer.read_only {
            form.panel method="post" action=(here) {
                (csrf(&visit))
                (instance_fields(&i, &Value::Null))
                p { button type="submit" { "Save instance" } }
            }
            (button_form(&visit, &format!("{here}/ping"), "secondary", "Test connection", None, None))
        }
    };
    admin_page(&visit, &viewer, &format!("Instance {name}"), body)
}

async fn save_instance(visit: Visit, Path(name): Path<String>, body: Bytes) -> Response {
    let here = format!("{INSTANCES}/{}", seg(&name));
    let mut input = instance_of(&form(&body), true);
    input["name"] = json!(name);
    let answer = visit.api(Method::PUT, &format!("/p2p/preheat/instances/{}", seg(&name)), Some(&input)).await;
    after(&visit, &here, &answer, "The instance was saved.")
}

async fn delete_instance(visit: Visit, Path(name): Path<String>) -> Response {
    let answer = visit.api(Method::DELETE, &format!("/p2p/preheat/instances/{}", seg(&name)), None).await;
    after(&visit, INSTANCES, &answer, "The instance was deleted.")
}

async fn ping_instance(visit: Visit, Path(name): Path<String>) -> Response {
    let found = visit.get(format!("/p2p/preheat/instances/{}", seg(&name))).await;
    if !found.ok() {
        return after(&visit, INSTANCES, &found, "");
    }
    let answer =
        visit.api(Method::POST, "/p2p/preheat/instances/ping", Some(&json!({"id": int(&found.body, "id")}))).await;
    match answer.status {
        StatusCode::UNAUTHORIZED => visit.to_sign_in(),
        s if s.is_success() => back(INSTANCES, Ok("The instance answered: it is healthy.")),
        _ => back(INSTANCES, Err(&format!("The connection failed: {}", answer.message()))),
    }
}

// ------------------------------------------------------------ policies

const TRIGGERS: [(&str, &str); 3] = [("manual", "Manual"), ("scheduled", "Scheduled"), ("event_based", "On push")];

/// Harbor's severities, from which an artifact is not preheated.
const SEVERITIES: [(i64, &str); 6] =
    [(0, "Any (no limit)"), (2, "Low"), (3, "Medium"), (4, "High"), (5, "Critical"), (1, "Unknown")];

/// A policy's filters, read from its JSON text: type → value.
fn filters_of(p: &Value) -> Vec<(String, Value)> {
    serde_json::from_str::<Value>(&text(p, "filters"))
        .ok()
        .as_ref()
        .map(items)
        .unwrap_or_default()
        .iter()
        .map(|f| (text(f, "type"), f.get("value").cloned().unwrap_or(Value::Null)))
        .collect()
}

fn filter_text(filters: &[(String, Value)], kind: &str) -> String {
    match filters.iter().find(|(k, _)| k == kind).map(|(_, v)| v) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// A filter as listed: a severity by its name.
fn filter_shown(filters: &[(String, Value)], kind: &str) -> String {
    let value = filter_text(filters, kind);
    match value.parse::<i64>() {
        Ok(n) if kind == "vulnerability" => {
            SEVERITIES.iter().find(|(v, _)| *v == n).map_or(value, |(_, l)| format!("{l} or above"))
        }
        _ => value,
    }
}

/// The trigger's type and cron, read from its JSON text.
fn trigger_of(p: &Value) -> (String, String) {
    let t: Value = serde_json::from_str(&text(p, "trigger")).unwrap_or(Value::Null);
    let kind = match text(&t, "type") {
        k if k.is_empty() => "manual".to_owned(),
        k => k,
    };
    (kind, t.pointer("/trigger_setting/cron").and_then(Value::as_str).unwrap_or_default().to_owned())
}

fn trigger_label(kind: &str) -> &'static str {
    TRIGGERS.iter().find(|(k, _)| *k == kind).map_or("Manual", |(_, l)| l)
}

/// The fields of a policy (a new one when `p` is null); `providers` are the
/// project's enabled instances.
fn policy_fields(p: &Value, providers: &Value) -> Markup {
    let new = p.is_null();
    let filters = filters_of(p);
    let (trigger, cron) = trigger_of(p);
    let severity = filter_text(&filters, "vulnerability").parse::<i64>().unwrap_or(0);
    let provider = int(p, "provider_id");
    let pattern = |kind: &str| match filter_text(&filters, kind) {
        s if s.is_empty() && new => "**".to_owned(),
        s => s,
    };
    html! {
        @if new {
            label for="policy_name" { "Name" }
            input #policy_name type="text" name="name" required maxlength="255";
        } @else {
            input type="hidden" name="name" value=(text(p, "name"));
        }
        label for="policy_description" { "Description" }
        input #policy_description type="text" name="description" value=(text(p, "description"));
        label for="policy_provider" { "Provider instance" }
        select #policy_provider name="provider_id" required {
            @for i in items(providers) {
                option value=(int(i, "id")) selected[int(i, "id") == provider || (new && flag(i, "default"))] { (text(i, "provider")) }
            }
        }
        @if items(providers).is_empty() { p.muted { "No enabled provider instance: an administrator adds one under Distributions." } }
        fieldset {
            legend { "Filters" }
            label for="policy_repos" { "Repositories (e.g. app/** ; ** : all)" }
            input #policy_repos type="text" name="repository" required value=(pattern("repository"));
            label for="policy_tags" { "Tags (e.g. v1.* ; ** : all)" }
            input #policy_tags type="text" name="tag" required value=(pattern("tag"));
            label for="policy_labels" { "Labels (comma-separated; empty: any)" }
            input #policy_labels type="text" name="label" value=(filter_text(&filters, "label"));
            label.check { input type="checkbox" name="signature" checked[filter_text(&filters, "signature") == "true"]; "Only signed artifacts" }
            label for="policy_severity" { "Skip artifacts with vulnerabilities of severity" }
            select #policy_severity name="vulnerability" {
                @for (v, l) in SEVERITIES { option value=(v) selected[v == severity] { (l) @if v > 0 { " or above" } } }
            }
        }
        label for="policy_trigger" { "Trigger" }
        select #policy_trigger name="trigger" {
            @for (k, l) in TRIGGERS { option value=(k) selected[k == trigger] { (l) } }
        }
        label for="policy_cron" { "Cron (seconds first, for Scheduled)" }
        input #policy_cron type="text" name="cron" value=(cron) placeholder="0 0 3 * * *";
        label for="policy_scope" { "Scope" }
        select #policy_scope name="scope" {
            option value="single_peer" selected[text(p, "scope") != "all_peers"] { "Single peer" }
            option value="all_peers" selected[text(p, "scope") == "all_peers"] { "All peers" }
        }
        label.check { input type="checkbox" name="enabled" checked[new || flag(p, "enabled")]; "Enabled" }
    }
}

/// The API's policy from a posted form.
fn policy_of(f: &[(String, String)]) -> Value {
    let mut filters = vec![
        json!({"type": "repository", "value": field(f, "repository")}),
        json!({"type": "tag", "value": field(f, "tag")}),
    ];
    if !field(f, "label").is_empty() {
        filters.push(json!({"type": "label", "value": field(f, "label")}));
    }
    if checked(f, "signature") {
        filters.push(json!({"type": "signature", "value": true}));
    }
    match field(f, "vulnerability").parse::<i64>() {
        Ok(n) if n > 0 => filters.push(json!({"type": "vulnerability", "value": n})),
        _ => {}
    }
    let trigger = field(f, "trigger");
    let cron = if trigger == "scheduled" { field(f, "cron") } else { "" };
    json!({
        "name": field(f, "name"),
        "description": field(f, "description"),
        "provider_id": field(f, "provider_id").parse::<i64>().unwrap_or(0),
        "filters": Value::Array(filters).to_string(),
        "trigger": json!({"type": trigger, "trigger_setting": {"cron": cron}}).to_string(),
        "scope": field(f, "scope"),
        "enabled": checked(f, "enabled"),
    })
}

/// The API path of a project's policies (by the project's name).
fn api_policies(frame: &Frame) -> String {
    format!("/projects/{}/preheat/policies", seg(&frame.name()))
}

async fn policies(visit: Visit, Path(id): Path<i64>) -> Response {
    let frame = match Frame::load(&visit, id).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let (answer, providers) = tokio::join!(
        visit.get(format!("{}?{}", api_policies(&frame), visit.paging())),
        visit.get(format!("/projects/{}/preheat/providers", seg(&frame.name())))
    );
    let (total, next) = (answer.total.unwrap_or(0), answer.next.clone());
    let list = match answer.into_body(&visit) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let here = format!("/harbor/projects/{id}/p2p-provider");
    let (may_create, may_update, may_delete) = (
        frame.perms.can("preheat-policy", "create"),
        frame.perms.can("preheat-policy", "update"),
        frame.perms.can("preheat-policy", "delete"),
    );
    let body = html! {
        h2 { "P2P Preheat" }
        div.table-wrap { table #preheat-policies {
            thead { tr {
                th scope="col" { "Name" } th scope="col" { "Enabled" } th scope="col" { "Provider" }
                th scope="col" { "Filters" } th scope="col" { "Trigger" } th.wide-only scope="col" { "Description" }
                @if may_update || may_delete { th scope="col" { "Actions" } }
            } }
            tbody { @for p in items(&list) {
                @let name = text(p, "name");
                @let filters = filters_of(p);
                @let at = format!("{here}/{}", seg(&name));
                tr {
                    td { a href=(at) { (name) } }
                    td { @if flag(p, "enabled") { "Yes" } @else { "No" } }
                    td { (text(p, "provider_name")) }
                    td { @for (k, _) in &filters { span.badge { (k) ": " (filter_shown(&filters, k)) } " " } }
                    td { (trigger_label(&trigger_of(p).0)) }
                    td.wide-only { (text(p, "description")) }
                    @if may_update || may_delete { td {
                        @if may_update {
                            (button_form(&visit, &format!("{at}/execute"), "secondary", "Execute", Some(&format!("Execute {name}")), None))
                            " "
                        }
                        @if may_delete {
                            (button_form(&visit, &format!("{at}/delete"), "danger", "Delete", Some(&format!("Delete {name}")), Some(&format!("Delete the preheat policy {name}?"))))
                        }
                    } }
                }
            } }
        } }
        @if items(&list).is_empty() { p.muted { "No preheat policies." } }
        (pager(&visit, &here, total, next.as_deref()))
        @if may_create {
            form.panel method="post" action=(here) {
                h2 { "New preheat policy" }
                (csrf(&visit))
                (policy_fields(&Value::Null, &providers.body))
                p { button type="submit" { "Create preheat policy" } }
            }
        }
    };
    frame.render(&visit, "p2p-provider", "P2P Preheat", body)
}

async fn create_policy(visit: Visit, Path(id): Path<i64>, body: Bytes) -> Response {
    let here = format!("/harbor/projects/{id}/p2p-provider");
    let project = visit.get(format!("/projects/{id}")).await;
    if !project.ok() {
        return after(&visit, &here, &project, "");
    }
    let path = format!("/projects/{}/preheat/policies", seg(&text(&project.body, "name")));
    let answer = visit.api(Method::POST, &path, Some(&policy_of(&form(&body)))).await;
    after(&visit, &here, &answer, "The preheat policy was created.")
}

/// The API path of one policy of project `id`, or the refusal.
async fn api_policy(visit: &Visit, id: i64, policy: &str) -> Result<String, Response> {
    let project = visit.get(format!("/projects/{id}")).await;
    if !project.ok() {
        return Err(after(visit, "/harbor/projects", &project, ""));
    }
    Ok(format!("/projects/{}/preheat/policies/{}", seg(&text(&project.body, "name")), seg(policy)))
}

/// A policy: its settings (editable), its runs, run now, delete.
async fn policy(visit: Visit, Path((id, name)): Path<(i64, String)>) -> Response {
    let frame = match Frame::load(&visit, id).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let api = format!("{}/{}", api_policies(&frame), seg(&name));
    let (p, runs, providers) = tokio::join!(
        visit.get(&api),
        visit.get(format!("{api}/executions?{}", visit.paging())),
        visit.get(format!("/projects/{}/preheat/providers", seg(&frame.name())))
    );
    let p = match p.into_body(&visit) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let (total, next) = (runs.total.unwrap_or(0), runs.next.clone());
    let runs = match runs.into_body(&visit) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let here = format!("/harbor/projects/{id}/p2p-provider/{}", seg(&name));
    let may_update = frame.perms.can("preheat-policy", "update");
    let body = html! {
        p { a href=(format!("/harbor/projects/{id}/p2p-provider")) { "Back to the preheat policies" } }
        h2 { "Preheat policy " (name) }
        p { "Provider: " (text(&p, "provider_name")) " · Updated " (when(&text(&p, "update_time"))) }
        @if may_update {
            (button_form(&visit, &format!("{here}/execute"), "", "Execute", Some(&format!("Execute {name}")), None))
        }
        h3 { "Executions" }
        div.table-wrap { table #preheat-runs {
            thead { tr { th scope="col" { "Id" } th scope="col" { "Status" } th scope="col" { "Trigger" }
                th scope="col" { "Started" } th scope="col" { "Ended" } th scope="col" { "Message" } } }
            tbody { @for x in items(&runs) {
                @let eid = int(x, "id");
                tr {
                    td { a href=(format!("{here}/executions/{eid}")) aria-label=(format!("Execution {eid}")) { (eid) } }
                    td { (text(x, "status")) } td { (text(x, "trigger")) }
                    td { (when(&text(x, "start_time"))) } td { (when(&text(x, "end_time"))) }
                    td { (text(x, "status_message")) }
                }
            } }
        } }
        @if items(&runs).is_empty() { p.muted { "No executions yet." } }
        (pager(&visit, &here, total, next.as_deref()))
        @if may_update {
            form.panel method="post" action=(here) {
                h3 { "Settings" }
                (csrf(&visit))
                (policy_fields(&p, &providers.body))
                p { button type="submit" { "Save preheat policy" } }
            }
        }
    };
    frame.render(&visit, "p2p-provider", "Preheat policy", body)
}

async fn save_policy(visit: Visit, Path((id, name)): Path<(i64, String)>, body: Bytes) -> Response {
    let api = match api_policy(&visit, id, &name).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let mut input = policy_of(&form(&body));
    input["name"] = json!(name);
    let answer = visit.api(Method::PUT, &api, Some(&input)).await;
    after(
        &visit,
        &format!("/harbor/projects/{id}/p2p-provider/{}", seg(&name)),
        &answer,
        "The preheat policy was saved.",
    )
}

async fn delete_policy(visit: Visit, Path((id, name)): Path<(i64, String)>) -> Response {
    let api = match api_policy(&visit, id, &name).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let answer = visit.api(Method::DELETE, &api, None).await;
    after(&visit, &format!("/harbor/projects/{id}/p2p-provider"), &answer, "The preheat policy was deleted.")
}

async fn execute(visit: Visit, Path((id, name)): Path<(i64, String)>) -> Response {
    let api = match api_policy(&visit, id, &name).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let answer = visit.api(Method::POST, &api, None).await;
    after(&visit, &format!("/harbor/projects/{id}/p2p-provider/{}", seg(&name)), &answer, "The preheat was started.")
}

/// A run: its status, its tasks and their logs, stop while it runs.
async fn execution(visit: Visit, Path((id, name, eid)): Path<(i64, String, i64)>) -> Response {
    let frame = match Frame::load(&visit, id).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let api = format!("{}/{}/executions/{eid}", api_policies(&frame), seg(&name));
    let (x, tasks) = tokio::join!(visit.get(&api), visit.get(format!("{api}/tasks?{}", visit.paging())));
    let x = match x.into_body(&visit) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let (total, next) = (tasks.total.unwrap_or(0), tasks.next.clone());
    let tasks = match tasks.into_body(&visit) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let policy = format!("/harbor/projects/{id}/p2p-provider/{}", seg(&name));
    let here = format!("{policy}/executions/{eid}");
    let status = text(&x, "status");
    let body = html! {
        p { a href=(policy) { "Back to the preheat policy" } }
        h2 { "Execution " (eid) }
        p { "Status: " (status) " · Trigger: " (text(&x, "trigger")) " · Started " (when(&text(&x, "start_time"))) }
        @if frame.perms.can("preheat-policy", "update") && matches!(status.as_str(), "Running" | "Pending") {
            (button_form(&visit, &format!("{here}/stop"), "danger", "Stop", None, Some("Stop this preheat?")))
        }
        div.table-wrap { table #preheat-tasks {
            thead { tr { th scope="col" { "Id" } th scope="col" { "Status" } th scope="col" { "Artifact" }
                th scope="col" { "Message" } th scope="col" { "Started" } th scope="col" { "Log" } } }
            tbody { @for t in items(&tasks) {
                @let tid = int(t, "id");
                tr {
                    td { (tid) } td { (text(t, "status")) }
                    td.mono { (t.pointer("/extra_attrs/artifact").map(|a| match a { Value::String(s) => s.clone(), o => o.to_string() }).unwrap_or_default()) }
                    td { (text(t, "status_message")) } td { (when(&text(t, "start_time"))) }
                    td { a href=(format!("{here}/tasks/{tid}")) aria-label=(format!("Log of task {tid}")) { "Log" } }
                }
            } }
        } }
        @if items(&tasks).is_empty() { p.muted { "No tasks." } }
        (pager(&visit, &here, total, next.as_deref()))
    };
    frame.render(&visit, "p2p-provider", "Preheat execution", body)
}

async fn stop(visit: Visit, Path((id, name, eid)): Path<(i64, String, i64)>) -> Response {
    let api = match api_policy(&visit, id, &name).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let answer =
        visit.api(Method::PATCH, &format!("{api}/executions/{eid}"), Some(&json!({"status": "Stopped"}))).await;
    let here = format!("/harbor/projects/{id}/p2p-provider/{}/executions/{eid}", seg(&name));
    after(&visit, &here, &answer, "The preheat is stopping.")
}

async fn task_log(visit: Visit, Path((id, name, eid, tid)): Path<(i64, String, i64, i64)>) -> Response {
    let frame = match Frame::load(&visit, id).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let api = format!("{}/{}/executions/{eid}/tasks/{tid}/logs", api_policies(&frame), seg(&name));
    let log = match visit.get(api).await.into_body(&visit) {
        Ok(Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(r) => return *r,
    };
    let body = html! {
        p { a href=(format!("/harbor/projects/{id}/p2p-provider/{}/executions/{eid}", seg(&name))) { "Back to the execution" } }
        h2 { "Log of task " (tid) }
        pre.panel #task-log { (log) }
        @if log.trim().is_empty() { p.muted { "The log is empty." } }
    };
    frame.render(&visit, "p2p-provider", "Preheat task log", body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn a_form_is_a_policy_and_back() {
        let p = policy_of(&fields(&[
            ("name", "warm"),
            ("provider_id", "2"),
            ("repository", "app/**"),
            ("tag", "v*"),
            ("label", "hot"),
            ("signature", "on"),
            ("vulnerability", "4"),
            ("trigger", "scheduled"),
            ("cron", "0 0 2 * * *"),
            ("scope", "all_peers"),
            ("enabled", "on"),
        ]));
        assert_eq!(p["provider_id"], 2);
        let filters = filters_of(&p);
        assert_eq!(filter_text(&filters, "repository"), "app/**");
        assert_eq!(filter_text(&filters, "label"), "hot");
        assert_eq!(filter_text(&filters, "signature"), "true");
        assert_eq!(filter_shown(&filters, "vulnerability"), "High or above");
        assert_eq!(trigger_of(&p), ("scheduled".to_owned(), "0 0 2 * * *".to_owned()));
        let plain = policy_of(&fields(&[
            ("repository", "**"),
            ("tag", "**"),
            ("vulnerability", "0"),
            ("trigger", "manual"),
            ("cron", "x"),
        ]));
        assert_eq!(filters_of(&plain).len(), 2, "no label, signature or severity filter when not asked for");
        assert_eq!(trigger_of(&plain), ("manual".to_owned(), String::new()));
        assert_eq!(trigger_of(&json!({"trigger": ""})).0, "manual");
    }

    #[test]
    fn an_empty_secret_on_an_edit_is_kept() {
        let f = fields(&[("auth_mode", "BASIC"), ("username", "u"), ("password", "")]);
        assert_eq!(instance_of(&f, true)["auth_info"]["password"], crate::service::preheat::MASK);
        assert_eq!(instance_of(&f, false)["auth_info"]["password"], "");
        let f = fields(&[("auth_mode", "NONE"), ("password", "p")]);
        assert_eq!(instance_of(&f, true)["auth_info"], json!({}));
    }
}

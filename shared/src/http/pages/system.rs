//! Administration of the registry itself: the registry endpoints other
//! registries are reached by (`/registries`), the system configuration
//! (`/configurations`, only the settings the API takes) and scanning
//! everything (`/system/scanAll`).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use maud::{Markup, html};
use serde_json::{Value, json};

use super::jobs::{schedule_form, schedule_of};
use super::layout::{button_form, csrf, page, pager};
use super::{Viewer, Visit, after, back, checked, field, form, html, int, items, text, when};
use crate::http::state::AppState;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/harbor/registries", get(registries).post(create_registry))
        .route("/harbor/registries/{rid}", get(registry).post(save_registry))
        .route("/harbor/registries/{rid}/delete", post(delete_registry))
        .route("/harbor/registries/{rid}/ping", post(ping_registry))
        .route("/harbor/configs", get(configs).post(save_configs))
        .route("/harbor/interrogation-services/vulnerability", get(scan_all).post(run_scan_all))
        .route("/harbor/interrogation-services/vulnerability/schedule", post(schedule_scan_all))
}

fn admin_page(visit: &Visit, viewer: &Viewer, title: &str, content: Markup) -> Response {
    let body = html! {
        p.crumbs { "Administration" }
        h1 { (title) }
        (content)
    };
    html(StatusCode::OK, page(visit, Some(viewer), title, body))
}

// ------------------------------------------------------------ registries

const REGISTRIES: &str = "/harbor/registries";

/// The fields of a registry endpoint (a new one, or `reg` being edited).
fn registry_fields(reg: Option<&Value>, kinds: &[String]) -> Markup {
    let kind = reg.map(|r| text(r, "type")).unwrap_or_else(|| "docker-registry".to_owned());
    html! {
        @if reg.is_none() {
            label for="reg_type" { "Provider" }
            select #reg_type name="type" {
                @for k in kinds { option value=(k) selected[*k == kind] { (k) } }
            }
        }
        label for="reg_name" { "Name" }
        input #reg_name type="text" name="name" required value=(reg.map(|r| text(r, "name")).unwrap_or_default());
        label for="reg_url" { "Endpoint URL" }
        input #reg_url type="text" name="url" required placeholder="https://…" value=(reg.map(|r| text(r, "url")).unwrap_or_default());
        label for="reg_key" { "Access ID" }
        input #reg_key type="text" name="access_key" autocomplete="off"
            value=(reg.and_then(|r| r.pointer("/credential/access_key")).and_then(Value::as_str).unwrap_or_default());
        label for="reg_secret" { @if reg.is_some() { "Access secret (empty: unchanged)" } @else { "Access secret" } }
        input #reg_secret type="password" name="access_secret" autocomplete="new-password";
        label for="reg_description" { "Description" }
        input #reg_description type="text" name="description" value=(reg.map(|r| text(r, "description")).unwrap_or_default());
        label.check { input type="checkbox" name="insecure"
            checked[reg.and_then(|r| r.get("insecure")).and_then(Value::as_bool).unwrap_or(false)]; "Do not verify the certificate" }
    }
}

async fn registries(visit: Visit) -> Response {
    let viewer = match visit.viewer().await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let (answer, kinds) =
        tokio::join!(visit.get(format!("/registries?{}", visit.paging())), visit.get("/replication/adapters"));
    let (total, next) = (answer.total.unwrap_or(0), answer.next.clone());
    let list = match answer.into_body(&visit) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let kinds: Vec<String> = items(&kinds.body).iter().filter_map(Value::as_str).map(str::to_owned).collect();
    let writes = !viewer.read_only;
    let body = html! {
        div.table-wrap { table #registries {
            thead { tr { th scope="col" { "Name" } th scope="col" { "Endpoint" } th scope="col" { "Provider" }
                th scope="col" { "Status" } th.wide-only scope="col" { "Description" } @if writes { th scope="col" { "Actions" } } } }
            tbody { @for r in items(&list) {
                @let (rid, name) = (int(r, "id"), text(r, "name"));
                tr {
                    td { a href=(format!("{REGISTRIES}/{rid}")) { (name) } }
                    td.mono { (text(r, "url")) } td { (text(r, "type")) } td { (text(r, "status")) }
                    td.wide-only { (text(r, "description")) }
                    @if writes { td {
                        (button_form(&visit, &format!("{REGISTRIES}/{rid}/ping"), "secondary", "Test", Some(&format!("Test connection to {name}")), None))
                        " "
                        (button_form(&visit, &format!("{REGISTRIES}/{rid}/delete"), "danger", "Delete", Some(&format!("Delete {name}")), Some(&format!("Delete the registry endpoint {name}?"))))
                    } }
                }
            } }
        } }
        @if items(&list).is_empty() { p.muted { "No registry endpoints." } }
        (pager(&visit, REGISTRIES, total, next.as_deref()))
        @if writes {
            form.panel method="post" action=(REGISTRIES) {
                h2 { "New registry endpoint" }
                (csrf(&visit))
                (registry_fields(None, &kinds))
                p { button type="submit" { "Create registry endpoint" } }
            }
        }
    };
    admin_page(&visit, &viewer, "Registries", body)
}

async fn create_registry(visit: Visit, body: Bytes) -> Response {
    let f = form(&body);
    let body = json!({
        "name": field(&f, "name"),
        "type": field(&f, "type"),
        "url": field(&f, "url"),
        "description": field(&f, "description"),
        "insecure": checked(&f, "insecure"),
        "credential": {"type": "basic", "access_key": field(&f, "access_key"), "access_secret": field(&f, "access_secret")},
    });
    let answer = visit.api(Method::POST, "/registries", Some(&body)).await;
    after(&visit, REGISTRIES, &answer, "The registry endpoint was created.")
}

async fn registry(visit: Visit, Path(rid): Path<i64>) -> Response {
    let viewer = match visit.viewer().await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let reg = match visit.get(format!("/registries/{rid}")).await.into_body(&visit) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let here = format!("{REGISTRIES}/{rid}");
    let body = html! {
        p { a href=(REGISTRIES) { "Back to the registries" } }
        p { "Provider: " (text(&reg, "type")) " · Status: " (text(&reg, "status")) " · Created " (when(&text(&reg, "creation_time"))) }
        @if !viewer.read_only {
            form.panel method="post" action=(here) {
                (csrf(&visit))
                (registry_fields(Some(&reg), &[]))
                p { button type="submit" { "Save registry endpoint" } }
            }
            (button_form(&visit, &format!("{here}/ping"), "secondary", "Test connection", None, None))
        }
    };
    admin_page(&visit, &viewer, &format!("Registry {}", text(&reg, "name")), body)
}

async fn save_registry(visit: Visit, Path(rid): Path<i64>, body: Bytes) -> Response {
    let f = form(&body);
    let mut body = json!({
        "name": field(&f, "name"),
        "url": field(&f, "url"),
        "description": field(&f, "description"),
        "insecure": checked(&f, "insecure"),
        "credential_type": "basic",
        "access_key": field(&f, "access_key"),
    });
    // An empty secret keeps the stored one.
    if !field(&f, "access_secret").is_empty() {
        body["access_secret"] = json!(field(&f, "access_secret"));
    }
    let answer = visit.api(Method::PUT, &format!("/registries/{rid}"), Some(&body)).await;
    after(&visit, &format!("{REGISTRIES}/{rid}"), &answer, "The registry endpoint was saved.")
}

async fn delete_registry(visit: Visit, Path(rid): Path<i64>) -> Response {
    let answer = visit.api(Method::DELETE, &format!("/registries/{rid}"), None).await;
    after(&visit, REGISTRIES, &answer, "The registry endpoint was deleted.")
}

async fn ping_registry(visit: Visit, Path(rid): Path<i64>) -> Response {
    let answer = visit.api(Method::POST, "/registries/ping", Some(&json!({"id": rid}))).await;
    match answer.status {
        StatusCode::UNAUTHORIZED => visit.to_sign_in(),
        s if s.is_success() => back(REGISTRIES, Ok("The registry answered: the connection works.")),
        _ => back(REGISTRIES, Err(&format!("The connection failed: {}", answer.message()))),
    }
}

// ------------------------------------------------------------ configuration

/// A setting of `/configurations` the page offers: key, label, kind.
enum Kind {
    Text,
    Number,
    Flag,
    Choice(&'static [(&'static str, &'static str)]),
}

/// A group of settings: its title, and each setting's key, label and kind.
type Group = (&'static str, &'static [(&'static str, &'static str, Kind)]);

/// The groups of settings, as Harbor's configuration page has them.
const SETTINGS: [Group; 3] = [
    (
        "Authentication",
        &[
            (
                "auth_mode",
                "Authentication mode",
                Kind::Choice(&[("db_auth", "Database"), ("ldap_auth", "LDAP"), ("oidc_auth", "OIDC")]),
            ),
            ("self_registration", "Allow self-registration", Kind::Flag),
            (
                "primary_auth_mode",
                "Authentication mode is primary (no local users besides the administrator)",
                Kind::Flag,
            ),
            ("oidc_name", "OIDC provider name", Kind::Text),
            ("oidc_endpoint", "OIDC endpoint", Kind::Text),
            ("oidc_client_id", "OIDC client id", Kind::Text),
            ("oidc_scope", "OIDC scope", Kind::Text),
            ("oidc_user_claim", "OIDC user name claim", Kind::Text),
            ("oidc_groups_claim", "OIDC groups claim", Kind::Text),
            ("oidc_admin_group", "OIDC administrator group", Kind::Text),
            ("oidc_verify_cert", "Verify the OIDC provider's certificate", Kind::Flag),
            ("oidc_auto_onboard", "Onboard OIDC users automatically", Kind::Flag),
            ("ldap_url", "LDAP URL", Kind::Text),
            ("ldap_search_dn", "LDAP search DN", Kind::Text),
            ("ldap_base_dn", "LDAP base DN", Kind::Text),
            ("ldap_uid", "LDAP UID attribute", Kind::Text),
            ("ldap_filter", "LDAP filter", Kind::Text),
            ("ldap_verify_cert", "Verify the LDAP server's certificate", Kind::Flag),
        ],
    ),
    (
        "Security",
        &[
            ("token_expiration", "Token lifetime (minutes)", Kind::Number),
            ("robot_token_duration", "Robot account lifetime (days)", Kind::Number),
            ("robot_name_prefix", "Robot name prefix", Kind::Text),
            ("session_timeout", "Session timeout (minutes)", Kind::Number),
        ],
    ),
    (
        "System settings",
        &[
            (
                "project_creation_restriction",
                "Who creates projects",
                Kind::Choice(&[("everyone", "Everyone"), ("adminonly", "Administrators only")]),
            ),
            ("read_only", "Repository read-only", Kind::Flag),
            ("notification_enable", "Webhooks enabled", Kind::Flag),
            ("audit_log_forward_endpoint", "Forward audit logs to (syslog endpoint)", Kind::Text),
            ("skip_audit_log_database", "Skip the audit log database", Kind::Flag),
            ("storage_per_project", "Default project quota (bytes; −1: unlimited)", Kind::Number),
        ],
    ),
];

async fn configs(visit: Visit) -> Response {
    let viewer = match visit.viewer().await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let all = match visit.get("/configurations").await.into_body(&visit) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let body = html! {
        form method="post" action="/harbor/configs" {
            (csrf(&visit))
            @for (group, settings) in SETTINGS {
                fieldset.panel {
                    legend { (group) }
                    @for (key, label, kind) in settings.iter() {
                        @if let Some(setting) = all.get(*key) {
                            (setting_field(key, label, kind, setting))
                        }
                    }
                }
            }
            p { button type="submit" { "Save configuration" } }
        }
    };
    admin_page(&visit, &viewer, "Configuration", body)
}

fn setting_field(key: &str, label: &str, kind: &Kind, setting: &Value) -> Markup {
    let value = setting.get("value").cloned().unwrap_or(Value::Null);
    let editable = setting.get("editable").and_then(Value::as_bool).unwrap_or(true);
    let shown = match &value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let id = format!("cfg_{key}");
    html! {
        @match kind {
            Kind::Flag => {
                input type="hidden" name=(format!("present.{key}")) value="1";
                label.check { input id=(id) type="checkbox" name=(key) checked[value.as_bool().unwrap_or(false)] disabled[!editable]; (label) }
            }
            Kind::Choice(options) => {
                label for=(id) { (label) }
                select id=(id) name=(key) disabled[!editable] {
                    @for (v, l) in options.iter() { option value=(v) selected[*v == shown] { (l) } }
                }
            }
            Kind::Number => {
                label for=(id) { (label) }
                input id=(id) type="number" name=(key) value=(shown) disabled[!editable];
            }
            Kind::Text => {
                label for=(id) { (label) }
                input id=(id) type="text" name=(key) value=(shown) disabled[!editable];
            }
        }
    }
}

/// Only the settings the form shows, changed or not: the API takes the
/// ones it is given.
async fn save_configs(visit: Visit, body: Bytes) -> Response {
    let f = form(&body);
    let current = visit.get("/configurations").await;
    if !current.ok() {
        return after(&visit, "/harbor/configs", &current, "");
    }
    let mut out = serde_json::Map::new();
    for (_, settings) in SETTINGS {
        for (key, _, kind) in settings.iter() {
            let Some(setting) = current.body.get(*key) else { continue };
            if !setting.get("editable").and_then(Value::as_bool).unwrap_or(true) {
                continue;
            }
            let value = match kind {
                Kind::Flag if f.iter().any(|(k, _)| *k == format!("present.{key}")) => Value::Bool(checked(&f, key)),
                Kind::Flag => continue,
                _ if !f.iter().any(|(k, _)| k.as_str() == *key) => continue,
                Kind::Number => match field(&f, key).parse::<i64>() {
                    Ok(n) => Value::from(n),
                    Err(_) => return back("/harbor/configs", Err(&format!("{key} must be a whole number."))),
                },
                _ => Value::String(field(&f, key).to_owned()),
            };
            if setting.get("value") != Some(&value) {
                out.insert((*key).to_owned(), value);
            }
        }
    }
    if out.is_empty() {
        return back("/harbor/configs", Ok("Nothing was changed."));
    }
    let answer = visit.api(Method::PUT, "/configurations", Some(&Value::Object(out))).await;
    after(&visit, "/harbor/configs", &answer, "The configuration was saved.")
}

// ------------------------------------------------------------ scan all

const SCAN_ALL: &str = "/harbor/interrogation-services/vulnerability";

async fn scan_all(visit: Visit) -> Response {
    let viewer = match visit.viewer().await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let (schedule, metrics) = tokio::join!(visit.get("/system/scanAll/schedule"), visit.get("/scans/all/metrics"));
    if !schedule.ok() {
        return super::layout::error_page(&visit, Some(&viewer), schedule.status, &schedule.message());
    }
    let m = &metrics.body;
    let body = html! {
        h2 { "Latest run" }
        @if metrics.ok() && int(m, "total") > 0 {
            dl #scan-all-metrics {
                dt { "Status" } dd { (text(m, "ongoing").replace("true", "Running").replace("false", "Done")) }
                dt { "Artifacts" } dd { (int(m, "completed")) " of " (int(m, "total")) " done" }
                dt { "Trigger" } dd { (text(m, "trigger")) }
                @if let Some(metrics) = m.get("metrics").and_then(Value::as_object) {
                    @for (k, v) in metrics { dt { (k) } dd { (v.to_string()) } }
                }
            }
        } @else { p.muted #scan-all-metrics { "No scan of everything yet." } }
        @if !viewer.read_only {
            form.panel method="post" action=(SCAN_ALL) {
                (csrf(&visit))
                p { button type="submit" { "Scan all now" } }
            }
            (schedule_form(&visit, &format!("{SCAN_ALL}/schedule"), "scan", &schedule.body, html! {}))
        }
    };
    admin_page(&visit, &viewer, "Scan all", body)
}

async fn run_scan_all(visit: Visit) -> Response {
    let answer =
        visit.api(Method::POST, "/system/scanAll/schedule", Some(&json!({"schedule": {"type": "Manual"}}))).await;
    after(&visit, SCAN_ALL, &answer, "The scan of all artifacts was started.")
}

async fn schedule_scan_all(visit: Visit, body: Bytes) -> Response {
    let body = json!({"schedule": schedule_of(&form(&body))});
    let answer = visit.api(Method::PUT, "/system/scanAll/schedule", Some(&body)).await;
    after(&visit, SCAN_ALL, &answer, "The schedule was saved.")
}

//! Administration: users, groups, system robot accounts (created, edited,
//! their secret refreshed), garbage collection (history, run, log), the
//! audit log and the scanners. The navigation offers them to system
//! administrators; anyone else asking by address gets the API's refusal.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use maud::{Markup, html};
use serde_json::{Value, json};

use super::layout::{button_form, copy, csrf, page, pager, search};
use super::{Viewer, Visit, after, checked, field, form, html, int, items, seg, text, when};
use crate::http::state::AppState;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/harbor/users", get(users).post(create_user))
        .route("/harbor/users/{uid}/admin", post(set_admin))
        .route("/harbor/users/{uid}/delete", post(delete_user))
        .route("/harbor/logs", get(audit))
        .route("/harbor/groups", get(groups).post(create_group))
        .route("/harbor/groups/{gid}/delete", post(delete_group))
        .route("/harbor/robot-accounts", get(robots).post(create_robot))
        .route("/harbor/robot-accounts/{rid}/delete", post(delete_robot))
        .route("/harbor/robot-accounts/{rid}", get(robot).post(save_robot))
        .route("/harbor/robot-accounts/{rid}/secret", post(refresh_robot))
        .route("/harbor/interrogation-services/scanners", get(scanners))
}

/// The administration pages, for the navigation.
pub const PAGES: [(&str, &str); 12] = [
    ("/harbor/users", "Users"),
    ("/harbor/groups", "Groups"),
    ("/harbor/robot-accounts", "Robot accounts"),
    ("/harbor/registries", "Registries"),
    ("/harbor/replications", "Replications"),
    ("/harbor/distribution/instances", "Distributions"),
    ("/harbor/clearing-job/gc", "Garbage collection"),
    ("/harbor/clearing-job/audit-log-purge", "Log purge"),
    ("/harbor/logs", "Audit log"),
    ("/harbor/interrogation-services/scanners", "Scanners"),
    ("/harbor/configs", "Configuration"),
    ("/harbor/interrogation-services/vulnerability", "Scan all"),
];

fn admin_page(visit: &Visit, viewer: &Viewer, title: &str, content: Markup) -> Response {
    let body = html! {
        p.crumbs { "Administration" }
        h1 { (title) }
        (content)
    };
    html(StatusCode::OK, page(visit, Some(viewer), title, body))
}

/// The viewer and an API listing, or the page that says why not.
async fn listing(visit: &Visit, path: String) -> Result<(Viewer, Value, u64, Option<String>), Response> {
    let viewer = visit.viewer().await?;
    let answer = visit.get(path).await;
    let (total, next) = (answer.total.unwrap_or(0), answer.next.clone());
    let body = answer.into_body(visit).map_err(|r| *r)?;
    Ok((viewer, body, total, next))
}

// ------------------------------------------------------------ users

async fn users(visit: Visit) -> Response {
    let mut path = format!("/users?{}", visit.paging());
    if !visit.param("q").is_empty() {
        path.push_str(&format!("&q={}", seg(&format!("username=~{}", visit.param("q")))));
    }
    let (viewer, list, total, next) = match listing(&visit, path).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    let body = html! {
        (search(&visit, "/harbor/users", "Search users by name", "users"))
        div.table-wrap { table #users {
            thead { tr { th scope="col" { "Name" } th scope="col" { "Administrator" } th scope="col" { "E-mail" }
                th.wide-only scope="col" { "Created" } th scope="col" { "Actions" } } }
            tbody { @for u in items(&list) {
                @let (uid, name) = (int(u, "user_id"), text(u, "username"));
                @let admin = u.get("sysadmin_flag").and_then(Value::as_bool).unwrap_or(false);
                tr {
                    td { (name) } td { @if admin { "Yes" } @else { "No" } } td { (text(u, "email")) }
                    td.wide-only { (when(&text(u, "creation_time"))) }
                    td {
                        @if uid != viewer.id {
                            form.inline method="post" action=(format!("/harbor/users/{uid}/admin")) {
                                (csrf(&visit))
                                input type="hidden" name="sysadmin" value=(if admin { "false" } else { "true" });
                                button.secondary type="submit" aria-label=(format!("Change administrator of {name}")) {
                                    @if admin { "Revoke administrator" } @else { "Make administrator" }
                                }
                            }
                            " "
                            (button_form(&visit, &format!("/harbor/users/{uid}/delete"), "danger", "Delete", Some(&format!("Delete {name}")), Some(&format!("Delete the user {name}?"))))
                        }
                    }
                }
            } }
        } }
        (pager(&visit, "/harbor/users", total, next.as_deref()))
        @if viewer.local {
            form.panel method="post" action="/harbor/users" {
                h2 { "New user" }
                (csrf(&visit))
                label for="username" { "User name" } input #username type="text" name="username" required;
                label for="email" { "E-mail" } input #email type="text" name="email" required;
                label for="realname" { "Full name" } input #realname type="text" name="realname";
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="new-password" required;
                p { button type="submit" { "Create user" } }
            }
        }
    };
    admin_page(&visit, &viewer, "Users", body)
}

async fn create_user(visit: Visit, body: Bytes) -> Response {
    let fields = form(&body);
    let password = fields.iter().find(|(k, _)| k == "password").map_or("", |(_, v)| v.as_str());
    let body = json!({
        "username": field(&fields, "username"),
        "email": field(&fields, "email"),
        "realname": field(&fields, "realname"),
        "password": password,
        "comment": "",
    });
    let answer = visit.api(Method::POST, "/users", Some(&body)).await;
    after(&visit, "/harbor/users", &answer, "The user was created.")
}

async fn set_admin(visit: Visit, Path(uid): Path<i64>, body: Bytes) -> Response {
    let fields = form(&body);
    let flag = field(&fields, "sysadmin") == "true";
    let answer = visit.api(Method::PUT, &format!("/users/{uid}/sysadmin"), Some(&json!({"sysadmin_flag": flag}))).await;
    after(&visit, "/harbor/users", &answer, "The user was changed.")
}

async fn delete_user(visit: Visit, Path(uid): Path<i64>) -> Response {
    let answer = visit.api(Method::DELETE, &format!("/users/{uid}"), None).await;
    after(&visit, "/harbor/users", &answer, "The user was deleted.")
}

// ------------------------------------------------------------ audit log

async fn audit(visit: Visit) -> Response {
    let mut path = format!("/audit-logs?{}", visit.paging());
    if !visit.param("q").is_empty() {
        path.push_str(&format!("&q={}", seg(&format!("username=~{}", visit.param("q")))));
    }
    let (viewer, list, total, next) = match listing(&visit, path).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    let body = html! {
        (search(&visit, "/harbor/logs", "Search by user name", "audit"))
        div.table-wrap { table #audit {
            thead { tr { th scope="col" { "User" } th scope="col" { "Resource" } th scope="col" { "Type" }
                th scope="col" { "Operation" } th scope="col" { "Time" } } }
            tbody { @for l in items(&list) { tr {
                td { (text(l, "username")) } td { (text(l, "resource")) } td { (text(l, "resource_type")) }
                td { (text(l, "operation")) } td { (when(&text(l, "op_time"))) }
            } } }
        } }
        @if items(&list).is_empty() { p.muted { "No log entries." } }
        (pager(&visit, "/harbor/logs", total, next.as_deref()))
    };
    admin_page(&visit, &viewer, "Audit log", body)
}

// ------------------------------------------------------------ scanners

async fn scanners(visit: Visit) -> Response {
    let (viewer, list, _, _) = match listing(&visit, "/scanners?page_size=100".to_owned()).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    let body = html! {
        div.table-wrap { table #scanners {
            thead { tr { th scope="col" { "Name" } th scope="col" { "Endpoint" } th scope="col" { "Default" }
                th scope="col" { "Enabled" } th scope="col" { "Description" } } }
            tbody { @for s in items(&list) { tr {
                td { (text(s, "name")) } td.mono { (text(s, "url")) }
                td { @if s.get("is_default").and_then(Value::as_bool).unwrap_or(false) { "Yes" } @else { "No" } }
                td { @if s.get("disabled").and_then(Value::as_bool).unwrap_or(false) { "No" } @else { "Yes" } }
                td { (text(s, "description")) }
            } } }
        } }
        @if items(&list).is_empty() { p.muted { "No scanners." } }
    };
    admin_page(&visit, &viewer, "Scanners", body)
}

// ------------------------------------------------------------ groups

const GROUP_TYPES: [(i64, &str); 3] = [(1, "LDAP"), (2, "HTTP"), (3, "OIDC")];

async fn groups(visit: Visit) -> Response {
    let (viewer, list, total, next) = match listing(&visit, format!("/usergroups?{}", visit.paging())).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    let body = html! {
        div.table-wrap { table #groups {
            thead { tr { th scope="col" { "Name" } th scope="col" { "Type" } th scope="col" { "LDAP DN" } th scope="col" { "Actions" } } }
            tbody { @for g in items(&list) {
                @let name = text(g, "group_name");
                @let kind = int(g, "group_type");
                tr {
                    td { (name) }
                    td { (GROUP_TYPES.iter().find(|(k, _)| *k == kind).map_or("—", |(_, n)| n)) }
                    td.mono { (text(g, "ldap_group_dn")) }
                    td { (button_form(&visit, &format!("/harbor/groups/{}/delete", int(g, "id")), "danger", "Delete", Some(&format!("Delete {name}")), Some(&format!("Delete the group {name}?")))) }
                }
            } }
        } }
        @if items(&list).is_empty() { p.muted { "No groups." } }
        (pager(&visit, "/harbor/groups", total, next.as_deref()))
        form.panel method="post" action="/harbor/groups" {
            h2 { "New group" }
            (csrf(&visit))
            label for="group_name" { "Name" } input #group_name type="text" name="group_name" required;
            label for="group_type" { "Type" }
            select #group_type name="group_type" {
                @for (k, n) in GROUP_TYPES { option value=(k) selected[k == 2] { (n) } }
            }
            label for="group_dn" { "LDAP group DN (LDAP groups)" } input #group_dn type="text" name="ldap_group_dn";
            p { button type="submit" { "Create group" } }
        }
    };
    admin_page(&visit, &viewer, "Groups", body)
}

async fn create_group(visit: Visit, body: Bytes) -> Response {
    let fields = form(&body);
    let body = json!({
        "group_name": field(&fields, "group_name"),
        "group_type": field(&fields, "group_type").parse::<i64>().unwrap_or(2),
        "ldap_group_dn": field(&fields, "ldap_group_dn"),
    });
    let answer = visit.api(Method::POST, "/usergroups", Some(&body)).await;
    after(&visit, "/harbor/groups", &answer, "The group was created.")
}

async fn delete_group(visit: Visit, Path(gid): Path<i64>) -> Response {
    let answer = visit.api(Method::DELETE, &format!("/usergroups/{gid}"), None).await;
    after(&visit, "/harbor/groups", &answer, "The group was deleted.")
}

// ------------------------------------------------------------ system robots

async fn robots(visit: Visit) -> Response {
    robots_page(visit, None).await
}

/// The system robot accounts; `created` is one just made, whose secret is
/// shown this once.
async fn robots_page(visit: Visit, created: Option<Value>) -> Response {
    let path = format!("/robots?{}&q={}", visit.paging(), seg("Level=system"));
    let (viewer, list, total, next) = match listing(&visit, path).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    let body = html! {
        @if let Some(robot) = &created {
            @let secret = text(robot, "secret");
            div.secret role="status" {
                p { strong { "Robot " (text(robot, "name")) " was created." }
                    " Copy its secret now: it is not shown again." }
                p { code #robot-secret { (secret) } " " (copy(&secret, "Copy the robot's secret")) }
            }
        }
        div.table-wrap { table #robots {
            thead { tr { th scope="col" { "Name" } th scope="col" { "Description" } th scope="col" { "Permissions" }
                th scope="col" { "Enabled" } th scope="col" { "Actions" } } }
            tbody { @for r in items(&list) {
                @let name = text(r, "name");
                tr {
                    td { a href=(format!("/harbor/robot-accounts/{}", int(r, "id"))) { (name) } } td { (text(r, "description")) }
                    td { @for p in r.get("permissions").map(items).unwrap_or_default() {
                        @for a in p.get("access").map(items).unwrap_or_default() {
                            span.badge { (text(p, "namespace")) " " (text(a, "resource")) ":" (text(a, "action")) }
                        }
                    } }
                    td { @if r.get("disable").and_then(Value::as_bool).unwrap_or(false) { "No" } @else { "Yes" } }
                    td { (button_form(&visit, &format!("/harbor/robot-accounts/{}/delete", int(r, "id")), "danger", "Delete", Some(&format!("Delete {name}")), Some(&format!("Delete the robot account {name}?")))) }
                }
            } }
        } }
        @if items(&list).is_empty() { p.muted { "No system robot accounts." } }
        (pager(&visit, "/harbor/robot-accounts", total, next.as_deref()))
        form.panel method="post" action="/harbor/robot-accounts" {
            h2 { "New system robot account" }
            (csrf(&visit))
            label for="robot_name" { "Name" } input #robot_name type="text" name="name" required;
            label for="robot_description" { "Description" } input #robot_description type="text" name="description";
            label for="robot_days" { "Expires after (days; −1: never)" }
            input #robot_days type="number" name="duration" value="30" min="-1";
            fieldset {
                legend { "In every project" }
                label.check { input type="checkbox" name="pull" checked; "Pull" }
                label.check { input type="checkbox" name="push"; "Push" }
            }
            p { button type="submit" { "Create robot account" } }
        }
    };
    admin_page(&visit, &viewer, "Robot accounts", body)
}

async fn create_robot(visit: Visit, body: Bytes) -> Response {
    let fields = form(&body);
    let access: Vec<Value> = ["pull", "push"]
        .into_iter()
        .filter(|a| checked(&fields, a))
        .map(|a| json!({"resource": "repository", "action": a}))
        .collect();
    let body = json!({
        "name": field(&fields, "name"),
        "description": field(&fields, "description"),
        "duration": field(&fields, "duration").parse::<i64>().unwrap_or(30),
        "level": "system",
        "permissions": [{"kind": "project", "namespace": "*", "access": access}],
    });
    let answer = visit.api(Method::POST, "/robots", Some(&body)).await;
    if answer.ok() {
        return robots_page(visit, Some(answer.body)).await;
    }
    after(&visit, "/harbor/robot-accounts", &answer, "")
}

async fn delete_robot(visit: Visit, Path(rid): Path<i64>) -> Response {
    let answer = visit.api(Method::DELETE, &format!("/robots/{rid}"), None).await;
    after(&visit, "/harbor/robot-accounts", &answer, "The robot account was deleted.")
}

/// Whether a system robot may `action` repositories in every project.
fn everywhere(robot: &Value, action: &str) -> bool {
    robot.get("permissions").map(items).unwrap_or_default().iter().any(|p| {
        text(p, "namespace") == "*"
            && p.get("access")
                .map(items)
                .unwrap_or_default()
                .iter()
                .any(|a| text(a, "resource") == "repository" && text(a, "action") == action)
    })
}

/// One system robot: its description, duration, whether it is disabled
/// and its pull and push in every project (editable; its other
/// permissions are kept as they are), and a new secret on demand (shown
/// once).
async fn robot(visit: Visit, Path(rid): Path<i64>) -> Response {
    robot_page(visit, rid, None).await
}

async fn robot_page(visit: Visit, rid: i64, secret: Option<String>) -> Response {
    let viewer = match visit.viewer().await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let robot = match visit.get(format!("/robots/{rid}")).await.into_body(&visit) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    if text(&robot, "level") != "system" {
        return super::layout::error_page(
            &visit,
            Some(&viewer),
            StatusCode::NOT_FOUND,
            "No such system robot account.",
        );
    }
    let name = text(&robot, "name");
    let here = format!("/harbor/robot-accounts/{rid}");
    let disabled = robot.get("disable").and_then(Value::as_bool).unwrap_or(false);
    let body = html! {
        p { a href="/harbor/robot-accounts" { "Back to the robot accounts" } }
        @if let Some(secret) = &secret {
            div.secret role="status" {
                p { strong { "A new secret was made for " (name) "." } " Copy it now: it is not shown again." }
                p { code #robot-secret { (secret) } " " (copy(secret, "Copy the robot's secret")) }
            }
        }
        p { "Expires: " @if int(&robot, "expires_at") <= 0 { "never" } @else { (super::super::api::rfc3339(int(&robot, "expires_at")).get(..10).unwrap_or_default()) }
            " · Enabled: " @if disabled { "No" } @else { "Yes" } }
        h2 { "Permissions" }
        ul #robot-permissions { @for p in robot.get("permissions").map(items).unwrap_or_default() {
            li { (text(p, "kind")) " " (text(p, "namespace")) ": "
                @for a in p.get("access").map(items).unwrap_or_default() { span.badge { (text(a, "resource")) ":" (text(a, "action")) } " " } }
        } }
        @if !viewer.read_only {
            form.panel method="post" action=(here) {
                h2 { "Settings" }
                (csrf(&visit))
                label for="robot_description" { "Description" }
                input #robot_description type="text" name="description" value=(text(&robot, "description"));
                label for="robot_days" { "Expires after (days from its creation; −1: never)" }
                input #robot_days type="number" name="duration" min="-1" value=(int(&robot, "duration"));
                label.check { input type="checkbox" name="disable" checked[disabled]; "Disabled" }
                fieldset {
                    legend { "In every project" }
                    label.check { input type="checkbox" name="pull" checked[everywhere(&robot, "pull")]; "Pull" }
                    label.check { input type="checkbox" name="push" checked[everywhere(&robot, "push")]; "Push" }
                }
                p { button type="submit" { "Save robot account" } }
            }
            form.panel method="post" action=(format!("{here}/secret"))
                data-confirm=(format!("Make a new secret for {name}? The old one stops working.")) {
                (csrf(&visit))
                p { button.secondary type="submit" { "Refresh secret" } }
            }
        }
    };
    admin_page(&visit, &viewer, &format!("Robot account {name}"), body)
}

async fn save_robot(visit: Visit, Path(rid): Path<i64>, body: Bytes) -> Response {
    let fields = form(&body);
    let here = format!("/harbor/robot-accounts/{rid}");
    let current = visit.get(format!("/robots/{rid}")).await;
    if !current.ok() {
        return after(&visit, &here, &current, "");
    }
    // The "every project" entry's pull and push are the form's; every
    // other permission stays as it is.
    let mut permissions: Vec<Value> = Vec::new();
    let mut seen = false;
    let wanted: Vec<Value> = ["pull", "push"]
        .into_iter()
        .filter(|a| checked(&fields, a))
        .map(|a| json!({"resource": "repository", "action": a}))
        .collect();
    for p in current.body.get("permissions").map(items).unwrap_or_default() {
        if text(p, "namespace") != "*" {
            permissions.push(p.clone());
            continue;
        }
        seen = true;
        let mut access: Vec<Value> = p
            .get("access")
            .map(items)
            .unwrap_or_default()
            .iter()
            .filter(|a| !(text(a, "resource") == "repository" && matches!(text(a, "action").as_str(), "pull" | "push")))
            .cloned()
            .collect();
        access.extend(wanted.iter().cloned());
        if !access.is_empty() {
            permissions.push(json!({"kind": text(p, "kind"), "namespace": "*", "access": access}));
        }
    }
    if !seen && !wanted.is_empty() {
        permissions.push(json!({"kind": "project", "namespace": "*", "access": wanted}));
    }
    let body = json!({
        "name": text(&current.body, "name"),
        "description": field(&fields, "description"),
        "duration": field(&fields, "duration").parse::<i64>().unwrap_or(-1),
        "disable": checked(&fields, "disable"),
        "level": "system",
        "permissions": permissions,
    });
    let answer = visit.api(Method::PUT, &format!("/robots/{rid}"), Some(&body)).await;
    after(&visit, &here, &answer, "The robot account was saved.")
}

async fn refresh_robot(visit: Visit, Path(rid): Path<i64>) -> Response {
    let answer = visit.api(Method::PATCH, &format!("/robots/{rid}"), Some(&json!({}))).await;
    if answer.ok() {
        let secret = text(&answer.body, "secret");
        return robot_page(visit, rid, Some(secret)).await;
    }
    after(&visit, &format!("/harbor/robot-accounts/{rid}"), &answer, "")
}

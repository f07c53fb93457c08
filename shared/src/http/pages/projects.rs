//! The projects list and a project's tabs: repositories, members, robot
//! accounts, logs and configuration (the frame of every tab, [`Frame`]).

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
use super::{
    Perms, Viewer, Visit, after, back, checked, field, form, html, int, items, see_other, seg, size, text, when,
};
use crate::http::state::AppState;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/harbor/projects", get(list).post(create))
        .route("/harbor/projects/{id}", get(project_root))
        .route("/harbor/projects/{id}/repositories", get(repositories))
        .route("/harbor/projects/{id}/repositories/{repo}/delete", post(delete_repository))
        .route("/harbor/projects/{id}/members", get(members).post(add_member))
        .route("/harbor/projects/{id}/members/{mid}/role", post(change_role))
        .route("/harbor/projects/{id}/members/{mid}/delete", post(remove_member))
        .route("/harbor/projects/{id}/robot-account", get(robots).post(create_robot))
        .route("/harbor/projects/{id}/robot-account/{rid}/delete", post(delete_robot))
        .route("/harbor/projects/{id}/robot-account/{rid}", get(robot).post(save_robot))
        .route("/harbor/projects/{id}/robot-account/{rid}/secret", post(refresh_robot))
        .route("/harbor/projects/{id}/logs", get(logs))
        .route("/harbor/projects/{id}/configs", get(configs).post(save_configs))
        .route("/harbor/projects/{id}/delete", post(delete_project))
        .route("/harbor/projects/{id}/quota", post(save_quota))
}

/// Harbor's project roles, by id.
pub const ROLES: [(i64, &str); 5] =
    [(1, "Project Admin"), (4, "Maintainer"), (2, "Developer"), (3, "Guest"), (5, "Limited Guest")];

fn role_name(id: i64) -> &'static str {
    ROLES.iter().find(|(i, _)| *i == id).map_or("—", |(_, n)| n)
}

fn is_public(p: &Value) -> bool {
    p.pointer("/metadata/public").and_then(Value::as_str) == Some("true")
}

// ------------------------------------------------------------ the list

const GIB: i64 = 1024 * 1024 * 1024;

/// A storage limit typed in GiB, in bytes (−1: unlimited).
fn gib_to_bytes(typed: &str) -> i64 {
    match typed.trim().parse::<i64>() {
        Ok(n) if n >= 0 => n.saturating_mul(GIB),
        _ => -1,
    }
}

async fn list(visit: Visit) -> Response {
    let viewer = match visit.viewer().await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut query = format!("/projects?{}", visit.paging());
    if !visit.param("q").is_empty() {
        query.push_str(&format!("&name={}", seg(visit.param("q"))));
    }
    let (answer, info) = tokio::join!(visit.get(&query), visit.get("/systeminfo"));
    let (total, next) = (answer.total.unwrap_or(0), answer.next.clone());
    let projects = match answer.into_body(&visit) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    // Each row's quota use, read at once (a page holds at most PAGE_SIZE).
    let summaries = futures::future::join_all(
        items(&projects).iter().map(|p| visit.get(format!("/projects/{}/summary", int(p, "project_id")))),
    )
    .await;
    let may_create = viewer.sysadmin || text(&info.body, "project_creation_restriction") != "adminonly";
    let body = html! {
        h1 { "Projects" }
        (search(&visit, "/harbor/projects", "Search projects by name", "projects"))
        div.table-wrap {
            table #projects {
                caption.muted { "Projects you can see" }
                thead { tr {
                    th scope="col" { "Name" } th scope="col" { "Access" } th scope="col" { "Your role" }
                    th scope="col" { "Repositories" } th scope="col" { "Quota used" }
                    th.wide-only scope="col" { "Created" }
                } }
                tbody {
                    @for (p, s) in items(&projects).iter().zip(&summaries) {
                        tr {
                            td { a href=(format!("/harbor/projects/{}/repositories", int(p, "project_id"))) { (text(p, "name")) } }
                            td { @if is_public(p) { "Public" } @else { "Private" } }
                            td { (role_name(int(p, "current_user_role_id"))) }
                            td { (int(p, "repo_count")) }
                            td { (quota(&s.body)) }
                            td.wide-only { (when(&text(p, "creation_time"))) }
                        }
                    }
                }
            }
        }
        @if items(&projects).is_empty() { p.muted { "No projects." } }
        (pager(&visit, "/harbor/projects", total, next.as_deref()))
        @if may_create {
            form.panel method="post" action="/harbor/projects" {
                h2 { "New project" }
                (csrf(&visit))
                label for="project_name" { "Name" }
                input #project_name type="text" name="project_name" required
                    pattern="[a-z0-9]+([._\\-][a-z0-9]+)*" maxlength="255"
                    aria-describedby="project_name_help";
                p.muted #project_name_help { "Lower-case letters, digits and . _ - between them." }
                label.check { input type="checkbox" name="public"; "Public (anyone may pull)" }
                label for="storage_limit" { "Storage quota in GiB (−1: unlimited)" }
                input #storage_limit type="number" name="storage_limit" value="-1" min="-1";
                p { button type="submit" { "Create project" } }
            }
        }
    };
    html(StatusCode::OK, page(&visit, Some(&viewer), "Projects", body))
}

/// `used / hard` of a project summary's quota.
fn quota(summary: &Value) -> Markup {
    let used = summary.pointer("/quota/used/storage").and_then(Value::as_i64);
    let hard = summary.pointer("/quota/hard/storage").and_then(Value::as_i64);
    html! {
        @match (used, hard) {
            (Some(u), Some(h)) if h >= 0 => { (size(u)) " of " (size(h)) }
            (Some(u), _) => { (size(u)) " (unlimited)" }
            _ => { "—" }
        }
    }
}

async fn create(visit: Visit, body: Bytes) -> Response {
    let fields = form(&body);
    let bytes = gib_to_bytes(field(&fields, "storage_limit"));
    let public = checked(&fields, "public");
    let body = json!({
        "project_name": field(&fields, "project_name"),
        "public": public,
        "metadata": {"public": public.to_string()},
        "storage_limit": bytes,
    });
    let answer = visit.api(Method::POST, "/projects", Some(&body)).await;
    if answer.ok()
        && let Some(id) = answer.location.rsplit('/').next().filter(|id| id.parse::<i64>().is_ok())
    {
        return back(&format!("/harbor/projects/{id}/repositories"), Ok("The project was created."));
    }
    after(&visit, "/harbor/projects", &answer, "The project was created.")
}

// ------------------------------------------------------------ a project

/// A project page's frame: the viewer, the project and what the viewer may
/// do in it.
pub(super) struct Frame {
    pub viewer: Viewer,
    pub project: Value,
    pub perms: Perms,
}

impl Frame {
    pub async fn load(visit: &Visit, id: i64) -> Result<Self, Response> {
        let viewer = visit.viewer().await?;
        let (project, perms) = tokio::join!(visit.get(format!("/projects/{id}")), visit.permissions(id));
        let project = project.into_body(visit).map_err(|r| *r)?;
        Ok(Self { viewer, project, perms })
    }

    pub fn id(&self) -> i64 {
        int(&self.project, "project_id")
    }

    pub fn name(&self) -> String {
        text(&self.project, "name")
    }

    /// The project's page with its tabs, `tab` the current one.
    pub fn render(&self, visit: &Visit, tab: &str, title: &str, content: Markup) -> Response {
        let id = self.id();
        let tabs: Vec<(&str, &str, bool)> = vec![
            ("repositories", "Repositories", self.perms.can("repository", "list")),
            ("members", "Members", self.perms.can("member", "list")),
            ("labels", "Labels", self.perms.can("label", "list")),
            ("p2p-provider", "P2P Preheat", self.perms.can("preheat-policy", "list")),
            (
                "tag-strategy",
                "Policy",
                self.perms.can("tag-retention", "list") || self.perms.can("immutable-tag", "list"),
            ),
            ("robot-account", "Robot accounts", self.perms.can("robot", "list")),
            ("webhook", "Webhooks", self.perms.can("notification-policy", "list")),
            ("logs", "Logs", self.perms.can("log", "list")),
            ("configs", "Configuration", self.perms.can("configuration", "read")),
        ];
        let name = self.name();
        let body = html! {
            p.crumbs { a href="/harbor/projects" { "Projects" } " / " (name) }
            h1 { (name) " " span.badge { @if is_public(&self.project) { "Public" } @else { "Private" } } }
            nav aria-label="Project" {
                ul.tabs {
                    @for (path, label, shown) in &tabs {
                        @if *shown {
                            li { a href=(format!("/harbor/projects/{id}/{path}"))
                                aria-current=[(*path == tab).then_some("page")] { (label) } }
                        }
                    }
                }
            }
            (content)
        };
        html(StatusCode::OK, page(visit, Some(&self.viewer), &format!("{title} · {name}"), body))
    }
}

async fn project_root(Path(id): Path<i64>) -> Response {
    see_other(&format!("/harbor/projects/{id}/repositories"))
}

async fn repositories(visit: Visit, Path(id): Path<i64>) -> Response {
    let frame = match Frame::load(&visit, id).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let name = frame.name();
    let mut query = format!("/projects/{}/repositories?{}", seg(&name), visit.paging());
    if !visit.param("q").is_empty() {
        query.push_str(&format!("&q={}", seg(&format!("name=~{}", visit.param("q")))));
    }
    let answer = visit.get(&query).await;
    let (total, next) = (answer.total.unwrap_or(0), answer.next.clone());
    let repos = match answer.into_body(&visit) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let may_delete = frame.perms.can("repository", "delete");
    let here = format!("/harbor/projects/{id}/repositories");
    let prefix = format!("{name}/");
    let body = html! {
        h2 { "Repositories" }
        p { "Push: " code { "docker push " (visit.host) "/" (name) "/REPOSITORY[:TAG]" } }
        (search(&visit, &here, "Search repositories by name", "repositories"))
        div.table-wrap {
            table #repositories {
                thead { tr {
                    th scope="col" { "Name" } th scope="col" { "Artifacts" } th scope="col" { "Pulls" }
                    th.wide-only scope="col" { "Updated" }
                    @if may_delete { th scope="col" { "Actions" } }
                } }
                tbody {
                    @for r in items(&repos) {
                        @let full = text(r, "name");
                        @let short = full.strip_prefix(&prefix).unwrap_or(&full).to_owned();
                        tr {
                            td { a href=(format!("{here}/{}/artifacts-tab", seg(&short))) { (full) } }
                            td { (int(r, "artifact_count")) }
                            td { (int(r, "pull_count")) }
                            td.wide-only { (when(&text(r, "update_time"))) }
                            @if may_delete {
                                td { (button_form(&visit, &format!("{here}/{}/delete", seg(&short)), "danger", "Delete", Some(&format!("Delete {full}")), Some(&format!("Delete the repository {full} and all its artifacts?")))) }
                            }
                        }
                    }
                }
            }
        }
        @if items(&repos).is_empty() { p.muted { "No repositories." } }
        (pager(&visit, &here, total, next.as_deref()))
    };
    frame.render(&visit, "repositories", "Repositories", body)
}

async fn delete_repository(visit: Visit, Path((id, repo)): Path<(i64, String)>) -> Response {
    let frame = match Frame::load(&visit, id).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let path = format!("/projects/{}/repositories/{}", seg(&frame.name()), super::api_repo(&repo));
    let answer = visit.api(Method::DELETE, &path, None).await;
    after(&visit, &format!("/harbor/projects/{id}/repositories"), &answer, "The repository was deleted.")
}

// ------------------------------------------------------------ members

async fn members(visit: Visit, Path(id): Path<i64>) -> Response {
    let frame = match Frame::load(&visit, id).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let mut query = format!("/projects/{id}/members?{}", visit.paging());
    if !visit.param("q").is_empty() {
        query.push_str(&format!("&entityname={}", seg(visit.param("q"))));
    }
    let answer = visit.get(&query).await;
    let (total, next) = (answer.total.unwrap_or(0), answer.next.clone());
    let list = match answer.into_body(&visit) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let (may_add, may_change, may_remove) =
        (frame.perms.can("member", "create"), frame.perms.can("member", "update"), frame.perms.can("member", "delete"));
    let here = format!("/harbor/projects/{id}/members");
    let body = html! {
        h2 { "Members" }
        (search(&visit, &here, "Search members by name", "members"))
        div.table-wrap {
            table #members {
                thead { tr {
                    th scope="col" { "Name" } th scope="col" { "Type" } th scope="col" { "Role" }
                    @if may_change || may_remove { th scope="col" { "Actions" } }
                } }
                tbody {
                    @for m in items(&list) {
                        @let mid = int(m, "id");
                        @let who = text(m, "entity_name");
                        tr {
                            td { (who) }
                            td { @if text(m, "entity_type") == "g" { "Group" } @else { "User" } }
                            td { (role_name(int(m, "role_id"))) }
                            @if may_change || may_remove {
                                td {
                                    @if may_change {
                                        form.inline method="post" action=(format!("{here}/{mid}/role")) {
                                            (csrf(&visit))
                                            label.check { span.muted { "Role of " (who) }
                                                (role_select(&format!("role-{mid}"), int(m, "role_id"))) }
                                            button.secondary type="submit" { "Change role" }
                                        }
                                    }
                                    " "
                                    @if may_remove {
                                        (button_form(&visit, &format!("{here}/{mid}/delete"), "danger", "Remove", Some(&format!("Remove {who}")), Some(&format!("Remove {who} from the project?"))))
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        (pager(&visit, &here, total, next.as_deref()))
        @if may_add {
            form.panel method="post" action=(here) {
                h2 { "Add a member" }
                (csrf(&visit))
                label for="member_name" { "User name" }
                input #member_name type="text" name="username" required;
                label for="member_role" { "Role" }
                (role_select("member_role", 2))
                p { button type="submit" { "Add member" } }
            }
        }
    };
    frame.render(&visit, "members", "Members", body)
}

fn role_select(id: &str, current: i64) -> Markup {
    html! {
        select id=(id) name="role_id" {
            @for (rid, name) in ROLES {
                option value=(rid) selected[rid == current] { (name) }
            }
        }
    }
}

async fn add_member(visit: Visit, Path(id): Path<i64>, body: Bytes) -> Response {
    let fields = form(&body);
    let role = field(&fields, "role_id").parse::<i64>().unwrap_or(0);
    let body = json!({"role_id": role, "member_user": {"username": field(&fields, "username")}});
    let answer = visit.api(Method::POST, &format!("/projects/{id}/members"), Some(&body)).await;
    after(&visit, &format!("/harbor/projects/{id}/members"), &answer, "The member was added.")
}

async fn change_role(visit: Visit, Path((id, mid)): Path<(i64, i64)>, body: Bytes) -> Response {
    let fields = form(&body);
    let role = field(&fields, "role_id").parse::<i64>().unwrap_or(0);
    let answer =
        visit.api(Method::PUT, &format!("/projects/{id}/members/{mid}"), Some(&json!({"role_id": role}))).await;
    after(&visit, &format!("/harbor/projects/{id}/members"), &answer, "The role was changed.")
}

async fn remove_member(visit: Visit, Path((id, mid)): Path<(i64, i64)>) -> Response {
    let answer = visit.api(Method::DELETE, &format!("/projects/{id}/members/{mid}"), None).await;
    after(&visit, &format!("/harbor/projects/{id}/members"), &answer, "The member was removed.")
}

// ------------------------------------------------------------ robots

/// The permissions a project robot can be given here: (resource, action,
/// label).
const ROBOT_ACCESS: [(&str, &str, &str); 5] = [
    ("repository", "pull", "Pull"),
    ("repository", "push", "Push"),
    ("artifact", "delete", "Delete artifacts"),
    ("tag", "create", "Create tags"),
    ("scan", "create", "Scan"),
];

async fn robots(visit: Visit, Path(id): Path<i64>) -> Response {
    robots_page(visit, id, None).await
}

/// The robot accounts tab; `created` is a robot just made, whose secret is
/// shown this once.
async fn robots_page(visit: Visit, id: i64, created: Option<Value>) -> Response {
    let frame = match Frame::load(&visit, id).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let q = format!("Level=project,ProjectID={id}");
    let query = format!("/robots?{}&q={}", visit.paging(), seg(&q));
    let answer = visit.get(&query).await;
    let (total, next) = (answer.total.unwrap_or(0), answer.next.clone());
    let list = match answer.into_body(&visit) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let (may_create, may_delete) = (frame.perms.can("robot", "create"), frame.perms.can("robot", "delete"));
    let may_update = frame.perms.can("robot", "update");
    let here = format!("/harbor/projects/{id}/robot-account");
    let body = html! {
        h2 { "Robot accounts" }
        @if let Some(robot) = &created {
            @let secret = text(robot, "secret");
            div.secret role="status" {
                p { strong { "Robot " (text(robot, "name")) " was created." }
                    " Copy its secret now: it is not shown again." }
                p { code #robot-secret { (secret) } " " (copy(&secret, "Copy the robot's secret")) }
            }
        }
        div.table-wrap {
            table #robots {
                thead { tr {
                    th scope="col" { "Name" } th scope="col" { "Description" } th scope="col" { "Permissions" }
                    th scope="col" { "Expires" } th scope="col" { "Enabled" }
                    @if may_delete { th scope="col" { "Actions" } }
                } }
                tbody {
                    @for r in items(&list) {
                        @let name = text(r, "name");
                        tr {
                            td { @if may_update { a href=(format!("{here}/{}", int(r, "id"))) { (name) } } @else { (name) } }
                            td { (text(r, "description")) }
                            td {
                                @for p in r.get("permissions").map(items).unwrap_or_default() {
                                    @for a in p.get("access").map(items).unwrap_or_default() {
                                        span.badge { (text(a, "resource")) ":" (text(a, "action")) }
                                    }
                                }
                            }
                            td { @if int(r, "expires_at") <= 0 { "Never" } @else { (super::super::api::rfc3339(int(r, "expires_at")).get(..10).unwrap_or_default()) } }
                            td { @if r.get("disable").and_then(Value::as_bool).unwrap_or(false) { "No" } @else { "Yes" } }
                            @if may_delete {
                                td { (button_form(&visit, &format!("{here}/{}/delete", int(r, "id")), "danger", "Delete", Some(&format!("Delete {name}")), Some(&format!("Delete the robot account {name}?")))) }
                            }
                        }
                    }
                }
            }
        }
        @if items(&list).is_empty() { p.muted { "No robot accounts." } }
        (pager(&visit, &here, total, next.as_deref()))
        @if may_create {
            form.panel method="post" action=(here) {
                h2 { "New robot account" }
                (csrf(&visit))
                label for="robot_name" { "Name" }
                input #robot_name type="text" name="name" required maxlength="255";
                label for="robot_description" { "Description" }
                input #robot_description type="text" name="description";
                label for="robot_days" { "Expires after (days; −1: never)" }
                input #robot_days type="number" name="duration" value="30" min="-1";
                fieldset {
                    legend { "Permissions" }
                    @for (res, act, label) in ROBOT_ACCESS {
                        label.check { input type="checkbox" name="access" value=(format!("{res}:{act}"))
                            checked[act == "pull"]; (label) }
                    }
                }
                p { button type="submit" { "Create robot account" } }
            }
        }
    };
    frame.render(&visit, "robot-account", "Robot accounts", body)
}

async fn create_robot(visit: Visit, Path(id): Path<i64>, body: Bytes) -> Response {
    let fields = form(&body);
    let project = visit.get(format!("/projects/{id}")).await;
    if !project.ok() {
        return super::after(&visit, "/harbor/projects", &project, "");
    }
    let access: Vec<Value> = fields
        .iter()
        .filter(|(k, _)| k == "access")
        .filter_map(|(_, v)| v.split_once(':'))
        .filter(|(r, a)| ROBOT_ACCESS.iter().any(|(res, act, _)| res == r && act == a))
        .map(|(r, a)| json!({"resource": r, "action": a}))
        .collect();
    let body = json!({
        "name": field(&fields, "name"),
        "description": field(&fields, "description"),
        "duration": field(&fields, "duration").parse::<i64>().unwrap_or(30),
        "level": "project",
        "permissions": [{"kind": "project", "namespace": text(&project.body, "name"), "access": access}],
    });
    let answer = visit.api(Method::POST, "/robots", Some(&body)).await;
    if answer.ok() {
        return robots_page(visit, id, Some(answer.body)).await;
    }
    after(&visit, &format!("/harbor/projects/{id}/robot-account"), &answer, "")
}

/// One robot account: its description, duration, permissions and whether
/// it is disabled (editable), and a new secret on demand (shown once).
async fn robot(visit: Visit, Path((id, rid)): Path<(i64, i64)>) -> Response {
    robot_page(visit, id, rid, None).await
}

async fn robot_page(visit: Visit, id: i64, rid: i64, secret: Option<String>) -> Response {
    let frame = match Frame::load(&visit, id).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let robot = match visit.get(format!("/robots/{rid}")).await.into_body(&visit) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    // A robot of another project (or a system robot) is not this page's.
    let namespace = robot.pointer("/permissions/0/namespace").and_then(Value::as_str).unwrap_or_default();
    if text(&robot, "level") != "project" || namespace != frame.name() {
        return super::layout::error_page(&visit, Some(&frame.viewer), StatusCode::NOT_FOUND, "No such robot account.");
    }
    let has = |res: &str, act: &str| {
        robot.get("permissions").map(items).unwrap_or_default().iter().any(|p| {
            p.get("access")
                .map(items)
                .unwrap_or_default()
                .iter()
                .any(|a| text(a, "resource") == res && text(a, "action") == act)
        })
    };
    let name = text(&robot, "name");
    let here = format!("/harbor/projects/{id}/robot-account/{rid}");
    let may_update = frame.perms.can("robot", "update");
    let disabled = robot.get("disable").and_then(Value::as_bool).unwrap_or(false);
    let body = html! {
        p { a href=(format!("/harbor/projects/{id}/robot-account")) { "Back to the robot accounts" } }
        h2 { "Robot account " (name) }
        @if let Some(secret) = &secret {
            div.secret role="status" {
                p { strong { "A new secret was made for " (name) "." } " Copy it now: it is not shown again." }
                p { code #robot-secret { (secret) } " " (copy(secret, "Copy the robot's secret")) }
            }
        }
        p { "Expires: " @if int(&robot, "expires_at") <= 0 { "never" } @else { (super::super::api::rfc3339(int(&robot, "expires_at")).get(..10).unwrap_or_default()) }
            " · Enabled: " @if disabled { "No" } @else { "Yes" } }
        @if may_update {
            form.panel method="post" action=(here) {
                h3 { "Settings" }
                (csrf(&visit))
                label for="robot_description" { "Description" }
                input #robot_description type="text" name="description" value=(text(&robot, "description"));
                label for="robot_days" { "Expires after (days from its creation; −1: never)" }
                input #robot_days type="number" name="duration" min="-1" value=(int(&robot, "duration"));
                label.check { input type="checkbox" name="disable" checked[disabled]; "Disabled" }
                fieldset {
                    legend { "Permissions" }
                    @for (res, act, label) in ROBOT_ACCESS {
                        label.check { input type="checkbox" name="access" value=(format!("{res}:{act}")) checked[has(res, act)]; (label) }
                    }
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
    frame.render(&visit, "robot-account", "Robot account", body)
}

async fn save_robot(visit: Visit, Path((id, rid)): Path<(i64, i64)>, body: Bytes) -> Response {
    let fields = form(&body);
    let here = format!("/harbor/projects/{id}/robot-account/{rid}");
    let current = visit.get(format!("/robots/{rid}")).await;
    if !current.ok() {
        return after(&visit, &here, &current, "");
    }
    let namespace = current.body.pointer("/permissions/0/namespace").cloned().unwrap_or(Value::Null);
    let access: Vec<Value> = fields
        .iter()
        .filter(|(k, _)| k == "access")
        .filter_map(|(_, v)| v.split_once(':'))
        .filter(|(r, a)| ROBOT_ACCESS.iter().any(|(res, act, _)| res == r && act == a))
        .map(|(r, a)| json!({"resource": r, "action": a}))
        .collect();
    let body = json!({
        "name": text(&current.body, "name"),
        "description": field(&fields, "description"),
        "duration": field(&fields, "duration").parse::<i64>().unwrap_or(-1),
        "disable": checked(&fields, "disable"),
        "level": "project",
        "permissions": [{"kind": "project", "namespace": namespace, "access": access}],
    });
    let answer = visit.api(Method::PUT, &format!("/robots/{rid}"), Some(&body)).await;
    after(&visit, &here, &answer, "The robot account was saved.")
}

async fn refresh_robot(visit: Visit, Path((id, rid)): Path<(i64, i64)>) -> Response {
    let answer = visit.api(Method::PATCH, &format!("/robots/{rid}"), Some(&json!({}))).await;
    if answer.ok() {
        let secret = text(&answer.body, "secret");
        return robot_page(visit, id, rid, Some(secret)).await;
    }
    after(&visit, &format!("/harbor/projects/{id}/robot-account/{rid}"), &answer, "")
}

async fn delete_robot(visit: Visit, Path((id, rid)): Path<(i64, i64)>) -> Response {
    let answer = visit.api(Method::DELETE, &format!("/robots/{rid}"), None).await;
    after(&visit, &format!("/harbor/projects/{id}/robot-account"), &answer, "The robot account was deleted.")
}

// ------------------------------------------------------------ logs

async fn logs(visit: Visit, Path(id): Path<i64>) -> Response {
    let frame = match Frame::load(&visit, id).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let mut query = format!("/projects/{}/logs?{}", seg(&frame.name()), visit.paging());
    if !visit.param("q").is_empty() {
        query.push_str(&format!("&q={}", seg(&format!("username=~{}", visit.param("q")))));
    }
    let answer = visit.get(&query).await;
    let (total, next) = (answer.total.unwrap_or(0), answer.next.clone());
    let list = match answer.into_body(&visit) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let here = format!("/harbor/projects/{id}/logs");
    let body = html! {
        h2 { "Logs" }
        (search(&visit, &here, "Search by user name", "logs"))
        div.table-wrap {
            table #logs {
                thead { tr {
                    th scope="col" { "User" } th scope="col" { "Resource" } th scope="col" { "Type" }
                    th scope="col" { "Operation" } th scope="col" { "Time" }
                } }
                tbody {
                    @for l in items(&list) {
                        tr {
                            td { (text(l, "username")) } td { (text(l, "resource")) }
                            td { (text(l, "resource_type")) } td { (text(l, "operation")) }
                            td { (when(&text(l, "op_time"))) }
                        }
                    }
                }
            }
        }
        @if items(&list).is_empty() { p.muted { "No log entries." } }
        (pager(&visit, &here, total, next.as_deref()))
    };
    frame.render(&visit, "logs", "Logs", body)
}

// ------------------------------------------------------------ configuration

const SEVERITIES: [&str; 5] = ["none", "low", "medium", "high", "critical"];

async fn configs(visit: Visit, Path(id): Path<i64>) -> Response {
    let frame = match Frame::load(&visit, id).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let summary = visit.get(format!("/projects/{id}/summary")).await;
    let may_edit = frame.perms.can(".", "update");
    let p = &frame.project;
    let meta = |k: &str| p.pointer(&format!("/metadata/{k}")).and_then(Value::as_str).unwrap_or_default().to_owned();
    let on = |k: &str| meta(k) == "true";
    let severity = meta("severity");
    let allowlist: Vec<String> =
        p.pointer("/cve_allowlist/items").map(items).unwrap_or_default().iter().map(|i| text(i, "cve_id")).collect();
    let toggles = [
        ("public", "Public: anyone may pull from this project"),
        ("enable_content_trust_cosign", "Content trust: pull only artifacts signed with cosign"),
        ("prevent_vul", "Prevent vulnerable images from running"),
        ("auto_scan", "Scan images on push"),
        ("auto_sbom_generation", "Generate an SBOM on push"),
        ("reuse_sys_cve_allowlist", "Use the system CVE allowlist"),
    ];
    let body = html! {
        h2 { "Configuration" }
        p { "Quota used: " (quota(&summary.body)) }
        form.panel method="post" action=(format!("/harbor/projects/{id}/configs")) {
            (csrf(&visit))
            fieldset disabled[!may_edit] {
                legend { "Project settings" }
                @for (key, label) in toggles {
                    label.check { input type="checkbox" name=(key) checked[on(key)]; (label) }
                }
                label for="severity" { "Prevent images with vulnerabilities of this severity and above" }
                select #severity name="severity" {
                    @for s in SEVERITIES { option value=(s) selected[s == severity] { (s) } }
                }
                label for="allowlist" { "Project CVE allowlist (one CVE id a line)" }
                textarea #allowlist name="allowlist" rows="4" cols="40" { (allowlist.join("\n")) }
                @if may_edit { p { button type="submit" { "Save" } } }
            }
        }
        @if frame.viewer.sysadmin {
            @let hard = summary.body.pointer("/quota/hard/storage").and_then(Value::as_i64).unwrap_or(-1);
            form.bar method="post" action=(format!("/harbor/projects/{id}/quota")) {
                (csrf(&visit))
                div {
                    label for="quota_gib" { "Storage quota in GiB (−1: unlimited)" }
                    input #quota_gib type="number" name="storage_limit" min="-1"
                        value=(if hard < 0 { -1 } else { hard / GIB });
                }
                button type="submit" { "Set quota" }
            }
        }
        @if frame.perms.can(".", "delete") {
            form.panel method="post" action=(format!("/harbor/projects/{id}/delete"))
                data-confirm=(format!("Delete the project {}?", frame.name())) {
                h2 { "Delete the project" }
                p.muted { "Only an empty project (no repositories) can be deleted." }
                (csrf(&visit))
                label.check { input type="checkbox" name="confirm" required; "I understand this deletes the project." }
                p { button.danger type="submit" { "Delete project" } }
            }
        }
    };
    frame.render(&visit, "configs", "Configuration", body)
}

async fn save_configs(visit: Visit, Path(id): Path<i64>, body: Bytes) -> Response {
    let fields = form(&body);
    let flag = |k: &str| checked(&fields, k).to_string();
    let severity = field(&fields, "severity");
    let items: Vec<Value> = field(&fields, "allowlist")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| json!({"cve_id": l}))
        .collect();
    let body = json!({
        "metadata": {
            "public": flag("public"),
            "enable_content_trust_cosign": flag("enable_content_trust_cosign"),
            "prevent_vul": flag("prevent_vul"),
            "auto_scan": flag("auto_scan"),
            "auto_sbom_generation": flag("auto_sbom_generation"),
            "reuse_sys_cve_allowlist": flag("reuse_sys_cve_allowlist"),
            "severity": if SEVERITIES.contains(&severity) { severity } else { "low" },
        },
        "cve_allowlist": {"items": items},
    });
    let answer = visit.api(Method::PUT, &format!("/projects/{id}"), Some(&body)).await;
    after(&visit, &format!("/harbor/projects/{id}/configs"), &answer, "The configuration was saved.")
}

async fn delete_project(visit: Visit, Path(id): Path<i64>) -> Response {
    let answer = visit.api(Method::DELETE, &format!("/projects/{id}"), None).await;
    if answer.ok() {
        return back("/harbor/projects", Ok("The project was deleted."));
    }
    after(&visit, &format!("/harbor/projects/{id}/configs"), &answer, "")
}

/// `PUT /quotas/{id}` of the project's quota (administrators).
async fn save_quota(visit: Visit, Path(id): Path<i64>, body: Bytes) -> Response {
    let fields = form(&body);
    let here = format!("/harbor/projects/{id}/configs");
    let quotas = visit.get(format!("/quotas?reference=project&reference_id={id}")).await;
    let Some(quota_id) = items(&quotas.body).first().map(|q| int(q, "id")) else {
        return after(&visit, &here, &quotas, "");
    };
    let body = json!({"hard": {"storage": gib_to_bytes(field(&fields, "storage_limit"))}});
    let answer = visit.api(Method::PUT, &format!("/quotas/{quota_id}"), Some(&body)).await;
    after(&visit, &here, &answer, "The quota was set.")
}

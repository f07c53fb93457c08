//! A project's tag retention (the retention half of Harbor's "Policy"
//! tab): its rules (add, edit, delete), its schedule, runs and dry runs,
//! and the history of runs with each repository's task and log.
//!
//! A project has at most one retention policy (its `retention_id`): the
//! first rule added creates it, later changes replace its rules. A rule is
//! addressed by its position in the policy, as Harbor's portal does.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use maud::{Markup, html};
use serde_json::{Value, json};

use super::layout::{button_form, csrf, pager};
use super::projects::Frame;
use super::{Visit, after, back, checked, field, form, int, items, seg, text, when};
use crate::http::state::AppState;

pub fn routes() -> Router<Arc<AppState>> {
    let base = "/harbor/projects/{id}/tag-strategy/retention";
    Router::new()
        .route(&format!("{base}/rules"), post(add_rule))
        .route(&format!("{base}/rules/{{n}}"), get(edit_rule).post(save_rule))
        .route(&format!("{base}/rules/{{n}}/delete"), post(delete_rule))
        .route(&format!("{base}/schedule"), post(save_schedule))
        .route(&format!("{base}/run"), post(run))
        .route(&format!("{base}/executions/{{eid}}"), get(tasks))
        .route(&format!("{base}/executions/{{eid}}/stop"), post(stop))
        .route(&format!("{base}/executions/{{eid}}/tasks/{{tid}}"), get(task_log))
}

/// Harbor's rule templates: name, what the portal says, the unit of its
/// number (none for `always`).
pub const TEMPLATES: [(&str, &str, Option<&str>); 5] = [
    ("latestPushedK", "retain the most recently pushed # artifacts", Some("artifacts")),
    ("latestPulledN", "retain the most recently pulled # artifacts", Some("artifacts")),
    ("nDaysSinceLastPush", "retain the artifacts pushed within the last # days", Some("days")),
    ("nDaysSinceLastPull", "retain the artifacts pulled within the last # days", Some("days")),
    ("always", "retain always", None),
];

fn tab(id: i64) -> String {
    format!("/harbor/projects/{id}/tag-strategy")
}

fn base(id: i64) -> String {
    format!("{}/retention", tab(id))
}

/// The policy's id, from the project's metadata ("" when it has none).
pub fn policy_id(project: &Value) -> String {
    project.pointer("/metadata/retention_id").and_then(Value::as_str).unwrap_or_default().to_owned()
}

/// A rule as one sentence: "retain the most recently pushed 3 artifacts
/// of repositories matching ** with tags matching v*".
pub fn describe(rule: &Value) -> String {
    let template = text(rule, "template");
    let n = rule.pointer(&format!("/params/{template}")).map(|v| v.to_string().trim_matches('"').to_owned());
    let what = TEMPLATES
        .iter()
        .find(|(t, _, _)| *t == template)
        .map_or_else(|| template.clone(), |(_, s, _)| s.replace('#', n.as_deref().unwrap_or("?")));
    let (repo, tag) = selectors(rule);
    let decoration = |d: &str| if d.ends_with("xcludes") { "excluding" } else { "matching" };
    let untagged = if text(&tag, "extras").contains("\"untagged\":true") { " (untagged included)" } else { "" };
    format!(
        "{what} of repositories {} {} with tags {} {}{untagged}",
        decoration(&text(&repo, "decoration")),
        text(&repo, "pattern"),
        decoration(&text(&tag, "decoration")),
        text(&tag, "pattern"),
    )
}

/// A rule's repository and tag selectors.
fn selectors(rule: &Value) -> (Value, Value) {
    let first = |v: Option<&Value>| v.map(items).and_then(|s| s.first()).cloned().unwrap_or(Value::Null);
    (first(rule.pointer("/scope_selectors/repository")), first(rule.get("tag_selectors")))
}

/// The retention part of the policy tab: rules, schedule, runs, history.
pub async fn section(visit: &Visit, frame: &Frame) -> Markup {
    let id = frame.id();
    let pid = policy_id(&frame.project);
    let perms = &frame.perms;
    if !perms.can("tag-retention", "read") {
        return html! {};
    }
    let (policy, executions) = if pid.is_empty() {
        (None, None)
    } else {
        let (p, x) = tokio::join!(
            visit.get(format!("/retentions/{}", seg(&pid))),
            visit.get(format!("/retentions/{}/executions?{}", seg(&pid), visit.paging()))
        );
        (Some(p).filter(|p| p.ok()), Some(x).filter(|x| x.ok()))
    };
    let rules: Vec<Value> = policy.as_ref().and_then(|p| p.body.get("rules")).map(items).unwrap_or_default().to_vec();
    let cron = policy
        .as_ref()
        .and_then(|p| p.body.pointer("/trigger/settings/cron"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let may_add =
        if policy.is_some() { perms.can("tag-retention", "update") } else { perms.can("tag-retention", "create") };
    let may_change = policy.is_some() && perms.can("tag-retention", "update");
    let here = base(id);
    html! {
        section aria-labelledby="retention-title" {
        h2 #retention-title { "Tag retention" }
        div.table-wrap { table #retention {
            thead { tr { th scope="col" { "Rule" } th scope="col" { "Enabled" } @if may_change { th scope="col" { "Actions" } } } }
            tbody { @for (n, rule) in rules.iter().enumerate() {
                tr {
                    td { (describe(rule)) }
                    td { @if rule.get("disabled").and_then(Value::as_bool).unwrap_or(false) { "No" } @else { "Yes" } }
                    @if may_change { td {
                        a href=(format!("{here}/rules/{n}")) aria-label=(format!("Edit retention rule {}", n + 1)) { "Edit" }
                        " "
                        (button_form(visit, &format!("{here}/rules/{n}/delete"), "danger", "Delete", Some(&format!("Delete retention rule {}", n + 1)), Some(&format!("Delete retention rule {}?", n + 1))))
                    } }
                }
            } }
        } }
        @if rules.is_empty() { p.muted { "No retention rules: every artifact is kept." } }
        @if may_add && rules.len() < 15 {
            form.panel method="post" action=(format!("{here}/rules")) {
                h3 { "New retention rule" }
                (csrf(visit))
                (rule_fields(None))
                p { button type="submit" { "Add retention rule" } }
            }
        }
        @if may_change {
            form.panel method="post" action=(format!("{here}/schedule")) {
                (csrf(visit))
                label for="retention_cron" { "Schedule (cron with seconds, e.g. 0 0 0 * * *; empty: none)" }
                input #retention_cron type="text" name="cron" value=(cron);
                p { button.secondary type="submit" { "Save schedule" } }
            }
            @if !rules.is_empty() {
                div.bar {
                    form.inline method="post" action=(format!("{here}/run")) {
                        (csrf(visit))
                        input type="hidden" name="dry_run" value="true";
                        button.secondary type="submit" { "Dry run" }
                    }
                    (button_form(visit, &format!("{here}/run"), "", "Run now", None, Some("Run tag retention now? Artifacts it does not retain are deleted.")))
                }
            }
        }
        @if let Some(x) = &executions {
            h3 { "Runs" }
            div.table-wrap { table #retention-runs {
                thead { tr { th scope="col" { "Id" } th scope="col" { "Status" } th scope="col" { "Dry run" }
                    th scope="col" { "Trigger" } th scope="col" { "Started" } th scope="col" { "Ended" } } }
                tbody { @for e in items(&x.body) { tr {
                    td { a href=(format!("{here}/executions/{}", int(e, "id"))) aria-label=(format!("Run {}", int(e, "id"))) { (int(e, "id")) } }
                    td { (text(e, "status")) }
                    td { @if e.get("dry_run").and_then(Value::as_bool).unwrap_or(false) { "Yes" } @else { "No" } }
                    td { (text(e, "trigger")) } td { (when(&text(e, "start_time"))) } td { (when(&text(e, "end_time"))) }
                } } }
            } }
            @if items(&x.body).is_empty() { p.muted { "No runs yet." } }
            (pager(visit, &tab(id), x.total.unwrap_or(0), x.next.as_deref()))
        }
        }
    }
}

/// The fields of a rule (a new one, or `rule` being edited).
fn rule_fields(rule: Option<&Value>) -> Markup {
    let template = rule.map(|r| text(r, "template")).unwrap_or_else(|| "latestPushedK".to_owned());
    let count = rule
        .and_then(|r| r.pointer(&format!("/params/{template}")))
        .map(|v| v.to_string().trim_matches('"').to_owned())
        .unwrap_or_else(|| "10".to_owned());
    let (repo, tag) = rule.map(selectors).unwrap_or((Value::Null, Value::Null));
    let or = |v: String, d: &str| if v.is_empty() { d.to_owned() } else { v };
    let repo_dec = or(text(&repo, "decoration"), "repoMatches");
    let tag_dec = or(text(&tag, "decoration"), "matches");
    let untagged = text(&tag, "extras").contains("\"untagged\":true");
    html! {
        label for="rule_template" { "Rule" }
        select #rule_template name="template" {
            @for (t, s, _) in TEMPLATES { option value=(t) selected[t == template] { (s) } }
        }
        label for="rule_count" { "# (a count or days; not used by \u{201c}retain always\u{201d})" }
        input #rule_count type="number" name="count" min="0" value=(count);
        label for="rule_repo_decoration" { "Repositories" }
        select #rule_repo_decoration name="repo_decoration" {
            option value="repoMatches" selected[repo_dec == "repoMatches"] { "matching" }
            option value="repoExcludes" selected[repo_dec == "repoExcludes"] { "excluding" }
        }
        label for="rule_repo_pattern" { "Repository pattern (** for all)" }
        input #rule_repo_pattern type="text" name="repo_pattern" required value=(or(text(&repo, "pattern"), "**"));
        label for="rule_tag_decoration" { "Tags" }
        select #rule_tag_decoration name="tag_decoration" {
            option value="matches" selected[tag_dec == "matches"] { "matching" }
            option value="excludes" selected[tag_dec == "excludes"] { "excluding" }
        }
        label for="rule_tag_pattern" { "Tag pattern (** for all)" }
        input #rule_tag_pattern type="text" name="tag_pattern" required value=(or(text(&tag, "pattern"), "**"));
        label.check { input type="checkbox" name="untagged" checked[rule.is_none() || untagged]; "Include untagged artifacts" }
        @if rule.is_some() {
            label.check { input type="checkbox" name="disabled"
                checked[rule.and_then(|r| r.get("disabled")).and_then(Value::as_bool).unwrap_or(false)]; "Disabled" }
        }
    }
}

/// A rule from the form's fields.
fn rule_of(fields: &[(String, String)]) -> Value {
    let template = field(fields, "template");
    let mut params = serde_json::Map::new();
    if template != "always" {
        let n = field(fields, "count");
        params.insert(template.to_owned(), n.parse::<i64>().map_or_else(|_| Value::String(n.to_owned()), Value::from));
    }
    json!({
        "disabled": checked(fields, "disabled"),
        "action": "retain",
        "template": template,
        "params": params,
        "tag_selectors": [{"kind": "doublestar", "decoration": field(fields, "tag_decoration"),
            "pattern": field(fields, "tag_pattern"),
            "extras": json!({"untagged": checked(fields, "untagged")}).to_string()}],
        "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": field(fields, "repo_decoration"),
            "pattern": field(fields, "repo_pattern")}]},
    })
}

/// The project's policy as the API has it (`None`: no policy yet), or the
/// response that says why it cannot be read.
async fn load(visit: &Visit, id: i64) -> Result<Option<(String, Value)>, Response> {
    let project = visit.get(format!("/projects/{id}")).await;
    if !project.ok() {
        return Err(after(visit, &tab(id), &project, ""));
    }
    let pid = policy_id(&project.body);
    if pid.is_empty() {
        return Ok(None);
    }
    let policy = visit.get(format!("/retentions/{}", seg(&pid))).await;
    if !policy.ok() {
        return Err(after(visit, &tab(id), &policy, ""));
    }
    Ok(Some((pid, policy.body)))
}

/// Replaces the policy's rules (and schedule) with `change` applied.
async fn update(visit: &Visit, id: i64, done: &str, change: impl FnOnce(&mut Value) -> Result<(), String>) -> Response {
    let (pid, mut policy) = match load(visit, id).await {
        Ok(Some(p)) => p,
        Ok(None) => return back(&tab(id), Err("The project has no retention policy.")),
        Err(r) => return r,
    };
    if let Err(e) = change(&mut policy) {
        return back(&tab(id), Err(&e));
    }
    let answer = visit.api(Method::PUT, &format!("/retentions/{}", seg(&pid)), Some(&policy)).await;
    after(visit, &tab(id), &answer, done)
}

fn rules_mut(policy: &mut Value) -> Result<&mut Vec<Value>, String> {
    if policy.get("rules").is_none_or(Value::is_null) {
        policy["rules"] = json!([]);
    }
    policy.get_mut("rules").and_then(Value::as_array_mut).ok_or_else(|| "The policy has no rules.".to_owned())
}

async fn add_rule(visit: Visit, Path(id): Path<i64>, body: Bytes) -> Response {
    let rule = rule_of(&form(&body));
    match load(&visit, id).await {
        Err(r) => r,
        Ok(None) => {
            let policy = json!({
                "algorithm": "or",
                "rules": [rule],
                "trigger": {"kind": "Schedule", "settings": {"cron": ""}, "references": {}},
                "scope": {"level": "project", "ref": id},
            });
            let answer = visit.api(Method::POST, "/retentions", Some(&policy)).await;
            after(&visit, &tab(id), &answer, "The retention rule was added.")
        }
        Ok(Some(_)) => {
            update(&visit, id, "The retention rule was added.", |p| {
                rules_mut(p)?.push(rule);
                Ok(())
            })
            .await
        }
    }
}

async fn edit_rule(visit: Visit, Path((id, n)): Path<(i64, usize)>) -> Response {
    let frame = match Frame::load(&visit, id).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let policy = match load(&visit, id).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Some(rule) = policy.as_ref().and_then(|(_, p)| p.get("rules")).map(items).and_then(|r| r.get(n)).cloned()
    else {
        return super::layout::error_page(
            &visit,
            Some(&frame.viewer),
            StatusCode::NOT_FOUND,
            "No such retention rule.",
        );
    };
    let may = frame.perms.can("tag-retention", "update");
    let body = html! {
        p { a href=(tab(id)) { "Back to the policies" } }
        h2 { "Retention rule " (n + 1) }
        p { (describe(&rule)) }
        @if may {
            form.panel method="post" action=(format!("{}/rules/{n}", base(id))) {
                (csrf(&visit))
                (rule_fields(Some(&rule)))
                p { button type="submit" { "Save retention rule" } }
            }
        }
    };
    frame.render(&visit, "tag-strategy", "Retention rule", body)
}

async fn save_rule(visit: Visit, Path((id, n)): Path<(i64, usize)>, body: Bytes) -> Response {
    let mut rule = rule_of(&form(&body));
    update(&visit, id, "The retention rule was saved.", |p| {
        let slot = rules_mut(p)?.get_mut(n).ok_or_else(|| "No such retention rule.".to_owned())?;
        // The rule keeps its id and priority.
        for key in ["id", "priority"] {
            if let Some(v) = slot.get(key) {
                rule[key] = v.clone();
            }
        }
        *slot = rule;
        Ok(())
    })
    .await
}

async fn delete_rule(visit: Visit, Path((id, n)): Path<(i64, usize)>) -> Response {
    update(&visit, id, "The retention rule was deleted.", |p| {
        let rules = rules_mut(p)?;
        if n >= rules.len() {
            return Err("No such retention rule.".to_owned());
        }
        rules.remove(n);
        Ok(())
    })
    .await
}

async fn save_schedule(visit: Visit, Path(id): Path<i64>, body: Bytes) -> Response {
    let fields = form(&body);
    let cron = field(&fields, "cron").to_owned();
    update(&visit, id, "The schedule was saved.", |p| {
        p["trigger"] = json!({"kind": "Schedule", "settings": {"cron": cron}, "references": {}});
        Ok(())
    })
    .await
}

async fn run(visit: Visit, Path(id): Path<i64>, body: Bytes) -> Response {
    let dry_run = checked(&form(&body), "dry_run");
    let pid = match load(&visit, id).await {
        Ok(Some((pid, _))) => pid,
        Ok(None) => return back(&tab(id), Err("The project has no retention policy.")),
        Err(r) => return r,
    };
    let answer = visit
        .api(Method::POST, &format!("/retentions/{}/executions", seg(&pid)), Some(&json!({"dry_run": dry_run})))
        .await;
    let done = if dry_run { "The dry run was started." } else { "Tag retention was started." };
    after(&visit, &tab(id), &answer, done)
}

async fn stop(visit: Visit, Path((id, eid)): Path<(i64, i64)>) -> Response {
    let pid = match load(&visit, id).await {
        Ok(Some((pid, _))) => pid,
        Ok(None) => return back(&tab(id), Err("The project has no retention policy.")),
        Err(r) => return r,
    };
    let answer = visit
        .api(Method::PATCH, &format!("/retentions/{}/executions/{eid}", seg(&pid)), Some(&json!({"action": "stop"})))
        .await;
    after(&visit, &format!("{}/executions/{eid}", base(id)), &answer, "The run was stopped.")
}

/// One run: its task per repository, each with its log.
async fn tasks(visit: Visit, Path((id, eid)): Path<(i64, i64)>) -> Response {
    let frame = match Frame::load(&visit, id).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let pid = policy_id(&frame.project);
    let answer = visit.get(format!("/retentions/{}/executions/{eid}/tasks?{}", seg(&pid), visit.paging())).await;
    let (total, next) = (answer.total.unwrap_or(0), answer.next.clone());
    let list = match answer.into_body(&visit) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let here = format!("{}/executions/{eid}", base(id));
    let running = items(&list).iter().any(|t| matches!(text(t, "status").as_str(), "Pending" | "Running"));
    let body = html! {
        p { a href=(tab(id)) { "Back to the policies" } }
        h2 { "Retention run " (eid) }
        @if running && frame.perms.can("tag-retention", "update") {
            (button_form(&visit, &format!("{here}/stop"), "secondary", "Stop this run", None, None))
        }
        div.table-wrap { table #retention-tasks {
            thead { tr { th scope="col" { "Repository" } th scope="col" { "Status" } th scope="col" { "Artifacts" }
                th scope="col" { "Retained" } th scope="col" { "Started" } th scope="col" { "Ended" } th scope="col" { "Log" } } }
            tbody { @for t in items(&list) {
                @let repo = text(t, "repository");
                tr {
                    td { (repo) } td { (text(t, "status")) } td { (text(t, "total")) } td { (text(t, "retained")) }
                    td { (when(&text(t, "start_time"))) } td { (when(&text(t, "end_time"))) }
                    td { a href=(format!("{here}/tasks/{}", int(t, "id"))) aria-label=(format!("Log of {repo}")) { "Log" } }
                }
            } }
        } }
        @if items(&list).is_empty() { p.muted { "No repository tasks (yet)." } }
        (pager(&visit, &here, total, next.as_deref()))
    };
    frame.render(&visit, "tag-strategy", &format!("Retention run {eid}"), body)
}

async fn task_log(visit: Visit, Path((id, eid, tid)): Path<(i64, i64, i64)>) -> Response {
    let frame = match Frame::load(&visit, id).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let pid = policy_id(&frame.project);
    let answer = visit.get(format!("/retentions/{}/executions/{eid}/tasks/{tid}", seg(&pid))).await;
    let log = match answer.into_body(&visit) {
        Ok(Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(r) => return *r,
    };
    let body = html! {
        p { a href=(format!("{}/executions/{eid}", base(id))) { "Back to run " (eid) } }
        h2 { "Retention run " (eid) ": task " (tid) }
        pre.panel #task-log { (log) }
    };
    frame.render(&visit, "tag-strategy", &format!("Retention task {tid}"), body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_reads_as_a_sentence_and_round_trips_through_the_form() {
        let fields: Vec<(String, String)> = [
            ("template", "latestPushedK"),
            ("count", "3"),
            ("repo_decoration", "repoMatches"),
            ("repo_pattern", "app"),
            ("tag_decoration", "excludes"),
            ("tag_pattern", "v*"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let rule = rule_of(&fields);
        assert_eq!(rule["params"]["latestPushedK"], 3);
        assert_eq!(
            describe(&rule),
            "retain the most recently pushed 3 artifacts of repositories matching app with tags excluding v*"
        );
        let always = rule_of(&[("template".to_owned(), "always".to_owned())]);
        assert_eq!(always["params"], json!({}));
    }
}

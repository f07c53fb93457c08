//! A repository's artifacts, and an artifact's page: tags, build history,
//! accessories, vulnerabilities, the pull command; adding and removing
//! tags, deleting.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::Method;
use axum::response::Response;
use axum::routing::{get, post};
use maud::{Markup, html};
use serde_json::{Value, json};

use super::layout::{button_form, copy, csrf, pager};
use super::projects::Frame;
use super::{Visit, after, api_repo, field, form, int, items, seg, size, text, when};
use crate::http::state::AppState;

pub fn routes() -> Router<Arc<AppState>> {
    let artifact = "/harbor/projects/{id}/repositories/{repo}/artifacts-tab/artifacts/{digest}";
    Router::new()
        .route("/harbor/projects/{id}/repositories/{repo}", get(to_artifacts))
        .route("/harbor/projects/{id}/repositories/{repo}/artifacts-tab", get(list))
        .route(artifact, get(detail))
        .route(&format!("{artifact}/tags"), post(add_tag))
        .route(&format!("{artifact}/tags/{{tag}}/delete"), post(remove_tag))
        .route(&format!("{artifact}/delete"), post(delete))
        .route(&format!("{artifact}/labels"), post(add_label))
        .route(&format!("{artifact}/scan"), post(scan))
        .route(&format!("{artifact}/labels/{{label}}/delete"), post(remove_label))
}

/// The page of a repository (a name relative to its project).
fn repo_page(id: i64, repo: &str) -> String {
    format!("/harbor/projects/{id}/repositories/{}/artifacts-tab", seg(repo))
}

fn artifact_page(id: i64, repo: &str, digest: &str) -> String {
    format!("{}/artifacts/{}", repo_page(id, repo), seg(digest))
}

/// The API path of a repository.
fn api_path(frame: &Frame, repo: &str) -> String {
    format!("/projects/{}/repositories/{}", seg(&frame.name()), api_repo(repo))
}

const WITH: &str = "with_tag=true&with_label=true&with_scan_overview=true&with_accessory=true\
                    &with_signature=true&with_sbom_overview=true";

async fn to_artifacts(Path((id, repo)): Path<(i64, String)>) -> Response {
    super::see_other(&repo_page(id, &repo))
}

fn crumbs(frame: &Frame, repo: &str, last: Option<&str>) -> Markup {
    let id = frame.id();
    html! {
        p.crumbs {
            a href=(format!("/harbor/projects/{id}/repositories")) { "Repositories" } " / "
            @if let Some(last) = last {
                a href=(repo_page(id, repo)) { (repo) } " / " (last)
            } @else { (repo) }
        }
    }
}

/// Whether any accessory of an artifact is of a kind (`signature`, `sbom`).
fn has_accessory(a: &Value, kind: &str) -> bool {
    a.get("accessories").map(items).unwrap_or_default().iter().any(|x| text(x, "type").contains(kind))
}

/// The scan summary of an artifact: its severity and counts, or its status.
fn scan_summary(a: &Value) -> Markup {
    let reports: Vec<&Value> =
        a.get("scan_overview").and_then(Value::as_object).map(|m| m.values().collect()).unwrap_or_default();
    html! {
        @if reports.is_empty() { span.muted { "Not scanned" } }
        @for r in reports {
            @let status = text(r, "scan_status");
            @if status == "Success" {
                @let total = r.pointer("/summary/total").and_then(Value::as_i64).unwrap_or(0);
                @if total == 0 { "No vulnerabilities" } @else {
                    span class=(format!("sev-{}", text(r, "severity"))) { (text(r, "severity")) }
                    " · " (total) " total"
                    @if let Some(counts) = r.pointer("/summary/summary").and_then(Value::as_object) {
                        " (" @for (i, (sev, n)) in counts.iter().enumerate() {
                            @if i > 0 { ", " } (sev) " " (n)
                        } ")"
                    }
                }
            } @else { (status) }
        }
    }
}

async fn list(visit: Visit, Path((id, repo)): Path<(i64, String)>) -> Response {
    let frame = match Frame::load(&visit, id).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let query = format!("{}/artifacts?{}&{WITH}", api_path(&frame, &repo), visit.paging());
    let answer = visit.get(&query).await;
    let (total, next) = (answer.total.unwrap_or(0), answer.next.clone());
    let list = match answer.into_body(&visit) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let here = repo_page(id, &repo);
    let body = html! {
        (crumbs(&frame, &repo, None))
        h2 { "Artifacts of " (repo) }
        p { "Pull: " code { "docker pull " (visit.host) "/" (frame.name()) "/" (repo) ":TAG" } }
        div.table-wrap {
            table #artifacts {
                thead { tr {
                    th scope="col" { "Digest" } th scope="col" { "Tags" } th scope="col" { "Type" }
                    th scope="col" { "Size" } th scope="col" { "Vulnerabilities" }
                    th scope="col" { "Signed" } th scope="col" { "SBOM" } th scope="col" { "Labels" }
                    th.wide-only scope="col" { "Pushed" } th.wide-only scope="col" { "Pulled" }
                } }
                tbody {
                    @for a in items(&list) {
                        @let digest = text(a, "digest");
                        tr {
                            td.mono { a href=(artifact_page(id, &repo, &digest)) { (digest.get(..19).unwrap_or(&digest)) } }
                            td { @for t in a.get("tags").map(items).unwrap_or_default() { span.badge { (text(t, "name")) } } }
                            td { (text(a, "type")) }
                            td { (size(int(a, "size"))) }
                            td { (scan_summary(a)) }
                            td { @if has_accessory(a, "signature") { "Yes" } @else { "No" } }
                            td { @if a.get("sbom_overview").is_some_and(|s| !s.is_null()) || has_accessory(a, "sbom") { "Yes" } @else { "No" } }
                            td { @for l in a.get("labels").map(items).unwrap_or_default() { span.badge { (text(l, "name")) } } }
                            td.wide-only { (when(&text(a, "push_time"))) }
                            td.wide-only { (when(&text(a, "pull_time"))) }
                        }
                    }
                }
            }
        }
        @if items(&list).is_empty() { p.muted { "No artifacts." } }
        (pager(&visit, &here, total, next.as_deref()))
    };
    frame.render(&visit, "repositories", &repo, body)
}

async fn detail(visit: Visit, Path((id, repo, digest)): Path<(i64, String, String)>) -> Response {
    let frame = match Frame::load(&visit, id).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let base = format!("{}/artifacts/{}", api_path(&frame, &repo), seg(&digest));
    let (artifact, accessories) =
        tokio::join!(visit.get(format!("{base}?{WITH}")), visit.get(format!("{base}/accessories?page_size=50")));
    let artifact = match artifact.into_body(&visit) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let links = artifact.get("addition_links").and_then(Value::as_object);
    let has = |k: &str| links.is_some_and(|l| l.contains_key(k));
    let (may_scan, may_sbom) = (frame.perms.can("scan", "create"), frame.perms.can("sbom", "create"));
    let (may_label, may_unlabel) =
        (frame.perms.can("artifact-label", "create"), frame.perms.can("artifact-label", "delete"));
    let project_labels = if may_label {
        visit.get(format!("/labels?scope=p&project_id={id}&page_size=100")).await.body
    } else {
        Value::Null
    };
    let addition = |name: &'static str| {
        let (visit, base) = (&visit, &base);
        async move { if has(name) { Some(visit.get(format!("{base}/additions/{name}")).await) } else { None } }
    };
    let (history, vulns, readme, values) = tokio::join!(
        addition("build_history"),
        addition("vulnerabilities"),
        addition("readme.md"),
        addition("values.yaml")
    );
    // A chart's files, as text.
    let chart_files: Vec<(&str, String)> = [("Chart README", &readme), ("Chart values (values.yaml)", &values)]
        .into_iter()
        .filter_map(|(title, answer)| {
            let a = answer.as_ref().filter(|a| a.ok())?;
            Some((title, a.body.as_str().map_or_else(|| a.body.to_string(), str::to_owned)))
        })
        .collect();
    let digest = text(&artifact, "digest");
    let pull = format!("docker pull {}/{}/{}@{}", visit.host, frame.name(), repo, digest);
    let page_path = artifact_page(id, &repo, &digest);
    let (may_tag, may_untag, may_delete) =
        (frame.perms.can("tag", "create"), frame.perms.can("tag", "delete"), frame.perms.can("artifact", "delete"));
    let tags: Vec<Value> = artifact.get("tags").map(items).unwrap_or_default().to_vec();
    let vulnerabilities: Vec<Value> = vulns
        .as_ref()
        .and_then(|v| v.body.as_object())
        .and_then(|m| m.values().next())
        .and_then(|r| r.get("vulnerabilities"))
        .map(items)
        .unwrap_or_default()
        .to_vec();
    let body = html! {
        (crumbs(&frame, &repo, Some(digest.get(..19).unwrap_or(&digest))))
        h2.mono { (digest) }
        div.panel {
            p { "Pull command: " code #pull { (pull) } " " (copy(&pull, "Copy the pull command")) }
            dl {
                dt { "Type" } dd { (text(&artifact, "type")) " · " code { (text(&artifact, "manifest_media_type")) } }
                dt { "Size" } dd { (size(int(&artifact, "size"))) }
                dt { "Pushed" } dd { (when(&text(&artifact, "push_time"))) }
                dt { "Pulled" } dd { (when(&text(&artifact, "pull_time"))) }
                dt { "Vulnerabilities" } dd {
                    (scan_summary(&artifact))
                    @if may_scan { " " (scan_form(&visit, &page_path, "vulnerability", "Scan now")) }
                }
                dt { "SBOM" } dd {
                    @if artifact.get("sbom_overview").is_some_and(|s| !s.is_null()) || has_accessory(&artifact, "sbom") { "Yes" } @else { "No" }
                    @if may_sbom { " " (scan_form(&visit, &page_path, "sbom", "Generate SBOM")) }
                }
                dt { "Labels" } dd {
                    @for l in artifact.get("labels").map(items).unwrap_or_default() {
                        @let name = text(l, "name");
                        span.badge { (name) }
                        @if may_unlabel {
                            (button_form(&visit, &format!("{page_path}/labels/{}/delete", int(l, "id")), "secondary", "×", Some(&format!("Remove label {name}")), None))
                        }
                        " "
                    }
                }
            }
            @if may_label && !items(&project_labels).is_empty() {
                form.bar method="post" action=(format!("{page_path}/labels")) {
                    (csrf(&visit))
                    div { label for="label_id" { "Label" }
                        select #label_id name="label_id" {
                            @for l in items(&project_labels) { option value=(int(l, "id")) { (text(l, "name")) } }
                        }
                    }
                    button type="submit" { "Add label" }
                }
            }
        }
        h2 { "Tags" }
        div.table-wrap { table #tags {
            thead { tr { th scope="col" { "Tag" } th scope="col" { "Pushed" } th scope="col" { "Immutable" }
                @if may_untag { th scope="col" { "Actions" } } } }
            tbody {
                @for t in &tags {
                    @let name = text(t, "name");
                    tr {
                        td { (name) } td { (when(&text(t, "push_time"))) }
                        td { @if t.get("immutable").and_then(Value::as_bool).unwrap_or(false) { "Yes" } @else { "No" } }
                        @if may_untag {
                            td { (button_form(&visit, &format!("{page_path}/tags/{}/delete", seg(&name)), "danger", "Remove", Some(&format!("Remove tag {name}")), Some(&format!("Remove the tag {name}?")))) }
                        }
                    }
                }
            }
        } }
        @if tags.is_empty() { p.muted { "No tags." } }
        @if may_tag {
            form.bar method="post" action=(format!("{page_path}/tags")) {
                (csrf(&visit))
                div { label for="tag_name" { "New tag" } input #tag_name type="text" name="name" required maxlength="128"; }
                button type="submit" { "Add tag" }
            }
        }
        h2 { "Accessories" }
        @let acc = items(&accessories.body);
        @if acc.is_empty() { p.muted { "None (no signatures, SBOMs or other accessories)." } } @else {
            div.table-wrap { table { thead { tr { th scope="col" { "Type" } th scope="col" { "Digest" } th scope="col" { "Size" } th scope="col" { "Created" } } }
                tbody { @for x in acc { tr {
                    td { (text(x, "type")) } td.mono { (text(x, "digest")) } td { (size(int(x, "size"))) }
                    td { (when(&text(x, "creation_time"))) }
                } } }
            } }
        }
        @if let Some(h) = history.as_ref().filter(|h| h.ok()) {
            h2 { "Layers (build history)" }
            div.table-wrap { table { thead { tr { th scope="col" { "#" } th scope="col" { "Created by" } th scope="col" { "Created" } } }
                tbody { @for (i, step) in items(&h.body).iter().enumerate() { tr {
                    td { (i + 1) @if step.get("empty_layer").and_then(Value::as_bool).unwrap_or(false) { " (no layer)" } }
                    td.mono { (text(step, "created_by")) } td { (when(&text(step, "created"))) }
                } } }
            } }
        }
        @for (title, content) in &chart_files {
            h2 { (title) }
            pre.panel { (content) }
        }
        @if let Some(v) = vulns.as_ref().filter(|v| v.ok()) {
            h2 { "Vulnerabilities" }
            @if v.body.as_object().is_none_or(serde_json::Map::is_empty) { p.muted { "Not scanned yet." } }
            @else if vulnerabilities.is_empty() { p { "The last scan found none." } } @else {
                input type="search" aria-label="Filter vulnerabilities" placeholder="Filter" data-filter="vulnerabilities";
                div.table-wrap { table #vulnerabilities {
                    thead { tr { th scope="col" { "CVE" } th scope="col" { "Severity" } th scope="col" { "Package" }
                        th scope="col" { "Version" } th scope="col" { "Fixed in" } } }
                    tbody { @for v in &vulnerabilities { tr {
                        td { (text(v, "id")) }
                        td class=(format!("sev-{}", text(v, "severity"))) { (text(v, "severity")) }
                        td { (text(v, "package")) } td { (text(v, "version")) } td { (text(v, "fix_version")) }
                    } } }
                } }
            }
        }
        @if may_delete {
            form.panel method="post" action=(format!("{page_path}/delete"))
                data-confirm=(format!("Delete the artifact {digest} and its tags?")) {
                h2 { "Delete" }
                (csrf(&visit))
                label.check { input type="checkbox" name="confirm" required; "I understand this deletes the artifact and all its tags." }
                p { button.danger type="submit" { "Delete artifact" } }
            }
        }
    };
    frame.render(&visit, "repositories", &repo, body)
}

async fn add_tag(visit: Visit, Path((id, repo, digest)): Path<(i64, String, String)>, body: Bytes) -> Response {
    let frame = match Frame::load(&visit, id).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let fields = form(&body);
    let path = format!("{}/artifacts/{}/tags", api_path(&frame, &repo), seg(&digest));
    let answer = visit.api(Method::POST, &path, Some(&json!({"name": field(&fields, "name")}))).await;
    after(&visit, &artifact_page(id, &repo, &digest), &answer, "The tag was added.")
}

/// A button that starts a scan of `scan_type`.
fn scan_form(visit: &Visit, page_path: &str, scan_type: &str, label: &str) -> Markup {
    html! {
        form.inline method="post" action=(format!("{page_path}/scan")) {
            (csrf(visit))
            input type="hidden" name="scan_type" value=(scan_type);
            button.secondary type="submit" { (label) }
        }
    }
}

async fn scan(visit: Visit, Path((id, repo, digest)): Path<(i64, String, String)>, body: Bytes) -> Response {
    let frame = match Frame::load(&visit, id).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let fields = form(&body);
    let scan_type = if field(&fields, "scan_type") == "sbom" { "sbom" } else { "vulnerability" };
    let path = format!("{}/artifacts/{}/scan", api_path(&frame, &repo), seg(&digest));
    let answer = visit.api(Method::POST, &path, Some(&json!({"scan_type": scan_type}))).await;
    after(&visit, &artifact_page(id, &repo, &digest), &answer, "The scan was started.")
}

async fn add_label(visit: Visit, Path((id, repo, digest)): Path<(i64, String, String)>, body: Bytes) -> Response {
    let frame = match Frame::load(&visit, id).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let fields = form(&body);
    let label = field(&fields, "label_id").parse::<i64>().unwrap_or(0);
    let path = format!("{}/artifacts/{}/labels", api_path(&frame, &repo), seg(&digest));
    let answer = visit.api(Method::POST, &path, Some(&json!({"id": label}))).await;
    after(&visit, &artifact_page(id, &repo, &digest), &answer, "The label was added.")
}

async fn remove_label(visit: Visit, Path((id, repo, digest, label)): Path<(i64, String, String, i64)>) -> Response {
    let frame = match Frame::load(&visit, id).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let path = format!("{}/artifacts/{}/labels/{label}", api_path(&frame, &repo), seg(&digest));
    let answer = visit.api(Method::DELETE, &path, None).await;
    after(&visit, &artifact_page(id, &repo, &digest), &answer, "The label was removed.")
}

async fn remove_tag(visit: Visit, Path((id, repo, digest, tag)): Path<(i64, String, String, String)>) -> Response {
    let frame = match Frame::load(&visit, id).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let path = format!("{}/artifacts/{}/tags/{}", api_path(&frame, &repo), seg(&digest), seg(&tag));
    let answer = visit.api(Method::DELETE, &path, None).await;
    after(&visit, &artifact_page(id, &repo, &digest), &answer, "The tag was removed.")
}

async fn delete(visit: Visit, Path((id, repo, digest)): Path<(i64, String, String)>) -> Response {
    let frame = match Frame::load(&visit, id).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let path = format!("{}/artifacts/{}", api_path(&frame, &repo), seg(&digest));
    let answer = visit.api(Method::DELETE, &path, None).await;
    if answer.ok() {
        return super::back(&repo_page(id, &repo), Ok("The artifact was deleted."));
    }
    after(&visit, &artifact_page(id, &repo, &digest), &answer, "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_paths() {
        assert_eq!(repo_page(3, "a/b"), "/harbor/projects/3/repositories/a%2Fb/artifacts-tab");
        assert_eq!(
            artifact_page(3, "r", "sha256:ab"),
            "/harbor/projects/3/repositories/r/artifacts-tab/artifacts/sha256%3Aab"
        );
        let a = json!({"accessories": [{"type": "signature.cosign"}]});
        assert!(has_accessory(&a, "signature"));
        assert!(!has_accessory(&a, "sbom"));
    }
}

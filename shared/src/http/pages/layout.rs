//! The frame of every page (header, navigation, user menu, notices) and
//! the pieces pages share (CSRF field, pager, copy button).

use axum::http::StatusCode;
use axum::response::Response;
use maud::{DOCTYPE, Markup, html};

use super::{CSRF_FIELD, PAGE_SIZE, Viewer, Visit, assets};

/// A whole page: `title`, the signed-in `viewer` (none on the sign-in
/// pages) and the content.
pub fn page(visit: &Visit, viewer: Option<&Viewer>, title: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · berth" }
                // No icon to fetch (and no 404 for one).
                link rel="icon" href="data:,";
                link rel="stylesheet" href=(assets::css_url());
                script src=(assets::js_url()) defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/harbor/projects" { "berth" }
                    @if let Some(v) = viewer {
                        nav aria-label="Main" {
                            ul {
                                li { a href="/harbor/projects" { "Projects" } }
                                @if v.sysadmin {
                                    li { details.admin {
                                        summary { "Administration" }
                                        ul.menu {
                                            @for (path, label) in super::admin::PAGES {
                                                li { a href=(path) { (label) } }
                                            }
                                        }
                                    } }
                                }
                            }
                        }
                        (user_menu(visit, v))
                    }
                }
                main #main {
                    @if viewer.is_some_and(|v| v.read_only) {
                        p.notice role="status" { "The registry is in read-only mode: nothing can be pushed, changed or deleted." }
                    }
                    (notices(visit))
                    (content)
                }
            }
        }
    }
}

fn user_menu(visit: &Visit, v: &Viewer) -> Markup {
    html! {
        details.user {
            summary aria-label="User menu" { (v.name) @if v.sysadmin { " (admin)" } }
            div.menu {
                @if v.local || v.sysadmin {
                    a href="/account/password" { "Change password" }
                }
                @if v.oidc && !v.sysadmin {
                    a href="/account/cli-secret" { "CLI secret" }
                }
                form.inline method="post" action="/account/sign-out" {
                    (csrf(visit))
                    button.secondary type="submit" { "Sign out" }
                }
            }
        }
    }
}

/// The notice (`done`) or error of the action that led here.
fn notices(visit: &Visit) -> Markup {
    html! {
        @let done = visit.param("done");
        @let error = visit.param("error");
        @if !done.is_empty() { p.notice role="status" { (done) } }
        @if !error.is_empty() { p.error role="alert" { (error) } }
    }
}

/// The hidden CSRF field every form carries.
pub fn csrf(visit: &Visit) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(visit.csrf); }
}

/// A form of one button that posts to `action` with the CSRF field:
/// `class` styles it (`danger` for what deletes, `secondary`, or none),
/// `aria` names it for assistive technology when its text alone would not,
/// `confirm` is asked first (by the script; without it the form just posts).
pub fn button_form(
    visit: &Visit,
    action: &str,
    class: &str,
    text: &str,
    aria: Option<&str>,
    confirm: Option<&str>,
) -> Markup {
    html! {
        form.inline method="post" action=(action) data-confirm=[confirm] {
            (csrf(visit))
            button class=[(!class.is_empty()).then_some(class)] type="submit" aria-label=[aria] { (text) }
        }
    }
}

/// A copy button (shown when the script runs) for `value`.
pub fn copy(value: &str, label: &str) -> Markup {
    html! { button.secondary.js-only type="button" data-copy=(value) aria-label=(label) { "Copy" } }
}

/// Previous / next links of a list of `total` rows; `path` is the list
/// (its `q` is kept), `next` the API's position of the next page.
pub fn pager(visit: &Visit, path: &str, total: u64, next: Option<&str>) -> Markup {
    let page = visit.page();
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let q = visit.param("q");
    let link = |p: u64, cursor: Option<&str>| {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        if !q.is_empty() {
            s.append_pair("q", q);
        }
        s.append_pair("page", &p.to_string());
        if let Some(c) = cursor {
            s.append_pair("cursor", c);
        }
        format!("{path}?{}", s.finish())
    };
    html! {
        nav.pager aria-label="Pages" {
            @if page > 1 { a href=(link(page - 1, None)) rel="prev" { "← Previous" } }
            span { "Page " (page) " of " (pages) " · " (total) " in all" }
            @if page < pages { a href=(link(page + 1, next)) rel="next" { "Next →" } }
        }
    }
}

/// A search box that submits to the server and filters as you type.
pub fn search(visit: &Visit, action: &str, label: &str, table: &str) -> Markup {
    html! {
        form.bar method="get" action=(action) role="search" {
            div {
                label for="q" { (label) }
                input #q type="search" name="q" value=(visit.param("q")) data-filter=(table);
            }
            button.secondary type="submit" { "Search" }
        }
    }
}

/// An error page (403, 404, …) with the API's message, in the frame of
/// the signed-in `viewer` (with the user's menu) when there is one.
pub fn error_page(visit: &Visit, viewer: Option<&Viewer>, status: StatusCode, message: &str) -> Response {
    let title = match status {
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::NOT_FOUND => "Not found",
        _ => "Something went wrong",
    };
    let body = html! {
        h1 { (title) }
        p.error role="alert" { (message) }
        p { a href="/harbor/projects" { "Back to the projects" } }
    };
    super::html(status, page(visit, viewer, title, body))
}

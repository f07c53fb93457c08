//! The portal: server-rendered HTML pages at Harbor's portal paths
//! (`/harbor/projects`, `/account/sign-in`, `/oidc-onboard`, …), served by
//! the same router on every host.
//!
//! It renders pages from service calls and holds no rules. Every read and
//! every action goes through the management API in process ([`Api`]: the
//! `/api/v2.0` router called as a service, no network), as the signed-in
//! user, so a page shows exactly what the API would answer that user —
//! the same paged, bounded service calls, the same authorization of
//! [`super::api::Caller`] and [`crate::rbac`]. What a page offers comes
//! from the API's own permission listing
//! (`/users/current/permissions`): an action the user may not use is
//! not offered (and the API refuses it anyway).
//!
//! Forms work without JavaScript: they `POST` to page handlers that call
//! the API and redirect (`303`) back with a notice or an error. Their CSRF
//! token is the form field `_csrf`, checked by the session layer of
//! [`super::portal`] like the API's `X-Harbor-CSRF-Token` header.
//!
//! Templates are maud's, checked at compile time; everything interpolated
//! is escaped. Every page is sent with a Content-Security-Policy that
//! forbids inline script and style: the stylesheet and the script are
//! files embedded in the binary, under content-hashed names
//! ([`assets`]).

mod account;
mod admin;
mod artifacts;
pub(super) mod assets;
mod jobs;
mod layout;
mod policies;
mod preheat;
mod projects;
mod replication;
mod retention;
mod system;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::Markup;
use serde_json::Value;
use tower::ServiceExt as _;

use super::state::AppState;
use crate::auth::session::Session;

/// Every page's security headers.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The form field that carries the session's CSRF token.
pub(super) const CSRF_FIELD: &str = "_csrf";

/// The largest answer of the API a page reads.
const ANSWER_LIMIT: usize = 8 * 1024 * 1024;

/// Rows per page of every list.
const PAGE_SIZE: u64 = 15;

/// The portal's routes (the session layer is the caller's to add).
pub fn routes(state: &Arc<AppState>) -> Router<Arc<AppState>> {
    let api = Api(Router::new().nest(super::api::PREFIX, super::api::routes()).with_state(state.clone()));
    Router::new()
        .route("/", get(root))
        .route("/harbor", get(root))
        .route("/assets/{file}", get(assets::serve))
        .merge(account::routes())
        .merge(admin::routes())
        .merge(projects::routes())
        .merge(artifacts::routes())
        .merge(policies::routes())
        .merge(preheat::routes())
        .merge(replication::routes())
        .merge(retention::routes())
        .merge(jobs::routes())
        .merge(system::routes())
        .route("/harbor/{*rest}", get(not_found))
        .layer(axum::middleware::map_response(security_headers))
        .layer(axum::Extension(api))
}

async fn security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    resp
}

/// `/`: the projects, or the sign-in page for a visitor.
async fn root(visit: Visit) -> Response {
    if visit.session.is_some() { see_other("/harbor/projects") } else { see_other("/account/sign-in") }
}

/// A portal address that is no page: the 404 page, in the frame of the
/// signed-in user.
async fn not_found(visit: Visit) -> Response {
    let viewer = match visit.viewer().await {
        Ok(v) => v,
        Err(r) => return r,
    };
    layout::error_page(&visit, Some(&viewer), StatusCode::NOT_FOUND, "There is no such page.")
}

// ------------------------------------------------------------ the API

/// The management API's router, called in process as the visitor.
#[derive(Clone)]
pub(super) struct Api(Router);

/// An answer of the API.
pub(super) struct Answer {
    pub status: StatusCode,
    pub total: Option<u64>,
    /// The `Location` of a created resource.
    pub location: String,
    /// The position of the next page, from the `Link` header: following
    /// it costs only that page.
    pub next: Option<String>,
    pub body: Value,
}

impl Answer {
    pub fn ok(&self) -> bool {
        self.status.is_success()
    }

    /// Harbor's error message, or the status.
    pub fn message(&self) -> String {
        self.body
            .pointer("/errors/0/message")
            .and_then(Value::as_str)
            .map_or_else(|| self.status.to_string(), str::to_owned)
    }

    /// The body, or the page that says why there is none.
    pub fn into_body(self, visit: &Visit) -> Result<Value, Box<Response>> {
        if self.ok() { Ok(self.body) } else { Err(Box::new(refusal(visit, &self))) }
    }
}

/// The page for an API refusal: sign in again, forbidden, not found.
fn refusal(visit: &Visit, answer: &Answer) -> Response {
    match answer.status {
        StatusCode::UNAUTHORIZED => visit.to_sign_in(),
        status => layout::error_page(visit, visit.seen.get(), status, &answer.message()),
    }
}

// ------------------------------------------------------------ a visit

/// One request to a page: the visitor's session (if any), what the API
/// calls made for it carry over, and where it is.
pub(super) struct Visit {
    pub session: Option<Session>,
    headers: HeaderMap,
    peer: Option<ConnectInfo<SocketAddr>>,
    api: Api,
    /// The session's CSRF token (empty without a session).
    pub csrf: String,
    /// The path and query of the page.
    pub here: String,
    /// The registry's host (and port), as clients address it.
    pub host: String,
    pub query: Vec<(String, String)>,
    /// The signed-in user, once [`Visit::viewer`] has read it: an error
    /// page keeps the user's menu with it.
    seen: std::sync::OnceLock<Viewer>,
}

impl FromRequestParts<Arc<AppState>> for Visit {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let api =
            parts.extensions.get::<Api>().cloned().ok_or_else(|| StatusCode::INTERNAL_SERVER_ERROR.into_response())?;
        let session = parts.extensions.get::<Session>().cloned();
        let csrf = session.as_ref().map(|s| state.sessions.csrf_token(s)).unwrap_or_default();
        let mut headers = HeaderMap::new();
        for name in ["x-forwarded-for", "x-real-ip", "x-forwarded-host", "x-forwarded-proto", "host"] {
            if let Some(v) = parts.headers.get(name) {
                headers.insert(name, v.clone());
            }
        }
        let query =
            url::form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes()).into_owned().collect();
        Ok(Self {
            session,
            headers,
            peer: parts.extensions.get::<ConnectInfo<SocketAddr>>().cloned(),
            api,
            csrf,
            host: {
                let base = super::external_base(state, &parts.headers);
                base.split_once("://").map_or(base.clone(), |(_, h)| h.to_owned())
            },
            here: parts.uri.path_and_query().map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned()),
            query,
            seen: std::sync::OnceLock::new(),
        })
    }
}

impl Visit {
    /// A query parameter of the page ("" when absent).
    pub fn param(&self, name: &str) -> &str {
        self.query.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
    }

    /// The API's paging parameters for the page asked for (with the
    /// position the previous page handed on, when there is one).
    pub fn paging(&self) -> String {
        let mut out = format!("page={}&page_size={PAGE_SIZE}", self.page());
        let cursor = self.param("cursor");
        if !cursor.is_empty() {
            out.push_str(&format!("&cursor={}", seg(cursor)));
        }
        out
    }

    /// The page number asked for (1 and up).
    pub fn page(&self) -> u64 {
        self.param("page").parse::<u64>().unwrap_or(1).max(1)
    }

    /// Calls the API as the visitor. Transport failures are a 500 answer.
    pub async fn api(&self, method: Method, path: &str, body: Option<&Value>) -> Answer {
        let failed =
            |status: StatusCode| Answer { status, total: None, location: String::new(), next: None, body: Value::Null };
        let mut req = Request::builder().method(method).uri(format!("{}{path}", super::api::PREFIX));
        if let Some(h) = req.headers_mut() {
            h.extend(self.headers.clone());
            if body.is_some() {
                h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            }
        }
        let body = match body.map(serde_json::to_vec).transpose() {
            Ok(b) => b.map_or_else(Body::empty, Body::from),
            Err(_) => return failed(StatusCode::INTERNAL_SERVER_ERROR),
        };
        let Ok(mut req) = req.body(body) else { return failed(StatusCode::BAD_REQUEST) };
        if let Some(s) = &self.session {
            req.extensions_mut().insert(s.clone());
        }
        if let Some(p) = &self.peer {
            req.extensions_mut().insert(*p);
        }
        let Ok(resp) = self.api.0.clone().oneshot(req).await;
        let status = resp.status();
        let total = resp.headers().get("x-total-count").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
        let next = resp.headers().get(header::LINK).and_then(|v| v.to_str().ok()).and_then(next_cursor);
        let location =
            resp.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let Ok(bytes) = axum::body::to_bytes(resp.into_body(), ANSWER_LIMIT).await else {
            return failed(StatusCode::INTERNAL_SERVER_ERROR);
        };
        // A log is text, not JSON.
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Answer { status, total, location, next, body }
    }

    pub async fn get(&self, path: impl AsRef<str>) -> Answer {
        self.api(Method::GET, path.as_ref(), None).await
    }

    /// The sign-in page, coming back here afterwards.
    pub fn to_sign_in(&self) -> Response {
        let q = url::form_urlencoded::Serializer::new(String::new()).append_pair("redirect_url", &self.here).finish();
        see_other(&format!("/account/sign-in?{q}"))
    }

    /// The signed-in user, or the sign-in page.
    pub async fn viewer(&self) -> Result<Viewer, Response> {
        if self.session.is_none() {
            return Err(self.to_sign_in());
        }
        let me = self.get("/users/current").await;
        if !me.ok() {
            return Err(self.to_sign_in());
        }
        let settings = self.get("/systeminfo").await;
        let viewer = Viewer {
            name: text(&me.body, "username"),
            id: me.body.get("user_id").and_then(Value::as_i64).unwrap_or(0),
            sysadmin: me.body.get("sysadmin_flag").and_then(Value::as_bool).unwrap_or(false),
            oidc: text(&settings.body, "auth_mode") == "oidc_auth",
            local: !matches!(text(&settings.body, "auth_mode").as_str(), "oidc_auth" | "ldap_auth"),
            read_only: settings.body.get("read_only").and_then(Value::as_bool).unwrap_or(false),
        };
        let _ = self.seen.set(viewer.clone());
        Ok(viewer)
    }

    /// Whether the registry is read-only (as the viewer was read).
    pub fn read_only(&self) -> bool {
        self.seen.get().is_some_and(|v| v.read_only)
    }

    /// What the visitor may do in a project, by the API's own listing; in
    /// read-only mode only what reads.
    pub async fn permissions(&self, project_id: i64) -> Perms {
        let answer = self.get(&format!("/users/current/permissions?scope=/project/{project_id}&relative=true")).await;
        let read_only = self.read_only();
        let set = answer
            .body
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|p| (text(p, "resource"), text(p, "action")))
                    .filter(|(_, action)| !read_only || matches!(action.as_str(), "read" | "list" | "pull"))
                    .collect()
            })
            .unwrap_or_default();
        Perms(set)
    }
}

/// The signed-in user of a page.
#[derive(Clone)]
pub(super) struct Viewer {
    pub name: String,
    pub id: i64,
    pub sysadmin: bool,
    /// The registry signs in through OIDC (the CLI secret page applies).
    pub oidc: bool,
    /// Users are the registry's own (they can change their password).
    pub local: bool,
    /// The registry is read-only: pages offer no change.
    pub read_only: bool,
}

/// The visitor's permissions in a project: (resource, action).
pub(super) struct Perms(BTreeSet<(String, String)>);

impl Perms {
    pub fn can(&self, resource: &str, action: &str) -> bool {
        self.0.contains(&(resource.to_owned(), action.to_owned()))
    }
}

// ------------------------------------------------------------ helpers

/// A string field of a JSON object ("" when absent; numbers and booleans
/// as text).
pub(super) fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

pub(super) fn int(v: &Value, key: &str) -> i64 {
    v.get(key).and_then(Value::as_i64).unwrap_or(0)
}

pub(super) fn items(v: &Value) -> &[Value] {
    v.as_array().map_or(&[], Vec::as_slice)
}

/// The `cursor` of the `rel="next"` link of a `Link` header.
fn next_cursor(link: &str) -> Option<String> {
    let next = link.split(',').find(|l| l.contains("rel=\"next\""))?;
    let url = next.split_once('<')?.1.split_once('>')?.0;
    let query = url.split_once('?')?.1;
    url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "cursor").map(|(_, v)| v.into_owned())
}

/// A `303 See Other` to a path on this site.
pub(super) fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(loc) => (StatusCode::SEE_OTHER, [(header::LOCATION, loc)]).into_response(),
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}

/// Back to `path` with a notice (`done`) or an error (`error`) to show.
pub(super) fn back(path: &str, outcome: Result<&str, &str>) -> Response {
    let (key, message) = match outcome {
        Ok(m) => ("done", m),
        Err(m) => ("error", m),
    };
    let q = url::form_urlencoded::Serializer::new(String::new()).append_pair(key, message).finish();
    let sep = if path.contains('?') { '&' } else { '?' };
    see_other(&format!("{path}{sep}{q}"))
}

/// The outcome of an action: back to `path` saying `done`, or the API's
/// refusal.
pub(super) fn after(visit: &Visit, path: &str, answer: &Answer, done: &str) -> Response {
    match answer.status {
        s if s.is_success() => back(path, Ok(done)),
        StatusCode::UNAUTHORIZED => visit.to_sign_in(),
        _ => back(path, Err(&answer.message())),
    }
}

/// A path segment, percent-encoded.
pub(super) fn seg(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A repository name as the API takes it in a path: Harbor's double
/// encoding (`a/b` is `a%252Fb`).
pub(super) fn api_repo(name: &str) -> String {
    seg(&name.replace('%', "%25").replace('/', "%2F"))
}

/// A form body's fields.
pub(super) fn form(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

pub(super) fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.trim())
}

pub(super) fn checked(fields: &[(String, String)], name: &str) -> bool {
    fields.iter().any(|(k, v)| k == name && matches!(v.as_str(), "on" | "true" | "1"))
}

/// A size in bytes, readable.
pub(super) fn size(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{v:.1} {}", UNITS[unit]) }
}

/// A Harbor time (RFC 3339) as shown: to the minute, UTC.
pub(super) fn when(t: &str) -> String {
    if t.is_empty() || t.starts_with("0001") || t.starts_with("1970-01-01T00:00:00") {
        return "—".to_owned();
    }
    match (t.get(..10), t.get(11..16)) {
        (Some(d), Some(h)) => format!("{d} {h}"),
        _ => t.to_owned(),
    }
}

/// A page's HTML response.
pub(super) fn html(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        markup.into_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(api_repo("a/b c"), "a%252Fb%20c");
        assert_eq!(seg("x/y"), "x%2Fy");
        assert_eq!(size(512), "512 B");
        assert_eq!(size(3 * 1024 * 1024 + 1), "3.0 MiB");
        assert_eq!(when("2026-12-05T10:11:12.000Z"), "2026-12-05 10:11");
        assert_eq!(when(""), "—");
        let link = "</api/v2.0/x?page=1&page_size=2>; rel=\"prev\" , </api/v2.0/x?page=3&page_size=2&cursor=YQ%3D%3D>; rel=\"next\"";
        assert_eq!(next_cursor(link).as_deref(), Some("YQ=="));
        assert_eq!(next_cursor("</x?page=1>; rel=\"prev\""), None);
        let r = back("/x?a=1", Err("no <way>"));
        assert_eq!(r.headers()[header::LOCATION], "/x?a=1&error=no+%3Cway%3E");
    }
}

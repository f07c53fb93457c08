//! The portal's `/c/` endpoints, with Harbor's paths, and the session
//! layer of every portal and `/api/v2.0` request.
//!
//! - `POST /c/login` (form `principal`, `password`): local and LDAP users
//!   (and the administrator in any mode) through the [`Authenticator`];
//!   sets the `sid` and `__csrf` cookies. Under `oidc_auth` every other
//!   user is told, as Harbor does, to sign in at `/c/oidc/login`.
//! - `GET /c/log_out` (and Harbor's `/c/oidc/logout`): revokes the session,
//!   clears the cookies and, with `oidc_logout`, redirects to the
//!   provider's end-session endpoint.
//! - `GET /c/oidc/login`, `GET /c/oidc/callback`, `POST /c/oidc/onboard`:
//!   the OIDC code flow of [`crate::auth::oidc`].
//!
//! [`sessions`] verifies the session cookie (when no `Authorization`
//! header is sent), refuses unsafe requests without the session's CSRF
//! token, hands the session to [`super::api::Caller`] as a request
//! extension and renews the cookie past half its lifetime. Errors of the
//! browser-facing OIDC steps are a small HTML page for browsers and
//! Harbor's error body for everything else.
//!
//! [`Authenticator`]: crate::auth::Authenticator

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::api::ApiError;
use super::external_base;
use super::state::AppState;
use crate::auth::oidc::{Login, OidcError};
use crate::auth::session::{self, COOKIE, CSRF_COOKIE, CSRF_HEADER, Session};
use crate::auth::{AuthError, Subject};
use crate::meta::now_unix;
use crate::service::ServiceError;
use crate::service::settings::Settings;
use crate::service::users::{ADMIN, Source, validate_username};

/// Binds a login to the browser that started it: the login's state.
const STATE_COOKIE: &str = "__oidc_state";
/// Names the pending onboarding of a verified OIDC identity.
const ONBOARD_COOKIE: &str = "__oidc_onboard";
/// Where the OIDC cookies are sent.
const OIDC_PATH: &str = "/c/oidc";
const OIDC_COOKIE_SECS: i64 = 600;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/c/login", post(login))
        .route("/c/log_out", get(log_out))
        .route("/c/oidc/logout", get(log_out))
        .route("/c/oidc/login", get(oidc_login))
        .route("/c/oidc/callback", get(oidc_callback))
        .route("/c/oidc/onboard", post(oidc_onboard))
}

// ------------------------------------------------------------- cookies

/// The value of a request cookie.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// A `Set-Cookie` value; `max_age` 0 clears the cookie. Every cookie is
/// `HttpOnly`; `Secure` when the registry is served over HTTPS.
fn set_cookie(name: &str, value: &str, path: &str, max_age: i64, same_site: &str, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite={same_site}{secure}");
    // Values are base64url and names constants: always a valid header.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

fn is_secure(state: &AppState, headers: &HeaderMap) -> bool {
    external_base(state, headers).starts_with("https://")
}

fn add_cookie(resp: &mut Response, value: HeaderValue) {
    resp.headers_mut().append(header::SET_COOKIE, value);
}

fn session_ttl(settings: &Settings) -> i64 {
    settings.session_ttl_secs()
}

/// Sets a new session's cookies (and its CSRF token header) on `resp`.
fn start_session(state: &AppState, headers: &HeaderMap, settings: &Settings, user_id: i64, resp: &mut Response) {
    let ttl = session_ttl(settings);
    let Some((session, token)) = state.sessions.start(user_id, ttl, now_unix()) else {
        tracing::error!("a session could not be signed");
        *resp = ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response();
        return;
    };
    set_session_cookies(state, headers, &session, &token, ttl, resp);
}

fn set_session_cookies(
    state: &AppState,
    headers: &HeaderMap,
    session: &Session,
    token: &str,
    ttl: i64,
    resp: &mut Response,
) {
    let secure = is_secure(state, headers);
    let csrf = state.sessions.csrf_token(session);
    add_cookie(resp, set_cookie(COOKIE, token, "/", ttl, "Lax", secure));
    add_cookie(resp, set_cookie(CSRF_COOKIE, &csrf, "/", ttl, "Strict", secure));
    if let Ok(v) = HeaderValue::from_str(&csrf) {
        resp.headers_mut().insert(CSRF_HEADER, v);
    }
}

fn redirect(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(loc) => (StatusCode::FOUND, [(header::LOCATION, loc)]).into_response(),
        Err(_) => ApiError::bad_request("bad redirect location").into_response(),
    }
}

/// A path on this site (not `//host`, not a URL): where a login may return.
pub(super) fn is_local_path(p: &str) -> bool {
    p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') && !p.chars().any(char::is_control)
}

/// The refusal of a browser request sent from a page of another site (to
/// the endpoints that take no session and so no CSRF token). Hosts are
/// compared, not schemes: behind a TLS proxy that sends no
/// `X-Forwarded-Proto` the registry believes it is served over HTTP.
fn cross_origin(state: &AppState, headers: &HeaderMap) -> Option<Response> {
    let authority =
        |url: &str| url.split_once("://").map_or(url, |(_, rest)| rest).trim_end_matches('/').to_lowercase();
    match headers.get(header::ORIGIN).map(|o| o.to_str().unwrap_or("")) {
        Some(origin) if authority(origin) != authority(&external_base(state, headers)) => {
            Some(ApiError::new(StatusCode::FORBIDDEN, "cross-origin request refused").into_response())
        }
        _ => None,
    }
}

// ------------------------------------------------------- the session layer

/// Unsafe requests that need no CSRF token: they act on no session.
fn csrf_exempt(path: &str) -> bool {
    matches!(path, "/c/login" | "/c/oidc/onboard" | "/account/sign-in")
}

/// The largest form body whose CSRF field the session layer reads.
const FORM_LIMIT: usize = 256 * 1024;

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"))
}

/// Authenticates a request by its session cookie (see the module doc).
pub async fn sessions(State(state): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    if req.headers().contains_key(header::AUTHORIZATION) {
        return next.run(req).await;
    }
    let now = now_unix();
    let Some(session) = cookie(req.headers(), COOKIE).and_then(|t| state.sessions.verify(t, now)) else {
        return next.run(req).await;
    };
    match state.registry.session_revoked(&session.id).await {
        Ok(false) => {}
        Ok(true) => return next.run(req).await,
        Err(e) => return ApiError::from(e).into_response(),
    }
    let csrf = HeaderValue::from_str(&state.sessions.csrf_token(&session)).ok();
    if !req.method().is_safe() && !csrf_exempt(req.uri().path()) {
        let sent = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        // A portal form (sent without script) carries the token as its
        // `_csrf` field; the body is read here and handed on unchanged.
        let sent = if sent.is_empty() && is_form(req.headers()) {
            let (parts, body) = req.into_parts();
            let Ok(bytes) = axum::body::to_bytes(body, FORM_LIMIT).await else {
                return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response();
            };
            let token = url::form_urlencoded::parse(&bytes)
                .find(|(k, _)| k == super::pages::CSRF_FIELD)
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            req = Request::from_parts(parts, axum::body::Body::from(bytes));
            token
        } else {
            sent
        };
        if !state.sessions.csrf_matches(&session, &sent) {
            let mut resp = ApiError::new(StatusCode::FORBIDDEN, "CSRF token invalid").into_response();
            if let Some(v) = csrf {
                resp.headers_mut().insert(CSRF_HEADER, v);
            }
            return resp;
        }
    }
    let headers = req.headers().clone();
    req.extensions_mut().insert(session.clone());
    let mut resp = next.run(req).await;
    let sets_session = resp
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.starts_with(&format!("{COOKIE}="))));
    if sets_session {
        return resp;
    }
    if let Some(v) = csrf {
        resp.headers_mut().insert(CSRF_HEADER, v);
    }
    if let Ok(settings) = state.registry.settings().await {
        let ttl = session_ttl(&settings);
        if session::renewal_due(&session, ttl, now)
            && let Some((renewed, token)) = state.sessions.renew(&session, ttl, now)
        {
            set_session_cookies(&state, &headers, &renewed, &token, ttl, &mut resp);
        }
    }
    resp
}

// --------------------------------------------------------- login, logout

/// The fields of a form body (and of the query, as Harbor reads both).
fn form_fields(query: Option<&str>, body: &[u8]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
    out.extend(url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned());
    out
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
}

/// `POST /c/login`.
pub(super) async fn login(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    if let Some(refused) = cross_origin(&state, &headers) {
        return refused;
    }
    let fields = form_fields(query.as_deref(), &body);
    let (principal, password) = (field(&fields, "principal"), field(&fields, "password"));
    let settings = match state.registry.settings().await {
        Ok(s) => s,
        Err(e) => return ApiError::from(e).into_response(),
    };
    if settings.auth_mode == crate::service::settings::AuthMode::Oidc && principal != ADMIN {
        // Harbor's answer, which its portal turns into a redirect.
        let location = format!("{}/c/oidc/login", external_base(&state, &headers));
        #[derive(serde::Serialize)]
        struct Redirect {
            redirect_location: String,
        }
        return (StatusCode::FORBIDDEN, axum::Json(Redirect { redirect_location: location })).into_response();
    }
    let refused = || ApiError::new(StatusCode::UNAUTHORIZED, "invalid credentials").into_response();
    if principal.is_empty() {
        return refused();
    }
    match state.auth.basic(principal, password).await {
        Ok(Subject::User(user)) => {
            let mut resp = StatusCode::OK.into_response();
            start_session(&state, &headers, &settings, user.id, &mut resp);
            resp
        }
        Ok(_) => refused(),
        Err(e @ (AuthError::Backend(_) | AuthError::Unavailable(_))) => ApiError::from(e).into_response(),
        Err(_) => refused(),
    }
}

/// `GET /c/log_out`.
pub(super) async fn log_out(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    session: Option<Extension<Session>>,
) -> Response {
    let settings = match state.registry.settings().await {
        Ok(s) => s,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let base = external_base(&state, &headers);
    let mut provider_logout = None;
    if let Some(Extension(session)) = session {
        let now = now_unix();
        let until = session::revoked_until(&session, session_ttl(&settings), now);
        if let Err(e) = state.registry.revoke_session(&session.id, until).await {
            return ApiError::from(e).into_response();
        }
        if let Ok(user) = state.registry.user(session.user_id).await
            && user.source == Source::Oidc
        {
            provider_logout = state.oidc.logout_url(&settings, &user, &format!("{base}/account/sign-in")).await;
        }
    }
    let mut resp = match provider_logout {
        Some(url) => redirect(&url),
        None => StatusCode::OK.into_response(),
    };
    let secure = is_secure(&state, &headers);
    add_cookie(&mut resp, set_cookie(COOKIE, "", "/", 0, "Lax", secure));
    add_cookie(&mut resp, set_cookie(CSRF_COOKIE, "", "/", 0, "Strict", secure));
    resp
}

// ------------------------------------------------------------------ OIDC

fn wants_html(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"))
}

fn html_escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

/// An error of a browser-facing step: a page for browsers, Harbor's
/// error body otherwise.
fn failure(headers: &HeaderMap, status: StatusCode, message: &str) -> Response {
    if !wants_html(headers) {
        return ApiError::new(status, message).into_response();
    }
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>berth: sign-in failed</title></head>\
         <body><h1>Sign-in failed</h1><p>{}</p><p><a href=\"/c/oidc/login\">Sign in again</a></p></body></html>",
        html_escape(message)
    );
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"))], page).into_response()
}

fn oidc_failure(headers: &HeaderMap, e: OidcError) -> Response {
    let e = match e {
        OidcError::Service(e) => {
            let resp = ApiError::from(e).into_response();
            return if wants_html(headers) {
                failure(headers, resp.status(), "berth cannot sign you in now")
            } else {
                resp
            };
        }
        other => other,
    };
    let status = match &e {
        OidcError::NotOidc(_) | OidcError::NotConfigured(_) => StatusCode::PRECONDITION_FAILED,
        OidcError::Provider(_) => StatusCode::BAD_GATEWAY,
        OidcError::IdToken(_) => StatusCode::UNAUTHORIZED,
        OidcError::Refused(_) | OidcError::State | OidcError::Claims(_) => StatusCode::BAD_REQUEST,
        OidcError::Service(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    if matches!(status, StatusCode::BAD_GATEWAY | StatusCode::UNAUTHORIZED) {
        tracing::warn!(error = %e, "oidc login failed");
    }
    failure(headers, status, &e.to_string())
}

fn query_fields(query: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect()
}

/// `GET /c/oidc/login?redirect_url=/path`: to the provider.
async fn oidc_login(State(state): State<Arc<AppState>>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let fields = query_fields(query.as_deref());
    let return_to = match field(&fields, "redirect_url") {
        "" => "/",
        p if is_local_path(p) => p,
        _ => return failure(&headers, StatusCode::BAD_REQUEST, "cannot redirect to other site"),
    };
    let settings = match state.registry.settings().await {
        Ok(s) => s,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let callback = format!("{}/c/oidc/callback", external_base(&state, &headers));
    match state.oidc.begin(&state.registry, &settings, &callback, return_to).await {
        Ok(to) => {
            let mut resp = redirect(&to.url);
            let cookie =
                set_cookie(STATE_COOKIE, &to.state, OIDC_PATH, OIDC_COOKIE_SECS, "Lax", is_secure(&state, &headers));
            add_cookie(&mut resp, cookie);
            resp
        }
        Err(e) => oidc_failure(&headers, e),
    }
}

/// `GET /c/oidc/callback?code=…&state=…`: back from the provider.
async fn oidc_callback(State(state): State<Arc<AppState>>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let fields = query_fields(query.as_deref());
    let login_state = field(&fields, "state");
    if login_state.is_empty() || cookie(&headers, STATE_COOKIE) != Some(login_state) {
        return failure(&headers, StatusCode::BAD_REQUEST, "State mismatch");
    }
    let error = field(&fields, "error");
    if !error.is_empty() {
        let message = format!("OIDC callback returned error: {error} - {}", field(&fields, "error_description"));
        return failure(&headers, StatusCode::BAD_REQUEST, &message);
    }
    let code = field(&fields, "code");
    if code.is_empty() {
        return failure(&headers, StatusCode::BAD_REQUEST, "the callback carries no code");
    }
    let settings = match state.registry.settings().await {
        Ok(s) => s,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let secure = is_secure(&state, &headers);
    let mut resp = match state.oidc.finish(&state.registry, &settings, login_state, code).await {
        Ok(Login::Done { user, return_to }) => {
            let mut resp = redirect(&return_to);
            start_session(&state, &headers, &settings, user.user_id, &mut resp);
            resp
        }
        Ok(Login::Onboard { id, username, return_to }) => {
            // Harbor's portal page that asks for the name.
            let query = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("username", &username)
                .append_pair("redirect_url", &return_to)
                .finish();
            let mut resp = redirect(&format!("/oidc-onboard?{query}"));
            add_cookie(&mut resp, set_cookie(ONBOARD_COOKIE, &id, OIDC_PATH, OIDC_COOKIE_SECS, "Lax", secure));
            resp
        }
        Err(e) => oidc_failure(&headers, e),
    };
    add_cookie(&mut resp, set_cookie(STATE_COOKIE, "", OIDC_PATH, 0, "Lax", secure));
    resp
}

/// `POST /c/oidc/onboard` `{"username": "…"}`: finishes a login that
/// waited for its user to choose a name.
async fn oidc_onboard(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refused) = cross_origin(&state, &headers) {
        return refused;
    }
    #[derive(serde::Deserialize)]
    struct Onboard {
        username: String,
    }
    // The portal's page posts a form and is sent on to `redirect_url`;
    // Harbor's clients post JSON and are answered 200.
    let from_page = is_form(&headers);
    let (username, return_to) = if from_page {
        let fields = form_fields(None, &body);
        let to = field(&fields, "redirect_url");
        (field(&fields, "username").trim().to_owned(), if is_local_path(to) { to.to_owned() } else { "/".to_owned() })
    } else {
        match serde_json::from_slice::<Onboard>(&body) {
            Ok(b) => (b.username, String::new()),
            Err(e) => return ApiError::bad_request(format!("bad onboard request: {e}")).into_response(),
        }
    };
    // A refusal sends the page back to its form with the reason.
    let refused = |resp: Response, message: &str| {
        if !from_page {
            return resp;
        }
        let q = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("username", &username)
            .append_pair("redirect_url", &return_to)
            .append_pair("error", message)
            .finish();
        let mut to = redirect(&format!("/oidc-onboard?{q}"));
        *to.status_mut() = StatusCode::SEE_OTHER;
        to
    };
    let settings = match state.registry.settings().await {
        Ok(s) => s,
        Err(e) => return ApiError::from(e).into_response(),
    };
    if let Err(e) = validate_username(&username, settings.robot_prefix()) {
        let message = e.to_string();
        return refused(ApiError::from(e).into_response(), &message);
    }
    let Some(id) = cookie(&headers, ONBOARD_COOKIE) else {
        let message = "Failed to get OIDC user info from session";
        return refused(ApiError::bad_request(message).into_response(), message);
    };
    match state.oidc.onboard(&state.registry, &settings, id, &username).await {
        Ok((user, _)) => {
            let mut resp = if from_page {
                let mut to = redirect(&return_to);
                *to.status_mut() = StatusCode::SEE_OTHER;
                to
            } else {
                StatusCode::OK.into_response()
            };
            start_session(&state, &headers, &settings, user.user_id, &mut resp);
            add_cookie(&mut resp, set_cookie(ONBOARD_COOKIE, "", OIDC_PATH, 0, "Lax", is_secure(&state, &headers)));
            resp
        }
        Err(OidcError::Service(e)) => {
            let message =
                if matches!(e, ServiceError::Backend(_)) { "internal error".to_owned() } else { e.to_string() };
            refused(ApiError::from(e).into_response(), &message)
        }
        Err(e) => oidc_failure(&headers, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_and_paths() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1; sid=tok.en.x"));
        h.append(header::COOKIE, HeaderValue::from_static("__csrf=\"c\""));
        assert_eq!(cookie(&h, "sid"), Some("tok.en.x"));
        assert_eq!(cookie(&h, "__csrf"), Some("c"));
        assert_eq!(cookie(&h, "s"), None);
        let v = set_cookie("sid", "x", "/", 60, "Lax", true);
        assert_eq!(v, "sid=x; Path=/; Max-Age=60; HttpOnly; SameSite=Lax; Secure");
        for ok in ["/", "/harbor/projects?x=1"] {
            assert!(is_local_path(ok), "{ok}");
        }
        for bad in ["", "//evil.example", "https://evil.example", "/\\evil.example", "x", "/a\nb"] {
            assert!(!is_local_path(bad), "{bad:?}");
        }
        assert_eq!(html_escape("<a href='x'>&\"</a>"), "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;");
    }
}

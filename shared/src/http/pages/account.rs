//! Signing in and out, OIDC onboarding, one's own password and CLI secret.
//!
//! The sign-in form is checked by the same code as `POST /c/login`; the
//! onboarding form posts to `POST /c/oidc/onboard` itself (its cookie is
//! sent only there).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use maud::html;
use serde_json::{Value, json};

use super::layout::{copy, csrf, page};
use super::{Visit, back, field, form, html, see_other, text};
use crate::auth::session::Session;
use crate::http::portal;
use crate::http::state::AppState;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/account/sign-in", get(sign_in_page).post(sign_in))
        .route("/account/sign-out", axum::routing::post(sign_out))
        .route("/oidc-onboard", get(onboard_page))
        .route("/account/password", get(password_page).post(password))
        .route("/account/cli-secret", get(cli_secret_page).post(cli_secret))
}

/// Where to go after signing in: a path on this site, else the projects.
fn return_path(p: &str) -> &str {
    if portal::is_local_path(p) { p } else { "/harbor/projects" }
}

async fn sign_in_page(visit: Visit) -> Response {
    sign_in_form(&visit, StatusCode::OK, visit.param("redirect_url"), "").await
}

async fn sign_in_form(visit: &Visit, status: StatusCode, redirect_url: &str, error: &str) -> Response {
    let info = visit.get("/systeminfo").await.body;
    let oidc = text(&info, "auth_mode") == "oidc_auth";
    let provider = text(&info, "oidc_provider_name");
    let oidc_link = {
        let q = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("redirect_url", return_path(redirect_url))
            .finish();
        format!("/c/oidc/login?{q}")
    };
    let body = html! {
        div.signin {
            h1 { "Sign in to berth" }
            @if !error.is_empty() { p.error role="alert" { (error) } }
            @if oidc {
                p { a.button href=(oidc_link) {
                    "Sign in via " @if provider.is_empty() { "OIDC provider" } @else { (provider) }
                } }
                p.muted { "Administrators of the registry sign in below." }
            }
            form method="post" action="/account/sign-in" {
                input type="hidden" name="redirect_url" value=(redirect_url);
                label for="principal" { "User name" }
                input #principal type="text" name="principal" autocomplete="username" required autofocus;
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="current-password" required;
                p { button type="submit" { "Sign in" } }
            }
        }
    };
    html(status, page(visit, None, "Sign in", body))
}

/// `POST /account/sign-in`: `POST /c/login`'s check, then back where the
/// visitor came from.
async fn sign_in(state: State<Arc<AppState>>, visit: Visit, headers: HeaderMap, body: Bytes) -> Response {
    let fields = form(&body);
    let redirect_url = field(&fields, "redirect_url").to_owned();
    let login_body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("principal", field(&fields, "principal"))
        .append_pair("password", fields.iter().find(|(k, _)| k == "password").map_or("", |(_, v)| v.as_str()))
        .finish();
    let resp = portal::login(state, headers, RawQuery(None), Bytes::from(login_body)).await;
    match resp.status() {
        StatusCode::OK => {
            let mut to = see_other(return_path(&redirect_url));
            for c in resp.headers().get_all(header::SET_COOKIE) {
                to.headers_mut().append(header::SET_COOKIE, c.clone());
            }
            to
        }
        StatusCode::UNAUTHORIZED => {
            sign_in_form(&visit, StatusCode::UNAUTHORIZED, &redirect_url, "Invalid user name or password.").await
        }
        StatusCode::FORBIDDEN if resp.headers().get(header::CONTENT_TYPE).is_some() => {
            // Under OIDC only the administrator signs in with a password.
            let body = axum::body::to_bytes(resp.into_body(), 64 * 1024).await.unwrap_or_default();
            let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            if v.get("redirect_location").is_some() {
                let q = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("redirect_url", return_path(&redirect_url))
                    .finish();
                see_other(&format!("/c/oidc/login?{q}"))
            } else {
                sign_in_form(&visit, StatusCode::FORBIDDEN, &redirect_url, "Signing in was refused.").await
            }
        }
        status => sign_in_form(&visit, status, &redirect_url, "berth cannot sign you in now; try again later.").await,
    }
}

/// `POST /account/sign-out`: `GET /c/log_out`, then the sign-in page (or
/// the OIDC provider's sign-out).
async fn sign_out(state: State<Arc<AppState>>, headers: HeaderMap, session: Option<Extension<Session>>) -> Response {
    let resp = portal::log_out(state, headers, session).await;
    if resp.status().is_redirection() {
        return resp;
    }
    let mut to = see_other("/account/sign-in");
    for c in resp.headers().get_all(header::SET_COOKIE) {
        to.headers_mut().append(header::SET_COOKIE, c.clone());
    }
    to
}

/// `GET /oidc-onboard?username=…&redirect_url=…`: the name a new OIDC user
/// chooses; the form posts to `/c/oidc/onboard`.
async fn onboard_page(visit: Visit) -> Response {
    let body = html! {
        div.signin {
            h1 { "Choose your user name" }
            p { "This is your first sign-in through the identity provider. Choose the name berth knows you by." }
            form method="post" action="/c/oidc/onboard" {
                input type="hidden" name="redirect_url" value=(visit.param("redirect_url"));
                label for="username" { "User name" }
                input #username type="text" name="username" value=(visit.param("username")) required autofocus;
                p { button type="submit" { "Continue" } }
            }
        }
    };
    html(StatusCode::OK, page(&visit, None, "Choose your user name", body))
}

async fn password_page(visit: Visit) -> Response {
    let viewer = match visit.viewer().await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let body = html! {
        h1 { "Change password" }
        form.panel method="post" action="/account/password" {
            (csrf(&visit))
            label for="old" { "Current password" }
            input #old type="password" name="old_password" autocomplete="current-password" required;
            label for="new" { "New password" }
            input #new type="password" name="new_password" autocomplete="new-password" required;
            p.muted { "At least 8 characters, with an upper-case letter, a lower-case letter and a digit." }
            p { button type="submit" { "Change password" } }
        }
    };
    html(StatusCode::OK, page(&visit, Some(&viewer), "Change password", body))
}

async fn password(visit: Visit, body: Bytes) -> Response {
    let viewer = match visit.viewer().await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let fields = form(&body);
    let raw = |name: &str| fields.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str()).to_owned();
    let body = json!({"old_password": raw("old_password"), "new_password": raw("new_password")});
    let answer = visit.api(Method::PUT, &format!("/users/{}/password", viewer.id), Some(&body)).await;
    super::after(&visit, "/account/password", &answer, "Your password was changed.")
}

async fn cli_secret_page(visit: Visit) -> Response {
    let viewer = match visit.viewer().await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let me = visit.get("/users/current").await.body;
    let secret = me.pointer("/oidc_user_meta/secret").and_then(Value::as_str).unwrap_or_default().to_owned();
    let body = html! {
        h1 { "CLI secret" }
        @if secret.is_empty() {
            p { "Only users who sign in through OIDC have a CLI secret." }
        } @else {
            p { "Registry clients (docker, skopeo, helm) sign in with your user name and this secret." }
            div.secret {
                code #cli-secret { (secret) } " " (copy(&secret, "Copy the CLI secret"))
            }
            form.panel method="post" action="/account/cli-secret" data-confirm="Replace your CLI secret? Clients using the old one stop working." {
                (csrf(&visit))
                label for="secret" { "New secret (leave empty to generate one)" }
                input #secret type="password" name="secret" autocomplete="new-password";
                p { button type="submit" { "Replace the secret" } }
            }
        }
    };
    html(StatusCode::OK, page(&visit, Some(&viewer), "CLI secret", body))
}

async fn cli_secret(visit: Visit, body: Bytes) -> Response {
    let viewer = match visit.viewer().await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let fields = form(&body);
    let body = json!({"secret": field(&fields, "secret")});
    let answer = visit.api(Method::PUT, &format!("/users/{}/cli_secret", viewer.id), Some(&body)).await;
    if answer.status == StatusCode::UNAUTHORIZED {
        return visit.to_sign_in();
    }
    let message = answer.message();
    back("/account/cli-secret", if answer.ok() { Ok("The CLI secret was replaced.") } else { Err(&message) })
}

//! The HTTP surface, one axum `Router` for every host (the `berth` server,
//! containers, the `api` Lambda): `/v2` (OCI distribution), health,
//! `/service/token`, `/api/v2.0`, the portal's `/c/` endpoints and its
//! pages, and the built-in scanner as a Pluggable Scanner API adapter
//! (`/scanner-adapter`).
//!
//! Handlers parse and authorize requests, call services and map service
//! errors to the protocol's error body; they hold no registry rules.

pub mod adapter;
pub mod api;
pub mod metrics;
mod pages;
mod portal;
mod router;
pub mod serve;
pub mod state;
mod token;
pub mod v2;

pub use router::router;
pub use serve::serve;

/// Who made a request, and from where: the account, the client's address
/// (the first `X-Forwarded-For` hop, else `X-Real-IP`, else the peer) and
/// the host it addressed (`X-Forwarded-Host`, else `Host`).
pub fn request_actor(
    subject: &crate::auth::Subject,
    headers: &axum::http::HeaderMap,
    extensions: &axum::http::Extensions,
) -> crate::events::Actor {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let peer = extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|axum::extract::ConnectInfo(addr)| addr.ip().to_string());
    let address = get("x-forwarded-for").or_else(|| get("x-real-ip")).or(peer);
    let host = get("x-forwarded-host").or_else(|| get("host"));
    crate::events::Actor::new(subject.name(), address).via(host)
}

/// The registry's public base URL: `server.external_url`, else the scheme
/// and host the request came to (honouring `X-Forwarded-Proto`/`-Host` from
/// a proxy).
pub fn external_base(state: &state::AppState, headers: &axum::http::HeaderMap) -> String {
    if let Some(url) = &state.ctx.config.server.external_url {
        return url.trim_end_matches('/').to_owned();
    }
    let get = |name: &str| {
        headers.get(name).and_then(|v| v.to_str().ok()).map(|v| v.split(',').next().unwrap_or(v).trim().to_owned())
    };
    let scheme = get("x-forwarded-proto").unwrap_or_else(|| "http".to_owned());
    let host =
        get("x-forwarded-host").or_else(|| get("host")).unwrap_or_else(|| state.ctx.config.server.listen.to_string());
    format!("{scheme}://{host}")
}

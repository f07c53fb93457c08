//! Assembles the router and the layers every request passes through
//! (request id, tracing span; the session layer on `/api/v2.0`, the
//! portal's `/c/` and its pages).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, Method, Request, StatusCode, header};
use axum::middleware::from_fn_with_state;
use axum::response::IntoResponse;
use axum::routing::{any, get};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use super::state::AppState;
use super::{pages, portal, v2};
use crate::context::AppContext;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole HTTP surface over one application context.
pub fn router(ctx: Arc<AppContext>) -> Router {
    let state = Arc::new(AppState::new(ctx));
    Router::new()
        .route("/v2", any(v2::dispatch))
        .route("/v2/", any(v2::dispatch))
        .route("/v2/{*rest}", any(v2::dispatch))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/service/token", get(super::token::issue).post(super::token::post_refused))
        .route("/api/version", get(super::api::version))
        .nest(super::adapter::PREFIX, super::adapter::routes())
        .nest(super::api::PREFIX, super::api::routes().layer(from_fn_with_state(state.clone(), portal::sessions)))
        .merge(portal::routes().layer(from_fn_with_state(state.clone(), portal::sessions)))
        .merge(pages::routes(&state).layer(from_fn_with_state(state.clone(), portal::sessions)))
        .layer(from_fn_with_state(state.clone(), read_only))
        .layer(axum::middleware::from_fn(super::metrics::observe))
        .with_state(state)
        .layer(
            tower::ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                    let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
                }))
                .layer(PropagateRequestIdLayer::new(REQUEST_ID)),
        )
}

/// Harbor's read-only mode (the `read_only` setting): a request that could
/// change anything is refused with 403 `DENIED`, except those that turn
/// the mode off or sign in. Reads and pulls go on. (Background jobs are
/// not requests: a scheduled run still runs, as in Harbor.)
async fn read_only(
    State(state): State<Arc<AppState>>,
    req: Request<axum::body::Body>,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let (method, path) = (req.method(), req.uri().path());
    let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    let exempt = (method == Method::PUT && path == "/api/v2.0/configurations")
        || (method == Method::POST
            && matches!(
                path,
                "/c/login" | "/c/userExists" | "/c/oidc/onboard" | "/service/token" | "/account/sign-in"
            ));
    if safe || exempt {
        return next.run(req).await;
    }
    match state.registry.settings().await {
        Ok(settings) if settings.read_only => {
            let body = r#"{"errors":[{"code":"DENIED","message":"The system is in read only mode. Any modification is prohibited."}]}"#;
            (StatusCode::FORBIDDEN, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body)
                .into_response()
        }
        // Unreadable settings: the request's own handler meets the same
        // backend and answers for it.
        _ => next.run(req).await,
    }
}

/// `GET /health`: the process is up and its context was built (every
/// backend was reachable at start).
async fn health() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], r#"{"status":"healthy"}"#)
}

/// `GET /ready`: the backends answer now (one metadata read and one
/// blob-store listing, each within two seconds), so a replica that lost its
/// store is taken out of rotation without being restarted. `503` otherwise.
async fn ready(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let limit = std::time::Duration::from_secs(2);
    let (pk, sk) = crate::meta::keys::schema_version();
    let meta = tokio::time::timeout(limit, state.ctx.meta.get(pk, sk));
    let blobs = tokio::time::timeout(limit, state.ctx.blobs.list(crate::blob::keys::BLOBS_PREFIX, None, 1));
    let failed = match tokio::join!(meta, blobs) {
        (Ok(Ok(_)), Ok(Ok(_))) => None,
        (Err(_), _) => Some("metadata store: timed out".to_owned()),
        (Ok(Err(e)), _) => Some(format!("metadata store: {:?}", e.kind())),
        (_, Err(_)) => Some("blob store: timed out".to_owned()),
        (_, Ok(Err(e))) => Some(format!("blob store: {:?}", e.kind())),
    };
    #[derive(serde::Serialize)]
    struct Readiness {
        status: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    }
    match failed {
        None => (StatusCode::OK, axum::Json(Readiness { status: "ready", reason: None })),
        Some(reason) => {
            tracing::warn!(reason, "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(Readiness { status: "unavailable", reason: Some(reason) }))
        }
    }
}

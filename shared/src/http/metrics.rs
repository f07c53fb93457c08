//! Prometheus metrics over HTTP: the layer that measures every request
//! (`/v2` as Distribution's `registry_http_*`, the rest as Harbor core's
//! `harbor_core_http_*`, by route template), and the scrape endpoint served
//! on its own port (`metric.port`, `metric.path`) with Harbor's `comp`
//! parameter choosing a component (`core`, `registry`, `jobservice`,
//! `exporter`; all without it).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Query, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::metrics::{exporter, metrics, registry_handler};
use crate::service::Registry;

/// How long the exporter's figures (read from the table) are reused.
const EXPORTER_TTL: Duration = Duration::from_secs(20);

/// Measures a request: its count by status, its time to the response head,
/// the declared body sizes, and the requests in flight.
pub async fn observe(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().as_str().to_owned();
    let path = req.uri().path();
    let m = metrics();
    if path == "/v2" || path.starts_with("/v2/") {
        let handler = registry_handler(path);
        let size = body_size(req.headers(), req.body());
        let inflight = m.registry_inflight.with_label_values(&[handler]);
        inflight.inc();
        let res = next.run(req).await;
        inflight.dec();
        let code = res.status().as_str().to_owned();
        m.registry_requests.with_label_values(&[&method, handler, &code]).inc();
        m.registry_duration.with_label_values(&[&method, handler]).observe(start.elapsed().as_secs_f64());
        if let Some(n) = size {
            m.registry_request_size.with_label_values(&[&method, handler]).observe(n);
        }
        if let Some(n) = body_size(res.headers(), res.body()) {
            m.registry_response_size.with_label_values(&[&method, handler]).observe(n);
        }
        return res;
    }
    let operation = req.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_owned();
    let inflight = m.core_inflight.with_label_values(&[&operation]);
    inflight.inc();
    let res = next.run(req).await;
    inflight.dec();
    m.core_requests.with_label_values(&[&method, &operation, res.status().as_str()]).inc();
    m.core_duration.with_label_values(&[&method, &operation]).observe(start.elapsed().as_secs_f64());
    res
}

/// A body's size when known before it is read: its `Content-Length`, or
/// what the body says of itself (0 for none); `None` for a stream of
/// unknown length.
fn body_size(headers: &axum::http::HeaderMap, body: &axum::body::Body) -> Option<f64> {
    use axum::body::HttpBody as _;
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    declared.or_else(|| body.size_hint().exact()).map(|n| n as f64)
}

struct ScrapeState {
    registry: Registry,
    /// The exporter's last text and when it was read.
    cached: Mutex<Option<(Instant, String)>>,
}

#[derive(Debug, Deserialize)]
struct ScrapeQuery {
    comp: Option<String>,
}

/// The scrape endpoint's router (served on the metric port).
pub fn router(registry: Registry, path: &str) -> Router {
    let state = Arc::new(ScrapeState { registry, cached: Mutex::new(None) });
    Router::new().route(path, get(scrape)).with_state(state)
}

async fn scrape(State(state): State<Arc<ScrapeState>>, Query(q): Query<ScrapeQuery>) -> Response {
    let comp = q.comp.as_deref().filter(|c| !c.is_empty());
    let mut text = metrics().encode(comp);
    if comp.is_none() || comp == Some("exporter") {
        let mut cached = state.cached.lock().await;
        let fresh = cached.as_ref().filter(|(at, _)| at.elapsed() < EXPORTER_TTL).map(|(_, t)| t.clone());
        let figures = match fresh {
            Some(t) => t,
            None => {
                let t = exporter::encode(exporter::snapshot(&state.registry).await.as_ref());
                *cached = Some((Instant::now(), t.clone()));
                t
            }
        };
        text.push_str(&figures);
    }
    ([(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"))], text)
        .into_response()
}

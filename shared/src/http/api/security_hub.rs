//! `/security/summary` and `/security/vul`: Harbor's security hub over the
//! index the scans keep ([`crate::service::security_hub`]), for whoever
//! may read the security hub (system administrators, robots granted it).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiResult, Caller, Paging, parse_q, query_bool};
use crate::auth::On;
use crate::http::state::AppState;
use crate::rbac::{Act, Res};
use crate::service::paging::Match;
use crate::service::security_hub::{FindingFilter, FindingView, SecuritySummary};

#[derive(Debug, Deserialize)]
pub struct SummaryQuery {
    with_dangerous_cve: Option<String>,
    with_dangerous_artifact: Option<String>,
}

/// `GET /security/summary`.
pub async fn summary(State(state): State<Arc<AppState>>, caller: Caller, Query(q): Query<SummaryQuery>) -> ApiResult {
    caller.require((Res::SecurityHub, Act::Read), On::Registry)?;
    let flag = |v: &Option<String>| v.as_deref().is_some_and(query_bool);
    let s: SecuritySummary =
        state.registry.security_summary(flag(&q.with_dangerous_cve), flag(&q.with_dangerous_artifact)).await?;
    Ok(Json(s).into_response())
}

#[derive(Debug, Deserialize)]
pub struct VulQuery {
    q: Option<String>,
    page: Option<String>,
    page_size: Option<String>,
    cursor: Option<String>,
    tune_count: Option<String>,
    with_tag: Option<String>,
}

/// Harbor's `VulnerabilityItem`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct VulnerabilityItem {
    project_id: i64,
    repository_name: String,
    digest: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<Vec<String>>,
    cve_id: String,
    severity: String,
    cvss_v3_score: Option<f64>,
    package: String,
    version: String,
    fixed_version: String,
    desc: String,
    links: Vec<String>,
}

fn item(v: FindingView, with_tags: bool) -> VulnerabilityItem {
    let f = v.finding;
    VulnerabilityItem {
        project_id: f.project_id,
        repository_name: f.repository,
        digest: f.digest,
        tags: with_tags.then_some(v.tags),
        cve_id: f.cve_id,
        severity: f.severity,
        cvss_v3_score: f.score,
        package: f.package,
        version: f.version,
        fixed_version: f.fixed_version,
        desc: v.cve.description,
        links: v.cve.links,
    }
}

fn exact(m: Match, key: &str) -> Result<String, ApiError> {
    match m {
        Match::Exact(v) => Ok(v),
        _ => Err(ApiError::bad_request(format!("{key} takes an exact value"))),
    }
}

/// The filters Harbor documents for `q` (others are ignored, as Harbor
/// ignores them).
fn filter(q: Option<&str>) -> Result<FindingFilter, ApiError> {
    let mut f = FindingFilter::default();
    for (key, m) in parse_q(q)? {
        match key.as_str() {
            "cve_id" => f.cve_id = Some(exact(m, &key)?),
            "severity" => f.severity = Some(m),
            "repository_name" => f.repository = Some(exact(m, &key)?),
            "package" => f.package = Some(exact(m, &key)?),
            "tag" => f.tag = Some(exact(m, &key)?),
            "digest" => f.digest = Some(exact(m, &key)?),
            "project_id" => {
                let v = exact(m, &key)?;
                f.project_id = Some(v.parse().map_err(|_| ApiError::bad_request(format!("project_id {v:?}")))?);
            }
            "cvss_score_v3" => {
                let num = |b: Option<String>| {
                    b.map(|b| b.parse::<f64>().map_err(|_| ApiError::bad_request(format!("cvss_score_v3 {b:?}"))))
                        .transpose()
                };
                f.score = Some(match m {
                    Match::Range { min, max } => (num(min)?, num(max)?),
                    Match::Exact(v) => {
                        let v = num(Some(v))?;
                        (v, v)
                    }
                    _ => return Err(ApiError::bad_request("cvss_score_v3 takes a range [min~max]")),
                });
            }
            _ => {}
        }
    }
    Ok(f)
}

/// `GET /security/vul`: findings, the highest CVSS v3 score first. With
/// `tune_count`, a total above 1000 is reported as -1, as Harbor does.
pub async fn list(State(state): State<Arc<AppState>>, caller: Caller, Query(q): Query<VulQuery>) -> ApiResult {
    caller.require((Res::SecurityHub, Act::List), On::Registry)?;
    let paging = Paging::parse(q.page.as_deref(), q.page_size.as_deref(), q.cursor.as_deref())?;
    let f = filter(q.q.as_deref())?;
    let with_tags = q.with_tag.as_deref().is_some_and(query_bool);
    let listing = state.registry.list_findings(&f, &paging.0, with_tags).await?;
    let tune = q.tune_count.as_deref().is_some_and(query_bool);
    let total = listing.total;
    let mut rest: Vec<(&str, &str)> = Vec::new();
    if let Some(q) = q.q.as_deref() {
        rest.push(("q", q));
    }
    if with_tags {
        rest.push(("with_tag", "true"));
    }
    let mut resp = paging.respond("/security/vul", &rest, listing.map(|v| item(v, with_tags)));
    if tune && total > 1000 {
        resp.headers_mut().insert("x-total-count", axum::http::HeaderValue::from(-1));
    }
    Ok(resp)
}

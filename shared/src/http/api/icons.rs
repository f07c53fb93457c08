//! `/icons/{digest}`: the icon of each artifact type, embedded in the
//! binary (an artifact's `icon` names its type's by digest), as Harbor's
//! `Icon`: a media type and the image in base64.

use std::sync::OnceLock;

use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use base64::Engine as _;
use serde::Serialize;

use super::{ApiError, ApiResult};

/// Each artifact type's icon (types without one of their own use
/// `UNKNOWN`'s).
const ICONS: &[(&str, &str)] = &[
    ("IMAGE", include_str!("../../../assets/icons/image.svg")),
    ("CHART", include_str!("../../../assets/icons/chart.svg")),
    ("CNAB", include_str!("../../../assets/icons/cnab.svg")),
    ("WASM", include_str!("../../../assets/icons/wasm.svg")),
    ("SIGNATURE", include_str!("../../../assets/icons/signature.svg")),
    ("SBOM", include_str!("../../../assets/icons/sbom.svg")),
    ("UNKNOWN", include_str!("../../../assets/icons/unknown.svg")),
];

/// `(type, digest, svg)` of every icon.
fn icons() -> &'static [(&'static str, String, &'static str)] {
    static ALL: OnceLock<Vec<(&'static str, String, &'static str)>> = OnceLock::new();
    ALL.get_or_init(|| {
        ICONS
            .iter()
            .map(|(kind, svg)| (*kind, crate::oci::Digest::sha256_of(svg.as_bytes()).to_string(), *svg))
            .collect()
    })
}

/// The digest of the icon an artifact of `kind` shows.
pub fn icon_of(kind: &str) -> String {
    let all = icons();
    all.iter()
        .find(|(k, _, _)| *k == kind)
        .or_else(|| all.iter().find(|(k, _, _)| *k == "UNKNOWN"))
        .map(|(_, d, _)| d.clone())
        .unwrap_or_default()
}

/// Harbor's `Icon`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct IconView {
    #[serde(rename = "content-type")]
    content_type: &'static str,
    content: String,
}

/// Served to anyone: the icons are the same in every registry.
pub async fn get(Path(digest): Path<String>) -> ApiResult {
    let (_, _, svg) = icons()
        .iter()
        .find(|(_, d, _)| *d == digest)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("icon {digest} not found")))?;
    let content = base64::engine::general_purpose::STANDARD.encode(svg.as_bytes());
    Ok(Json(IconView { content_type: "image/svg+xml", content }).into_response())
}

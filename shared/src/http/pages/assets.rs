//! The portal's stylesheet and script, embedded in the binary and served
//! under names that carry a hash of their content, so a browser may keep
//! them for a year: a new build changes the name, not the file.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest as _, Sha256};

struct Asset {
    /// The name it is served under: `portal.<hash>.css`.
    name: String,
    content_type: &'static str,
    body: &'static str,
}

fn asset(stem: &str, ext: &str, content_type: &'static str, body: &'static str) -> Asset {
    let hash = hex::encode(Sha256::digest(body.as_bytes()));
    Asset { name: format!("{stem}.{}.{ext}", &hash[..16]), content_type, body }
}

static CSS: LazyLock<Asset> =
    LazyLock::new(|| asset("portal", "css", "text/css; charset=utf-8", include_str!("assets/portal.css")));
static JS: LazyLock<Asset> =
    LazyLock::new(|| asset("portal", "js", "text/javascript; charset=utf-8", include_str!("assets/portal.js")));

/// The stylesheet's URL.
pub fn css_url() -> String {
    format!("/assets/{}", CSS.name)
}

/// The script's URL.
pub fn js_url() -> String {
    format!("/assets/{}", JS.name)
}

/// `GET /assets/{file}`: only the current names answer.
pub async fn serve(Path(file): Path<String>) -> Response {
    let Some(a) = [&*CSS, &*JS].into_iter().find(|a| a.name == file) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(a.content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable")),
        ],
        a.body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_content_hash() {
        assert!(css_url().starts_with("/assets/portal.") && css_url().ends_with(".css"));
        assert!(js_url().ends_with(".js"));
        assert_ne!(css_url(), js_url());
        assert_eq!(CSS.name.len(), "portal.".len() + 16 + ".css".len());
    }
}

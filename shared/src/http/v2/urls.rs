//! Every URL berth hands a client on `/v2` (`Location`, `Link`) is built here.
//!
//! Paths are relative (clients resolve them against the request), except
//! upload locations when `server.upload_base_url` names an upload host: then
//! they are absolute, so that a serverless API can send layer bytes to a
//! host without the Lambda request-size limit.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::oci::{Digest, RepoName};

/// Characters escaped in a query value (`last=`): all but unreserved ones.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

#[derive(Debug, Clone, Default)]
pub struct Urls {
    /// Scheme and authority (and optional path prefix) of the upload host,
    /// without a trailing slash.
    upload_base: Option<String>,
}

impl Urls {
    pub fn new(upload_base_url: Option<&str>) -> Self {
        Self { upload_base: upload_base_url.map(|u| u.trim_end_matches('/').to_owned()) }
    }

    pub fn upload(&self, repo: &RepoName, id: &str) -> String {
        format!("{}/v2/{repo}/blobs/uploads/{id}", self.upload_base.as_deref().unwrap_or(""))
    }

    /// A direct upload of the berth extension: always on the API host
    /// itself, since its bytes go to the object store, not to a host.
    pub fn direct_upload(&self, repo: &RepoName, id: &str) -> String {
        format!("/v2/{repo}/_berth/uploads/{id}")
    }

    pub fn blob(&self, repo: &RepoName, digest: &Digest) -> String {
        format!("/v2/{repo}/blobs/{digest}")
    }

    pub fn manifest(&self, repo: &RepoName, digest: &Digest) -> String {
        format!("/v2/{repo}/manifests/{digest}")
    }

    /// `Link` to the next page of a tag listing.
    pub fn tags_next(&self, repo: &RepoName, n: usize, last: &str) -> String {
        format!("</v2/{repo}/tags/list?n={n}&last={}>; rel=\"next\"", utf8_percent_encode(last, QUERY_VALUE))
    }

    /// `Link` to the next page of the catalog.
    pub fn catalog_next(&self, n: usize, last: &str) -> String {
        format!("</v2/_catalog?n={n}&last={}>; rel=\"next\"", utf8_percent_encode(last, QUERY_VALUE))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn builds_relative_and_absolute_locations() {
        let repo = RepoName::parse("library/a/b").unwrap();
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(Urls::new(None).upload(&repo, id), format!("/v2/library/a/b/blobs/uploads/{id}"));
        let up = Urls::new(Some("https://upload.example.com/"));
        assert_eq!(up.upload(&repo, id), format!("https://upload.example.com/v2/library/a/b/blobs/uploads/{id}"));
        assert_eq!(up.direct_upload(&repo, id), format!("/v2/library/a/b/_berth/uploads/{id}"));
        assert_eq!(up.tags_next(&repo, 2, "v1.0+x"), "</v2/library/a/b/tags/list?n=2&last=v1.0%2Bx>; rel=\"next\"");
        assert_eq!(up.catalog_next(5, "library/a"), "</v2/_catalog?n=5&last=library%2Fa>; rel=\"next\"");
    }
}

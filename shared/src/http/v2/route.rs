//! The one parser of `/v2/` paths. Repository names may hold any number of
//! components, so a path is read from its end: the last reserved segments
//! (`manifests`, `blobs`, `blobs/uploads`, `tags/list`, `referrers`) decide the
//! route and everything before them is the name.

use crate::oci::{Digest, Reference, RepoName};

use super::error::{OciCode, OciError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum V2Route {
    /// `/v2/`
    Base,
    /// `/v2/_catalog`
    Catalog,
    /// `/v2/<name>/tags/list`
    Tags { name: RepoName },
    /// `/v2/<name>/manifests/<reference>`
    Manifest { name: RepoName, reference: Reference },
    /// `/v2/<name>/blobs/<digest>`
    Blob { name: RepoName, digest: Digest },
    /// `/v2/<name>/blobs/uploads/`
    UploadStart { name: RepoName },
    /// `/v2/<name>/blobs/uploads/<id>`
    Upload { name: RepoName, id: String },
    /// `/v2/<name>/referrers/<digest>`
    Referrers { name: RepoName, digest: Digest },
    /// `/v2/<name>/_berth/uploads` (start) and `/v2/<name>/_berth/uploads/<id>`:
    /// the berth upload extension, whose bytes go to presigned part URLs.
    /// Repository components never start with `_`, so no name clashes.
    DirectUpload { name: RepoName, id: Option<String> },
}

impl V2Route {
    /// Parses the part of the path after `/v2/`.
    pub fn parse(rest: &str) -> Result<Self, OciError> {
        if rest.is_empty() {
            return Ok(Self::Base);
        }
        if rest == "_catalog" {
            return Ok(Self::Catalog);
        }
        let segs: Vec<&str> = rest.split('/').collect();
        let n = segs.len();
        let name_of = |end: usize| -> Result<RepoName, OciError> {
            let raw = segs[..end].join("/");
            RepoName::parse(&raw).map_err(|e| OciError::new(OciCode::NameInvalid).detail(e.to_string()))
        };
        let digest_of = |s: &str| -> Result<Digest, OciError> {
            s.parse().map_err(|_| OciError::new(OciCode::DigestInvalid).detail(format!("invalid digest {s:?}")))
        };
        let tail = |k: usize| segs.get(n.wrapping_sub(k)).copied();
        match (tail(3), tail(2), tail(1)) {
            (_, Some("tags"), Some("list")) if n > 2 => Ok(Self::Tags { name: name_of(n - 2)? }),
            (_, Some("manifests"), Some(r)) if n > 2 => {
                let reference = Reference::parse(r).map_err(|e| {
                    let code = if r.contains(':') { OciCode::DigestInvalid } else { OciCode::ManifestInvalid };
                    OciError::new(code).detail(e.to_string())
                })?;
                Ok(Self::Manifest { name: name_of(n - 2)?, reference })
            }
            (Some("blobs"), Some("uploads"), Some("")) if n > 3 => Ok(Self::UploadStart { name: name_of(n - 3)? }),
            (_, Some("blobs"), Some("uploads")) if n > 2 => Ok(Self::UploadStart { name: name_of(n - 2)? }),
            (Some("blobs"), Some("uploads"), Some(id)) if n > 3 && valid_upload_id(id) => {
                Ok(Self::Upload { name: name_of(n - 3)?, id: id.to_owned() })
            }
            (Some("blobs"), Some("uploads"), Some(_)) if n > 3 => {
                name_of(n - 3)?;
                Err(OciError::new(OciCode::BlobUploadUnknown))
            }
            (_, Some("blobs"), Some(d)) if n > 2 => Ok(Self::Blob { name: name_of(n - 2)?, digest: digest_of(d)? }),
            (Some("_berth"), Some("uploads"), Some("")) if n > 3 => {
                Ok(Self::DirectUpload { name: name_of(n - 3)?, id: None })
            }
            (_, Some("_berth"), Some("uploads")) if n > 2 => Ok(Self::DirectUpload { name: name_of(n - 2)?, id: None }),
            (Some("_berth"), Some("uploads"), Some(id)) if n > 3 => {
                let name = name_of(n - 3)?;
                if !valid_upload_id(id) {
                    return Err(OciError::new(OciCode::BlobUploadUnknown));
                }
                Ok(Self::DirectUpload { name, id: Some(id.to_owned()) })
            }
            (_, Some("referrers"), Some(d)) if n > 2 => {
                Ok(Self::Referrers { name: name_of(n - 2)?, digest: digest_of(d)? })
            }
            _ => Err(OciError::new(OciCode::NotFound).detail(format!("/v2/{rest}"))),
        }
    }

    /// The repository a route addresses, if any.
    pub fn name(&self) -> Option<&RepoName> {
        match self {
            Self::Base | Self::Catalog => None,
            Self::Tags { name }
            | Self::Manifest { name, .. }
            | Self::Blob { name, .. }
            | Self::UploadStart { name }
            | Self::Upload { name, .. }
            | Self::Referrers { name, .. }
            | Self::DirectUpload { name, .. } => Some(name),
        }
    }
}

/// Upload ids are ones berth issued: 32 lower-case hex characters.
pub fn valid_upload_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const U: &str = "0123456789abcdef0123456789abcdef";

    fn name(s: &str) -> RepoName {
        RepoName::parse(s).unwrap()
    }

    #[test]
    fn routes() {
        let d: Digest = D.parse().unwrap();
        let cases: Vec<(String, V2Route)> = vec![
            (String::new(), V2Route::Base),
            ("_catalog".into(), V2Route::Catalog),
            ("library/a/tags/list".into(), V2Route::Tags { name: name("library/a") }),
            (
                "p/a/b/c/d/e/f/g/h/manifests/latest".into(),
                V2Route::Manifest { name: name("p/a/b/c/d/e/f/g/h"), reference: Reference::parse("latest").unwrap() },
            ),
            (
                format!("library/a/manifests/{D}"),
                V2Route::Manifest { name: name("library/a"), reference: Reference::Digest(d.clone()) },
            ),
            (format!("library/a/blobs/{D}"), V2Route::Blob { name: name("library/a"), digest: d.clone() }),
            ("library/a/blobs/uploads/".into(), V2Route::UploadStart { name: name("library/a") }),
            ("library/a/blobs/uploads".into(), V2Route::UploadStart { name: name("library/a") }),
            (format!("library/a/blobs/uploads/{U}"), V2Route::Upload { name: name("library/a"), id: U.into() }),
            (format!("library/a/referrers/{D}"), V2Route::Referrers { name: name("library/a"), digest: d.clone() }),
            // Reserved words inside a name are just components.
            (format!("p/blobs/blobs/{D}"), V2Route::Blob { name: name("p/blobs"), digest: d.clone() }),
            ("p/manifests/tags/list".into(), V2Route::Tags { name: name("p/manifests") }),
            (
                "p/tags/manifests/list".into(),
                V2Route::Manifest { name: name("p/tags"), reference: Reference::parse("list").unwrap() },
            ),
            ("p/blobs/uploads/blobs/uploads/".into(), V2Route::UploadStart { name: name("p/blobs/uploads") }),
            ("library/a/_berth/uploads".into(), V2Route::DirectUpload { name: name("library/a"), id: None }),
            ("library/a/_berth/uploads/".into(), V2Route::DirectUpload { name: name("library/a"), id: None }),
            (format!("p/a/b/_berth/uploads/{U}"), V2Route::DirectUpload { name: name("p/a/b"), id: Some(U.into()) }),
        ];
        for (path, want) in cases {
            assert_eq!(V2Route::parse(&path).unwrap(), want, "{path}");
        }
    }

    #[test]
    fn bad_paths() {
        let cases: Vec<(String, OciCode)> = vec![
            ("Library/a/tags/list".into(), OciCode::NameInvalid),
            ("library/../a/tags/list".into(), OciCode::NameInvalid),
            ("library//a/tags/list".into(), OciCode::NameInvalid),
            (format!("{}/a/tags/list", "x".repeat(300)), OciCode::NameInvalid),
            ("library/a/blobs/sha256:nothex".into(), OciCode::DigestInvalid),
            ("library/a/blobs/notadigest".into(), OciCode::DigestInvalid),
            ("library/a/manifests/bad:ref".into(), OciCode::DigestInvalid),
            ("library/a/manifests/-tag".into(), OciCode::ManifestInvalid),
            ("library/a/referrers/sha256:zz".into(), OciCode::DigestInvalid),
            ("library/a/blobs/uploads/not-an-id".into(), OciCode::BlobUploadUnknown),
            ("library/a/_berth/uploads/not-an-id".into(), OciCode::BlobUploadUnknown),
            ("_berth/uploads".into(), OciCode::NotFound),
            ("library/a/_berth/other".into(), OciCode::NotFound),
            ("library/a".into(), OciCode::NotFound),
            ("tags/list".into(), OciCode::NotFound),
            ("manifests/latest".into(), OciCode::NotFound),
            ("library/a/unknown/x".into(), OciCode::NotFound),
        ];
        for (path, code) in cases {
            assert_eq!(V2Route::parse(&path).unwrap_err().code, code, "{path}");
        }
    }
}

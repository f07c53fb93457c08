//! The handlers of each `/v2` route, after authentication and authorization.

use crate::events::{Event, EventKind};
use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::{StreamExt, TryStreamExt};

use crate::auth::{Decision, Subject};
use crate::blob::{ByteRange, ByteStream};
use crate::oci::{Digest, Manifest, Reference, RepoName, media};
use crate::rbac::Act;
use crate::service::blobs::{BlobBody, BlobInfo};
use crate::service::uploads::direct::{DirectUpload, UploadedPart};
use crate::service::uploads::{CHUNK_MIN_LENGTH, UploadStatus};
use crate::service::{ServiceError, manifests::NamePage};

use super::Params;
use super::error::{OciCode, OciError};
use super::route::V2Route;
use crate::http::state::AppState;

const CONTENT_DIGEST: HeaderName = HeaderName::from_static("docker-content-digest");
const UPLOAD_UUID: HeaderName = HeaderName::from_static("docker-upload-uuid");
const CHUNK_MIN: HeaderName = HeaderName::from_static("oci-chunk-min-length");
const OCI_SUBJECT: HeaderName = HeaderName::from_static("oci-subject");
const FILTERS_APPLIED: HeaderName = HeaderName::from_static("oci-filters-applied");

type HandlerResult = Result<Response, OciError>;

/// A request, past the permission check.
pub(super) struct Ctx<'a> {
    pub state: &'a AppState,
    pub subject: &'a Subject,
    /// Whom changes and pulls are recorded as.
    pub actor: crate::events::Actor,
    pub method: &'a Method,
    pub headers: &'a HeaderMap,
    pub params: &'a Params,
}

impl Ctx<'_> {
    /// The registry, acting as this request's caller.
    fn registry(&self) -> crate::service::Registry {
        self.state.registry.acting(self.actor.clone())
    }
}

fn hv(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

fn unsupported(method: &Method) -> OciError {
    OciError::new(OciCode::Unsupported).detail(format!("{method} is not supported here"))
}

pub(super) async fn route(c: Ctx<'_>, route: V2Route, body: Body) -> HandlerResult {
    let m = c.method.clone();
    let pushes = matches!(route, V2Route::UploadStart { .. } | V2Route::Upload { .. } | V2Route::DirectUpload { .. })
        || (matches!(route, V2Route::Manifest { .. }) && m == Method::PUT);
    let pushed_project = if pushes { route.name().map(|n| n.project().to_owned()) } else { None };
    if let Some(project) = pushed_project {
        refuse_proxy_push(&c, &project).await?;
    }
    match route {
        V2Route::Base if m == Method::GET || m == Method::HEAD => {
            Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], "{}").into_response())
        }
        V2Route::Catalog if m == Method::GET => catalog(&c).await,
        V2Route::Tags { name } if m == Method::GET => tags(&c, &name).await,
        V2Route::Manifest { name, reference } => match m {
            Method::GET | Method::HEAD => get_manifest(&c, &name, &reference).await,
            Method::PUT => put_manifest(&c, &name, &reference, body).await,
            Method::DELETE => {
                c.registry().delete_manifest(&name, &reference).await?;
                Ok(StatusCode::ACCEPTED.into_response())
            }
            _ => Err(unsupported(&m)),
        },
        V2Route::Blob { name, digest } => match m {
            Method::GET | Method::HEAD => get_blob(&c, &name, &digest).await,
            Method::DELETE => {
                c.state.registry.delete_blob(&name, &digest).await?;
                Ok(StatusCode::ACCEPTED.into_response())
            }
            _ => Err(unsupported(&m)),
        },
        V2Route::UploadStart { name } if m == Method::POST => start_upload(&c, &name, body).await,
        V2Route::Upload { name, id } => {
            let registry = &c.state.registry;
            let result = match m {
                Method::GET => registry
                    .upload_status(&name, &id)
                    .await
                    .map(|s| upload_response(&c, &name, &s, StatusCode::NO_CONTENT)),
                Method::PATCH => {
                    let start = content_range_start(c.headers)?;
                    let status = registry.append_upload(&name, &id, start, byte_stream(body)).await;
                    status.map(|s| upload_response(&c, &name, &s, StatusCode::ACCEPTED))
                }
                Method::PUT => {
                    let digest = required_digest(c.params)?;
                    let start = content_range_start(c.headers)?;
                    let info = registry.complete_upload(&name, &id, &digest, start, Some(byte_stream(body))).await;
                    info.map(|i| blob_created(&c, &name, &i))
                }
                Method::DELETE => {
                    registry.cancel_upload(&name, &id).await.map(|()| StatusCode::NO_CONTENT.into_response())
                }
                _ => return Err(unsupported(&m)),
            };
            result.map_err(|e| upload_error(&c, &name, &id, e))
        }
        V2Route::Referrers { name, digest } if m == Method::GET => referrers(&c, &name, &digest).await,
        V2Route::DirectUpload { name, id } => direct_upload(&c, &name, id.as_deref(), body).await,
        _ => Err(unsupported(&m)),
    }
}

/// Refuses a push into a proxy-cache project: what it holds comes from
/// its upstream only.
async fn refuse_proxy_push(c: &Ctx<'_>, project: &str) -> Result<(), OciError> {
    if c.state.registry.proxy_setup(project).await?.is_some() {
        let why = format!("can not push artifact to a proxy project: {project}");
        return Err(OciError { message: Some(why.clone()), ..OciError::new(OciCode::Denied) }.detail(why));
    }
    Ok(())
}

/// A manifest, through the project's proxy cache when it is one.
async fn read_manifest(
    c: &Ctx<'_>,
    setup: Option<&crate::service::proxy_cache::ProxySetup>,
    name: &RepoName,
    reference: &Reference,
) -> Result<crate::service::manifests::ManifestRecord, ServiceError> {
    match setup {
        Some(setup) => c.registry().proxy_manifest(setup, name, reference).await,
        None => c.state.registry.get_manifest(name, reference, true).await,
    }
}

/// Whether the caller may read `repo` (the source of a mount).
async fn may_pull(c: &Ctx<'_>, repo: &RepoName) -> bool {
    super::check(c.state, c.subject, Act::Pull, repo).await.is_ok_and(|d| d == Decision::Allow)
}

fn byte_stream(body: Body) -> ByteStream {
    body.into_data_stream().map_err(std::io::Error::other).boxed()
}

fn required_digest(params: &Params) -> Result<Digest, OciError> {
    let raw =
        params.digest.as_deref().ok_or_else(|| OciError::new(OciCode::DigestInvalid).detail("missing ?digest="))?;
    raw.parse().map_err(|_| OciError::new(OciCode::DigestInvalid).detail(format!("invalid digest {raw:?}")))
}

/// The first byte of a chunk's `Content-Range` (`<start>-<end>`, inclusive).
fn content_range_start(headers: &HeaderMap) -> Result<Option<u64>, OciError> {
    let Some(v) = headers.get(header::CONTENT_RANGE) else { return Ok(None) };
    let bad = || OciError::new(OciCode::BlobUploadInvalid).detail("Content-Range must be <start>-<end>");
    let s = v.to_str().map_err(|_| bad())?.trim();
    let s = s.strip_prefix("bytes=").or_else(|| s.strip_prefix("bytes ")).unwrap_or(s);
    let s = s.split('/').next().unwrap_or(s);
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let (start, end) = (a.parse::<u64>().map_err(|_| bad())?, b.parse::<u64>().map_err(|_| bad())?);
    if end < start {
        return Err(bad());
    }
    Ok(Some(start))
}

/// The `Range` header of a chunked upload: the last byte received.
fn range_header(offset: u64) -> HeaderValue {
    hv(&format!("0-{}", offset.saturating_sub(1)))
}

fn upload_response(c: &Ctx<'_>, name: &RepoName, s: &UploadStatus, status: StatusCode) -> Response {
    (
        status,
        [
            (header::LOCATION, hv(&c.state.urls.upload(name, &s.id))),
            (header::RANGE, range_header(s.offset)),
            (UPLOAD_UUID, hv(&s.id)),
            (header::CONTENT_LENGTH, HeaderValue::from_static("0")),
        ],
    )
        .into_response()
}

/// A failed upload request; after a 416 the client learns where the upload
/// stands, as from a status request.
fn upload_error(c: &Ctx<'_>, name: &RepoName, id: &str, e: ServiceError) -> OciError {
    let offset = match &e {
        ServiceError::RangeInvalid { offset } => Some(*offset),
        _ => None,
    };
    let mut err = OciError::from(e);
    if let Some(offset) = offset {
        err = err
            .header(header::LOCATION, hv(&c.state.urls.upload(name, id)))
            .header(header::RANGE, range_header(offset))
            .header(UPLOAD_UUID, hv(id));
    }
    err
}

fn blob_created(c: &Ctx<'_>, name: &RepoName, info: &BlobInfo) -> Response {
    (
        StatusCode::CREATED,
        [
            (header::LOCATION, hv(&c.state.urls.blob(name, &info.digest))),
            (CONTENT_DIGEST, hv(&info.digest.to_string())),
            (header::CONTENT_LENGTH, HeaderValue::from_static("0")),
        ],
    )
        .into_response()
}

async fn start_upload(c: &Ctx<'_>, name: &RepoName, body: Body) -> HandlerResult {
    let registry = &c.state.registry;
    if let (Some(mount), Some(from)) = (&c.params.mount, &c.params.from) {
        let digest: Option<Digest> = mount.parse().ok();
        let from: Option<RepoName> = RepoName::parse(from).ok();
        // A mount the caller may not read from is just not done: the
        // client gets an upload session instead, as the spec allows.
        if let (Some(digest), Some(from)) = (digest, from)
            && may_pull(c, &from).await
            && let Some(info) = registry.mount_blob(name, &digest, &from).await?
        {
            return Ok(blob_created(c, name, &info));
        }
    }
    let status = registry.start_upload(name).await?;
    if c.params.digest.is_some() {
        let digest = required_digest(c.params)?;
        let info = registry
            .complete_upload(name, &status.id, &digest, None, Some(byte_stream(body)))
            .await
            .map_err(|e| upload_error(c, name, &status.id, e))?;
        return Ok(blob_created(c, name, &info));
    }
    let mut resp = upload_response(c, name, &status, StatusCode::ACCEPTED);
    resp.headers_mut().insert(CHUNK_MIN, hv(&CHUNK_MIN_LENGTH.to_string()));
    Ok(resp)
}

/// Largest JSON body the upload extension reads (a completion listing
/// 1,000 parts is about 100 KiB).
const MAX_EXTENSION_BODY: usize = 1024 * 1024;

/// The berth upload extension, `/v2/<name>/_berth/uploads[/<id>]`:
/// `POST` with `{"size": N, "part_size": P}` (`part_size` optional) opens a
/// direct upload and answers its presigned part URLs; `GET` presigns them
/// again; `PUT ?digest=<digest>` with `{"parts": [{"number": 1, "etag":
/// "…"}, …]}` completes it (`201`, as a blob upload); `DELETE` cancels it.
/// A registry whose blob store presigns nothing answers `UNSUPPORTED`.
async fn direct_upload(c: &Ctx<'_>, name: &RepoName, id: Option<&str>, body: Body) -> HandlerResult {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Start {
        size: u64,
        part_size: Option<u64>,
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Complete {
        parts: Vec<UploadedPart>,
    }
    let registry = &c.state.registry;
    let ttl = c.state.presign_ttl();
    match (c.method.clone(), id) {
        (Method::POST, None) => {
            let start: Start = json_body(body).await?;
            let Some(upload) = registry.start_direct_upload(name, start.size, start.part_size, ttl).await? else {
                return Err(OciError::new(OciCode::Unsupported).detail(
                    "this registry's blob store hands out no presigned URLs (local storage): \
                     push through /v2/<name>/blobs/uploads/",
                ));
            };
            Ok(direct_response(c, name, &upload, StatusCode::ACCEPTED))
        }
        (Method::GET, Some(id)) => {
            let upload = registry.direct_upload(name, id, ttl).await?;
            Ok(direct_response(c, name, &upload, StatusCode::OK))
        }
        (Method::PUT, Some(id)) => {
            let digest = required_digest(c.params)?;
            let complete: Complete = json_body(body).await?;
            let info = registry.complete_direct_upload(name, id, &digest, &complete.parts).await?;
            Ok(blob_created(c, name, &info))
        }
        (Method::DELETE, Some(id)) => {
            registry.cancel_upload(name, id).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        (m, _) => Err(unsupported(&m)),
    }
}

fn direct_response(c: &Ctx<'_>, name: &RepoName, upload: &DirectUpload, status: StatusCode) -> Response {
    let mut resp = (status, axum::Json(upload)).into_response();
    let h = resp.headers_mut();
    h.insert(header::LOCATION, hv(&c.state.urls.direct_upload(name, &upload.id)));
    h.insert(UPLOAD_UUID, hv(&upload.id));
    resp
}

async fn json_body<T: serde::de::DeserializeOwned>(body: Body) -> Result<T, OciError> {
    let bytes = axum::body::to_bytes(body, MAX_EXTENSION_BODY)
        .await
        .map_err(|e| OciError::new(OciCode::BlobUploadInvalid).detail(format!("reading the body failed: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        OciError::new(OciCode::BlobUploadInvalid).detail(format!("the body is not the expected JSON: {e}"))
    })
}

/// Parses a `Range` request header against a blob of `size` bytes. `None`
/// for no header or a form this server ignores (several ranges); a range
/// outside the blob is a 416.
fn parse_range(headers: &HeaderMap, size: u64) -> Result<Option<ByteRange>, OciError> {
    let Some(v) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else { return Ok(None) };
    let Some(spec) = v.trim().strip_prefix("bytes=") else { return Ok(None) };
    if spec.contains(',') {
        return Ok(None);
    }
    let unsatisfiable = || OciError::from(ServiceError::RangeNotSatisfiable { size });
    let Some((a, b)) = spec.split_once('-') else { return Ok(None) };
    let (a, b) = (a.trim(), b.trim());
    let range = match (a.parse::<u64>().ok(), b.parse::<u64>().ok()) {
        (Some(start), end) if b.is_empty() || end.is_some() => {
            if start >= size || end.is_some_and(|e| e < start) {
                return Err(unsatisfiable());
            }
            ByteRange { start, end }
        }
        (None, Some(suffix)) if a.is_empty() => {
            if suffix == 0 || size == 0 {
                return Err(unsatisfiable());
            }
            ByteRange { start: size.saturating_sub(suffix), end: None }
        }
        _ => return Ok(None),
    };
    Ok(Some(range))
}

async fn get_blob(c: &Ctx<'_>, name: &RepoName, digest: &Digest) -> HandlerResult {
    let registry = &c.state.registry;
    let info = match registry.proxy_setup(name.project()).await? {
        Some(setup) => c.registry().proxy_blob(&setup, name, digest).await?,
        None => registry.stat_blob(name, digest).await?,
    };
    let digest_hv = hv(&digest.to_string());
    let common = [
        (CONTENT_DIGEST, digest_hv.clone()),
        (header::ETAG, hv(&format!("\"{digest}\""))),
        (header::ACCEPT_RANGES, HeaderValue::from_static("bytes")),
    ];
    if *c.method == Method::HEAD {
        let mut resp = (common, Body::empty()).into_response();
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
        h.insert(header::CONTENT_LENGTH, hv(&info.size.to_string()));
        return Ok(resp);
    }
    let range = parse_range(c.headers, info.size)?;
    match registry.open_blob(&info, range, c.state.presign_ttl()).await? {
        BlobBody::Redirect(url) => {
            Ok((StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, hv(url.as_str())), (CONTENT_DIGEST, digest_hv)])
                .into_response())
        }
        BlobBody::Stream(read) => {
            let status = if range.is_some() { StatusCode::PARTIAL_CONTENT } else { StatusCode::OK };
            let mut resp = (status, common, Body::from_stream(read.body)).into_response();
            let h = resp.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
            h.insert(header::CONTENT_LENGTH, hv(&read.len.to_string()));
            if range.is_some() {
                let end = (read.start + read.len).saturating_sub(1);
                h.insert(header::CONTENT_RANGE, hv(&format!("bytes {}-{end}/{}", read.start, read.size)));
            }
            Ok(resp)
        }
    }
}

async fn get_manifest(c: &Ctx<'_>, name: &RepoName, reference: &Reference) -> HandlerResult {
    let registry = &c.state.registry;
    let head = *c.method == Method::HEAD;
    let setup = registry.proxy_setup(name.project()).await?;
    let mut record = read_manifest(c, setup.as_deref(), name, reference).await?;
    let accept: Vec<&str> = c.headers.get_all(header::ACCEPT).iter().filter_map(|v| v.to_str().ok()).collect();
    // A client that cannot take an index gets the linux/amd64 image of it,
    // as Distribution does for old clients.
    if !media::accepts(&accept, &record.media_type) && media::is_index(&record.media_type) {
        let child = Manifest::parse(Some(&record.media_type), &record.body)
            .ok()
            .and_then(|m| m.platform_child("linux", "amd64").map(|d| d.digest.clone()));
        if let Some(child) = child
            && let Ok(found) = read_manifest(c, setup.as_deref(), name, &Reference::Digest(child)).await
            && media::accepts(&accept, &found.media_type)
        {
            record = found;
        }
    }
    let headers = [
        (header::CONTENT_TYPE, hv(&record.media_type)),
        (CONTENT_DIGEST, hv(&record.digest.to_string())),
        (header::ETAG, hv(&format!("\"{}\"", record.digest))),
    ];
    if !head {
        let scanner = match c.subject {
            crate::auth::Subject::Token(claims) => claims.allows("repository", name.as_str(), "scanner-pull"),
            _ => false,
        };
        registry.check_pull(name, &record.digest, scanner).await?;
        // Counted later, in a batch: nothing is written on the pull path.
        let tag = match reference {
            Reference::Tag(t) => Some(t.as_str()),
            Reference::Digest(_) => None,
        };
        let pull = Event::artifact(EventKind::PullArtifact, &c.actor, name.as_str(), &record.digest.to_string())
            .with_tag(tag)
            .with_manifest(&record.media_type, record.size);
        registry.events().pulled(pull);
    }
    let mut resp = if head { (headers, Body::empty()).into_response() } else { (headers, record.body).into_response() };
    resp.headers_mut().insert(header::CONTENT_LENGTH, hv(&record.size.to_string()));
    Ok(resp)
}

async fn put_manifest(c: &Ctx<'_>, name: &RepoName, reference: &Reference, body: Body) -> HandlerResult {
    let limit = c.state.ctx.config.server.max_manifest_bytes;
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|e| {
        let too_large = std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if too_large {
            OciError::new(OciCode::TooLarge).detail(format!("manifests are limited to {limit} bytes"))
        } else {
            OciError::new(OciCode::ManifestInvalid).detail(format!("reading the manifest failed: {e}"))
        }
    })?;
    let content_type = c.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let outcome = c.registry().put_manifest(name, reference, content_type, bytes).await?;
    let mut resp = (
        StatusCode::CREATED,
        [
            (header::LOCATION, hv(&c.state.urls.manifest(name, &outcome.digest))),
            (CONTENT_DIGEST, hv(&outcome.digest.to_string())),
            (header::CONTENT_LENGTH, HeaderValue::from_static("0")),
        ],
    )
        .into_response();
    if let Some(subject) = outcome.subject {
        resp.headers_mut().insert(OCI_SUBJECT, hv(&subject.to_string()));
    }
    Ok(resp)
}

fn page_size(params: &Params) -> Result<Option<usize>, OciError> {
    params
        .n
        .as_deref()
        .map(|n| n.parse::<usize>().map_err(|_| OciError::new(OciCode::PaginationInvalid).detail(format!("n={n}"))))
        .transpose()
}

fn listing(
    page: &NamePage,
    n: Option<usize>,
    body: impl serde::Serialize,
    link: impl Fn(usize, &str) -> String,
) -> Response {
    let mut resp = axum::Json(body).into_response();
    if page.more
        && let Some(last) = page.names.last()
    {
        let n = n.unwrap_or(page.names.len());
        resp.headers_mut().insert(header::LINK, hv(&link(n, last)));
    }
    resp
}

async fn tags(c: &Ctx<'_>, name: &RepoName) -> HandlerResult {
    let n = page_size(c.params)?;
    let page = c.state.registry.list_tags(name, n, c.params.last.as_deref()).await?;
    #[derive(serde::Serialize)]
    struct TagList<'a> {
        name: &'a str,
        tags: &'a [String],
    }
    let body = TagList { name: name.as_str(), tags: &page.names };
    Ok(listing(&page, n, body, |n, last| c.state.urls.tags_next(name, n, last)))
}

async fn catalog(c: &Ctx<'_>) -> HandlerResult {
    let n = page_size(c.params)?;
    let page = c.state.registry.catalog(n, c.params.last.as_deref()).await?;
    #[derive(serde::Serialize)]
    struct Catalog<'a> {
        repositories: &'a [String],
    }
    let body = Catalog { repositories: &page.names };
    Ok(listing(&page, n, body, |n, last| c.state.urls.catalog_next(n, last)))
}

async fn referrers(c: &Ctx<'_>, name: &RepoName, subject: &Digest) -> HandlerResult {
    let filter = c.params.artifact_type.as_deref().filter(|t| !t.is_empty());
    let manifests = c.state.registry.referrers(name, subject, filter).await?;
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct ReferrersIndex {
        schema_version: u8,
        media_type: &'static str,
        manifests: Vec<crate::oci::Descriptor>,
    }
    let body = ReferrersIndex { schema_version: 2, media_type: media::OCI_INDEX, manifests };
    let mut resp = axum::Json(body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(media::OCI_INDEX));
    if filter.is_some() {
        h.insert(FILTERS_APPLIED, HeaderValue::from_static("artifactType"));
    }
    Ok(resp)
}

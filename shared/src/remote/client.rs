//! [`Client`]: the OCI Distribution API of one other registry, as a
//! client, authenticated the way the registry asks.

use std::io;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt as _, TryStreamExt as _};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, HeaderMap, LOCATION, RANGE};
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use url::Url;

use super::auth::{self, Challenge, TokenAnswer, TokenCache, parse_challenges};
use super::error::{ErrorKind, RemoteError, RemoteResult};
use super::link::next_link;
use crate::oci::Digest;
use crate::oci::media;

/// How long a connection may take to open.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The default time-out of one call (for a blob stream: of any pause in it).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Blobs up to this size are pushed in one PUT; larger ones in chunks.
pub const DEFAULT_MONOLITHIC_MAX: usize = 16 * 1024 * 1024;
/// The size of each chunk of a chunked push (raised to the registry's
/// `OCI-Chunk-Min-Length` when it asks for more).
pub const DEFAULT_CHUNK_SIZE: usize = 16 * 1024 * 1024;
/// Largest manifest (or error, token, listing body) read from a registry.
const MAX_DOCUMENT: usize = 4 * 1024 * 1024;
/// Redirects a blob GET follows.
const MAX_REDIRECTS: usize = 5;
/// The `Docker-Content-Digest` header.
const CONTENT_DIGEST: &str = "docker-content-digest";

/// Every manifest type berth stores, for `Accept`.
pub const MANIFEST_TYPES: [&str; 4] =
    [media::OCI_MANIFEST, media::OCI_INDEX, media::DOCKER_MANIFEST, media::DOCKER_MANIFEST_LIST];

/// What the client authenticates with.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Credential {
    /// No credentials: anonymous pulls (and tokens) only.
    #[default]
    Anonymous,
    /// A user name and password (or a robot's name and secret): sent as
    /// Basic to registries that ask for it, and to their token service.
    Basic { username: String, password: String },
    /// A fixed `Authorization` value sent with every request (an OAuth
    /// access token as `Bearer <token>`).
    Header(String),
    /// AWS keys: the password of the registry comes from ECR's
    /// `GetAuthorizationToken` ([`super::ecr`]) in `region`.
    AwsEcr { access_key: String, secret_key: String, region: String },
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Anonymous => f.write_str("Anonymous"),
            Self::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
            Self::Header(_) => f.write_str("Header(***)"),
            Self::AwsEcr { access_key, region, .. } => write!(f, "AwsEcr({access_key}, ***, {region})"),
        }
    }
}

/// Where a registry is and how to talk to it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The registry's base URL (`https://registry.example`); `/v2/` is
    /// appended.
    pub url: Url,
    pub credential: Credential,
    /// Skip TLS certificate verification.
    pub insecure: bool,
    /// The time-out of one call; for a blob stream, of any pause in it.
    pub timeout: Duration,
}

impl Endpoint {
    /// An endpoint at `url` (`http(s)://host[:port]`) with the defaults.
    pub fn new(url: &str, credential: Credential) -> RemoteResult<Self> {
        Ok(Self { url: parse_base_url(url)?, credential, insecure: false, timeout: DEFAULT_TIMEOUT })
    }
}

/// A registry's base URL: http or https, a host, no query; the path keeps
/// a trailing `/` so that joining `v2/` stays under it.
pub fn parse_base_url(url: &str) -> RemoteResult<Url> {
    let mut u = Url::parse(url.trim()).map_err(|e| RemoteError::invalid(format!("registry URL {url:?}: {e}")))?;
    if !matches!(u.scheme(), "http" | "https") || u.host().is_none() {
        return Err(RemoteError::invalid(format!("registry URL {url:?} is not an http(s) URL with a host")));
    }
    u.set_query(None);
    u.set_fragment(None);
    if !u.path().ends_with('/') {
        let path = format!("{}/", u.path());
        u.set_path(&path);
    }
    Ok(u)
}

/// A manifest as a registry holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub media_type: String,
    pub digest: Digest,
    pub bytes: Bytes,
}

/// What a manifest HEAD tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestInfo {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
}

/// A stream of blob bytes.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, io::Error>> + Send>>;

/// A blob being read: its length (of the range, when one was asked) and
/// its bytes.
pub struct BlobReader {
    pub size: Option<u64>,
    /// Whether the answer is the range asked for (`206`); `false` when the
    /// registry sent the whole blob.
    pub partial: bool,
    pub stream: ByteStream,
}

impl std::fmt::Debug for BlobReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobReader").field("size", &self.size).field("partial", &self.partial).finish()
    }
}

impl BlobReader {
    /// The whole body in memory (at most `max` bytes).
    pub async fn bytes(mut self, max: usize) -> RemoteResult<Bytes> {
        let mut out = BytesMut::new();
        while let Some(chunk) = self.stream.next().await {
            let chunk = chunk.map_err(|e| RemoteError::new(ErrorKind::Unavailable, format!("reading a blob: {e}")))?;
            if out.len() + chunk.len() > max {
                return Err(RemoteError::protocol(format!("the blob is larger than {max} bytes")));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out.freeze())
    }
}

/// Bytes to push as a blob.
pub enum BlobSource {
    /// In memory: pushed in one PUT when small enough.
    Bytes(Bytes),
    /// A stream of `size` bytes: pushed in chunks.
    Stream { size: u64, stream: ByteStream },
}

impl std::fmt::Debug for BlobSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bytes(b) => write!(f, "Bytes({})", b.len()),
            Self::Stream { size, .. } => write!(f, "Stream({size})"),
        }
    }
}

/// How a pushed blob got there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Mounted from another repository of the same registry: no byte sent.
    Mounted,
    /// Sent in one PUT.
    Monolithic,
    /// Sent in this many PATCH chunks.
    Chunked(usize),
}

/// One page of a listing, and where the next one is (a URL path and query
/// on the registry, to pass back as the cursor), if there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub items: Vec<String>,
    pub next: Option<String>,
}

/// A descriptor, as manifests, indexes and the referrers API write them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<serde_json::Map<String, serde_json::Value>>,
}

/// The referrers of a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referrers {
    pub descriptors: Vec<Descriptor>,
    /// Read from the referrers tag schema (`sha256-<hex>`) because the
    /// registry has no referrers API.
    pub from_tag_schema: bool,
}

/// How the registry wants to be authenticated, as learnt from its
/// challenges.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Scheme {
    /// Not asked yet: requests go without credentials until a `401` says.
    Unknown,
    Basic,
    Bearer {
        realm: Url,
        service: Option<String>,
    },
}

#[derive(Debug)]
struct AuthState {
    scheme: Scheme,
    tokens: TokenCache,
    /// ECR's `AWS:<password>` Basic value and when it stops being valid.
    ecr: Option<(String, Instant)>,
}

/// A client of one registry. Cheap to share (`Arc`); tokens are kept per
/// scope and reused by every call that needs the same scopes.
#[derive(Debug)]
pub struct Client {
    base: Url,
    credential: Credential,
    http: reqwest::Client,
    timeout: Duration,
    state: Mutex<AuthState>,
    monolithic_max: usize,
    chunk_size: usize,
}

/// A request, kept so that it can be sent again after a `401`.
struct Req {
    method: Method,
    url: Url,
    headers: Vec<(reqwest::header::HeaderName, String)>,
    body: Option<Bytes>,
    /// Whether this call may take longer than the time-out in all (a blob
    /// stream: only its pauses are timed).
    streaming: bool,
}

impl Req {
    fn new(method: Method, url: Url) -> Self {
        Self { method, url, headers: Vec::new(), body: None, streaming: false }
    }

    fn header(mut self, name: reqwest::header::HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn body(mut self, body: Bytes) -> Self {
        self.body = Some(body);
        self
    }

    fn what(&self) -> String {
        format!("{} {}", self.method, self.url.path())
    }
}

impl Client {
    pub fn new(endpoint: Endpoint) -> RemoteResult<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(endpoint.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .tls_danger_accept_invalid_certs(endpoint.insecure)
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| RemoteError::invalid(format!("building the HTTP client: {e}")))?;
        Ok(Self {
            base: endpoint.url,
            credential: endpoint.credential,
            http,
            timeout: endpoint.timeout,
            state: Mutex::new(AuthState { scheme: Scheme::Unknown, tokens: TokenCache::default(), ecr: None }),
            monolithic_max: DEFAULT_MONOLITHIC_MAX,
            chunk_size: DEFAULT_CHUNK_SIZE,
        })
    }

    /// Sets the largest blob pushed in one PUT and the chunk size of larger
    /// ones.
    pub fn with_push_sizes(mut self, monolithic_max: usize, chunk_size: usize) -> Self {
        self.monolithic_max = monolithic_max;
        self.chunk_size = chunk_size.max(1);
        self
    }

    /// The registry's base URL.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    fn url(&self, path: &str) -> RemoteResult<Url> {
        self.base.join(path.trim_start_matches('/')).map_err(|e| RemoteError::invalid(format!("path {path:?}: {e}")))
    }

    fn v2(&self, repo: &str, rest: &str) -> RemoteResult<Url> {
        check_repo(repo)?;
        self.url(&format!("v2/{repo}/{rest}"))
    }

    // ------------------------------------------------------------ calls

    /// `GET /v2/`: the registry answers and, with a token when it asks for
    /// one, accepts the credentials. Anonymous registries pass too.
    pub async fn ping(&self) -> RemoteResult<()> {
        let resp = self.send(Req::new(Method::GET, self.url("v2/")?), &[]).await?;
        expect(resp, &[StatusCode::OK], "GET /v2/").await.map(drop)
    }

    /// One page of `/v2/_catalog`: the first (of `n` names, when given)
    /// or the one `cursor` (a [`Page::next`]) points to.
    pub async fn catalog_page(&self, n: Option<usize>, cursor: Option<&str>) -> RemoteResult<Page> {
        let url = match cursor {
            Some(c) => self.cursor_url(c)?,
            None => with_n(self.url("v2/_catalog")?, n),
        };
        self.list_page(url, vec![auth::CATALOG_SCOPE.to_owned()], "repositories").await
    }

    /// Every repository of `/v2/_catalog`, following `Link` pages, up to
    /// `max` names (a registry with more is an error, never a silent cut).
    pub async fn catalog(&self, max: usize) -> RemoteResult<Vec<String>> {
        self.collect(max, |cursor| async move { self.catalog_page(None, cursor.as_deref()).await }).await
    }

    /// One page of a repository's tags.
    pub async fn tags_page(&self, repo: &str, n: Option<usize>, cursor: Option<&str>) -> RemoteResult<Page> {
        let url = match cursor {
            Some(c) => self.cursor_url(c)?,
            None => with_n(self.v2(repo, "tags/list")?, n),
        };
        self.list_page(url, vec![auth::pull_scope(repo)], "tags").await
    }

    /// Every tag of `repo`, following `Link` pages, up to `max`.
    pub async fn tags(&self, repo: &str, max: usize) -> RemoteResult<Vec<String>> {
        self.collect(max, |cursor| async move { self.tags_page(repo, None, cursor.as_deref()).await }).await
    }

    /// `HEAD` of a manifest by tag or digest.
    pub async fn head_manifest(&self, repo: &str, reference: &str) -> RemoteResult<ManifestInfo> {
        let url = self.v2(repo, &format!("manifests/{}", check_reference(reference)?))?;
        let req = Req::new(Method::HEAD, url).header(ACCEPT, MANIFEST_TYPES.join(", "));
        let what = req.what();
        let resp = expect(self.send(req, &[auth::pull_scope(repo)]).await?, &[StatusCode::OK], &what).await?;
        let headers = resp.headers();
        let digest = match header_str(headers, CONTENT_DIGEST) {
            Some(d) => d.parse::<Digest>().map_err(|_| RemoteError::protocol(format!("{what}: bad digest {d:?}")))?,
            // Without the header only a reference by digest names it.
            None => reference
                .parse::<Digest>()
                .map_err(|_| RemoteError::protocol(format!("{what}: no Docker-Content-Digest")))?,
        };
        Ok(ManifestInfo {
            media_type: media_type_of(headers),
            digest,
            size: header_str(headers, CONTENT_LENGTH.as_str()).and_then(|v| v.parse().ok()).unwrap_or(0),
        })
    }

    /// A manifest by tag or digest, its digest checked against its bytes
    /// (the one asked for, when fetched by digest).
    pub async fn get_manifest(&self, repo: &str, reference: &str) -> RemoteResult<Manifest> {
        let url = self.v2(repo, &format!("manifests/{}", check_reference(reference)?))?;
        let req = Req::new(Method::GET, url).header(ACCEPT, MANIFEST_TYPES.join(", "));
        let what = req.what();
        let resp = expect(self.send(req, &[auth::pull_scope(repo)]).await?, &[StatusCode::OK], &what).await?;
        let media_type = media_type_of(resp.headers());
        let claimed = header_str(resp.headers(), CONTENT_DIGEST).map(str::to_owned);
        let bytes = read_limited(resp, MAX_DOCUMENT, &what).await?;
        let media_type = if media_type.is_empty() { embedded_media_type(&bytes) } else { media_type };
        let digest = verified_digest(reference, claimed.as_deref(), &bytes, &what)?;
        Ok(Manifest { media_type, digest, bytes })
    }

    /// Pushes a manifest under a tag or its digest; its digest.
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: Bytes,
    ) -> RemoteResult<Digest> {
        let url = self.v2(repo, &format!("manifests/{}", check_reference(reference)?))?;
        let computed = Digest::sha256_of(&bytes);
        let req = Req::new(Method::PUT, url).header(CONTENT_TYPE, media_type).body(bytes);
        let what = req.what();
        let resp = self.send(req, &[auth::push_scope(repo)]).await?;
        let resp = expect(resp, &[StatusCode::CREATED, StatusCode::OK, StatusCode::ACCEPTED], &what).await?;
        match header_str(resp.headers(), CONTENT_DIGEST).and_then(|d| d.parse::<Digest>().ok()) {
            Some(d) if d.algorithm() != computed.algorithm() => Ok(d),
            Some(d) if d != computed => {
                Err(RemoteError::protocol(format!("{what}: the registry stored {d}, the bytes are {computed}")))
            }
            _ => Ok(computed),
        }
    }

    /// Deletes a manifest by digest (every tag on it goes too).
    pub async fn delete_manifest(&self, repo: &str, digest: &Digest) -> RemoteResult<()> {
        let url = self.v2(repo, &format!("manifests/{digest}"))?;
        let req = Req::new(Method::DELETE, url);
        let what = req.what();
        let scopes = [auth::delete_scope(repo), auth::push_scope(repo)];
        let resp = self.send(req, &scopes).await?;
        expect(resp, &[StatusCode::ACCEPTED, StatusCode::OK, StatusCode::NO_CONTENT], &what).await.map(drop)
    }

    /// The size of a blob `repo` holds, or `None` when it holds none.
    pub async fn blob_size(&self, repo: &str, digest: &Digest) -> RemoteResult<Option<u64>> {
        let url = self.v2(repo, &format!("blobs/{digest}"))?;
        let req = Req::new(Method::HEAD, url);
        let what = req.what();
        let resp = self.send_following(req, &[auth::pull_scope(repo)]).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let resp = expect(resp, &[StatusCode::OK], &what).await?;
        Ok(Some(header_str(resp.headers(), CONTENT_LENGTH.as_str()).and_then(|v| v.parse().ok()).unwrap_or(0)))
    }

    /// A blob's bytes (from `range`'s start to its inclusive end, or to the
    /// end of the blob), following redirects to presigned URLs; the
    /// registry's credentials go only to the registry itself. The bytes
    /// are not checked against the digest here: the pushing side checks.
    pub async fn get_blob(
        &self,
        repo: &str,
        digest: &Digest,
        range: Option<(u64, Option<u64>)>,
    ) -> RemoteResult<BlobReader> {
        let url = self.v2(repo, &format!("blobs/{digest}"))?;
        let mut req = Req::new(Method::GET, url);
        req.streaming = true;
        if let Some((start, end)) = range {
            let value = match end {
                Some(end) => format!("bytes={start}-{end}"),
                None => format!("bytes={start}-"),
            };
            req = req.header(RANGE, value);
        }
        let what = req.what();
        let resp = self.send_following(req, &[auth::pull_scope(repo)]).await?;
        let resp = expect(resp, &[StatusCode::OK, StatusCode::PARTIAL_CONTENT], &what).await?;
        let partial = resp.status() == StatusCode::PARTIAL_CONTENT;
        let size = resp.content_length();
        let stream = resp.bytes_stream().map_err(io::Error::other).boxed();
        Ok(BlobReader { size, partial, stream })
    }

    /// Mounts `digest` from `from` (a repository of the same registry)
    /// into `repo`; `false` when the registry did not (it then opened an
    /// upload session, which is left to expire).
    pub async fn mount_blob(&self, repo: &str, digest: &Digest, from: &str) -> RemoteResult<bool> {
        Ok(matches!(self.start_upload(repo, Some((digest, from))).await?, Upload::Mounted))
    }

    /// Pushes a blob into `repo`: a cross-repository mount first when
    /// `mount_from` names a repository of the same registry that holds it,
    /// else the bytes, in one PUT when small, in chunks otherwise. The
    /// registry checks the bytes against `digest`.
    pub async fn push_blob(
        &self,
        repo: &str,
        digest: &Digest,
        source: BlobSource,
        mount_from: Option<&str>,
    ) -> RemoteResult<Pushed> {
        let (location, min_chunk) = match self.start_upload(repo, mount_from.map(|f| (digest, f))).await? {
            Upload::Mounted => return Ok(Pushed::Mounted),
            Upload::Session { location, min_chunk } => (location, min_chunk),
        };
        let scopes = [auth::push_scope(repo)];
        match source {
            BlobSource::Bytes(bytes) if bytes.len() <= self.monolithic_max => {
                let url = with_digest(location, digest);
                let req = Req::new(Method::PUT, url)
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_LENGTH, bytes.len().to_string())
                    .body(bytes);
                let what = req.what();
                expect(self.send(req, &scopes).await?, &[StatusCode::CREATED], &what).await?;
                Ok(Pushed::Monolithic)
            }
            BlobSource::Bytes(bytes) => {
                let size = bytes.len() as u64;
                let stream = futures::stream::once(async move { Ok::<_, io::Error>(bytes) }).boxed();
                self.push_chunks(repo, digest, location, min_chunk, size, stream).await
            }
            BlobSource::Stream { size, stream } => {
                self.push_chunks(repo, digest, location, min_chunk, size, stream).await
            }
        }
    }

    /// The referrers of `digest` in `repo` (of `artifact_type` only, when
    /// given): the referrers API, or the referrers tag schema when the
    /// registry answers the API with 404. No referrers is an empty list.
    /// Opens an upload session for a blob sent chunk by chunk
    /// ([`Self::patch_chunk`], [`Self::finish_upload`]): its location, which
    /// is what resumes it, and the registry's smallest chunk.
    pub async fn begin_upload(&self, repo: &str) -> RemoteResult<(Url, usize)> {
        match self.start_upload(repo, None).await? {
            Upload::Session { location, min_chunk } => Ok((location, min_chunk)),
            Upload::Mounted => Err(RemoteError::protocol("the registry answered an upload with a mount")),
        }
    }

    /// How many bytes an upload session holds, from its `Range` (`0-<last>`);
    /// `None` when the session is gone. (Registries write `0-0` for an
    /// empty session too: a caller resuming after one byte can't tell.)
    pub async fn upload_offset(&self, repo: &str, location: &Url) -> RemoteResult<Option<u64>> {
        let req = Req::new(Method::GET, location.clone());
        let what = req.what();
        let resp = self.send(req, &[auth::push_scope(repo)]).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let resp = expect(resp, &[StatusCode::NO_CONTENT, StatusCode::OK], &what).await?;
        let Some(range) = header_str(resp.headers(), RANGE.as_str()) else { return Ok(Some(0)) };
        let last = range
            .trim()
            .trim_start_matches("bytes=")
            .split_once('-')
            .and_then(|(_, end)| end.parse::<u64>().ok())
            .ok_or_else(|| RemoteError::protocol(format!("{what}: bad Range {range:?}")))?;
        Ok(Some(if last == 0 { 0 } else { last + 1 }))
    }

    /// Sends the bytes at `offset` of an upload session; returns where the
    /// session goes on.
    pub async fn patch_chunk(&self, repo: &str, location: &Url, offset: u64, chunk: Bytes) -> RemoteResult<Url> {
        if chunk.is_empty() {
            return Ok(location.clone());
        }
        let end = offset + chunk.len() as u64 - 1;
        let req = Req::new(Method::PATCH, location.clone())
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_RANGE, format!("{offset}-{end}"))
            .header(CONTENT_LENGTH, chunk.len().to_string())
            .body(chunk);
        let what = req.what();
        let resp = expect(self.send(req, &[auth::push_scope(repo)]).await?, &[StatusCode::ACCEPTED], &what).await?;
        self.location(&resp, &what)
    }

    /// Ends an upload session as the blob `digest`.
    pub async fn finish_upload(&self, repo: &str, location: &Url, digest: &Digest) -> RemoteResult<()> {
        let req =
            Req::new(Method::PUT, with_digest(location.clone(), digest)).header(CONTENT_LENGTH, "0").body(Bytes::new());
        let what = req.what();
        expect(self.send(req, &[auth::push_scope(repo)]).await?, &[StatusCode::CREATED], &what).await.map(drop)
    }

    pub async fn referrers(&self, repo: &str, digest: &Digest, artifact_type: Option<&str>) -> RemoteResult<Referrers> {
        let mut url = self.v2(repo, &format!("referrers/{digest}"))?;
        if let Some(t) = artifact_type {
            url.query_pairs_mut().append_pair("artifactType", t);
        }
        let req = Req::new(Method::GET, url).header(ACCEPT, media::OCI_INDEX);
        let what = req.what();
        let resp = self.send(req, &[auth::pull_scope(repo)]).await?;
        let (bytes, from_tag_schema) = if resp.status() == StatusCode::NOT_FOUND {
            let tag = format!("{}-{}", digest.algorithm().as_str(), digest.hex());
            match self.get_manifest(repo, &tag).await {
                Ok(m) => (m.bytes, true),
                Err(e) if e.is_not_found() => return Ok(Referrers { descriptors: Vec::new(), from_tag_schema: true }),
                Err(e) => return Err(e),
            }
        } else {
            let resp = expect(resp, &[StatusCode::OK], &what).await?;
            (read_limited(resp, MAX_DOCUMENT, &what).await?, false)
        };
        #[derive(Deserialize)]
        struct Index {
            #[serde(default)]
            manifests: Vec<Descriptor>,
        }
        let index: Index = serde_json::from_slice(&bytes)
            .map_err(|e| RemoteError::protocol(format!("{what}: the referrers index is unreadable: {e}")))?;
        let descriptors = index
            .manifests
            .into_iter()
            .filter(|d| artifact_type.is_none_or(|t| d.artifact_type.as_deref() == Some(t)))
            .collect();
        Ok(Referrers { descriptors, from_tag_schema })
    }

    /// `GET` of a path of Harbor's management API (`api/v2.0/…`, under the
    /// base URL) with the Basic credentials, as Harbor's own adapter calls
    /// a remote Harbor; the JSON body.
    pub async fn harbor_api_get(&self, path_and_query: &str) -> RemoteResult<Bytes> {
        let url = self.url(path_and_query)?;
        let req = Req::new(Method::GET, url).header(ACCEPT, "application/json");
        self.harbor_api(req, &[StatusCode::OK]).await
    }

    /// `POST` of a JSON body to a path of Harbor's management API; `true`
    /// when it was created, `false` when Harbor says it exists already
    /// (`409`).
    pub async fn harbor_api_create(&self, path: &str, body: &serde_json::Value) -> RemoteResult<bool> {
        let url = self.url(path)?;
        let req = Req::new(Method::POST, url)
            .header(ACCEPT, "application/json")
            .header(CONTENT_TYPE, "application/json")
            .body(Bytes::from(body.to_string()));
        match self.harbor_api(req, &[StatusCode::CREATED, StatusCode::OK]).await {
            Ok(_) => Ok(true),
            Err(e) if e.status == Some(409) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn harbor_api(&self, req: Req, ok: &[StatusCode]) -> RemoteResult<Bytes> {
        let what = req.what();
        let basic = match &self.credential {
            Credential::Header(h) => Some(h.clone()),
            _ => self.basic().await?,
        };
        let resp = expect(self.send_once(&req, basic.as_deref()).await?, ok, &what).await?;
        read_limited(resp, MAX_DOCUMENT, &what).await
    }

    // ------------------------------------------------------------ pushing

    async fn start_upload(&self, repo: &str, mount: Option<(&Digest, &str)>) -> RemoteResult<Upload> {
        let mut url = self.v2(repo, "blobs/uploads/")?;
        let mut scopes = vec![auth::push_scope(repo)];
        if let Some((digest, from)) = mount {
            check_repo(from)?;
            url.query_pairs_mut().append_pair("mount", &digest.to_string()).append_pair("from", from);
            scopes.push(auth::pull_scope(from));
        }
        let req = Req::new(Method::POST, url).header(CONTENT_LENGTH, "0").body(Bytes::new());
        let what = req.what();
        let resp = self.send(req, &scopes).await?;
        let resp = expect(resp, &[StatusCode::CREATED, StatusCode::ACCEPTED], &what).await?;
        if resp.status() == StatusCode::CREATED {
            return Ok(Upload::Mounted);
        }
        let location = self.location(&resp, &what)?;
        let min_chunk = header_str(resp.headers(), "oci-chunk-min-length").and_then(|v| v.parse::<usize>().ok());
        Ok(Upload::Session { location, min_chunk: min_chunk.unwrap_or(0) })
    }

    async fn push_chunks(
        &self,
        repo: &str,
        digest: &Digest,
        mut location: Url,
        min_chunk: usize,
        size: u64,
        mut stream: ByteStream,
    ) -> RemoteResult<Pushed> {
        let chunk_size = self.chunk_size.max(min_chunk);
        let mut offset: u64 = 0;
        let mut chunks = 0usize;
        let mut buffer = BytesMut::new();
        let mut ended = false;
        loop {
            while !ended && buffer.len() < chunk_size {
                match stream.next().await {
                    Some(Ok(b)) => buffer.extend_from_slice(&b),
                    Some(Err(e)) => {
                        return Err(RemoteError::new(ErrorKind::Unavailable, format!("reading the blob to push: {e}")));
                    }
                    None => ended = true,
                }
            }
            if buffer.is_empty() {
                break;
            }
            let take = buffer.len().min(chunk_size);
            let chunk = buffer.split_to(take).freeze();
            let len = chunk.len() as u64;
            location = self.patch_chunk(repo, &location, offset, chunk).await?;
            offset += len;
            chunks += 1;
        }
        if offset != size {
            return Err(RemoteError::invalid(format!("the blob to push has {offset} bytes, not the {size} announced")));
        }
        self.finish_upload(repo, &location, digest).await?;
        Ok(Pushed::Chunked(chunks))
    }

    /// The `Location` of an answer, resolved against the registry.
    fn location(&self, resp: &reqwest::Response, what: &str) -> RemoteResult<Url> {
        let loc = header_str(resp.headers(), LOCATION.as_str())
            .ok_or_else(|| RemoteError::protocol(format!("{what}: the answer has no Location")))?;
        resp.url().join(loc).map_err(|e| RemoteError::protocol(format!("{what}: bad Location {loc:?}: {e}")))
    }

    // ------------------------------------------------------------ listings

    fn cursor_url(&self, cursor: &str) -> RemoteResult<Url> {
        let url = self.base.join(cursor).map_err(|e| RemoteError::invalid(format!("cursor {cursor:?}: {e}")))?;
        if !same_origin(&url, &self.base) {
            return Err(RemoteError::protocol(format!("the next page {cursor:?} is on another host")));
        }
        Ok(url)
    }

    async fn list_page(&self, url: Url, scopes: Vec<String>, field: &str) -> RemoteResult<Page> {
        let req = Req::new(Method::GET, url);
        let what = req.what();
        let resp = expect(self.send(req, &scopes).await?, &[StatusCode::OK], &what).await?;
        let next = resp.headers().get(reqwest::header::LINK).and_then(|v| v.to_str().ok()).and_then(next_link);
        let next = match next {
            Some(n) => {
                let url =
                    resp.url().join(&n).map_err(|e| RemoteError::protocol(format!("{what}: bad Link {n:?}: {e}")))?;
                let mut cursor = url.path().to_owned();
                if let Some(q) = url.query() {
                    cursor.push('?');
                    cursor.push_str(q);
                }
                Some(cursor)
            }
            None => None,
        };
        let body = read_limited(resp, MAX_DOCUMENT, &what).await?;
        let value: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| RemoteError::protocol(format!("{what}: unreadable listing: {e}")))?;
        let items = match value.get(field) {
            Some(serde_json::Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
            // Distribution answers `"tags": null` for a repository without tags.
            Some(serde_json::Value::Null) | None => Vec::new(),
            Some(_) => return Err(RemoteError::protocol(format!("{what}: {field} is not a list"))),
        };
        Ok(Page { items, next })
    }

    async fn collect<F, Fut>(&self, max: usize, mut page: F) -> RemoteResult<Vec<String>>
    where
        F: FnMut(Option<String>) -> Fut,
        Fut: std::future::Future<Output = RemoteResult<Page>>,
    {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let p = page(cursor.take()).await?;
            out.extend(p.items);
            if out.len() > max {
                return Err(RemoteError::protocol(format!("the listing has more than {max} entries")));
            }
            match p.next {
                Some(n) => cursor = Some(n),
                None => return Ok(out),
            }
        }
    }

    // ------------------------------------------------------------ auth

    /// Sends `req` with the authorization `scopes` need; on a `401`, learns
    /// the challenge, gets a fresh token (or switches to Basic) and sends
    /// once more.
    async fn send(&self, req: Req, scopes: &[String]) -> RemoteResult<reqwest::Response> {
        let mut retried = false;
        loop {
            let authorization = self.authorization(scopes).await?;
            let resp = self.send_once(&req, authorization.as_deref()).await?;
            if resp.status() != StatusCode::UNAUTHORIZED || retried {
                return Ok(resp);
            }
            let challenges: Vec<Challenge> = resp
                .headers()
                .get_all(reqwest::header::WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(parse_challenges)
                .collect();
            if !self.learn(&challenges, scopes, authorization.is_some())? {
                return Ok(resp);
            }
            retried = true;
        }
    }

    /// [`Self::send`], then redirects followed (blob GET and HEAD): to the
    /// registry's own host with its credentials, elsewhere (an object
    /// store's presigned URL) without.
    async fn send_following(&self, req: Req, scopes: &[String]) -> RemoteResult<reqwest::Response> {
        let streaming = req.streaming;
        let mut headers = req.headers.clone();
        let method = req.method.clone();
        let mut resp = self.send(req, scopes).await?;
        let mut hops = 0;
        while resp.status().is_redirection() && resp.status() != StatusCode::NOT_MODIFIED {
            hops += 1;
            let what = format!("{method} {}", resp.url().path());
            if hops > MAX_REDIRECTS {
                return Err(RemoteError::protocol(format!("{what}: more than {MAX_REDIRECTS} redirects")));
            }
            let next = self.location(&resp, &what)?;
            headers.retain(|(n, _)| n != AUTHORIZATION);
            let mut req = Req::new(method.clone(), next.clone());
            req.headers = headers.clone();
            req.streaming = streaming;
            resp = if same_origin(&next, &self.base) {
                self.send(req, scopes).await?
            } else {
                self.send_once(&req, None).await?
            };
        }
        Ok(resp)
    }

    async fn send_once(&self, req: &Req, authorization: Option<&str>) -> RemoteResult<reqwest::Response> {
        let mut builder = self.http.request(req.method.clone(), req.url.clone());
        if !req.streaming {
            builder = builder.timeout(self.timeout);
        }
        for (name, value) in &req.headers {
            builder = builder.header(name, value);
        }
        if let Some(a) = authorization {
            builder = builder.header(AUTHORIZATION, a);
        }
        if let Some(body) = &req.body {
            builder = builder.body(body.clone());
        }
        builder.send().await.map_err(|e| RemoteError::from_transport(&req.what(), &e))
    }

    /// The `Authorization` to send for `scopes`, as far as the registry's
    /// scheme is known.
    async fn authorization(&self, scopes: &[String]) -> RemoteResult<Option<String>> {
        if let Credential::Header(h) = &self.credential {
            return Ok(Some(h.clone()));
        }
        let scheme = self.lock().scheme.clone();
        match scheme {
            Scheme::Unknown => Ok(None),
            Scheme::Basic => self.basic().await,
            Scheme::Bearer { realm, service } => {
                if let Some(t) = self.lock().tokens.get(scopes, Instant::now()) {
                    return Ok(Some(format!("Bearer {t}")));
                }
                let token = self.fetch_token(&realm, service.as_deref(), scopes).await?;
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    /// Takes in a `401`'s challenges; whether the request is worth sending
    /// again.
    fn learn(&self, challenges: &[Challenge], scopes: &[String], sent_credentials: bool) -> RemoteResult<bool> {
        let bearer = challenges.iter().find(|c| c.is_bearer());
        let mut state = self.lock();
        if let Some(c) = bearer {
            let realm = c
                .param("realm")
                .ok_or_else(|| RemoteError::protocol("a Bearer challenge without a realm"))
                .and_then(|r| Url::parse(r).map_err(|e| RemoteError::protocol(format!("Bearer realm {r:?}: {e}"))))?;
            if !matches!(realm.scheme(), "http" | "https") {
                return Err(RemoteError::protocol(format!("Bearer realm {realm} is not http(s)")));
            }
            state.scheme = Scheme::Bearer { realm, service: c.param("service").map(str::to_owned) };
            state.tokens.forget(scopes);
            return Ok(true);
        }
        if challenges.iter().any(Challenge::is_basic) {
            let first_time = state.scheme != Scheme::Basic;
            state.scheme = Scheme::Basic;
            // Basic credentials refused once are refused again.
            let has_credentials = !matches!(self.credential, Credential::Anonymous);
            return Ok(has_credentials && (first_time || !sent_credentials));
        }
        Ok(false)
    }

    /// The Basic value of the credentials (ECR's comes from AWS).
    async fn basic(&self) -> RemoteResult<Option<String>> {
        match &self.credential {
            Credential::Anonymous | Credential::Header(_) => Ok(None),
            Credential::Basic { username, password } => {
                Ok(Some(format!("Basic {}", B64.encode(format!("{username}:{password}")))))
            }
            Credential::AwsEcr { access_key, secret_key, region } => {
                if let Some((value, until)) = &self.lock().ecr
                    && Instant::now() < *until
                {
                    return Ok(Some(value.clone()));
                }
                let (user_password, ttl) = super::ecr::authorization_token(access_key, secret_key, region).await?;
                let value = format!("Basic {}", B64.encode(user_password));
                self.lock().ecr = Some((value.clone(), Instant::now() + ttl));
                Ok(Some(value))
            }
        }
    }

    /// Asks the token service `realm` for a token of `scopes` (with the
    /// credentials, when there are) and keeps it.
    async fn fetch_token(&self, realm: &Url, service: Option<&str>, scopes: &[String]) -> RemoteResult<String> {
        let mut url = realm.clone();
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            for s in scopes {
                q.append_pair("scope", s);
            }
            if let Credential::Basic { username, .. } = &self.credential {
                q.append_pair("account", username);
            }
        }
        let basic = self.basic().await?;
        let req = Req::new(Method::GET, url);
        let what = format!("token from {}", realm.as_str());
        let resp = self.send_once(&req, basic.as_deref()).await?;
        if resp.status() == StatusCode::UNAUTHORIZED || resp.status() == StatusCode::FORBIDDEN {
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let body = read_limited(resp, MAX_DOCUMENT, &what).await.unwrap_or_default();
            let mut e = RemoteError::from_answer(&what, status, &headers, &body);
            e.kind = ErrorKind::Unauthorized;
            return Err(e);
        }
        let resp = expect(resp, &[StatusCode::OK], &what).await?;
        let body = read_limited(resp, MAX_DOCUMENT, &what).await?;
        let answer: TokenAnswer = serde_json::from_slice(&body)
            .map_err(|e| RemoteError::protocol(format!("{what}: unreadable answer: {e}")))?;
        let (token, ttl) =
            answer.into_token().ok_or_else(|| RemoteError::protocol(format!("{what}: the answer has no token")))?;
        self.lock().tokens.put(scopes, token.clone(), ttl, Instant::now());
        Ok(token)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, AuthState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

enum Upload {
    Mounted,
    Session { location: Url, min_chunk: usize },
}

/// The answer when its status is one of `ok`, else its error.
async fn expect(resp: reqwest::Response, ok: &[StatusCode], what: &str) -> RemoteResult<reqwest::Response> {
    if ok.contains(&resp.status()) {
        return Ok(resp);
    }
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = read_limited(resp, MAX_DOCUMENT, what).await.unwrap_or_default();
    Err(RemoteError::from_answer(what, status, &headers, &body))
}

async fn read_limited(resp: reqwest::Response, max: usize, what: &str) -> RemoteResult<Bytes> {
    if resp.content_length().is_some_and(|l| l > max as u64) {
        return Err(RemoteError::protocol(format!("{what}: the answer is larger than {max} bytes")));
    }
    let mut out = BytesMut::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| RemoteError::from_transport(what, &e))?;
        if out.len() + chunk.len() > max {
            return Err(RemoteError::protocol(format!("{what}: the answer is larger than {max} bytes")));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.freeze())
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

fn media_type_of(headers: &HeaderMap) -> String {
    header_str(headers, CONTENT_TYPE.as_str()).map(|v| media::essence(v).to_owned()).unwrap_or_default()
}

/// The `mediaType` a manifest declares, for registries that answer
/// without a `Content-Type`.
fn embedded_media_type(bytes: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| v.get("mediaType").and_then(|m| m.as_str()).map(str::to_owned))
        .unwrap_or_default()
}

/// The digest of fetched manifest bytes: the reference when it is a
/// digest, else the registry's `Docker-Content-Digest`, else sha256 — each
/// checked against the bytes.
fn verified_digest(reference: &str, claimed: Option<&str>, bytes: &[u8], what: &str) -> RemoteResult<Digest> {
    let expected = match reference.parse::<Digest>() {
        Ok(d) => Some(d),
        Err(_) => match claimed {
            Some(c) => {
                Some(c.parse::<Digest>().map_err(|_| RemoteError::protocol(format!("{what}: bad digest {c:?}")))?)
            }
            None => None,
        },
    };
    match expected {
        Some(d) => {
            let actual = d.of_same_kind(bytes);
            if actual != d {
                return Err(RemoteError::protocol(format!("{what}: the bytes are {actual}, not {d}")));
            }
            Ok(d)
        }
        None => Ok(Digest::sha256_of(bytes)),
    }
}

fn with_n(mut url: Url, n: Option<usize>) -> Url {
    if let Some(n) = n {
        url.query_pairs_mut().append_pair("n", &n.to_string());
    }
    url
}

fn with_digest(mut url: Url, digest: &Digest) -> Url {
    url.query_pairs_mut().append_pair("digest", &digest.to_string());
    url
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme() && a.host_str() == b.host_str() && a.port_or_known_default() == b.port_or_known_default()
}

/// A repository name as the Distribution spec allows it (lower-case
/// components of `[a-z0-9]` joined by `.`, `_`, `__` or `-`, separated by
/// `/`), checked loosely: enough that it cannot leave its path.
fn check_repo(repo: &str) -> RemoteResult<()> {
    let ok = !repo.is_empty()
        && repo.len() <= 255
        && repo.split('/').all(|c| {
            !c.is_empty()
                && c != "."
                && c != ".."
                && c.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || matches!(ch, '.' | '_' | '-'))
        });
    if ok { Ok(()) } else { Err(RemoteError::invalid(format!("{repo:?} is not a repository name"))) }
}

/// A tag or digest, checked so that it stays one path segment.
fn check_reference(reference: &str) -> RemoteResult<&str> {
    let ok = !reference.is_empty()
        && reference.len() <= 200
        && reference.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '+' | '='));
    if ok { Ok(reference) } else { Err(RemoteError::invalid(format!("{reference:?} is not a tag or digest"))) }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn base_urls_are_checked_and_end_in_a_slash() {
        assert_eq!(parse_base_url("https://r.example").unwrap().as_str(), "https://r.example/");
        assert_eq!(parse_base_url("http://127.0.0.1:5000/").unwrap().as_str(), "http://127.0.0.1:5000/");
        assert_eq!(parse_base_url("https://r.example/sub?x=1").unwrap().as_str(), "https://r.example/sub/");
        assert!(parse_base_url("ftp://r.example").is_err());
        assert!(parse_base_url("not a url").is_err());
    }

    #[test]
    fn names_and_references_stay_in_their_path() {
        assert!(check_repo("library/busybox").is_ok());
        assert!(check_repo("a/b.c/d_e-f").is_ok());
        assert!(check_repo("../x").is_err());
        assert!(check_repo("A/b").is_err());
        assert!(check_repo("a//b").is_err());
        assert!(check_reference("v1.0").is_ok());
        assert!(check_reference("sha256:abc").is_ok());
        assert!(check_reference("a/b").is_err());
        assert!(check_reference("x?y").is_err());
    }

    #[test]
    fn fetched_manifests_are_checked_against_their_digest() {
        let bytes = br#"{"schemaVersion":2}"#;
        let d = Digest::sha256_of(bytes);
        assert_eq!(verified_digest(&d.to_string(), None, bytes, "x").unwrap(), d);
        assert_eq!(verified_digest("latest", Some(&d.to_string()), bytes, "x").unwrap(), d);
        assert_eq!(verified_digest("latest", None, bytes, "x").unwrap(), d);
        let other = Digest::sha256_of(b"other");
        assert_eq!(verified_digest(&other.to_string(), None, bytes, "x").unwrap_err().kind, ErrorKind::Protocol);
        assert_eq!(
            verified_digest("latest", Some(&other.to_string()), bytes, "x").unwrap_err().kind,
            ErrorKind::Protocol
        );
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        let a = Url::parse("http://127.0.0.1:5000/v2/").unwrap();
        assert!(same_origin(&a, &Url::parse("http://127.0.0.1:5000/other").unwrap()));
        assert!(!same_origin(&a, &Url::parse("http://127.0.0.1:4566/bucket").unwrap()));
        assert!(!same_origin(&a, &Url::parse("https://127.0.0.1:5000/").unwrap()));
        let b = Url::parse("https://r.example/").unwrap();
        assert!(same_origin(&b, &Url::parse("https://r.example:443/x").unwrap()));
    }

    #[test]
    fn credentials_never_print() {
        let c = Credential::Basic { username: "u".into(), password: "hunter2".into() };
        assert!(!format!("{c:?}").contains("hunter2"));
        let c = Credential::AwsEcr { access_key: "AK".into(), secret_key: "SK".into(), region: "r".into() };
        assert!(!format!("{c:?}").contains("SK"));
    }
}

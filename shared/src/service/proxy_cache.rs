//! Proxy-cache projects (F14, Harbor's proxy cache): a project created with
//! a `registry_id` serves pulls of `<project>/<path>` from what it cached of
//! the upstream registry's `<path>` (Docker Hub's one-level names under
//! `library/`), and fetches what it lacks through berth's own upload and
//! manifest paths — so digests are checked, the quota counts what is
//! cached, and the cached artifacts are ordinary artifacts of the project
//! (listed, pulled with pull times and events, expired by the project's
//! retention policy, 7 days since the last pull by default).
//!
//! - A pull by tag asks the upstream what the tag is at most once per
//!   `proxy.tag_ttl_secs` (the check is kept at `PT#<tag>`): the local copy
//!   answers when the upstream names the digest it holds; else the manifest
//!   is fetched and stored with the tag. A pull by digest is local when
//!   cached, else fetched.
//! - An image's blobs are fetched with its manifest (so what one pull
//!   brought in pulls again with the upstream gone); when that takes longer
//!   than `proxy.manifest_wait_secs`, the manifest is served as the
//!   upstream sent it while the caching goes on (the client's blob requests
//!   join the fetches under way). An index is stored
//!   before its children, which come when pulled: an index waiting for a
//!   child says so at `PC#<child>#<index>`, and the child links to it when
//!   it arrives. The artifact API shows a partial index's references as
//!   the children it holds.
//! - A blob berth lacks is fetched once however many pull it at once: one
//!   fetch per process (a lock per digest) and per registry (a lease in the
//!   table, `PXL#<digest>`, that lapses when its holder dies); the others
//!   wait for it and link what it stored. `proxy_speed_kb` limits the rate
//!   of what is read from the upstream.
//! - When the upstream fails — down, slow past `proxy.timeout_secs`, 5xx or
//!   429 — what is cached answers and the failure is logged (Harbor
//!   #19257). With nothing cached the failure is the client's: 404 when the
//!   upstream said not found, else the upstream's 429 or a 503.
//! - A repository that the project's filter (`proxy_cache_filter_pattern`,
//!   `doublestar` or `regex` by `proxy_cache_filter_kind`) does not match
//!   is refused before the upstream is asked, cached or not.
//!
//! Pushes into a proxy-cache project are refused at the `/v2` layer.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt as _;

use super::blobs::BlobInfo;
use super::manifests::ManifestRecord;
use super::retention::{RetentionPolicy, Scope, Trigger};
use super::selectors::{Rule, Selector};
use super::{Registry, ServiceError, ServiceResult};
use crate::blob::ByteStream;
use crate::meta::{Condition, ErrorKind, Item, Query, keys, now_unix};
use crate::oci::{Digest, Manifest, Reference, RepoName, Tag};
use crate::remote::adapter::DOCKER_HUB;
use crate::remote::{Client, RemoteError};

/// Harbor's `defaultDaysToRetentionForProxyCacheProject`.
pub const DEFAULT_RETENTION_DAYS: i64 = 7;
/// How long a process trusts a project's proxy settings it read.
const SETUP_TTL: Duration = Duration::from_secs(5);
/// How long a blob fetch's lease holds; a fetcher that dies leaves it to
/// lapse, and a waiter then fetches itself.
const LEASE_SECS: i64 = 600;
/// How often a pull waiting for another's fetch looks whether it is done.
const WAIT_POLL: Duration = Duration::from_millis(200);
/// Blobs of one image fetched at once.
const PARALLEL_BLOBS: usize = 4;
/// Cached indexes a newly cached child links to at most (more wait for
/// the child's next pull).
const PENDING_PAGE: usize = 100;

/// Which repositories a proxy-cache project serves.
#[derive(Debug, Clone)]
pub enum RepoFilter {
    /// Harbor's doublestar pattern, matching the whole path.
    Doublestar(String),
    /// A regular expression, found anywhere in the path (as Go's
    /// `regexp.MatchString`; anchor it with `^…$`).
    Regex(regex_lite::Regex),
}

impl RepoFilter {
    pub fn matches(&self, path: &str) -> bool {
        match self {
            Self::Doublestar(p) => super::selectors::matches(p, path),
            Self::Regex(r) => r.is_match(path),
        }
    }
}

/// A proxy-cache project's settings, from its record.
#[derive(Debug, Clone)]
pub struct ProxySetup {
    pub project: String,
    pub registry_id: i64,
    /// Bytes a second read from the upstream (`proxy_speed_kb`), if limited.
    pub bytes_per_sec: Option<u64>,
    pub filter: Option<RepoFilter>,
    /// Serve the cached copy when the upstream says a tag is gone.
    pub local_on_not_found: bool,
}

impl ProxySetup {
    /// Refuses a repository the filter does not let through.
    fn admit(&self, repo: &RepoName) -> ServiceResult<()> {
        let path = upstream_path(repo);
        match &self.filter {
            Some(f) if !f.matches(path) => Err(ServiceError::NotProxied(format!(
                "the repository {path} does not match the repository filter of proxy cache project {}",
                self.project
            ))),
            _ => Ok(()),
        }
    }
}

/// The filter a project's metadata sets, checked: `Invalid` for an
/// unknown kind or a pattern that does not compile.
pub fn parse_filter(metadata: &BTreeMap<String, String>) -> ServiceResult<Option<RepoFilter>> {
    let pattern = metadata.get("proxy_cache_filter_pattern").map_or("", |p| p.trim());
    let kind = metadata.get("proxy_cache_filter_kind").map_or("", |k| k.trim());
    if !matches!(kind, "" | "doublestar" | "regex") {
        return Err(ServiceError::Invalid(format!(
            "proxy_cache_filter_kind must be \"doublestar\" or \"regex\", not {kind:?}"
        )));
    }
    if pattern.is_empty() {
        return Ok(None);
    }
    if kind == "regex" {
        return regex_lite::Regex::new(pattern).map(|r| Some(RepoFilter::Regex(r))).map_err(|e| {
            ServiceError::Invalid(format!(
                "proxy_cache_filter_pattern {pattern:?} is not a valid regular expression: {e}"
            ))
        });
    }
    let selector = Selector {
        kind: "doublestar".to_owned(),
        decoration: "repoMatches".to_owned(),
        pattern: pattern.to_owned(),
        extras: String::new(),
    };
    selector.validate(false).map_err(|e| {
        ServiceError::Invalid(format!("proxy_cache_filter_pattern {pattern:?} is not a valid doublestar pattern: {e}"))
    })?;
    Ok(Some(RepoFilter::Doublestar(pattern.to_owned())))
}

/// Checks the filter settings in a project's metadata.
pub fn check_filter(metadata: &BTreeMap<String, String>) -> ServiceResult<()> {
    parse_filter(metadata).map(drop)
}

/// The repository path after the project: what the upstream is asked for
/// (before the registry type's own naming).
fn upstream_path(repo: &RepoName) -> &str {
    repo.as_str().split_once('/').map_or(repo.as_str(), |(_, rest)| rest)
}

/// The name `path` has on an upstream of `registry_type`: Docker Hub's
/// official images live under `library/`.
pub fn upstream_name(registry_type: &str, path: &str) -> String {
    if registry_type == DOCKER_HUB && !path.contains('/') { format!("library/{path}") } else { path.to_owned() }
}

/// The retention policy a proxy-cache project gets: keep what was pulled
/// in the last [`DEFAULT_RETENTION_DAYS`] days, checked daily.
pub fn default_retention(project_id: i64) -> RetentionPolicy {
    let selector = |decoration: &str| Selector {
        kind: "doublestar".to_owned(),
        decoration: decoration.to_owned(),
        pattern: "**".to_owned(),
        extras: String::new(),
    };
    let mut params = serde_json::Map::new();
    params.insert("nDaysSinceLastPull".to_owned(), DEFAULT_RETENTION_DAYS.into());
    let rule = Rule {
        action: "retain".to_owned(),
        template: "nDaysSinceLastPull".to_owned(),
        params,
        tag_selectors: vec![selector("matches")],
        scope_selectors: BTreeMap::from([("repository".to_owned(), vec![selector("repoMatches")])]),
        ..Rule::default()
    };
    let mut settings = serde_json::Map::new();
    settings.insert("cron".to_owned(), "0 0 0 * * *".into());
    RetentionPolicy {
        id: 0,
        algorithm: "or".to_owned(),
        rules: vec![rule],
        trigger: Trigger { kind: "Schedule".to_owned(), settings, references: serde_json::Map::new() },
        scope: Scope { level: "project".to_owned(), reference: project_id },
    }
}

/// A project's setup as read, and when.
type ReadSetup = (Instant, Option<Arc<ProxySetup>>);

/// What this process keeps for proxy caching: its settings, projects'
/// setups read lately, a client per endpoint (with its tokens), and a lock
/// per blob being fetched.
#[derive(Debug)]
pub struct ProxyRuntime {
    tag_ttl: Duration,
    timeout: Duration,
    manifest_wait: Duration,
    setups: Mutex<HashMap<String, ReadSetup>>,
    /// Per endpoint id: the endpoint's `update_time` the client was made at.
    clients: Mutex<HashMap<i64, (i64, Arc<Client>)>>,
    fetches: Mutex<HashMap<Digest, Arc<tokio::sync::Mutex<()>>>>,
}

impl Default for ProxyRuntime {
    fn default() -> Self {
        Self::new(&crate::config::ProxyConfig::default())
    }
}

impl ProxyRuntime {
    pub fn new(config: &crate::config::ProxyConfig) -> Self {
        Self {
            tag_ttl: Duration::from_secs(config.tag_ttl_secs),
            timeout: Duration::from_secs(config.timeout_secs),
            manifest_wait: Duration::from_secs(config.manifest_wait_secs),
            setups: Mutex::default(),
            clients: Mutex::default(),
            fetches: Mutex::default(),
        }
    }

    /// Forgets what this process read of `project`'s settings (it changed).
    pub(super) fn forget(&self, project: &str) {
        if let Ok(mut cache) = self.setups.lock() {
            cache.remove(project);
        }
    }

    /// The lock of fetching `digest` in this process.
    fn flight(&self, digest: &Digest) -> Arc<tokio::sync::Mutex<()>> {
        let Ok(mut map) = self.fetches.lock() else { return Arc::default() };
        // Locks nobody holds any more go.
        map.retain(|_, lock| Arc::strong_count(lock) > 1);
        map.entry(digest.clone()).or_default().clone()
    }
}

/// `bytes_per_sec` applied to a stream: each chunk waits until the bytes
/// read so far are due.
fn throttled(stream: ByteStream, bytes_per_sec: Option<u64>) -> ByteStream {
    let Some(rate) = bytes_per_sec.filter(|r| *r > 0) else { return stream };
    let start = tokio::time::Instant::now();
    futures::stream::unfold((stream, 0u64), move |(mut stream, read)| async move {
        let chunk = stream.next().await?;
        let read = read + chunk.as_ref().map_or(0, |b| b.len() as u64);
        tokio::time::sleep_until(start + Duration::from_secs_f64(read as f64 / rate as f64)).await;
        Some((chunk, (stream, read)))
    })
    .boxed()
}

fn upstream_error(e: RemoteError) -> ServiceError {
    ServiceError::Upstream(e)
}

/// The upstream of one pull: its client and the repository's name there.
#[derive(Clone)]
struct Upstream {
    client: Arc<Client>,
    name: String,
}

impl Registry {
    /// The proxy settings of `project`: `None` for an ordinary (or missing)
    /// project. Read at most every few seconds per process.
    pub async fn proxy_setup(&self, project: &str) -> ServiceResult<Option<Arc<ProxySetup>>> {
        if let Ok(cache) = self.proxy.setups.lock()
            && let Some((at, setup)) = cache.get(project)
            && at.elapsed() < SETUP_TTL
        {
            return Ok(setup.clone());
        }
        let setup = match self.project(&super::projects::ProjectRef::Name(project.to_owned())).await {
            Ok(p) if p.is_proxy() => {
                let speed = p.metadata.get("proxy_speed_kb").and_then(|v| v.trim().parse::<i64>().ok());
                Some(Arc::new(ProxySetup {
                    project: p.name.clone(),
                    registry_id: p.registry_id,
                    bytes_per_sec: speed.filter(|kb| *kb > 0).map(|kb| kb.unsigned_abs() * 1024),
                    // Stored settings were checked when set.
                    filter: parse_filter(&p.metadata).unwrap_or(None),
                    local_on_not_found: p.metadata.get("proxy_cache_local_on_not_found").is_some_and(|v| v == "true"),
                }))
            }
            Ok(_) | Err(ServiceError::NotFound(_)) => None,
            Err(e) => return Err(e),
        };
        if let Ok(mut cache) = self.proxy.setups.lock() {
            if cache.len() > 10_000 {
                cache.clear();
            }
            cache.insert(project.to_owned(), (Instant::now(), setup.clone()));
        }
        Ok(setup)
    }

    /// The client of the project's endpoint (made again when the endpoint
    /// changed) and the repository's upstream name.
    async fn upstream(&self, setup: &ProxySetup, repo: &RepoName) -> ServiceResult<Upstream> {
        let endpoint = self.registry_endpoint(setup.registry_id).await?;
        let name = upstream_name(&endpoint.registry_type, upstream_path(repo));
        let cached = self.proxy.clients.lock().ok().and_then(|m| {
            m.get(&endpoint.id).filter(|(stamp, _)| *stamp == endpoint.update_time).map(|(_, c)| c.clone())
        });
        if let Some(client) = cached {
            return Ok(Upstream { client, name });
        }
        let mut target = self.registry_endpoint_target(&endpoint)?;
        target.timeout = self.proxy.timeout;
        let client = Arc::new(target.client().map_err(upstream_error)?);
        if let Ok(mut m) = self.proxy.clients.lock() {
            m.insert(endpoint.id, (endpoint.update_time, client.clone()));
        }
        Ok(Upstream { client, name })
    }

    /// A manifest of a proxy-cache project (see the module's doc).
    pub async fn proxy_manifest(
        &self,
        setup: &ProxySetup,
        repo: &RepoName,
        reference: &Reference,
    ) -> ServiceResult<ManifestRecord> {
        setup.admit(repo)?;
        let local = match self.get_manifest(repo, reference, true).await {
            Ok(m) => Some(m),
            Err(ServiceError::ManifestUnknown(_)) => None,
            Err(e) => return Err(e),
        };
        let tag = match reference {
            Reference::Digest(_) if local.is_some() => return local.ok_or_else(|| corrupt_state(reference)),
            Reference::Digest(d) => {
                let up = self.upstream(setup, repo).await?;
                return self.fetch_manifest(setup, &up, repo, &d.to_string(), None).await.map_err(|e| match e {
                    ServiceError::Upstream(r) if r.is_not_found() => ServiceError::ManifestUnknown(d.to_string()),
                    e => e,
                });
            }
            Reference::Tag(t) => t,
        };
        if let Some(m) = &local
            && self.tag_checked(repo, tag, &m.digest).await?
        {
            return local.ok_or_else(|| corrupt_state(reference));
        }
        let asked = async {
            let up = self.upstream(setup, repo).await?;
            match &local {
                // Only the digest is needed to know whether the copy is current.
                Some(m) => {
                    let info = up.client.head_manifest(&up.name, tag.as_str()).await.map_err(upstream_error)?;
                    if info.digest == m.digest {
                        self.record_tag_check(repo, tag, &m.digest).await?;
                        return Ok(m.clone());
                    }
                    self.cache_tag(setup, &up, repo, tag, &info.digest).await
                }
                None => self.fetch_manifest(setup, &up, repo, tag.as_str(), Some(tag)).await,
            }
        };
        match (asked.await, local) {
            (Ok(m), _) => Ok(m),
            (Err(ServiceError::Upstream(e)), Some(m)) if !e.is_not_found() || setup.local_on_not_found => {
                tracing::warn!(repository = %repo, tag = %tag, error = %e, "upstream failed: the cached manifest is served");
                Ok(m)
            }
            (Err(ServiceError::Upstream(e)), _) if e.is_not_found() => {
                Err(ServiceError::ManifestUnknown(tag.to_string()))
            }
            (Err(e), _) => Err(e),
        }
    }

    /// Puts `tag` on `digest`: the local copy when the artifact is cached,
    /// else the manifest fetched by digest.
    async fn cache_tag(
        &self,
        setup: &ProxySetup,
        up: &Upstream,
        repo: &RepoName,
        tag: &Tag,
        digest: &Digest,
    ) -> ServiceResult<ManifestRecord> {
        match self.get_manifest(repo, &Reference::Digest(digest.clone()), true).await {
            Ok(m) => {
                let reference = Reference::Tag(tag.clone());
                self.store_manifest(repo, &reference, Some(&m.media_type), m.body.clone(), true).await?;
                self.record_tag_check(repo, tag, digest).await?;
                Ok(m)
            }
            Err(ServiceError::ManifestUnknown(_)) => {
                self.fetch_manifest(setup, up, repo, &digest.to_string(), Some(tag)).await
            }
            Err(e) => Err(e),
        }
    }

    /// Fetches a manifest (by tag or digest) and caches it with the blobs
    /// of an image (see [`Self::cache_fetched`]). When caching takes longer
    /// than `proxy.manifest_wait_secs` (a big image), the manifest is served
    /// as the upstream sent it while the caching goes on: the client's blob
    /// requests join the fetches under way.
    async fn fetch_manifest(
        &self,
        setup: &ProxySetup,
        up: &Upstream,
        repo: &RepoName,
        reference: &str,
        tag: Option<&Tag>,
    ) -> ServiceResult<ManifestRecord> {
        let fetched = up.client.get_manifest(&up.name, reference).await.map_err(upstream_error)?;
        let served = ManifestRecord {
            digest: fetched.digest.clone(),
            media_type: fetched.media_type.clone(),
            size: fetched.bytes.len() as u64,
            body: fetched.bytes.clone(),
        };
        let caching = {
            let (reg, setup, up, repo, tag) = (self.clone(), setup.clone(), up.clone(), repo.clone(), tag.cloned());
            tokio::spawn(async move { reg.cache_fetched(&setup, &up, &repo, fetched, tag.as_ref()).await })
        };
        match tokio::time::timeout(self.proxy.manifest_wait, caching).await {
            Ok(Ok(cached)) => cached,
            Ok(Err(join)) => Err(ServiceError::Backend(crate::port::PortError::msg(
                crate::port::ErrorKind::Internal,
                format!("caching {repo}@{}: {join}", served.digest),
            ))),
            Err(_) => {
                tracing::info!(repository = %repo, digest = %served.digest, "served from the upstream while its blobs are cached");
                Ok(served)
            }
        }
    }

    /// Caches a fetched manifest: an image's blobs first, then the manifest
    /// (under `tag` too, when given), linked to the cached indexes that
    /// wait for it.
    async fn cache_fetched(
        &self,
        setup: &ProxySetup,
        up: &Upstream,
        repo: &RepoName,
        fetched: crate::remote::Manifest,
        tag: Option<&Tag>,
    ) -> ServiceResult<ManifestRecord> {
        let manifest = Manifest::parse(Some(&fetched.media_type), &fetched.bytes)
            .map_err(|e| ServiceError::ManifestInvalid(format!("the upstream's manifest: {e}")))?;
        let blobs: Vec<Digest> = manifest.required_blobs().iter().map(|d| d.digest.clone()).collect();
        for batch in blobs.chunks(PARALLEL_BLOBS) {
            let mut fetches = Vec::with_capacity(batch.len());
            for d in batch {
                fetches.push(self.fetch_blob(setup, up, repo, d));
            }
            futures::future::try_join_all(fetches).await?;
        }
        let stored_as = match tag {
            Some(t) => Reference::Tag(t.clone()),
            None => Reference::Digest(fetched.digest.clone()),
        };
        let bytes: Bytes = fetched.bytes.clone();
        let (outcome, absent) =
            self.store_manifest(repo, &stored_as, Some(&fetched.media_type), bytes.clone(), true).await?;
        for child in &absent {
            let (pk, sk) = keys::proxy_pending_child(repo, child, &outcome.digest);
            self.meta.put(Item::new(pk, sk), Condition::Always).await?;
        }
        self.join_waiting_indexes(repo, &outcome.digest).await?;
        if let Some(t) = tag {
            self.record_tag_check(repo, t, &outcome.digest).await?;
        }
        Ok(ManifestRecord {
            digest: outcome.digest,
            media_type: fetched.media_type,
            size: bytes.len() as u64,
            body: bytes,
        })
    }

    /// Links a newly cached manifest to the cached indexes that list it.
    async fn join_waiting_indexes(&self, repo: &RepoName, child: &Digest) -> ServiceResult<()> {
        let prefix = keys::proxy_pending_prefix(child);
        let query = Query::table(keys::repo_partition(repo), prefix.as_str()).keys_only().limit(PENDING_PAGE);
        for entry in self.meta.query(query).await?.items {
            let Some(index) = entry.sk.strip_prefix(&prefix).and_then(|d| d.parse::<Digest>().ok()) else {
                continue;
            };
            if self.artifact_record(repo, &index).await?.is_some() {
                self.adopt_children(repo, &index, std::slice::from_ref(child)).await?;
            }
            self.meta.delete(&entry.pk, &entry.sk, Condition::Always).await?;
        }
        Ok(())
    }

    /// Whether the upstream was asked about `tag` within the time-to-live
    /// and named `digest`.
    async fn tag_checked(&self, repo: &RepoName, tag: &Tag, digest: &Digest) -> ServiceResult<bool> {
        if self.proxy.tag_ttl.is_zero() {
            return Ok(false);
        }
        let (pk, sk) = keys::proxy_tag_check(repo, tag);
        let Some(item) = self.meta.get(&pk, &sk).await? else { return Ok(false) };
        let fresh = item.i64("checked_at").is_some_and(|at| {
            now_unix() < at.saturating_add(i64::try_from(self.proxy.tag_ttl.as_secs()).unwrap_or(i64::MAX))
        });
        Ok(fresh && item.str(keys::attr::DIGEST) == Some(digest.to_string().as_str()))
    }

    async fn record_tag_check(&self, repo: &RepoName, tag: &Tag, digest: &Digest) -> ServiceResult<()> {
        if self.proxy.tag_ttl.is_zero() {
            return Ok(());
        }
        let now = now_unix();
        let ttl = i64::try_from(self.proxy.tag_ttl.as_secs()).unwrap_or(i64::MAX);
        let (pk, sk) = keys::proxy_tag_check(repo, tag);
        let item = Item::new(pk, sk)
            .with(keys::attr::DIGEST, digest.to_string())
            .with("checked_at", now)
            .with(keys::attr::EXPIRES_AT, now.saturating_add(ttl).saturating_add(86_400));
        self.meta.put(item, Condition::Always).await?;
        Ok(())
    }

    /// A blob of a proxy-cache project: linked already, or fetched now.
    pub async fn proxy_blob(&self, setup: &ProxySetup, repo: &RepoName, digest: &Digest) -> ServiceResult<BlobInfo> {
        setup.admit(repo)?;
        match self.stat_blob(repo, digest).await {
            Ok(info) => return Ok(info),
            Err(ServiceError::BlobUnknown(_)) => {}
            Err(e) => return Err(e),
        }
        let up = self.upstream(setup, repo).await?;
        self.fetch_blob(setup, &up, repo, digest).await.map_err(|e| match e {
            ServiceError::Upstream(r) if r.is_not_found() => ServiceError::BlobUnknown(digest.clone()),
            e => e,
        })
    }

    /// Makes `digest` readable in `repo`: linked when berth stores it
    /// already, else fetched from the upstream once (see the module's doc).
    async fn fetch_blob(
        &self,
        setup: &ProxySetup,
        up: &Upstream,
        repo: &RepoName,
        digest: &Digest,
    ) -> ServiceResult<BlobInfo> {
        let flight = self.proxy.flight(digest);
        let _in_process = flight.lock().await;
        let waited_since = Instant::now();
        let holder = super::executions::new_id();
        loop {
            if let Some(info) = self.held_blob(repo, digest).await? {
                return Ok(info);
            }
            if self.take_blob_lease(digest, holder).await? {
                break;
            }
            if waited_since.elapsed() > Duration::from_secs(LEASE_SECS.unsigned_abs()) {
                return Err(ServiceError::Backend(crate::port::PortError::msg(
                    crate::port::ErrorKind::Unavailable,
                    format!("another fetch of {digest} has not finished"),
                )));
            }
            tokio::time::sleep(WAIT_POLL).await;
        }
        let copied = self.copy_blob(setup, up, repo, digest).await;
        let (pk, sk) = keys::proxy_blob_lease(digest);
        if let Err(e) = self.meta.delete(&pk, &sk, Condition::equals("holder", holder)).await
            && !e.is(ErrorKind::ConditionFailed)
        {
            tracing::warn!(digest = %digest, error = %e, "a blob fetch lease was not released; it lapses");
        }
        copied
    }

    /// Takes the fetch lease of `digest` (free, or lapsed); false when
    /// another holds it.
    async fn take_blob_lease(&self, digest: &Digest, holder: i64) -> ServiceResult<bool> {
        let now = now_unix();
        let (pk, sk) = keys::proxy_blob_lease(digest);
        let item = Item::new(pk, sk)
            .with("holder", holder)
            .with("lease_until", now + LEASE_SECS)
            .with(keys::attr::EXPIRES_AT, now + LEASE_SECS + 3600);
        match self.meta.put(item, Condition::at_most("lease_until", now)).await {
            Ok(()) => Ok(true),
            Err(e) if e.is(ErrorKind::ConditionFailed) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Streams a blob from the upstream into berth's upload path.
    async fn copy_blob(
        &self,
        setup: &ProxySetup,
        up: &Upstream,
        repo: &RepoName,
        digest: &Digest,
    ) -> ServiceResult<BlobInfo> {
        let reader = up.client.get_blob(&up.name, digest, None).await.map_err(upstream_error)?;
        let stream = throttled(reader.stream, setup.bytes_per_sec);
        let upload = self.start_upload(repo).await?;
        match self.complete_upload(repo, &upload.id, digest, None, Some(stream)).await {
            Ok(info) => {
                tracing::info!(repository = %repo, digest = %digest, size = info.size, "blob cached from the upstream");
                Ok(info)
            }
            Err(e) => {
                let _ = self.cancel_upload(repo, &upload.id).await;
                Err(e)
            }
        }
    }
}

fn corrupt_state(reference: &Reference) -> ServiceError {
    ServiceError::ManifestUnknown(reference.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use futures::TryStreamExt as _;

    use super::*;

    fn meta(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn docker_hub_names_get_library() {
        assert_eq!(upstream_name(DOCKER_HUB, "alpine"), "library/alpine");
        assert_eq!(upstream_name(DOCKER_HUB, "bitnami/redis"), "bitnami/redis");
        assert_eq!(upstream_name("docker-registry", "alpine"), "alpine");
        assert_eq!(upstream_name("harbor", "nightly/for_proxy"), "nightly/for_proxy");
        let repo = RepoName::parse("cache/library/alpine").unwrap();
        assert_eq!(upstream_path(&repo), "library/alpine");
        let repo = RepoName::parse("cache/alpine").unwrap();
        assert_eq!(upstream_name(DOCKER_HUB, upstream_path(&repo)), "library/alpine");
    }

    #[test]
    fn filters_of_both_kinds() {
        assert!(parse_filter(&meta(&[])).unwrap().is_none());
        let f = parse_filter(&meta(&[("proxy_cache_filter_pattern", "nightly/for_proxy")])).unwrap().unwrap();
        assert!(f.matches("nightly/for_proxy") && !f.matches("nightly/redis"));
        let f = parse_filter(&meta(&[
            ("proxy_cache_filter_pattern", "nightly/**"),
            ("proxy_cache_filter_kind", "doublestar"),
        ]))
        .unwrap()
        .unwrap();
        assert!(f.matches("nightly/a/b") && !f.matches("other/a"));
        let f = parse_filter(&meta(&[
            ("proxy_cache_filter_pattern", "^nightly/(for_proxy|redis)$"),
            ("proxy_cache_filter_kind", "regex"),
        ]))
        .unwrap()
        .unwrap();
        assert!(f.matches("nightly/redis") && !f.matches("nightly/busybox"));
        let bad = meta(&[("proxy_cache_filter_pattern", "nightly/(*"), ("proxy_cache_filter_kind", "regex")]);
        assert!(matches!(parse_filter(&bad), Err(ServiceError::Invalid(_))));
        let bad = meta(&[("proxy_cache_filter_pattern", "a"), ("proxy_cache_filter_kind", "glob")]);
        assert!(matches!(parse_filter(&bad), Err(ServiceError::Invalid(_))));
        let bad = meta(&[("proxy_cache_filter_pattern", "a{b")]);
        assert!(matches!(parse_filter(&bad), Err(ServiceError::Invalid(_))));
    }

    #[test]
    fn default_retention_keeps_seven_days_of_pulls() {
        let p = default_retention(42);
        assert_eq!((p.scope.level.as_str(), p.scope.reference), ("project", 42));
        assert_eq!(p.rules[0].template, "nDaysSinceLastPull");
        assert_eq!(p.rules[0].params.get("nDaysSinceLastPull"), Some(&serde_json::json!(7)));
        assert_eq!(p.trigger.cron(), Some("0 0 0 * * *"));
    }

    #[tokio::test]
    async fn throttling_spaces_the_chunks() {
        let chunks: Vec<std::io::Result<Bytes>> = (0..4).map(|_| Ok(Bytes::from(vec![0u8; 512]))).collect();
        let stream: ByteStream = futures::stream::iter(chunks).boxed();
        let started = Instant::now();
        let read: Vec<_> = throttled(stream, Some(4096)).try_collect().await.unwrap();
        assert_eq!(read.len(), 4);
        assert!(started.elapsed() >= Duration::from_millis(450), "2 KiB at 4 KiB/s: {:?}", started.elapsed());
    }
}

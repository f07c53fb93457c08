//! `/projects/{project_name}/repositories…`: Harbor's repository, artifact
//! and tag API over [`crate::service::artifacts`]. A repository name in
//! the path is relative to its project and, when it holds a `/`, encoded
//! twice (`a%252Fb`), as Harbor clients send it.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};

use super::labels::LabelView;
use super::projects::Target;
use super::{ApiError, ApiResult, Body, Caller, PREFIX, Paging, parse_q, query_bool, rfc3339};
use crate::auth::On;
use crate::http::state::AppState;
use crate::oci::{Reference, RepoName};
use crate::rbac::{Act, Res};
use crate::service::artifacts::{ArtifactFilter, ArtifactInfo, RepositoryInfo, TagInfo, stable_id};
use crate::service::immutability::Immutability;
use crate::service::paging::Listing;
use crate::service::paging::Match;
use crate::service::projects::{Project, ProjectRef, ProjectScope};
use crate::service::references::Accessory;

/// Harbor's time for "never" (pull times: berth does not record pulls yet).
const NEVER: &str = "0001-01-01T00:00:00.000Z";

/// The project and repository a request names.
pub struct RepoPath {
    project: String,
    repo: RepoName,
    reference: Option<String>,
    tag: Option<String>,
    addition: Option<String>,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for RepoPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(params) = Path::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request(e.body_text()))?;
        let get = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let project = get("project_name_or_id").unwrap_or_default();
        let raw = get("repository_name").unwrap_or_default();
        // The second decoding of a twice-encoded name.
        let relative = percent_encoding::percent_decode_str(&raw)
            .decode_utf8()
            .map_err(|_| ApiError::bad_request("repository name is not UTF-8"))?;
        let repo = RepoName::parse(&format!("{project}/{relative}"))
            .map_err(|e| ApiError::bad_request(format!("invalid repository name {relative:?}: {e}")))?;
        Ok(Self { project, repo, reference: get("reference"), tag: get("tag_name"), addition: get("addition") })
    }
}

impl RepoPath {
    pub(super) fn repo(&self) -> &RepoName {
        &self.repo
    }

    pub(super) fn reference(&self) -> ApiResult<Reference> {
        let raw = self.reference.as_deref().unwrap_or_default();
        raw.parse::<Reference>().map_err(|_| ApiError::bad_request(format!("invalid reference {raw:?}")))
    }

    /// The project, after checking `perm` in it.
    pub(super) async fn require(&self, state: &AppState, caller: &Caller, perm: (Res, Act)) -> ApiResult<Project> {
        let project = state.registry.project(&ProjectRef::Name(self.project.clone())).await?;
        caller.require_in(state, &project, perm).await?;
        Ok(project)
    }
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    page: Option<String>,
    page_size: Option<String>,
    cursor: Option<String>,
    sort: Option<String>,
    q: Option<String>,
    with_tag: Option<String>,
    with_label: Option<String>,
    with_accessory: Option<String>,
    with_immutable_status: Option<String>,
    with_scan_overview: Option<String>,
    with_sbom_overview: Option<String>,
}

impl ListQuery {
    /// The page asked for; `sort` may reverse the list's own order, by
    /// `key` (descending unless asked otherwise when `descending`).
    fn paging(&self, key: &str, descending: bool) -> Result<Paging, ApiError> {
        Ok(Paging::parse(self.page.as_deref(), self.page_size.as_deref(), self.cursor.as_deref())?.sorted(
            self.sort.as_deref(),
            key,
            descending,
        ))
    }

    /// The listing's other parameters, for its `Link`.
    /// The project's immutability rules when `with_immutable_status` asks
    /// for tags' status (Harbor shows `false` otherwise).
    async fn immutability(&self, state: &AppState, project: &str) -> ApiResult<Option<Immutability>> {
        if self.with_immutable_status.as_deref().is_some_and(query_bool) {
            Ok(Some(state.registry.immutability(project).await?))
        } else {
            Ok(None)
        }
    }

    /// Each artifact's labels when `with_label` asks for them (Harbor
    /// shows none otherwise).
    async fn labels(&self, state: &AppState, items: &[(&RepoName, &ArtifactInfo)]) -> ApiResult<Vec<Vec<LabelView>>> {
        if !self.with_label.as_deref().is_some_and(query_bool) {
            return Ok(items.iter().map(|_| Vec::new()).collect());
        }
        let reads = items.iter().map(|(repo, a)| state.registry.artifact_labels(repo, &a.digest, a.push_stamp));
        let found = futures::future::try_join_all(reads).await?;
        Ok(found.into_iter().map(|ls| ls.into_iter().map(LabelView::from).collect()).collect())
    }

    /// Each artifact's accessories when `with_accessory` asks for them
    /// (`null` for none, as Harbor shows it).
    async fn accessories(
        &self,
        state: &AppState,
        items: &[(&RepoName, &ArtifactInfo)],
    ) -> ApiResult<Vec<Option<Vec<AccessoryView>>>> {
        if !self.with_accessory.as_deref().is_some_and(query_bool) {
            return Ok(items.iter().map(|_| None).collect());
        }
        let reads = items.iter().map(|(repo, a)| state.registry.accessories(repo, &a.digest));
        let found = futures::future::try_join_all(reads).await?;
        Ok(found
            .into_iter()
            .zip(items)
            .map(|(list, (repo, _))| {
                Some(list.iter().map(|a| accessory_view(a, repo)).collect::<Vec<_>>()).filter(|v| !v.is_empty())
            })
            .collect())
    }

    /// The artifact filter of `q` (`digest`, `tags`, `type`, `labels`,
    /// `base`).
    fn artifact_filter(&self) -> ApiResult<ArtifactFilter> {
        let mut terms = parse_q(self.q.as_deref())?;
        Ok(ArtifactFilter {
            digest: terms.remove("digest"),
            tags: terms.remove("tags"),
            kind: terms.remove("type"),
            media_type: terms.remove("media_type"),
            labels: terms.remove("labels").or_else(|| terms.remove("label_id")),
            all: match terms.remove("base") {
                None => false,
                Some(Match::Exact(v)) if v == "*" => true,
                Some(_) => {
                    return Err(ApiError::bad_request(
                        "the value of \"base\" query can only be exact match value with \"*\"",
                    ));
                }
            },
        })
    }

    /// The views of a page of artifacts, with what the flags ask for.
    async fn artifact_views(
        &self,
        state: &AppState,
        project: &Project,
        items: Vec<(RepoName, ArtifactInfo)>,
    ) -> ApiResult<Vec<ArtifactView>> {
        let with_tags = self.with_tag.as_deref().is_none_or(query_bool);
        let rules = self.immutability(state, &project.name).await?;
        let refs: Vec<(&RepoName, &ArtifactInfo)> = items.iter().map(|(r, a)| (r, a)).collect();
        let mut labels = self.labels(state, &refs).await?.into_iter();
        let mut accessories = self.accessories(state, &refs).await?.into_iter();
        let mut scans = if self.with_scan_overview.as_deref().is_some_and(query_bool) {
            let digests: Vec<&crate::oci::Digest> = items.iter().map(|(_, a)| &a.digest).collect();
            super::scan::overviews(state, &project.name, &digests).await?
        } else {
            Vec::new()
        }
        .into_iter();
        let mut sboms = if self.with_sbom_overview.as_deref().is_some_and(query_bool) {
            let digests: Vec<&crate::oci::Digest> = items.iter().map(|(_, a)| &a.digest).collect();
            super::scan::sbom_overviews(state, &project.name, &digests).await?
        } else {
            Vec::new()
        }
        .into_iter();
        Ok(items
            .iter()
            .map(|(repo, a)| {
                let (l, acc) = (labels.next().unwrap_or_default(), accessories.next().flatten());
                let mut view = artifact_view(a, repo, project.project_id, with_tags, rules.as_ref(), l, acc);
                view.scan_overview = scans.next().flatten();
                view.sbom_overview = sboms.next().flatten();
                view
            })
            .collect())
    }

    fn rest(&self) -> Vec<(&str, &str)> {
        [
            ("q", &self.q),
            ("sort", &self.sort),
            ("with_tag", &self.with_tag),
            ("with_label", &self.with_label),
            ("with_accessory", &self.with_accessory),
            ("with_immutable_status", &self.with_immutable_status),
            ("with_scan_overview", &self.with_scan_overview),
            ("with_sbom_overview", &self.with_sbom_overview),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
        .collect()
    }
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct RepositoryBody {
    #[serde(default)]
    description: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct TagBody {
    name: String,
}

#[derive(Debug, Deserialize)]
pub struct CopyQuery {
    from: Option<String>,
}

/// Harbor's `Repository`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct RepositoryView {
    id: i64,
    project_id: i64,
    name: String,
    description: String,
    artifact_count: u64,
    pull_count: u64,
    creation_time: String,
    update_time: String,
}

fn repository_view(r: RepositoryInfo, project_id: i64) -> RepositoryView {
    RepositoryView {
        id: r.id,
        project_id,
        name: r.name.to_string(),
        description: r.description,
        artifact_count: r.artifact_count,
        pull_count: r.pull_count,
        creation_time: rfc3339(r.creation_time),
        update_time: rfc3339(r.update_time),
    }
}

/// Harbor's `Tag`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct TagView {
    id: i64,
    repository_id: i64,
    artifact_id: i64,
    name: String,
    push_time: String,
    pull_time: &'static str,
    immutable: bool,
}

fn tag_view(t: &TagInfo, repo: &RepoName, rules: Option<&Immutability>) -> TagView {
    TagView {
        id: stable_id(&format!("{repo}:{}", t.name)),
        repository_id: stable_id(repo.as_str()),
        artifact_id: stable_id(&format!("{repo}@{}", t.digest)),
        name: t.name.clone(),
        push_time: rfc3339(t.push_time),
        pull_time: NEVER,
        immutable: rules.is_some_and(|r| r.protects(repo, &t.name)),
    }
}

/// Harbor's `Platform` of an index child.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct PlatformView {
    architecture: String,
    os: String,
    #[serde(rename = "os.version")]
    os_version: Option<String>,
    #[serde(rename = "os.features")]
    os_features: Vec<String>,
    variant: Option<String>,
}

/// Harbor's `Reference` (an index child).
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct ReferenceView {
    parent_id: i64,
    child_id: i64,
    child_digest: String,
    platform: Option<PlatformView>,
    annotations: BTreeMap<String, String>,
    urls: Vec<String>,
}

/// Harbor's `Artifact`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct ArtifactView {
    id: i64,
    #[serde(rename = "type")]
    kind: &'static str,
    media_type: String,
    manifest_media_type: String,
    artifact_type: Option<String>,
    project_id: i64,
    repository_id: i64,
    repository_name: String,
    digest: String,
    size: u64,
    icon: String,
    push_time: String,
    pull_time: String,
    extra_attrs: serde_json::Value,
    annotations: BTreeMap<String, String>,
    references: Vec<ReferenceView>,
    tags: Option<Vec<TagView>>,
    addition_links: BTreeMap<&'static str, AdditionLink>,
    labels: Vec<LabelView>,
    scan_overview: Option<super::scan::Overview>,
    sbom_overview: Option<super::scan::SbomOverviewView>,
    accessories: Option<Vec<AccessoryView>>,
}

/// Harbor's `AdditionLink`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct AdditionLink {
    absolute: bool,
    href: String,
}

/// The additions an artifact of Harbor's type `kind` has, as Harbor links
/// them: an image's build history and vulnerabilities, a chart's values,
/// readme and dependencies.
fn addition_links(kind: &str, repo: &RepoName, digest: &str) -> BTreeMap<&'static str, AdditionLink> {
    let names: &[&'static str] = match kind {
        "IMAGE" => &["build_history", "vulnerabilities"],
        "CHART" => &["values.yaml", "readme.md", "dependencies"],
        _ => &[],
    };
    names
        .iter()
        .map(|name| {
            let href = format!(
                "{PREFIX}/projects/{}/repositories/{}/artifacts/{digest}/additions/{name}",
                repo.project(),
                encode_twice(repo)
            );
            (*name, AdditionLink { absolute: false, href })
        })
        .collect()
}

/// Harbor's `Accessory`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct AccessoryView {
    id: i64,
    artifact_id: i64,
    subject_artifact_id: i64,
    subject_artifact_digest: String,
    subject_artifact_repo: String,
    size: u64,
    digest: String,
    #[serde(rename = "type")]
    kind: &'static str,
    icon: String,
    creation_time: String,
}

fn accessory_view(a: &Accessory, repo: &RepoName) -> AccessoryView {
    let artifact_id = stable_id(&format!("{repo}@{}", a.digest));
    AccessoryView {
        id: artifact_id,
        artifact_id,
        subject_artifact_id: stable_id(&format!("{repo}@{}", a.subject)),
        subject_artifact_digest: a.subject.to_string(),
        subject_artifact_repo: repo.to_string(),
        size: a.size,
        digest: a.digest.to_string(),
        kind: a.kind,
        icon: super::icons::icon_of(if a.kind == crate::service::references::HARBOR_SBOM {
            "SBOM"
        } else if a.kind.starts_with("signature.") {
            "SIGNATURE"
        } else {
            "UNKNOWN"
        }),
        creation_time: rfc3339(a.push_time),
    }
}

fn artifact_view(
    a: &ArtifactInfo,
    repo: &RepoName,
    project_id: i64,
    with_tags: bool,
    rules: Option<&Immutability>,
    labels: Vec<LabelView>,
    accessories: Option<Vec<AccessoryView>>,
) -> ArtifactView {
    let id = stable_id(&format!("{repo}@{}", a.digest));
    let references = a
        .references()
        .iter()
        .map(|child| ReferenceView {
            parent_id: id,
            child_id: stable_id(&format!("{repo}@{}", child.digest)),
            child_digest: child.digest.to_string(),
            platform: child.platform.as_ref().map(|p| PlatformView {
                architecture: p.architecture.clone(),
                os: p.os.clone(),
                os_version: p.os_version.clone(),
                os_features: p.os_features.clone(),
                variant: p.variant.clone(),
            }),
            annotations: child.annotations.clone(),
            urls: child.urls.clone(),
        })
        .collect();
    ArtifactView {
        id,
        kind: a.kind(),
        media_type: a.media_type().to_owned(),
        manifest_media_type: a.manifest.media_type.clone(),
        artifact_type: a.manifest.referrer_artifact_type().map(str::to_owned),
        project_id,
        repository_id: stable_id(repo.as_str()),
        repository_name: repo.to_string(),
        digest: a.digest.to_string(),
        size: a.size,
        icon: super::icons::icon_of(a.kind()),
        push_time: rfc3339(a.push_time),
        pull_time: if a.pull_time > 0 { rfc3339(a.pull_time) } else { NEVER.to_owned() },
        extra_attrs: a.extra_attrs.clone().unwrap_or_else(|| serde_json::json!({})),
        annotations: a.manifest.annotations.clone(),
        references,
        tags: with_tags.then(|| a.tags.iter().map(|t| tag_view(t, repo, rules)).collect()),
        addition_links: addition_links(a.kind(), repo, &a.digest.to_string()),
        labels,
        scan_overview: None,
        sbom_overview: None,
        accessories,
    }
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(params): Path<Vec<(String, String)>>,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    let paging = q.paging("name", false)?;
    let name = params.into_iter().find(|(k, _)| k == "project_name_or_id").map(|(_, v)| v).unwrap_or_default();
    let project = state.registry.project(&ProjectRef::Name(name)).await?;
    caller.require_in(&state, &project, (Res::Repository, Act::List)).await?;
    let terms = parse_q(q.q.as_deref())?;
    let listing = state.registry.list_repositories(&project.name, terms.get("name"), &paging.0).await?;
    let path = format!("/projects/{}/repositories", project.name);
    Ok(paging.respond(&path, &q.rest(), listing.map(|r| repository_view(r, project.project_id))))
}

/// The projects whose repositories the caller may list: `None` for all,
/// else its own projects where it may and the public ones.
async fn listable_projects(state: &AppState, caller: &Caller) -> ApiResult<Option<std::collections::BTreeSet<String>>> {
    let ProjectScope::PublicAnd(mine) = super::projects::scope_of(state, caller).await? else { return Ok(None) };
    let mut allowed = std::collections::BTreeSet::new();
    for name in mine {
        let project = state.registry.project(&ProjectRef::Name(name.clone())).await?;
        if caller.require_in(state, &project, (Res::Repository, Act::List)).await.is_ok() {
            allowed.insert(name);
        }
    }
    if caller.require((Res::Repository, Act::List), On::Project(&public_access())).is_ok() {
        allowed.extend(state.registry.public_project_names().await?);
    }
    Ok(Some(allowed))
}

/// `GET /repositories`: the repositories of every project the caller may
/// list repositories of.
pub async fn list_all(State(state): State<Arc<AppState>>, caller: Caller, Query(q): Query<ListQuery>) -> ApiResult {
    let paging = q.paging("name", false)?;
    let terms = parse_q(q.q.as_deref())?;
    let listing = match listable_projects(&state, &caller).await? {
        None => state.registry.list_all_repositories(None, terms.get("name"), &paging.0).await?,
        Some(allowed) => {
            let visible = move |p: &str| allowed.contains(p);
            state.registry.list_all_repositories(Some(&visible), terms.get("name"), &paging.0).await?
        }
    };
    let mut items = Vec::with_capacity(listing.items.len());
    for r in listing.items {
        let project_id = state.registry.project(&ProjectRef::Name(r.name.project().to_owned())).await?.project_id;
        items.push(repository_view(r, project_id));
    }
    Ok(paging.respond("/repositories", &q.rest(), Listing { items, total: listing.total, next: listing.next }))
}

/// Harbor's `SearchRepository`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(super) struct SearchRepository {
    project_id: i64,
    project_name: String,
    project_public: bool,
    repository_name: String,
    pull_count: u64,
    artifact_count: u64,
}

/// The repositories of `/search`: those whose name holds `q` in projects
/// the caller may list, the first [`SEARCH_LIMIT`].
pub(super) async fn search_repositories(state: &AppState, caller: &Caller, q: &str) -> ApiResult<Vec<impl Serialize>> {
    let name = crate::service::paging::Match::Fuzzy(q.to_owned());
    let req = crate::service::paging::PageRequest::first(SEARCH_LIMIT);
    let listing = match listable_projects(state, caller).await? {
        None => state.registry.list_all_repositories(None, Some(&name), &req).await?,
        Some(allowed) => {
            let visible = move |p: &str| allowed.contains(p);
            state.registry.list_all_repositories(Some(&visible), Some(&name), &req).await?
        }
    };
    let mut out = Vec::with_capacity(listing.items.len());
    for r in listing.items {
        let project = state.registry.project(&ProjectRef::Name(r.name.project().to_owned())).await?;
        out.push(SearchRepository {
            project_id: project.project_id,
            project_public: project.public(),
            project_name: project.name,
            repository_name: r.name.to_string(),
            pull_count: r.pull_count,
            artifact_count: r.artifact_count,
        });
    }
    Ok(out)
}

/// How many projects and repositories `/search` answers with at most.
pub(super) const SEARCH_LIMIT: usize = 100;

/// What anyone may do in a public project.
fn public_access() -> crate::auth::ProjectAccess {
    crate::auth::ProjectAccess { id: 0, name: String::new(), public: true, roles: Vec::new() }
}

pub async fn get(State(state): State<Arc<AppState>>, caller: Caller, path: RepoPath) -> ApiResult {
    let project = path.require(&state, &caller, (Res::Repository, Act::Read)).await?;
    let repo = state.registry.repository(&path.repo).await?;
    Ok(Json(repository_view(repo, project.project_id)).into_response())
}

pub async fn update(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    path: RepoPath,
    Body(body): Body<RepositoryBody>,
) -> ApiResult {
    path.require(&state, &caller, (Res::Repository, Act::Update)).await?;
    state.registry.set_repository_description(&path.repo, &body.description).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn delete(State(state): State<Arc<AppState>>, caller: Caller, path: RepoPath) -> ApiResult {
    path.require(&state, &caller, (Res::Repository, Act::Delete)).await?;
    caller.registry(&state).delete_repository(&path.repo).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn list_artifacts(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    path: RepoPath,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    let paging = q.paging("push_time", true)?;
    let project = path.require(&state, &caller, (Res::Artifact, Act::List)).await?;
    let filter = q.artifact_filter()?;
    let listing = match state.registry.list_artifacts(&path.repo, &filter, &paging.0).await {
        Err(crate::service::ServiceError::NotFound(_)) => Listing { items: Vec::new(), total: 0, next: None },
        other => other?,
    };
    let base = format!("/projects/{}/repositories/{}/artifacts", project.name, encode_twice(&path.repo));
    let Listing { items, total, next } = listing;
    let items = items.into_iter().map(|a| (path.repo.clone(), a)).collect();
    let views = q.artifact_views(&state, &project, items).await?;
    Ok(paging.respond(&base, &q.rest(), Listing { items: views, total, next }))
}

#[derive(Debug, Deserialize)]
pub struct ProjectArtifactsQuery {
    #[serde(flatten)]
    list: ListQuery,
    latest_in_repository: Option<String>,
}

/// `GET /projects/{project_name_or_id}/artifacts`: the project's artifacts
/// across its repositories, newest first push first, paged from the
/// project's own push-order list.
pub async fn list_project_artifacts(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Target(r): Target,
    Query(pq): Query<ProjectArtifactsQuery>,
) -> ApiResult {
    let q = pq.list;
    let paging = q.paging("push_time", true)?;
    let project = state.registry.project(&r).await?;
    caller.require_in(&state, &project, (Res::Artifact, Act::List)).await?;
    let filter = q.artifact_filter()?;
    let listing = if pq.latest_in_repository.as_deref().is_some_and(query_bool) {
        // As Harbor: only with a type or media type to choose by.
        if filter.kind.is_none() && filter.media_type.is_none() {
            return Err(ApiError::bad_request("latest_in_repository needs type or media_type in q"));
        }
        state.registry.latest_project_artifacts(&project.name, &filter, &paging.0).await?
    } else {
        state.registry.list_project_artifacts(&project.name, &filter, &paging.0).await?
    };
    let Listing { items, total, next } = listing;
    let views = q.artifact_views(&state, &project, items).await?;
    let base = format!("/projects/{}/artifacts", project.name);
    Ok(paging.respond(&base, &q.rest(), Listing { items: views, total, next }))
}

/// The repository part after the project, encoded twice as Harbor links
/// carry it.
fn encode_twice(repo: &RepoName) -> String {
    let relative = repo.as_str().split_once('/').map_or(repo.as_str(), |(_, r)| r);
    relative.replace('%', "%25").replace('/', "%252F")
}

pub async fn get_artifact(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    path: RepoPath,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    let project = path.require(&state, &caller, (Res::Artifact, Act::Read)).await?;
    let artifact = state.registry.artifact(&path.repo, &path.reference()?).await?;
    let view = q.artifact_views(&state, &project, vec![(path.repo.clone(), artifact)]).await?.pop();
    Ok(Json(view).into_response())
}

pub async fn delete_artifact(State(state): State<Arc<AppState>>, caller: Caller, path: RepoPath) -> ApiResult {
    path.require(&state, &caller, (Res::Artifact, Act::Delete)).await?;
    caller.registry(&state).delete_artifact(&path.repo, &path.reference()?).await?;
    Ok(StatusCode::OK.into_response())
}

/// `POST …/artifacts?from=<project>/<repo>:<tag>` (or `@<digest>`): copies
/// an artifact the caller may read into this repository.
pub async fn copy_artifact(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    path: RepoPath,
    Query(q): Query<CopyQuery>,
) -> ApiResult {
    path.require(&state, &caller, (Res::Artifact, Act::Create)).await?;
    let from = q.from.ok_or_else(|| ApiError::bad_request("from is required"))?;
    let (src, reference) = match from.rsplit_once('@') {
        Some((repo, digest)) => (repo.to_owned(), digest.to_owned()),
        None => match from.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => (repo.to_owned(), tag.to_owned()),
            _ => return Err(ApiError::bad_request(format!("invalid input: {from}"))),
        },
    };
    let src = RepoName::parse(&src).map_err(|_| ApiError::bad_request(format!("invalid input: {from}")))?;
    let reference: Reference =
        reference.parse().map_err(|_| ApiError::bad_request(format!("invalid input: {from}")))?;
    let src_project = state.registry.project(&ProjectRef::Name(src.project().to_owned())).await?;
    caller.require_in(&state, &src_project, (Res::Artifact, Act::Read)).await?;
    caller.registry(&state).copy_artifact(&src, &reference, &path.repo).await?;
    let location =
        format!("{PREFIX}/projects/{}/repositories/{}/artifacts/{reference}", path.project, encode_twice(&path.repo));
    super::created(&location)
}

/// `GET …/artifacts/{reference}/accessories`: an artifact's signatures,
/// SBOMs and other referrers, by digest; `q` may test `digest` and `type`.
pub async fn list_accessories(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    path: RepoPath,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    let paging = q.paging("digest", false)?;
    let project = path.require(&state, &caller, (Res::Accessory, Act::List)).await?;
    let reference = path.reference()?;
    let digest = state.registry.resolve(&path.repo, &reference).await?;
    state.registry.artifact(&path.repo, &Reference::Digest(digest.clone())).await?;
    let terms = parse_q(q.q.as_deref())?;
    let all: Vec<Accessory> = state
        .registry
        .accessories(&path.repo, &digest)
        .await?
        .into_iter()
        .filter(|a| terms.get("digest").is_none_or(|m| m.matches(&a.digest.to_string())))
        .filter(|a| terms.get("type").is_none_or(|m| m.matches(a.kind)))
        .collect();
    let listing = Listing::of_all(all, &paging.0);
    let base = format!(
        "/projects/{}/repositories/{}/artifacts/{reference}/accessories",
        project.name,
        encode_twice(&path.repo)
    );
    Ok(paging.respond(&base, &q.rest(), listing.map(|a| accessory_view(&a, &path.repo))))
}

/// `GET …/additions/{addition}`: an image's `build_history`, a chart's
/// `values.yaml`, `readme.md` and `dependencies`.
pub async fn addition(State(state): State<Arc<AppState>>, caller: Caller, path: RepoPath) -> ApiResult {
    path.require(&state, &caller, (Res::ArtifactAddition, Act::Read)).await?;
    let name = path.addition.clone().unwrap_or_default();
    let addition = state.registry.addition(&path.repo, &path.reference()?, &name).await?;
    Ok(([(axum::http::header::CONTENT_TYPE, addition.content_type)], addition.body).into_response())
}

pub async fn list_tags(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    path: RepoPath,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    let paging = q.paging("name", false)?;
    let project = path.require(&state, &caller, (Res::Tag, Act::List)).await?;
    let reference = path.reference()?;
    let digest = state.registry.resolve(&path.repo, &reference).await?;
    state.registry.artifact(&path.repo, &Reference::Digest(digest.clone())).await?;
    let terms = parse_q(q.q.as_deref())?;
    let listing = state.registry.tags_of(&path.repo, &digest, &paging.0, terms.get("name")).await?;
    let base =
        format!("/projects/{}/repositories/{}/artifacts/{reference}/tags", project.name, encode_twice(&path.repo));
    let rules = q.immutability(&state, &project.name).await?;
    Ok(paging.respond(&base, &q.rest(), listing.map(|t| tag_view(&t, &path.repo, rules.as_ref()))))
}

pub async fn create_tag(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    path: RepoPath,
    Body(body): Body<TagBody>,
) -> ApiResult {
    path.require(&state, &caller, (Res::Tag, Act::Create)).await?;
    caller.registry(&state).create_tag(&path.repo, &path.reference()?, &body.name).await?;
    Ok(StatusCode::CREATED.into_response())
}

pub async fn delete_tag(State(state): State<Arc<AppState>>, caller: Caller, path: RepoPath) -> ApiResult {
    path.require(&state, &caller, (Res::Tag, Act::Delete)).await?;
    let name = path.tag.clone().unwrap_or_default();
    caller.registry(&state).delete_tag(&path.repo, &path.reference()?, &name).await?;
    Ok(StatusCode::OK.into_response())
}

//! `/projects/{project_name}/repositories…`: Harbor's repository, artifact
//! and tag API over [`crate::service::artifacts`]. A repository name in
//! the path is relative to its project and, when it holds a `/`, encoded
//! twice (`a%252Fb`), as Harbor clients send it.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiResult, Body, Caller, PREFIX, Paging, parse_q, q_matches, rfc3339};
use crate::auth::rbac::{Act, Res};
use crate::http::state::AppState;
use crate::oci::{Reference, RepoName};
use crate::service::artifacts::{ArtifactInfo, RepositoryInfo, TagInfo, stable_id};
use crate::service::projects::{Project, ProjectRef};

/// Harbor's time for "never" (pull times: berth does not record pulls yet).
const NEVER: &str = "0001-01-01T00:00:00.000Z";

/// The project and repository a request names.
pub struct RepoPath {
    project: String,
    repo: RepoName,
    reference: Option<String>,
    tag: Option<String>,
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
        Ok(Self { project, repo, reference: get("reference"), tag: get("tag_name") })
    }
}

impl RepoPath {
    fn reference(&self) -> ApiResult<Reference> {
        let raw = self.reference.as_deref().unwrap_or_default();
        raw.parse::<Reference>().map_err(|_| ApiError::bad_request(format!("invalid reference {raw:?}")))
    }

    /// The project, after checking `perm` in it.
    async fn require(&self, state: &AppState, caller: &Caller, perm: (Res, Act)) -> ApiResult<Project> {
        let project = state.registry.project(&ProjectRef::Name(self.project.clone())).await?;
        caller.require_in(state, &project, perm).await?;
        Ok(project)
    }
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    page: Option<String>,
    page_size: Option<String>,
    q: Option<String>,
    with_tag: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct RepositoryBody {
    #[serde(default)]
    description: String,
}

#[derive(Debug, Deserialize)]
pub struct TagBody {
    name: String,
}

#[derive(Debug, Deserialize)]
pub struct CopyQuery {
    from: Option<String>,
}

fn repository_json(r: &RepositoryInfo, project_id: i64) -> Value {
    json!({
        "id": r.id,
        "project_id": project_id,
        "name": r.name.as_str(),
        "description": r.description,
        "artifact_count": r.artifact_count,
        "pull_count": 0,
        "creation_time": rfc3339(r.creation_time),
        "update_time": rfc3339(r.update_time),
    })
}

fn tag_json(t: &TagInfo, repo: &RepoName) -> Value {
    let artifact_id = stable_id(&format!("{repo}@{}", t.digest));
    json!({
        "id": stable_id(&format!("{repo}:{}", t.name)),
        "repository_id": stable_id(repo.as_str()),
        "artifact_id": artifact_id,
        "name": t.name,
        "push_time": rfc3339(t.push_time),
        "pull_time": NEVER,
        "immutable": false,
    })
}

fn artifact_json(a: &ArtifactInfo, repo: &RepoName, project_id: i64, with_tags: bool) -> Value {
    let id = stable_id(&format!("{repo}@{}", a.digest));
    let references: Vec<Value> = a
        .references()
        .iter()
        .map(|child| {
            let platform = child.platform.as_ref().map(|p| {
                json!({
                    "architecture": p.architecture,
                    "os": p.os,
                    "os.version": p.os_version,
                    "os.features": p.os_features,
                    "variant": p.variant,
                })
            });
            json!({
                "parent_id": id,
                "child_id": stable_id(&format!("{repo}@{}", child.digest)),
                "child_digest": child.digest.to_string(),
                "platform": platform,
                "annotations": child.annotations,
                "urls": child.urls,
            })
        })
        .collect();
    let tags: Option<Vec<Value>> = with_tags.then(|| a.tags.iter().map(|t| tag_json(t, repo)).collect());
    json!({
        "id": id,
        "type": a.kind(),
        "media_type": a.media_type(),
        "manifest_media_type": a.manifest.media_type,
        "artifact_type": a.manifest.referrer_artifact_type(),
        "project_id": project_id,
        "repository_id": stable_id(repo.as_str()),
        "repository_name": repo.as_str(),
        "digest": a.digest.to_string(),
        "size": a.size,
        "icon": "",
        "push_time": rfc3339(a.push_time),
        "pull_time": NEVER,
        "extra_attrs": {},
        "annotations": a.manifest.annotations,
        "references": references,
        "tags": tags,
        "addition_links": {},
        "labels": [],
        "scan_overview": null,
        "accessories": null,
    })
}

fn name_filter(q: Option<&str>) -> Vec<(String, String, bool)> {
    q.map(parse_q).unwrap_or_default()
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(params): Path<Vec<(String, String)>>,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    let paging = Paging::parse(q.page.as_deref(), q.page_size.as_deref())?;
    let name = params.into_iter().find(|(k, _)| k == "project_name_or_id").map(|(_, v)| v).unwrap_or_default();
    let project = state.registry.project(&ProjectRef::Name(name)).await?;
    caller.require_in(&state, &project, (Res::Repository, Act::List)).await?;
    let filters = name_filter(q.q.as_deref());
    let repos: Vec<RepositoryInfo> = state
        .registry
        .repositories(&project.name)
        .await?
        .into_iter()
        .filter(|r| filters.iter().all(|(k, v, fuzzy)| k != "name" || q_matches(r.name.as_str(), v, *fuzzy)))
        .collect();
    let page = paging.page_slice(repos.len());
    let items: Vec<Value> = repos[page].iter().map(|r| repository_json(r, project.project_id)).collect();
    Ok(paging.respond_page(&format!("/projects/{}/repositories", project.name), "", repos.len(), &items))
}

/// `GET /repositories`: the repositories of every project the caller may
/// see.
pub async fn list_all(State(state): State<Arc<AppState>>, caller: Caller, Query(q): Query<ListQuery>) -> ApiResult {
    let paging = Paging::parse(q.page.as_deref(), q.page_size.as_deref())?;
    let projects = super::projects::visible(&state, &caller, state.registry.list_projects().await?).await?;
    let filters = name_filter(q.q.as_deref());
    let mut repos = Vec::new();
    for project in projects {
        if caller.require_in(&state, &project, (Res::Repository, Act::List)).await.is_err() {
            continue;
        }
        for r in state.registry.repositories(&project.name).await? {
            if filters.iter().all(|(k, v, fuzzy)| k != "name" || q_matches(r.name.as_str(), v, *fuzzy)) {
                repos.push((r, project.project_id));
            }
        }
    }
    let page = paging.page_slice(repos.len());
    let items: Vec<Value> = repos[page].iter().map(|(r, pid)| repository_json(r, *pid)).collect();
    Ok(paging.respond_page("/repositories", "", repos.len(), &items))
}

pub async fn get(State(state): State<Arc<AppState>>, caller: Caller, path: RepoPath) -> ApiResult {
    let project = path.require(&state, &caller, (Res::Repository, Act::Read)).await?;
    let repo = state.registry.repository(&path.repo).await?;
    Ok(Json(repository_json(&repo, project.project_id)).into_response())
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
    state.registry.delete_repository(&path.repo).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn list_artifacts(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    path: RepoPath,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    let paging = Paging::parse(q.page.as_deref(), q.page_size.as_deref())?;
    let project = path.require(&state, &caller, (Res::Artifact, Act::List)).await?;
    let with_tags = q.with_tag.as_deref() != Some("false");
    let filters = name_filter(q.q.as_deref());
    let artifacts: Vec<ArtifactInfo> = match state.registry.artifacts(&path.repo).await {
        Err(crate::service::ServiceError::NotFound(_)) => Vec::new(),
        other => other?,
    }
    .into_iter()
    .filter(|a| {
        filters.iter().all(|(k, v, fuzzy)| match k.as_str() {
            "digest" => q_matches(&a.digest.to_string(), v, *fuzzy),
            "type" => q_matches(a.kind(), v, *fuzzy),
            "tags" => a.tags.iter().any(|t| q_matches(&t.name, v, *fuzzy)),
            _ => true,
        })
    })
    .collect();
    let page = paging.page_slice(artifacts.len());
    let items: Vec<Value> =
        artifacts[page].iter().map(|a| artifact_json(a, &path.repo, project.project_id, with_tags)).collect();
    let base = format!("/projects/{}/repositories/{}/artifacts", project.name, encode_twice(&path.repo));
    Ok(paging.respond_page(&base, "", artifacts.len(), &items))
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
    let with_tags = q.with_tag.as_deref() != Some("false");
    Ok(Json(artifact_json(&artifact, &path.repo, project.project_id, with_tags)).into_response())
}

pub async fn delete_artifact(State(state): State<Arc<AppState>>, caller: Caller, path: RepoPath) -> ApiResult {
    path.require(&state, &caller, (Res::Artifact, Act::Delete)).await?;
    state.registry.delete_artifact(&path.repo, &path.reference()?).await?;
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
    state.registry.copy_artifact(&src, &reference, &path.repo).await?;
    let location =
        format!("{PREFIX}/projects/{}/repositories/{}/artifacts/{reference}", path.project, encode_twice(&path.repo));
    super::created(&location)
}

pub async fn list_tags(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    path: RepoPath,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    let paging = Paging::parse(q.page.as_deref(), q.page_size.as_deref())?;
    let project = path.require(&state, &caller, (Res::Tag, Act::List)).await?;
    let reference = path.reference()?;
    let artifact = state.registry.artifact(&path.repo, &reference).await?;
    let filters = name_filter(q.q.as_deref());
    let tags: Vec<&TagInfo> = artifact
        .tags
        .iter()
        .filter(|t| filters.iter().all(|(k, v, fuzzy)| k != "name" || q_matches(&t.name, v, *fuzzy)))
        .collect();
    let page = paging.page_slice(tags.len());
    let items: Vec<Value> = tags[page].iter().map(|t| tag_json(t, &path.repo)).collect();
    let base =
        format!("/projects/{}/repositories/{}/artifacts/{reference}/tags", project.name, encode_twice(&path.repo));
    Ok(paging.respond_page(&base, "", tags.len(), &items))
}

pub async fn create_tag(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    path: RepoPath,
    Body(body): Body<TagBody>,
) -> ApiResult {
    path.require(&state, &caller, (Res::Tag, Act::Create)).await?;
    state.registry.create_tag(&path.repo, &path.reference()?, &body.name).await?;
    Ok(StatusCode::CREATED.into_response())
}

pub async fn delete_tag(State(state): State<Arc<AppState>>, caller: Caller, path: RepoPath) -> ApiResult {
    path.require(&state, &caller, (Res::Tag, Act::Delete)).await?;
    let name = path.tag.clone().unwrap_or_default();
    state.registry.delete_tag(&path.repo, &path.reference()?, &name).await?;
    Ok(StatusCode::OK.into_response())
}

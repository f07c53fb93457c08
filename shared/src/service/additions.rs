//! An artifact's additions, as Harbor serves them beside the artifact:
//! an image's build history (from its config), and a Helm chart's
//! `values.yaml`, `README.md` and dependencies (from its chart archive).
//! Each is read from the stored blobs when asked for.

use std::io::Read;

use bytes::Bytes;

use crate::blob::keys as blob_keys;
use crate::oci::{Digest, Reference, RepoName};

use super::{Registry, ServiceError, ServiceResult};

/// The layer of a Helm chart pushed to an OCI registry.
pub const HELM_CHART_LAYER: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";

/// The largest config or chart archive read for an addition, and the
/// largest file taken out of an archive.
const MAX_READ: u64 = 64 * 1024 * 1024;
const MAX_FILE: u64 = 8 * 1024 * 1024;

/// What an addition answers: its media type and bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addition {
    pub content_type: &'static str,
    pub body: Bytes,
}

fn unsupported(name: &str, kind: &str) -> ServiceError {
    ServiceError::Invalid(format!("addition {name} isn't supported for an artifact of type {kind}"))
}

/// The files of a chart archive wanted for additions: the chart folder's
/// own `Chart.yaml`, `values.yaml`, `README.md` and `requirements.yaml`
/// (not those of its subcharts).
#[derive(Debug, Default)]
struct ChartFiles {
    chart: Option<String>,
    values: Option<String>,
    readme: Option<String>,
    requirements: Option<String>,
}

fn chart_files(archive: &[u8]) -> ServiceResult<ChartFiles> {
    let bad = |e: std::io::Error| ServiceError::Invalid(format!("the chart archive cannot be read: {e}"));
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    let mut files = ChartFiles::default();
    for entry in tar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let path = entry.path().map_err(bad)?.to_string_lossy().into_owned();
        // `<chart>/<file>`, at the top of the chart only.
        let Some((_, file)) = path.trim_start_matches("./").split_once('/') else { continue };
        let slot = match file {
            "Chart.yaml" => &mut files.chart,
            "values.yaml" => &mut files.values,
            "requirements.yaml" => &mut files.requirements,
            f if f.eq_ignore_ascii_case("readme.md") => &mut files.readme,
            _ => continue,
        };
        if entry.size() > MAX_FILE {
            return Err(ServiceError::Invalid(format!("{path} in the chart is larger than {MAX_FILE} bytes")));
        }
        let mut text = String::new();
        entry.by_ref().take(MAX_FILE).read_to_string(&mut text).map_err(bad)?;
        *slot = Some(text);
    }
    Ok(files)
}

/// A chart's dependencies as Harbor lists them: `name`, `version`,
/// `repository` of each, from `Chart.yaml` (apiVersion v2) or
/// `requirements.yaml` (v1).
fn dependencies(files: &ChartFiles) -> ServiceResult<serde_json::Value> {
    let mut out = Vec::new();
    for text in [&files.chart, &files.requirements].into_iter().flatten() {
        let docs = yaml_rust2::YamlLoader::load_from_str(text)
            .map_err(|e| ServiceError::Invalid(format!("the chart's YAML cannot be read: {e}")))?;
        let Some(deps) = docs.first().and_then(|d| d["dependencies"].as_vec()) else { continue };
        for d in deps {
            let field = |k: &str| d[k].as_str().map(str::to_owned).unwrap_or_default();
            out.push(serde_json::json!({"name": field("name"), "version": field("version"), "repository": field("repository")}));
        }
    }
    Ok(serde_json::Value::Array(out))
}

impl Registry {
    /// The addition `name` of an artifact; `Invalid` when its type has no
    /// such addition, `NotFound` when a chart lacks the file.
    pub async fn addition(&self, repo: &RepoName, reference: &Reference, name: &str) -> ServiceResult<Addition> {
        let artifact = self.artifact(repo, reference).await?;
        let kind = artifact.kind();
        match (name, kind) {
            ("build_history", "IMAGE") if artifact.references().is_empty() => {
                let config = artifact.manifest.config.as_ref().ok_or_else(|| unsupported(name, kind))?;
                let bytes = self.read_limited(&config.digest, config.size).await?;
                let parsed: serde_json::Value = serde_json::from_slice(&bytes)
                    .map_err(|_| ServiceError::Invalid("the image config is not JSON".to_owned()))?;
                let history = parsed.get("history").cloned().unwrap_or_else(|| serde_json::json!([]));
                // Writing a JSON value cannot fail.
                let body = serde_json::to_vec(&history).unwrap_or_default();
                Ok(Addition { content_type: "application/json; charset=utf-8", body: Bytes::from(body) })
            }
            ("values.yaml" | "readme.md" | "dependencies", "CHART") => {
                let layer = artifact
                    .manifest
                    .layers
                    .iter()
                    .find(|l| l.media_type == HELM_CHART_LAYER)
                    .ok_or_else(|| ServiceError::NotFound("the chart has no chart archive layer".to_owned()))?;
                let archive = self.read_limited(&layer.digest, layer.size).await?;
                let files = chart_files(&archive)?;
                let missing = |f: &str| ServiceError::NotFound(format!("the chart has no {f}"));
                let (content_type, body) = match name {
                    "values.yaml" => {
                        ("text/plain; charset=utf-8", files.values.ok_or_else(|| missing(name))?.into_bytes())
                    }
                    "readme.md" => {
                        ("text/markdown; charset=utf-8", files.readme.ok_or_else(|| missing(name))?.into_bytes())
                    }
                    _ => (
                        "application/json; charset=utf-8",
                        serde_json::to_vec(&dependencies(&files)?).unwrap_or_default(),
                    ),
                };
                Ok(Addition { content_type, body: Bytes::from(body) })
            }
            _ => Err(unsupported(name, kind)),
        }
    }

    /// A blob's bytes, refusing one larger than [`MAX_READ`].
    async fn read_limited(&self, digest: &Digest, size: u64) -> ServiceResult<Bytes> {
        if size > MAX_READ {
            return Err(ServiceError::Invalid(format!("{digest} is too large to read ({size} bytes)")));
        }
        Ok(self.blobs.get_bytes(&blob_keys::blob(digest)).await?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A gzipped tar of `files` (path, text).
    pub(crate) fn archive(files: &[(&str, &str)]) -> Vec<u8> {
        let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
        for (path, text) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(text.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, path, text.as_bytes()).unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn chart_files_and_dependencies() {
        let chart = "apiVersion: v2\nname: web\nversion: 1.2.3\ndependencies:\n  - name: redis\n    version: 17.0.0\n    repository: oci://registry/charts\n";
        let a = archive(&[
            ("web/Chart.yaml", chart),
            ("web/values.yaml", "replicas: 2\n"),
            ("web/README.md", "# web\n"),
            ("web/charts/redis/values.yaml", "sub: true\n"),
        ]);
        let files = chart_files(&a).unwrap();
        assert_eq!(files.values.as_deref(), Some("replicas: 2\n"));
        assert_eq!(files.readme.as_deref(), Some("# web\n"));
        assert_eq!(
            dependencies(&files).unwrap(),
            serde_json::json!([{"name": "redis", "version": "17.0.0", "repository": "oci://registry/charts"}])
        );
        assert!(chart_files(b"not gzip").is_err());
    }
}

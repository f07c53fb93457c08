//! Manifest validation for pushes.
//!
//! The registry stores and serves the exact bytes a client pushed (the
//! digest is over those bytes), so this module only reads manifests: it
//! checks them and extracts what the registry needs (referenced blobs,
//! children, subject, artifact type). Unknown fields are ignored so that
//! newer spec revisions keep working.

use std::collections::BTreeMap;

use serde::Deserialize as _;
use serde_json::{Map, Value};

use super::digest::Digest;
use super::media;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(rename = "os.version", default, skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    #[serde(rename = "os.features", default, skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKind {
    Image,
    Index,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The effective media type, in canonical spelling.
    pub media_type: String,
    pub kind: ManifestKind,
    /// Images only.
    pub config: Option<Descriptor>,
    /// Images only; empty for artifacts that carry no layers.
    pub layers: Vec<Descriptor>,
    /// Indexes only.
    pub manifests: Vec<Descriptor>,
    pub subject: Option<Descriptor>,
    /// The manifest's own `artifactType` field.
    pub artifact_type: Option<String>,
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ManifestError(pub String);

type Object = Map<String, Value>;

fn fail<T>(message: impl Into<String>) -> Result<T, ManifestError> {
    Err(ManifestError(message.into()))
}

impl Manifest {
    /// Parses and validates manifest bytes as pushed. `content_type` is the
    /// request's Content-Type (None when absent).
    pub fn parse(content_type: Option<&str>, bytes: &[u8]) -> Result<Self, ManifestError> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| ManifestError(format!("manifest is not valid JSON: {e}")))?;
        let Value::Object(obj) = value else {
            return fail(format!("manifest must be a JSON object, not {}", json_kind(&value)));
        };
        check_schema_version(&obj)?;
        let media_type = effective_media_type(content_type, &obj)?;
        let artifact_type = optional_media_type(&obj, "", "artifactType")?;
        let subject = field(&obj, "subject").map(|v| descriptor(v, "subject")).transpose()?;
        let annotations = annotations(&obj, "")?;

        let mut manifest = Self {
            media_type: media_type.to_owned(),
            kind: ManifestKind::Image,
            config: None,
            layers: Vec::new(),
            manifests: Vec::new(),
            subject,
            artifact_type,
            annotations,
        };
        if media::is_index(media_type) {
            manifest.kind = ManifestKind::Index;
            for forbidden in ["config", "layers"] {
                if field(&obj, forbidden).is_some() {
                    return fail(format!("{forbidden} is not allowed in an index"));
                }
            }
            let Some(manifests) = field(&obj, "manifests") else {
                return fail("manifests is required in an index");
            };
            manifest.manifests = descriptors(manifests, "manifests")?;
        } else {
            if field(&obj, "manifests").is_some() {
                return fail("manifests is not allowed in an image manifest");
            }
            let Some(config) = field(&obj, "config") else {
                return fail("config is required in an image manifest");
            };
            let config = descriptor(config, "config")?;
            manifest.layers = match field(&obj, "layers") {
                Some(layers) => descriptors(layers, "layers")?,
                None if media_type == media::DOCKER_MANIFEST => {
                    return fail("layers is required in a Docker image manifest");
                }
                // OCI 1.1 artifacts may be nothing but a typed config; the
                // spec requires `layers`, but some artifact tools omit it.
                None if manifest.artifact_type.is_some() || config.media_type == media::OCI_EMPTY => Vec::new(),
                None => {
                    return fail(
                        "layers is required in an image manifest \
                         (only artifacts with artifactType or an empty config may omit it)",
                    );
                }
            };
            manifest.config = Some(config);
        }
        Ok(manifest)
    }

    /// The artifact type a referrers response reports: `artifactType`, else
    /// (images) config.mediaType.
    pub fn referrer_artifact_type(&self) -> Option<&str> {
        self.artifact_type.as_deref().or_else(|| self.config.as_ref().map(|config| config.media_type.as_str()))
    }

    /// Blobs the repository must hold for this manifest to be accepted:
    /// config + layers, except non-distributable layers (images); nothing
    /// for indexes.
    pub fn required_blobs(&self) -> Vec<&Descriptor> {
        self.config
            .iter()
            .chain(self.layers.iter().filter(|layer| !media::is_nondistributable(&layer.media_type)))
            .collect()
    }

    /// Child manifests (indexes).
    pub fn child_manifests(&self) -> &[Descriptor] {
        &self.manifests
    }

    /// For content negotiation of an index: the child for
    /// `os`/`architecture` (first match), if any.
    pub fn platform_child(&self, os: &str, architecture: &str) -> Option<&Descriptor> {
        self.manifests
            .iter()
            .find(|child| child.platform.as_ref().is_some_and(|p| p.os == os && p.architecture == architecture))
    }
}

/// A field's value, treating an explicit `null` like an absent field: Go
/// clients serialise nil slices and pointers that way.
fn field<'a>(obj: &'a Object, name: &str) -> Option<&'a Value> {
    obj.get(name).filter(|v| !v.is_null())
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() { name.to_owned() } else { format!("{path}.{name}") }
}

fn check_schema_version(obj: &Object) -> Result<(), ManifestError> {
    match field(obj, "schemaVersion") {
        None => fail("schemaVersion is required"),
        Some(v) => match v.as_u64() {
            Some(2) => Ok(()),
            Some(1) => fail("schema 1 manifests are not supported; push a schema 2 or OCI manifest"),
            _ => fail(format!("schemaVersion must be 2, got {v}")),
        },
    }
}

fn effective_media_type(content_type: Option<&str>, obj: &Object) -> Result<&'static str, ManifestError> {
    let declared = match field(obj, "mediaType") {
        None => None,
        Some(Value::String(s)) if s.trim().is_empty() => {
            return fail("mediaType must not be empty");
        }
        Some(Value::String(s)) => Some(s.as_str()),
        Some(other) => {
            return fail(format!("mediaType must be a string, not {}", json_kind(other)));
        }
    };
    // Clients that do not know the type send a generic Content-Type (or
    // none); that says nothing about the manifest, so it is not compared.
    let header = content_type.map(media::essence).filter(|h| {
        !(h.is_empty()
            || h.eq_ignore_ascii_case("application/json")
            || h.eq_ignore_ascii_case("application/octet-stream"))
    });
    if let (Some(declared), Some(header)) = (declared, header)
        && !declared.trim().eq_ignore_ascii_case(header)
    {
        return fail(format!("mediaType {declared:?} does not match the Content-Type {header:?}"));
    }
    let Some(claimed) = declared.or(header) else {
        // Neither says: the fields decide, and OCI is the format that allows
        // an absent mediaType.
        return if field(obj, "manifests").is_some() {
            Ok(media::OCI_INDEX)
        } else if field(obj, "config").is_some() {
            Ok(media::OCI_MANIFEST)
        } else {
            fail("cannot tell the manifest type: no mediaType, and neither config nor manifests")
        };
    };
    if let Some(canonical) = media::canonical_manifest_type(claimed) {
        Ok(canonical)
    } else if media::is_docker_schema1(claimed) {
        fail("schema 1 manifests are not supported; push a schema 2 or OCI manifest")
    } else {
        fail(format!("unsupported manifest media type {claimed:?}"))
    }
}

/// `parent` is the path of `obj` in the manifest, for error messages.
fn optional_media_type(obj: &Object, parent: &str, name: &str) -> Result<Option<String>, ManifestError> {
    let path = join(parent, name);
    match field(obj, name) {
        None => Ok(None),
        Some(Value::String(s)) if media::is_valid_media_type(s) => Ok(Some(s.clone())),
        Some(Value::String(s)) => fail(format!("{path}: invalid media type {s:?}")),
        Some(other) => fail(format!("{path} must be a string, not {}", json_kind(other))),
    }
}

fn annotations(obj: &Object, parent: &str) -> Result<BTreeMap<String, String>, ManifestError> {
    let path = join(parent, "annotations");
    let Some(value) = field(obj, "annotations") else {
        return Ok(BTreeMap::new());
    };
    let Value::Object(map) = value else {
        return fail(format!("{path} must be an object, not {}", json_kind(value)));
    };
    map.iter()
        .map(|(key, value)| match value {
            Value::String(s) => Ok((key.clone(), s.clone())),
            other => fail(format!("{path}[{key:?}] must be a string, not {}", json_kind(other))),
        })
        .collect()
}

fn descriptors(value: &Value, path: &str) -> Result<Vec<Descriptor>, ManifestError> {
    let Value::Array(items) = value else {
        return fail(format!("{path} must be an array, not {}", json_kind(value)));
    };
    items.iter().enumerate().map(|(i, item)| descriptor(item, &format!("{path}[{i}]"))).collect()
}

fn descriptor(value: &Value, path: &str) -> Result<Descriptor, ManifestError> {
    let Value::Object(obj) = value else {
        return fail(format!("{path} must be an object, not {}", json_kind(value)));
    };
    let media_type = match field(obj, "mediaType") {
        None => return fail(format!("{path}.mediaType is required")),
        Some(Value::String(s)) if media::is_valid_media_type(s) => s.clone(),
        Some(Value::String(s)) => {
            return fail(format!("{path}.mediaType: invalid media type {s:?}"));
        }
        Some(other) => {
            return fail(format!("{path}.mediaType must be a string, not {}", json_kind(other)));
        }
    };
    let digest = match field(obj, "digest") {
        None => return fail(format!("{path}.digest is required")),
        Some(Value::String(s)) => s.parse::<Digest>().map_err(|e| ManifestError(format!("{path}.digest: {e}")))?,
        Some(other) => {
            return fail(format!("{path}.digest must be a string, not {}", json_kind(other)));
        }
    };
    let size = match field(obj, "size") {
        None => return fail(format!("{path}.size is required")),
        Some(v) => match v.as_u64() {
            Some(size) => size,
            None => return fail(format!("{path}.size must be a non-negative integer, got {v}")),
        },
    };
    let urls = match field(obj, "urls") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => Ok(s.clone()),
                other => fail(format!("{path}.urls[{i}] must be a string, not {}", json_kind(other))),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return fail(format!("{path}.urls must be an array, not {}", json_kind(other)));
        }
    };
    let platform = field(obj, "platform")
        .map(|v| Platform::deserialize(v).map_err(|e| ManifestError(format!("{path}.platform: {e}"))))
        .transpose()?;
    Ok(Descriptor {
        media_type,
        digest,
        size,
        artifact_type: optional_media_type(obj, path, "artifactType")?,
        annotations: annotations(obj, path)?,
        urls,
        platform,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    /// The digest of `{}`, the OCI empty descriptor's content.
    const EMPTY_DIGEST: &str = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

    fn digest(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    fn bytes(value: &Value) -> Vec<u8> {
        serde_json::to_vec(value).unwrap()
    }

    fn oci_image() -> Value {
        json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_MANIFEST,
            "config": { "mediaType": media::OCI_CONFIG, "digest": digest('c'), "size": 1470 },
            "layers": [
                { "mediaType": LAYER_GZIP, "digest": digest('1'), "size": 3_370_706 },
                { "mediaType": LAYER_GZIP, "digest": digest('2'), "size": 32 }
            ],
            "annotations": { "org.opencontainers.image.created": "2024-05-01T00:00:00Z" }
        })
    }

    fn oci_artifact() -> Value {
        json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_MANIFEST,
            "artifactType": "application/vnd.example.sbom.v1+json",
            "config": {
                "mediaType": media::OCI_EMPTY, "digest": EMPTY_DIGEST, "size": 2, "data": "e30="
            },
            "layers": [
                {
                    "mediaType": "application/spdx+json",
                    "digest": digest('5'),
                    "size": 812,
                    "annotations": { "org.opencontainers.image.title": "sbom.spdx.json" }
                }
            ],
            "subject": { "mediaType": media::OCI_MANIFEST, "digest": digest('a'), "size": 1024 },
            "annotations": { "org.opencontainers.image.created": "2024-05-01T00:00:00Z" }
        })
    }

    fn oci_index() -> Value {
        json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_INDEX,
            "manifests": [
                {
                    "mediaType": media::OCI_MANIFEST, "digest": digest('a'), "size": 1024,
                    "platform": { "architecture": "amd64", "os": "linux" }
                },
                {
                    "mediaType": media::OCI_MANIFEST, "digest": digest('b'), "size": 1025,
                    "platform": { "architecture": "arm64", "os": "linux", "variant": "v8" }
                },
                {
                    "mediaType": media::OCI_MANIFEST, "digest": digest('d'), "size": 1026,
                    "platform": {
                        "architecture": "amd64", "os": "windows",
                        "os.version": "10.0.20348.2402", "os.features": ["win32k"]
                    }
                },
                {
                    "mediaType": media::OCI_MANIFEST, "digest": digest('e'), "size": 840,
                    "annotations": { "vnd.docker.reference.type": "attestation-manifest" },
                    "platform": { "architecture": "unknown", "os": "unknown" }
                }
            ]
        })
    }

    fn docker_image() -> Value {
        json!({
            "schemaVersion": 2,
            "mediaType": media::DOCKER_MANIFEST,
            "config": { "mediaType": media::DOCKER_CONFIG, "digest": digest('c'), "size": 7023 },
            "layers": [
                { "mediaType": DOCKER_LAYER, "digest": digest('1'), "size": 32654 },
                {
                    "mediaType": media::DOCKER_FOREIGN_LAYER,
                    "digest": digest('f'),
                    "size": 1_000_000,
                    "urls": ["https://mcr.microsoft.com/v2/windows/servercore/blobs/sha256:ff"]
                },
                { "mediaType": DOCKER_LAYER, "digest": digest('3'), "size": 73109 }
            ]
        })
    }

    fn docker_list() -> Value {
        json!({
            "schemaVersion": 2,
            "mediaType": media::DOCKER_MANIFEST_LIST,
            "manifests": [
                {
                    "mediaType": media::DOCKER_MANIFEST, "digest": digest('a'), "size": 7143,
                    "platform": { "architecture": "ppc64le", "os": "linux" }
                },
                {
                    "mediaType": media::DOCKER_MANIFEST, "digest": digest('b'), "size": 7682,
                    "platform": { "architecture": "amd64", "os": "linux", "features": ["sse4"] }
                }
            ]
        })
    }

    fn schema1() -> Value {
        json!({
            "schemaVersion": 1,
            "name": "library/hello-world",
            "tag": "latest",
            "architecture": "amd64",
            "fsLayers": [{ "blobSum": digest('1') }],
            "history": [{ "v1Compatibility": "{}" }]
        })
    }

    /// Applies `edit` to a copy of `base`'s object.
    fn with(base: Value, edit: impl FnOnce(&mut Object)) -> Value {
        let mut value = base;
        edit(value.as_object_mut().unwrap());
        value
    }

    #[test]
    fn accepts_valid_manifests() {
        let oci = Some(media::OCI_MANIFEST);
        let idx = Some(media::OCI_INDEX);
        let cases: Vec<(&str, Option<&str>, Value, &str, ManifestKind)> = vec![
            ("oci image", oci, oci_image(), media::OCI_MANIFEST, ManifestKind::Image),
            ("oci image, no content type", None, oci_image(), media::OCI_MANIFEST, ManifestKind::Image),
            (
                "oci image, generic content type",
                Some("application/json"),
                oci_image(),
                media::OCI_MANIFEST,
                ManifestKind::Image,
            ),
            (
                "oci image, octet-stream",
                Some("application/octet-stream"),
                oci_image(),
                media::OCI_MANIFEST,
                ManifestKind::Image,
            ),
            ("oci image, empty content type", Some(""), oci_image(), media::OCI_MANIFEST, ManifestKind::Image),
            (
                "content type with parameters",
                Some("application/vnd.oci.image.manifest.v1+json; charset=utf-8"),
                oci_image(),
                media::OCI_MANIFEST,
                ManifestKind::Image,
            ),
            ("oci artifact", oci, oci_artifact(), media::OCI_MANIFEST, ManifestKind::Image),
            ("oci index", idx, oci_index(), media::OCI_INDEX, ManifestKind::Index),
            ("docker image", Some(media::DOCKER_MANIFEST), docker_image(), media::DOCKER_MANIFEST, ManifestKind::Image),
            (
                "docker list",
                Some(media::DOCKER_MANIFEST_LIST),
                docker_list(),
                media::DOCKER_MANIFEST_LIST,
                ManifestKind::Index,
            ),
            (
                "no mediaType field: content type decides",
                idx,
                with(oci_index(), |o| {
                    o.remove("mediaType");
                }),
                media::OCI_INDEX,
                ManifestKind::Index,
            ),
            (
                "no mediaType anywhere: manifests means index",
                None,
                with(oci_index(), |o| {
                    o.remove("mediaType");
                }),
                media::OCI_INDEX,
                ManifestKind::Index,
            ),
            (
                "no mediaType anywhere: config means image",
                Some("application/json"),
                with(oci_image(), |o| {
                    o.remove("mediaType");
                }),
                media::OCI_MANIFEST,
                ManifestKind::Image,
            ),
            (
                "mediaType in odd case is canonicalised",
                oci,
                with(oci_image(), |o| {
                    o.insert("mediaType".into(), json!("Application/VND.oci.image.manifest.v1+json"));
                }),
                media::OCI_MANIFEST,
                ManifestKind::Image,
            ),
            (
                "artifact without layers",
                oci,
                with(oci_artifact(), |o| {
                    o.remove("layers");
                }),
                media::OCI_MANIFEST,
                ManifestKind::Image,
            ),
            (
                "empty config without layers or artifactType",
                oci,
                with(oci_artifact(), |o| {
                    o.remove("layers");
                    o.remove("artifactType");
                }),
                media::OCI_MANIFEST,
                ManifestKind::Image,
            ),
            (
                "empty layers array",
                oci,
                with(oci_image(), |o| {
                    o.insert("layers".into(), json!([]));
                }),
                media::OCI_MANIFEST,
                ManifestKind::Image,
            ),
            (
                "empty index",
                idx,
                with(oci_index(), |o| {
                    o.insert("manifests".into(), json!([]));
                }),
                media::OCI_INDEX,
                ManifestKind::Index,
            ),
            (
                "index with artifactType and subject",
                idx,
                with(oci_index(), |o| {
                    o.insert("artifactType".into(), json!("application/vnd.example.bundle"));
                    o.insert(
                        "subject".into(),
                        json!({ "mediaType": media::OCI_INDEX, "digest": digest('9'), "size": 10 }),
                    );
                }),
                media::OCI_INDEX,
                ManifestKind::Index,
            ),
            (
                "unknown fields and null optionals are ignored",
                oci,
                with(oci_image(), |o| {
                    o.insert("x-future".into(), json!({ "anything": [1, 2] }));
                    o.insert("subject".into(), Value::Null);
                    o.insert("annotations".into(), Value::Null);
                }),
                media::OCI_MANIFEST,
                ManifestKind::Image,
            ),
            (
                "sha512 digests",
                oci,
                with(oci_image(), |o| {
                    let sha512 = format!("sha512:{}", "0".repeat(128));
                    let layer = json!({ "mediaType": LAYER_GZIP, "digest": sha512, "size": 0 });
                    o.insert("layers".into(), json!([layer]));
                }),
                media::OCI_MANIFEST,
                ManifestKind::Image,
            ),
        ];
        for (name, content_type, value, media_type, kind) in cases {
            let manifest = Manifest::parse(content_type, &bytes(&value)).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(manifest.media_type, media_type, "{name}");
            assert_eq!(manifest.kind, kind, "{name}");
        }
    }

    #[test]
    fn rejects_invalid_manifests() {
        let oci = Some(media::OCI_MANIFEST);
        let idx = Some(media::OCI_INDEX);
        let set_layer = |field: &'static str, value: Value| {
            with(oci_image(), move |o| {
                o["layers"][1].as_object_mut().unwrap().insert(field.into(), value);
            })
        };
        let cases: Vec<(&str, Option<&str>, Vec<u8>, &str)> = vec![
            ("empty body", oci, Vec::new(), "manifest is not valid JSON"),
            ("not JSON", oci, b"FROM alpine\n".to_vec(), "manifest is not valid JSON"),
            ("truncated JSON", oci, b"{\"schemaVersion\": 2,".to_vec(), "manifest is not valid JSON"),
            ("JSON array", oci, bytes(&json!([oci_image()])), "manifest must be a JSON object, not an array"),
            ("JSON string", oci, bytes(&json!("manifest")), "manifest must be a JSON object, not a string"),
            ("schema 1", None, bytes(&schema1()), "schema 1 manifests are not supported"),
            (
                "schema 1 signed",
                Some(media::DOCKER_SCHEMA1_SIGNED),
                bytes(&schema1()),
                "schema 1 manifests are not supported",
            ),
            (
                "schema 1 media type with schemaVersion 2",
                None,
                bytes(&with(docker_image(), |o| {
                    o.insert("mediaType".into(), json!(media::DOCKER_SCHEMA1));
                })),
                "schema 1 manifests are not supported",
            ),
            (
                "missing schemaVersion",
                oci,
                bytes(&with(oci_image(), |o| {
                    o.remove("schemaVersion");
                })),
                "schemaVersion is required",
            ),
            (
                "schemaVersion 3",
                oci,
                bytes(&with(oci_image(), |o| {
                    o.insert("schemaVersion".into(), json!(3));
                })),
                "schemaVersion must be 2, got 3",
            ),
            (
                "schemaVersion string",
                oci,
                bytes(&with(oci_image(), |o| {
                    o.insert("schemaVersion".into(), json!("2"));
                })),
                "schemaVersion must be 2, got \"2\"",
            ),
            (
                "Content-Type disagrees with mediaType",
                Some(media::DOCKER_MANIFEST),
                bytes(&oci_image()),
                "mediaType \"application/vnd.oci.image.manifest.v1+json\" does not match \
                 the Content-Type \"application/vnd.docker.distribution.manifest.v2+json\"",
            ),
            ("index pushed as image", oci, bytes(&oci_index()), "does not match the Content-Type"),
            (
                "mediaType not a string",
                oci,
                bytes(&with(oci_image(), |o| {
                    o.insert("mediaType".into(), json!(7));
                })),
                "mediaType must be a string, not a number",
            ),
            (
                "mediaType empty",
                None,
                bytes(&with(oci_image(), |o| {
                    o.insert("mediaType".into(), json!(""));
                })),
                "mediaType must not be empty",
            ),
            (
                "unsupported mediaType",
                None,
                bytes(&with(oci_image(), |o| {
                    o.insert("mediaType".into(), json!("application/vnd.example.manifest+json"));
                })),
                "unsupported manifest media type \"application/vnd.example.manifest+json\"",
            ),
            (
                "unsupported Content-Type without mediaType",
                Some("text/plain"),
                bytes(&with(oci_image(), |o| {
                    o.remove("mediaType");
                })),
                "unsupported manifest media type \"text/plain\"",
            ),
            (
                "type undetectable",
                None,
                bytes(&json!({ "schemaVersion": 2, "layers": [] })),
                "cannot tell the manifest type",
            ),
            (
                "missing config",
                oci,
                bytes(&with(oci_image(), |o| {
                    o.remove("config");
                })),
                "config is required in an image manifest",
            ),
            (
                "null config",
                oci,
                bytes(&with(oci_image(), |o| {
                    o.insert("config".into(), Value::Null);
                })),
                "config is required in an image manifest",
            ),
            (
                "config not an object",
                oci,
                bytes(&with(oci_image(), |o| {
                    o.insert("config".into(), json!(digest('c')));
                })),
                "config must be an object, not a string",
            ),
            (
                "image with manifests",
                oci,
                bytes(&with(oci_image(), |o| {
                    o.insert("manifests".into(), json!([]));
                })),
                "manifests is not allowed in an image manifest",
            ),
            (
                "oci image without layers",
                oci,
                bytes(&with(oci_image(), |o| {
                    o.remove("layers");
                })),
                "layers is required in an image manifest",
            ),
            (
                "docker image without layers",
                Some(media::DOCKER_MANIFEST),
                bytes(&with(docker_image(), |o| {
                    o.remove("layers");
                })),
                "layers is required in a Docker image manifest",
            ),
            (
                "layers not an array",
                oci,
                bytes(&with(oci_image(), |o| {
                    o.insert("layers".into(), json!({}));
                })),
                "layers must be an array, not an object",
            ),
            (
                "layer not an object",
                oci,
                bytes(&with(oci_image(), |o| {
                    o.insert("layers".into(), json!([42]));
                })),
                "layers[0] must be an object, not a number",
            ),
            (
                "index with layers",
                idx,
                bytes(&with(oci_index(), |o| {
                    o.insert("layers".into(), json!([]));
                })),
                "layers is not allowed in an index",
            ),
            (
                "index with config",
                idx,
                bytes(&with(oci_index(), |o| {
                    o.insert(
                        "config".into(),
                        json!({ "mediaType": media::OCI_CONFIG, "digest": digest('c'), "size": 1 }),
                    );
                })),
                "config is not allowed in an index",
            ),
            (
                "index without manifests",
                idx,
                bytes(&with(oci_index(), |o| {
                    o.remove("manifests");
                })),
                "manifests is required in an index",
            ),
            (
                "docker list without manifests",
                Some(media::DOCKER_MANIFEST_LIST),
                bytes(&with(docker_list(), |o| {
                    o.remove("manifests");
                })),
                "manifests is required in an index",
            ),
            (
                "bad digest in a layer",
                oci,
                bytes(&set_layer("digest", json!("sha256:xyz"))),
                "layers[1].digest: invalid digest \"sha256:xyz\"",
            ),
            (
                "digest with unknown algorithm",
                oci,
                bytes(&set_layer("digest", json!("md5:d41d8cd98f00b204e9800998ecf8427e"))),
                "layers[1].digest: invalid digest",
            ),
            (
                "digest not a string",
                oci,
                bytes(&set_layer("digest", json!(12))),
                "layers[1].digest must be a string, not a number",
            ),
            (
                "missing digest",
                oci,
                bytes(&with(oci_image(), |o| {
                    o["layers"][0].as_object_mut().unwrap().remove("digest");
                })),
                "layers[0].digest is required",
            ),
            (
                "negative size",
                oci,
                bytes(&set_layer("size", json!(-1))),
                "layers[1].size must be a non-negative integer, got -1",
            ),
            (
                "fractional size",
                oci,
                bytes(&set_layer("size", json!(1.5))),
                "layers[1].size must be a non-negative integer, got 1.5",
            ),
            (
                "size as string",
                oci,
                bytes(&set_layer("size", json!("32"))),
                "layers[1].size must be a non-negative integer, got \"32\"",
            ),
            (
                "missing size",
                oci,
                bytes(&with(oci_image(), |o| {
                    o["config"].as_object_mut().unwrap().remove("size");
                })),
                "config.size is required",
            ),
            (
                "missing descriptor mediaType",
                oci,
                bytes(&with(oci_image(), |o| {
                    o["config"].as_object_mut().unwrap().remove("mediaType");
                })),
                "config.mediaType is required",
            ),
            (
                "descriptor mediaType without subtype",
                oci,
                bytes(&set_layer("mediaType", json!("tar"))),
                "layers[1].mediaType: invalid media type \"tar\"",
            ),
            (
                "descriptor mediaType empty",
                oci,
                bytes(&set_layer("mediaType", json!(""))),
                "layers[1].mediaType: invalid media type \"\"",
            ),
            (
                "descriptor artifactType invalid",
                oci,
                bytes(&set_layer("artifactType", json!("nope"))),
                "layers[1].artifactType: invalid media type \"nope\"",
            ),
            (
                "descriptor annotation not a string",
                oci,
                bytes(&set_layer("annotations", json!({ "n": 1 }))),
                "layers[1].annotations[\"n\"] must be a string, not a number",
            ),
            (
                "descriptor urls not strings",
                oci,
                bytes(&set_layer("urls", json!([true]))),
                "layers[1].urls[0] must be a string, not a boolean",
            ),
            (
                "top-level artifactType invalid",
                oci,
                bytes(&with(oci_artifact(), |o| {
                    o.insert("artifactType".into(), json!("sbom"));
                })),
                "artifactType: invalid media type \"sbom\"",
            ),
            (
                "top-level artifactType not a string",
                oci,
                bytes(&with(oci_artifact(), |o| {
                    o.insert("artifactType".into(), json!(["a/b"]));
                })),
                "artifactType must be a string, not an array",
            ),
            (
                "top-level annotations not an object",
                oci,
                bytes(&with(oci_image(), |o| {
                    o.insert("annotations".into(), json!(["a"]));
                })),
                "annotations must be an object, not an array",
            ),
            (
                "top-level annotation value not a string",
                oci,
                bytes(&with(oci_image(), |o| {
                    o.insert("annotations".into(), json!({ "org.opencontainers.image.revision": 3 }));
                })),
                "annotations[\"org.opencontainers.image.revision\"] must be a string",
            ),
            (
                "subject with bad digest",
                oci,
                bytes(&with(oci_artifact(), |o| {
                    o["subject"]["digest"] = json!("sha256:1234");
                })),
                "subject.digest: invalid digest \"sha256:1234\"",
            ),
            (
                "subject not an object",
                oci,
                bytes(&with(oci_artifact(), |o| {
                    o.insert("subject".into(), json!(digest('a')));
                })),
                "subject must be an object, not a string",
            ),
            (
                "platform missing os",
                idx,
                bytes(&with(oci_index(), |o| {
                    o["manifests"][1]["platform"] = json!({ "architecture": "arm64" });
                })),
                "manifests[1].platform: missing field `os`",
            ),
            (
                "bad child digest",
                idx,
                bytes(&with(oci_index(), |o| {
                    o["manifests"][3]["digest"] = json!("sha256:");
                })),
                "manifests[3].digest: invalid digest \"sha256:\"",
            ),
        ];
        for (name, content_type, body, expected) in cases {
            match Manifest::parse(content_type, &body) {
                Err(ManifestError(message)) => {
                    assert!(message.contains(expected), "{name}: {message:?} lacks {expected:?}")
                }
                Ok(manifest) => panic!("{name}: accepted as {manifest:?}"),
            }
        }
    }

    #[test]
    fn reads_oci_image() {
        let manifest = Manifest::parse(Some(media::OCI_MANIFEST), &bytes(&oci_image())).unwrap();
        let config = manifest.config.as_ref().unwrap();
        assert_eq!(config.media_type, media::OCI_CONFIG);
        assert_eq!(config.size, 1470);
        assert_eq!(manifest.layers.len(), 2);
        assert_eq!(manifest.layers[0].digest.to_string(), digest('1'));
        assert_eq!(manifest.layers[0].size, 3_370_706);
        assert!(manifest.manifests.is_empty());
        assert!(manifest.child_manifests().is_empty());
        assert_eq!(manifest.subject, None);
        assert_eq!(manifest.artifact_type, None);
        assert_eq!(
            manifest.annotations.get("org.opencontainers.image.created").map(String::as_str),
            Some("2024-05-01T00:00:00Z")
        );
        let required: Vec<String> = manifest.required_blobs().iter().map(|d| d.digest.to_string()).collect();
        assert_eq!(required, [digest('c'), digest('1'), digest('2')]);
        assert_eq!(manifest.referrer_artifact_type(), Some(media::OCI_CONFIG));
    }

    #[test]
    fn reads_oci_artifact() {
        let manifest = Manifest::parse(Some(media::OCI_MANIFEST), &bytes(&oci_artifact())).unwrap();
        assert_eq!(manifest.artifact_type.as_deref(), Some("application/vnd.example.sbom.v1+json"));
        assert_eq!(manifest.referrer_artifact_type(), Some("application/vnd.example.sbom.v1+json"));
        let subject = manifest.subject.as_ref().unwrap();
        assert_eq!(subject.digest.to_string(), digest('a'));
        assert_eq!(subject.media_type, media::OCI_MANIFEST);
        assert_eq!(manifest.config.as_ref().unwrap().digest.to_string(), EMPTY_DIGEST);
        assert_eq!(
            manifest.layers[0].annotations.get("org.opencontainers.image.title").map(String::as_str),
            Some("sbom.spdx.json")
        );
        // The empty config is a real blob clients push, so it is required too.
        assert_eq!(manifest.required_blobs().len(), 2);
    }

    #[test]
    fn referrer_artifact_type_falls_back_to_config() {
        let without = with(oci_artifact(), |o| {
            o.remove("artifactType");
            o["config"] = json!({
                "mediaType": "application/vnd.cncf.helm.config.v1+json",
                "digest": digest('c'),
                "size": 10
            });
        });
        let manifest = Manifest::parse(None, &bytes(&without)).unwrap();
        assert_eq!(manifest.referrer_artifact_type(), Some("application/vnd.cncf.helm.config.v1+json"));

        let index = Manifest::parse(None, &bytes(&oci_index())).unwrap();
        assert_eq!(index.referrer_artifact_type(), None);
        let typed_index = with(oci_index(), |o| {
            o.insert("artifactType".into(), json!("application/vnd.example.bundle"));
        });
        let index = Manifest::parse(None, &bytes(&typed_index)).unwrap();
        assert_eq!(index.referrer_artifact_type(), Some("application/vnd.example.bundle"));
    }

    #[test]
    fn docker_foreign_layers_are_not_required() {
        let manifest = Manifest::parse(Some(media::DOCKER_MANIFEST), &bytes(&docker_image())).unwrap();
        assert_eq!(manifest.layers.len(), 3);
        assert_eq!(manifest.layers[1].urls.len(), 1);
        let required: Vec<String> = manifest.required_blobs().iter().map(|d| d.digest.to_string()).collect();
        assert_eq!(required, [digest('c'), digest('1'), digest('3')]);
    }

    #[test]
    fn oci_nondistributable_layers_are_not_required() {
        let value = with(oci_image(), |o| {
            o["layers"][0]["mediaType"] = json!("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip");
        });
        let manifest = Manifest::parse(None, &bytes(&value)).unwrap();
        let required: Vec<String> = manifest.required_blobs().iter().map(|d| d.digest.to_string()).collect();
        assert_eq!(required, [digest('c'), digest('2')]);
    }

    #[test]
    fn reads_index_and_picks_platforms() {
        let index = Manifest::parse(Some(media::OCI_INDEX), &bytes(&oci_index())).unwrap();
        assert_eq!(index.kind, ManifestKind::Index);
        assert_eq!(index.config, None);
        assert!(index.layers.is_empty());
        assert!(index.required_blobs().is_empty());
        assert_eq!(index.child_manifests().len(), 4);

        let arm = index.platform_child("linux", "arm64").unwrap();
        assert_eq!(arm.digest.to_string(), digest('b'));
        assert_eq!(arm.platform.as_ref().unwrap().variant.as_deref(), Some("v8"));
        assert_eq!(index.platform_child("linux", "amd64").unwrap().digest.to_string(), digest('a'));
        let windows = index.platform_child("windows", "amd64").unwrap();
        let platform = windows.platform.as_ref().unwrap();
        assert_eq!(platform.os_version.as_deref(), Some("10.0.20348.2402"));
        assert_eq!(platform.os_features, ["win32k"]);
        assert_eq!(index.platform_child("linux", "s390x"), None);
        assert_eq!(index.platform_child("darwin", "arm64"), None);

        let list = Manifest::parse(Some(media::DOCKER_MANIFEST_LIST), &bytes(&docker_list())).unwrap();
        assert_eq!(list.kind, ManifestKind::Index);
        let amd = list.platform_child("linux", "amd64").unwrap();
        assert_eq!(amd.digest.to_string(), digest('b'));
        assert_eq!(amd.platform.as_ref().unwrap().features, ["sse4"]);

        let no_platforms = with(oci_index(), |o| {
            o["manifests"] = json!([{ "mediaType": media::OCI_MANIFEST, "digest": digest('a'), "size": 1 }]);
        });
        let index = Manifest::parse(None, &bytes(&no_platforms)).unwrap();
        assert_eq!(index.platform_child("linux", "amd64"), None);
    }

    #[test]
    fn descriptor_serde_round_trip() {
        let json = json!({
            "mediaType": media::OCI_MANIFEST,
            "digest": digest('a'),
            "size": 1024,
            "artifactType": "application/vnd.example.sig",
            "annotations": { "k": "v" },
            "platform": { "architecture": "arm", "os": "linux", "variant": "v7", "os.version": "x" }
        });
        let descriptor: Descriptor = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(descriptor.platform.as_ref().unwrap().os_version.as_deref(), Some("x"));
        assert_eq!(serde_json::to_value(&descriptor).unwrap(), json);

        let minimal = json!({ "mediaType": media::OCI_CONFIG, "digest": digest('c'), "size": 2 });
        let descriptor: Descriptor = serde_json::from_value(minimal.clone()).unwrap();
        assert_eq!(serde_json::to_value(&descriptor).unwrap(), minimal);
    }

    #[test]
    fn error_displays_its_message() {
        let err = Manifest::parse(None, b"[]").unwrap_err();
        assert_eq!(err.to_string(), "manifest must be a JSON object, not an array");
    }
}

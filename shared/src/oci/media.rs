//! Media types the registry understands, and `Accept` header matching.
//!
//! Comparisons use the media type's essence (parameters dropped, surrounding
//! whitespace trimmed) and ignore ASCII case, as RFC 6838 makes type and
//! subtype names case-insensitive.

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// The `{}` blob OCI 1.1 artifacts use as a placeholder config or layer.
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
pub const DOCKER_FOREIGN_LAYER: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
/// Prefix shared by every OCI non-distributable layer type (`.v1.tar`, `.v1.tar+gzip`, …).
pub const OCI_NONDISTRIBUTABLE_PREFIX: &str = "application/vnd.oci.image.layer.nondistributable.";

/// The manifest media types berth accepts, in canonical spelling.
const MANIFEST_TYPES: [&str; 4] = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST];

/// `media_type` without parameters or surrounding whitespace.
pub fn essence(media_type: &str) -> &str {
    media_type.split(';').next().unwrap_or_default().trim()
}

fn same(a: &str, b: &str) -> bool {
    essence(a).eq_ignore_ascii_case(essence(b))
}

pub fn is_index(media_type: &str) -> bool {
    same(media_type, OCI_INDEX) || same(media_type, DOCKER_MANIFEST_LIST)
}

/// One of the four manifest types berth stores (OCI image/index, Docker v2 image/list).
pub fn is_manifest_media_type(media_type: &str) -> bool {
    canonical_manifest_type(media_type).is_some()
}

/// The canonical spelling of a supported manifest media type.
pub fn canonical_manifest_type(media_type: &str) -> Option<&'static str> {
    MANIFEST_TYPES.into_iter().find(|known| same(media_type, known))
}

pub fn is_docker_schema1(media_type: &str) -> bool {
    same(media_type, DOCKER_SCHEMA1) || same(media_type, DOCKER_SCHEMA1_SIGNED)
}

/// Layers the registry need not hold because clients fetch them elsewhere.
pub fn is_nondistributable(media_type: &str) -> bool {
    let essence = essence(media_type);
    same(essence, DOCKER_FOREIGN_LAYER)
        || essence
            .get(..OCI_NONDISTRIBUTABLE_PREFIX.len())
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case(OCI_NONDISTRIBUTABLE_PREFIX))
}

/// Whether `s` has the shape the OCI image spec requires of descriptor media
/// types: RFC 6838 restricted names `type/subtype`, without parameters.
pub fn is_valid_media_type(s: &str) -> bool {
    fn restricted_name(part: &str) -> bool {
        let mut bytes = part.bytes();
        let Some(first) = bytes.next() else { return false };
        part.len() <= 127
            && first.is_ascii_alphanumeric()
            && bytes.all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    }
    s.split_once('/').is_some_and(|(ty, sub)| restricted_name(ty) && restricted_name(sub))
}

/// Accept header matching for one candidate `media_type`.
///
/// `accept_header_values` are the raw values of every `Accept` header on the
/// request; each may list several comma-separated ranges. Quality and other
/// parameters are ignored: registries only use Accept to decide whether a
/// client can handle a manifest type at all, not to rank alternatives. A
/// request without any range accepts everything, as HTTP prescribes for a
/// missing Accept header.
pub fn accepts(accept_header_values: &[&str], media_type: &str) -> bool {
    let wanted = essence(media_type);
    let wanted_type = wanted.split_once('/').map_or(wanted, |(ty, _)| ty);
    let mut any_range = false;
    for range in accept_header_values.iter().flat_map(|value| value.split(',')) {
        let range = essence(range);
        if range.is_empty() {
            continue;
        }
        any_range = true;
        let matched = match range.split_once('/') {
            Some(("*", "*")) => true,
            Some((ty, "*")) => ty.eq_ignore_ascii_case(wanted_type),
            _ => range.eq_ignore_ascii_case(wanted),
        };
        if matched {
            return true;
        }
    }
    !any_range
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_manifest_types() {
        for (media_type, manifest, index) in [
            (OCI_MANIFEST, true, false),
            (OCI_INDEX, true, true),
            (DOCKER_MANIFEST, true, false),
            (DOCKER_MANIFEST_LIST, true, true),
            ("application/vnd.oci.image.index.v1+json; charset=utf-8", true, true),
            ("Application/VND.OCI.Image.Manifest.v1+json", true, false),
            (DOCKER_SCHEMA1, false, false),
            (DOCKER_SCHEMA1_SIGNED, false, false),
            (OCI_CONFIG, false, false),
            ("application/json", false, false),
            ("", false, false),
        ] {
            assert_eq!(is_manifest_media_type(media_type), manifest, "{media_type}");
            assert_eq!(is_index(media_type), index, "{media_type}");
        }
        assert_eq!(canonical_manifest_type(" application/vnd.oci.image.manifest.v1+json "), Some(OCI_MANIFEST));
        assert!(is_docker_schema1(DOCKER_SCHEMA1_SIGNED));
        assert!(!is_docker_schema1(DOCKER_MANIFEST));
    }

    #[test]
    fn nondistributable_layers() {
        for (media_type, expected) in [
            ("application/vnd.oci.image.layer.nondistributable.v1.tar", true),
            ("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", true),
            ("application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", true),
            (DOCKER_FOREIGN_LAYER, true),
            ("application/vnd.oci.image.layer.v1.tar+gzip", false),
            ("application/vnd.docker.image.rootfs.diff.tar.gzip", false),
            ("application/vnd.oci.image.layer", false),
            ("", false),
        ] {
            assert_eq!(is_nondistributable(media_type), expected, "{media_type}");
        }
    }

    #[test]
    fn media_type_shape() {
        for (s, ok) in [
            (OCI_MANIFEST, true),
            ("application/vnd.cncf.helm.config.v1+json", true),
            ("text/plain", true),
            ("application/vnd.example.sbom", true),
            ("application", false),
            ("/json", false),
            ("application/", false),
            ("application/json; charset=utf-8", false),
            ("application/a/b", false),
            ("-application/json", false),
            ("", false),
        ] {
            assert_eq!(is_valid_media_type(s), ok, "{s:?}");
        }
        assert!(!is_valid_media_type(&format!("application/{}", "a".repeat(128))));
    }

    #[test]
    fn accept_matching() {
        let docker_and_oci = "application/vnd.docker.distribution.manifest.v2+json, \
                              application/vnd.oci.image.manifest.v1+json;q=0.9";
        for (accept, media_type, expected) in [
            (&[][..], OCI_MANIFEST, true),
            (&[""][..], OCI_MANIFEST, true),
            (&[" , "][..], OCI_MANIFEST, true),
            (&[OCI_MANIFEST][..], OCI_MANIFEST, true),
            (&[OCI_INDEX][..], OCI_MANIFEST, false),
            (&[docker_and_oci][..], OCI_MANIFEST, true),
            (&[docker_and_oci][..], DOCKER_MANIFEST, true),
            (&[docker_and_oci][..], OCI_INDEX, false),
            (&[DOCKER_MANIFEST, OCI_INDEX][..], OCI_INDEX, true),
            (&["application/vnd.oci.image.index.v1+json;q=0.5"][..], OCI_INDEX, true),
            (&["*/*"][..], DOCKER_MANIFEST_LIST, true),
            (&["text/html, */*;q=0.1"][..], OCI_INDEX, true),
            (&["application/*"][..], OCI_INDEX, true),
            (&["text/*"][..], OCI_INDEX, false),
            (&["APPLICATION/VND.OCI.IMAGE.INDEX.V1+JSON"][..], OCI_INDEX, true),
            (&["application/json"][..], OCI_MANIFEST, false),
        ] {
            assert_eq!(accepts(accept, media_type), expected, "{accept:?} vs {media_type}");
        }
    }
}

//! SBOMs of an inventory: CycloneDX 1.5 JSON and SPDX 2.3 JSON.
//!
//! Both are deterministic: the serial number and the document namespace are
//! derived from the subject's digest and the caller's timestamp, and
//! components follow the inventory's order. The crate reads no clock; the
//! caller passes `created` as RFC 3339 UTC (`2026-12-05T10:00:00Z`).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::inventory::{Ecosystem, Inventory, Package};

/// The artifact an SBOM describes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// The repository, `library/nginx`.
    pub repository: String,
    /// The manifest digest, `sha256:...`.
    pub digest: String,
}

const TOOL: &str = concat!("berth-scanner-", env!("CARGO_PKG_VERSION"));

/// A name-based UUID (version 5 layout) from the subject and the timestamp,
/// so the same scan always gives the same document identity.
fn document_uuid(subject: &Subject, created: &str) -> String {
    let hash = Sha256::new()
        .chain_update(subject.repository.as_bytes())
        .chain_update([0])
        .chain_update(subject.digest.as_bytes())
        .chain_update([0])
        .chain_update(created.as_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x50;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

fn ecosystem_name(ecosystem: Ecosystem) -> &'static str {
    match ecosystem {
        Ecosystem::Deb => "deb",
        Ecosystem::Apk => "apk",
        Ecosystem::Rpm => "rpm",
        Ecosystem::PyPI => "pypi",
        Ecosystem::Npm => "npm",
        Ecosystem::Cargo => "cargo",
        Ecosystem::Go => "golang",
    }
}

/// A CycloneDX 1.5 JSON BOM of the image.
pub fn cyclonedx(inv: &Inventory, subject: &Subject, created: &str) -> Value {
    let mut components = Vec::new();
    if let Some(os) = &inv.os {
        let mut component = json!({
            "type": "operating-system",
            "bom-ref": "os",
            "name": os.id,
        });
        if let Some(version) = &os.version_id {
            component["version"] = json!(version);
        }
        if let Some(pretty) = &os.pretty_name {
            component["description"] = json!(pretty);
        }
        components.push(component);
    }
    for (i, package) in inv.packages.iter().enumerate() {
        let mut component = json!({
            "type": "library",
            "bom-ref": format!("pkg-{i}"),
            "name": package.name,
            "version": package.version,
            "purl": package.purl,
            "properties": [
                {"name": "berth:package:type", "value": ecosystem_name(package.ecosystem)},
                {"name": "berth:location:path", "value": package.path},
            ],
        });
        if !package.licenses.is_empty() {
            component["licenses"] =
                package.licenses.iter().map(|l| json!({"license": {"name": l}})).collect::<Vec<_>>().into();
        }
        components.push(component);
    }
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": format!("urn:uuid:{}", document_uuid(subject, created)),
        "version": 1,
        "metadata": {
            "timestamp": created,
            "tools": {"components": [{"type": "application", "name": "berth-scanner", "version": env!("CARGO_PKG_VERSION")}]},
            "component": {
                "type": "container",
                "bom-ref": "subject",
                "name": subject.repository,
                "version": subject.digest,
            },
        },
        "components": components,
    })
}

/// An SPDX 2.3 JSON document of the image: the image as the described
/// package, which contains the OS and every package.
pub fn spdx(inv: &Inventory, subject: &Subject, created: &str) -> Value {
    let uuid = document_uuid(subject, created);
    let noassertion = "NOASSERTION";
    let mut packages = vec![json!({
        "SPDXID": "SPDXRef-Image",
        "name": subject.repository,
        "versionInfo": subject.digest,
        "downloadLocation": noassertion,
        "filesAnalyzed": false,
        "licenseConcluded": noassertion,
        "licenseDeclared": noassertion,
        "copyrightText": noassertion,
        "primaryPackagePurpose": "CONTAINER",
    })];
    let mut relationships = vec![
        json!({"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": "SPDXRef-Image"}),
    ];
    let mut contains = |id: &str| {
        relationships
            .push(json!({"spdxElementId": "SPDXRef-Image", "relationshipType": "CONTAINS", "relatedSpdxElement": id}));
    };
    if let Some(os) = &inv.os {
        let mut package = json!({
            "SPDXID": "SPDXRef-OperatingSystem",
            "name": os.id,
            "downloadLocation": noassertion,
            "filesAnalyzed": false,
            "licenseConcluded": noassertion,
            "licenseDeclared": noassertion,
            "copyrightText": noassertion,
            "primaryPackagePurpose": "OPERATING-SYSTEM",
        });
        if let Some(version) = &os.version_id {
            package["versionInfo"] = json!(version);
        }
        if let Some(pretty) = &os.pretty_name {
            package["description"] = json!(pretty);
        }
        packages.push(package);
        contains("SPDXRef-OperatingSystem");
    }
    for (i, package) in inv.packages.iter().enumerate() {
        let id = format!("SPDXRef-Package-{i}");
        packages.push(spdx_package(&id, package));
        contains(&id);
    }
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{}@{}", subject.repository, subject.digest),
        "documentNamespace": format!("https://berth.invalid/spdx/{}/{uuid}", subject.repository),
        "creationInfo": {"created": created, "creators": [format!("Tool: {TOOL}")]},
        "packages": packages,
        "relationships": relationships,
    })
}

fn spdx_package(id: &str, package: &Package) -> Value {
    json!({
        "SPDXID": id,
        "name": package.name,
        "versionInfo": package.version,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": spdx_expression(&package.licenses).unwrap_or_else(|| "NOASSERTION".to_owned()),
        "copyrightText": "NOASSERTION",
        "sourceInfo": format!("{} package found in {}", ecosystem_name(package.ecosystem), package.path),
        "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": package.purl}],
    })
}

/// The licenses as one SPDX license expression, if each already is one
/// (`MIT`, `GPL-2.0-or-later OR MIT`); free text (`MIT License`) is not
/// guessed at.
fn spdx_expression(licenses: &[String]) -> Option<String> {
    if licenses.is_empty() || !licenses.iter().all(|l| is_expression(l)) {
        return None;
    }
    if let [one] = licenses {
        return Some(one.clone());
    }
    Some(
        licenses
            .iter()
            .map(|l| if l.contains(' ') { format!("({l})") } else { l.clone() })
            .collect::<Vec<_>>()
            .join(" AND "),
    )
}

fn is_expression(text: &str) -> bool {
    let spaced = text.replace(['(', ')'], " ");
    let tokens: Vec<&str> = spaced.split_whitespace().collect();
    let id = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.+:".contains(&b));
    !tokens.is_empty()
        && tokens.len() % 2 == 1
        && tokens.iter().enumerate().all(|(i, t)| if i % 2 == 0 { id(t) } else { matches!(*t, "AND" | "OR" | "WITH") })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::inventory::OsInfo;

    fn inventory() -> Inventory {
        let package = |name: &str, ecosystem, licenses: &[&str]| Package {
            name: name.into(),
            version: "1.0".into(),
            ecosystem,
            purl: format!("pkg:x/{name}@1.0"),
            path: "p".into(),
            licenses: licenses.iter().map(|l| l.to_string()).collect(),
            source_name: None,
            source_version: None,
            arch: None,
        };
        Inventory {
            os: Some(OsInfo { id: "alpine".into(), version_id: Some("3.19.1".into()), pretty_name: None }),
            packages: vec![
                package("musl", Ecosystem::Apk, &["MIT"]),
                package("requests", Ecosystem::PyPI, &["Apache 2.0"]),
                package("x", Ecosystem::Npm, &["MIT", "GPL-2.0-only OR BSD-3-Clause"]),
            ],
        }
    }

    fn subject() -> Subject {
        Subject { repository: "library/app".into(), digest: "sha256:abcd".into() }
    }

    #[test]
    fn cyclonedx_is_deterministic_and_complete() {
        let bom = cyclonedx(&inventory(), &subject(), "2026-12-05T10:00:00Z");
        assert_eq!(bom, cyclonedx(&inventory(), &subject(), "2026-12-05T10:00:00Z"));
        assert_ne!(bom["serialNumber"], cyclonedx(&inventory(), &subject(), "2026-12-05T10:00:01Z")["serialNumber"]);
        let serial = bom["serialNumber"].as_str().unwrap();
        assert!(serial.starts_with("urn:uuid:") && serial.len() == 45 && serial.as_bytes()[23] == b'5');
        assert_eq!(bom["specVersion"], "1.5");
        assert_eq!(bom["components"][0]["type"], "operating-system");
        assert_eq!(bom["components"][1]["purl"], "pkg:x/musl@1.0");
        assert_eq!(bom["components"][1]["licenses"][0]["license"]["name"], "MIT");
        assert_eq!(bom["metadata"]["component"]["version"], "sha256:abcd");
    }

    #[test]
    fn spdx_relates_every_package_to_the_image() {
        let doc = spdx(&inventory(), &subject(), "2026-12-05T10:00:00Z");
        assert_eq!(doc["spdxVersion"], "SPDX-2.3");
        let packages = doc["packages"].as_array().unwrap();
        assert_eq!(packages.len(), 5);
        assert_eq!(doc["relationships"].as_array().unwrap().len(), 5);
        assert_eq!(packages[2]["licenseDeclared"], "MIT");
        assert_eq!(packages[3]["licenseDeclared"], "NOASSERTION");
        assert_eq!(packages[4]["licenseDeclared"], "MIT AND (GPL-2.0-only OR BSD-3-Clause)");
        assert_eq!(packages[2]["externalRefs"][0]["referenceLocator"], "pkg:x/musl@1.0");
        assert!(doc["documentNamespace"].as_str().unwrap().starts_with("https://berth.invalid/spdx/library/app/"));
    }
}

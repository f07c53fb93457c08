//! The whole path through the public API: layers, inventory, an OSV
//! database stored and loaded again, findings, SBOMs.
#![allow(clippy::unwrap_used)]

use std::io::Cursor;

use berth_scanner::{
    Layer, Limits, Severity, Subject, VulnDb, VulnDbBuilder, cyclonedx, find_vulnerabilities, inventory, spdx,
};

fn layer(files: &[(&str, &str)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, text) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        builder.append_data(&mut header, path, text.as_bytes()).unwrap();
    }
    builder.into_inner().unwrap()
}

const APK_DB: &str = "P:musl\nV:1.2.4_git20230717-r4\nA:x86_64\nL:MIT\no:musl\n\nP:libcrypto3\nV:3.1.4-r5\nA:x86_64\nL:Apache-2.0\no:openssl\n\n";

const OPENSSL: &str = r#"{"id": "ALPINE-CVE-2024-0727", "modified": "2024-03-01T00:00:00Z", "upstream": ["CVE-2024-0727"],
  "details": "Processing a maliciously formatted PKCS12 file may lead OpenSSL to crash",
  "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:L/AC:L/PR:N/UI:R/S:U/C:N/I:N/A:H"}],
  "affected": [{"package": {"ecosystem": "Alpine:v3.19", "name": "openssl"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.1.4-r6"}]}]},
               {"package": {"ecosystem": "Alpine:v3.18", "name": "openssl"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.1.4-r99"}]}]}]}"#;

const LODASH: &str = r#"[{"id": "GHSA-35jh-r3h4-6jhm", "aliases": ["CVE-2021-23337"], "modified": "2024-01-02T00:00:00Z",
  "summary": "Command Injection in lodash",
  "affected": [{"package": {"ecosystem": "npm", "name": "lodash"},
                "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "4.17.21"}]}]}],
  "database_specific": {"severity": "HIGH", "cwe_ids": ["CWE-77", "CWE-94"]}}]"#;

#[test]
fn layers_to_findings_and_sboms() {
    let base = layer(&[("etc/os-release", "ID=alpine\nVERSION_ID=3.19.1\n"), ("lib/apk/db/installed", APK_DB)]);
    let app = layer(&[(
        "srv/app/package-lock.json",
        r#"{"lockfileVersion": 3, "packages": {"": {}, "node_modules/lodash": {"version": "4.17.20", "license": "MIT"}}}"#,
    )]);
    let layers = [
        Layer::new("application/vnd.oci.image.layer.v1.tar", Cursor::new(base)),
        Layer::new("application/vnd.docker.image.rootfs.diff.tar.gzip", Cursor::new(gzip(&app))),
    ];
    let inv = inventory(layers, &Limits::default()).unwrap();
    assert_eq!(inv.packages.len(), 3);

    let mut builder = VulnDbBuilder::new(&Limits::default());
    builder.add_json(OPENSSL.as_bytes());
    builder.add_json(LODASH.as_bytes());
    let (db, summary) = builder.finish();
    assert_eq!(summary.updated_at.as_deref(), Some("2024-03-01T00:00:00Z"));
    let db = VulnDb::from_bytes(&db.to_bytes().unwrap(), &Limits::default()).unwrap();

    let findings = find_vulnerabilities(&db, &inv);
    let short: Vec<_> =
        findings.iter().map(|f| (f.id.as_str(), f.package.as_str(), f.fixed_version.as_deref(), f.severity)).collect();
    assert_eq!(
        short,
        [
            ("CVE-2021-23337", "lodash", Some("4.17.21"), Severity::High),
            ("CVE-2024-0727", "libcrypto3", Some("3.1.4-r6"), Severity::Medium),
        ]
    );
    assert_eq!(findings[1].cvss_score, Some(5.5));
    assert_eq!(findings[0].cwe_ids, ["CWE-77", "CWE-94"]);

    let subject = Subject { repository: "team/app".into(), digest: "sha256:0123".into() };
    let bom = cyclonedx(&inv, &subject, "2026-12-05T10:00:00Z");
    assert_eq!(bom["components"].as_array().unwrap().len(), 4);
    let doc = spdx(&inv, &subject, "2026-12-05T10:00:00Z");
    assert_eq!(doc["packages"].as_array().unwrap().len(), 5);
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

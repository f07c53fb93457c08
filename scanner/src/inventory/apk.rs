//! apk's database, `lib/apk/db/installed`: stanzas of one-letter fields
//! (`P` name, `V` version, `A` arch, `o` origin, `L` license) separated by
//! blank lines.

use super::{Ecosystem, OsInfo, Package, distro, purl};

const INSTALLED: &str = "lib/apk/db/installed";

pub(crate) fn wants(path: &str) -> bool {
    path == INSTALLED
}

pub(crate) fn packages(path: &str, text: &str, os: Option<&OsInfo>) -> Vec<Package> {
    let namespace = os.map_or("alpine", |os| os.id.as_str());
    let distro = distro(os);
    let mut found = Vec::new();
    for stanza in text.split("\n\n") {
        let (mut name, mut version, mut arch, mut origin, mut license) = (None, None, None, None, None);
        for line in stanza.lines() {
            let Some((key, value)) = line.split_once(':') else { continue };
            let value = value.trim();
            match key {
                "P" => name = Some(value),
                "V" => version = Some(value),
                "A" => arch = Some(value),
                "o" => origin = Some(value),
                "L" => license = Some(value),
                _ => {}
            }
        }
        let (Some(name), Some(version)) = (name, version) else { continue };
        let clean = |s: &str| !s.is_empty() && s.len() <= 256 && !s.contains(char::is_whitespace);
        if !clean(name) || !clean(version) {
            continue;
        }
        let origin = origin.filter(|o| clean(o));
        found.push(Package {
            name: name.to_owned(),
            version: version.to_owned(),
            ecosystem: Ecosystem::Apk,
            purl: purl(
                "apk",
                Some(namespace),
                name,
                version,
                &[
                    ("arch", arch.unwrap_or_default()),
                    ("distro", &distro),
                    ("upstream", origin.filter(|o| *o != name).unwrap_or_default()),
                ],
            ),
            path: path.to_owned(),
            licenses: license.filter(|l| !l.is_empty()).map(|l| vec![l.to_owned()]).unwrap_or_default(),
            source_name: origin.map(str::to_owned),
            source_version: origin.map(|_| version.to_owned()),
            arch: arch.filter(|a| !a.is_empty()).map(str::to_owned),
        });
    }
    found
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_stanzas() {
        let text = "C:Q1abc=\nP:musl\nV:1.2.4_git20230717-r4\nA:x86_64\nS:383152\nT:the musl c library\nL:MIT\no:musl\n\nP:libcrypto3\nV:3.1.4-r5\nA:x86_64\nL:Apache-2.0\no:openssl\nR:libcrypto.so.3\n\nP:broken\n";
        let os = OsInfo { id: "alpine".into(), version_id: Some("3.19.1".into()), pretty_name: None };
        let found = packages(INSTALLED, text, Some(&os));
        assert_eq!(found.len(), 2);
        assert_eq!(found[1].name, "libcrypto3");
        assert_eq!(found[1].source_name.as_deref(), Some("openssl"));
        assert_eq!(found[1].licenses, ["Apache-2.0"]);
        assert_eq!(
            found[1].purl,
            "pkg:apk/alpine/libcrypto3@3.1.4-r5?arch=x86_64&distro=alpine-3.19.1&upstream=openssl"
        );
    }
}

//! Installed Python distributions, anywhere in the image: the core metadata
//! of `*.dist-info/METADATA`, `*.egg-info/PKG-INFO` and single-file
//! `*.egg-info` (`Name`, `Version`, and the license from
//! `License-Expression`, a one-line `License`, or `License ::` classifiers).

use super::{Ecosystem, Package, purl};

pub(crate) fn wants(path: &str) -> bool {
    let mut parts = path.rsplit('/');
    let (Some(file), dir) = (parts.next(), parts.next()) else { return false };
    match file {
        "METADATA" => dir.is_some_and(|d| d.ends_with(".dist-info")),
        "PKG-INFO" => dir.is_some_and(|d| d.ends_with(".egg-info")),
        file => file.ends_with(".egg-info"),
    }
}

/// PEP 503's normal form of a project name: lower case, each run of `-`,
/// `_` and `.` one `-`.
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_run = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_run {
                out.push('-');
            }
            in_run = true;
        } else {
            out.extend(c.to_lowercase());
            in_run = false;
        }
    }
    out
}

pub(crate) fn packages(path: &str, text: &str) -> Vec<Package> {
    let (mut name, mut version, mut license, mut expression) = (None, None, None, None);
    let mut classifiers = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim().is_empty() {
            break;
        }
        let Some((key, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        let continued = lines.peek().is_some_and(|next| next.starts_with([' ', '\t']));
        match key {
            "Name" => name = Some(value),
            "Version" => version = Some(value),
            "License-Expression" => expression = Some(value),
            "License" if !continued && !value.is_empty() && value.len() <= 128 && value != "UNKNOWN" => {
                license = Some(value);
            }
            "Classifier" => {
                if let Some(rest) = value.strip_prefix("License ::") {
                    let last = rest.rsplit("::").next().unwrap_or(rest).trim();
                    if !last.is_empty() && last != "OSI Approved" {
                        classifiers.push(last.to_owned());
                    }
                }
            }
            _ => {}
        }
    }
    let (Some(name), Some(version)) = (name, version) else { return Vec::new() };
    let valid = |s: &str| !s.is_empty() && s.len() <= 256 && !s.contains(char::is_whitespace);
    if !valid(name) || !valid(version) {
        return Vec::new();
    }
    let licenses = match (expression, license) {
        (Some(e), _) => vec![e.to_owned()],
        (None, Some(l)) => vec![l.to_owned()],
        (None, None) => classifiers,
    };
    vec![Package {
        name: name.to_owned(),
        version: version.to_owned(),
        ecosystem: Ecosystem::PyPI,
        purl: purl("pypi", None, &normalize_name(name), version, &[]),
        path: path.to_owned(),
        licenses,
        source_name: None,
        source_version: None,
        arch: None,
    }]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_are_normalized() {
        assert_eq!(normalize_name("Foo.Bar__baz-Qux"), "foo-bar-baz-qux");
    }

    #[test]
    fn metadata_headers_only() {
        assert!(wants("usr/lib/python3.11/site-packages/PyYAML-6.0.1.dist-info/METADATA"));
        assert!(wants("usr/lib/python3/dist-packages/six-1.16.0.egg-info"));
        assert!(wants("x/setuptools.egg-info/PKG-INFO"));
        assert!(!wants("x/METADATA"));
        let text = "Metadata-Version: 2.1\nName: PyYAML\nVersion: 6.0.1\nLicense: MIT\nClassifier: License :: OSI Approved :: MIT License\n\nName: not-a-header\n";
        let found = packages("a.dist-info/METADATA", text);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].purl, "pkg:pypi/pyyaml@6.0.1");
        assert_eq!(found[0].licenses, ["MIT"]);
        let text = "Name: x\nVersion: 1\nLicense: Copyright (c)\n        all rights\nClassifier: License :: OSI Approved :: BSD License\n";
        assert_eq!(packages("p", text)[0].licenses, ["BSD License"]);
    }

    #[test]
    fn this_machines_site_packages() {
        let mut seen = 0;
        for venv in std::fs::read_dir("/root/.cache/berth-tools").unwrap().flatten() {
            let Ok(libs) = std::fs::read_dir(venv.path().join("lib")) else { continue };
            for lib in libs.flatten() {
                let Ok(site) = std::fs::read_dir(lib.path().join("site-packages")) else { continue };
                for dist in site.flatten() {
                    let path = dist.path().join("METADATA");
                    let Ok(text) = std::fs::read_to_string(&path) else { continue };
                    let found = packages(&path.to_string_lossy(), &text);
                    assert_eq!(found.len(), 1, "{}", path.display());
                    seen += 1;
                }
            }
        }
        assert!(seen > 20, "{seen}");
    }
}

//! npm packages: `package-lock.json` (lockfile v1's nested `dependencies`,
//! v2/v3's flat `packages`) and the `package.json` of each installed package
//! under a `node_modules` folder (`node_modules/<name>/package.json` or
//! `node_modules/@scope/<name>/package.json`; other `package.json` files
//! inside a package are not packages).

use serde_json::Value;

use super::{Ecosystem, Package, purl};

pub(crate) fn wants(path: &str) -> bool {
    let base = path.rsplit('/').next().unwrap_or(path);
    base == "package-lock.json" || installed_name(path).is_some()
}

/// The package name a `node_modules/.../package.json` path implies.
fn installed_name(path: &str) -> Option<&str> {
    let dir = path.strip_suffix("/package.json")?;
    let (before, name) = dir.rsplit_once("node_modules/")?;
    if !(before.is_empty() || before.ends_with('/')) {
        return None;
    }
    let parts: Vec<&str> = name.split('/').collect();
    match parts.as_slice() {
        [name] if !name.starts_with('@') && !name.is_empty() => Some(name),
        [scope, name] if scope.starts_with('@') && !name.is_empty() => Some(name),
        _ => None,
    }
}

pub(crate) fn packages(path: &str, text: &str) -> Vec<Package> {
    let Ok(json) = serde_json::from_str::<Value>(text) else { return Vec::new() };
    let mut found = Vec::new();
    if path.ends_with("package-lock.json") {
        if let Some(packages) = json.get("packages").and_then(Value::as_object) {
            for (key, entry) in packages {
                let implied = key.rsplit_once("node_modules/").map_or(key.as_str(), |(_, n)| n);
                if entry.get("link").and_then(Value::as_bool) == Some(true) {
                    // A workspace link: the package it names, unversioned
                    // here (its own entry carries the version), as syft
                    // lists it.
                    push(&mut found, path, implied, &serde_json::json!({"version": ""}));
                    continue;
                }
                // The root entry (`""`) is the project itself.
                let name = entry.get("name").and_then(Value::as_str).unwrap_or(implied);
                push(&mut found, path, name, entry);
            }
        } else if let Some(dependencies) = json.get("dependencies").and_then(Value::as_object) {
            lockfile_v1(&mut found, path, dependencies);
        }
    } else if installed_name(path).is_some()
        && let Some(name) = json.get("name").and_then(Value::as_str)
    {
        push(&mut found, path, name, &json);
    }
    found
}

fn lockfile_v1(found: &mut Vec<Package>, path: &str, dependencies: &serde_json::Map<String, Value>) {
    for (name, entry) in dependencies {
        push(found, path, name, entry);
        if let Some(nested) = entry.get("dependencies").and_then(Value::as_object) {
            lockfile_v1(found, path, nested);
        }
    }
}

fn push(found: &mut Vec<Package>, path: &str, name: &str, entry: &Value) {
    let Some(version) = entry.get("version").and_then(Value::as_str) else { return };
    let valid = |s: &str| !s.is_empty() && s.len() <= 256 && !s.contains(char::is_whitespace);
    // Lockfile v1 writes a tarball URL or `file:` path as the version of
    // packages not from the registry. (An empty version is a link's.)
    if !valid(name) || (!version.is_empty() && !valid(version)) || version.contains(':') {
        return;
    }
    let (namespace, short) = match name.split_once('/') {
        Some((scope, short)) if scope.starts_with('@') => (Some(scope), short),
        _ => (None, name),
    };
    found.push(Package {
        name: name.to_owned(),
        version: version.to_owned(),
        ecosystem: Ecosystem::Npm,
        purl: purl("npm", namespace, short, version, &[]),
        path: path.to_owned(),
        licenses: licenses(entry),
        source_name: None,
        source_version: None,
        arch: None,
    });
}

fn licenses(entry: &Value) -> Vec<String> {
    let one = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("type").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    };
    match (entry.get("license"), entry.get("licenses")) {
        (Some(license), _) => one(license).into_iter().collect(),
        (None, Some(Value::Array(all))) => all.iter().filter_map(one).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn installed_package_json_paths() {
        assert!(wants("app/node_modules/lodash/package.json"));
        assert!(wants("node_modules/@babel/core/package.json"));
        assert!(wants("app/node_modules/a/node_modules/b/package.json"));
        assert!(!wants("app/node_modules/lodash/fp/package.json"));
        assert!(!wants("app/package.json"));
        assert!(wants("app/package-lock.json"));
        let found = packages(
            "node_modules/@babel/core/package.json",
            r#"{"name":"@babel/core","version":"7.24.0","license":"MIT"}"#,
        );
        assert_eq!(found[0].purl, "pkg:npm/%40babel/core@7.24.0");
        assert_eq!(found[0].licenses, ["MIT"]);
    }

    #[test]
    fn lockfile_v3_and_v1() {
        let v3 = r#"{"lockfileVersion":3,"packages":{"":{"name":"app","version":"1.0.0"},
            "node_modules/a":{"version":"1.2.3","license":"ISC"},
            "node_modules/a/node_modules/@s/b":{"version":"2.0.0"},
            "node_modules/linked":{"resolved":"../x","link":true}}}"#;
        let found = packages("package-lock.json", v3);
        let names: Vec<_> = found.iter().map(|p| (p.name.as_str(), p.version.as_str())).collect();
        assert_eq!(names, [("app", "1.0.0"), ("a", "1.2.3"), ("@s/b", "2.0.0"), ("linked", "")]);
        assert_eq!(found[3].purl, "pkg:npm/linked");
        let v1 = r#"{"lockfileVersion":1,"dependencies":{"a":{"version":"1.0.0","dependencies":{"b":{"version":"0.1.0"}}},
            "c":{"version":"file:../c"}}}"#;
        let found = packages("package-lock.json", v1);
        assert_eq!(found.len(), 2);
    }
}

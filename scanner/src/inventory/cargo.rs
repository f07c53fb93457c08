//! Rust crates from a `Cargo.lock` anywhere in the image (`[[package]]`
//! tables; workspace members included, as they are compiled in too).

use serde::Deserialize;

use super::{Ecosystem, Package, purl};

pub(crate) fn wants(path: &str) -> bool {
    path == "Cargo.lock" || path.ends_with("/Cargo.lock")
}

#[derive(Deserialize)]
struct Lock {
    #[serde(default)]
    package: Vec<Locked>,
}

#[derive(Deserialize)]
struct Locked {
    name: String,
    version: String,
}

pub(crate) fn packages(path: &str, text: &str) -> Vec<Package> {
    let Ok(lock) = toml::from_str::<Lock>(text) else { return Vec::new() };
    lock.package
        .into_iter()
        .filter(|p| !p.name.is_empty() && !p.version.is_empty())
        .map(|p| Package {
            purl: purl("cargo", None, &p.name, &p.version, &[]),
            name: p.name,
            version: p.version,
            ecosystem: Ecosystem::Cargo,
            path: path.to_owned(),
            licenses: Vec::new(),
            source_name: None,
            source_version: None,
            arch: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_packages() {
        let text = "version = 4\n\n[[package]]\nname = \"app\"\nversion = \"0.1.0\"\ndependencies = [\"serde\"]\n\n[[package]]\nname = \"serde\"\nversion = \"1.0.228\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"abc\"\n";
        let found = packages("app/Cargo.lock", text);
        assert_eq!(found.len(), 2);
        assert_eq!(found[1].purl, "pkg:cargo/serde@1.0.228");
        assert!(packages("Cargo.lock", "[[package]\nname=").is_empty());
    }
}

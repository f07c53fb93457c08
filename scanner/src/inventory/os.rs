//! The distribution: `os-release` (`etc/` first, then `usr/lib/`), else the
//! older `etc/alpine-release` and `etc/debian_version`.

use super::OsInfo;
use crate::layers::{FileData, Files};

const OS_RELEASE: [&str; 2] = ["etc/os-release", "usr/lib/os-release"];
const ALPINE_RELEASE: &str = "etc/alpine-release";
const DEBIAN_VERSION: &str = "etc/debian_version";

pub(crate) fn wants(path: &str) -> bool {
    OS_RELEASE.contains(&path) || path == ALPINE_RELEASE || path == DEBIAN_VERSION
}

pub(crate) fn detect(files: &Files) -> Option<OsInfo> {
    let text = |path: &str| match files.get(path) {
        Some(FileData::Bytes(bytes)) => Some(String::from_utf8_lossy(bytes).into_owned()),
        _ => None,
    };
    if let Some(os) = OS_RELEASE.iter().find_map(|p| text(p)).and_then(|t| parse_os_release(&t)) {
        return Some(os);
    }
    if let Some(version) = text(ALPINE_RELEASE).and_then(|t| first_word(&t)) {
        return Some(OsInfo { id: "alpine".into(), version_id: Some(version), pretty_name: None });
    }
    let version = text(DEBIAN_VERSION).and_then(|t| first_word(&t))?;
    // `12.5` names Debian 12; `trixie/sid` is testing, which has no number.
    let major = version.split('.').next().filter(|m| !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()));
    Some(OsInfo { id: "debian".into(), version_id: major.map(str::to_owned), pretty_name: None })
}

fn first_word(text: &str) -> Option<String> {
    let word = text.split_whitespace().next()?;
    (word.len() <= 64 && word.bytes().all(|b| b.is_ascii_graphic())).then(|| word.to_owned())
}

/// `os-release(5)`: `KEY=value` lines, values optionally quoted.
pub(crate) fn parse_os_release(text: &str) -> Option<OsInfo> {
    let (mut id, mut version_id, mut pretty_name) = (None, None, None);
    for line in text.lines() {
        let Some((key, value)) = line.trim().split_once('=') else { continue };
        let value = unquote(value.trim());
        if value.is_empty() || value.len() > 256 {
            continue;
        }
        match key {
            "ID" => id = Some(value.to_ascii_lowercase()),
            "VERSION_ID" => version_id = Some(value),
            "PRETTY_NAME" => pretty_name = Some(value),
            _ => {}
        }
    }
    let id = id.filter(|id| id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)))?;
    Some(OsInfo { id, version_id, pretty_name })
}

fn unquote(value: &str) -> String {
    let inner =
        ['"', '\''].iter().find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q))).unwrap_or(value);
    inner.replace("\\\"", "\"").replace("\\\\", "\\")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn files(entries: &[(&str, &str)]) -> Files {
        entries.iter().map(|(p, t)| (p.to_string(), FileData::Bytes(t.as_bytes().to_vec()))).collect()
    }

    #[test]
    fn reads_os_release_with_quotes() {
        let os = detect(&files(&[(
            "usr/lib/os-release",
            "PRETTY_NAME=\"Ubuntu 22.04.4 LTS\"\nNAME=\"Ubuntu\"\nVERSION_ID=\"22.04\"\nID=ubuntu\nID_LIKE=debian\n",
        )]))
        .unwrap();
        assert_eq!(
            os,
            OsInfo {
                id: "ubuntu".into(),
                version_id: Some("22.04".into()),
                pretty_name: Some("Ubuntu 22.04.4 LTS".into())
            }
        );
    }

    #[test]
    fn etc_wins_over_usr_lib_and_release_files_are_a_fallback() {
        let os = detect(&files(&[
            ("etc/os-release", "ID='alpine'\nVERSION_ID=3.19.1\n"),
            ("usr/lib/os-release", "ID=debian\n"),
        ]));
        assert_eq!(os.unwrap().id, "alpine");
        let os = detect(&files(&[("etc/alpine-release", "3.18.6\n")])).unwrap();
        assert_eq!((os.id.as_str(), os.version_id.as_deref()), ("alpine", Some("3.18.6")));
        let os = detect(&files(&[("etc/debian_version", "12.5\n")])).unwrap();
        assert_eq!(os.version_id.as_deref(), Some("12"));
        let os = detect(&files(&[("etc/debian_version", "trixie/sid\n")])).unwrap();
        assert_eq!(os.version_id, None);
        assert_eq!(detect(&files(&[("etc/os-release", "garbage\n")])), None);
    }
}

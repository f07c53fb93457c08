//! Repository names, tags and manifest references, validated against the
//! distribution spec grammar (with berth's extra rule that every repository
//! lives inside a project).

use std::fmt;
use std::str::FromStr;

use super::digest::Digest;

const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("invalid repository name: {0}")]
    InvalidName(String),
    #[error("invalid tag: {0}")]
    InvalidTag(String),
    #[error("invalid reference: {0}")]
    InvalidReference(String),
}

/// A repository name `<project>/<path…>`: at least two components separated
/// by '/', each matching `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, at most 255
/// characters in total. The first component is the project.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoName(String);

impl RepoName {
    pub fn parse(s: &str) -> Result<Self, NameError> {
        let invalid = |reason: String| NameError::InvalidName(reason);
        if s.is_empty() {
            return Err(invalid("repository name must not be empty".into()));
        }
        if s.len() > MAX_NAME_LEN {
            return Err(invalid(format!("name longer than {MAX_NAME_LEN} characters")));
        }
        if !s.contains('/') {
            return Err(invalid(format!("repository name must be <project>/<name>, got the single component {s:?}")));
        }
        for component in s.split('/') {
            check_component(component).map_err(invalid)?;
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn project(&self) -> &str {
        // parse() guarantees a '/', so the fallback is never taken.
        self.0.split_once('/').map_or(self.0.as_str(), |(project, _)| project)
    }
}

fn check_component(c: &str) -> Result<(), String> {
    if c.is_empty() {
        return Err("empty path component (leading, trailing or doubled '/')".into());
    }
    if c == "." || c == ".." {
        return Err(format!("component {c:?} is not allowed"));
    }
    for ch in c.chars() {
        if ch.is_ascii_uppercase() {
            return Err("upper-case letters are not allowed".into());
        }
        if !(ch.is_ascii_lowercase() || ch.is_ascii_digit() || matches!(ch, '.' | '_' | '-')) {
            return Err(format!("character {ch:?} is not allowed"));
        }
    }
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = c.as_bytes();
    if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return Err(format!("component {c:?} must begin and end with a lower-case letter or digit"));
    }
    // Only the characters are known to be legal so far; the grammar also
    // restricts how separators may be combined between alphanumeric runs.
    for run in c.split(|ch: char| ch.is_ascii_alphanumeric()).filter(|r| !r.is_empty()) {
        let ok = matches!(run, "." | "_" | "__") || run.bytes().all(|b| b == b'-');
        if !ok {
            return Err(format!("component {c:?} contains the invalid separator {run:?}"));
        }
    }
    Ok(())
}

impl FromStr for RepoName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for RepoName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for RepoName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A tag: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(String);

impl Tag {
    pub fn parse(s: &str) -> Result<Self, NameError> {
        let invalid = |reason: String| NameError::InvalidTag(reason);
        let Some(first) = s.chars().next() else {
            return Err(invalid("tag must not be empty".into()));
        };
        if !(first.is_ascii_alphanumeric() || first == '_') {
            return Err(invalid(format!("tag must begin with a letter, digit or '_', not {first:?}")));
        }
        if let Some(bad) = s.chars().find(|&ch| !(ch.is_ascii_alphanumeric() || matches!(ch, '_' | '.' | '-'))) {
            return Err(invalid(format!("character {bad:?} is not allowed in a tag")));
        }
        // Checked after the characters so that the length is counted in
        // ASCII characters, which is what the spec's {0,127} means.
        if s.len() > MAX_TAG_LEN {
            return Err(invalid(format!("tag longer than {MAX_TAG_LEN} characters")));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Tag {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A manifest reference: a digest when it contains ':', else a tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reference {
    Tag(Tag),
    Digest(Digest),
}

impl Reference {
    /// A tag-shaped reference that is not a valid tag yields
    /// [`NameError::InvalidTag`]; everything else yields
    /// [`NameError::InvalidReference`], so callers can map the two to the
    /// spec's distinct error codes.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        if s.is_empty() {
            return Err(NameError::InvalidReference("reference must not be empty".into()));
        }
        if s.contains(':') {
            s.parse::<Digest>().map(Self::Digest).map_err(|_| NameError::InvalidReference(digest_problem(s)))
        } else {
            Tag::parse(s).map(Self::Tag)
        }
    }
}

/// Explains why `s` is not a digest; `Digest`'s own error only echoes the input.
fn digest_problem(s: &str) -> String {
    let (algorithm, hex) = s.split_once(':').unwrap_or((s, ""));
    let expected = match algorithm {
        "sha256" => 64,
        "sha512" => 128,
        _ => return format!("unsupported digest algorithm {algorithm:?} in {s:?}"),
    };
    if hex.len() != expected {
        return format!("{algorithm} digest must have {expected} hex characters, got {} in {s:?}", hex.len());
    }
    format!("digest {s:?} must be lower-case hexadecimal")
}

impl FromStr for Reference {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tag(tag) => fmt::Display::fmt(tag, f),
            Self::Digest(digest) => fmt::Display::fmt(digest, f),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn valid_names() {
        for (name, project) in [
            ("library/nginx", "library"),
            ("a/b", "a"),
            ("my-project/team/app", "my-project"),
            ("p1/a.b/c_d/e__f/g---h", "p1"),
            ("0/9", "0"),
            ("proj/sub.dir/x-y_z", "proj"),
        ] {
            let parsed = RepoName::parse(name).unwrap();
            assert_eq!(parsed.as_str(), name);
            assert_eq!(parsed.to_string(), name);
            assert_eq!(parsed.project(), project, "{name}");
        }
        let longest = format!("p/{}", "a".repeat(253));
        assert!(RepoName::parse(&longest).is_ok());
    }

    #[test]
    fn invalid_names() {
        for (name, reason) in [
            ("", "must not be empty"),
            ("nginx", "must be <project>/<name>"),
            ("a//b", "empty path component"),
            ("/a/b", "empty path component"),
            ("a/b/", "empty path component"),
            ("a/../b", "component \"..\" is not allowed"),
            ("a/./b", "component \".\" is not allowed"),
            ("Library/nginx", "upper-case letters are not allowed"),
            ("library/Nginx", "upper-case letters are not allowed"),
            ("library/ngin x", "character ' ' is not allowed"),
            ("library/nginx:latest", "character ':' is not allowed"),
            ("library/ngïnx", "character 'ï' is not allowed"),
            ("library/-nginx", "must begin and end"),
            ("library/nginx_", "must begin and end"),
            ("library/.hidden", "must begin and end"),
            ("library/a..b", "invalid separator \"..\""),
            ("library/a___b", "invalid separator \"___\""),
            ("library/a._b", "invalid separator \"._\""),
            ("library/a-_b", "invalid separator \"-_\""),
        ] {
            match RepoName::parse(name) {
                Err(NameError::InvalidName(r)) => {
                    assert!(r.contains(reason), "{name:?}: {r:?} lacks {reason:?}")
                }
                other => panic!("{name:?}: expected InvalidName, got {other:?}"),
            }
        }
        let too_long = format!("p/{}", "a".repeat(254));
        assert_eq!(RepoName::parse(&too_long), Err(NameError::InvalidName("name longer than 255 characters".into())));
    }

    #[test]
    fn repo_name_serde_validates() {
        let name: RepoName = serde_json::from_str("\"library/nginx\"").unwrap();
        assert_eq!(serde_json::to_string(&name).unwrap(), "\"library/nginx\"");
        assert!(serde_json::from_str::<RepoName>("\"nginx\"").is_err());
        assert!(serde_json::from_str::<RepoName>("\"a/B\"").is_err());
    }

    #[test]
    fn valid_tags() {
        let longest = "a".repeat(128);
        for tag in ["latest", "v1.2.3", "_private", "1", "A-b_C.d", "sha256-abc.sig", &longest] {
            assert_eq!(Tag::parse(tag).unwrap().as_str(), tag);
        }
    }

    #[test]
    fn invalid_tags() {
        let too_long = "a".repeat(129);
        for (tag, reason) in [
            ("", "must not be empty"),
            (".hidden", "must begin with"),
            ("-x", "must begin with"),
            ("v1/2", "character '/' is not allowed"),
            ("v1+build", "character '+' is not allowed"),
            ("tag with space", "character ' ' is not allowed"),
            (too_long.as_str(), "longer than 128"),
        ] {
            match Tag::parse(tag) {
                Err(NameError::InvalidTag(r)) => {
                    assert!(r.contains(reason), "{tag:?}: {r:?} lacks {reason:?}")
                }
                other => panic!("{tag:?}: expected InvalidTag, got {other:?}"),
            }
        }
    }

    #[test]
    fn references() {
        let digest = format!("sha256:{}", "0123456789abcdef".repeat(4));
        assert_eq!(Reference::parse(&digest).unwrap(), Reference::Digest(digest.parse().unwrap()));
        assert_eq!(Reference::parse(&digest).unwrap().to_string(), digest);
        let sha512 = format!("sha512:{}", "f".repeat(128));
        assert!(matches!(Reference::parse(&sha512), Ok(Reference::Digest(_))));
        assert_eq!(Reference::parse("latest").unwrap(), Reference::Tag(Tag::parse("latest").unwrap()));
        assert_eq!(Reference::parse("v1.0").unwrap().to_string(), "v1.0");
    }

    #[test]
    fn invalid_references() {
        let upper = format!("sha256:{}", "A".repeat(64));
        let short = format!("sha256:{}", "a".repeat(63));
        let long = format!("sha256:{}", "a".repeat(65));
        let sha512_short = format!("sha512:{}", "a".repeat(64));
        for (reference, reason) in [
            ("", "must not be empty"),
            ("sha256:xyz", "must have 64 hex characters, got 3"),
            (short.as_str(), "must have 64 hex characters, got 63"),
            (long.as_str(), "must have 64 hex characters, got 65"),
            (sha512_short.as_str(), "must have 128 hex characters, got 64"),
            ("sha256:", "must have 64 hex characters, got 0"),
            (upper.as_str(), "lower-case hexadecimal"),
            ("md5:d41d8cd98f00b204e9800998ecf8427e", "unsupported digest algorithm \"md5\""),
            (":abc", "unsupported digest algorithm \"\""),
        ] {
            match Reference::parse(reference) {
                Err(NameError::InvalidReference(r)) => {
                    assert!(r.contains(reason), "{reference:?}: {r:?} lacks {reason:?}")
                }
                other => panic!("{reference:?}: expected InvalidReference, got {other:?}"),
            }
        }
        assert!(matches!(Reference::parse("-bad"), Err(NameError::InvalidTag(_))));
        assert!(matches!(Reference::parse("a/b"), Err(NameError::InvalidTag(_))));
    }

    #[test]
    fn errors_display_their_kind() {
        assert_eq!(
            RepoName::parse("x").unwrap_err().to_string(),
            "invalid repository name: repository name must be <project>/<name>, \
             got the single component \"x\""
        );
        assert_eq!(Tag::parse("").unwrap_err().to_string(), "invalid tag: tag must not be empty");
    }
}

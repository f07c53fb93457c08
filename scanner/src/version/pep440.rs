//! PEP 440 versions (PyPI): `[N!]N(.N)*[{a|b|rc}N][.postN][.devN][+local]`,
//! with the normalisations PEP 440 lists (case, `alpha`/`beta`/`c`/`pre`/
//! `preview` spellings, `-`/`_`/`.` separators, implicit numbers, `-N` as a
//! post release, a leading `v`). Ordering: trailing zeros of the release are
//! ignored; `.devN` sorts before pre-releases of its release, pre-releases
//! before the release, post-releases after it; a local version sorts after
//! the same public version.

use std::cmp::Ordering;

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Local {
    Text(String),
    Num(u64),
}

/// The comparison key, field by field in order of precedence.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    epoch: u64,
    release: Vec<u64>,
    /// (0, ..) a dev release without pre or post, (1, kind, n) a
    /// pre-release, (2, ..) none.
    pre: (u8, u8, u64),
    /// (0, 0) none, (1, n) post-release n.
    post: (u8, u64),
    /// (0, n) dev release n, (1, 0) none.
    dev: (u8, u64),
    /// Absent sorts before any local segments.
    local: Option<Vec<Local>>,
}

struct Cursor<'a> {
    s: &'a str,
}

impl Cursor<'_> {
    fn number(&mut self) -> Option<u64> {
        let len = self.s.bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 {
            return None;
        }
        let n = self.s[..len].parse().ok();
        self.s = &self.s[len..];
        n
    }

    fn separator(&mut self) -> bool {
        match self.s.as_bytes().first() {
            Some(b'.' | b'-' | b'_') => {
                self.s = &self.s[1..];
                true
            }
            _ => false,
        }
    }

    /// One of the words, after an optional separator; the longest first.
    fn word(&mut self, words: &[&str]) -> Option<usize> {
        let saved = self.s;
        self.separator();
        for (i, word) in words.iter().enumerate() {
            if let Some(rest) = self.s.strip_prefix(word) {
                self.s = rest;
                return Some(i);
            }
        }
        self.s = saved;
        None
    }

    /// The optional number after a pre, post or dev word (0 if absent).
    fn implicit_number(&mut self) -> Option<u64> {
        let saved = self.s;
        self.separator();
        if self.s.starts_with(|c: char| c.is_ascii_digit()) {
            self.number()
        } else {
            self.s = saved;
            Some(0)
        }
    }
}

fn parse(text: &str) -> Option<Key> {
    let lower = text.trim().to_ascii_lowercase();
    let mut c = Cursor { s: lower.strip_prefix('v').unwrap_or(&lower) };
    let first = c.number()?;
    let (epoch, mut release) = if let Some(rest) = c.s.strip_prefix('!') {
        c.s = rest;
        (first, vec![c.number()?])
    } else {
        (0, vec![first])
    };
    while c.s.starts_with('.') && c.s[1..].starts_with(|ch: char| ch.is_ascii_digit()) {
        c.s = &c.s[1..];
        release.push(c.number()?);
    }
    let pre = match c.word(&["alpha", "beta", "preview", "pre", "rc", "a", "b", "c"]) {
        Some(i) => {
            let kind = match i {
                0 | 5 => 0,
                1 | 6 => 1,
                _ => 2,
            };
            Some((kind, c.implicit_number()?))
        }
        None => None,
    };
    let post = if let Some(rest) = c.s.strip_prefix('-').filter(|r| r.starts_with(|ch: char| ch.is_ascii_digit())) {
        c.s = rest;
        Some(c.number()?)
    } else if c.word(&["post", "rev", "r"]).is_some() {
        Some(c.implicit_number()?)
    } else {
        None
    };
    let dev = if c.word(&["dev"]).is_some() { Some(c.implicit_number()?) } else { None };
    let local = match c.s.strip_prefix('+') {
        Some(local) => {
            let mut segments = Vec::new();
            for part in local.split(['.', '-', '_']) {
                if part.is_empty() || !part.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return None;
                }
                segments.push(match part.parse::<u64>() {
                    Ok(n) => Local::Num(n),
                    Err(_) => Local::Text(part.to_owned()),
                });
            }
            c.s = "";
            Some(segments)
        }
        None => None,
    };
    if !c.s.is_empty() {
        return None;
    }
    while release.len() > 1 && release.last() == Some(&0) {
        release.pop();
    }
    let pre = match (pre, post, dev) {
        (None, None, Some(_)) => (0, 0, 0),
        (Some((kind, n)), _, _) => (1, kind, n),
        (None, _, _) => (2, 0, 0),
    };
    Some(Key { epoch, release, pre, post: post.map_or((0, 0), |n| (1, n)), dev: dev.map_or((1, 0), |n| (0, n)), local })
}

pub(super) fn compare(a: &str, b: &str) -> Option<Ordering> {
    Some(parse(a)?.cmp(&parse(b)?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::{Scheme, assert_ascending};
    use std::cmp::Ordering;

    #[test]
    fn pep440_ordering() {
        // The example order of PEP 440's "Summary of permitted suffixes".
        assert_ascending(
            Scheme::Pep440,
            &[
                "1.dev0",
                "1.0.dev456",
                "1.0a1",
                "1.0a2.dev456",
                "1.0a12.dev456",
                "1.0a12",
                "1.0b1.dev456",
                "1.0b2",
                "1.0b2.post345.dev456",
                "1.0b2.post345",
                "1.0rc1.dev456",
                "1.0rc1",
                "1.0",
                "1.0+abc.5",
                "1.0+abc.7",
                "1.0+5",
                "1.0.post456.dev34",
                "1.0.post456",
                "1.0.15",
                "1.1.dev1",
            ],
        );
        assert_ascending(Scheme::Pep440, &["2.31.0", "2.32.0", "1!0.1"]);
    }

    #[test]
    fn normalised_spellings_are_equal() {
        for (a, b) in [
            ("1.0", "1.0.0"),
            ("1.0ALPHA1", "1.0a1"),
            ("1.0-beta.2", "1.0b2"),
            ("1.0c1", "1.0rc1"),
            ("1.0-preview_3", "1.0rc3"),
            ("1.0-1", "1.0.post1"),
            ("1.0.rev", "1.0.post0"),
            ("1.0-dev", "1.0.dev0"),
            ("v1.0", "1.0"),
            ("1.0+ubuntu-1", "1.0+ubuntu.1"),
        ] {
            assert_eq!(Scheme::Pep440.compare(a, b), Some(Ordering::Equal), "{a} == {b}");
        }
    }

    #[test]
    fn invalid_versions_do_not_parse() {
        for bad in ["", "1.0+", "1.0+a..b", "french toast", "1.0.x", "1.0-", "1.0a1b2"] {
            assert!(!Scheme::Pep440.parses(bad), "{bad}");
        }
    }
}

//! Alpine package versions, ordered as apk-tools does:
//! `number{.number}[letter]{_suffix[number]}[-rN]`, where the suffixes
//! `_alpha _beta _pre _rc` sort before the release and `_cvs _svn _git _hg
//! _p` after it, and a component after a `.` with leading zeros sorts as a
//! fraction (`1.02 < 1.1`).

use std::cmp::Ordering;

/// Token kinds in apk-tools' order; a version's kinds never go backwards
/// except where [`next`] allows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    DigitOrZero,
    Digit,
    Letter,
    Suffix,
    SuffixNo,
    RevisionNo,
    End,
}

const PRE: [&str; 4] = ["alpha", "beta", "pre", "rc"];
const POST: [&str; 5] = ["cvs", "svn", "git", "hg", "p"];

fn tokens(text: &str) -> Option<Vec<(Kind, i64)>> {
    let s = text.as_bytes();
    let mut i = 0;
    let mut kind = Kind::Digit;
    let mut out = Vec::new();
    let number = |i: &mut usize| -> Option<i64> {
        let start = *i;
        while *i < s.len() && s[*i].is_ascii_digit() {
            *i += 1;
        }
        let digits = std::str::from_utf8(&s[start..*i]).ok()?;
        if digits.is_empty() {
            return None;
        }
        // Dates and hashes make long numbers; they still compare in order.
        Some(digits.parse::<i64>().unwrap_or(i64::MAX))
    };
    loop {
        match kind {
            Kind::End => break,
            Kind::DigitOrZero if s.get(i) == Some(&b'0') => {
                let start = i;
                while s.get(i) == Some(&b'0') {
                    i += 1;
                }
                out.push((Kind::DigitOrZero, -((i - start) as i64)));
                if s.get(i).is_some_and(u8::is_ascii_digit) {
                    kind = Kind::Digit;
                    continue;
                }
                // Compare as if a 0 followed, as apk-tools does.
                out.push((Kind::Digit, 0));
                kind = Kind::Digit;
            }
            Kind::DigitOrZero | Kind::Digit | Kind::SuffixNo | Kind::RevisionNo => out.push((kind, number(&mut i)?)),
            Kind::Letter => {
                out.push((Kind::Letter, i64::from(s[i])));
                i += 1;
            }
            Kind::Suffix => {
                let rest = &text[i..];
                let name_len = rest.bytes().take_while(u8::is_ascii_lowercase).count();
                let name = &rest[..name_len];
                let value = if let Some(p) = PRE.iter().position(|n| *n == name) {
                    p as i64 - PRE.len() as i64
                } else {
                    POST.iter().position(|n| *n == name)? as i64 + 1
                };
                out.push((Kind::Suffix, value));
                i += name_len;
            }
        }
        kind = next(kind, s, &mut i)?;
    }
    Some(out)
}

/// The kind of the token after the one that ended at `i`, consuming its
/// separator; `None` if the version is malformed there.
fn next(kind: Kind, s: &[u8], i: &mut usize) -> Option<Kind> {
    let Some(&c) = s.get(*i) else { return Some(Kind::End) };
    let next = if matches!(kind, Kind::Digit | Kind::DigitOrZero) && c.is_ascii_lowercase() {
        Kind::Letter
    } else if kind == Kind::Letter && c.is_ascii_digit() {
        Kind::Digit
    } else if kind == Kind::Suffix && c.is_ascii_digit() {
        Kind::SuffixNo
    } else {
        let next = match c {
            b'.' => Kind::DigitOrZero,
            b'_' => Kind::Suffix,
            b'-' if s.get(*i + 1) == Some(&b'r') => {
                *i += 1;
                Kind::RevisionNo
            }
            _ => return None,
        };
        *i += 1;
        next
    };
    let allowed = next >= kind
        || (next == Kind::DigitOrZero && kind == Kind::Digit)
        || (next == Kind::Suffix && kind == Kind::SuffixNo)
        || (next == Kind::Digit && kind == Kind::Letter);
    allowed.then_some(next)
}

pub(super) fn compare(a: &str, b: &str) -> Option<Ordering> {
    let (a, b) = (tokens(a.trim())?, tokens(b.trim())?);
    let end = (Kind::End, 0);
    for i in 0.. {
        let (ka, va) = a.get(i).copied().unwrap_or(end);
        let (kb, vb) = b.get(i).copied().unwrap_or(end);
        if ka != kb {
            // A pre-release suffix sorts before anything else; otherwise the
            // side whose next token kind comes earlier is the larger one.
            if ka == Kind::Suffix && va < 0 {
                return Some(Ordering::Less);
            }
            if kb == Kind::Suffix && vb < 0 {
                return Some(Ordering::Greater);
            }
            return Some(kb.cmp(&ka));
        }
        if ka == Kind::End {
            return Some(Ordering::Equal);
        }
        if va != vb {
            return Some(va.cmp(&vb));
        }
    }
    Some(Ordering::Equal)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::{Scheme, assert_ascending};

    #[test]
    fn apk_ordering() {
        assert_ascending(
            Scheme::Apk,
            &[
                "1.0_alpha",
                "1.0_alpha2",
                "1.0_beta",
                "1.0_pre1",
                "1.0_rc1",
                "1.0",
                "1.0-r1",
                "1.0-r2",
                "1.0_p1",
                "1.0a",
                "1.0b",
                "1.0.1",
                "1.02",
                "1.1",
                "1.2",
                "1.10",
                "2",
            ],
        );
        assert_ascending(Scheme::Apk, &["1.2.4_git20230717-r3", "1.2.4_git20230717-r4", "1.2.5-r0"]);
        assert_ascending(Scheme::Apk, &["3.1.4-r5", "3.1.4-r6", "3.1.10-r0"]);
        assert_ascending(Scheme::Apk, &["1.0_rc1", "1.0_rc1_p1", "1.0"]);
    }

    #[test]
    fn invalid_versions_do_not_parse() {
        for bad in ["", "1.0-", "1.0-x1", "1.0_foo", "1..2", "v1.0", "1.0a.b"] {
            assert!(!Scheme::Apk.parses(bad), "{bad}");
        }
    }
}

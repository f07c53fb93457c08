//! RPM versions, `[epoch:]version[-release]`, each part compared with
//! rpmvercmp: alphanumeric segments, separators ignored, numbers by value
//! and above letters, `~` before everything (pre-releases), `^` after the
//! version it extends but before anything longer (snapshots).

use std::cmp::Ordering;

fn parse(text: &str) -> Option<(u64, &str, Option<&str>)> {
    let text = text.trim();
    if text.is_empty() || text.contains(char::is_whitespace) {
        return None;
    }
    let (epoch, rest) = match text.split_once(':') {
        Some((epoch, rest)) => (epoch.parse().ok()?, rest),
        None => (0, text),
    };
    let (version, release) = match rest.rsplit_once('-') {
        Some((version, release)) => (version, Some(release)),
        None => (rest, None),
    };
    if version.is_empty() {
        return None;
    }
    Some((epoch, version, release))
}

pub(super) fn compare(a: &str, b: &str) -> Option<Ordering> {
    let (ea, va, ra) = parse(a)?;
    let (eb, vb, rb) = parse(b)?;
    let release = match (ra, rb) {
        (Some(ra), Some(rb)) => rpmvercmp(ra, rb),
        // A range bound without a release covers every release of it.
        _ => Ordering::Equal,
    };
    Some(ea.cmp(&eb).then_with(|| rpmvercmp(va, vb)).then(release))
}

pub(super) fn rpmvercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    let separator = |s: &[u8]| s.first().is_some_and(|c| !c.is_ascii_alphanumeric() && *c != b'~' && *c != b'^');
    loop {
        while separator(a) {
            a = &a[1..];
        }
        while separator(b) {
            b = &b[1..];
        }
        let (fa, fb) = (a.first().copied(), b.first().copied());
        if fa == Some(b'~') || fb == Some(b'~') {
            if fa != Some(b'~') {
                return Ordering::Greater;
            }
            if fb != Some(b'~') {
                return Ordering::Less;
            }
            a = &a[1..];
            b = &b[1..];
            continue;
        }
        if fa == Some(b'^') || fb == Some(b'^') {
            if a.is_empty() {
                return Ordering::Less;
            }
            if b.is_empty() {
                return Ordering::Greater;
            }
            if fa != Some(b'^') {
                return Ordering::Greater;
            }
            if fb != Some(b'^') {
                return Ordering::Less;
            }
            a = &a[1..];
            b = &b[1..];
            continue;
        }
        if a.is_empty() || b.is_empty() {
            break;
        }
        let numeric = a[0].is_ascii_digit();
        let run = |s: &[u8]| {
            s.iter().take_while(|c| if numeric { c.is_ascii_digit() } else { c.is_ascii_alphabetic() }).count()
        };
        let (la, lb) = (run(a), run(b));
        let (sa, sb) = (&a[..la], &b[..lb]);
        a = &a[la..];
        b = &b[lb..];
        if sb.is_empty() {
            // A number against letters: the number is newer.
            return if numeric { Ordering::Greater } else { Ordering::Less };
        }
        let order = if numeric {
            let (sa, sb) = (strip_zeros(sa), strip_zeros(sb));
            sa.len().cmp(&sb.len()).then_with(|| sa.cmp(sb))
        } else {
            sa.cmp(sb)
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    match (a.is_empty(), b.is_empty()) {
        (true, true) => Ordering::Equal,
        (false, _) => Ordering::Greater,
        (true, false) => Ordering::Less,
    }
}

fn strip_zeros(s: &[u8]) -> &[u8] {
    let zeros = s.iter().take_while(|&&c| c == b'0').count();
    &s[zeros..]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::{Scheme, assert_ascending};
    use super::rpmvercmp;
    use std::cmp::Ordering;

    #[test]
    fn rpmvercmp_cases() {
        // Cases from rpm's own test suite (rpmvercmp.at).
        for (a, b, want) in [
            ("1.0", "1.0", Ordering::Equal),
            ("1.0", "2.0", Ordering::Less),
            ("2.0.1", "2.0", Ordering::Greater),
            ("2.0.1a", "2.0.1", Ordering::Greater),
            ("5.5p1", "5.5p2", Ordering::Less),
            ("5.5p10", "5.5p1", Ordering::Greater),
            ("10xyz", "10.1xyz", Ordering::Less),
            ("xyz10", "xyz10.1", Ordering::Less),
            ("1.0010", "1.9", Ordering::Greater),
            ("a", "1", Ordering::Less),
            ("1", "a", Ordering::Greater),
            ("2.0a", "2.0", Ordering::Greater),
            ("6.0.rc1", "6.0", Ordering::Greater),
            ("1.0~rc1", "1.0", Ordering::Less),
            ("1.0~rc1", "1.0~rc2", Ordering::Less),
            ("1.0~rc1~git123", "1.0~rc1", Ordering::Less),
            ("1.0^", "1.0", Ordering::Greater),
            ("1.0^git1", "1.0", Ordering::Greater),
            ("1.0^git1", "1.01", Ordering::Less),
            ("1.0^git1", "1.0^git2", Ordering::Less),
            ("1.0~rc1^git1", "1.0~rc1", Ordering::Greater),
            ("1.0^git1~pre", "1.0^git1", Ordering::Less),
        ] {
            assert_eq!(rpmvercmp(a, b), want, "{a} vs {b}");
        }
    }

    #[test]
    fn epoch_version_release() {
        assert_ascending(Scheme::Rpm, &["1.0-1.el9", "1.0-2.el9", "1.1-1.el9", "1:0.1-1.el9"]);
        assert_eq!(Scheme::Rpm.compare("1.0-5.el9", "1.0"), Some(Ordering::Equal));
        assert!(!Scheme::Rpm.parses("x:1.0"));
        assert!(!Scheme::Rpm.parses(""));
    }
}

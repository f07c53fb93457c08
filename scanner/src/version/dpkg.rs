//! Debian versions, `[epoch:]upstream[-revision]`, compared as
//! Debian policy 5.6.12 and dpkg's `verrevcmp` do: alternating non-digit
//! and digit runs; letters before other characters, `~` before everything,
//! even the end of the string.

use std::cmp::Ordering;

struct Version<'a> {
    epoch: u64,
    upstream: &'a str,
    revision: &'a str,
}

fn parse(text: &str) -> Option<Version<'_>> {
    let text = text.trim();
    let (epoch, rest) = match text.split_once(':') {
        Some((epoch, rest)) if !epoch.is_empty() && epoch.bytes().all(|b| b.is_ascii_digit()) => {
            (epoch.parse().ok()?, rest)
        }
        Some(_) => return None,
        None => (0, text),
    };
    let (upstream, revision) = rest.rsplit_once('-').unwrap_or((rest, ""));
    let allowed = |s: &str, extra: &[u8]| s.bytes().all(|b| b.is_ascii_alphanumeric() || extra.contains(&b));
    if upstream.is_empty()
        || !upstream.starts_with(|c: char| c.is_ascii_digit())
        || !allowed(upstream, b".+~-:")
        || !allowed(revision, b".+~")
    {
        return None;
    }
    Some(Version { epoch, upstream, revision })
}

pub(super) fn compare(a: &str, b: &str) -> Option<Ordering> {
    let (a, b) = (parse(a)?, parse(b)?);
    Some(
        a.epoch
            .cmp(&b.epoch)
            .then_with(|| verrevcmp(a.upstream, b.upstream))
            .then_with(|| verrevcmp(a.revision, b.revision)),
    )
}

fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) => i32::from(c) + 256,
    }
}

fn verrevcmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    let digit = |s: &[u8]| s.first().is_some_and(u8::is_ascii_digit);
    while !a.is_empty() || !b.is_empty() {
        while (!a.is_empty() && !digit(a)) || (!b.is_empty() && !digit(b)) {
            let (ac, bc) = (order(a.first().copied()), order(b.first().copied()));
            if ac != bc {
                return ac.cmp(&bc);
            }
            a = a.get(1..).unwrap_or_default();
            b = b.get(1..).unwrap_or_default();
        }
        let trim = |s: &[u8]| -> usize { s.iter().take_while(|&&c| c == b'0').count() };
        a = &a[trim(a)..];
        b = &b[trim(b)..];
        let (da, db) =
            (a.iter().take_while(|c| c.is_ascii_digit()).count(), b.iter().take_while(|c| c.is_ascii_digit()).count());
        // Without leading zeros, the longer run of digits is the larger number.
        let by_value = da.cmp(&db).then_with(|| a[..da].cmp(&b[..db]));
        if by_value != Ordering::Equal {
            return by_value;
        }
        a = &a[da..];
        b = &b[db..];
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::{Scheme, assert_ascending};

    #[test]
    fn policy_ordering() {
        assert_ascending(
            Scheme::Dpkg,
            &[
                "0.9",
                "1.0~~",
                "1.0~~a",
                "1.0~",
                "1.0",
                "1.0-1",
                "1.0-1+b1",
                "1.0-1.1",
                "1.0a",
                "1.0+dfsg",
                "1.0.1",
                "1.2",
                "1.10",
                "2:0.1",
                "2:0.1-1~bpo1",
                "2:0.1-1",
            ],
        );
        assert_ascending(Scheme::Dpkg, &["2.36-9", "2.36-9+deb12u3", "2.36-9+deb12u4", "2.36-10"]);
        assert_ascending(Scheme::Dpkg, &["3.0.11-1~deb12u2", "3.0.11-1", "3.0.13-1~deb12u1"]);
        assert_eq!(Scheme::Dpkg.compare("1.01", "1.1"), Some(std::cmp::Ordering::Equal));
        assert_eq!(Scheme::Dpkg.compare("1.0", "1.0-0"), Some(std::cmp::Ordering::Equal));
    }

    #[test]
    fn invalid_versions_do_not_parse() {
        for bad in ["", "a1.0", "1.0 beta", "x:1.0", ":1", "1.0-r@1"] {
            assert!(!Scheme::Dpkg.parses(bad), "{bad}");
        }
        assert!(Scheme::Dpkg.parses("1:2.3-4:5-6"));
    }
}

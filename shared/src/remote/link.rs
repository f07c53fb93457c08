//! The `Link` header of a paged listing (`/v2/_catalog`, `…/tags/list`):
//! `<url>; rel="next"`, the URL possibly relative to the registry.

/// The target of the `rel="next"` link among the comma-separated links of
/// `header`, as written (relative or absolute).
pub fn next_link(header: &str) -> Option<String> {
    let mut rest = header;
    loop {
        let start = rest.find('<')?;
        let end = start + rest[start..].find('>')?;
        let target = &rest[start + 1..end];
        let after = &rest[end + 1..];
        // The parameters run to the next link (`, <`) or the end.
        let params_end = after.find('<').unwrap_or(after.len());
        let params = &after[..params_end];
        let is_next = params.split(';').any(|p| {
            let p = p.trim().trim_end_matches(',').trim();
            p.split_once('=').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("rel")
                    && v.trim().trim_matches('"').split_whitespace().any(|r| r.eq_ignore_ascii_case("next"))
            })
        });
        if is_next {
            return Some(target.to_owned());
        }
        rest = after;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_next_link() {
        assert_eq!(next_link(r#"</v2/_catalog?last=b&n=2>; rel="next""#).as_deref(), Some("/v2/_catalog?last=b&n=2"));
        assert_eq!(
            next_link(r#"</api/v2.0/x?page=1>; rel="prev" , </api/v2.0/x?page=3>; rel="next""#).as_deref(),
            Some("/api/v2.0/x?page=3")
        );
        assert_eq!(
            next_link(r#"<https://r.example/v2/a/tags/list?n=1&last=x>;rel=next"#).as_deref(),
            Some("https://r.example/v2/a/tags/list?n=1&last=x")
        );
        assert_eq!(next_link(r#"</x?page=1>; rel="prev""#), None);
        assert_eq!(next_link(""), None);
        assert_eq!(next_link("garbage <unterminated"), None);
    }
}

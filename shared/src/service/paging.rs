//! Paged listings.
//!
//! Harbor pages by number (`page`, `page_size`) and reports the total in
//! `X-Total-Count`. Every list is a table partition kept in the order the
//! API shows it — the records themselves when they are small, else small
//! entries written beside them — so a page is a query of `page_size` items:
//! - page 1, and a page reached through the `after` key of the previous
//!   page (what the `Link: rel="next"` of a response carries), cost the
//!   page's items;
//! - a jump to page *k* without it first walks past `(k-1)·page_size`
//!   entries (or key-only reads of records), never reading the records it
//!   skips;
//! - the total of an unfiltered list is its [`keys::counter`], written in
//!   the transaction that adds or removes an entry (sharded, so writers of
//!   one list rarely meet), never a count of the partition.
//!
//! A filter the key order cannot serve (Harbor's fuzzy `k=~v`, a filter on
//! an attribute of the entry) walks the entries and tests each one; its
//! total is then counted by that walk. Each listing documents which of its
//! filters are served from the key.

use std::collections::VecDeque;

use crate::meta::keys::{self, Counted};
use crate::meta::{Item, MetaStore, Query, Write};

use super::{Registry, ServiceResult};

/// The most items one page holds.
pub const MAX_PAGE_SIZE: usize = 100;

/// Which page of a listing a caller wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// 1-based.
    pub page: u64,
    /// 1..=[`MAX_PAGE_SIZE`].
    pub size: usize,
    /// The page starts after this sort key (the `next` of the page before),
    /// instead of walking past the earlier pages.
    pub after: Option<String>,
    /// The list in descending key order.
    pub descending: bool,
}

impl PageRequest {
    pub fn first(size: usize) -> Self {
        Self { page: 1, size, after: None, descending: false }
    }

    /// How many matching entries come before the page.
    fn skip(&self) -> u64 {
        if self.after.is_some() { 0 } else { self.page.saturating_sub(1).saturating_mul(self.size as u64) }
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct Listing<T> {
    pub items: Vec<T>,
    /// Items of the whole (filtered) list.
    pub total: u64,
    /// Where the next page starts, when one follows.
    pub next: Option<String>,
}

impl<T> Listing<T> {
    /// The page `req` asks for of a list held whole in memory (a short
    /// one: a project's 15 rules, an execution's tasks), by page number.
    pub fn of_all(all: Vec<T>, req: &PageRequest) -> Self {
        let total = all.len();
        let start = usize::try_from(req.page.saturating_sub(1)).unwrap_or(usize::MAX).saturating_mul(req.size);
        let items: Vec<T> = all.into_iter().skip(start).take(req.size).collect();
        // Pages are found by number: the cursor of the next one says nothing.
        let next = (start.saturating_add(items.len()) < total).then(String::new);
        Self { items, total: total as u64, next }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Listing<U> {
        Listing { items: self.items.into_iter().map(f).collect(), total: self.total, next: self.next }
    }
}

/// A value test of Harbor's `q` syntax: `k=v`, `k=~v` (case-insensitive
/// substring), `k={a b c}` (any of), `k=[a~b]` (range, inclusive; either
/// end may be empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    Exact(String),
    Fuzzy(String),
    AnyOf(Vec<String>),
    /// Every one of the values (Harbor's `k=(v1 v2)`): of a field with one
    /// value, only when they are all that value.
    AllOf(Vec<String>),
    Range {
        min: Option<String>,
        max: Option<String>,
    },
}

impl Match {
    pub fn matches(&self, value: &str) -> bool {
        match self {
            Self::Exact(v) => value == v,
            Self::Fuzzy(v) => value.to_lowercase().contains(&v.to_lowercase()),
            Self::AnyOf(vs) => vs.iter().any(|v| v == value),
            Self::AllOf(vs) => vs.iter().all(|v| v == value),
            Self::Range { min, max } => {
                let num = |s: &str| s.parse::<i64>().ok();
                let within = |bound: &str, below: bool| match (num(value), num(bound)) {
                    (Some(a), Some(b)) => {
                        if below {
                            a >= b
                        } else {
                            a <= b
                        }
                    }
                    _ => {
                        if below {
                            value >= bound
                        } else {
                            value <= bound
                        }
                    }
                };
                min.as_deref().is_none_or(|m| within(m, true)) && max.as_deref().is_none_or(|m| within(m, false))
            }
        }
    }

    /// Whether a field holding several `values` passes: an exact value or
    /// each of an `AllOf` among them, any of an `AnyOf`.
    pub fn matches_any_of<'a>(&self, mut values: impl Iterator<Item = &'a str> + Clone) -> bool {
        match self {
            Self::AllOf(vs) => vs.iter().all(|v| values.clone().any(|x| x == v)),
            _ => values.any(|x| self.matches(x)),
        }
    }

    /// The one value an exact test names, which a key can look up.
    pub fn exact(&self) -> Option<&str> {
        match self {
            Self::Exact(v) => Some(v),
            _ => None,
        }
    }
}

/// A key-ordered stream of entries: a partition read page by page, or a
/// list already in memory (a user's memberships).
pub(super) enum Source {
    Query { query: Option<Query>, buffered: VecDeque<Item> },
    List(VecDeque<Item>),
}

impl Source {
    pub(super) fn query(query: Query) -> Self {
        Self::Query { query: Some(query), buffered: VecDeque::new() }
    }

    /// Entries in memory (sorted by [`walk`]).
    pub(super) fn list(items: Vec<Item>) -> Self {
        Self::List(items.into())
    }

    /// Puts the stream in the order of the walk and starts it after `sk`.
    fn prepare(&mut self, descending: bool, after: Option<&str>) {
        match self {
            Self::Query { query: Some(q), .. } => {
                q.reverse = descending;
                q.start_after = after.map(str::to_owned);
            }
            Self::Query { query: None, .. } => {}
            Self::List(items) => {
                let mut v: Vec<Item> = items.drain(..).collect();
                v.sort_by(|a, b| if descending { b.sk.cmp(&a.sk) } else { a.sk.cmp(&b.sk) });
                v.dedup_by(|a, b| a.sk == b.sk);
                if let Some(after) = after {
                    v.retain(|i| if descending { i.sk.as_str() < after } else { i.sk.as_str() > after });
                }
                *items = v.into();
            }
        }
    }

    async fn peek(&mut self, meta: &dyn MetaStore, batch: usize) -> ServiceResult<Option<&Item>> {
        if let Self::Query { query, buffered } = self {
            while buffered.is_empty() {
                let Some(mut q) = query.take() else { break };
                q.limit = batch.clamp(1, 1000);
                let page = meta.query(q.clone()).await?;
                buffered.extend(page.items);
                *query = page.next.map(|c| Query { cursor: Some(c), start_after: None, ..q });
            }
        }
        Ok(match self {
            Self::Query { buffered, .. } => buffered.front(),
            Self::List(items) => items.front(),
        })
    }

    fn pop(&mut self) -> Option<Item> {
        match self {
            Self::Query { buffered, .. } => buffered.pop_front(),
            Self::List(items) => items.pop_front(),
        }
    }
}

/// Walks the union of `sources` in sort-key order (descending when `req`
/// says so; an entry present in several counts once) and returns the page
/// `req` of the entries `keep` accepts. With `count_all`, the walk goes on to the end to count every
/// accepted entry (for the total of a filtered list); else the total is
/// `None`.
pub(super) async fn walk(
    meta: &dyn MetaStore,
    mut sources: Vec<Source>,
    req: &PageRequest,
    count_all: bool,
    keep: impl Fn(&Item) -> bool,
) -> ServiceResult<(Vec<Item>, Option<String>, Option<u64>)> {
    for s in &mut sources {
        s.prepare(req.descending, req.after.as_deref());
    }
    let mut skip = req.skip();
    // What one query reads: the entries to skip and the page, plus one to
    // learn whether more follow.
    let batch = usize::try_from(skip).unwrap_or(usize::MAX).saturating_add(req.size).saturating_add(1);
    let mut page = Vec::with_capacity(req.size);
    let mut seen = 0u64;
    let mut more = false;
    loop {
        // The first sort key any source holds next, in the walk's order.
        let mut first: Option<String> = None;
        for s in &mut sources {
            if let Some(item) = s.peek(meta, batch).await?
                && first.as_ref().is_none_or(|m| if req.descending { item.sk > *m } else { item.sk < *m })
            {
                first = Some(item.sk.clone());
            }
        }
        let Some(sk) = first else { break };
        let mut entry = None;
        for s in &mut sources {
            if s.peek(meta, batch).await?.is_some_and(|i| i.sk == sk) {
                let popped = s.pop();
                entry = entry.or(popped);
            }
        }
        let Some(entry) = entry.filter(|e| keep(e)) else { continue };
        seen += 1;
        if skip > 0 {
            skip -= 1;
        } else if page.len() < req.size {
            page.push(entry);
        } else {
            more = true;
            if !count_all {
                break;
            }
        }
    }
    let next = if more { page.last().map(|i: &Item| i.sk.clone()) } else { None };
    Ok((page, next, count_all.then_some(seen)))
}

impl Registry {
    /// The length of a counted list.
    pub(super) async fn count(&self, list: Counted<'_>) -> ServiceResult<u64> {
        let shards = self.meta.query(Query::table(keys::counter(list), "").limit(100)).await?;
        let total: i64 = shards.items.iter().filter_map(|i| i.i64(keys::attr::COUNT)).sum();
        Ok(u64::try_from(total).unwrap_or(0))
    }

    /// One page of a single partition (see [`walk`]), with the list's
    /// total: from its counter when nothing is filtered, else by counting.
    pub(super) async fn page_of(
        &self,
        query: Query,
        counted: Counted<'_>,
        req: &PageRequest,
        filtered: bool,
        keep: impl Fn(&Item) -> bool,
    ) -> ServiceResult<(Vec<Item>, Option<String>, u64)> {
        let (items, next, counted_total) =
            walk(self.meta.as_ref(), vec![Source::query(query)], req, filtered, keep).await?;
        let total = match counted_total {
            Some(n) => n,
            None => self.count(counted).await?,
        };
        Ok((items, next, total))
    }
}

/// The write that counts `entry` in (`delta` 1) or out (-1) of a list, for
/// the transaction that adds or removes it.
pub(super) fn count_write(list: Counted<'_>, entry: &str, delta: i64) -> Write {
    let (pk, sk) = keys::counter_shard(list, entry);
    Write::Add { pk, sk, attr: keys::attr::COUNT.to_owned(), delta, cond: crate::meta::Condition::Always }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::meta::Item;

    fn entries(names: &[&str]) -> Vec<Item> {
        names.iter().map(|n| Item::new("L", *n)).collect()
    }

    fn names(items: &[Item]) -> Vec<&str> {
        items.iter().map(|i| i.sk.as_str()).collect()
    }

    #[test]
    fn harbor_q_values() {
        assert!(Match::Fuzzy("Lib".into()).matches("my-library"));
        assert!(!Match::Exact("lib".into()).matches("library"));
        assert!(Match::AnyOf(vec!["a".into(), "b".into()]).matches("b"));
        let r = Match::Range { min: Some("10".into()), max: Some("20".into()) };
        assert!(r.matches("15") && r.matches("10") && !r.matches("9") && !r.matches("100"));
        assert!(Match::Range { min: None, max: Some("b".into()) }.matches("a"));
    }

    #[tokio::test]
    async fn pages_of_a_merged_walk() {
        let (_dir, registry) = crate::testkit::local_registry().await;
        let meta = registry.meta_for_tests();
        for n in ["a", "c", "e", "g", "i"] {
            meta.put(Item::new("L", n), crate::meta::Condition::Always).await.unwrap();
        }
        let sources = || vec![Source::query(Query::table("L", "")), Source::list(entries(&["b", "c", "h"]))];
        let req = |page, after: Option<&str>| PageRequest {
            page,
            size: 3,
            after: after.map(str::to_owned),
            descending: false,
        };
        let (p1, next, total) = walk(meta.as_ref(), sources(), &req(1, None), true, |_| true).await.unwrap();
        assert_eq!((names(&p1), next.as_deref(), total), (vec!["a", "b", "c"], Some("c"), Some(7)), "c once");
        let (p2, next, _) = walk(meta.as_ref(), sources(), &req(2, None), false, |_| true).await.unwrap();
        assert_eq!((names(&p2), next.as_deref()), (vec!["e", "g", "h"], Some("h")));
        let (p2b, _, _) = walk(meta.as_ref(), sources(), &req(2, Some("c")), false, |_| true).await.unwrap();
        assert_eq!(p2b, p2, "following the cursor lands on the same page");
        let (p3, next, _) = walk(meta.as_ref(), sources(), &req(3, None), false, |_| true).await.unwrap();
        assert_eq!((names(&p3), next), (vec!["i"], None));
        let (odd, _, total) = walk(meta.as_ref(), sources(), &req(1, None), true, |i| i.sk != "c").await.unwrap();
        assert_eq!((names(&odd), total), (vec!["a", "b", "e"], Some(6)));
        let (none, next, _) = walk(meta.as_ref(), sources(), &req(9, None), false, |_| true).await.unwrap();
        assert!(none.is_empty() && next.is_none());
        let down = |page, after: Option<&str>| PageRequest { descending: true, ..req(page, after) };
        let (d1, next, _) = walk(meta.as_ref(), sources(), &down(1, None), false, |_| true).await.unwrap();
        assert_eq!((names(&d1), next.as_deref()), (vec!["i", "h", "g"], Some("g")), "descending");
        let (d2, _, _) = walk(meta.as_ref(), sources(), &down(2, Some("g")), false, |_| true).await.unwrap();
        assert_eq!(names(&d2), ["e", "c", "b"]);
    }

    #[tokio::test]
    async fn counters_follow_their_writes() {
        let (_dir, registry) = crate::testkit::local_registry().await;
        let meta = registry.meta_for_tests();
        assert_eq!(registry.count(Counted::Users).await.unwrap(), 0);
        for name in ["alice", "bob", "carol", "dave", "erin"] {
            meta.transact(vec![count_write(Counted::Users, name, 1)]).await.unwrap();
        }
        meta.transact(vec![count_write(Counted::Users, "bob", -1)]).await.unwrap();
        assert_eq!(registry.count(Counted::Users).await.unwrap(), 4);
        assert_eq!(registry.count(Counted::Groups).await.unwrap(), 0, "each list its own");
    }
}

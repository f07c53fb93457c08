//! The `MetaStore` port: the single metadata table (DynamoDB, or an embedded
//! redb database locally).
//!
//! Owns: items addressed by partition key + sort key, conditional writes,
//! sort-key-prefix queries with cursors (on the table and its GSIs), atomic
//! counters and all-or-nothing transactions. It knows nothing of projects or
//! manifests: keys come from [`keys`]. No operation scans the whole table.
//! Every implementation passes the conformance suite in [`conformance`].
//!
//! Rules every backend keeps:
//! - attributes are JSON values; `pk` and `sk` are not attributes;
//! - `gsi1pk`/`gsi1sk` (and `gsi2pk`/`gsi2sk`) string attributes place an
//!   item in that index; items without them are not in it;
//! - an item whose numeric `expires_at` (Unix seconds) has passed is never
//!   returned by `get` or `query`, but until it is purged it still exists for
//!   conditions;
//! - an item is at most [`MAX_ITEM_BYTES`] as JSON; keys are 1..=1024 bytes
//!   without NUL, and so are index key attributes;
//! - reads of the table are strongly consistent; queries of an index are
//!   eventually consistent (DynamoDB cannot read a GSI consistently), so a
//!   caller that must see its own write reads the table;
//! - `add` may, if a network failure hides the first attempt's success,
//!   apply twice: counters that must be exact are changed in a transaction.

pub mod counting;
pub mod dynamo;
pub mod keys;
pub mod local;
pub mod schema;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

use std::fmt::Debug;

use async_trait::async_trait;
use serde_json::Value;

pub use crate::port::{ErrorKind, PortError, PortResult};

pub type Attrs = serde_json::Map<String, Value>;

/// Largest item, as serialized JSON (DynamoDB's limit is 400 KB with its
/// own encoding; this leaves room for it).
pub const MAX_ITEM_BYTES: usize = 350 * 1024;
/// Most writes in one transaction.
pub const MAX_TRANSACTION_WRITES: usize = 25;
/// Attribute holding the expiry time (Unix seconds) of an item.
pub const TTL_ATTR: &str = keys::attr::EXPIRES_AT;

#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub pk: String,
    pub sk: String,
    pub attrs: Attrs,
}

impl Item {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self { pk: pk.into(), sk: sk.into(), attrs: Attrs::new() }
    }

    pub fn with(mut self, attr: &str, value: impl Into<Value>) -> Self {
        self.attrs.insert(attr.to_owned(), value.into());
        self
    }

    pub fn str(&self, attr: &str) -> Option<&str> {
        self.attrs.get(attr).and_then(Value::as_str)
    }

    pub fn i64(&self, attr: &str) -> Option<i64> {
        self.attrs.get(attr).and_then(Value::as_i64)
    }

    /// Whether the item's `expires_at` lies at or before `now` (Unix seconds).
    pub fn is_expired(&self, now: i64) -> bool {
        self.i64(TTL_ATTR).is_some_and(|t| t <= now)
    }
}

/// The table or one of its global secondary indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Index {
    Table,
    Gsi1,
    Gsi2,
}

impl Index {
    /// The attributes holding this index's partition and sort key.
    pub fn key_attrs(self) -> Option<(&'static str, &'static str)> {
        match self {
            Self::Table => None,
            Self::Gsi1 => Some((keys::attr::GSI1_PK, keys::attr::GSI1_SK)),
            Self::Gsi2 => Some((keys::attr::GSI2_PK, keys::attr::GSI2_SK)),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Table => "table",
            Self::Gsi1 => "gsi1",
            Self::Gsi2 => "gsi2",
        }
    }
}

/// What must hold for a write to apply. Conditions are evaluated on the
/// item as stored (expired or not) atomically with the write.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Condition {
    #[default]
    Always,
    /// The item exists.
    Exists,
    /// The item does not exist.
    NotExists,
    /// The item exists and `attr` equals `value`.
    Equals { attr: String, value: Value },
    /// The item or its `attr` is missing, or `attr` is a number ≤ `max`.
    AtMost { attr: String, max: i64 },
}

impl Condition {
    pub fn equals(attr: &str, value: impl Into<Value>) -> Self {
        Self::Equals { attr: attr.to_owned(), value: value.into() }
    }

    pub fn at_most(attr: &str, max: i64) -> Self {
        Self::AtMost { attr: attr.to_owned(), max }
    }

    /// Evaluates the condition against the stored item (for backends that
    /// evaluate conditions themselves).
    pub fn holds(&self, item: Option<&Item>) -> bool {
        match self {
            Self::Always => true,
            Self::Exists => item.is_some(),
            Self::NotExists => item.is_none(),
            Self::Equals { attr, value } => item.and_then(|i| i.attrs.get(attr)).is_some_and(|v| json_eq(v, value)),
            Self::AtMost { attr, max } => match item.and_then(|i| i.attrs.get(attr)) {
                None => true,
                Some(v) => v.as_f64().is_some_and(|n| n <= *max as f64),
            },
        }
    }
}

/// JSON equality that treats numbers by value (`1` equals `1.0`), as
/// DynamoDB compares numbers.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// One write of a transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Creates or replaces the whole item.
    Put { item: Item, cond: Condition },
    /// Removes the item (a missing item is fine under `Condition::Always`).
    Delete { pk: String, sk: String, cond: Condition },
    /// Adds `delta` to the numeric `attr`, creating the item and attribute
    /// (from 0) when missing.
    Add { pk: String, sk: String, attr: String, delta: i64, cond: Condition },
    /// Sets each of `attrs` (overwriting those present, keeping the item's
    /// other attributes), creating the item when missing. `attrs` may not
    /// name the key attributes.
    Set { pk: String, sk: String, attrs: Attrs, cond: Condition },
    /// Writes nothing; fails the transaction unless `cond` holds.
    Check { pk: String, sk: String, cond: Condition },
}

impl Write {
    pub fn key(&self) -> (&str, &str) {
        match self {
            Self::Put { item, .. } => (&item.pk, &item.sk),
            Self::Delete { pk, sk, .. }
            | Self::Add { pk, sk, .. }
            | Self::Set { pk, sk, .. }
            | Self::Check { pk, sk, .. } => (pk, sk),
        }
    }

    pub fn cond(&self) -> &Condition {
        match self {
            Self::Put { cond, .. }
            | Self::Delete { cond, .. }
            | Self::Add { cond, .. }
            | Self::Set { cond, .. }
            | Self::Check { cond, .. } => cond,
        }
    }
}

/// A query of one partition of the table or an index.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub index: Index,
    pub pk: String,
    /// Only items whose sort key starts with this (empty: all).
    pub sk_prefix: String,
    /// Resume after this cursor, from a previous page's `next`.
    pub cursor: Option<String>,
    /// Start past this sort key (in the query's direction), whether or not
    /// an item has it: the `last` of a tag or catalog listing. Table
    /// queries only, and not together with `cursor`.
    pub start_after: Option<String>,
    /// At most this many items per page (1..=1000).
    pub limit: usize,
    /// Descending sort-key order.
    pub reverse: bool,
    /// Return each item's `pk` and `sk` only, without its attributes: for
    /// walking past items whose contents are not needed (on DynamoDB a
    /// projection of the keys).
    pub keys_only: bool,
}

impl Query {
    pub fn table(pk: impl Into<String>, sk_prefix: impl Into<String>) -> Self {
        Self {
            index: Index::Table,
            pk: pk.into(),
            sk_prefix: sk_prefix.into(),
            cursor: None,
            start_after: None,
            limit: 1000,
            reverse: false,
            keys_only: false,
        }
    }

    pub fn index(index: Index, pk: impl Into<String>, sk_prefix: impl Into<String>) -> Self {
        Self { index, ..Self::table(pk, sk_prefix) }
    }

    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    pub fn after(mut self, cursor: Option<String>) -> Self {
        self.cursor = cursor;
        self
    }

    pub fn start_after(mut self, sk: Option<String>) -> Self {
        self.start_after = sk;
        self
    }

    pub fn reverse(mut self) -> Self {
        self.reverse = true;
        self
    }

    pub fn keys_only(mut self) -> Self {
        self.keys_only = true;
        self
    }
}

/// One page of a query, in sort-key order (the order of items with equal
/// index sort keys is unspecified, but paging visits each once). A page may
/// hold fewer than `limit` items, even none, while `next` is `Some`;
/// `next: None` means the query is done.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    pub items: Vec<Item>,
    pub next: Option<String>,
}

#[async_trait]
pub trait MetaStore: Debug + Send + Sync + 'static {
    /// The item, or `None` when missing or expired.
    async fn get(&self, pk: &str, sk: &str) -> PortResult<Option<Item>>;

    /// Creates or replaces an item if `cond` holds (`ConditionFailed`
    /// otherwise, and nothing is written).
    async fn put(&self, item: Item, cond: Condition) -> PortResult<()>;

    /// Deletes an item if `cond` holds. Deleting a missing item under
    /// `Condition::Always` is Ok.
    async fn delete(&self, pk: &str, sk: &str, cond: Condition) -> PortResult<()>;

    /// Atomically adds `delta` to the numeric attribute `attr` if `cond`
    /// holds, creating item and attribute from 0 when missing, and returns
    /// the new value. A non-numeric attribute is `InvalidInput`.
    async fn add(&self, pk: &str, sk: &str, attr: &str, delta: i64, cond: Condition) -> PortResult<i64>;

    /// One page of a partition, by sort-key prefix. An invalid cursor is
    /// `InvalidInput`.
    async fn query(&self, query: Query) -> PortResult<Page>;

    /// Applies 1..=25 writes to distinct items all together, or none of them
    /// when any condition fails (`ConditionFailed`, naming the write's index).
    async fn transact(&self, writes: Vec<Write>) -> PortResult<()>;

    /// A walk over the whole table for the items that have expired but are
    /// still stored (reads never return them; DynamoDB removes them within
    /// days, the embedded store never): examines at most `limit` items
    /// (1..=1000) from where the cursor `after` left off and returns the
    /// expired ones among them with their attributes; `next` is `None` once
    /// the table is done. A page may hold no item and still have a `next`.
    /// Garbage collection deletes them with `Condition::at_most` on the
    /// expiry, so an item renewed meanwhile stays.
    async fn expired(&self, after: Option<String>, limit: usize) -> PortResult<Page>;

    /// The same walk over the whole table for the live items (every item
    /// a read may return): examines at most `limit` items (1..=1000) from
    /// where `after` left off and returns the live ones among them with
    /// their attributes; `next` is `None` once the table is done, and a page
    /// may hold no item and still have a `next`. For backups (`berth
    /// export`): not a snapshot, so writes made meanwhile may or may not
    /// be seen.
    async fn scan(&self, after: Option<String>, limit: usize) -> PortResult<Page>;

    /// Reads a whole partition (every page). For small partitions only.
    async fn query_all(&self, query: Query) -> PortResult<Vec<Item>> {
        let mut out = Vec::new();
        let mut query = query;
        loop {
            let page = self.query(query.clone()).await?;
            out.extend(page.items);
            match page.next {
                Some(next) => query.cursor = Some(next),
                None => return Ok(out),
            }
        }
    }
}

/// Where a `start_after` sort key falls relative to a query's prefix range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartPoint {
    /// Before the range in the query's direction: start at the range's edge.
    RangeStart,
    /// Inside the range: start past this key.
    After(String),
    /// Past the range: the query is empty.
    Exhausted,
}

/// Places `query.start_after` against the query's prefix range, for
/// backends (DynamoDB) that refuse a start key outside the key condition.
pub fn start_point(query: &Query) -> StartPoint {
    let Some(sa) = &query.start_after else { return StartPoint::RangeStart };
    let prefix = query.sk_prefix.as_str();
    if sa.starts_with(prefix) {
        return StartPoint::After(sa.clone());
    }
    let below = sa.as_str() < prefix;
    match (below, query.reverse) {
        (true, false) | (false, true) => StartPoint::RangeStart,
        (true, true) | (false, false) => StartPoint::Exhausted,
    }
}

/// Checks the rules shared by every backend before a write.
pub fn validate_key(pk: &str, sk: &str) -> PortResult<()> {
    for (name, k) in [("pk", pk), ("sk", sk)] {
        if k.is_empty() || k.len() > 1024 || k.contains('\0') {
            return Err(PortError::msg(ErrorKind::InvalidInput, format_args!("invalid {name} {k:?}")));
        }
    }
    Ok(())
}

pub fn validate_item(item: &Item) -> PortResult<()> {
    validate_key(&item.pk, &item.sk)?;
    if item.attrs.contains_key("pk") || item.attrs.contains_key("sk") {
        return Err(PortError::msg(ErrorKind::InvalidInput, "pk and sk are keys, not attributes"));
    }
    for index in [Index::Gsi1, Index::Gsi2] {
        if let Some((ipk, isk)) = index.key_attrs() {
            for a in [ipk, isk] {
                let ok = |s: &str| !s.is_empty() && s.len() <= 1024 && !s.contains('\0');
                if item.attrs.get(a).is_some_and(|v| !v.as_str().is_some_and(ok)) {
                    return Err(PortError::msg(
                        ErrorKind::InvalidInput,
                        format_args!("{a} must be a string of 1..=1024 bytes without NUL"),
                    ));
                }
            }
        }
    }
    let size = serde_json::to_vec(&item.attrs).map_or(usize::MAX, |v| v.len()) + item.pk.len() + item.sk.len();
    if size > MAX_ITEM_BYTES {
        return Err(PortError::msg(
            ErrorKind::InvalidInput,
            format_args!("item of {size} bytes exceeds {MAX_ITEM_BYTES}"),
        ));
    }
    Ok(())
}

pub fn validate_transaction(writes: &[Write]) -> PortResult<()> {
    if writes.is_empty() || writes.len() > MAX_TRANSACTION_WRITES {
        return Err(PortError::msg(
            ErrorKind::InvalidInput,
            format_args!("a transaction holds 1..={MAX_TRANSACTION_WRITES} writes, not {}", writes.len()),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for w in writes {
        let (pk, sk) = w.key();
        validate_key(pk, sk)?;
        match w {
            Write::Put { item, .. } => validate_item(item)?,
            Write::Set { attrs, .. } if attrs.is_empty() || attrs.keys().any(|a| a == "pk" || a == "sk") => {
                return Err(PortError::msg(ErrorKind::InvalidInput, "a set names 1 or more non-key attributes"));
            }
            _ => {}
        }
        if !seen.insert((pk, sk)) {
            return Err(PortError::msg(
                ErrorKind::InvalidInput,
                format_args!("item {pk}/{sk} written twice in one transaction"),
            ));
        }
    }
    Ok(())
}

pub fn validate_query(query: &Query) -> PortResult<()> {
    if query.pk.is_empty() || !(1..=1000).contains(&query.limit) {
        return Err(PortError::msg(ErrorKind::InvalidInput, "a query needs a partition key and a limit of 1..=1000"));
    }
    if let Some(sk) = &query.start_after {
        if query.index != Index::Table || query.cursor.is_some() {
            return Err(PortError::msg(ErrorKind::InvalidInput, "start_after is for table queries without a cursor"));
        }
        validate_key(&query.pk, sk)?;
    }
    Ok(())
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

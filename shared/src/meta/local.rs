//! `MetaStore` on the embedded database: the local default.
//!
//! Tables in the redb file:
//! ```text
//! meta_items   pk \0 sk                      -> attributes as JSON
//! meta_gsi1    gsi1pk \0 gsi1sk \0 pk \0 sk  -> ()
//! meta_gsi2    gsi2pk \0 gsi2sk \0 pk \0 sk  -> ()
//! ```
//! Keys never contain NUL, so `\0` keeps partitions contiguous and byte order
//! of the composite key is the order DynamoDB gives (partition, then sort key
//! by UTF-8 bytes). Every write runs in one serializable transaction that
//! evaluates its conditions and updates the index tables with the item.

use std::sync::LazyLock;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use redb::{ReadableTable, TableDefinition};
use serde_json::Value;

use super::{
    Attrs, Condition, ErrorKind, Index, Item, MetaStore, Page, PortError, PortResult, Query, TTL_ATTR, Write, now_unix,
    validate_item, validate_key, validate_query, validate_transaction,
};
use crate::localdb::{LocalDb, db_error};

const ITEMS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("meta_items");
const GSI1: TableDefinition<&[u8], ()> = TableDefinition::new("meta_gsi1");
const GSI2: TableDefinition<&[u8], ()> = TableDefinition::new("meta_gsi2");

#[derive(Debug, Clone)]
pub struct LocalMetaStore {
    db: LocalDb,
}

impl LocalMetaStore {
    pub async fn open(db: LocalDb) -> PortResult<Self> {
        db.write(|txn| {
            txn.open_table(ITEMS).map_err(db_error)?;
            txn.open_table(GSI1).map_err(db_error)?;
            txn.open_table(GSI2).map_err(db_error)?;
            Ok(())
        })
        .await?;
        Ok(Self { db })
    }
}

fn item_key(pk: &str, sk: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(pk.len() + sk.len() + 1);
    k.extend_from_slice(pk.as_bytes());
    k.push(0);
    k.extend_from_slice(sk.as_bytes());
    k
}

fn index_table(index: Index) -> Option<TableDefinition<'static, &'static [u8], ()>> {
    match index {
        Index::Table => None,
        Index::Gsi1 => Some(GSI1),
        Index::Gsi2 => Some(GSI2),
    }
}

/// The index key of an item in `index`, when it carries that index's attributes.
fn index_key(index: Index, item: &Item) -> Option<Vec<u8>> {
    let (ipk, isk) = index.key_attrs()?;
    let (ipk, isk) = (item.str(ipk)?, item.str(isk)?);
    let mut k = item_key(ipk, isk);
    k.push(0);
    k.extend_from_slice(&item_key(&item.pk, &item.sk));
    Some(k)
}

/// Splits a stored key back into (pk, sk).
fn split_item_key(key: &[u8]) -> PortResult<(String, String)> {
    let pos = key.iter().position(|b| *b == 0).ok_or_else(|| corrupt("item key without separator"))?;
    let pk = std::str::from_utf8(&key[..pos]).map_err(|_| corrupt("item key not utf-8"))?;
    let sk = std::str::from_utf8(&key[pos + 1..]).map_err(|_| corrupt("item key not utf-8"))?;
    Ok((pk.to_owned(), sk.to_owned()))
}

/// The table key at the end of an index key (after its second NUL).
fn item_key_of_index_key(key: &[u8]) -> PortResult<&[u8]> {
    let mut zeros = key.iter().enumerate().filter(|(_, b)| **b == 0).map(|(i, _)| i);
    let _ = zeros.next();
    let second = zeros.next().ok_or_else(|| corrupt("index key too short"))?;
    Ok(&key[second + 1..])
}

fn corrupt(what: &str) -> PortError {
    PortError::msg(ErrorKind::Internal, format_args!("embedded database corrupt: {what}"))
}

fn decode_item(key: &[u8], value: &[u8]) -> PortResult<Item> {
    let (pk, sk) = split_item_key(key)?;
    let attrs: Attrs = serde_json::from_slice(value).map_err(|e| PortError::new(ErrorKind::Internal, e))?;
    Ok(Item { pk, sk, attrs })
}

/// Finds the expiry attribute's name in a stored item.
static TTL_FINDER: LazyLock<memchr::memmem::Finder<'static>> =
    LazyLock::new(|| memchr::memmem::Finder::new(format!("\"{TTL_ATTR}\"").as_bytes()).into_owned());

/// The keys of a stored item, without decoding its attributes unless it
/// may carry an expiry; `None` when it has expired.
fn keys_of(key: &[u8], value: &[u8], now: i64) -> PortResult<Option<Item>> {
    if TTL_FINDER.find(value).is_some() && decode_item(key, value)?.is_expired(now) {
        return Ok(None);
    }
    let (pk, sk) = split_item_key(key)?;
    Ok(Some(Item { pk, sk, attrs: Attrs::new() }))
}

fn load(table: &impl ReadableTable<&'static [u8], &'static [u8]>, key: &[u8]) -> PortResult<Option<Item>> {
    match table.get(key).map_err(db_error)? {
        Some(v) => decode_item(key, v.value()).map(Some),
        None => Ok(None),
    }
}

fn condition_failed(cond: &Condition, pk: &str, sk: &str) -> PortError {
    PortError::msg(ErrorKind::ConditionFailed, format_args!("condition {cond:?} failed on {pk}/{sk}"))
}

/// Applies one write inside an open transaction; conditions are checked
/// against the current item, which makes the write atomic.
fn apply(txn: &redb::WriteTransaction, write: Write) -> PortResult<Option<Item>> {
    let (pk, sk) = write.key();
    let key = item_key(pk, sk);
    let mut items = txn.open_table(ITEMS).map_err(db_error)?;
    let current = load(&items, &key)?;
    if !write.cond().holds(current.as_ref()) {
        return Err(condition_failed(write.cond(), pk, sk));
    }
    let next = match write {
        Write::Check { .. } => return Ok(None),
        Write::Delete { .. } => None,
        Write::Put { item, .. } => Some(item),
        Write::Add { pk, sk, attr, delta, .. } => {
            let mut item = current.clone().unwrap_or_else(|| Item::new(pk, sk));
            let old = match item.attrs.get(&attr) {
                None => 0,
                Some(v) => v.as_i64().ok_or_else(|| {
                    PortError::msg(ErrorKind::InvalidInput, format_args!("attribute {attr} is not an integer"))
                })?,
            };
            let new =
                old.checked_add(delta).ok_or_else(|| PortError::msg(ErrorKind::InvalidInput, "counter overflow"))?;
            item.attrs.insert(attr, Value::from(new));
            Some(item)
        }
        Write::Set { pk, sk, attrs, .. } => {
            let mut item = current.clone().unwrap_or_else(|| Item::new(pk, sk));
            item.attrs.extend(attrs);
            Some(item)
        }
    };
    for index in [Index::Gsi1, Index::Gsi2] {
        let Some(def) = index_table(index) else { continue };
        let old_key = current.as_ref().and_then(|i| index_key(index, i));
        let new_key = next.as_ref().and_then(|i| index_key(index, i));
        if old_key != new_key {
            let mut table = txn.open_table(def).map_err(db_error)?;
            if let Some(k) = old_key {
                table.remove(k.as_slice()).map_err(db_error)?;
            }
            if let Some(k) = new_key {
                table.insert(k.as_slice(), ()).map_err(db_error)?;
            }
        }
    }
    match &next {
        Some(item) => {
            let value = serde_json::to_vec(&item.attrs).map_err(|e| PortError::new(ErrorKind::Internal, e))?;
            items.insert(key.as_slice(), value.as_slice()).map_err(db_error)?;
        }
        None => {
            items.remove(key.as_slice()).map_err(db_error)?;
        }
    }
    Ok(next)
}

/// Like [`apply`] for an `Add`, returning the new counter value.
fn apply_add(txn: &redb::WriteTransaction, write: Write) -> PortResult<i64> {
    let attr = match &write {
        Write::Add { attr, .. } => attr.clone(),
        _ => return Err(PortError::msg(ErrorKind::Internal, "apply_add takes an Add")),
    };
    apply(txn, write)?.and_then(|i| i.i64(&attr)).ok_or_else(|| corrupt("counter vanished"))
}

/// One entry of a key range of the embedded database.
type RangeEntry<'a, V> = Result<(redb::AccessGuard<'a, &'static [u8]>, redb::AccessGuard<'a, V>), redb::StorageError>;

/// A key range, forwards or backwards.
fn ordered<'a, V: redb::Value + 'static>(
    range: redb::Range<'a, &'static [u8], V>,
    reverse: bool,
) -> Box<dyn Iterator<Item = RangeEntry<'a, V>> + 'a> {
    if reverse { Box::new(range.rev()) } else { Box::new(range) }
}

fn decode_cursor(cursor: &str) -> PortResult<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(cursor).map_err(|_| PortError::msg(ErrorKind::InvalidInput, "invalid query cursor"))
}

impl LocalMetaStore {
    /// A page of the walk over the whole table: the expired items (`expired`)
    /// or the live ones among at most `limit` examined.
    async fn walk(&self, after: Option<String>, limit: usize, expired: bool) -> PortResult<Page> {
        if !(1..=1000).contains(&limit) {
            return Err(PortError::msg(ErrorKind::InvalidInput, format_args!("limit {limit} is not within 1..=1000")));
        }
        let start = after.as_deref().map(decode_cursor).transpose()?;
        let now = now_unix();
        self.db
            .read(move |txn| {
                let items = txn.open_table(ITEMS).map_err(db_error)?;
                let range = match &start {
                    Some(c) => {
                        items.range::<&[u8]>((std::ops::Bound::Excluded(c.as_slice()), std::ops::Bound::Unbounded))
                    }
                    None => items.range::<&[u8]>(..),
                }
                .map_err(db_error)?;
                let mut page = Page::default();
                let mut last: Option<Vec<u8>> = None;
                for (examined, entry) in range.enumerate() {
                    let (k, v) = entry.map_err(db_error)?;
                    if examined == limit {
                        // More remain: the next page starts past the last examined.
                        page.next = last.take().map(|l| URL_SAFE_NO_PAD.encode(l));
                        break;
                    }
                    // Only an item with an expiry can have expired.
                    let may_have_expired = TTL_FINDER.find(v.value()).is_some();
                    if may_have_expired || !expired {
                        let item = decode_item(k.value(), v.value())?;
                        if item.is_expired(now) == expired {
                            page.items.push(item);
                        }
                    }
                    last = Some(k.value().to_vec());
                }
                Ok(page)
            })
            .await
    }
}

#[async_trait]
impl MetaStore for LocalMetaStore {
    async fn get(&self, pk: &str, sk: &str) -> PortResult<Option<Item>> {
        validate_key(pk, sk)?;
        let key = item_key(pk, sk);
        let item = self
            .db
            .read(move |txn| {
                let items = txn.open_table(ITEMS).map_err(db_error)?;
                load(&items, &key)
            })
            .await?;
        Ok(item.filter(|i| !i.is_expired(now_unix())))
    }

    async fn put(&self, item: Item, cond: Condition) -> PortResult<()> {
        validate_item(&item)?;
        self.db.write(move |txn| apply(txn, Write::Put { item, cond }).map(|_| ())).await
    }

    async fn delete(&self, pk: &str, sk: &str, cond: Condition) -> PortResult<()> {
        validate_key(pk, sk)?;
        let write = Write::Delete { pk: pk.to_owned(), sk: sk.to_owned(), cond };
        self.db.write(move |txn| apply(txn, write).map(|_| ())).await
    }

    async fn add(&self, pk: &str, sk: &str, attr: &str, delta: i64, cond: Condition) -> PortResult<i64> {
        validate_key(pk, sk)?;
        let write = Write::Add { pk: pk.to_owned(), sk: sk.to_owned(), attr: attr.to_owned(), delta, cond };
        self.db.write(move |txn| apply_add(txn, write)).await
    }

    async fn query(&self, query: Query) -> PortResult<Page> {
        validate_query(&query)?;
        let cursor = query.cursor.as_deref().map(decode_cursor).transpose()?;
        let now = now_unix();
        self.db
            .read(move |txn| {
                let mut lower = item_key(&query.pk, &query.sk_prefix);
                let mut upper = lower.clone();
                // No UTF-8 string holds 0xFF, so this bounds every sort key
                // that starts with the prefix.
                upper.push(0xFF);
                if let Some(sk) = &query.start_after {
                    let at = item_key(&query.pk, sk);
                    if query.reverse {
                        upper = upper.min(at);
                    } else {
                        let mut past = at;
                        past.push(0);
                        lower = lower.max(past);
                    }
                }
                if let Some(c) = cursor {
                    if !(c.starts_with(&lower) && c < upper) {
                        return Err(PortError::msg(
                            ErrorKind::InvalidInput,
                            "query cursor does not belong to this query",
                        ));
                    }
                    if query.reverse {
                        upper = c;
                    } else {
                        lower = c;
                        lower.push(0);
                    }
                }
                let items = txn.open_table(ITEMS).map_err(db_error)?;
                let mut page = Page::default();
                let mut last_key = None;
                let mut more = false;
                let mut take = |key: &[u8], item: Option<Item>| {
                    if page.items.len() == query.limit {
                        more = true;
                        return false;
                    }
                    if let Some(item) = item.filter(|i| !i.is_expired(now)) {
                        page.items.push(item);
                    }
                    last_key = Some(key.to_vec());
                    true
                };
                match index_table(query.index) {
                    None => {
                        let range = items.range(lower.as_slice()..upper.as_slice()).map_err(db_error)?;
                        for entry in ordered(range, query.reverse) {
                            let (k, v) = entry.map_err(db_error)?;
                            let item = if query.keys_only {
                                keys_of(k.value(), v.value(), now)?
                            } else {
                                Some(decode_item(k.value(), v.value())?)
                            };
                            if !take(k.value(), item) {
                                break;
                            }
                        }
                    }
                    Some(def) => {
                        let index = txn.open_table(def).map_err(db_error)?;
                        let range = index.range(lower.as_slice()..upper.as_slice()).map_err(db_error)?;
                        for entry in ordered(range, query.reverse) {
                            let (k, _) = entry.map_err(db_error)?;
                            let mut item = load(&items, item_key_of_index_key(k.value())?)?;
                            if query.keys_only
                                && let Some(i) = item.as_mut()
                                && !i.is_expired(now)
                            {
                                i.attrs.clear();
                            }
                            if !take(k.value(), item) {
                                break;
                            }
                        }
                    }
                }
                if more {
                    page.next = last_key.map(|k| URL_SAFE_NO_PAD.encode(k));
                }
                Ok(page)
            })
            .await
    }

    async fn expired(&self, after: Option<String>, limit: usize) -> PortResult<Page> {
        self.walk(after, limit, true).await
    }

    async fn scan(&self, after: Option<String>, limit: usize) -> PortResult<Page> {
        self.walk(after, limit, false).await
    }

    async fn transact(&self, writes: Vec<Write>) -> PortResult<()> {
        validate_transaction(&writes)?;
        self.db
            .write(move |txn| {
                for (i, w) in writes.into_iter().enumerate() {
                    apply(txn, w).map_err(|e| e.context(format!("transaction write {i}")))?;
                }
                Ok(())
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    async fn fresh() -> Option<(tempfile::TempDir, LocalMetaStore)> {
        let dir = tempfile::tempdir().unwrap();
        let db = LocalDb::open(&dir.path().join("berth.redb")).unwrap();
        Some((dir, LocalMetaStore::open(db).await.unwrap()))
    }

    crate::meta_store_conformance!(fresh);

    #[tokio::test]
    async fn acknowledged_writes_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.redb");
        {
            let store = LocalMetaStore::open(LocalDb::open(&path).unwrap()).await.unwrap();
            store
                .put(Item::new("P#a", "META").with("gsi1pk", "X").with("gsi1sk", "1"), Condition::NotExists)
                .await
                .unwrap();
            store.add("P#a", "Q", "n", 7, Condition::Always).await.unwrap();
        }
        let store = LocalMetaStore::open(LocalDb::open(&path).unwrap()).await.unwrap();
        assert!(store.get("P#a", "META").await.unwrap().is_some());
        assert_eq!(store.get("P#a", "Q").await.unwrap().unwrap().i64("n"), Some(7));
        assert_eq!(store.query_all(Query::index(Index::Gsi1, "X", "")).await.unwrap().len(), 1);
    }
}

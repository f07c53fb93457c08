//! A `MetaStore` decorator that counts the requests made of the store it
//! wraps, by kind: what a request path costs in table reads and writes
//! can then be measured (and later exported as metrics) without touching
//! any backend.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

use super::{Condition, Item, MetaStore, Page, PortResult, Query, Write};

/// Requests counted so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub gets: u64,
    pub queries: u64,
    pub puts: u64,
    pub deletes: u64,
    pub adds: u64,
    pub transactions: u64,
}

impl Counts {
    /// Requests that read: gets and queries.
    pub fn reads(&self) -> u64 {
        self.gets + self.queries
    }

    /// Requests that write: puts, deletes, counter adds and transactions.
    pub fn writes(&self) -> u64 {
        self.puts + self.deletes + self.adds + self.transactions
    }

    /// What happened between `earlier` and these counts.
    pub fn since(&self, earlier: &Counts) -> Counts {
        Counts {
            gets: self.gets - earlier.gets,
            queries: self.queries - earlier.queries,
            puts: self.puts - earlier.puts,
            deletes: self.deletes - earlier.deletes,
            adds: self.adds - earlier.adds,
            transactions: self.transactions - earlier.transactions,
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    gets: AtomicU64,
    queries: AtomicU64,
    puts: AtomicU64,
    deletes: AtomicU64,
    adds: AtomicU64,
    transactions: AtomicU64,
}

/// Counts every request before handing it to the store it wraps.
#[derive(Debug)]
pub struct CountingMetaStore {
    inner: Arc<dyn MetaStore>,
    counters: Counters,
}

impl CountingMetaStore {
    pub fn new(inner: Arc<dyn MetaStore>) -> Self {
        Self { inner, counters: Counters::default() }
    }

    pub fn counts(&self) -> Counts {
        let c = &self.counters;
        let n = |a: &AtomicU64| a.load(Ordering::SeqCst);
        Counts {
            gets: n(&c.gets),
            queries: n(&c.queries),
            puts: n(&c.puts),
            deletes: n(&c.deletes),
            adds: n(&c.adds),
            transactions: n(&c.transactions),
        }
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::SeqCst);
}

#[async_trait]
impl MetaStore for CountingMetaStore {
    async fn get(&self, pk: &str, sk: &str) -> PortResult<Option<Item>> {
        bump(&self.counters.gets);
        self.inner.get(pk, sk).await
    }

    async fn put(&self, item: Item, cond: Condition) -> PortResult<()> {
        bump(&self.counters.puts);
        self.inner.put(item, cond).await
    }

    async fn delete(&self, pk: &str, sk: &str, cond: Condition) -> PortResult<()> {
        bump(&self.counters.deletes);
        self.inner.delete(pk, sk, cond).await
    }

    async fn add(&self, pk: &str, sk: &str, attr: &str, delta: i64, cond: Condition) -> PortResult<i64> {
        bump(&self.counters.adds);
        self.inner.add(pk, sk, attr, delta, cond).await
    }

    async fn query(&self, query: Query) -> PortResult<Page> {
        bump(&self.counters.queries);
        self.inner.query(query).await
    }

    async fn transact(&self, writes: Vec<Write>) -> PortResult<()> {
        bump(&self.counters.transactions);
        self.inner.transact(writes).await
    }

    async fn expired(&self, after: Option<String>, limit: usize) -> PortResult<Page> {
        bump(&self.counters.queries);
        self.inner.expired(after, limit).await
    }

    async fn scan(&self, after: Option<String>, limit: usize) -> PortResult<Page> {
        bump(&self.counters.queries);
        self.inner.scan(after, limit).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn every_kind_of_request_is_counted_and_passed_on() {
        let (_dir, registry) = crate::testkit::local_registry().await;
        let store = CountingMetaStore::new(registry.meta_for_tests());
        let before = store.counts();
        store.put(Item::new("p", "a").with("n", 1), Condition::Always).await.unwrap();
        assert_eq!(store.get("p", "a").await.unwrap().unwrap().i64("n"), Some(1));
        store.add("p", "a", "n", 2, Condition::Always).await.unwrap();
        assert_eq!(store.query(Query::table("p", "")).await.unwrap().items.len(), 1);
        store.transact(vec![Write::Delete { pk: "p".into(), sk: "a".into(), cond: Condition::Exists }]).await.unwrap();
        store.delete("p", "a", Condition::Always).await.unwrap();
        let c = store.counts().since(&before);
        assert_eq!((c.gets, c.queries, c.puts, c.adds, c.transactions, c.deletes), (1, 1, 1, 1, 1, 1));
        assert_eq!((c.reads(), c.writes()), (2, 4));
    }
}

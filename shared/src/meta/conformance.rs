//! The one `MetaStore` conformance suite. Each case works in partitions
//! under its own random prefix. `meta_store_conformance!(ctor)` expands it
//! into one named test per case; `ctor` is an
//! `async fn() -> Option<(Guard, impl MetaStore)>`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Value, json};

use super::{Condition, ErrorKind, Index, Item, MetaStore, Query, Write, now_unix};

#[macro_export]
macro_rules! meta_store_conformance {
    ($ctor:path) => {
        $crate::meta_store_conformance!(@cases $ctor;
            put_get_delete, conditions, concurrent_create_one_winner, concurrent_versioned_updates,
            counters, concurrent_counters, transaction_applies_all, set_changes_only_its_attributes, transaction_rolls_back,
            transaction_rules, query_pagination, query_prefix_and_order, index_queries, expiry, expired_walk,
            live_walk, keys_only_queries, invalid_input);
    };
    (@cases $ctor:path; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some((_guard, store)) = $ctor().await else { return };
                let store: std::sync::Arc<dyn $crate::meta::MetaStore> = std::sync::Arc::new(store);
                $crate::meta::conformance::$case(store, &$crate::testkit::unique("t")).await;
            }
        )*
    };
}

type Store = Arc<dyn MetaStore>;

fn kind<T: std::fmt::Debug>(r: Result<T, super::PortError>) -> ErrorKind {
    r.unwrap_err().kind()
}

pub async fn put_get_delete(s: Store, p: &str) {
    let pk = format!("{p}#a");
    assert_eq!(s.get(&pk, "x").await.unwrap(), None);
    let item = Item::new(&pk, "x")
        .with("s", "text")
        .with("n", 42)
        .with("neg", -7)
        .with("f", 1.5)
        .with("b", true)
        .with("nul", Value::Null)
        .with("list", json!(["a", 1, false]))
        .with("map", json!({"k": "v", "inner": {"n": 2}}))
        .with("bin", "aGVsbG8=");
    s.put(item.clone(), Condition::Always).await.unwrap();
    assert_eq!(s.get(&pk, "x").await.unwrap(), Some(item));
    let replaced = Item::new(&pk, "x").with("only", "this");
    s.put(replaced.clone(), Condition::Always).await.unwrap();
    assert_eq!(s.get(&pk, "x").await.unwrap(), Some(replaced), "put replaces the whole item");
    s.delete(&pk, "x", Condition::Always).await.unwrap();
    assert_eq!(s.get(&pk, "x").await.unwrap(), None);
    s.delete(&pk, "x", Condition::Always).await.expect("deleting a missing item is ok");
}

pub async fn conditions(s: Store, p: &str) {
    let pk = format!("{p}#c");
    let v1 = Item::new(&pk, "i").with("version", 1).with("state", "live");
    s.put(v1.clone(), Condition::NotExists).await.unwrap();
    assert_eq!(kind(s.put(v1.clone(), Condition::NotExists).await), ErrorKind::ConditionFailed);
    assert_eq!(kind(s.put(Item::new(&pk, "none"), Condition::Exists).await), ErrorKind::ConditionFailed);
    assert_eq!(s.get(&pk, "none").await.unwrap(), None, "a failed condition writes nothing");
    let v2 = Item::new(&pk, "i").with("version", 2).with("state", "live");
    assert_eq!(kind(s.put(v2.clone(), Condition::equals("version", 7)).await), ErrorKind::ConditionFailed);
    s.put(v2.clone(), Condition::equals("version", 1)).await.unwrap();
    assert_eq!(s.get(&pk, "i").await.unwrap(), Some(v2));
    assert_eq!(kind(s.put(Item::new(&pk, "i"), Condition::equals("missing", 1)).await), ErrorKind::ConditionFailed);
    s.put(Item::new(&pk, "i").with("n", 5), Condition::at_most("n", 0)).await.expect("missing attr passes at_most");
    assert_eq!(
        kind(s.put(Item::new(&pk, "i").with("n", 6), Condition::at_most("n", 4)).await),
        ErrorKind::ConditionFailed
    );
    s.put(Item::new(&pk, "i").with("n", 6), Condition::at_most("n", 5)).await.unwrap();
    assert_eq!(kind(s.delete(&pk, "i", Condition::equals("n", 5)).await), ErrorKind::ConditionFailed);
    assert!(s.get(&pk, "i").await.unwrap().is_some());
    s.delete(&pk, "i", Condition::equals("n", 6)).await.unwrap();
    assert_eq!(kind(s.delete(&pk, "i", Condition::Exists).await), ErrorKind::ConditionFailed);
}

pub async fn concurrent_create_one_winner(s: Store, p: &str) {
    let pk = format!("{p}#race");
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let s = s.clone();
            let pk = pk.clone();
            tokio::spawn(async move { s.put(Item::new(pk, "tag").with("writer", i), Condition::NotExists).await })
        })
        .collect();
    let mut winners = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await.unwrap() {
            Ok(()) => winners.push(i as i64),
            Err(e) => assert_eq!(e.kind(), ErrorKind::ConditionFailed),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one create-only write wins");
    assert_eq!(s.get(&pk, "tag").await.unwrap().unwrap().i64("writer"), Some(winners[0]));
}

/// Eight writers each read-modify-write a versioned item 10 times with an
/// optimistic condition, retrying on conflict: no update is lost.
pub async fn concurrent_versioned_updates(s: Store, p: &str) {
    let pk = format!("{p}#ver");
    s.put(Item::new(&pk, "doc").with("version", 0).with("log", json!([])), Condition::NotExists).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|w| {
            let s = s.clone();
            let pk = pk.clone();
            tokio::spawn(async move {
                let mut conflicts = 0;
                for n in 0..10 {
                    loop {
                        let cur = s.get(&pk, "doc").await.unwrap().unwrap();
                        let v = cur.i64("version").unwrap();
                        let mut log = cur.attrs["log"].as_array().unwrap().clone();
                        log.push(json!(format!("{w}-{n}")));
                        let next = Item::new(&pk, "doc").with("version", v + 1).with("log", log);
                        match s.put(next, Condition::equals("version", v)).await {
                            Ok(()) => break,
                            Err(e) => {
                                assert_eq!(e.kind(), ErrorKind::ConditionFailed);
                                conflicts += 1;
                            }
                        }
                    }
                }
                conflicts
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let doc = s.get(&pk, "doc").await.unwrap().unwrap();
    assert_eq!(doc.i64("version"), Some(80));
    let log: BTreeSet<_> =
        doc.attrs["log"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
    assert_eq!(log.len(), 80, "no update lost");
}

pub async fn counters(s: Store, p: &str) {
    let pk = format!("{p}#q");
    assert_eq!(s.add(&pk, "Q", "bytes", 10, Condition::Always).await.unwrap(), 10, "created from 0");
    assert_eq!(s.add(&pk, "Q", "bytes", -3, Condition::Always).await.unwrap(), 7);
    assert_eq!(s.add(&pk, "Q", "other", 1, Condition::Always).await.unwrap(), 1);
    let item = s.get(&pk, "Q").await.unwrap().unwrap();
    assert_eq!((item.i64("bytes"), item.i64("other")), (Some(7), Some(1)));
    // A quota check: add only while the result stays within 10.
    assert_eq!(s.add(&pk, "Q", "bytes", 3, Condition::at_most("bytes", 10 - 3)).await.unwrap(), 10);
    assert_eq!(
        kind(s.add(&pk, "Q", "bytes", 1, Condition::at_most("bytes", 10 - 1)).await),
        ErrorKind::ConditionFailed
    );
    assert_eq!(s.get(&pk, "Q").await.unwrap().unwrap().i64("bytes"), Some(10));
    s.put(Item::new(&pk, "S").with("name", "text"), Condition::Always).await.unwrap();
    assert_eq!(kind(s.add(&pk, "S", "name", 1, Condition::Always).await), ErrorKind::InvalidInput);
    assert_eq!(kind(s.add(&pk, "none", "n", 1, Condition::Exists).await), ErrorKind::ConditionFailed);
}

pub async fn concurrent_counters(s: Store, p: &str) {
    let pk = format!("{p}#cc");
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let s = s.clone();
            let pk = pk.clone();
            tokio::spawn(async move {
                for _ in 0..20 {
                    s.add(&pk, "Q", "n", 3, Condition::Always).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(s.get(&pk, "Q").await.unwrap().unwrap().i64("n"), Some(480));
}

pub async fn transaction_applies_all(s: Store, p: &str) {
    let pk = format!("{p}#tx");
    s.put(Item::new(&pk, "old"), Condition::Always).await.unwrap();
    s.put(Item::new(&pk, "guard").with("state", "open"), Condition::Always).await.unwrap();
    s.transact(vec![
        Write::Put { item: Item::new(&pk, "new").with("v", 1), cond: Condition::NotExists },
        Write::Delete { pk: pk.clone(), sk: "old".into(), cond: Condition::Exists },
        Write::Add { pk: pk.clone(), sk: "count".into(), attr: "n".into(), delta: 5, cond: Condition::Always },
        Write::Check { pk: pk.clone(), sk: "guard".into(), cond: Condition::equals("state", "open") },
    ])
    .await
    .unwrap();
    assert_eq!(s.get(&pk, "new").await.unwrap().unwrap().i64("v"), Some(1));
    assert_eq!(s.get(&pk, "old").await.unwrap(), None);
    assert_eq!(s.get(&pk, "count").await.unwrap().unwrap().i64("n"), Some(5));
}

/// `Set` changes the named attributes only, creates a missing item, and
/// obeys its condition like every write.
pub async fn set_changes_only_its_attributes(s: Store, p: &str) {
    let pk = format!("{p}#set");
    s.put(Item::new(&pk, "a").with("keep", "k").with("n", 1), Condition::Always).await.unwrap();
    let set = |sk: &str, n: i64, cond: Condition| {
        let attrs = crate::meta::Attrs::from_iter([("n".to_owned(), n.into()), ("t".to_owned(), "x".into())]);
        Write::Set { pk: pk.clone(), sk: sk.into(), attrs, cond }
    };
    s.transact(vec![set("a", 2, Condition::equals("n", 1)), set("b", 7, Condition::Always)]).await.unwrap();
    let a = s.get(&pk, "a").await.unwrap().unwrap();
    assert_eq!((a.str("keep"), a.i64("n"), a.str("t")), (Some("k"), Some(2), Some("x")));
    assert_eq!(s.get(&pk, "b").await.unwrap().unwrap().i64("n"), Some(7));
    let err = s.transact(vec![set("a", 3, Condition::equals("n", 1))]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConditionFailed);
    let err = s.transact(vec![set("missing", 3, Condition::Exists)]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConditionFailed);
    assert_eq!(s.get(&pk, "missing").await.unwrap(), None);
    let bad = Write::Set { pk: pk.clone(), sk: "a".into(), attrs: crate::meta::Attrs::new(), cond: Condition::Always };
    assert_eq!(s.transact(vec![bad]).await.unwrap_err().kind(), ErrorKind::InvalidInput);
}

pub async fn transaction_rolls_back(s: Store, p: &str) {
    let pk = format!("{p}#rb");
    s.put(Item::new(&pk, "keep").with("v", 1), Condition::Always).await.unwrap();
    s.put(Item::new(&pk, "guard").with("state", "closed"), Condition::Always).await.unwrap();
    let err = s
        .transact(vec![
            Write::Put { item: Item::new(&pk, "new"), cond: Condition::NotExists },
            Write::Delete { pk: pk.clone(), sk: "keep".into(), cond: Condition::Always },
            Write::Add { pk: pk.clone(), sk: "count".into(), attr: "n".into(), delta: 5, cond: Condition::Always },
            Write::Check { pk: pk.clone(), sk: "guard".into(), cond: Condition::equals("state", "open") },
        ])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConditionFailed);
    assert_eq!(s.get(&pk, "new").await.unwrap(), None, "nothing applied");
    assert!(s.get(&pk, "keep").await.unwrap().is_some(), "nothing applied");
    assert_eq!(s.get(&pk, "count").await.unwrap(), None, "nothing applied");
    // Concurrent transactions racing for one create-only item: one wins whole.
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let s = s.clone();
            let pk = pk.clone();
            tokio::spawn(async move {
                s.transact(vec![
                    Write::Put { item: Item::new(&pk, "tag").with("by", i), cond: Condition::NotExists },
                    Write::Put { item: Item::new(&pk, format!("link{i}")), cond: Condition::NotExists },
                ])
                .await
            })
        })
        .collect();
    let mut won = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        if t.await.unwrap().is_ok() {
            won.push(i);
        }
    }
    assert_eq!(won.len(), 1);
    let links = s.query_all(Query::table(&pk, "link")).await.unwrap();
    assert_eq!(links.len(), 1, "the losers' other writes were rolled back");
    assert_eq!(links[0].sk, format!("link{}", won[0]));
}

pub async fn transaction_rules(s: Store, p: &str) {
    let pk = format!("{p}#tr");
    let puts = |n: usize| {
        (0..n)
            .map(|i| Write::Put { item: Item::new(&pk, format!("i{i}")), cond: Condition::Always })
            .collect::<Vec<_>>()
    };
    s.transact(puts(25)).await.expect("25 writes are allowed");
    assert_eq!(s.query_all(Query::table(&pk, "i")).await.unwrap().len(), 25);
    assert_eq!(kind(s.transact(puts(26)).await), ErrorKind::InvalidInput);
    assert_eq!(kind(s.transact(Vec::new()).await), ErrorKind::InvalidInput);
    let twice = vec![
        Write::Put { item: Item::new(&pk, "same"), cond: Condition::Always },
        Write::Delete { pk: pk.clone(), sk: "same".into(), cond: Condition::Always },
    ];
    assert_eq!(kind(s.transact(twice).await), ErrorKind::InvalidInput);
}

async fn put_many(s: &Store, items: Vec<Item>) {
    for chunk in items.chunks(25) {
        let writes = chunk.iter().map(|i| Write::Put { item: i.clone(), cond: Condition::Always }).collect();
        s.transact(writes).await.unwrap();
    }
}

pub async fn query_pagination(s: Store, p: &str) {
    let pk = format!("{p}#many");
    let items: Vec<Item> = (0..1050).map(|i| Item::new(&pk, format!("T#{i:05}")).with("i", i)).collect();
    put_many(&s, items).await;
    for limit in [100, 333] {
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = s.query(Query::table(&pk, "T#").limit(limit).after(cursor)).await.unwrap();
            assert!(page.items.len() <= limit);
            seen.extend(page.items.iter().map(|i| i.i64("i").unwrap()));
            match page.next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen, (0..1050).collect::<Vec<_>>(), "limit {limit}: every item once, in order");
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = s.query(Query::table(&pk, "T#").limit(400).after(cursor).reverse()).await.unwrap();
        seen.extend(page.items.iter().map(|i| i.i64("i").unwrap()));
        match page.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, (0..1050).rev().collect::<Vec<_>>(), "reverse order");
    // Starting past a sort key, present or not, in either direction.
    let page = s.query(Query::table(&pk, "T#").limit(3).start_after(Some("T#00041".into()))).await.unwrap();
    assert_eq!(page.items.iter().map(|i| i.i64("i").unwrap()).collect::<Vec<_>>(), [42, 43, 44]);
    let page = s.query(Query::table(&pk, "T#").limit(2).start_after(Some("T#00041x".into()))).await.unwrap();
    assert_eq!(page.items.iter().map(|i| i.i64("i").unwrap()).collect::<Vec<_>>(), [42, 43]);
    let page = s.query(Query::table(&pk, "T#").limit(2).start_after(Some("T#00041".into())).reverse()).await.unwrap();
    assert_eq!(page.items.iter().map(|i| i.i64("i").unwrap()).collect::<Vec<_>>(), [40, 39]);
    let page = s.query(Query::table(&pk, "T#").limit(5).start_after(Some("T#01049".into()))).await.unwrap();
    assert!(page.items.is_empty() && page.next.is_none(), "nothing past the last key");
    let page = s.query(Query::table(&pk, "T#").limit(1).start_after(Some("A".into()))).await.unwrap();
    assert_eq!(page.items[0].i64("i"), Some(0), "a start before the prefix starts at the prefix");
    let both = Query::index(Index::Gsi1, &pk, "").start_after(Some("x".into()));
    assert_eq!(kind(s.query(both).await), ErrorKind::InvalidInput);
}

pub async fn query_prefix_and_order(s: Store, p: &str) {
    let pk = format!("{p}#mix");
    let sks = ["A#1", "T#a", "T#b", "T#a#x", "T#", "U#1", "T$", "TT"];
    put_many(&s, sks.iter().map(|sk| Item::new(&pk, *sk)).collect()).await;
    s.put(Item::new(format!("{p}#other"), "T#z"), Condition::Always).await.unwrap();
    let got: Vec<String> = s.query_all(Query::table(&pk, "T#")).await.unwrap().into_iter().map(|i| i.sk).collect();
    assert_eq!(got, ["T#", "T#a", "T#a#x", "T#b"]);
    let all: Vec<String> = s.query_all(Query::table(&pk, "")).await.unwrap().into_iter().map(|i| i.sk).collect();
    let mut sorted: Vec<String> = sks.iter().map(|s| s.to_string()).collect();
    sorted.sort();
    assert_eq!(all, sorted, "byte order of sort keys");
    assert!(s.query_all(Query::table(format!("{p}#empty"), "")).await.unwrap().is_empty());
}

pub async fn index_queries(s: Store, p: &str) {
    let g = format!("{p}#g");
    let mut items = Vec::new();
    for i in 0..30 {
        // Three items share each index sort key: ties must page correctly.
        items.push(
            Item::new(format!("{p}#part{}", i % 4), format!("S#{i:02}"))
                .with("gsi1pk", g.clone())
                .with("gsi1sk", format!("when#{:02}", i / 3))
                .with("i", i),
        );
    }
    items.push(Item::new(format!("{p}#part0"), "S#none").with("i", 99));
    items.push(Item::new(format!("{p}#part0"), "S#other").with("gsi2pk", g.clone()).with("gsi2sk", "x").with("i", 98));
    put_many(&s, items).await;
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = s.query(Query::index(Index::Gsi1, &g, "when#").limit(4).after(cursor)).await.unwrap();
        seen.extend(page.items.iter().map(|i| i.i64("i").unwrap()));
        match page.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort_by_key(|i| i / 3);
    assert_eq!(seen.len(), 30, "every indexed item once: {seen:?}");
    assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), 30);
    assert_eq!(
        seen.iter().map(|i| i / 3).collect::<Vec<_>>(),
        sorted.iter().map(|i| i / 3).collect::<Vec<_>>(),
        "index sort-key order"
    );
    let some = s.query_all(Query::index(Index::Gsi1, &g, "when#0")).await.unwrap();
    assert_eq!(some.len(), 30);
    let few = s.query_all(Query::index(Index::Gsi1, &g, "when#09")).await.unwrap();
    assert_eq!(few.iter().map(|i| i.i64("i").unwrap()).collect::<BTreeSet<_>>(), BTreeSet::from([27, 28, 29]));
    assert!(few[0].pk.starts_with(p), "index results are whole items");
    let other = s.query_all(Query::index(Index::Gsi2, &g, "")).await.unwrap();
    assert_eq!(other.len(), 1);
    assert_eq!(other[0].i64("i"), Some(98));
    // Removing the index attributes removes the item from the index (index
    // reads are eventually consistent, so allow it a moment).
    let count_is = |n: usize| {
        let (s, g) = (s.clone(), g.clone());
        async move {
            crate::testkit::eventually(std::time::Duration::from_secs(5), || async {
                (s.query_all(Query::index(Index::Gsi1, &g, "")).await.unwrap().len() == n).then_some(())
            })
            .await
            .is_some()
        }
    };
    s.put(Item::new(format!("{p}#part0"), "S#00").with("i", 0), Condition::Always).await.unwrap();
    assert!(count_is(29).await);
    s.delete(&format!("{p}#part1"), "S#01", Condition::Always).await.unwrap();
    assert!(count_is(28).await);
    let long = Item::new(format!("{p}#part0"), "S#long").with("gsi1pk", g.clone()).with("gsi1sk", "x".repeat(1025));
    assert_eq!(kind(s.put(long, Condition::Always).await), ErrorKind::InvalidInput);
}

pub async fn expiry(s: Store, p: &str) {
    let pk = format!("{p}#ttl");
    let past = now_unix() - 10;
    let future = now_unix() + 3600;
    s.put(Item::new(&pk, "old").with("expires_at", past), Condition::Always).await.unwrap();
    s.put(Item::new(&pk, "new").with("expires_at", future), Condition::Always).await.unwrap();
    assert_eq!(s.get(&pk, "old").await.unwrap(), None, "expired items are never returned");
    assert!(s.get(&pk, "new").await.unwrap().is_some());
    let got: Vec<String> = s.query_all(Query::table(&pk, "")).await.unwrap().into_iter().map(|i| i.sk).collect();
    assert_eq!(got, ["new"]);
}

/// What a whole walk of the table finds of partition `pk`, in pages of
/// `limit`: its expired items, or its live ones.
async fn walk_partition(s: &Store, pk: &str, limit: usize, expired: bool) -> Vec<Item> {
    let mut found = Vec::new();
    let mut after = None;
    loop {
        let page = if expired { s.expired(after, limit).await } else { s.scan(after, limit).await }.unwrap();
        found.extend(page.items.into_iter().filter(|i| i.pk == pk));
        match page.next {
            Some(n) => after = Some(n),
            None => return found,
        }
    }
}

/// The walk over the table finds every expired item, with its attributes,
/// across pages of any size, and nothing else; a conditional delete on the
/// expiry removes it unless it was renewed.
pub async fn expired_walk(s: Store, p: &str) {
    let pk = format!("{p}#expired");
    let past = now_unix() - 10;
    for i in 0..7 {
        s.put(Item::new(&pk, format!("old{i}")).with("expires_at", past).with("n", i), Condition::Always)
            .await
            .unwrap();
    }
    s.put(Item::new(&pk, "new").with("expires_at", now_unix() + 3600), Condition::Always).await.unwrap();
    s.put(Item::new(&pk, "plain"), Condition::Always).await.unwrap();
    let found = walk_partition(&s, &pk, 1000, true).await;
    let names: BTreeSet<String> = found.iter().map(|i| i.sk.clone()).collect();
    assert_eq!(names, (0..7).map(|i| format!("old{i}")).collect::<BTreeSet<_>>());
    assert!(found.iter().all(|i| i.i64("n").is_some()), "attributes come along");
    // Small pages find the same items (a table shared with other tests has
    // more than these: a page of 3 walks it slowly but surely).
    if walk_partition(&s, &pk, 3, true).await.len() != 7 {
        panic!("pages of 3 missed expired items");
    }
    assert_eq!(kind(s.expired(None, 0).await), ErrorKind::InvalidInput);
    assert_eq!(kind(s.expired(Some("not a cursor!".into()), 10).await), ErrorKind::InvalidInput);
    // Renewed after the walk: a delete conditional on the old expiry keeps it.
    s.put(Item::new(&pk, "old0").with("expires_at", now_unix() + 3600), Condition::Always).await.unwrap();
    let cond = Condition::at_most("expires_at", now_unix());
    assert_eq!(kind(s.delete(&pk, "old0", cond.clone()).await), ErrorKind::ConditionFailed);
    s.delete(&pk, "old1", cond).await.unwrap();
    let left: BTreeSet<String> = walk_partition(&s, &pk, 1000, true).await.into_iter().map(|i| i.sk).collect();
    assert_eq!(left, (2..7).map(|i| format!("old{i}")).collect::<BTreeSet<_>>());
}

/// The walk over the table for live items finds every live item once,
/// with its attributes, across pages of any size; expired items stay
/// hidden; a deleted item is gone from the next walk.
pub async fn live_walk(s: Store, p: &str) {
    let pk = format!("{p}#live");
    for i in 0..7 {
        s.put(Item::new(&pk, format!("k{i}")).with("n", i).with("body", json!({"a": [i, "x"]})), Condition::Always)
            .await
            .unwrap();
    }
    s.put(Item::new(&pk, "later").with("expires_at", now_unix() + 3600), Condition::Always).await.unwrap();
    s.put(Item::new(&pk, "gone").with("expires_at", now_unix() - 10), Condition::Always).await.unwrap();
    let found = walk_partition(&s, &pk, 1000, false).await;
    let mut names: Vec<String> = found.iter().map(|i| i.sk.clone()).collect();
    names.sort();
    let mut want: Vec<String> = (0..7).map(|i| format!("k{i}")).collect();
    want.push("later".to_owned());
    want.sort();
    assert_eq!(names, want, "every live item once, the expired one hidden");
    let k3 = found.iter().find(|i| i.sk == "k3").unwrap();
    assert_eq!(k3.i64("n"), Some(3));
    assert_eq!(k3.attrs.get("body"), Some(&json!({"a": [3, "x"]})), "attributes come along whole");
    let small = walk_partition(&s, &pk, 3, false).await;
    assert_eq!(small.len(), 8, "pages of 3 find the same items");
    s.delete(&pk, "k0", Condition::Always).await.unwrap();
    assert_eq!(walk_partition(&s, &pk, 1000, false).await.len(), 7);
    assert_eq!(kind(s.scan(None, 0).await), ErrorKind::InvalidInput);
    assert_eq!(kind(s.scan(None, 1001).await), ErrorKind::InvalidInput);
    assert_eq!(kind(s.scan(Some("not a cursor!".into()), 10).await), ErrorKind::InvalidInput);
}

pub async fn keys_only_queries(s: Store, p: &str) {
    let pk = format!("{p}#keys");
    let items: Vec<Item> = (0..30)
        .map(|i| {
            Item::new(&pk, format!("K#{i:03}"))
                .with("body", "x".repeat(2000))
                .with("gsi1pk", format!("{p}#g"))
                .with("gsi1sk", format!("{i:03}"))
        })
        .collect();
    put_many(&s, items).await;
    s.put(Item::new(&pk, "K#500").with("expires_at", now_unix() - 10), Condition::Always).await.unwrap();
    s.put(Item::new(&pk, "K#501").with("expires_at", now_unix() + 3600), Condition::Always).await.unwrap();
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = s.query(Query::table(&pk, "K#").limit(7).after(cursor).keys_only()).await.unwrap();
        for i in &page.items {
            assert_eq!(i.pk, pk);
            assert!(i.attrs.is_empty(), "keys only: {:?}", i.attrs.keys().collect::<Vec<_>>());
        }
        seen.extend(page.items.into_iter().map(|i| i.sk));
        match page.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let mut want: Vec<String> = (0..30).map(|i| format!("K#{i:03}")).collect();
    want.push("K#501".to_owned());
    assert_eq!(seen, want, "every live item once, in order; the expired one hidden");
    let page = s.query(Query::index(Index::Gsi1, format!("{p}#g"), "").limit(3).keys_only()).await.unwrap();
    assert_eq!(page.items.iter().map(|i| i.sk.as_str()).collect::<Vec<_>>(), ["K#000", "K#001", "K#002"]);
    assert!(page.items.iter().all(|i| i.attrs.is_empty()), "an index query keys-only too");
}

pub async fn invalid_input(s: Store, p: &str) {
    let pk = format!("{p}#bad");
    let huge = Item::new(&pk, "big").with("blob", "x".repeat(super::MAX_ITEM_BYTES + 1));
    assert_eq!(kind(s.put(huge, Condition::Always).await), ErrorKind::InvalidInput);
    assert_eq!(kind(s.put(Item::new("", "x"), Condition::Always).await), ErrorKind::InvalidInput);
    assert_eq!(kind(s.put(Item::new(&pk, ""), Condition::Always).await), ErrorKind::InvalidInput);
    assert_eq!(kind(s.put(Item::new(&pk, "x").with("gsi1pk", 5), Condition::Always).await), ErrorKind::InvalidInput);
    let bad_cursor = Query::table(&pk, "").after(Some("not a cursor".into()));
    assert_eq!(kind(s.query(bad_cursor).await), ErrorKind::InvalidInput);
    assert_eq!(kind(s.query(Query::table(&pk, "").limit(0)).await), ErrorKind::InvalidInput);
}

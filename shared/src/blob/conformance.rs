//! The one `BlobStore` conformance suite. Every case takes a fresh store and
//! works under its own random prefix, leaving nothing behind.
//! `blob_store_conformance!(ctor)` expands it into one named test per case;
//! `ctor` is an `async fn() -> Option<(Guard, impl BlobStore)>` returning
//! `None` when the backend is unavailable (see [`crate::testkit`]).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use sha2::{Digest as _, Sha256};

use super::{BlobStore, ByteRange, ByteStream, ErrorKind, MIN_PART_SIZE, PartWrite, ShortPart};
use crate::testkit::{reset_peak_rss, rss_bytes};

#[macro_export]
macro_rules! blob_store_conformance {
    ($ctor:path) => {
        $crate::blob_store_conformance!(@cases $ctor;
            put_get_head_delete, missing_objects, ranged_reads, large_object_bounded_memory,
            failed_put_leaves_nothing, multipart_upload, multipart_rules, streamed_parts,
            failed_part_stores_nothing, streamed_parts_bounded_memory, list_pagination,
            copy_is_independent, presigned_get, presigned_part_upload);
    };
    (@cases $ctor:path; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some((_guard, store)) = $ctor().await else { return };
                let prefix = $crate::testkit::unique("conformance/");
                $crate::blob::conformance::$case(&store, &prefix).await;
                $crate::blob::conformance::assert_empty(&store, &prefix).await;
            }
        )*
    };
}

/// A deterministic pseudo-random stream of `len` bytes in 1 MiB chunks,
/// generated lazily so the producer itself holds no more than a chunk.
pub fn pattern_stream(len: u64, seed: u8) -> ByteStream {
    const CHUNK: u64 = 1024 * 1024;
    futures::stream::unfold(0u64, move |offset| async move {
        if offset >= len {
            return None;
        }
        let n = CHUNK.min(len - offset);
        let chunk: Vec<u8> =
            (offset..offset + n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed ^ (i >> 20) as u8)).collect();
        Some((Ok(Bytes::from(chunk)), offset + n))
    })
    .boxed()
}

async fn hash_stream(mut body: ByteStream) -> (u64, String) {
    let mut h = Sha256::new();
    let mut n = 0u64;
    while let Some(chunk) = body.try_next().await.expect("read") {
        n += chunk.len() as u64;
        h.update(&chunk);
    }
    (n, hex::encode(h.finalize()))
}

pub async fn assert_empty(store: &dyn BlobStore, prefix: &str) {
    let page = store.list(prefix, None, 10).await.expect("list");
    assert!(page.objects.is_empty(), "case left objects behind: {:?}", page.objects);
}

pub async fn put_get_head_delete(store: &dyn BlobStore, p: &str) {
    let key = format!("{p}a/object");
    assert_eq!(store.put_bytes(&key, Bytes::from_static(b"hello world")).await.unwrap(), 11);
    let head = store.head(&key).await.unwrap();
    assert_eq!(head.size, 11);
    // Its write time, as GC's protection window reads it (clocks of the
    // store and of berth may differ by seconds, not by minutes).
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    assert!((head.modified_ms - now).abs() < 120_000, "modified {} vs now {now}", head.modified_ms);
    let read = store.get(&key, None).await.unwrap();
    assert_eq!((read.size, read.start, read.len), (11, 0, 11));
    assert_eq!(store.get_bytes(&key).await.unwrap(), Bytes::from_static(b"hello world"));
    store.put_bytes(&key, Bytes::from_static(b"second")).await.unwrap();
    assert_eq!(store.get_bytes(&key).await.unwrap(), Bytes::from_static(b"second"));
    let empty = format!("{p}empty");
    assert_eq!(store.put_bytes(&empty, Bytes::new()).await.unwrap(), 0);
    assert_eq!(store.head(&empty).await.unwrap().size, 0);
    assert_eq!(store.get_bytes(&empty).await.unwrap(), Bytes::new());
    store.delete(&key).await.unwrap();
    store.delete(&empty).await.unwrap();
    assert_eq!(store.head(&key).await.unwrap_err().kind(), ErrorKind::NotFound);
}

pub async fn missing_objects(store: &dyn BlobStore, p: &str) {
    let key = format!("{p}missing");
    assert_eq!(store.get(&key, None).await.unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(store.head(&key).await.unwrap_err().kind(), ErrorKind::NotFound);
    store.delete(&key).await.expect("deleting a missing key is ok");
    assert_eq!(store.copy(&key, &format!("{p}dest")).await.unwrap_err().kind(), ErrorKind::NotFound);
}

pub async fn ranged_reads(store: &dyn BlobStore, p: &str) {
    let key = format!("{p}ranged");
    let data: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    store.put_bytes(&key, Bytes::from(data.clone())).await.unwrap();
    let read = |start, end| {
        let key = key.clone();
        async move {
            let r = store.get(&key, Some(ByteRange { start, end })).await?;
            let (size, start, len) = (r.size, r.start, r.len);
            let body: Vec<Bytes> = r.body.try_collect().await.unwrap();
            Ok::<_, super::PortError>((size, start, len, body.concat()))
        }
    };
    let (size, start, len, body) = read(100, Some(199)).await.unwrap();
    assert_eq!((size, start, len), (10_000, 100, 100));
    assert_eq!(body, data[100..200]);
    let (_, _, len, body) = read(9_990, None).await.unwrap();
    assert_eq!((len, body.as_slice()), (10, &data[9_990..]));
    let (_, _, len, body) = read(9_999, Some(50_000)).await.expect("end past the object is clamped");
    assert_eq!((len, body.as_slice()), (1, &data[9_999..]));
    let (_, _, len, body) = read(0, Some(0)).await.unwrap();
    assert_eq!((len, body.as_slice()), (1, &data[..1]));
    assert_eq!(read(10_000, None).await.unwrap_err().kind(), ErrorKind::InvalidRange);
    assert_eq!(read(20_000, Some(20_001)).await.unwrap_err().kind(), ErrorKind::InvalidRange);
    let empty = format!("{p}empty");
    store.put_bytes(&empty, Bytes::new()).await.unwrap();
    let err = store.get(&empty, Some(ByteRange { start: 0, end: None })).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRange);
    store.delete(&key).await.unwrap();
    store.delete(&empty).await.unwrap();
}

/// 80 MiB in and out, streaming: the process must not grow by anything
/// near the object's size.
pub async fn large_object_bounded_memory(store: &dyn BlobStore, p: &str) {
    const LEN: u64 = 80 * 1024 * 1024;
    const BUDGET: u64 = 48 * 1024 * 1024;
    let key = format!("{p}large");
    let (expected_len, expected_hash) = hash_stream(pattern_stream(LEN, 7)).await;
    let _alone = crate::testkit::MEMORY_MEASUREMENT.lock().await;
    reset_peak_rss();
    let (before, _) = rss_bytes();
    assert_eq!(store.put(&key, pattern_stream(LEN, 7)).await.unwrap(), LEN);
    let (_, peak_put) = rss_bytes();
    let read = store.get(&key, None).await.unwrap();
    assert_eq!(read.len, LEN);
    assert_eq!(hash_stream(read.body).await, (expected_len, expected_hash));
    let (_, peak) = rss_bytes();
    if before > 0 {
        let grew = peak.max(peak_put).saturating_sub(before);
        assert!(grew < BUDGET, "memory grew by {} MiB moving an 80 MiB object", grew >> 20);
    }
    let r = store.get(&key, Some(ByteRange { start: LEN - 3, end: None })).await.unwrap();
    assert_eq!(r.len, 3);
    store.delete(&key).await.unwrap();
}

pub async fn failed_put_leaves_nothing(store: &dyn BlobStore, p: &str) {
    let key = format!("{p}broken");
    let failing = |len: u64| {
        pattern_stream(len, 1)
            .chain(futures::stream::once(async { Err(std::io::Error::other("client went away")) }))
            .boxed()
    };
    assert!(store.put(&key, failing(1024)).await.is_err());
    assert_eq!(store.head(&key).await.unwrap_err().kind(), ErrorKind::NotFound);
    store.put_bytes(&key, Bytes::from_static(b"old")).await.unwrap();
    assert!(store.put(&key, failing(12 * 1024 * 1024)).await.is_err());
    assert_eq!(store.get_bytes(&key).await.unwrap(), Bytes::from_static(b"old"), "old object kept");
    store.delete(&key).await.unwrap();
}

fn filled(len: u64, byte: u8) -> Bytes {
    Bytes::from(vec![byte; usize::try_from(len).unwrap()])
}

pub async fn multipart_upload(store: &dyn BlobStore, p: &str) {
    let key = format!("{p}multi");
    let id = store.create_multipart(&key).await.unwrap();
    // Parts may arrive in any order and be replaced.
    let p2 = store.upload_part_bytes(&key, &id, 2, filled(MIN_PART_SIZE, b'b')).await.unwrap();
    let p3 = store.upload_part_bytes(&key, &id, 3, Bytes::from_static(b"tail")).await.unwrap();
    let _old = store.upload_part_bytes(&key, &id, 1, filled(MIN_PART_SIZE, b'x')).await.unwrap();
    let p1 = store.upload_part_bytes(&key, &id, 1, filled(MIN_PART_SIZE, b'a')).await.unwrap();
    assert_eq!((p1.size, p3.size), (MIN_PART_SIZE, 4));
    assert_eq!(store.head(&key).await.unwrap_err().kind(), ErrorKind::NotFound, "invisible until complete");
    assert!(store.list(p, None, 10).await.unwrap().objects.is_empty());
    store.complete_multipart(&key, &id, &[p1, p2, p3]).await.unwrap();
    let total = 2 * MIN_PART_SIZE + 4;
    assert_eq!(store.head(&key).await.unwrap().size, total);
    let tail = store.get(&key, Some(ByteRange { start: MIN_PART_SIZE - 1, end: Some(MIN_PART_SIZE) })).await.unwrap();
    let tail: Vec<Bytes> = tail.body.try_collect().await.unwrap();
    assert_eq!(tail.concat(), b"ab");
    let last: Vec<Bytes> = store
        .get(&key, Some(ByteRange { start: total - 5, end: None }))
        .await
        .unwrap()
        .body
        .try_collect()
        .await
        .unwrap();
    assert_eq!(last.concat(), b"btail");
    store.abort_multipart(&key, &id).await.expect("aborting a finished upload is ok");
    store.delete(&key).await.unwrap();
}

pub async fn multipart_rules(store: &dyn BlobStore, p: &str) {
    let key = format!("{p}rules");
    let id = store.create_multipart(&key).await.unwrap();
    let small = store.upload_part_bytes(&key, &id, 1, Bytes::from_static(b"too small")).await.unwrap();
    let last = store.upload_part_bytes(&key, &id, 2, Bytes::from_static(b"end")).await.unwrap();
    let err = store.complete_multipart(&key, &id, &[small, last.clone()]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "a non-last part under 5 MiB is refused");
    assert_eq!(store.head(&key).await.unwrap_err().kind(), ErrorKind::NotFound);
    // The upload stays usable after a refused completion.
    let big = store.upload_part_bytes(&key, &id, 1, filled(MIN_PART_SIZE, b'z')).await.unwrap();
    store.complete_multipart(&key, &id, &[big, last]).await.unwrap();
    assert_eq!(store.head(&key).await.unwrap().size, MIN_PART_SIZE + 3);
    store.delete(&key).await.unwrap();

    let unknown = "0123456789abcdef0123456789abcdef";
    let err = store.upload_part_bytes(&key, unknown, 1, Bytes::from_static(b"x")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    store.abort_multipart(&key, unknown).await.expect("aborting an unknown upload is ok");

    let id = store.create_multipart(&key).await.unwrap();
    store.upload_part_bytes(&key, &id, 1, filled(1024, b'q')).await.unwrap();
    store.abort_multipart(&key, &id).await.unwrap();
    let err = store.upload_part_bytes(&key, &id, 2, Bytes::from_static(b"x")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "an aborted upload is gone");
    assert_eq!(store.head(&key).await.unwrap_err().kind(), ErrorKind::NotFound);
}

/// Parts streamed from bodies of unknown length: a body of at least
/// `min_len` bytes is a part (of an upload started for it when none is
/// given), a shorter one the object named for it; without `short` every
/// body is a part.
pub async fn streamed_parts(store: &dyn BlobStore, p: &str) {
    let key = format!("{p}streamed");
    let rest = format!("{p}rest");
    let short = |min_len| Some(ShortPart { min_len, key: rest.as_str() });
    let written = store.upload_part(&key, None, 1, pattern_stream(1000, 1), short(MIN_PART_SIZE)).await.unwrap();
    assert_eq!(written, PartWrite::Object { size: 1000 });
    assert_eq!(
        hash_stream(store.get(&rest, None).await.unwrap().body).await,
        hash_stream(pattern_stream(1000, 1)).await
    );
    assert_eq!(store.head(&key).await.unwrap_err().kind(), ErrorKind::NotFound);

    // The remainder opens the next body, long enough to be a part: of a
    // new upload, as none was given.
    let body = store.get(&rest, None).await.unwrap().body.chain(pattern_stream(MIN_PART_SIZE - 1000, 2)).boxed();
    let PartWrite::Part { upload_id, part: p1 } =
        store.upload_part(&key, None, 1, body, short(MIN_PART_SIZE)).await.unwrap()
    else {
        panic!("a body of exactly min_len bytes is a part");
    };
    assert_eq!((p1.number, p1.size), (1, MIN_PART_SIZE));
    // An empty body is a short one too: an empty object replacing the old.
    let written = store.upload_part(&key, Some(&upload_id), 2, futures::stream::empty().boxed(), short(1)).await;
    assert_eq!(written.unwrap(), PartWrite::Object { size: 0 });
    assert_eq!(store.head(&rest).await.unwrap().size, 0);
    let PartWrite::Part { upload_id: same, part: p2 } =
        store.upload_part(&key, Some(&upload_id), 2, pattern_stream(10, 3), None).await.unwrap()
    else {
        panic!("without a minimum every body is a part");
    };
    assert_eq!((same.as_str(), p2.size), (upload_id.as_str(), 10));
    assert_eq!(store.head(&key).await.unwrap_err().kind(), ErrorKind::NotFound, "invisible until complete");
    store.complete_multipart(&key, &upload_id, &[p1, p2]).await.unwrap();
    let expected = pattern_stream(1000, 1).chain(pattern_stream(MIN_PART_SIZE - 1000, 2)).chain(pattern_stream(10, 3));
    assert_eq!(hash_stream(store.get(&key, None).await.unwrap().body).await, hash_stream(expected.boxed()).await);
    store.delete(&key).await.unwrap();
    store.delete(&rest).await.unwrap();
}

/// A body that fails half-way stores nothing: no part (the earlier part of
/// that number stays), no short object, no upload.
pub async fn failed_part_stores_nothing(store: &dyn BlobStore, p: &str) {
    let key = format!("{p}failing");
    let rest = format!("{p}rest");
    let failing = |len: u64| {
        pattern_stream(len, 4)
            .chain(futures::stream::once(async { Err(std::io::Error::other("client went away")) }))
            .boxed()
    };
    let id = store.create_multipart(&key).await.unwrap();
    let p1 = store.upload_part_bytes(&key, &id, 1, filled(MIN_PART_SIZE, b'a')).await.unwrap();
    assert!(store.upload_part(&key, Some(&id), 1, failing(MIN_PART_SIZE + 10), None).await.is_err());
    let short = Some(ShortPart { min_len: MIN_PART_SIZE, key: rest.as_str() });
    assert!(store.upload_part(&key, Some(&id), 2, failing(100), short).await.is_err());
    assert_eq!(store.head(&rest).await.unwrap_err().kind(), ErrorKind::NotFound);
    assert!(store.upload_part(&key, None, 1, failing(MIN_PART_SIZE + 10), None).await.is_err());
    let p2 = store.upload_part_bytes(&key, &id, 2, Bytes::from_static(b"end")).await.unwrap();
    store.complete_multipart(&key, &id, &[p1, p2]).await.unwrap();
    let got = store.get_bytes(&key).await.unwrap();
    assert_eq!(got.len() as u64, MIN_PART_SIZE + 3);
    assert!(got[..got.len() - 3].iter().all(|&b| b == b'a') && got.ends_with(b"end"), "the earlier part 1 stayed");
    store.delete(&key).await.unwrap();
}

/// Streamed parts cost at most about one part of memory each, and nothing
/// stays behind after them: four parts of 24 MiB move through a budget
/// smaller than their sum.
pub async fn streamed_parts_bounded_memory(store: &dyn BlobStore, p: &str) {
    const LEN: u64 = 24 * 1024 * 1024;
    const PARTS: u32 = 4;
    const BUDGET: u64 = 2 * LEN + 16 * 1024 * 1024;
    let key = format!("{p}streamed-large");
    let id = store.create_multipart(&key).await.unwrap();
    let _alone = crate::testkit::MEMORY_MEASUREMENT.lock().await;
    reset_peak_rss();
    let (before, _) = rss_bytes();
    let mut parts = Vec::new();
    for number in 1..=PARTS {
        let seed = u8::try_from(number).unwrap();
        let written = store.upload_part(&key, Some(&id), number, pattern_stream(LEN, seed), None).await.unwrap();
        let PartWrite::Part { part, .. } = written else { panic!("part {number} became an object") };
        parts.push(part);
    }
    let (_, peak) = rss_bytes();
    if before > 0 {
        let grew = peak.saturating_sub(before);
        assert!(grew < BUDGET, "memory grew by {} MiB streaming {PARTS} parts of 24 MiB", grew >> 20);
    }
    store.complete_multipart(&key, &id, &parts).await.unwrap();
    assert_eq!(store.head(&key).await.unwrap().size, u64::from(PARTS) * LEN);
    store.delete(&key).await.unwrap();
}

pub async fn list_pagination(store: &dyn BlobStore, p: &str) {
    // Names chosen so that per-folder order differs from whole-key order.
    let mut keys: Vec<String> = (0..23).map(|i| format!("{p}k/{i:03}")).collect();
    keys.extend([format!("{p}k-a"), format!("{p}k.b"), format!("{p}k/0/deep"), format!("{p}kz")]);
    for k in &keys {
        store.put_bytes(k, Bytes::from(k.clone())).await.unwrap();
    }
    keys.sort();
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.list(p, after.as_deref(), 7).await.unwrap();
        assert!(page.objects.len() <= 7);
        seen.extend(page.objects.iter().map(|o| o.key.clone()));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, keys, "every key once, in lexical order");
    let sub = store.list(&format!("{p}k/01"), None, 100).await.unwrap();
    let sub: Vec<_> = sub.objects.iter().map(|o| o.key.clone()).collect();
    assert_eq!(sub, (10..20).map(|i| format!("{p}k/{i:03}")).collect::<Vec<_>>());
    let obj = &store.list(&format!("{p}k/005"), None, 1).await.unwrap().objects[0];
    assert_eq!(obj.size, format!("{p}k/005").len() as u64);
    // A listing and a head agree on the write time (a head may say it in
    // whole seconds).
    let head = store.head(&obj.key).await.unwrap();
    assert!(obj.modified_ms > 0 && (obj.modified_ms - head.modified_ms).abs() < 1000, "{obj:?} vs {head:?}");
    assert!(store.list(&format!("{p}nothing"), None, 5).await.unwrap().objects.is_empty());
    for k in &keys {
        store.delete(k).await.unwrap();
    }
}

pub async fn copy_is_independent(store: &dyn BlobStore, p: &str) {
    let (a, b) = (format!("{p}src"), format!("{p}dir/dst"));
    store.put_bytes(&a, Bytes::from_static(b"original")).await.unwrap();
    store.copy(&a, &b).await.unwrap();
    store.put_bytes(&a, Bytes::from_static(b"changed")).await.unwrap();
    assert_eq!(store.get_bytes(&b).await.unwrap(), Bytes::from_static(b"original"));
    store.delete(&a).await.unwrap();
    assert_eq!(store.get_bytes(&b).await.unwrap(), Bytes::from_static(b"original"));
    store.delete(&b).await.unwrap();
}

pub async fn presigned_get(store: &dyn BlobStore, p: &str) {
    let key = format!("{p}signed");
    store.put_bytes(&key, Bytes::from_static(b"through a url")).await.unwrap();
    if let Some(url) = store.presign_get(&key, Duration::from_secs(60)).await.unwrap() {
        let resp = reqwest::get(url.clone()).await.unwrap();
        assert!(resp.status().is_success(), "GET {url}: {}", resp.status());
        assert_eq!(resp.bytes().await.unwrap(), Bytes::from_static(b"through a url"));
        let ranged = reqwest::Client::new().get(url).header("range", "bytes=8-10").send().await.unwrap();
        assert_eq!(ranged.status().as_u16(), 206);
        assert_eq!(ranged.bytes().await.unwrap(), Bytes::from_static(b"a u"));
    }
    store.delete(&key).await.unwrap();
}

/// Parts PUT by a plain HTTP client to presigned URLs assemble like parts
/// uploaded through the store; a store without URLs says so for every part.
pub async fn presigned_part_upload(store: &dyn BlobStore, p: &str) {
    let key = format!("{p}direct");
    let upload = store.create_multipart(&key).await.unwrap();
    let ttl = Duration::from_secs(60);
    let Some(first) = store.presign_upload_part(&key, &upload, 1, ttl).await.unwrap() else {
        assert!(store.presign_upload_part(&key, &upload, 2, ttl).await.unwrap().is_none());
        store.abort_multipart(&key, &upload).await.unwrap();
        return;
    };
    let second = store.presign_upload_part(&key, &upload, 2, ttl).await.unwrap().unwrap();
    let big = Bytes::from(vec![5u8; usize::try_from(MIN_PART_SIZE).unwrap()]);
    let client = reqwest::Client::new();
    let mut parts = Vec::new();
    for (number, url, body) in [(1, first, big.clone()), (2, second, Bytes::from_static(b"tail"))] {
        let size = body.len() as u64;
        let resp =
            client.put(url.clone()).header("content-type", "application/octet-stream").body(body).send().await.unwrap();
        assert!(resp.status().is_success(), "PUT {url}: {}", resp.status());
        let etag = resp.headers()["etag"].to_str().unwrap().to_owned();
        parts.push(super::CompletedPart { number, etag, size });
    }
    store.complete_multipart(&key, &upload, &parts).await.unwrap();
    let got = store.get_bytes(&key).await.unwrap();
    assert_eq!(got.len() as u64, MIN_PART_SIZE + 4);
    assert!(got[..big.len()] == big[..] && &got[big.len()..] == b"tail");
    store.delete(&key).await.unwrap();
}

//! Decorators that time every call of a backend port: object-store calls
//! as Distribution's `registry_storage_action_seconds`, table and queue
//! calls as `berth_meta_action_seconds` and `berth_queue_action_seconds`,
//! each labelled with the backend (`driver`) and the call. Put in front of
//! the ports when a context is assembled, so every host (server, worker,
//! Lambda) reports them. A stream a call returns (an object's body) is not
//! part of its time.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use prometheus::HistogramVec;

use crate::blob::{
    BlobStore, ByteRange, ByteStream, CompletedPart, ListPage, ObjectMeta, ObjectRead, PartWrite, ShortPart,
};
use crate::meta::{Condition, Item, MetaStore, Page, Query, Write};
use crate::port::PortResult;
use crate::queue::{Message, Queue, QueueSpec};

async fn timed<T>(h: &HistogramVec, driver: &str, action: &str, call: impl Future<Output = T>) -> T {
    let start = Instant::now();
    let out = call.await;
    h.with_label_values(&[driver, action]).observe(start.elapsed().as_secs_f64());
    out
}

#[derive(Debug)]
pub struct TimedBlobStore {
    inner: Arc<dyn BlobStore>,
    driver: &'static str,
}

impl TimedBlobStore {
    pub fn wrap(inner: Arc<dyn BlobStore>, driver: &'static str) -> Arc<dyn BlobStore> {
        Arc::new(Self { inner, driver })
    }

    async fn time<T>(&self, action: &str, call: impl Future<Output = T>) -> T {
        timed(&super::metrics().storage_action, self.driver, action, call).await
    }
}

#[async_trait]
impl BlobStore for TimedBlobStore {
    async fn put(&self, key: &str, body: ByteStream) -> PortResult<u64> {
        self.time("PutContent", self.inner.put(key, body)).await
    }

    async fn get(&self, key: &str, range: Option<ByteRange>) -> PortResult<ObjectRead> {
        self.time("Reader", self.inner.get(key, range)).await
    }

    async fn head(&self, key: &str) -> PortResult<ObjectMeta> {
        self.time("Stat", self.inner.head(key)).await
    }

    async fn delete(&self, key: &str) -> PortResult<()> {
        self.time("Delete", self.inner.delete(key)).await
    }

    async fn list(&self, prefix: &str, after: Option<&str>, limit: usize) -> PortResult<ListPage> {
        self.time("List", self.inner.list(prefix, after, limit)).await
    }

    async fn copy(&self, from: &str, to: &str) -> PortResult<()> {
        self.time("Move", self.inner.copy(from, to)).await
    }

    async fn create_multipart(&self, key: &str) -> PortResult<String> {
        self.time("CreateMultipart", self.inner.create_multipart(key)).await
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: Option<&str>,
        number: u32,
        body: ByteStream,
        short: Option<ShortPart<'_>>,
    ) -> PortResult<PartWrite> {
        self.time("Writer", self.inner.upload_part(key, upload_id, number, body, short)).await
    }

    async fn complete_multipart(&self, key: &str, upload_id: &str, parts: &[CompletedPart]) -> PortResult<()> {
        self.time("Commit", self.inner.complete_multipart(key, upload_id, parts)).await
    }

    async fn abort_multipart(&self, key: &str, upload_id: &str) -> PortResult<()> {
        self.time("Cancel", self.inner.abort_multipart(key, upload_id)).await
    }

    async fn presign_get(&self, key: &str, ttl: Duration) -> PortResult<Option<url::Url>> {
        self.time("RedirectURL", self.inner.presign_get(key, ttl)).await
    }

    async fn presign_upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        ttl: Duration,
    ) -> PortResult<Option<url::Url>> {
        self.time("PresignPart", self.inner.presign_upload_part(key, upload_id, number, ttl)).await
    }

    async fn put_bytes(&self, key: &str, bytes: Bytes) -> PortResult<u64> {
        self.time("PutContent", self.inner.put_bytes(key, bytes)).await
    }
}

#[derive(Debug)]
pub struct TimedMetaStore {
    inner: Arc<dyn MetaStore>,
    driver: &'static str,
}

impl TimedMetaStore {
    pub fn wrap(inner: Arc<dyn MetaStore>, driver: &'static str) -> Arc<dyn MetaStore> {
        Arc::new(Self { inner, driver })
    }

    async fn time<T>(&self, action: &str, call: impl Future<Output = T>) -> T {
        timed(&super::metrics().meta_action, self.driver, action, call).await
    }
}

#[async_trait]
impl MetaStore for TimedMetaStore {
    async fn get(&self, pk: &str, sk: &str) -> PortResult<Option<Item>> {
        self.time("get", self.inner.get(pk, sk)).await
    }

    async fn put(&self, item: Item, cond: Condition) -> PortResult<()> {
        self.time("put", self.inner.put(item, cond)).await
    }

    async fn delete(&self, pk: &str, sk: &str, cond: Condition) -> PortResult<()> {
        self.time("delete", self.inner.delete(pk, sk, cond)).await
    }

    async fn add(&self, pk: &str, sk: &str, attr: &str, delta: i64, cond: Condition) -> PortResult<i64> {
        self.time("add", self.inner.add(pk, sk, attr, delta, cond)).await
    }

    async fn query(&self, query: Query) -> PortResult<Page> {
        self.time("query", self.inner.query(query)).await
    }

    async fn transact(&self, writes: Vec<Write>) -> PortResult<()> {
        self.time("transact", self.inner.transact(writes)).await
    }

    async fn expired(&self, after: Option<String>, limit: usize) -> PortResult<Page> {
        self.time("expired", self.inner.expired(after, limit)).await
    }

    async fn scan(&self, after: Option<String>, limit: usize) -> PortResult<Page> {
        self.time("scan", self.inner.scan(after, limit)).await
    }
}

#[derive(Debug)]
pub struct TimedQueue {
    inner: Arc<dyn Queue>,
    driver: &'static str,
}

impl TimedQueue {
    pub fn wrap(inner: Arc<dyn Queue>, driver: &'static str) -> Arc<dyn Queue> {
        Arc::new(Self { inner, driver })
    }

    async fn time<T>(&self, action: &str, call: impl Future<Output = T>) -> T {
        timed(&super::metrics().queue_action, self.driver, action, call).await
    }
}

#[async_trait]
impl Queue for TimedQueue {
    async fn ensure(&self, queue: &str, spec: QueueSpec) -> PortResult<()> {
        self.time("ensure", self.inner.ensure(queue, spec)).await
    }

    async fn send(&self, queue: &str, body: &str, delay: Duration) -> PortResult<String> {
        self.time("send", self.inner.send(queue, body, delay)).await
    }

    async fn receive(&self, queue: &str, max: usize, visibility: Duration, wait: Duration) -> PortResult<Vec<Message>> {
        self.time("receive", self.inner.receive(queue, max, visibility, wait)).await
    }

    async fn ack(&self, queue: &str, receipt: &str) -> PortResult<()> {
        self.time("ack", self.inner.ack(queue, receipt)).await
    }

    async fn retry_later(&self, queue: &str, receipt: &str, delay: Duration) -> PortResult<()> {
        self.time("retry_later", self.inner.retry_later(queue, receipt, delay)).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn calls_are_timed_and_passed_on() {
        let (_dir, registry) = crate::testkit::local_registry().await;
        let meta = TimedMetaStore::wrap(registry.meta_for_tests(), "test-driver");
        meta.put(Item::new("p", "a").with("n", 1), Condition::Always).await.unwrap();
        assert_eq!(meta.get("p", "a").await.unwrap().unwrap().i64("n"), Some(1));
        let text = super::super::metrics().encode(Some("core"));
        assert!(text.contains("berth_meta_action_seconds_count{action=\"get\",driver=\"test-driver\"}"), "{text}");
    }
}

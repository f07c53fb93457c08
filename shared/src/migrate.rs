//! `berth migrate`: brings a backend's resources and schema up to the
//! version this build expects (`migrations/table.json`), running the data
//! migration of each version it passes (2: the list entries and counters of
//! paged listings, [`crate::service::reindex`]). Idempotent: running it
//! again changes nothing.

use std::sync::Arc;

use crate::blob::BlobStore;
use crate::blob::s3::S3BlobStore;
use crate::config::Config;
use crate::events::EventBus;
use crate::meta::dynamo::DynamoMetaStore;
use crate::meta::schema::table_schema;
use crate::meta::{Condition, ErrorKind, Item, MetaStore, PortError, keys, now_unix};
use crate::queue::sqs::SqsQueue;
use crate::queue::{ALL_QUEUES, Queue, QueueSpec};
use crate::service::Registry;
use crate::startup::StartupError;

/// What a migration did, for the command's output.
#[derive(Debug, Default)]
pub struct Report {
    pub steps: Vec<String>,
}

/// Creates whatever of the bucket, table and queues is missing, then records
/// the schema version.
pub async fn apply_aws(config: &Config) -> Result<Report, StartupError> {
    let aws = &config.aws;
    let sdk = crate::aws::sdk_config(aws).await;
    let schema = table_schema();
    let mut report = Report::default();
    let err = |what: String| move |e: PortError| StartupError::new(format!("{what}: {e}"));

    S3BlobStore::from_config(aws, &sdk).ensure_bucket().await.map_err(err(format!("S3 bucket {}", aws.bucket)))?;
    report.steps.push(format!("bucket {} ready", aws.bucket));
    let meta = DynamoMetaStore::from_config(aws, &sdk);
    meta.ensure_table(&schema).await.map_err(err(format!("DynamoDB table {}", aws.table)))?;
    report.steps.push(format!("table {} ready", aws.table));
    let queue = SqsQueue::from_config(aws, &sdk);
    ensure_queues(&queue, config).await.map_err(err("SQS queues".to_owned()))?;
    report.steps.push(format!("queues {}{{{}}} ready", aws.queue_prefix, ALL_QUEUES.join(",")));
    let blobs = S3BlobStore::from_config(aws, &sdk);
    let meta: Arc<dyn MetaStore> = Arc::new(meta);
    let events = Arc::new(EventBus::new(meta.clone(), Arc::new(queue)));
    let registry = Registry::from_ports(Arc::new(blobs), meta.clone(), events, config.auth.token_ttl_secs);
    let version = migrate_data(&registry, meta.as_ref(), &mut report).await?;
    report.steps.push(format!("schema version {version}"));
    Ok(report)
}

/// The local store: queues and the schema version (the embedded database
/// keeps its indexes itself, so there is no table to create).
pub async fn apply_local(
    config: &Config,
    blobs: &Arc<dyn BlobStore>,
    meta: &Arc<dyn MetaStore>,
    queue: &Arc<dyn Queue>,
) -> Result<Report, StartupError> {
    ensure_queues(queue.as_ref(), config).await.map_err(|e| StartupError::new(format!("the local queues: {e}")))?;
    let mut report = Report::default();
    let events = Arc::new(EventBus::new(meta.clone(), queue.clone()));
    let registry = Registry::from_ports(blobs.clone(), meta.clone(), events, config.auth.token_ttl_secs);
    let version = migrate_data(&registry, meta.as_ref(), &mut report).await?;
    report.steps.push(format!("local store at {} on schema version {version}", config.data_dir.display()));
    Ok(report)
}

/// Runs the data migrations between the store's recorded version and this
/// build's, then records this build's. A store that was never migrated
/// holds no data to migrate.
async fn migrate_data(registry: &Registry, meta: &dyn MetaStore, report: &mut Report) -> Result<u32, StartupError> {
    let stored =
        stored_version(meta).await.map_err(|e| StartupError::new(format!("reading the schema version: {e}")))?;
    if stored == Some(1) {
        let done = registry
            .reindex()
            .await
            .map_err(|e| StartupError::new(format!("migrating to schema 2 (list entries and counters): {e}")))?;
        report.steps.push(format!(
            "schema 2: listed {} users, {} groups, {} robots, {} projects, {} repositories, {} artifacts, {} tags",
            done.users, done.groups, done.robots, done.projects, done.repositories, done.artifacts, done.tags
        ));
    }
    if stored.is_some_and(|v| v < 3) {
        let (mut projects, mut bytes) = (0, 0);
        let names =
            registry.project_names().await.map_err(|e| StartupError::new(format!("migrating to schema 3: {e}")))?;
        for name in names {
            let r = registry
                .sync_quota(&name)
                .await
                .map_err(|e| StartupError::new(format!("migrating to schema 3 (the usage of {name}): {e}")))?;
            projects += 1;
            bytes += r.used_after;
        }
        let stored = registry
            .recount_stored_bytes()
            .await
            .map_err(|e| StartupError::new(format!("migrating to schema 3 (the bytes stored): {e}")))?;
        report.steps.push(format!(
            "schema 3: counted the storage of {projects} projects ({bytes} bytes) and {stored} bytes stored"
        ));
    }
    if stored.is_some_and(|v| v < 4) {
        let (blobs, links) = registry
            .count_blob_links()
            .await
            .map_err(|e| StartupError::new(format!("migrating to schema 4 (link counts): {e}")))?;
        report.steps.push(format!("schema 4: counted {links} links of {blobs} blobs"));
    }
    if stored.is_some_and(|v| v < 5) {
        let recorded = registry
            .record_manifest_bodies()
            .await
            .map_err(|e| StartupError::new(format!("migrating to schema 5 (large manifests): {e}")))?;
        report.steps.push(format!("schema 5: recorded the objects of {recorded} large manifests"));
    }
    if stored.is_some_and(|v| v < 6) {
        let indexed = registry
            .index_project_artifacts()
            .await
            .map_err(|e| StartupError::new(format!("migrating to schema 6 (project artifact lists): {e}")))?;
        report.steps.push(format!("schema 6: listed {indexed} artifacts in their projects"));
        let hidden = registry
            .hide_stored_references()
            .await
            .map_err(|e| StartupError::new(format!("migrating to schema 6 (index children and accessories): {e}")))?;
        report.steps.push(format!("schema 6: {hidden} accessories and indexes looked at"));
    }
    record_version(meta).await.map_err(|e| StartupError::new(format!("recording the schema version: {e}")))
}

async fn stored_version(meta: &dyn MetaStore) -> Result<Option<i64>, PortError> {
    let (pk, sk) = keys::schema_version();
    Ok(meta.get(pk, sk).await?.and_then(|i| i.i64(keys::attr::VERSION)))
}

pub async fn ensure_queues(queue: &dyn Queue, config: &Config) -> Result<(), PortError> {
    let spec = QueueSpec { max_attempts: config.queue.max_attempts };
    for name in ALL_QUEUES {
        queue.ensure(name, spec).await?;
    }
    Ok(())
}

/// Moves the recorded schema version up to this build's, never down.
async fn record_version(meta: &dyn MetaStore) -> Result<u32, PortError> {
    let target = table_schema().schema_version;
    let (pk, sk) = keys::schema_version();
    loop {
        let current = meta.get(pk, sk).await?;
        let stored = current.as_ref().and_then(|i| i.i64(keys::attr::VERSION)).unwrap_or(0);
        if stored >= i64::from(target) {
            return Ok(u32::try_from(stored).unwrap_or(u32::MAX));
        }
        let cond = match current {
            Some(_) => Condition::equals(keys::attr::VERSION, stored),
            None => Condition::NotExists,
        };
        let item = Item::new(pk, sk).with(keys::attr::VERSION, target).with("migrated_at", now_unix());
        match meta.put(item, cond).await {
            Ok(()) => return Ok(target),
            Err(e) if e.is(ErrorKind::ConditionFailed) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Refuses to serve a table migrated by a newer berth, or never migrated.
pub async fn check_version(meta: &dyn MetaStore) -> Result<(), StartupError> {
    let target = i64::from(table_schema().schema_version);
    let (pk, sk) = keys::schema_version();
    let stored = meta
        .get(pk, sk)
        .await
        .map_err(|e| StartupError::new(format!("reading the schema version: {e}")))?
        .and_then(|i| i.i64(keys::attr::VERSION));
    match stored {
        None => Err(StartupError::new("the table has no schema version: run `berth migrate --backend aws`")),
        Some(v) if v < target => Err(StartupError::new(format!(
            "the table is on schema version {v}, this berth needs {target}: run `berth migrate --backend aws`"
        ))),
        Some(v) if v > target => Err(StartupError::new(format!(
            "the table is on schema version {v}, newer than this berth ({target}): upgrade berth"
        ))),
        Some(_) => Ok(()),
    }
}

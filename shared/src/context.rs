//! The application context: configuration plus the three ports, built once
//! per process (or per Lambda cold start) and shared by every handler and job.

use std::sync::Arc;

use crate::auth::token::TokenKeys;
use crate::blob::BlobStore;
use crate::blob::fs::FsBlobStore;
use crate::blob::s3::S3BlobStore;
use crate::config::{Backend, Config};
use crate::events::EventBus;
use crate::localdb::LocalDb;
use crate::meta::MetaStore;
use crate::meta::dynamo::DynamoMetaStore;
use crate::meta::local::LocalMetaStore;
use crate::metrics::ports::{TimedBlobStore, TimedMetaStore, TimedQueue};
use crate::port::PortError;
use crate::queue::Queue;
use crate::queue::local::LocalQueue;
use crate::queue::sqs::SqsQueue;
use crate::service::{Registry, ServiceResult};
pub use crate::startup::StartupError;

#[derive(Debug)]
pub struct AppContext {
    pub config: Config,
    pub blobs: Arc<dyn BlobStore>,
    pub meta: Arc<dyn MetaStore>,
    pub queue: Arc<dyn Queue>,
    /// Signs and verifies registry tokens; the same for every replica.
    pub token_keys: TokenKeys,
    /// The process's relay of events to the events queue.
    pub events: Arc<EventBus>,
    /// The registry over these ports, made once: its caches (settings,
    /// the account epoch) are the process's, shared by every handler and
    /// worker, so a change made here is seen here at once.
    registry: Registry,
}

fn startup(what: &str) -> impl FnOnce(PortError) -> StartupError + '_ {
    move |e| StartupError::new(format!("{what}: {e}"))
}

impl AppContext {
    /// Opens the configured backends. The local backends are created and
    /// migrated on the spot (the zero-setup default); AWS resources must
    /// exist already (`berth migrate --backend aws` creates them), and each
    /// is checked so that a missing table or an unreachable endpoint is
    /// reported now, in one line, rather than on the first request.
    pub async fn open(config: Config) -> Result<Arc<Self>, StartupError> {
        let ctx = match config.backend {
            Backend::Local => {
                let (blobs, meta, queue) = open_local(&config).await?;
                let blobs = TimedBlobStore::wrap(blobs, "filesystem");
                let meta = TimedMetaStore::wrap(meta, "localdb");
                let queue = TimedQueue::wrap(queue, "localqueue");
                let token_keys = token_keys(&config, meta.as_ref()).await?;
                crate::migrate::apply_local(&config, &blobs, &meta, &queue).await?;
                let events = Arc::new(EventBus::new(meta.clone(), queue.clone()));
                Self::assemble(config, blobs, meta, queue, token_keys, events)
            }
            Backend::Aws => {
                let sdk = crate::aws::sdk_config(&config.aws).await;
                let blobs = S3BlobStore::from_config(&config.aws, &sdk);
                let meta = DynamoMetaStore::from_config(&config.aws, &sdk);
                let queue = SqsQueue::from_config(&config.aws, &sdk);
                let (b, m, q) = tokio::join!(blobs.check(), meta.check(), queue.check());
                b.map_err(startup(&format!("S3 bucket {}", config.aws.bucket)))?;
                m.map_err(startup(&format!("DynamoDB table {}", config.aws.table)))?;
                q.map_err(startup("SQS queues"))?;
                crate::migrate::check_version(&meta).await?;
                let token_keys = token_keys(&config, &meta).await?;
                let meta = TimedMetaStore::wrap(Arc::new(meta), "dynamodb");
                let queue = TimedQueue::wrap(Arc::new(queue), "sqs");
                let blobs = TimedBlobStore::wrap(Arc::new(blobs), "s3aws");
                let events = Arc::new(EventBus::new(meta.clone(), queue.clone()));
                Self::assemble(config, blobs, meta, queue, token_keys, events)
            }
        };
        Ok(Arc::new(ctx))
    }

    /// A context over these ports (what [`Self::open`] ends with; tests
    /// use it to put a decorator in front of a port).
    pub fn assemble(
        config: Config,
        blobs: Arc<dyn BlobStore>,
        meta: Arc<dyn MetaStore>,
        queue: Arc<dyn Queue>,
        token_keys: TokenKeys,
        events: Arc<EventBus>,
    ) -> Self {
        let mut registry =
            Registry::from_ports(blobs.clone(), meta.clone(), events.clone(), config.auth.token_ttl_secs)
                .with_proxy_config(&config.proxy);
        match crate::auth::seal::Sealer::new(&token_keys) {
            Ok(sealer) => registry = registry.with_sealer(sealer),
            Err(e) => tracing::error!(error = %e, "no seal key: registry endpoint secrets cannot be kept"),
        }
        Self { config, blobs, meta, queue, token_keys, events, registry }
    }

    /// The registry over this context's ports (one per process; clones
    /// share its caches).
    pub fn registry(&self) -> Registry {
        self.registry.clone()
    }

    /// What every start needs in the table (the administrator, the default
    /// project, the built-in scanner and, when configured and none is
    /// there yet, its seed database): the generated administrator
    /// password, when one was made, to be shown once.
    pub async fn bootstrap(&self) -> ServiceResult<Option<String>> {
        let password = self.config.admin.password.as_ref().map(|s| s.expose().to_owned());
        let generated = self.registry().bootstrap(password.as_deref()).await?;
        let seed = self.config.scanner.vulndb_seed.trim();
        if !seed.is_empty() && self.registry().vulndb_info().await?.is_none() {
            let (info, _) = self.registry().import_vulndb(vec![seed.into()]).await?;
            tracing::info!(records = info.records, seed, "imported the vulnerability database");
        }
        Ok(generated)
    }

    /// Brings the local store up to this build's schema (what `open` did
    /// already; `berth migrate` reports it).
    pub async fn migrate_local(&self) -> Result<crate::migrate::Report, StartupError> {
        crate::migrate::apply_local(&self.config, &self.blobs, &self.meta, &self.queue).await
    }
}

/// The configured token key, or the one kept in the table: made by the
/// first process that needs it, with a create-only write, so concurrent
/// first starts agree on one key.
async fn token_keys(config: &Config, meta: &dyn MetaStore) -> Result<TokenKeys, StartupError> {
    if let Some(pem) = &config.auth.token_key {
        return TokenKeys::from_pem(pem.expose()).map_err(|e| StartupError::new(format!("auth.token_key: {e}")));
    }
    let (pk, sk) = crate::meta::keys::token_key();
    let read = || async {
        meta.get(pk, sk)
            .await
            .map_err(startup("reading the token key"))
            .map(|i| i.and_then(|i| i.str("seed").map(str::to_owned)))
    };
    let seed = match read().await? {
        Some(seed) => seed,
        None => {
            let item = crate::meta::Item::new(pk, sk).with("seed", TokenKeys::generate_seed());
            match meta.put(item, crate::meta::Condition::NotExists).await {
                Err(e) if !e.is(crate::port::ErrorKind::ConditionFailed) => {
                    return Err(startup("storing the token key")(e));
                }
                _ => read().await?.ok_or_else(|| StartupError::new("the token key vanished"))?,
            }
        }
    };
    TokenKeys::from_stored_seed(&seed).map_err(|e| StartupError::new(e.to_string()))
}

type Ports = (Arc<dyn BlobStore>, Arc<dyn MetaStore>, Arc<dyn Queue>);

/// The embedded backends under `data_dir`: `blobs/` for bytes and the
/// database file `berth.redb` for metadata and queues.
pub async fn open_local(config: &Config) -> Result<Ports, StartupError> {
    let dir = &config.data_dir;
    let blobs = FsBlobStore::open(dir.join("blobs")).await.map_err(startup("opening the blob folder"))?;
    let db_path = dir.join("berth.redb");
    let db = LocalDb::open(&db_path).map_err(|e| {
        StartupError::new(format!("opening {}: {e} (is another berth using this data folder?)", db_path.display()))
    })?;
    let meta = LocalMetaStore::open(db.clone()).await.map_err(startup("opening the metadata store"))?;
    let queue = LocalQueue::open(db).await.map_err(startup("opening the local queue"))?;
    Ok((Arc::new(blobs), Arc::new(meta), Arc::new(queue)))
}

//! The registry's rules, written once for every host: services take the
//! ports ([`crate::blob`], [`crate::meta`], [`crate::queue`]) and never know
//! which backend is behind them, nor anything of HTTP. Nothing above this
//! layer touches the ports' items: [`Registry`] keeps them private.
//!
//! [`Registry`] is the OCI distribution model: upload sessions
//! ([`uploads`]), blobs and their repository links ([`blobs`]), manifests,
//! tags, referrers and the catalog ([`manifests`]) and Harbor's view of
//! them as repositories, artifacts and tags ([`artifacts`]); and the
//! registry's accounts and access: projects ([`projects`]), users
//! ([`users`]), user groups ([`groups`]), project members ([`members`]),
//! robot accounts ([`robots`]), OIDC logins ([`oidc`]), portal sessions
//! ([`sessions`]) and the system settings ([`settings`]). Listings are paged
//! from key-ordered partitions with counters kept beside them
//! ([`paging`]); account changes reach every replica through the account
//! epoch ([`revocation`]).

pub mod adapter_scans;
pub mod additions;
pub mod artifacts;
pub mod audit;
pub mod backup;
pub mod blobs;
pub mod cosign_keys;
pub mod cve_allowlist;
pub mod cve_export;
pub mod error;
pub mod executions;
pub mod gc;
pub mod groups;
pub mod immutability;
pub mod import;
pub mod jobqueues;
pub mod labels;
pub mod manifests;
pub mod members;
pub mod oidc;
pub mod paging;
pub mod passwords;
pub mod preheat;
pub mod projects;
pub mod proxy_cache;
pub mod pull_policy;
pub mod pulls;
pub mod quotas;
pub mod record;
pub mod references;
pub mod registries;
pub mod reindex;
pub mod replication;
pub mod retention;
pub mod revocation;
pub mod robots;
pub mod sboms;
pub mod scanners;
pub mod scans;
pub mod schedules;
pub mod security_hub;
pub mod selectors;
pub mod sessions;
pub mod settings;
pub mod statistics;
pub mod uploads;
pub mod users;
pub mod vulndb;
pub mod webhooks;

use std::sync::Arc;

pub use error::{ServiceError, ServiceResult};

use self::revocation::{AccountEpoch, Epoch};
use self::settings::{Settings, SettingsStore};
use crate::blob::BlobStore;
use crate::events::{Actor, Event, EventBus, Outgoing};
use crate::meta::MetaStore;

/// The registry over the ports of one application context.
#[derive(Debug, Clone)]
pub struct Registry {
    blobs: Arc<dyn BlobStore>,
    meta: Arc<dyn MetaStore>,
    settings: Arc<SettingsStore>,
    epoch: Arc<AccountEpoch>,
    /// Where the events of committed changes go ([`crate::events`]).
    events: Arc<EventBus>,
    /// Whom the changes made through this handle are recorded as
    /// ([`Registry::acting`]).
    actor: Arc<Actor>,
    /// Projects' pull policies as this process last read them.
    policies: Arc<pull_policy::PolicyCache>,
    /// Seals the secrets berth must give back to others (registry
    /// endpoints' credentials); `None` without a key (a bare test registry).
    sealer: Option<Arc<crate::auth::seal::Sealer>>,
    /// Proxy-cache projects' settings, upstream clients and blob fetches
    /// under way in this process.
    proxy: Arc<proxy_cache::ProxyRuntime>,
}

impl Registry {
    /// The registry over these ports; `token_ttl_secs` is the default of
    /// the `token_expiration` setting.
    pub fn from_ports(
        blobs: Arc<dyn BlobStore>,
        meta: Arc<dyn MetaStore>,
        events: Arc<EventBus>,
        token_ttl_secs: u64,
    ) -> Self {
        let settings = Arc::new(SettingsStore::new(meta.clone(), token_ttl_secs));
        let epoch = Arc::new(AccountEpoch::new(meta.clone()));
        let policies = Arc::default();
        Self {
            blobs,
            meta,
            settings,
            epoch,
            events,
            actor: Arc::new(Actor::system()),
            policies,
            sealer: None,
            proxy: Arc::default(),
        }
    }

    /// This registry, proxy-caching with `config`.
    pub fn with_proxy_config(self, config: &crate::config::ProxyConfig) -> Self {
        Self { proxy: Arc::new(proxy_cache::ProxyRuntime::new(config)), ..self }
    }

    /// This registry, sealing secrets with `sealer`.
    pub fn with_sealer(self, sealer: crate::auth::seal::Sealer) -> Self {
        Self { sealer: Some(Arc::new(sealer)), ..self }
    }

    pub(crate) fn sealer(&self) -> ServiceResult<&crate::auth::seal::Sealer> {
        self.sealer.as_deref().ok_or_else(|| {
            ServiceError::Backend(crate::port::PortError::msg(crate::port::ErrorKind::Internal, "no seal key"))
        })
    }

    /// This registry, recording the changes made through it as `actor`'s
    /// (in events and the audit log). A plain registry acts as `system`.
    pub fn acting(&self, actor: Actor) -> Self {
        Self { actor: Arc::new(actor), ..self.clone() }
    }

    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// The process's event relay.
    pub fn events(&self) -> &Arc<EventBus> {
        &self.events
    }

    /// Commits `writes` with the outbox items of `events`, then hands the
    /// events to the relay: the one way a change that raises events is
    /// written.
    pub(crate) async fn commit_with_events(
        &self,
        writes: Vec<crate::meta::Write>,
        events: Vec<Event>,
    ) -> crate::port::PortResult<()> {
        let messages = events.iter().map(Outgoing::event).collect::<Result<Vec<_>, _>>()?;
        self.commit_with_messages(writes, messages).await
    }

    /// Commits `writes` with the outbox items of `messages` (events, job
    /// tasks), then hands them to the relay.
    pub(crate) async fn commit_with_messages(
        &self,
        mut writes: Vec<crate::meta::Write>,
        messages: Vec<Outgoing>,
    ) -> crate::port::PortResult<()> {
        writes.extend(messages.iter().map(Outgoing::outbox_write));
        self.meta.transact(writes).await?;
        for m in messages {
            self.events.committed(m);
        }
        Ok(())
    }

    /// The effective system settings (cached for a few seconds).
    pub async fn settings(&self) -> ServiceResult<Arc<Settings>> {
        self.settings.get().await
    }

    /// Where the accounts stand: remembered credentials stay valid while
    /// this stays the same ([`revocation`]).
    pub async fn account_epoch(&self) -> ServiceResult<Epoch> {
        self.epoch.current().await
    }

    /// Whether the metadata store answers (one read), for readiness checks.
    pub async fn ping_meta(&self) -> ServiceResult<()> {
        let (pk, sk) = crate::meta::keys::schema_version();
        self.meta.get(pk, sk).await.map(drop).map_err(Into::into)
    }

    /// What every start needs in the table: the administrator (with the
    /// configured password, or a generated one that is returned to be
    /// shown once), the default project and the built-in scanner's
    /// registration. Idempotent and safe under
    /// concurrent starts.
    pub async fn bootstrap(&self, admin_password: Option<&str>) -> ServiceResult<Option<String>> {
        let generated = self.ensure_admin(admin_password).await?;
        self.ensure_default_project().await?;
        self.ensure_builtin_scanner(crate::scanner::builtin::static_metadata()).await?;
        Ok(generated)
    }

    /// See [`crate::testkit::push_small_image`].
    #[cfg(test)]
    #[allow(clippy::unwrap_used)]
    pub(crate) async fn push_small_image_for_tests(
        &self,
        repo: &crate::oci::RepoName,
        tag: &crate::oci::Tag,
    ) -> crate::oci::Digest {
        let config = crate::oci::Digest::sha256_of(b"{}");
        let manifest = serde_json::json!({"schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config.to_string(), "size": 2},
            "layers": []});
        let info = blobs::BlobInfo { digest: config, size: 2 };
        self.blobs.put_bytes(&crate::blob::keys::blob(&info.digest), bytes::Bytes::from_static(b"{}")).await.unwrap();
        self.link_blob(repo, &info).await.unwrap();
        let bytes = bytes::Bytes::from(serde_json::to_vec(&manifest).unwrap());
        let reference = crate::oci::Reference::Tag(tag.clone());
        self.put_manifest(repo, &reference, None, bytes).await.unwrap().digest
    }

    #[cfg(test)]
    pub(crate) fn meta_for_tests(&self) -> Arc<dyn MetaStore> {
        self.meta.clone()
    }
}

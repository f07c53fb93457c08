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

pub mod artifacts;
pub mod blobs;
pub mod error;
pub mod groups;
pub mod manifests;
pub mod members;
pub mod oidc;
pub mod paging;
pub mod passwords;
pub mod projects;
pub mod record;
pub mod reindex;
pub mod revocation;
pub mod robots;
pub mod sessions;
pub mod settings;
pub mod uploads;
pub mod users;

use std::sync::Arc;

pub use error::{ServiceError, ServiceResult};

use self::revocation::{AccountEpoch, Epoch};
use self::settings::{Settings, SettingsStore};
use crate::blob::BlobStore;
use crate::meta::MetaStore;

/// The registry over the ports of one application context.
#[derive(Debug, Clone)]
pub struct Registry {
    blobs: Arc<dyn BlobStore>,
    meta: Arc<dyn MetaStore>,
    settings: Arc<SettingsStore>,
    epoch: Arc<AccountEpoch>,
}

impl Registry {
    /// The registry over these ports; `token_ttl_secs` is the default of
    /// the `token_expiration` setting.
    pub fn from_ports(blobs: Arc<dyn BlobStore>, meta: Arc<dyn MetaStore>, token_ttl_secs: u64) -> Self {
        let settings = Arc::new(SettingsStore::new(meta.clone(), token_ttl_secs));
        let epoch = Arc::new(AccountEpoch::new(meta.clone()));
        Self { blobs, meta, settings, epoch }
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
    /// shown once) and the default project. Idempotent and safe under
    /// concurrent starts.
    pub async fn bootstrap(&self, admin_password: Option<&str>) -> ServiceResult<Option<String>> {
        let generated = self.ensure_admin(admin_password).await?;
        self.ensure_default_project().await?;
        Ok(generated)
    }

    #[cfg(test)]
    pub(crate) fn meta_for_tests(&self) -> Arc<dyn MetaStore> {
        self.meta.clone()
    }
}

//! The registry's rules, written once for every host: services take the
//! ports ([`crate::blob`], [`crate::meta`], [`crate::queue`]) and never know
//! which backend is behind them, nor anything of HTTP.
//!
//! [`Registry`] is the OCI distribution model: upload sessions
//! ([`uploads`]), blobs and their repository links ([`blobs`]), manifests,
//! tags, referrers and the catalog ([`manifests`]) and Harbor's view of
//! them as repositories, artifacts and tags ([`artifacts`]); and the registry's
//! accounts and access: projects ([`projects`]), users ([`users`]), user
//! groups ([`groups`]), project members ([`members`]), robot accounts
//! ([`robots`]) and the system settings ([`settings`]).

pub mod artifacts;
pub mod blobs;
pub mod error;
pub mod groups;
pub mod manifests;
pub mod members;
pub mod passwords;
pub mod projects;
pub mod record;
pub mod robots;
pub mod settings;
pub mod uploads;
pub mod users;

use std::sync::Arc;

pub use error::{ServiceError, ServiceResult};

use crate::blob::BlobStore;
use crate::context::AppContext;
use crate::meta::MetaStore;

/// The registry over the ports of one application context.
#[derive(Debug, Clone)]
pub struct Registry {
    pub blobs: Arc<dyn BlobStore>,
    pub meta: Arc<dyn MetaStore>,
}

impl Registry {
    pub fn new(ctx: &AppContext) -> Self {
        Self { blobs: ctx.blobs.clone(), meta: ctx.meta.clone() }
    }
}

/// What every start needs in the table: the administrator (with the
/// configured password, or a generated one that is returned to be shown
/// once) and the default project. Idempotent and safe under concurrent
/// starts.
pub async fn bootstrap(ctx: &AppContext) -> ServiceResult<Option<String>> {
    let password = ctx.config.admin.password.as_ref().map(|s| s.expose().to_owned());
    let registry = Registry::new(ctx);
    let generated = registry.ensure_admin(password.as_deref()).await?;
    registry.ensure_default_project().await?;
    Ok(generated)
}

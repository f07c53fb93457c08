//! The registry's rules, written once for every host: services take the
//! ports ([`crate::blob`], [`crate::meta`], [`crate::queue`]) and never know
//! which backend is behind them, nor anything of HTTP.
//!
//! [`Registry`] is the OCI distribution model: upload sessions
//! ([`uploads`]), blobs and their repository links ([`blobs`]), manifests,
//! tags, referrers and the catalog ([`manifests`]).

pub mod accounts;
pub mod blobs;
pub mod error;
pub mod manifests;
pub mod projects;
pub mod uploads;

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
    let generated = accounts::ensure_admin(ctx.meta.as_ref(), password.as_deref()).await?;
    Registry::new(ctx).ensure_default_project().await?;
    Ok(generated)
}

//! What every handler shares: the application context and the services
//! built over it, once per process (or Lambda cold start).

use std::sync::Arc;
use std::time::Duration;

use crate::auth::Authenticator;
use crate::context::AppContext;
use crate::service::Registry;

use super::v2::urls::Urls;

#[derive(Debug)]
pub struct AppState {
    pub ctx: Arc<AppContext>,
    pub registry: Registry,
    pub auth: Authenticator,
    pub urls: Urls,
}

impl AppState {
    pub fn new(ctx: Arc<AppContext>) -> Self {
        Self {
            registry: Registry::new(&ctx),
            auth: Authenticator::new(ctx.meta.clone(), ctx.token_keys.clone(), &ctx.config.auth.service),
            urls: Urls::new(ctx.config.server.upload_base_url.as_deref()),
            ctx,
        }
    }

    pub fn presign_ttl(&self) -> Duration {
        Duration::from_secs(self.ctx.config.server.presign_ttl_secs)
    }
}

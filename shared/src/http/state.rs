//! What every handler shares: the application context and the services
//! built over it, once per process (or Lambda cold start).

use std::sync::Arc;
use std::time::Duration;

use crate::auth::Authenticator;
use crate::auth::ldap::LdapDirectory;
use crate::auth::oidc::Oidc;
use crate::auth::session::Sessions;
use crate::context::AppContext;
use crate::service::Registry;
use crate::service::settings::AuthMode;

use super::v2::urls::Urls;

#[derive(Debug)]
pub struct AppState {
    pub ctx: Arc<AppContext>,
    pub registry: Registry,
    pub auth: Authenticator,
    pub urls: Urls,
    /// Portal sessions and their CSRF tokens.
    pub sessions: Sessions,
    /// The OIDC client (also the `oidc_auth` directory of [`Self::auth`]).
    pub oidc: Arc<Oidc>,
}

impl AppState {
    pub fn new(ctx: Arc<AppContext>) -> Self {
        let registry = ctx.registry();
        let oidc = Arc::new(Oidc::new(&ctx.token_keys));
        let auth = Authenticator::new(registry.clone(), ctx.token_keys.clone(), &ctx.config.auth.service)
            .with_directory(AuthMode::Oidc, oidc.clone())
            .with_directory(AuthMode::Ldap, Arc::new(LdapDirectory));
        let sessions = Sessions::new(&ctx.token_keys);
        Self { registry, auth, urls: Urls::new(ctx.config.server.upload_base_url.as_deref()), sessions, oidc, ctx }
    }

    pub fn presign_ttl(&self) -> Duration {
        Duration::from_secs(self.ctx.config.server.presign_ttl_secs)
    }
}

//! OIDC users' CLI secrets: what docker, podman and skopeo send as the
//! password. Kept as an Argon2id hash (what is checked, at the cost of a
//! password, for unknown users too) and sealed so its owner can read it
//! back, as in Harbor; it serves registry clients only.

use super::{AuthError, Oidc, OidcError, StoredToken, doc_str, secret_context, set_doc, token_context};
use crate::meta::now_unix;
use crate::service::settings::Settings;
use crate::service::users::{Source, User};
use crate::service::{Registry, ServiceError, passwords};

/// Whether an OIDC user's CLI secret may authenticate this management API
/// request (`path` under `/api/v2.0`). As in Harbor, it stands in for a
/// password only for registry clients — the token service and `/v2` —
/// and the few API calls they (and replication) make; everything else
/// needs the portal session.
pub fn cli_secret_allowed(method: &http::Method, path: &str) -> bool {
    let p = path.trim_end_matches('/');
    let in_project = p.starts_with("/projects/") && p.contains("/repositories");
    match *method {
        http::Method::GET | http::Method::HEAD => {
            matches!(p, "/projects" | "/systeminfo" | "/labels")
                || (p.starts_with("/projects/") && p.ends_with("/repositories"))
                || (in_project && p.ends_with("/artifacts"))
        }
        http::Method::POST => p == "/projects",
        http::Method::DELETE => in_project && p.contains("/artifacts/") && p.contains("/tags/"),
        _ => false,
    }
}

impl Oidc {
    /// The CLI secret of an OIDC user, for its owner (and administrators).
    pub fn reveal_secret(&self, user: &User) -> Option<String> {
        let sealed = doc_str(user, "secret_sealed")?;
        self.sealer.as_ref()?.open_str(&secret_context(user.user_id), sealed).ok()
    }

    /// Replaces an OIDC user's CLI secret (the password policy applies).
    /// `NotFound` for users that are not OIDC users.
    pub async fn set_cli_secret(&self, registry: &Registry, id: i64, secret: &str) -> Result<(), ServiceError> {
        passwords::check_policy(secret)?;
        let hash = passwords::hash(secret)?;
        let sealed = self.sealer()?.seal(&secret_context(id), secret.as_bytes())?;
        registry
            .update_oidc_user(id, |f| {
                set_doc(&mut f.oidc, "secret_sealed", sealed.clone())?;
                set_doc(&mut f.oidc, "secret_hash", hash.clone())?;
                set_doc(&mut f.oidc, "update_time", now_unix())
            })
            .await
            .map(|_| ())
    }

    /// The user whose CLI secret this is, with a valid provider token.
    pub(super) async fn check_cli_secret(
        &self,
        registry: &Registry,
        settings: &Settings,
        username: &str,
        secret: &str,
    ) -> Result<Option<User>, AuthError> {
        let user = registry.user_by_name(username).await?.filter(|u| u.source == Source::Oidc);
        let hash = user.as_ref().and_then(|u| doc_str(u, "secret_hash")).map(str::to_owned);
        if !passwords::verify(secret, hash).await? {
            return Ok(None);
        }
        let Some(user) = user else { return Ok(None) };
        match self.fresh(registry, settings, user).await {
            Ok(user) => Ok(Some(user)),
            Err(OidcError::Provider(e)) => Err(AuthError::Unavailable(e)),
            Err(OidcError::Service(e)) => Err(e.into()),
            Err(e) => {
                tracing::info!(user = %username, error = %e, "oidc cli secret refused until the user signs in again");
                Ok(None)
            }
        }
    }

    pub(super) fn stored_token(&self, user: &User) -> Result<StoredToken, OidcError> {
        let sealed = doc_str(user, "token").ok_or_else(|| OidcError::Refused("no provider token".to_owned()))?;
        let bytes = self
            .sealer()?
            .open(&token_context(user.user_id), sealed)
            .map_err(|_| OidcError::Refused("the stored provider token cannot be read".to_owned()))?;
        serde_json::from_slice(&bytes).map_err(|_| OidcError::Refused("corrupt provider token".to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_secrets_serve_registry_clients_only() {
        use http::Method;
        for (m, p) in [
            (Method::GET, "/projects"),
            (Method::GET, "/systeminfo"),
            (Method::POST, "/projects"),
            (Method::GET, "/projects/p/repositories"),
            (Method::GET, "/projects/p/repositories/a%2Fb/artifacts"),
            (Method::DELETE, "/projects/p/repositories/r/artifacts/sha256:1/tags/v1"),
        ] {
            assert!(cli_secret_allowed(&m, p), "{m} {p}");
        }
        for (m, p) in [
            (Method::GET, "/users/current"),
            (Method::PUT, "/users/3/cli_secret"),
            (Method::DELETE, "/projects/p"),
            (Method::GET, "/configurations"),
            (Method::POST, "/projects/p/members"),
        ] {
            assert!(!cli_secret_allowed(&m, p), "{m} {p}");
        }
    }
}

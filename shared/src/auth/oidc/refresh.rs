//! Keeping a CLI user's provider token fresh: as Harbor does, a CLI login
//! whose access token has expired refreshes it at the provider (and takes
//! the user's groups and admin role from the answer); a refused refresh
//! refuses the CLI login until the user signs in to the portal again.

use super::login::onboard_groups;
use super::{Oidc, OidcError, OidcSettings, doc_str};
use crate::meta::now_unix;
use crate::service::Registry;
use crate::service::settings::Settings;
use crate::service::users::User;

impl Oidc {
    /// The user, after refreshing its provider token if it expired.
    pub(super) async fn fresh(&self, registry: &Registry, settings: &Settings, user: User) -> Result<User, OidcError> {
        let token = self.stored_token(&user)?;
        if token.valid_at(now_unix()) {
            return Ok(user);
        }
        let refresh = token
            .refresh_token
            .clone()
            .ok_or_else(|| OidcError::Refused("the access token expired and there is no refresh token".to_owned()))?;
        let cfg = OidcSettings::of(settings)?;
        let provider = self.provider(&cfg).await?;
        let form = [("grant_type", "refresh_token"), ("refresh_token", refresh.as_str())];
        let answer = match self.token_request(&cfg, &provider, &form).await {
            Ok(answer) => answer,
            Err(OidcError::Refused(why)) => {
                // Another replica may have refreshed (and rotated) it first.
                let again = registry.user(user.user_id).await?;
                return match self.stored_token(&again) {
                    Ok(t) if t != token && t.valid_at(now_unix()) => Ok(again),
                    _ => Err(OidcError::Refused(why)),
                };
            }
            Err(e) => return Err(e),
        };
        let mut stored = answer.stored(now_unix());
        let (sub, iss) = (doc_str(&user, "sub").unwrap_or(""), doc_str(&user, "iss").unwrap_or(""));
        let info = match &stored.id_token {
            Some(raw) => {
                let claims = self.verify_id_token(&cfg, &provider, raw, None).await?;
                Some(self.user_info(&cfg, &provider, &claims, &stored.access_token).await?)
            }
            None => self.remote_info(&cfg, &provider, &stored.access_token, iss).await,
        };
        if info.as_ref().is_some_and(|i| i.sub != sub || i.iss != iss) {
            return Err(OidcError::Claims("the refreshed token is another user's".to_owned()));
        }
        stored.refresh_token = stored.refresh_token.or(token.refresh_token);
        stored.id_token = stored.id_token.or(token.id_token);
        let (group_ids, admin) = match info {
            Some(info) => (onboard_groups(registry, &info.groups).await?, info.admin),
            None => (user.group_ids.clone(), user.admin_in_auth),
        };
        Ok(self.record_login(registry, user.user_id, &group_ids, admin, &stored).await?)
    }
}

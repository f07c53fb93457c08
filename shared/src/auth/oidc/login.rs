//! The OIDC sign-in flow: the authorization code flow with PKCE (S256),
//! the callback's code exchange and ID token check, and onboarding —
//! automatic, or with a name the user picks — of the identity as a user.
//! The state of a login is the registry's to keep ([`crate::service::oidc`]):
//! consumed once by the callback on any replica, and bound to the browser
//! that started it by a cookie holding the state.

use super::{
    Login, ONBOARDED_COMMENT, Oidc, OidcError, OidcSettings, Redirect, SECRET_LEN, StoredToken, Verified, internal,
    is_token, pending_context, pkce_challenge, random_token, secret_context, set_doc, token_context,
};
use crate::meta::now_unix;
use crate::service::groups::OIDC_GROUP;
use crate::service::oidc::{NewOidcUser, OidcIdentity, PendingLogin, PendingOnboarding};
use crate::service::settings::Settings;
use crate::service::users::{ExternalUser, User};
use crate::service::{Registry, ServiceError, passwords};

impl Oidc {
    /// Starts a login: records its state, nonce and PKCE verifier, and
    /// returns the provider's authorization URL. `callback` is berth's
    /// redirect URI; `return_to` the local path to land on afterwards.
    pub async fn begin(
        &self,
        registry: &Registry,
        settings: &Settings,
        callback: &str,
        return_to: &str,
    ) -> Result<Redirect, OidcError> {
        let cfg = OidcSettings::of(settings)?;
        let provider = self.provider(&cfg).await?;
        let (state, nonce, verifier) = (random_token(), random_token(), random_token());
        let mut url = url::Url::parse(&provider.authorization_endpoint)
            .map_err(|_| OidcError::Provider("the authorization endpoint is not a URL".to_owned()))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &cfg.client_id)
                .append_pair("redirect_uri", callback)
                .append_pair("scope", &cfg.scope)
                .append_pair("state", &state)
                .append_pair("nonce", &nonce)
                .append_pair("code_challenge", &pkce_challenge(&verifier))
                .append_pair("code_challenge_method", "S256");
            for (k, v) in &cfg.extra_params {
                q.append_pair(k, v);
            }
        }
        let login = PendingLogin {
            nonce,
            code_verifier: verifier,
            redirect_uri: callback.to_owned(),
            return_to: return_to.to_owned(),
        };
        registry.save_oidc_login(&state, &login).await?;
        Ok(Redirect { url: url.to_string(), state })
    }

    /// Finishes a login at the callback: consumes the state (once), trades
    /// the code for tokens, verifies the ID token and signs the user in,
    /// onboarding it first when `oidc_auto_onboard` is on.
    pub async fn finish(
        &self,
        registry: &Registry,
        settings: &Settings,
        state: &str,
        code: &str,
    ) -> Result<Login, OidcError> {
        let cfg = OidcSettings::of(settings)?;
        // What a client sends back is checked before it goes into a key.
        if !is_token(state) {
            return Err(OidcError::State);
        }
        let login = registry.take_oidc_login(state).await?.ok_or(OidcError::State)?;
        let provider = self.provider(&cfg).await?;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", login.redirect_uri.as_str()),
            ("code_verifier", login.code_verifier.as_str()),
        ];
        let tokens = self.token_request(&cfg, &provider, &form).await?;
        let raw =
            tokens.id_token.as_deref().ok_or_else(|| OidcError::Refused("no id_token in the answer".to_owned()))?;
        let claims = self.verify_id_token(&cfg, &provider, raw, Some(&login.nonce)).await?;
        let info = self.user_info(&cfg, &provider, &claims, &tokens.access_token).await?;
        let stored = tokens.stored(now_unix());
        let group_ids = onboard_groups(registry, &info.groups).await?;
        if let Some(user) = registry.oidc_user(&info.iss, &info.sub).await? {
            let user = self.record_login(registry, user.user_id, &group_ids, info.admin, &stored).await?;
            return Ok(Login::Done { user, return_to: login.return_to });
        }
        if cfg.auto_onboard {
            if info.username.is_empty() {
                return Err(OidcError::Claims(format!(
                    "unable to recover username for auto onboard, username claim: {}",
                    cfg.user_claim
                )));
            }
            let verified = Verified { info, group_ids, token: stored };
            let user = self.create_user(registry, &verified, None).await?;
            return Ok(Login::Done { user, return_to: login.return_to });
        }
        let id = random_token();
        let token = serde_json::to_vec(&stored).map_err(internal)?;
        let username = info.username.clone();
        let pending = PendingOnboarding {
            info,
            group_ids,
            token: self.sealer()?.seal(&pending_context(&id), &token).map_err(ServiceError::from)?,
            return_to: login.return_to.clone(),
        };
        registry.save_oidc_onboarding(&id, &pending).await?;
        Ok(Login::Onboard { id, username, return_to: login.return_to })
    }

    /// Onboards the identity of a pending onboarding as `username` (Harbor's
    /// onboard step). The pending item is consumed in the same transaction;
    /// a taken name (`Conflict`) leaves it for another try.
    pub async fn onboard(
        &self,
        registry: &Registry,
        settings: &Settings,
        id: &str,
        username: &str,
    ) -> Result<(User, String), OidcError> {
        OidcSettings::of(settings)?;
        if !is_token(id) {
            return Err(OidcError::State);
        }
        let pending = registry.oidc_onboarding(id).await?.ok_or(OidcError::State)?;
        let token: StoredToken = self
            .sealer()?
            .open(&pending_context(id), &pending.token)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(OidcError::State)?;
        let info = OidcIdentity { username: username.to_owned(), ..pending.info };
        let verified = Verified { info, group_ids: pending.group_ids, token };
        let user = self.create_user(registry, &verified, Some(id)).await?;
        Ok((user, pending.return_to))
    }

    /// Creates the user of an identity with a fresh CLI secret (consuming
    /// the pending onboarding `onboarding`, when it picked its name). When
    /// the identity was onboarded meanwhile (the same person logging in
    /// twice at once) that user is signed in instead.
    async fn create_user(
        &self,
        registry: &Registry,
        verified: &Verified,
        onboarding: Option<&str>,
    ) -> Result<User, OidcError> {
        let Verified { info, group_ids, token } = verified;
        let secret = passwords::generate(SECRET_LEN);
        let hash = passwords::hash(&secret)?;
        let token_json = serde_json::to_vec(token).map_err(internal)?;
        let sealer = self.sealer()?;
        let ext = ExternalUser {
            username: info.username.replace(' ', "_"),
            email: info.email.clone(),
            realname: String::new(),
            ldap_dn: None,
            group_ids: group_ids.clone(),
            admin_in_auth: info.admin,
        };
        let document = |id: i64| -> Result<serde_json::Value, ServiceError> {
            let now = now_unix();
            Ok(serde_json::json!({
                "id": id,
                "user_id": id,
                "subiss": format!("{}{}", info.sub, info.iss),
                "sub": info.sub,
                "iss": info.iss,
                "secret_sealed": sealer.seal(&secret_context(id), secret.as_bytes())?,
                "secret_hash": hash,
                "token": sealer.seal(&token_context(id), &token_json)?,
                "creation_time": now,
                "update_time": now,
            }))
        };
        let new =
            NewOidcUser { user: ext, comment: ONBOARDED_COMMENT, iss: &info.iss, sub: &info.sub, document, onboarding };
        match registry.create_oidc_user(new).await {
            Ok(user) => Ok(user),
            Err(ServiceError::PreconditionFailed(_)) => match registry.oidc_user(&info.iss, &info.sub).await? {
                Some(user) => Ok(self.record_login(registry, user.user_id, group_ids, info.admin, token).await?),
                None => Err(OidcError::State),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// Records what a login (or refresh) learnt: groups, admin role, tokens.
    pub(super) async fn record_login(
        &self,
        registry: &Registry,
        id: i64,
        group_ids: &[i64],
        admin: bool,
        token: &StoredToken,
    ) -> Result<User, ServiceError> {
        let sealed = self.sealer()?.seal(&token_context(id), &serde_json::to_vec(token).map_err(internal)?)?;
        registry
            .update_oidc_user(id, |f| {
                f.group_ids = group_ids.to_vec();
                f.admin_in_auth = admin;
                set_doc(&mut f.oidc, "token", sealed.clone())?;
                set_doc(&mut f.oidc, "update_time", now_unix())
            })
            .await
    }

    /// The URL that ends the user's session at the provider, when
    /// `oidc_logout` is on and the provider has an end-session endpoint.
    pub async fn logout_url(&self, settings: &Settings, user: &User, post_logout: &str) -> Option<String> {
        let cfg = OidcSettings::of(settings).ok().filter(|c| c.logout)?;
        let id_token = self.stored_token(user).ok()?.id_token?;
        let provider = self.provider(&cfg).await.ok()?;
        let mut url = url::Url::parse(provider.end_session_endpoint.as_deref()?).ok()?;
        url.query_pairs_mut()
            .append_pair("id_token_hint", &id_token)
            .append_pair("post_logout_redirect_uri", post_logout)
            .append_pair("client_id", &cfg.client_id);
        Some(url.to_string())
    }

    /// Whether `url` is an OIDC provider (its discovery document answers
    /// and names it as issuer).
    pub async fn ping(&self, url: &str, verify_cert: bool) -> Result<(), OidcError> {
        self.discover(url.trim().trim_end_matches('/'), verify_cert).await.map(|_| ())
    }
}

/// The ids of the OIDC groups of these names, onboarding new ones.
pub(super) async fn onboard_groups(registry: &Registry, names: &[String]) -> Result<Vec<i64>, ServiceError> {
    let mut ids = Vec::new();
    for name in names {
        if name.trim().is_empty() || name.chars().count() > 255 {
            continue;
        }
        let id = registry.onboard_group(OIDC_GROUP, name, name).await?.id;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;

    use serde_json::{Value, json};

    use super::*;
    use crate::auth::token::TokenKeys;
    use crate::service::settings::AuthMode;
    use crate::service::users::Source;

    /// The settings with these values changed.
    async fn settings(registry: &Registry, values: Value) -> Arc<Settings> {
        let Value::Object(changes) = values else { panic!("an object") };
        registry.update_settings(&changes, &[AuthMode::Db, AuthMode::Oidc]).await.unwrap()
    }

    fn verified(sub: &str, name: &str, token: &StoredToken) -> Verified {
        let info = OidcIdentity {
            iss: "https://idp.example".into(),
            sub: sub.into(),
            username: name.into(),
            email: "ann@example.org".into(),
            groups: vec![],
            admin: false,
        };
        Verified { info, group_ids: vec![], token: token.clone() }
    }

    #[tokio::test]
    async fn identities_onboard_once_and_cli_secrets_check_like_passwords() {
        let (_dir, registry) = crate::testkit::local_registry().await;
        let settings = settings(
            &registry,
            json!({"auth_mode": "oidc_auth", "oidc_endpoint": "https://idp.example", "oidc_client_id": "berth"}),
        )
        .await;
        let oidc = Oidc::new(&TokenKeys::from_seed(&[1; 32]));
        let forever = StoredToken { access_token: "at".into(), refresh_token: None, id_token: None, expiry: 0 };
        let ann = oidc.create_user(&registry, &verified("s1", "ann", &forever), None).await.unwrap();
        assert_eq!((ann.source, ann.comment.as_str()), (Source::Oidc, ONBOARDED_COMMENT));
        let found = registry.oidc_user("https://idp.example", "s1").await.unwrap().unwrap();
        assert_eq!(found.user_id, ann.user_id);
        assert!(registry.oidc_user("https://other.example", "s1").await.unwrap().is_none(), "per issuer");

        // The same identity again (two logins racing) signs the same user
        // in, whatever name the second asked for.
        let again = oidc.create_user(&registry, &verified("s1", "ann2", &forever), None).await;
        assert_eq!(again.unwrap().user_id, ann.user_id);
        assert!(registry.user_by_name("ann2").await.unwrap().is_none());
        // Another identity cannot take the name.
        let other = oidc.create_user(&registry, &verified("s2", "ann", &forever), None).await;
        assert!(matches!(other, Err(OidcError::Service(ServiceError::Conflict(_)))));

        let secret = oidc.reveal_secret(&ann).unwrap();
        let check = |name: &'static str, secret: String| {
            let (registry, settings, oidc) = (&registry, &settings, &oidc);
            async move { oidc.check_cli_secret(registry, settings, name, &secret).await.unwrap().map(|u| u.user_id) }
        };
        assert_eq!(check("ann", secret.clone()).await, Some(ann.user_id));
        assert_eq!(check("ann", "Wrong1Secret".into()).await, None);
        assert_eq!(check("nobody", secret.clone()).await, None);
        oidc.set_cli_secret(&registry, ann.user_id, "Rotated1Secret").await.unwrap();
        assert_eq!(check("ann", secret.clone()).await, None, "the old secret is gone");
        assert_eq!(check("ann", "Rotated1Secret".into()).await, Some(ann.user_id));
        assert!(matches!(oidc.set_cli_secret(&registry, ann.user_id, "weak").await, Err(ServiceError::Invalid(_))));
        registry.ensure_admin(Some("Harbor12345")).await.unwrap();
        let local = oidc.set_cli_secret(&registry, crate::service::users::ADMIN_ID, "Admin1Secret").await;
        assert!(matches!(local, Err(ServiceError::NotFound(_))), "only OIDC users have one");
        let stored = registry.user(ann.user_id).await.unwrap();
        assert!(!serde_json::to_string(&stored).unwrap().contains("Rotated1Secret"), "never stored in clear");
        assert_eq!(oidc.reveal_secret(&stored).as_deref(), Some("Rotated1Secret"));

        // An expired provider token without a refresh token refuses the
        // secret (as Harbor), until a login records a fresh one.
        let expired = StoredToken { expiry: 1, ..forever.clone() };
        oidc.record_login(&registry, ann.user_id, &[], false, &expired).await.unwrap();
        assert_eq!(check("ann", "Rotated1Secret".into()).await, None);
        oidc.record_login(&registry, ann.user_id, &[], false, &forever).await.unwrap();
        assert_eq!(check("ann", "Rotated1Secret".into()).await, Some(ann.user_id));

        // A deleted user's identity onboards afresh.
        registry.delete_user(ann.user_id, None).await.unwrap();
        assert!(registry.oidc_user("https://idp.example", "s1").await.unwrap().is_none());
        let back = oidc.create_user(&registry, &verified("s1", "ann", &forever), None).await.unwrap();
        assert_ne!(back.user_id, ann.user_id);
    }
}

//! Talking to the OIDC provider: discovery (cached a minute), its signing
//! keys (cached, refetched when a token names an unknown key), the token
//! endpoint, userinfo, and the claims that make Harbor's user info.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::Jwk;
use serde_json::{Map, Value};

use super::idtoken::{self, Expected, IdTokenError};
use super::{
    CachedProvider, DISCOVERY_TTL, HTTP_TIMEOUT, JWKS_MIN_REFETCH, JWKS_TTL, MAX_RESPONSE_BYTES, Oidc, OidcError,
    OidcSettings, Provider, TokenResponse,
};
use crate::service::oidc::OidcIdentity;

impl Oidc {
    /// Harbor's user info: the ID token's claims, merged with the userinfo
    /// endpoint's when it answers (its e-mail and groups win; the username
    /// is `oidc_user_claim` of the ID token, else the userinfo's, else the
    /// `name` claim).
    pub(super) async fn user_info(
        &self,
        cfg: &OidcSettings,
        provider: &Provider,
        local: &Map<String, Value>,
        access_token: &str,
    ) -> Result<OidcIdentity, OidcError> {
        let remote = match &provider.userinfo_endpoint {
            Some(url) if !access_token.is_empty() => match self.userinfo(cfg, url, access_token).await {
                Ok(m) => Some(m),
                Err(e) => {
                    tracing::warn!(error = %e, "oidc userinfo failed; using the id token's claims");
                    None
                }
            },
            _ => None,
        };
        let sub = local.get("sub").and_then(Value::as_str).unwrap_or_default().to_owned();
        if let Some(r) = &remote
            && r.get("sub").and_then(Value::as_str) != Some(sub.as_str())
        {
            return Err(OidcError::Claims("the userinfo subject does not match the id token's".to_owned()));
        }
        let claim = |m: &Map<String, Value>, k: &str| {
            (!k.is_empty()).then(|| m.get(k).and_then(Value::as_str)).flatten().map(str::to_owned)
        };
        let username = claim(local, &cfg.user_claim)
            .or_else(|| remote.as_ref().and_then(|r| claim(r, &cfg.user_claim).or_else(|| claim(r, "name"))))
            .or_else(|| claim(local, "name"))
            .unwrap_or_default()
            .replace(' ', "_");
        let email = remote.as_ref().map_or_else(|| claim(local, "email"), |r| claim(r, "email")).unwrap_or_default();
        let raw_groups = remote
            .as_ref()
            .and_then(|r| groups_claim(r, &cfg.groups_claim))
            .or_else(|| groups_claim(local, &cfg.groups_claim))
            .unwrap_or_default();
        Ok(OidcIdentity {
            iss: local.get("iss").and_then(Value::as_str).unwrap_or_default().to_owned(),
            sub,
            username,
            email,
            admin: !cfg.admin_group.is_empty() && raw_groups.contains(&cfg.admin_group),
            groups: raw_groups
                .into_iter()
                .filter(|g| cfg.group_filter.as_ref().is_none_or(|re| re.is_match(g)))
                .collect(),
        })
    }

    /// The user info of the userinfo endpoint alone (a refresh without a
    /// new ID token); `None` when there is none or it fails.
    pub(super) async fn remote_info(
        &self,
        cfg: &OidcSettings,
        provider: &Provider,
        access: &str,
        iss: &str,
    ) -> Option<OidcIdentity> {
        let url = provider.userinfo_endpoint.as_deref()?;
        let mut remote = match self.userinfo(cfg, url, access).await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "oidc userinfo failed after a refresh; groups are kept");
                return None;
            }
        };
        remote.insert("iss".to_owned(), Value::from(iss));
        self.user_info(cfg, &Provider { userinfo_endpoint: None, ..provider.clone() }, &remote, "").await.ok()
    }

    pub(super) async fn userinfo(
        &self,
        cfg: &OidcSettings,
        url: &str,
        access_token: &str,
    ) -> Result<Map<String, Value>, OidcError> {
        let client = self.client(cfg.verify_cert)?;
        let req = client.get(url).bearer_auth(access_token).header(http::header::ACCEPT, "application/json");
        match self.send(req).await? {
            (status, Value::Object(m)) if status.is_success() => Ok(m),
            (status, _) => Err(OidcError::Provider(format!("userinfo answered {status}"))),
        }
    }

    pub(super) fn client(&self, verify_cert: bool) -> Result<reqwest::Client, OidcError> {
        let mut clients = self.clients.lock().map_err(|_| OidcError::Provider("client lock poisoned".to_owned()))?;
        if let Some(c) = clients.get(&verify_cert) {
            return Ok(c.clone());
        }
        let client = reqwest::Client::builder()
            .timeout(HTTP_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::limited(5))
            .tls_danger_accept_invalid_certs(!verify_cert)
            .build()
            .map_err(|e| OidcError::Provider(format!("building the HTTP client: {e}")))?;
        clients.insert(verify_cert, client.clone());
        Ok(client)
    }

    /// Sends a request and reads its JSON answer (at most 1 MiB; a body
    /// that is not JSON reads as `null`).
    pub(super) async fn send(&self, req: reqwest::RequestBuilder) -> Result<(reqwest::StatusCode, Value), OidcError> {
        let mut resp = req.send().await.map_err(|e| OidcError::Provider(e.without_url().to_string()))?;
        let status = resp.status();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| OidcError::Provider(e.without_url().to_string()))? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(OidcError::Provider("the answer is too large".to_owned()));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
    }

    pub(super) async fn discover(&self, endpoint: &str, verify_cert: bool) -> Result<Provider, OidcError> {
        let url = format!("{endpoint}/.well-known/openid-configuration");
        let req = self.client(verify_cert)?.get(&url).header(http::header::ACCEPT, "application/json");
        let (status, body) = self.send(req).await?;
        if !status.is_success() {
            return Err(OidcError::Provider(format!("discovery answered {status}")));
        }
        let provider: Provider = serde_json::from_value(body)
            .map_err(|e| OidcError::Provider(format!("not an OpenID provider configuration: {e}")))?;
        if provider.issuer.trim_end_matches('/') != endpoint {
            return Err(OidcError::Provider(format!(
                "the provider names its issuer {}, not {endpoint}",
                provider.issuer
            )));
        }
        for u in [&provider.authorization_endpoint, &provider.token_endpoint, &provider.jwks_uri] {
            if !url::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
                return Err(OidcError::Provider(format!("{u:?} is not an http(s) URL")));
            }
        }
        Ok(provider)
    }

    /// The provider's configuration, cached for a minute per endpoint.
    pub(super) async fn provider(&self, cfg: &OidcSettings) -> Result<Arc<Provider>, OidcError> {
        if let Ok(cached) = self.provider.lock()
            && let Some(c) = cached.as_ref()
            && c.endpoint == cfg.endpoint
            && c.verify_cert == cfg.verify_cert
            && c.at.elapsed() < DISCOVERY_TTL
        {
            return Ok(c.provider.clone());
        }
        let provider = Arc::new(self.discover(&cfg.endpoint, cfg.verify_cert).await?);
        if let Ok(mut cached) = self.provider.lock() {
            *cached = Some(CachedProvider {
                endpoint: cfg.endpoint.clone(),
                verify_cert: cfg.verify_cert,
                provider: provider.clone(),
                at: Instant::now(),
            });
        }
        Ok(provider)
    }

    /// The provider's signing keys, cached; `refetch` asks again (at most
    /// every few seconds) when a token names a key the cache lacks.
    pub(super) async fn jwks(&self, cfg: &OidcSettings, uri: &str, refetch: bool) -> Result<Arc<Vec<Jwk>>, OidcError> {
        if let Ok(cache) = self.jwks.lock()
            && let Some((keys, at)) = cache.get(uri)
            && at.elapsed() < if refetch { JWKS_MIN_REFETCH } else { JWKS_TTL }
        {
            return Ok(keys.clone());
        }
        let req = self.client(cfg.verify_cert)?.get(uri).header(http::header::ACCEPT, "application/json");
        let (status, body) = self.send(req).await?;
        let list = body.get("keys").and_then(Value::as_array).filter(|_| status.is_success());
        let list = list.ok_or_else(|| OidcError::Provider(format!("the JWKS answered {status} without keys")))?;
        // A key berth cannot use (an encryption key, an unknown type) is
        // skipped rather than failing the whole set.
        let keys: Arc<Vec<Jwk>> =
            Arc::new(list.iter().filter_map(|k| serde_json::from_value(k.clone()).ok()).collect());
        if let Ok(mut cache) = self.jwks.lock() {
            cache.insert(uri.to_owned(), (keys.clone(), Instant::now()));
        }
        Ok(keys)
    }

    pub(super) async fn verify_id_token(
        &self,
        cfg: &OidcSettings,
        provider: &Provider,
        raw: &str,
        nonce: Option<&str>,
    ) -> Result<Map<String, Value>, OidcError> {
        let expected = Expected { issuer: &provider.issuer, client_id: &cfg.client_id, nonce };
        let keys = self.jwks(cfg, &provider.jwks_uri, false).await?;
        match idtoken::verify(raw, &keys, &expected) {
            // The provider may have rotated its keys since they were cached.
            Err(IdTokenError::NoKey | IdTokenError::Invalid(_)) => {
                let keys = self.jwks(cfg, &provider.jwks_uri, true).await?;
                Ok(idtoken::verify(raw, &keys, &expected)?)
            }
            other => Ok(other?),
        }
    }

    /// A token endpoint request, authenticated as the client
    /// (`client_secret_basic` unless the provider supports only
    /// `client_secret_post`).
    pub(super) async fn token_request(
        &self,
        cfg: &OidcSettings,
        provider: &Provider,
        form: &[(&str, &str)],
    ) -> Result<TokenResponse, OidcError> {
        let methods = &provider.token_endpoint_auth_methods_supported;
        let post = !methods.is_empty()
            && !methods.iter().any(|m| m == "client_secret_basic")
            && methods.iter().any(|m| m == "client_secret_post");
        let body = {
            let mut body = url::form_urlencoded::Serializer::new(String::new());
            body.extend_pairs(form.iter().copied()).append_pair("client_id", &cfg.client_id);
            if post {
                body.append_pair("client_secret", &cfg.client_secret);
            }
            body.finish()
        };
        let mut req = self
            .client(cfg.verify_cert)?
            .post(&provider.token_endpoint)
            .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(http::header::ACCEPT, "application/json")
            .body(body);
        if !post {
            // RFC 6749 2.3.1: both halves are form-encoded first.
            let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            req = req.basic_auth(enc(&cfg.client_id), Some(enc(&cfg.client_secret)));
        }
        let (status, body) = self.send(req).await?;
        if status.is_success() {
            return serde_json::from_value(body)
                .map_err(|e| OidcError::Provider(format!("the token endpoint's answer is not a token: {e}")));
        }
        let error = body.get("error").and_then(Value::as_str);
        match (status.is_client_error(), error) {
            (true, Some(error)) => {
                let description = body.get("error_description").and_then(Value::as_str).unwrap_or_default();
                Err(OidcError::Refused(format!("{error} {description}").trim().to_owned()))
            }
            _ => Err(OidcError::Provider(format!("the token endpoint answered {status}"))),
        }
    }
}

/// The groups of a claim: a list of strings, or one string (some
/// providers send a single group so); `None` when the claim is missing.
fn groups_claim(claims: &Map<String, Value>, key: &str) -> Option<Vec<String>> {
    match claims.get(key)? {
        Value::Array(list) => Some(list.iter().filter_map(Value::as_str).map(str::to_owned).collect()),
        Value::String(s) => Some(vec![s.clone()]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::auth::token::TokenKeys;
    use crate::service::settings::Settings;

    /// The settings with these values changed.
    async fn settings(values: Value) -> Arc<Settings> {
        let (_dir, registry) = crate::testkit::local_registry().await;
        let Value::Object(changes) = values else { panic!("an object") };
        let modes = [crate::service::settings::AuthMode::Db, crate::service::settings::AuthMode::Oidc];
        registry.update_settings(&changes, &modes).await.unwrap()
    }

    #[tokio::test]
    async fn claims_make_harbors_user_info() {
        let values = settings(json!({
            "auth_mode": "oidc_auth", "oidc_endpoint": "https://idp.example/", "oidc_client_id": "berth",
            "oidc_groups_claim": "groups", "oidc_admin_group": "admins", "oidc_group_filter": "^(dev|admins)$",
            "oidc_user_claim": "preferred_username",
        }))
        .await;
        let cfg = OidcSettings::of(&values).unwrap();
        assert_eq!(cfg.endpoint, "https://idp.example");
        let provider = Provider {
            issuer: "https://idp.example".into(),
            authorization_endpoint: String::new(),
            token_endpoint: String::new(),
            jwks_uri: String::new(),
            userinfo_endpoint: None,
            end_session_endpoint: None,
            token_endpoint_auth_methods_supported: vec![],
        };
        let oidc = Oidc::new(&TokenKeys::from_seed(&[1; 32]));
        let info = async |claims: Value| {
            let Value::Object(m) = claims else { panic!("an object") };
            oidc.user_info(&cfg, &provider, &m, "").await.unwrap()
        };
        let got = info(json!({
            "iss": "https://idp.example", "sub": "s1", "preferred_username": "ann lee", "name": "Ann",
            "email": "ann@example.org", "groups": ["dev", "ops", "admins"],
        }))
        .await;
        assert_eq!(got.username, "ann_lee", "the user claim, blanks made underscores");
        assert_eq!(got.groups, ["dev", "admins"], "filtered");
        assert!(got.admin);
        let got = info(json!({ "iss": "i", "sub": "s2", "name": "Bob", "groups": "ops" })).await;
        assert_eq!((got.username.as_str(), got.admin), ("Bob", false), "falls back to name");
        assert!(got.groups.is_empty(), "a single group string, filtered out");
        let got = info(json!({ "iss": "i", "sub": "s3" })).await;
        assert_eq!(got.username, "");

        assert!(matches!(OidcSettings::of(&Settings::defaults(1800)), Err(OidcError::NotOidc(_))));
        let unset = settings(json!({ "auth_mode": "oidc_auth" })).await;
        assert!(matches!(OidcSettings::of(&unset), Err(OidcError::NotConfigured("oidc_endpoint"))));
        let bad_filter = settings(json!({
            "auth_mode": "oidc_auth", "oidc_endpoint": "https://x", "oidc_client_id": "c", "oidc_group_filter": "(",
        }))
        .await;
        assert!(OidcSettings::of(&bad_filter).unwrap().group_filter.is_none(), "as Harbor: no filtering");
    }
}

//! Portal sessions and their CSRF tokens.
//!
//! A session is a signed, expiring token (a JWT, HS256 under a key derived
//! from the token signing key) naming the user id, carried in the `sid`
//! cookie. Any replica or Lambda verifies it without shared memory; the
//! only table access is the revocation check: logging out records the
//! session's id until the latest time any copy of it could still be valid,
//! so a copied cookie dies with the logout.
//!
//! CSRF: a request authenticated by the cookie and using an unsafe method
//! must send the session's CSRF token in `X-Harbor-CSRF-Token` (Harbor's
//! header). The token is an HMAC of the session id under its own derived
//! key: nothing to store, and a page of another origin can neither read it
//! nor set the header without a CORS preflight berth never grants. The
//! token is also set in the `__csrf` cookie and sent back in the header of
//! every session response, where Harbor's portal picks it up.
//!
//! This module owns the token formats; the revocations are the registry's
//! ([`crate::service::sessions`]), the HTTP layer (cookies, the middleware)
//! is in `http::portal`.

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::token::TokenKeys;

/// Harbor's session cookie.
pub const COOKIE: &str = "sid";
/// The cookie holding the CSRF token (Harbor's name).
pub const CSRF_COOKIE: &str = "__csrf";
/// The request and response header of the CSRF token (Harbor's name).
pub const CSRF_HEADER: &str = "x-harbor-csrf-token";
/// The audience of session tokens, so no other token of berth's passes.
const AUDIENCE: &str = "berth-portal";

/// A verified session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user_id: i64,
    /// Stays the same across renewals: it is what a logout revokes.
    pub id: String,
    /// Unix seconds.
    pub issued_at: i64,
    pub expires_at: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    aud: String,
    iat: i64,
    exp: i64,
    jti: String,
}

/// Issues and checks session and CSRF tokens.
pub struct Sessions {
    /// `None` only if the key could not be made: then no session starts.
    keys: Option<(EncodingKey, DecodingKey)>,
    csrf: hmac::Key,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions").finish_non_exhaustive()
    }
}

impl Sessions {
    pub fn new(keys: &TokenKeys) -> Self {
        let secret = keys.derive("session");
        let keys_made = EncodingKey::from_secret(&secret).and_then(|e| Ok((e, DecodingKey::from_secret(&secret)?)));
        let session_keys = keys_made.map_err(|e| tracing::error!(error = %e, "no session key: sessions are off")).ok();
        Self { keys: session_keys, csrf: hmac::Key::new(hmac::HMAC_SHA256, &keys.derive("csrf")) }
    }

    /// A new session of `user_id` valid for `ttl_secs`, and its token.
    pub fn start(&self, user_id: i64, ttl_secs: i64, now: i64) -> Option<(Session, String)> {
        let id = B64.encode(rand::random::<[u8; 18]>());
        let session = Session { user_id, id, issued_at: now, expires_at: now.saturating_add(ttl_secs) };
        let token = self.encode(&session)?;
        Some((session, token))
    }

    /// The same session, valid for `ttl_secs` from `now`.
    pub fn renew(&self, session: &Session, ttl_secs: i64, now: i64) -> Option<(Session, String)> {
        let renewed = Session { expires_at: now.saturating_add(ttl_secs), ..session.clone() };
        let token = self.encode(&renewed)?;
        Some((renewed, token))
    }

    fn encode(&self, s: &Session) -> Option<String> {
        let claims = Claims {
            sub: s.user_id.to_string(),
            aud: AUDIENCE.to_owned(),
            iat: s.issued_at,
            exp: s.expires_at,
            jti: s.id.clone(),
        };
        let (encoding, _) = self.keys.as_ref()?;
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, encoding).ok()
    }

    /// The session of a cookie value: signed by this deployment, for the
    /// portal, not expired at `now`.
    pub fn verify(&self, token: &str, now: i64) -> Option<Session> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "aud", "sub"]);
        // The expiry is checked below against `now`, with no leeway.
        validation.validate_exp = false;
        let (_, decoding) = self.keys.as_ref()?;
        let claims = jsonwebtoken::decode::<Claims>(token, decoding, &validation).ok()?.claims;
        let user_id = claims.sub.parse::<i64>().ok().filter(|id| *id > 0)?;
        let id_ok = !claims.jti.is_empty() && claims.jti.len() <= 64;
        (claims.exp > now && id_ok).then_some(Session {
            user_id,
            id: claims.jti,
            issued_at: claims.iat,
            expires_at: claims.exp,
        })
    }

    /// The CSRF token of a session.
    pub fn csrf_token(&self, session: &Session) -> String {
        B64.encode(hmac::sign(&self.csrf, session.id.as_bytes()))
    }

    /// Whether `sent` is the session's CSRF token (in constant time).
    pub fn csrf_matches(&self, session: &Session, sent: &str) -> bool {
        B64.decode(sent.trim()).is_ok_and(|tag| hmac::verify(&self.csrf, session.id.as_bytes(), &tag).is_ok())
    }
}

/// Whether a session should be renewed: less than half of its lifetime
/// (`ttl_secs`) is left.
pub fn renewal_due(session: &Session, ttl_secs: i64, now: i64) -> bool {
    session.expires_at - now < ttl_secs / 2
}

/// How long a logout must be remembered: until the latest moment any copy
/// of the session could still be valid, its expiry or a renewal made just
/// now (`ttl_secs` from `now`), with a minute of slack for clocks.
pub fn revoked_until(session: &Session, ttl_secs: i64, now: i64) -> i64 {
    session.expires_at.max(now.saturating_add(ttl_secs)) + 60
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sessions(seed: u8) -> Sessions {
        Sessions::new(&TokenKeys::from_seed(&[seed; 32]))
    }

    #[test]
    fn sessions_verify_until_they_expire() {
        let s = sessions(1);
        let (session, token) = s.start(7, 3600, 1_000).unwrap();
        assert_eq!(s.verify(&token, 1_001), Some(session.clone()));
        assert_eq!(sessions(1).verify(&token, 1_001), Some(session.clone()), "any replica");
        assert_eq!(s.verify(&token, 4_600), None, "expired");
        assert_eq!(sessions(2).verify(&token, 1_001), None, "another deployment's key");
        let mut tampered = token.clone();
        tampered.replace_range(tampered.len() - 4.., "AAAA");
        assert_eq!(s.verify(&tampered, 1_001), None);
        assert_eq!(s.verify("garbage", 1_001), None);
        // A registry token of the same deployment is not a session.
        let keys = TokenKeys::from_seed(&[1; 32]);
        let registry = crate::auth::token::issue(&keys, "harbor-registry", "7", vec![], 60, 1_000);
        assert_eq!(s.verify(&registry, 1_001), None);

        let (renewed, token2) = s.renew(&session, 3600, 3_000).unwrap();
        assert_eq!((renewed.id.as_str(), renewed.expires_at), (session.id.as_str(), 6_600));
        assert_eq!(s.verify(&token2, 5_000), Some(renewed));
        assert!(!renewal_due(&session, 3600, 1_100));
        assert!(renewal_due(&session, 3600, 3_000));
    }

    #[test]
    fn csrf_tokens_belong_to_their_session() {
        let s = sessions(1);
        let (a, _) = s.start(7, 3600, 1_000).unwrap();
        let (b, _) = s.start(7, 3600, 1_000).unwrap();
        let token = s.csrf_token(&a);
        assert!(s.csrf_matches(&a, &token));
        assert!(!s.csrf_matches(&b, &token), "another session of the same user");
        assert!(!sessions(2).csrf_matches(&a, &token));
        assert!(!s.csrf_matches(&a, ""));
        assert!(!s.csrf_matches(&a, "not base64!"));
    }
}

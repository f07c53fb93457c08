//! Docker registry bearer tokens: short-lived JWTs whose `access` claim
//! lists exactly the actions granted per repository, signed with an Ed25519
//! key every replica and Lambda shares (from configuration, or made once and
//! kept in the table). The same secret also roots the keys other parts of
//! berth derive for their own use ([`TokenKeys::derive`]): portal sessions,
//! CSRF tokens and sealed secrets.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// Who signs the tokens (the `iss` claim).
pub const ISSUER: &str = "berth-token-issuer";

/// PKCS#8 v1 DER prefix of an Ed25519 private key (RFC 8410); the 32-byte
/// seed follows it.
const PKCS8_ED25519_PREFIX: [u8; 16] =
    [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];

/// The signing key and the matching verification key.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// A short id of the public key (`kid`), so a rotation can tell keys apart.
    kid: String,
    /// HMAC key over the private seed, from which purpose keys are derived.
    derivation: aws_lc_rs::hmac::Key,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys").field("kid", &self.kid).finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("token key: {0}")]
pub struct KeyError(String);

impl TokenKeys {
    /// Keys from a 32-byte Ed25519 seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let public = ed25519_dalek::SigningKey::from_bytes(seed).verifying_key().to_bytes();
        let der = [PKCS8_ED25519_PREFIX.as_slice(), seed.as_slice()].concat();
        let kid = hex::encode(&sha2::Sha256::digest_of(&public)[..8]);
        Self {
            encoding: EncodingKey::from_ed_der(&der),
            decoding: DecodingKey::from_ed_components(&URL_SAFE_NO_PAD.encode(public))
                .unwrap_or_else(|_| DecodingKey::from_ed_der(&public)),
            kid,
            derivation: aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, seed),
        }
    }

    /// A 32-byte key for one `purpose` (`"session"`, `"seal"`…), derived
    /// from the signing key with HMAC-SHA256: every replica derives the same
    /// key, knowing one purpose key tells nothing of the signing key or of
    /// another purpose's key, and rotating the signing key rotates them all.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let tag = aws_lc_rs::hmac::sign(&self.derivation, format!("berth key derivation: {purpose}").as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(&tag.as_ref()[..32]);
        out
    }

    /// Keys from an Ed25519 private key in PKCS#8 PEM (`openssl genpkey
    /// -algorithm ed25519`).
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).map(str::trim).collect();
        let der = B64.decode(body).map_err(|_| KeyError("not a PEM private key".to_owned()))?;
        match der.strip_prefix(PKCS8_ED25519_PREFIX.as_slice()) {
            Some(seed) if seed.len() == 32 => {
                let mut s = [0u8; 32];
                s.copy_from_slice(seed);
                Ok(Self::from_seed(&s))
            }
            _ => Err(KeyError("expected an Ed25519 private key in PKCS#8 PEM".to_owned())),
        }
    }

    /// A fresh random seed, base64-encoded (how the table keeps it).
    pub fn generate_seed() -> String {
        B64.encode(rand::random::<[u8; 32]>())
    }

    pub fn from_stored_seed(b64: &str) -> Result<Self, KeyError> {
        let bytes = B64.decode(b64).map_err(|_| KeyError("stored seed is not base64".to_owned()))?;
        let seed: [u8; 32] = bytes.try_into().map_err(|_| KeyError("stored seed is not 32 bytes".to_owned()))?;
        Ok(Self::from_seed(&seed))
    }
}

trait DigestOf {
    fn digest_of(bytes: &[u8]) -> Vec<u8>;
}

impl DigestOf for sha2::Sha256 {
    fn digest_of(bytes: &[u8]) -> Vec<u8> {
        use sha2::Digest as _;
        sha2::Sha256::digest(bytes).to_vec()
    }
}

/// One entry of the `access` claim (and of a requested scope).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    pub jti: String,
    pub access: Vec<Access>,
}

impl Claims {
    /// Whether the token grants `action` on the resource `kind:name`.
    pub fn allows(&self, kind: &str, name: &str, action: &str) -> bool {
        self.access
            .iter()
            .any(|a| a.kind == kind && a.name == name && a.actions.iter().any(|x| x == action || x == "*"))
    }
}

/// Parses a requested scope, `repository:library/x:pull,push` (the name may
/// itself hold a `:` only in a registry name with a port, which berth never
/// issues, so the first and last `:` split it).
pub fn parse_scope(scope: &str) -> Option<Access> {
    let (kind, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    if kind.is_empty() || name.is_empty() {
        return None;
    }
    let actions = actions.split(',').filter(|a| !a.is_empty()).map(str::to_owned).collect();
    Some(Access { kind: kind.to_owned(), name: name.to_owned(), actions })
}

/// Signs a token for `subject` (empty for anonymous) granting `access`.
pub fn issue(keys: &TokenKeys, service: &str, subject: &str, access: Vec<Access>, ttl_secs: i64, now: i64) -> String {
    let claims = Claims {
        iss: ISSUER.to_owned(),
        sub: subject.to_owned(),
        aud: service.to_owned(),
        exp: now + ttl_secs,
        nbf: now - 5,
        iat: now,
        jti: uuid::Uuid::new_v4().simple().to_string(),
        access,
    };
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(keys.kid.clone());
    // Signing with a well-formed key cannot fail; an empty token is refused
    // by every verifier if it somehow did.
    jsonwebtoken::encode(&header, &claims, &keys.encoding).unwrap_or_default()
}

/// Verifies signature, expiry, not-before, issuer and audience.
pub fn verify(keys: &TokenKeys, service: &str, token: &str) -> Result<Claims, String> {
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&[service]);
    validation.set_issuer(&[ISSUER]);
    validation.leeway = 5;
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
    jsonwebtoken::decode::<Claims>(token, &keys.decoding, &validation).map(|d| d.claims).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::from_seed(&[7u8; 32])
    }

    #[test]
    fn issued_tokens_verify_and_carry_their_access() {
        let now = crate::meta::now_unix();
        let access = vec![parse_scope("repository:library/a:pull,push").unwrap()];
        let token = issue(&keys(), "harbor-registry", "admin", access, 1800, now);
        let claims = verify(&keys(), "harbor-registry", &token).unwrap();
        assert!(claims.allows("repository", "library/a", "push"));
        assert!(!claims.allows("repository", "library/a", "delete"));
        assert!(!claims.allows("repository", "library/b", "pull"));
        assert_eq!(claims.sub, "admin");
    }

    #[test]
    fn forged_expired_and_foreign_tokens_are_refused() {
        let now = crate::meta::now_unix();
        let token = issue(&keys(), "harbor-registry", "admin", vec![], 1800, now);
        let other = TokenKeys::from_seed(&[8u8; 32]);
        assert!(verify(&other, "harbor-registry", &token).is_err(), "another key's signature");
        assert!(verify(&keys(), "other-service", &token).is_err(), "another audience");
        let expired = issue(&keys(), "harbor-registry", "admin", vec![], 60, now - 3600);
        assert!(verify(&keys(), "harbor-registry", &expired).is_err(), "expired");
        let mut tampered = token.clone();
        tampered.replace_range(tampered.len() - 4.., "AAAA");
        assert!(verify(&keys(), "harbor-registry", &tampered).is_err());
        assert!(verify(&keys(), "harbor-registry", "not.a.token").is_err());
    }

    #[test]
    fn keys_from_pem() {
        // `openssl genpkey -algorithm ed25519` of the seed 0x07 * 32.
        let der = [PKCS8_ED25519_PREFIX.as_slice(), &[7u8; 32]].concat();
        let pem = format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", B64.encode(der));
        let from_pem = TokenKeys::from_pem(&pem).unwrap();
        let token = issue(&from_pem, "s", "u", vec![], 60, crate::meta::now_unix());
        assert!(verify(&keys(), "s", &token).is_ok());
        assert!(TokenKeys::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----").is_err());
    }

    #[test]
    fn derived_keys_differ_per_purpose_and_seed() {
        let a = keys().derive("session");
        assert_eq!(a, keys().derive("session"), "stable across processes");
        assert_ne!(a, keys().derive("seal"));
        assert_ne!(a, TokenKeys::from_seed(&[8u8; 32]).derive("session"));
        assert_ne!(a, [7u8; 32]);
    }

    #[test]
    fn scopes() {
        assert_eq!(
            parse_scope("repository:a/b/c:pull"),
            Some(Access { kind: "repository".into(), name: "a/b/c".into(), actions: vec!["pull".into()] })
        );
        assert_eq!(parse_scope("registry:catalog:*").unwrap().actions, ["*"]);
        assert_eq!(parse_scope("nonsense"), None);
    }
}

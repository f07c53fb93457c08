//! ID token verification: signature against the provider's JWKS, then
//! issuer, audience, expiry and nonce. Pure: the keys are fetched by the
//! caller.
//!
//! Only asymmetric algorithms are accepted (RSA, RSA-PSS, ECDSA, EdDSA): a
//! token signed with `none` or an HMAC (keyed with the client secret, which
//! berth would have to trust the provider for) is refused. A token whose
//! header names a `kid` is checked against that key only; a token without
//! one (some providers, and the test provider, send none) against every
//! signing key of the set, which for the usual single-key set is that key.

use jsonwebtoken::jwk::{Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

/// How far clocks may disagree, in seconds.
const LEEWAY_SECS: u64 = 60;

const ACCEPTED: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    #[error("the ID token is not a JWT")]
    Malformed,
    #[error("the ID token is signed with {0}, which berth does not accept")]
    Algorithm(String),
    /// No key of the set matches the token: the set may have rotated.
    #[error("no key of the provider's JWKS matches the ID token")]
    NoKey,
    #[error("the ID token is invalid: {0}")]
    Invalid(String),
    #[error("the ID token's nonce does not match the login")]
    Nonce,
}

/// What a token must say.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    /// The nonce of the login, or `None` for a token from a refresh.
    pub nonce: Option<&'a str>,
}

/// The claims of a valid ID token.
pub fn verify(raw: &str, keys: &[Jwk], expected: &Expected<'_>) -> Result<Map<String, Value>, IdTokenError> {
    let header = jsonwebtoken::decode_header(raw).map_err(|_| IdTokenError::Malformed)?;
    if !ACCEPTED.contains(&header.alg) {
        return Err(IdTokenError::Algorithm(format!("{:?}", header.alg)));
    }
    let candidates: Vec<&Jwk> = keys
        .iter()
        .filter(|k| k.common.public_key_use != Some(PublicKeyUse::Encryption))
        .filter(|k| header.kid.is_none() || k.common.key_id == header.kid)
        .filter(|k| k.common.key_algorithm.is_none_or(|a| a == KeyAlgorithm::from(header.alg)))
        .collect();
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[expected.issuer]);
    validation.set_audience(&[expected.client_id]);
    validation.leeway = LEEWAY_SECS;
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    let mut last = IdTokenError::NoKey;
    let mut claims = None;
    for key in candidates {
        let Ok(decoding) = DecodingKey::from_jwk(key) else { continue };
        match jsonwebtoken::decode::<Map<String, Value>>(raw, &decoding, &validation) {
            Ok(data) => {
                claims = Some(data.claims);
                break;
            }
            Err(e) => last = IdTokenError::Invalid(e.to_string()),
        }
    }
    let claims = claims.ok_or(last)?;
    // With several audiences the token must say it was issued to berth.
    if claims.get("aud").and_then(Value::as_array).is_some_and(|a| a.len() > 1)
        && claims.get("azp").and_then(Value::as_str) != Some(expected.client_id)
    {
        return Err(IdTokenError::Invalid("azp is not this client".to_owned()));
    }
    if let Some(nonce) = expected.nonce
        && claims.get("nonce").and_then(Value::as_str) != Some(nonce)
    {
        return Err(IdTokenError::Nonce);
    }
    Ok(claims)
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::rsa::KeySize;
    use aws_lc_rs::signature::{self, KeyPair as _};
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use serde_json::json;

    use super::*;

    /// A signing key made for the test, with its public JWK.
    pub(crate) enum TestKey {
        Rsa(Box<aws_lc_rs::rsa::KeyPair>),
        Ec(Box<signature::EcdsaKeyPair>),
    }

    impl TestKey {
        pub(crate) fn rsa() -> Self {
            Self::Rsa(Box::new(aws_lc_rs::rsa::KeyPair::generate(KeySize::Rsa2048).unwrap()))
        }

        pub(crate) fn ec() -> Self {
            Self::Ec(Box::new(signature::EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap()))
        }

        pub(crate) fn jwk(&self, kid: Option<&str>) -> Jwk {
            let mut v = match self {
                Self::Rsa(k) => {
                    let p = k.public_key();
                    json!({
                        "kty": "RSA", "use": "sig",
                        "n": B64.encode(p.modulus().big_endian_without_leading_zero()),
                        "e": B64.encode(p.exponent().big_endian_without_leading_zero()),
                    })
                }
                Self::Ec(k) => {
                    let point = k.public_key().as_ref();
                    json!({
                        "kty": "EC", "crv": "P-256", "use": "sig",
                        "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65]),
                    })
                }
            };
            if let Some(kid) = kid {
                v["kid"] = json!(kid);
            }
            serde_json::from_value(v).unwrap()
        }

        /// A JWT of `claims` with this key, `alg` in the header as given.
        pub(crate) fn sign(&self, alg: &str, kid: Option<&str>, claims: &Value) -> String {
            let mut header = json!({ "alg": alg, "typ": "JWT" });
            if let Some(kid) = kid {
                header["kid"] = json!(kid);
            }
            let input = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
            let sig = match self {
                Self::Rsa(k) => {
                    let mut sig = vec![0; k.public_modulus_len()];
                    k.sign(&signature::RSA_PKCS1_SHA256, &SystemRandom::new(), input.as_bytes(), &mut sig).unwrap();
                    sig
                }
                Self::Ec(k) => k.sign(&SystemRandom::new(), input.as_bytes()).unwrap().as_ref().to_vec(),
            };
            format!("{input}.{}", B64.encode(sig))
        }
    }

    const ISS: &str = "https://idp.example";
    const EXPECTED: Expected<'static> = Expected { issuer: ISS, client_id: "berth", nonce: Some("n-1") };

    fn claims(extra: Value) -> Value {
        let now = crate::meta::now_unix();
        let mut c = json!({ "iss": ISS, "aud": "berth", "sub": "alice", "iat": now, "exp": now + 300, "nonce": "n-1" });
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    }

    #[test]
    fn valid_tokens_pass_with_or_without_kid() {
        let rsa = TestKey::rsa();
        let ec = TestKey::ec();
        let got = verify(&rsa.sign("RS256", None, &claims(json!({}))), &[rsa.jwk(None)], &EXPECTED).unwrap();
        assert_eq!(got["sub"], "alice");
        // A kid picks its key out of several.
        let set = [rsa.jwk(Some("r1")), ec.jwk(Some("e1"))];
        assert!(verify(&ec.sign("ES256", Some("e1"), &claims(json!({}))), &set, &EXPECTED).is_ok());
        assert!(verify(&rsa.sign("RS256", Some("r1"), &claims(json!({}))), &set, &EXPECTED).is_ok());
        // No kid: the set's keys are tried.
        assert!(verify(&ec.sign("ES256", None, &claims(json!({}))), &set, &EXPECTED).is_ok());
        // An audience list naming berth, with azp.
        let multi = claims(json!({ "aud": ["other", "berth"], "azp": "berth" }));
        assert!(verify(&rsa.sign("RS256", None, &multi), &[rsa.jwk(None)], &EXPECTED).is_ok());
        // A refresh's token has no nonce to check.
        let refreshed = claims(json!({ "nonce": null }));
        let expected = Expected { nonce: None, ..EXPECTED };
        assert!(verify(&rsa.sign("RS256", None, &refreshed), &[rsa.jwk(None)], &expected).is_ok());
    }

    #[test]
    fn bad_tokens_are_refused() {
        let rsa = TestKey::rsa();
        let other = TestKey::rsa();
        let keys = [rsa.jwk(None)];
        let now = crate::meta::now_unix();
        let check = |token: &str| verify(token, &keys, &EXPECTED);

        // Tampered: claims changed after signing.
        let good = rsa.sign("RS256", None, &claims(json!({})));
        let mut parts: Vec<&str> = good.split('.').collect();
        let forged = B64.encode(claims(json!({ "sub": "admin" })).to_string());
        parts[1] = &forged;
        assert!(matches!(check(&parts.join(".")), Err(IdTokenError::Invalid(_))), "tampered");
        assert!(matches!(check(&other.sign("RS256", None, &claims(json!({})))), Err(IdTokenError::Invalid(_))));
        let expired = claims(json!({ "iat": now - 7200, "exp": now - 3600 }));
        assert!(
            matches!(check(&rsa.sign("RS256", None, &expired)), Err(IdTokenError::Invalid(e)) if e.contains("xpired"))
        );
        let aud = claims(json!({ "aud": "someone-else" }));
        assert!(matches!(check(&rsa.sign("RS256", None, &aud)), Err(IdTokenError::Invalid(_))), "wrong audience");
        let azp = claims(json!({ "aud": ["other", "berth"], "azp": "other" }));
        assert!(check(&rsa.sign("RS256", None, &azp)).is_err(), "issued to another party");
        let iss = claims(json!({ "iss": "https://evil.example" }));
        assert!(matches!(check(&rsa.sign("RS256", None, &iss)), Err(IdTokenError::Invalid(_))), "wrong issuer");
        let nonce = claims(json!({ "nonce": "n-2" }));
        assert_eq!(check(&rsa.sign("RS256", None, &nonce)), Err(IdTokenError::Nonce), "wrong nonce");
        let no_nonce = claims(json!({ "nonce": null }));
        assert_eq!(check(&rsa.sign("RS256", None, &no_nonce)), Err(IdTokenError::Nonce), "missing nonce");
        let no_sub = claims(json!({})).as_object().unwrap().clone().into_iter().filter(|(k, _)| k != "sub").collect();
        assert!(check(&rsa.sign("RS256", None, &Value::Object(no_sub))).is_err(), "no subject");
        // A kid the set does not have.
        assert_eq!(check(&rsa.sign("RS256", Some("gone"), &claims(json!({})))), Err(IdTokenError::NoKey));
        // Algorithms berth never accepts, whatever the signature.
        let body = good.split_once('.').unwrap().1;
        for alg in ["none", "HS256"] {
            let header = B64.encode(json!({ "alg": alg }).to_string());
            assert!(matches!(
                check(&format!("{header}.{body}")),
                Err(IdTokenError::Algorithm(_) | IdTokenError::Malformed)
            ));
        }
        assert_eq!(check("not-a-jwt"), Err(IdTokenError::Malformed));
    }
}

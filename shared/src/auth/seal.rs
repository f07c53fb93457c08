//! Sealed secrets: values berth must keep but also give back (an OIDC
//! user's CLI secret, shown to its owner as Harbor does; the provider's
//! tokens, needed again for refreshes and logout), encrypted with AES-256-GCM
//! under a key derived from the token signing key, so every replica can open
//! them and a copy of the table alone cannot.
//!
//! Each sealed value is bound to a context (what it is and whose it is,
//! e.g. `cli-secret:7`) as associated data: a value copied into another
//! user's record does not open there. Secrets that only need checking are
//! hashed instead ([`crate::service::passwords`]); this module is for the
//! few that must be read back.

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

use super::token::TokenKeys;

/// The version prefix of the sealed format, `v1.<base64url(nonce ‖ ciphertext ‖ tag)>`.
const PREFIX: &str = "v1.";

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// Not sealed by this deployment's key, altered, or sealed for another
    /// context.
    #[error("the sealed value cannot be opened (another key or context, or altered)")]
    Unreadable,
    #[error("sealing failed")]
    Failed,
}

/// Seals and opens values with the deployment's seal key.
pub struct Sealer {
    key: RandomizedNonceKey,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer").finish_non_exhaustive()
    }
}

impl Sealer {
    pub fn new(keys: &TokenKeys) -> Result<Self, SealError> {
        let key = RandomizedNonceKey::new(&AES_256_GCM, &keys.derive("seal")).map_err(|_| SealError::Failed)?;
        Ok(Self { key })
    }

    /// Encrypts `plain` for `context` (a fresh random nonce each time).
    pub fn seal(&self, context: &str, plain: &[u8]) -> Result<String, SealError> {
        let mut buf = plain.to_vec();
        let nonce = self
            .key
            .seal_in_place_append_tag(Aad::from(context.as_bytes()), &mut buf)
            .map_err(|_| SealError::Failed)?;
        let mut out = nonce.as_ref().to_vec();
        out.extend_from_slice(&buf);
        Ok(format!("{PREFIX}{}", B64.encode(out)))
    }

    /// Decrypts a value sealed for `context`.
    pub fn open(&self, context: &str, sealed: &str) -> Result<Vec<u8>, SealError> {
        let raw = sealed.strip_prefix(PREFIX).ok_or(SealError::Unreadable)?;
        let mut bytes = B64.decode(raw).map_err(|_| SealError::Unreadable)?;
        if bytes.len() < NONCE_LEN {
            return Err(SealError::Unreadable);
        }
        let mut body = bytes.split_off(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(&bytes).map_err(|_| SealError::Unreadable)?;
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut body)
            .map_err(|_| SealError::Unreadable)?;
        Ok(plain.to_vec())
    }

    pub fn open_str(&self, context: &str, sealed: &str) -> Result<String, SealError> {
        String::from_utf8(self.open(context, sealed)?).map_err(|_| SealError::Unreadable)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sealer(seed: u8) -> Sealer {
        Sealer::new(&TokenKeys::from_seed(&[seed; 32])).unwrap()
    }

    #[test]
    fn sealed_values_open_only_with_their_key_and_context() {
        let s = sealer(1);
        let sealed = s.seal("cli-secret:7", b"Secret123").unwrap();
        assert!(sealed.starts_with("v1.") && !sealed.contains("Secret123"));
        assert_ne!(sealed, s.seal("cli-secret:7", b"Secret123").unwrap(), "a fresh nonce each time");
        assert_eq!(s.open_str("cli-secret:7", &sealed).unwrap(), "Secret123");
        assert_eq!(sealer(1).open("cli-secret:7", &sealed).unwrap(), b"Secret123", "every replica opens it");
        assert!(matches!(s.open("cli-secret:8", &sealed), Err(SealError::Unreadable)), "another user's");
        assert!(matches!(sealer(2).open("cli-secret:7", &sealed), Err(SealError::Unreadable)), "another key");
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 3;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert!(s.open("cli-secret:7", std::str::from_utf8(&tampered).unwrap()).is_err());
        for bad in ["", "v1.", "v1.AAAA", "v2.abc", "plain"] {
            assert!(s.open("cli-secret:7", bad).is_err(), "{bad:?}");
        }
    }
}

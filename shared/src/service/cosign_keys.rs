//! Cosign keys of a project (F10, beyond Harbor): with content trust on
//! (`enable_content_trust_cosign`), a project that holds public keys wants
//! more than a signature's presence — a pull needs a cosign signature that
//! verifies, with one of the keys, over a simple-signing payload naming the
//! pulled digest (or the digest of an index holding it).
//!
//! Keys are ECDSA P-256 public keys as PEM (`-----BEGIN PUBLIC KEY-----`,
//! what `cosign generate-key-pair` writes), kept in the project's
//! partition. A signature is a cosign signature accessory
//! ([`super::references`]): its layers of type
//! `application/vnd.dev.cosign.simplesigning.v1+json` are the payloads, each
//! with its base64 DER signature in the `dev.cosignproject.cosign/signature`
//! annotation.

use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
use base64::Engine as _;
use futures::TryStreamExt as _;
use serde::{Deserialize, Serialize};

use super::record::{from_item, to_item};
use super::{Registry, ServiceError, ServiceResult};
use crate::meta::{Condition, keys};
use crate::oci::{Digest, Manifest, Reference, RepoName};

const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// Largest payload read (a simple-signing payload is a few hundred bytes).
const MAX_PAYLOAD: u64 = 64 * 1024;
/// Keys a project may hold.
const MAX_KEYS: usize = 20;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CosignKeys {
    /// PEM, as given.
    pub keys: Vec<String>,
}

/// The DER (SubjectPublicKeyInfo) of a PEM public key, checked to be a
/// P-256 key.
pub fn parse_key(pem: &str) -> ServiceResult<Vec<u8>> {
    let bad = |why: &str| ServiceError::Invalid(format!("not an ECDSA P-256 public key in PEM: {why}"));
    let body = pem
        .trim()
        .strip_prefix("-----BEGIN PUBLIC KEY-----")
        .and_then(|r| r.trim_end().strip_suffix("-----END PUBLIC KEY-----"))
        .ok_or_else(|| bad("no PUBLIC KEY block"))?;
    let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD.decode(b64).map_err(|_| bad("bad base64"))?;
    // The id-ecPublicKey and prime256v1 object identifiers.
    let (ec, p256) = ([0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01], [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]);
    let has = |needle: &[u8]| der.windows(needle.len()).any(|w| w == needle);
    if !has(&ec) || !has(&p256) || der.len() != 91 {
        return Err(bad("another key type or curve"));
    }
    Ok(der)
}

/// Whether `signature` (DER) over `payload` verifies with one of `keys`.
pub fn verifies(keys: &[Vec<u8>], payload: &[u8], signature: &[u8]) -> bool {
    keys.iter().any(|k| UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, k).verify(payload, signature).is_ok())
}

impl Registry {
    pub async fn cosign_keys(&self, project: &str) -> ServiceResult<CosignKeys> {
        let (pk, sk) = keys::project_cosign_keys(project);
        match self.meta.get(&pk, &sk).await? {
            Some(item) => from_item(item, "cosign keys"),
            None => Ok(CosignKeys::default()),
        }
    }

    /// Replaces a project's keys (none: any cosign signature will do, as
    /// Harbor).
    pub async fn set_cosign_keys(&self, project: &str, list: CosignKeys) -> ServiceResult<CosignKeys> {
        if list.keys.len() > MAX_KEYS {
            return Err(ServiceError::Invalid(format!("a project holds at most {MAX_KEYS} keys")));
        }
        for k in &list.keys {
            parse_key(k)?;
        }
        let (pk, sk) = keys::project_cosign_keys(project);
        if list.keys.is_empty() {
            self.meta.delete(&pk, &sk, Condition::Always).await?;
        } else {
            self.meta.put(to_item(pk, sk, &list, "cosign keys")?, Condition::Always).await?;
        }
        Ok(list)
    }

    /// Whether one of the cosign signatures of `subject` in `repo` verifies
    /// with one of `keys` over a payload naming `subject`.
    pub(super) async fn cosign_verified(
        &self,
        repo: &RepoName,
        subject: &Digest,
        signatures: &[Digest],
        keys: &[Vec<u8>],
    ) -> ServiceResult<bool> {
        for sig in signatures {
            let record = match self.get_manifest(repo, &Reference::Digest(sig.clone()), true).await {
                Ok(r) => r,
                Err(ServiceError::ManifestUnknown(_)) => continue,
                Err(e) => return Err(e),
            };
            let Ok(manifest) = Manifest::parse(Some(&record.media_type), &record.body) else { continue };
            for layer in manifest.layers.iter().filter(|l| l.media_type == SIMPLE_SIGNING && l.size <= MAX_PAYLOAD) {
                let Some(signature) = layer
                    .annotations
                    .get(SIGNATURE_ANNOTATION)
                    .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s.trim()).ok())
                else {
                    continue;
                };
                let payload: Vec<u8> = match self.read_blob(&layer.digest).await {
                    Ok(s) => s
                        .try_fold(Vec::new(), |mut all, b| async move {
                            all.extend_from_slice(&b);
                            Ok(all)
                        })
                        .await
                        .map_err(|e| {
                            crate::port::PortError::msg(crate::port::ErrorKind::Unavailable, format_args!("{e}"))
                        })?,
                    Err(ServiceError::BlobUnknown(_)) => continue,
                    Err(e) => return Err(e),
                };
                let names_subject = serde_json::from_slice::<serde_json::Value>(&payload)
                    .ok()
                    .and_then(|p| p.pointer("/critical/image/docker-manifest-digest")?.as_str().map(str::to_owned))
                    .is_some_and(|d| d == subject.to_string());
                if names_subject && verifies(keys, &payload, &signature) {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};

    use super::*;

    fn pem(der: &[u8]) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
        format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", lines.join("\n"))
    }

    #[test]
    fn a_signature_verifies_with_its_key_only() {
        let rng = SystemRandom::new();
        let pair = |_| {
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap()
        };
        let (a, b) = (pair(0), pair(1));
        let der = |k: &EcdsaKeyPair| {
            let d: aws_lc_rs::encoding::PublicKeyX509Der = k.public_key().as_der().unwrap();
            d.as_ref().to_vec()
        };
        let key_a = parse_key(&pem(&der(&a))).unwrap();
        let key_b = parse_key(&pem(&der(&b))).unwrap();
        let payload = br#"{"critical":{"image":{"docker-manifest-digest":"sha256:00"}}}"#;
        let sig = a.sign(&rng, payload).unwrap();
        assert!(verifies(&[key_b.clone(), key_a.clone()], payload, sig.as_ref()));
        assert!(!verifies(&[key_b], payload, sig.as_ref()));
        assert!(!verifies(&[key_a], b"another payload", sig.as_ref()));
        assert!(parse_key("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----").is_err());
        assert!(parse_key("not a key").is_err());
    }
}

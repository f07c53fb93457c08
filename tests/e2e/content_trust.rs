//! Content trust with the project's cosign keys (F10, beyond Harbor): with
//! `enable_content_trust_cosign` and keys, an image is pulled only when a
//! cosign signature of it verifies with one of the keys over a payload
//! naming its digest; without keys any cosign signature will do (Harbor's
//! rule). Keys and signatures are made here (ECDSA P-256), in cosign's
//! format: the simple-signing payload as a layer, the base64 signature in
//! its `dev.cosignproject.cosign/signature` annotation, tagged
//! `sha256-<hex>.sig`.

use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine as _;
use serde_json::{Value, json};

use crate::support::app::{TestApp, image_manifest};

fn key() -> EcdsaKeyPair {
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new()).unwrap();
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap()
}

fn pem(k: &EcdsaKeyPair) -> String {
    let der: PublicKeyX509Der = k.public_key().as_der().unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", lines.join("\n"))
}

/// Signs `named` with `k` and pushes the signature as the cosign signature
/// of `subject` (tag `sha256-<subject hex>.sig`).
async fn sign(app: &TestApp, repo: &str, subject: &str, named: &str, k: &EcdsaKeyPair) {
    let payload = serde_json::to_vec(&json!({"critical": {"identity": {"docker-reference": repo},
        "image": {"docker-manifest-digest": named}, "type": "cosign container image signature"}, "optional": null}))
    .unwrap();
    let sig = k.sign(&SystemRandom::new(), &payload).unwrap();
    let layer = app.upload_blob(repo, &payload).await;
    let config = app.upload_blob(repo, b"{}").await;
    let mut m: Value =
        serde_json::from_slice(&image_manifest(&config, 2).layer(&layer, payload.len() as u64).bytes()).unwrap();
    m["layers"][0]["mediaType"] = json!("application/vnd.dev.cosign.simplesigning.v1+json");
    m["layers"][0]["annotations"] =
        json!({"dev.cosignproject.cosign/signature": base64::engine::general_purpose::STANDARD.encode(sig.as_ref())});
    let tag = format!("{}.sig", subject.replace(':', "-"));
    app.put_manifest(repo, &tag, &serde_json::to_vec(&m).unwrap()).await;
}

async fn pull(app: &TestApp, repo: &str, reference: &str) -> u16 {
    app.admin()
        .get(&format!("/v2/{repo}/manifests/{reference}"))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .code()
}

#[tokio::test]
async fn a_pull_needs_a_signature_by_a_key_of_the_project() {
    let app = TestApp::local().await;
    let pid = app.create_project("signed", false).await;
    let (a, b) = (key(), key());
    let keys = "/api/v2.0/projects/signed/cosign-keys";
    app.admin()
        .put(keys)
        .json(&json!({"keys": ["-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"]}))
        .send()
        .await
        .expect(400);
    app.admin().put(keys).json(&json!({"keys": [pem(&a)]})).send().await.expect(200);
    let got: Value = app.admin().get(keys).send().await.expect(200).json();
    assert_eq!(got["keys"][0], pem(&a));
    // A developer reads the keys but may not change them.
    app.create_user("dev", "Passw0rd!x").await;
    app.add_member(pid, "dev", 2).await;
    app.user("dev", "Passw0rd!x").get(keys).send().await.expect(200);
    app.user("dev", "Passw0rd!x").put(keys).json(&json!({"keys": []})).send().await.expect(403);

    app.set_project_metadata(pid, json!({"enable_content_trust_cosign": "true"})).await;
    let x = app.push_image("signed/app", "x").await;
    let y = app.push_image("signed/app", "y").await;
    tokio::time::sleep(berth::service::pull_policy::POLICY_TTL).await;
    assert_eq!(pull(&app, "signed/app", "x").await, 412, "unsigned");

    sign(&app, "signed/app", &x, &x, &b).await;
    assert_eq!(pull(&app, "signed/app", "x").await, 412, "signed by a key the project does not hold");
    sign(&app, "signed/app", &x, &x, &a).await;
    assert_eq!(pull(&app, "signed/app", "x").await, 200, "signed by the project's key");

    // A's signature of x, offered as y's: the payload names another digest.
    sign(&app, "signed/app", &y, &x, &a).await;
    assert_eq!(pull(&app, "signed/app", "y").await, 412);

    // Without keys, any cosign signature will do (Harbor's rule).
    app.admin().put(keys).json(&json!({"keys": []})).send().await.expect(200);
    tokio::time::sleep(berth::service::pull_policy::POLICY_TTL).await;
    assert_eq!(pull(&app, "signed/app", "y").await, 200);
}

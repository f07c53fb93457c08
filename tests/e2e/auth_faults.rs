//! Bad credentials of every kind get the right 401/403 with a protocol
//! error body: expired tokens, tokens for another service or signed by
//! another key, a scope for another repository, and a wrong password a
//! hundred times over; and the answers never tell which user names exist.

use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use berth::auth::token::{self, TokenKeys};
use berth::config::Secret;
use serde_json::Value;

use crate::support::app::TestApp;

const SEED: [u8; 32] = [42; 32];

/// The PKCS#8 PEM of an Ed25519 seed (what `openssl genpkey -algorithm
/// ed25519` writes).
fn pem(seed: &[u8; 32]) -> String {
    let prefix = [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
    let der = [prefix.as_slice(), seed.as_slice()].concat();
    format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", B64.encode(der))
}

fn access(repo: &str, actions: &[&str]) -> Vec<token::Access> {
    vec![token::Access {
        kind: "repository".into(),
        name: repo.into(),
        actions: actions.iter().map(|a| (*a).to_owned()).collect(),
    }]
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_tokens_and_passwords_are_refused_in_protocol_form() {
    let key = pem(&SEED);
    let configured = key.clone();
    let app = TestApp::builder().config(move |c| c.auth.token_key = Some(Secret::new(configured))).local().await;
    let keys = TokenKeys::from_pem(&key).unwrap();
    let now = berth::meta::now_unix();

    // A token of the configured key works; that is the baseline.
    let good = token::issue(&keys, "harbor-registry", "admin", access("library/a", &["pull"]), 600, now);
    assert_eq!(app.get("/v2/library/a/tags/list").bearer(&good).send().await.code(), 404);

    let refused = |tok: String, path: &'static str, error: &'static str| {
        let app = &app;
        async move {
            let r = app.get(path).bearer(&tok).send().await;
            assert_eq!(r.code(), 401, "{path} with a {error} token");
            let www = r.header("www-authenticate");
            assert!(www.starts_with("Bearer realm=") && www.contains(&format!("error=\"{error}\"")), "{www}");
            let body: Value = r.json();
            assert_eq!(body["errors"][0]["code"], "UNAUTHORIZED", "{body}");
        }
    };
    let expired = token::issue(&keys, "harbor-registry", "admin", access("library/a", &["pull"]), 60, now - 3600);
    refused(expired, "/v2/library/a/tags/list", "invalid_token").await;
    let other_service = token::issue(&keys, "another-registry", "admin", access("library/a", &["pull"]), 600, now);
    refused(other_service, "/v2/library/a/tags/list", "invalid_token").await;
    let other_key = TokenKeys::from_seed(&[7; 32]);
    let forged = token::issue(&other_key, "harbor-registry", "admin", access("library/a", &["pull"]), 600, now);
    refused(forged, "/v2/library/a/tags/list", "invalid_token").await;
    // Right key and service, but for another repository (or action).
    refused(good.clone(), "/v2/library/b/tags/list", "insufficient_scope").await;
    let r = app.post("/v2/library/a/blobs/uploads/").bearer(&good).send().await;
    assert_eq!(r.code(), 401);
    assert!(r.header("www-authenticate").contains("insufficient_scope"));
    // The management API takes no registry tokens at all.
    let r = app.get("/api/v2.0/users/current").bearer(&good).send().await;
    assert_eq!(r.code(), 401);
    assert_eq!(r.json::<Value>()["errors"][0]["code"], "UNAUTHORIZED");

    // Memory is measured over the flood below, alone: no other test of
    // this process measures at the same time.
    let _alone = berth::testkit::MEMORY_MEASUREMENT.lock().await;
    berth::testkit::reset_peak_rss();

    // A local user exists; its wrong password and an unknown user's get
    // the same answer, word for word, a hundred times, at a similar cost.
    app.create_user("wendy", "Wendy1234").await;
    let attempt = |user: String, path: &'static str| {
        let app = &app;
        async move {
            let start = Instant::now();
            let r = app.user(&user, "not-the-password").get(path).send().await;
            let www = r.headers.get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
            let body: Value = r.json();
            (r.code(), www, body, start.elapsed())
        }
    };
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for i in 0..100 {
        for (path, code) in [("/v2/", "UNAUTHORIZED"), ("/api/v2.0/users/current", "UNAUTHORIZED")] {
            let (ks, kw, kb, kt) = attempt("wendy".to_owned(), path).await;
            let (us, uw, ub, ut) = attempt(format!("nobody{i}"), path).await;
            assert_eq!((ks, us), (401, 401), "{path}");
            assert_eq!(kb["errors"][0]["code"], code, "{kb}");
            assert_eq!((kw, kb), (uw, ub), "{path}: the answers tell the user names apart");
            known.push(kt);
            unknown.push(ut);
        }
    }
    let token = app.user("wendy", "nope").get("/service/token?scope=repository:library/a:pull").send().await;
    assert_eq!(token.code(), 401);
    assert_eq!(token.json::<Value>()["errors"][0]["code"], "UNAUTHORIZED");
    known.sort();
    unknown.sort();
    let (k, u) = (known[known.len() / 2], unknown[unknown.len() / 2]);
    assert!(
        u * 3 >= k && k * 3 >= u,
        "a wrong password costs {k:?} (median) but an unknown user {u:?}: timing tells them apart"
    );
    // Still serving, and memory stayed bounded through the flood. The
    // server shares this process with the test, so the bound is on both.
    assert_eq!(app.user("wendy", "Wendy1234").get("/v2/").send().await.code(), 200);
    let (_, peak) = berth::testkit::rss_bytes();
    let peak_kb = peak / 1024;
    assert!(peak_kb > 0, "no peak RSS figure in /proc/self/status");
    assert!(peak_kb < 400 * 1024, "peak RSS {peak_kb} kB after 400 wrong passwords");
}

//! The Docker token flow: `/v2` challenges with `Bearer realm=…/service/token`,
//! the token service hands out JWTs carrying exactly the granted actions,
//! and `/v2` honours a token for those actions only.

use serde_json::Value;

use crate::support::app::{ADMIN_PASSWORD, TestApp, TestResponse};

/// A token for `scopes`, with the admin's credentials or none.
async fn token_for(app: &TestApp, admin: bool, scopes: &[&str]) -> String {
    let mut path = "/service/token?service=harbor-registry".to_owned();
    for s in scopes {
        path.push_str(&format!("&scope={}", s.replace('*', "%2A")));
    }
    let client = if admin { app.admin() } else { app.anonymous() };
    let resp = client.get(&path).send().await;
    assert_eq!(resp.code(), 200);
    let body: Value = resp.json();
    assert_eq!(body["token"], body["access_token"]);
    assert!(body["expires_in"].as_i64().unwrap() > 0 && body["issued_at"].is_string());
    body["token"].as_str().unwrap().to_owned()
}

async fn push_blob(app: &TestApp, token: &str, repo: &str, bytes: &[u8]) -> TestResponse {
    let digest = berth::oci::Digest::sha256_of(bytes);
    app.post(&format!("/v2/{repo}/blobs/uploads/?digest={digest}")).bearer(token).body(bytes.to_vec()).send().await
}

/// The claims of a JWT, unverified (the test only reads what was granted).
fn claims(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn token_flow() {
    let app = TestApp::local().await;

    // The challenge names the realm, the service and the scope needed.
    let r = app.get("/v2/").send().await;
    assert_eq!(r.code(), 401);
    let www = r.header("www-authenticate").to_owned();
    assert_eq!(www, format!("Bearer realm=\"{}/service/token\",service=\"harbor-registry\"", app.url("")));
    let r = app.post("/v2/library/app/blobs/uploads/").send().await;
    let www = r.header("www-authenticate").to_owned();
    assert!(www.ends_with(",scope=\"repository:library/app:pull,push\""), "{www}");

    // The admin gets what it asks for, and can push and pull with it.
    let token = token_for(&app, true, &["repository:library/app:pull,push"]).await;
    let c = claims(&token);
    assert_eq!((c["sub"].as_str(), c["aud"].as_str()), (Some("admin"), Some("harbor-registry")));
    assert_eq!(
        c["access"],
        serde_json::json!([{"type": "repository", "name": "library/app", "actions": ["pull", "push"]}])
    );
    assert_eq!(push_blob(&app, &token, "library/app", b"layer").await.code(), 201);
    assert_eq!(app.get("/v2/").bearer(&token).send().await.code(), 200);

    // A token is good for its scope only: another repository, or an
    // action it does not carry, is a 401 asking for a better token.
    let r = push_blob(&app, &token, "library/other", b"layer").await;
    assert_eq!(r.code(), 401);
    assert!(r.header("www-authenticate").contains("error=\"insufficient_scope\""));
    let pull_only = token_for(&app, true, &["repository:library/app:pull"]).await;
    assert_eq!(push_blob(&app, &pull_only, "library/app", b"more").await.code(), 401);
    let digest = berth::oci::Digest::sha256_of(b"layer");
    let r = app.get(&format!("/v2/library/app/blobs/{digest}")).bearer(&pull_only).send().await;
    assert_eq!(r.body.as_ref(), b"layer");

    // Anonymous callers get pull on public projects and nothing else.
    let anon = token_for(&app, false, &["repository:library/app:pull,push", "registry:catalog:*"]).await;
    assert_eq!(
        claims(&anon)["access"],
        serde_json::json!([{"type": "repository", "name": "library/app", "actions": ["pull"]}])
    );
    assert_eq!(claims(&anon)["sub"], "");
    let r = app.get(&format!("/v2/library/app/blobs/{digest}")).bearer(&anon).send().await;
    assert_eq!(r.code(), 200);
    assert_eq!(push_blob(&app, &anon, "library/app", b"x").await.code(), 401);
    let admin_catalog = token_for(&app, true, &["registry:catalog:*"]).await;
    assert_eq!(app.get("/v2/_catalog").bearer(&admin_catalog).send().await.code(), 200);
    assert_eq!(app.get("/v2/_catalog").bearer(&anon).send().await.code(), 401);

    // Forged and tampered tokens are refused, and the challenge says so.
    let mut forged = token.clone();
    forged.replace_range(forged.len() - 6.., "AAAAAA");
    for bad in [forged.as_str(), "not-a-token", "a.b.c"] {
        let r = app.get("/v2/").bearer(bad).send().await;
        assert_eq!(r.code(), 401, "{bad}");
        assert!(r.header("www-authenticate").contains("error=\"invalid_token\""));
    }

    // The token service itself: wrong passwords, other services, POST.
    let r = app.user("admin", "wrong").get("/service/token?scope=repository:library/app:pull").send().await;
    assert_eq!(r.code(), 401);
    let body: Value = r.json();
    assert_eq!(body["errors"][0]["code"], "UNAUTHORIZED");
    let r = app.user("admin", ADMIN_PASSWORD).get("/service/token?service=someone-else").send().await;
    assert_eq!(r.code(), 400);
    assert_eq!(app.post("/service/token").send().await.code(), 405);
    let r = app.get("/service/token").bearer(&token).send().await;
    assert_eq!(r.code(), 401, "a token does not buy another token");
}

/// Tokens survive a restart: the signing key is kept in the metadata
/// store, not made per process.
#[tokio::test(flavor = "multi_thread")]
async fn tokens_outlive_a_restart() {
    let app = TestApp::local().await;
    let token = token_for(&app, true, &["repository:library/keep:pull,push"]).await;
    let app = app.restart().await;
    assert_eq!(push_blob(&app, &token, "library/keep", b"after restart").await.code(), 201);
}

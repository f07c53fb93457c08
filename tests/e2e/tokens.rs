//! The Docker token flow: `/v2` challenges with `Bearer realm=…/service/token`,
//! the token service hands out JWTs carrying exactly the granted actions,
//! and `/v2` honours a token for those actions only.

use std::time::Duration;

use reqwest::Method;
use reqwest::blocking::{Client, RequestBuilder};
use serde_json::Value;

use crate::support::Server;

const PASSWORD: &str = "Harbor12345";

struct Reg {
    server: Server,
    http: Client,
}

impl Reg {
    fn start(dir: &std::path::Path) -> Self {
        let server = Server::start(dir, &[], &[("BERTH_ADMIN_PASSWORD", PASSWORD)]);
        let http = Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        Self { server, http }
    }

    fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.server.url(path))
    }

    /// A token for `scopes`, with the admin's credentials or none.
    fn token(&self, admin: bool, scopes: &[&str]) -> String {
        let mut path = "/service/token?service=harbor-registry".to_owned();
        for s in scopes {
            path.push_str(&format!("&scope={}", s.replace('*', "%2A")));
        }
        let mut rb = self.req(Method::GET, &path);
        if admin {
            rb = rb.basic_auth("admin", Some(PASSWORD));
        }
        let resp = rb.send().unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let body: Value = resp.json().unwrap();
        assert_eq!(body["token"], body["access_token"]);
        assert!(body["expires_in"].as_i64().unwrap() > 0 && body["issued_at"].is_string());
        body["token"].as_str().unwrap().to_owned()
    }

    fn push_blob(&self, token: &str, repo: &str, bytes: &[u8]) -> reqwest::blocking::Response {
        let digest = berth::oci::Digest::sha256_of(bytes);
        self.req(Method::POST, &format!("/v2/{repo}/blobs/uploads/?digest={digest}"))
            .bearer_auth(token)
            .body(bytes.to_vec())
            .send()
            .unwrap()
    }
}

/// The claims of a JWT, unverified (the test only reads what was granted).
fn claims(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[test]
fn token_flow() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Reg::start(dir.path());

    // The challenge names the realm, the service and the scope needed.
    let r = reg.req(Method::GET, "/v2/").send().unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let www = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert_eq!(www, format!("Bearer realm=\"{}/service/token\",service=\"harbor-registry\"", reg.server.url("")));
    let r = reg.req(Method::POST, "/v2/library/app/blobs/uploads/").send().unwrap();
    let www = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(www.ends_with(",scope=\"repository:library/app:pull,push\""), "{www}");

    // The admin gets what it asks for, and can push and pull with it.
    let token = reg.token(true, &["repository:library/app:pull,push"]);
    let c = claims(&token);
    assert_eq!((c["sub"].as_str(), c["aud"].as_str()), (Some("admin"), Some("harbor-registry")));
    assert_eq!(
        c["access"],
        serde_json::json!([{"type": "repository", "name": "library/app", "actions": ["pull", "push"]}])
    );
    assert_eq!(reg.push_blob(&token, "library/app", b"layer").status().as_u16(), 201);
    assert_eq!(reg.req(Method::GET, "/v2/").bearer_auth(&token).send().unwrap().status().as_u16(), 200);

    // A token is good for its scope only: another repository, or an
    // action it does not carry, is a 401 asking for a better token.
    let r = reg.push_blob(&token, "library/other", b"layer");
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().contains("error=\"insufficient_scope\""));
    let pull_only = reg.token(true, &["repository:library/app:pull"]);
    assert_eq!(reg.push_blob(&pull_only, "library/app", b"more").status().as_u16(), 401);
    let digest = berth::oci::Digest::sha256_of(b"layer");
    let r = reg.req(Method::GET, &format!("/v2/library/app/blobs/{digest}")).bearer_auth(&pull_only).send().unwrap();
    assert_eq!(r.bytes().unwrap().as_ref(), b"layer");

    // Anonymous callers get pull on public projects and nothing else.
    let anon = reg.token(false, &["repository:library/app:pull,push", "registry:catalog:*"]);
    assert_eq!(
        claims(&anon)["access"],
        serde_json::json!([{"type": "repository", "name": "library/app", "actions": ["pull"]}])
    );
    assert_eq!(claims(&anon)["sub"], "");
    let r = reg.req(Method::GET, &format!("/v2/library/app/blobs/{digest}")).bearer_auth(&anon).send().unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(reg.push_blob(&anon, "library/app", b"x").status().as_u16(), 401);
    let admin_catalog = reg.token(true, &["registry:catalog:*"]);
    assert_eq!(reg.req(Method::GET, "/v2/_catalog").bearer_auth(&admin_catalog).send().unwrap().status().as_u16(), 200);
    assert_eq!(reg.req(Method::GET, "/v2/_catalog").bearer_auth(&anon).send().unwrap().status().as_u16(), 401);

    // Forged and tampered tokens are refused, and the challenge says so.
    let mut forged = token.clone();
    forged.replace_range(forged.len() - 6.., "AAAAAA");
    for bad in [forged.as_str(), "not-a-token", "a.b.c"] {
        let r = reg.req(Method::GET, "/v2/").bearer_auth(bad).send().unwrap();
        assert_eq!(r.status().as_u16(), 401, "{bad}");
        assert!(r.headers()["www-authenticate"].to_str().unwrap().contains("error=\"invalid_token\""));
    }

    // The token service itself: wrong passwords, other services, POST.
    let r = reg
        .req(Method::GET, "/service/token?scope=repository:library/app:pull")
        .basic_auth("admin", Some("wrong"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let body: Value = r.json().unwrap();
    assert_eq!(body["errors"][0]["code"], "UNAUTHORIZED");
    let r =
        reg.req(Method::GET, "/service/token?service=someone-else").basic_auth("admin", Some(PASSWORD)).send().unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(reg.req(Method::POST, "/service/token").send().unwrap().status().as_u16(), 405);
    let r = reg.req(Method::GET, "/service/token").bearer_auth(&token).send().unwrap();
    assert_eq!(r.status().as_u16(), 401, "a token does not buy another token");
}

/// Tokens survive a restart: the signing key is kept, not made per process.
#[test]
fn tokens_outlive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Reg::start(dir.path());
    let token = reg.token(true, &["repository:library/keep:pull,push"]);
    drop(reg);
    let reg = Reg::start(dir.path());
    assert_eq!(reg.push_blob(&token, "library/keep", b"after restart").status().as_u16(), 201);
}

//! Bad credentials of every kind get the right 401/403 with a protocol
//! error body: expired tokens, tokens for another service or signed by
//! another key, a scope for another repository, and a wrong password a
//! hundred times over; and the answers never tell which user names exist.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use berth::auth::token::{self, TokenKeys};
use reqwest::Method;
use reqwest::blocking::Client;
use serde_json::{Value, json};

use crate::support::Server;

const ADMIN_PASSWORD: &str = "Harbor12345";
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

#[test]
fn bad_tokens_and_passwords_are_refused_in_protocol_form() {
    let dir = tempfile::tempdir().unwrap();
    let key = pem(&SEED);
    let server = Server::start(
        dir.path(),
        &[],
        &[("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD), ("BERTH_AUTH_TOKEN_KEY", key.as_str())],
    );
    let http = Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    let get = |path: &str| http.request(Method::GET, server.url(path));
    let keys = TokenKeys::from_pem(&key).unwrap();
    let now = berth::meta::now_unix();

    // A token of the configured key works; that is the baseline.
    let good = token::issue(&keys, "harbor-registry", "admin", access("library/a", &["pull"]), 600, now);
    assert_eq!(get("/v2/library/a/tags/list").bearer_auth(&good).send().unwrap().status().as_u16(), 404);

    let refused = |tok: &str, path: &str, error: &str| {
        let r = get(path).bearer_auth(tok).send().unwrap();
        assert_eq!(r.status().as_u16(), 401, "{path} with a {error} token");
        let www = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(www.starts_with("Bearer realm=") && www.contains(&format!("error=\"{error}\"")), "{www}");
        let body: Value = r.json().unwrap();
        assert_eq!(body["errors"][0]["code"], "UNAUTHORIZED", "{body}");
    };
    let expired = token::issue(&keys, "harbor-registry", "admin", access("library/a", &["pull"]), 60, now - 3600);
    refused(&expired, "/v2/library/a/tags/list", "invalid_token");
    let other_service = token::issue(&keys, "another-registry", "admin", access("library/a", &["pull"]), 600, now);
    refused(&other_service, "/v2/library/a/tags/list", "invalid_token");
    let other_key = TokenKeys::from_seed(&[7; 32]);
    let forged = token::issue(&other_key, "harbor-registry", "admin", access("library/a", &["pull"]), 600, now);
    refused(&forged, "/v2/library/a/tags/list", "invalid_token");
    // Right key and service, but for another repository (or action).
    refused(&good, "/v2/library/b/tags/list", "insufficient_scope");
    let r = http.request(Method::POST, server.url("/v2/library/a/blobs/uploads/")).bearer_auth(&good).send().unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().contains("insufficient_scope"));
    // The management API takes no registry tokens at all.
    let r = get("/api/v2.0/users/current").bearer_auth(&good).send().unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(r.json::<Value>().unwrap()["errors"][0]["code"], "UNAUTHORIZED");

    // A local user exists; its wrong password and an unknown user's get
    // the same answer, word for word, a hundred times, at a similar cost.
    let body = json!({"username": "wendy", "email": "wendy@example.com", "realname": "Wendy", "password": "Wendy1234"});
    let r =
        http.post(server.url("/api/v2.0/users")).basic_auth("admin", Some(ADMIN_PASSWORD)).json(&body).send().unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let attempt = |user: &str, path: &str| {
        let start = Instant::now();
        let r = get(path).basic_auth(user, Some("not-the-password")).send().unwrap();
        let status = r.status().as_u16();
        let www = r.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
        let body: Value = r.json().unwrap();
        (status, www, body, start.elapsed())
    };
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for i in 0..100 {
        for (path, code) in [("/v2/", "UNAUTHORIZED"), ("/api/v2.0/users/current", "UNAUTHORIZED")] {
            let (ks, kw, kb, kt) = attempt("wendy", path);
            let (us, uw, ub, ut) = attempt(&format!("nobody{i}"), path);
            assert_eq!((ks, us), (401, 401), "{path}");
            assert_eq!(kb["errors"][0]["code"], code, "{kb}");
            assert_eq!((kw, kb), (uw, ub), "{path}: the answers tell the user names apart");
            known.push(kt);
            unknown.push(ut);
        }
    }
    let token = get("/service/token?scope=repository:library/a:pull").basic_auth("wendy", Some("nope")).send().unwrap();
    assert_eq!(token.status().as_u16(), 401);
    assert_eq!(token.json::<Value>().unwrap()["errors"][0]["code"], "UNAUTHORIZED");
    known.sort();
    unknown.sort();
    let (k, u) = (known[known.len() / 2], unknown[unknown.len() / 2]);
    assert!(
        u * 3 >= k && k * 3 >= u,
        "a wrong password costs {k:?} (median) but an unknown user {u:?}: timing tells them apart"
    );
    // Still serving, and memory stayed bounded through the flood.
    assert_eq!(get("/v2/").basic_auth("wendy", Some("Wendy1234")).send().unwrap().status().as_u16(), 200);
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
    let rss_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    assert!(rss_kb < 400 * 1024, "peak RSS {rss_kb} kB after 400 wrong passwords");
}

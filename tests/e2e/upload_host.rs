//! The serverless push path: an API host hands out upload `Location`s on a
//! separate upload host (`berth serve --role upload`), which takes the
//! bytes; both share the AWS backends, so the blob is then readable through
//! the API host. The upload host serves nothing but uploads.

use std::time::Duration;

use crate::support::{AwsResources, Server, emulator};

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[test]
fn uploads_go_to_the_upload_host() {
    if !emulator("uploads_go_to_the_upload_host") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let aws = AwsResources::new("berth-up-");
    let upload = aws.serve(dir.path(), &["--role", "upload"]);
    let base = upload.url("");
    let mut api_env = aws.env();
    api_env.push(("BERTH_SERVER_UPLOAD_BASE_URL", base.as_str()));
    let api = Server::start(dir.path(), &["--backend", "aws"], &api_env);
    let c = client();
    let auth = |r: reqwest::blocking::RequestBuilder| r.basic_auth("admin", Some("Harbor12345"));

    let start = auth(c.post(api.url("/v2/library/up/blobs/uploads/"))).send().unwrap();
    assert_eq!(start.status().as_u16(), 202);
    let location = start.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(&base), "{location} is on the upload host {base}");

    let blob = vec![42u8; 9 * 1024 * 1024 + 5];
    let digest = berth::oci::Digest::sha256_of(&blob);
    let patch =
        auth(c.patch(&location)).header("content-type", "application/octet-stream").body(blob.clone()).send().unwrap();
    assert_eq!(patch.status().as_u16(), 202);
    // The upload host answers with a relative Location, which resolves
    // against the host the client is talking to.
    let next = reqwest::Url::parse(&location).unwrap().join(patch.headers()["location"].to_str().unwrap()).unwrap();
    assert!(next.as_str().starts_with(&base), "{next}");
    let put = auth(c.put(format!("{next}?digest={digest}"))).send().unwrap();
    assert_eq!(put.status().as_u16(), 201, "{}", put.text().unwrap_or_default());

    let head = auth(c.head(api.url(&format!("/v2/library/up/blobs/{digest}")))).send().unwrap();
    assert_eq!(head.status().as_u16(), 200);
    assert_eq!(head.headers()["content-length"], blob.len().to_string().as_str());
    let get = auth(c.get(api.url(&format!("/v2/library/up/blobs/{digest}")))).send().unwrap();
    assert_eq!(get.status().as_u16(), 307, "pulls are redirects to the object store");
    let bytes = reqwest::blocking::get(get.headers()["location"].to_str().unwrap()).unwrap().bytes().unwrap();
    assert_eq!(berth::oci::Digest::sha256_of(&bytes), digest);

    // The upload host answers nothing else.
    for path in ["/v2/library/up/tags/list", "/v2/_catalog"] {
        let r = auth(c.get(upload.url(path))).send().unwrap();
        assert_eq!(r.status().as_u16(), 404, "{path} on the upload host");
    }
    let r = auth(c.get(upload.url(&format!("/v2/library/up/blobs/{digest}")))).send().unwrap();
    assert_eq!(r.status().as_u16(), 404);
}

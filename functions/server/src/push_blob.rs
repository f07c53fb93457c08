//! `berth push-blob`: a client of the berth upload extension. It pushes one
//! file as a blob with its bytes going straight to the object store: open a
//! direct upload (`POST /v2/<repo>/_berth/uploads`), `PUT` each part to its
//! presigned URL, then complete with the digest and the parts' ETags, which
//! the registry checks by reading the object back. Prints the digest.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use futures::{StreamExt, TryStreamExt};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// Parts in flight at once.
const PARALLEL_PARTS: usize = 4;
/// Tries of one part before the push fails.
const PART_TRIES: u32 = 3;

#[derive(clap::Args)]
pub struct PushBlob {
    /// The registry's base URL (`https://registry.example.com`).
    #[arg(long)]
    registry: url::Url,
    /// The repository (`library/app`).
    #[arg(long)]
    repository: String,
    /// User name for basic authentication.
    #[arg(long)]
    username: Option<String>,
    /// Read the password from standard input (first line).
    #[arg(long, requires = "username")]
    password_stdin: bool,
    /// Bytes per part (at least 5 MiB; the registry may choose larger ones).
    #[arg(long)]
    part_size: Option<u64>,
    /// The file to push.
    file: PathBuf,
}

#[derive(Deserialize)]
struct Upload {
    id: String,
    parts: Vec<Part>,
}

#[derive(Deserialize)]
struct Part {
    number: u32,
    offset: u64,
    size: u64,
    url: String,
}

impl PushBlob {
    pub async fn run(self) -> anyhow::Result<()> {
        let password = if self.password_stdin {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).context("reading the password from standard input")?;
            Some(line.trim_end_matches(['\r', '\n']).to_owned())
        } else {
            None
        };
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(3600))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .context("building the HTTP client")?;
        let auth = |req: reqwest::RequestBuilder| match &self.username {
            Some(user) => req.basic_auth(user, password.as_deref()),
            None => req,
        };
        let size = tokio::fs::metadata(&self.file).await.with_context(|| format!("{}", self.file.display()))?.len();
        let digest = sha256_file(&self.file).await?;

        let base = self.registry.as_str().trim_end_matches('/');
        let start_url = format!("{base}/v2/{}/_berth/uploads", self.repository);
        let mut body = serde_json::json!({ "size": size });
        if let Some(part_size) = self.part_size {
            body["part_size"] = part_size.into();
        }
        let resp = auth(client.post(&start_url)).json(&body).send().await.context("opening the upload")?;
        let resp = ok_or_registry_error(resp, "opening a direct upload").await?;
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .context("the registry gave no Location")?;
        let upload: Upload = resp.json().await.context("reading the upload's part URLs")?;
        let upload_url = self.registry.join(&location).context("the upload's Location")?;

        let sent = futures::stream::iter(upload.parts.iter().map(|p| put_part(&client, &self.file, p)))
            .buffered(PARALLEL_PARTS)
            .try_collect::<Vec<serde_json::Value>>()
            .await;
        let parts = match sent {
            Ok(parts) => parts,
            Err(e) => {
                // Best effort: the registry also expires the session.
                let _ = auth(client.delete(upload_url.clone())).send().await;
                return Err(e.context(format!("uploading the parts of upload {}", upload.id)));
            }
        };
        let mut complete = upload_url;
        complete.query_pairs_mut().append_pair("digest", &digest);
        let resp = auth(client.put(complete))
            .json(&serde_json::json!({ "parts": parts }))
            .send()
            .await
            .context("completing the upload")?;
        ok_or_registry_error(resp, "completing the upload").await?;
        println!("{digest}");
        Ok(())
    }
}

/// Sends one part (retried a few times) and answers its completion entry.
async fn put_part(client: &reqwest::Client, file: &Path, part: &Part) -> anyhow::Result<serde_json::Value> {
    let bytes = read_range(file, part.offset, part.size).await?;
    let mut last = None;
    for attempt in 1..=PART_TRIES {
        let sent =
            client.put(&part.url).header("content-type", "application/octet-stream").body(bytes.clone()).send().await;
        match sent {
            Ok(resp) if resp.status().is_success() => {
                let etag = resp
                    .headers()
                    .get("etag")
                    .and_then(|v| v.to_str().ok())
                    .with_context(|| format!("part {}: the object store returned no ETag", part.number))?;
                return Ok(serde_json::json!({ "number": part.number, "etag": etag }));
            }
            Ok(resp) => {
                last = Some(anyhow::anyhow!("part {}: the object store answered {}", part.number, resp.status()))
            }
            Err(e) => last = Some(anyhow::Error::new(e).context(format!("part {}", part.number))),
        }
        tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("part {} was not sent", part.number)))
}

async fn read_range(file: &Path, offset: u64, len: u64) -> anyhow::Result<bytes::Bytes> {
    let mut f = tokio::fs::File::open(file).await.with_context(|| format!("{}", file.display()))?;
    f.seek(std::io::SeekFrom::Start(offset)).await?;
    let mut buf = vec![0u8; usize::try_from(len).context("part too large for memory")?];
    f.read_exact(&mut buf).await.with_context(|| format!("reading {} bytes at {offset} of {}", len, file.display()))?;
    Ok(buf.into())
}

async fn sha256_file(file: &Path) -> anyhow::Result<String> {
    let mut f = tokio::fs::File::open(file).await.with_context(|| format!("{}", file.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(format!("sha256:{}", hex::encode(hasher.finalize())))
}

/// A success, or the registry's OCI error as one line.
async fn ok_or_registry_error(resp: reqwest::Response, what: &str) -> anyhow::Result<reqwest::Response> {
    if resp.status().is_success() {
        return Ok(resp);
    }
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    let first = serde_json::from_str::<serde_json::Value>(&body).ok().and_then(|v| {
        let e = v.get("errors")?.get(0)?.clone();
        Some(format!(
            "{}: {}{}",
            e.get("code")?.as_str()?,
            e.get("message")?.as_str()?,
            e.get("detail").and_then(|d| d.as_str()).map(|d| format!(" ({d})")).unwrap_or_default()
        ))
    });
    bail!("{what}: the registry answered {status}: {}", first.unwrap_or(body))
}

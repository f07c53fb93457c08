//! Other registries, as a client: what replication and proxy caches use to
//! read from and write to registries that are not this one.
//!
//! This module owns the wire side of talking to another registry: the OCI
//! Distribution API ([`Client`]: ping, catalog and tags with `Link`
//! paging, manifests by tag or digest, blobs streamed in and out with
//! redirects, mounts and chunks, referrers with the tag-schema fallback),
//! authentication as registries do it ([`auth`]: anonymous, Basic, the
//! Docker token flow with tokens kept per scope; ECR's keys through
//! [`ecr`]), errors as kinds a caller can retry on ([`RemoteError`]), and
//! the registry types Harbor names ([`adapter`]: each type's address,
//! credentials, repository names and listing).
//!
//! It must not know berth's tables or policies: registry endpoints as
//! berth stores them are [`crate::service::registries`]; what to copy and
//! when is replication's. Nothing here retries on its own beyond the one
//! fresh-token retry of a `401`: the caller decides, by
//! [`RemoteError::is_retryable`] and [`RemoteError::retry_after`].
//!
//! ```text
//! let client = Client::new(Endpoint::new("https://r.example", Credential::Anonymous)?)?;
//! let m = client.get_manifest("library/busybox", "latest").await?;   // digest checked
//! for layer in layers(&m) {
//!     if dest.blob_size(repo, &layer).await?.is_none() {
//!         let blob = client.get_blob(repo, &layer, None).await?;     // follows 307s
//!         dest.push_blob(repo, &layer, BlobSource::Stream { size, stream: blob.stream }, None).await?;
//!     }
//! }
//! dest.put_manifest(repo, "latest", &m.media_type, m.bytes).await?;
//! ```

pub mod adapter;
pub mod auth;
mod client;
pub mod ecr;
mod error;
pub mod link;

pub use client::{
    BlobReader, BlobSource, ByteStream, CONNECT_TIMEOUT, Client, Credential, DEFAULT_CHUNK_SIZE,
    DEFAULT_MONOLITHIC_MAX, DEFAULT_TIMEOUT, Descriptor, Endpoint, MANIFEST_TYPES, Manifest, ManifestInfo, Page,
    Pushed, Referrers, parse_base_url,
};
pub use error::{ErrorKind, RemoteError, RemoteResult, error_body_message};

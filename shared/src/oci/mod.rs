//! OCI vocabulary: digests, repository names, references, media types and
//! manifest parsing. Pure functions and types; no I/O, no storage.

pub mod digest;
pub mod manifest;
pub mod media;
pub mod name;

pub use digest::{Digest, DigestAlgorithm};
pub use manifest::{Descriptor, Manifest, ManifestError, ManifestKind, Platform};
pub use name::{NameError, Reference, RepoName, Tag};

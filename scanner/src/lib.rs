//! berth's built-in vulnerability scanner engine, as a pure library.
//!
//! It owns four steps, each a module:
//! - [`layers`]: an image's layer blobs (as stored: tar or tar+gzip) to the
//!   few files the catalogers read, walking each tar as a stream and applying
//!   OCI whiteouts across layers;
//! - [`inventory`]: those files to an [`Inventory`] (the OS and its packages,
//!   language packages, Go binaries);
//! - [`osv`] and [`matching`]: OSV records to a [`VulnDb`] index, and an
//!   inventory against it to [`Finding`]s, with versions ordered per
//!   ecosystem by [`version`];
//! - [`sbom`]: an inventory to CycloneDX 1.5 and SPDX 2.3 documents.
//!
//! What it must not do: no I/O except reading what the caller hands it (layer
//! readers, a database path given to the importer), no clock, no randomness,
//! no network, no async, no registry or HTTP types. Every input may be
//! hostile: sizes and counts are bounded by [`Limits`], and a bad input ends
//! in a [`ScanError`] or is skipped, never in a panic.

pub mod inventory;
pub mod layers;
pub mod matching;
pub mod osv;
pub mod sbom;
pub mod version;

use serde::{Deserialize, Serialize};

pub use inventory::{Ecosystem, Inventory, OsInfo, Package, inventory};
pub use layers::Layer;
pub use matching::{Finding, Severity, find_vulnerabilities};
pub use osv::{ImportSummary, VulnDb, VulnDbBuilder};
pub use sbom::{Subject, cyclonedx, spdx};

/// Bounds on what one scan or one database import may read. The defaults fit
/// real images (a few GB, tens of layers) and stop hostile ones early; a
/// caller may lower any of them (tests do).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Layers per image. Default 128 (Docker allows 127 on overlayfs).
    pub max_layers: usize,
    /// Tar entries in one layer. Default 1,000,000.
    pub max_entries_per_layer: u64,
    /// Decompressed bytes of one layer. Default 16 GiB.
    pub max_layer_bytes: u64,
    /// Decompressed bytes of all layers together. Default 32 GiB.
    pub max_total_bytes: u64,
    /// Size of one file a cataloger reads (a package database, a
    /// `package.json`); larger files are skipped. Default 64 MiB.
    pub max_file_bytes: u64,
    /// Packages in one inventory. Default 200,000.
    pub max_packages: usize,
    /// Size of an executable searched for Go build info; larger ones are
    /// skipped. Default 256 MiB.
    pub max_go_binary_bytes: u64,
    /// Bytes of OSV JSON read by one database import. Default 8 GiB.
    pub max_db_bytes: u64,
    /// Size of one OSV JSON file (a record or an array of records); larger
    /// ones are skipped and counted. Default 16 MiB.
    pub max_record_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        const MIB: u64 = 1024 * 1024;
        const GIB: u64 = 1024 * MIB;
        Limits {
            max_layers: 128,
            max_entries_per_layer: 1_000_000,
            max_layer_bytes: 16 * GIB,
            max_total_bytes: 32 * GIB,
            max_file_bytes: 64 * MIB,
            max_packages: 200_000,
            max_go_binary_bytes: 256 * MIB,
            max_db_bytes: 8 * GIB,
            max_record_bytes: 16 * MIB,
        }
    }
}

/// Everything that can stop a scan or an import.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// A bound of [`Limits`] was reached; `what` names it.
    #[error("limit exceeded: {what}")]
    LimitExceeded { what: String },
    /// The input is not what its type says (a broken tar or gzip stream, a
    /// database that is not OSV).
    #[error("malformed input: {what}")]
    Malformed { what: String },
    /// A layer media type this scanner does not read (zstd, encrypted, ...).
    #[error("unsupported layer media type {media_type}")]
    Unsupported { media_type: String },
    /// Reading what the caller handed over failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

impl ScanError {
    pub(crate) fn limit(what: impl Into<String>) -> Self {
        ScanError::LimitExceeded { what: what.into() }
    }

    pub(crate) fn malformed(what: impl Into<String>) -> Self {
        ScanError::Malformed { what: what.into() }
    }
}

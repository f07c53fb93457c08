//! The built-in scanner's vulnerability database (F8): imported by `berth
//! vulndb import` from OSV records, kept whole as one object
//! (`vulndb/<stamp>`), with an item in the table naming the current one and
//! what it holds. An import writes the new object first and then points
//! the item at it, so a scan reads either the old database or the new one,
//! never half of one; the replaced object is deleted afterwards.

use serde::{Deserialize, Serialize};

use super::record::{from_item, to_item};
use super::{Registry, ServiceResult};
use crate::meta::keys;
use crate::meta::{Condition, ErrorKind};

/// What the table says of the current database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VulnDbInfo {
    /// Names the object; changes with each import.
    pub stamp: String,
    /// The newest `modified` time of its records (RFC 3339), as scanners
    /// report "database updated at".
    pub updated_at: String,
    /// When it was imported (Unix milliseconds).
    pub imported_at: i64,
    pub records: u64,
    pub ecosystems: Vec<String>,
}

impl Registry {
    /// Imports OSV records from `paths` (folders of JSON, zips) as the new
    /// database; what was imported and skipped.
    pub async fn import_vulndb(
        &self,
        paths: Vec<std::path::PathBuf>,
    ) -> ServiceResult<(VulnDbInfo, berth_scanner::osv::ImportSummary)> {
        let built = tokio::task::spawn_blocking(move || {
            let limits = berth_scanner::Limits::default();
            let mut builder = berth_scanner::osv::VulnDbBuilder::new(&limits);
            for p in &paths {
                builder.add_path(p)?;
            }
            let (db, summary) = builder.finish();
            Ok::<_, berth_scanner::ScanError>((db.to_bytes()?, summary))
        })
        .await
        .map_err(|e| super::ServiceError::Invalid(e.to_string()))?;
        let (bytes, summary) =
            built.map_err(|e| super::ServiceError::Invalid(format!("importing OSV records: {e}")))?;
        let info = VulnDbInfo {
            stamp: String::new(),
            updated_at: summary.updated_at.clone().unwrap_or_default(),
            imported_at: crate::events::now_ms(),
            records: summary.records_imported,
            ecosystems: summary.ecosystems.keys().cloned().collect(),
        };
        let info = self.replace_vulndb(info, bytes.into()).await?;
        Ok((info, summary))
    }

    /// The current database's description, if one was imported.
    pub async fn vulndb_info(&self) -> ServiceResult<Option<VulnDbInfo>> {
        let (pk, sk) = keys::vulndb();
        self.meta.get(pk, sk).await?.map(|i| from_item(i, "vulnerability database")).transpose()
    }

    /// The current database's bytes (as the scanner crate serialized it).
    pub async fn vulndb_bytes(&self, info: &VulnDbInfo) -> ServiceResult<bytes::Bytes> {
        Ok(self.blobs.get_bytes(&crate::blob::keys::vulndb(&info.stamp)).await?)
    }

    /// Makes `bytes` the current database.
    pub async fn replace_vulndb(&self, mut info: VulnDbInfo, bytes: bytes::Bytes) -> ServiceResult<VulnDbInfo> {
        info.stamp = uuid::Uuid::new_v4().simple().to_string();
        self.blobs.put_bytes(&crate::blob::keys::vulndb(&info.stamp), bytes).await?;
        let old = self.vulndb_info().await?;
        let (pk, sk) = keys::vulndb();
        self.meta.put(to_item(pk, sk, &info, "vulnerability database")?, Condition::Always).await?;
        if let Some(old) = old {
            match self.blobs.delete(&crate::blob::keys::vulndb(&old.stamp)).await {
                Ok(()) => {}
                Err(e) if e.is(ErrorKind::NotFound) => {}
                Err(e) => tracing::warn!(error = %e, "the replaced vulnerability database stays in the store"),
            }
        }
        Ok(info)
    }

    /// A blob's bytes as a stream, read by berth itself (the built-in
    /// scanner reads layers this way; clients get presigned URLs).
    pub async fn read_blob(&self, digest: &crate::oci::Digest) -> ServiceResult<crate::blob::ByteStream> {
        match self.blobs.get(&crate::blob::keys::blob(digest), None).await {
            Ok(read) => Ok(read.body),
            Err(e) if e.is(ErrorKind::NotFound) => Err(super::ServiceError::BlobUnknown(digest.clone())),
            Err(e) => Err(e.into()),
        }
    }
}

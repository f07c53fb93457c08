//! Backups of the metadata (F23, `berth export` / `berth import
//! --metadata`): every live item of the table as one JSON line, read back
//! into another table of either backend.
//!
//! The file is a header line (`{"berth_metadata":1,…}`) and one line per
//! item, `{"pk","sk","attrs"}`, attributes as stored. Blobs are not in it:
//! they live in the object store (the bucket, or the local backend's
//! `blobs` folder), which is backed up with its own tools. The walk is not
//! a snapshot: for a consistent copy, export while the registry is in
//! read-only mode (or stopped). A restore goes into an empty table, unless
//! told to overwrite the items it holds.

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};

use super::{Registry, ServiceError, ServiceResult};
use crate::meta::{Attrs, Condition, Item, keys};

/// Items read per page of the walk.
const PAGE: usize = 500;
/// Items written at once while restoring.
const IN_FLIGHT: usize = 25;
/// The version of the file's format.
const FORMAT: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    berth_metadata: u32,
    exported_at: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Line {
    pk: String,
    sk: String,
    #[serde(default)]
    attrs: Attrs,
}

fn io(e: std::io::Error) -> ServiceError {
    ServiceError::Invalid(format!("the backup file: {e}"))
}

impl Registry {
    /// Writes every live item to `out`; returns how many.
    pub async fn export_metadata(&self, out: &mut (impl AsyncWrite + Unpin)) -> ServiceResult<u64> {
        let header = Header { berth_metadata: FORMAT, exported_at: super::record::rfc3339_ms(crate::events::now_ms()) };
        let mut line = serde_json::to_vec(&header).map_err(|e| ServiceError::Invalid(e.to_string()))?;
        line.push(b'\n');
        out.write_all(&line).await.map_err(io)?;
        let mut after = None;
        let mut count = 0u64;
        loop {
            let page = self.meta.scan(after, PAGE).await?;
            for item in page.items {
                let mut line = serde_json::to_vec(&Line { pk: item.pk, sk: item.sk, attrs: item.attrs })
                    .map_err(|e| ServiceError::Invalid(e.to_string()))?;
                line.push(b'\n');
                out.write_all(&line).await.map_err(io)?;
                count += 1;
            }
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        out.flush().await.map_err(io)?;
        Ok(count)
    }

    /// Whether the table holds nothing but what opening a backend writes
    /// (its schema version and generated token key, which a restore
    /// replaces with the exported ones: sealed secrets open again).
    pub async fn metadata_is_empty(&self) -> ServiceResult<bool> {
        let opened = [keys::schema_version(), keys::token_key()];
        let mut after = None;
        loop {
            let page = self.meta.scan(after, PAGE).await?;
            if page.items.iter().any(|i| !opened.contains(&(i.pk.as_str(), i.sk.as_str()))) {
                return Ok(false);
            }
            match page.next {
                Some(n) => after = Some(n),
                None => return Ok(true),
            }
        }
    }

    /// Reads an export back; returns how many items were written. Refused
    /// into a table that holds items unless `overwrite` (items of the same
    /// keys are then replaced, others kept).
    pub async fn import_metadata(&self, input: impl AsyncBufRead + Unpin, overwrite: bool) -> ServiceResult<u64> {
        if !overwrite && !self.metadata_is_empty().await? {
            return Err(ServiceError::Conflict(
                "the table holds items already: restore into an empty one, or overwrite".to_owned(),
            ));
        }
        let mut lines = input.lines();
        let first = lines.next_line().await.map_err(io)?.unwrap_or_default();
        let header: Header = serde_json::from_str(&first)
            .map_err(|_| ServiceError::Invalid("not a berth metadata export (no header line)".to_owned()))?;
        if header.berth_metadata != FORMAT {
            return Err(ServiceError::Invalid(format!("export format {} is not {FORMAT}", header.berth_metadata)));
        }
        let mut batch: Vec<Item> = Vec::with_capacity(IN_FLIGHT);
        let mut count = 0u64;
        let mut number = 1u64;
        while let Some(text) = lines.next_line().await.map_err(io)? {
            number += 1;
            if text.trim().is_empty() {
                continue;
            }
            let line: Line = serde_json::from_str(&text)
                .map_err(|e| ServiceError::Invalid(format!("line {number} of the export: {e}")))?;
            batch.push(Item { pk: line.pk, sk: line.sk, attrs: line.attrs });
            if batch.len() == IN_FLIGHT {
                self.restore(std::mem::take(&mut batch)).await?;
            }
            count += 1;
        }
        self.restore(batch).await?;
        Ok(count)
    }

    /// Writes items as they are (one put each: a transaction's size limit
    /// would not hold large ones).
    async fn restore(&self, items: Vec<Item>) -> ServiceResult<()> {
        let puts = items.into_iter().map(|item| self.meta.put(item, Condition::Always));
        futures::future::try_join_all(puts).await?;
        Ok(())
    }
}

//! Scans berth makes for another registry (a Harbor, another berth) that
//! registered berth's built-in scanner as a Pluggable Scanner API adapter
//! ([`crate::http::adapter`]).
//!
//! A scan request is an execution of the adapter-scan job
//! ([`crate::jobs::adapter_scan`]) with one task carrying the request; the
//! request's credential for the other registry travels sealed. Its id for
//! the requester is the execution id and a random nonce, so ids can't be
//! guessed to read another requester's report. The report is an object
//! (`reports/adapter-<execution>`); its state is the task's.

use serde::{Deserialize, Serialize};

use super::{Registry, ServiceError, ServiceResult};
use crate::jobs::{Job, Status};
use crate::meta::ErrorKind;

/// The job kind (and vendor type) of scans for other registries.
pub const ADAPTER_SCAN: &str = "ADAPTER_SCAN";

/// A scan request's task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdapterScanTask {
    /// The sealed `ScanRequest` (its registry credential inside).
    pub sealed_request: String,
}

/// Where a scan request is.
#[derive(Debug, Clone, PartialEq)]
pub enum AdapterScanState {
    Running,
    Failed(String),
    /// The report's body and the scan type it is of.
    Ready {
        body: bytes::Bytes,
        scan_type: String,
    },
}

fn report_key(execution: i64) -> String {
    crate::blob::keys::report(&format!("adapter-{execution}"))
}

/// The execution and nonce an id names.
fn parse_id(id: &str) -> Option<(i64, &str)> {
    let (execution, nonce) = id.split_once('-')?;
    if nonce.is_empty() {
        return None;
    }
    Some((execution.parse().ok()?, nonce))
}

impl Registry {
    /// Records a scan request of `scan_type` and queues its scan: the id
    /// the requester polls.
    pub async fn submit_adapter_scan(
        &self,
        job: &dyn Job,
        scan_type: &str,
        sealed_request: String,
    ) -> ServiceResult<String> {
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let mut attrs = serde_json::Map::new();
        attrs.insert("nonce".into(), nonce.clone().into());
        attrs.insert("scan_type".into(), scan_type.into());
        let payload = serde_json::to_value(AdapterScanTask { sealed_request })
            .map_err(|e| ServiceError::Invalid(e.to_string()))?;
        let execution = self.start_execution(job, 0, "MANUAL", attrs, vec![payload]).await?;
        Ok(format!("{execution}-{nonce}"))
    }

    /// Stores a scan request's report.
    pub async fn store_adapter_report(&self, execution: i64, body: bytes::Bytes) -> ServiceResult<()> {
        self.blobs.put_bytes(&report_key(execution), body).await?;
        Ok(())
    }

    /// Where the scan request `id` is; `NotFound` for an id berth did not
    /// give.
    pub async fn adapter_scan_state(&self, id: &str) -> ServiceResult<AdapterScanState> {
        let unknown = || ServiceError::NotFound(format!("scan request {id} is unknown"));
        let (execution, nonce) = parse_id(id).ok_or_else(unknown)?;
        let x = match self.execution(execution).await {
            Ok(x) => x,
            Err(ServiceError::NotFound(_)) => return Err(unknown()),
            Err(e) => return Err(e),
        };
        let attr = |k: &str| x.record.extra_attrs.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
        if x.record.vendor_type != ADAPTER_SCAN || attr("nonce") != nonce {
            return Err(unknown());
        }
        match x.status {
            Status::Success => match self.blobs.get_bytes(&report_key(execution)).await {
                Ok(body) => Ok(AdapterScanState::Ready { body, scan_type: attr("scan_type") }),
                Err(e) if e.is(ErrorKind::NotFound) => Ok(AdapterScanState::Failed("the report is gone".to_owned())),
                Err(e) => Err(e.into()),
            },
            Status::Error | Status::Stopped => Ok(AdapterScanState::Failed(if x.status_message.is_empty() {
                "the scan failed".to_owned()
            } else {
                x.status_message
            })),
            Status::Pending | Status::Running => Ok(AdapterScanState::Running),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_id;

    #[test]
    fn ids_name_an_execution_and_a_nonce() {
        assert_eq!(parse_id("17-abc"), Some((17, "abc")));
        assert_eq!(parse_id("17-"), None);
        assert_eq!(parse_id("x-abc"), None);
        assert_eq!(parse_id("17"), None);
    }
}

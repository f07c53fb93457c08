//! Every object key of the blob store, built here and nowhere else.
//!
//! ```text
//! blobs/<alg>/<first 2 hex>/<hex>      content-addressed blob bytes, one per digest
//! uploads/<upload id>/data             multipart target of an upload session
//! uploads/<upload id>/staging-<n>      bytes of an upload not yet a whole part,
//!                                      one object per append (n = its offset)
//! reports/<report id>                  a scan's whole report as its scanner made it
//! exports/<execution>/<task>.csv       a part of a CVE export (the download joins
//!                                      them in order)
//! vulndb/<stamp>                       an imported vulnerability database (the
//!                                      table names the current one)
//! ```
//! GC lists `blobs/`; abandoned-upload cleanup lists `uploads/`.

use crate::oci::Digest;

pub const BLOBS_PREFIX: &str = "blobs/";
pub const UPLOADS_PREFIX: &str = "uploads/";

pub fn blob(digest: &Digest) -> String {
    let hex = digest.hex();
    format!("{BLOBS_PREFIX}{}/{}/{hex}", digest.algorithm().as_str(), &hex[..2])
}

pub const REPORTS_PREFIX: &str = "reports/";

/// A scan report's body; the id is a UUID berth made.
pub fn report(report_id: &str) -> String {
    format!("{REPORTS_PREFIX}{report_id}")
}

/// The parts of a CVE export.
pub fn export_prefix(execution: i64) -> String {
    format!("exports/{execution}/")
}

pub fn export_part(execution: i64, task: i64) -> String {
    format!("exports/{execution}/{task:016}.csv")
}

pub fn vulndb(stamp: &str) -> String {
    format!("vulndb/{stamp}")
}

pub fn upload_data(upload_id: &str) -> String {
    format!("{UPLOADS_PREFIX}{upload_id}/data")
}

/// Each append writes its own staging object, so a racing append that loses
/// can never overwrite the bytes the winner's session points at.
pub fn upload_staging(upload_id: &str, offset: u64) -> String {
    format!("{UPLOADS_PREFIX}{upload_id}/staging-{offset}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// Every object of an upload session, for cleanup.
pub fn upload_prefix(upload_id: &str) -> String {
    format!("{UPLOADS_PREFIX}{upload_id}/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_keys_fan_out_by_prefix() {
        let d = Digest::sha256_of(b"hello");
        assert_eq!(blob(&d), "blobs/sha256/2c/2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
        assert!(super::super::validate_key(&blob(&d)).is_ok());
        assert!(super::super::validate_key(&upload_data("0f3c")).is_ok());
    }
}

//! Typed records as table items: services keep their records (projects,
//! users, groups, robots) as serde structs, stored attribute for attribute,
//! and read them back through these two functions.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::meta::{ErrorKind, Item};
use crate::port::PortError;

use super::{ServiceError, ServiceResult};

/// The error for an item that does not hold what its key says: a broken
/// store, never the caller's fault.
pub fn corrupt(what: &str) -> ServiceError {
    ServiceError::Backend(PortError::msg(ErrorKind::Internal, format_args!("corrupt {what}")))
}

/// `value` as the item at `pk`/`sk`.
pub fn to_item<T: Serialize>(
    pk: impl Into<String>,
    sk: impl Into<String>,
    value: &T,
    what: &str,
) -> ServiceResult<Item> {
    match serde_json::to_value(value) {
        Ok(Value::Object(attrs)) => Ok(Item { pk: pk.into(), sk: sk.into(), attrs }),
        _ => Err(corrupt(what)),
    }
}

/// The record an item holds.
pub fn from_item<T: DeserializeOwned>(item: Item, what: &str) -> ServiceResult<T> {
    serde_json::from_value(Value::Object(item.attrs)).map_err(|_| corrupt(what))
}

/// Unix milliseconds as RFC 3339 with milliseconds, UTC (`2026-12-05T04:11:07.123Z`).
pub fn rfc3339_ms(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(t).to_string()
}

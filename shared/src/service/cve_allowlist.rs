//! CVE allowlists: the system's (one item) and each project's (kept in the
//! project record). Vulnerabilities they list, until the list expires, do
//! not count against a project's `prevent_vul` severity; a project with
//! `reuse_sys_cve_allowlist` uses the system's instead of its own.

use serde::{Deserialize, Serialize};

use crate::meta::{Condition, Write, now_unix};

use super::record::{from_item, to_item};
use super::{Registry, ServiceError, ServiceResult};
use crate::meta::keys;

/// The most CVE ids one list holds.
const MAX_ITEMS: usize = 1000;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CveAllowlist {
    /// CVE ids, in the order given, each once.
    #[serde(default)]
    pub items: Vec<String>,
    /// Unix seconds after which the list no longer applies; `None`: never.
    /// (Stored under another name: `expires_at` is the table's TTL.)
    #[serde(default, rename = "list_expires_at")]
    pub expires_at: Option<i64>,
    #[serde(default)]
    pub creation_time: i64,
    #[serde(default)]
    pub update_time: i64,
}

impl CveAllowlist {
    /// A list of `items` expiring at `expires_at`, checked as Harbor checks
    /// it: no empty or repeated id.
    pub fn new(items: impl IntoIterator<Item = String>, expires_at: Option<i64>) -> ServiceResult<Self> {
        let mut out: Vec<String> = Vec::new();
        for id in items {
            let id = id.trim().to_owned();
            if id.is_empty() || id.len() > 64 || id.chars().any(char::is_whitespace) {
                return Err(ServiceError::Invalid(format!("invalid CVE id {id:?} in the allowlist")));
            }
            if out.contains(&id) {
                return Err(ServiceError::Invalid(format!("the CVE id {id} is in the allowlist twice")));
            }
            out.push(id);
        }
        if out.len() > MAX_ITEMS {
            return Err(ServiceError::Invalid(format!("an allowlist holds {MAX_ITEMS} CVE ids at most")));
        }
        if expires_at.is_some_and(|t| t < 0) {
            return Err(ServiceError::Invalid("expires_at is a time in Unix seconds".to_owned()));
        }
        Ok(Self { items: out, expires_at: expires_at.filter(|t| *t > 0), creation_time: 0, update_time: 0 })
    }

    pub fn expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|t| t <= now)
    }

    /// Whether the list exempts `cve` at `now`.
    pub fn allows(&self, cve: &str, now: i64) -> bool {
        !self.expired(now) && self.items.iter().any(|i| i == cve)
    }
}

impl Registry {
    /// The system's allowlist (empty until set).
    pub async fn system_cve_allowlist(&self) -> ServiceResult<CveAllowlist> {
        let (pk, sk) = keys::system_cve_allowlist();
        match self.meta.get(pk, sk).await? {
            Some(item) => from_item(item, "CVE allowlist"),
            None => Ok(CveAllowlist::default()),
        }
    }

    /// Replaces the system's allowlist.
    pub async fn set_system_cve_allowlist(&self, mut list: CveAllowlist) -> ServiceResult<CveAllowlist> {
        let old = self.system_cve_allowlist().await?;
        let now = now_unix();
        list.creation_time = if old.creation_time > 0 { old.creation_time } else { now };
        list.update_time = now;
        let (pk, sk) = keys::system_cve_allowlist();
        let item = to_item(pk, sk, &list, "CVE allowlist")?;
        self.meta.transact(vec![Write::Put { item, cond: Condition::Always }]).await?;
        Ok(list)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn lists_are_checked_and_expire() {
        let l = CveAllowlist::new(["CVE-2019-1".to_owned(), " CVE-2020-2 ".to_owned()], Some(100)).unwrap();
        assert_eq!(l.items, ["CVE-2019-1", "CVE-2020-2"]);
        assert!(l.allows("CVE-2020-2", 99) && !l.allows("CVE-2020-2", 100) && !l.allows("CVE-1", 0));
        assert!(CveAllowlist::new(["a".to_owned(), "a".to_owned()], None).is_err());
        assert!(CveAllowlist::new([String::new()], None).is_err());
        assert_eq!(CveAllowlist::new([], Some(0)).unwrap().expires_at, None);
    }

    #[tokio::test]
    async fn the_system_list_is_replaced_whole() {
        let (_dir, reg) = crate::testkit::local_registry().await;
        assert_eq!(reg.system_cve_allowlist().await.unwrap(), CveAllowlist::default());
        let set =
            reg.set_system_cve_allowlist(CveAllowlist::new(["CVE-1".to_owned()], Some(5)).unwrap()).await.unwrap();
        assert_eq!(reg.system_cve_allowlist().await.unwrap(), set);
        reg.set_system_cve_allowlist(CveAllowlist::default()).await.unwrap();
        assert!(reg.system_cve_allowlist().await.unwrap().items.is_empty());
    }
}

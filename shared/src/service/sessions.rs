//! Logged-out portal sessions. A session is a signed token any replica
//! verifies alone (`auth::session`); what the table adds is its end: a
//! logout records the session's id until the latest moment any copy of the
//! session could still be valid, so a copied cookie dies with the logout.

use crate::meta::{Condition, Item, keys};

use super::{Registry, ServiceResult};

impl Registry {
    /// Records that the session `id` was logged out; the record expires at
    /// `until` (Unix seconds), when no copy of the session is valid any more.
    pub async fn revoke_session(&self, id: &str, until: i64) -> ServiceResult<()> {
        let (pk, sk) = keys::session_revoked(id);
        let item = Item::new(pk, sk).with(keys::attr::EXPIRES_AT, until);
        Ok(self.meta.put(item, Condition::Always).await?)
    }

    /// Whether the session `id` was logged out.
    pub async fn session_revoked(&self, id: &str) -> ServiceResult<bool> {
        let (pk, sk) = keys::session_revoked(id);
        Ok(self.meta.get(&pk, &sk).await?.is_some())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[tokio::test]
    async fn logged_out_sessions_are_revoked_until_they_would_expire() {
        let (_dir, registry) = crate::testkit::local_registry().await;
        let now = crate::meta::now_unix();
        assert!(!registry.session_revoked("s1").await.unwrap());
        registry.revoke_session("s1", now + 3600).await.unwrap();
        assert!(registry.session_revoked("s1").await.unwrap());
        assert!(!registry.session_revoked("s2").await.unwrap());
        registry.revoke_session("s3", now - 1).await.unwrap();
        assert!(!registry.session_revoked("s3").await.unwrap(), "the record ends when the session would");
    }
}

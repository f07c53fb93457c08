//! What the registry keeps of OIDC sign-ins: logins under way (their state,
//! nonce and PKCE verifier, consumed once by the callback on any replica),
//! verified identities waiting for their user to pick a name, and which
//! user each provider identity (issuer and subject) was onboarded as.
//! Short-lived records expire through the table's TTL.
//!
//! The protocol itself (discovery, tokens, ID token checks) and the sealing
//! of secrets are `auth::oidc`'s; this module only stores what it hands
//! over, sealed where it must be.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::meta::{Condition, ErrorKind, Write, keys, now_unix};

use super::record::{from_item, to_item};
use super::users::{ExternalUser, Source, User};
use super::{Registry, ServiceError, ServiceResult};

/// How long a login (and a pending onboarding) may take.
pub const LOGIN_TTL_SECS: i64 = 600;

/// A login redirected to the provider, until its callback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingLogin {
    pub nonce: String,
    pub code_verifier: String,
    pub redirect_uri: String,
    /// The local path to land on afterwards.
    pub return_to: String,
}

/// Who the provider says a user is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcIdentity {
    pub iss: String,
    pub sub: String,
    /// The name to onboard with (may be empty: not every provider gives one).
    pub username: String,
    pub email: String,
    /// The groups after `oidc_group_filter`.
    pub groups: Vec<String>,
    /// Member of `oidc_admin_group`.
    pub admin: bool,
}

/// A verified identity waiting for its user to choose a name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingOnboarding {
    pub info: OidcIdentity,
    pub group_ids: Vec<i64>,
    /// The provider's tokens, sealed by `auth::oidc`.
    pub token: String,
    pub return_to: String,
}

/// The OIDC fields of a new user: its identity document (made for the new
/// user id, as it seals the CLI secret to it) and, when the user picked its
/// name, the pending onboarding it consumes.
pub struct NewOidcUser<'a, F> {
    pub user: ExternalUser,
    pub comment: &'a str,
    pub iss: &'a str,
    pub sub: &'a str,
    pub document: F,
    pub onboarding: Option<&'a str>,
}

impl Registry {
    /// Records a login under way by its `state`, for [`LOGIN_TTL_SECS`].
    pub async fn save_oidc_login(&self, state: &str, login: &PendingLogin) -> ServiceResult<()> {
        let (pk, sk) = keys::oidc_state(state);
        let item = to_item(pk, sk, login, "oidc login")?.with(keys::attr::EXPIRES_AT, now_unix() + LOGIN_TTL_SECS);
        Ok(self.meta.put(item, Condition::NotExists).await?)
    }

    /// Consumes the login of a `state`: it works once, on any replica.
    /// `None` when unknown, expired or consumed already.
    pub async fn take_oidc_login(&self, state: &str) -> ServiceResult<Option<PendingLogin>> {
        let (pk, sk) = keys::oidc_state(state);
        let Some(item) = self.meta.get(&pk, &sk).await? else { return Ok(None) };
        let login: PendingLogin = from_item(item, "oidc login")?;
        match self.meta.delete(&pk, &sk, Condition::equals(keys::attr::NONCE, login.nonce.clone())).await {
            Ok(()) => Ok(Some(login)),
            Err(e) if e.is(ErrorKind::ConditionFailed) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Records a verified identity waiting for a name, by its id.
    pub async fn save_oidc_onboarding(&self, id: &str, pending: &PendingOnboarding) -> ServiceResult<()> {
        let (pk, sk) = keys::oidc_onboarding(id);
        let item =
            to_item(pk, sk, pending, "oidc onboarding")?.with(keys::attr::EXPIRES_AT, now_unix() + LOGIN_TTL_SECS);
        Ok(self.meta.put(item, Condition::NotExists).await?)
    }

    /// A pending onboarding; `None` when unknown, expired or consumed.
    pub async fn oidc_onboarding(&self, id: &str) -> ServiceResult<Option<PendingOnboarding>> {
        let (pk, sk) = keys::oidc_onboarding(id);
        self.meta.get(&pk, &sk).await?.map(|i| from_item(i, "oidc onboarding")).transpose()
    }

    /// The user an identity was onboarded as. An identity whose user was
    /// deleted is forgotten, so that it onboards afresh.
    pub async fn oidc_user(&self, iss: &str, sub: &str) -> ServiceResult<Option<User>> {
        let (pk, sk) = keys::oidc_identity(iss, sub);
        let Some(id) = self.meta.get(&pk, &sk).await?.and_then(|i| i.i64(keys::attr::USER_ID)) else {
            return Ok(None);
        };
        let doc = |u: &User, k: &str| u.oidc.as_ref().and_then(|d| d.get(k)).and_then(Value::as_str).map(str::to_owned);
        match self.user(id).await {
            Ok(u)
                if u.source == Source::Oidc
                    && doc(&u, "sub").as_deref() == Some(sub)
                    && doc(&u, "iss").as_deref() == Some(iss) =>
            {
                Ok(Some(u))
            }
            Ok(_) | Err(ServiceError::NotFound(_)) => {
                match self.meta.delete(&pk, &sk, Condition::equals(keys::attr::USER_ID, id)).await {
                    Err(e) if !e.is(ErrorKind::ConditionFailed) => return Err(e.into()),
                    _ => {}
                }
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Creates an OIDC user together with the item finding it by identity
    /// and, when given, the consumption of its pending onboarding, in one
    /// transaction: two logins can never share a name or an identity.
    /// `Conflict` when the name or e-mail address is taken;
    /// `PreconditionFailed` when the identity was onboarded meanwhile or the
    /// pending onboarding is gone.
    pub async fn create_oidc_user<F>(&self, new: NewOidcUser<'_, F>) -> ServiceResult<User>
    where
        F: FnOnce(i64) -> ServiceResult<Value>,
    {
        let NewOidcUser { user, comment, iss, sub, document, onboarding } = new;
        let settings = self.settings().await?;
        let (ipk, isk) = keys::oidc_identity(iss, sub);
        let identity = move |user_id: i64| -> ServiceResult<(Value, Vec<Write>)> {
            let item = crate::meta::Item::new(ipk, isk).with(keys::attr::USER_ID, user_id);
            let mut writes = vec![Write::Put { item, cond: Condition::NotExists }];
            if let Some(id) = onboarding {
                let (pk, sk) = keys::oidc_onboarding(id);
                writes.push(Write::Delete { pk, sk, cond: Condition::Exists });
            }
            Ok((document(user_id)?, writes))
        };
        self.insert_external_user(user, Source::Oidc, comment, settings.robot_prefix(), identity).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn a_login_state_is_consumed_once() {
        let (_dir, registry) = crate::testkit::local_registry().await;
        let login = PendingLogin {
            nonce: "n".into(),
            code_verifier: "v".into(),
            redirect_uri: "http://x/cb".into(),
            return_to: "/".into(),
        };
        registry.save_oidc_login("state1", &login).await.unwrap();
        assert!(registry.save_oidc_login("state1", &login).await.is_err(), "a state is made once");
        assert_eq!(registry.take_oidc_login("state1").await.unwrap(), Some(login));
        assert_eq!(registry.take_oidc_login("state1").await.unwrap(), None, "and consumed once");
        assert_eq!(registry.take_oidc_login("unknown").await.unwrap(), None);
    }
}

//! User groups: LDAP groups (identified by their DN) and OIDC groups (by
//! name) that can be project members. Groups are onboarded when a member of
//! theirs logs in, or created by an administrator; each source identity is
//! onboarded once (an identity item reserves it).

use serde::{Deserialize, Serialize};

use crate::meta::{Condition, ErrorKind, Item, Query, Write, keys};

use super::record::{from_item, to_item};
use super::{Registry, ServiceError, ServiceResult};

/// Harbor's group types.
pub const LDAP_GROUP: i64 = 1;
pub const HTTP_GROUP: i64 = 2;
pub const OIDC_GROUP: i64 = 3;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub id: i64,
    pub group_name: String,
    pub group_type: i64,
    #[serde(default)]
    pub ldap_group_dn: String,
}

impl Group {
    /// What identifies the group in its source.
    fn identity(&self) -> String {
        identity(self.group_type, &self.ldap_group_dn, &self.group_name)
    }
}

/// LDAP groups are identified by DN (compared case-insensitively, as LDAP
/// does), other groups by name.
fn identity(group_type: i64, dn: &str, name: &str) -> String {
    if group_type == LDAP_GROUP { dn.trim().to_lowercase() } else { name.to_owned() }
}

fn group_item(g: &Group) -> ServiceResult<Item> {
    let (pk, sk) = keys::group(g.id);
    to_item(pk, sk, g, "group")
}

fn validate(group_type: i64, name: &str, dn: &str) -> ServiceResult<()> {
    if ![LDAP_GROUP, HTTP_GROUP, OIDC_GROUP].contains(&group_type) {
        return Err(ServiceError::Invalid(format!("group_type {group_type} is not 1 (LDAP), 2 (HTTP) or 3 (OIDC)")));
    }
    if name.trim().is_empty() || name.chars().count() > 255 {
        return Err(ServiceError::Invalid("group_name must be 1 to 255 characters".to_owned()));
    }
    if group_type == LDAP_GROUP && dn.trim().is_empty() {
        return Err(ServiceError::Invalid("an LDAP group needs its ldap_group_dn".to_owned()));
    }
    Ok(())
}

impl Registry {
    /// Creates a group; `Conflict` when its identity is onboarded already.
    pub async fn create_group(&self, group_type: i64, name: &str, dn: &str) -> ServiceResult<Group> {
        validate(group_type, name, dn)?;
        let (cpk, csk) = keys::counters();
        let id = self.meta.add(cpk, csk, "group_id", 1, Condition::Always).await?;
        let group = Group {
            id,
            group_name: name.to_owned(),
            group_type,
            ldap_group_dn: if group_type == LDAP_GROUP { dn.trim().to_owned() } else { String::new() },
        };
        let (kpk, ksk) = keys::group_identity(group_type, &group.identity());
        let (lpk, lsk) = keys::group_entry(id);
        let writes = vec![
            Write::Put { item: Item::new(kpk, ksk).with("id", id), cond: Condition::NotExists },
            Write::Put { item: group_item(&group)?, cond: Condition::NotExists },
            Write::Put { item: Item::new(lpk, lsk).with("id", id), cond: Condition::Always },
        ];
        match self.meta.transact(writes).await {
            Ok(()) => Ok(group),
            Err(e) if e.is(ErrorKind::ConditionFailed) => {
                Err(ServiceError::Conflict(format!("the group {name} exists already")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The group with this source identity (an LDAP DN, an OIDC name), if
    /// onboarded.
    pub async fn group_by_identity(&self, group_type: i64, dn_or_name: &str) -> ServiceResult<Option<Group>> {
        let (pk, sk) = keys::group_identity(group_type, &identity(group_type, dn_or_name, dn_or_name));
        match self.meta.get(&pk, &sk).await?.and_then(|i| i.i64("id")) {
            Some(id) => match self.group(id).await {
                Ok(g) => Ok(Some(g)),
                Err(ServiceError::NotFound(_)) => Ok(None),
                Err(e) => Err(e),
            },
            None => Ok(None),
        }
    }

    /// The group's id, onboarding it first when it is new. Safe under
    /// concurrent logins: one create wins, the others read it.
    pub async fn onboard_group(&self, group_type: i64, dn_or_name: &str, name: &str) -> ServiceResult<Group> {
        loop {
            if let Some(g) = self.group_by_identity(group_type, dn_or_name).await? {
                return Ok(g);
            }
            match self.create_group(group_type, name, dn_or_name).await {
                Err(ServiceError::Conflict(_)) => continue,
                other => return other,
            }
        }
    }

    pub async fn group(&self, id: i64) -> ServiceResult<Group> {
        let (pk, sk) = keys::group(id);
        let item =
            self.meta.get(&pk, &sk).await?.ok_or_else(|| ServiceError::NotFound(format!("group {id} not found")))?;
        from_item(item, "group")
    }

    /// Every group, by id.
    pub async fn list_groups(&self) -> ServiceResult<Vec<Group>> {
        let entries = self.meta.query_all(Query::table(keys::GROUPS, "")).await?;
        let found =
            futures::future::join_all(entries.iter().filter_map(|e| e.i64("id")).map(|id| self.group(id))).await;
        let mut out = Vec::with_capacity(found.len());
        for g in found {
            match g {
                Ok(g) => out.push(g),
                Err(ServiceError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Renames a group (its identity stays).
    pub async fn rename_group(&self, id: i64, name: &str) -> ServiceResult<Group> {
        let mut group = self.group(id).await?;
        validate(group.group_type, name, &group.ldap_group_dn)?;
        group.group_name = name.to_owned();
        self.meta.put(group_item(&group)?, Condition::Exists).await.map_err(|e| {
            if e.is(ErrorKind::ConditionFailed) {
                ServiceError::NotFound(format!("group {id} not found"))
            } else {
                e.into()
            }
        })?;
        Ok(group)
    }

    /// Deletes a group and its project memberships.
    pub async fn delete_group(&self, id: i64) -> ServiceResult<()> {
        let group = self.group(id).await?;
        let (pk, sk) = keys::group(id);
        let (kpk, ksk) = keys::group_identity(group.group_type, &group.identity());
        let (lpk, lsk) = keys::group_entry(id);
        let writes = vec![
            Write::Delete { pk, sk, cond: Condition::Exists },
            Write::Delete { pk: kpk, sk: ksk, cond: Condition::equals("id", id) },
            Write::Delete { pk: lpk, sk: lsk, cond: Condition::Always },
        ];
        match self.meta.transact(writes).await {
            Err(e) if e.is(ErrorKind::ConditionFailed) => {
                return Err(ServiceError::NotFound(format!("group {id} not found")));
            }
            other => other?,
        }
        self.delete_memberships(keys::MemberKind::Group, id).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::testkit::local_registry;

    #[tokio::test]
    async fn groups_are_onboarded_once() {
        let (_dir, reg) = local_registry().await;
        let dn = "cn=devs,ou=groups,dc=example,dc=org";
        let a = reg.onboard_group(LDAP_GROUP, dn, "devs").await.unwrap();
        let b = reg.onboard_group(LDAP_GROUP, &dn.to_uppercase(), "other name").await.unwrap();
        assert_eq!(a, b, "DNs compare case-insensitively");
        assert!(matches!(reg.create_group(LDAP_GROUP, "devs", dn).await, Err(ServiceError::Conflict(_))));
        let oidc = reg.onboard_group(OIDC_GROUP, "devs", "devs").await.unwrap();
        assert_ne!(oidc.id, a.id, "an OIDC group of the same name is another group");
        assert!(matches!(reg.create_group(LDAP_GROUP, "x", "").await, Err(ServiceError::Invalid(_))));
        assert!(matches!(reg.create_group(9, "x", "").await, Err(ServiceError::Invalid(_))));
        reg.rename_group(a.id, "developers").await.unwrap();
        assert_eq!(reg.group(a.id).await.unwrap().group_name, "developers");
        assert_eq!(reg.list_groups().await.unwrap().len(), 2);
        reg.delete_group(a.id).await.unwrap();
        assert!(reg.group_by_identity(LDAP_GROUP, dn).await.unwrap().is_none());
        let again = reg.onboard_group(LDAP_GROUP, dn, "devs").await.unwrap();
        assert_ne!(again.id, a.id);
    }
}

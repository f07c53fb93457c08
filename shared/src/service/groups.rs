//! User groups: LDAP groups (identified by their DN) and OIDC groups (by
//! name) that can be project members. Groups are onboarded when a member of
//! theirs logs in, or created by an administrator; each source identity is
//! onboarded once (an identity item reserves it).

use serde::{Deserialize, Serialize};

use crate::meta::keys::{self, Counted};
use crate::meta::{Condition, ErrorKind, Item, Query, Write};

use super::paging::{Listing, Match, PageRequest, count_write};
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

/// A group's entry in the group list: what list filters test.
fn group_entry(g: &Group) -> ServiceResult<Item> {
    let (pk, sk) = keys::group_entry(g.id);
    to_item(pk, sk, g, "group")
}

/// The filters of a group listing (Harbor's `group_name`, `ldap_group_dn`
/// and `group_type`), each tested on the list's entries.
#[derive(Debug, Clone, Default)]
pub struct GroupFilter {
    pub name: Option<Match>,
    pub ldap_group_dn: Option<String>,
    pub group_type: Option<i64>,
}

impl GroupFilter {
    fn is_empty(&self) -> bool {
        self.name.is_none() && self.ldap_group_dn.is_none() && self.group_type.is_none()
    }

    fn keeps(&self, g: &Group) -> bool {
        self.name.as_ref().is_none_or(|m| m.matches(&g.group_name))
            && self.ldap_group_dn.as_ref().is_none_or(|dn| g.ldap_group_dn.eq_ignore_ascii_case(dn.trim()))
            && self.group_type.is_none_or(|t| g.group_type == t)
    }
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
        let writes = vec![
            Write::Put { item: Item::new(kpk, ksk).with(keys::attr::ID, id), cond: Condition::NotExists },
            Write::Put { item: group_item(&group)?, cond: Condition::NotExists },
            Write::Put { item: group_entry(&group)?, cond: Condition::NotExists },
            count_write(Counted::Groups, &id.to_string(), 1),
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
        match self.meta.get(&pk, &sk).await?.and_then(|i| i.i64(keys::attr::ID)) {
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

    /// A page of groups by id, passing `filter` (tested on the entries).
    pub async fn list_groups(&self, filter: &GroupFilter, req: &PageRequest) -> ServiceResult<Listing<Group>> {
        let query = Query::table(keys::GROUPS, "");
        let keep = |e: &Item| from_item::<Group>(e.clone(), "group").is_ok_and(|g| filter.keeps(&g));
        let (entries, next, total) = self.page_of(query, Counted::Groups, req, !filter.is_empty(), keep).await?;
        let items = entries.into_iter().map(|e| from_item(e, "group")).collect::<ServiceResult<Vec<_>>>()?;
        Ok(Listing { items, total, next })
    }

    /// Renames a group (its identity stays).
    pub async fn rename_group(&self, id: i64, name: &str) -> ServiceResult<Group> {
        let mut group = self.group(id).await?;
        validate(group.group_type, name, &group.ldap_group_dn)?;
        group.group_name = name.to_owned();
        let writes = vec![
            Write::Put { item: group_item(&group)?, cond: Condition::Exists },
            Write::Put { item: group_entry(&group)?, cond: Condition::Exists },
        ];
        self.meta.transact(writes).await.map_err(|e| {
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
            Write::Delete { pk: kpk, sk: ksk, cond: Condition::equals(keys::attr::ID, id) },
            Write::Delete { pk: lpk, sk: lsk, cond: Condition::Exists },
            count_write(Counted::Groups, &id.to_string(), -1),
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
        let all = reg.list_groups(&GroupFilter::default(), &PageRequest::first(10)).await.unwrap();
        assert_eq!((all.items.len(), all.total), (2, 2));
        let named = GroupFilter { name: Some(Match::Fuzzy("DEVELOP".into())), ..GroupFilter::default() };
        let found = reg.list_groups(&named, &PageRequest::first(10)).await.unwrap();
        assert_eq!((found.items[0].id, found.total), (a.id, 1));
        reg.delete_group(a.id).await.unwrap();
        assert!(reg.group_by_identity(LDAP_GROUP, dn).await.unwrap().is_none());
        let again = reg.onboard_group(LDAP_GROUP, dn, "devs").await.unwrap();
        assert_ne!(again.id, a.id);
    }
}

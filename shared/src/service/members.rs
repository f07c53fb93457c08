//! Project members: users and groups holding a role in a project. A member
//! item lives in its project's partition, keyed by the user or group id,
//! and carries gsi1 keys so that the projects of a user or group are one
//! index query. Each member also has a numeric id (`mid`), as Harbor's API
//! addresses members by it.
//!
//! Items carry their project's id: a member of a deleted project never
//! counts for a new project of the same name.

use crate::auth::rbac::Role;
use crate::meta::keys::MemberKind;
use crate::meta::{Condition, ErrorKind, Item, Query, Write, keys};

use super::projects::Project;
use super::record::corrupt;
use super::{Registry, ServiceError, ServiceResult};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: i64,
    pub project_id: i64,
    pub kind: MemberKind,
    pub entity_id: i64,
    pub entity_name: String,
    pub role: Role,
}

/// The item of a member of `project`.
pub fn member_item(project: &str, m: &Member) -> Item {
    let (pk, sk) = keys::member(project, m.kind, m.entity_id);
    Item::new(pk, sk)
        .with("id", m.id)
        .with("project_id", m.project_id)
        .with("entity_type", m.kind.code())
        .with("entity_id", m.entity_id)
        .with("entity_name", m.entity_name.clone())
        .with("role_id", m.role.id())
        .with("gsi1pk", keys::member_of(m.kind, m.entity_id))
        .with("gsi1sk", project)
}

fn member_of(item: &Item) -> ServiceResult<Member> {
    let kind = match item.str("entity_type") {
        Some("u") => MemberKind::User,
        Some("g") => MemberKind::Group,
        _ => return Err(corrupt("member")),
    };
    Ok(Member {
        id: item.i64("id").ok_or_else(|| corrupt("member"))?,
        project_id: item.i64("project_id").ok_or_else(|| corrupt("member"))?,
        kind,
        entity_id: item.i64("entity_id").ok_or_else(|| corrupt("member"))?,
        entity_name: item.str("entity_name").unwrap_or_default().to_owned(),
        role: item.i64("role_id").and_then(Role::from_id).ok_or_else(|| corrupt("member"))?,
    })
}

impl Registry {
    pub(super) async fn next_member_id(&self) -> ServiceResult<i64> {
        let (pk, sk) = keys::counters();
        Ok(self.meta.add(pk, sk, "member_id", 1, Condition::Always).await?)
    }

    /// Adds a user or group to a project; `Conflict` when it is a member
    /// already.
    pub async fn add_member(
        &self,
        project: &Project,
        kind: MemberKind,
        entity_id: i64,
        entity_name: &str,
        role: Role,
    ) -> ServiceResult<Member> {
        let member = Member {
            id: self.next_member_id().await?,
            project_id: project.project_id,
            kind,
            entity_id,
            entity_name: entity_name.to_owned(),
            role,
        };
        let item = member_item(&project.name, &member);
        // A leftover of a deleted project of the same name may be replaced.
        let stale = self.meta.get(&item.pk, &item.sk).await?;
        let cond = match &stale {
            Some(old) if old.i64("project_id") != Some(project.project_id) => {
                Condition::equals("project_id", old.i64("project_id").unwrap_or(0))
            }
            Some(_) => return Err(ServiceError::Conflict("The project member specified already exist".to_owned())),
            None => Condition::NotExists,
        };
        match self.meta.put(item, cond).await {
            Ok(()) => Ok(member),
            Err(e) if e.is(ErrorKind::ConditionFailed) => {
                Err(ServiceError::Conflict("The project member specified already exist".to_owned()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Every member of a project, users first, each by name.
    pub async fn members(&self, project: &Project) -> ServiceResult<Vec<Member>> {
        let (pk, _) = keys::project(&project.name);
        let items = self.meta.query_all(Query::table(pk, keys::MEMBER_PREFIX)).await?;
        let mut out = Vec::with_capacity(items.len());
        for item in &items {
            let m = member_of(item)?;
            if m.project_id == project.project_id {
                out.push(m);
            }
        }
        out.sort_by(|a, b| (a.kind.code() != "u", &a.entity_name).cmp(&(b.kind.code() != "u", &b.entity_name)));
        Ok(out)
    }

    /// A member by its id; `NotFound` when missing.
    pub async fn member(&self, project: &Project, mid: i64) -> ServiceResult<Member> {
        self.members(project)
            .await?
            .into_iter()
            .find(|m| m.id == mid)
            .ok_or_else(|| ServiceError::NotFound(format!("member {mid} not found in project {}", project.name)))
    }

    pub async fn update_member_role(&self, project: &Project, mid: i64, role: Role) -> ServiceResult<()> {
        let mut member = self.member(project, mid).await?;
        member.role = role;
        match self.meta.put(member_item(&project.name, &member), Condition::equals("id", mid)).await {
            Err(e) if e.is(ErrorKind::ConditionFailed) => {
                Err(ServiceError::NotFound(format!("member {mid} not found in project {}", project.name)))
            }
            other => other.map_err(Into::into),
        }
    }

    pub async fn delete_member(&self, project: &Project, mid: i64) -> ServiceResult<()> {
        let member = self.member(project, mid).await?;
        let (pk, sk) = keys::member(&project.name, member.kind, member.entity_id);
        self.meta.delete(&pk, &sk, Condition::equals("id", mid)).await.map_err(Into::into)
    }

    /// The roles a user holds in a project: its own membership and those
    /// of its groups.
    pub async fn roles_in(&self, project: &Project, user_id: i64, group_ids: &[i64]) -> ServiceResult<Vec<Role>> {
        let mut wanted = vec![keys::member(&project.name, MemberKind::User, user_id)];
        wanted.extend(group_ids.iter().map(|g| keys::member(&project.name, MemberKind::Group, *g)));
        let found = futures::future::join_all(wanted.iter().map(|(pk, sk)| self.meta.get(pk, sk))).await;
        let mut roles = Vec::new();
        for item in found {
            if let Some(item) = item?
                && item.i64("project_id") == Some(project.project_id)
                && let Some(role) = item.i64("role_id").and_then(Role::from_id)
            {
                roles.push(role);
            }
        }
        roles.sort_unstable();
        roles.dedup();
        Ok(roles)
    }

    /// The projects (name and id) a user is a member of, directly or
    /// through its groups. Reads an index, so a membership just added may
    /// show a moment later.
    pub async fn member_projects(&self, user_id: i64, group_ids: &[i64]) -> ServiceResult<Vec<(String, i64)>> {
        let mut entities = vec![(MemberKind::User, user_id)];
        entities.extend(group_ids.iter().map(|g| (MemberKind::Group, *g)));
        let found = futures::future::join_all(entities.iter().map(|(k, id)| self.memberships_of(*k, *id))).await;
        let mut projects = Vec::new();
        for items in found {
            projects
                .extend(items?.into_iter().filter_map(|i| Some((i.str("gsi1sk")?.to_owned(), i.i64("project_id")?))));
        }
        projects.sort_unstable();
        projects.dedup();
        Ok(projects)
    }

    /// Removes every membership of a deleted user or group.
    pub(super) async fn delete_memberships(&self, kind: MemberKind, id: i64) -> ServiceResult<()> {
        for item in self.memberships_of(kind, id).await? {
            self.meta.delete(&item.pk, &item.sk, Condition::equals("entity_id", id)).await?;
        }
        Ok(())
    }

    /// Removes the members of a deleted project, 25 at a time.
    pub(super) async fn delete_project_members(&self, project: &Project) -> ServiceResult<()> {
        let (pk, _) = keys::project(&project.name);
        let items = self.meta.query_all(Query::table(pk, keys::MEMBER_PREFIX)).await?;
        for chunk in items.chunks(crate::meta::MAX_TRANSACTION_WRITES) {
            let writes = chunk
                .iter()
                .map(|i| Write::Delete {
                    pk: i.pk.clone(),
                    sk: i.sk.clone(),
                    cond: Condition::equals("project_id", project.project_id),
                })
                .collect();
            match self.meta.transact(writes).await {
                // A member re-added to a new project of the same name meanwhile.
                Err(e) if e.is(ErrorKind::ConditionFailed) => {
                    for i in chunk {
                        match self.meta.delete(&i.pk, &i.sk, Condition::equals("project_id", project.project_id)).await
                        {
                            Err(e) if !e.is(ErrorKind::ConditionFailed) => return Err(e.into()),
                            _ => {}
                        }
                    }
                }
                other => other?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::service::projects::{NewProject, Owner};
    use crate::testkit::local_registry;

    #[tokio::test]
    async fn members_and_roles() {
        let (_dir, reg) = local_registry().await;
        let owner = Owner { id: 5, name: "olga".into() };
        let p = reg.create_project(NewProject { name: "team".into(), ..NewProject::default() }, &owner).await.unwrap();
        let members = reg.members(&p).await.unwrap();
        assert_eq!(members.len(), 1, "the creator is a member");
        assert_eq!((members[0].entity_id, members[0].role), (5, Role::ProjectAdmin));

        let dev = reg.add_member(&p, MemberKind::User, 7, "dave", Role::Developer).await.unwrap();
        assert!(matches!(
            reg.add_member(&p, MemberKind::User, 7, "dave", Role::Guest).await,
            Err(ServiceError::Conflict(_))
        ));
        reg.add_member(&p, MemberKind::Group, 3, "devs", Role::Maintainer).await.unwrap();
        assert_eq!(reg.roles_in(&p, 7, &[]).await.unwrap(), [Role::Developer]);
        assert_eq!(reg.roles_in(&p, 7, &[3]).await.unwrap(), [Role::Developer, Role::Maintainer]);
        assert_eq!(reg.roles_in(&p, 8, &[3, 4]).await.unwrap(), [Role::Maintainer]);
        assert!(reg.roles_in(&p, 8, &[]).await.unwrap().is_empty());

        reg.update_member_role(&p, dev.id, Role::Guest).await.unwrap();
        assert_eq!(reg.roles_in(&p, 7, &[]).await.unwrap(), [Role::Guest]);
        assert_eq!(reg.member_projects(7, &[]).await.unwrap(), [("team".to_owned(), p.project_id)]);
        reg.delete_member(&p, dev.id).await.unwrap();
        assert!(matches!(reg.member(&p, dev.id).await, Err(ServiceError::NotFound(_))));
        assert!(reg.member_projects(7, &[]).await.unwrap().is_empty());

        // A project deleted and made again starts with only its creator.
        reg.delete_project(&crate::service::projects::ProjectRef::Id(p.project_id)).await.unwrap();
        let q = reg.create_project(NewProject { name: "team".into(), ..NewProject::default() }, &owner).await.unwrap();
        assert!(reg.roles_in(&q, 8, &[3]).await.unwrap().is_empty());
        assert_eq!(reg.members(&q).await.unwrap().len(), 1);
    }
}

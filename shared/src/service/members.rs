//! Project members: users and groups holding a role in a project. A member
//! item lives in its project's partition, keyed by the user or group id,
//! and carries gsi1 keys so that the projects of a user or group are one
//! index query. A member's numeric id (`mid`, as Harbor's API addresses
//! members) is derived from its key, so a member is found by id with one
//! read.
//!
//! Items carry their project's id: a member of a deleted project never
//! counts for a new project of the same name. Each project's members are
//! counted (by project id) in the transactions that add and remove them.

use serde::{Deserialize, Serialize};

use crate::events::{Event, EventKind};
use crate::meta::keys::{self, Counted, MemberKind};
use crate::meta::{Condition, ErrorKind, Item, Query, Write};
use crate::rbac::Role;

use super::paging::{Listing, Match, PageRequest, count_write};
use super::projects::Project;
use super::record::{corrupt, from_item, to_item};
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

/// A member as stored (and indexed by gsi1 under its user or group).
#[derive(Debug, Serialize, Deserialize)]
struct MemberRecord {
    project_id: i64,
    entity_type: String,
    entity_id: i64,
    entity_name: String,
    role_id: i64,
    gsi1pk: String,
    /// The project's name: the sort key of a user's or group's projects.
    gsi1sk: String,
}

/// Harbor's member id of a user or group in a project: unique in the
/// project, and the way back to the member's key.
pub fn member_id(kind: MemberKind, entity_id: i64) -> i64 {
    entity_id.saturating_mul(2) + i64::from(kind == MemberKind::Group)
}

/// The member key a member id stands for.
fn entity_of(mid: i64) -> Option<(MemberKind, i64)> {
    (mid > 0).then_some((if mid % 2 == 1 { MemberKind::Group } else { MemberKind::User }, mid / 2))
}

fn not_found(mid: i64, project: &Project) -> ServiceError {
    ServiceError::NotFound(format!("member {mid} not found in project {}", project.name))
}

fn member_item(project: &str, m: &Member) -> ServiceResult<Item> {
    let (pk, sk) = keys::member(project, m.kind, m.entity_id);
    let record = MemberRecord {
        project_id: m.project_id,
        entity_type: m.kind.code().to_owned(),
        entity_id: m.entity_id,
        entity_name: m.entity_name.clone(),
        role_id: m.role.id(),
        gsi1pk: keys::member_of(m.kind, m.entity_id),
        gsi1sk: project.to_owned(),
    };
    to_item(pk, sk, &record, "member")
}

pub(super) fn member_of(item: Item) -> ServiceResult<Member> {
    let r: MemberRecord = from_item(item, "member")?;
    let kind = match r.entity_type.as_str() {
        "u" => MemberKind::User,
        "g" => MemberKind::Group,
        _ => return Err(corrupt("member")),
    };
    Ok(Member {
        id: member_id(kind, r.entity_id),
        project_id: r.project_id,
        kind,
        entity_id: r.entity_id,
        entity_name: r.entity_name,
        role: Role::from_id(r.role_id).ok_or_else(|| corrupt("member"))?,
    })
}

/// The writes adding `m` to `project` (replacing any leftover of a deleted
/// project of the same name), for the transaction that makes a project.
pub(super) fn add_writes(project: &str, m: &Member) -> ServiceResult<Vec<Write>> {
    Ok(vec![
        Write::Put { item: member_item(project, m)?, cond: Condition::Always },
        count_write(Counted::Members(m.project_id), &member_key(m), 1),
    ])
}

/// What a member is counted by in its project's counter.
pub(super) fn member_key(m: &Member) -> String {
    keys::member(&m.project_id.to_string(), m.kind, m.entity_id).1
}

fn member_event(kind: EventKind, reg: &Registry, project: &Project, member: &Member) -> Event {
    Event::about(kind, reg.actor(), Some(&project.name), &member.entity_name).with_detail(format!(
        "{} member {} of project {}",
        kind.audit().map_or("", |a| a.1),
        member.entity_name,
        project.name
    ))
}

impl Registry {
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
            id: member_id(kind, entity_id),
            project_id: project.project_id,
            kind,
            entity_id,
            entity_name: entity_name.to_owned(),
            role,
        };
        let item = member_item(&project.name, &member)?;
        // A leftover of a deleted project of the same name may be replaced.
        let stale = self.meta.get(&item.pk, &item.sk).await?;
        let exists = || ServiceError::Conflict("The project member specified already exist".to_owned());
        let cond = match &stale {
            Some(old) if old.i64(keys::attr::PROJECT_ID) != Some(project.project_id) => {
                Condition::equals(keys::attr::PROJECT_ID, old.i64(keys::attr::PROJECT_ID).unwrap_or(0))
            }
            Some(_) => return Err(exists()),
            None => Condition::NotExists,
        };
        let writes =
            vec![Write::Put { item, cond }, count_write(Counted::Members(project.project_id), &member_key(&member), 1)];
        let event = member_event(EventKind::CreateMember, self, project, &member);
        match self.commit_with_events(writes, vec![event]).await {
            Ok(()) => Ok(member),
            Err(e) if e.is(ErrorKind::ConditionFailed) => Err(exists()),
            Err(e) => Err(e.into()),
        }
    }

    /// A page of a project's members (groups, then users, by id); an
    /// `entityname` filter is tested on each member.
    pub async fn list_members(
        &self,
        project: &Project,
        name: Option<&Match>,
        req: &PageRequest,
    ) -> ServiceResult<Listing<Member>> {
        let (pk, _) = keys::project(&project.name);
        let query = Query::table(pk, keys::MEMBER_PREFIX);
        let pid = project.project_id;
        let keep = |i: &Item| {
            i.i64(keys::attr::PROJECT_ID) == Some(pid)
                && name.is_none_or(|m| m.matches(i.str("entity_name").unwrap_or_default()))
        };
        let (items, next, total) = self.page_of(query, Counted::Members(pid), req, name.is_some(), keep).await?;
        let items = items.into_iter().map(member_of).collect::<ServiceResult<Vec<_>>>()?;
        Ok(Listing { items, total, next })
    }

    /// How many members of each role a project has, for its summary (a
    /// project's members are a few, read at once).
    pub async fn member_roles(&self, project: &Project) -> ServiceResult<Vec<Role>> {
        let (pk, _) = keys::project(&project.name);
        let items = self.meta.query_all(Query::table(pk, keys::MEMBER_PREFIX)).await?;
        Ok(items
            .into_iter()
            .filter(|i| i.i64(keys::attr::PROJECT_ID) == Some(project.project_id))
            .filter_map(|i| member_of(i).ok())
            .map(|m| m.role)
            .collect())
    }

    /// A member by its id; `NotFound` when missing.
    pub async fn member(&self, project: &Project, mid: i64) -> ServiceResult<Member> {
        let (kind, entity_id) = entity_of(mid).ok_or_else(|| not_found(mid, project))?;
        let (pk, sk) = keys::member(&project.name, kind, entity_id);
        let item = self.meta.get(&pk, &sk).await?;
        match item.filter(|i| i.i64(keys::attr::PROJECT_ID) == Some(project.project_id)) {
            Some(item) => member_of(item),
            None => Err(not_found(mid, project)),
        }
    }

    pub async fn update_member_role(&self, project: &Project, mid: i64, role: Role) -> ServiceResult<()> {
        let mut member = self.member(project, mid).await?;
        member.role = role;
        let cond = Condition::equals(keys::attr::PROJECT_ID, project.project_id);
        let writes = vec![Write::Put { item: member_item(&project.name, &member)?, cond }];
        let event = member_event(EventKind::UpdateMember, self, project, &member);
        match self.commit_with_events(writes, vec![event]).await {
            Err(e) if e.is(ErrorKind::ConditionFailed) => Err(not_found(mid, project)),
            other => other.map_err(Into::into),
        }
    }

    pub async fn delete_member(&self, project: &Project, mid: i64) -> ServiceResult<()> {
        let member = self.member(project, mid).await?;
        let (pk, sk) = keys::member(&project.name, member.kind, member.entity_id);
        let writes = vec![
            Write::Delete { pk, sk, cond: Condition::equals(keys::attr::PROJECT_ID, project.project_id) },
            count_write(Counted::Members(project.project_id), &member_key(&member), -1),
        ];
        let event = member_event(EventKind::DeleteMember, self, project, &member);
        match self.commit_with_events(writes, vec![event]).await {
            Err(e) if e.is(ErrorKind::ConditionFailed) => Err(not_found(mid, project)),
            other => other.map_err(Into::into),
        }
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
                && item.i64(keys::attr::PROJECT_ID) == Some(project.project_id)
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
            projects.extend(
                items?
                    .into_iter()
                    .filter_map(|i| Some((i.str(keys::attr::GSI1_SK)?.to_owned(), i.i64(keys::attr::PROJECT_ID)?))),
            );
        }
        projects.sort_unstable();
        projects.dedup();
        Ok(projects)
    }

    /// Removes every membership of a deleted user or group.
    pub(super) async fn delete_memberships(&self, kind: MemberKind, id: i64) -> ServiceResult<()> {
        for item in self.memberships_of(kind, id).await? {
            let Ok(member) = member_of(item.clone()) else { continue };
            let writes = vec![
                Write::Delete { pk: item.pk, sk: item.sk, cond: Condition::equals(keys::attr::ENTITY_ID, id) },
                count_write(Counted::Members(member.project_id), &member_key(&member), -1),
            ];
            match self.meta.transact(writes).await {
                Err(e) if !e.is(ErrorKind::ConditionFailed) => return Err(e.into()),
                _ => {}
            }
        }
        Ok(())
    }

    /// Removes the members of a deleted project, a page at a time.
    pub(super) async fn delete_project_members(&self, project: &Project) -> ServiceResult<()> {
        let (pk, _) = keys::project(&project.name);
        let pid = project.project_id;
        let mut query = Query::table(&pk, keys::MEMBER_PREFIX).limit(100);
        loop {
            let page = self.meta.query(query.clone()).await?;
            for i in page.items.into_iter().filter(|i| i.i64(keys::attr::PROJECT_ID) == Some(pid)) {
                // A member of a new project of the same name stays.
                match self.meta.delete(&i.pk, &i.sk, Condition::equals(keys::attr::PROJECT_ID, pid)).await {
                    Err(e) if !e.is(ErrorKind::ConditionFailed) => return Err(e.into()),
                    _ => {}
                }
            }
            match page.next {
                Some(next) => query.cursor = Some(next),
                None => return Ok(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::service::projects::{NewProject, Owner, ProjectRef};
    use crate::testkit::local_registry;

    #[tokio::test]
    async fn members_and_roles() {
        let (_dir, reg) = local_registry().await;
        let owner = Owner { id: 5, name: "olga".into(), sysadmin: true };
        let p = reg.create_project(NewProject { name: "team".into(), ..NewProject::default() }, &owner).await.unwrap();
        let all = |reg: Registry, p: Project| async move {
            reg.list_members(&p, None, &PageRequest::first(100)).await.unwrap()
        };
        let members = all(reg.clone(), p.clone()).await;
        assert_eq!((members.items.len(), members.total), (1, 1), "the creator is a member");
        assert_eq!((members.items[0].entity_id, members.items[0].role), (5, Role::ProjectAdmin));
        let dev = reg.add_member(&p, MemberKind::User, 7, "dave", Role::Developer).await.unwrap();
        assert!(matches!(
            reg.add_member(&p, MemberKind::User, 7, "dave", Role::Guest).await,
            Err(ServiceError::Conflict(_))
        ));
        let group = reg.add_member(&p, MemberKind::Group, 3, "devs", Role::Maintainer).await.unwrap();
        assert_ne!(group.id, dev.id);
        assert_eq!(reg.member(&p, group.id).await.unwrap().entity_name, "devs");
        assert_eq!(all(reg.clone(), p.clone()).await.total, 3);
        let named = reg.list_members(&p, Some(&Match::Fuzzy("DAV".into())), &PageRequest::first(10)).await.unwrap();
        assert_eq!((named.items.len(), named.total), (1, 1));
        assert_eq!(reg.roles_in(&p, 7, &[]).await.unwrap(), [Role::Developer]);
        assert_eq!(reg.roles_in(&p, 7, &[3]).await.unwrap(), [Role::Developer, Role::Maintainer]);
        assert_eq!(reg.roles_in(&p, 8, &[3, 4]).await.unwrap(), [Role::Maintainer]);
        assert!(reg.roles_in(&p, 8, &[]).await.unwrap().is_empty());
        reg.update_member_role(&p, dev.id, Role::Guest).await.unwrap();
        assert_eq!(reg.roles_in(&p, 7, &[]).await.unwrap(), [Role::Guest]);
        assert_eq!(reg.member_projects(7, &[]).await.unwrap(), [("team".to_owned(), p.project_id)]);
        reg.delete_member(&p, dev.id).await.unwrap();
        assert!(matches!(reg.member(&p, dev.id).await, Err(ServiceError::NotFound(_))));
        assert!(matches!(reg.member(&p, 999_999).await, Err(ServiceError::NotFound(_))));
        assert!(reg.member_projects(7, &[]).await.unwrap().is_empty());
        assert_eq!(all(reg.clone(), p.clone()).await.total, 2);
        // A project deleted and made again starts with only its creator.
        reg.delete_project(&ProjectRef::Id(p.project_id)).await.unwrap();
        let q = reg.create_project(NewProject { name: "team".into(), ..NewProject::default() }, &owner).await.unwrap();
        assert!(reg.roles_in(&q, 8, &[3]).await.unwrap().is_empty());
        let again = all(reg.clone(), q.clone()).await;
        assert_eq!((again.items.len(), again.total), (1, 1));
    }
}

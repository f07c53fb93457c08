//! User accounts: local (database) users with Argon2id passwords, and the
//! users LDAP and OIDC onboard on their first login. The administrator
//! `admin` (user id 1) is created at first start and always signs in with
//! its local password, whatever the auth mode.
//!
//! A user is one item addressed by name, plus an id → name item (the API
//! addresses users by id), an entry in the user list (with the e-mail
//! address, for filters) and, when it has one, an item reserving its e-mail
//! address; all are written in one transaction, with the list's counter.
//! Project memberships point at the user id, so a name freed by a deletion
//! and taken again never inherits the old memberships. A change that takes
//! access away (password, administrator flag, deletion, the groups or
//! secret of a directory user) moves the account epoch in its transaction
//! ([`super::revocation`]).

use serde::{Deserialize, Serialize};

use crate::events::{Event, EventKind};
use crate::meta::keys::{self, Counted};
use crate::meta::{Condition, ErrorKind, Index, Item, Query, Write, now_unix};

use super::paging::{Listing, Match, PageRequest, count_write};
use super::record::{from_item, to_item};
use super::settings::AuthMode;
use super::{Registry, ServiceError, ServiceResult, passwords};

pub const ADMIN: &str = "admin";
pub const ADMIN_ID: i64 = 1;

/// Characters Harbor refuses in user names and real names.
const ILLEGAL_NAME_CHARS: &[char] = &[',', '"', '~', '#', '$', '%'];

/// Where a user's identity comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// A local account with a password in the table.
    Db,
    Ldap,
    Oidc,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    #[serde(default)]
    pub user_id: i64,
    #[serde(alias = "name")]
    pub username: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub realname: String,
    #[serde(default)]
    pub comment: String,
    /// The PHC string of a local user's password; empty for external users.
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub sysadmin: bool,
    /// Whether the user's directory made it an administrator at its last
    /// login (LDAP admin group, OIDC admin group); not the stored flag.
    #[serde(default)]
    pub admin_in_auth: bool,
    #[serde(default = "db_source")]
    pub source: Source,
    /// The user groups the user belonged to at its last login.
    #[serde(default)]
    pub group_ids: Vec<i64>,
    /// The user's entry in LDAP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ldap_dn: Option<String>,
    /// The OIDC identity (`sub` and `iss`) and CLI secret of an OIDC user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc: Option<serde_json::Value>,
    #[serde(default, alias = "created_at")]
    pub creation_time: i64,
    #[serde(default)]
    pub update_time: i64,
}

fn db_source() -> Source {
    Source::Db
}

impl User {
    /// Whether the user administers the whole registry.
    pub fn is_admin(&self) -> bool {
        self.sysadmin || self.admin_in_auth
    }
}

/// What a user is created with.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub username: String,
    pub email: String,
    pub realname: String,
    pub comment: String,
    /// Required for local users; external users have none.
    pub password: Option<String>,
}

/// The fields of an OIDC user its provider keeps current
/// ([`Registry::update_oidc_user`]).
#[derive(Debug, Clone, PartialEq)]
pub struct OidcFields {
    pub group_ids: Vec<i64>,
    pub admin_in_auth: bool,
    pub oidc: serde_json::Value,
}

/// A user as a directory (LDAP, OIDC) describes it at login.
#[derive(Debug, Clone, Default)]
pub struct ExternalUser {
    pub username: String,
    pub email: String,
    pub realname: String,
    pub ldap_dn: Option<String>,
    pub group_ids: Vec<i64>,
    pub admin_in_auth: bool,
}

fn user_item(u: &User) -> ServiceResult<Item> {
    let (pk, sk) = keys::user(&u.username);
    to_item(pk, sk, u, "user")
}

/// A user's entry in the user list: what list filters test.
pub(super) fn user_entry(u: &User) -> Item {
    let (pk, sk) = keys::user_entry(&u.username);
    Item::new(pk, sk).with(keys::attr::USER_ID, u.user_id).with("email", u.email.clone())
}

/// The filters of a user listing (Harbor's `q` on `username` and `email`).
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    pub username: Option<Match>,
    pub email: Option<Match>,
}

/// Whether a password change is the user's own (which needs the current
/// password) or an administrator's reset.
#[derive(Debug, Clone, Copy)]
pub enum PasswordChange<'a> {
    Own { current: &'a str },
    Reset,
}

fn user_of(item: Item) -> ServiceResult<User> {
    let mut user: User = from_item(item, "user")?;
    // The administrator of a store made before users had ids.
    if user.user_id == 0 && user.username == ADMIN {
        user.user_id = ADMIN_ID;
    }
    Ok(user)
}

fn illegal(s: &str) -> bool {
    s.contains(ILLEGAL_NAME_CHARS)
}

/// A plausible e-mail address: one `@`, a non-empty local part without
/// spaces, and a dotted domain.
fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else { return false };
    let domain_ok = domain.split('.').count() >= 2
        && domain.split('.').all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    !local.is_empty()
        && !local.contains(char::is_whitespace)
        && !local.contains(['<', '>', '(', ')', ',', ';', '@'])
        && domain_ok
}

/// Harbor's profile rules.
fn validate_profile(email: &str, realname: &str, comment: &str) -> ServiceResult<()> {
    if email.is_empty() {
        return Err(ServiceError::Invalid("email can't be empty".to_owned()));
    }
    if !valid_email(email) {
        return Err(ServiceError::Invalid("email with illegal format".to_owned()));
    }
    if realname.is_empty() || realname.chars().count() > 255 {
        return Err(ServiceError::Invalid("realname with illegal length".to_owned()));
    }
    if illegal(realname) {
        return Err(ServiceError::Invalid("realname contains illegal characters".to_owned()));
    }
    if comment.chars().count() > 30 {
        return Err(ServiceError::Invalid("comment with illegal length".to_owned()));
    }
    Ok(())
}

pub fn validate_username(name: &str, robot_prefix: &str) -> ServiceResult<()> {
    if name.is_empty() || name.chars().count() > 255 {
        return Err(ServiceError::Invalid("username with illegal length".to_owned()));
    }
    if illegal(name) || name.chars().any(|c| c.is_control() || c == ':') {
        return Err(ServiceError::Invalid("username contains illegal characters".to_owned()));
    }
    if !robot_prefix.is_empty() && name.starts_with(robot_prefix) {
        return Err(ServiceError::Invalid(format!("username cannot start with the robot prefix {robot_prefix}")));
    }
    Ok(())
}

impl Registry {
    /// Creates the `admin` account when it does not exist yet. Returns the
    /// password when one had to be generated (the caller prints it once); an
    /// existing admin is never changed. Safe when several replicas start at
    /// once: the creates are conditional, so exactly one wins.
    pub async fn ensure_admin(&self, configured: Option<&str>) -> ServiceResult<Option<String>> {
        if self.user_by_name(ADMIN).await?.is_some() {
            return Ok(None);
        }
        let (password, generated) = match configured {
            Some(p) => (p.to_owned(), false),
            None => (passwords::generate(20), true),
        };
        let now = now_unix();
        let admin = User {
            user_id: ADMIN_ID,
            username: ADMIN.to_owned(),
            email: String::new(),
            realname: "system admin".to_owned(),
            comment: String::new(),
            password: passwords::hash(&password)?,
            sysadmin: true,
            admin_in_auth: false,
            source: Source::Db,
            group_ids: Vec::new(),
            ldap_dn: None,
            oidc: None,
            creation_time: now,
            update_time: now,
        };
        match self.insert_user(&admin).await {
            Ok(()) => Ok(generated.then_some(password)),
            Err(ServiceError::Conflict(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The writes creating a user with its id, list and e-mail items.
    fn new_user_writes(user: &User) -> ServiceResult<Vec<Write>> {
        let (ipk, isk) = keys::user_id(user.user_id);
        let name = keys::attr::NAME;
        let mut writes = vec![
            Write::Put { item: user_item(user)?, cond: Condition::NotExists },
            Write::Put { item: Item::new(ipk, isk).with(name, user.username.clone()), cond: Condition::NotExists },
            Write::Put { item: user_entry(user), cond: Condition::NotExists },
            count_write(Counted::Users, &user.username, 1),
        ];
        if !user.email.is_empty() {
            let (mpk, msk) = keys::user_email(&user.email);
            writes.push(Write::Put {
                item: Item::new(mpk, msk).with(name, user.username.clone()),
                cond: Condition::NotExists,
            });
        }
        Ok(writes)
    }

    /// Writes a new user with its id, list and e-mail items, or nothing.
    async fn insert_user(&self, user: &User) -> ServiceResult<()> {
        let writes = Self::new_user_writes(user)?;
        let event = Event::about(EventKind::CreateUser, self.actor(), None, &user.username);
        match self.commit_with_events(writes, vec![event]).await {
            Ok(()) => Ok(()),
            Err(e) if e.is(ErrorKind::ConditionFailed) => {
                if self.user_by_name(&user.username).await?.is_some() {
                    Err(ServiceError::Conflict(format!("username {} is already used", user.username)))
                } else {
                    Err(ServiceError::Conflict(format!("email {} is already used", user.email)))
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn next_user_id(&self) -> ServiceResult<i64> {
        let (pk, sk) = keys::counters();
        // Ids above the administrator's.
        Ok(self.meta.add(pk, sk, "user_id", 1, Condition::Always).await? + ADMIN_ID)
    }

    /// Creates a local user (only in `db_auth` mode: a directory keeps the
    /// users otherwise). The password must meet the policy; `Conflict` when
    /// the name or e-mail address is taken.
    pub async fn create_local_user(&self, new: NewUser) -> ServiceResult<User> {
        let settings = self.settings().await?;
        if settings.auth_mode != AuthMode::Db {
            return Err(ServiceError::Forbidden(format!(
                "creating local user is not allowed under auth mode: {}",
                settings.auth_mode
            )));
        }
        self.create_user(new, Source::Db, settings.robot_prefix()).await
    }

    /// Creates a user. Local users need a password meeting the policy;
    /// `Conflict` when the name or e-mail address is taken.
    pub async fn create_user(&self, new: NewUser, source: Source, robot_prefix: &str) -> ServiceResult<User> {
        validate_username(&new.username, robot_prefix)?;
        validate_profile(&new.email, &new.realname, &new.comment)?;
        let password = match (source, &new.password) {
            (Source::Db, Some(p)) => {
                passwords::check_policy(p)?;
                passwords::hash(p)?
            }
            (Source::Db, None) => return Err(ServiceError::Invalid("password is required".to_owned())),
            _ => String::new(),
        };
        if self.user_by_name(&new.username).await?.is_some() {
            return Err(ServiceError::Conflict(format!("username {} is already used", new.username)));
        }
        let now = now_unix();
        let user = User {
            user_id: self.next_user_id().await?,
            username: new.username,
            email: new.email,
            realname: new.realname,
            comment: new.comment,
            password,
            sysadmin: false,
            admin_in_auth: false,
            source,
            group_ids: Vec::new(),
            ldap_dn: None,
            oidc: None,
            creation_time: now,
            update_time: now,
        };
        self.insert_user(&user).await?;
        Ok(user)
    }

    /// Creates or refreshes the user a directory vouched for at login:
    /// e-mail, real name, groups and directory admin role follow the
    /// directory. A missing or taken e-mail address is left out rather than
    /// failing the login.
    pub async fn onboard_user(&self, ext: ExternalUser, source: Source) -> ServiceResult<User> {
        loop {
            if let Some(mut user) = self.user_by_name(&ext.username).await? {
                if user.source != source {
                    return Err(ServiceError::Conflict(format!(
                        "user {} exists already and does not come from {source:?}",
                        user.username
                    )));
                }
                let before = user.clone();
                user.realname = if ext.realname.is_empty() { user.realname } else { ext.realname.clone() };
                user.group_ids = ext.group_ids.clone();
                user.admin_in_auth = ext.admin_in_auth;
                if ext.ldap_dn.is_some() {
                    user.ldap_dn = ext.ldap_dn.clone();
                }
                // A changed address follows the directory when it is valid
                // and free; otherwise the old one stays.
                let new_email = valid_email(&ext.email)
                    && !ext.email.eq_ignore_ascii_case(&user.email)
                    && !self.email_taken(&ext.email).await?;
                if new_email {
                    user.email = ext.email.clone();
                }
                if user == before {
                    return Ok(user);
                }
                user.update_time = now_unix().max(before.update_time + 1);
                let mut writes = vec![Write::Put {
                    item: user_item(&user)?,
                    cond: Condition::equals(keys::attr::UPDATE_TIME, before.update_time),
                }];
                let revokes = user.group_ids != before.group_ids || user.admin_in_auth != before.admin_in_auth;
                if revokes {
                    writes.push(self.epoch.bump());
                }
                if new_email {
                    writes.push(Write::Put { item: user_entry(&user), cond: Condition::Always });
                    let (npk, nsk) = keys::user_email(&user.email);
                    let reserve = Item::new(npk, nsk).with(keys::attr::NAME, user.username.clone());
                    writes.push(Write::Put { item: reserve, cond: Condition::NotExists });
                    if !before.email.is_empty() {
                        let (opk, osk) = keys::user_email(&before.email);
                        writes.push(Write::Delete { pk: opk, sk: osk, cond: Condition::Always });
                    }
                }
                match self.meta.transact(writes).await {
                    Ok(()) => {
                        if revokes {
                            self.epoch.changed_here();
                        }
                        return Ok(user);
                    }
                    // Changed meanwhile, or the address was just taken: look again.
                    Err(e) if e.is(ErrorKind::ConditionFailed) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            validate_username(&ext.username, "")?;
            let email_ok = valid_email(&ext.email) && !self.email_taken(&ext.email).await?;
            let now = now_unix();
            let user = User {
                user_id: self.next_user_id().await?,
                username: ext.username.clone(),
                email: if email_ok { ext.email.clone() } else { String::new() },
                realname: if ext.realname.is_empty() { ext.username.clone() } else { ext.realname.clone() },
                comment: String::new(),
                password: String::new(),
                sysadmin: false,
                admin_in_auth: ext.admin_in_auth,
                source,
                group_ids: ext.group_ids.clone(),
                ldap_dn: ext.ldap_dn.clone(),
                oidc: None,
                creation_time: now,
                update_time: now,
            };
            match self.insert_user(&user).await {
                Ok(()) => return Ok(user),
                // Another login of the same user won the race: refresh it.
                Err(ServiceError::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    async fn email_taken(&self, email: &str) -> ServiceResult<bool> {
        let (pk, sk) = keys::user_email(email);
        Ok(self.meta.get(&pk, &sk).await?.is_some())
    }

    pub async fn user_by_name(&self, name: &str) -> ServiceResult<Option<User>> {
        let (pk, sk) = keys::user(name);
        self.meta.get(&pk, sk).await?.map(user_of).transpose()
    }

    /// A user by id; `NotFound` when missing.
    pub async fn user(&self, id: i64) -> ServiceResult<User> {
        let not_found = || ServiceError::NotFound(format!("user {id} not found"));
        let name = if id == ADMIN_ID {
            ADMIN.to_owned()
        } else {
            let (pk, sk) = keys::user_id(id);
            let item = self.meta.get(&pk, &sk).await?.ok_or_else(not_found)?;
            item.str(keys::attr::NAME).map(str::to_owned).ok_or_else(not_found)?
        };
        self.user_by_name(&name).await?.filter(|u| u.user_id == id).ok_or_else(not_found)
    }

    /// A page of users in name order. A `username` filter is tested on the
    /// list's keys, an `email` filter on its entries; either makes the total
    /// a count of the walk rather than the list's counter.
    pub async fn list_users(&self, filter: &UserFilter, req: &PageRequest) -> ServiceResult<Listing<User>> {
        let filtered = filter.username.is_some() || filter.email.is_some();
        let query = Query::table(keys::USERS, "");
        let keep = |e: &Item| {
            filter.username.as_ref().is_none_or(|m| m.matches(&e.sk))
                && filter.email.as_ref().is_none_or(|m| m.matches(e.str("email").unwrap_or_default()))
        };
        let (entries, next, total) = self.page_of(query, Counted::Users, req, filtered, keep).await?;
        let found = futures::future::join_all(entries.iter().map(|e| self.user_by_name(&e.sk))).await;
        let mut items = Vec::with_capacity(found.len());
        for u in found {
            // A user deleted between the listing and the read is left out.
            items.extend(u?);
        }
        Ok(Listing { items, total, next })
    }

    /// Applies `change` to a user and stores it, retrying on a concurrent
    /// update. Extra writes (an e-mail move) go in the same transaction; a
    /// change that `revokes` access moves the account epoch too.
    async fn change_user(
        &self,
        id: i64,
        revokes: bool,
        change: impl Fn(&mut User) -> ServiceResult<Vec<Write>>,
    ) -> ServiceResult<User> {
        self.change_user_as(id, revokes, true, change).await
    }

    /// [`Self::change_user`], raising an `UPDATE_USER` event when
    /// `audited` (a change made through the API, not a login's refresh).
    async fn change_user_as(
        &self,
        id: i64,
        revokes: bool,
        audited: bool,
        change: impl Fn(&mut User) -> ServiceResult<Vec<Write>>,
    ) -> ServiceResult<User> {
        loop {
            let mut user = self.user(id).await?;
            let stamp = user.update_time;
            let extra = change(&mut user)?;
            user.update_time = now_unix().max(stamp + 1);
            let mut writes =
                vec![Write::Put { item: user_item(&user)?, cond: Condition::equals(keys::attr::UPDATE_TIME, stamp) }];
            writes.extend(extra);
            if revokes {
                writes.push(self.epoch.bump());
            }
            let events = if audited {
                vec![Event::about(EventKind::UpdateUser, self.actor(), None, &user.username)]
            } else {
                Vec::new()
            };
            match self.commit_with_events(writes, events).await {
                Ok(()) => {
                    if revokes {
                        self.epoch.changed_here();
                    }
                    return Ok(user);
                }
                Err(e) if e.is(ErrorKind::ConditionFailed) => {
                    let now = self.user(id).await?;
                    if now.update_time == stamp {
                        // The user did not change: an extra write's condition
                        // failed (the e-mail address is taken).
                        return Err(ServiceError::Conflict("email is already used".to_owned()));
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Fails unless the user's account may be changed through the registry:
    /// any in `db_auth` mode; under a directory, which keeps the others,
    /// only the local administrator's.
    pub async fn require_changeable(&self, id: i64) -> ServiceResult<()> {
        if self.settings().await?.auth_mode == AuthMode::Db || id == ADMIN_ID {
            Ok(())
        } else {
            Err(ServiceError::Forbidden(format!("User with ID {id} can't be updated")))
        }
    }

    /// Changes e-mail, real name and comment.
    pub async fn update_profile(&self, id: i64, email: &str, realname: &str, comment: &str) -> ServiceResult<User> {
        validate_profile(email, realname, comment)?;
        self.require_changeable(id).await?;
        self.change_user(id, false, |user| {
            let mut writes = Vec::new();
            if !user.email.eq_ignore_ascii_case(email) {
                let (npk, nsk) = keys::user_email(email);
                writes.push(Write::Put {
                    item: Item::new(npk, nsk).with(keys::attr::NAME, user.username.clone()),
                    cond: Condition::NotExists,
                });
                if !user.email.is_empty() {
                    let (opk, osk) = keys::user_email(&user.email);
                    writes.push(Write::Delete { pk: opk, sk: osk, cond: Condition::Always });
                }
            }
            user.email = email.to_owned();
            user.realname = realname.to_owned();
            user.comment = comment.to_owned();
            writes.push(Write::Put { item: user_entry(user), cond: Condition::Always });
            Ok(writes)
        })
        .await
    }

    /// Sets a local user's password (the policy applies; the same password
    /// again is refused). A user changing its own must give the current one.
    pub async fn change_password(&self, id: i64, change: PasswordChange<'_>, new: &str) -> ServiceResult<()> {
        self.require_changeable(id).await?;
        if let PasswordChange::Own { current } = change {
            let me = self.user(id).await?;
            if self.verify_password(&me.username, current).await?.is_none() {
                return Err(ServiceError::Forbidden("Current password is incorrect".to_owned()));
            }
        }
        self.set_password(id, new).await
    }

    /// Sets a local user's password, with no check of who asks (the
    /// offline `berth admin password`).
    pub async fn set_password(&self, id: i64, new: &str) -> ServiceResult<()> {
        passwords::check_policy(new)?;
        let user = self.user(id).await?;
        if user.source != Source::Db {
            return Err(ServiceError::PreconditionFailed(format!(
                "the password of {} is kept by its directory",
                user.username
            )));
        }
        if passwords::verify(new, Some(user.password.clone())).await? {
            return Err(ServiceError::Invalid("New password is identical to old password".to_owned()));
        }
        let phc = passwords::hash(new)?;
        self.change_user(id, true, |u| {
            u.password = phc.clone();
            Ok(Vec::new())
        })
        .await
        .map(|_| ())
    }

    pub async fn set_sysadmin(&self, id: i64, sysadmin: bool) -> ServiceResult<()> {
        self.change_user(id, true, |u| {
            u.sysadmin = sysadmin;
            Ok(Vec::new())
        })
        .await
        .map(|_| ())
    }

    /// Replaces the OIDC identity document of a user.
    pub async fn set_oidc_identity(&self, id: i64, oidc: serde_json::Value) -> ServiceResult<User> {
        self.change_user_as(id, true, false, |u| {
            u.oidc = Some(oidc.clone());
            Ok(Vec::new())
        })
        .await
    }

    /// Creates a directory user together with the writes `prepare` returns
    /// for the new user id (for OIDC: the item naming it by its provider
    /// identity, the pending onboarding it consumes) in one transaction, so
    /// two logins can never share a name or an identity. `prepare` also
    /// makes the user's identity document. An e-mail address already in use
    /// is left out. `Conflict` when the name is taken; `PreconditionFailed`
    /// when another write's condition failed.
    pub(super) async fn insert_external_user(
        &self,
        ext: ExternalUser,
        source: Source,
        comment: &str,
        robot_prefix: &str,
        prepare: impl FnOnce(i64) -> ServiceResult<(serde_json::Value, Vec<Write>)>,
    ) -> ServiceResult<User> {
        validate_username(&ext.username, robot_prefix)?;
        if self.user_by_name(&ext.username).await?.is_some() {
            return Err(ServiceError::Conflict(format!("username {} is already used", ext.username)));
        }
        let email_ok = valid_email(&ext.email) && !self.email_taken(&ext.email).await?;
        let now = now_unix();
        let user_id = self.next_user_id().await?;
        let (document, extra) = prepare(user_id)?;
        let user = User {
            user_id,
            username: ext.username.clone(),
            email: if email_ok { ext.email.clone() } else { String::new() },
            realname: if ext.realname.is_empty() { ext.username.clone() } else { ext.realname.clone() },
            comment: comment.to_owned(),
            password: String::new(),
            sysadmin: false,
            admin_in_auth: ext.admin_in_auth,
            source,
            group_ids: ext.group_ids.clone(),
            ldap_dn: ext.ldap_dn.clone(),
            oidc: Some(document),
            creation_time: now,
            update_time: now,
        };
        let mut writes = Self::new_user_writes(&user)?;
        writes.extend(extra);
        match self.meta.transact(writes).await {
            Ok(()) => Ok(user),
            Err(e) if e.is(ErrorKind::ConditionFailed) => {
                if self.user_by_name(&user.username).await?.is_some() {
                    Err(ServiceError::Conflict(format!("username {} is already used", user.username)))
                } else if !user.email.is_empty() && self.email_taken(&user.email).await? {
                    Err(ServiceError::Conflict(format!("email {} is already used", user.email)))
                } else {
                    Err(ServiceError::PreconditionFailed("the login changed meanwhile".to_owned()))
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Changes what an OIDC login or CLI check refreshes on an OIDC user:
    /// its groups, its admin role in the provider and its identity
    /// document. `change` may run more than once (on a concurrent update it
    /// is applied again to the fresh user). `NotFound` for other users.
    pub async fn update_oidc_user(
        &self,
        id: i64,
        change: impl Fn(&mut OidcFields) -> ServiceResult<()>,
    ) -> ServiceResult<User> {
        self.change_user_as(id, true, false, |user| {
            let Some(oidc) = user.oidc.clone().filter(|_| user.source == Source::Oidc) else {
                return Err(ServiceError::NotFound(format!("oidc info for user {id} not found")));
            };
            let mut fields = OidcFields { group_ids: user.group_ids.clone(), admin_in_auth: user.admin_in_auth, oidc };
            change(&mut fields)?;
            user.group_ids = fields.group_ids;
            user.admin_in_auth = fields.admin_in_auth;
            user.oidc = Some(fields.oidc);
            Ok(Vec::new())
        })
        .await
    }

    /// Checks a local user's password; `None` for a wrong password, an
    /// unknown user or a user whose password is kept elsewhere, all at the
    /// same cost.
    pub async fn verify_password(&self, name: &str, password: &str) -> ServiceResult<Option<User>> {
        let user = self.user_by_name(name).await?.filter(|u| u.source == Source::Db && !u.password.is_empty());
        let phc = user.as_ref().map(|u| u.password.clone());
        Ok(if passwords::verify(password, phc).await? { user } else { None })
    }

    /// Deletes a user and its project memberships. Neither the
    /// administrator nor the user asking (`by`) can be deleted.
    pub async fn delete_user(&self, id: i64, by: Option<i64>) -> ServiceResult<()> {
        if id == ADMIN_ID || by == Some(id) {
            return Err(ServiceError::Forbidden(format!("User with ID {id} cannot be deleted")));
        }
        let user = self.user(id).await?;
        let (pk, sk) = keys::user(&user.username);
        let (ipk, isk) = keys::user_id(id);
        let (epk, esk) = keys::user_entry(&user.username);
        let mut writes = vec![
            Write::Delete { pk, sk: sk.to_owned(), cond: Condition::equals(keys::attr::USER_ID, id) },
            Write::Delete { pk: ipk, sk: isk, cond: Condition::Always },
            Write::Delete { pk: epk, sk: esk, cond: Condition::Exists },
            count_write(Counted::Users, &user.username, -1),
            self.epoch.bump(),
        ];
        if !user.email.is_empty() {
            let (mpk, msk) = keys::user_email(&user.email);
            let cond = Condition::equals(keys::attr::NAME, user.username.clone());
            writes.push(Write::Delete { pk: mpk, sk: msk, cond });
        }
        let event = Event::about(EventKind::DeleteUser, self.actor(), None, &user.username);
        match self.commit_with_events(writes, vec![event]).await {
            Err(e) if e.is(ErrorKind::ConditionFailed) => {
                return Err(ServiceError::NotFound(format!("user {id} not found")));
            }
            other => other?,
        }
        self.epoch.changed_here();
        self.delete_memberships(keys::MemberKind::User, id).await
    }

    /// Whether any user besides the administrator exists (the auth mode
    /// can only change while none does).
    pub async fn has_other_users(&self) -> ServiceResult<bool> {
        let mut query = Query::table(keys::USERS, "").limit(2);
        loop {
            let page = self.meta.query(query.clone()).await?;
            if page.items.iter().any(|i| i.sk != ADMIN) {
                return Ok(true);
            }
            match page.next {
                Some(next) => query.cursor = Some(next),
                None => return Ok(false),
            }
        }
    }

    /// Every membership of a user or group (gsi1). A user's or group's
    /// projects are few (a partition of its own), so this reads them all.
    pub(super) async fn memberships_of(&self, kind: keys::MemberKind, id: i64) -> ServiceResult<Vec<Item>> {
        Ok(self.meta.query_all(Query::index(Index::Gsi1, keys::member_of(kind, id), "")).await?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::testkit::local_registry;

    fn new_user(name: &str, email: &str) -> NewUser {
        NewUser {
            username: name.to_owned(),
            email: email.to_owned(),
            realname: name.to_owned(),
            comment: String::new(),
            password: Some("Passw0rdX".to_owned()),
        }
    }

    #[tokio::test]
    async fn admin_is_created_once() {
        let (_dir, reg) = local_registry().await;
        assert_eq!(reg.ensure_admin(Some("Harbor12345")).await.unwrap(), None);
        assert!(reg.verify_password(ADMIN, "Harbor12345").await.unwrap().is_some());
        assert!(reg.verify_password(ADMIN, "wrong").await.unwrap().is_none());
        assert!(reg.verify_password("nobody", "Harbor12345").await.unwrap().is_none());
        assert_eq!(reg.ensure_admin(Some("Other12345")).await.unwrap(), None);
        assert!(reg.verify_password(ADMIN, "Harbor12345").await.unwrap().is_some(), "an existing admin is kept");
        assert_eq!(reg.user(ADMIN_ID).await.unwrap().username, ADMIN);
    }

    #[tokio::test]
    async fn generated_password_is_returned_once() {
        let (_dir, reg) = local_registry().await;
        let pw = reg.ensure_admin(None).await.unwrap().unwrap();
        assert_eq!(pw.len(), 20);
        assert!(reg.verify_password(ADMIN, &pw).await.unwrap().is_some());
        assert_eq!(reg.ensure_admin(None).await.unwrap(), None);
    }

    #[tokio::test]
    async fn users_lifecycle() {
        let (_dir, reg) = local_registry().await;
        reg.ensure_admin(Some("Harbor12345")).await.unwrap();
        assert!(!reg.has_other_users().await.unwrap());
        let alice = reg.create_user(new_user("alice", "alice@example.com"), Source::Db, "robot$").await.unwrap();
        assert!(alice.user_id > ADMIN_ID);
        assert!(reg.has_other_users().await.unwrap());
        assert!(matches!(
            reg.create_user(new_user("alice", "other@example.com"), Source::Db, "robot$").await,
            Err(ServiceError::Conflict(_))
        ));
        assert!(matches!(
            reg.create_user(new_user("bob", "ALICE@example.com"), Source::Db, "robot$").await,
            Err(ServiceError::Conflict(_))
        ));
        assert!(reg.user_by_name("bob").await.unwrap().is_none(), "a refused create leaves nothing");
        for bad in [new_user("robot$x", "x@example.com"), new_user("a,b", "ab@example.com"), new_user("c", "nope")] {
            assert!(matches!(reg.create_user(bad, Source::Db, "robot$").await, Err(ServiceError::Invalid(_))));
        }
        let mut weak = new_user("weak", "weak@example.com");
        weak.password = Some("password".to_owned());
        assert!(matches!(reg.create_user(weak, Source::Db, "robot$").await, Err(ServiceError::Invalid(_))));

        let bob = reg.create_user(new_user("bob", "bob@example.com"), Source::Db, "robot$").await.unwrap();
        assert!(matches!(
            reg.update_profile(bob.user_id, "alice@example.com", "Bob", "").await,
            Err(ServiceError::Conflict(_))
        ));
        reg.update_profile(bob.user_id, "bob2@example.com", "Bob", "hi").await.unwrap();
        // The old address is free again, the new one taken.
        reg.update_profile(alice.user_id, "bob@example.com", "Alice", "").await.unwrap();
        assert_eq!(reg.user(bob.user_id).await.unwrap().email, "bob2@example.com");

        assert!(matches!(reg.set_password(bob.user_id, "Passw0rdX").await, Err(ServiceError::Invalid(_))));
        reg.set_password(bob.user_id, "NewPassw0rd").await.unwrap();
        assert!(reg.verify_password("bob", "NewPassw0rd").await.unwrap().is_some());
        assert!(reg.verify_password("bob", "Passw0rdX").await.unwrap().is_none());

        let all = reg.list_users(&UserFilter::default(), &PageRequest::first(10)).await.unwrap();
        let names: Vec<&str> = all.items.iter().map(|u| u.username.as_str()).collect();
        assert_eq!((names, all.total), (vec!["admin", "alice", "bob"], 3));
        let filter = UserFilter { email: Some(Match::Fuzzy("BOB2".into())), ..UserFilter::default() };
        let found = reg.list_users(&filter, &PageRequest::first(10)).await.unwrap();
        assert_eq!((found.items.len(), found.items[0].username.as_str(), found.total), (1, "bob", 1));
        assert!(matches!(reg.delete_user(bob.user_id, Some(bob.user_id)).await, Err(ServiceError::Forbidden(_))));
        reg.delete_user(bob.user_id, Some(ADMIN_ID)).await.unwrap();
        assert_eq!(reg.list_users(&UserFilter::default(), &PageRequest::first(10)).await.unwrap().total, 2);
        assert!(matches!(reg.user(bob.user_id).await, Err(ServiceError::NotFound(_))));
        assert!(matches!(reg.delete_user(ADMIN_ID, None).await, Err(ServiceError::Forbidden(_))));
        // The name and address are free again, under a new id.
        let bob2 = reg.create_user(new_user("bob", "bob2@example.com"), Source::Db, "robot$").await.unwrap();
        assert_ne!(bob2.user_id, bob.user_id);
    }

    #[tokio::test]
    async fn onboarding_creates_then_refreshes() {
        let (_dir, reg) = local_registry().await;
        let ext = ExternalUser {
            username: "carol".into(),
            email: "carol@example.com".into(),
            realname: "Carol".into(),
            ldap_dn: Some("uid=carol,ou=people,dc=example,dc=org".into()),
            group_ids: vec![7],
            admin_in_auth: false,
        };
        let first = reg.onboard_user(ext.clone(), Source::Ldap).await.unwrap();
        assert!(first.password.is_empty() && first.group_ids == [7]);
        assert!(reg.verify_password("carol", "").await.unwrap().is_none(), "no local password");
        let again =
            reg.onboard_user(ExternalUser { group_ids: vec![8], admin_in_auth: true, ..ext.clone() }, Source::Ldap);
        let again = again.await.unwrap();
        assert_eq!(again.user_id, first.user_id);
        assert!(again.is_admin() && again.group_ids == [8]);
        // A new address follows the directory, and frees the old one.
        let moved = ExternalUser { email: "carol@example.org".into(), ..ext.clone() };
        assert_eq!(reg.onboard_user(moved, Source::Ldap).await.unwrap().email, "carol@example.org");
        let other = NewUser { email: "carol@example.com".into(), ..new_user("dora", "") };
        reg.create_user(other, Source::Db, "robot$").await.unwrap();
        // One that another user holds is not taken over.
        let taken = ExternalUser { email: "dora@example.net".into(), ..ext.clone() };
        let dora = NewUser { email: "dora@example.net".into(), ..new_user("dora2", "") };
        reg.create_user(dora, Source::Db, "robot$").await.unwrap();
        assert_eq!(reg.onboard_user(taken, Source::Ldap).await.unwrap().email, "carol@example.org");
    }
}

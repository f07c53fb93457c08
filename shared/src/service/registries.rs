//! Registry endpoints (Harbor's `/registries`): the other registries berth
//! replicates to and from and proxy-caches, each with its type (Harbor's
//! adapter names, [`crate::remote::adapter`]), address, credentials and
//! TLS switch.
//!
//! An endpoint is a record with a name reserved for it and an entry in
//! the list partition (a copy of the record, so a page is one query),
//! numbered by the table's id counter. The access secret is sealed
//! ([`crate::auth::seal`]) under the endpoint's id and opened only to talk
//! to the registry ([`Registry::registry_endpoint_target`]); nothing shows
//! it. What uses an endpoint (replication policies, proxy-cache projects)
//! counts itself in with [`registry_endpoint_use`] in the transaction that
//! makes the use, and out the same way; an endpoint in use is not deleted.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::paging::{Listing, Match, PageRequest, count_write};
use super::record::{from_item, to_item};
use super::{Registry, ServiceError, ServiceResult};
use crate::events::now_ms;
use crate::meta::keys::{self, Counted};
use crate::meta::{Condition, ErrorKind, Item, Query, Write};
use crate::remote::adapter::{self, Target};

pub const HEALTHY: &str = "healthy";
pub const UNHEALTHY: &str = "unhealthy";
/// The status of an endpoint never pinged.
pub const UNKNOWN: &str = "unknown";

const MAX_NAME: usize = 255;
const MAX_DESCRIPTION: usize = 1024;
/// How long a call to an endpoint may take (pings, listings).
pub const ENDPOINT_TIMEOUT: Duration = Duration::from_secs(30);
/// How often every endpoint's status is checked (Harbor's regular health
/// check).
pub const HEALTH_EVERY_MS: i64 = 5 * 60 * 1000;
/// How long one endpoint's regular check may take.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(10);
/// The schedule slot of the regular check.
const HEALTH_CHECK: &str = "REGISTRY_HEALTH";

/// A registry endpoint as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryEndpoint {
    pub id: i64,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Harbor's adapter type (`harbor`, `docker-registry`, …).
    pub registry_type: String,
    pub url: String,
    /// `basic`, `oauth` or `secret`.
    #[serde(default)]
    pub credential_type: String,
    #[serde(default)]
    pub access_key: String,
    /// The access secret, sealed; empty when there is none.
    #[serde(default)]
    pub access_secret_sealed: String,
    #[serde(default)]
    pub insecure: bool,
    /// [`HEALTHY`], [`UNHEALTHY`] or [`UNKNOWN`], as the last ping found.
    #[serde(default)]
    pub status: String,
    /// Unix milliseconds.
    pub creation_time: i64,
    pub update_time: i64,
}

impl RegistryEndpoint {
    pub fn has_secret(&self) -> bool {
        !self.access_secret_sealed.is_empty()
    }
}

/// What a create sets, or an update changes (`None`: unchanged).
#[derive(Debug, Clone, Default)]
pub struct EndpointChange {
    pub name: Option<String>,
    pub description: Option<String>,
    pub registry_type: Option<String>,
    pub url: Option<String>,
    pub credential_type: Option<String>,
    pub access_key: Option<String>,
    pub access_secret: Option<String>,
    pub insecure: Option<bool>,
}

/// The context a secret is sealed for: only this endpoint's record opens it.
fn secret_context(id: i64) -> String {
    format!("registry-secret:{id}")
}

fn not_found(id: i64) -> ServiceError {
    ServiceError::NotFound(format!("registry {id} not found"))
}

fn name_taken(name: &str) -> ServiceError {
    ServiceError::Conflict(format!("the registry {name} exists already"))
}

/// A registry URL as Harbor keeps it: `http://` added when no scheme is
/// given, no trailing `/`.
pub fn normalize_url(url: &str) -> ServiceResult<String> {
    let url = url.trim();
    if url.is_empty() {
        return Err(ServiceError::Invalid("the registry URL is required".to_owned()));
    }
    let full = if url.contains("://") { url.to_owned() } else { format!("http://{url}") };
    match url::Url::parse(&full) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() && u.query().is_none() => {
            Ok(full.trim_end_matches('/').to_owned())
        }
        _ => Err(ServiceError::Invalid(format!("{url:?} is not an http(s) registry URL"))),
    }
}

/// Checks a whole endpoint (after a change is applied).
fn check(e: &mut RegistryEndpoint) -> ServiceResult<()> {
    let bad = |m: String| Err(ServiceError::Invalid(m));
    e.name = e.name.trim().to_owned();
    if e.name.is_empty() || e.name.chars().count() > MAX_NAME {
        return bad(format!("a registry name has 1 to {MAX_NAME} characters"));
    }
    if e.description.chars().count() > MAX_DESCRIPTION {
        return bad(format!("a registry description has at most {MAX_DESCRIPTION} characters"));
    }
    if !adapter::is_known(&e.registry_type) {
        return bad(format!(
            "adapter for {:?} not found: the types are {}",
            e.registry_type,
            adapter::TYPES.join(", ")
        ));
    }
    e.url = normalize_url(&e.url)?;
    if e.credential_type.is_empty() {
        e.credential_type = adapter::CREDENTIAL_BASIC.to_owned();
    }
    if ![adapter::CREDENTIAL_BASIC, adapter::CREDENTIAL_OAUTH, adapter::CREDENTIAL_SECRET]
        .contains(&e.credential_type.as_str())
    {
        return bad(format!("credential type {:?} is not basic, oauth or secret", e.credential_type));
    }
    Ok(())
}

fn items(e: &RegistryEndpoint) -> ServiceResult<(Item, Item)> {
    let (pk, sk) = keys::registry_endpoint(e.id);
    let (epk, esk) = keys::registry_endpoint_entry(e.id);
    Ok((to_item(pk, sk, e, "registry")?, to_item(epk, esk, e, "registry")?))
}

/// The writes that count one use of endpoint `id` in (`delta` 1) or out
/// (-1), for the transaction of the replication policy or proxy-cache
/// project that makes or drops the use. Fails that transaction when the
/// endpoint does not exist.
pub fn registry_endpoint_use(id: i64, delta: i64) -> Vec<Write> {
    let (pk, sk) = keys::registry_endpoint(id);
    let (upk, usk) = keys::registry_endpoint_uses(id);
    vec![
        Write::Check { pk, sk, cond: Condition::Exists },
        Write::Add { pk: upk, sk: usk, attr: keys::attr::COUNT.to_owned(), delta, cond: Condition::Always },
    ]
}

impl Registry {
    /// Creates an endpoint. `Conflict` when the name is taken.
    pub async fn create_registry_endpoint(&self, change: EndpointChange) -> ServiceResult<RegistryEndpoint> {
        let now = now_ms();
        let mut e = RegistryEndpoint {
            id: 0,
            name: change.name.unwrap_or_default(),
            description: change.description.unwrap_or_default(),
            registry_type: change.registry_type.unwrap_or_default(),
            url: change.url.unwrap_or_default(),
            credential_type: change.credential_type.unwrap_or_default(),
            access_key: change.access_key.unwrap_or_default(),
            access_secret_sealed: String::new(),
            insecure: change.insecure.unwrap_or(false),
            status: UNKNOWN.to_owned(),
            creation_time: now,
            update_time: now,
        };
        check(&mut e)?;
        if self.registry_endpoint_named(&e.name).await?.is_some() {
            return Err(name_taken(&e.name));
        }
        let (cpk, csk) = keys::counters();
        e.id = self.meta.add(cpk, csk, "registry_id", 1, Condition::Always).await?;
        e.access_secret_sealed = self.seal_secret(e.id, change.access_secret.as_deref().unwrap_or(""))?;
        let (record, entry) = items(&e)?;
        let (npk, nsk) = keys::registry_endpoint_name(&e.name);
        let writes = vec![
            Write::Put { item: Item::new(npk, nsk).with(keys::attr::ID, e.id), cond: Condition::NotExists },
            Write::Put { item: record, cond: Condition::NotExists },
            Write::Put { item: entry, cond: Condition::NotExists },
            count_write(Counted::RegistryEndpoints, &e.id.to_string(), 1),
        ];
        match self.meta.transact(writes).await {
            Ok(()) => Ok(e),
            Err(err) if err.is(ErrorKind::ConditionFailed) => Err(name_taken(&e.name)),
            Err(err) => Err(err.into()),
        }
    }

    pub async fn registry_endpoint(&self, id: i64) -> ServiceResult<RegistryEndpoint> {
        let (pk, sk) = keys::registry_endpoint(id);
        from_item(self.meta.get(&pk, &sk).await?.ok_or_else(|| not_found(id))?, "registry")
    }

    async fn registry_endpoint_named(&self, name: &str) -> ServiceResult<Option<i64>> {
        let (pk, sk) = keys::registry_endpoint_name(name);
        Ok(self.meta.get(&pk, &sk).await?.and_then(|i| i.i64(keys::attr::ID)))
    }

    /// A page of the endpoints by id, kept by `filter` (tested on the list's
    /// entries: `name`, `type`, `url`, `description`).
    pub async fn list_registry_endpoints(
        &self,
        filter: &[(String, Match)],
        req: &PageRequest,
    ) -> ServiceResult<Listing<RegistryEndpoint>> {
        let query = Query::table(keys::REGISTRY_ENDPOINTS, "");
        let keep = |i: &Item| {
            filter.iter().all(|(field, m)| {
                let attr = if field == "type" { "registry_type" } else { field.as_str() };
                i.attrs.get(attr).and_then(|v| v.as_str()).is_some_and(|v| m.matches(v))
            })
        };
        let (entries, next, total) =
            self.page_of(query, Counted::RegistryEndpoints, req, !filter.is_empty(), keep).await?;
        let items = entries.into_iter().map(|i| from_item(i, "registry")).collect::<ServiceResult<Vec<_>>>()?;
        Ok(Listing { items, total, next })
    }

    /// Applies `change` to endpoint `id`; an empty or absent secret keeps
    /// the stored one.
    pub async fn update_registry_endpoint(&self, id: i64, change: EndpointChange) -> ServiceResult<RegistryEndpoint> {
        let old = self.registry_endpoint(id).await?;
        let mut e = old.clone();
        if let Some(v) = change.name {
            e.name = v;
        }
        if let Some(v) = change.description {
            e.description = v;
        }
        if let Some(v) = change.registry_type {
            e.registry_type = v;
        }
        if let Some(v) = change.url {
            e.url = v;
        }
        if let Some(v) = change.credential_type {
            e.credential_type = v;
        }
        if let Some(v) = change.access_key {
            e.access_key = v;
        }
        if let Some(v) = change.insecure {
            e.insecure = v;
        }
        check(&mut e)?;
        if let Some(secret) = change.access_secret.filter(|s| !s.is_empty() && s != MASK) {
            e.access_secret_sealed = self.seal_secret(id, &secret)?;
        }
        if e == old {
            return Ok(e);
        }
        if e.name != old.name && self.registry_endpoint_named(&e.name).await?.is_some() {
            return Err(name_taken(&e.name));
        }
        e.update_time = now_ms().max(old.update_time + 1);
        let (record, entry) = items(&e)?;
        let mut writes = vec![
            Write::Put { item: record, cond: Condition::equals(keys::attr::UPDATE_TIME, old.update_time) },
            Write::Put { item: entry, cond: Condition::Exists },
        ];
        if e.name != old.name {
            let (npk, nsk) = keys::registry_endpoint_name(&e.name);
            let (opk, osk) = keys::registry_endpoint_name(&old.name);
            writes.push(Write::Put { item: Item::new(npk, nsk).with(keys::attr::ID, id), cond: Condition::NotExists });
            writes.push(Write::Delete { pk: opk, sk: osk, cond: Condition::equals(keys::attr::ID, id) });
        }
        match self.meta.transact(writes).await {
            Ok(()) => Ok(e),
            Err(err) if err.is(ErrorKind::ConditionFailed) => match self.registry_endpoint(id).await {
                Ok(now) if now == old => Err(name_taken(&e.name)),
                Ok(_) => Err(ServiceError::Conflict(format!("registry {id} changed meanwhile; try again"))),
                Err(err) => Err(err),
            },
            Err(err) => Err(err.into()),
        }
    }

    /// How many replication policies and proxy-cache projects use `id`.
    pub async fn registry_endpoint_uses(&self, id: i64) -> ServiceResult<i64> {
        let (pk, sk) = keys::registry_endpoint_uses(id);
        Ok(self.meta.get(&pk, &sk).await?.and_then(|i| i.i64(keys::attr::COUNT)).unwrap_or(0))
    }

    /// Deletes endpoint `id`; `PreconditionFailed` while something uses it.
    pub async fn delete_registry_endpoint(&self, id: i64) -> ServiceResult<RegistryEndpoint> {
        let e = self.registry_endpoint(id).await?;
        let in_use = || {
            ServiceError::PreconditionFailed(format!(
                "the registry {} is used by replication policies or proxy-cache projects and cannot be deleted",
                e.name
            ))
        };
        if self.registry_endpoint_uses(id).await? > 0 {
            return Err(in_use());
        }
        let (pk, sk) = keys::registry_endpoint(id);
        let (upk, usk) = keys::registry_endpoint_uses(id);
        let (npk, nsk) = keys::registry_endpoint_name(&e.name);
        let (epk, esk) = keys::registry_endpoint_entry(id);
        let writes = vec![
            Write::Delete { pk, sk, cond: Condition::equals(keys::attr::UPDATE_TIME, e.update_time) },
            Write::Delete { pk: upk, sk: usk, cond: Condition::at_most(keys::attr::COUNT, 0) },
            Write::Delete { pk: npk, sk: nsk, cond: Condition::equals(keys::attr::ID, id) },
            Write::Delete { pk: epk, sk: esk, cond: Condition::Always },
            count_write(Counted::RegistryEndpoints, &id.to_string(), -1),
        ];
        match self.meta.transact(writes).await {
            Ok(()) => Ok(e),
            Err(err) if err.is(ErrorKind::ConditionFailed) => match self.registry_endpoint(id).await {
                Err(ServiceError::NotFound(_)) => Err(not_found(id)),
                Ok(_) if self.registry_endpoint_uses(id).await? > 0 => Err(in_use()),
                Ok(_) => Err(ServiceError::Conflict(format!("registry {id} changed meanwhile; try again"))),
                Err(err) => Err(err),
            },
            Err(err) => Err(err.into()),
        }
    }

    /// How to talk to endpoint `e`: its settings with the secret opened.
    pub fn registry_endpoint_target(&self, e: &RegistryEndpoint) -> ServiceResult<Target> {
        let secret = if e.has_secret() {
            self.sealer()?
                .open_str(&secret_context(e.id), &e.access_secret_sealed)
                .map_err(|err| ServiceError::Backend(crate::port::PortError::msg(ErrorKind::Internal, err)))?
        } else {
            String::new()
        };
        Ok(Target {
            registry_type: e.registry_type.clone(),
            url: e.url.clone(),
            credential_type: e.credential_type.clone(),
            access_key: e.access_key.clone(),
            access_secret: secret,
            insecure: e.insecure,
            timeout: ENDPOINT_TIMEOUT,
        })
    }

    /// Pings every endpoint and records its status, as Harbor's core does
    /// every five minutes: at most once per [`HEALTH_EVERY_MS`] across
    /// replicas (the slot is leased); each ping gets [`HEALTH_TIMEOUT`].
    /// Returns how many endpoints were checked (0 when another replica has
    /// this slot).
    pub async fn recheck_registry_endpoints(&self, now_ms: i64) -> ServiceResult<usize> {
        let slot = now_ms - now_ms.rem_euclid(HEALTH_EVERY_MS);
        if !self.lease_slot(HEALTH_CHECK, 0, slot).await? {
            return Ok(0);
        }
        let mut req = PageRequest::first(super::paging::MAX_PAGE_SIZE);
        let mut checked = 0;
        loop {
            let page = self.list_registry_endpoints(&[], &req).await?;
            let pings = page.items.iter().map(|e| async move {
                let healthy = match self.registry_endpoint_target(e) {
                    Ok(target) => matches!(tokio::time::timeout(HEALTH_TIMEOUT, target.ping()).await, Ok(Ok(()))),
                    Err(_) => false,
                };
                (e.id, healthy)
            });
            for (id, healthy) in futures::future::join_all(pings).await {
                match self.set_registry_endpoint_status(id, healthy).await {
                    Ok(()) | Err(ServiceError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
                checked += 1;
            }
            match page.next {
                Some(n) => req.after = Some(n),
                None => return Ok(checked),
            }
        }
    }

    /// Records what a ping of endpoint `id` found (no change when it says
    /// the same; a concurrent update wins).
    pub async fn set_registry_endpoint_status(&self, id: i64, healthy: bool) -> ServiceResult<()> {
        let e = self.registry_endpoint(id).await?;
        let status = if healthy { HEALTHY } else { UNHEALTHY };
        if e.status == status {
            return Ok(());
        }
        let e = RegistryEndpoint { status: status.to_owned(), ..e.clone() };
        let (record, entry) = items(&e)?;
        let same = Condition::equals(keys::attr::UPDATE_TIME, e.update_time);
        match self
            .meta
            .transact(vec![
                Write::Put { item: record, cond: same },
                Write::Put { item: entry, cond: Condition::Exists },
            ])
            .await
        {
            Err(err) if err.is(ErrorKind::ConditionFailed) => Ok(()),
            other => other.map_err(Into::into),
        }
    }

    fn seal_secret(&self, id: i64, secret: &str) -> ServiceResult<String> {
        if secret.is_empty() {
            return Ok(String::new());
        }
        self.sealer()?
            .seal(&secret_context(id), secret.as_bytes())
            .map_err(|err| ServiceError::Backend(crate::port::PortError::msg(ErrorKind::Internal, err)))
    }
}

/// What Harbor shows in place of a secret.
pub const MASK: &str = "*****";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn urls_are_normalized_as_harbor_does() {
        assert_eq!(normalize_url("https://r.example/").unwrap(), "https://r.example");
        assert_eq!(normalize_url("127.0.0.1:5000").unwrap(), "http://127.0.0.1:5000");
        assert!(normalize_url("").is_err());
        assert!(normalize_url("ftp://x").is_err());
        assert!(normalize_url("https://x/?a=b").is_err());
    }

    #[test]
    fn endpoints_are_checked() {
        let mut e = RegistryEndpoint {
            id: 1,
            name: " r ".into(),
            description: String::new(),
            registry_type: "harbor".into(),
            url: "https://h.example/".into(),
            credential_type: String::new(),
            access_key: String::new(),
            access_secret_sealed: String::new(),
            insecure: false,
            status: UNKNOWN.into(),
            creation_time: 0,
            update_time: 0,
        };
        check(&mut e).unwrap();
        assert_eq!((e.name.as_str(), e.url.as_str(), e.credential_type.as_str()), ("r", "https://h.example", "basic"));
        let mut bad = RegistryEndpoint { registry_type: "nexus".into(), ..e.clone() };
        assert!(matches!(check(&mut bad), Err(ServiceError::Invalid(_))));
        let mut bad = RegistryEndpoint { credential_type: "token".into(), ..e.clone() };
        assert!(check(&mut bad).is_err());
        let mut bad = RegistryEndpoint { name: "  ".into(), ..e };
        assert!(check(&mut bad).is_err());
    }
}

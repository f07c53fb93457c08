//! Scanner registrations (F8, Harbor's `/scanners`): the scanner adapters
//! berth may send artifacts to, the system default among them, and the
//! scanner a project chose.
//!
//! Registrations are few (one partition, `SCANNERS`, read whole); each
//! remembers what its adapter said of itself when last asked (name,
//! vendor, version, capabilities), so listings need no adapter call. A
//! project's choice is an item in its partition; without one the project
//! uses the default. The built-in scanner ([`BUILTIN_URL`]) is a
//! registration like the others, made at start, that cannot be deleted.

use serde::{Deserialize, Serialize};

use super::record::{from_item, to_item};
use super::{Registry, ServiceError, ServiceResult};
use crate::events::now_ms;
use crate::meta::keys;
use crate::meta::{Attrs, Condition, ErrorKind, Item, Query, Write};
use crate::scanner::client::Endpoint;
use crate::scanner::{AdapterMetadata, Capability};
use crate::service::projects::ProjectRef;

/// The URL of berth's own scanner: the scan job runs it in-process.
pub const BUILTIN_URL: &str = "berth:builtin";
/// The authentication schemes Harbor offers an adapter.
const AUTH_SCHEMES: [&str; 4] = ["", "Basic", "Bearer", "X-ScannerAdapter-API-Key"];
const MAX_NAME: usize = 255;
/// Registrations berth keeps (Harbor's are a handful): the list is read
/// whole, in one query, by every scan and overview.
const MAX_SCANNERS: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    pub uuid: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub url: String,
    #[serde(default)]
    pub disabled: bool,
    #[serde(default)]
    pub is_default: bool,
    #[serde(default)]
    pub auth: String,
    #[serde(default)]
    pub access_credential: String,
    #[serde(default)]
    pub skip_cert_verify: bool,
    #[serde(default)]
    pub use_internal_addr: bool,
    /// Unix milliseconds.
    pub create_time: i64,
    pub update_time: i64,
    /// What the adapter said of itself when last asked.
    #[serde(default)]
    pub metadata: Option<AdapterMetadata>,
    /// Whether berth made it (the built-in scanner): it cannot be deleted.
    #[serde(default)]
    pub immutable: bool,
    /// Whether `access_credential` is the stored, sealed form (only ever
    /// true in the table: reads open it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub credential_sealed: bool,
}

/// The context a registration's credential is sealed for.
fn credential_context(uuid: &str) -> String {
    format!("scanner-credential:{uuid}")
}

impl Registration {
    pub fn endpoint(&self) -> Endpoint {
        Endpoint {
            url: self.url.clone(),
            auth: self.auth.clone(),
            credential: self.access_credential.clone(),
            skip_cert_verify: self.skip_cert_verify,
        }
    }

    pub fn is_builtin(&self) -> bool {
        self.url == BUILTIN_URL
    }

    /// Whether it can do `scan_type` (`vulnerability`, `sbom`), as far as
    /// berth knows (an adapter never asked is assumed to scan).
    pub fn supports(&self, scan_type: &str) -> bool {
        match &self.metadata {
            Some(m) => m.report_mime(scan_type).is_some(),
            None => scan_type == "vulnerability",
        }
    }
}

/// What a caller sets of a registration.
#[derive(Debug, Clone, Default)]
pub struct RegistrationInput {
    pub name: String,
    pub description: String,
    pub url: String,
    pub auth: String,
    pub access_credential: String,
    pub skip_cert_verify: bool,
    pub use_internal_addr: bool,
    pub disabled: bool,
}

impl RegistrationInput {
    pub fn endpoint(&self) -> Endpoint {
        Endpoint {
            url: self.url.clone(),
            auth: self.auth.clone(),
            credential: self.access_credential.clone(),
            skip_cert_verify: self.skip_cert_verify,
        }
    }
}

/// Checks and tidies a registration's input.
pub fn check(input: &mut RegistrationInput) -> ServiceResult<()> {
    let bad = |m: String| Err(ServiceError::Invalid(m));
    input.name = input.name.trim().to_owned();
    if input.name.is_empty() || input.name.chars().count() > MAX_NAME {
        return bad(format!("a scanner name has 1 to {MAX_NAME} characters"));
    }
    input.url = input.url.trim().trim_end_matches('/').to_owned();
    match url::Url::parse(&input.url) {
        Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.host().is_some() => {}
        _ => return bad(format!("scanner URL {:?} is not an http(s) URL", input.url)),
    }
    if !AUTH_SCHEMES.contains(&input.auth.as_str()) {
        return bad(format!("auth {:?} is not one of Basic, Bearer, X-ScannerAdapter-API-Key or none", input.auth));
    }
    if !input.auth.is_empty() && input.access_credential.is_empty() {
        return bad(format!("auth {} needs an access_credential", input.auth));
    }
    if input.auth == "Basic" && !input.access_credential.contains(':') {
        return bad("a Basic access_credential is user:password".to_owned());
    }
    Ok(())
}

fn not_found(uuid: &str) -> ServiceError {
    ServiceError::NotFound(format!("scanner registration {uuid} not found"))
}

impl Registry {
    /// Every registration, by name.
    pub async fn scanners(&self) -> ServiceResult<Vec<Registration>> {
        let page = self.meta.query(Query::table(keys::SCANNERS, "").limit(MAX_SCANNERS)).await?;
        let mut all = page
            .items
            .into_iter()
            .map(|i| self.opened(from_item(i, "scanner")?))
            .collect::<ServiceResult<Vec<Registration>>>()?;
        all.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(all)
    }

    pub async fn scanner(&self, uuid: &str) -> ServiceResult<Registration> {
        let (pk, sk) = keys::scanner(uuid);
        match self.meta.get(&pk, &sk).await? {
            Some(item) => self.opened(from_item(item, "scanner")?),
            None => Err(not_found(uuid)),
        }
    }

    /// A stored registration with its credential opened (one stored before
    /// credentials were sealed reads as it is).
    fn opened(&self, mut r: Registration) -> ServiceResult<Registration> {
        if r.credential_sealed {
            r.access_credential = self
                .sealer()?
                .open_str(&credential_context(&r.uuid), &r.access_credential)
                .map_err(|_| super::record::corrupt("scanner credential"))?;
            r.credential_sealed = false;
        }
        Ok(r)
    }

    /// Registers an adapter. The first registration becomes the default.
    pub async fn create_scanner(
        &self,
        mut input: RegistrationInput,
        metadata: Option<AdapterMetadata>,
    ) -> ServiceResult<Registration> {
        check(&mut input)?;
        let all = self.scanners().await?;
        clash(&all, &input, None)?;
        if all.len() >= MAX_SCANNERS {
            return Err(ServiceError::Invalid(format!("berth keeps at most {MAX_SCANNERS} scanner registrations")));
        }
        let now = now_ms();
        let r = Registration {
            uuid: uuid::Uuid::new_v4().to_string(),
            name: input.name,
            description: input.description,
            url: input.url,
            disabled: input.disabled,
            is_default: !all.iter().any(|r| r.is_default),
            auth: input.auth,
            access_credential: input.access_credential,
            skip_cert_verify: input.skip_cert_verify,
            use_internal_addr: input.use_internal_addr,
            create_time: now,
            update_time: now,
            metadata,
            immutable: false,
            credential_sealed: false,
        };
        self.put_scanner(&r, Condition::NotExists).await?;
        Ok(r)
    }

    /// Stores a registration, its credential sealed.
    async fn put_scanner(&self, r: &Registration, cond: Condition) -> ServiceResult<()> {
        let (pk, sk) = keys::scanner(&r.uuid);
        let mut stored = r.clone();
        if !stored.access_credential.is_empty() {
            stored.access_credential = self
                .sealer()?
                .seal(&credential_context(&r.uuid), r.access_credential.as_bytes())
                .map_err(|e| ServiceError::Invalid(format!("sealing the credential: {e}")))?;
            stored.credential_sealed = true;
        }
        self.meta.put(to_item(pk, sk, &stored, "scanner")?, cond).await.map_err(|e| {
            if e.is(ErrorKind::ConditionFailed) {
                ServiceError::Conflict("the registration changed".into())
            } else {
                e.into()
            }
        })
    }

    /// Replaces what the caller sets of `uuid`; an empty credential keeps
    /// the stored one (listings never show it).
    pub async fn update_scanner(
        &self,
        uuid: &str,
        mut input: RegistrationInput,
        metadata: Option<AdapterMetadata>,
    ) -> ServiceResult<Registration> {
        let old = self.scanner(uuid).await?;
        if old.immutable {
            return Err(ServiceError::Forbidden(format!("scanner {} is berth's own and cannot be changed", old.name)));
        }
        if input.access_credential.is_empty() && input.auth == old.auth {
            input.access_credential = old.access_credential.clone();
        }
        check(&mut input)?;
        clash(&self.scanners().await?, &input, Some(uuid))?;
        let r = Registration {
            name: input.name,
            description: input.description,
            url: input.url,
            disabled: input.disabled,
            auth: input.auth,
            access_credential: input.access_credential,
            skip_cert_verify: input.skip_cert_verify,
            use_internal_addr: input.use_internal_addr,
            update_time: now_ms(),
            metadata: metadata.or(old.metadata.clone()),
            ..old.clone()
        };
        self.put_scanner(&r, Condition::equals("update_time", old.update_time)).await?;
        Ok(r)
    }

    /// Records what an adapter said of itself.
    pub async fn remember_scanner_metadata(&self, uuid: &str, metadata: &AdapterMetadata) -> ServiceResult<()> {
        let (pk, sk) = keys::scanner(uuid);
        let value = serde_json::to_value(metadata).map_err(|e| ServiceError::Invalid(e.to_string()))?;
        let attrs = Attrs::from_iter([("metadata".to_owned(), value)]);
        match self.meta.transact(vec![Write::Set { pk, sk, attrs, cond: Condition::Exists }]).await {
            Err(e) if e.is(ErrorKind::ConditionFailed) => Err(not_found(uuid)),
            other => Ok(other?),
        }
    }

    /// Deletes a registration (not berth's own); returns what it was.
    /// Projects that chose it fall back to the default.
    pub async fn delete_scanner(&self, uuid: &str) -> ServiceResult<Registration> {
        let r = self.scanner(uuid).await?;
        if r.immutable {
            return Err(ServiceError::Forbidden(format!("scanner {} is berth's own and cannot be deleted", r.name)));
        }
        let (pk, sk) = keys::scanner(uuid);
        self.meta.delete(&pk, &sk, Condition::Always).await?;
        Ok(r)
    }

    /// Makes `uuid` the default (the previous default stops being it).
    pub async fn set_default_scanner(&self, uuid: &str) -> ServiceResult<()> {
        let target = self.scanner(uuid).await?;
        if target.disabled {
            return Err(ServiceError::Invalid(format!("scanner {} is disabled", target.name)));
        }
        let mut writes = Vec::new();
        for r in self.scanners().await? {
            if r.is_default != (r.uuid == uuid) {
                let (pk, sk) = keys::scanner(&r.uuid);
                let attrs = Attrs::from_iter([("is_default".to_owned(), (r.uuid == uuid).into())]);
                writes.push(Write::Set { pk, sk, attrs, cond: Condition::Exists });
            }
        }
        if !writes.is_empty() {
            self.meta.transact(writes).await?;
        }
        Ok(())
    }

    /// The default registration, if any is enabled.
    pub async fn default_scanner(&self) -> ServiceResult<Option<Registration>> {
        Ok(self.scanners().await?.into_iter().find(|r| r.is_default && !r.disabled))
    }

    /// The scanner a project's scans use: its own choice, else the
    /// default. `None` when neither exists.
    pub async fn project_scanner(&self, project: &str) -> ServiceResult<Option<Registration>> {
        let (pk, sk) = keys::project_scanner(project);
        if let Some(item) = self.meta.get(&pk, &sk).await?
            && let Some(uuid) = item.str("uuid")
        {
            match self.scanner(uuid).await {
                Ok(r) if !r.disabled => return Ok(Some(r)),
                Ok(_) | Err(ServiceError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        self.default_scanner().await
    }

    /// Sets the scanner of a project.
    pub async fn set_project_scanner(&self, project: &ProjectRef, uuid: &str) -> ServiceResult<()> {
        let project = self.project(project).await?;
        let r = self.scanner(uuid).await.map_err(|_| ServiceError::Invalid(format!("no scanner {uuid}")))?;
        if r.disabled {
            return Err(ServiceError::Invalid(format!("scanner {} is disabled", r.name)));
        }
        let (pk, sk) = keys::project_scanner(&project.name);
        self.meta.put(Item::new(pk, sk).with("uuid", uuid), Condition::Always).await?;
        Ok(())
    }

    /// Registers berth's own scanner once, as the default when no other
    /// is; idempotent under concurrent starts.
    pub async fn ensure_builtin_scanner(&self, metadata: AdapterMetadata) -> ServiceResult<()> {
        let all = self.scanners().await?;
        if let Some(mut own) = all.iter().find(|r| r.is_builtin()).cloned() {
            if own.metadata.as_ref() != Some(&metadata) {
                own.metadata = Some(metadata);
                self.put_scanner(&own, Condition::equals("update_time", own.update_time)).await.or_else(
                    |e| match e {
                        ServiceError::Conflict(_) => Ok(()),
                        e => Err(e),
                    },
                )?;
            }
            return Ok(());
        }
        let now = now_ms();
        let r = Registration {
            // One fixed id, so that concurrent first starts make one.
            uuid: "berth-builtin".to_owned(),
            name: "berth".to_owned(),
            description: "berth's built-in scanner: packages from the layers, matched against the imported OSV \
                          database (berth vulndb import)"
                .to_owned(),
            url: BUILTIN_URL.to_owned(),
            disabled: false,
            is_default: !all.iter().any(|r| r.is_default),
            auth: String::new(),
            access_credential: String::new(),
            skip_cert_verify: false,
            use_internal_addr: true,
            create_time: now,
            update_time: now,
            metadata: Some(metadata),
            immutable: true,
            credential_sealed: false,
        };
        match self.put_scanner(&r, Condition::NotExists).await {
            Ok(()) | Err(ServiceError::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Refuses a name or URL another registration has.
fn clash(all: &[Registration], input: &RegistrationInput, except: Option<&str>) -> ServiceResult<()> {
    for r in all.iter().filter(|r| Some(r.uuid.as_str()) != except) {
        if r.name == input.name {
            return Err(ServiceError::Conflict(format!("a scanner named {} exists already", r.name)));
        }
        if r.url == input.url {
            return Err(ServiceError::Conflict(format!("scanner {} has the URL {} already", r.name, r.url)));
        }
    }
    Ok(())
}

/// Harbor's `capabilities` of a registration.
pub fn capabilities(r: &Registration) -> serde_json::Value {
    let can =
        |kind: &str| r.metadata.as_ref().is_some_and(|m| m.capabilities.iter().any(|c: &Capability| c.kind() == kind));
    serde_json::json!({"support_vulnerability": can("vulnerability") || r.metadata.is_none(), "support_sbom": can("sbom")})
}

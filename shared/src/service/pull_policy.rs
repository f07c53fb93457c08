//! What a project asks of a pull (F8, F10): content trust — an image must
//! carry a cosign signature (`enable_content_trust_cosign`) — and the
//! vulnerability gate — an image must have been scanned and have nothing at
//! or above the project's `severity` but what the CVE allowlists allow
//! (`prevent_vul`). A refusal is Harbor's 412 `PROJECT_POLICY_VIOLATION`
//! with Harbor's wording; the scanner's own pulls pass.
//!
//! Each process remembers a project's policy for a few seconds, so a pull
//! from a project without one costs no read beyond the manifest's; a
//! policy change takes up to [`POLICY_TTL`] to reach every replica.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::projects::ProjectRef;
use super::scans::VULNERABILITY;
use super::{Registry, ServiceError, ServiceResult};
use crate::jobs::Status;
use crate::oci::{Digest, RepoName};
use crate::scanner::{SEVERITIES, severity_rank};

/// How long a process trusts a project's policy it read.
pub const POLICY_TTL: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullPolicy {
    pub cosign: bool,
    /// The project's cosign keys (DER): with content trust, a signature
    /// must verify with one of them ([`super::cosign_keys`]).
    pub cosign_keys: Vec<Vec<u8>>,
    /// The lowest refused severity's rank ([`SEVERITIES`]), when set.
    pub prevent_vul: Option<usize>,
}

/// Projects' policies as this process last read them.
#[derive(Debug, Default)]
pub struct PolicyCache(Mutex<HashMap<String, (Instant, PullPolicy)>>);

fn violation(m: String) -> ServiceError {
    ServiceError::PolicyViolation(m)
}

impl Registry {
    async fn pull_policy(&self, project: &str) -> ServiceResult<PullPolicy> {
        if let Ok(cache) = self.policies.0.lock()
            && let Some((at, p)) = cache.get(project)
            && at.elapsed() < POLICY_TTL
        {
            return Ok(p.clone());
        }
        let policy = match self.project(&ProjectRef::Name(project.to_owned())).await {
            Ok(p) => {
                let on = |k: &str| p.metadata.get(k).is_some_and(|v| v == "true");
                let cosign_keys = if on("enable_content_trust_cosign") {
                    let stored = self.cosign_keys(&p.name).await?;
                    stored.keys.iter().filter_map(|k| super::cosign_keys::parse_key(k).ok()).collect()
                } else {
                    Vec::new()
                };
                PullPolicy {
                    cosign: on("enable_content_trust_cosign"),
                    cosign_keys,
                    prevent_vul: on("prevent_vul")
                        .then(|| severity_rank(p.metadata.get("severity").map_or("low", String::as_str)).max(2)),
                }
            }
            Err(ServiceError::NotFound(_)) => PullPolicy::default(),
            Err(e) => return Err(e),
        };
        if let Ok(mut cache) = self.policies.0.lock() {
            if cache.len() > 10_000 {
                cache.clear();
            }
            cache.insert(project.to_owned(), (Instant::now(), policy.clone()));
        }
        Ok(policy)
    }

    /// Refuses a pull of `digest` from `repo` that the project's policy
    /// forbids; `scanner` says the caller is a scanner pulling what it
    /// scans. Accessories (signatures, SBOMs) are always pulled: verifying
    /// a signature needs it.
    pub async fn check_pull(&self, repo: &RepoName, digest: &Digest, scanner: bool) -> ServiceResult<()> {
        let policy = self.pull_policy(repo.project()).await?;
        if scanner || policy == PullPolicy::default() {
            return Ok(());
        }
        let artifact = match self.artifact(repo, &crate::oci::Reference::Digest(digest.clone())).await {
            Ok(a) => a,
            Err(ServiceError::ManifestUnknown(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        if artifact.hidden && artifact.parents == 0 {
            return Ok(());
        }
        if policy.cosign && !self.cosign_signed(repo, &artifact, &policy.cosign_keys).await? {
            return Err(violation(if policy.cosign_keys.is_empty() {
                "The image is not signed by cosign.".to_owned()
            } else {
                "The image is not signed by cosign with a key of the project.".to_owned()
            }));
        }
        if let Some(min) = policy.prevent_vul
            && super::scans::scannable(&artifact)
        {
            self.vulnerability_gate(repo, digest, min).await?;
        }
        Ok(())
    }

    /// Whether the artifact, or an index of its repository holding it, has
    /// a cosign signature — one that verifies with one of `keys`, when the
    /// project holds keys.
    async fn cosign_signed(
        &self,
        repo: &RepoName,
        a: &super::artifacts::ArtifactInfo,
        keys: &[Vec<u8>],
    ) -> ServiceResult<bool> {
        let mut subjects = vec![a.digest.clone()];
        if a.parents > 0 {
            // A child of more indexes than this is not looked through.
            subjects.extend(self.parents_of(repo, &a.digest, 20).await?);
        }
        for subject in subjects {
            let signatures: Vec<Digest> = self
                .accessories(repo, &subject)
                .await?
                .into_iter()
                .filter(|x| x.kind == super::references::COSIGN)
                .map(|x| x.digest)
                .collect();
            if signatures.is_empty() {
                continue;
            }
            if keys.is_empty() || self.cosign_verified(repo, &subject, &signatures, keys).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn vulnerability_gate(&self, repo: &RepoName, digest: &Digest, min: usize) -> ServiceResult<()> {
        let words = SEVERITIES[min];
        let policy = format!(
            "configured policy in 'Prevent images with vulnerability severity of \"{words}\" or higher from \
             running.' To continue with pull, please contact your project administrator for help."
        );
        let scanner = self.project_scanner(repo.project()).await?;
        let scan = self.artifact_scan(scanner.as_ref(), digest, VULNERABILITY).await?;
        let Some(scan) = scan.filter(|s| s.status == Status::Success) else {
            return Err(violation(format!(
                "current image without vulnerability scanning cannot be pulled due to {policy}"
            )));
        };
        let counted = scan
            .summary
            .as_ref()
            .map_or(0, |s| s.summary.iter().filter(|(sev, _)| severity_rank(sev) >= min).map(|(_, n)| *n).sum::<u64>());
        if counted == 0 {
            return Ok(());
        }
        // Some are at or above the line: those an allowlist names pass.
        let allow = self.effective_cve_allowlist(repo.project()).await?;
        let now = crate::meta::now_unix();
        let report = self.scan_report(&scan).await?.unwrap_or_default();
        let refused = report["vulnerabilities"]
            .as_array()
            .map(|v| {
                v.iter()
                    .filter(|x| severity_rank(x["severity"].as_str().unwrap_or_default()) >= min)
                    .filter(|x| !allow.allows(x["id"].as_str().unwrap_or_default(), now))
                    .count()
            })
            .unwrap_or(usize::try_from(counted).unwrap_or(usize::MAX));
        if refused == 0 {
            return Ok(());
        }
        Err(violation(format!("current image with {refused} vulnerabilities cannot be pulled due to {policy}")))
    }

    /// The allowlist a project's pulls use: its own, unless it reuses the
    /// system's (`reuse_sys_cve_allowlist`, the default).
    pub async fn effective_cve_allowlist(&self, project: &str) -> ServiceResult<super::cve_allowlist::CveAllowlist> {
        let p = self.project(&ProjectRef::Name(project.to_owned())).await?;
        let reuse = p.metadata.get("reuse_sys_cve_allowlist").is_none_or(|v| v != "false");
        match (reuse, p.cve_allowlist) {
            (false, Some(own)) => Ok(own),
            _ => self.system_cve_allowlist().await,
        }
    }
}

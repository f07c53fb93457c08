//! Registry types (Harbor's adapter names): what each is
//! ([`info`], [`provider_info`]), and how berth talks to one
//! ([`Target::client`], [`Target::list_repositories`]).
//!
//! Every type speaks the Distribution API through [`Client`]; they differ
//! in where their registry API is (Docker Hub's is not its web address),
//! in how credentials become authorization (ECR's AWS keys), in repository
//! names (Docker Hub's `library/`) and in how repositories are listed
//! (a Harbor's through its own API).

use std::time::Duration;

use serde::Serialize;

use super::client::{Client, Credential, Endpoint, parse_base_url};
use super::error::{RemoteError, RemoteResult};

pub const HARBOR: &str = "harbor";
pub const DOCKER_REGISTRY: &str = "docker-registry";
pub const DOCKER_HUB: &str = "docker-hub";
pub const AWS_ECR: &str = "aws-ecr";
pub const GOOGLE_GCR: &str = "google-gcr";
pub const AZURE_ACR: &str = "azure-acr";
pub const QUAY: &str = "quay";
pub const GITHUB_GHCR: &str = "github-ghcr";
pub const GITLAB: &str = "gitlab";
pub const JFROG_ARTIFACTORY: &str = "jfrog-artifactory";
pub const ALI_ACR: &str = "ali-acr";
pub const HUAWEI_SWR: &str = "huawei-SWR";
pub const VOLCENGINE_CR: &str = "volcengine-cr";
pub const TENCENT_TCR: &str = "tencent-tcr";
pub const DTR: &str = "dtr";

/// Every registry type berth can talk to, as `/replication/adapters` lists
/// them.
pub const TYPES: [&str; 15] = [
    HARBOR,
    DOCKER_REGISTRY,
    DOCKER_HUB,
    AWS_ECR,
    GOOGLE_GCR,
    AZURE_ACR,
    QUAY,
    GITHUB_GHCR,
    GITLAB,
    JFROG_ARTIFACTORY,
    ALI_ACR,
    HUAWEI_SWR,
    VOLCENGINE_CR,
    TENCENT_TCR,
    DTR,
];

/// Docker Hub's registry API (its web address, `hub.docker.com`, is not).
pub const DOCKER_HUB_REGISTRY: &str = "https://registry-1.docker.io";

/// Credential types Harbor knows.
pub const CREDENTIAL_BASIC: &str = "basic";
pub const CREDENTIAL_OAUTH: &str = "oauth";
pub const CREDENTIAL_SECRET: &str = "secret";

pub fn is_known(registry_type: &str) -> bool {
    TYPES.contains(&registry_type)
}

/// Harbor's `FilterStyle`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct FilterStyle {
    #[serde(rename = "type")]
    pub kind: String,
    pub style: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// Harbor's `RegistryInfo`: what replication can do with a registry type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct RegistryInfo {
    #[serde(rename = "type")]
    pub kind: String,
    pub description: String,
    pub supported_resource_filters: Vec<FilterStyle>,
    pub supported_triggers: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supported_copy_by_chunk: Option<bool>,
}

fn filter(kind: &str, style: &str) -> FilterStyle {
    FilterStyle { kind: kind.to_owned(), style: style.to_owned(), values: Vec::new() }
}

/// What replication can do with `registry_type`: filter by name and tag
/// (a Harbor by label too), run manually or on a schedule; copy by chunk
/// to or from a Harbor.
pub fn info(registry_type: &str) -> RegistryInfo {
    let mut filters = vec![filter("name", "input"), filter("tag", "input")];
    let mut copy_by_chunk = None;
    if registry_type == HARBOR {
        filters.push(filter("label", "list"));
        copy_by_chunk = Some(true);
    }
    RegistryInfo {
        kind: registry_type.to_owned(),
        description: String::new(),
        supported_resource_filters: filters,
        supported_triggers: vec!["manual".to_owned(), "scheduled".to_owned()],
        supported_copy_by_chunk: copy_by_chunk,
    }
}

/// Harbor's `RegistryEndpoint`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct EndpointChoice {
    pub key: String,
    pub value: String,
}

/// Harbor's `RegistryProviderEndpointPattern`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct EndpointPattern {
    pub endpoint_type: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<EndpointChoice>,
}

/// Harbor's `RegistryProviderCredentialPattern`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct CredentialPattern {
    pub access_key_type: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub access_key_data: String,
    pub access_secret_type: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub access_secret_data: String,
}

/// Harbor's `RegistryProviderInfo`: how a portal offers the type's
/// endpoint and credential fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ProviderInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_pattern: Option<EndpointPattern>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_pattern: Option<CredentialPattern>,
}

const AWS_REGIONS: [&str; 17] = [
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "eu-central-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-north-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-south-1",
    "sa-east-1",
    "me-south-1",
];

fn choices(pairs: impl IntoIterator<Item = (String, String)>) -> Vec<EndpointChoice> {
    pairs.into_iter().map(|(key, value)| EndpointChoice { key, value }).collect()
}

fn fixed(key: &str, value: &str) -> EndpointPattern {
    EndpointPattern {
        endpoint_type: "EndpointPatternTypeFix".to_owned(),
        endpoints: choices([(key.to_owned(), value.to_owned())]),
    }
}

fn listed(endpoints: Vec<EndpointChoice>) -> EndpointPattern {
    EndpointPattern { endpoint_type: "EndpointPatternTypeList".to_owned(), endpoints }
}

fn standard_credentials() -> CredentialPattern {
    CredentialPattern {
        access_key_type: "AccessKeyTypeStandard".to_owned(),
        access_key_data: String::new(),
        access_secret_type: "AccessSecretTypeStandard".to_owned(),
        access_secret_data: String::new(),
    }
}

/// The endpoint and credential patterns of `registry_type`: fixed for the
/// hosted registries with one address, a list for those with one per
/// region, and free (no pattern) for registries anyone runs.
pub fn provider_info(registry_type: &str) -> ProviderInfo {
    let endpoint_pattern = match registry_type {
        DOCKER_HUB => Some(fixed("hub.docker.com", "https://hub.docker.com")),
        GITHUB_GHCR => Some(fixed("ghcr.io", "https://ghcr.io")),
        QUAY => Some(fixed("quay.io", "https://quay.io")),
        AWS_ECR => Some(listed(choices(
            AWS_REGIONS.iter().map(|r| ((*r).to_owned(), format!("https://api.ecr.{r}.amazonaws.com"))),
        ))),
        GOOGLE_GCR => Some(listed(choices(
            ["gcr.io", "us.gcr.io", "eu.gcr.io", "asia.gcr.io"]
                .iter()
                .map(|h| ((*h).to_owned(), format!("https://{h}"))),
        ))),
        _ => None,
    };
    let credential_pattern = match registry_type {
        AWS_ECR => Some(standard_credentials()),
        GOOGLE_GCR => Some(CredentialPattern {
            access_key_type: "AccessKeyTypeFix".to_owned(),
            access_key_data: "_json_key".to_owned(),
            access_secret_type: "AccessSecretTypeFile".to_owned(),
            access_secret_data: "No Change".to_owned(),
        }),
        _ => None,
    };
    ProviderInfo { endpoint_pattern, credential_pattern }
}

/// A registry to talk to: its type, address and credentials, as a
/// registry endpoint holds them (the secret opened).
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    pub registry_type: String,
    pub url: String,
    /// `basic` (or empty), `oauth` or `secret`.
    pub credential_type: String,
    pub access_key: String,
    pub access_secret: String,
    pub insecure: bool,
    pub timeout: Duration,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("registry_type", &self.registry_type)
            .field("url", &self.url)
            .field("credential_type", &self.credential_type)
            .field("access_key", &self.access_key)
            .field("insecure", &self.insecure)
            .finish_non_exhaustive()
    }
}

impl Target {
    /// Where the type's Distribution API is: Docker Hub's is
    /// [`DOCKER_HUB_REGISTRY`] whatever address was given.
    pub fn registry_url(&self) -> RemoteResult<url::Url> {
        if self.registry_type == DOCKER_HUB {
            return parse_base_url(DOCKER_HUB_REGISTRY);
        }
        parse_base_url(&self.url)
    }

    /// How the credentials authorize requests for this type.
    pub fn credential(&self) -> RemoteResult<Credential> {
        if self.access_key.is_empty() && self.access_secret.is_empty() {
            return Ok(Credential::Anonymous);
        }
        match self.credential_type.as_str() {
            CREDENTIAL_OAUTH => Ok(Credential::Header(format!("Bearer {}", self.access_secret))),
            CREDENTIAL_SECRET => Ok(Credential::Header(format!("Harbor-Secret {}", self.access_secret))),
            "" | CREDENTIAL_BASIC if self.registry_type == AWS_ECR => {
                let url = parse_base_url(&self.url)?;
                let region = url
                    .host_str()
                    .and_then(super::ecr::region_of)
                    .or_else(|| std::env::var("AWS_REGION").ok().filter(|r| !r.is_empty()))
                    .ok_or_else(|| {
                        RemoteError::invalid(format!("no AWS region in {} (nor AWS_REGION for an emulator)", self.url))
                    })?;
                Ok(Credential::AwsEcr {
                    access_key: self.access_key.clone(),
                    secret_key: self.access_secret.clone(),
                    region,
                })
            }
            "" | CREDENTIAL_BASIC => {
                Ok(Credential::Basic { username: self.access_key.clone(), password: self.access_secret.clone() })
            }
            other => Err(RemoteError::invalid(format!("credential type {other:?} is not basic, oauth or secret"))),
        }
    }

    /// A client of the type's registry API.
    pub fn client(&self) -> RemoteResult<Client> {
        let url = self.registry_url()?;
        // ECR's registry is its `dkr` host; the `api.ecr` host Harbor's
        // list offers is only where tokens come from.
        Client::new(Endpoint { url, credential: self.credential()?, insecure: self.insecure, timeout: self.timeout })
    }

    /// The name `repo` has on this registry: Docker Hub's official images
    /// live under `library/`.
    pub fn repository_name(&self, repo: &str) -> String {
        if self.registry_type == DOCKER_HUB && !repo.contains('/') {
            format!("library/{repo}")
        } else {
            repo.to_owned()
        }
    }

    /// Whether the registry answers and accepts the credentials: `/v2/`
    /// with them (through the token service, when it has one), as Harbor's
    /// adapters check a registry's health. Robot accounts pass too.
    pub async fn ping(&self) -> RemoteResult<()> {
        self.client()?.ping().await
    }

    /// Up to `max` repository names: through Harbor's API for a Harbor
    /// (projects, then each project's repositories), else the catalog.
    pub async fn list_repositories(&self, max: usize) -> RemoteResult<Vec<String>> {
        let client = self.client()?;
        if self.registry_type != HARBOR {
            return client.catalog(max).await;
        }
        #[derive(serde::Deserialize)]
        struct Named {
            name: String,
        }
        const PAGE: usize = 100;
        let pages = |path: String| {
            let client = &client;
            async move {
                let mut names = Vec::new();
                for page in 1.. {
                    let sep = if path.contains('?') { '&' } else { '?' };
                    let body = client.harbor_api_get(&format!("{path}{sep}page={page}&page_size={PAGE}")).await?;
                    let items: Vec<Named> = serde_json::from_slice(&body)
                        .map_err(|e| RemoteError::protocol(format!("{path}: unreadable listing: {e}")))?;
                    let n = items.len();
                    names.extend(items.into_iter().map(|i| i.name));
                    if names.len() > max {
                        return Err(RemoteError::protocol(format!("{path}: more than {max} entries")));
                    }
                    if n < PAGE {
                        break;
                    }
                }
                Ok::<_, RemoteError>(names)
            }
        };
        let mut out = Vec::new();
        for project in pages("api/v2.0/projects".to_owned()).await? {
            let encoded = percent_encoding::utf8_percent_encode(&project, percent_encoding::NON_ALPHANUMERIC);
            out.extend(pages(format!("api/v2.0/projects/{encoded}/repositories")).await?);
            if out.len() > max {
                return Err(RemoteError::protocol(format!("the registry has more than {max} repositories")));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn target(registry_type: &str, url: &str, key: &str, secret: &str) -> Target {
        Target {
            registry_type: registry_type.to_owned(),
            url: url.to_owned(),
            credential_type: "basic".to_owned(),
            access_key: key.to_owned(),
            access_secret: secret.to_owned(),
            insecure: false,
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn docker_hub_uses_its_registry_host_and_library_prefix() {
        let t = target(DOCKER_HUB, "https://hub.docker.com", "", "");
        assert_eq!(t.registry_url().unwrap().as_str(), "https://registry-1.docker.io/");
        assert_eq!(t.repository_name("busybox"), "library/busybox");
        assert_eq!(t.repository_name("bitnami/redis"), "bitnami/redis");
        assert_eq!(t.credential().unwrap(), Credential::Anonymous);
        let other = target(DOCKER_REGISTRY, "http://127.0.0.1:5000", "u", "p");
        assert_eq!(other.repository_name("busybox"), "busybox");
        assert_eq!(other.credential().unwrap(), Credential::Basic { username: "u".into(), password: "p".into() });
    }

    #[test]
    fn credentials_follow_their_type() {
        let mut t = target(HARBOR, "https://h.example", "robot$x", "s3cret");
        t.credential_type = "oauth".into();
        assert_eq!(t.credential().unwrap(), Credential::Header("Bearer s3cret".into()));
        t.credential_type = "kerberos".into();
        assert!(t.credential().is_err());
        let ecr = target(AWS_ECR, "https://1.dkr.ecr.eu-west-1.amazonaws.com", "AK", "SK");
        assert_eq!(
            ecr.credential().unwrap(),
            Credential::AwsEcr { access_key: "AK".into(), secret_key: "SK".into(), region: "eu-west-1".into() }
        );
    }

    #[test]
    fn every_type_has_info() {
        for t in TYPES {
            assert_eq!(info(t).kind, t);
            assert!(!info(t).supported_triggers.is_empty());
        }
        assert_eq!(info(HARBOR).supported_copy_by_chunk, Some(true));
        assert!(provider_info(AWS_ECR).endpoint_pattern.unwrap().endpoints.iter().any(|e| e.key == "us-east-1"));
        assert_eq!(provider_info(DOCKER_REGISTRY), ProviderInfo { endpoint_pattern: None, credential_pattern: None });
        assert!(is_known("huawei-SWR") && !is_known("huawei-swr"));
    }
}

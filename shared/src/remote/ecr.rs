//! AWS ECR's registry password: `ecr:GetAuthorizationToken` with the
//! endpoint's access key, giving a Basic `AWS:<password>` valid for hours.
//!
//! The ECR API endpoint is the SDK's own choice for the region, or the
//! standard `AWS_ENDPOINT_URL_ECR` / `AWS_ENDPOINT_URL` override (an
//! emulator). The credentials are the endpoint's only: the SDK never looks
//! for others (no instance metadata, no profile).

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_ecr::config::{Credentials, Region};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::error::{ErrorKind, RemoteError, RemoteResult};

/// How long a token is kept when ECR gives no expiry (ECR's are 12 hours).
const DEFAULT_TTL: Duration = Duration::from_secs(3600);
/// Tokens are dropped this long before ECR's expiry.
const MARGIN: Duration = Duration::from_secs(300);

/// The region of an ECR registry host
/// (`<account>.dkr.ecr.<region>.amazonaws.com[.cn]`, or the API host
/// `api.ecr.<region>.amazonaws.com` Harbor's endpoint list offers).
pub fn region_of(host: &str) -> Option<String> {
    let labels: Vec<&str> = host.split('.').collect();
    let ecr = labels.iter().position(|l| *l == "ecr")?;
    let region = labels.get(ecr + 1)?;
    let rest = &labels[ecr + 2..];
    let aws = rest.first().is_some_and(|l| *l == "amazonaws");
    (aws && !region.is_empty()).then(|| (*region).to_owned())
}

/// The `AWS:<password>` of an authorization token, and how long to keep it.
pub async fn authorization_token(access_key: &str, secret_key: &str, region: &str) -> RemoteResult<(String, Duration)> {
    let credentials = Credentials::new(access_key, secret_key, None, None, "berth-registry-endpoint");
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .credentials_provider(credentials)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(super::client::CONNECT_TIMEOUT)
                .operation_timeout(Duration::from_secs(60))
                .build(),
        )
        .load()
        .await;
    let client = aws_sdk_ecr::Client::new(&config);
    let out = client.get_authorization_token().send().await.map_err(|e| {
        let status = e.raw_response().map(|r| r.status().as_u16());
        let kind = match status {
            Some(400 | 401 | 403) => ErrorKind::Unauthorized,
            Some(429) => ErrorKind::TooManyRequests,
            _ => ErrorKind::Unavailable,
        };
        let mut err = RemoteError::new(
            kind,
            format!("ecr:GetAuthorizationToken: {}", aws_sdk_ecr::error::DisplayErrorContext(&e)),
        );
        err.status = status;
        err
    })?;
    let data = out
        .authorization_data()
        .first()
        .ok_or_else(|| RemoteError::protocol("ecr:GetAuthorizationToken gave no authorization data"))?;
    let token =
        data.authorization_token().ok_or_else(|| RemoteError::protocol("ecr:GetAuthorizationToken gave no token"))?;
    let decoded = B64
        .decode(token.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|s| s.contains(':'))
        .ok_or_else(|| RemoteError::protocol("ecr:GetAuthorizationToken gave a token that is not user:password"))?;
    // An expiry already past (an emulator's) keeps the token a second.
    let ttl = data
        .expires_at()
        .map(|at| {
            let left = u64::try_from(at.secs() - chrono::Utc::now().timestamp()).unwrap_or(0);
            Duration::from_secs(left).saturating_sub(MARGIN)
        })
        .unwrap_or(DEFAULT_TTL)
        .max(Duration::from_secs(1));
    Ok((decoded, ttl))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_come_from_ecr_hosts() {
        assert_eq!(region_of("123456789012.dkr.ecr.eu-west-1.amazonaws.com").as_deref(), Some("eu-west-1"));
        assert_eq!(region_of("api.ecr.us-east-1.amazonaws.com").as_deref(), Some("us-east-1"));
        assert_eq!(region_of("1.dkr.ecr.cn-north-1.amazonaws.com.cn").as_deref(), Some("cn-north-1"));
        assert_eq!(region_of("registry.example.com"), None);
        assert_eq!(region_of("127.0.0.1"), None);
    }
}

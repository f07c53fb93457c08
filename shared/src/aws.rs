//! Building AWS SDK clients from [`AwsConfig`]: region, endpoint (an
//! emulator or LocalStack), timeouts and retries, set once for every client
//! so that an unreachable endpoint fails in seconds, not minutes.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::http::HttpResponse;

use crate::config::AwsConfig;
use crate::port::{ErrorKind, PortError};

/// The shared SDK configuration: the standard AWS environment (credentials,
/// `AWS_REGION`, `AWS_ENDPOINT_URL`), overridden by the berth config.
pub async fn sdk_config(cfg: &AwsConfig) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(cfg.connect_timeout_secs))
                .read_timeout(Duration::from_secs(60))
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(3));
    if let Some(region) = &cfg.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(endpoint) = &cfg.endpoint {
        loader = loader.endpoint_url(endpoint.clone());
    }
    loader.load().await
}

/// Whether S3 should use path-style addressing: as configured, else on
/// whenever a custom endpoint is in use (emulators need it).
pub fn path_style(cfg: &AwsConfig, sdk: &SdkConfig) -> bool {
    cfg.force_path_style.unwrap_or(sdk.endpoint_url().is_some())
}

/// Translates any SDK error into a port error: throttling, server-side
/// failures (5xx, 429), timeouts and dispatch failures are `Unavailable`;
/// anything else is `Internal`. Backends map their service-specific codes
/// first and pass the rest here.
pub fn sdk_error<E>(what: &str, err: aws_sdk_s3::error::SdkError<E, HttpResponse>) -> PortError
where
    E: std::error::Error + Send + Sync + 'static,
{
    use aws_sdk_s3::error::SdkError;
    let transient = match &err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => true,
        _ => err.raw_response().is_some_and(|r| {
            let status = r.status().as_u16();
            status == 429 || status >= 500
        }),
    };
    let kind = if transient { ErrorKind::Unavailable } else { ErrorKind::Internal };
    let detail = aws_sdk_s3::error::DisplayErrorContext(&err).to_string();
    PortError::msg(kind, format_args!("{what}: {detail}"))
}

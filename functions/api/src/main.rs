//! `api`: the berth router as an AWS Lambda function (function URL or API
//! Gateway HTTP API events, through `lambda_http`). The context is built
//! once per cold start from `BERTH_*` variables (and `BERTH_CONFIG`, a TOML
//! file shipped with the function, if set). A function has no disk to keep
//! a local store on, so the backend is always AWS.

use berth::config::{Backend, Config, Overrides};
use berth::context::AppContext;

/// jemalloc returns freed memory to the system (settings in
/// `.cargo/config.toml`), so a burst of requests leaves no lasting RSS.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let file = std::env::var_os("BERTH_CONFIG").map(std::path::PathBuf::from);
    let overrides = Overrides { backend: Some(Backend::Aws), ..Overrides::default() };
    let config = Config::load(file.as_deref(), &overrides)?;
    berth::telemetry::init(berth::config::LogFormat::Json, &config.log.level);
    let ctx = AppContext::open(config).await?;
    lambda_http::run(berth::http::router(ctx)).await
}

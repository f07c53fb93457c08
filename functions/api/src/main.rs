//! `api`: the berth router as an AWS Lambda function (function URL or API
//! Gateway HTTP API events, through `lambda_http`). The context is built
//! once per cold start from `BERTH_*` variables (and `BERTH_CONFIG`, a TOML
//! file shipped with the function, if set). A function has no disk to keep
//! a local store on, so the backend is always AWS. The events and pulls a
//! request raised are sent to the events queue before its invocation ends.

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
    let router = berth::http::router(ctx.clone());
    // A function is frozen between invocations: what a request raised
    // (events, pulls) is sent before its invocation returns.
    lambda_http::run(lambda_http::service_fn(move |req: lambda_http::Request| {
        let (router, events) = (router.clone(), ctx.events.clone());
        async move {
            let resp = lambda_http::tower::ServiceExt::oneshot(router, req).await?;
            events.flush().await;
            Ok::<_, lambda_http::Error>(resp)
        }
    }))
    .await
}

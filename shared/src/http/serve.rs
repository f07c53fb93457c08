//! Serving the router on a TCP listener until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::context::AppContext;
use crate::startup::StartupError;

/// Binds `addr` and serves until a shutdown signal; in-flight requests are
/// allowed to finish.
pub async fn serve(ctx: Arc<AppContext>, addr: SocketAddr) -> Result<(), StartupError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| StartupError::new(format!("cannot listen on {addr}: {e}")))?;
    let local = listener.local_addr().unwrap_or(addr);
    tracing::info!(address = %local, backend = ?ctx.config.backend, role = ?ctx.config.server.role, "berth listening");
    if ctx.config.metric.enabled {
        serve_metrics(&ctx, addr).await?;
    }
    let app = super::router(ctx).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| StartupError::new(format!("server failed: {e}")))
}

/// Serves the metrics on `metric.port` of the listen address, in the
/// background until a shutdown signal.
async fn serve_metrics(ctx: &AppContext, addr: SocketAddr) -> Result<(), StartupError> {
    let m = &ctx.config.metric;
    let at = SocketAddr::new(addr.ip(), m.port);
    let listener = tokio::net::TcpListener::bind(at)
        .await
        .map_err(|e| StartupError::new(format!("cannot listen on {at} for metrics (metric.port): {e}")))?;
    tracing::info!(address = %at, path = %m.path, "metrics listening");
    let app = super::metrics::router(ctx.registry(), &m.path);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await {
            tracing::error!(error = %e, "metrics server failed");
        }
    });
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}

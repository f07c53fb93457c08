//! The HTTP surface, one axum `Router` for every host (the `berth` server,
//! containers, the `api` Lambda): `/v2` (OCI distribution), health and, as
//! they land, `/service/token` and `/api/v2.0`.
//!
//! Handlers parse and authorize requests, call services and map service
//! errors to the protocol's error body; they hold no registry rules.

pub mod api;
mod router;
mod serve;
pub mod state;
pub mod v2;

pub use router::router;
pub use serve::serve;

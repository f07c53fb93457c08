//! berth: an object-store-first container registry. This crate is the whole
//! registry; the binaries in `functions/` only host it.
//!
//! Dependencies point one way: hosts → [`http`] → services → ports
//! ([`blob`], [`meta`], [`queue`]) → their backends.

pub mod auth;
pub mod aws;
pub mod blob;
pub mod config;
pub mod context;
pub mod http;
pub mod localdb;
pub mod meta;
pub mod migrate;
pub mod oci;
pub mod port;
pub mod queue;
pub mod service;
pub mod telemetry;

#[cfg(any(test, feature = "conformance"))]
pub mod testkit;

//! berth: an object-store-first container registry. This crate is the whole
//! registry; the binaries in `functions/` only host it.
//!
//! Dependencies point one way: hosts → [`http`] → [`auth`] → [`service`]
//! → ports ([`blob`], [`meta`], [`queue`]) → their backends. The
//! permission matrix ([`rbac`]) is data both `auth` and `service` read.

pub mod auth;
pub mod aws;
pub mod blob;
pub mod config;
pub mod context;
pub mod events;
pub mod http;
pub mod jobs;
pub mod localdb;
pub mod meta;
pub mod metrics;
pub mod migrate;
pub mod oci;
pub mod p2p;
pub mod port;
pub mod queue;
pub mod rbac;
pub mod remote;
pub mod scanner;
pub mod service;
pub mod startup;
pub mod telemetry;

#[cfg(any(test, feature = "conformance"))]
pub mod testkit;

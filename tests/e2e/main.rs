//! End-to-end tests: the real `berth` binary, real clients, and the AWS
//! emulator (moto) when `AWS_ENDPOINT_URL` points at one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../support/mod.rs"]
mod support;

mod accessories;
mod additions;
mod auth_faults;
mod backup;
mod builtin_scanner;
mod clients;
mod container;
mod content_trust;
mod deploy_static;
mod direct_upload;
mod events;
mod faults;
mod gc;
mod harbor_api;
mod identity;
mod immutability;
mod import;
mod jobservice;
mod labels;
mod ldap;
mod metrics;
mod oci_conformance;
mod oidc;
mod permissions;
mod portal;
mod preheat;
mod proxy_cache;
mod pull_policy_clients;
mod quotas;
mod registries;
mod replicas;
mod replication;
mod retention;
mod scanner_adapter;
mod scanning;
mod security_hub;
mod startup;
mod syft_parity;
mod tokens;
mod upload_host;

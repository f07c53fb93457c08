//! The registry's rules, written once for every host: services take the
//! ports ([`crate::blob`], [`crate::meta`], [`crate::queue`]) and never know
//! which backend is behind them, nor anything of HTTP.

pub mod accounts;

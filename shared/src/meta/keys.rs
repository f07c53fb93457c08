//! Every key of the metadata table, built here and nowhere else.
//!
//! ```text
//! item                          pk                       sk
//! schema version                SYS                      SCHEMA
//! user                          USR#<name>               META
//! ```
//! (The registry's items are added here as the services that own them land;
//! ARCHITECTURE.md draws the whole intended layout.)

/// The item recording which schema version `berth migrate` has applied.
pub fn schema_version() -> (&'static str, &'static str) {
    ("SYS", "SCHEMA")
}

/// A user account.
pub fn user(name: &str) -> (String, &'static str) {
    (format!("USR#{name}"), "META")
}

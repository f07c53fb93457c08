//! Who is asking, and may they.
//!
//! [`authenticator`] turns a request's credentials into a [`Subject`]
//! (checking passwords and robot secrets through the registry, or asking a
//! directory: [`ldap`], [`oidc`]); [`authorize`] is the one function that
//! answers whether a subject may take an action on the registry, a project
//! or a repository, reading the matrix in [`crate::rbac`]. Registry tokens
//! ([`token`]) and portal sessions ([`session`]) are signed here.
//!
//! This layer never writes table items: what it must keep (OIDC logins,
//! identities, session logouts, users onboarded from a directory) it hands
//! to the services of [`crate::service`].

pub mod authenticator;
pub mod authorize;
pub mod ldap;
pub mod oidc;
pub mod seal;
pub mod session;
pub mod token;

pub use authenticator::{AuthError, Authenticator, Directory};
pub use authorize::{
    Decision, Grant, On, ProjectAccess, RobotPrincipal, Subject, UserPrincipal, access_to, authorize, scope_word,
};

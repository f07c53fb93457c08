//! The error every backend port returns: a kind callers match on, plus the
//! source for logs.
//!
//! Backends translate SDK and I/O errors into a [`PortError`] at their edge;
//! nothing above a port ever matches on an `aws_sdk_*`, `redb` or `io` type.

use std::fmt;

/// What went wrong, as far as a caller of a port needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The key, item, upload or message does not exist.
    NotFound,
    /// A create-only write found the target already present.
    AlreadyExists,
    /// A conditional write's condition did not hold; nothing was written.
    ConditionFailed,
    /// A byte range lies outside the object.
    InvalidRange,
    /// The request breaks a rule of the port (a part too small, a bad key,
    /// too many writes in one transaction).
    InvalidInput,
    /// The backend could not be reached or refused service; retrying may help.
    Unavailable,
    /// Anything else: a bug or corrupted state.
    Internal,
}

/// A port failure: a kind plus its cause.
pub struct PortError {
    kind: ErrorKind,
    source: anyhow::Error,
}

impl PortError {
    pub fn new(kind: ErrorKind, source: impl Into<anyhow::Error>) -> Self {
        Self { kind, source: source.into() }
    }

    pub fn msg(kind: ErrorKind, message: impl fmt::Display) -> Self {
        Self { kind, source: anyhow::anyhow!("{message}") }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn is(&self, kind: ErrorKind) -> bool {
        self.kind == kind
    }

    /// Adds context to the cause without changing the kind.
    pub fn context(self, context: impl fmt::Display + Send + Sync + 'static) -> Self {
        Self { kind: self.kind, source: self.source.context(context) }
    }
}

impl fmt::Debug for PortError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {:#}", self.kind, self.source)
    }
}

impl fmt::Display for PortError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.source)
    }
}

impl std::error::Error for PortError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.source()
    }
}

pub type PortResult<T> = Result<T, PortError>;

/// Translates a local I/O error: a missing file is `NotFound`, everything
/// else is `Internal` (a local disk that fails is not a transient outage).
impl From<std::io::Error> for PortError {
    fn from(e: std::io::Error) -> Self {
        let kind = match e.kind() {
            std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            std::io::ErrorKind::AlreadyExists => ErrorKind::AlreadyExists,
            _ => ErrorKind::Internal,
        };
        Self::new(kind, e)
    }
}

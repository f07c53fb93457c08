//! What a registry operation can fail with, in the registry's own terms.
//! The HTTP layer translates each into the protocol's error (one `From`
//! per protocol); services never pick status codes.

use crate::oci::Digest;
use crate::port::{ErrorKind, PortError};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("blob {0} unknown to this repository")]
    BlobUnknown(Digest),
    #[error("upload unknown")]
    UploadUnknown,
    #[error("upload invalid: {0}")]
    UploadInvalid(String),
    /// A chunk that does not start at the upload's offset.
    #[error("chunk does not start at offset {offset}")]
    RangeInvalid { offset: u64 },
    /// A blob read whose range lies outside the blob.
    #[error("range outside a blob of {size} bytes")]
    RangeNotSatisfiable { size: u64 },
    #[error("digest invalid: {0}")]
    DigestInvalid(String),
    #[error("manifest {0} unknown")]
    ManifestUnknown(String),
    #[error("manifest invalid: {0}")]
    ManifestInvalid(String),
    #[error("manifest references {0}, unknown to this repository")]
    ManifestBlobUnknown(Digest),
    /// What is unknown: the repository, or its project.
    #[error("{0}")]
    NameUnknown(String),
    #[error("too large: {0}")]
    TooLarge(String),
    /// Bad input to a management operation.
    #[error("{0}")]
    Invalid(String),
    /// A management resource (project, member…) that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The operation is refused to this caller whatever its permissions
    /// (deleting the administrator, oneself).
    #[error("{0}")]
    Forbidden(String),
    /// Creating what exists already.
    #[error("{0}")]
    Conflict(String),
    /// The operation is refused in the resource's current state (deleting
    /// a project that still holds repositories).
    #[error("{0}")]
    PreconditionFailed(String),
    /// A tag an immutability rule protects cannot be moved or deleted
    /// (Harbor's 412 `PRECONDITION` on every path, `/v2` included).
    #[error("{0}")]
    Immutable(String),
    /// A pull refused by a project's policy: an unsigned image under
    /// content trust, or one too vulnerable (Harbor's 412
    /// `PROJECT_POLICY_VIOLATION`).
    #[error("{0}")]
    PolicyViolation(String),
    /// The change would take a project over its storage limit (Harbor's
    /// 403 `DENIED` with its quota message).
    #[error("{0}")]
    QuotaExceeded(String),
    /// A proxy-cache project's upstream registry failed, and nothing
    /// cached could answer instead.
    #[error("upstream registry: {0}")]
    Upstream(crate::remote::RemoteError),
    /// A pull a proxy-cache project refuses: the repository does not
    /// match the project's repository filter.
    #[error("{0}")]
    NotProxied(String),
    /// A backend failed: `Unavailable` (retry may help) or `Internal`.
    #[error(transparent)]
    Backend(PortError),
}

pub type ServiceResult<T> = Result<T, ServiceError>;

impl From<PortError> for ServiceError {
    fn from(e: PortError) -> Self {
        Self::Backend(e)
    }
}

impl ServiceError {
    /// Whether the backend said the store is unreachable (so the client may
    /// retry) rather than broken.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Backend(e) if e.is(ErrorKind::Unavailable))
    }
}

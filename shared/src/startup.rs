//! Why a process cannot start: one line that names what is wrong and, where
//! there is one, the fix.

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartupError(String);

impl StartupError {
    pub fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}

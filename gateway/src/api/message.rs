//! The reply of operations that have nothing to answer but that they did it.

use serde::Serialize;
use utoipa::ToSchema;

/// `{message}`: what was done, in words.
#[derive(Debug, Serialize, ToSchema)]
pub struct Message {
    /// What was done.
    pub message: String,
}

impl Message {
    /// A message from any text.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

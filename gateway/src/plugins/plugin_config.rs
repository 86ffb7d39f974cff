//! A call's configuration as the contract hands it: documents and an id that names them, so
//! a plugin fetches and parses documents once per id instead of receiving them every call.

use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Configuration documents (JSON text, most general first) and their id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginConfig {
    /// Names the documents: the first 8 bytes of a SHA-256 over them, so equal documents
    /// have equal ids on every instance and across restarts, and a change is a new id.
    pub id: u64,
    /// The documents.
    pub documents: Arc<[Arc<str>]>,
}

impl PluginConfig {
    /// A configuration of these documents.
    pub fn new(documents: Vec<Arc<str>>) -> Self {
        let mut hash = Sha256::new();
        for document in &documents {
            hash.update((document.len() as u64).to_le_bytes());
            hash.update(document.as_bytes());
        }
        let digest = hash.finalize();
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest[..8]);
        Self {
            id: u64::from_le_bytes(id),
            documents: documents.into(),
        }
    }

    /// One document.
    pub fn single(document: &str) -> Self {
        Self::new(vec![Arc::from(document)])
    }

    /// No document.
    pub fn none() -> Self {
        Self::new(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_the_documents_not_their_concatenation() {
        let a = PluginConfig::new(vec![Arc::from("ab"), Arc::from("c")]);
        let b = PluginConfig::new(vec![Arc::from("a"), Arc::from("bc")]);
        assert_ne!(a.id, b.id);
        assert_eq!(
            a.id,
            PluginConfig::new(vec![Arc::from("ab"), Arc::from("c")]).id
        );
        assert_ne!(PluginConfig::none().id, PluginConfig::single("").id);
    }
}

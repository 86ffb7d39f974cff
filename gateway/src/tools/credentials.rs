//! The tools' active credentials, opened once per activation (not per call) and kept in
//! memory; refreshed from the shared database so every instance follows an activation.

use crate::catalog::ToolName;
use crate::crypto::kek::{Envelope, Kek};
use crate::store::{Store, StoreError};
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::sync::Arc;
use zeroize::Zeroizing;

/// A credential in memory. `Debug` and `Display` never show it.
#[derive(Clone)]
pub struct Secret(Arc<Zeroizing<String>>);

impl std::ops::Deref for Secret {
    type Target = str;
    fn deref(&self) -> &str {
        self.0.as_str()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(redacted)")
    }
}

/// The envelope context of a tool's credential: an envelope opens only for its tool.
pub fn context(tool: &str) -> String {
    format!("credential:{tool}")
}

/// The envelope context of a credential's metadata.
pub fn metadata_context(tool: &str) -> String {
    format!("credential-metadata:{tool}")
}

/// Active credentials by tool, with the id of the row each came from.
pub struct Credentials {
    kek: Kek,
    active: ArcSwap<HashMap<ToolName, (String, Secret)>>,
    /// The periodic refresh and an activation's refresh take turns.
    refreshing: crate::refresh::Turns,
}

impl Credentials {
    /// No credential yet.
    pub fn new(kek: Kek) -> Self {
        Self {
            kek,
            active: ArcSwap::from_pointee(HashMap::new()),
            refreshing: crate::refresh::Turns::default(),
        }
    }

    /// Seals a credential for storage.
    pub fn seal(&self, tool: &str, credential: &str) -> Envelope {
        self.kek.seal(credential.as_bytes(), &context(tool))
    }

    /// Seals metadata for storage.
    pub fn seal_metadata(&self, tool: &str, metadata: &str) -> Envelope {
        self.kek.seal(metadata.as_bytes(), &metadata_context(tool))
    }

    /// True when `tool` has an active credential.
    pub fn has(&self, tool: ToolName) -> bool {
        self.active.load().contains_key(&tool)
    }

    /// The active credential of `tool`.
    pub fn active(&self, tool: ToolName) -> Option<Secret> {
        self.active.load().get(&tool).map(|(_, s)| s.clone())
    }

    /// Reloads the active set from the database, opening only credentials not yet open.
    /// A credential that does not open (another KEK, a tampered row) is left out and logged.
    pub async fn refresh(&self, store: &Store) -> Result<(), StoreError> {
        let _turn = self.refreshing.take().await;
        let rows = store.active_credentials().await?;
        let current = self.active.load();
        let mut next = HashMap::new();
        for row in rows {
            let Ok(tool) = row.tool.parse::<ToolName>() else {
                continue;
            };
            if let Some((id, secret)) = current.get(&tool).filter(|(id, _)| *id == row.id) {
                next.insert(tool, (id.clone(), secret.clone()));
                continue;
            }
            let opened = serde_json::from_str::<Envelope>(&row.credential)
                .ok()
                .and_then(|envelope| self.kek.open(&envelope, &context(&row.tool)).ok())
                .and_then(|bytes| String::from_utf8(bytes.to_vec()).ok());
            match opened {
                Some(text) => {
                    next.insert(tool, (row.id, Secret(Arc::new(Zeroizing::new(text)))));
                }
                None => tracing::error!(
                    tool = %row.tool,
                    id = %row.id,
                    "an active credential does not open under KEK_BASE64; the tool stays unconfigured"
                ),
            }
        }
        self.active.store(Arc::new(next));
        Ok(())
    }
}

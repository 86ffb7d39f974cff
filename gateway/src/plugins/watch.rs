//! Hot reload: watches the plugin directory and reloads the set when `plugins.toml`, a
//! `.wasm` file or its signature (`.wasm.sig`) changes (events are coalesced for 200 ms so
//! a file copy reloads once).

use super::registry::{PluginRegistry, MANIFEST_FILE};
use notify::{RecursiveMode, Watcher};
use std::sync::Arc;
use std::time::Duration;

/// Quiet time after the last change before reloading.
const DEBOUNCE: Duration = Duration::from_millis(200);

/// Starts watching; the returned guard stops the watch when dropped.
pub fn spawn(
    registry: Arc<PluginRegistry>,
) -> notify::Result<(notify::RecommendedWatcher, tokio::task::JoinHandle<()>)> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            let relevant = event.paths.iter().any(|p| {
                p.file_name().is_some_and(|n| n == MANIFEST_FILE)
                    || p.extension().is_some_and(|e| e == "wasm" || e == "sig")
            });
            if relevant && !event.kind.is_access() {
                let _ = tx.send(());
            }
        }
    })?;
    watcher.watch(registry.dir(), RecursiveMode::NonRecursive)?;
    let task = tokio::spawn(async move {
        while rx.recv().await.is_some() {
            // Coalesce a burst of events (a copy writes in several steps).
            loop {
                match tokio::time::timeout(DEBOUNCE, rx.recv()).await {
                    Ok(Some(())) => continue,
                    Ok(None) => return,
                    Err(_) => break,
                }
            }
            let _ = registry.reload().await;
        }
    });
    Ok((watcher, task))
}

//! Stop signals for background tasks: a `watch<bool>` that turns true once.

use tokio::sync::watch;

/// Resolves once `stop` is (or becomes) true, or its sender is gone.
pub async fn requested(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not Send; drop it here, not in callers.
    let _ = stop.wait_for(|stopped| *stopped).await;
}

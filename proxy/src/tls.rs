//! TLS plumbing shared by mcpd's clients (plugins' outbound HTTP, and HTTP
//! upstreams later): rustls with the ring crypto provider.

/// Makes ring rustls' process-wide provider (once; later calls do nothing).
pub fn install_crypto_provider() {
    // Fails only when a provider is already installed, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

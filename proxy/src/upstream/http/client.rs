//! The HTTP client mcpd reaches instances with: hyper's pooled client
//! (keep-alive connections per instance, bounded idle pool), HTTP/1.1 or
//! (`http2 = true`) HTTP/2 only, rustls for `https` with the system's roots or the configured `ca_file`.
//!
//! `pool_max_lifetime`: hyper's pool has no age limit, so [`Generations`]
//! replaces the whole client once it is that old. Requests from then on
//! use the new one; the old pool's connections close as their requests
//! end (the pool is gone), so no connection is reused past the limit.

use crate::config::HttpUpstreamSettings;
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::path::Path;
use std::sync::RwLock;
use std::time::{Duration, Instant};

pub type Client = hyper_util::client::legacy::Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Builds the client for one server's instances.
pub fn build(settings: &HttpUpstreamSettings) -> Result<Client, String> {
    crate::tls::install_crypto_provider();
    let mut connector = HttpConnector::new();
    connector.enforce_http(false);
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(settings.connect_timeout));
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = match &settings.ca_file {
        None => builder.with_native_roots().map_err(|e| format!("cannot load the system's CA certificates: {e}"))?,
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in certificates(path)? {
                roots.add(cert).map_err(|e| format!("{}: {e}", path.display()))?;
            }
            let tls = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
            builder.with_tls_config(tls)
        }
    };
    let builder = builder.https_or_http();
    let https = match settings.http2 {
        true => builder.enable_http2().wrap_connector(connector),
        false => builder.enable_http1().wrap_connector(connector),
    };
    Ok(hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_max_idle_per_host(settings.pool_max_idle)
        .pool_idle_timeout(settings.pool_idle_timeout)
        .pool_timer(hyper_util::rt::TokioTimer::new())
        .http2_only(settings.http2)
        .build(https))
}

/// The client, replaced by a fresh one every `max_lifetime` (if set).
pub struct Generations {
    settings: HttpUpstreamSettings,
    current: RwLock<(Instant, Client)>,
}

impl Generations {
    pub fn new(settings: &HttpUpstreamSettings) -> Result<Generations, String> {
        let client = build(settings)?;
        Ok(Generations { settings: settings.clone(), current: RwLock::new((Instant::now(), client)) })
    }

    /// The client to send with now.
    pub fn client(&self) -> Client {
        let Some(max) = self.settings.pool_max_lifetime else {
            return self.read().1;
        };
        let (born, client) = self.read();
        if born.elapsed() < max {
            return client;
        }
        self.renew(born, max).unwrap_or(client)
    }

    fn read(&self) -> (Instant, Client) {
        let current = self.current.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        (current.0, current.1.clone())
    }

    /// A new generation, unless another request made one since `seen`.
    fn renew(&self, seen: Instant, max: Duration) -> Option<Client> {
        let mut current = self.current.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if current.0 == seen {
            match build(&self.settings) {
                Ok(client) => *current = (Instant::now(), client),
                // The settings built a client before; keep it rather than fail requests.
                Err(e) => {
                    tracing::warn!("cannot renew the HTTP client after {max:?} (pool_max_lifetime): {e}");
                    current.0 = Instant::now();
                }
            }
        }
        Some(current.1.clone())
    }
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: not a PEM certificate file: {e}", path.display()))
}

/// How many certificates a PEM CA file holds (config validation).
pub fn read_ca_file(path: &Path) -> Result<usize, String> {
    certificates(path).map(|c| c.len())
}

/// An error and its causes on one line ("client error (Connect): tcp connect error: Connection refused").
pub fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}

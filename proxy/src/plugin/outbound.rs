//! Outbound HTTP for plugins (the `http-client` import): the allow-list
//! check and the request itself.
//!
//! A plugin may only reach the hosts its `allow_hosts` names: `host` allows
//! any port of that host, `host:port` that port only. Redirects are not
//! followed (a redirect could lead off the list); the plugin sees the 3xx.
//! Answers are read whole, up to the plugin's `max_output`.

use std::sync::OnceLock;
use std::time::Duration;

/// The longest a plugin's request may take, whatever it asks for.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct Outbound {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub timeout: Duration,
}

#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

type Client = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Full<bytes::Bytes>,
>;

fn client() -> Result<&'static Client, String> {
    static CLIENT: OnceLock<Result<Client, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            crate::tls::install_crypto_provider();
            let https = hyper_rustls::HttpsConnectorBuilder::new()
                .with_native_roots()
                .map_err(|e| format!("cannot load the system's CA certificates: {e}"))?
                .https_or_http()
                .enable_http1()
                .build();
            let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(https);
            Ok(client)
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Whether `url` is http(s) to a host on `allowed`; the error says why not.
pub fn check_allowed(url: &http::Uri, allowed: &[String]) -> Result<(), String> {
    let scheme = url.scheme_str().unwrap_or_default();
    if !matches!(scheme, "http" | "https") {
        return Err(format!("{url}: only http and https URLs are allowed"));
    }
    let host = url.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    let port = url.port_u16().unwrap_or(if scheme == "https" { 443 } else { 80 });
    let listed = allowed.iter().any(|entry| match entry.rsplit_once(':') {
        // `[::1]:8080`, `host:8080`; a bare IPv6 address has more colons.
        Some((h, p)) if p.parse::<u16>().is_ok() && !h.ends_with(':') && (!h.contains(':') || h.ends_with(']')) => {
            h.trim_start_matches('[').trim_end_matches(']') == host && p.parse() == Ok(port)
        }
        _ => entry.trim_start_matches('[').trim_end_matches(']') == host,
    });
    match listed {
        true => Ok(()),
        false if allowed.is_empty() => Err(format!("{host}: the plugin has no `allow_hosts`, so no outbound HTTP")),
        false => Err(format!("{host}:{port} is not in the plugin's `allow_hosts`")),
    }
}

/// Sends `request` if its host is allowed; reads at most `max_body` bytes.
pub async fn send(request: Outbound, allowed: &[String], max_body: usize) -> Result<Answer, String> {
    use http_body_util::BodyExt;
    let url: http::Uri = request.url.parse().map_err(|e| format!("{}: not a URL: {e}", request.url))?;
    check_allowed(&url, allowed)?;
    let method = http::Method::from_bytes(request.method.as_bytes())
        .map_err(|_| format!("{:?} is not an HTTP method", request.method))?;
    let mut builder = http::Request::builder().method(method).uri(url.clone());
    for (name, value) in &request.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let body = http_body_util::Full::new(bytes::Bytes::from(request.body.unwrap_or_default()));
    let outgoing = builder.body(body).map_err(|e| format!("{url}: {e}"))?;
    let exchange = async {
        let response = client()?.request(outgoing).await.map_err(|e| format!("{url}: {}", describe(&e)))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(name, value)| Some((name.as_str().to_string(), value.to_str().ok()?.to_string())))
            .collect();
        let mut incoming = response.into_body();
        let mut body = Vec::new();
        while let Some(frame) = incoming.frame().await {
            let frame = frame.map_err(|e| format!("{url}: {}", describe(&e)))?;
            if let Some(chunk) = frame.data_ref() {
                if body.len() + chunk.len() > max_body {
                    return Err(format!("{url}: the answer is larger than the plugin's max_output ({max_body} bytes)"));
                }
                body.extend_from_slice(chunk);
            }
        }
        Ok(Answer { status, headers, body })
    };
    let limit = request.timeout.min(MAX_TIMEOUT);
    tokio::time::timeout(limit, exchange).await.map_err(|_| format!("{url}: no complete answer within {limit:?}"))?
}

fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(url: &str, list: &[&str]) -> bool {
        let list: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        url.parse().is_ok_and(|url| check_allowed(&url, &list).is_ok())
    }

    #[test]
    fn allow_list_matches_host_and_port() {
        assert!(allowed("http://127.0.0.1:9000/x", &["127.0.0.1:9000"]));
        assert!(!allowed("http://127.0.0.1:9001/x", &["127.0.0.1:9000"]));
        assert!(allowed("https://keys.example/jwks", &["keys.example"]));
        assert!(allowed("https://keys.example/jwks", &["keys.example:443"]));
        assert!(!allowed("https://evil.example/", &["keys.example"]));
        assert!(!allowed("https://keys.example.evil/", &["keys.example"]));
        assert!(allowed("http://[::1]:8080/", &["[::1]:8080"]));
        assert!(allowed("http://[::1]:8080/", &["::1"]));
        assert!(!allowed("ftp://localhost/x", &["localhost"]));
        assert!(!allowed("http://127.0.0.1/", &[]));
    }
}

//! Outbound HTTP through mcpd (the `http-client` import): only to the hosts
//! the plugin's `allow_hosts` lists in mcpd.toml. A JWKS fetch, a call to
//! the REST API a translator exposes.
//!
//! ```no_run
//! use mcpd_plugin_sdk::http;
//! let keys = http::get("https://issuer.example/.well-known/jwks.json")?;
//! assert!(keys.ok());
//! # Ok::<(), http::HttpError>(())
//! ```
//!
//! In a native build (a plugin's unit tests) there is no network: requests
//! are answered by what the test registered with [`testing::respond`], and
//! refused otherwise.

use std::fmt;
use std::time::Duration;

use crate::Header;
use crate::host::http as raw;

/// How long a request may take unless the plugin says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// An outbound request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub method: String,
    pub url: String,
    pub headers: Vec<Header>,
    pub body: Option<Vec<u8>>,
    pub timeout: Duration,
}

/// An answer (any status: a 404 is a response, not an error).
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<Header>,
    pub body: Vec<u8>,
}

/// The request was refused (host not allowed) or failed on the network.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpError(pub String);

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http: {}", self.0)
    }
}

impl std::error::Error for HttpError {}

impl Request {
    pub fn new(method: &str, url: impl Into<String>) -> Request {
        Request { method: method.into(), url: url.into(), headers: Vec::new(), body: None, timeout: DEFAULT_TIMEOUT }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Request {
        self.headers.push(Header { name: name.to_ascii_lowercase(), value: value.into() });
        self
    }

    /// A JSON body (and its content type).
    pub fn json(self, body: &serde_json::Value) -> Request {
        let mut request = self.header("content-type", "application/json");
        request.body = Some(body.to_string().into_bytes());
        request
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = Some(body.into());
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Request {
        self.timeout = timeout;
        self
    }

    pub fn send(self) -> Result<Response, HttpError> {
        raw::send(self).map_err(HttpError)
    }
}

impl Response {
    /// A 2xx status.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value.as_str())
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}

/// `GET url`.
pub fn get(url: &str) -> Result<Response, HttpError> {
    Request::new("GET", url).send()
}

/// Canned answers for unit tests (native builds only).
#[cfg(not(target_arch = "wasm32"))]
pub mod testing {
    pub use crate::host::http::{requests_seen, respond};
}

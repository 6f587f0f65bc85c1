//! HTTP upstreams: one or many instances of a Streamable HTTP MCP server.
//!
//! [`HttpUpstream`] is one server's instances, their balancer and the
//! pooled client that reaches them. A client session is bound to one
//! instance and that instance's own session ([`HttpSession`]): mcpd hands
//! the client its own `Mcp-Session-Id` and keeps the instance's to itself.
//! Messages pass through as the client sent them (no id rewriting: one
//! client session is one upstream session), and answers come back as
//! [`Call`]s that yield each SSE event as it arrives.
//!
//! What the client sent upstream: the body, `MCP-*` headers (protocol
//! version, stateless-era method/name/param headers) and the headers named
//! in `forward_headers`. `Authorization` and cookies are not passed on
//! unless listed: credentials for mcpd are not credentials for the server.

mod call;
pub mod client;
pub mod health;
pub mod instance;
mod session;
pub mod sse;
mod stateless;

pub use call::Call;
pub use session::HttpSession;

use super::balance::Balancer;
use crate::config::{HttpUpstreamSettings, ServerSettings, UpstreamTransport};
use crate::mcp::SESSION_HEADER;
use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method, Request};
use http_body_util::Full;
use instance::Instance;
use std::sync::Arc;

/// The largest answer, or SSE event, mcpd reads from an instance.
pub const MAX_ANSWER: usize = 64 << 20;

const POST_ACCEPT: HeaderValue = HeaderValue::from_static("application/json, text/event-stream");
const STREAM_ACCEPT: HeaderValue = HeaderValue::from_static("text/event-stream");
const JSON: HeaderValue = HeaderValue::from_static("application/json");

pub struct HttpUpstream {
    pub server: Arc<str>,
    pub settings: HttpUpstreamSettings,
    pub instances: Vec<Arc<Instance>>,
    balancer: Balancer,
    client: client::Generations,
}

impl HttpUpstream {
    pub fn new(server: &ServerSettings, settings: &HttpUpstreamSettings) -> Result<Arc<HttpUpstream>, String> {
        let name: Arc<str> = Arc::from(server.name.as_str());
        let legacy = settings.transport == UpstreamTransport::Sse;
        let instances: Vec<_> = settings.urls.iter().map(|url| Instance::new(&name, url.clone(), legacy)).collect();
        let labels: Vec<String> = instances.iter().map(|i| i.label.clone()).collect();
        Ok(Arc::new(HttpUpstream {
            client: client::Generations::new(settings)?,
            balancer: Balancer::new(&server.balance, &labels),
            server: name,
            settings: settings.clone(),
            instances,
        }))
    }

    /// The instance for a new session, skipping ejected ones and `tried`.
    pub fn pick(&self, key: Option<&[u8]>, tried: &[usize]) -> Option<usize> {
        self.balancer.pick(&self.instances, key, tried)
    }

    /// Some instance takes sessions.
    pub fn is_up(&self) -> bool {
        self.instances.iter().any(|i| i.is_up())
    }

    /// Some instance has not had its first health check yet.
    pub fn is_starting(&self) -> bool {
        !self.instances.iter().all(|i| i.is_checked())
    }

    /// `None` while some instance takes sessions; else why none does.
    pub fn down_reason(&self) -> Option<String> {
        if self.is_up() {
            return None;
        }
        let reasons: Vec<String> = self
            .instances
            .iter()
            .map(|i| format!("{}: {}", i.label, i.why_down().unwrap_or_else(|| "ejected".into())))
            .collect();
        Some(format!("no instance is healthy ({})", reasons.join("; ")))
    }

    /// A request to `instance`'s MCP endpoint (or `uri`), with the client's
    /// MCP headers and `forward_headers`, and the upstream `session`.
    pub(crate) fn request(
        &self,
        method: Method,
        uri: http::Uri,
        session: Option<&HeaderValue>,
        client: Option<&HeaderMap>,
        body: Bytes,
    ) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        let headers = request.headers_mut();
        if let Some(client) = client {
            for (name, value) in client {
                let name_text = name.as_str();
                if name_text.starts_with("mcp-") && name_text != SESSION_HEADER {
                    headers.append(name, value.clone());
                }
            }
            for name in &self.settings.forward_headers {
                for value in client.get_all(name) {
                    headers.append(name, value.clone());
                }
            }
        }
        for (name, value) in &self.settings.headers {
            headers.insert(name, value.clone());
        }
        if let Some(session) = session {
            headers.insert(SESSION_HEADER, session.clone());
        }
        request
    }

    /// A POST of one JSON-RPC message.
    pub(crate) fn post(
        &self,
        uri: http::Uri,
        session: Option<&HeaderValue>,
        client: Option<&HeaderMap>,
        body: Bytes,
    ) -> Request<Full<Bytes>> {
        let mut request = self.request(Method::POST, uri, session, client, body);
        request.headers_mut().insert(CONTENT_TYPE, JSON);
        request.headers_mut().insert(ACCEPT, POST_ACCEPT);
        request
    }

    /// A GET for an event stream.
    pub(crate) fn get_stream(
        &self,
        uri: http::Uri,
        session: Option<&HeaderValue>,
        client: Option<&HeaderMap>,
    ) -> Request<Full<Bytes>> {
        let mut request = self.request(Method::GET, uri, session, client, Bytes::new());
        request.headers_mut().insert(ACCEPT, STREAM_ACCEPT);
        request
    }

    pub(crate) fn send(&self, request: Request<Full<Bytes>>) -> hyper_util::client::legacy::ResponseFuture {
        self.client.client().request(request)
    }
}

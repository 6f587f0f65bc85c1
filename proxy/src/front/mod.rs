//! The client-facing side, on Pingora: listeners, routing, and the
//! endpoints (`/mcp`, health). [`McpApp`] is a Pingora `HttpServerApp`: it
//! reads each request, routes it, lets an endpoint answer, and hands the
//! connection back for keep-alive.

mod edge;
mod health;
mod intake;
mod plugin_hooks;
mod respond;
mod router;
mod service;
mod sse;
mod stateless;
mod streamable_http;
mod translate;

use crate::gateway::Gateway;
use async_trait::async_trait;
use bytes::Bytes;
use pingora::apps::{HttpPersistentSettings, HttpServerApp, ReusedHttpStream};
use pingora::protocols::http::ServerSession;
use pingora::server::ShutdownWatch;
use pingora::services::listening::Service;
use router::{Endpoint, Router};
use std::sync::Arc;

pub struct McpApp {
    gateway: Arc<Gateway>,
    router: Router,
    /// Open legacy HTTP+SSE connections (2024-11-05).
    sse: Arc<sse::Connections>,
}

/// One Pingora service listening on every configured address.
pub fn service(gateway: Arc<Gateway>) -> service::FrontService {
    let mut addresses: Vec<std::net::SocketAddr> = gateway.config.servers.iter().map(|s| s.listen).collect();
    addresses.sort();
    addresses.dedup();
    let app = McpApp { router: Router::new(&gateway.routes), gateway: Arc::clone(&gateway), sse: Arc::default() };
    let mut inner = Service::new("mcpd".to_string(), app);
    for address in addresses {
        inner.add_tcp(&address.to_string());
    }
    service::FrontService { inner, gateway }
}

#[async_trait]
impl HttpServerApp for McpApp {
    async fn process_new_http(
        self: &Arc<Self>,
        mut http: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        match http.read_request().await {
            Ok(true) => {}
            Ok(false) => return None,
            Err(error) => {
                tracing::debug!(target: "mcpd::access", "bad request from client: {error}");
                return None;
            }
        }
        let port = http.server_addr().and_then(|a| a.as_inet()).map(|a| a.port()).unwrap_or(0);
        let path = http.req_header().uri.path().to_string();
        let result = match self.router.resolve(port, &path) {
            None if path == "/metrics" => {
                let body = Bytes::from(crate::metrics::render());
                respond::body(&mut http, 200, Some("text/plain; version=0.0.4"), &[], body).await
            }
            Some((endpoint, route)) => {
                http.set_keepalive(Some(route.settings.http.keepalive_timeout.as_secs()));
                // Every MCP endpoint, whatever its transport, checks Host and Origin first.
                let checked = !matches!(endpoint, Endpoint::Health | Endpoint::ResourceMetadata);
                match (checked.then(|| edge::violation(route, &http)).flatten(), endpoint) {
                    (Some(violation), _) => edge::refuse(&mut http, &violation).await,
                    (None, Endpoint::Mcp) => streamable_http::serve(&self.gateway, route, &mut http).await,
                    (None, Endpoint::Health) => health::serve(route, &mut http).await,
                    (None, Endpoint::ResourceMetadata) => streamable_http::resource_metadata(route, &mut http).await,
                    (None, Endpoint::SseStream) => {
                        sse::serve(&self.gateway, route, &mut http, &self.sse, sse::Side::Stream).await
                    }
                    (None, Endpoint::SseMessage) => {
                        sse::serve(&self.gateway, route, &mut http, &self.sse, sse::Side::Message).await
                    }
                }
            }
            None => {
                let body = Bytes::from(format!(r#"{{"error":"no MCP endpoint at {path:?}"}}"#));
                respond::json(&mut http, 404, &[], body).await
            }
        };
        if let Err(error) = result {
            tracing::debug!(target: "mcpd::access", "writing to client failed: {error}");
            return None;
        }
        if *shutdown.borrow() || self.gateway.is_draining() {
            http.set_keepalive(None);
        }
        let persistent = HttpPersistentSettings::for_session(&http);
        match http.finish().await {
            Ok(Some(stream)) => Some(ReusedHttpStream::from_reusable_stream(stream, persistent)),
            _ => None,
        }
    }
}

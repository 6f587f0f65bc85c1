//! Which route and endpoint a request is for, by local port and path.
//!
//! A server with its own `port` answers at `/mcp` and its health path; a
//! server on the shared listener answers under `/NAME/`. Each MCP path also
//! has an OAuth protected-resource metadata path (RFC 9728:
//! `/.well-known/oauth-protected-resource` + the MCP path), answered by the
//! route's plugins (an auth plugin) or 404. With `"sse"` among its
//! transports a route also answers its legacy stream and message paths.

use crate::route::Route;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Mcp,
    Health,
    /// Legacy HTTP+SSE (2024-11-05): `GET` opens the stream.
    SseStream,
    /// Legacy HTTP+SSE: `POST ?sessionId=…` carries a client message.
    SseMessage,
    /// `/.well-known/oauth-protected-resource/…` for this route.
    ResourceMetadata,
}

/// RFC 9728's well-known prefix; the resource's path follows it.
pub const RESOURCE_METADATA: &str = "/.well-known/oauth-protected-resource";

#[derive(Default)]
pub struct Router {
    by_port: HashMap<u16, Vec<(String, Endpoint, Arc<Route>)>>,
}

impl Router {
    pub fn new(routes: &[Arc<Route>]) -> Router {
        let mut router = Router::default();
        for route in routes {
            let entries = router.by_port.entry(route.settings.listen.port()).or_default();
            if route.settings.transports.streamable_http {
                entries.push((route.settings.mcp_path(), Endpoint::Mcp, Arc::clone(route)));
            }
            if let Some((stream, message)) = route.settings.sse_routes() {
                entries.push((stream, Endpoint::SseStream, Arc::clone(route)));
                entries.push((message, Endpoint::SseMessage, Arc::clone(route)));
            }
            entries.push((route.settings.health_route(), Endpoint::Health, Arc::clone(route)));
            let metadata = format!("{RESOURCE_METADATA}{}", route.settings.mcp_path());
            entries.push((metadata, Endpoint::ResourceMetadata, Arc::clone(route)));
        }
        router
    }

    pub fn resolve(&self, port: u16, path: &str) -> Option<(Endpoint, &Arc<Route>)> {
        let path = match path.len() > 1 {
            true => path.trim_end_matches('/'),
            false => path,
        };
        self.by_port.get(&port)?.iter().find(|(p, _, _)| p == path).map(|(_, endpoint, route)| (*endpoint, route))
    }
}

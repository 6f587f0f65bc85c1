//! DNS-rebinding protection at the edge: a request whose `Host` or `Origin`
//! the route does not allow (`allowed_hosts`, `allowed_origins`, see
//! [`crate::config::EdgeSettings`]) gets 403 with a JSON-RPC error before
//! plugins or servers see it. The router applies it to every MCP endpoint;
//! health and OAuth metadata endpoints are not checked: they reveal nothing
//! a page could abuse, and browsers fetch the metadata cross-origin.

use super::respond;
use crate::mcp::errors::INVALID_REQUEST;
use crate::route::Route;
use pingora::protocols::http::ServerSession;

/// Why the request's `Host` or `Origin` is refused, if it is.
pub fn violation(route: &Route, http: &ServerSession) -> Option<String> {
    let edge = &route.settings.http.edge;
    let header = |name: &str| http.get_header(name).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    // HTTP/2 carries the host as the request's authority instead.
    let host = header("host").or_else(|| http.req_header().uri.authority().map(|a| a.as_str().to_string()));
    match (host, header("origin")) {
        (Some(host), _) if !edge.allows_host(&host) => Some(format!("Host {host:?} is not allowed on this server")),
        (_, Some(origin)) if !edge.allows_origin(&origin) => {
            Some(format!("Origin {origin:?} is not allowed on this server"))
        }
        // No Origin: not a browser (browsers send it on every POST). No Host
        // at all (HTTP/1.0): no browser either, nothing to rebind.
        _ => None,
    }
}

/// 403 with a JSON-RPC error saying which header was refused.
pub async fn refuse(http: &mut ServerSession, violation: &str) -> pingora::Result<()> {
    respond::rpc_error(http, 403, None, INVALID_REQUEST, violation, &[]).await
}

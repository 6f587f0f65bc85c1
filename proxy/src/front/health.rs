//! `GET /health`: `{"status":"ok","server":NAME,"transport":"streamable-http"}`,
//! or 503 with `"status":"down"` (and why) when the server cannot run.
//! `transport` names what clients can use: `streamable-http`, `sse` (the
//! 2024-11-05 endpoints) or both, `streamable-http,sse`.

use super::respond;
use crate::route::{Health, Route};
use bytes::Bytes;
use pingora::protocols::http::ServerSession;
use serde_json::json;

pub async fn serve(route: &Route, http: &mut ServerSession) -> pingora::Result<()> {
    let (status, body) = match route.health() {
        Health::Ok => (200, json!({"status": "ok"})),
        Health::Starting => (503, json!({"status": "starting"})),
        Health::Down(error) => (503, json!({"status": "down", "error": error})),
    };
    let mut body = body;
    body["server"] = json!(&*route.name);
    let transports = &route.settings.transports;
    body["transport"] = json!(match (transports.streamable_http, transports.sse.is_some()) {
        (true, true) => "streamable-http,sse",
        (false, true) => "sse",
        _ => "streamable-http",
    });
    respond::json(http, status, &[("cache-control", "no-store")], Bytes::from(body.to_string())).await
}

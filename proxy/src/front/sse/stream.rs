//! `GET <sse path>`: a legacy connection's stream, from the `endpoint`
//! event to the client's hang-up, which ends the session.
//!
//! The stream carries what [`super::answer`] sends (answers to POSTed
//! requests and the server messages that came with them) and, once
//! `initialize` bound the session, the session's outbox (server messages no
//! request waits for) and an HTTP instance's own server stream.

use super::super::plugin_hooks::Caller;
use super::super::respond;
use super::super::streamable_http::{Target, accepts, header, server_message};
use super::{Connection, Connections, Out};
use crate::gateway::Gateway;
use crate::mcp::errors::*;
use crate::route::Route;
use crate::session::{Busy, Refusal, SessionTable};
use crate::upstream::{Call, Event};
use bytes::Bytes;
use pingora::protocols::http::ServerSession;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use tokio::sync::mpsc;

/// Answers and their server messages queued for a slow client; a full
/// queue holds the upstream calls back (TCP back-pressure, not memory).
const QUEUE: usize = 64;

/// Forgets the connection and ends its session when the stream ends.
struct Registered<'a> {
    gateway: &'a Gateway,
    connections: &'a Connections,
    id: String,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.connections.open.remove(&self.id);
        if let Some(session) = self.gateway.sessions.remove(&self.id) {
            tracing::info!(server = %session.server, session = %self.id, "legacy SSE connection closed: session ended");
        }
    }
}

pub(super) async fn open(
    gateway: &Arc<Gateway>,
    route: &Arc<Route>,
    http: &mut ServerSession,
    connections: &Arc<Connections>,
    caller: Caller,
) -> pingora::Result<()> {
    if header(http, "accept").is_some_and(|accept| !accepts(accept, "text/event-stream")) {
        let message = "Accept must admit text/event-stream for the SSE stream";
        return respond::rpc_error(http, 406, None, INVALID_REQUEST, message, &[]).await;
    }
    if gateway.is_draining() {
        http.set_keepalive(None);
        let retry = [("retry-after", "1")];
        return respond::rpc_error(http, 503, None, INTERNAL_ERROR, "mcpd is shutting down", &retry).await;
    }
    // The connection is a session: it counts against the same caps.
    let client = caller.principal.as_deref().unwrap_or(&caller.client).to_owned();
    let reservation = match gateway.sessions.reserve(&route.name, &client, route.settings.session.max_per_client) {
        Ok(reservation) => reservation,
        Err(refusal) => {
            let status = match refusal {
                Refusal::PerClient(_) => 429,
                Refusal::Gateway(_) => 503,
            };
            let text = refusal.to_string();
            return respond::rpc_error(http, status, None, LIMIT_EXCEEDED, &text, &[("retry-after", "5")]).await;
        }
    };
    let id = SessionTable::new_id();
    let (tx, mut rx) = mpsc::channel(QUEUE);
    let connection = Arc::new(Connection {
        id: id.clone(),
        route: Arc::clone(&route.name),
        tx,
        reservation: std::sync::Mutex::new(Some(reservation)),
        initialized: AtomicBool::new(false),
    });
    connections.open.insert(id.clone(), connection);
    let _registered = Registered { gateway, connections, id: id.clone() };

    respond::sse_start(http, &[]).await?;
    let (_, message_path) = route.settings.sse_routes().unwrap_or_default();
    http.write_response_body(Bytes::from(endpoint_event(&message_path, &id)), false).await?;
    tracing::info!(server = %route.name, session = %id, client = %client, "legacy SSE connection opened");

    let keepalive = route.settings.http.sse_keepalive;
    // Once bound: the session's outbox, an instance's own stream, and the
    // guard that keeps the session from being reaped while the client listens.
    let mut outbox: Option<mpsc::Receiver<Bytes>> = None;
    let mut instance: Option<Call> = None;
    let mut _busy: Option<Busy> = None;
    loop {
        let session_message = async {
            match &mut outbox {
                Some(outbox) => outbox.recv().await,
                None => std::future::pending().await,
            }
        };
        let from_instance = async {
            match &mut instance {
                Some(stream) => stream.next().await,
                None => std::future::pending().await,
            }
        };
        let target = Target { caller: &caller, session: Some(&id), outbox: None, request: None };
        tokio::select! {
            out = rx.recv() => match out {
                Some(Out::Message(message)) => respond::sse_event(http, &message).await?,
                Some(Out::Bound(session)) => {
                    let Some(attached) = session.outbox.attach() else { break };
                    outbox = Some(attached);
                    _busy = Some(session.enter(&gateway.sessions));
                    instance = session.upstream.stream(&http.req_header().headers);
                    if let Some(stream) = &mut instance
                        && let Err(error) = stream.ready().await
                    {
                        // An instance without a server stream (405) still serves requests.
                        tracing::debug!(server = %route.name, session = %id, "no upstream server stream: {error}");
                        instance = None;
                    }
                }
                None => break,
            },
            message = session_message => match message {
                Some(message) => {
                    if let Some(message) = server_message(route, &target, message).await {
                        respond::sse_event(http, &message).await?;
                    }
                }
                None => break, // the session ended (its server is gone, or it was deleted)
            },
            event = from_instance => match event {
                Event::Message(message) => {
                    if let Some(message) = server_message(route, &target, message).await {
                        respond::sse_event(http, &message).await?;
                    }
                }
                // The instance closed its stream; requests still work.
                _ => instance = None,
            },
            _ = tokio::time::sleep(keepalive) => respond::sse_keepalive(http).await?,
            _ = http.read_body_or_idle(true) => return Ok(()), // the client left: the session ends
        }
        if gateway.is_draining() {
            break;
        }
    }
    http.set_keepalive(None);
    respond::sse_end(http).await
}

/// The first event: where to POST. An absolute path including the route's
/// mount (`/NAME/message` on the shared listener), so clients resolving it
/// against the stream URL and clients prefixing the origin both get it right.
fn endpoint_event(message_path: &str, id: &str) -> String {
    format!("event: endpoint\ndata: {message_path}?sessionId={id}\n\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn endpoint_event_names_the_routes_message_path() {
        assert_eq!(
            super::endpoint_event("/fx/message", "ab12"),
            "event: endpoint\ndata: /fx/message?sessionId=ab12\n\n"
        );
    }
}

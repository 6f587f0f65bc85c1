//! The legacy HTTP+SSE transport (protocol 2024-11-05) towards clients,
//! served next to Streamable HTTP when a server's `transport` lists `"sse"`.
//!
//! - `GET <sse path>` opens a connection: an SSE stream whose first event is
//!   `endpoint`, the path to POST to (`<message path>?sessionId=…`). The
//!   connection *is* the session: when it closes, the session ends (and its
//!   per-session process stops).
//! - `POST <message path>?sessionId=…` carries one JSON-RPC message and is
//!   answered 202; answers and every server message arrive on the stream as
//!   `event: message`.
//!
//! What serves the session is the same as for Streamable HTTP: `initialize`
//! binds it through [`super::streamable_http::bind`] (own process, replica,
//! HTTP instance) or a pool's handshake, and messages reach the upstream
//! through the same [`crate::upstream::session::SessionUpstream`] seams and
//! plugin hooks. This module owns only the connection table and the legacy
//! framing: [`stream`] (the GET side), [`message`] (the POST side) and
//! [`answer`] (driving an upstream call onto the stream).

mod answer;
mod message;
mod stream;

use super::plugin_hooks;
use super::streamable_http::{answer_verdict, client_address};
use crate::gateway::Gateway;
use crate::route::Route;
use crate::session::{Reservation, Session};
use bytes::Bytes;
use dashmap::DashMap;
use pingora::protocols::http::ServerSession;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// What goes to a connection's stream besides the session's own messages.
pub(crate) enum Out {
    /// A JSON-RPC message for the client (an answer, or a server message
    /// that came with one).
    Message(Bytes),
    /// `initialize` created the session: the stream starts carrying its
    /// outbox (and an HTTP instance's own stream).
    Bound(Arc<Session>),
}

/// One open legacy SSE connection.
pub(crate) struct Connection {
    /// The `sessionId` (and, once initialized, the session's id too).
    pub id: String,
    pub route: Arc<str>,
    tx: mpsc::Sender<Out>,
    /// The connection's place in the session caps, until `initialize`
    /// turns it into a session (pooled routes hold it to the end).
    reservation: Mutex<Option<Reservation>>,
    /// `initialize` was accepted (a second one is refused).
    initialized: AtomicBool,
}

impl Connection {
    /// Sends `out` to the stream; false when the client has left.
    async fn send(&self, out: Out) -> bool {
        self.tx.send(out).await.is_ok()
    }

    fn take_reservation(&self) -> Option<Reservation> {
        self.reservation.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    fn keep_reservation(&self, reservation: Reservation) {
        *self.reservation.lock().unwrap_or_else(|e| e.into_inner()) = Some(reservation);
    }
}

/// Every open legacy connection, by `sessionId`.
#[derive(Default)]
pub struct Connections {
    open: DashMap<String, Arc<Connection>>,
}

impl Connections {
    fn get(&self, id: &str, route: &str) -> Option<Arc<Connection>> {
        self.open.get(id).map(|c| Arc::clone(&c)).filter(|c| &*c.route == route)
    }
}

/// Which legacy endpoint a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Stream,
    Message,
}

pub async fn serve(
    gateway: &Arc<Gateway>,
    route: &Arc<Route>,
    http: &mut ServerSession,
    connections: &Arc<Connections>,
    side: Side,
) -> pingora::Result<()> {
    // A client that hangs up must be noticed while its stream is open.
    http.set_abort_on_close(true);
    let caller = match plugin_hooks::caller(route, http, client_address(http)).await {
        Ok(caller) => caller,
        Err(stop) => return answer_verdict(http, None, stop, false).await,
    };
    let method = http.req_header().method.clone();
    match (side, method) {
        (Side::Stream, http::Method::GET) => stream::open(gateway, route, http, connections, caller).await,
        (Side::Message, http::Method::POST) => message::post(gateway, route, http, connections, caller).await,
        (side, _) => {
            let allow = match side {
                Side::Stream => "GET",
                Side::Message => "POST",
            };
            let text = format!("this legacy SSE endpoint takes {allow} only");
            super::respond::rpc_error(http, 405, None, crate::mcp::errors::INVALID_REQUEST, &text, &[("allow", allow)])
                .await
        }
    }
}

//! Where a message a *shared* upstream says on its own goes: one stdio
//! process serving many clients (a pool with sessions off, `replicas`, the
//! stateless bridge's processes) or one upstream session the stateless
//! bridge shares (an SSE-transport instance).
//!
//! Answers and progress notifications are routed exactly (by id, by
//! progress token). Everything else (log messages, other notifications,
//! server→client requests such as sampling, elicitation, roots and ping)
//! carries nothing naming the request it is about. The policy:
//!
//! - Each request in flight records its [`Owner`]: the mcpd session, else
//!   the principal a plugin named, else the client's connection. mcpd's own
//!   requests (handshakes, health pings, the bridge's look-ups) are not a
//!   client and are ignored.
//! - All client requests in flight belong to one owner: the message goes to
//!   that owner's newest request (a server that speaks mid-call speaks
//!   about that call; that is what a process per session does too).
//! - Several owners: a `…/list_changed` notification concerns every client
//!   and goes to each owner's newest request. Any other notification is
//!   dropped; a server→client request is answered at once with an error
//!   (`ping`: with an empty result, for mcpd is there to answer it), so
//!   the server does not wait for a client that never sees it. Both are
//!   counted in `mcpd_unroutable_server_messages_total{server,kind}`.
//! - No client request in flight: as before, a notification is dropped
//!   (there is no stream to put it on); a request is answered the same way.
//!
//! The same owners guard the client's side:
//!
//! - A server→client request mcpd relays gets an id with 128 random bits
//!   (see [`super::stdio`]) and remembers the owner it went to. An answer
//!   is passed on only from that owner ([`Owner::may_answer`]); any other
//!   answer is refused as one for an unknown id would be, and counted in
//!   `mcpd_refused_client_answers_total{server,reason}`.
//! - A client's `notifications/cancelled` cancels only a request of the
//!   same owner with that id (clients' ids collide: every client numbers
//!   its requests from 0 or 1).
//! - A relayed server request is withdrawn when its owner goes away or
//!   after a deadline, and a server's cancellation of it reaches its
//!   owner only ([`super::server_requests`]).
//!
//! Upstreams one session owns (a process per session, an HTTP session) do
//! not use this: everything goes to that session.

use super::metrics;
use std::sync::Arc;

/// JSON-RPC error message a server gets for a request mcpd cannot place.
pub const AMBIGUOUS: &str =
    "mcpd cannot tell which client this request is for: the server is shared by several clients' requests in flight";
/// JSON-RPC error message a server gets for a request while no client waits.
pub const NOBODY: &str = "no client request is in flight on this shared server to relay the request to";

/// Who a request in flight is for, as far as mcpd can tell.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Owner(Option<Who>);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Who {
    Session(Arc<str>),
    Principal(Arc<str>),
    /// An anonymous sessionless client: its connection (address and port)
    /// and, apart, its address.
    Peer {
        connection: Arc<str>,
        address: Arc<str>,
    },
}

impl Owner {
    /// mcpd's own requests: no client listens to them.
    pub fn gateway() -> Owner {
        Owner(None)
    }

    /// A client session (mcpd's session id, a legacy SSE connection's id).
    pub fn session(id: &str) -> Owner {
        Owner(Some(Who::Session(id.into())))
    }

    /// A sessionless request: its principal when a plugin named one (the
    /// same principal is the same client), else its connection (address
    /// and port: a client's concurrent requests on separate connections
    /// count as separate clients, so nothing crosses between two clients
    /// behind one address).
    pub fn caller(principal: Option<&str>, peer: &str) -> Owner {
        Owner(Some(match principal {
            Some(principal) => Who::Principal(principal.into()),
            None => {
                let address = match peer.parse::<std::net::SocketAddr>() {
                    Ok(socket) => socket.ip().to_string().into(),
                    Err(_) => peer.into(),
                };
                Who::Peer { connection: peer.into(), address }
            }
        }))
    }

    pub fn is_gateway(&self) -> bool {
        self.0.is_none()
    }

    /// Whether `from` may answer a server request mcpd relayed to this
    /// owner: the same session or principal; for an anonymous client, the
    /// same address (its answer comes on a connection of its own, for the
    /// request's stream still holds the one the request came on; the
    /// unguessable request id is what keeps other clients at that address
    /// out). mcpd itself (the stateless bridge answering for its client)
    /// may answer anything it relayed.
    pub fn may_answer(&self, from: &Owner) -> bool {
        match (&self.0, &from.0) {
            (_, None) => true,
            (Some(Who::Peer { address: ours, .. }), Some(Who::Peer { address: theirs, .. })) => ours == theirs,
            (ours, theirs) => ours == theirs,
        }
    }
}

/// Where an unattributable server message goes; positions index the
/// requests in flight as given to [`destination`], oldest first.
#[derive(Debug, PartialEq, Eq)]
pub enum Destination {
    /// The one owner's newest request.
    Newest(usize),
    /// Each owner's newest request (change notifications).
    EachOwner(Vec<usize>),
    /// Several owners: nobody may have it.
    Ambiguous,
    /// No client request in flight.
    Nobody,
}

/// Notifications that concern every client of a server alike.
pub fn concerns_everyone(method: &str) -> bool {
    method.ends_with("/list_changed")
}

/// Applies the policy (see the module doc) to the owners of the requests
/// in flight, oldest first. `method` is the message's; `is_request`
/// whether it expects an answer.
pub fn destination(owners: &[&Owner], method: &str, is_request: bool) -> Destination {
    let clients: Vec<usize> = (0..owners.len()).filter(|&i| !owners[i].is_gateway()).collect();
    let Some(&newest) = clients.last() else {
        return Destination::Nobody;
    };
    if clients.iter().all(|&i| owners[i] == owners[newest]) {
        return Destination::Newest(newest);
    }
    if is_request || !concerns_everyone(method) {
        return Destination::Ambiguous;
    }
    let mut each: Vec<usize> = Vec::new();
    for &i in clients.iter().rev() {
        if !each.iter().any(|&j| owners[j] == owners[i]) {
            each.push(i);
        }
    }
    each.reverse();
    Destination::EachOwner(each)
}

/// Why mcpd kept a client's answer to a server request from the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusedAnswer {
    /// No server request with that id is waiting (never was, already
    /// answered, or its process is gone).
    Unknown,
    /// The request is waiting, but for another client.
    NotOwner,
}

/// Counts (in `mcpd_refused_client_answers_total{server,reason}`) and logs
/// an answer mcpd did not pass on. The client is told the same in both
/// cases (no such request waits), so it learns nothing about others'.
pub fn count_refused_answer(server: &str, id: &str, why: RefusedAnswer) {
    let reason = match why {
        RefusedAnswer::Unknown => "unknown",
        RefusedAnswer::NotOwner => "not_owner",
    };
    metrics::refused_answer(server, reason).inc();
    match why {
        RefusedAnswer::Unknown => tracing::debug!(server, id, "client answer for no waiting server request refused"),
        RefusedAnswer::NotOwner => {
            tracing::warn!(server, id, "client answered a server request relayed to another client; refused")
        }
    }
}

/// Counts (and logs at debug) a message the policy kept from every client.
pub fn count_unroutable(server: &str, method: &str, is_request: bool, why: &str) {
    let kind = if is_request { "request" } else { "notification" };
    metrics::unroutable(server, kind).inc();
    tracing::debug!(server, method, kind, "server message not relayed: {why}");
}

/// The answer mcpd gives a server's request no client can take: an empty
/// result for `ping`, else -32603 with `why`.
pub fn refusal(id: &str, method: &str, why: &str) -> Vec<u8> {
    match method {
        "ping" => crate::mcp::jsonrpc::response(id, None, None),
        _ => {
            let id = serde_json::value::RawValue::from_string(id.to_owned()).ok();
            crate::mcp::errors::error_body(id.as_deref(), crate::mcp::errors::INTERNAL_ERROR, why)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_owner_gets_its_newest_request_and_mcpd_is_not_an_owner() {
        let (a, me) = (Owner::session("a"), Owner::gateway());
        assert_eq!(destination(&[&a, &me, &a, &me], "notifications/message", false), Destination::Newest(2));
        assert_eq!(destination(&[&me], "sampling/createMessage", true), Destination::Nobody);
        assert_eq!(destination(&[], "notifications/message", false), Destination::Nobody);
    }

    #[test]
    fn several_owners_get_only_change_notifications() {
        let (a, b) = (Owner::caller(None, "127.0.0.1:1"), Owner::caller(None, "127.0.0.1:2"));
        let owners = [&a, &b, &a];
        assert_eq!(destination(&owners, "notifications/message", false), Destination::Ambiguous);
        assert_eq!(destination(&owners, "elicitation/create", true), Destination::Ambiguous);
        assert_eq!(destination(&owners, "notifications/tools/list_changed", false), Destination::EachOwner(vec![1, 2]));
        // The same principal is one client whatever its connection.
        let (p, q) = (Owner::caller(Some("alice"), "127.0.0.1:1"), Owner::caller(Some("alice"), "127.0.0.1:2"));
        assert_eq!(destination(&[&p, &q], "notifications/message", false), Destination::Newest(1));
    }

    #[test]
    fn only_the_owner_asked_may_answer() {
        let (s, t) = (Owner::session("s"), Owner::session("t"));
        assert!(s.may_answer(&s) && !s.may_answer(&t));
        // An anonymous client answers on another connection from its address.
        let (a1, a2) = (Owner::caller(None, "127.0.0.1:1"), Owner::caller(None, "127.0.0.1:2"));
        let b = Owner::caller(None, "127.0.0.2:1");
        assert!(a1.may_answer(&a2) && !a1.may_answer(&b));
        assert!(Owner::caller(None, "[::1]:5").may_answer(&Owner::caller(None, "[::1]:6")));
        let (alice, bob) = (Owner::caller(Some("alice"), "127.0.0.1:1"), Owner::caller(Some("bob"), "127.0.0.1:1"));
        assert!(alice.may_answer(&alice) && !alice.may_answer(&bob));
        assert!(!alice.may_answer(&a1) && !a1.may_answer(&alice) && !s.may_answer(&a1));
        // mcpd answers for the client it relayed to (the stateless bridge).
        assert!(s.may_answer(&Owner::gateway()));
    }

    #[test]
    fn refusals_are_json_rpc_answers() {
        let error: serde_json::Value = serde_json::from_slice(&refusal("\"s-1\"", "roots/list", AMBIGUOUS)).unwrap();
        assert_eq!(error["id"], "s-1");
        assert_eq!(error["error"]["code"], -32603);
        let pong: serde_json::Value = serde_json::from_slice(&refusal("4", "ping", AMBIGUOUS)).unwrap();
        assert_eq!(pong["result"], serde_json::json!({}));
    }
}

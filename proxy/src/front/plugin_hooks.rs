//! The front's use of the plugin chain: building what hooks see from the
//! HTTP request and MCP messages, and turning decisions back into bytes.
//!
//! Nothing here runs when a route has no plugin for a hook: callers check
//! [`Chain::wants`] first, so a plugin-free route pays nothing.

use crate::mcp::jsonrpc::{self, Kind, Message};
use crate::plugin::bindings::{Direction, Header, McpMessage, MessageKind, MessageParts, RpcError};
use crate::plugin::chain::{HeaderSelection, Verdict};
use crate::plugin::loaded::Hook;
use crate::plugin::view::{Headers, HttpRequestView, MessageView};
use crate::route::Route;
use bytes::Bytes;
use pingora::protocols::http::ServerSession;
use serde_json::value::RawValue;
use smallvec::SmallVec;
use std::borrow::Cow;
use std::sync::Arc;

/// Who is calling, as the hooks saw it; carried through one HTTP request.
#[derive(Default, Clone)]
pub struct Caller {
    /// Shared: a reused sign-in hands the same one to every request.
    pub principal: Option<Arc<str>>,
    /// What an auth plugin said the client may do.
    pub scopes: Arc<[String]>,
    pub client: String,
    /// The request's selected headers, as the HTTP-request hook left them;
    /// copied only when a message hook reads headers.
    pub headers: Vec<Header>,
}

/// The request's headers that `selection` names, borrowed from it. Most
/// requests have few, so they stay on the stack.
fn selected<'a>(http: &'a ServerSession, selection: &HeaderSelection) -> SmallVec<[(&'a str, &'a str); 8]> {
    if matches!(selection, HeaderSelection::None) {
        return SmallVec::new();
    }
    http.req_header()
        .headers
        .iter()
        .filter(|(name, _)| selection.wants(name))
        .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
        .collect()
}

/// Who is calling, after the route's HTTP-request hook (when a plugin
/// has one); `Err(verdict)` (a rejection or an HTTP reply) stops the request.
pub async fn caller(route: &Route, http: &ServerSession, client: String) -> Result<Caller, Verdict> {
    let plugins = &route.plugins;
    let mut caller = Caller { client, ..Caller::default() };
    let (hook, keep_headers) = (plugins.wants(Hook::HttpRequest), plugins.messages_read_headers());
    if !hook && !keep_headers {
        return Ok(caller);
    }
    let headers = selected(http, &plugins.headers);
    let mut changed = None;
    if hook {
        let request = HttpRequestView {
            method: http.req_header().method.as_str(),
            path: http.req_header().uri.path(),
            headers: Headers::Borrowed(&headers),
            client_address: &caller.client,
            route: &route.name,
        };
        let (verdict, headers) = plugins.on_http_request(request, &mut caller.principal, &mut caller.scopes).await;
        match verdict {
            Verdict::Proceed => {}
            Verdict::Respond(_) => {
                tracing::warn!(server = %route.name, "a plugin answered an HTTP request hook directly; ignored");
            }
            stop => return Err(stop),
        }
        changed = headers;
    }
    if keep_headers {
        caller.headers = changed.unwrap_or_else(|| Headers::Borrowed(&headers).to_vec());
    }
    Ok(caller)
}

/// The tool or prompt name, or resource URI, a request is about.
fn subject<'a>(message: &Message<'a>) -> Option<Cow<'a, str>> {
    crate::mcp::subject::of(message.method.as_deref()?, message.params?)
}

/// What hooks see of `message`, with only the optional `parts` some hook
/// reads. `answering` is the request a response answers: responses carry
/// that request's method and name.
pub fn view<'a>(
    route: &'a Route,
    caller: &'a Caller,
    session: Option<&'a str>,
    (direction, parts): (Direction, MessageParts),
    message: &'a Message<'a>,
    answering: Option<&'a Message<'a>>,
) -> MessageView<'a> {
    let params = parts.contains(MessageParts::PARAMS);
    let kind = match message.kind() {
        Kind::Request => MessageKind::Request,
        Kind::Notification => MessageKind::Notification,
        Kind::Response => MessageKind::Response,
    };
    MessageView {
        direction,
        kind,
        method: message.method.as_deref().or(answering.and_then(|a| a.method.as_deref())),
        id: message.id.map(RawValue::get),
        name: match (kind, answering) {
            (MessageKind::Response, Some(request)) => subject(request),
            _ => subject(message),
        },
        params: message.params.or(message.result).filter(|_| params).map(RawValue::get),
        error: message.error.filter(|_| params).map(RawValue::get),
        session: session.filter(|_| parts.contains(MessageParts::SESSION)),
        principal: caller.principal.as_deref(),
        scopes: &caller.scopes,
        client_address: &caller.client,
        headers: match parts.contains(MessageParts::HEADERS) {
            true => &caller.headers,
            false => &[],
        },
        route: &route.name,
    }
}

/// A JSON-RPC error response with a plugin's code, message and `data`.
pub fn error_response(id: Option<&RawValue>, error: &RpcError) -> Vec<u8> {
    let body = crate::mcp::errors::error_body(id, error.code.into(), &error.message);
    let Some(data) = error.data.as_deref().and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok()) else {
        return body;
    };
    let mut value: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    value["error"]["data"] = data;
    value.to_string().into_bytes()
}

/// What became of a message after the hooks.
pub enum Filtered {
    /// Pass the message on as it came.
    Pass(Bytes),
    /// Pass these bytes on instead: a plugin changed its params (or result).
    Rewritten(Bytes),
    /// Stop; answer with this verdict.
    Stop(Verdict),
}

/// Runs the request hook over the client's `message` (parsed from
/// `bytes`), like [`message`]; a principal or scopes a plugin set there
/// stay with `caller`, so the response hooks of this request see them too.
pub async fn request(
    route: &Route,
    caller: &mut Caller,
    session: Option<&str>,
    message: &Message<'_>,
    bytes: Bytes,
) -> Filtered {
    let (filtered, seen) = run(Hook::Request, route, caller, session, message, bytes, None).await;
    if let Some(seen) = seen {
        caller.principal = seen.principal.map(Arc::from);
        caller.scopes = Arc::from(seen.scopes);
    }
    filtered
}

/// Why a message is refused after the request hook rewrote it.
pub const INVALID_REWRITE: &str = "a plugin made the message invalid";

/// The message to forward after the request hook: `message` (parsed from
/// `body`) as it came, or the `rewritten` bytes parsed. `Err` carries the
/// original id when the rewrite is not a JSON-RPC message.
pub fn forwarded<'a>(
    body: &'a Bytes,
    message: Message<'a>,
    rewritten: &'a Option<Bytes>,
) -> Result<(&'a Bytes, Message<'a>), Option<&'a RawValue>> {
    match rewritten {
        None => Ok((body, message)),
        Some(rewritten) => match Message::parse(rewritten) {
            Ok(parsed) => Ok((rewritten, parsed)),
            Err(_) => Err(message.id),
        },
    }
}

/// Runs `hook` over the message in `bytes`; rewrites it when a plugin
/// changed its params (or result). `answering`: see [`view`].
pub async fn message(
    hook: Hook,
    route: &Route,
    caller: &Caller,
    session: Option<&str>,
    bytes: Bytes,
    answering: Option<&Message<'_>>,
) -> Filtered {
    let Ok(message) = Message::parse(&bytes) else {
        return Filtered::Pass(bytes);
    };
    run(hook, route, caller, session, &message, bytes.clone(), answering).await.0
}

/// Runs `hook` over `message` (parsed from `bytes`), and returns what the
/// hooks saw, with their changes, when one was called or changed it.
async fn run(
    hook: Hook,
    route: &Route,
    caller: &Caller,
    session: Option<&str>,
    message: &Message<'_>,
    bytes: Bytes,
    answering: Option<&Message<'_>>,
) -> (Filtered, Option<McpMessage>) {
    let method = message.method.as_deref().or(answering.and_then(|a| a.method.as_deref()));
    let Some(parts) = route.plugins.reads(hook, method) else {
        return (Filtered::Pass(bytes), None);
    };
    let direction = match hook {
        Hook::Response => Direction::ServerToClient,
        _ => Direction::ClientToServer,
    };
    let view = view(route, caller, session, (direction, parts), message, answering);
    let (verdict, seen) = route.plugins.on_message(hook, &view).await;
    let filtered = match verdict {
        Verdict::Proceed => match seen.as_ref().map(|seen| seen.params.as_deref()).filter(|p| *p != view.params) {
            None => Filtered::Pass(bytes),
            Some(params) => match params.map(|p| RawValue::from_string(p.to_string())) {
                Some(Ok(params)) => Filtered::Rewritten(Bytes::from(rebuild(message, &params))),
                _ => {
                    tracing::warn!(server = %route.name, "a plugin returned params that are not JSON; message left unchanged");
                    Filtered::Pass(bytes)
                }
            },
        },
        stop => Filtered::Stop(stop),
    };
    (filtered, seen)
}

fn rebuild(message: &Message, params: &RawValue) -> Vec<u8> {
    match message.kind() {
        Kind::Request => jsonrpc::request(message.id_text(), message.method(), Some(params.get())),
        Kind::Notification => jsonrpc::notification(message.method(), Some(params.get())),
        Kind::Response => jsonrpc::response(message.id_text(), Some(params), None),
    }
}

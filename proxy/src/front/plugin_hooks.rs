//! The front's use of the plugin chain: building what hooks see from the
//! HTTP request and MCP messages, and turning decisions back into bytes.
//!
//! Nothing here runs when a route has no plugin for a hook: callers check
//! [`Chain::wants`] first, so a plugin-free route pays nothing.

use crate::mcp::jsonrpc::{self, Kind, Message};
use crate::plugin::bindings::{Direction, Header, HttpRequest, McpMessage, MessageKind, MessageParts, RpcError};
use crate::plugin::chain::{HeaderSelection, Verdict};
use crate::plugin::loaded::Hook;
use crate::route::Route;
use bytes::Bytes;
use pingora::protocols::http::ServerSession;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// Who is calling, as the hooks saw it; carried through one HTTP request.
#[derive(Default, Clone)]
pub struct Caller {
    pub principal: Option<String>,
    /// What an auth plugin said the client may do.
    pub scopes: Vec<String>,
    pub client: String,
    pub headers: Vec<Header>,
}

impl Caller {
    pub fn of(http: &ServerSession, client: String, selection: &HeaderSelection) -> Caller {
        let headers = match selection {
            HeaderSelection::None => Vec::new(),
            _ => http
                .req_header()
                .headers
                .iter()
                .filter(|(name, _)| selection.wants(name.as_str()))
                .filter_map(|(name, value)| {
                    Some(Header { name: name.as_str().to_string(), value: value.to_str().ok()?.to_string() })
                })
                .collect(),
        };
        Caller { principal: None, scopes: Vec::new(), client, headers }
    }
}

/// Who is calling, after the route's HTTP-request hook (when a plugin
/// has one); `Err(verdict)` (a rejection or an HTTP reply) stops the request.
pub async fn caller(route: &Route, http: &ServerSession, client: String) -> Result<Caller, Verdict> {
    let mut caller = Caller::of(http, client, &route.plugins.headers);
    if route.plugins.wants(Hook::HttpRequest)
        && let Some(stop) = http_request(route, http, &mut caller).await
    {
        return Err(stop);
    }
    Ok(caller)
}

/// Runs the HTTP-request hook; `Some(verdict)` (a rejection or an HTTP
/// reply) stops the request.
pub async fn http_request(route: &Route, http: &ServerSession, caller: &mut Caller) -> Option<Verdict> {
    let mut request = HttpRequest {
        method: http.req_header().method.as_str().to_string(),
        path: http.req_header().uri.path().to_string(),
        headers: std::mem::take(&mut caller.headers),
        client_address: caller.client.clone(),
        route: route.name.to_string(),
    };
    let verdict = route.plugins.on_http_request(&mut request, &mut caller.principal, &mut caller.scopes).await;
    caller.headers = request.headers;
    match verdict {
        Verdict::Proceed => None,
        Verdict::Respond(_) => {
            tracing::warn!(server = %route.name, "a plugin answered an HTTP request hook directly; ignored");
            None
        }
        stop => Some(stop),
    }
}

#[derive(serde::Deserialize)]
struct Named<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    uri: Option<Cow<'a, str>>,
}

/// The tool or prompt name, or resource URI, a request is about.
fn subject(message: &Message) -> Option<String> {
    let field = match message.method() {
        "tools/call" | "prompts/get" => true,
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => false,
        _ => return None,
    };
    let named: Named = serde_json::from_str(message.params?.get()).ok()?;
    match field {
        true => named.name.map(Cow::into_owned),
        false => named.uri.map(Cow::into_owned),
    }
}

/// What hooks see of `message`, with only the optional `parts` some hook
/// reads. `answering` is the request a response answers: responses carry
/// that request's method and name.
pub fn view(
    route: &Route,
    caller: &Caller,
    session: Option<&str>,
    (direction, parts): (Direction, MessageParts),
    message: &Message,
    answering: Option<&Message>,
) -> McpMessage {
    let params = parts.contains(MessageParts::PARAMS);
    let kind = match message.kind() {
        Kind::Request => MessageKind::Request,
        Kind::Notification => MessageKind::Notification,
        Kind::Response => MessageKind::Response,
    };
    McpMessage {
        direction,
        kind,
        method: message.method.as_ref().or(answering.and_then(|a| a.method.as_ref())).map(|m| m.to_string()),
        id: message.id.map(|i| i.get().to_string()),
        name: match (kind, answering) {
            (MessageKind::Response, Some(request)) => subject(request),
            _ => subject(message),
        },
        params: message.params.or(message.result).filter(|_| params).map(|p| p.get().to_string()),
        error: message.error.filter(|_| params).map(|e| e.get().to_string()),
        session: session.filter(|_| parts.contains(MessageParts::SESSION)).map(str::to_owned),
        principal: caller.principal.clone(),
        scopes: caller.scopes.clone(),
        client_address: caller.client.clone(),
        headers: match parts.contains(MessageParts::HEADERS) {
            true => caller.headers.clone(),
            false => Vec::new(),
        },
        route: route.name.to_string(),
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
    /// Pass these bytes on (unchanged or rewritten).
    Pass(Bytes),
    /// Stop; answer with this verdict.
    Stop(Verdict),
}

/// Runs the request hook over the client's message in `bytes`, like
/// [`message`]; a principal or scopes a plugin set there stay with `caller`,
/// so the response hooks of this request see them too.
pub async fn request(route: &Route, caller: &mut Caller, session: Option<&str>, bytes: Bytes) -> Filtered {
    let (filtered, seen) = run(Hook::Request, route, caller, session, bytes, None).await;
    if let Some(seen) = seen {
        caller.principal = seen.principal;
        caller.scopes = seen.scopes;
    }
    filtered
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
    run(hook, route, caller, session, bytes, answering).await.0
}

/// [`message`], and what the hooks saw (with their changes) when any ran.
async fn run(
    hook: Hook,
    route: &Route,
    caller: &Caller,
    session: Option<&str>,
    bytes: Bytes,
    answering: Option<&Message<'_>>,
) -> (Filtered, Option<McpMessage>) {
    let Ok(message) = Message::parse(&bytes) else {
        return (Filtered::Pass(bytes), None);
    };
    let method = message.method.as_deref().or(answering.and_then(|a| a.method.as_deref()));
    let Some(parts) = route.plugins.reads(hook, method) else {
        return (Filtered::Pass(bytes), None);
    };
    let direction = match hook {
        Hook::Response => Direction::ServerToClient,
        _ => Direction::ClientToServer,
    };
    let mut seen = view(route, caller, session, (direction, parts), &message, answering);
    let original = seen.params.clone();
    let filtered = match route.plugins.on_message(hook, &mut seen).await {
        Verdict::Proceed if seen.params == original => Filtered::Pass(bytes.clone()),
        Verdict::Proceed => match seen.params.as_deref().map(|p| RawValue::from_string(p.to_string())) {
            Some(Ok(params)) => Filtered::Pass(Bytes::from(rebuild(&message, &params))),
            _ => {
                tracing::warn!(server = %route.name, "a plugin returned params that are not JSON; message left unchanged");
                Filtered::Pass(bytes.clone())
            }
        },
        stop => Filtered::Stop(stop),
    };
    (filtered, Some(seen))
}

fn rebuild(message: &Message, params: &RawValue) -> Vec<u8> {
    match message.kind() {
        Kind::Request => jsonrpc::request(message.id_text(), message.method(), Some(params.get())),
        Kind::Notification => jsonrpc::notification(message.method(), Some(params.get())),
        Kind::Response => jsonrpc::response(message.id_text(), Some(params), None),
    }
}
